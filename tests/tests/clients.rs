//! The server against real PostgreSQL clients (psql, pgbench, the `postgres` crate), in fork
//! and in exec mode: queries, connection limits, the three shutdown modes with sessions open,
//! crash restart after SIGKILL of each kind of child, cancel, postmaster death, bad client
//! input, background workers, pgipc_ctl, and nothing left behind.
//!
//! libtest-mimic on one test thread runs the scenarios one after the other, each a trial (those
//! run in both launch modes are two trials, `…_fork` and `…_exec`); every server runs on its own
//! port and socket directory and is stopped by `Drop` if a scenario fails. Every wait has a
//! deadline, so a bug fails the test instead of hanging CI.

mod common;

use common::server::{
    cancel_packet, pgipc_ctl, scratch, sqlstate, watchdog, which, Builder, TestServer,
};
use libtest_mimic::{Arguments, Trial};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

/// The value of a step that must work; a failed one fails the scenario with its message.
fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn wait_for(what: &str, limit: Duration, f: impl FnMut() -> bool) {
    ok(common::server::wait_for(what, limit, f));
}

/// A server of this file (not started): TCP on 127.0.0.1 too, its shared memory tracked for
/// `clean_after_stop`.
fn server(name: &str, extra: &[&str]) -> TestServer {
    Builder::in_dir(scratch("pgipc-cl", name))
        .listen("127.0.0.1")
        .args(extra)
        .track_shared_memory()
        .build()
}

fn message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string())
}

fn mode(exec: bool) -> &'static str {
    if exec {
        "exec"
    } else {
        "fork"
    }
}

fn mode_args(exec: bool) -> Vec<&'static str> {
    if exec {
        vec!["-c", "exec_backend=on"]
    } else {
        vec![]
    }
}

// ---- scenarios -------------------------------------------------------------------------------

fn queries_psql_rust_client_and_pgbench(exec: bool) {
    let mut s = server(if exec { "q-exec" } else { "q-fork" }, &mode_args(exec));
    ok(s.start());
    assert_eq!(ok(s.psql_ok("SELECT 1")), "1");
    let pid: i32 = ok(s.psql_ok("SELECT pg_backend_pid()"))
        .parse()
        .expect("a pid");
    assert!(pid > 0 && pid != s.pid());
    assert_eq!(ok(s.psql_ok("SHOW max_connections")), "100");
    // Over TCP too.
    let o = Command::new("psql")
        .args([
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &s.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", "postgres", "-c", "SELECT 1"])
        .output()
        .expect("psql");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1", "{o:?}");

    let mut c = s.client().expect("rust client connects");
    let row = c.query_one("SELECT 1", &[]).expect("extended query");
    assert_eq!(row.get::<_, i32>(0), 1);
    let rows = c.simple_query("SELECT 1").expect("simple query");
    assert!(rows.len() >= 2);
    let e = c.simple_query("SELEKT 1").expect_err("syntax error");
    assert_eq!(sqlstate(&e), "42601");
    c.simple_query("BEGIN").expect("begin");
    c.simple_query("COMMIT").expect("commit");
    drop(c);

    let script = s.data_dir().parent().expect("base").join("select1.sql");
    std::fs::write(&script, "SELECT 1;\n").expect("script");
    for args in [
        vec!["-M", "simple"],
        vec!["-M", "prepared"],
        vec!["-M", "simple", "-C"],
        vec!["-M", "prepared", "-C"],
    ] {
        let o = Command::new("pgbench")
            .args(["-n", "-c", "2", "-t", "50", "-f"])
            .arg(&script)
            .arg("-h")
            .arg(s.sock_dir())
            .args(["-p", &s.port().to_string(), "-U", "postgres", "postgres"])
            .args(&args)
            .output()
            .expect("pgbench");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success()
                && out.contains("number of transactions actually processed: 100/100"),
            "pgbench {args:?}: {out}\n{}\n{}",
            String::from_utf8_lossy(&o.stderr),
            s.log_text()
        );
    }
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success(), "{}", s.log_text());
    ok(s.clean_after_stop());
}

