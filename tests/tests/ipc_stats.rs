//! `pgipc_stat_ipc` on a running server: each live process has every counter; driving a
//! subsystem from a session moves that session's own counters by what it did.
//!
//! * snapshot: five `SELECT 1` in READ COMMITTED take five snapshots (computed or reused),
//!   plus one for the statement that reads the counters;
//! * latch: a session sleeping in `pg_sleep` and cancelled sets its own latch once (the
//!   SIGINT handler), one set that needed a wake-up system call (it was asleep), and waited;
//! * lwlock: `pg_current_xact_id()` takes LWLocks (XidGenLock among them);
//! * dsm: `test_shm_mq` creates one segment in the calling backend;
//! * sinval: nothing here sends invalidations (no statement changes a catalog), so the
//!   counters start at 0; `pgipc_sinval_roundtrip(100)` writes 100 messages and reads them
//!   back (no catch-up signal, no reset: sinval's multiprocess test moves those, with a
//!   writer and a stalled reader);
//! * shm_mq: `test_shm_mq_pipelined` counts the leader's messages and bytes both ways;
//! * `pgipc_stat_reset_ipc()` zeroes every counter.
//!
//! A `harness = false` test: libtest-mimic runs it on one thread (the sleeping session runs on
//! a helper thread; nothing forks); a watchdog ends the binary if it hangs.

mod common;

