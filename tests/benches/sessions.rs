//! Thousands of sessions (issues 14 and 17), ours beside PostgreSQL 15 from the machine's
//! packages in the same run.
//!
//! A small client speaks the protocol itself over the Unix socket (a startup packet, trust
//! authentication, ReadyForQuery), so that one process can hold 10,000 sessions for the price
//! of one descriptor each. The bench raises its own descriptor limit to the hard limit, and
//! the servers inherit it; ours runs with `max_connections = 10100` (10,000 held sessions and
//! room for pgbench and psql beside them), PostgreSQL 15 with 4100.
//!
//! * **sequential**: N sessions opened one after another and held; the time per connection
//!   of each tenth, and the last tenth over the first (N = 1000, 4000, 10000; PostgreSQL at
//!   1000 and 4000). Beside the wall time, per tenth: the postmaster's CPU, the backends'
//!   start-up CPU and, where the kernel runs DAMON (`kdamond`), that thread's CPU per
//!   connection: its page-access sampling walks every mapping of a sampled page, so it
//!   grows with the number of held sessions, and while it walks it holds the locks the
//!   postmaster's `fork` must take (issue 17's measurements are in BENCHMARKS.md).
//! * **storm**: N connection attempts all outstanding at once (16 threads connect and send
//!   their startup packets without waiting, then read every answer); all must be served; the
//!   total time (N = 1024, 4096).
//! * **connect**: `pgbench -C` connections per second with 1 and 4 clients.
//! * **idle**: `SELECT 1`, `SELECT pg_current_snapshot()` and `SELECT pg_current_xact_id()`
//!   tps (pgbench, one client, prepared) with 0, 100, 1000 and 10,000 idle sessions held open
//!   (PostgreSQL at 0, 100, 1000), and the ratios the issues ask for; beside each, the server
//!   CPU per transaction (pgbench's backend's CPU, from the postmaster's reaped-children time),
//!   which moves far less with the machine's other work than the tps does.
//! * **memory**: the Pss (`/proc/PID/smaps_rollup`) of the postmaster and of idle backends
//!   (median of 20) with 10,000 sessions (PostgreSQL with 1000).
//! * `shared_memory_size` (`-C`) at `max_connections = 10000`, both servers.
//!
//! Lines: `BENCH sessions/<name> <value> <unit> <ratio>x <baseline>`, and plain lines for the
//! per-tenth figures. Run: `cargo bench -p pgipc-tests --bench sessions` (as root, for
//! `runuser -u postgres`); `SESSIONS_PARTS=seq,storm,connect,idle,memory` picks parts,
//! `SESSIONS_SEQ=1000,4000` the sequential sizes, `SESSIONS_ROUNDS` the rounds of the tps figures (default 3), `SESSIONS_HOLD_SECS` how long
//! the memory part keeps its 10,000 sessions open afterwards (for a profiler).

use pgipc_tests::bench::{line, median};
use pgipc_tests::{free_port, postmaster};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Ours: room for 10,000 held sessions plus pgbench's and psql's.
const OUR_MAX: u32 = 10_100;
/// The most sessions the bench holds on our server.
const HELD: usize = 10_000;
const PG_MAX: u32 = 4100;
const SECONDS: u32 = 3;

/// One held session: its socket (held open, never read) and its backend's pid (from
/// BackendKeyData).
struct Session {
    _stream: UnixStream,
    pid: i32,
}

fn startup_packet() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes());
    for s in [
        "user",
        "postgres",
        "database",
        "postgres",
        "application_name",
        "sessions",
    ] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    p.extend_from_slice(&body);
    p
}

/// Reads one message: its type and body.
fn read_msg(s: &mut UnixStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 5];
    s.read_exact(&mut h)?;
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    if !(4..=1 << 24).contains(&len) {
        return Err(std::io::Error::other(format!("bad message length {len}")));
    }
    let mut b = vec![0u8; len - 4];
    s.read_exact(&mut b)?;
    Ok((h[0], b))
}