fn too_many_clients(exec: bool) {
    let mut extra = mode_args(exec);
    extra.extend([
        "-c",
        "max_connections=3",
        "-c",
        "superuser_reserved_connections=0",
    ]);
    let mut s = server(&format!("toomany-{}", mode(exec)), &extra);
    ok(s.start());
    let held: Vec<postgres::Client> = (0..3).map(|_| s.client().expect("within limit")).collect();
    let e = s.client().err().expect("past max_connections must fail");
    assert_eq!(sqlstate(&e), "53300", "{e}");
    assert_eq!(message(&e), "sorry, too many clients already");
    drop(held);
    // Slots come back.
    wait_for("a free slot", Duration::from_secs(10), || {
        s.client().is_ok()
    });
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success());
}

fn smart_shutdown_waits_for_clients(exec: bool) {
    let mut s = server(&format!("smart-{}", mode(exec)), &mode_args(exec));
    ok(s.start());
    let mut c = s.client().expect("connect");
    ok(s.signal(libc::SIGTERM));
    ok(s.wait_log("received smart shutdown request", Duration::from_secs(10)));
    // New sessions are refused; the open one still works.
    wait_for(
        "refusal",
        Duration::from_secs(10),
        || matches!(s.client(), Err(e) if sqlstate(&e) == "57P03"),
    );
    let e = s.client().err().expect("refused during shutdown");
    assert_eq!(message(&e), "the database system is shutting down");
    c.simple_query("SELECT 1")
        .expect("old session still served");
    assert!(s.exited().is_none());
    drop(c);
    assert!(ok(s.wait_exit()).success(), "{}", s.log_text());
    ok(s.wait_log("database system is shut down", Duration::from_secs(1)));
    ok(s.clean_after_stop());
}

fn fast_shutdown_terminates_clients(exec: bool) {
    let mut s = server(&format!("fast-{}", mode(exec)), &mode_args(exec));
    ok(s.start());
    let mut c = s.client().expect("connect");
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success(), "{}", s.log_text());
    let log = s.log_text();
    for want in [
        "received fast shutdown request",
        "aborting any active transactions",
        "shutting down",
        "checkpoint starting: shutdown immediate",
        "database system is shut down",
    ] {
        assert!(log.contains(want), "missing {want:?}:\n{log}");
    }
    let e = c
        .simple_query("SELECT 1")
        .expect_err("session was terminated");
    let _ = e;
    ok(s.clean_after_stop());
}

fn immediate_shutdown_then_recovery(exec: bool) {
    let mut s = server(&format!("immediate-{}", mode(exec)), &mode_args(exec));
    ok(s.start());
    let _c = s.client().expect("connect");
    ok(s.signal(libc::SIGQUIT));
    ok(s.wait_exit());
    assert!(s.log_text().contains("received immediate shutdown request"));
    ok(s.clean_after_stop());
    ok(s.start());
    ok(s.wait_log(
        "database system was not properly shut down; automatic recovery in progress",
        Duration::from_secs(10),
    ));
    assert_eq!(ok(s.psql_ok("SELECT 1")), "1");
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success());
}

fn child_pid_by_kind(s: &TestServer, kind: &str) -> Option<i32> {
    // The server answers `SHOW pgipc.pid_of.<kind>` from the PGPROC array.
    let out = ok(s.psql_ok(&format!("SHOW pgipc.pid_of.{kind}")));
    out.parse().ok().filter(|p: &i32| *p > 0)
}

fn sigkill_of_each_child_restarts(exec: bool) {
    let mut s = server(
        if exec { "kill-exec" } else { "kill-fork" },
        &mode_args(exec),
    );
    ok(s.start());
    let mut restarts = 0;
    for kind in [
        "backend",
        "checkpointer",
        "bgwriter",
        "walwriter",
        "autovacuum_launcher",
        "io_worker",
    ] {
        let victim = if kind == "backend" {
            let c = s.client().expect("connect");
            let pid: i32 = {
                let mut c = c;
                let r = c.query_one("SELECT pg_backend_pid()", &[]).expect("pid");
                let pid = r.get::<_, i32>(0);
                std::mem::forget(c);
                pid
            };
            pid
        } else {
            let mut found = None;
            wait_for(&format!("a {kind}"), Duration::from_secs(10), || {
                found = child_pid_by_kind(&s, kind);
                found.is_some()
            });
            found.expect("pid")
        };
        // SAFETY: kill on a child of our child.
        assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
        restarts += 1;
        let want = "all server processes terminated; reinitializing";
        wait_for(
            &format!("restart #{restarts} after killing the {kind}"),
            Duration::from_secs(20),
            || s.log_text().matches(want).count() >= restarts,
        );
        wait_for("connections after restart", Duration::from_secs(20), || {
            s.psql("SELECT 1").status.success()
        });
    }
    let log = s.log_text();
    assert!(
        log.contains("terminating any other active server processes"),
        "{log}"
    );
    assert!(log.contains("was terminated by signal 9: Killed"), "{log}");
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success(), "{}", s.log_text());
}

