//! `pg_stat_get_activity(pid)`: PostgreSQL's set-returning function behind `pg_stat_activity`
//! and `pg_stat_ssl` — the Backend Status Array entry of the process `pid`, or of every
//! process with NULL (or -1, as PostgreSQL reads NULL), in the function's own column order (PostgreSQL 18's OUT parameters).
//!
//! With it, the per-backend accessors PostgreSQL 17+ keys by proc number:
//! `pg_stat_get_backend_idset()` (setof int4, the proc numbers of the entries in use),
//! `pg_stat_get_backend_pid(int4)`, and `pg_stat_get_backend_subxact(int4)` (PostgreSQL 16+:
//! one row of `subxact_count`, `subxact_overflowed`, the PGPROC subxid cache; NULLs for a
//! number without an entry).
//!
//! Each row is built from the `pg_stat_activity` row of the same entry (so both show the
//! same values); the SSL and GSSAPI columns say "none" (`ssl` and `gss_*` false, the rest
//! NULL): connections here carry neither.

use crate::activity::{activity_row, current_status};
use crate::SysContext;
use pgipc_query::{Column, Datum, RowIter, ServerFunction, SetFunction, Type, Volatility};
use std::rc::Rc;

/// The OUT columns, in order.
const COLUMNS: &[(&str, Type)] = &[
    ("datid", Type::Oid),
    ("pid", Type::Int4),
    ("usesysid", Type::Oid),
    ("application_name", Type::Text),
    ("state", Type::Text),
    ("query", Type::Text),
    ("wait_event_type", Type::Text),
    ("wait_event", Type::Text),
    ("xact_start", Type::Timestamptz),
    ("query_start", Type::Timestamptz),
    ("backend_start", Type::Timestamptz),
    ("state_change", Type::Timestamptz),
    ("client_addr", Type::Inet),
    ("client_hostname", Type::Text),
    ("client_port", Type::Int4),
    ("backend_xid", Type::Xid),
    ("backend_xmin", Type::Xid),
    ("backend_type", Type::Text),
    ("ssl", Type::Bool),
    ("sslversion", Type::Text),
    ("sslcipher", Type::Text),
    ("sslbits", Type::Int4),
    ("ssl_client_dn", Type::Text),
    ("ssl_client_serial", Type::Numeric),
    ("ssl_issuer_dn", Type::Text),
    ("gss_auth", Type::Bool),
    ("gss_princ", Type::Text),
    ("gss_enc", Type::Bool),
    ("gss_delegation", Type::Bool),
    ("leader_pid", Type::Int4),
    ("query_id", Type::Int8),
];

/// For each OUT column: where its value is in a `pg_stat_activity` row, or the constant
/// it has (`Err`).
const FROM_ACTIVITY: [Result<usize, Option<bool>>; 31] = [
    Ok(0),            // datid
    Ok(2),            // pid
    Ok(4),            // usesysid
    Ok(6),            // application_name
    Ok(16),           // state
    Ok(20),           // query
    Ok(14),           // wait_event_type
    Ok(15),           // wait_event
    Ok(11),           // xact_start
    Ok(12),           // query_start
    Ok(10),           // backend_start
    Ok(13),           // state_change
    Ok(7),            // client_addr
    Ok(8),            // client_hostname
    Ok(9),            // client_port
    Ok(17),           // backend_xid
    Ok(18),           // backend_xmin
    Ok(21),           // backend_type
    Err(Some(false)), // ssl
    Err(None),        // sslversion
    Err(None),        // sslcipher
    Err(None),        // sslbits
    Err(None),        // ssl_client_dn
    Err(None),        // ssl_client_serial
    Err(None),        // ssl_issuer_dn
    Err(Some(false)), // gss_auth
    Err(None),        // gss_princ
    Err(Some(false)), // gss_enc
    Err(Some(false)), // gss_delegation
    Ok(3),            // leader_pid
    Ok(19),           // query_id
];

/// The function, bound to `ctx` (not strict: a NULL pid, like -1, lists every process).
pub(crate) fn pg_stat_get_activity(ctx: &Rc<SysContext>) -> SetFunction {
    let ctx = ctx.clone();
    SetFunction {
        name: "pg_stat_get_activity".into(),
        args: vec![Type::Int4],
        columns: COLUMNS.iter().map(|(n, t)| Column::new(*n, *t)).collect(),
        strict: false,
        call: Rc::new(move |_, args| {
            // NULL or -1: every process (PostgreSQL reads NULL as -1).
            let only = match args.first() {
                Some(Datum::Int4(pid)) if *pid != -1 => Some(*pid),
                _ => None,
            };
            let rows: Vec<_> = current_status(&ctx)?
                .into_iter()
                .filter(|r| only.is_none_or(|p| p == r.pid))
                .map(|r| Ok(reorder(activity_row(&ctx, r))))
                .collect();
            Ok(Box::new(rows.into_iter()) as RowIter)
        }),
    }
}

