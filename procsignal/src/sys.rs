//! Every system call of this crate: `kill` and the `SIGUSR1` handler's installation. (The shared
//! futex behind the barrier condition variable is the `lwlock` crate's `futex` module.)

use rustix::io::Errno;
use rustix::process::{kill_process, Pid, Signal};
use std::io;

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
