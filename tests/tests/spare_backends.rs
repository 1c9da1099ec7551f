//! Spare backends (`spare_backends`, pgipc only): forked ahead of their connection and handed
//! the client socket at accept. A connection is served by a waiting spare and a new one takes
//! its place; a reload retires the spares, so the next session runs under the new settings;
//! SQL does not see a spare; SIGTERM ends a spare without a crash restart; `spare_backends =
//! 0` and exec mode fork at accept.

mod common;

use common::server::{children_of, client_at, watchdog, Builder, TestServer};
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(240);
const LIMIT: Duration = Duration::from_secs(15);

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn server(name: &str, exec: bool, extra: &[&str]) -> TestServer {
    let mut b = Builder::in_dir(common::server::scratch("pgipc-spare", name)).exec(exec);
    for s in extra {
        b = b.set(s);
    }
    ok(b.start())
}

/// The pids of the postmaster's children titled as spare backends.
fn spares(postmaster: i32) -> BTreeSet<i32> {
    children_of(postmaster)
        .keys()
        .copied()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("spare backend"))
        })
        .collect()
}

fn wait_spares(s: &TestServer, n: usize) -> BTreeSet<i32> {
    let pm = s.pid();
    ok(s.wait_for(&format!("{n} spare backends"), LIMIT, |_| {
        spares(pm).len() == n
    })
    .map_err(|e| format!("{e}\nspares: {:?}", spares(pm))));
    spares(pm)
}

fn query_one(s: &TestServer, sql: &str) -> String {
    let mut c = client_at(s.sock_dir(), s.port()).unwrap_or_else(|e| panic!("connect: {e}"));
    let rows = c.simple_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default()
}

/// Each connection is served by one of the waiting spares, and a new spare takes its place.
fn connections_go_to_spares() {
    let s = server("serve", false, &[]);
    for round in 0..3 {
        let before = wait_spares(&s, 2);
        let mut c = client_at(s.sock_dir(), s.port()).expect("connect");
        let pid: i32 = c
            .query_one("SELECT pg_backend_pid()", &[])
            .expect("pid")
            .get(0);
        assert!(
            before.contains(&pid),
            "round {round}: backend {pid} was not one of the spares {before:?}"
        );
        // SQL sees the session, never a waiting spare.
        let listed: Vec<i32> = c
            .query("SELECT pid FROM pg_stat_activity", &[])
            .expect("pg_stat_activity")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let after = wait_spares(&s, 2);
        assert!(!after.contains(&pid));
        // Its only socket is the client's: no copy of a spare's channel (the postmaster's
        // end of its own, or of the others') stays open in it.
        let sockets = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("fd list")
            .flatten()
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .count();
        assert_eq!(
            sockets, 1,
            "round {round}: backend {pid} has {sockets} sockets"
        );
        assert!(
            listed.iter().all(|p| !after.contains(p) || *p == pid),
            "pg_stat_activity {listed:?} lists a spare of {after:?}"
        );
    }
    assert_eq!(s.restarts(), 0, "{}", s.log_text());
}

/// A reload retires every spare (they were forked under the old settings), and they exit even
/// with a child forked after them still running; the next session runs under the new ones. `spare_backends` itself changes on reload.
fn reload_retires_spares() {
    let mut s = server("reload", false, &[]);
    let old = wait_spares(&s, 2);
    // A long-lived child forked while they wait (a dynamic worker): it must not hold their
    // channels open, or they would never see that they are retired.
    let mut w = client_at(s.sock_dir(), s.port()).expect("connect");
    let handle: i32 = w
        .query_one("SELECT pgipc_start_worker('pgipc_worker_sleep')", &[])
        .expect("start worker")
        .get(0);
    let old: BTreeSet<i32> = old.intersection(&spares(s.pid())).copied().collect();
    assert!(!old.is_empty(), "no spare stayed idle");
    let conf = s.data_dir().join("postgresql.conf");
    let text = std::fs::read_to_string(&conf).expect("conf");
    std::fs::write(
        &conf,
        format!("{text}\nwork_mem = '7MB'\nspare_backends = 3\n"),
    )
    .expect("conf");
    ok(s.signal(libc::SIGHUP));
    let new = wait_spares(&s, 3);
    assert!(old.is_disjoint(&new), "old {old:?} new {new:?}");
    ok(s.wait_for("the retired spares to exit", LIMIT, |s| {
        let kids = children_of(s.pid());
        old.iter().all(|p| !kids.contains_key(p))
    }));
    w.simple_query(&format!("SELECT pgipc_terminate_worker({handle})"))
        .expect("terminate worker");
    assert_eq!(query_one(&s, "SHOW work_mem"), "7MB");
    std::fs::write(&conf, format!("{text}\nspare_backends = 0\n")).expect("conf");
    ok(s.signal(libc::SIGHUP));
    wait_spares(&s, 0);
    assert_eq!(query_one(&s, "SHOW work_mem"), "4MB");
    assert_eq!(s.restarts(), 0, "{}", s.log_text());
}

/// SIGTERM ends a waiting spare cleanly (exit code 0: no crash restart), and the postmaster
/// forks a replacement; a fast shutdown with spares waiting ends promptly.
fn sigterm_ends_a_spare_cleanly() {
    let mut s = server("sigterm", false, &[]);
    let first = wait_spares(&s, 2);
    let victim = *first.iter().next().expect("a spare");
    // SAFETY: kill on a child of our own server.
    assert_eq!(unsafe { libc::kill(victim, libc::SIGTERM) }, 0);
    ok(s.wait_for("a replacement spare", LIMIT, |s| {
        let now = spares(s.pid());
        now.len() == 2 && !now.contains(&victim)
    }));
    assert_eq!(query_one(&s, "SELECT 1"), "1");
    assert_eq!(s.restarts(), 0, "{}", s.log_text());
    assert!(
        !s.log_text()
            .contains("terminating any other active server processes"),
        "{}",
        s.log_text()
    );
    let status = ok(s.stop());
    assert!(status.success(), "{status:?}\n{}", s.log_text());
}

/// `spare_backends = 0` and exec mode: no spares; connections are forked at accept.
fn no_spares_when_off_or_exec() {
    for (name, exec, extra) in [
        ("off", false, &["spare_backends=0"][..]),
        ("exec", true, &[]),
    ] {
        let s = server(name, exec, extra);
        assert_eq!(query_one(&s, "SELECT 1"), "1", "{name}");
        std::thread::sleep(Duration::from_millis(300));
        assert!(spares(s.pid()).is_empty(), "{name}: {:?}", spares(s.pid()));
    }
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("spare_backends", WATCHDOG);
    pgipc_tests::harness::run_cases(&[
        ("connections_go_to_spares", connections_go_to_spares),
        ("reload_retires_spares", reload_retires_spares),
        ("sigterm_ends_a_spare_cleanly", sigterm_ends_a_spare_cleanly),
        ("no_spares_when_off_or_exec", no_spares_when_off_or_exec),
    ])
}
