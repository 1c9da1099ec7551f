//! Latches: a flag one process sleeps on and any process (or a signal handler) sets, with no
//! lost wake-ups.
//!
//! Mirrors PostgreSQL's `storage/ipc/latch.c` (`InitSharedLatch`, `OwnLatch`, `DisownLatch`,
//! `SetLatch`, `ResetLatch`) and the latch half of `waiteventset.c`'s wake-up machinery
//! (`WakeupMyProc`, `WakeupOtherProc`). Waiting on a latch together with sockets, postmaster
//! death and timeouts is the `waiteventset` crate's job; this crate sleeps on a latch alone.
//!
//! ```text
//!  shared memory (e.g. one per proc slot)          owner process            any process
//!  ┌────────────────────────────────────┐
//!  │ Latch (16 B, #[repr(C)])           │   loop {                        publish work
//!  │  is_set          0/1  ◄────────────┼──── reset()                     set():
//!  │  maybe_sleeping  Awake|Futex|Signal│     check work                    fence
//!  │  owner_pid       pid | 0           │     wait():                       is_set? → return
//!  │  sleeper_tid     thread to signal  │       publish mode; fence         is_set = 1; fence
//!  └────────────────────────────────────┘       is_set? → return            mode == Futex  → FUTEX_WAKE
//!                                                sleep (futex | epoll)      mode == Signal → tgkill SIGURG
//!                                           }                               mode == Awake  → nothing
//! ```
//!
//! # The wake-up mechanism, and why
//! The sleeper publishes *how* it sleeps, and the setter wakes it that way:
//! * [`SleepMode::Futex`]: waits that involve only the latch (the common `WaitLatch` case, and
//!   also postmaster death when the parent-death signal is armed, see `waiteventset`) sleep in
//!   `FUTEX_WAIT` on the `is_set` word itself. A setter's wake-up is one `FUTEX_WAKE`, the
//!   cheapest cross-process wake-up Linux has; that is what the benchmark's 1.3x-of-raw-futex
//!   goal asks for.
//! * [`SleepMode::Signal`]: waits that also watch file descriptors sleep in `epoll_wait`, with
//!   `SIGURG` blocked and read through a signalfd registered in the epoll set, as PostgreSQL
//!   does on Linux. The setter sends `SIGURG` with `tgkill` to the thread that published the
//!   mode (PostgreSQL sends it to the process; aiming at the thread keeps the wake-up from
//!   being swallowed by another thread that has `SIGURG` unblocked, e.g. in a test harness).
//!
//! A signal alone would make latch-only round trips pay a signal delivery, a signalfd read and
//! an epoll wake-up; a futex alone cannot be combined with sockets in one sleep. The hybrid
//! costs one extra word read by the setter.
//!
//! Measured (`cargo bench -p pgipc-latch`, figures in the workspace's `BENCHMARKS.md`): with
//! both processes on one CPU a latch round trip is within ~1.1x of a raw futex ping-pong, and
//! `set` on a set latch costs what a fence and a load cost. Across two CPUs the ratio drifts
//! (about 0.9x to 1.7x from run to run) on these VMs, for a reason we tracked down: the raw
//! baseline calls `FUTEX_WAKE` on every post, even when the peer is still awake, and that
//! ~1 us in the kernel keeps its vCPU from halting just before the answer arrives. A `set` that
//! also woke unconditionally measured 0.95x-1.01x, but a set with no system call for an awake
//! owner is the contract, and it is the cheaper choice wherever vCPUs do not halt.
//!
//! # Concurrency contract
//! * Any process that maps the latch may [`Latch::set`] it, also from a signal handler.
//! * Only the owner ([`OwnedLatch`], one per latch, claimed by compare-and-swap on `owner_pid`)
//!   resets it and sleeps on it; only the owner writes `maybe_sleeping` and `sleeper_tid`.
//! * No lost wake-up: the waiter writes `maybe_sleeping`, fences, reads `is_set`; the setter
//!   writes `is_set`, fences, reads `maybe_sleeping`. With both fences sequentially consistent,
//!   at least one side sees the other's write: either the waiter does not sleep, or the setter
//!   wakes it. A `FUTEX_WAKE` that lands before the waiter enters `FUTEX_WAIT` is harmless
//!   because the kernel re-checks `is_set == 0` before sleeping; a `SIGURG` that lands before
//!   `epoll_wait` stays pending on the signalfd.
//! * The caller's loop is PostgreSQL's: `reset; check for work; wait` (never check between wait
//!   and reset), and a setter publishes its work before calling `set`. `reset` fences after the
//!   clear, `set` fences before its first read, so a set that returns early on an already-set
//!   latch has published its work before the owner's next check.
//! * Spurious wake-ups are possible; callers loop.
//! * A second wake-up condition (postmaster death in `waiteventset`) uses
//!   [`LatchOwner::sleep_unless`]: publish the sleep, look at the latch, look at the
//!   condition's flag, sleep; whoever raises the flag sets the latch afterwards. Looking at the
//!   flag before publishing loses the wake-up (issue 11).
//!
//! The protocol is checked by an exhaustive interleaving test of the two sides and of the
//! postmaster-death pairing, broken orders included (unit tests, `src/model.rs`), and by a
//! loom model of the real code (`ci/loom.sh`, `RUSTFLAGS="--cfg loom"`, run by `.ci/run`).
//!
//! # What this crate does not do
//! * No epoll, signalfd, sockets or postmaster-death checks: `waiteventset` builds those on
//!   [`OwnedLatch::prepare_sleep`] / [`OwnedLatch::finish_sleep`].
//! * No allocation of latches: the `proc` crate embeds one in each proc slot and calls
//!   [`Latch::init_shared`] when the postmaster creates shared memory.
//! * No Windows events, no self-pipe fallback.
//!
//! Key types: [`Latch`], [`OwnedLatch`], [`SleepMode`], [`SleepOutcome`], [`LatchError`]; "my
//! latch" for signal handlers: [`install_my_latch`], [`set_my_latch`].

mod latch;
mod my_latch;
mod sync;
mod sys;

pub use latch::{
    Latch, LatchError, LatchOwner, LatchWait, OwnedLatch, Prepared, SleepMode, SleepOutcome,
};
pub use my_latch::{install_my_latch, my_latch, set_my_latch};

/// The signal number a setter sends to wake an owner sleeping in [`SleepMode::Signal`]
/// (`SIGURG`); `waiteventset` keeps it blocked and reads it through a signalfd.
pub const WAKEUP_SIGNAL: i32 = sys::WAKEUP_SIGNAL;

#[cfg(all(test, not(loom)))]
mod model;
#[cfg(all(test, not(loom)))]
mod tests;
