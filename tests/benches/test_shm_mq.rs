//! test_shm_mq side by side with PostgreSQL 15's own module, in the same run: the fixed cost
//! of one round trip through 1 and 3 dynamic workers, and the throughput of
//! `test_shm_mq_pipelined` (verify off) for 100 B, 1 KiB and 64 KiB messages through a 64 KiB
//! queue with 1 and 3 workers, and 1 KiB messages through a 16 KiB queue.
//!
//! Every call is timed from the client on a new connection (connect first, then time the
//! `SELECT` alone), in interleaved rounds (ours, theirs, theirs, ours, ...; see
//! [`pgipc_tests::bench::interleave`]); the value is the median over the rounds and the ratio
//! the median of the per-round ratios. Fixed cost is in milliseconds per call (ratio < 1 is
//! faster than PostgreSQL); throughput is in MB/s per hop (every hop of the ring carries all
//! `repeat_count * len` bytes) and messages/s (ratio > 1 is faster). Lines:
//! `BENCH test_shm_mq/<name> <value> <unit> <ratio>x postgres15/<name>`.
//!
//! PostgreSQL's module is not packaged: `ci/test_shm_mq_pg15.sh` builds it from Debian's source
//! package with PGXS in a scratch directory and installs it. Without it (or without PostgreSQL
//! 15) the bench says so and exits successfully.
//!
//! Run: `cargo bench -p pgipc-tests --bench test_shm_mq` (as root, for `runuser -u postgres`).

use pgipc_tests::bench::{interleave, report_vs_postgres15};
use pgipc_tests::{free_port, postmaster};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PG_LIB: &str = "/usr/lib/postgresql/15/lib/test_shm_mq.so";
const ROUNDS: usize = 5;

/// One of the two servers: where to connect and how to stop it.
struct Target {
    name: &'static str,
    sock: PathBuf,
    port: u16,
    child: Child,
    /// The postmaster's pid (for PostgreSQL, read from its pid file: runuser passes no signal).
    pid: Box<dyn Fn() -> i32>,
}

impl Target {
    fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host_path(&self.sock)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(5))
            .connect(postgres::NoTls)
    }

    /// Seconds for `sql` on a fresh connection (the connection is made before the clock runs).
    fn time(&self, sql: &str) -> f64 {
        let mut c = self
            .connect()
            .unwrap_or_else(|e| panic!("{}: connect: {e}", self.name));
        let t = Instant::now();
        if let Err(e) = c.simple_query(sql) {
            panic!("{}: {sql}: {e:?}", self.name);
        }
        t.elapsed().as_secs_f64()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let pid = (self.pid)();
        if pid > 0 {
            // SAFETY: fast shutdown of a postmaster this bench started.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let _ = self.child.wait();
    }
}

fn wait_up(t: &Target) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.connect().is_err() {
        assert!(Instant::now() < deadline, "{} did not start", t.name);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_ours(base: &Path) -> Target {
    let sock = base.join("ours-sock");
    std::fs::create_dir_all(&sock).expect("dir");
    let port = free_port();
    let child = postmaster()
        .arg("-D")
        .arg(base.join("ours-data"))
        .arg("-k")
        .arg(&sock)
        .args(["-p", &port.to_string(), "-c", "listen_addresses="])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(base.join("ours.log")).expect("log"))
        .spawn()
        .expect("postmaster");
    let pid = child.id() as i32;
    let t = Target {
        name: "pgipc",
        sock,
        port,
        child,
        pid: Box::new(move || pid),
    };
    wait_up(&t);
    t
}

fn start_postgres(base: &Path) -> Result<Target, String> {
    let (dir, sock) = (base.join("pg-data"), base.join("pg-sock"));
    std::fs::create_dir_all(&sock).map_err(|e| e.to_string())?;
    for p in [base, &sock] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .map_err(|e| e.to_string())?;
    }
    let as_pg = |cmd: &str| {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join(cmd));
        c
    };
    let init = as_pg("initdb")
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("initdb: {e}"))?;
    if !init.success() {
        return Err("initdb failed".into());
    }
    let port = free_port();
    let child = as_pg("postgres")
        .arg("-D")
        .arg(&dir)
        .arg("-k")
        .arg(&sock)
        .args(["-p", &port.to_string(), "-c", "listen_addresses="])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(base.join("pg.log")).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("postgres: {e}"))?;
    let pidfile = dir.join("postmaster.pid");
    let t = Target {
        name: "postgres15",
        sock,
        port,
        child,
        pid: Box::new(move || {
            std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
                .unwrap_or(0)
        }),
    };
    wait_up(&t);
    Ok(t)
}

