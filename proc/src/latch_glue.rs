//! The PGPROC's wake-up primitive (interim: the proc's semaphore, until the `latch` crate lands).

use crate::shared::PgProc;
use pgipc_lwlock::ProcWaitSlot;

/// Initialises the slot's shared latch (creator only).
pub(crate) fn init_shared(_p: &PgProc) {}

/// Makes the calling process the owner of the slot's latch.
pub(crate) fn own(_p: &PgProc) {}

/// Gives up ownership of the slot's latch (exit).
pub(crate) fn disown(_p: &PgProc) {}

/// Clears the ownership left by a dead process (postmaster reclaim).
pub(crate) fn force_disown(_p: &PgProc) {}

/// Wakes the slot's owner.
pub(crate) fn set(_p: &PgProc, slot: &ProcWaitSlot) {
    slot.sem.unlock();
}

/// Sleeps until woken (owner only).
pub(crate) fn wait(_p: &PgProc, slot: &ProcWaitSlot) {
    slot.sem.lock();
}
