//! Injection points against the real `postmaster` binary (built with the `injection_points`
//! feature: `cargo test -p pgipc-postmaster --features injection_points --test
//! injection_points`), with psql as the client.
//!
//! * A backend that panics in the middle of a ProcArray update (point `procarray-add`, attached
//!   from SQL by a bystander session) aborts: `PANIC:` in the log, the postmaster restarts
//!   everything, the bystander gets 57P02, and new connections work afterwards (the restart
//!   also dropped the shared attachment). Once with fork, once with `exec_backend = on`.
//! * `error` at `backend-start`, attached through `PGIPC_INJECTION_POINTS`, is a FATAL for
//!   that client only: a clean exit, no restart.
//! * The SQL functions refuse bad input with an ERROR and leave the session usable.
//!
//! `harness = false` with libtest-mimic on one thread; every wait has a deadline.

use libtest_mimic::{Arguments, Failed, Trial};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postmaster");

struct Server {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
    port: String,
    log: PathBuf,
}

impl Drop for Server {
    /// A failing trial still shuts its server down: immediate shutdown (the postmaster removes
    /// its shared memory), SIGKILL only if that does not end it within 10 s.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: signalling the postmaster we started.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(&self.sock);
        let _ = std::fs::remove_file(&self.log);
    }
}