/// One figure: a statement, and how many messages of how many bytes it moves (0 messages:
/// report milliseconds per call instead of throughput).
struct Figure {
    name: String,
    sql: String,
    messages: u64,
    len: u64,
}

fn figures() -> Vec<Figure> {
    let mut v = Vec::new();
    for w in [1, 3] {
        v.push(Figure {
            name: format!("fixed_cost_{w}w"),
            sql: format!("SELECT test_shm_mq(65536, repeat('x', 100), 1, {w})"),
            messages: 0,
            len: 100,
        });
    }
    // Repeat counts sized for a call of roughly a tenth of a second to a second.
    for (len, label, repeat) in [
        (100u64, "100B", 200_000u64),
        (1024, "1KiB", 100_000),
        (65536, "64KiB", 4_000),
    ] {
        for w in [1, 3] {
            v.push(Figure {
                name: format!("pipelined_q64KiB_{label}_{w}w"),
                sql: format!(
                    "SELECT test_shm_mq_pipelined(65536, repeat('x', {len}), {repeat}, {w}, false)"
                ),
                messages: repeat,
                len,
            });
        }
    }
    for w in [1, 3] {
        v.push(Figure {
            name: format!("pipelined_q16KiB_1KiB_{w}w"),
            sql: format!(
                "SELECT test_shm_mq_pipelined(16384, repeat('x', 1024), 100000, {w}, false)"
            ),
            messages: 100_000,
            len: 1024,
        });
    }
    v
}

fn print_pair(name: &str, unit: &str, decimals: usize, ours: &[f64], pg: &[f64]) {
    report_vs_postgres15("test_shm_mq", name, unit, decimals, ours, pg);
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
    if !Path::new(PG_BIN).join("postgres").exists() || !Path::new(PG_LIB).exists() {
        println!(
            "test_shm_mq: skipped, needs PostgreSQL 15 and {PG_LIB} (run ci/test_shm_mq_pg15.sh)"
        );
        return ExitCode::SUCCESS;
    }
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let base = std::env::temp_dir().join(format!("pgipc-bench-shmmq-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("scratch");
    let ours = start_ours(&base);
    let pg = match start_postgres(&base) {
        Ok(pg) => pg,
        Err(e) => {
            println!("test_shm_mq: skipped, PostgreSQL 15 did not start: {e}");
            return ExitCode::SUCCESS;
        }
    };
    pg.connect()
        .and_then(|mut c| c.batch_execute("CREATE EXTENSION test_shm_mq"))
        .expect("CREATE EXTENSION test_shm_mq on PostgreSQL 15");
    println!(
        "pgipc (release build) vs PostgreSQL 15 test_shm_mq, Unix sockets, a new connection per \
         call, {ROUNDS} interleaved rounds per figure"
    );
    for f in figures() {
        if !only.is_empty() && !only.iter().any(|o| f.name.contains(o.as_str())) {
            continue;
        }
        // One untimed call each first: both servers' caches and the page cache warm.
        ours.time(&f.sql);
        pg.time(&f.sql);
        let (theirs, mine) = interleave(ROUNDS, |cand| {
            if cand {
                ours.time(&f.sql)
            } else {
                pg.time(&f.sql)
            }
        });
        if f.messages == 0 {
            let ms = |v: &[f64]| v.iter().map(|s| s * 1000.0).collect::<Vec<_>>();
            print_pair(&f.name, "ms", 2, &ms(&mine), &ms(&theirs));
        } else {
            let mbs = |v: &[f64]| {
                v.iter()
                    .map(|s| (f.messages * f.len) as f64 / s / 1e6)
                    .collect::<Vec<_>>()
            };
            let rate = |v: &[f64]| v.iter().map(|s| f.messages as f64 / s).collect::<Vec<_>>();
            print_pair(
                &format!("{}_MBps_per_hop", f.name),
                "MB/s",
                1,
                &mbs(&mine),
                &mbs(&theirs),
            );
            print_pair(
                &format!("{}_msgs_per_s", f.name),
                "msg/s",
                0,
                &rate(&mine),
                &rate(&theirs),
            );
        }
    }
    drop(ours);
    drop(pg);
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::fs::remove_dir_all(&base);
    ExitCode::SUCCESS
}
