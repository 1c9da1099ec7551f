//! Signal handling for the postmaster and its children. Every handler does two things only:
//! it ORs a bit into a static word and sets the process's latch (async-signal-safe both); the
//! process's main loop, which sleeps on that latch, does the work.
//!
//! ```text
//!  postmaster: SIGHUP reload │ SIGTERM smart │ SIGINT fast │ SIGQUIT immediate
//!              SIGUSR1 pmsignal │ SIGCHLD child exit │ SIGPIPE, SIGTTIN, SIGTTOU, SIGXFSZ ignored
//!  children:   start with every signal blocked; reset to defaults, SIGUSR1 = ProcSignal's
//!              handler, SIGUSR2/SIGALRM/SIGPIPE ignored, SIGQUIT = exit 2 at once (no exit
//!              callbacks: shared memory may be corrupt); each kind installs what it needs,
//!              and only then unblocks
//! ```

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use std::sync::atomic::{AtomicU32, Ordering};

/// Bits of the pending-signal word.
static PENDING: AtomicU32 = AtomicU32::new(0);

/// A signal the postmaster or a child acts on, as a bit in the pending word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Pending {
    /// SIGHUP.
    Hup = 1 << 0,
    /// SIGTERM.
    Term = 1 << 1,
    /// SIGINT.
    Int = 1 << 2,
    /// SIGQUIT.
    Quit = 1 << 3,
    /// SIGUSR1.
    Usr1 = 1 << 4,
    /// SIGUSR2.
    Usr2 = 1 << 5,
    /// SIGCHLD.
    Chld = 1 << 6,
}

fn bit_of(signo: libc::c_int) -> u32 {
    match signo {
        libc::SIGHUP => Pending::Hup as u32,
        libc::SIGTERM => Pending::Term as u32,
        libc::SIGINT => Pending::Int as u32,
        libc::SIGQUIT => Pending::Quit as u32,
        libc::SIGUSR1 => Pending::Usr1 as u32,
        libc::SIGUSR2 => Pending::Usr2 as u32,
        libc::SIGCHLD => Pending::Chld as u32,
        _ => 0,
    }
}

extern "C" fn on_signal(signo: libc::c_int) {
    // Async-signal-safe: one atomic OR and a latch set (which saves errno).
    PENDING.fetch_or(bit_of(signo), Ordering::SeqCst);
    pgipc_latch::set_my_latch();
}

extern "C" fn crash_exit(_signo: libc::c_int) {
    // PostgreSQL's SignalHandlerForCrashExit: shared memory may be corrupt, so leave at once
    // without running any exit callback; exit code 2 tells the postmaster.
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(2) };
}

fn set_handler(sig: Signal, h: SigHandler) -> nix::Result<()> {
    let act = SigAction::new(h, SaFlags::SA_RESTART, SigSet::all());
    // SAFETY: the handlers installed here only use async-signal-safe operations (an atomic OR,
    // a latch set, `_exit`), or are SIG_DFL / SIG_IGN.
    unsafe { sigaction(sig, &act) }.map(drop)
}

/// The postmaster's handlers (PostgreSQL's `PostmasterMain` signal set-up); unblocks
/// everything. The latch they set must be installed with `pgipc_latch::install_my_latch`.
pub(crate) fn install_postmaster() -> nix::Result<()> {
    for sig in [
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
    ] {
        set_handler(sig, SigHandler::Handler(on_signal))?;
    }
    for sig in [
        Signal::SIGPIPE,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGXFSZ,
        Signal::SIGALRM,
    ] {
        set_handler(sig, SigHandler::SigIgn)?;
    }
    unblock_all()
}

fn unblock_all() -> nix::Result<()> {
    let mut set = SigSet::all();
    // The latch wake-up signal stays blocked: the wait-event machinery reads it from a signalfd.
    set.remove(Signal::SIGURG);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)
}

/// Blocks every signal (the postmaster, around `fork`, PostgreSQL's `BlockSig`): a child then
/// starts with everything blocked and unblocks once its own handlers are installed, so no
/// signal meets a default action meant for the postmaster's handlers. Returns the previous
/// mask for [`restore_mask`].
pub(crate) fn block_all() -> nix::Result<SigSet> {
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old))?;
    Ok(old)
}

/// Puts back the mask [`block_all`] returned.
pub(crate) fn restore_mask(old: &SigSet) -> nix::Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None)
}

/// In a child, once its handlers are installed: lets signals in.
pub(crate) fn unblock_for_child() -> nix::Result<()> {
    unblock_all()
}

/// Why a child's signal handlers could not be reset.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResetError {
    /// `sigaction` refused a signal.
    #[error("{sig}: {source}")]
    Handler {
        /// The signal.
        sig: Signal,
        /// The system error.
        source: nix::Error,
    },
    /// ProcSignal's SIGUSR1 handler could not be installed.
    #[error(transparent)]
    ProcSignal(#[from] pgipc_procsignal::ProcSignalError),
}

/// In a new child (with signals blocked since the fork or exec): every handler back to its
/// default, SIGQUIT to an immediate `_exit(2)`, SIGUSR1 to ProcSignal's handler (it only sets
/// flags and the latch, and works before the process has a slot), SIGPIPE, SIGUSR2 and
/// SIGALRM ignored, pending bits cleared (PostgreSQL's `InitPostmasterChild` plus the
/// `SIGUSR1` line every child's main function has). No signal that some process may send a
/// child (SIGUSR1 from ProcSignal senders and background-worker notifications) keeps a
/// default action that would kill it and make the postmaster restart everything. The child
/// kind then calls [`catch`] for the signals it handles and [`unblock_for_child`].
pub(crate) fn reset_for_child() -> Result<(), ResetError> {
    PENDING.store(0, Ordering::SeqCst);
    let set = |sig, h| set_handler(sig, h).map_err(|source| ResetError::Handler { sig, source });
    for sig in [
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGCHLD,
    ] {
        set(sig, SigHandler::SigDfl)?;
    }
    pgipc_procsignal::install_handler()?;
    set(Signal::SIGQUIT, SigHandler::Handler(crash_exit))?;
    for sig in [Signal::SIGPIPE, Signal::SIGUSR2, Signal::SIGALRM] {
        set(sig, SigHandler::SigIgn)?;
    }
    Ok(())
}

/// Makes `sig` set its pending bit and the latch.
pub(crate) fn catch(sig: Signal) -> nix::Result<()> {
    set_handler(sig, SigHandler::Handler(on_signal))
}

/// Ignores `sig`.
pub(crate) fn ignore(sig: Signal) -> nix::Result<()> {
    set_handler(sig, SigHandler::SigIgn)
}

/// Takes the pending bits (all of them) since the last call.
pub(crate) fn take_all() -> u32 {
    PENDING.swap(0, Ordering::SeqCst)
}

/// Takes one pending bit: whether it was set.
pub(crate) fn take(p: Pending) -> bool {
    PENDING.fetch_and(!(p as u32), Ordering::SeqCst) & (p as u32) != 0
}

/// Whether `p` is pending (without taking it).
pub(crate) fn is_pending(p: Pending) -> bool {
    PENDING.load(Ordering::SeqCst) & (p as u32) != 0
}
