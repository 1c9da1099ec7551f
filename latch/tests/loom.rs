//! Loom model of the real latch code: every interleaving (and the weak-memory outcomes loom
//! models) of an owner running PostgreSQL's `reset; check work; wait` loop against setters that
//! publish work and `set`. A lost wake-up shows up as a loom deadlock (the owner asleep in the
//! modelled futex with nobody left to wake it).
//!
//! Run with `latch/ci/loom.sh` (`RUSTFLAGS="--cfg loom" cargo test -p pgipc-latch --test loom
//! --release`); without `--cfg loom` this file is empty.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;
use pgipc_latch::{Latch, LatchWait, OwnedLatch};

fn owner_loop(owned: &OwnedLatch<Arc<Latch>>, work: &AtomicU32, want: u32) {
    loop {
        owned.reset();
        if work.load(Ordering::Relaxed) >= want {
            return;
        }
        assert_eq!(owned.wait(None), Ok(LatchWait::Set));
    }
}

#[test]
fn one_setter_wakes_the_owner() {
    loom::model(|| {
        let latch = Arc::new(Latch::new());
        let work = Arc::new(AtomicU32::new(0));
        let owned = OwnedLatch::own(latch.clone()).unwrap();
        let (l2, w2) = (latch.clone(), work.clone());
        let t = thread::spawn(move || {
            w2.fetch_add(1, Ordering::Relaxed);
            l2.set();
        });
        owner_loop(&owned, &work, 1);
        t.join().unwrap();
    });
}

#[test]
fn two_setters_wake_the_owner() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let latch = Arc::new(Latch::new());
        let work = Arc::new(AtomicU32::new(0));
        let owned = OwnedLatch::own(latch.clone()).unwrap();
        let setters: Vec<_> = (0..2)
            .map(|_| {
                let (l2, w2) = (latch.clone(), work.clone());
                thread::spawn(move || {
                    w2.fetch_add(1, Ordering::Relaxed);
                    l2.set();
                })
            })
            .collect();
        owner_loop(&owned, &work, 2);
        for t in setters {
            t.join().unwrap();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Postmaster death during a latch-only wait (issue 11): a "signal handler" thread raises the
// possibly-dead flag and then sets the latch, as `waiteventset`'s `on_death_signal` does with
// "my latch"; the owner runs the latch-only wait loop with `sleep_unless` (publish the futex
// sleep, look at the latch, look at the flag, sleep) and must end up seeing the flag. A death
// slept through is a loom deadlock: the owner in the modelled FUTEX_WAIT, the handler gone.

use loom::sync::atomic::AtomicBool;
use pgipc_latch::{Prepared, SleepMode};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DeathOrder {
    /// The code since issue 11.
    PublishThenCheck,
    /// The code before: the flag is looked at first, then the latch for the handler to set is
    /// published (a process-wide pointer), and the handler sets a latch only if it finds one.
    CheckThenPublish,
}

/// One run: the owner waits latch-only until it sees the flag; the handler fires once.
fn death_run(order: DeathOrder) {
    let latch = Arc::new(Latch::new());
    let flag = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicBool::new(false));
    let owned = OwnedLatch::own(latch.clone()).unwrap();
    let (l2, f2, p2) = (latch.clone(), flag.clone(), published.clone());
    let handler = thread::spawn(move || {
        f2.store(true, Ordering::SeqCst);
        if order == DeathOrder::PublishThenCheck || p2.load(Ordering::SeqCst) {
            l2.set();
        }
    });
    loop {
        owned.reset();
        match order {
            DeathOrder::PublishThenCheck => {
                owned.sleep_unless(None, || flag.load(Ordering::SeqCst));
            }
            DeathOrder::CheckThenPublish => {
                if owned.prepare_sleep(SleepMode::Futex) == Prepared::MaySleep {
                    if !flag.load(Ordering::SeqCst) {
                        published.store(true, Ordering::SeqCst);
                        owned.futex_sleep(None);
                        published.store(false, Ordering::SeqCst);
                    }
                    owned.finish_sleep();
                }
            }
        }
        if flag.load(Ordering::SeqCst) {
            break; // PostmasterIsAlive() would now read the pipe and exit
        }
    }
    handler.join().unwrap();
}

#[test]
fn postmaster_death_wakes_a_latch_only_wait() {
    loom::model(|| death_run(DeathOrder::PublishThenCheck));
}

#[test]
fn loom_finds_the_old_check_then_publish_window() {
    // Loom reports the deadlock as a panic, printed by the panic hook as usual ("deadlock;
    // threads = ..."): that line is this test finding the window, as it must. (The hook is
    // left alone: loom's coroutines rely on the one they install.)
    let r = std::panic::catch_unwind(|| loom::model(|| death_run(DeathOrder::CheckThenPublish)));
    let err = r.expect_err("loom must find the lost wake-up in the old order");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.starts_with("deadlock"), "loom failed otherwise: {msg}");
}
