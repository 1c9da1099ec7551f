//! The postmaster's signal handling: handlers only record which signals arrived; the main loop
//! sleeps race-free in `sigsuspend` with those signals blocked everywhere else.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use std::sync::atomic::{AtomicU32, Ordering};

/// Bits of the pending-signal word.
static PENDING: AtomicU32 = AtomicU32::new(0);

/// A signal the postmaster acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmSignal {
    /// SIGHUP: reload configuration.
    Reload,
    /// SIGTERM: smart shutdown.
    SmartShutdown,
    /// SIGINT: fast shutdown.
    FastShutdown,
    /// SIGQUIT: immediate shutdown.
    ImmediateShutdown,
}

const HANDLED: [(Signal, PmSignal); 4] = [
    (Signal::SIGHUP, PmSignal::Reload),
    (Signal::SIGTERM, PmSignal::SmartShutdown),
    (Signal::SIGINT, PmSignal::FastShutdown),
    (Signal::SIGQUIT, PmSignal::ImmediateShutdown),
];

fn bit(s: PmSignal) -> u32 {
    1 << (s as u32)
}

extern "C" fn on_signal(signo: libc::c_int) {
    // Async-signal-safe: one atomic OR, nothing else.
    for (sig, what) in HANDLED {
        if sig as libc::c_int == signo {
            PENDING.fetch_or(bit(what), Ordering::SeqCst);
        }
    }
}

fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for (sig, _) in HANDLED {
        set.add(sig);
    }
    set
}

/// Installs the handlers and blocks the signals outside [`wait`].
pub fn install() -> nix::Result<()> {
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        handled_set(),
    );
    for (sig, _) in HANDLED {
        // SAFETY: the handler only performs an atomic OR on a static, which is async-signal-safe.
        unsafe { sigaction(sig, &act) }?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled_set()), None)
}

/// Takes the signals that arrived since the last call.
pub fn take() -> Vec<PmSignal> {
    let bits = PENDING.swap(0, Ordering::SeqCst);
    HANDLED
        .iter()
        .map(|(_, w)| *w)
        .filter(|w| bits & bit(*w) != 0)
        .collect()
}

/// Sleeps until one of the handled signals arrives (returns at once if one is pending).
pub fn wait() {
    if PENDING.load(Ordering::SeqCst) != 0 {
        return;
    }
    let mut mask = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::empty());
    for (sig, _) in HANDLED {
        mask.remove(sig);
    }
    // SAFETY: sigsuspend atomically swaps in a valid mask and sleeps until a handler ran; the
    // blocked signals could only have been delivered inside it, so none is missed.
    unsafe { libc::sigsuspend(mask.as_ref()) };
}
