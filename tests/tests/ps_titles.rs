//! Process titles as `ps -o args` shows them (issue 13): every child kind, the backend's
//! activity through a psql session (idle, idle in transaction, aborted, the running command),
//! cluster_name, a TCP client, update_process_title = off, fork and exec modes, and the same
//! titles from the installed PostgreSQL 15 for the kinds both servers have. Spare backends
//! (pgipc only) are titled `spare backend`.

mod common;

use common::server::{children_of, pid_lines, watchdog, Builder, Postgres15, TestServer};
use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(300);
const LIMIT: Duration = Duration::from_secs(15);

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// What `ps -o args=` shows for `pid` (without its newline; PostgreSQL's titles keep the
/// space after the fixed part).
fn ps_args(pid: i32) -> String {
    let o = Command::new("ps")
        .args(["-o", "args=", "-p", &pid.to_string()])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&o.stdout)
        .trim_end_matches('\n')
        .to_owned()
}

/// The titles of `postmaster`'s live children, sorted.
fn titles(postmaster: i32) -> Vec<String> {
    let mut t: Vec<String> = children_of(postmaster)
        .keys()
        .map(|p| ps_args(*p))
        .filter(|t| !t.is_empty())
        .collect();
    t.sort();
    t
}

/// An interactive psql reading statements from a pipe, so that the session stays open
/// between them.
struct Session {
    child: Child,
    stdin: ChildStdin,
}

impl Session {
    fn open(sock_or_host: &Path, port: u16) -> Session {
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-h"])
            .arg(sock_or_host)
            .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql");
        let stdin = child.stdin.take().expect("stdin");
        Session { child, stdin }
    }

