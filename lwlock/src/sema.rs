//! A counting semaphore on a shared futex: the "per-process semaphore" every sleeper owns
//! (PostgreSQL's `PGSemaphore`, port/posix_sema.c).

use crate::sys;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A process-shared counting semaphore.
///
/// # Layout
/// `#[repr(C)]`, 8 bytes: `count` (the futex word) and `sleepers` (how many are blocked in the
/// kernel, so that `unlock` makes no system call when nobody sleeps). All-zero = count 0.
///
/// # Rules
/// Conventionally only its owner calls [`lock`](Self::lock) (sleeps); anyone may
/// [`unlock`](Self::unlock). Extra `unlock`s accumulate, as with a POSIX semaphore.
#[repr(C)]
#[derive(Default)]
pub struct PgSemaphore {
    count: AtomicU32,
    sleepers: AtomicU32,
}

impl fmt::Debug for PgSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSemaphore")
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

impl PgSemaphore {
    /// A semaphore with count 0.
    pub const fn new() -> Self {
        PgSemaphore {
            count: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    /// Sets the count to zero (PostgreSQL's `PGSemaphoreReset`). Owner only.
    pub fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
    }

    /// Decrements the count if it is positive; never sleeps.
    pub fn try_lock(&self) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        while c > 0 {
            match self
                .count
                .compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    /// Waits until the count is positive, then decrements it (the P operation).
    pub fn lock(&self) {
        while !self.lock_timeout(None) {}
    }

    /// Like [`lock`](Self::lock) but gives up after `timeout`; returns whether it decremented.
    pub fn lock_timeout(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if self.try_lock() {
                return true;
            }
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
            };
            // Announce the sleep before checking the word (SeqCst RMW), so that an `unlock`
            // that bumps the count after our check is certain to see us and wake us.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            sys::wait(&self.count, 0, left);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Increments the count and wakes one sleeper if there is one (the V operation).
    pub fn unlock(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            sys::wake(&self.count, 1);
        }
    }
}
