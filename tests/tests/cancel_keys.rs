//! Anonymous clients cannot knock the server over through cancel requests or stray signals,
//! in fork and in exec mode.
//!
//! * `cancel keys`: CancelRequests with an empty, a short (3 bytes), a long (257 bytes) and a
//!   wrong key of each valid length (4 bytes as for protocol 3.0, 32 as for 3.2, zeros and
//!   not) go to every kind of server process: the postmaster itself, each auxiliary process,
//!   a static and a dynamic background worker, a dead-end backend held open, and a backend
//!   running `pg_sleep`. Nothing changes: no crash or restart in the log, the same children,
//!   no shutdown checkpoint (the checkpoint counter and `global/pg_control` unchanged), the
//!   open sessions answer and the sleep goes on; then the right key cancels it (57014).
//! * `sigusr1`: SIGUSR1 (and SIGUSR2, SIGALRM) sent to children right after they start: a
//!   backend held before its startup packet, and every new child while clients connect and
//!   a background worker restarts. No child dies of it, nothing restarts.
//!
//! `harness = false` with libtest-mimic, one test thread; every wait has a deadline and a
//! watchdog ends the binary if a case hangs.

mod common;

use common::server::{
    cancel_packet, children_of, scratch, sqlstate, startup_packet, wait_for, watchdog, Builder,
    TestServer,
};
use libtest_mimic::{Arguments, Failed, Trial};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Log lines that mean a crash, a restart or a shutdown checkpoint.
const BAD_LINES: &[&str] = &[
    "terminating any other active server processes",
    "all server processes terminated; reinitializing",
    "WAL was shut down unexpectedly",
    "was terminated by signal",
    "exited with exit code",
    "shutting down",
    "checkpoint starting: shutdown",
    "PANIC",
];

type TestResult = Result<(), Failed>;

fn check(cond: bool, msg: impl FnOnce() -> String) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(msg().into())
    }
}

fn mode(exec: bool) -> &'static str {
    if exec {
        "exec"
    } else {
        "fork"
    }
}

/// A server of this file (not started): TCP on 127.0.0.1 too, `extra` then the launch mode.
fn server(name: &str, exec: bool, extra: &[&str]) -> TestServer {
    Builder::in_dir(scratch("pgipc-ck", &format!("{name}-{}", mode(exec))))
        .listen("127.0.0.1")
        .args(extra)
        .exec(exec)
        .build()
}

/// No line of the log (from `from` on) says crash, restart or shutdown checkpoint.
fn assert_no_crash_since(s: &TestServer, from: usize) -> TestResult {
    let log = s.log_text();
    let tail = log.get(from..).unwrap_or("");
    for bad in BAD_LINES {
        check(!tail.contains(bad), || format!("log says {bad:?}:\n{tail}"))?;
    }
    Ok(())
}

fn show(c: &mut postgres::Client, name: &str) -> Result<String, Failed> {
    let rows = c
        .simple_query(&format!("SHOW {name}"))
        .map_err(|e| format!("SHOW {name}: {e}"))?;
    rows.iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .ok_or_else(|| format!("SHOW {name}: no row").into())
}

/// Sends one CancelRequest naming `pid` with `key` over the Unix socket; the server answers
/// nothing and closes the connection.
fn send_cancel(s: &TestServer, pid: i32, key: &[u8]) -> TestResult {
    let mut u = s.connect_raw().map_err(|e| format!("connect: {e}"))?;
    u.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    u.write_all(&cancel_packet(pid, key))
        .map_err(|e| format!("send: {e}"))?;
    let mut rest = Vec::new();
    u.read_to_end(&mut rest)
        .map_err(|e| format!("cancel connection not closed: {e}"))?;
    check(rest.is_empty(), || {
        format!("a cancel request got an answer: {rest:?}")
    })
}

/// The bad keys: empty, short, long, and wrong ones of both lengths the server hands out.
fn bad_keys() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", vec![]),
        ("3 bytes", vec![0, 0, 0]),
        ("257 bytes", vec![0; 257]),
        ("257 bytes (0xff)", vec![0xff; 257]),
        ("4 zero bytes", vec![0; 4]),
        ("4 bytes", vec![0xde, 0xad, 0xbe, 0xef]),
        ("32 zero bytes", vec![0; 32]),
        ("32 bytes", (0..32u8).collect()),
        ("256 zero bytes", vec![0; 256]),
    ]
}

