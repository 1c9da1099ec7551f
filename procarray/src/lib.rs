//! The ProcArray: which processes may run transactions, which transactions are running, and the
//! MVCC snapshots built from that.
//!
//! Mirrors PostgreSQL's `storage/ipc/procarray.c` (the parts outside hot standby), plus the
//! transaction-id counter of `access/transam/varsup.c` and the comparisons of `transam.c`.
//!
//! ```text
//!  "Proc Array" (ProcArrayHdr + pgprocnos)      "PGPROC structures" (crate pgipc-proc)
//!  num_procs = 4                                  dense mirrors, indexed by position:
//!  pgprocnos: [ 0 | 3 | 7 | 12 | - | - ]          xids:          [ 0 | 731 | 0 | 733 ]
//!               │   │   │   └─┐                   subxidStates:  [ - | 2/no| - | 0/no ]
//!               ▼   ▼   ▼     ▼                   statusFlags:   [ 0 |  0  | 2 |  0  ]
//!  PgProc[0].pgxactoff = 0, PgProc[3] = 1, PgProc[7] = 2, PgProc[12] = 3
//!
//!  "TransamVariables": next_xid (XidGenLock), latest_completed_xid and
//!                      xact_completion_count (ProcArrayLock)
//! ```
//!
//! A joining proc is appended and a leaving one's place is taken by the last entry, so joining
//! and leaving move at most one entry. PostgreSQL keeps `pgprocnos` sorted instead, shifting
//! and re-pointing every later member on each join and leave: with thousands of sessions and
//! proc numbers coming back from the free list in exit order, that cost each new backend
//! about a millisecond of page faults under both locks (issue 17; figures in BENCHMARKS.md).
//!
//! Snapshots scan only the small dense arrays, not the PGPROCs. The completion counter lets a
//! process reuse its previous snapshot when no transaction ended since it was taken.
//!
//! # Concurrency contract
//! * Membership (`num_procs`, `pgprocnos`, every `pgxactoff`, moving dense entries): under
//!   ProcArrayLock exclusive **and** XidGenLock exclusive (lock order ProcArrayLock first).
//! * `xids[i]` set: only by xid assignment, under XidGenLock exclusive. `xids[i]` cleared, and
//!   `latest_completed_xid` / `xact_completion_count` changed: under ProcArrayLock exclusive
//!   (by the proc itself or by a group-clearing leader on its behalf).
//! * Readers (snapshots, in-progress checks, lookups) hold ProcArrayLock shared and load each
//!   slot once.
//! * Group xid clearing: a list of proc numbers pushed with CAS on
//!   `ProcHdr::proc_array_group_first`; followers sleep on their own semaphore
//!   (the `lwlock` crate's wait slot) and re-post wake-ups that were meant for something else.
//!
//! # What this crate does not do
//! * No hot standby (KnownAssignedXids), no replication-slot xmins, no GlobalVis caches, no
//!   prepared-transaction bookkeeping beyond `remove` with a valid `latest_xid`.
//! * No clog or pg_subtrans: [`ProcArray::transaction_id_is_in_progress`] and
//!   [`Snapshot::xid_in_snapshot`] answer conservatively for uncached subtransactions.
//! * No wraparound limits: the xid counter wraps as the comparisons expect, nothing stops it.
//! * No signalling (`CancelVirtualTransaction` and friends belong with procsignal).
//!
//! Key items: [`shmem_init`], [`ProcArray`], [`Snapshot`], [`ProcArray::get_snapshot_data`],
//! [`ProcArray::assign_transaction_id`], [`ProcArray::end_transaction`],
//! [`ProcArray::cleanup_dead_process`].

mod array;
mod lookup;
mod snapshot;
pub mod transam;
mod xact;

pub use array::{
    shmem_init, shmem_size, transam_shmem_init, transam_shmem_size, ProcArray, ProcArrayHdr,
    PROC_ARRAY_NAME, TRANSAM_VARIABLES_NAME,
};
pub use pgipc_proc::Reclaim;
pub use snapshot::{Snapshot, XidHorizons};
pub use transam::{FullTransactionId, TransamVariables};
pub use xact::{EndPath, PG_WAIT_IPC, WAIT_EVENT_PROC_ARRAY_GROUP_UPDATE};

use pgipc_proc::ProcNumber;

/// Failures of ProcArray operations.
#[derive(Debug, thiserror::Error)]
pub enum ProcArrayError {
    /// The array is full (SQLSTATE 53300; a backstop behind the PGPROC free lists).
    #[error("sorry, too many clients already")]
    TooManyClients,
    /// The proc is not a member.
    #[error("proc {procno} is not in the ProcArray")]
    NotInProcArray {
        /// The proc.
        procno: ProcNumber,
    },
    /// The proc is a member already.
    #[error("proc {procno} is already in the ProcArray")]
    AlreadyInProcArray {
        /// The proc.
        procno: ProcNumber,
    },
    /// A structure found by name was not initialised, or for other settings.
    #[error("shared structure \"{what}\" is not initialized or was made for other settings")]
    NotInitialized {
        /// Its ShmemIndex name.
        what: &'static str,
    },
    /// The PGPROC table's error.
    #[error(transparent)]
    Proc(#[from] pgipc_proc::ProcError),
    /// Registering the exit callback failed.
    #[error(transparent)]
    Ipc(#[from] pgipc_ipc::IpcError),
    /// Allocation or lookup in the segment failed.
    #[error(transparent)]
    Shmem(#[from] pgipc_shmem::ShmemError),
    /// A size overflowed.
    #[error(transparent)]
    Size(#[from] pgipc_shmem::SizeError),
    /// An injection point attached to `error` was passed (tests only).
    #[error(transparent)]
    Injection(#[from] pgipc_injection_point::InjectionError),
}

impl ProcArrayError {
    /// The SQLSTATE PostgreSQL reports for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ProcArrayError::TooManyClients => "53300",
            ProcArrayError::Proc(e) => e.sqlstate(),
            ProcArrayError::Ipc(e) => e.sqlstate(),
            ProcArrayError::Size(_) => "54000",
            ProcArrayError::Injection(e) => e.sqlstate(),
            _ => "XX000",
        }
    }
}

#[cfg(test)]
mod tests;
