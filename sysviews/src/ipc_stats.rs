//! `pgipc_stat_ipc`: the IPC counters of every live process (pgipc's own view; PostgreSQL has
//! none), one row per process and counter, from the "IPC Statistics" region; and
//! `pgipc_stat_reset_ipc()`, which zeroes them (superusers only, as PostgreSQL's
//! `pg_stat_reset_shared`). Totals are a GROUP BY away:
//! `SELECT subsystem, counter, sum(value) FROM pgipc_stat_ipc GROUP BY 1, 2`.

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