fn error_text(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .filter(|f| f.first() == Some(&b'M'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
        .next()
        .unwrap_or_else(|| "error".into())
}

/// Reads the answer to a startup packet up to ReadyForQuery; the backend's pid.
fn finish_startup(s: &mut UnixStream) -> Result<i32, String> {
    let mut pid = 0;
    loop {
        let (t, b) = read_msg(s).map_err(|e| format!("startup: {e}"))?;
        match t {
            b'R' if b.get(..4) == Some(&[0, 0, 0, 0]) => {}
            b'R' => return Err("authentication other than trust asked".into()),
            b'K' if b.len() >= 4 => pid = i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            b'E' => return Err(error_text(&b)),
            b'Z' => return Ok(pid),
            _ => {}
        }
    }
}

/// A server the bench talks to.
struct Target {
    name: &'static str,
    sock: PathBuf,
    port: u16,
    child: Option<Child>,
    pidfile: PathBuf,
}

impl Target {
    fn socket_path(&self) -> PathBuf {
        self.sock.join(format!(".s.PGSQL.{}", self.port))
    }

    fn connect(&self) -> Result<Session, String> {
        let mut s = UnixStream::connect(self.socket_path()).map_err(|e| e.to_string())?;
        s.write_all(&startup_packet()).map_err(|e| e.to_string())?;
        let pid = finish_startup(&mut s)?;
        Ok(Session { _stream: s, pid })
    }

    fn postmaster_pid(&self) -> i32 {
        std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            .unwrap_or(0)
    }

    fn psql_ok(&self, sql: &str) -> Option<String> {
        pgipc_tests::bench::psql_ok(pgipc_tests::bench::psql(&self.sock, self.port), sql)
    }

    /// The CPU time of the postmaster's reaped children (`cutime + cstime` of
    /// `/proc/PID/stat`), in microseconds: a backend's whole CPU lands there when it exits.
    fn reaped_cpu_us(&self) -> f64 {
        let pid = self.postmaster_pid();
        let t = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let f: Vec<&str> = t
            .rsplit_once(") ")
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        let tick = |i: usize| {
            f.get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        // Fields 16 and 17 of stat; 3 (the state) is index 0 after the command name.
        (tick(13) + tick(14)) * 1e6 / hz
    }

    /// pgbench, one client, prepared, [`SECONDS`] seconds: the tps and the server CPU its session cost per transaction, in
    /// microseconds: the CPU of pgbench's backend, read from the postmaster's reaped-children
    /// time once it has exited (so the figure does not move with the other work on the
    /// machine as the tps does; held idle sessions add to it only if they cost each
    /// transaction something). Resolution: one clock tick over the whole run.
    fn pgbench_cpu(&self, script: &Path) -> (f64, f64) {
        let before = self.reaped_cpu_us();
        let (tps, n) = self.pgbench_counted(&["-c", "1", "-M", "prepared"], script);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut after = self.reaped_cpu_us();
        while after == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            after = self.reaped_cpu_us();
        }
        (tps, (after - before) / n)
    }

    /// pgbench with `args`, [`SECONDS`] seconds: the tps.
    fn pgbench_with(&self, args: &[&str], script: &Path) -> f64 {
        self.pgbench_counted(args, script).0
    }

    /// pgbench with `args`, [`SECONDS`] seconds: the tps and the transactions it ran.
    fn pgbench_counted(&self, args: &[&str], script: &Path) -> (f64, f64) {
        let o = Command::new("pgbench")
            .arg("-n")
            .args(args)
            .args(["-T", &SECONDS.to_string(), "-f"])
            .arg(script)
            .arg("-h")
            .arg(&self.sock)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "postgres"])
            .output()
            .expect("pgbench");
        let out = String::from_utf8_lossy(&o.stdout);
        let field = |prefix: &str, i: usize| -> Option<f64> {
            out.lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.split_whitespace().nth(i))
                .and_then(|v| v.parse().ok())
        };
        match (
            field("tps = ", 2),
            field("number of transactions actually processed:", 5),
        ) {
            (Some(tps), Some(n)) => (tps, n),
            _ => {
                println!(
                    "{}: pgbench {args:?} failed: {out}\n{}",
                    self.name,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                (f64::NAN, f64::NAN)
            }
        }
    }

    /// Waits until every backend of closed sessions is gone (the server's backend count, as
    /// pg_stat_activity shows it, back to at most `n` client backends besides psql's).
    fn settle(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let c: usize = self
                .psql_ok(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
                )
                .and_then(|s| s.parse().ok())
                .unwrap_or(usize::MAX);
            if c <= n + 1 || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let pid = self.postmaster_pid();
        if pid > 0 {
            // SAFETY: fast shutdown of a postmaster this bench started.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        if let Some(c) = self.child.as_mut() {
            let _ = c.wait();
        }
    }
}

