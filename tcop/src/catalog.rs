//! The session's catalog: the query layer's built-in functions plus the ones that need the
//! backend (PostgreSQL's `version()`, `pg_backend_pid()`, `pg_sleep`, `current_user`,
//! `inet_server_port()`..., the dynamic-worker functions and, with the `injection_points`
//! feature, the injection-point functions), then whatever the host adds through
//! [`BackendHooks::register_functions`](crate::BackendHooks::register_functions).
//!
//! ```text
//!  version()                     text   PostgreSQL 18.0 (pgipc 0.1.0) on <target>, compiled by rustc …, 64-bit
//!  pg_backend_pid()              int4   this process
//!  pg_sleep(float8)              void   waits on the PGPROC latch, interrupt check at every wake-up
//!  pg_sleep_for(interval)        void   …for that long
//!  pg_sleep_until(timestamptz)   void   …until then
//!  current_user, session_user,   name   the startup packet's user
//!  current_role, user
//!  current_database(),           name   the startup packet's database
//!  current_catalog
//!  current_schema()              name   "public"
//!  inet_server_port()            int4   local TCP port (NULL over a Unix socket)
//!  inet_client_addr()            inet   peer address (NULL over a Unix socket)
//!  inet_server_addr()            inet   local address (NULL over a Unix socket)
//!  inet_client_port()            int4   peer port (NULL over a Unix socket)
//!  pg_is_in_recovery()           bool   false (there is no recovery)
//!  pg_current_xact_id(), …       xid8   the transaction's id (assigned lazily), snapshots
//!  pgipc_current_subxact_id()    xid8   the current subtransaction's id, assigned now
//!  pgipc_start_worker(text), pgipc_worker_pid(int4), pgipc_terminate_worker(int4)
//! ```

use crate::bgworker_fns::WorkerFns;
use crate::sys;
use pgipc_proc::MyProc;
use pgipc_query::{
    sqlstate, system_now, Catalog, Datum, Inet, QueryError, Result, ServerFunction, Session, Type,
    Volatility,
};
use pgipc_waiteventset::WaitEvents;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// `PG_WAIT_TIMEOUT | PgSleep`: what `pg_sleep` publishes as its wait event.
const WAIT_EVENT_PG_SLEEP: u32 = 0x0900_0000 | 2;

/// What the session functions answer with, gathered at start-up.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    /// This backend's pid.
    pub(crate) pid: i32,
    /// The startup packet's user.
    pub(crate) user: String,
    /// The startup packet's database.
    pub(crate) database: String,
    /// `server_version` (e.g. `18.0`).
    pub(crate) server_version: String,
    /// The local TCP port, `None` over a Unix socket.
    pub(crate) server_port: Option<i32>,
    /// The local address, `None` over a Unix socket.
    pub(crate) server_addr: Option<std::net::IpAddr>,
    /// The client's address and port, `None` over a Unix socket.
    pub(crate) client: Option<(std::net::IpAddr, i32)>,
    /// The session's PGPROC, whose latch `pg_sleep` waits on.
    pub(crate) me: Option<&'static MyProc>,
}

/// PostgreSQL's `version()` text for this build: `PostgreSQL <server_version> (pgipc
/// <version>) on <target>, compiled by <rustc --version>, <pointer width>-bit`.
pub(crate) fn version_string(server_version: &str) -> String {
    let target = env!("PGIPC_TARGET");
    // config.guess says `pc` where Rust's triples say `unknown` for x86 Linux.
    let target = if target.starts_with("x86_64-") || target.starts_with("i686-") {
        target.replacen("-unknown-", "-pc-", 1)
    } else {
        target.to_owned()
    };
    format!(
        "PostgreSQL {server_version} (pgipc {}) on {target}, compiled by {}, {}-bit",
        env!("CARGO_PKG_VERSION"),
        env!("PGIPC_RUSTC_VERSION"),
        usize::BITS
    )
}

fn add(
    cat: &mut Catalog,
    name: &str,
    args: &[Type],
    result: Type,
    volatility: Volatility,
    call: impl Fn(&mut dyn Session, &[Datum]) -> Result<Datum> + 'static,
) {
    cat.add_function(ServerFunction {
        name: name.to_owned(),
        args: args.to_vec(),
        result,
        volatility,
        strict: true,
        call: Rc::new(call),
    });
}

