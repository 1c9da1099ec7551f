//! Latch benchmarks, each against a raw baseline measured in the same run, interleaved:
//!
//! * `latch/roundtrip_*`: two processes ping-pong through each other's latches (latch-only
//!   waits, i.e. futex sleeps) vs `raw_futex_pingpong_*` (a flag + `FUTEX_WAKE` / `FUTEX_WAIT`
//!   each way), with both processes pinned to one CPU and to two CPUs.
//! * `latch/set_already_set`: `set` on a set latch vs `raw_fence_load` (a SeqCst fence and a
//!   load, the least a correct `set` must do).
//!
//! * `calibration/*_again`: the baseline against itself, to show the noise floor of the ratio
//!   (cross-CPU wake-ups on this VM drift between ~5 and ~50 us from minute to minute).
//!
//! Run: `cargo bench -p pgipc-latch`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::bench::{interleave, report, Driver};
use common::{bench, pin, role, Kit};
use pgipc_latch::{Latch, OwnedLatch};
use rustix::thread::futex;
use std::hint::black_box;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::Instant;

const RAW_FUTEX: u64 = 1;
const LATCH: u64 = 2;
const PAIRS: usize = 25;
const ROUND_TRIPS: u64 = 1_000;

/// The futex words of the raw ping-pong: `slots[2]` (to the child), `slots[3]` (back).
fn futex_words(kit: &Kit) -> (&AtomicU32, &AtomicU32) {
    (&kit.arena.slots[2], &kit.arena.slots[3])
}

fn raw_wait(w: &AtomicU32) {
    while w.load(Ordering::Acquire) == 0 {
        let _ = futex::wait(w, futex::Flags::empty(), 0, None);
    }
    w.store(0, Ordering::Relaxed);
}

fn raw_post(w: &AtomicU32) {
    w.store(1, Ordering::Release);
    let _ = futex::wake(w, futex::Flags::empty(), 1);
}

fn main() {
    if let Some(r) = role() {
        child(&r);
        return;
    }
    println!("latch benchmarks: {PAIRS} interleaved pairs of {ROUND_TRIPS} round trips");
    for (label, child_cpu) in [("one_cpu", 0usize), ("two_cpus", 1)] {
        if child_cpu >= common::ncpus() {
            continue;
        }
        pin(&[0]);
        let kit = Kit::create();
        let mine = OwnedLatch::own(&kit.arena.latches[0]).expect("own");
        let mut d = Driver::new(
            kit.bench_words(),
            kit.spawn("pong", &[&child_cpu.to_string()]),
        );
        let (to_child, from_child) = futex_words(&kit);
        let peer: &Latch = &kit.arena.latches[1];
        // warm-up
        d.batch(LATCH, 500, || {
            peer.set();
            let _ = mine.wait(None);
            mine.reset();
        });
        let (base, cand) = interleave(PAIRS, |latch| {
            if latch {
                d.batch(LATCH, ROUND_TRIPS, || {
                    peer.set();
                    let _ = mine.wait(None);
                    mine.reset();
                })
            } else {
                d.batch(RAW_FUTEX, ROUND_TRIPS, || {
                    raw_post(to_child);
                    raw_wait(from_child);
                })
            }
        });
        // The noise floor: the baseline against itself, interleaved the same way.
        let (aa_base, aa_cand) = interleave(PAIRS, |_| {
            d.batch(RAW_FUTEX, ROUND_TRIPS, || {
                raw_post(to_child);
                raw_wait(from_child);
            })
        });
        println!("# round trip, parent pinned to CPU 0, child to CPU {child_cpu}");
        report(
            &format!("calibration/raw_futex_pingpong_{label}_again"),
            "us",
            &aa_cand,
            &format!("raw_futex_pingpong_{label}"),
            &aa_base,
        );
        report(
            &format!("latch/roundtrip_{label}"),
            "us",
            &cand,
            &format!("raw_futex_pingpong_{label}"),
            &base,
        );
        d.finish();
    }
    set_already_set();
}

fn child(role: &str) {
    let kit = Kit::attach();
    let cpu: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pin(&[cpu]);
    assert_eq!(role, "pong");
    let mine = OwnedLatch::own(&kit.arena.latches[1]).expect("own");
    let peer: &Latch = &kit.arena.latches[0];
    let (to_child, from_child) = futex_words(&kit);
    bench::serve(kit.bench_words(), |mode, n| {
        for _ in 0..n {
            match mode {
                RAW_FUTEX => {
                    raw_wait(to_child);
                    raw_post(from_child);
                }
                _ => {
                    let _ = mine.wait(None);
                    mine.reset();
                    peer.set();
                }
            }
        }
    });
}

fn set_already_set() {
    const N: u64 = 2_000_000;
    pin(&[0]);
    let latch = Latch::new();
    latch.set();
    let word = AtomicU32::new(1);
    let (base, cand) = interleave(PAIRS, |candidate| {
        let t = Instant::now();
        if candidate {
            for _ in 0..N {
                black_box(&latch).set();
            }
        } else {
            for _ in 0..N {
                fence(Ordering::SeqCst);
                black_box(word.load(Ordering::Relaxed));
            }
        }
        t.elapsed().as_secs_f64() * 1e9 / N as f64
    });
    println!("# set on an already-set latch, one process pinned to CPU 0");
    report(
        "latch/set_already_set",
        "ns",
        &cand,
        "raw_fence_load",
        &base,
    );
}
