//! Per-process and per-thread set-up for waiting in epoll (PostgreSQL's
//! `InitializeWaitEventSupport`): the wake-up signal is blocked and read through one signalfd.

use crate::error::WaitEventSetError;
use crate::sys;
use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

static SIGNAL_FD: OnceLock<OwnedFd> = OnceLock::new();

thread_local! {
    static BLOCKED_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Prepares this process for waiting: blocks `SIGURG` (the latch wake-up signal) in the calling
/// thread and creates the process's signalfd for it.
///
/// Call it early in `main`, before the process starts threads, so that every thread inherits
/// the blocked mask (a `SIGURG` delivered to a thread that has it unblocked is discarded, as its
/// default action is to ignore it). Wait sets also call it for the thread that waits, so a
/// forgotten call costs one `pthread_sigmask` per thread, not a lost wake-up. Idempotent.
pub fn initialize_wait_event_support() -> Result<(), WaitEventSetError> {
    ensure_thread_ready()?;
    signal_fd().map(|_| ())
}

/// Blocks the wake-up signal in this thread, once.
pub(crate) fn ensure_thread_ready() -> Result<(), WaitEventSetError> {
    if !BLOCKED_HERE.with(Cell::get) {
        sys::block_wakeup_signal()?;
        BLOCKED_HERE.with(|b| b.set(true));
    }
    Ok(())
}

/// The process's signalfd for the wake-up signal, created on first use.
pub(crate) fn signal_fd() -> Result<BorrowedFd<'static>, WaitEventSetError> {
    if let Some(fd) = SIGNAL_FD.get() {
        return Ok(fd.as_fd());
    }
    let fd = sys::wakeup_signalfd()?;
    // A racing thread may have won; its descriptor is as good as ours (ours is closed).
    Ok(SIGNAL_FD.get_or_init(|| fd).as_fd())
}
