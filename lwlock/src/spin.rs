//! A test-and-set spinlock that works across processes, with PostgreSQL's back-off and stuck
//! detection (storage/lmgr/s_lock.c).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a spinlock may stay unavailable before [`SpinLock::lock`] declares it stuck.
///
/// A spinlock guards a few instructions; one held this long means its holder died or is broken.
pub const DEFAULT_STUCK_TIMEOUT: Duration = Duration::from_secs(60);

/// The error of a spinlock that stayed held past its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stuck spinlock detected at {what} after {waited:?}")]
pub struct StuckSpinlock {
    /// What the caller said it was locking (for the report).
    pub what: &'static str,
    /// How long the caller had waited.
    pub waited: Duration,
}

/// A process-shared spinlock: one word, 0 = free, 1 = held.
///
/// # Layout
/// `#[repr(C)]`, 4 bytes, align 4. All-zero is the unlocked state, so a lock in freshly mapped
/// shared memory needs no initialisation.
///
/// # Rules
/// Hold it for a handful of instructions only: no system calls, no allocation, no other lock that
/// can sleep. A waiter spins, then sleeps with growing randomised delays (1 ms up to 1 s), and
/// gives up after [`DEFAULT_STUCK_TIMEOUT`].
#[repr(C)]
#[derive(Default)]
pub struct SpinLock {
    word: AtomicU32,
}

impl fmt::Debug for SpinLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpinLock")
            .field("held", &self.is_locked())
            .finish()
    }
}

impl SpinLock {
    /// A new, unlocked spinlock.
    pub const fn new() -> Self {
        SpinLock {
            word: AtomicU32::new(0),
        }
    }

    /// Makes the lock free again, whatever state it was in (PostgreSQL's `SpinLockInit`).
    ///
    /// Only for the creator of a structure, before anyone else can see it.
    pub fn init(&self) {
        self.word.store(0, Ordering::Release);
    }

    /// Whether somebody holds the lock right now (a racy hint, for diagnostics).
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != 0
    }

    /// One test-and-set attempt.
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_>> {
        // Test before test-and-set: spinning on a plain load keeps the line shared.
        if self.word.load(Ordering::Relaxed) == 0
            && self
                .word
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            Some(SpinLockGuard { lock: self })
        } else {
            None
        }
    }

    /// Acquires the lock, waiting at most `limit`; `what` names the lock in the error.
    pub fn lock_within(
        &self,
        what: &'static str,
        limit: Duration,
    ) -> Result<SpinLockGuard<'_>, StuckSpinlock> {
        if let Some(g) = self.try_lock() {
            return Ok(g);
        }
        let mut delay = SpinDelay::new(what, limit);
        loop {
            if let Some(g) = self.try_lock() {
                return Ok(g);
            }
            delay.pause()?;
        }
    }

    /// Acquires the lock.
    ///
    /// A lock unavailable for [`DEFAULT_STUCK_TIMEOUT`] is a broken invariant (its holder died
    /// inside a critical section): like PostgreSQL's PANIC, this logs the report and aborts the
    /// process, so that the postmaster restarts everything with fresh shared memory.
    pub fn lock(&self) -> SpinLockGuard<'_> {
        match self.lock_within("spinlock", DEFAULT_STUCK_TIMEOUT) {
            Ok(g) => g,
            Err(stuck) => stuck_abort(&stuck),
        }
    }

    fn unlock(&self) {
        self.word.store(0, Ordering::Release);
    }
}

/// Reports a stuck lock and aborts, as PostgreSQL's `s_lock_stuck` PANIC does.
pub(crate) fn stuck_abort(stuck: &StuckSpinlock) -> ! {
    tracing::error!(target: "pgipc", "PANIC:  {stuck}");
    eprintln!("PANIC:  {stuck}");
    std::process::abort()
}

/// Holds a [`SpinLock`]; releases it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct SpinLockGuard<'a> {
    lock: &'a SpinLock,
}

impl Drop for SpinLockGuard<'_> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

/// Back-off state for one contended wait: spin a little, then sleep with growing delays.
///
/// The same back-off serves the LWLock's wait-list bit. Delays follow s_lock.c's shape: after a
/// burst of spins, sleep 1 ms, then grow each sleep by a random 0..100% up to 1 s, and wrap back
/// to 1 ms past the top so a long wait keeps polling.
#[derive(Debug)]
pub struct SpinDelay {
    what: &'static str,
    start: Option<Instant>,
    limit: Duration,
    spins: u32,
    cur_delay_us: u64,
    rng: u64,
}

const SPINS_PER_DELAY: u32 = 100;
const MIN_DELAY_US: u64 = 1_000;
const MAX_DELAY_US: u64 = 1_000_000;

impl SpinDelay {
    /// Starts a wait for `what` that is declared stuck after `limit`.
    pub fn new(what: &'static str, limit: Duration) -> Self {
        SpinDelay {
            what,
            start: None,
            limit,
            spins: 0,
            cur_delay_us: 0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()),
        }
    }

    /// Waits a little before the next attempt; fails once the whole wait exceeds the limit.
    pub fn pause(&mut self) -> Result<(), StuckSpinlock> {
        self.spins += 1;
        if self.spins < SPINS_PER_DELAY {
            std::hint::spin_loop();
            return Ok(());
        }
        self.spins = 0;
        let start = *self.start.get_or_insert_with(Instant::now);
        let waited = start.elapsed();
        if waited >= self.limit {
            return Err(StuckSpinlock {
                what: self.what,
                waited,
            });
        }
        if self.cur_delay_us == 0 {
            self.cur_delay_us = MIN_DELAY_US;
        }
        let remaining = self.limit - waited;
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::SpinDelays);
        std::thread::sleep(Duration::from_micros(self.cur_delay_us).min(remaining));
        // xorshift: cheap, no shared state, good enough to de-synchronise waiters.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.cur_delay_us += self.cur_delay_us * (self.rng % 1000) / 1000 + 1;
        if self.cur_delay_us > MAX_DELAY_US {
            self.cur_delay_us = MIN_DELAY_US;
        }
        Ok(())
    }
}
