//! The session's transaction on the ProcArray (PostgreSQL's `xact.c` and `snapmgr.c`, the
//! parts pgipc runs): a transaction id assigned lazily (`GetNewTransactionId` on
//! `pg_current_xact_id()`), a snapshot taken at each SELECT's start (READ COMMITTED) or
//! at the transaction's first SELECT (REPEATABLE READ and SERIALIZABLE, chosen by
//! `transaction_isolation` as it stands at that first snapshot; utility statements such as
//! BEGIN, SET and SHOW take none, as in PostgreSQL),
//! `ProcArrayEndTransaction` when the transaction ends (at ReadyForQuery outside a block, and
//! at exit, recording the newest id of the transaction and its subtransactions), and MyProc's
//! `xmin` cleared between statements.
//!
//! Savepoints are subtransactions: one that asks for an id (`pgipc_current_subxact_id()`,
//! what a write would do) gets one after its parents, into the PGPROC subxid cache (64, then
//! the overflow flag); RELEASE keeps the ids running as children of the parent; ROLLBACK TO
//! removes the aborted ids and their committed children from the cache
//! (`XidCacheRemoveRunningXids`). `pg_current_xact_id()` names the top-level transaction
//! only, as in PostgreSQL.
//!
//! Process-local state: the backend is single-threaded.

use pgipc_proc::{ProcNumber, TransactionId, INVALID_TRANSACTION_ID};
use pgipc_procarray::{ProcArray, Snapshot};
use pgipc_query::{sqlstate, PgSnapshot, QueryError, Result};
use std::cell::RefCell;

/// One open subtransaction (a savepoint): its id, if it took one, and the ids of its
/// committed (released) children, which abort with it (`childXids`).
struct SubXact {
    xid: TransactionId,
    children: Vec<TransactionId>,
}

struct Xact {
    pa: ProcArray,
    procno: ProcNumber,
    xid: TransactionId,
    /// The newest id the transaction was given (its own or a subtransaction's): what
    /// `ProcArrayEndTransaction` records as latestCompletedXid.
    latest_xid: TransactionId,
    /// Open subtransactions, outermost first (one per savepoint).
    subxacts: Vec<SubXact>,
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
            latest_xid: INVALID_TRANSACTION_ID,
            subxacts: Vec::new(),
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
            x.subxacts.clear();
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
            let latest = if x.xid == INVALID_TRANSACTION_ID {
                INVALID_TRANSACTION_ID
            } else {
                x.latest_xid
            };
            let _ = x.pa.end_transaction(x.procno, latest);
            x.xid = INVALID_TRANSACTION_ID;
            x.latest_xid = INVALID_TRANSACTION_ID;
            x.subxacts.clear();
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
            x.latest_xid = x.xid;
        }
        Ok(Some(full(&x.pa, x.xid)))
    })
}

/// A savepoint starts a subtransaction (`DefineSavepoint`, `StartSubTransaction`); it has
/// no id until it asks for one.
pub(crate) fn subxact_start() {
    XACT.with(|x| {
        if let Some(x) = x.borrow_mut().as_mut() {
            x.subxacts.push(SubXact {
                xid: INVALID_TRANSACTION_ID,
                children: Vec::new(),
            });
        }
    });
}

/// `RELEASE`: the subtransactions above depth `keep` commit into their parents
/// (`CommitSubTransaction`): their ids join the parent's children and stay in the PGPROC
/// subxid cache, running until the top-level transaction ends.
pub(crate) fn subxact_release(keep: usize) {
    XACT.with(|x| {
        if let Some(x) = x.borrow_mut().as_mut() {
            while x.subxacts.len() > keep {
                let Some(s) = x.subxacts.pop() else { break };
                if let Some(parent) = x.subxacts.last_mut() {
                    if s.xid != INVALID_TRANSACTION_ID {
                        parent.children.push(s.xid);
                    }
                    parent.children.extend(s.children);
                }
            }
        }
    });
}

/// `ROLLBACK TO`: the subtransactions at and above depth `at` abort, innermost first
/// (`AbortSubTransaction`: each one with an id leaves the subxid cache with its committed
/// children through `XidCacheRemoveRunningXids`), and the savepoint's subtransaction starts
/// again, without an id.
pub(crate) fn subxact_rollback_to(at: usize) -> Result<()> {
    XACT.with(|x| {
        let mut b = x.borrow_mut();
        let Some(x) = b.as_mut() else { return Ok(()) };
        while x.subxacts.len() > at {
            let Some(s) = x.subxacts.pop() else { break };
            if s.xid != INVALID_TRANSACTION_ID {
                // Ids are handed out in order: the newest is the last child, or the xid.
                let latest = s.children.last().copied().unwrap_or(s.xid);
                x.pa.xid_cache_remove_running_xids(x.procno, s.xid, &s.children, latest)
                    .map_err(internal)?;
            }
        }
        x.subxacts.push(SubXact {
            xid: INVALID_TRANSACTION_ID,
            children: Vec::new(),
        });
        Ok(())
    })
}

/// The current subtransaction's full id, assigned now (parents first, as
/// `AssignTransactionId` does) if it has none: what a write inside a savepoint takes
/// (`GetCurrentFullTransactionId`). Outside any savepoint it is the top-level id.
pub(crate) fn current_subxact_id() -> Result<u64> {
    XACT.with(|x| {
        let mut b = x.borrow_mut();
        let x = b
            .as_mut()
            .ok_or_else(|| internal("the session has no transaction state"))?;
        if x.xid == INVALID_TRANSACTION_ID {
            x.xid =
                x.pa.assign_transaction_id(x.procno, false)
                    .map_err(internal)?;
            x.latest_xid = x.xid;
        }
        let mut newest = x.xid;
        for k in 0..x.subxacts.len() {
            if x.subxacts[k].xid == INVALID_TRANSACTION_ID {
                let id =
                    x.pa.assign_transaction_id(x.procno, true)
                        .map_err(internal)?;
                x.subxacts[k].xid = id;
                x.latest_xid = id;
            }
            newest = x.subxacts[k].xid;
        }
        Ok(full(&x.pa, newest))
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