fn cancel_interrupts_sleep(exec: bool) {
    let mut s = server(&format!("cancel-{}", mode(exec)), &mode_args(exec));
    ok(s.start());
    let mut c = s.client().expect("connect");
    let token = c.cancel_token();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        token.cancel_query(postgres::NoTls)
    });
    let started = Instant::now();
    let e = c.simple_query("SELECT pg_sleep(30)").expect_err("canceled");
    assert_eq!(sqlstate(&e), "57014", "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    t.join().expect("thread").expect("cancel sent");
    // The session survives a cancel.
    c.simple_query("SELECT 1").expect("still usable");
    // A cancel with a wrong key is ignored silently: a raw CancelRequest.
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pid")
        .get(0);
    let mut u = s.connect_raw().expect("connect");
    u.write_all(&cancel_packet(pid, &0xdead_beefu32.to_be_bytes()))
        .expect("send");
    let mut rest = Vec::new();
    let _ = u.read_to_end(&mut rest);
    assert!(rest.is_empty(), "a cancel gets no answer");
    c.simple_query("SELECT 1")
        .expect("a wrong key cancels nothing");
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success());
}

fn postmaster_death_ends_children(exec: bool) {
    let mut s = server(&format!("pmdeath-{}", mode(exec)), &mode_args(exec));
    ok(s.start());
    let _c = s.client().expect("connect");
    let kids: Vec<i32> = s.children().into_keys().collect();
    assert!(kids.len() >= 5, "children: {kids:?}");
    // What the server owns just before the kill (its DSM control segment, what that lists,
    // its SysV interlock).
    ok(s.signal(libc::SIGKILL));
    let first = s.owned().clone();
    ok(s.wait_exit());
    let t = Instant::now();
    let alive = |p: &i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map(|st| {
                !st.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    };
    let what = format!("children to exit ({} of them)", kids.len());
    let deadline = Instant::now() + Duration::from_secs(5);
    while kids.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let left: Vec<String> = kids
        .iter()
        .filter(|p| alive(p))
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            format!("{p} {}", comm.trim())
        })
        .collect();
    assert!(left.is_empty(), "{what}: still running: {left:?}");
    wait_for("children to exit", Duration::from_secs(1), || {
        // Exited: gone, or a zombie waiting for whoever adopted it to reap it.
        kids.iter().all(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .map(|st| {
                    st.rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(true)
        })
    });
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "children took {:?}",
        t.elapsed()
    );
    // The killed server's segments are still there: the next start removes them.
    let vanished = first.missing();
    assert!(
        vanished.is_empty(),
        "the control segment vanished by itself: {vanished:?}"
    );
    ok(s.start());
    let stale = first.left();
    assert!(
        stale.is_empty(),
        "the next start left the dead server's segments: {stale:?}"
    );
    assert_eq!(ok(s.psql_ok("SELECT 1")), "1");
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success());
    ok(s.clean_after_stop());
    println!(
        "{}: postmaster SIGKILL: children gone within {:?}, next start works, leftover DSM removed",
        mode(exec),
        t.elapsed()
    );
}

