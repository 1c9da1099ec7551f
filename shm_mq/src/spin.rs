//! The adaptive watch a waiter keeps on its peer's counter before it sleeps (beyond
//! PostgreSQL, which sleeps at once; see the crate documentation).

use pgipc_latch::Latch;
use std::time::{Duration, Instant};

/// Default watch on a machine with more than one CPU online.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Longest run of waits that skip the watch after fruitless or preempted ones.
const MAX_BACKOFF: u32 = 64;

/// The first part of a watch pauses with the CPU's spin hint only; after that each look is
/// followed by a `sched_yield`.
const PAUSE_ONLY: Duration = Duration::from_micros(5);

/// A `sched_yield` that returns later than this ran another thread in between: the CPU is
/// wanted, stop watching.
const YIELD_GAVE_CPU: Duration = Duration::from_micros(10);

/// What [`Spin::watch`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// The condition held: go on without sleeping.
    Progress,
    /// The latch was set (something else to look at): stop watching, do not sleep blindly.
    LatchSet,
    /// No watch was made (disabled, backing off, or preempted since the last one), or it ran
    /// out: sleep.
    Nothing,
}

/// An adaptive, bounded busy watch before a sleep on a latch.
///
/// [`watch`](Self::watch) looks at a condition (normally "the peer's counter moved") for at
/// most the budget, and stops at once when the latch is set. Between looks it pauses with
/// the CPU's spin hint for the first few microseconds, then with `sched_yield`; a yield that
/// comes back late (another thread ran: the CPUs are busy) ends the watch. It skips the watch
/// when it does not pay:
/// * after a watch that found nothing, the next 1, 2, 4, … (at most 64) waits go straight to
///   sleep; a watch that finds progress starts the sequence over (a watch ended by the
///   latch changes nothing);
/// * when the scheduler preempted this thread since the previous watch (its involuntary
///   context switches, `ru_nivcsw`, moved: the CPUs have more runnable work than they can
///   run, and spinning would only take time from the process we wait for), it sleeps and
///   backs off the same way. `getrusage` is called only when a watch is about to start,
///   never on waits that skip it.
#[derive(Debug, Clone)]
pub struct Spin {
    budget: Duration,
    /// Waits left that skip the watch.
    skip: u32,
    /// How many waits to skip after the next fruitless or preempted watch.
    next_skip: u32,
    /// `ru_nivcsw` when the last watch started (-1: never).
    preempted_at: i64,
}

impl Spin {
    /// A watch of at most `budget` (zero: never watch).
    pub fn new(budget: Duration) -> Spin {
        Spin {
            budget,
            skip: 0,
            next_skip: 1,
            preempted_at: -1,
        }
    }

    /// [`DEFAULT_SPIN`] when more than one CPU is online, else none (on one CPU a watch
    /// only delays the peer).
    pub fn default_budget() -> Duration {
        if crate::sys::cpus_online() > 1 {
            DEFAULT_SPIN
        } else {
            Duration::ZERO
        }
    }

    /// The budget.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    fn back_off(&mut self) {
        self.skip = self.next_skip;
        self.next_skip = (self.next_skip * 2).min(MAX_BACKOFF);
    }

    /// Watches `progressed` (and `latch`) before a sleep; see the type's documentation.
    pub fn watch(&mut self, latch: &Latch, mut progressed: impl FnMut() -> bool) -> Watched {
        if self.budget.is_zero() {
            return Watched::Nothing;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return Watched::Nothing;
        }
        let now = crate::sys::involuntary_switches();
        let preempted = self.preempted_at >= 0 && now != self.preempted_at;
        self.preempted_at = now;
        if preempted {
            self.back_off();
            return Watched::Nothing;
        }
        let start = Instant::now();
        loop {
            for _ in 0..32 {
                if progressed() {
                    self.next_skip = 1;
                    return Watched::Progress;
                }
                if latch.is_set() {
                    return Watched::LatchSet;
                }
                std::hint::spin_loop();
            }
            let now = Instant::now();
            let spent = now.duration_since(start);
            if spent >= self.budget {
                break;
            }
            if spent >= PAUSE_ONLY {
                crate::sys::sched_yield();
                if now.elapsed() >= YIELD_GAVE_CPU {
                    break;
                }
            }
        }
        self.back_off();
        Watched::Nothing
    }
}
