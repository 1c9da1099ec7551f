//! One real `postmaster` for a whole-server test: [`TestServer`], built with [`Builder`].
//!
//! A server gets its own data directory, socket directory, free port and log file; it is
//! started as a child process, and ready when its own pid file (not a dead predecessor's) says
//! `ready`. It runs psql, opens raw Unix-socket connections or `postgres` clients against
//! itself, finds its children (by kind through `SHOW pgipc.pid_of.<kind>`, or all of them from
//! /proc) and stops with a deadline. Dropped while it still runs (a failed test), it sends
//! SIGQUIT (an immediate shutdown still removes the server's shared memory), then SIGKILL
//! after 10 s, and reaps it. Every wait has a deadline; errors carry the server log.

use super::Owned;
use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

// The kit's helpers, re-exported for the tests (each binary uses part of them).
#[allow(unused_imports)]
pub(crate) use pgipc_tests::{
    free_port, pgipc_ctl, postmaster, scratch, server_exe, wait_for, watchdog, which, RUN_AS,
};

/// The first thing each whole-server test binary's `main` does ([`pgipc_tests::serve_if_asked`]
/// with the server's entry points): `Some(exit code)` when this process was started as the
/// postmaster or pgipc_ctl under test, `None` in the test binary proper.
pub(crate) fn serve_if_asked() -> Option<ExitCode> {
    pgipc_tests::serve_if_asked(&pgipc_tests::Programs {
        postmaster: |args| pgipc_postmaster::entry::postmaster_main(args),
        ctl: |args, postmaster| pgipc_postmaster::entry::ctl_main(args, postmaster),
    })
}

/// What the log says at each crash restart.
pub(crate) const RESTARTED: &str = "all server processes terminated; reinitializing";

/// The lines of `data_dir`'s postmaster.pid (none if there is no such file).
pub(crate) fn pid_lines(data_dir: &Path) -> Vec<String> {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The command line of a postmaster on `data` with its socket in `sock`, on `port`, with
/// `listen_addresses` = `listen`.
pub(crate) fn postmaster_args(data: &Path, sock: &Path, port: u16, listen: &str) -> Vec<String> {
    vec![
        "-D".to_string(),
        data.display().to_string(),
        "-p".into(),
        port.to_string(),
        "-k".into(),
        sock.display().to_string(),
        "-c".into(),
        format!("listen_addresses={listen}"),
    ]
}

/// Whether the System V shared memory segment `shmid` exists.
pub(crate) fn sysv_segment_exists(shmid: i32) -> bool {
    // SAFETY: a zeroed shmid_ds is a valid IPC_STAT buffer.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: valid buffer; IPC_STAT on any id is harmless.
    unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) == 0 }
}

