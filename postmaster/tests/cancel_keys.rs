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

use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postmaster");
/// `CANCEL_REQUEST_CODE` (1234.5678).
const CANCEL_CODE: u32 = 80_877_102;

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

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + limit;
    while !f() {
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn mode(exec: bool) -> &'static str {
    if exec {
        "exec"
    } else {
        "fork"
    }
}

struct Server {
    child: Option<Child>,
    dir: PathBuf,
    sock: PathBuf,
    port: u16,
    log: PathBuf,
    extra: Vec<String>,
}

impl Server {
    fn new(name: &str, exec: bool, extra: &[&str]) -> Server {
        let base = std::env::temp_dir().join(format!(
            "pgipc-ck-{name}-{}-{}",
            mode(exec),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        let sock = base.join("sock");
        std::fs::create_dir_all(&sock).expect("socket dir");
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if exec {
            extra.extend(["-c".into(), "exec_backend=on".into()]);
        }
        Server {
            child: None,
            dir: base.join("data"),
            sock,
            port: free_port(),
            log: base.join("server.log"),
            extra,
        }
    }

    fn start(&mut self) -> TestResult {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Command::new(BIN)
            .arg("-D")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.sock)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn postmaster");
        self.child = Some(child);
        let me = self.pid().to_string();
        let pid_file = self.dir.join("postmaster.pid");
        wait_for("the server to be ready", Duration::from_secs(30), || {
            let t = std::fs::read_to_string(&pid_file).unwrap_or_default();
            let l: Vec<&str> = t.lines().collect();
            l.first() == Some(&me.as_str()) && l.get(7) == Some(&"ready   ")
        })
        .map_err(|e| format!("{}:\n{}", e.message().unwrap_or(""), self.log_text()).into())
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn socket_file(&self) -> PathBuf {
        self.sock.join(format!(".s.PGSQL.{}", self.port))
    }

    fn client(&self) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host_path(&self.sock)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(10))
            .connect(postgres::NoTls)
    }

    /// The postmaster's live children: pid → process name (what `set_process_name` gave).
    fn children(&self) -> BTreeMap<i32, String> {
        children_of(self.pid())
    }

    /// SIGINT (fast shutdown), then waits for a clean exit.
    fn stop(&mut self) -> TestResult {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill on our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = c.try_wait().expect("wait") {
                return check(st.success(), || {
                    format!("server exit {st}:\n{}", self.log_text())
                });
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return Err(format!("server did not stop:\n{}", self.log_text()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// No line of the log (from `from` on) says crash, restart or shutdown checkpoint.
    fn assert_no_crash_since(&self, from: usize) -> TestResult {
        let log = self.log_text();
        let tail = log.get(from..).unwrap_or("");
        for bad in BAD_LINES {
            check(!tail.contains(bad), || format!("log says {bad:?}:\n{tail}"))?;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // SAFETY: kill on our own child (immediate stop, then make sure).
            unsafe { libc::kill(c.id() as i32, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            if let Some(base) = self.dir.parent() {
                let _ = std::fs::remove_dir_all(base);
            }
        }
    }
}

/// Live (not zombie) children of `parent`: pid → name, from /proc.
fn children_of(parent: i32) -> BTreeMap<i32, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.first() != Some(&"Z") && f.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(parent) {
            let name = head.split_once('(').map_or("", |(_, n)| n).to_owned();
            out.insert(pid, name);
        }
    }
    out
}

fn sqlstate(e: &postgres::Error) -> String {
    e.code().map(|c| c.code().to_owned()).unwrap_or_default()
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
fn send_cancel(s: &Server, pid: i32, key: &[u8]) -> TestResult {
    let mut u = UnixStream::connect(s.socket_file()).map_err(|e| format!("connect: {e}"))?;
    u.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut pkt = Vec::with_capacity(12 + key.len());
    pkt.extend_from_slice(&((12 + key.len()) as u32).to_be_bytes());
    pkt.extend_from_slice(&CANCEL_CODE.to_be_bytes());
    pkt.extend_from_slice(&pid.to_be_bytes());
    pkt.extend_from_slice(key);
    u.write_all(&pkt).map_err(|e| format!("send: {e}"))?;
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

fn control_file(s: &Server) -> Vec<u8> {
    std::fs::read(s.dir.join("global/pg_control")).unwrap_or_default()
}

fn cancel_keys(exec: bool) -> TestResult {
    let mut s = Server::new(
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
        held.push(UnixStream::connect(s.socket_file()).map_err(|e| e.to_string())?);
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

    s.assert_no_crash_since(log_from)?;
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
    s.assert_no_crash_since(log_from)?;
    eprintln!(
        "{}: {sent} bad cancel requests to {} processes changed nothing; right key cancelled in {:?}",
        mode(exec),
        targets.len(),
        started.elapsed()
    );
    drop((a, b, c));
    s.stop()
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

fn startup_packet() -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for s in ["user", "postgres", "database", "postgres"] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    p.extend(body);
    p
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill with a plain pid and signal number; the targets are the server's children.
    unsafe { libc::kill(pid, sig) };
}

fn sigusr1_at_new_children(exec: bool) -> TestResult {
    let mut s = Server::new("usr1", exec, &["-c", "shared_preload_libraries=pgipc_demo"]);
    s.start()?;

    // 1. A backend held before its startup packet (until then it has no ProcSignal slot):
    //    SIGUSR1, SIGUSR2 and SIGALRM must not kill it, and it then serves the session.
    let before = s.children();
    let mut u = UnixStream::connect(s.socket_file()).map_err(|e| e.to_string())?;
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
    s.stop()
}

fn main() {
    let mut args = Arguments::from_args();
    // The cases start servers and must not overlap; each runs on the main thread.
    args.test_threads = Some(1);
    let watchdog_secs = 600;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(watchdog_secs));
        eprintln!("watchdog: cancel_keys ran over {watchdog_secs} s");
        std::process::exit(1);
    });
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
