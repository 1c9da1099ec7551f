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

mod common;

use common::server::{scratch, server_exe, which, Builder, TestServer};
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const SLEEPERS: usize = 3;
const EXIT_LIMIT: Duration = Duration::from_secs(1);
/// Connections opened right before the kill in rounds after the first.
const STORM: usize = 8;

fn main() -> std::process::ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
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

/// The server of a scenario (not started): Unix socket only, the auxiliary processes' delays
/// long, the demo worker preloaded.
fn server(name: &str, exec: bool) -> TestServer {
    let mut b = Builder::in_dir(scratch("pgipc-pmd", name));
    for setting in [
        "shared_preload_libraries=pgipc_demo",
        "bgwriter_delay=10000",
        "wal_writer_delay=10000",
        "autovacuum_naptime=600",
        "checkpoint_timeout=3600",
    ] {
        b = b.set(setting);
    }
    b.exec(exec).build()
}

/// The pid of the child of `kind`, waiting up to 10 s for one; a psql failure is an error.
fn pid_of(s: &TestServer, kind: &str) -> Result<i32, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = s.show_pid_of(kind)?;
        if p > 0 {
            return Ok(p);
        }
        if Instant::now() > deadline {
            return Err(format!("no {kind} after 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The psql clients of a scenario, and whatever server process was re-parented to us: killed
/// and reaped if a scenario fails (declared before the server, so dropped after it).
struct Leftovers(Vec<Child>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for s in &mut self.0 {
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
    }
}

fn scenario(exec: bool) -> Result<(), String> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err("prctl(PR_SET_CHILD_SUBREAPER) failed".into());
    }
    let mode = if exec { "exec" } else { "fork" };
    let mut sleepers = Leftovers(Vec::new());
    let mut s = server(mode, exec);
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
            named.push((kind, pid_of(&s, kind)?));
        }
        // The handle is the session's (0: its first); the worker outlives the session.
        let out = s.psql_ok(
            "SELECT pgipc_start_worker('pgipc_worker_sleep'); SELECT pgipc_worker_pid(0)",
        )?;
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
            sleepers.0.push(c);
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
                    sleepers.0.push(c);
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
        if let Some(mut c) = s.take_child() {
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
        for mut c in sleepers.0.drain(..) {
            let _ = c.wait();
        }
        // The next postmaster must start on the same data directory (no child of the dead
        // one keeps the old segment attached), and serve.
        s.start()?;
        if s.psql_ok("SELECT 1")? != "1" {
            return Err("SELECT 1 after the restart".into());
        }
        s.stop_ok()?;
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
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == server_exe())
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
