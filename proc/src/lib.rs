//! The PGPROC table: one shared slot per process that takes part in transactions or locking.
//!
//! Mirrors PostgreSQL's `storage/lmgr/proc.c` (slot management and sleep/wake-up; the
//! heavyweight-lock parts of that file are out of scope). A process gets its slot from the free
//! list of its kind with [`init_process`] (or an auxiliary slot with [`init_auxiliary_process`]),
//! and an `on_shmem_exit` callback (crate `pgipc-ipc`) puts it back when the process exits. The
//! postmaster can give back the slot of a process that died without exiting cleanly with
//! [`ProcGlobal::reclaim_dead_process`].
//!
//! ```text
//!  "Proc Header" (ProcHdr)            "PGPROC structures"
//!  ┌─────────────────────────┐        ┌──────────────────────────────────────────────┐
//!  │ free[Backends]  head,tail ──┐    │ PgProc[0 .. max_connections)     Backends    │
//!  │ free[Autovac]   head,tail   │    │ PgProc[.. + autovac + 2)         Autovac     │
//!  │ free[BgWorkers] head,tail   └───►│ PgProc[.. + max_worker_processes) BgWorkers  │
//!  │ free[WalSenders]head,tail        │ PgProc[.. MaxBackends)           WalSenders  │
//!  │ proc_array_group_first (CAS)     │ PgProc[.. + 38)                  auxiliary   │
//!  │ all_proc_count, max_backends     │ PgProc[.. TotalProcs)            prepared    │
//!  └─────────────────────────┘        ├──────────────────────────────────────────────┤
//!  "ProcStructLock spinlock"          │ xids[TotalProcs]          dense, by pgxactoff │
//!   guards the free lists and         │ subxidStates[TotalProcs]  (kept by procarray) │
//!   the aux slots' pid claims         │ statusFlags[TotalProcs]                       │
//!                                     └──────────────────────────────────────────────┘
//!  wait slots (lwlock crate, reserved by ipci): ProcWaitSlot[procno] = semaphore + wait event
//! ```
//!
//! Free lists are singly linked through proc numbers (`free_next`), popped at the head and
//! pushed at the tail, so a released slot is reused last. A slot never changes list.
//!
//! # Concurrency contract
//! * Free lists and the auxiliary slots' `pid` claims change only under the
//!   "ProcStructLock spinlock" (a spinlock because LWLocks need a PGPROC to sleep on).
//! * A slot's identity fields are written by its owner while it sets itself up or exits, or by
//!   the postmaster's reclaim after the owner died; everyone else only reads them.
//! * Transaction fields (`xid`, `xmin`, `status_flags`, subxids, `pgxactoff`) follow the
//!   `procarray` crate's locking rules, documented on [`PgProc`].
//! * The semaphore of proc number *n* is `ProcWaitSlot` *n* of the `lwlock` crate; only the
//!   owner sleeps on it.
//! * Each slot embeds a shared `Latch` (crate `pgipc-latch`), initialised once by the creator.
//!   Its ownership follows the slot's: taken in [`init_process`], given up in the exit callback
//!   *before* the slot returns to its free list; anyone may set it
//!   ([`ProcGlobal::proc_send_signal`]).
//!
//! # What this crate does not do
//! * No heavyweight locks, deadlock detection, fast-path lock array, lock groups or
//!   prepared-transaction bookkeeping (prepared dummies are sized and laid out, never handed
//!   out).
//! * It does not add the process to the ProcArray: `procarray` does (PostgreSQL's
//!   `InitProcessPhase2`), which breaks the proc ↔ procarray cycle.
//! * No `RegisterPostmasterChildActive` (pmsignal comes later in the layering; the caller does
//!   it) and no `InitLWLockAccess` beyond recording the proc number in the segment handle.
//! * The postmaster-side reclaim is not a substitute for a crash restart when the dead process
//!   may have held an LWLock or a spinlock.
//!
//! Key items: [`shmem_size`], [`shmem_init`], [`ProcGlobal`], [`init_process`],
//! [`init_auxiliary_process`], [`MyProc`], [`PgProc`], [`ProcConfig`], [`BackendType`].

mod config;
mod error;
mod global;
mod latch_glue;
mod process;
mod shared;

pub use config::{
    BackendType, ProcConfig, MAX_BACKENDS, MAX_IO_WORKERS, NUM_AUXILIARY_PROCS,
    NUM_SPECIAL_WORKER_PROCS,
};
pub use error::ProcError;
pub use global::{
    shmem_init, shmem_size, ProcGlobal, Reclaim, PGPROC_STRUCTURES_NAME, PROC_HEADER_NAME,
    PROC_STRUCT_LOCK_NAME,
};
pub use process::{init_auxiliary_process, init_process, my_proc_number, MyProc};
pub use shared::{
    status_flags, FreeList, FreeListHead, LocalTransactionId, Oid, PgProc, ProcHdr, ProcNumber,
    TransactionId, XidCacheStatus, INVALID_PROC_NUMBER, INVALID_TRANSACTION_ID,
    PGPROC_MAX_CACHED_SUBXIDS,
};

#[cfg(test)]
mod tests;
