//! Whole-server benchmark against PostgreSQL 15 from the machine's packages, measured in the
//! same run: new connections per second (`pgbench -C`), `SELECT 1` transactions per second
//! through the SQL parser with 1 and 4 clients, prepared (`-M prepared`) and simple,
//! `SELECT now()` and `SELECT count(*) FROM pg_settings` (skipped while the server has no
//! `pg_settings`), and the time from SIGKILL of a backend to accepting connections again.
//! Two more connection figures log in as a role with a password: `scram_connections_per_s`
//! (pg_hba.conf `scram-sha-256` on the Unix socket, the verifier at the default 4096
//! iterations, pgbench with `PGPASSWORD`) and `tls_connections_per_s` (`hostssl ... trust` on
//! 127.0.0.1, pgbench with `PGSSLMODE=require`, one self-signed certificate for both).
//!
//! Both servers run side by side (ours as the current user, PostgreSQL as `postgres`, each on
//! its own port and socket directory, PostgreSQL with its default settings plus trust
//! authentication, both with `ssl = on` and listening on 127.0.0.1). Every figure is measured in interleaved rounds (ours, theirs, ours, ...),
//! and the printed ratio is the median of the per-round ratios. Lines:
//! `BENCH server/<name> <value> <unit> <ratio>x postgres15/<name>`.
//!
//! Run: `cargo bench -p pgipc-tests --bench server` (`-- NAME` runs only the figures whose
//! name contains NAME, e.g. `-- tls`). Needs pgbench, psql and
//! /usr/lib/postgresql/15/bin; skips (and says so) when PostgreSQL is missing.

use pgipc_tests::bench::report_vs_postgres15;
use pgipc_tests::{free_port, postmaster};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const ROUNDS: usize = 5;
const SECONDS: u32 = 3;

struct Target {
    name: &'static str,
    sock: PathBuf,
    port: u16,
    child: Option<Child>,
    stop: Box<dyn Fn()>,
}

/// Who pgbench logs in as, and how.
#[derive(Clone, Copy)]
enum Login {
    /// `postgres` on the Unix socket (trust).
    Superuser,
    /// `bench` on the Unix socket with [`BENCH_PASSWORD`] (scram-sha-256).
    Scram,
    /// `bench` on 127.0.0.1 over TLS (`hostssl` trust).
    Tls,
}

const BENCH_PASSWORD: &str = "bench-pw";
const BENCH_HBA: &str = "local all postgres trust\nlocal all bench scram-sha-256\nhostssl all bench 127.0.0.1/32 trust\nhost all postgres 127.0.0.1/32 trust\n";

impl Target {
    fn pgbench(&self, args: &[&str], script: &Path) -> f64 {
        self.pgbench_as(Login::Superuser, args, script)
    }