/// The session's catalog (see the module documentation).
pub(crate) fn build(info: &SessionInfo, workers: Rc<WorkerFns>) -> Catalog {
    use Volatility::*;
    let mut cat = Catalog::new();
    // `server_version` may carry a suffix (`18.6 (pgipc)`): version() names pgipc itself.
    let number = info.server_version.split_whitespace().next().unwrap_or("");
    let version = version_string(number);
    add(&mut cat, "version", &[], Type::Text, Stable, move |_, _| {
        Ok(Datum::Text(version.clone()))
    });
    let pid = info.pid;
    add(
        &mut cat,
        "pg_backend_pid",
        &[],
        Type::Int4,
        Stable,
        move |_, _| Ok(Datum::Int4(pid)),
    );
    for name in ["current_user", "session_user"] {
        let user = info.user.clone();
        add(&mut cat, name, &[], Type::Name, Stable, move |_, _| {
            Ok(Datum::Text(user.clone()))
        });
    }
    for name in ["current_database", "current_catalog"] {
        let db = info.database.clone();
        add(&mut cat, name, &[], Type::Name, Stable, move |_, _| {
            Ok(Datum::Text(db.clone()))
        });
    }
    add(
        &mut cat,
        "current_schema",
        &[],
        Type::Name,
        Stable,
        |_, _| Ok(Datum::Text("public".into())),
    );
    let port = info.server_port;
    add(
        &mut cat,
        "inet_server_port",
        &[],
        Type::Int4,
        Stable,
        move |_, _| Ok(port.map_or(Datum::Null, Datum::Int4)),
    );
    for (name, addr) in [
        ("inet_client_addr", info.client.map(|(a, _)| a)),
        ("inet_server_addr", info.server_addr),
    ] {
        add(&mut cat, name, &[], Type::Inet, Stable, move |_, _| {
            Ok(addr.map_or(Datum::Null, |a| Datum::Inet(Inet::host(a))))
        });
    }
    let client = info.client;
    add(
        &mut cat,
        "inet_client_port",
        &[],
        Type::Int4,
        Stable,
        move |_, _| {
            Ok(client
                .as_ref()
                .map_or(Datum::Null, |(_, p)| Datum::Int4(*p)))
        },
    );
    add(
        &mut cat,
        "pg_is_in_recovery",
        &[],
        Type::Bool,
        Volatile,
        |_, _| Ok(Datum::Bool(false)),
    );

    // Transaction ids and snapshots: xid8 and pg_snapshot, bigint and txid_snapshot for the
    // older txid_* names (pg_snapshot_xmin/xmax/xip and pg_visible_in_snapshot are the query
    // layer's: they need no server state).
    for (name, assign, ty) in [
        ("pg_current_xact_id", true, Type::Xid8),
        ("txid_current", true, Type::Int8),
        ("pg_current_xact_id_if_assigned", false, Type::Xid8),
        ("txid_current_if_assigned", false, Type::Int8),
    ] {
        add(&mut cat, name, &[], ty, Stable, move |_, _| {
            Ok(match crate::xact::current_xact_id(assign)? {
                None => Datum::Null,
                Some(x) if ty == Type::Xid8 => Datum::Xid8(x),
                Some(x) => Datum::Int8(x as i64),
            })
        });
    }
    // pgipc's own: the current subtransaction's id, assigned now as a write inside a savepoint
    // would (PostgreSQL has no SQL function for `GetCurrentFullTransactionId`; its
    // pg_current_xact_id() names the top-level transaction, as ours does).
    add(
        &mut cat,
        "pgipc_current_subxact_id",
        &[],
        Type::Xid8,
        Volatile,
        |_, _| Ok(Datum::Xid8(crate::xact::current_subxact_id()?)),
    );
    for (name, ty) in [
        ("pg_current_snapshot", Type::PgSnapshot),
        ("txid_current_snapshot", Type::TxidSnapshot),
    ] {
        add(&mut cat, name, &[], ty, Stable, |_, _| {
            Ok(Datum::Snapshot(Box::new(crate::xact::current_snapshot()?)))
        });
    }

    let me = info.me;
    add(
        &mut cat,
        "pg_sleep",
        &[Type::Float8],
        Type::Void,
        Volatile,
        move |s, a| match a {
            [Datum::Float8(secs)] => sleep(me, s, *secs),
            _ => Ok(Datum::Void),
        },
    );
    add(
        &mut cat,
        "pg_sleep_for",
        &[Type::Interval],
        Type::Void,
        Volatile,
        move |s, a| match a {
            [Datum::Interval(iv)] => {
                // PostgreSQL adds the interval to clock_timestamp(): a month is 30 days here.
                let days = i64::from(iv.months) * 30 + i64::from(iv.days);
                let micros = days as f64 * 86_400e6 + iv.micros as f64;
                sleep(me, s, micros / 1e6)
            }
            _ => Ok(Datum::Void),
        },
    );
    add(
        &mut cat,
        "pg_sleep_until",
        &[Type::Timestamptz],
        Type::Void,
        Volatile,
        move |s, a| match a {
            [Datum::Timestamptz(t)] => sleep(me, s, (*t - system_now()) as f64 / 1e6),
            _ => Ok(Datum::Void),
        },
    );

    let w = workers.clone();
    add(
        &mut cat,
        "pgipc_start_worker",
        &[Type::Text],
        Type::Int4,
        Volatile,
        move |s, a| match a {
            [Datum::Text(f)] => w.start_worker(s, me, f),
            _ => Ok(Datum::Null),
        },
    );
    let w = workers.clone();
    add(
        &mut cat,
        "pgipc_worker_pid",
        &[Type::Int4],
        Type::Int4,
        Volatile,
        move |_, a| match a {
            [Datum::Int4(h)] => w.worker_pid(*h),
            _ => Ok(Datum::Null),
        },
    );
    let w = workers;
    add(
        &mut cat,
        "pgipc_terminate_worker",
        &[Type::Int4],
        Type::Text,
        Volatile,
        move |s, a| match a {
            [Datum::Int4(h)] => w.terminate_worker(s, me, *h),
            _ => Ok(Datum::Null),
        },
    );

    for (name, nargs) in [
        ("injection_points_attach", 2),
        ("injection_points_detach", 1),
        ("injection_points_wakeup", 1),
    ] {
        if !pgipc_injection_point::sql_function_exists(name) {
            continue;
        }
        let args = vec![Type::Text; nargs];
        add(&mut cat, name, &args, Type::Void, Volatile, move |_, a| {
            let texts: Vec<String> = a
                .iter()
                .map(|d| match d {
                    Datum::Text(t) => t.clone(),
                    _ => String::new(),
                })
                .collect();
            match pgipc_injection_point::sql_function(name, &texts) {
                Some(Ok(())) => Ok(Datum::Void),
                Some(Err(e)) => Err(QueryError::new(e.sqlstate(), e.to_string())),
                None => Err(QueryError::new(
                    sqlstate::UNDEFINED_FUNCTION,
                    format!("function {name} does not exist"),
                )),
            }
        });
    }
    cat
}

