//! `pgipc_stat_ipc`: the IPC counters of every live process (pgipc's own view; PostgreSQL has
//! none), one row per process and counter, from the "IPC Statistics" region; and
//! `pgipc_stat_reset_ipc()`, which zeroes them (superusers only, as PostgreSQL's
//! `pg_stat_reset_shared`). Totals are a GROUP BY away:
//! `SELECT subsystem, counter, sum(value) FROM pgipc_stat_ipc GROUP BY 1, 2`.
//!
//! With them `pgipc_sinval_roundtrip(n)` (superusers only), a driver for the shared
//! invalidation queue: no statement here changes a catalog, so nothing else sends
//! invalidations. It joins the queue as this backend, appends `n` relcache messages, reads
//! them back and leaves, returning how many it read; the sinval counters move by `n`.

use crate::activity::current_status;
use crate::views::{Access, ViewDef};
use crate::{internal, SysContext};
use pgipc_backend_status::backend_type_desc;
use pgipc_ipc_stats::{Counter, IPC_STATS_NAME};
use pgipc_query::{sqlstate, Datum, QueryError, Result, ServerFunction, Session, Type, Volatility};
use pgipc_shmem::Shared;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;

/// The view.
pub(crate) static PGIPC_STAT_IPC: ViewDef = ViewDef {
    name: "pgipc_stat_ipc",
    columns: &[
        ("pid", Type::Int4),
        ("backend_type", Type::Text),
        ("subsystem", Type::Text),
        ("counter", Type::Text),
        ("value", Type::Int8),
    ],
    access: Access::Public,
    rows: pgipc_stat_ipc,
};

fn region(ctx: &SysContext) -> Result<Shared<[AtomicU64]>> {
    let (off, size) = ctx
        .shmem
        .find_raw(IPC_STATS_NAME)
        .ok_or_else(|| internal(format!("the segment has no \"{IPC_STATS_NAME}\"")))?;
    ctx.shmem
        .view_slice::<AtomicU64>(off, size / std::mem::size_of::<AtomicU64>())
        .ok_or_else(|| internal(format!("\"{IPC_STATS_NAME}\" is outside the segment")))
}

fn pgipc_stat_ipc(ctx: &SysContext, _: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    let region = region(ctx)?;
    let mut rows = Vec::new();
    for r in current_status(ctx)? {
        for &c in Counter::ALL {
            rows.push(vec![
                Datum::Int4(r.pid),
                Datum::Text(backend_type_desc(r.backend_type).to_owned()),
                Datum::Text(c.subsystem().to_owned()),
                Datum::Text(c.name().to_owned()),
                Datum::Int8(
                    pgipc_ipc_stats::read(&region, r.proc_number as usize, c).min(i64::MAX as u64)
                        as i64,
                ),
            ]);
        }
    }
    Ok(rows)
}

/// `pgipc_sinval_roundtrip(int4) RETURNS int8`: see the module's opening. `n` is at most
/// [`pgipc_sinval::SIG_THRESHOLD`], so the backend never falls far enough behind its own
/// messages to be signalled or reset.
pub(crate) fn pgipc_sinval_roundtrip(ctx: &Rc<SysContext>) -> ServerFunction {
    let ctx = ctx.clone();
    ServerFunction {
        name: "pgipc_sinval_roundtrip".into(),
        args: vec![Type::Int4],
        result: Type::Int8,
        volatility: Volatility::Volatile,
        strict: true,
        call: Rc::new(move |_, args| {
            if !ctx.superuser {
                return Err(QueryError::new(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    "permission denied for function pgipc_sinval_roundtrip",
                ));
            }
            let n = match args.first() {
                Some(Datum::Int4(n)) if (0..=pgipc_sinval::SIG_THRESHOLD).contains(n) => *n,
                _ => {
                    return Err(QueryError::new(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        format!(
                            "message count must be between 0 and {}",
                            pgipc_sinval::SIG_THRESHOLD
                        ),
                    ))
                }
            };
            sinval_roundtrip(&ctx, n as u32).map(|k| Datum::Int8(k as i64))
        }),
    }
}

/// Joins, writes `n`, reads until nothing is left, leaves (also when reading failed).
fn sinval_roundtrip(ctx: &SysContext, n: u32) -> Result<u64> {
    use pgipc_sinval::{Received, SharedInvalidationMessage};
    let fail = |e: pgipc_sinval::SinvalError| internal(format!("shared invalidation: {e}"));
    let slots = ctx
        .proc_config
        .max_backends()
        .map_err(|e| internal(e.to_string()))? as usize
        + pgipc_proc::NUM_AUXILIARY_PROCS as usize;
    let si = pgipc_sinval::shmem_init(&ctx.shmem, slots).map_err(fail)?;
    let procno = current_status(ctx)?
        .into_iter()
        .find(|r| r.pid == ctx.my_pid)
        .map(|r| r.proc_number)
        .ok_or_else(|| internal("this backend has no status entry".into()))?;
    let me = si.shared_inval_backend_init(procno, false).map_err(fail)?;
    let msgs: Vec<SharedInvalidationMessage> = (0..n)
        .map(|i| SharedInvalidationMessage::relcache(0, i))
        .collect();
    si.insert_data_entries(&msgs);
    let mut buf = [SharedInvalidationMessage::default(); 64];
    let mut read = 0u64;
    let outcome = loop {
        match me.get_data_entries(&mut buf) {
            Ok(Received::Messages(0)) => break Ok(read),
            Ok(Received::Messages(k)) => read += k as u64,
            Ok(Received::Reset) => {
                break Err(internal(
                    "shared invalidation: reset while reading back".into(),
                ))
            }
            Err(e) => break Err(fail(e)),
        }
    };
    me.cleanup().map_err(fail)?;
    outcome
}

/// `pgipc_stat_reset_ipc()`.
pub(crate) fn pgipc_stat_reset_ipc(ctx: &Rc<SysContext>) -> ServerFunction {
    let ctx = ctx.clone();
    ServerFunction {
        name: "pgipc_stat_reset_ipc".into(),
        args: Vec::new(),
        result: Type::Void,
        volatility: Volatility::Volatile,
        strict: true,
        call: Rc::new(move |_, _| {
            if !ctx.superuser {
                return Err(QueryError::new(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    "permission denied for function pgipc_stat_reset_ipc",
                ));
            }
            pgipc_ipc_stats::reset(&region(&ctx)?);
            Ok(Datum::Void)
        }),
    }
}
