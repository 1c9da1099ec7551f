//! The raw system calls of this crate: signal masks, signalfd, the parent-death signal, the
//! postmaster-death pipe's descriptor flags. Everything outside this module uses `OwnedFd`,
//! `BorrowedFd` and `Result`.

use crate::error::{sys, WaitEventSetError};
use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use rustix::io::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The latch wake-up signal as a nix `Signal`.
pub(crate) const WAKEUP: Signal = Signal::SIGURG;

/// The signal the kernel sends a child when its parent dies (PostgreSQL uses SIGPWR on Linux).
pub(crate) const POSTMASTER_DEATH_SIGNAL: Signal = Signal::SIGPWR;

fn wakeup_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(WAKEUP);
    set
}

/// Blocks the wake-up signal in the calling thread (threads it starts later inherit the mask).
pub(crate) fn block_wakeup_signal() -> Result<(), WaitEventSetError> {
    signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&wakeup_set()), None).map_err(|e| {
        WaitEventSetError::Sys {
            call: "pthread_sigmask()",
            errno: Errno::from_raw_os_error(e as i32),
        }
    })
}

/// A non-blocking, close-on-exec signalfd for the wake-up signal.
pub(crate) fn wakeup_signalfd() -> Result<OwnedFd, WaitEventSetError> {
    let set = wakeup_set();
    // SAFETY: `set` is a valid sigset_t for the duration of the call; -1 asks for a new fd.
    let fd = unsafe { libc::signalfd(-1, set.as_ref(), libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(WaitEventSetError::Sys {
            call: "signalfd()",
            errno: Errno::from_raw_os_error(
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            ),
        });
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads every pending wake-up signal of the calling thread from the signalfd.
pub(crate) fn drain_signalfd(fd: BorrowedFd<'_>) -> Result<(), WaitEventSetError> {
    // struct signalfd_siginfo is 128 bytes; read several at once.
    let mut buf = [0u8; 128 * 8];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Err(WaitEventSetError::SignalfdEof),
            Ok(n) if n == buf.len() => continue,
            Ok(_) => return Ok(()),
            Err(Errno::AGAIN) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(errno) => {
                return Err(WaitEventSetError::Sys {
                    call: "read() on signalfd",
                    errno,
                })
            }
        }
    }
}

/// A pipe with both ends non-blocking and close-on-exec: (read, write).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), WaitEventSetError> {
    use rustix::pipe::{pipe_with, PipeFlags};
    pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).map_err(sys(
        "could not create pipe to monitor postmaster death: pipe()",
    ))
}

/// Reads one byte without blocking: `Ok(None)` = would block, `Ok(Some(0))` = EOF.
pub(crate) fn read_one_nonblocking(fd: BorrowedFd<'_>) -> Result<Option<usize>, Errno> {
    let mut b = [0u8; 1];
    loop {
        match rustix::io::read(fd, &mut b) {
            Ok(n) => return Ok(Some(n)),
            Err(Errno::AGAIN) => return Ok(None),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Makes `fd` non-blocking (an inherited watch descriptor).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), WaitEventSetError> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let fl = fcntl_getfl(fd).map_err(sys("fcntl(F_GETFL)"))?;
    fcntl_setfl(fd, fl | OFlags::NONBLOCK).map_err(sys("fcntl(F_SETFL)"))
}

/// Makes `fd` close-on-exec (so that programs this child execs do not inherit the watch).
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> Result<(), WaitEventSetError> {
    use rustix::io::{fcntl_setfd, FdFlags};
    fcntl_setfd(fd, FdFlags::CLOEXEC).map_err(sys("fcntl(F_SETFD)"))
}

/// Clears close-on-exec on `fd`. Async-signal-safe: called between fork and exec.
pub(crate) fn clear_cloexec_raw(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on an integer descriptor touches no memory of ours.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `raw` names an open descriptor in this process.
pub(crate) fn fd_is_open(raw: RawFd) -> bool {
    // SAFETY: F_GETFD on an integer descriptor touches no memory of ours.
    unsafe { libc::fcntl(raw, libc::F_GETFD) >= 0 }
}

/// Takes ownership of an inherited descriptor number.
///
/// # Safety
/// `raw` must be open (see [`fd_is_open`]) and owned by nothing else in this process.
pub(crate) unsafe fn own_raw_fd(raw: RawFd) -> OwnedFd {
    // SAFETY: per the caller's contract.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// Installs `handler` for `sig` (SA_RESTART, other signals not blocked beyond `sig` itself).
///
/// # Safety
/// `handler` must be async-signal-safe.
pub(crate) unsafe fn install_handler(
    sig: Signal,
    handler: extern "C" fn(libc::c_int),
) -> Result<(), WaitEventSetError> {
    let act = signal::SigAction::new(
        SigHandler::Handler(handler),
        signal::SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler is async-signal-safe per the caller's contract.
    unsafe { signal::sigaction(sig, &act) }
        .map(|_| ())
        .map_err(|e| WaitEventSetError::Sys {
            call: "sigaction()",
            errno: Errno::from_raw_os_error(e as i32),
        })
}

/// Asks the kernel to send `sig` to this process when its parent thread exits (0 disarms).
pub(crate) fn set_parent_death_signal(sig: Option<Signal>) -> Result<(), WaitEventSetError> {
    let n = sig.map_or(0, |s| s as libc::c_ulong);
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, n, 0, 0, 0) } < 0 {
        return Err(WaitEventSetError::Sys {
            call: "prctl(PR_SET_PDEATHSIG)",
            errno: Errno::from_raw_os_error(
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            ),
        });
    }
    Ok(())
}

/// The parent's pid (1 or a subreaper's once the parent died).
pub(crate) fn parent_pid() -> i32 {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())
}

/// The raw number of a borrowed descriptor (for messages and env vars).
pub(crate) fn raw(fd: BorrowedFd<'_>) -> RawFd {
    fd.as_raw_fd()
}
