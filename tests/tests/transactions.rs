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
    put(
        "B: A's xid through pg_snapshot_xip or xmax",
        one(
            b,
            &format!(
                "SELECT count(*) FILTER (WHERE x = '{xid}') + \
                 ('{xid}'::xid8 >= pg_snapshot_xmax(pg_current_snapshot()))::int \
                 FROM pg_snapshot_xip(pg_current_snapshot()) x"
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
    // The result types, by OID: xid8 5069, pg_snapshot 5038, txid_snapshot 2970, bigint 20.
    let types = [
        "SELECT pg_current_xact_id()",
        "SELECT pg_current_xact_id_if_assigned()",
        "SELECT txid_current()",
        "SELECT pg_current_snapshot()",
        "SELECT txid_current_snapshot()",
        "SELECT pg_snapshot_xmin(pg_current_snapshot())",
        "SELECT txid_snapshot_xmax(txid_current_snapshot())",
        "SELECT pg_snapshot_xip(pg_current_snapshot())",
        "SELECT txid_snapshot_xip(txid_current_snapshot())",
    ]
    .map(|q| ok(b.prepare(q)).columns()[0].type_().oid().to_string())
    .join(" ");
    put("result type OIDs", Some(types));
    put(
        "every id in xip is running for the snapshot",
        one(
            b,
            "SELECT bool_and(NOT pg_visible_in_snapshot(x, pg_current_snapshot())) IS NOT FALSE \
             FROM pg_snapshot_xip(pg_current_snapshot()) x",
        ),
    );
    put(
        "snapshot text round trip",
        one(
            b,
            "SELECT pg_current_snapshot()::text::pg_snapshot::text = pg_current_snapshot()::text",
        ),
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
/// `how` chooses the level: `default` (default_transaction_isolation), `begin` (BEGIN
/// ISOLATION LEVEL), `set` (SET TRANSACTION after BEGIN).
fn repeatable_read(
    a: &mut postgres::Client,
    b: &mut postgres::Client,
    how: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if how == "default" {
        ok(b.simple_query("SET default_transaction_isolation = 'repeatable read'"));
    }
    ok(a.simple_query("BEGIN"));
    let xid = one(a, "SELECT pg_current_xact_id()").unwrap();
    match how {
        "begin" => ok(b.simple_query("BEGIN ISOLATION LEVEL REPEATABLE READ")),
        "set" => {
            ok(b.simple_query("START TRANSACTION"));
            ok(b.simple_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        }
        _ => ok(b.simple_query("BEGIN")),
    };
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
    let pg = ok(Postgres15::start("xact-rr"));
    // `begin` and `set` first: `default` leaves B's session in REPEATABLE READ.
    for how in ["begin", "set", "default"] {
        let ours = repeatable_read(&mut ok(srv.client()), &mut ok(srv.client()), how);
        let theirs = repeatable_read(&mut ok(pg.client()), &mut ok(pg.client()), how);
        for (a, b) in ours.iter().zip(&theirs) {
            println!("{how:<8} {:<45} pgipc {:<5} pg15 {}", a.0, a.1, b.1);
        }
        assert_eq!(ours, theirs);
        assert_eq!(
            ours.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
            ["f", "f", "t"]
        );
    }
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

/// Transaction control as psql shows it (command tags, rows, warnings and errors with their
/// SQLSTATEs): BEGIN/START TRANSACTION with modes, SET TRANSACTION, SET SESSION
/// CHARACTERISTICS, SHOW transaction_isolation/transaction_read_only, the 25001 rules once a
/// snapshot was taken or inside a subtransaction, SAVEPOINT / RELEASE / ROLLBACK TO (settings
/// undone, a failed block usable again, 3B001, 25P01 outside a block) and the misuse warnings.
const CONTROL_SCRIPT: &str = "\
SHOW transaction_isolation;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SHOW transaction_isolation;
SHOW transaction_read_only;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
SHOW transaction_isolation;
SELECT 1;
SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
SET TRANSACTION READ ONLY;
SHOW transaction_read_only;
SET TRANSACTION READ WRITE;
COMMIT;
SHOW transaction_isolation;
START TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE;
SHOW transaction_isolation;
SHOW transaction_read_only;
BEGIN;
COMMIT;
COMMIT;
ROLLBACK;
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SHOW transaction_isolation;
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SHOW default_transaction_isolation;
SHOW transaction_isolation;
BEGIN;
SHOW transaction_isolation;
ROLLBACK;
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE;
SAVEPOINT a;
RELEASE SAVEPOINT a;
ROLLBACK TO a;
BEGIN;
SET work_mem = '1MB';
SAVEPOINT a;
SET work_mem = '2MB';
SAVEPOINT b;
SET work_mem = '3MB';
SHOW work_mem;
ROLLBACK TO SAVEPOINT b;
SHOW work_mem;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
RELEASE b;
ROLLBACK TO a;
SHOW work_mem;
RELEASE SAVEPOINT nosuch;
ROLLBACK TO nosuch;
ROLLBACK TO a;
SELECT 1;
SAVEPOINT c;
SET work_mem = '5MB';
SELECT 1/0;
SELECT 1;
SHOW work_mem;
RELEASE c;
ROLLBACK TO c;
SHOW work_mem;
SAVEPOINT c;
SET work_mem = '6MB';
RELEASE c;
SHOW work_mem;
COMMIT;
SHOW work_mem;
BEGIN;
SAVEPOINT x;
SELECT 1/0;
COMMIT;
BEGIN;
SAVEPOINT x;
SET work_mem = '7MB';
COMMIT;
SHOW work_mem;
RESET work_mem;
BEGIN READ ONLY;
SELECT 1;
SET TRANSACTION READ WRITE;
ROLLBACK;
BEGIN READ ONLY;
SET TRANSACTION READ WRITE;
SHOW transaction_read_only;
SET transaction_isolation = 'repeatable read';
SHOW transaction_isolation;
COMMIT;
BEGIN;
SELECT pg_current_xact_id() IS NOT NULL;
SAVEPOINT s;
SELECT pg_current_xact_id() = pg_current_xact_id_if_assigned();
ROLLBACK TO s;
SELECT pg_current_xact_id_if_assigned() IS NOT NULL;
COMMIT;
BEGIN;
SAVEPOINT s;
SELECT pg_current_xact_id() IS NOT NULL;
ROLLBACK TO s;
SELECT pg_current_xact_id_if_assigned() IS NOT NULL;
RELEASE s;
SELECT pg_current_xact_id_if_assigned() IS NOT NULL;
ROLLBACK;
SELECT pg_current_xact_id_if_assigned() IS NULL;
";

/// `CONTROL_SCRIPT` through psql (`-a`, VERBOSITY verbose so errors show their SQLSTATE),
/// standard output and error interleaved as psql wrote them; LOCATION lines (PostgreSQL's
/// source positions) left out.
fn psql_script(sock: &std::path::Path, port: u16) -> String {
    use std::io::Write;
    // `sh` joins psql's standard error to its standard output, in the order written.
    let mut child = ok(std::process::Command::new("sh")
        .args(["-c", "exec \"$0\" \"$@\" 2>&1", "psql"])
        .args(["-X", "-a", "-v", "VERBOSITY=verbose", "-h"])
        .arg(sock)
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-f",
            "-",
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn());
    let mut stdin = child.stdin.take().expect("piped stdin");
    ok(stdin.write_all(CONTROL_SCRIPT.as_bytes()));
    drop(stdin);
    let out = ok(child.wait_with_output());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("LOCATION:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn transaction_control_matches_postgresql_15() {
    let srv = ok(Builder::in_dir(scratch("pgipc-xact", "control")).start());
    let ours = psql_script(srv.sock_dir(), srv.port());
    let pg = ok(Postgres15::start("xact-control"));
    let theirs = psql_script(pg.sock_dir(), pg.port());
    let (o, t): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    let mut diffs = 0;
    for i in 0..o.len().max(t.len()) {
        let (a, b) = (
            o.get(i).copied().unwrap_or("<none>"),
            t.get(i).copied().unwrap_or("<none>"),
        );
        if a != b {
            diffs += 1;
            println!("line {}:\n  pgipc: {a}\n  pg15:  {b}", i + 1);
        }
    }
    let statements = CONTROL_SCRIPT.lines().count();
    let errors = theirs.matches("ERROR:").count();
    let warnings = theirs.matches("WARNING:").count();
    println!(
        "{statements} statements, {} output lines, {errors} errors and {warnings} warnings in \
         PostgreSQL 15's output; {diffs} lines differ",
        t.len()
    );
    if std::env::var_os("XACT_SHOW").is_some() {
        println!("{theirs}");
    }
    assert!(
        errors >= 10 && warnings >= 4,
        "the script exercises the errors:\n{theirs}"
    );
    assert_eq!(ours, theirs);
}

/// B's view of A's PGPROC subxid cache: `count|overflowed` from
/// `pg_stat_get_backend_subxact` at A's proc number.
fn subxact_cache(b: &mut postgres::Client, procno: &str) -> String {
    let row = ok(b.simple_query(&format!(
        "SELECT subxact_count::text || '|' || subxact_overflowed::text \
         FROM pg_stat_get_backend_subxact({procno})"
    )));
    row.into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| "NULL".into())
}

/// Subtransaction ids (pgipc's own check: PostgreSQL gives a subtransaction an id only when
/// it writes, which needs a table; `pgipc_current_subxact_id()` asks for one as a write
/// would). The parent is assigned first; each id goes into the PGPROC subxid cache; a
/// released savepoint's id stays until the top-level end; ROLLBACK TO removes the aborted
/// ids with their committed children (`XidCacheRemoveRunningXids`); past 64 the cache
/// overflows, and the flag stays until the transaction ends; the end records the newest id.
fn subtransaction_ids_use_the_pgproc_subxid_cache() {
    let srv = ok(Builder::in_dir(scratch("pgipc-xact", "subxids")).start());
    let (mut a, mut b) = (ok(srv.client()), ok(srv.client()));
    let a_pid = one(&mut a, "SELECT pg_backend_pid()").unwrap();
    let procno = one(
        &mut b,
        &format!(
            "SELECT n FROM pg_stat_get_backend_idset() n WHERE pg_stat_get_backend_pid(n) = {a_pid}"
        ),
    )
    .unwrap();
    let id = |c: &mut postgres::Client, sql: &str| -> u64 { one(c, sql).unwrap().parse().unwrap() };
    assert_eq!(subxact_cache(&mut b, &procno), "0|false");

    ok(a.simple_query("BEGIN; SAVEPOINT s1"));
    let sx1 = id(&mut a, "SELECT pgipc_current_subxact_id()");
    let top = id(&mut a, "SELECT pg_current_xact_id_if_assigned()");
    assert!(top < sx1, "the parent is assigned first: {top} < {sx1}");
    assert_eq!(id(&mut a, "SELECT pgipc_current_subxact_id()"), sx1, "kept");
    assert_eq!(subxact_cache(&mut b, &procno), "1|false");
    assert_eq!(
        one(
            &mut b,
            &format!("SELECT backend_xid FROM pg_stat_activity WHERE pid = {a_pid}")
        ),
        Some(top.to_string()),
        "backend_xid is the top-level id"
    );

    ok(a.simple_query("SAVEPOINT s2"));
    let sx2 = id(&mut a, "SELECT pgipc_current_subxact_id()");
    assert!(sx2 > sx1);
    ok(a.simple_query("RELEASE s2"));
    assert_eq!(
        subxact_cache(&mut b, &procno),
        "2|false",
        "released: still running"
    );

    ok(a.simple_query("SAVEPOINT s3"));
    let sx3 = id(&mut a, "SELECT pgipc_current_subxact_id()");
    assert!(sx3 > sx2);
    assert_eq!(subxact_cache(&mut b, &procno), "3|false");
    ok(a.simple_query("ROLLBACK TO s3"));
    assert_eq!(subxact_cache(&mut b, &procno), "2|false", "s3 aborted");
    assert_eq!(
        id(&mut a, "SELECT pgipc_current_subxact_id()"),
        sx3 + 1,
        "the restarted savepoint takes a new id"
    );
    ok(a.simple_query("ROLLBACK TO s1"));
    assert_eq!(
        subxact_cache(&mut b, &procno),
        "0|false",
        "s1 aborted with its released child s2 and the restarted s3"
    );
    assert_eq!(
        id(&mut a, "SELECT pg_current_xact_id()"),
        top,
        "the top survives"
    );

    // s1 restarted (open, no id yet) and 65 subtransactions inside it, each asking for an
    // id: s1's comes first, so p64 and p65 overflow the cache.
    let batch: String = (1..=65)
        .map(|k| format!("SAVEPOINT p{k}; SELECT pgipc_current_subxact_id();"))
        .collect();
    ok(a.simple_query(&batch));
    assert_eq!(subxact_cache(&mut b, &procno), "64|true");
    let newest = id(&mut a, "SELECT pgipc_current_subxact_id()");
    ok(a.simple_query("ROLLBACK TO p1"));
    assert_eq!(
        subxact_cache(&mut b, &procno),
        "1|true",
        "p1..p65's cached ids leave (s1's stays), the overflow flag stays"
    );
    ok(a.simple_query("COMMIT"));
    assert_eq!(subxact_cache(&mut b, &procno), "0|false");
    assert_eq!(
        one(
            &mut b,
            &format!(
                "SELECT (pg_snapshot_xmax(pg_current_snapshot()) > '{newest}')::text || ' ' || \
                 pg_visible_in_snapshot('{top}', pg_current_snapshot())::text"
            )
        ),
        Some("true true".into()),
        "the newest subtransaction id completed; the top-level one ended"
    );
    println!("top {top}; subtransactions {sx1}, {sx2}, {sx3} … {newest}");
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
        (
            "transaction_control_matches_postgresql_15",
            transaction_control_matches_postgresql_15,
        ),
        (
            "subtransaction_ids_use_the_pgproc_subxid_cache",
            subtransaction_ids_use_the_pgproc_subxid_cache,
        ),
    ])
}