    fn send(&mut self, sql: &str) {
        writeln!(self.stdin, "{sql}").expect("psql stdin");
        self.stdin.flush().expect("flush");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pid of `postmaster`'s child whose title starts with `prefix`, once there is one.
fn child_titled(postmaster: i32, prefix: &str) -> Result<i32, String> {
    let mut found = 0;
    common::server::wait_for(&format!("a child titled {prefix:?}"), LIMIT, || {
        found = children_of(postmaster)
            .keys()
            .copied()
            .find(|p| ps_args(*p).starts_with(prefix))
            .unwrap_or(0);
        found != 0
    })
    .map_err(|e| format!("{e}; titles: {:?}", titles(postmaster)))?;
    Ok(found)
}

/// Waits until `pid`'s title is exactly `title`.
fn wait_title(pid: i32, title: &str) -> Result<(), String> {
    common::server::wait_for(&format!("title {title:?}"), LIMIT, || ps_args(pid) == title)
        .map_err(|e| format!("{e}; it is {:?}", ps_args(pid)))
}

/// The auxiliary and worker titles a server with two I/O workers and the demo worker shows,
/// sorted; `p` is the prefix (`postgres: ` or `postgres: <cluster>: `). A forked server also
/// keeps `spare_backends` (2) spare backends waiting for connections; an exec'd one has none.
fn expected_aux(p: &str, update: bool, spares: usize) -> Vec<String> {
    let io = |n: u32| {
        if update {
            format!("{p}io worker {n}")
        } else {
            format!("{p}io worker ")
        }
    };
    let mut v = vec![
        format!("{p}checkpointer "),
        format!("{p}background writer "),
        format!("{p}walwriter "),
        format!("{p}autovacuum launcher "),
        io(0),
        io(1),
        format!("{p}pgipc demo worker "),
    ];
    v.extend((0..spares).map(|_| format!("{p}spare backend ")));
    v.sort();
    v
}

fn server(name: &str, exec: bool, extra: &[&str]) -> TestServer {
    let mut b = Builder::in_dir(common::server::scratch("pgipc-ps", name))
        .exec(exec)
        .set("io_workers=2")
        .set("shared_preload_libraries=pgipc_demo");
    for s in extra {
        b = b.set(s);
    }
    if extra.iter().any(|s| s.starts_with("listen_addresses")) {
        b = b.listen("127.0.0.1");
    }
    ok(b.start())
}

/// Every kind's title, then the backend's through a transaction, an error and a statement.
fn all_kinds(exec: bool) {
    let s = server(if exec { "exec" } else { "fork" }, exec, &[]);
    let pm = s.pid();
    let want = expected_aux("postgres: ", true, if exec { 0 } else { 2 });
    let aux = |pm: i32| -> Vec<String> {
        titles(pm)
            .into_iter()
            .filter(|t| !t.starts_with("postgres: postgres "))
            .collect()
    };
    ok(
        s.wait_for("every auxiliary title", LIMIT, |_| aux(pm) == want)
            .map_err(|e| format!("{e}\nwant {want:?}\ngot  {:?}", aux(pm))),
    );
    // The postmaster keeps its own command line, as PostgreSQL's does.
    let own = ps_args(pm);
    assert!(
        own.contains(" -D ") && !own.starts_with("postgres:"),
        "{own}"
    );

    let mut psql = Session::open(s.sock_dir(), s.port());
    let local = "postgres: postgres postgres [local] ";
    let b = ok(child_titled(pm, local));
    ok(wait_title(b, &format!("{local}idle")));
    psql.send("BEGIN;");
    ok(wait_title(b, &format!("{local}idle in transaction")));
    psql.send("SELECT no_such_function();");
    ok(wait_title(
        b,
        &format!("{local}idle in transaction (aborted)"),
    ));
    psql.send("ROLLBACK;");
    ok(wait_title(b, &format!("{local}idle")));
    psql.send("SELECT pg_sleep(3);");
    ok(wait_title(b, &format!("{local}SELECT")));
    ok(wait_title(b, &format!("{local}idle")));
    drop(psql);
    ok(s.wait_for("the session to end", LIMIT, |_| {
        !Path::new(&format!("/proc/{b}")).exists() || ps_args(b).is_empty()
    }));
}

fn every_kind_fork() {
    all_kinds(false)
}

fn every_kind_exec() {
    all_kinds(true)
}

/// `cluster_name` in every title, and a TCP client's address and port.
fn cluster_name_and_tcp_client() {
    let s = server(
        "cluster",
        false,
        &["cluster_name=main", "listen_addresses=127.0.0.1"],
    );
    let pm = s.pid();
    let want = expected_aux("postgres: main: ", true, 2);
    ok(s.wait_for("every auxiliary title", LIMIT, |_| {
        titles(pm)
            .into_iter()
            .filter(|t| !t.starts_with("postgres: main: postgres "))
            .collect::<Vec<_>>()
            == want
    }));
    let _psql = Session::open(Path::new("127.0.0.1"), s.port());
    let b = ok(child_titled(
        pm,
        "postgres: main: postgres postgres 127.0.0.1(",
    ));
    let t = ps_args(b);
    let port = t
        .strip_prefix("postgres: main: postgres postgres 127.0.0.1(")
        .and_then(|r| r.split_once(')'))
        .map(|(p, _)| p.to_owned())
        .unwrap_or_default();
    assert!(port.parse::<u16>().is_ok(), "{t}");
    ok(wait_title(
        b,
        &format!("postgres: main: postgres postgres 127.0.0.1({port}) idle"),
    ));
}

/// `update_process_title = off`: each process keeps its first title (in exec mode, where
/// the setting reaches the children through their settings snapshot).
fn update_process_title_off() {
    let s = server("noupdate", true, &["update_process_title=off"]);
    let pm = s.pid();
    let want = expected_aux("postgres: ", false, 0);
    ok(s.wait_for("every auxiliary title", LIMIT, |_| {
        titles(pm)
            .into_iter()
            .filter(|t| !t.starts_with("postgres: postgres "))
            .collect::<Vec<_>>()
            == want
    }));
    let mut psql = Session::open(s.sock_dir(), s.port());
    let first = "postgres: postgres postgres [local] ";
    let b = ok(child_titled(pm, first));
    psql.send("BEGIN;");
    psql.send("SELECT pg_sleep(1);");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ps_args(b), first);
    psql.send("ROLLBACK;");
}

/// The kinds both servers have, and a backend through the same statements, titled exactly as
/// PostgreSQL 15 titles them.
fn titles_match_postgresql_15() {
    let pg = ok(Postgres15::start("ps-titles"));
    let pg_pm: i32 = pid_lines(pg.data_dir())[0].trim().parse().expect("pid");
    let s = server("vs15", false, &[]);
    let pm = s.pid();
    let common_kinds = [
        "postgres: checkpointer ",
        "postgres: background writer ",
        "postgres: walwriter ",
        "postgres: autovacuum launcher ",
    ];
    for kind in common_kinds {
        let theirs = ok(child_titled(pg_pm, kind));
        let ours = ok(child_titled(pm, kind));
        assert_eq!(ps_args(ours), ps_args(theirs), "{kind}");
    }
    let mut a = Session::open(pg.sock_dir(), pg.port());
    let mut b = Session::open(s.sock_dir(), s.port());
    let local = "postgres: postgres postgres [local] ";
    let (pa, pb) = (ok(child_titled(pg_pm, local)), ok(child_titled(pm, local)));
    for (sql, activity) in [
        ("", "idle"),
        ("BEGIN;", "idle in transaction"),
        (
            "SELECT no_such_function();",
            "idle in transaction (aborted)",
        ),
        ("ROLLBACK;", "idle"),
        ("SELECT pg_sleep(2);", "SELECT"),
        ("SELECT 1;", "idle"),
        // Turned off by the session: the title freezes at the SET that did it.
        ("SET update_process_title = off;", "SET"),
        ("BEGIN;", "SET"),
    ] {
        if !sql.is_empty() {
            a.send(sql);
            b.send(sql);
        }
        let want = format!("{local}{activity}");
        ok(wait_title(pa, &want).map_err(|e| format!("PostgreSQL 15: {e}")));
        ok(wait_title(pb, &want));
    }
    // BEGIN ran (and would have said "idle in transaction"), the titles stayed.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ps_args(pa), format!("{local}SET"));
    assert_eq!(ps_args(pb), format!("{local}SET"));
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    if common::server::which("psql").is_none() || common::server::which("ps").is_none() {
        eprintln!("ps_titles needs psql and ps");
        return ExitCode::FAILURE;
    }
    watchdog("ps_titles", WATCHDOG);
    pgipc_tests::harness::run_cases(&[
        ("every_kind_fork", every_kind_fork),
        ("every_kind_exec", every_kind_exec),
        ("cluster_name_and_tcp_client", cluster_name_and_tcp_client),
        ("update_process_title_off", update_process_title_off),
        ("titles_match_postgresql_15", titles_match_postgresql_15),
    ])
}
