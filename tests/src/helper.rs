//! Exec'd helpers: the current test binary re-executed in a role, handed a shared-memory
//! segment as a raw descriptor and its size.
//!
//! The kit knows no pgipc type: the parent creates the segment with its own crate (a memfd
//! from `pgipc_shmem`, or one mapped by hand below shmem), passes its descriptor here, and the
//! helper takes it back with [`inherited_segment`] and attaches with its own crate. The
//! descriptor crosses exec because the spawned command clears its close-on-exec flag between
//! fork and exec; role, descriptor number and size travel in the environment.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Which role a re-executed helper plays.
pub const ROLE_ENV: &str = "PGIPC_TEST_ROLE";
/// The inherited segment's descriptor number.
pub const FD_ENV: &str = "PGIPC_TEST_FD";
/// The inherited segment's size in bytes.
pub const SIZE_ENV: &str = "PGIPC_TEST_SIZE";

/// This process's role, if it is a re-executed helper.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// The current binary re-executed in `role` with `args`, inheriting descriptor `fd` (a
/// segment of `size` bytes): spawn it from a process with one thread, or from a libtest-mimic
/// trial on the main thread.
pub fn command(role: &str, fd: RawFd, size: usize, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args(args)
        .env(ROLE_ENV, role)
        .env(FD_ENV, fd.to_string())
        .env(SIZE_ENV, size.to_string());
    // SAFETY: only fcntl between fork and exec (async-signal-safe, no allocation).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// The segment a helper inherited ([`command`]): its descriptor, now owned by the caller, and
/// its size. `None` outside a helper; an error if the environment is malformed.
pub fn inherited_segment() -> Option<Result<(OwnedFd, usize), String>> {
    let raw = std::env::var(FD_ENV).ok()?;
    Some((|| {
        let raw: RawFd = raw.parse().map_err(|e| format!("{FD_ENV}={raw:?}: {e}"))?;
        let size = std::env::var(SIZE_ENV).map_err(|e| format!("{SIZE_ENV}: {e}"))?;
        let size: usize = size
            .parse()
            .map_err(|e| format!("{SIZE_ENV}={size:?}: {e}"))?;
        // SAFETY: fcntl(F_GETFD) only queries the descriptor's flags.
        if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
            return Err(format!("{FD_ENV}={raw}: not an open descriptor"));
        }
        // SAFETY: inherited across exec for this purpose (checked open above); nothing else in
        // this process owns it, and this is called once per helper.
        Ok((unsafe { OwnedFd::from_raw_fd(raw) }, size))
    })())
}
