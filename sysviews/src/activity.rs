//! `pg_stat_activity` over the Backend Status Array (with xid, xmin and the wait event from
//! each entry's PGPROC), and `pg_wait_events` over the wait_event crate's table.

use crate::{internal, SysContext};
use pgipc_backend_status::{backend_type_desc, BackendStatus};
use pgipc_query::{Datum, Inet, Result, Session};

fn text(s: Option<String>) -> Datum {
    s.map_or(Datum::Null, Datum::Text)
}

fn oid(v: u32) -> Datum {
    if v == 0 {
        Datum::Null
    } else {
        Datum::Oid(v)
    }
}

fn ts(v: Option<i64>) -> Datum {
    v.map_or(Datum::Null, Datum::Timestamptz)
}

fn xid(v: u32) -> Datum {
    if v == 0 {
        Datum::Null
    } else {
        Datum::Xid(v)
    }
}

/// `client_addr`: the Backend Status Array's address as an `inet` host.
fn inet(addr: Option<String>) -> Datum {
    addr.and_then(|a| a.parse().ok())
        .map_or(Datum::Null, |a| Datum::Inet(Inet::host(a)))
}

/// The entries of every process of the server (`pgstat_read_current_status`).
pub(crate) fn current_status(ctx: &SysContext) -> Result<Vec<BackendStatus>> {
    let slots = ctx
        .proc_config
        .max_backends()
        .map_err(|e| internal(e.to_string()))? as usize
        + pgipc_proc::NUM_AUXILIARY_PROCS as usize;
    let status = pgipc_backend_status::attach(&ctx.shmem, slots)
        .map_err(|e| internal(format!("could not attach to the Backend Status Array: {e}")))?;
    let procs = pgipc_proc::shmem_init(&ctx.shmem, &ctx.proc_config)
        .map_err(|e| internal(format!("could not attach to the PGPROC array: {e}")))?;
    Ok(status.read_current_status(Some(&procs)))
}

/// The `bgw_type` of the background worker `pid` (`GetBackgroundWorkerTypeByPid`), if it is
/// one.
fn bgworker_type(ctx: &SysContext, pid: i32) -> Option<String> {
    let w = pgipc_bgworker::shmem_init(&ctx.shmem, ctx.proc_config.max_worker_processes).ok()?;
    (0..w.len())
        .find(|&i| w.in_use(i) && w.pid(i) == Some(pid))
        .and_then(|i| w.read_spec(i))
        .map(|s| s.type_name)
        .filter(|t| !t.is_empty())
}

/// One row of `pg_stat_activity` (PostgreSQL 18's columns; see the view's definition); a
/// background worker's `backend_type` is its `bgw_type`.
pub(crate) fn activity_row(ctx: &SysContext, r: BackendStatus) -> Vec<Datum> {
    let backend_type = match r.backend_type {
        pgipc_proc::BackendType::BgWorker => bgworker_type(ctx, r.pid),
        _ => None,
    }
    .unwrap_or_else(|| backend_type_desc(r.backend_type).to_owned());
    let (wait_type, wait_name) = match pgipc_wait_event::decode(r.wait_event_info) {
        Some((t, n)) => (Datum::Text(t.to_owned()), Datum::Text(n.to_owned())),
        None => (Datum::Null, Datum::Null),
    };
    let named = |id: u32, name: String| {
        if id == 0 && name.is_empty() {
            Datum::Null
        } else {
            Datum::Text(name)
        }
    };
    vec![
        oid(r.database_id),
        named(r.database_id, r.datname),
        Datum::Int4(r.pid),
        Datum::Null,
        oid(r.user_id),
        named(r.user_id, r.usename),
        Datum::Text(r.appname),
        inet(r.client_addr),
        text(r.client_hostname),
        r.client_port.map_or(Datum::Null, Datum::Int4),
        ts(r.backend_start),
        ts(r.xact_start),
        ts(r.query_start),
        ts(r.state_change),
        wait_type,
        wait_name,
        text(r.state.as_str().map(str::to_owned)),
        xid(r.backend_xid),
        xid(r.backend_xmin),
        if r.query_id == 0 {
            Datum::Null
        } else {
            Datum::Int8(r.query_id)
        },
        Datum::Text(r.activity),
        Datum::Text(backend_type),
    ]
}

