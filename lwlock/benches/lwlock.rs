//! LWLock and spinlock costs next to a bare atomic compare-exchange, measured in the same run.
//!
//! `cargo bench -p pgipc-lwlock`. Baseline and candidate alternate (A B A B ...), and each figure
//! is the median of the pairwise ratios. Prints `BENCH <name> <value> <unit> <ratio>x <baseline>`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{SharedMap, ROLE_ENV};
use pgipc_lwlock::{tranche, LWLock, LWLockMode, LWLockProc, SpinLock, WaitSlot};
use pgipc_tests::bench::{line, median};
use pgipc_tests::cpu::pin;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROUNDS: usize = 15;

/// Runs `f` `n` times and returns ns per call.
fn per_op(n: u64, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn report(name: &str, values: &[f64], ratios: &[f64], unit: &str, baseline: &str) {
    let v = median(values);
    let r = median(ratios);
    println!("{name:<40} {v:>10.2} {unit}   ({r:.2}x {baseline})");
    println!("{}", line(name, v, 2, unit, r, baseline));
}

fn uncontended() {
    const N: u64 = 5_000_000;
    let word = AtomicU32::new(0);
    let spin = SpinLock::new();
    let lw = LWLock::new(tranche::builtin::TEST);
    let slots = [WaitSlot::default()];
    let me = LWLockProc::new(&slots, 0).expect("slot 0");
    let cas = || {
        let w = black_box(&word);
        let _ = w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed);
        w.store(0, Ordering::Release);
    };
    let (mut base, mut sp, mut lx, mut ls) = (vec![], vec![], vec![], vec![]);
    let (mut rsp, mut rlx, mut rls) = (vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let b = per_op(N, cas);
        let s = per_op(N, || drop(black_box(&spin).lock()));
        let b2 = per_op(N, cas);
        let x = per_op(N, || {
            drop(black_box(&lw).acquire(&me, LWLockMode::Exclusive))
        });
        let b3 = per_op(N, cas);
        let sh = per_op(N, || drop(black_box(&lw).acquire(&me, LWLockMode::Shared)));
        rsp.push(s / b);
        rlx.push(x / b2);
        rls.push(sh / b3);
        base.extend([b, b2, b3]);
        sp.push(s);
        lx.push(x);
        ls.push(sh);
    }
    let ones = vec![1.0];
    report(
        "lwlock/atomic_cas_release",
        &base,
        &ones,
        "ns",
        "atomic_cas_release",
    );
    report(
        "lwlock/spinlock_uncontended",
        &sp,
        &rsp,
        "ns",
        "atomic_cas_release",
    );
    report(
        "lwlock/lwlock_exclusive_uncontended",
        &lx,
        &rlx,
        "ns",
        "atomic_cas_release",
    );
    report(
        "lwlock/lwlock_shared_uncontended",
        &ls,
        &rls,
        "ns",
        "atomic_cas_release",
    );
}

// Two-process contention: both processes do `ITERS` lock+increment+unlock rounds.
const CONT_ITERS: u64 = 2_000_000;
const GO_OFF: usize = 0; // AtomicU32: round number the children should run (0 = wait)
const DONE_OFF: usize = 64; // AtomicU32: children done with the current round
const MODE_OFF: usize = 128; // AtomicU32: 0 = raw fetch_add, 1 = spinlock, 2 = LWLock
const COUNTER_OFF: usize = 192;
const SPIN_OFF: usize = 256;
const LOCK_OFF: usize = 320;
const SLOTS_OFF: usize = 1024;
const MAP_LEN: usize = SLOTS_OFF + 2 * std::mem::size_of::<WaitSlot>();

struct View<'a> {
    go: &'a AtomicU32,
    done: &'a AtomicU32,
    mode: &'a AtomicU32,
    counter: &'a AtomicU64,
    spin: &'a SpinLock,
    lock: &'a LWLock,
    slots: &'a [WaitSlot],
}

fn view(m: &SharedMap) -> View<'_> {
    // SAFETY: atomics-only types, valid when zeroed, aligned offsets inside MAP_LEN.
    unsafe {
        View {
            go: m.at(GO_OFF),
            done: m.at(DONE_OFF),
            mode: m.at(MODE_OFF),
            counter: m.at(COUNTER_OFF),
            spin: m.at(SPIN_OFF),
            lock: m.at(LOCK_OFF),
            slots: m.slice(SLOTS_OFF, 2),
        }
    }
}