fn control_file(s: &TestServer) -> Vec<u8> {
    std::fs::read(s.data_dir().join("global/pg_control")).unwrap_or_default()
}

fn cancel_keys(exec: bool) -> TestResult {
    let mut s = server(
        "keys",
        exec,
        &[
            "-c",
            "max_connections=3",
            "-c",
            "superuser_reserved_connections=0",
            "-c",
            "shared_preload_libraries=pgipc_demo",
            // No timed checkpoint during the test: pg_control must not move.
            "-c",
            "checkpoint_timeout=86400",
            // Each held connection below must start a child of its own (a spare would take
            // it instead, and none replaces the spare once the slots run out).
            "-c",
            "spare_backends=0",
        ],
    );
    s.start()?;
    // Session A watches; B registers a dynamic worker; C sleeps. That fills max_connections.
    let mut a = s.client().map_err(|e| format!("connect A: {e}"))?;
    let mut b = s.client().map_err(|e| format!("connect B: {e}"))?;
    let mut c = s.client().map_err(|e| format!("connect C: {e}"))?;
    let h: i32 = b
        .query_one("SELECT pgipc_start_worker('pgipc_worker_sleep')", &[])
        .map_err(|e| format!("start worker: {e}"))?
        .get(0);
    let dyn_worker: i32 = b
        .query_one(&format!("SELECT pgipc_worker_pid({h})"), &[])
        .map_err(|e| format!("worker pid: {e}"))?
        .get(0);
    let sleeper: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .map_err(|e| format!("pid: {e}"))?
        .get(0);
    let token = c.cancel_token();
    let sleeping = std::thread::spawn(move || {
        let r = c.simple_query("SELECT pg_sleep(120)");
        (r.map(drop).map_err(|e| sqlstate(&e)), c)
    });

    // A dead-end backend: the postmaster has more child slots than max_connections (some
    // connections may still be authenticating, as in PostgreSQL), so connections that send
    // nothing yet are held until one past the slots gets a dead-end child. The held ones are
    // backends before their startup packet (no ProcSignal slot yet): targets too.
    let mut held = Vec::new();
    let mut dead_end = 0;
    for _ in 0..32 {
        let before = s.children();
        held.push(s.connect_raw().map_err(|e| e.to_string())?);
        let mut new_kid = None;
        wait_for(
            "a child for the held connection",
            Duration::from_secs(10),
            || {
                new_kid = s
                    .children()
                    .into_iter()
                    .find(|(p, n)| n.starts_with("pgipc: ") && !before.contains_key(p));
                new_kid.is_some()
            },
        )?;
        if let Some((p, n)) = new_kid {
            if n == "pgipc: dead-end" {
                dead_end = p;
                break;
            }
        }
    }
    check(dead_end != 0, || {
        format!(
            "no dead-end backend after 32 held connections: {:?}",
            s.children()
        )
    })?;
    // Every kind, and the static worker running.
    wait_for("the static worker", Duration::from_secs(10), || {
        s.children()
            .iter()
            .filter(|(_, n)| *n == "pgipc: bgworker")
            .count()
            >= 2
    })?;
    let kids = s.children();
    let named = |name: &str| -> Vec<i32> {
        kids.iter()
            .filter(|(_, n)| *n == name)
            .map(|(p, _)| *p)
            .collect()
    };
    let checkpointer: i32 = show(&mut a, "pgipc.pid_of.checkpointer")?
        .parse()
        .map_err(|_| "checkpointer pid")?;
    check(named("pgipc: ckpt") == vec![checkpointer], || {
        format!("checkpointer {checkpointer} vs children {kids:?}")
    })?;
    let mut targets: Vec<(String, i32)> = vec![("postmaster".into(), s.pid())];
    for (name, what) in [
        ("pgipc: ckpt", "checkpointer"),
        ("pgipc: bgwriter", "background writer"),
        ("pgipc: walwrite", "walwriter"),
        ("pgipc: autovac", "autovacuum launcher"),
        ("pgipc: io", "io worker"),
        ("pgipc: bgworker", "background worker"),
        ("pgipc: dead-end", "dead-end backend"),
        ("pgipc: backend", "backend"),
    ] {
        let pids = named(name);
        check(!pids.is_empty(), || format!("no {what} among {kids:?}"))?;
        for p in pids {
            targets.push((format!("{what} {p}"), p));
        }
    }
    check(targets.iter().any(|(_, p)| *p == dyn_worker), || {
        format!("dynamic worker {dyn_worker} not among {targets:?}")
    })?;
    check(targets.iter().any(|(_, p)| *p == sleeper), || {
        format!("sleeping backend {sleeper} not among {targets:?}")
    })?;
    check(targets.iter().any(|(_, p)| *p == dead_end), || {
        "dead-end backend not a target".into()
    })?;
    // pg_sleep is under way before the barrage.
    std::thread::sleep(Duration::from_millis(200));

    let ckpt_before = show(&mut a, "pgipc.checkpoints_req")?;
    let control_before = control_file(&s);
    check(!control_before.is_empty(), || "no pg_control".into())?;
    let log_from = s.log_text().len();

    let mut sent = 0;
    for (what, pid) in &targets {
        for (kind, key) in bad_keys() {
            send_cancel(&s, *pid, &key)
                .map_err(|e| format!("{what}, {kind}: {}", e.message().unwrap_or("")))?;
            sent += 1;
        }
    }
    // Give any damage time to show.
    std::thread::sleep(Duration::from_millis(500));

    assert_no_crash_since(&s, log_from)?;
    let after = s.children();
    for (pid, name) in &kids {
        check(after.get(pid) == Some(name), || {
            format!("child {pid} ({name}) is gone; children now {after:?}")
        })?;
    }
    check(
        show(&mut a, "pgipc.checkpoints_req")? == ckpt_before,
        || "a checkpoint was requested".into(),
    )?;
    check(control_file(&s) == control_before, || {
        "pg_control changed".into()
    })?;
    b.simple_query("SELECT 1")
        .map_err(|e| format!("session B: {e}"))?;
    let still: i32 = b
        .query_one(&format!("SELECT pgipc_worker_pid({h})"), &[])
        .map_err(|e| format!("worker pid: {e}"))?
        .get(0);
    check(still == dyn_worker, || {
        format!("dynamic worker {dyn_worker} now {still}")
    })?;
    check(!sleeping.is_finished(), || {
        "pg_sleep ended before the right key was sent".into()
    })?;
    let log = s.log_text();
    let tail = &log[log_from..];
    for want in [
        "invalid length of cancel key in cancel request packet",
        "wrong key in cancel request for process",
        "did not match any process",
    ] {
        check(tail.contains(want), || {
            format!("log never said {want:?}:\n{tail}")
        })?;
    }

    // The right key still cancels.
    let started = Instant::now();
    token
        .cancel_query(postgres::NoTls)
        .map_err(|e| format!("cancel: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sleeping.is_finished() {
        if Instant::now() > deadline {
            return Err("the right key did not cancel pg_sleep".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (r, mut c) = sleeping.join().map_err(|_| "sleeper panicked")?;
    check(r == Err("57014".to_owned()), || {
        format!("pg_sleep ended with {r:?}")
    })?;
    c.simple_query("SELECT 1")
        .map_err(|e| format!("session C after cancel: {e}"))?;
    a.simple_query("SELECT 1")
        .map_err(|e| format!("session A: {e}"))?;
    assert_no_crash_since(&s, log_from)?;
    eprintln!(
        "{}: {sent} bad cancel requests to {} processes changed nothing; right key cancelled in {:?}",
        mode(exec),
        targets.len(),
        started.elapsed()
    );
    drop((a, b, c));
    Ok(s.stop_ok()?)
}

/// Reads server messages until ReadyForQuery; an ErrorResponse is a failure.
fn read_until_ready(u: &mut UnixStream) -> TestResult {
    loop {
        let mut head = [0u8; 5];
        u.read_exact(&mut head).map_err(|e| format!("read: {e}"))?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        u.read_exact(&mut body).map_err(|e| format!("read: {e}"))?;
        match head[0] {
            b'Z' => return Ok(()),
            b'E' => {
                return Err(format!("error: {}", String::from_utf8_lossy(&body)).into());
            }
            _ => {}
        }
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill with a plain pid and signal number; the targets are the server's children.
    unsafe { libc::kill(pid, sig) };
}

fn sigusr1_at_new_children(exec: bool) -> TestResult {
    let mut s = server("usr1", exec, &["-c", "shared_preload_libraries=pgipc_demo"]);
    s.start()?;

    // 1. A backend held before its startup packet (until then it has no ProcSignal slot):
    //    SIGUSR1, SIGUSR2 and SIGALRM must not kill it, and it then serves the session.
    let before = s.children();
    let mut u = s.connect_raw().map_err(|e| e.to_string())?;
    u.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut fresh = 0;
    wait_for("the new backend", Duration::from_secs(10), || {
        fresh = s
            .children()
            .into_iter()
            .find(|(p, n)| n == "pgipc: backend" && !before.contains_key(p))
            .map_or(0, |(p, _)| p);
        fresh != 0
    })?;
    for sig in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM, libc::SIGUSR1] {
        signal(fresh, sig);
    }
    std::thread::sleep(Duration::from_millis(200));
    check(s.children().contains_key(&fresh), || {
        format!("the backend died of a stray signal:\n{}", s.log_text())
    })?;
    u.write_all(&startup_packet())
        .map_err(|e| format!("startup: {e}"))?;
    read_until_ready(&mut u)?;
    u.write_all(b"X\0\0\0\x04").map_err(|e| e.to_string())?;
    drop(u);

    // 2. A spammer sends SIGUSR1 to every child it sees, as soon as it sees it, while
    //    clients connect and the static worker is made to restart.
    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let spammer = {
        let (stop, hits, pm) = (stop.clone(), hits.clone(), s.pid());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for pid in children_of(pm).keys() {
                    signal(*pid, libc::SIGUSR1);
                    hits.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let mut connections = 0;
    let run = (|| -> TestResult {
        for round in 0..30 {
            let mut c = s.client().map_err(|e| format!("connect #{round}: {e}"))?;
            c.simple_query("SELECT 1")
                .map_err(|e| format!("query #{round}: {e}"))?;
            connections += 1;
            if round % 10 == 0 {
                // The static worker exits 1 on SIGTERM and restarts after 1 s.
                let kids = s.children();
                if let Some((p, _)) = kids.iter().find(|(_, n)| *n == "pgipc: bgworker") {
                    signal(*p, libc::SIGTERM);
                }
            }
        }
        Ok(())
    })();
    // Let a restarted worker come up under fire too.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    let _ = spammer.join();
    run?;
    // The worker's own exits (code 1 after SIGTERM) are expected; nothing else.
    let log = s.log_text();
    for bad in BAD_LINES.iter().filter(|b| **b != "exited with exit code") {
        check(!log.contains(bad), || format!("log says {bad:?}:\n{log}"))?;
    }
    s.client()
        .and_then(|mut c| c.simple_query("SELECT 1").map(drop))
        .map_err(|e| format!("after the spam: {e}"))?;
    eprintln!(
        "{}: {connections} connections and worker restarts under {} SIGUSR1s, nothing died",
        mode(exec),
        hits.load(Ordering::Relaxed)
    );
    Ok(s.stop_ok()?)
}

fn main() -> std::process::ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    let mut args = Arguments::from_args();
    // The cases start servers and must not overlap; each runs on the main thread.
    args.test_threads = Some(1);
    watchdog("cancel_keys", Duration::from_secs(600));
    let mut trials = Vec::new();
    for exec in [false, true] {
        trials.push(Trial::test(
            format!(
                "{}: bad cancel keys change nothing, the right one cancels",
                mode(exec)
            ),
            move || cancel_keys(exec),
        ));
        trials.push(Trial::test(
            format!("{}: SIGUSR1 at new children kills none", mode(exec)),
            move || sigusr1_at_new_children(exec),
        ));
    }
    libtest_mimic::run(&args, trials).exit();
}
