//! Crash restart, child kind after child kind, in one server: after `kill -9` of each kind of
//! child (client backend, checkpointer, background writer, WAL writer, autovacuum launcher,
//! I/O worker, a static background worker, a dynamic background worker) and the restart that
//! follows, the static worker runs again and a dynamic background worker registers and starts
//! within 1 s (the time is measured and printed). Run in fork and in exec mode.
//!
//! A `libtest-mimic` harness (`harness = false`), one test thread: each trial is one server
//! going through the whole sequence. Every server has its own port and socket directory and is
//! stopped by `Drop` if a trial fails; every wait has a deadline, and a watchdog ends the
//! binary if a trial hangs anyway.

use libtest_mimic::{Arguments, Failed, Trial};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postmaster");

/// A dynamic worker must be registered and running within this long of asking.
const START_LIMIT: Duration = Duration::from_secs(1);
/// Ends the binary if the trials together run longer.
const WATCHDOG: Duration = Duration::from_secs(600);
const RESTARTED: &str = "all server processes terminated; reinitializing";

// ---- a server (a copy of clients.rs's, reduced to what this file needs) ----------------------

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Polls `f` every 20 ms until it holds; an error naming `what` after `limit`.
fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !f() {
        if Instant::now() >= deadline {
            return Err(format!("timed out after {limit:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

struct Server {
    child: Option<Child>,
    base: PathBuf,
    sock: PathBuf,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(name: &str, extra: &[&str]) -> Result<Server, String> {
        let base = std::env::temp_dir().join(format!("pgipc-crash-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let sock = base.join("sock");
        std::fs::create_dir_all(&sock).map_err(|e| format!("scratch directory: {e}"))?;
        let log = base.join("server.log");
        let out = std::fs::File::create(&log).map_err(|e| format!("log: {e}"))?;
        let err = out.try_clone().map_err(|e| format!("log: {e}"))?;
        let port = free_port();
        let child = Command::new(BIN)
            .arg("-D")
            .arg(base.join("data"))
            .args(["-p", &port.to_string(), "-k"])
            .arg(&sock)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn postmaster: {e}"))?;
        let mut s = Server {
            child: Some(child),
            base,
            sock,
            port,
            log,
        };
        s.wait_ready()?;
        Ok(s)
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `what` failed: the message with the server log.
    fn fail(&self, what: impl std::fmt::Display) -> String {
        format!("{what}\n---- server log ----\n{}", self.log_text())
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let me = self.pid().to_string();
        let pid_file = self.base.join("data").join("postmaster.pid");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            if lines.first() == Some(&me.as_str()) && lines.get(7) == Some(&"ready   ") {
                return Ok(());
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(self.fail(format!("server exited ({st}) before it was ready")));
            }
            if Instant::now() >= deadline {
                return Err(self.fail("server never became ready"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn psql(&self, sql: &str) -> Output {
        Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.sock)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .expect("psql")
    }

    fn client(&self) -> Result<postgres::Client, String> {
        postgres::Config::new()
            .host_path(&self.sock)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(10))
            .connect(postgres::NoTls)
            .map_err(|e| self.fail(format!("connect: {e}")))
    }

    /// `SHOW pgipc.pid_of.<kind>` (the server reads it from the PGPROC array).
    fn pid_of(&self, kind: &str) -> Option<i32> {
        let o = self.psql(&format!("SHOW pgipc.pid_of.{kind}"));
        if !o.status.success() {
            return None;
        }
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|p: &i32| *p > 0)
    }

    /// Waits for a running child of `kind`; its pid.
    fn wait_pid_of(&self, kind: &str) -> Result<i32, String> {
        let mut pid = None;
        wait_for(
            &format!("a running {kind}"),
            Duration::from_secs(20),
            || {
                pid = self.pid_of(kind);
                pid.is_some()
            },
        )
        .map_err(|e| self.fail(e))?;
        pid.ok_or_else(|| self.fail(format!("no {kind}")))
    }

    fn restarts(&self) -> usize {
        self.log_text().matches(RESTARTED).count()
    }

    /// Stops the server with a fast shutdown; its exit status must be 0.
    fn stop(mut self) -> Result<(), String> {
        // SAFETY: kill on our own child.
        unsafe { libc::kill(self.pid(), libc::SIGINT) };
        let mut child = self.child.take().ok_or("no server")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(st)) if st.success() => return Ok(()),
                Ok(Some(st)) => return Err(self.fail(format!("server exited with {st}"))),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    self.child = Some(child);
                    return Err(self.fail("server did not stop within 30 s"));
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if c.try_wait().ok().flatten().is_none() {
                // SAFETY: kill on our own child (immediate shutdown, then make sure).
                unsafe { libc::kill(c.id() as i32, libc::SIGQUIT) };
                let deadline = Instant::now() + Duration::from_secs(10);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

// ---- the scenario ---------------------------------------------------------------------------

/// The postmaster's shared mappings (`/proc/<pid>/maps` lines with an `s` permission: the
/// main segment, the System V interlock).
fn shared_mappings(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|perms| perms.ends_with('s'))
        })
        .map(|l| l.split_whitespace().skip(5).collect::<Vec<_>>().join(" "))
        .collect()
}

/// A client error with the server's message and SQLSTATE when there is one.
fn pg_err(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// Registers and starts a dynamic worker, timing the call; checks it runs, terminates it.
fn dynamic_worker_starts(s: &Server, after: &str) -> Result<Duration, String> {
    let mut c = s.client()?;
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
    if pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(s.fail(format!("dynamic worker {after}: pid {pid} does not run")));
    }
    let st: String = c
        .query_one(&format!("SELECT pgipc_terminate_worker({h})"), &[])
        .map_err(|e| s.fail(format!("pgipc_terminate_worker {after}: {}", pg_err(&e))))?
        .get(0);
    if st != "stopped" {
        return Err(s.fail(format!("dynamic worker {after}: terminate said {st:?}")));
    }
    if took >= START_LIMIT {
        return Err(s.fail(format!(
            "dynamic worker {after}: registered and started in {took:?}, limit {START_LIMIT:?}"
        )));
    }
    Ok(took)
}

/// The victims, in order: (name, how `SHOW pgipc.pid_of.<kind>` calls it).
const VICTIMS: &[(&str, &str)] = &[
    ("client backend", "backend"),
    ("checkpointer", "checkpointer"),
    ("background writer", "bgwriter"),
    ("walwriter", "walwriter"),
    ("autovacuum launcher", "autovacuum_launcher"),
    ("io worker", "io_worker"),
    ("static background worker", "background_worker"),
    ("dynamic background worker", ""),
];

fn kill_each_child_kind(exec: bool) -> Result<(), Failed> {
    let mode = if exec { "exec" } else { "fork" };
    let mut extra = vec!["-c", "shared_preload_libraries=pgipc_demo"];
    if exec {
        extra.extend(["-c", "exec_backend=on"]);
    }
    let s = Server::start(mode, &extra)?;
    let took = dynamic_worker_starts(&s, "before any crash")?;
    println!("{mode}: before any crash: dynamic worker registered and started in {took:?}");
    let mut times = vec![took];
    // One generation of shared memory mapped in the postmaster; a restart swaps it, so the
    // count never grows (a view kept from an old generation would keep its segment mapped).
    let mapped = shared_mappings(s.pid());
    if mapped.is_empty() {
        return Err(s.fail("the postmaster maps no shared memory?").into());
    }
    for (n, (name, kind)) in VICTIMS.iter().enumerate() {
        // Sessions that must outlive the kill (the crash ends them) are kept until after it.
        let mut keep: Vec<postgres::Client> = Vec::new();
        let victim = match *kind {
            "backend" => {
                let mut c = s.client()?;
                let pid: i32 = c
                    .query_one("SELECT pg_backend_pid()", &[])
                    .map_err(|e| s.fail(format!("pg_backend_pid: {}", pg_err(&e))))?
                    .get(0);
                keep.push(c);
                pid
            }
            "" => {
                let mut c = s.client()?;
                let h: i32 = c
                    .query_one("SELECT pgipc_start_worker('pgipc_worker_sleep')", &[])
                    .map_err(|e| s.fail(format!("pgipc_start_worker: {}", pg_err(&e))))?
                    .get(0);
                let pid: i32 = c
                    .query_one(&format!("SELECT pgipc_worker_pid({h})"), &[])
                    .map_err(|e| s.fail(format!("pgipc_worker_pid: {}", pg_err(&e))))?
                    .get(0);
                keep.push(c);
                pid
            }
            kind => s.wait_pid_of(kind)?,
        };
        if victim <= 0 || victim == s.pid() {
            return Err(s.fail(format!("bad pid {victim} for the {name}")).into());
        }
        // SAFETY: kill on a child of our child.
        if unsafe { libc::kill(victim, libc::SIGKILL) } != 0 {
            return Err(s.fail(format!("kill -9 {victim} ({name}) failed")).into());
        }
        wait_for(
            &format!("restart #{} after kill -9 of the {name}", n + 1),
            Duration::from_secs(30),
            || s.restarts() > n,
        )
        .map_err(|e| s.fail(e))?;
        wait_for(
            "connections after the restart",
            Duration::from_secs(30),
            || s.psql("SELECT 1").status.success(),
        )
        .map_err(|e| s.fail(e))?;
        drop(keep);
        // The static worker survives every restart (it is re-published and started again).
        let stat = s.wait_pid_of("background_worker")?;
        let after = format!("after kill -9 of the {name} (pid {victim})");
        let took = dynamic_worker_starts(&s, &after)?;
        println!(
            "{mode}: {after}: static worker back as pid {stat}; dynamic worker registered and started in {took:?}"
        );
        times.push(took);
        let now = shared_mappings(s.pid());
        if now.len() != mapped.len() {
            return Err(s
                .fail(format!(
                    "{after}: the postmaster maps {now:?}, before any crash {mapped:?}"
                ))
                .into());
        }
    }
    let restarts = s.restarts();
    if restarts != VICTIMS.len() {
        return Err(s
            .fail(format!("{restarts} restarts for {} kills", VICTIMS.len()))
            .into());
    }
    let max = times.iter().max().copied().unwrap_or_default();
    println!(
        "{mode}: {} kills, {restarts} restarts; dynamic worker start slowest {max:?} (limit {START_LIMIT:?}); postmaster still maps {} shared regions",
        VICTIMS.len(),
        mapped.len()
    );
    s.stop()?;
    Ok(())
}

fn main() {
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("watchdog: crash_restart ran over {WATCHDOG:?}");
        std::process::exit(1);
    });
    let mut args = Arguments::from_args();
    // Servers are processes; one at a time keeps the timings honest on a small machine.
    args.test_threads = Some(1);
    let trials = [false, true]
        .into_iter()
        .map(|exec| {
            let mode = if exec { "exec" } else { "fork" };
            Trial::test(
                format!("{mode}: kill -9 of each child kind in turn, then a dynamic worker starts within 1 s"),
                move || kill_each_child_kind(exec),
            )
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
