//! The one system call this crate makes: `kill(pid, SIGUSR1)`.

use rustix::io::Errno;
use rustix::process::{kill_process, Pid, Signal};
use std::io;

/// Sends `SIGUSR1` to `pid`; a pid that is not positive is "no such process".
pub(crate) fn send_sigusr1(pid: i32) -> io::Result<()> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from(Errno::SRCH))?;
    kill_process(pid, Signal::USR1).map_err(io::Error::from)
}
