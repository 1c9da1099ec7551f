//! A process waiting for an LWLock shows it in `pg_stat_activity`: session A stops inside
//! `GetNewTransactionId` holding XidGenLock exclusive (injection point
//! `get-new-transaction-id` = `wait`), session B asks for an xid too and sleeps on the lock,
//! and a third session sees B with `wait_event_type` LWLock and `wait_event` XidGen (the
//! tranche's name, as PostgreSQL shows it). (Should B reach the point first, the roles swap
//! and the test checks the other way round.) After the detach both get their ids, the
//! holder's first, both are idle in ClientRead again, and the waiter's `pgipc_stat_ipc`
//! counted its LWLock wait.
//!
//! Built with the `injection_points` feature (`cargo test -p pgipc-tests --features
//! injection_points --test lwlock_wait`). A `harness = false` test: libtest-mimic runs it on
//! one thread (A and B run their blocking statements on helper threads: nothing forks); a
//! watchdog ends the binary if it hangs.

mod common;

use common::server::{scratch, watchdog, Builder};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const WATCHDOG: Duration = Duration::from_secs(120);

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn one(c: &mut postgres::Client, sql: &str) -> Option<String> {
    ok(c.simple_query(sql)).into_iter().find_map(|m| match m {
        postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
        _ => None,
    })?
}

/// Polls `sql` on `c` until it returns `want` (10 s at most); returns the polls it took.
fn until(c: &mut postgres::Client, sql: &str, want: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut polls = 0;
    loop {
        polls += 1;
        let got = one(c, sql);
        if got.as_deref() == Some(want) {
            return polls;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: still {got:?} after 10 s, waiting for {want:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn a_waiter_on_xidgenlock_shows_lwlock_xidgen() {
    let srv = ok(Builder::in_dir(scratch("pgipc-lwlock-wait", "xidgen")).start());
    let mut c = ok(srv.client());
    let mut a = ok(srv.client());
    let mut b = ok(srv.client());
    let a_pid = one(&mut a, "SELECT pg_backend_pid()").unwrap();
    let b_pid = one(&mut b, "SELECT pg_backend_pid()").unwrap();
    ok(c.simple_query("SELECT injection_points_attach('get-new-transaction-id', 'wait')"));
    let xid_query = "SELECT pg_current_xact_id()::text";
    let ta = std::thread::spawn(move || (one(&mut a, xid_query).unwrap(), a));
    // A is inside GetNewTransactionId (active, holding XidGenLock) before B starts.
    let row = |pid: &str| {
        format!(
            "SELECT state || ' ' || coalesce(wait_event_type, '-') || '/' || \
             coalesce(wait_event, '-') FROM pg_stat_activity WHERE pid = {pid}"
        )
    };
    until(
        &mut c,
        &format!("SELECT state FROM pg_stat_activity WHERE pid = {a_pid}"),
        "active",
    );
    // The point is reached once A's status is active; give it a moment to take the lock.
    std::thread::sleep(Duration::from_millis(200));
    let tb = std::thread::spawn(move || (one(&mut b, xid_query).unwrap(), b));
    // Whichever reached the point first holds the lock (A, unless it was slower than 200 ms
    // to get there); the other waits on it.
    let polls = until(
        &mut c,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid IN ({a_pid}, {b_pid}) \
             AND state = 'active' AND wait_event_type = 'LWLock' AND wait_event = 'XidGen'"
        ),
        "1",
    );
    let (a_row, b_row) = (
        one(&mut c, &row(&a_pid)).unwrap(),
        one(&mut c, &row(&b_pid)).unwrap(),
    );
    println!("after {polls} polls: A {a_row}; B {b_row}");
    let b_waits = b_row == "active LWLock/XidGen";
    let holder = if b_waits { &a_row } else { &b_row };
    assert!(
        holder.starts_with("active") && !holder.contains("LWLock"),
        "the other holds the lock inside the point: {holder}"
    );
    // The tranche is listed in pg_wait_events.
    assert_eq!(
        one(
            &mut c,
            "SELECT count(*) FROM pg_wait_events WHERE type = 'LWLock' AND name = 'XidGen'"
        ),
        Some("1".into())
    );
    // Detaching releases A (and B then passes the point without stopping).
    ok(c.simple_query("SELECT injection_points_detach('get-new-transaction-id')"));
    // The threads hand the clients back: the sessions stay open.
    let (xa, _a) = ok(ta.join().map_err(|_| "A panicked"));
    let (xb, _b) = ok(tb.join().map_err(|_| "B panicked"));
    let (xa, xb): (u64, u64) = (xa.parse().unwrap(), xb.parse().unwrap());
    if b_waits {
        assert_eq!(xb, xa + 1, "the holder's id first, then the waiter's");
    } else {
        assert_eq!(xa, xb + 1, "the holder's id first, then the waiter's");
    }
    // The waiter's IPC statistics counted the sleep on the lock.
    let waiter = if b_waits { &b_pid } else { &a_pid };
    let mut counter = |name: &str| -> i64 {
        one(
            &mut c,
            &format!(
                "SELECT value FROM pgipc_stat_ipc WHERE pid = {waiter} \
                 AND subsystem = 'lwlock' AND counter = '{name}'"
            ),
        )
        .unwrap()
        .parse()
        .unwrap()
    };
    let waits = counter("waits");
    let waited_us = counter("wait_time_us");
    println!("the waiter's lwlock waits: {waits}, {waited_us} us asleep");
    assert!(waits >= 1, "{waits}");
    // It slept while the holder stood at the injection point, which this test saw happen.
    assert!(waited_us >= 1, "{waited_us}");
    let b_after = until(&mut c, &row(&b_pid), "idle Client/ClientRead");
    let a_after = until(&mut c, &row(&a_pid), "idle Client/ClientRead");
    println!("ids: A {xa}, B {xb}; idle again after {b_after} and {a_after} polls");
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("lwlock_wait", WATCHDOG);
    pgipc_tests::harness::run_cases(&[(
        "a_waiter_on_xidgenlock_shows_lwlock_xidgen",
        a_waiter_on_xidgenlock_shows_lwlock_xidgen,
    )])
}