/// Waits until `child`'s own pid file on `data_dir` says ready; an error if it exits first or
/// `limit` passes.
pub(crate) fn wait_ready_of(
    child: &mut Child,
    data_dir: &Path,
    limit: Duration,
) -> Result<(), String> {
    let me = child.id().to_string();
    let deadline = Instant::now() + limit;
    loop {
        // Our own pid file (a dead predecessor's stale one may also say "ready").
        let l = pid_lines(data_dir);
        if l.first() == Some(&me) && l.get(7).map(String::as_str) == Some("ready   ") {
            return Ok(());
        }
        if let Some(st) = child.try_wait().ok().flatten() {
            return Err(format!("server exited ({st}) before it was ready"));
        }
        if Instant::now() >= deadline {
            return Err("server never became ready".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `limit` for `child` to exit; SIGKILLs and reaps it if it does not.
pub(crate) fn wait_exit_of(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            return Ok(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("server did not stop within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// If `child` still runs: SIGQUIT (immediate shutdown), SIGKILL after 10 s; then reaps it.
pub(crate) fn quit_and_reap(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `cmd` to its end with piped output, killing it after `limit`.
pub(crate) fn output_within(cmd: &mut Command, limit: Duration) -> std::io::Result<Output> {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    Ok(finish(child, limit))
}

/// Waits for `child` (killing it after `limit`) and collects its output.
pub(crate) fn finish(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait_with_output().expect("wait")
}

/// Live (not zombie) children of `parent`: pid → process name, from /proc.
pub(crate) fn children_of(parent: i32) -> BTreeMap<i32, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the parenthesised name: state, then the parent pid.
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

/// A client error's SQLSTATE (empty if it has none).
pub(crate) fn sqlstate(e: &postgres::Error) -> String {
    e.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

/// A client error with the server's message and SQLSTATE when there is one.
pub(crate) fn pg_err(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// A protocol 3.0 startup packet for user and database `postgres`.
pub(crate) fn startup_packet() -> Vec<u8> {
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

/// `CANCEL_REQUEST_CODE` (1234.5678).
pub(crate) const CANCEL_CODE: u32 = 80_877_102;

/// A CancelRequest naming `pid` with `key`.
pub(crate) fn cancel_packet(pid: i32, key: &[u8]) -> Vec<u8> {
    let mut pkt = Vec::with_capacity(12 + key.len());
    pkt.extend_from_slice(&((12 + key.len()) as u32).to_be_bytes());
    pkt.extend_from_slice(&CANCEL_CODE.to_be_bytes());
    pkt.extend_from_slice(&pid.to_be_bytes());
    pkt.extend_from_slice(key);
    pkt
}

/// psql as user and database `postgres` on the Unix socket in `sock` at `port`: flags, then
/// `-c` for each of `sql`, with ON_ERROR_STOP and a 10 s connect timeout.
pub(crate) fn psql_command_at(sock: &Path, port: u16, flags: &[&str], sql: &[&str]) -> Command {
    let mut c = Command::new("psql");
    c.arg("-X")
        .args(flags)
        .args(["-v", "ON_ERROR_STOP=1", "-h"])
        .arg(sock)
        .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null());
    for s in sql {
        c.args(["-c", s]);
    }
    c
}

/// A `postgres` client as user and database `postgres` on the Unix socket in `sock` at
/// `port` (10 s connect timeout).
pub(crate) fn client_at(sock: &Path, port: u16) -> Result<postgres::Client, postgres::Error> {
    postgres::Config::new()
        .host_path(sock)
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(10))
        .connect(postgres::NoTls)
}

/// The installed PostgreSQL 15, the oracle of comparison tests.
pub(crate) const PG15_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL 15 server run as user `postgres` (`runuser`), with trust authentication, a
/// Unix socket only, in its own scratch directory; stopped (fast shutdown, then SIGKILL after
/// 10 s) and removed on drop.
#[derive(Debug)]
pub(crate) struct Postgres15 {
    base: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    port: u16,
    child: Child,
}

impl Postgres15 {
    /// `None` (with the reason) when PostgreSQL 15 is not installed or does not start.
    pub(crate) fn start(name: &str) -> Result<Postgres15, String> {
        Self::start_with(name, &[])
    }

    /// [`start`](Self::start) with more `postgres` arguments (e.g. `-c
    /// listen_addresses=127.0.0.1`: the last of a setting wins).
    pub(crate) fn start_with(name: &str, args: &[&str]) -> Result<Postgres15, String> {
        let bin = Path::new(PG15_BIN);
        if !bin.join("postgres").exists() {
            return Err(format!("PostgreSQL 15 is not installed in {PG15_BIN}"));
        }
        let base = scratch("pgipc-pg15", name);
        let (data, sock) = (base.join("data"), base.join("sock"));
        std::fs::create_dir_all(&sock).map_err(|e| format!("{}: {e}", sock.display()))?;
        for p in [&base, &sock] {
            std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                .map_err(|e| format!("chmod {}: {e}", p.display()))?;
        }
        let init = output_within(
            Self::as_postgres("initdb")
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-D",
                ])
                .arg(&data),
            Duration::from_secs(120),
        )
        .map_err(|e| format!("initdb: {e}"))?;
        if !init.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            ));
        }
        let port = free_port();
        let log = std::fs::File::create(base.join("server.log")).map_err(|e| e.to_string())?;
        let child = Self::as_postgres("postgres")
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&sock)
            .args(["-p", &port.to_string(), "-c", "listen_addresses="])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn postgres: {e}"))?;
        let pg = Postgres15 {
            base,
            data,
            sock,
            port,
            child,
        };
        // runuser's pid is not the postmaster's: ready is the pid file's status line.
        wait_for("PostgreSQL 15 to be ready", Duration::from_secs(60), || {
            pid_lines(&pg.data).get(7).map(String::as_str) == Some("ready   ")
        })
        .map_err(|e| format!("{e}\n{}", pg.log_text()))?;
        Ok(pg)
    }

    /// `runuser -u postgres -- <PG15_BIN>/<cmd>`.
    pub(crate) fn as_postgres(cmd: &str) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(Path::new(PG15_BIN).join(cmd));
        c
    }

    pub(crate) fn data_dir(&self) -> &Path {
        &self.data
    }

    pub(crate) fn sock_dir(&self) -> &Path {
        &self.sock
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(self.base.join("server.log")).unwrap_or_default()
    }

    /// Sends `sig` to its postmaster (named in postmaster.pid: runuser passes no signals on).
    pub(crate) fn signal(&self, sig: i32) -> Result<(), String> {
        let pid: i32 = pid_lines(&self.data)
            .first()
            .and_then(|l| l.trim().parse().ok())
            .ok_or("PostgreSQL 15 has no pid file")?;
        // SAFETY: kill on the pid of the PostgreSQL postmaster this value started.
        match unsafe { libc::kill(pid, sig) } {
            0 => Ok(()),
            _ => Err(format!("kill {pid}: {}", std::io::Error::last_os_error())),
        }
    }

    /// psql against it (see [`psql_command_at`]).
    pub(crate) fn psql_command(&self, flags: &[&str], sql: &[&str]) -> Command {
        psql_command_at(&self.sock, self.port, flags, sql)
    }

    /// A `postgres` client.
    pub(crate) fn client(&self) -> Result<postgres::Client, postgres::Error> {
        client_at(&self.sock, self.port)
    }
}

impl Drop for Postgres15 {
    fn drop(&mut self) {
        let pid: i32 = pid_lines(&self.data)
            .first()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        if pid > 0 {
            // runuser does not pass signals on: fast shutdown of the postmaster itself.
            // SAFETY: kill on the pid of the PostgreSQL postmaster this value started.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        if wait_exit_of(&mut self.child, Duration::from_secs(10)).is_err() && pid > 0 {
            // SAFETY: as above; it did not stop in time.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Where the postmaster's stdout goes (its stderr always goes to the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdout {
    Log,
    Null,
    Inherit,
}

/// Settings of a [`TestServer`]; [`Builder::build`] makes it (not started yet).
#[derive(Debug, Clone)]
pub(crate) struct Builder {
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    /// Removed when the server is dropped (unless the thread is panicking).
    cleanup: Vec<PathBuf>,
    port: Option<u16>,
    listen: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdout: Stdout,
    ready_limit: Duration,
    track_own: bool,
}

impl Builder {
    /// Everything under the scratch directory `base` (emptied now): `base/data`, `base/sock`,
    /// `base/server.log`; `base` is removed on drop.
    pub(crate) fn in_dir(base: PathBuf) -> Builder {
        let _ = std::fs::remove_dir_all(&base);
        Builder::with_paths(
            base.join("data"),
            base.join("sock"),
            base.join("server.log"),
        )
        .remove_on_drop(base)
    }

    /// The data directory `data`, with `data.sock` and `data.log` beside it.
    pub(crate) fn beside(data: PathBuf) -> Builder {
        let sock = data.with_extension("sock");
        let log = data.with_extension("log");
        Builder::with_paths(data, sock, log)
    }

    /// Exactly these paths; nothing is removed on drop.
    pub(crate) fn with_paths(data: PathBuf, sock: PathBuf, log: PathBuf) -> Builder {
        Builder {
            data,
            sock,
            log,
            cleanup: Vec::new(),
            port: None,
            listen: String::new(),
            args: Vec::new(),
            env: Vec::new(),
            stdout: Stdout::Log,
            ready_limit: Duration::from_secs(30),
            track_own: false,
        }
    }

    /// Also removes `path` on drop.
    pub(crate) fn remove_on_drop(mut self, path: PathBuf) -> Builder {
        self.cleanup.push(path);
        self
    }

    /// This port instead of a free one.
    pub(crate) fn port(mut self, port: u16) -> Builder {
        self.port = Some(port);
        self
    }

    /// `listen_addresses` (default empty: Unix socket only).
    pub(crate) fn listen(mut self, addresses: &str) -> Builder {
        self.listen = addresses.to_owned();
        self
    }

    /// `-c name=value`.
    pub(crate) fn set(mut self, setting: &str) -> Builder {
        self.args.extend(["-c".to_owned(), setting.to_owned()]);
        self
    }

    /// More command-line arguments, as they are.
    pub(crate) fn args(mut self, args: &[&str]) -> Builder {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Exec mode (`-c exec_backend=on`) when `exec`.
    pub(crate) fn exec(self, exec: bool) -> Builder {
        if exec {
            self.set("exec_backend=on")
        } else {
            self
        }
    }

    /// An environment variable for the postmaster (such as `PGIPC_INJECTION_POINTS`).
    pub(crate) fn env(mut self, name: &str, value: &str) -> Builder {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn stdout(mut self, to: Stdout) -> Builder {
        self.stdout = to;
        self
    }

    /// How long a start may take to become ready (default 30 s).
    pub(crate) fn ready_within(mut self, limit: Duration) -> Builder {
        self.ready_limit = limit;
        self
    }

    /// Records the server's own shared memory at each start and signal (see [`Owned`]), for
    /// [`TestServer::clean_after_stop`].
    pub(crate) fn track_shared_memory(mut self) -> Builder {
        self.track_own = true;
        self
    }

    /// The server, not started; creates the socket directory.
    pub(crate) fn build(self) -> TestServer {
        std::fs::create_dir_all(&self.sock).expect("socket dir");
        TestServer {
            child: None,
            port: self.port.unwrap_or_else(free_port),
            cfg: self,
            starts: 0,
            own: Owned::default(),
        }
    }

    /// [`Builder::build`], then [`TestServer::start`].
    pub(crate) fn start(self) -> Result<TestServer, String> {
        let mut s = self.build();
        s.start()?;
        Ok(s)
    }
}

/// One postmaster of a test (see the module documentation).
#[derive(Debug)]
pub(crate) struct TestServer {
    child: Option<Child>,
    cfg: Builder,
    port: u16,
    /// Starts so far: the first truncates the log, later ones append to it.
    starts: usize,
    /// The shared memory this server owned (recorded at each start and before each signal
    /// when tracking).
    own: Owned,
}

impl TestServer {
    pub(crate) fn data_dir(&self) -> &Path {
        &self.cfg.data
    }

    pub(crate) fn sock_dir(&self) -> &Path {
        &self.cfg.sock
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.cfg.log
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's command-line arguments.
    pub(crate) fn command_args(&self) -> Vec<String> {
        let mut a = postmaster_args(&self.cfg.data, &self.cfg.sock, self.port, &self.cfg.listen);
        a.extend(self.cfg.args.iter().cloned());
        a
    }

    /// Spawns the postmaster and waits until it is ready (and, when tracking, records its
    /// shared memory); an error with the log if it exits first or takes too long.
    pub(crate) fn start(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.starts > 0)
            .truncate(self.starts == 0)
            .open(&self.cfg.log)
            .map_err(|e| format!("log {}: {e}", self.cfg.log.display()))?;
        self.starts += 1;
        let stdout = match self.cfg.stdout {
            Stdout::Log => Stdio::from(log.try_clone().map_err(|e| format!("log: {e}"))?),
            Stdout::Null => Stdio::null(),
            Stdout::Inherit => Stdio::inherit(),
        };
        let child = postmaster()
            .args(self.command_args())
            .envs(self.cfg.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn postmaster: {e}"))?;
        let child = self.child.insert(child);
        if let Err(e) = wait_ready_of(child, &self.cfg.data, self.cfg.ready_limit) {
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
            }
            return Err(self.fail(e));
        }
        self.note_own()
    }

    /// When tracking: records the segments the (ready) server owns now.
    fn note_own(&mut self) -> Result<(), String> {
        if !self.cfg.track_own {
            return Ok(());
        }
        match Owned::of_running(&self.cfg.data, self.pid() as u32) {
            Ok(o) => {
                self.own.add(o);
                Ok(())
            }
            Err(e) => Err(self.fail(format!("this server's shared memory: {e}"))),
        }
    }

    /// The shared memory recorded so far (see [`Builder::track_shared_memory`]).
    pub(crate) fn owned(&self) -> &Owned {
        &self.own
    }

    /// The postmaster's pid (it must have been started).
    pub(crate) fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Its exit status if it has exited (the child stays recorded).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The postmaster process, no longer looked after by this server.
    pub(crate) fn take_child(&mut self) -> Option<Child> {
        self.child.take()
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.cfg.log).unwrap_or_default()
    }

    /// `what` failed: the message with the server log.
    pub(crate) fn fail(&self, what: impl std::fmt::Display) -> String {
        format!("{what}\n---- server log ----\n{}", self.log_text())
    }

    /// Polls `cond` every 20 ms; an error with the log after `limit`.
    pub(crate) fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut cond: impl FnMut(&Self) -> bool,
    ) -> Result<(), String> {
        wait_for(what, limit, || cond(self)).map_err(|e| self.fail(e))
    }

    /// Waits until the log contains `needle`.
    pub(crate) fn wait_log(&self, needle: &str, limit: Duration) -> Result<(), String> {
        self.wait_for(&format!("the log to say {needle:?}"), limit, |s| {
            s.log_text().contains(needle)
        })
    }

    /// Crash restarts the log shows.
    pub(crate) fn restarts(&self) -> usize {
        self.log_text().matches(RESTARTED).count()
    }

    pub(crate) fn pid_lines(&self) -> Vec<String> {
        pid_lines(&self.cfg.data)
    }

    /// The status line of postmaster.pid ("starting", "ready", ...).
    pub(crate) fn pid_status(&self) -> String {
        self.pid_lines()
            .get(7)
            .map(|l| l.trim().to_owned())
            .unwrap_or_default()
    }

    /// Sends `sig` to the postmaster (when tracking, having first recorded the segments the
    /// server owns at that moment).
    pub(crate) fn signal(&mut self, sig: i32) -> Result<(), String> {
        self.note_own()?;
        // SAFETY: kill on our own child.
        if unsafe { libc::kill(self.pid(), sig) } != 0 {
            return Err(self.fail(format!(
                "kill({}, {sig}): {}",
                self.pid(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Waits up to 30 s for the postmaster to exit (SIGKILL if it does not).
    pub(crate) fn wait_exit(&mut self) -> Result<ExitStatus, String> {
        let mut child = self.child.take().ok_or("the server is not running")?;
        wait_exit_of(&mut child, Duration::from_secs(30)).map_err(|e| self.fail(e))
    }

    /// Fast shutdown (SIGINT) and its exit status, within 30 s.
    pub(crate) fn stop(&mut self) -> Result<ExitStatus, String> {
        if self.child.is_none() {
            return Err("the server is not running".into());
        }
        self.signal(libc::SIGINT)?;
        self.wait_exit()
    }

    /// Fast shutdown that must exit 0.
    pub(crate) fn stop_ok(&mut self) -> Result<(), String> {
        let st = self.stop()?;
        if st.success() {
            Ok(())
        } else {
            Err(self.fail(format!("server exited with {st}")))
        }
    }

    /// Flags then `-c` for each of `sql`: psql against this server over its Unix socket,
    /// with ON_ERROR_STOP and a 10 s connect timeout.
    pub(crate) fn psql_command(&self, flags: &[&str], sql: &[&str]) -> Command {
        psql_command_at(&self.cfg.sock, self.port, flags, sql)
    }

    /// `psql -X -A -t … -c sql`.
    pub(crate) fn psql_cmd(&self, sql: &str) -> Command {
        self.psql_command(&["-A", "-t"], &[sql])
    }

    /// One psql run (killed after 30 s).
    pub(crate) fn psql(&self, sql: &str) -> Output {
        output_within(&mut self.psql_cmd(sql), Duration::from_secs(30)).expect("psql")
    }

    /// One psql run that must succeed: its output, trimmed.
    pub(crate) fn psql_ok(&self, sql: &str) -> Result<String, String> {
        let o = self.psql(sql);
        if !o.status.success() {
            return Err(format!(
                "psql {sql:?} failed: {}\nserver log:\n{}",
                String::from_utf8_lossy(&o.stderr),
                self.log_text()
            ));
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    }

    /// A `postgres` client over the Unix socket (10 s connect timeout).
    pub(crate) fn client(&self) -> Result<postgres::Client, postgres::Error> {
        client_at(&self.cfg.sock, self.port)
    }

    /// The Unix socket file.
    pub(crate) fn socket_file(&self) -> PathBuf {
        self.cfg.sock.join(format!(".s.PGSQL.{}", self.port))
    }

    /// The socket's lock file.
    pub(crate) fn socket_lock_file(&self) -> PathBuf {
        self.cfg.sock.join(format!(".s.PGSQL.{}.lock", self.port))
    }

    /// A raw connection to the Unix socket.
    pub(crate) fn connect_raw(&self) -> std::io::Result<UnixStream> {
        UnixStream::connect(self.socket_file())
    }

    /// `SHOW pgipc.pid_of.<kind>` (the server reads it from the PGPROC array): the pid, 0 if
    /// there is none; an error if psql fails.
    pub(crate) fn show_pid_of(&self, kind: &str) -> Result<i32, String> {
        let out = self.psql_ok(&format!("SHOW pgipc.pid_of.{kind}"))?;
        Ok(out.parse().ok().filter(|p: &i32| *p > 0).unwrap_or(0))
    }

    /// Waits up to `limit` for a running child of `kind` other than `not` (psql failures
    /// count as not yet); its pid.
    pub(crate) fn wait_pid_of(&self, kind: &str, not: i32, limit: Duration) -> Result<i32, String> {
        let mut pid = 0;
        self.wait_for(&format!("a running {kind}"), limit, |s| {
            pid = s.show_pid_of(kind).unwrap_or(0);
            pid > 0 && pid != not
        })?;
        Ok(pid)
    }

    /// The postmaster's live children: pid → process name.
    pub(crate) fn children(&self) -> BTreeMap<i32, String> {
        children_of(self.pid())
    }

    /// No pid file, socket or socket lock file, and none of this server's own shared memory
    /// (its DSM control segments, the segments they listed, its SysV interlocks).
    pub(crate) fn clean_after_stop(&self) -> Result<(), String> {
        if self.cfg.data.join("postmaster.pid").exists() {
            return Err("pid file left".into());
        }
        if self.socket_file().exists() {
            return Err("socket file left".into());
        }
        if self.socket_lock_file().exists() {
            return Err("socket lock file left".into());
        }
        let left = self.own.left();
        if !left.is_empty() {
            return Err(format!("left behind: {left:?}"));
        }
        Ok(())
    }
}

impl Drop for TestServer {
    /// A failed test must not leave a server running (nor its segments): SIGQUIT, SIGKILL
    /// after 10 s, reaped; the scratch paths go unless the thread is panicking.
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            quit_and_reap(c);
        }
        if !std::thread::panicking() {
            for p in &self.cfg.cleanup {
                let _ = std::fs::remove_dir_all(p);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// How soon a dynamic background worker must be running after `pgipc_start_worker` (issue 11:
/// within 1 s, also after a crash restart).
pub(crate) const WORKER_START_LIMIT: Duration = Duration::from_secs(1);

/// Registers and starts a dynamic worker through SQL, timing the call; checks that it runs as a
/// process of its own (not `static_pid`, the static worker, when given), terminates it, and
/// fails if the start took [`WORKER_START_LIMIT`] or longer. `after` names the moment in
/// messages.
pub(crate) fn dynamic_worker_starts(
    s: &TestServer,
    after: &str,
    static_pid: Option<i32>,
) -> Result<Duration, String> {
    let mut c = s
        .client()
        .map_err(|e| s.fail(format!("connect: {}", pg_err(&e))))?;
    let t0 = Instant::now();
    let h: i32 = c
        .query_one("SELECT pgipc_start_worker('pgipc_worker_sleep')", &[])
        .map_err(|e| s.fail(format!("pgipc_start_worker {after}: {}", pg_err(&e))))?
        .get(0);
    let took = t0.elapsed();
    let pid: i32 = c
        .query_one(&format!("SELECT pgipc_worker_pid({h})"), &[])
        .map_err(|e| s.fail(format!("pgipc_worker_pid {after}: {}", pg_err(&e))))?
        .get(0);
    if pid <= 0 || Some(pid) == static_pid || !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(s.fail(format!(
            "dynamic worker {after}: pid {pid} is not a running worker of its own (static worker {static_pid:?})"
        )));
    }
    let st: String = c
        .query_one(&format!("SELECT pgipc_terminate_worker({h})"), &[])
        .map_err(|e| s.fail(format!("pgipc_terminate_worker {after}: {}", pg_err(&e))))?
        .get(0);
    if st != "stopped" {
        return Err(s.fail(format!("dynamic worker {after}: terminate said {st:?}")));
    }
    if took >= WORKER_START_LIMIT {
        return Err(s.fail(format!(
            "dynamic worker {after}: registered and started in {took:?}, limit {WORKER_START_LIMIT:?}"
        )));
    }
    Ok(took)
}