/// `pg_sleep`: waits on the process latch until the time is up, with an interrupt check at
/// every wake-up (PostgreSQL's loop of `CHECK_FOR_INTERRUPTS` and `WaitLatch`), so a cancel
/// or a termination request ends it at once.
fn sleep(me: Option<&'static MyProc>, s: &mut dyn Session, secs: f64) -> Result<Datum> {
    // NaN and negative durations do not sleep (PostgreSQL's loop exits at once).
    if secs.is_nan() || secs <= 0.0 {
        s.check_for_interrupts()?;
        return Ok(Datum::Void);
    }
    let Some(me) = me else {
        return Err(QueryError::new(
            sqlstate::INTERNAL_ERROR,
            "no process latch to sleep on",
        ));
    };
    let end = Instant::now() + Duration::from_secs_f64(secs.min(1e9));
    loop {
        s.check_for_interrupts()?;
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Datum::Void);
        }
        let r = pgipc_waiteventset::wait_latch(
            Some(me.latch()),
            WaitEvents::LATCH_SET | WaitEvents::POSTMASTER_DEATH,
            Some(left),
            WAIT_EVENT_PG_SLEEP,
        );
        match r {
            Ok(ev) => {
                if ev.contains(WaitEvents::POSTMASTER_DEATH) {
                    sys::note_postmaster_death();
                }
                if ev.contains(WaitEvents::LATCH_SET) {
                    me.latch().reset();
                }
            }
            Err(e) => {
                return Err(QueryError::new(
                    sqlstate::INTERNAL_ERROR,
                    format!("could not wait: {e}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_has_postgresql_shape() {
        let v = version_string("18.0");
        assert!(v.starts_with("PostgreSQL 18.0 (pgipc "), "{v}");
        assert!(v.contains(", compiled by rustc "), "{v}");
        assert!(v.ends_with(&format!(", {}-bit", usize::BITS)), "{v}");
        assert!(v.contains(" on "), "{v}");
    }
}
