//! The only system calls this crate makes: shared futex wait and wake, the workspace's one
//! definition of them (re-exported as [`crate::futex`] for the latch and ProcSignal's barrier
//! condition variable).
//!
//! Every futex here is the *shared* kind (no `FUTEX_PRIVATE_FLAG`): the word lives in memory that
//! other processes map, possibly at other addresses, and the kernel must key the wait queue on the
//! physical page rather than on this process's address space.

use rustix::thread::futex;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` when given.
///
/// Returns on a wake-up, on a spurious wake-up, on a signal, on timeout, or at once when the word no
/// longer holds `expected`; callers re-check their condition in a loop. The result is `false`
/// only when the timeout expired. Async-signal-safe (one system call).
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let ts = timeout.map(|d| futex::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    // The other errors are EAGAIN (value changed) and EINTR: both mean "re-check".
    !matches!(
        futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()),
        Err(rustix::io::Errno::TIMEDOUT)
    )
}

/// Wakes up to `count` processes sleeping on `word`; returns how many were woken.
/// Async-signal-safe (one system call).
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

/// Wakes every process sleeping on `word`; returns how many were woken. Async-signal-safe.
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX as u32)
}
