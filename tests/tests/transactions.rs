//! Transaction ids and snapshots on the ProcArray, compared with PostgreSQL 15 running the
//! same script (xid values aside): session A takes an xid inside a block; B's snapshot treats
//! it as running (not visible, in xip or at/after xmax) while `pg_stat_activity` shows A `idle
//! in transaction` with that `backend_xid`; after A commits, B's next statement sees it as
//! completed; an autocommit statement's xid is gone at its end; `*_if_assigned` is NULL until
//! an xid is taken.
//!
//! A `harness = false` test: libtest-mimic runs the cases one after the other on one test
//! thread; a watchdog ends the binary if it hangs.

mod common;

use common::server::{scratch, watchdog, Builder, Postgres15};
use std::process::ExitCode;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(300);

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn one(c: &mut postgres::Client, sql: &str) -> Option<String> {
    ok(c.simple_query(sql))
        .into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

/// The script, on two sessions of one server: the outcomes as (label, value) lines, with xid
/// values replaced by what they mean.
fn script(a: &mut postgres::Client, b: &mut postgres::Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        out.push((k.to_owned(), v.unwrap_or_else(|| "NULL".to_owned())));
    };
    let a_pid = one(a, "SELECT pg_backend_pid()").unwrap();
    put(
        "if_assigned outside",
        one(a, "SELECT pg_current_xact_id_if_assigned()"),
    );
    ok(a.simple_query("BEGIN"));
    put(
        "if_assigned in block before",
        one(a, "SELECT pg_current_xact_id_if_assigned()"),
    );
    let xid = one(a, "SELECT pg_current_xact_id()").unwrap();
    put(
        "same xid again",
        one(a, &format!("SELECT pg_current_xact_id()::text = '{xid}'")),
    );
    put(
        "txid_current is it",
        one(a, &format!("SELECT txid_current()::text = '{xid}'")),
    );
    let snap_b = one(b, "SELECT pg_current_snapshot()::text").unwrap();
    let (xmin, rest) = snap_b.split_once(':').unwrap();
    let (xmax, xip) = rest.split_once(':').unwrap();
    let xid_n: u64 = xid.parse().unwrap();
    put(
        "B's snapshot: xid in xip or at/after xmax",
        Some(
            (xip.split(',').any(|x| x == xid) || xid_n >= xmax.parse::<u64>().unwrap()).to_string(),
        ),
    );
    put(
        "B's snapshot: xmin <= xid",
        Some((xmin.parse::<u64>().unwrap() <= xid_n).to_string()),
    );
    put(
        "B: visible before commit",
        one(
            b,
            &format!("SELECT pg_visible_in_snapshot('{xid}', pg_current_snapshot())"),
        ),
    );
    put(
        "B: A's row",
        one(
            b,
            &format!(
                "SELECT state || ' ' || (backend_xid::text = '{xid}')::text FROM pg_stat_activity \
                 WHERE pid = {a_pid}"
            ),
        ),
    );
    ok(a.simple_query("COMMIT"));
    put(
        "B: visible after commit",
        one(
            b,
            &format!("SELECT pg_visible_in_snapshot('{xid}', pg_current_snapshot())"),
        ),
    );
    put(
        "B: A's xid after commit",
        one(
            b,
            &format!("SELECT backend_xid IS NULL FROM pg_stat_activity WHERE pid = {a_pid}"),
        ),
    );
    let auto = one(a, "SELECT pg_current_xact_id()").unwrap();
    put(
        "autocommit xid is newer",
        Some((auto.parse::<u64>().unwrap() > xid_n).to_string()),
    );
    put(
        "autocommit xid ended",
        one(
            b,
            &format!("SELECT pg_visible_in_snapshot('{auto}', pg_current_snapshot())"),
        ),
    );
    put(
        "if_assigned after",
        one(a, "SELECT pg_current_xact_id_if_assigned()"),
    );
    put(
        "snapshot xmin/xmax functions",
        one(
            b,
            "SELECT pg_snapshot_xmin(pg_current_snapshot()) <= pg_snapshot_xmax(pg_current_snapshot())",
        ),
    );
    out
}

/// B in REPEATABLE READ keeps its first snapshot until it commits.
fn repeatable_read(a: &mut postgres::Client, b: &mut postgres::Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    ok(b.simple_query("SET default_transaction_isolation = 'repeatable read'"));
    ok(a.simple_query("BEGIN"));
    let xid = one(a, "SELECT pg_current_xact_id()").unwrap();
    ok(b.simple_query("BEGIN"));
    let visible = |b: &mut postgres::Client| {
        one(
            b,
            &format!("SELECT pg_visible_in_snapshot('{xid}', pg_current_snapshot())"),
        )
        .unwrap()
    };
    out.push(("RR: before A commits".to_owned(), visible(b)));
    ok(a.simple_query("COMMIT"));
    out.push((
        "RR: after A commits, same transaction".to_owned(),
        visible(b),
    ));
    ok(b.simple_query("COMMIT"));
    out.push(("RR: next transaction".to_owned(), visible(b)));
    out
}

fn repeatable_read_keeps_the_first_snapshot_as_postgresql_15_does() {
    let srv = ok(Builder::in_dir(scratch("pgipc-xact", "repeatable-read")).start());
    let ours = repeatable_read(&mut ok(srv.client()), &mut ok(srv.client()));
    let pg = ok(Postgres15::start("xact-rr"));
    let theirs = repeatable_read(&mut ok(pg.client()), &mut ok(pg.client()));
    for (a, b) in ours.iter().zip(&theirs) {
        println!("{:<45} pgipc {:<5} pg15 {}", a.0, a.1, b.1);
    }
    assert_eq!(ours, theirs);
    assert_eq!(
        ours.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["f", "f", "t"]
    );
}

fn xid_and_snapshot_behaviour_matches_postgresql_15() {
    let srv = ok(Builder::in_dir(scratch("pgipc-xact", "two-sessions")).start());
    let ours = script(&mut ok(srv.client()), &mut ok(srv.client()));
    let pg = ok(Postgres15::start("xact"));
    let theirs = script(&mut ok(pg.client()), &mut ok(pg.client()));
    for (a, b) in ours.iter().zip(&theirs) {
        println!("{:<45} pgipc {:<30} pg15 {}", a.0, a.1, b.1);
    }
    assert_eq!(ours, theirs);
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("transactions", WATCHDOG);
    pgipc_tests::harness::run_cases(&[
        (
            "xid_and_snapshot_behaviour_matches_postgresql_15",
            xid_and_snapshot_behaviour_matches_postgresql_15,
        ),
        (
            "repeatable_read_keeps_the_first_snapshot_as_postgresql_15_does",
            repeatable_read_keeps_the_first_snapshot_as_postgresql_15_does,
        ),
    ])
}
