//! Stress test of postmaster death under latch-only waits (issue 11): a small "postmaster"
//! starts children that arm the parent-death signal and sit in `wait_latch` (latch +
//! `EXIT_ON_PM_DEATH`, a 60 s timeout, on "my latch": the futex fast path). The test kills the
//! postmaster with SIGKILL at chosen and random moments, many of them right as the children
//! enter the wait, and requires every child to be gone within 1 s, 200 times.
//!
//! `harness = false` (libtest-mimic, one test thread): the test runs on the main thread of a
//! process with no other threads; postmasters and children are re-executed copies of this
//! binary. As child subreaper the test inherits the orphaned children and reaps them itself,
//! which is how it times their exit. Every wait has a deadline.

use libtest_mimic::{Arguments, Failed, Trial};
use pgipc_latch::{install_my_latch, Latch, OwnedLatch};
use pgipc_waiteventset::{
    initialize_wait_event_support, postmaster_death, wait_latch, PostmasterDeathPipe,
    PostmasterDeathWatch, WaitEvents,
};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROLE_ENV: &str = "PGIPC_PMDEATH_STRESS_ROLE";
const ROUNDS: usize = 200;
const CHILDREN: usize = 3;
/// How long a child may take to exit after the postmaster's SIGKILL.
const EXIT_LIMIT: Duration = Duration::from_secs(1);
/// What a child's wait would sleep if nothing woke it (and how long a postmaster lives unkilled).
const LONG_WAIT: Duration = Duration::from_secs(60);
/// Exit code of a child whose wait ran out: it slept through the death.
const SLEPT_THROUGH: i32 = 20;

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        std::process::exit(match role.as_str() {
            "postmaster" => postmaster(),
            "child" => child(),
            _ => 100,
        });
    }
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![Trial::test(
        "postmaster_killed_200_times_latch_only_waiters_exit_within_1s",
        || stress().map_err(Failed::from),
    )];
    libtest_mimic::run(&args, trials).exit();
}

/// The "postmaster": creates the death pipe, starts the children, reports their pids, waits
/// to be killed.
fn postmaster() -> i32 {
    let Ok(pipe) = PostmasterDeathPipe::create() else {
        return 101;
    };
    let Ok(exe) = std::env::current_exe() else {
        return 102;
    };
    for _ in 0..CHILDREN {
        let mut cmd = Command::new(&exe);
        cmd.env(ROLE_ENV, "child");
        pipe.configure_child(&mut cmd);
        match cmd.spawn() {
            Ok(c) => {
                println!("spawned {}", c.id());
                let _ = std::io::stdout().flush();
            }
            Err(_) => return 103,
        }
    }
    std::thread::sleep(LONG_WAIT);
    0
}

/// A child: what an auxiliary process's main loop does, reduced to the wait.
fn child() -> i32 {
    if initialize_wait_event_support().is_err() {
        return 110;
    }
    let watch = match PostmasterDeathWatch::from_env() {
        Ok(Some(w)) => w,
        _ => return 111,
    };
    if watch.install().is_err() {
        return 112;
    }
    let latch: &'static OwnedLatch<Box<Latch>> = Box::leak(Box::new(OwnedLatch::new_local()));
    install_my_latch(latch.latch());
    println!(
        "waiting {} {}",
        std::process::id(),
        postmaster_death::death_signal_armed()
    );
    let _ = std::io::stdout().flush();
    let deadline = Instant::now() + LONG_WAIT;
    loop {
        latch.reset();
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_latch(
            Some(latch),
            WaitEvents::LATCH_SET | WaitEvents::EXIT_ON_PM_DEATH,
            Some(left),
            0,
        ) {
            // EXIT_ON_PM_DEATH exits inside the wait (code 1); coming back means no death seen.
            Ok(ev) if ev.contains(WaitEvents::TIMEOUT) => return SLEPT_THROUGH,
            Ok(_) => {}
            Err(_) => return 113,
        }
    }
}

/// When, in a round, the postmaster is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// As soon as the first child says it is entering its wait (the others still starting).
    FirstEntering,
    /// As soon as the last child says it is entering its wait.
    AllEntering,
    /// A random 0-3 ms after the last child said so (inside `wait_latch`, or asleep).
    JustAfterEntering(u64),
    /// A random 0-20 ms after the postmaster was started (anywhere: forking, exec, arming).
    Random(u64),
}

struct Round {
    children_reaped: usize,
    armed: usize,
    last_exit: Duration,
}

fn stress() -> Result<(), String> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err("prctl(PR_SET_CHILD_SUBREAPER) failed".into());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut max, mut total_children, mut total_armed) = (Duration::ZERO, 0, 0);
    let mut failures = Vec::new();
    // A shorter run for debugging; the test's figure is for the full ROUNDS.
    let rounds = std::env::var("PGIPC_PMDEATH_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    for r in 0..rounds {
        let at = match r % 4 {
            0 => KillAt::FirstEntering,
            1 => KillAt::AllEntering,
            2 => KillAt::JustAfterEntering(next() % 3_000),
            _ => KillAt::Random(next() % 20_000),
        };
        match round(&exe, at) {
            Ok(x) => {
                max = max.max(x.last_exit);
                total_children += x.children_reaped;
                total_armed += x.armed;
            }
            Err(e) => failures.push(format!("round {r} ({at:?}): {e}")),
        }
    }
    println!(
        "pmdeath stress: {rounds} postmaster kills, {total_children} children reaped \
         ({total_armed} reported the parent-death signal armed), max exit latency {max:.2?}"
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {rounds} rounds failed:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}

