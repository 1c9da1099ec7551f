//! Benchmark plumbing shared by `latch` and `waiteventset` benches: a persistent child that
//! answers batches of pings in a mode the parent chooses, interleaved A/B batches, and the
//! `BENCH` line (median value, median of pairwise ratios).
#![allow(dead_code, unreachable_pub)]

use super::{Kit, Proc};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const CMD_SEQ: usize = 10;
const CMD_MODE: usize = 11;
const CMD_N: usize = 12;
const READY_SEQ: usize = 13;
const DONE_SEQ: usize = 14;

/// Mode 0 tells the child to exit.
pub const EXIT: u64 = 0;

/// The child's loop: for each command, call `setup(mode)` once, announce readiness, then
/// `run(mode, n)` (answer `n` pings). Returns when told to exit.
pub fn serve(kit: &Kit, mut run: impl FnMut(u64, u64)) {
    let w = &kit.arena.words;
    let mut last = 0;
    loop {
        let seq = w[CMD_SEQ].load(Ordering::SeqCst);
        if seq == last {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        last = seq;
        let mode = w[CMD_MODE].load(Ordering::SeqCst);
        let n = w[CMD_N].load(Ordering::SeqCst);
        if mode == EXIT {
            return;
        }
        w[READY_SEQ].store(seq, Ordering::SeqCst);
        run(mode, n);
        w[DONE_SEQ].store(seq, Ordering::SeqCst);
    }
}

/// The parent's side of [`serve`].
pub struct Driver<'a> {
    kit: &'a Kit,
    seq: u64,
    child: Proc,
}

fn await_word(kit: &Kit, idx: usize, want: u64) {
    let t = Instant::now();
    while kit.arena.words[idx].load(Ordering::SeqCst) != want {
        assert!(t.elapsed() < Duration::from_secs(60), "bench child stuck");
        std::thread::yield_now();
    }
}

impl<'a> Driver<'a> {
    pub fn new(kit: &'a Kit, child: Proc) -> Self {
        Driver {
            kit,
            seq: kit.arena.words[CMD_SEQ].load(Ordering::SeqCst),
            child,
        }
    }

    /// Runs `n` round trips of `mode` with `ping` (one round trip per call) and returns the
    /// mean time per round trip in microseconds.
    pub fn batch(&mut self, mode: u64, n: u64, mut ping: impl FnMut()) -> f64 {
        let w = &self.kit.arena.words;
        w[CMD_MODE].store(mode, Ordering::SeqCst);
        w[CMD_N].store(n, Ordering::SeqCst);
        self.seq += 1;
        w[CMD_SEQ].store(self.seq, Ordering::SeqCst);
        await_word(self.kit, READY_SEQ, self.seq);
        let t = Instant::now();
        for _ in 0..n {
            ping();
        }
        let e = t.elapsed();
        await_word(self.kit, DONE_SEQ, self.seq);
        e.as_secs_f64() * 1e6 / n as f64
    }

    /// Tells the child to exit and reaps it.
    pub fn finish(mut self) {
        let w = &self.kit.arena.words;
        w[CMD_MODE].store(EXIT, Ordering::SeqCst);
        self.seq += 1;
        w[CMD_SEQ].store(self.seq, Ordering::SeqCst);
        let _ = super::wait_child(&mut self.child, Duration::from_secs(30));
    }
}

/// The median of `v`.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// Prints the baseline's and the candidate's `BENCH` lines: each value is the median over the
/// batches, the ratio the median of the pairwise (candidate / baseline) ratios.
pub fn report(name: &str, unit: &str, cand: &[f64], base_name: &str, base: &[f64]) {
    let ratios: Vec<f64> = cand.iter().zip(base).map(|(c, b)| c / b).collect();
    println!(
        "BENCH {base_name} {:.3} {unit} 1.00x {base_name}",
        median(base)
    );
    println!(
        "BENCH {name} {:.3} {unit} {:.2}x {base_name}",
        median(cand),
        median(&ratios)
    );
}

/// Interleaves `pairs` (baseline, candidate) measurements, alternating which goes first;
/// `measure(false)` measures the baseline, `measure(true)` the candidate.
pub fn interleave(pairs: usize, mut measure: impl FnMut(bool) -> f64) -> (Vec<f64>, Vec<f64>) {
    let (mut b, mut c) = (Vec::new(), Vec::new());
    for i in 0..pairs {
        if i % 2 == 0 {
            b.push(measure(false));
            c.push(measure(true));
        } else {
            c.push(measure(true));
            b.push(measure(false));
        }
    }
    (b, c)
}
