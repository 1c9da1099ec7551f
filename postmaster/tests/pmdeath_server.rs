//! Postmaster death against the real server (issue 11): backends in `pg_sleep`, the auxiliary
//! processes in their latch-only main-loop waits (their delays set to 10 s and more, so a
//! death slept through would show) and two background workers (a static one and a dynamic
//! one, in `wait_latch`); SIGKILL of the postmaster; every child must be gone within 1 s, and
//! the next start on the same data directory must succeed. Fork and exec mode, a few rounds
//! each, all but the first killed in the middle of a connection storm (the postmaster forking);
//! the measured latencies are printed.
//!
//! `harness = false` (libtest-mimic, one test thread: the scenarios run on the main thread).
//! The test makes itself child subreaper, so the killed postmaster's children are re-parented
//! to it: it reaps them and times their exit itself. Every wait has a deadline.

use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postmaster");
const ROUNDS: usize = 3;
const SLEEPERS: usize = 3;
const EXIT_LIMIT: Duration = Duration::from_secs(1);
/// Connections opened right before the kill in rounds after the first.
const STORM: usize = 8;

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let mut trials = Vec::new();
    if which("psql").is_some() {
        for exec in [false, true] {
            let name = format!(
                "postmaster_sigkill_{}_children_gone_within_1s_next_start_works",
                if exec { "exec" } else { "fork" }
            );
            trials.push(Trial::test(name, move || {
                scenario(exec).map_err(Failed::from)
            }));
        }
    } else {
        // psql is what the backends are driven with; CI installs it.
        trials.push(Trial::test("psql_is_installed", || {
            Err(Failed::from("psql is required (CI installs it)"))
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

struct Server {
    child: Option<Child>,
    dir: PathBuf,
    sock: PathBuf,
    port: u16,
    log: PathBuf,
    extra: Vec<String>,
    sleepers: Vec<Child>,
}

impl Server {
    fn new(name: &str, exec: bool) -> Result<Server, String> {
        let base = std::env::temp_dir().join(format!("pgipc-pmd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let sock = base.join("sock");
        std::fs::create_dir_all(&sock).map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut extra: Vec<String> = [
            "shared_preload_libraries=pgipc_demo",
            "bgwriter_delay=10000",
            "wal_writer_delay=10000",
            "autovacuum_naptime=600",
            "checkpoint_timeout=3600",
        ]
        .iter()
        .flat_map(|s| ["-c".to_string(), s.to_string()])
        .collect();
        if exec {
            extra.extend(["-c".into(), "exec_backend=on".into()]);
        }
        Ok(Server {
            child: None,
            dir: base.join("data"),
            sock,
            port,
            log: base.join("server.log"),
            extra,
            sleepers: Vec::new(),
        })
    }

    fn start(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| e.to_string())?;
        let child = Command::new(BIN)
            .args(["-D", self.dir.to_str().ok_or("path")?])
            .args(["-p", &self.port.to_string()])
            .args(["-k", self.sock.to_str().ok_or("path")?])
            .args(["-c", "listen_addresses="])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn postmaster: {e}"))?;
        let me = child.id().to_string();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let l: Vec<String> = std::fs::read_to_string(self.dir.join("postmaster.pid"))
                .map(|t| t.lines().map(str::to_owned).collect())
                .unwrap_or_default();
            if l.first() == Some(&me) && l.get(7).map(String::as_str) == Some("ready   ") {
                return Ok(());
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "server exited ({st}) before ready:\n{}",
                    self.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("server never became ready:\n{}", self.log_text()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn psql_cmd(&self, sql: &str) -> Command {
        let mut c = Command::new("psql");
        c.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
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
            .stdin(Stdio::null());
        c
    }

    fn psql(&self, sql: &str) -> Result<String, String> {
        let o = self
            .psql_cmd(sql)
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "psql {sql:?}: {}\nserver log:\n{}",
                String::from_utf8_lossy(&o.stderr),
                self.log_text()
            ));
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    }

    fn pid_of(&self, kind: &str) -> Result<i32, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p: i32 = self
                .psql(&format!("SHOW pgipc.pid_of.{kind}"))?
                .parse()
                .unwrap_or(0);
            if p > 0 {
                return Ok(p);
            }
            if Instant::now() > deadline {
                return Err(format!("no {kind} after 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) -> Result<(), String> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill on our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = c.try_wait().map_err(|e| e.to_string())? {
                return if st.success() {
                    Ok(())
                } else {
                    Err(format!("server stopped with {st}"))
                };
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return Err("server did not stop in 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    /// A failing scenario must not leave a server, its children or a client running.
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for s in &mut self.sleepers {
            let _ = s.kill();
            let _ = s.wait();
        }
        for (pid, ppid) in processes() {
            if ppid == std::process::id() as i32 && is_server_process(pid) {
                // SAFETY: kill on an orphan re-parented to us.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        reap_until(Instant::now() + Duration::from_secs(5), |_, _| false);
        if !std::thread::panicking() {
            if let Some(base) = self.dir.parent() {
                let _ = std::fs::remove_dir_all(base);
            }
        }
    }
}

fn scenario(exec: bool) -> Result<(), String> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err("prctl(PR_SET_CHILD_SUBREAPER) failed".into());
    }
    let mode = if exec { "exec" } else { "fork" };
    let mut s = Server::new(mode, exec)?;
    let mut latencies = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(std::process::id());
    for round in 0..ROUNDS {
        s.start()?;
        let pm = s.pid();
        // The kinds that must be there, by pid, before the kill.
        let mut named = Vec::new();
        for kind in [
            "checkpointer",
            "bgwriter",
            "walwriter",
            "autovacuum_launcher",
            "io_worker",
            "background_worker",
        ] {
            named.push((kind, s.pid_of(kind)?));
        }
        // The handle is the session's (0: its first); the worker outlives the session.
        let out =
            s.psql("SELECT pgipc_start_worker('pgipc_worker_sleep'); SELECT pgipc_worker_pid(0)")?;
        let dynamic: i32 = out
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .ok_or(format!("dynamic worker pid from {out:?}"))?;
        if dynamic <= 0 {
            return Err(format!("dynamic worker pid {dynamic}"));
        }
        named.push(("dynamic background_worker", dynamic));
        let before = server_children(pm);
        for _ in 0..SLEEPERS {
            let c = s
                .psql_cmd("SELECT pg_sleep(60)")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("psql: {e}"))?;
            s.sleepers.push(c);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let children = loop {
            let now = server_children(pm);
            if now.difference(&before).count() >= SLEEPERS {
                break now;
            }
            if Instant::now() > deadline {
                return Err(format!("{SLEEPERS} sleeping backends never appeared"));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for (kind, pid) in &named {
            if !children.contains(pid) {
                return Err(format!(
                    "the {kind} ({pid}) is not a child of the postmaster"
                ));
            }
        }
        // Let the backends get into pg_sleep and everyone into its wait: 100-400 ms.
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        std::thread::sleep(Duration::from_millis(100 + next() % 300));
        if round > 0 {
            // Kill it while it forks: a connection storm, then 50-250 ms. A child between fork
            // and exec (or before it closes the write end) still holds the death pipe open.
            for _ in 0..STORM {
                if let Ok(c) = s
                    .psql_cmd("SELECT pg_sleep(1)")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                {
                    s.sleepers.push(c);
                }
            }
            std::thread::sleep(Duration::from_micros(50_000 + next() % 200_000));
        }
        // Everyone the postmaster has at the moment of the kill (a child it is forking right
        // now is not seen here; it is reaped all the same).
        let mut children = children;
        children.extend(server_children(pm));
        // SAFETY: kill on our own child.
        unsafe { libc::kill(pm, libc::SIGKILL) };
        let killed = Instant::now();
        if let Some(mut c) = s.child.take() {
            let _ = c.wait();
        }
        let mut left: BTreeSet<i32> = children.clone();
        let mut last = Duration::ZERO;
        let mut bad_exit = Vec::new();
        reap_until(killed + EXIT_LIMIT, |pid, status| {
            if left.remove(&pid) {
                last = killed.elapsed();
                // Server processes leave with exit code 1 (or 0); anything else is a crash.
                if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) <= 1) {
                    bad_exit.push(format!("{pid}: status {status:#x}"));
                }
            }
            left.is_empty()
        });
        if !left.is_empty() {
            let what: Vec<String> = left.iter().map(|p| describe(*p)).collect();
            return Err(format!(
                "round {round}: {} of {} children still there {:.2?} after SIGKILL of the \
                 postmaster: {what:?}",
                left.len(),
                children.len(),
                killed.elapsed()
            ));
        }
        if !bad_exit.is_empty() {
            return Err(format!("round {round}: children crashed: {bad_exit:?}"));
        }
        latencies.push((children.len(), last));
        for mut c in s.sleepers.drain(..) {
            let _ = c.wait();
        }
        // The next postmaster must start on the same data directory (no child of the dead
        // one keeps the old segment attached), and serve.
        s.start()?;
        if s.psql("SELECT 1")? != "1" {
            return Err("SELECT 1 after the restart".into());
        }
        s.stop()?;
    }
    let max = latencies.iter().map(|x| x.1).max().unwrap_or_default();
    println!(
        "{mode}: {ROUNDS} postmaster SIGKILLs, children per round {:?}, all gone after {:?} \
         (max {max:.2?}); each next start served",
        latencies.iter().map(|x| x.0).collect::<Vec<_>>(),
        latencies.iter().map(|x| x.1).collect::<Vec<_>>(),
    );
    Ok(())
}

/// Live (non-zombie) children of `pm`.
fn server_children(pm: i32) -> BTreeSet<i32> {
    processes()
        .into_iter()
        .filter(|&(pid, ppid)| ppid == pm && !is_zombie(pid))
        .map(|x| x.0)
        .collect()
}

/// Reaps our children (with `waitpid(-1)`) until `done` says so or `deadline` passes.
fn reap_until(deadline: Instant, mut done: impl FnMut(i32, i32) -> bool) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            if done(pid, status) {
                return;
            }
            continue;
        }
        if pid < 0 || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// (pid, parent pid) of every process.
fn processes() -> Vec<(i32, i32)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some(ppid) = stat_field(pid, 1).and_then(|p| p.parse().ok()) {
            v.push((pid, ppid));
        }
    }
    v
}

/// Field `i` after the parenthesised command name of /proc/<pid>/stat (0: state, 1: ppid).
fn stat_field(pid: i32, i: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(i).map(str::to_owned)
}

fn is_zombie(pid: i32) -> bool {
    stat_field(pid, 0).as_deref() == Some("Z")
}

fn is_server_process(pid: i32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|p| p == Path::new(BIN) || p.ends_with("postmaster"))
}

fn describe(pid: i32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    format!(
        "{pid} {} {} [{}]",
        stat_field(pid, 0).unwrap_or_default(),
        wchan,
        cmd.trim()
    )
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|f| f.exists())
    })
}