fn round(exe: &std::path::Path, at: KillAt) -> Result<Round, String> {
    let mut pm = Command::new(exe)
        .env(ROLE_ENV, "postmaster")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn postmaster: {e}"))?;
    let pm_pid = pm.id() as i32;
    let started = Instant::now();
    let out = pm.stdout.take().ok_or("no stdout")?;
    let fd = out.as_raw_fd();
    let mut lines = BufReader::new(out);
    let (mut waiting, mut armed) = (0, 0);
    let ready_by = Instant::now() + Duration::from_secs(30);
    let target = match at {
        KillAt::FirstEntering => 1,
        KillAt::AllEntering | KillAt::JustAfterEntering(_) => CHILDREN,
        KillAt::Random(_) => 0,
    };
    while waiting < target {
        // Lines already in the reader's buffer are not visible to poll.
        if lines.buffer().is_empty() && !readable(fd, ready_by) {
            let tree = describe_tree(pm_pid);
            kill_all(pm_pid);
            reap_all(Instant::now() + Duration::from_secs(10));
            return Err(format!(
                "only {waiting} children entered their wait in 30 s; processes: {tree}"
            ));
        }
        let mut line = String::new();
        if lines.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            kill_all(pm_pid);
            reap_all(Instant::now() + Duration::from_secs(10));
            return Err("the postmaster's output ended early".into());
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"waiting") {
            waiting += 1;
            armed += usize::from(f.get(2) == Some(&"true"));
        }
    }
    match at {
        KillAt::JustAfterEntering(us) => spin(Duration::from_micros(us)),
        KillAt::Random(us) => {
            let until = started + Duration::from_micros(us);
            spin(until.saturating_duration_since(Instant::now()));
        }
        _ => {}
    }
    // SAFETY: kill takes plain integers; the pid is our unreaped child's.
    unsafe { libc::kill(pm_pid, libc::SIGKILL) };
    let killed = Instant::now();
    // Reap everything: the postmaster, then its orphaned children (re-parented to us).
    let mut children_reaped = 0;
    let mut last_exit = Duration::ZERO;
    let mut problems = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid < 0 {
            break; // ECHILD: nobody left
        }
        if pid == 0 {
            if killed.elapsed() > EXIT_LIMIT {
                let left = kill_all(pm_pid);
                problems.push(format!(
                    "{left} children still there {:.2?} after the postmaster's SIGKILL",
                    killed.elapsed()
                ));
                reap_all(Instant::now() + Duration::from_secs(10));
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        if pid == pm_pid {
            continue;
        }
        last_exit = killed.elapsed();
        children_reaped += 1;
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        if code != 1 {
            problems.push(format!(
                "child {pid} ended with status {status:#x}, not exit code 1"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    if target > 0 && children_reaped < target {
        return Err(format!(
            "reaped {children_reaped} children, {target} had started"
        ));
    }
    Ok(Round {
        children_reaped,
        armed,
        last_exit,
    })
}

/// Whether `fd` becomes readable before `deadline`.
fn readable(fd: i32, deadline: Instant) -> bool {
    let ms = deadline
        .saturating_duration_since(Instant::now())
        .as_millis()
        .min(i32::MAX as u128) as i32;
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on the stack.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// `pid state wchan` of the postmaster and of every process whose parent is it or us.
fn describe_tree(pm_pid: i32) -> String {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for (pid, ppid) in processes() {
        if pid == pm_pid || ppid == pm_pid || (ppid == me && pid != me) {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .and_then(|x| x.1.split_whitespace().next().map(str::to_owned))
                .unwrap_or_default();
            let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            out.push(format!("{pid}(parent {ppid}) {state} {wchan}"));
        }
    }
    out.join(", ")
}

/// (pid, parent pid) of every process.
fn processes() -> Vec<(i32, i32)> {
    let mut v = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the ")" that closes the command name: state, ppid, ...
            let rest = stat.rsplit_once(')').map_or("", |x| x.1);
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                v.push((pid, ppid));
            }
        }
    }
    v
}

/// SIGKILLs the postmaster and every process whose parent is this one (our orphans); returns
/// how many orphans there were.
fn kill_all(pm_pid: i32) -> usize {
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(pm_pid, libc::SIGKILL) };
    let me = std::process::id() as i32;
    let mut n = 0;
    for (pid, ppid) in processes() {
        if ppid == me && pid != pm_pid {
            n += 1;
            // SAFETY: kill takes plain integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    n
}

fn reap_all(deadline: Instant) {
    while Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid < 0 {
            return;
        }
        if pid == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