fn start_ours(base: &Path) -> Target {
    let sock = base.join("ours-sock");
    std::fs::create_dir_all(&sock).expect("dir");
    let port = free_port();
    let dir = base.join("ours-data");
    let child = postmaster()
        .arg("-D")
        .arg(&dir)
        .arg("-k")
        .arg(&sock)
        .args(["-p", &port.to_string(), "-c", "listen_addresses="])
        .args(["-c", &format!("max_connections={OUR_MAX}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(base.join("ours.log")).expect("log"))
        .spawn()
        .expect("postmaster");
    let t = Target {
        name: "pgipc",
        sock,
        port,
        child: Some(child),
        pidfile: dir.join("postmaster.pid"),
    };
    wait_up(&t);
    t
}

fn as_pg(cmd: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"])
        .arg(Path::new(PG_BIN).join(cmd));
    c
}

fn pg_initdb(base: &Path) -> Option<PathBuf> {
    if !Path::new(PG_BIN).join("postgres").exists() {
        return None;
    }
    let dir = base.join("pg-data");
    let _ = Command::new("chmod").arg("777").arg(base).status();
    let ok = as_pg("initdb")
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then_some(dir)
}

fn start_postgres(base: &Path, dir: &Path) -> Option<Target> {
    let sock = base.join("pg-sock");
    std::fs::create_dir_all(&sock).ok()?;
    let _ = Command::new("chmod").arg("777").arg(&sock).status();
    let port = free_port();
    let child = as_pg("postgres")
        .arg("-D")
        .arg(dir)
        .arg("-k")
        .arg(&sock)
        .args(["-p", &port.to_string(), "-c", "listen_addresses="])
        .args(["-c", &format!("max_connections={PG_MAX}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(base.join("pg.log")).ok()?)
        .spawn()
        .ok()?;
    let t = Target {
        name: "postgres15",
        sock,
        port,
        child: Some(child),
        pidfile: dir.join("postmaster.pid"),
    };
    wait_up(&t);
    Some(t)
}

fn wait_up(t: &Target) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while t.psql_ok("SELECT 1").is_none() {
        assert!(Instant::now() < deadline, "{} did not start", t.name);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Raises the soft descriptor limit to the hard one; the new soft limit.
fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
    }
    r.rlim_cur
}

fn bench(name: &str, value: f64, decimals: usize, unit: &str, ratio: f64, base: &str) {
    println!(
        "{}",
        line(
            &format!("sessions/{name}"),
            value,
            decimals,
            unit,
            ratio,
            base
        )
    );
}

/// Nanoseconds `pid` has run on a CPU (`/proc/PID/schedstat`): CPU time, unaffected by how
/// long it waited for one on a machine shared with other work.
fn cpu_ns(pid: i32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The pids of the kernel's DAMON threads (`kdamond.N`), if the machine runs any.
///
/// DAMON in physical-address mode samples pages and, for each, walks every mapping of it
/// (`rmap`): a page of the shared segment, of the binary or of the postmaster's heap is
/// mapped by every held session, so its CPU grows with their number (on the machine of
/// issue 17: 10 ms/s with 500 sessions, 309 ms/s with 9500) and is taken from the two cores
/// the sessions are opened on.
fn kdamond_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("kdamond"))
        })
        .collect()
}

/// Per tenth of a sequential run: wall ms per connection, the postmaster's CPU µs per
/// connection, the median CPU µs a backend of that tenth has used (its start-up, as it
/// has been idle since), and the CPU µs per connection of the kernel's DAMON threads.
struct Tenths {
    wall_ms: Vec<f64>,
    postmaster_us: Vec<f64>,
    backend_us: Vec<f64>,
    kdamond_us: Vec<f64>,
}

/// Opens `n` sessions one by one; holds them in `held`.
fn sequential(t: &Target, n: usize, held: &mut Vec<Session>) -> Result<Tenths, String> {
    let batch = n / 10;
    let pm = t.postmaster_pid();
    let mut out = Tenths {
        wall_ms: Vec::new(),
        postmaster_us: Vec::new(),
        backend_us: Vec::new(),
        kdamond_us: Vec::new(),
    };
    let kdamonds = kdamond_pids();
    let kdamond_ns = || kdamonds.iter().filter_map(|p| cpu_ns(*p)).sum::<f64>();
    for b in 0..10 {
        let pm_before = cpu_ns(pm).unwrap_or(f64::NAN);
        let kd_before = kdamond_ns();
        let start = Instant::now();
        for i in 0..batch {
            let s = t
                .connect()
                .map_err(|e| format!("{}: session {}: {e}", t.name, b * batch + i + 1))?;
            held.push(s);
        }
        out.wall_ms
            .push(start.elapsed().as_secs_f64() * 1000.0 / batch as f64);
        let pm_after = cpu_ns(pm).unwrap_or(f64::NAN);
        out.postmaster_us
            .push((pm_after - pm_before) / 1000.0 / batch as f64);
        out.kdamond_us
            .push((kdamond_ns() - kd_before) / 1000.0 / batch as f64);
    }
    for chunk in held.chunks(batch).take(10) {
        let v: Vec<f64> = chunk.iter().filter_map(|s| cpu_ns(s.pid)).collect();
        out.backend_us.push(median(&v) / 1000.0);
    }
    Ok(out)
}

/// Runs [`sequential`], prints its tenths; (mean wall ms, last/first wall, mean postmaster
/// CPU µs, last/first postmaster CPU).
fn run_sequential(t: &Target, n: usize) -> Option<(f64, f64, f64, f64)> {
    let mut held = Vec::with_capacity(n);
    let start = Instant::now();
    let r = sequential(t, n, &mut held);
    let total = start.elapsed().as_secs_f64();
    // Every session closes at once: the postmaster reaps them all.
    let closing = Instant::now();
    drop(held);
    t.settle(0);
    let closed = closing.elapsed().as_secs_f64();
    let fmt = |v: &[f64], d: usize| -> String {
        v.iter()
            .map(|x| format!("{x:.d$}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match r {
        Ok(r) => {
            println!(
                "sequential {} n={n}: {total:.2} s (all closed and reaped in {closed:.2} s)\n  wall ms per connection by tenth:     {}\n  postmaster CPU us per connection:    {}\n  backend CPU us (median, start-up):   {}{}",
                t.name,
                fmt(&r.wall_ms, 2),
                fmt(&r.postmaster_us, 0),
                fmt(&r.backend_us, 0),
                if r.kdamond_us.iter().all(|x| *x == 0.0) {
                    String::new()
                } else {
                    format!(
                        "\n  kernel kdamond CPU us per connection: {}",
                        fmt(&r.kdamond_us, 0)
                    )
                },
            );
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            Some((
                mean(&r.wall_ms),
                r.wall_ms[9] / r.wall_ms[0],
                mean(&r.postmaster_us),
                r.postmaster_us[9] / r.postmaster_us[0],
            ))
        }
        Err(e) => {
            println!("sequential {} n={n}: FAILED: {e}", t.name);
            None
        }
    }
}

/// `n` connection attempts outstanding at once; (served, seconds).
fn storm(t: &Target, n: usize) -> (usize, f64) {
    const THREADS: usize = 16;
    let path = t.socket_path();
    let packet = startup_packet();
    let start = Instant::now();
    let served: usize = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..THREADS)
            .map(|k| {
                let (path, packet) = (&path, &packet);
                sc.spawn(move || {
                    let mine = n / THREADS + usize::from(k < n % THREADS);
                    let mut socks = Vec::with_capacity(mine);
                    for _ in 0..mine {
                        if let Ok(mut s) = UnixStream::connect(path) {
                            if s.write_all(packet).is_ok() {
                                socks.push(s);
                            }
                        }
                    }
                    let mut ok = Vec::new();
                    for mut s in socks {
                        if finish_startup(&mut s).is_ok() {
                            ok.push(s);
                        }
                    }
                    // Held until every thread is done: they count as live sessions.
                    ok
                })
            })
            .collect();
        let results: Vec<Vec<UnixStream>> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        results.iter().map(Vec::len).sum()
    });
    let secs = start.elapsed().as_secs_f64();
    t.settle(0);
    (served, secs)
}

/// Pss in kB of `pid`.
fn pss_kb(pid: i32) -> Option<f64> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    t.lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// (postmaster Pss, median Pss of 20 idle backends), in MiB, with `held` open.
fn memory(t: &Target, held: &[Session]) -> (f64, f64) {
    let pm = pss_kb(t.postmaster_pid()).unwrap_or(f64::NAN) / 1024.0;
    let step = (held.len() / 20).max(1);
    let backends: Vec<f64> = held
        .iter()
        .step_by(step)
        .filter_map(|s| pss_kb(s.pid))
        .map(|k| k / 1024.0)
        .collect();
    (pm, median(&backends))
}

fn shared_memory_size(cmd: &mut Command) -> String {
    cmd.args(["-c", "max_connections=10000", "-C", "shared_memory_size"])
        .stderr(Stdio::piped())
        .output()
        .map(|o| {
            if o.status.success() {
                String::from_utf8_lossy(&o.stdout).trim().to_owned()
            } else {
                format!("failed: {}", String::from_utf8_lossy(&o.stderr).trim())
            }
        })
        .unwrap_or_else(|e| format!("failed: {e}"))
}

/// Opens sessions until `held` has `n`.
fn hold(t: &Target, held: &mut Vec<Session>, n: usize) -> Result<(), String> {
    while held.len() < n {
        held.push(
            t.connect()
                .map_err(|e| format!("{}: session {}: {e}", t.name, held.len() + 1))?,
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    // Re-executed as the server under test (see pgipc_tests::serve_if_asked).
    if let Some(code) = pgipc_tests::serve_if_asked(&pgipc_tests::Programs {
        postmaster: |args| pgipc_postmaster::entry::postmaster_main(args),
        ctl: |args, postmaster| pgipc_postmaster::entry::ctl_main(args, postmaster),
    }) {
        return code;
    }
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    let nofile = raise_nofile();
    let parts =
        std::env::var("SESSIONS_PARTS").unwrap_or_else(|_| "seq,storm,connect,idle,memory".into());
    let want = |p: &str| parts.split(',').any(|x| x == p);
    let rounds: usize = std::env::var("SESSIONS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let base = std::env::temp_dir().join(format!("pgipc-bench-sessions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("scratch");
    let script_of = |name: &str, sql: &str| -> PathBuf {
        let p = base.join(name);
        std::fs::write(&p, sql).expect("script");
        let _ = Command::new("chmod").arg("644").arg(&p).status();
        p
    };
    let scripts = [
        ("select1", script_of("select1.sql", "SELECT 1;\n")),
        (
            "current_snapshot",
            script_of("snapshot.sql", "SELECT pg_current_snapshot();\n"),
        ),
        (
            "current_xact_id",
            script_of("xact_id.sql", "SELECT pg_current_xact_id();\n"),
        ),
    ];
    println!(
        "sessions bench: descriptor limit {nofile}; ours max_connections={OUR_MAX}, PostgreSQL 15 max_connections={PG_MAX}"
    );

    // shared_memory_size at max_connections = 10000, both servers.
    let ours_size = {
        let dir = base.join("size-data");
        let mut c = postmaster();
        c.arg("-D").arg(&dir);
        // Our -C needs a data directory: the server creates one on its first start.
        shared_memory_size(&mut c)
    };
    let pg_dir = pg_initdb(&base);
    let pg_size = match &pg_dir {
        Some(d) => shared_memory_size(as_pg("postgres").arg("-D").arg(d)),
        None => "PostgreSQL 15 not found".into(),
    };
    println!(
        "shared_memory_size at max_connections=10000: pgipc {ours_size}, postgres15 {pg_size}"
    );

    let ours = start_ours(&base);
    let pg = pg_dir.as_deref().and_then(|d| start_postgres(&base, d));
    if pg.is_none() {
        println!(
            "PostgreSQL 15 did not start (see {}): ours alone",
            base.join("pg.log").display()
        );
    }

    if want("seq") {
        let sizes: Vec<usize> = std::env::var("SESSIONS_SEQ")
            .ok()
            .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_else(|| vec![1000, 4000, 10_000]);
        for n in sizes {
            let a = run_sequential(&ours, n);
            let b = if n <= 4000 {
                pg.as_ref().and_then(|p| run_sequential(p, n))
            } else {
                None
            };
            if let Some((ms, growth, pm_us, pm_growth)) = a {
                let ratio = b.map_or(f64::NAN, |(pms, ..)| pms / ms);
                bench(
                    &format!("sequential_{n}_ms_per_conn"),
                    ms,
                    3,
                    "ms",
                    ratio,
                    "postgres15 speed-up",
                );
                bench(
                    &format!("sequential_{n}_last_over_first"),
                    growth,
                    2,
                    "x",
                    1.0,
                    "goal<=1.2",
                );
                let ratio = b.map_or(f64::NAN, |(_, _, p, _)| p / pm_us);
                bench(
                    &format!("sequential_{n}_postmaster_cpu_us_per_conn"),
                    pm_us,
                    0,
                    "us",
                    ratio,
                    "postgres15 speed-up",
                );
                bench(
                    &format!("sequential_{n}_postmaster_cpu_last_over_first"),
                    pm_growth,
                    2,
                    "x",
                    1.0,
                    "ours",
                );
            }
            if let Some((pms, growth, pm_us, pm_growth)) = b {
                bench(
                    &format!("postgres15_sequential_{n}_ms_per_conn"),
                    pms,
                    3,
                    "ms",
                    1.0,
                    "postgres15",
                );
                bench(
                    &format!("postgres15_sequential_{n}_last_over_first"),
                    growth,
                    2,
                    "x",
                    1.0,
                    "postgres15",
                );
                bench(
                    &format!("postgres15_sequential_{n}_postmaster_cpu_us_per_conn"),
                    pm_us,
                    0,
                    "us",
                    1.0,
                    "postgres15",
                );
                bench(
                    &format!("postgres15_sequential_{n}_postmaster_cpu_last_over_first"),
                    pm_growth,
                    2,
                    "x",
                    1.0,
                    "postgres15",
                );
            }
        }
    }

    if want("storm") {
        for n in [1024usize, 4096] {
            let (served, secs) = storm(&ours, n);
            let p = pg.as_ref().map(|p| storm(p, n));
            println!(
                "storm n={n}: pgipc served {served}/{n} in {secs:.3} s; postgres15 {}",
                p.map_or("-".into(), |(s, t)| format!("served {s}/{n} in {t:.3} s"))
            );
            bench(
                &format!("storm_{n}_s"),
                secs,
                3,
                "s",
                p.map_or(f64::NAN, |(_, t)| t / secs),
                "postgres15 speed-up",
            );
        }
    }

    if want("connect") {
        for (clients, args) in [
            (1, vec!["-C", "-c", "1", "-M", "simple"]),
            (4, vec!["-C", "-c", "4", "-j", "2", "-M", "simple"]),
        ] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                a.push(ours.pgbench_with(&args, &scripts[0].1));
                if let Some(p) = &pg {
                    b.push(p.pgbench_with(&args, &scripts[0].1));
                }
            }
            let (ma, mb) = (median(&a), median(&b));
            bench(
                &format!("postgres15_connections_per_s_{clients}_clients"),
                mb,
                0,
                "conn/s",
                1.0,
                "postgres15",
            );
            bench(
                &format!("connections_per_s_{clients}_clients"),
                ma,
                0,
                "conn/s",
                ma / mb,
                "postgres15",
            );
        }
    }

    let mut held: Vec<Session> = Vec::new();
    if want("idle") {
        let mut pg_held: Vec<Session> = Vec::new();
        let mut base_rate = [f64::NAN; 3];
        let mut base_cpu = [f64::NAN; 3];
        for idle in [0usize, 100, 1000, 10_000] {
            if let Err(e) = hold(&ours, &mut held, idle) {
                println!("idle {idle}: {e}");
                break;
            }
            let pg_here = pg.as_ref().filter(|_| idle <= 1000);
            if let Some(p) = pg_here {
                if let Err(e) = hold(p, &mut pg_held, idle) {
                    println!("idle {idle}: {e}");
                }
            }
            let mut ours_rate = [0.0; 3];
            for (k, (name, script)) in scripts.iter().enumerate() {
                let (mut a, mut b, mut ca, mut cb) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for _ in 0..rounds {
                    let (tps, cpu) = ours.pgbench_cpu(script);
                    a.push(tps);
                    ca.push(cpu);
                    if let Some(p) = pg_here {
                        let (tps, cpu) = p.pgbench_cpu(script);
                        b.push(tps);
                        cb.push(cpu);
                    }
                }
                let (ma, mb) = (median(&a), median(&b));
                let (mca, mcb) = (median(&ca), median(&cb));
                ours_rate[k] = ma;
                if idle == 0 {
                    base_rate[k] = ma;
                    base_cpu[k] = mca;
                }
                bench(
                    &format!("{name}_tps_{idle}_idle"),
                    ma,
                    0,
                    "tps",
                    ma / base_rate[k],
                    &format!("ours_{name}_0_idle"),
                );
                bench(
                    &format!("{name}_cpu_us_per_tx_{idle}_idle"),
                    mca,
                    1,
                    "us",
                    mca / base_cpu[k],
                    &format!("ours_{name}_0_idle"),
                );
                if pg_here.is_some() {
                    bench(
                        &format!("postgres15_{name}_tps_{idle}_idle"),
                        mb,
                        0,
                        "tps",
                        ma / mb,
                        "ours/postgres15",
                    );
                    bench(
                        &format!("postgres15_{name}_cpu_us_per_tx_{idle}_idle"),
                        mcb,
                        1,
                        "us",
                        mca / mcb,
                        "ours/postgres15",
                    );
                }
            }
            bench(
                &format!("current_xact_id_over_select1_{idle}_idle"),
                ours_rate[2] / ours_rate[0],
                2,
                "x",
                1.0,
                "goal>=0.8",
            );
        }
        if let Some(p) = pg
            .as_ref()
            .filter(|_| want("memory") && pg_held.len() >= 1000)
        {
            let (pm, be) = memory(p, &pg_held);
            bench(
                &format!("postgres15_postmaster_pss_{}", pg_held.len()),
                pm,
                2,
                "MiB",
                1.0,
                "postgres15",
            );
            bench(
                &format!("postgres15_backend_pss_{}", pg_held.len()),
                be,
                2,
                "MiB",
                1.0,
                "postgres15",
            );
        }
        drop(pg_held);
    }
    if want("memory") {
        if let Some(p) = pg.as_ref().filter(|_| !want("idle")) {
            let mut pg_held = Vec::new();
            if hold(p, &mut pg_held, 1000).is_ok() {
                let (pm, be) = memory(p, &pg_held);
                bench(
                    "postgres15_postmaster_pss_1000",
                    pm,
                    2,
                    "MiB",
                    1.0,
                    "postgres15",
                );
                bench(
                    "postgres15_backend_pss_1000",
                    be,
                    2,
                    "MiB",
                    1.0,
                    "postgres15",
                );
            }
        }
        match hold(&ours, &mut held, HELD) {
            Ok(()) => {
                let (pm, be) = memory(&ours, &held);
                bench(
                    &format!("postmaster_pss_{}", held.len()),
                    pm,
                    2,
                    "MiB",
                    1.0,
                    "ours",
                );
                bench(
                    &format!("backend_pss_{}", held.len()),
                    be,
                    2,
                    "MiB",
                    1.0,
                    "ours",
                );
                // SESSIONS_HOLD_SECS: keep them open for a profiler (the socket path printed).
                if let Some(secs) = std::env::var("SESSIONS_HOLD_SECS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                {
                    println!(
                        "holding {} sessions on {} for {secs} s",
                        held.len(),
                        ours.socket_path().display()
                    );
                    std::thread::sleep(Duration::from_secs(secs));
                }
            }
            Err(e) => println!("memory: {e}"),
        }
    }
    drop(held);
    drop(ours);
    drop(pg);
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::fs::remove_dir_all(&base);
    ExitCode::SUCCESS
}