fn bad_client_input_is_harmless(exec: bool) {
    let mut s = server(&format!("badinput-{}", mode(exec)), &mode_args(exec));
    ok(s.start());
    let mut good = s.client().expect("connect");
    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0, 0, 0, 3],                         // length below the minimum
        vec![0, 0, 0],                            // truncated length
        vec![0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0], // oversized
        [&8u32.to_be_bytes()[..], &0x0002_0000u32.to_be_bytes()[..]].concat(), // protocol 2.0
        [&8u32.to_be_bytes()[..], &0x0004_0000u32.to_be_bytes()[..]].concat(), // protocol 4.0
        [
            &20u32.to_be_bytes()[..],
            &0x0003_0000u32.to_be_bytes()[..],
            b"user\0x",
        ]
        .concat(), // truncated
        [
            &8u32.to_be_bytes()[..],
            &80_877_103u32.to_be_bytes()[..],
            b"\x16\x03\x01garbage",
        ]
        .concat(),
    ];
    for g in &garbage {
        if let Ok(mut u) = s.connect_raw() {
            let _ = u.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = u.write_all(g);
            let _ = u.shutdown(std::net::Shutdown::Write);
            let mut sink = Vec::new();
            let _ = u.read_to_end(&mut sink);
        }
        if let Ok(mut t) = TcpStream::connect(("127.0.0.1", s.port())) {
            let _ = t.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = t.write_all(g);
            let mut sink = Vec::new();
            let _ = t.shutdown(std::net::Shutdown::Write);
            let _ = t.read_to_end(&mut sink);
        }
    }
    // An oversized message inside a session.
    if let Ok(mut u) = s.connect_raw() {
        let mut start = Vec::new();
        let body = b"\0\x03\0\0user\0postgres\0database\0postgres\0\0";
        start.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        start.extend_from_slice(body);
        let _ = u.write_all(&start);
        let _ = u.write_all(&[b'Q', 0x7f, 0xff, 0xff, 0xff]);
        let _ = u.set_read_timeout(Some(Duration::from_secs(5)));
        let mut sink = Vec::new();
        let _ = u.read_to_end(&mut sink);
    }
    good.simple_query("SELECT 1")
        .expect("other session untouched");
    assert_eq!(ok(s.psql_ok("SELECT 1")), "1");
    assert!(!s
        .log_text()
        .contains("terminating any other active server processes"));
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success());
}

fn background_workers_static() {
    let mut s = server("bgw", &["-c", "shared_preload_libraries=pgipc_demo"]);
    ok(s.start());
    let mut pid = None;
    wait_for("the demo worker", Duration::from_secs(10), || {
        pid = child_pid_by_kind(&s, "background_worker");
        pid.is_some()
    });
    // Exit code 1 (SIGTERM to the worker alone) restarts it after bgw_restart_time (1 s).
    // SAFETY: kill on a grandchild.
    unsafe { libc::kill(pid.expect("pid"), libc::SIGTERM) };
    let old = pid;
    wait_for("a restarted worker", Duration::from_secs(10), || {
        let p = child_pid_by_kind(&s, "background_worker");
        p.is_some() && p != old
    });
    // Dynamic registration from a backend, with a handle to get the pid and terminate.
    let mut c = s.client().expect("connect");
    let h: i32 = c
        .query_one("SELECT pgipc_start_worker('pgipc_worker_sleep')", &[])
        .expect("start")
        .get(0);
    let wpid: i32 = c
        .query_one(&format!("SELECT pgipc_worker_pid({h})"), &[])
        .expect("pid")
        .get(0);
    assert!(wpid > 0);
    assert!(Path::new(&format!("/proc/{wpid}")).exists());
    let st: String = c
        .query_one(&format!("SELECT pgipc_terminate_worker({h})"), &[])
        .expect("terminate")
        .get(0);
    assert_eq!(st, "stopped");
    let gone: i32 = c
        .query_one(&format!("SELECT pgipc_worker_pid({h})"), &[])
        .expect("pid")
        .get(0);
    assert_eq!(gone, 0);
    // The backend only names the function; the postmaster refuses a name it does not have
    // (logged with PostgreSQL's 42883 text) and the start-up wait sees the worker stopped.
    let e = c
        .simple_query("SELECT pgipc_start_worker('no_such_function')")
        .expect_err("unknown entry point");
    assert_eq!(sqlstate(&e), "55000", "{e:?}");
    ok(s.wait_log(
        "could not find function \"no_such_function\"",
        Duration::from_secs(10),
    ));
    drop(c);
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success(), "{}", s.log_text());
}

