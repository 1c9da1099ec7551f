//! Multi-process tests of the latch, under libtest-mimic on one test thread: each case is a trial
//! run on the main thread as the parent, and re-executed copies of this binary are the children
//! (never a bare fork; they take their role before the harness starts). Every wait has a timeout
//! and every child a watchdog, so a lost wake-up fails instead of hanging.

mod common;

use common::{expect_success, pin, role, run_tests, spin_ns, Kit, Rng};
use pgipc_latch::{install_my_latch, Latch, LatchError, LatchWait, OwnedLatch, SleepMode};
use std::sync::atomic::Ordering;
use std::time::Duration;

const PING_PONGS: u64 = 1_000_000;
const STRESS_ROUNDS: u64 = 100_000;
const WAIT: Option<Duration> = Some(Duration::from_secs(10));
const WATCHDOG: Duration = Duration::from_secs(120);

fn main() -> std::process::ExitCode {
    if let Some(r) = role() {
        let args: Vec<String> = std::env::args().collect();
        std::process::exit(child(&r, &args[1..]));
    }
    run_tests(&[
        ("ping_pong_1e6_through_each_others_latches", ping_pong),
        ("set_between_reset_and_wait_is_never_lost", stress),
        ("latch_set_from_signal_handler_wakes_owner", signal_handler),
        ("ownership_is_exclusive_across_processes", ownership),
    ])
}

fn child(role: &str, args: &[String]) -> i32 {
    let kit = Kit::attach();
    let a = &*kit.arena;
    let n: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(0);
    match role {
        "pong" => {
            pin(&[0]);
            let mine = OwnedLatch::own(&a.latches[1]).expect("own latch 1");
            a.words[9].store(1, Ordering::SeqCst); // ready
            for _ in 0..n {
                if mine.wait(WAIT) != Ok(LatchWait::Set) {
                    return 2;
                }
                mine.reset();
                a.words[0].fetch_add(1, Ordering::Relaxed);
                a.latches[0].set();
            }
            0
        }
        "stress" => {
            let mine = OwnedLatch::own(&a.latches[1]).expect("own latch 1");
            a.words[9].store(1, Ordering::SeqCst);
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            for k in 1..=n {
                spin_ns(rng.next() % 20_000);
                a.words[1].store(k, Ordering::Relaxed); // work
                a.latches[0].set();
                loop {
                    mine.reset();
                    if a.words[2].load(Ordering::Relaxed) >= k {
                        break;
                    }
                    if mine.wait(WAIT) == Ok(LatchWait::TimedOut) {
                        return 2;
                    }
                }
            }
            0
        }
        "handler" => {
            let kit: &'static Kit = Box::leak(Box::new(kit));
            let latch: &'static Latch = &kit.arena.latches[2];
            let mine = OwnedLatch::own(latch).expect("own latch 2");
            install_my_latch(latch);
            common::on_sigusr1_set_my_latch();
            mine.reset();
            kit.arena.words[3].store(1, Ordering::SeqCst);
            match mine.wait(WAIT) {
                Ok(LatchWait::Set) => 0,
                _ => 3,
            }
        }
        "own-fight" => {
            let parent: i32 = args[0].parse().expect("pid");
            match OwnedLatch::own(&a.latches[3]) {
                Err(LatchError::AlreadyOwned { pid }) if pid == parent => 0,
                other => {
                    eprintln!("own-fight: {other:?}");
                    4
                }
            }
        }
        "own-take" => {
            let mine = OwnedLatch::own(&a.latches[3]).expect("own after re-init");
            a.words[4].store(std::process::id().into(), Ordering::SeqCst);
            std::mem::forget(mine); // exits still owning it
            0
        }
        _ => 100,
    }
}

fn ping_pong() -> Result<(), String> {
    // Both processes on one CPU: a same-CPU futex hand-off costs ~5 us here, a cross-CPU one
    // ~50 us, and the test should take seconds, not minutes.
    pin(&[0]);
    let kit = Kit::create();
    let a = &*kit.arena;
    let mine = OwnedLatch::own(&a.latches[0]).map_err(|e| e.to_string())?;
    let mut c = kit.spawn("pong", &[&PING_PONGS.to_string()]);
    kit.wait_word(9)?;
    for i in 0..PING_PONGS {
        a.latches[1].set();
        if mine.wait(WAIT) != Ok(LatchWait::Set) {
            return Err(format!("no answer to ping {i}"));
        }
        mine.reset();
    }
    expect_success(&mut c, WATCHDOG)?;
    let got = a.words[0].load(Ordering::SeqCst);
    if got != PING_PONGS {
        return Err(format!("{got} pongs"));
    }
    Ok(())
}

fn stress() -> Result<(), String> {
    let cpus = [0, 1];
    pin(&cpus[..common::ncpus().min(2)]);
    let kit = Kit::create();
    let a = &*kit.arena;
    let mine = OwnedLatch::own(&a.latches[0]).map_err(|e| e.to_string())?;
    let mut c = kit.spawn("stress", &[&STRESS_ROUNDS.to_string()]);
    kit.wait_word(9)?;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for k in 1..=STRESS_ROUNDS {
        loop {
            mine.reset();
            if a.words[1].load(Ordering::Relaxed) >= k {
                break;
            }
            if mine.wait(WAIT) == Ok(LatchWait::TimedOut) {
                return Err(format!("lost wake-up in round {k}"));
            }
        }
        spin_ns(rng.next() % 20_000);
        a.words[2].store(k, Ordering::Relaxed); // ack
        a.latches[1].set();
    }
    expect_success(&mut c, WATCHDOG)
}

fn signal_handler() -> Result<(), String> {
    common::signal_wakes_sleeper("handler", SleepMode::Futex)
}

fn ownership() -> Result<(), String> {
    let kit = Kit::create();
    let a = &*kit.arena;
    let stale = OwnedLatch::own(&a.latches[3]).map_err(|e| e.to_string())?;
    let me = std::process::id().to_string();
    expect_success(&mut kit.spawn("own-fight", &[&me]), WATCHDOG)?;
    // The postmaster re-initialises the latch; another process takes it; our stale handle's
    // drop must leave the new owner alone, and waiting on it is an error value.
    a.latches[3].init_shared();
    expect_success(&mut kit.spawn("own-take", &[]), WATCHDOG)?;
    let taker = a.words[4].load(Ordering::SeqCst) as i32;
    if stale.wait(Some(Duration::ZERO)) != Err(LatchError::NotOwner { owner: taker }) {
        return Err("stale handle could wait".into());
    }
    drop(stale);
    if a.latches[3].owner_pid() != Some(taker) {
        return Err(format!(
            "owner is {:?}, not {taker}",
            a.latches[3].owner_pid()
        ));
    }
    // The taker is gone: the postmaster reclaims its latch.
    if !a.latches[3].reclaim_from(taker) || a.latches[3].owner_pid().is_some() {
        return Err("reclaim failed".into());
    }
    Ok(())
}