use common::server::{scratch, watchdog, Builder};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const WATCHDOG: Duration = Duration::from_secs(120);

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn rows(c: &mut postgres::Client, sql: &str) -> Vec<Vec<String>> {
    ok(c.simple_query(sql))
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// This session's counters, `subsystem.counter` → value (one statement).
fn mine(c: &mut postgres::Client) -> HashMap<String, i64> {
    rows(
        c,
        "SELECT subsystem || '.' || counter, value FROM pgipc_stat_ipc \
         WHERE pid = pg_backend_pid()",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect()
}

fn delta(a: &HashMap<String, i64>, b: &HashMap<String, i64>, k: &str) -> i64 {
    b[k] - a[k]
}

fn each_subsystem_moves_its_counters() {
    let srv = ok(Builder::in_dir(scratch("pgipc-ipc-stats", "drive")).start());
    let mut c = ok(srv.client());
    let mut a = ok(srv.client());

    // Every live process, every counter.
    let shape = rows(
        &mut c,
        "SELECT count(DISTINCT pid), count(*), count(DISTINCT subsystem || counter) \
         FROM pgipc_stat_ipc",
    );
    let (procs, total, counters): (i64, i64, i64) = (
        shape[0][0].parse().unwrap(),
        shape[0][1].parse().unwrap(),
        shape[0][2].parse().unwrap(),
    );
    println!("{procs} processes × {counters} counters = {total} rows");
    // The sessions, the checkpointer and the other auxiliary processes.
    let kinds = rows(
        &mut c,
        "SELECT count(*) FILTER (WHERE backend_type = 'client backend'), \
         count(*) FILTER (WHERE backend_type = 'checkpointer') FROM pgipc_stat_ipc \
         WHERE subsystem = 'latch' AND counter = 'sets'",
    );
    assert_eq!(kinds, [["2".to_owned(), "1".to_owned()]]);
    assert_eq!(total, procs * counters);
    assert_eq!(counters, 26);
    let sinval = rows(
        &mut c,
        "SELECT counter, sum(value) FROM pgipc_stat_ipc \
         WHERE subsystem = 'sinval' GROUP BY counter ORDER BY counter",
    );
    assert_eq!(
        sinval,
        [
            "catchup_signals",
            "messages_read",
            "messages_written",
            "resets"
        ]
        .map(|n| vec![n.to_owned(), "0".to_owned()])
    );

    // Shared invalidation: a round trip of 100 messages through the queue.
    let i0 = mine(&mut a);
    assert_eq!(
        rows(&mut a, "SELECT pgipc_sinval_roundtrip(100)"),
        [["100".to_owned()]]
    );
    let i1 = mine(&mut a);
    let moved = [
        "sinval.messages_written",
        "sinval.messages_read",
        "sinval.catchup_signals",
        "sinval.resets",
    ]
    .map(|k| delta(&i0, &i1, k));
    println!("pgipc_sinval_roundtrip(100): written, read, signals, resets +{moved:?}");
    assert_eq!(moved, [100, 100, 0, 0]);
    let e = a
        .simple_query("SELECT pgipc_sinval_roundtrip(5000)")
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22023"));

    // Snapshots: one per statement.
    let s0 = mine(&mut a);
    for _ in 0..5 {
        ok(a.simple_query("SELECT 1"));
    }
    let s1 = mine(&mut a);
    let snaps = delta(&s0, &s1, "snapshot.computed") + delta(&s0, &s1, "snapshot.reused");
    println!(
        "snapshots: {} computed, {} reused over 6 statements",
        delta(&s0, &s1, "snapshot.computed"),
        delta(&s0, &s1, "snapshot.reused")
    );
    assert_eq!(snaps, 6);

    // LWLocks: an xid takes XidGenLock (and the ProcArray's locks).
    let l0 = mine(&mut a);
    ok(a.simple_query("SELECT pg_current_xact_id()"));
    let l1 = mine(&mut a);
    let acquired = delta(&l0, &l1, "lwlock.acquisitions");
    println!("lwlock acquisitions for pg_current_xact_id() and a read: {acquired}");
    assert!(acquired >= 2, "{acquired}");

    // DSM: test_shm_mq creates its segment in this backend.
    let d0 = mine(&mut a);
    ok(a.simple_query("SELECT test_shm_mq(1024, 'a', 1, 1)"));
    let d1 = mine(&mut a);
    assert_eq!(delta(&d0, &d1, "dsm.creates"), 1);
    // The segment holds a header and two 1024-byte queues, and whoever detaches last
    // (this backend or its worker) destroys it.
    let bytes = delta(&d0, &d1, "dsm.bytes_created");
    assert!(bytes > 2048, "{bytes}");
    println!(
        "test_shm_mq: dsm creates +1 ({bytes} bytes), destroys +{}, latch sets +{} (the worker's latch)",
        delta(&d0, &d1, "dsm.destroys"),
        delta(&d0, &d1, "latch.sets")
    );

    // shm_mq: the leader sends 10 messages of 1000 bytes into the ring and receives them
    // back (its workers' counters leave with them).
    let m0 = mine(&mut a);
    ok(a.simple_query("SELECT test_shm_mq_pipelined(16384, repeat('x', 1000), 10, 1)"));
    let m1 = mine(&mut a);
    let moved: Vec<i64> = [
        "shm_mq.messages_sent",
        "shm_mq.bytes_sent",
        "shm_mq.messages_received",
        "shm_mq.bytes_received",
    ]
    .iter()
    .map(|k| delta(&m0, &m1, k))
    .collect();
    println!("test_shm_mq_pipelined 10 x 1000 B: shm_mq sent/bytes/received/bytes +{moved:?}");
    assert_eq!(moved, [10, 10_000, 10, 10_000]);

    // Latch: a cancelled pg_sleep. The SIGINT handler sets the session's own latch once.
    let a_pid = rows(&mut a, "SELECT pg_backend_pid()")[0][0].clone();
    let before = mine(&mut a);
    let t = std::thread::spawn(move || {
        let r = a.simple_query("SELECT pg_sleep(30)");
        (
            r.err().and_then(|e| e.code().map(|c| c.code().to_owned())),
            a,
        )
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(
        &mut c,
        &format!("SELECT wait_event FROM pg_stat_activity WHERE pid = {a_pid}"),
    ) != [["PgSleep".to_owned()]]
    {
        assert!(Instant::now() < deadline, "A never slept");
        std::thread::sleep(Duration::from_millis(10));
    }
    ok(c.simple_query(&format!("SELECT pg_cancel_backend({a_pid})")));
    let (code, mut a) = ok(t.join().map_err(|_| "A panicked"));
    assert_eq!(code.as_deref(), Some("57014"));
    let after = mine(&mut a);
    let (sets, wakeups, waits) = (
        delta(&before, &after, "latch.sets"),
        delta(&before, &after, "latch.wakeups"),
        delta(&before, &after, "latch.waits"),
    );
    println!("cancelled pg_sleep: latch sets +{sets}, wakeups +{wakeups}, waits +{waits}");
    assert_eq!((sets, wakeups), (1, 1));
    assert!(waits >= 1, "the sleep waited: {waits}");

    // Reset.
    ok(c.simple_query("SELECT pgipc_stat_reset_ipc()"));
    let left: i64 = rows(
        &mut c,
        "SELECT count(*) FROM pgipc_stat_ipc WHERE subsystem = 'latch' AND counter = 'sets' \
         AND value > 5",
    )[0][0]
        .parse()
        .unwrap();
    assert_eq!(left, 0, "reset zeroes every block");
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("ipc_stats", WATCHDOG);
    pgipc_tests::harness::run_cases(&[(
        "each_subsystem_moves_its_counters",
        each_subsystem_moves_its_counters,
    )])
}
