//! The PGPROC's latch: ownership at slot claim and release, switching "my latch", and the
//! postmaster's clean-up after a dead owner.

use crate::shared::PgProc;
use crate::ProcError;
use pgipc_latch::{install_my_latch, Latch, OwnedLatch};
use pgipc_shmem::Shared;
use std::sync::Arc;

/// The owner's handle on its slot's latch.
pub(crate) type ProcLatch = Arc<OwnedLatch<Shared<Latch>>>;

/// Initialises the slot's shared latch (`InitSharedLatch`; creator only).
pub(crate) fn init_shared(p: &PgProc) {
    p.latch.init_shared();
}

/// Makes the calling process the owner of the slot's latch (`OwnLatch`) and its "my latch"
/// (`SwitchToSharedLatch`).
pub(crate) fn own(latch: Shared<Latch>) -> Result<ProcLatch, ProcError> {
    let owned = OwnedLatch::own(latch.clone())?;
    // Signal handlers must be able to reach it for the rest of the process's life.
    let forever: &'static Shared<Latch> = Box::leak(Box::new(latch));
    install_my_latch(forever);
    Ok(Arc::new(owned))
}

/// Gives up the slot's latch at exit (`SwitchBackToLocalLatch` + `DisownLatch`); must happen
/// before the slot goes back on a free list, where the next owner's `own` would fail.
pub(crate) fn disown(p: &PgProc, pid: i32) {
    let local: &'static Latch = Box::leak(Box::new(Latch::new()));
    install_my_latch(local);
    p.latch.reclaim_from(pid);
}

/// Clears the ownership left by a dead process (postmaster reclaim).
pub(crate) fn force_disown(p: &PgProc, pid: i32) {
    p.latch.reclaim_from(pid);
}
