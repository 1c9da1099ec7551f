//! A test_shm_mq worker's ERROR reaches the leader's client the way PostgreSQL's parallel
//! machinery carries it: the worker sends its ErrorResponse into its error queue in the
//! segment, the leader reads it and raises it as its own with `CONTEXT:  parallel worker`.
//! Built with the `injection_points` feature (`cargo test -p pgipc-tests --features
//! injection_points --test test_shm_mq_errors`): the point `test-shm-mq-worker-copy`, attached
//! to `error` from SQL, fails a worker as it passes a message along.
//!
//! For both functions, with fork and with `exec_backend`: the client gets the worker's
//! SQLSTATE (XX000), message and CONTEXT; the server log has the leader's `ERROR:` with the
//! `CONTEXT:  parallel worker` line (and the worker's own ERROR); afterwards the DSM control
//! segment lists no segment, no `/dev/shm/PostgreSQL.*` segment file is new, no worker is left,
//! and once the point is detached the same call succeeds in the same session.
//!
//! `harness = false` with libtest-mimic on one thread; a watchdog ends the binary on a hang.

mod common;

use common::server::{children_of, pg_err, pid_lines, scratch, watchdog, Builder, TestServer};
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const WATCHDOG: Duration = Duration::from_secs(300);
const POINT: &str = "test-shm-mq-worker-copy";

type Res = Result<(), Failed>;

/// The live segments (refcnt > 0) the server's DSM control segment lists (its handle is in the
/// System V interlock named on line 7 of the pid file).
fn live_segments(s: &TestServer) -> Result<Vec<u32>, String> {
    let lines = pid_lines(s.data_dir());
    let shmid: i32 = lines
        .get(6)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no interlock in the pid file: {lines:?}"))?;
    let il = pgipc_shmem::Interlock::attach_existing(shmid).map_err(|e| e.to_string())?;
    let f = PathBuf::from(format!("/dev/shm/PostgreSQL.{}", il.header().dsm_control()));
    let bytes = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
    let items = pgipc_dsm::control_items_from_bytes(&bytes)
        .ok_or_else(|| format!("{} is not a DSM control segment", f.display()))?;
    Ok(items
        .into_iter()
        .filter(|&(_, refcnt)| refcnt > 0)
        .map(|(h, _)| h)
        .collect())
}

/// The `/dev/shm/PostgreSQL.*` files.
fn shm_files() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("PostgreSQL."))
                .collect()
        })
        .unwrap_or_default()
}

fn worker_error(exec: bool) -> Res {
    let s = Builder::in_dir(scratch(
        "pgipc-shmmq-err",
        if exec { "exec" } else { "fork" },
    ))
    .exec(exec)
    .set("max_worker_processes=16")
    .start()?;
    let mut c = s
        .client()
        .map_err(|e| s.fail(format!("connect: {}", pg_err(&e))))?;
    let backends = children_of(s.pid());
    let files_before = shm_files();
    c.simple_query(&format!(
        "SELECT injection_points_attach('{POINT}', 'error')"
    ))
    .map_err(|e| s.fail(format!("attach: {}", pg_err(&e))))?;
    let calls = [
        "SELECT test_shm_mq_pipelined(16384, 'through a failing ring', 1000, 3)",
        "SELECT test_shm_mq(4096, 'through a failing ring', 10, 2)",
    ];
    for sql in calls {
        let e = match c.simple_query(sql) {
            Ok(_) => {
                return Err(s
                    .fail(format!("{sql}: succeeded with {POINT} = error"))
                    .into())
            }
            Err(e) => e,
        };
        let db = e
            .as_db_error()
            .ok_or_else(|| s.fail(format!("{sql}: not a server error: {}", pg_err(&e))))?;
        let got = (db.code().code(), db.message(), db.where_());
        let want = (
            "XX000",
            "error triggered for injection point test-shm-mq-worker-copy",
            Some("parallel worker"),
        );
        if got != want {
            return Err(s.fail(format!("{sql}: got {got:?}, want {want:?}")).into());
        }
        println!("{sql}: {} {} (CONTEXT: {:?})", got.0, got.1, got.2);
    }
    // The server log: the leader's ERROR with its CONTEXT line, as PostgreSQL writes it.
    s.wait_log(
        "ERROR:  error triggered for injection point test-shm-mq-worker-copy\n",
        Duration::from_secs(5),
    )?;
    let log = s.log_text();
    let lines: Vec<&str> = log.lines().collect();
    let with_context = lines.windows(2).any(|w| {
        w[0].ends_with("ERROR:  error triggered for injection point test-shm-mq-worker-copy")
            && w[1].ends_with("CONTEXT:  parallel worker")
    });
    if !with_context {
        return Err(s
            .fail("no ERROR line followed by CONTEXT:  parallel worker")
            .into());
    }
    // Nothing left: no segment listed, no segment file new, no worker still running.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let live = live_segments(&s)?;
        let new_files: Vec<String> = shm_files().difference(&files_before).cloned().collect();
        let extra: Vec<i32> = children_of(s.pid())
            .into_keys()
            .filter(|p| !backends.contains_key(p))
            .collect();
        // `backends` was read after the session connected: new children are workers.
        if live.is_empty() && new_files.is_empty() && extra.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(s
                .fail(format!(
                    "left behind: live segments {live:?}, files {new_files:?}, children {extra:?}"
                ))
                .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    c.simple_query(&format!("SELECT injection_points_detach('{POINT}')"))
        .map_err(|e| s.fail(format!("detach: {}", pg_err(&e))))?;
    for sql in calls {
        c.simple_query(sql)
            .map_err(|e| s.fail(format!("{sql} after the detach: {}", pg_err(&e))))?;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("test_shm_mq_errors", WATCHDOG);
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = [false, true]
        .into_iter()
        .map(|exec| {
            Trial::test(
                format!(
                    "{}: a worker's ERROR reaches the client with CONTEXT parallel worker, nothing left",
                    if exec { "exec" } else { "fork" }
                ),
                move || worker_error(exec),
            )
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
