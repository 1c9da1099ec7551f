//! Killing the server in the middle of an ALTER ROLE never corrupts the role file (issue 16):
//! built with the `injection_points` feature (`cargo test -p pgipc-tests --features
//! injection_points --test auth_crash`).
//!
//! The role catalog is saved by writing `global/pgipc_authid.tmp`, fsyncing it, renaming it
//! over `global/pgipc_authid` and fsyncing `global/`. A session attaches `wait` to one of the
//! two points inside the save, another session runs `ALTER ROLE ... CONNECTION LIMIT`, and once
//! the backend is held at the point the test SIGKILLs the postmaster and every child (the
//! backend included) at once:
//! * at `authid-save-before-rename` (the new file written and fsynced, not yet renamed) the
//!   catalog loads with the old role set;
//! * at `authid-save-before-dir-fsync` (renamed, the directory not yet fsynced) it loads with
//!   the new one.
//!
//! Either way the server starts again on the same directory and `pg_roles` shows that set.
//!
//! `harness = false`: cases run one after the other on one thread; a watchdog ends the binary
//! if it hangs.

mod common;

use common::server::{finish, scratch, watchdog, Builder, TestServer};
use pgipc_authid::{parse_role_command, Authid, PasswordOptions};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

const WATCHDOG: Duration = Duration::from_secs(240);
const OLD: i32 = 3;
const NEW: i32 = 7;

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn limit_in_file(s: &TestServer) -> i32 {
    let a = Authid::open(s.data_dir()).unwrap_or_else(|e| panic!("the role file: {e}"));
    assert_eq!(
        a.roles()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["postgres", "dave"],
        "the role set"
    );
    a.get("dave").unwrap().connection_limit
}

/// Holds a backend's ALTER ROLE at `point`, waits until `arrived` says the save got there,
/// SIGKILLs the whole server, and returns dave's connection limit as the file then says.
fn kill_at(name: &str, point: &str, arrived: fn(&std::path::Path) -> bool) -> (TestServer, i32) {
    let mut s = ok(Builder::in_dir(scratch("pgipc-authcrash", name)).start());
    let mut a = Authid::open(s.data_dir()).expect("role file");
    let cmd = parse_role_command(&format!("CREATE ROLE dave LOGIN CONNECTION LIMIT {OLD}"))
        .unwrap()
        .unwrap();
    a.execute(&cmd, "postgres", &PasswordOptions::default())
        .unwrap();
    drop(a);
    ok(s.psql_ok(&format!(
        "SELECT injection_points_attach('{point}', 'wait')"
    )));
    let mut alter = s.psql_cmd(&format!("ALTER ROLE dave CONNECTION LIMIT {NEW}"));
    let alter = alter
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql");
    let global = s.data_dir().join("global");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !arrived(&global) {
        assert!(
            Instant::now() < deadline,
            "the save never reached {point}:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // What the point is reached by is done; let the backend get into the wait.
    std::thread::sleep(Duration::from_millis(300));
    let children = s.children();
    assert!(!children.is_empty());
    ok(s.signal(libc::SIGKILL));
    for pid in children.keys() {
        // SAFETY: kill on a child of our own server.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    ok(s.wait_exit());
    let out = finish(alter, Duration::from_secs(30));
    assert!(!out.status.success(), "ALTER ROLE finished: {out:?}");
    let limit = limit_in_file(&s);
    (s, limit)
}

/// The server starts again and pg_roles shows `limit` for dave.
fn restarts_with(mut s: TestServer, limit: i32) {
    ok(s.start());
    assert_eq!(
        ok(s.psql_ok("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'dave'")).trim(),
        limit.to_string()
    );
    ok(s.stop_ok());
}

fn text(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn killed_before_the_rename_the_old_set_loads() {
    let (s, limit) = kill_at("before-rename", "authid-save-before-rename", |g| {
        let t = text(&g.join("pgipc_authid.tmp"));
        t.contains(&format!("\"connection_limit\": {NEW}")) && t.contains("\nsha256:")
    });
    assert_eq!(limit, OLD);
    // The new set was complete in the temporary file, never in the catalog.
    assert!(text(&s.data_dir().join("global/pgipc_authid.tmp"))
        .contains(&format!("\"connection_limit\": {NEW}")));
    restarts_with(s, OLD);
}

fn killed_after_the_rename_the_new_set_loads() {
    let (s, limit) = kill_at("before-dir-fsync", "authid-save-before-dir-fsync", |g| {
        text(&g.join("pgipc_authid")).contains(&format!("\"connection_limit\": {NEW}"))
    });
    assert_eq!(limit, NEW);
    restarts_with(s, NEW);
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("auth_crash", WATCHDOG);
    pgipc_tests::harness::run_cases(&[
        (
            "killed_before_the_rename_the_old_set_loads",
            killed_before_the_rename_the_old_set_loads,
        ),
        (
            "killed_after_the_rename_the_new_set_loads",
            killed_after_the_rename_the_new_set_loads,
        ),
    ])
}
