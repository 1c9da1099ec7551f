//! `pg_stat_activity` over the Backend Status Array (with xid, xmin and the wait event from
//! each entry's PGPROC), and `pg_wait_events` over the wait_event crate's table.

use crate::{internal, SysContext};
use pgipc_backend_status::{backend_type_desc, BackendStatus};
use pgipc_query::{Datum, Result, Session};

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
        Datum::Text(v.to_string())
    }
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
        text(r.client_addr),
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

pub(crate) fn pg_stat_activity(ctx: &SysContext, _: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    Ok(current_status(ctx)?
        .into_iter()
        .map(|r| activity_row(ctx, r))
        .collect())
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
