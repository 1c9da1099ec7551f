//! Signal handlers of a client backend (PostgreSQL's `StatementCancelHandler`, `die`,
//! `SignalHandlerForConfigReload`, `quickdie`): each one only raises a flag and sets the
//! process latch; the session loop does the work at its next interrupt check.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};

/// `QueryCancelPending`: SIGINT arrived.
static CANCEL: AtomicBool = AtomicBool::new(false);
/// `ProcDiePending`: SIGTERM arrived.
static DIE: AtomicBool = AtomicBool::new(false);
/// `ConfigReloadPending`: SIGHUP arrived.
static RELOAD: AtomicBool = AtomicBool::new(false);

/// Which flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    Cancel,
    Die,
    Reload,
}

fn flag(p: Pending) -> &'static AtomicBool {
    match p {
        Pending::Cancel => &CANCEL,
        Pending::Die => &DIE,
        Pending::Reload => &RELOAD,
    }
}

/// Whether `p` is raised; clears it.
pub(crate) fn take(p: Pending) -> bool {
    let f = flag(p);
    f.load(Ordering::Relaxed) && f.swap(false, Ordering::SeqCst)
}

/// Whether `p` is raised (left raised).
pub(crate) fn peek(p: Pending) -> bool {
    flag(p).load(Ordering::SeqCst)
}

extern "C" fn on_signal(sig: i32) {
    let saved = nix::errno::Errno::last_raw();
    let p = match sig {
        s if s == Signal::SIGINT as i32 => Some(Pending::Cancel),
        s if s == Signal::SIGTERM as i32 => Some(Pending::Die),
        s if s == Signal::SIGHUP as i32 => Some(Pending::Reload),
        _ => None,
    };
    if let Some(p) = p {
        flag(p).store(true, Ordering::SeqCst);
    }
    pgipc_latch::set_my_latch();
    nix::errno::Errno::set_raw(saved);
}

/// SIGQUIT: leave at once without running exit callbacks (shared memory may be corrupt; the
/// postmaster reinitialises it). PostgreSQL tries to tell the client first; a handler cannot
/// do that safely here, so the client just sees the connection close.
extern "C" fn on_quit(_sig: i32) {
    // SAFETY: `_exit` is async-signal-safe and takes no pointers.
    unsafe { libc::_exit(2) }
}

/// Installs the handlers: SIGINT, SIGTERM, SIGHUP raise flags, SIGQUIT exits with code 2,
/// SIGPIPE is ignored (writes to a vanished client fail with EPIPE instead). No `SA_RESTART`:
/// a blocking `poll` returns `EINTR`, so a signal wakes the start-up packet read too.
pub(crate) fn install_handlers() -> nix::Result<()> {
    let flags = SaFlags::empty();
    let set = |sig, h| {
        let act = SigAction::new(h, flags, SigSet::empty());
        // SAFETY: the handlers only touch atomics, set the latch (async-signal-safe) and
        // preserve errno, or call `_exit`.
        unsafe { sigaction(sig, &act) }.map(drop)
    };
    set(Signal::SIGINT, SigHandler::Handler(on_signal))?;
    set(Signal::SIGTERM, SigHandler::Handler(on_signal))?;
    set(Signal::SIGHUP, SigHandler::Handler(on_signal))?;
    set(Signal::SIGQUIT, SigHandler::Handler(on_quit))?;
    set(Signal::SIGPIPE, SigHandler::SigIgn)?;
    Ok(())
}