fn contention_child() {
    let m = SharedMap::from_env();
    let v = view(&m);
    let procno: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    if let Some(cpu) = std::env::args().nth(2).and_then(|a| a.parse().ok()) {
        pin(&[cpu]);
    }
    let me = LWLockProc::new(v.slots, procno).expect("slot");
    let mut seen = 0;
    loop {
        let round = loop {
            let r = v.go.load(Ordering::Acquire);
            if r != seen {
                break r;
            }
            std::thread::sleep(Duration::from_micros(50));
        };
        seen = round;
        if round == u32::MAX {
            return;
        }
        match v.mode.load(Ordering::Acquire) {
            0 => {
                for _ in 0..CONT_ITERS {
                    v.counter.fetch_add(1, Ordering::AcqRel);
                }
            }
            1 => {
                for _ in 0..CONT_ITERS {
                    let _g = v.spin.lock();
                    let c = v.counter.load(Ordering::Relaxed);
                    v.counter.store(c + 1, Ordering::Relaxed);
                }
            }
            _ => {
                for _ in 0..CONT_ITERS {
                    let _g = v.lock.acquire(&me, LWLockMode::Exclusive);
                    let c = v.counter.load(Ordering::Relaxed);
                    v.counter.store(c + 1, Ordering::Relaxed);
                }
            }
        }
        v.done.fetch_add(1, Ordering::AcqRel);
    }
}

fn contended(pinning: &str, cpus: [Option<usize>; 2]) {
    let m = SharedMap::create(MAP_LEN);
    let v = view(&m);
    v.lock.init(tranche::builtin::TEST);
    let mut kids: Vec<_> = (0..2)
        .map(|i| {
            let cpu = cpus[i].map(|c| c.to_string()).unwrap_or_default();
            m.spawn("contend", &[&i.to_string(), &cpu])
        })
        .collect();
    let mut round = 0u32;
    let mut run = |mode: u32| -> f64 {
        v.mode.store(mode, Ordering::Release);
        v.counter.store(0, Ordering::Release);
        v.done.store(0, Ordering::Release);
        round += 1;
        let t = Instant::now();
        v.go.store(round, Ordering::Release);
        while v.done.load(Ordering::Acquire) < 2 {
            std::thread::sleep(Duration::from_micros(100));
        }
        let ns = t.elapsed().as_nanos() as f64 / (2 * CONT_ITERS) as f64;
        assert_eq!(
            v.counter.load(Ordering::Acquire),
            2 * CONT_ITERS,
            "lost increments"
        );
        ns
    };
    let (mut raw, mut sp, mut lw, mut rsp, mut rlw) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..7 {
        let b = run(0);
        let s = run(1);
        let b2 = run(0);
        let l = run(2);
        rsp.push(s / b);
        rlw.push(l / b2);
        raw.extend([b, b2]);
        sp.push(s);
        lw.push(l);
    }
    v.go.store(u32::MAX, Ordering::Release);
    for k in &mut kids {
        let _ = k.wait();
    }
    let ones = vec![1.0];
    let base = format!("atomic_fetch_add_2proc_{pinning}");
    report(&base, &raw, &ones, "ns/op", &base);
    report(
        &format!("lwlock/spinlock_2proc_{pinning}"),
        &sp,
        &rsp,
        "ns/op",
        &base,
    );
    report(
        &format!("lwlock/lwlock_excl_2proc_{pinning}"),
        &lw,
        &rlw,
        "ns/op",
        &base,
    );
}

fn main() {
    if std::env::var(ROLE_ENV).is_ok() {
        contention_child();
        return;
    }
    // `cargo bench` passes `--bench`; nothing to parse.
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("uncontended (one process, unpinned)");
    uncontended();
    println!("two processes contending, each pinned to its own CPU");
    if ncpu >= 2 {
        contended("two_cpus", [Some(0), Some(1)]);
    }
    println!("two processes contending, both pinned to CPU 0");
    contended("one_cpu", [Some(0), Some(0)]);
}