    fn pgbench_as(&self, login: Login, args: &[&str], script: &Path) -> f64 {
        let mut c = Command::new("pgbench");
        c.args(["-n", "-T", &SECONDS.to_string(), "-f"])
            .arg(script)
            .arg("-h");
        match login {
            Login::Tls => c.arg("127.0.0.1").env("PGSSLMODE", "require"),
            _ => c.arg(&self.sock).env("PGSSLMODE", "disable"),
        };
        let user = match login {
            Login::Superuser => "postgres",
            Login::Scram | Login::Tls => "bench",
        };
        if matches!(login, Login::Scram) {
            c.env("PGPASSWORD", BENCH_PASSWORD);
        } else {
            c.env_remove("PGPASSWORD");
        }
        let o = c
            .args(["-p", &self.port.to_string(), "-U", user, "postgres"])
            .args(args)
            .output()
            .expect("pgbench");
        let out = String::from_utf8_lossy(&o.stdout);
        out.lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{}: pgbench {args:?} failed: {out}\n{}",
                    self.name,
                    String::from_utf8_lossy(&o.stderr)
                )
            })
    }

    /// The role `bench` with a SCRAM password, [`BENCH_HBA`] in force (written to
    /// `hba_path`, then a reload), checked by a login of each kind.
    fn set_up_logins(&self, hba_path: &Path) {
        let create = format!("CREATE ROLE bench LOGIN PASSWORD '{BENCH_PASSWORD}'");
        assert!(
            self.psql_ok(&create).is_some(),
            "{}: {create} failed",
            self.name
        );
        std::fs::write(hba_path, BENCH_HBA).expect("pg_hba.conf");
        let _ = Command::new("chmod").arg("644").arg(hba_path).status();
        assert!(self.psql_ok("SELECT pg_reload_conf()").is_some());
        let deadline = Instant::now() + Duration::from_secs(30);
        for login in [Login::Scram, Login::Tls] {
            loop {
                let mut c = self.psql_login(login);
                let ok = c
                    .args(["-c", "SELECT 1"])
                    .stderr(Stdio::null())
                    .output()
                    .is_ok_and(|o| o.status.success());
                if ok {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{}: the bench role cannot log in",
                    self.name
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// psql logging in as `login` says.
    fn psql_login(&self, login: Login) -> Command {
        let mut c = Command::new("psql");
        c.args(["-X", "-At", "-w", "-h"]);
        match login {
            Login::Tls => c.arg("127.0.0.1").env("PGSSLMODE", "require"),
            _ => c.arg(&self.sock).env("PGSSLMODE", "disable"),
        };
        c.args([
            "-p",
            &self.port.to_string(),
            "-U",
            "bench",
            "-d",
            "postgres",
        ])
        .env("PGPASSWORD", BENCH_PASSWORD)
        .env("PGCONNECT_TIMEOUT", "2");
        c
    }

    /// psql connected to this server, unaligned tuples only.
    fn psql(&self) -> Command {
        pgipc_tests::bench::psql(&self.sock, self.port)
    }

    fn psql_ok(&self, sql: &str) -> Option<String> {
        pgipc_tests::bench::psql_ok(self.psql(), sql)
    }

    fn sleeper(&self) -> Child {
        self.psql()
            .args(["-c", "SELECT pg_backend_pid()", "-c", "SELECT pg_sleep(60)"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql")
    }

    /// SIGKILL of a backend until `SELECT 1` works again, in milliseconds. A second, idle
    /// session shows when the restart really began: the crash handling ends it.
    fn crash_restart_ms(&self) -> f64 {
        let mut victim = self.sleeper();
        let mut witness = self.sleeper();
        let mut out = victim.stdout.take().expect("stdout");
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while std::io::Read::read(&mut out, &mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        let pid: i32 = String::from_utf8_lossy(&line)
            .trim()
            .parse()
            .expect("backend pid");
        // Let the witness reach its pg_sleep.
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        // SAFETY: kill on a server backend we just asked the pid of.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let deadline = t + Duration::from_secs(60);
        while witness.try_wait().ok().flatten().is_none() {
            assert!(
                Instant::now() < deadline,
                "{}: no crash handling",
                self.name
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        while self.psql_ok("SELECT 1").as_deref() != Some("1") {
            assert!(Instant::now() < deadline, "{}: no restart", self.name);
            std::thread::sleep(Duration::from_millis(2));
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let _ = victim.kill();
        let _ = victim.wait();
        ms
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        (self.stop)();
        if let Some(c) = self.child.as_mut() {
            let _ = c.wait();
        }
    }
}

fn start_ours(base: &Path, tls: &TlsFiles) -> Target {
    let sock = base.join("ours-sock");
    std::fs::create_dir_all(&sock).expect("dir");
    let port = free_port();
    let dir = base.join("ours-data");
    let child = postmaster()
        .arg("-D")
        .arg(&dir)
        .arg("-k")
        .arg(&sock)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args(tls.settings(&tls.ours))
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
        child: Some(child),
        // SAFETY: fast shutdown of our own child.
        stop: Box::new(move || unsafe {
            libc::kill(pid, libc::SIGINT);
        }),
    };
    wait_up(&t);
    t
}

/// One self-signed certificate and key, written twice: for our server (owned by us) and for
/// PostgreSQL (owned by `postgres`, mode 0600, as it demands of a key).
struct TlsFiles {
    ours: (PathBuf, PathBuf),
    pg: (PathBuf, PathBuf),
}

impl TlsFiles {
    fn new(base: &Path) -> TlsFiles {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("certificate");
        let pair = |who: &str| {
            let (crt, key) = (
                base.join(format!("{who}.crt")),
                base.join(format!("{who}.key")),
            );
            std::fs::write(&crt, ck.cert.pem()).expect("crt");
            std::fs::write(&key, ck.key_pair.serialize_pem()).expect("key");
            let _ = Command::new("chmod").arg("600").arg(&key).status();
            let _ = Command::new("chmod").arg("644").arg(&crt).status();
            (crt, key)
        };
        let (ours, pg) = (pair("ours"), pair("pg"));
        for p in [&pg.0, &pg.1] {
            let _ = Command::new("chown").arg("postgres").arg(p).status();
        }
        TlsFiles { ours, pg }
    }

    fn settings(&self, (crt, key): &(PathBuf, PathBuf)) -> Vec<String> {
        vec![
            "-c".into(),
            "ssl=on".into(),
            "-c".into(),
            format!("ssl_cert_file={}", crt.display()),
            "-c".into(),
            format!("ssl_key_file={}", key.display()),
        ]
    }
}

fn start_postgres(base: &Path, tls: &TlsFiles) -> Option<Target> {
    if !Path::new(PG_BIN).join("postgres").exists() {
        return None;
    }
    let dir = base.join("pg-data");
    let sock = base.join("pg-sock");
    std::fs::create_dir_all(&sock).ok()?;
    for p in [base, &sock] {
        let _ = Command::new("chmod").arg("777").arg(p).status();
    }
    let as_pg = |cmd: &str| {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join(cmd));
        c
    };
    let ok = as_pg("initdb")
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let port = free_port();
    let child = as_pg("postgres")
        .arg("-D")
        .arg(&dir)
        .arg("-k")
        .arg(&sock)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args(tls.settings(&tls.pg))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(base.join("pg.log")).ok()?)
        .spawn()
        .ok()?;
    let pidfile = dir.join("postmaster.pid");
    let t = Target {
        name: "postgres15",
        sock,
        port,
        child: Some(child),
        // runuser does not pass signals on: signal the postmaster named in its pid file.
        stop: Box::new(move || {
            let pid: i32 = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
                .unwrap_or(0);
            if pid > 0 {
                // SAFETY: fast shutdown of the PostgreSQL postmaster this bench started.
                unsafe { libc::kill(pid, libc::SIGINT) };
            }
        }),
    };
    wait_up(&t);
    Some(t)
}

fn wait_up(t: &Target) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.psql_ok("SELECT 1").is_none() {
        assert!(Instant::now() < deadline, "{} did not start", t.name);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Prints the figure's two `BENCH` lines (the kit's format): PostgreSQL 15's median as the
/// baseline and ours with the median of the per-round ratios.
fn report(name: &str, unit: &str, decimals: usize, ours: &[f64], pg: &[f64]) {
    report_vs_postgres15("server", name, unit, decimals, ours, pg);
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
    // `cargo bench -p pgipc-tests --bench server -- tls`: only the figures whose name
    // contains the filter.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| only.as_deref().is_none_or(|f| name.contains(f));
    let base = std::env::temp_dir().join(format!("pgipc-bench-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("scratch");
    let script_of = |name: &str, sql: &str| -> PathBuf {
        let p = base.join(name);
        std::fs::write(&p, sql).expect("script");
        let _ = Command::new("chmod").arg("644").arg(&p).status();
        p
    };
    let select1 = script_of("select1.sql", "SELECT 1;\n");
    let now = script_of("now.sql", "SELECT now();\n");
    let settings = script_of("pg_settings.sql", "SELECT count(*) FROM pg_settings;\n");
    let tls = TlsFiles::new(&base);
    let ours = start_ours(&base, &tls);
    let Some(pg) = start_postgres(&base, &tls) else {
        println!("PostgreSQL 15 not found under {PG_BIN}: skipping the comparison");
        return ExitCode::SUCCESS;
    };
    ours.set_up_logins(&base.join("ours-data/pg_hba.conf"));
    pg.set_up_logins(&base.join("pg-data/pg_hba.conf"));
    println!(
        "pgipc (release build) vs PostgreSQL 15, Unix sockets, {ROUNDS} interleaved rounds of {SECONDS} s per figure"
    );
    type Fig<'a> = (&'static str, &'static str, Vec<&'static str>, &'a Path);
    let mut figures: Vec<Fig<'_>> = vec![
        (
            "connections_per_s",
            "conn/s",
            vec!["-C", "-c", "1", "-M", "simple"],
            &select1,
        ),
        (
            "select1_tps_1_client",
            "tps",
            vec!["-c", "1", "-M", "prepared"],
            &select1,
        ),
        (
            "select1_tps_4_clients",
            "tps",
            vec!["-c", "4", "-j", "2", "-M", "prepared"],
            &select1,
        ),
        (
            "select1_simple_tps_1_client",
            "tps",
            vec!["-c", "1", "-M", "simple"],
            &select1,
        ),
        (
            "select1_simple_tps_4_clients",
            "tps",
            vec!["-c", "4", "-j", "2", "-M", "simple"],
            &select1,
        ),
        (
            "now_tps_1_client",
            "tps",
            vec!["-c", "1", "-M", "prepared"],
            &now,
        ),
    ];
    if ours.psql_ok("SELECT count(*) FROM pg_settings").is_some() {
        figures.push((
            "pg_settings_count_tps_1_client",
            "tps",
            vec!["-c", "1", "-M", "prepared"],
            &settings,
        ));
    } else {
        println!("server/pg_settings_count_tps_1_client: skipped (no pg_settings view yet)");
    }
    figures.retain(|f| wanted(f.0));
    for (name, unit, args, script) in &figures {
        let (mut a, mut b) = (vec![], vec![]);
        for _ in 0..ROUNDS {
            a.push(ours.pgbench(args, script));
            b.push(pg.pgbench(args, script));
        }
        report(name, unit, 0, &a, &b);
    }
    for (name, login) in [
        ("scram_connections_per_s", Login::Scram),
        ("tls_connections_per_s", Login::Tls),
    ] {
        if !wanted(name) {
            continue;
        }
        let args = ["-C", "-c", "1", "-M", "simple"];
        let (mut a, mut b) = (vec![], vec![]);
        for _ in 0..ROUNDS {
            a.push(ours.pgbench_as(login, &args, &select1));
            b.push(pg.pgbench_as(login, &args, &select1));
        }
        report(name, "conn/s", 0, &a, &b);
    }
    if wanted("crash_restart") {
        let (mut a, mut b) = (vec![], vec![]);
        for _ in 0..3 {
            a.push(ours.crash_restart_ms());
            b.push(pg.crash_restart_ms());
        }
        report("crash_restart", "ms", 1, &a, &b);
    }
    drop(ours);
    drop(pg);
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::fs::remove_dir_all(&base);
    ExitCode::SUCCESS
}
