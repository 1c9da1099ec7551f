//! The auxiliary processes' counters live in the pgstat crate's "Shared Memory Stats" and grow
//! as the processes work, read by a backend of the same server through SQL (the
//! `pgipc_stat_aux` and `pg_stat_checkpointer` views): background writer, WAL writer and autovacuum launcher rounds at short delays in fork
//! and exec mode (an exec'd child finds the region by name), and a timed checkpoint counted
//! after `checkpoint_timeout` (30 s, its minimum).
//!
//! A `harness = false` test: libtest-mimic runs the cases one after the other on one test
//! thread; a watchdog ends the binary if it hangs.

mod common;

use common::server::{scratch, watchdog, Builder, TestServer};
use std::process::ExitCode;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(300);

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A round counter of `pgipc_stat_aux`.
fn counter(srv: &TestServer, name: &str) -> u64 {
    read(
        srv,
        &format!("SELECT count FROM pgipc_stat_aux WHERE name = '{name}'"),
    )
}

/// The one integer `sql` returns.
fn read(srv: &TestServer, sql: &str) -> u64 {
    let v = ok(srv.psql_ok(sql));
    v.parse().unwrap_or_else(|_| panic!("{sql} gave {v:?}"))
}

/// A column of `pg_stat_checkpointer`.
fn checkpointer(srv: &TestServer, column: &str) -> u64 {
    read(srv, &format!("SELECT {column} FROM pg_stat_checkpointer"))
}

/// Each round counter moves at least twice within 10 s of the first reading.
fn rounds_grow(exec: bool) {
    let mode = if exec { "exec" } else { "fork" };
    let srv = ok(Builder::in_dir(scratch("pgipc-aux-stats", mode))
        .exec(exec)
        .set("bgwriter_delay=10ms")
        .set("wal_writer_delay=10ms")
        .set("autovacuum_naptime=1s")
        .start());
    for name in ["bgwriter_rounds", "walwriter_rounds", "autovacuum_rounds"] {
        let first = counter(&srv, name);
        ok(srv.wait_for(
            &format!("{name} to grow past {first} ({mode})"),
            Duration::from_secs(10),
            |s| counter(s, name) >= first + 2,
        ));
    }
    // Nothing asked for a checkpoint, and none is due yet.
    assert_eq!(checkpointer(&srv, "num_requested"), 0);
    assert_eq!(checkpointer(&srv, "num_timed"), 0);
    assert_eq!(counter(&srv, "startup_passes"), 1);
}

fn rounds_grow_in_fork_mode() {
    rounds_grow(false);
}

fn rounds_grow_in_exec_mode() {
    rounds_grow(true);
}

fn a_timed_checkpoint_is_counted_after_checkpoint_timeout() {
    let srv = ok(Builder::in_dir(scratch("pgipc-aux-stats", "timed"))
        .set("checkpoint_timeout=30s")
        .start());
    assert_eq!(checkpointer(&srv, "num_timed"), 0);
    ok(srv.wait_for(
        "a timed checkpoint to be counted",
        Duration::from_secs(45),
        |s| checkpointer(s, "num_timed") >= 1,
    ));
    ok(srv.wait_log("checkpoint complete", Duration::from_secs(5)));
    assert_eq!(checkpointer(&srv, "num_requested"), 0);
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("aux_stats", WATCHDOG);
    pgipc_tests::harness::run_cases(&[
        ("rounds_grow_in_fork_mode", rounds_grow_in_fork_mode),
        ("rounds_grow_in_exec_mode", rounds_grow_in_exec_mode),
        (
            "a_timed_checkpoint_is_counted_after_checkpoint_timeout",
            a_timed_checkpoint_is_counted_after_checkpoint_timeout,
        ),
    ])
}
