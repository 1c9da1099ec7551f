//! A short-lived exclusive `flock(2)` on a directory, held while a lock file in it is checked,
//! found stale, removed and created again.
//!
//! PostgreSQL's `CreateLockFile` relies on `O_CREAT | O_EXCL` alone. That makes creation
//! atomic, but leaves two windows when servers start at the same instant: a competitor may read
//! the new file before its creator has written the pid into it (PostgreSQL then refuses with
//! "lock file … is empty"), and two competitors that both found the same stale file may both
//! remove "it" — the second one removing the file the first has just created. Holding this lock
//! across check, removal and creation closes both: among servers of this project only one at a
//! time looks at a given directory's lock files, so a file is removed only by the process that
//! verified that very file as stale. The lock is released as soon as the lock file is written;
//! the lock file itself stays the interlock for the server's lifetime, as in PostgreSQL.

use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// Longest time [`DirLock::acquire`] waits for another process to finish its check.
pub const DIR_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Holds the directory's lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    _lock: Flock<File>,
}

impl DirLock {
    /// Takes the exclusive lock of `dir`, waiting up to [`DIR_LOCK_TIMEOUT`] for a holder
    /// (which keeps it for the few system calls of one lock-file check).
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        Self::acquire_within(dir, DIR_LOCK_TIMEOUT)
    }

    /// [`DirLock::acquire`] with an explicit limit.
    pub fn acquire_within(dir: &Path, timeout: Duration) -> io::Result<DirLock> {
        // Opened read-only: a directory cannot be opened for writing, and flock does not care.
        // Close-on-exec (std's default) so that no exec'd child inherits it.
        let mut file = File::open(dir)?;
        let deadline = Instant::now() + timeout;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(DirLock { _lock: lock }),
                Err((f, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR)) => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "another process keeps the directory locked",
                        ));
                    }
                    file = f;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((_, e)) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_waits_and_times_out_then_succeeds_after_release() {
        let d = std::env::temp_dir().join(format!("pgipc-dirlock-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let first = DirLock::acquire(&d).unwrap();
        // flock locks belong to the open file description: a second open in the same process
        // conflicts as another process's would.
        let e = DirLock::acquire_within(&d, Duration::from_millis(30)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(first);
        let again = DirLock::acquire_within(&d, Duration::from_millis(30)).unwrap();
        drop(again);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
