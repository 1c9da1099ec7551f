//! The only system calls this crate makes: shared futex wait and wake.
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
/// longer holds `expected`; callers re-check their condition in a loop.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| futex::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    // Errors are EAGAIN (value changed), EINTR and ETIMEDOUT: all mean "re-check".
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes up to `count` processes sleeping on `word`; returns how many were woken.
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> usize {
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}