fn start(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<Server, Failed> {
    let dir = std::env::temp_dir().join(format!("pgipc-inj-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sock = dir.with_extension("sock");
    std::fs::create_dir_all(&sock).map_err(|e| e.to_string())?;
    let log = dir.with_extension("log");
    let f = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port().to_string())
        .map_err(|e| e.to_string())?;
    let mut cmd = Command::new(BIN);
    cmd.args(["-D", dir.to_str().ok_or("utf8")?])
        .args(["-k", sock.to_str().ok_or("utf8")?])
        .args(["-p", &port, "-c", "listen_addresses="])
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(f);
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    let s = Server {
        child,
        dir,
        sock,
        port,
        log,
    };
    let me = s.child.id().to_string();
    s.wait_for("the server to be ready", |s| {
        let lines: Vec<String> = std::fs::read_to_string(s.dir.join("postmaster.pid"))
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        lines.first() == Some(&me) && lines.get(7).map(|l| l.trim()) == Some("ready")
    })?;
    Ok(s)
}

impl Server {
    fn psql_cmd(&self, sql: &[&str]) -> Command {
        let mut c = Command::new("psql");
        c.args([
            "-X",
            "-At",
            "-v",
            "VERBOSITY=verbose",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-h", self.sock.to_str().unwrap_or(""), "-p", &self.port])
        .args(["-U", "postgres", "-d", "postgres"])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for s in sql {
            c.args(["-c", s]);
        }
        c
    }

    /// One psql run, killed after 30 s.
    fn psql(&self, sql: &str) -> Output {
        let child = self.psql_cmd(&[sql]).spawn().expect("psql");
        finish(child, Duration::from_secs(30))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, mut cond: impl FnMut(&Server) -> bool) -> Result<(), Failed> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond(self) {
            if Instant::now() > deadline {
                return Err(
                    format!("timed out waiting for {what}; log:\n{}", self.log_text()).into(),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Fast shutdown, with a deadline.
    fn stop(self) -> Result<(), Failed> {
        self.stop_with_log().map(drop)
    }

    /// Fast shutdown; returns the whole server log.
    fn stop_with_log(mut self) -> Result<String, Failed> {
        // SAFETY: signalling the postmaster we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().map_err(|e| e.to_string())?.is_none() {
            if Instant::now() > deadline {
                return Err(format!("server did not stop; log:\n{}", self.log_text()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(self.log_text())
    }
}

/// Waits for `child` (killing it after `limit`) and collects its output.
fn finish(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn backend_panic(name: &'static str, extra: &'static [&'static str]) -> Trial {
    Trial::test(
        format!("{name}: a backend panicking mid-update crashes the server; bystanders get 57P02"),
        move || {
            let srv = start(name, extra, &[])?;
            // The bystander attaches the point for everybody, then sits in a statement.
            let bystander = srv
                .psql_cmd(&[
                    "SELECT injection_points_attach('procarray-add', 'panic')",
                    "SELECT pg_sleep(60)",
                ])
                .spawn()
                .map_err(|e| e.to_string())?;
            // New connections work until the attach lands; the first one after it panics in
            // ProcArrayAdd with ProcArrayLock held.
            let mut refused = None;
            srv.wait_for("a connection to hit the injection point", |s| {
                let o = s.psql("SELECT 1");
                if !o.status.success() {
                    refused = Some(o);
                }
                refused.is_some()
            })?;
            let by = finish(bystander, Duration::from_secs(30));
            let by_err = text(&by.stderr);
            srv.wait_for("a connection after the restart", |s| {
                s.psql("SELECT 1").status.success()
            })?;
            let log = srv.log_text();
            let checks = [
                (
                    log.contains("PANIC:  panic triggered for injection point procarray-add"),
                    "PANIC line in the log",
                ),
                (
                    log.contains("was terminated by signal 6"),
                    "the postmaster saw SIGABRT",
                ),
                (
                    log.contains("all server processes terminated; reinitializing"),
                    "a crash restart",
                ),
                (
                    !by.status.success() && by_err.contains("57P02"),
                    "57P02 for the bystander",
                ),
            ];
            for (ok, what) in checks {
                if !ok {
                    return Err(format!(
                        "{what}: missing\nbystander: {by_err}\nrefused: {refused:?}\nlog:\n{log}"
                    )
                    .into());
                }
            }
            // The attachment lived in the old shared memory: the point no longer fires.
            let o = srv.psql("SELECT injection_points_detach('procarray-add')");
            if !text(&o.stderr).contains("42704") {
                return Err(format!("point still attached after the restart: {o:?}").into());
            }
            srv.stop()
        },
    )
}

fn error_at_backend_start() -> Result<(), Failed> {
    let srv = start(
        "env-error",
        &[],
        &[(pgipc_injection_point::ENV_VAR, "backend-start=error")],
    )?;
    for _ in 0..2 {
        let o = srv.psql("SELECT 1");
        let err = text(&o.stderr);
        if o.status.success()
            || !err.contains("FATAL:  error triggered for injection point backend-start")
        {
            return Err(format!("expected the injected FATAL, got {o:?}").into());
        }
    }
    let log = srv.log_text();
    if log.contains("terminated by signal") || log.contains("reinitializing") {
        return Err(format!("a FATAL at backend start caused a restart:\n{log}").into());
    }
    srv.stop()
}

fn sql_functions() -> Result<(), Failed> {
    let srv = start("sql", &[], &[])?;
    let cases = [
        ("SELECT injection_points_attach('x', 'explode')", "22023"),
        ("SELECT injection_points_detach('never-attached')", "42704"),
        ("SELECT injection_points_wakeup('never-attached')", "42704"),
    ];
    for (sql, code) in cases {
        let o = srv.psql(sql);
        if o.status.success() || !text(&o.stderr).contains(&format!("ERROR:  {code}")) {
            return Err(format!("{sql}: expected ERROR {code}, got {o:?}").into());
        }
    }
    // Attach, notice, detach in one session; the session stays usable.
    let o = finish(
        srv.psql_cmd(&[
            "SELECT injection_points_attach('bgworker-start', 'notice')",
            "SELECT injection_points_detach('bgworker-start')",
            "SELECT 7",
        ])
        .spawn()
        .map_err(|e| e.to_string())?,
        Duration::from_secs(30),
    );
    if !o.status.success() || !text(&o.stdout).ends_with("7\n") {
        return Err(format!("attach/detach session: {o:?}").into());
    }
    srv.stop()
}

/// `error` at `postmaster-reset`, attached through the environment (the postmaster never reads
/// the shared table): the crash restart after a SIGKILL fails there and the postmaster exits 1.
fn error_at_postmaster_reset() -> Result<(), Failed> {
    let mut srv = start(
        "reset-error",
        &[],
        &[(pgipc_injection_point::ENV_VAR, "postmaster-reset=error")],
    )?;
    let o = srv.psql("SHOW pgipc.pid_of.checkpointer");
    let pid: i32 = text(&o.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("checkpointer pid: {e}: {o:?}"))?;
    // SAFETY: SIGKILL to the server's checkpointer, a process of the server we started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = srv.child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() > deadline {
            return Err(format!("postmaster still running; log:\n{}", srv.log_text()).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = srv.log_text();
    if status.code() != Some(1)
        || !log.contains("all server processes terminated; reinitializing")
        || !log.contains("FATAL:  error triggered for injection point postmaster-reset")
    {
        return Err(
            format!("expected a FATAL exit at the reset, got {status:?}; log:\n{log}").into(),
        );
    }
    Ok(())
}

/// `error` at `bgworker-start`, attached from SQL: the worker leaves with FATAL (a clean exit
/// code, no crash restart) and the session goes on.
fn error_at_bgworker_start() -> Result<(), Failed> {
    let srv = start("bgw-error", &[], &[])?;
    let o = srv.psql_cmd(&[
        "SELECT injection_points_attach('bgworker-start', 'error')",
        "SELECT pgipc_start_worker('pgipc_worker_sleep')",
    ]);
    let _ = finish(o.spawn_checked()?, Duration::from_secs(40));
    srv.wait_for("the worker's FATAL", |s| {
        s.log_text()
            .contains("FATAL:  error triggered for injection point bgworker-start")
    })?;
    if !srv.psql("SELECT 1").status.success() || srv.log_text().contains("reinitializing") {
        return Err(format!(
            "the worker's FATAL disturbed the server:\n{}",
            srv.log_text()
        )
        .into());
    }
    srv.stop()
}

/// `notice` at `checkpointer-shutdown-checkpoint` (environment): the shutdown checkpoint passes
/// the point, logs, and the shutdown completes.
fn notice_at_shutdown_checkpoint() -> Result<(), Failed> {
    let srv = start(
        "ckpt-notice",
        &[],
        &[(
            pgipc_injection_point::ENV_VAR,
            "checkpointer-shutdown-checkpoint=notice",
        )],
    )?;
    let text = srv.stop_with_log()?;
    let notice =
        text.find("LOG:  notice triggered for injection point checkpointer-shutdown-checkpoint");
    let done = text.find("database system is shut down");
    match (notice, done) {
        (Some(n), Some(d)) if n < d => Ok(()),
        _ => Err(format!("no notice before the end of the shutdown:\n{text}").into()),
    }
}

trait SpawnChecked {
    fn spawn_checked(self) -> Result<Child, Failed>;
}

impl SpawnChecked for Command {
    fn spawn_checked(mut self) -> Result<Child, Failed> {
        self.spawn().map_err(|e| e.to_string().into())
    }
}

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        backend_panic("fork", &[]),
        backend_panic("exec", &["-c", "exec_backend=on"]),
        Trial::test(
            "error at backend-start (environment): FATAL for that client, no restart",
            error_at_backend_start,
        ),
        Trial::test("the SQL functions check their input", sql_functions),
        Trial::test(
            "error at postmaster-reset (environment): the crash restart stops with FATAL",
            error_at_postmaster_reset,
        ),
        Trial::test(
            "error at bgworker-start (SQL): the worker leaves with FATAL, no restart",
            error_at_bgworker_start,
        ),
        Trial::test(
            "notice at checkpointer-shutdown-checkpoint (environment): logged, shutdown completes",
            notice_at_shutdown_checkpoint,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
