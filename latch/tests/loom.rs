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
