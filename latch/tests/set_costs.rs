//! What a set costs, counted through `pgipc_ipc_stats` (a set that raises the flag counts
//! `latch.sets`; one that also makes the wake-up system call counts `latch.wakeups`): setting
//! a latch whose owner is awake, or a latch that is already set, makes no system call; only a
//! sleeping owner is woken. (Its own binary: the counters are per process, and no other test
//! may set latches meanwhile.)

#![cfg(not(loom))]

use pgipc_ipc_stats::{clear_my_block, read, set_my_block, Counter, STRIDE};
use pgipc_latch::{Latch, LatchWait, OwnedLatch, SleepMode};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

#[test]
fn a_set_makes_a_system_call_only_for_a_sleeping_owner() {
    let block: Vec<AtomicU64> = (0..STRIDE).map(|_| AtomicU64::new(0)).collect();
    // SAFETY: `block` holds STRIDE counters and outlives their use: cleared below.
    unsafe { set_my_block(block.as_ptr()) };
    let counts = || {
        (
            read(&block, 0, Counter::LatchSets),
            read(&block, 0, Counter::LatchWakeups),
        )
    };
    let latch = Latch::new();
    let owned = OwnedLatch::own(&latch).expect("own");

    latch.set();
    assert_eq!(counts(), (1, 0), "an awake owner: the flag only");
    latch.set();
    assert_eq!(counts(), (1, 0), "an already set latch: nothing at all");
    owned.reset();

    std::thread::scope(|s| {
        let sleeper = s.spawn(|| owned.wait(Some(Duration::from_secs(20))));
        let deadline = Instant::now() + Duration::from_secs(10);
        while latch.sleep_mode() != SleepMode::Futex {
            assert!(Instant::now() < deadline, "the owner never slept");
            std::thread::yield_now();
        }
        latch.set();
        assert_eq!(sleeper.join().expect("sleeper"), Ok(LatchWait::Set));
    });
    assert_eq!(counts(), (2, 1), "a sleeping owner: one wake-up");
    clear_my_block();
}