/// Whether the session may see the details of a backend owned by `role`
/// (PostgreSQL's `HAS_PGSTAT_PERMISSIONS`): a superuser, a member of `pg_read_all_stats`, or
/// one with the privileges of `role`. A process without a role (0: auxiliary processes, a
/// backend still authenticating) is visible to the first two only.
pub fn may_see_activity(ctx: &SysContext, role: pgipc_proc::Oid) -> bool {
    ctx.superuser || ctx.pg_read_all_stats || (role != 0 && ctx.has_privs_of_role(role))
}

/// The `pg_stat_activity` columns (by position in `activity_row`) that stay visible in
/// another role's row: `datid`, `datname`, `pid`, `usesysid`, `usename`, `application_name`,
/// `backend_xid`, `backend_xmin` (and `query`, replaced).
const VISIBLE_TO_ALL: [usize; 8] = [0, 1, 2, 4, 5, 6, 17, 18];

/// Position of `query` in `activity_row`.
const QUERY_COLUMN: usize = 20;

/// Masks a `pg_stat_activity` row the session may not see in full (PostgreSQL 18's
/// `pg_stat_get_activity` without `HAS_PGSTAT_PERMISSIONS`): `query` reads
/// `<insufficient privilege>` and every column but those listed in `VISIBLE_TO_ALL` is NULL
/// (`backend_type` and `leader_pid` included).
pub fn mask_activity_row(row: &mut [Datum]) {
    for (i, d) in row.iter_mut().enumerate() {
        if i == QUERY_COLUMN {
            *d = Datum::Text("<insufficient privilege>".to_owned());
        } else if !VISIBLE_TO_ALL.contains(&i) {
            *d = Datum::Null;
        }
    }
}

pub(crate) fn pg_stat_activity(ctx: &SysContext, _: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    Ok(current_status(ctx)?
        .into_iter()
        .map(|r| {
            let visible = may_see_activity(ctx, r.user_id);
            let mut row = activity_row(ctx, r);
            if !visible {
                mask_activity_row(&mut row);
            }
            row
        })
        .collect())
}

/// `pg_stat_ssl` (PostgreSQL's view over `pg_stat_get_activity`): every row with a client
/// port, i.e. client backends the session may see in full (masked rows have none), with the
/// TLS state each published in the Backend SSL Status Buffer.
pub(crate) fn pg_stat_ssl(ctx: &SysContext, _: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    let mut out = Vec::new();
    for r in current_status(ctx)? {
        if r.client_port.is_none() || !may_see_activity(ctx, r.user_id) {
            continue;
        }
        let row = match r.ssl {
            None => vec![
                Datum::Int4(r.pid),
                Datum::Bool(false),
                Datum::Null,
                Datum::Null,
                Datum::Null,
                Datum::Null,
                Datum::Null,
                Datum::Null,
            ],
            Some(s) => vec![
                Datum::Int4(r.pid),
                Datum::Bool(true),
                Datum::Text(s.version),
                Datum::Text(s.cipher),
                Datum::Int4(s.bits),
                text(s.client_dn),
                s.client_serial
                    .and_then(|v| pgipc_query::numeric::Numeric::parse(&v).ok())
                    .map_or(Datum::Null, Datum::Numeric),
                text(s.issuer_dn),
            ],
        };
        out.push(row);
    }
    Ok(out)
}

pub(crate) fn pg_wait_events(_: &SysContext, _: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    Ok(pgipc_wait_event::pg_wait_events()
        .iter()
        .map(|r| {
            vec![
                Datum::Text(r.class.name().to_owned()),
                Datum::Text(r.name.clone()),
                Datum::Text(r.description.clone()),
            ]
        })
        .collect())
}
