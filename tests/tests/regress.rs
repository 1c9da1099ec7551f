//! The regression suite, PostgreSQL's `.sql`/`.out` style: each `tests/sql/NAME.sql` runs
//! through real psql (`psql -X -a -q`, the script on standard input, standard error merged
//! in, as pg_regress runs it) against the real server, and the output must equal
//! `tests/expected/NAME.out` line for line. A failure prints `diff -u` of the two and keeps
//! the output in the scratch directory.
//!
//! To add a case: write `tests/sql/NAME.sql`, add NAME to [`FILES`], run with
//! `PGIPC_REGRESS_ACCEPT=1` to write its expected output, and read that output before
//! committing it (where PostgreSQL 15 answers the same query, its answer should match).
//!
//! A `harness = false` test: libtest-mimic runs one trial per file on one test thread; they
//! share one server, started by the first.

mod common;

use common::server::{scratch, watchdog, Builder, TestServer};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WATCHDOG: Duration = Duration::from_secs(300);

/// The scripts, in the order they run.
const FILES: &[&str] = &["select", "errors", "settings", "session", "psql"];

/// The server the trials share.
static SERVER: Mutex<Option<TestServer>> = Mutex::new(None);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `script` through psql against `srv`; returns what psql printed (stdout and stderr
/// interleaved as written).
fn run_psql(srv: &TestServer, script: &Path, out: &Path) -> Result<String, String> {
    let input = std::fs::File::open(script).map_err(|e| format!("{}: {e}", script.display()))?;
    let sink = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let sink2 = sink.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-a", "-q", "-h"])
        .arg(srv.sock_dir())
        .args([
            "-p",
            &srv.port().to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .env("LC_ALL", "C")
        .stdin(Stdio::from(input))
        .stdout(Stdio::from(sink))
        .stderr(Stdio::from(sink2));
    for v in [
        "PGTZ",
        "PGOPTIONS",
        "PGDATESTYLE",
        "PGCLIENTENCODING",
        "PGAPPNAME",
    ] {
        cmd.env_remove(v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("psql: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("psql on {} ran over 60 s", script.display()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::read_to_string(out).map_err(|e| e.to_string())
}

/// Runs one script and compares (or, with `PGIPC_REGRESS_ACCEPT` set, records) its output.
fn check(name: &str) {
    let mut guard = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let srv = Builder::in_dir(scratch("pgipc-regress", "server"))
            .start()
            .unwrap_or_else(|e| panic!("server: {e}"));
        *guard = Some(srv);
    }
    let Some(srv) = guard.as_ref() else {
        unreachable!("started above")
    };
    let dir = manifest_dir();
    let script = dir.join("sql").join(format!("{name}.sql"));
    let expected_path = dir.join("expected").join(format!("{name}.out"));
    let results = scratch("pgipc-regress", "results");
    std::fs::create_dir_all(&results).expect("results directory");
    let out_path = results.join(format!("{name}.out"));
    let got = run_psql(srv, &script, &out_path).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("PGIPC_REGRESS_ACCEPT").is_some() {
        std::fs::write(&expected_path, &got).expect("write expected output");
        return;
    }
    let want = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    if got != want {
        let diff = Command::new("diff")
            .arg("-u")
            .arg(&expected_path)
            .arg(&out_path)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("(diff: {e})"));
        panic!(
            "{name}: output differs from {} (kept in {}):\n{diff}\nserver log:\n{}",
            expected_path.display(),
            out_path.display(),
            srv.log_text()
        );
    }
}

fn select() {
    check("select");
}
fn errors() {
    check("errors");
}
fn settings() {
    check("settings");
}
fn session() {
    check("session");
}
fn psql() {
    check("psql");
}

/// Stops the shared server; it must exit cleanly.
fn stop_server() {
    let taken = SERVER.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut srv) = taken {
        srv.stop_ok().unwrap_or_else(|e| panic!("{e}"));
    }
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("regress", WATCHDOG);
    let cases: [(&str, fn()); 6] = [
        (FILES[0], select),
        (FILES[1], errors),
        (FILES[2], settings),
        (FILES[3], session),
        (FILES[4], psql),
        ("stop_server", stop_server),
    ];
    let code = pgipc_tests::harness::run_cases(&cases);
    stop_server();
    code
}
