//! Every system call of this crate: `kill`, the `SIGUSR1` handler's installation, and the shared
//! futex behind the barrier condition variable.
//!
//! The futex is the *shared* kind (no private flag): the word lives in the main segment, which
//! other processes map at other addresses.

use rustix::io::Errno;
use rustix::process::{kill_process, Pid, Signal};
use rustix::thread::futex;
use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sends `sig` to `pid`; a pid that is not positive is refused as "no such process" (0 and
/// negative numbers would address process groups).
pub(crate) fn kill(pid: i32, sig: Signal) -> io::Result<()> {
    let pid = Pid::from_raw(pid)
        .filter(|p| p.as_raw_nonzero().get() > 0)
        .ok_or_else(|| io::Error::from(Errno::SRCH))?;
    kill_process(pid, sig).map_err(io::Error::from)
}

/// `SIGUSR1`, the multiplexed signal.
pub(crate) const SIGUSR1: Signal = Signal::USR1;
/// `SIGINT`, what an accepted cancel request sends.
pub(crate) const SIGINT: Signal = Signal::INT;

/// Sleeps while `*word == expected`, at most `timeout`. Returns `false` on timeout, `true`
/// otherwise (woken, value changed, signal, spurious): callers re-check either way.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) -> bool {
    let ts = futex::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    !matches!(
        futex::wait(word, futex::Flags::empty(), expected, Some(&ts)),
        Err(Errno::TIMEDOUT)
    )
}

/// Wakes every process sleeping on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

/// Installs `handler` for `SIGUSR1` with `SA_RESTART`.
pub(crate) fn install_sigusr1(handler: extern "C" fn(i32)) -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal as NixSig};
    let act = SigAction::new(
        SigHandler::Handler(handler),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only touches atomics and sets a latch (async-signal-safe, see
    // `handle_sigusr1`), and it saves and restores errno.
    unsafe { sigaction(NixSig::SIGUSR1, &act) }
        .map(drop)
        .map_err(|e| io::Error::from_raw_os_error(e as i32))
}

/// Reads errno (the handler restores it on the way out).
pub(crate) fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

/// Writes errno.
pub(crate) fn set_errno(v: i32) {
    nix::errno::Errno::set_raw(v)
}
