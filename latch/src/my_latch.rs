//! "My latch": the one latch a process's signal handlers set (PostgreSQL's `MyLatch`).
//!
//! A process first uses a process-local latch, then switches to its proc slot's shared latch
//! once it has one, and back to a local one when it gives the slot up (PostgreSQL's
//! `SwitchToSharedLatch` / `SwitchBackToLocalLatch`). Signal handlers just call
//! [`set_my_latch`]. The slot holds a `&'static Latch`, so a handler can never see a latch that
//! was freed: a process keeps what it installs for its whole life (leak a `Box`, or a clone of
//! the shared-memory handle).

use crate::latch::Latch;
use std::sync::atomic::{AtomicPtr, Ordering};

static MY_LATCH: AtomicPtr<Latch> = AtomicPtr::new(std::ptr::null_mut());

/// Makes `latch` this process's latch and sets it (so that the owner runs one pass of its
/// loop and notices whatever was signalled during the switch). Returns the previous one.
pub fn install_my_latch(latch: &'static Latch) -> Option<&'static Latch> {
    let prev = MY_LATCH.swap(latch as *const Latch as *mut Latch, Ordering::AcqRel);
    latch.set();
    // SAFETY: only `&'static Latch` values are ever stored in MY_LATCH.
    unsafe { prev.as_ref() }
}

/// This process's latch, if one is installed.
pub fn my_latch() -> Option<&'static Latch> {
    // SAFETY: only `&'static Latch` values are ever stored in MY_LATCH.
    unsafe { MY_LATCH.load(Ordering::Acquire).as_ref() }
}

/// Sets this process's latch, if any. Async-signal-safe: made for signal handlers.
pub fn set_my_latch() {
    if let Some(l) = my_latch() {
        l.set();
    }
}
