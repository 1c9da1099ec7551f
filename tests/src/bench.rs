//! The interleaved A/B runner and the `BENCH` line every bench prints.
//!
//! A figure is measured in rounds; each round measures the baseline (A) and the candidate (B)
//! back to back, alternating which goes first ([`interleave`]), so drift of the machine hits
//! both alike. The value reported is the [`median`] over the rounds, the ratio the median of
//! the pairwise candidate/baseline ratios ([`median_ratio`]), not the ratio of the medians.
//! [`line()`] formats `BENCH <name> <value> <unit> <ratio>x <baseline>`, the format BENCHMARKS.md
//! and the benches' readers parse.
//!
//! [`serve`] and [`Driver`] are the two sides of a persistent helper process that runs
//! batches on command, through words of shared memory the caller maps.

use crate::harness::{wait_child, Proc};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The median of `v` (the mean of the two middle values for an even count); NaN if empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// The median of the pairwise ratios `cand[i] / base[i]` (pairs beyond the shorter slice are
/// ignored).
pub fn median_ratio(cand: &[f64], base: &[f64]) -> f64 {
    let r: Vec<f64> = cand.iter().zip(base).map(|(c, b)| c / b).collect();
    median(&r)
}

/// Runs `rounds` (baseline, candidate) measurements, alternating which goes first (A B, B A,
/// …); `measure(false)` measures the baseline, `measure(true)` the candidate. Returns
/// (baselines, candidates), index i of each from round i.
pub fn interleave(rounds: usize, mut measure: impl FnMut(bool) -> f64) -> (Vec<f64>, Vec<f64>) {
    let (mut b, mut c) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds {
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

/// `BENCH <name> <value> <unit> <ratio>x <baseline>`, the value with `decimals` decimals and
/// the ratio with two.
pub fn line(name: &str, value: f64, decimals: usize, unit: &str, ratio: f64, base: &str) -> String {
    format!("BENCH {name} {value:.decimals$} {unit} {ratio:.2}x {base}")
}

/// The two `BENCH` lines of an A/B figure: the baseline's (`base_name`, its median, `1.00x`
/// against itself, under the reference name `base_ref`) and the candidate's (its median and the
/// median of the pairwise ratios against `base_ref`).
pub fn report_pair(
    (name, cand): (&str, &[f64]),
    (base_name, base_ref, base): (&str, &str, &[f64]),
    decimals: usize,
    unit: &str,
) -> [String; 2] {
    [
        line(base_name, median(base), decimals, unit, 1.0, base_ref),
        line(
            name,
            median(cand),
            decimals,
            unit,
            median_ratio(cand, base),
            base_ref,
        ),
    ]
}

/// Prints [`report_pair`] with three decimals, the baseline named as itself.
pub fn report(name: &str, unit: &str, cand: &[f64], base_name: &str, base: &[f64]) {
    for l in report_pair((name, cand), (base_name, base_name, base), 3, unit) {
        println!("{l}");
    }
}

/// Prints [`report_pair`] for a figure measured on this server and on PostgreSQL 15:
/// `group/name` against `group/postgres15_name`, the baseline referred to as
/// `postgres15/name`.
pub fn report_vs_postgres15(
    group: &str,
    name: &str,
    unit: &str,
    decimals: usize,
    ours: &[f64],
    pg: &[f64],
) {
    let base = format!("{group}/postgres15_{name}");
    let base_ref = format!("postgres15/{name}");
    for l in report_pair(
        (&format!("{group}/{name}"), ours),
        (&base, &base_ref, pg),
        decimals,
        unit,
    ) {
        println!("{l}");
    }
}

/// psql as `postgres` to database `postgres` of the server listening in socket directory
/// `sock` on `port`, printing unaligned tuples only (`-X -At`).
pub fn psql(sock: &Path, port: u16) -> Command {
    let mut c = Command::new("psql");
    c.args(["-X", "-At", "-h"]).arg(sock).args([
        "-p",
        &port.to_string(),
        "-U",
        "postgres",
        "-d",
        "postgres",
    ]);
    c
}

/// Runs `sql` through `psql` (a [`psql`] command): the trimmed output, or `None` when psql
/// failed (the server not up yet, an error). Gives up connecting after 2 s.
pub fn psql_ok(mut psql: Command, sql: &str) -> Option<String> {
    let o = psql
        .args(["-c", sql])
        .env("PGCONNECT_TIMEOUT", "2")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

// The command words [`serve`] and [`Driver`] share: indexes into the caller's words.
const CMD_SEQ: usize = 0;
const CMD_MODE: usize = 1;
const CMD_N: usize = 2;
const READY_SEQ: usize = 3;
const DONE_SEQ: usize = 4;
/// How many words [`serve`] and [`Driver`] use (the caller hands in at least this many).
pub const WORDS: usize = 5;

/// Mode 0 tells the helper to exit.
pub const EXIT: u64 = 0;

/// The helper's loop: for each command, announces readiness, then calls `run(mode, n)`, then
/// reports it done. Returns when told to exit ([`EXIT`]).
pub fn serve(words: &[AtomicU64], mut run: impl FnMut(u64, u64)) {
    let w = &words[..WORDS];
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

/// The parent's side of [`serve`]: it owns the helper process.
#[derive(Debug)]
pub struct Driver<'a> {
    words: &'a [AtomicU64],
    seq: u64,
    child: Proc,
}

fn await_word(w: &AtomicU64, want: u64) {
    let t = Instant::now();
    while w.load(Ordering::SeqCst) != want {
        assert!(t.elapsed() < Duration::from_secs(60), "bench helper stuck");
        std::thread::yield_now();
    }
}

impl<'a> Driver<'a> {
    /// Drives `child`, which runs [`serve`] on the same `words` (shared memory).
    pub fn new(words: &'a [AtomicU64], child: Proc) -> Self {
        let words = &words[..WORDS];
        Driver {
            words,
            seq: words[CMD_SEQ].load(Ordering::SeqCst),
            child,
        }
    }

    /// Runs `n` round trips of `mode` with `ping` (one round trip per call) and returns the
    /// mean time per round trip in microseconds.
    pub fn batch(&mut self, mode: u64, n: u64, mut ping: impl FnMut()) -> f64 {
        let w = self.words;
        w[CMD_MODE].store(mode, Ordering::SeqCst);
        w[CMD_N].store(n, Ordering::SeqCst);
        self.seq += 1;
        w[CMD_SEQ].store(self.seq, Ordering::SeqCst);
        await_word(&w[READY_SEQ], self.seq);
        let t = Instant::now();
        for _ in 0..n {
            ping();
        }
        let e = t.elapsed();
        await_word(&w[DONE_SEQ], self.seq);
        e.as_secs_f64() * 1e6 / n as f64
    }

    /// Tells the helper to exit and reaps it.
    pub fn finish(mut self) {
        let w = self.words;
        w[CMD_MODE].store(EXIT, Ordering::SeqCst);
        self.seq += 1;
        w[CMD_SEQ].store(self.seq, Ordering::SeqCst);
        let _ = wait_child(&mut self.child, Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn median_ratio_is_of_pairs_not_of_medians() {
        // Pairwise: 2/1, 1/4, 9/3 -> ratios 2, 0.25, 3 -> median 2. Ratio of medians: 2/3.
        let base = [1.0, 4.0, 3.0];
        let cand = [2.0, 1.0, 9.0];
        assert_eq!(median_ratio(&cand, &base), 2.0);
        assert!((median(&cand) / median(&base) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn interleave_alternates_order() {
        let mut order = Vec::new();
        let (b, c) = interleave(4, |cand| {
            order.push(cand);
            if cand {
                10.0 + order.len() as f64
            } else {
                order.len() as f64
            }
        });
        assert_eq!(order, [false, true, true, false, false, true, true, false]);
        assert_eq!(b, [1.0, 4.0, 5.0, 8.0]);
        assert_eq!(c, [12.0, 13.0, 16.0, 17.0]);
    }

    #[test]
    fn bench_line_format() {
        assert_eq!(
            line("latch/x", 1.23456, 3, "us", 0.987, "raw/x"),
            "BENCH latch/x 1.235 us 0.99x raw/x"
        );
        let [b, c] = report_pair(
            ("server/tps", &[110.0, 90.0, 100.0]),
            (
                "server/postgres15_tps",
                "postgres15/tps",
                &[100.0, 100.0, 100.0],
            ),
            0,
            "tps",
        );
        assert_eq!(
            b,
            "BENCH server/postgres15_tps 100 tps 1.00x postgres15/tps"
        );
        assert_eq!(c, "BENCH server/tps 100 tps 1.00x postgres15/tps");
    }
}