fn exec_children_use_the_postmasters_settings() {
    let mut s = server("exec-settings", &mode_args(true));
    ok(s.start());
    // Edited, not reloaded: new children must still see the postmaster's values (a child with
    // another max_connections would not even fit the shared memory).
    let conf = s.data_dir().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).expect("conf");
    text.push_str("\nmax_connections = 7\nbgwriter_delay = 1000ms\n");
    std::fs::write(&conf, text).expect("write conf");
    assert_eq!(ok(s.psql_ok("SHOW max_connections")), "100");
    assert_eq!(ok(s.psql_ok("SHOW bgwriter_delay")), "200ms");
    // After a reload the changeable one changes, the other needs a restart.
    ok(s.signal(libc::SIGHUP));
    ok(s.wait_log(
        "parameter \"max_connections\" cannot be changed without restarting the server",
        Duration::from_secs(10),
    ));
    assert_eq!(ok(s.psql_ok("SHOW bgwriter_delay")), "1s");
    assert_eq!(ok(s.psql_ok("SHOW max_connections")), "100");
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success(), "{}", s.log_text());
}

fn ctl_start_status_reload_stop() {
    let s = server("ctl", &[]);
    let ctl = |args: &[&str]| -> Output {
        pgipc_ctl()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("pgipc_ctl")
    };
    let d = s.data_dir().display().to_string();
    let opts = format!(
        "-p {} -k {} -c listen_addresses=",
        s.port(),
        s.sock_dir().display()
    );
    let log = s.log_path().display().to_string();
    let o = ctl(&["start", "-D", &d, "-l", &log, "-o", &opts]);
    assert!(o.status.success(), "{o:?}\n{}", s.log_text());
    assert!(String::from_utf8_lossy(&o.stdout).contains("server started"));
    let o = ctl(&["status", "-D", &d]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("server is running (PID: "));
    let o = ctl(&["reload", "-D", &d]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("server signaled"));
    ok(s.wait_log(
        "received SIGHUP, reloading configuration files",
        Duration::from_secs(10),
    ));
    let o = ctl(&["restart", "-D", &d, "-m", "fast", "-l", &log]);
    assert!(o.status.success(), "{o:?}\n{}", s.log_text());
    assert_eq!(ok(s.psql_ok("SELECT 1")), "1");
    for mode in ["immediate", "smart"] {
        let o = ctl(&["stop", "-D", &d, "-m", mode]);
        assert!(o.status.success(), "{o:?}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("server stopped"));
        if mode == "immediate" {
            let o = ctl(&["start", "-D", &d, "-l", &log, "-o", &opts]);
            assert!(o.status.success(), "{o:?}");
        }
    }
    let o = ctl(&["status", "-D", &d]);
    assert_eq!(o.status.code(), Some(3));
    assert!(!s.socket_file().exists());
}

/// A scenario run once per launch mode (its argument: exec mode).
type PerMode = (&'static str, fn(bool));

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("clients test", Duration::from_secs(900));
    if which("psql").is_none() || which("pgbench").is_none() {
        panic!("psql and pgbench are required (CI installs them)");
    }
    let per_mode: [PerMode; 9] = [
        (
            "queries_psql_rust_client_and_pgbench",
            queries_psql_rust_client_and_pgbench,
        ),
        ("too_many_clients", too_many_clients),
        (
            "smart_shutdown_waits_for_clients",
            smart_shutdown_waits_for_clients,
        ),
        (
            "fast_shutdown_terminates_clients",
            fast_shutdown_terminates_clients,
        ),
        (
            "immediate_shutdown_then_recovery",
            immediate_shutdown_then_recovery,
        ),
        (
            "sigkill_of_each_child_restarts",
            sigkill_of_each_child_restarts,
        ),
        ("cancel_interrupts_sleep", cancel_interrupts_sleep),
        (
            "postmaster_death_ends_children",
            postmaster_death_ends_children,
        ),
        ("bad_client_input_is_harmless", bad_client_input_is_harmless),
    ];
    let once: [(&str, fn()); 3] = [
        ("background_workers_static", background_workers_static),
        ("ctl_start_status_reload_stop", ctl_start_status_reload_stop),
        (
            "exec_children_use_the_postmasters_settings",
            exec_children_use_the_postmasters_settings,
        ),
    ];
    let mut trials = Vec::new();
    for exec in [false, true] {
        for (name, f) in per_mode {
            trials.push(Trial::test(format!("{name}_{}", mode(exec)), move || {
                f(exec);
                Ok(())
            }));
        }
    }
    for (name, f) in once {
        trials.push(Trial::test(name, move || {
            f();
            Ok(())
        }));
    }
    let mut args = Arguments::from_args();
    // One test thread: the scenarios run one after the other, never two servers at once.
    args.test_threads = Some(1);
    libtest_mimic::run(&args, trials).exit_code()
}
