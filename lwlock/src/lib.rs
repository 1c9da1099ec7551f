//! Locks that work across processes: a spinlock, a futex semaphore and PostgreSQL's LWLock.
//!
//! Mirrors PostgreSQL's `storage/lmgr/s_lock.c`, `storage/lmgr/lwlock.c` and
//! `port/posix_sema.c`. Everything here lives in memory that several processes map, maybe at
//! different addresses, so the types hold only atomics and indexes, and every sleep is a
//! *shared* futex wait.
//!
//! ```text
//!  shared memory                                          each process
//!  ┌──────────────────────────────┐
//!  │ LWLock (16 B)                │     acquire(mode):
//!  │  state: EXCL | nshared       │       CAS on `state`; if busy → queue self,
//!  │         | HAS_WAITERS        │       try once more, then sleep on own semaphore
//!  │         | WAKE_PENDING       │
//!  │         | LIST_LOCKED ──┐    │     release:
//!  │  head ─┐   tail ─┐      │    │       fetch_sub; if waiters and none woken yet →
//!  └────────┼─────────┼──────┼────┘       take LIST_LOCKED, unlink the runnable waiters,
//!           ▼         ▼      │            post their semaphores
//!  WaitSlot[procno] = CachePadded<ProcWaitSlot> (128 B each, one per proc number)
//!  ┌───────────────┬───────────────┬───────────────┐
//!  │ sem (futex)   │ sem           │ sem           │
//!  │ next/prev ───►│ next/prev ───►│ ...           │   links are proc numbers + 1
//!  │ wait_event    │ wait_event    │               │
//!  └───────────────┴───────────────┴───────────────┘
//! ```
//!
//! # Concurrency contract
//! * [`SpinLock`]: any process; hold it for a few instructions; a wait longer than
//!   [`DEFAULT_STUCK_TIMEOUT`] is reported as a stuck spinlock and aborts the process (PostgreSQL
//!   PANICs), or returns [`StuckSpinlock`] from [`SpinLock::lock_within`].
//! * [`LWLock`]: any process with an [`LWLockProc`] identity. Only the owner of proc number *n*
//!   sleeps on slot *n*; anyone posts it. The wait list is edited only under the lock's
//!   `LIST_LOCKED` bit. A waiter records `PG_WAIT_LWLOCK | tranche` in its slot's
//!   `wait_event_info` while it sleeps, so other processes can see what it waits for.
//! * Queueing is fair-ish as in PostgreSQL: a release wakes the first waiter if it wants
//!   exclusive, otherwise all shared waiters; woken waiters retry and may lose to a newcomer.
//!
//! # What this crate does not do
//! * It allocates nothing: the `shmem` crate places the main LWLock array and the wait slots.
//! * No deadlock detection and no `LWLockReleaseAll`: guards release on drop, and a process
//!   that exits holding an LWLock is a crash the postmaster answers with a restart.
//! * No `LWLockWaitForVar`/`LWLockUpdateVar` (WAL insertion locks are out of scope).
//!
//! Key types: [`SpinLock`], [`PgSemaphore`], [`LWLock`], [`LWLockPadded`], [`ProcWaitSlot`],
//! [`WaitSlot`], [`LWLockProc`],
//! [`MainLWLockId`].

mod lwlock;
mod sema;
mod spin;
mod sys;
pub mod tranche;

/// Shared (not private) futex wait and wake on a word that other processes map: the one place the
/// workspace makes these system calls (the semaphore here, the latch, ProcSignal's barrier
/// condition variable).
pub mod futex {
    pub use crate::sys::{wait, wake, wake_all};
}

/// crossbeam-utils' cache-line padding, re-exported for the shared arrays of later crates.
pub use crossbeam_utils::CachePadded;
pub use lwlock::{
    LWLock, LWLockError, LWLockGuard, LWLockMode, LWLockPadded, LWLockProc, ProcWaitSlot, WaitSlot,
    PG_WAIT_LWLOCK,
};
pub use sema::PgSemaphore;
pub use spin::{SpinDelay, SpinLock, SpinLockGuard, StuckSpinlock, DEFAULT_STUCK_TIMEOUT};
pub use tranche::{
    register_tranche, tranche_name, MainLWLockId, TrancheId, NUM_INDIVIDUAL_LWLOCKS,
};

#[cfg(test)]
mod tests;
