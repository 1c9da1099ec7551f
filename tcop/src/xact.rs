//! The session's transaction on the ProcArray (PostgreSQL's `xact.c` and `snapmgr.c`, the
//! parts pgipc runs): a transaction id assigned lazily (`GetNewTransactionId` on
//! `pg_current_xact_id()`), a snapshot taken at each SELECT's start (READ COMMITTED) or
//! at the transaction's first SELECT (REPEATABLE READ and SERIALIZABLE, chosen by
//! `transaction_isolation` as it stands at that first snapshot; utility statements such as
//! BEGIN, SET and SHOW take none, as in PostgreSQL),
//! `ProcArrayEndTransaction` when the transaction ends (at ReadyForQuery outside a block, and
//! at exit), and MyProc's `xmin` cleared between statements.
//!
//! Process-local state: the backend is single-threaded.

use pgipc_proc::{ProcNumber, TransactionId, INVALID_TRANSACTION_ID};
use pgipc_procarray::{ProcArray, Snapshot};
use pgipc_query::{sqlstate, PgSnapshot, QueryError, Result};
use std::cell::RefCell;

struct Xact {
    pa: ProcArray,
    procno: ProcNumber,
    xid: TransactionId,
    snap: Snapshot,
    have_snap: bool,
    /// REPEATABLE READ or SERIALIZABLE: one snapshot for the whole transaction.
    per_transaction: bool,
    /// A statement of this transaction took a snapshot (PostgreSQL's `FirstSnapshotSet`):
    /// its isolation level and read-write mode can no longer change.
    first_snapshot_set: bool,
}

thread_local! {
    static XACT: RefCell<Option<Xact>> = const { RefCell::new(None) };
}

fn internal(e: impl std::fmt::Display) -> QueryError {
    QueryError::new(sqlstate::INTERNAL_ERROR, e.to_string())
}

/// Starts tracking the session's transactions on `pa` for `procno`, and ends an open one at
/// exit (registered after the process joined the ProcArray, so it runs before it leaves).
pub(crate) fn init(pa: ProcArray, procno: ProcNumber) -> std::result::Result<(), String> {
    XACT.with(|x| {
        *x.borrow_mut() = Some(Xact {
            pa,
            procno,
            xid: INVALID_TRANSACTION_ID,
            snap: Snapshot::new(),
            have_snap: false,
            per_transaction: false,
            first_snapshot_set: false,
        })
    });
    pgipc_ipc::on_shmem_exit(|_| end_transaction())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A transaction starts: no snapshot yet.
pub(crate) fn begin() {
    XACT.with(|x| {
        if let Some(x) = x.borrow_mut().as_mut() {
            x.per_transaction = false;
            x.have_snap = false;
            x.first_snapshot_set = false;
        }
    });
}

/// A statement that reads data starts: a fresh snapshot in READ COMMITTED, the transaction's
/// first one kept in REPEATABLE READ / SERIALIZABLE (`GetTransactionSnapshot`);
/// `isolation` is `transaction_isolation`'s value, which counts at the first snapshot.
pub(crate) fn statement_start(isolation: &str) {
    XACT.with(|x| {
        if let Some(x) = x.borrow_mut().as_mut() {
            if !x.first_snapshot_set {
                x.per_transaction = matches!(isolation, "repeatable read" | "serializable");
            }
            if x.per_transaction && x.have_snap {
                return;
            }
            x.have_snap = x.pa.get_snapshot_data(x.procno, &mut x.snap).is_ok();
            x.first_snapshot_set |= x.have_snap;
        }
    });
}

/// Whether the transaction has taken its first snapshot (`FirstSnapshotSet`).
pub(crate) fn first_snapshot_set() -> bool {
    XACT.with(|x| x.borrow().as_ref().is_some_and(|x| x.first_snapshot_set))
}

/// The session is idle: outside a transaction block the transaction ends
/// (`ProcArrayEndTransaction`); inside one, the statement's snapshot is released and MyProc's
/// xmin cleared (`SnapshotResetXmin`).
pub(crate) fn idle(in_block: bool) {
    if !in_block {
        end_transaction();
        return;
    }
    XACT.with(|x| {
        if let Some(x) = x.borrow_mut().as_mut() {
            if x.per_transaction {
                // The transaction's snapshot, and its xmin, stay until the end.
                return;
            }
            x.have_snap = false;
            let _ = x.pa.clear_xmin(x.procno);
        }
    });
}

/// Ends the transaction (commit and abort alike: there is no commit log).
pub(crate) fn end_transaction() {
    XACT.with(|x| {
        // At exit the state may be borrowed by the statement that failed FATAL; the
        // ProcArray removal then clears the xid.
        let Ok(mut b) = x.try_borrow_mut() else {
            return;
        };
        if let Some(x) = b.as_mut() {
            let _ = x.pa.end_transaction(x.procno, x.xid);
            x.xid = INVALID_TRANSACTION_ID;
            x.have_snap = false;
            x.per_transaction = false;
            x.first_snapshot_set = false;
            let _ = x.pa.clear_xmin(x.procno);
        }
    });
}

fn full(pa: &ProcArray, xid: TransactionId) -> u64 {
    pa.read_next_full_transaction_id().relative(xid).0
}

/// `pg_current_xact_id()` (`assign`) / `pg_current_xact_id_if_assigned()`: the transaction's
/// full id, assigned now if it has none and `assign` is set.
pub(crate) fn current_xact_id(assign: bool) -> Result<Option<u64>> {
    XACT.with(|x| {
        let mut b = x.borrow_mut();
        let x = b
            .as_mut()
            .ok_or_else(|| internal("the session has no transaction state"))?;
        if x.xid == INVALID_TRANSACTION_ID {
            if !assign {
                return Ok(None);
            }
            x.xid =
                x.pa.assign_transaction_id(x.procno, false)
                    .map_err(internal)?;
        }
        Ok(Some(full(&x.pa, x.xid)))
    })
}

/// A snapshot as `pg_current_snapshot` shows it: full ids, xip sorted without duplicates
/// (subtransaction ids are not listed, as in PostgreSQL).
fn pg_snapshot(pa: &ProcArray, s: &Snapshot) -> PgSnapshot {
    PgSnapshot::new(
        full(pa, s.xmin),
        full(pa, s.xmax),
        s.xip.iter().map(|&x| full(pa, x)).collect(),
    )
}

/// `pg_current_snapshot()`: the statement's snapshot.
pub(crate) fn current_snapshot() -> Result<PgSnapshot> {
    XACT.with(|x| {
        let mut b = x.borrow_mut();
        let x = b
            .as_mut()
            .ok_or_else(|| internal("the session has no transaction state"))?;
        if !x.have_snap {
            x.pa.get_snapshot_data(x.procno, &mut x.snap)
                .map_err(internal)?;
            x.have_snap = true;
            x.first_snapshot_set = true;
        }
        Ok(pg_snapshot(&x.pa, &x.snap))
    })
}
