//! Signal handlers of a client backend (PostgreSQL's `StatementCancelHandler`, `die`,
//! `SignalHandlerForConfigReload`, `quickdie`): each one only raises a flag and sets the
//! process latch, and the session loop does the work at its next interrupt check; SIGQUIT
//! alone acts at once (a warning to the client, `_exit(2)`).

use crate::QuitReason;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;

/// `QueryCancelPending`: SIGINT arrived.
static CANCEL: AtomicBool = AtomicBool::new(false);
/// `ProcDiePending`: SIGTERM arrived.
static DIE: AtomicBool = AtomicBool::new(false);
/// `ConfigReloadPending`: SIGHUP arrived.
static RELOAD: AtomicBool = AtomicBool::new(false);

/// A wait outside the client socket's (`pg_sleep`) saw the postmaster die.
static POSTMASTER_DEATH_SEEN: AtomicBool = AtomicBool::new(false);

/// Records that a wait saw postmaster death; the next interrupt check ends the session.
pub(crate) fn note_postmaster_death() {
    POSTMASTER_DEATH_SEEN.store(true, Ordering::SeqCst);
}

/// Whether a wait outside the socket's saw postmaster death.
pub(crate) fn postmaster_death_seen() -> bool {
    POSTMASTER_DEATH_SEEN.load(Ordering::SeqCst)
}

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

/// The client socket, for the last-gasp warning of SIGQUIT (-1: none yet).
static QUIT_SOCK: AtomicI32 = AtomicI32::new(-1);
/// The three warnings, built before the handler can need them.
static QUIT_MESSAGES: OnceLock<QuitMessages> = OnceLock::new();
/// Where the handler learns why the postmaster sent SIGQUIT.
static QUIT_REASON: OnceLock<fn() -> QuitReason> = OnceLock::new();

struct QuitMessages {
    crash: Vec<u8>,
    stop: Vec<u8>,
    unknown: Vec<u8>,
}

fn warning(code: &str, message: &str) -> pgipc_libpq::ErrorFields {
    pgipc_libpq::ErrorFields::new(pgipc_libpq::Severity::Warning, code, message)
}

/// Prepares the SIGQUIT warning for the client on `sock` (PostgreSQL's `quickdie` texts).
pub(crate) fn prepare_quit_warning(sock: RawFd, reason: Option<fn() -> QuitReason>) {
    let build = |f: pgipc_libpq::ErrorFields| {
        let mut b = pgipc_libpq::MessageBuf::new();
        b.notice_response(&f);
        b.as_bytes().to_vec()
    };
    let _ = QUIT_MESSAGES.set(QuitMessages {
        crash: build(
            warning(
                "57P02",
                "terminating connection because of crash of another server process",
            )
            .with_detail(
                "The postmaster has commanded this server process to roll back the current \
                 transaction and exit, because another server process exited abnormally and \
                 possibly corrupted shared memory.",
            )
            .with_hint(
                "In a moment you should be able to reconnect to the database and repeat your \
                 command.",
            ),
        ),
        stop: build(warning(
            "57P01",
            "terminating connection due to immediate shutdown command",
        )),
        unknown: build(warning(
            "57P01",
            "terminating connection due to unexpected SIGQUIT signal",
        )),
    });
    if let Some(r) = reason {
        let _ = QUIT_REASON.set(r);
    }
    QUIT_SOCK.store(sock, Ordering::SeqCst);
}

/// SIGQUIT (PostgreSQL's `quickdie`): a best-effort warning to the client, then exit at once
/// without running exit callbacks (shared memory may be corrupt; the postmaster reinitialises
/// it). Only async-signal-safe calls: atomic loads, one non-blocking `send`, `_exit`.
extern "C" fn on_quit(_sig: i32) {
    let fd = QUIT_SOCK.load(Ordering::SeqCst);
    if let (true, Some(m)) = (fd >= 0, QUIT_MESSAGES.get()) {
        let msg = match QUIT_REASON.get().map(|f| f()) {
            Some(QuitReason::Crash) => &m.crash,
            Some(QuitReason::ImmediateShutdown) => &m.stop,
            _ => &m.unknown,
        };
        let _ = nix::sys::socket::send(
            fd,
            msg,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        );
    }
    // SAFETY: `_exit` is async-signal-safe and takes no pointers.
    unsafe { libc::_exit(2) }
}

/// Unblocks every signal but `SIGURG` (the latch wake-up signal, which stays blocked and is
/// read through a signalfd).
pub(crate) fn unblock_signals() -> nix::Result<()> {
    let mut set = SigSet::all();
    set.remove(Signal::SIGURG);
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_UNBLOCK, Some(&set), None)
}

/// Installs the handlers: SIGINT, SIGTERM, SIGHUP raise flags, SIGQUIT exits with code 2,
/// SIGPIPE, SIGUSR1 and SIGUSR2 are ignored (writes to a vanished client fail with EPIPE
/// instead; SIGUSR1 gets the host's handler next). No `SA_RESTART`:
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
    // Nothing here is meant for SIGUSR1 and SIGUSR2 (PostgreSQL's backends ignore SIGUSR2),
    // and their default action ends the process, which the postmaster takes for a crash of a
    // process attached to shared memory. SIGUSR1 is ignored until the host installs its own
    // handler (`BackendHooks::install_signal_handlers`, ProcSignal's), still before anything
    // is unblocked.
    set(Signal::SIGUSR1, SigHandler::SigIgn)?;
    set(Signal::SIGUSR2, SigHandler::SigIgn)?;
    Ok(())
}