/// The entry at proc number `args[0]`, if one is in use.
fn entry_at(
    ctx: &SysContext,
    args: &[Datum],
) -> pgipc_query::Result<Option<pgipc_backend_status::BackendStatus>> {
    let Some(Datum::Int4(n)) = args.first() else {
        return Ok(None);
    };
    Ok(current_status(ctx)?
        .into_iter()
        .find(|r| i64::from(r.proc_number) == i64::from(*n)))
}

/// `pg_stat_get_backend_idset()`: the proc numbers of the entries in use.
pub(crate) fn pg_stat_get_backend_idset(ctx: &Rc<SysContext>) -> SetFunction {
    let ctx = ctx.clone();
    SetFunction {
        name: "pg_stat_get_backend_idset".into(),
        args: Vec::new(),
        columns: vec![Column::new("pg_stat_get_backend_idset", Type::Int4)],
        strict: true,
        call: Rc::new(move |_, _| {
            let ids: Vec<_> = current_status(&ctx)?
                .into_iter()
                .map(|r| Ok(vec![Datum::Int4(r.proc_number as i32)]))
                .collect();
            Ok(Box::new(ids.into_iter()) as RowIter)
        }),
    }
}

/// `pg_stat_get_backend_pid(int4)`: the pid at a proc number (NULL without an entry).
pub(crate) fn pg_stat_get_backend_pid(ctx: &Rc<SysContext>) -> ServerFunction {
    let ctx = ctx.clone();
    ServerFunction {
        name: "pg_stat_get_backend_pid".into(),
        args: vec![Type::Int4],
        result: Type::Int4,
        volatility: Volatility::Stable,
        strict: true,
        call: Rc::new(move |_, args| {
            Ok(entry_at(&ctx, args)?.map_or(Datum::Null, |r| Datum::Int4(r.pid)))
        }),
    }
}

/// `pg_stat_get_backend_subxact(int4)`: one row, the subxid cache's count and overflow flag
/// at a proc number (NULLs without an entry).
pub(crate) fn pg_stat_get_backend_subxact(ctx: &Rc<SysContext>) -> SetFunction {
    let ctx = ctx.clone();
    SetFunction {
        name: "pg_stat_get_backend_subxact".into(),
        args: vec![Type::Int4],
        columns: vec![
            Column::new("subxact_count", Type::Int4),
            Column::new("subxact_overflowed", Type::Bool),
        ],
        strict: true,
        call: Rc::new(move |_, args| {
            let row = match entry_at(&ctx, args)? {
                Some(r) => vec![
                    Datum::Int4(i32::from(r.subxact_count)),
                    Datum::Bool(r.subxact_overflowed),
                ],
                None => vec![Datum::Null, Datum::Null],
            };
            Ok(Box::new(std::iter::once(Ok(row))) as RowIter)
        }),
    }
}

fn reorder(mut activity: Vec<Datum>) -> Vec<Datum> {
    FROM_ACTIVITY
        .iter()
        .map(|src| match src {
            Ok(k) => activity
                .get_mut(*k)
                .map_or(Datum::Null, |d| std::mem::replace(d, Datum::Null)),
            Err(Some(b)) => Datum::Bool(*b),
            Err(None) => Datum::Null,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_activity_column_is_used_once_and_every_out_column_is_mapped() {
        assert_eq!(COLUMNS.len(), FROM_ACTIVITY.len());
        let mut used: Vec<usize> = FROM_ACTIVITY.iter().filter_map(|s| s.ok()).collect();
        used.sort_unstable();
        // Every pg_stat_activity column but datname and usename (joined from catalogs).
        let expected: Vec<usize> = (0..22).filter(|k| ![1, 5].contains(k)).collect();
        assert_eq!(used, expected);
        let row: Vec<Datum> = (0..22).map(Datum::Int4).collect();
        let out = reorder(row);
        assert_eq!(out[1], Datum::Int4(2));
        assert_eq!(out[4], Datum::Int4(16));
        assert_eq!(out[18], Datum::Bool(false));
        assert_eq!(out[30], Datum::Int4(19));
    }
}
