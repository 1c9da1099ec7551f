//! `pg_stat_activity` on a running server lists every process with its wait event, from the
//! Backend Status Array and the PGPROC wait-event words: a session inside `pg_sleep` shows
//! Timeout/PgSleep and state `active`, an idle session Client/ClientRead and state `idle`, one
//! inside a transaction block `idle in transaction` with its `xact_start`, and the auxiliary
//! processes their main-loop Activity events with PostgreSQL's backend_type names.
//! `pg_wait_events` lists the same names with PostgreSQL's descriptions.
//!
//! A `harness = false` test: libtest-mimic runs the cases one after the other on one test
//! thread; a watchdog ends the binary if it hangs.

mod common;

use common::server::{scratch, watchdog, Builder, TestServer};
use std::process::ExitCode;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(300);

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

type Row = Vec<Option<String>>;

fn select(c: &mut postgres::Client, sql: &str) -> Vec<Row> {
    ok(c.simple_query(sql))
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

fn pid(c: &mut postgres::Client) -> String {
    select(c, "SELECT pg_backend_pid()")[0][0].clone().unwrap()
}

const COLUMNS: &str = "backend_type, wait_event_type, wait_event, state, query, pid";

fn activity(srv: &TestServer) -> Vec<Row> {
    let mut c = ok(srv.client());
    select(
        &mut c,
        &format!("SELECT {COLUMNS} FROM pg_stat_activity ORDER BY backend_type, pid"),
    )
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn every_process_shows_its_wait_event() {
    let srv = ok(Builder::in_dir(scratch("pgipc-activity", "waits")).start());
    let mut idle = ok(srv.client());
    let idle_pid = pid(&mut idle);
    let mut in_block = ok(srv.client());
    let block_pid = pid(&mut in_block);
    select(&mut in_block, "BEGIN");
    select(&mut in_block, "SELECT 1");
    let mut sleeper = ok(srv.client());
    let sleeper_pid = pid(&mut sleeper);
    let t = std::thread::spawn(move || {
        select(&mut sleeper, "SELECT pg_sleep(3)");
    });
    let find =
        |rows: &[Row], pid: &str| rows.iter().find(|r| r[5].as_deref() == Some(pid)).cloned();
    ok(srv.wait_for(
        "the sleeper to show PgSleep",
        Duration::from_secs(10),
        |srv| {
            find(&activity(srv), &sleeper_pid).is_some_and(|r| r[2].as_deref() == Some("PgSleep"))
        },
    ));
    let rows = activity(&srv);
    for r in &rows {
        println!("{r:?}");
    }
    let sleeping = find(&rows, &sleeper_pid).unwrap();
    assert_eq!(
        sleeping[..5],
        [
            s("client backend"),
            s("Timeout"),
            s("PgSleep"),
            s("active"),
            s("SELECT pg_sleep(3)")
        ]
    );
    let idle_row = find(&rows, &idle_pid).unwrap();
    assert_eq!(
        idle_row[..5],
        [
            s("client backend"),
            s("Client"),
            s("ClientRead"),
            s("idle"),
            s("SELECT pg_backend_pid()")
        ]
    );
    let block_row = find(&rows, &block_pid).unwrap();
    assert_eq!(
        block_row[..5],
        [
            s("client backend"),
            s("Client"),
            s("ClientRead"),
            s("idle in transaction"),
            s("SELECT 1")
        ]
    );
    let aux = |kind: &str| {
        rows.iter()
            .find(|r| r[0].as_deref() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} row in {rows:?}"))
            .clone()
    };
    assert_eq!(
        aux("checkpointer")[1..4],
        [s("Activity"), s("CheckpointerMain"), None]
    );
    assert_eq!(
        aux("background writer")[1..3],
        [s("Activity"), s("BgwriterMain")]
    );
    assert_eq!(aux("walwriter")[1..3], [s("Activity"), s("WalWriterMain")]);
    // The session reading the view is running: no wait event, state active.
    let mut me = ok(srv.client());
    let mine = select(
        &mut me,
        "SELECT wait_event_type, wait_event, state, xact_start IS NOT NULL FROM pg_stat_activity \
         WHERE pid = pg_backend_pid()",
    );
    assert_eq!(mine, vec![vec![None, None, s("active"), s("t")]]);
    let in_xact = select(
        &mut me,
        &format!("SELECT xact_start IS NOT NULL FROM pg_stat_activity WHERE pid = {idle_pid}"),
    );
    assert_eq!(
        in_xact,
        vec![vec![s("f")]],
        "an idle session has no transaction start"
    );
    t.join().unwrap();
    // A dynamic background worker: its bgw_type as backend_type, its main loop's wait event.
    let h = select(&mut me, "SELECT pgipc_start_worker('pgipc_worker_sleep')")[0][0]
        .clone()
        .unwrap();
    let wpid = select(&mut me, &format!("SELECT pgipc_worker_pid({h})"))[0][0]
        .clone()
        .unwrap();
    ok(
        srv.wait_for("the worker's entry", Duration::from_secs(10), |srv| {
            find(&activity(srv), &wpid).is_some_and(|r| r[2].is_some())
        }),
    );
    let worker = find(&activity(&srv), &wpid).unwrap();
    assert_eq!(
        worker[..4],
        [
            s("pgipc dynamic pgipc_worker_sleep"),
            s("Extension"),
            s("Extension"),
            None
        ]
    );
    drop(idle);
    ok(srv.wait_for(
        "the closed session's entry to go",
        Duration::from_secs(10),
        |srv| find(&activity(srv), &idle_pid).is_none(),
    ));
}

fn pg_wait_events_lists_the_events_with_descriptions() {
    let srv = ok(Builder::in_dir(scratch("pgipc-activity", "events")).start());
    let mut c = ok(srv.client());
    let rows = select(
        &mut c,
        "SELECT type, name, description FROM pg_wait_events \
         WHERE name IN ('ClientRead', 'PgSleep', 'BgworkerStartup', 'ProcArray')",
    );
    assert_eq!(
        rows,
        vec![
            vec![
                s("Client"),
                s("ClientRead"),
                s("Waiting to read data from the client.")
            ],
            vec![
                s("IPC"),
                s("BgworkerStartup"),
                s("Waiting for background worker to start up.")
            ],
            vec![
                s("LWLock"),
                s("ProcArray"),
                s("Waiting to access the shared per-process data structures (typically, to get a snapshot or report a session's transaction ID).")
            ],
            vec![
                s("Timeout"),
                s("PgSleep"),
                s("Waiting due to a call to pg_sleep or a sibling function.")
            ],
        ]
    );
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("activity", WATCHDOG);
    pgipc_tests::harness::run_cases(&[
        (
            "every_process_shows_its_wait_event",
            every_process_shows_its_wait_event,
        ),
        (
            "pg_wait_events_lists_the_events_with_descriptions",
            pg_wait_events_lists_the_events_with_descriptions,
        ),
    ])
}
