//! Plumbing for the multi-process tests and benchmarks of `latch` and `waiteventset` (the
//! latter includes this file by path): a shared arena in a `pgipc_shmem` memfd segment handed
//! to re-executed copies of the current binary, a watchdog, CPU pinning and the runner: named
//! cases as libtest-mimic trials, on one test thread.
#![allow(dead_code, unreachable_pub)]

pub mod bench;

use pgipc_latch::Latch;
use pgipc_shmem::{Shared, Shmem, ShmemSafe};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which role a re-executed copy plays.
pub const ROLE_ENV: &str = "PGIPC_LATCH_TEST_ROLE";
/// The inherited memfd's descriptor number.
pub const FD_ENV: &str = "PGIPC_LATCH_TEST_FD";

/// What the processes share.
#[repr(C)]
pub struct Arena {
    pub latches: [Latch; 4],
    pub words: [AtomicU64; 16],
    pub slots: [AtomicU32; 4],
}

// SAFETY: #[repr(C)], latches and atomics only, all-zero is valid.
unsafe impl ShmemSafe for Arena {}

pub struct Kit {
    pub shmem: Shmem,
    pub arena: Shared<Arena>,
}

impl Kit {
    pub fn create() -> Kit {
        let shmem = Shmem::create_for_tests(1 << 20).expect("create segment");
        let (arena, _) = shmem
            .init_struct::<Arena>("latch test arena")
            .expect("arena");
        Kit { shmem, arena }
    }

    pub fn attach() -> Kit {
        let raw: i32 = std::env::var(FD_ENV).expect("fd env").parse().expect("fd");
        // SAFETY: inherited across exec for this purpose; nothing else in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let shmem = Shmem::attach_fd(fd).expect("attach segment");
        let (arena, _) = shmem
            .init_struct::<Arena>("latch test arena")
            .expect("arena");
        Kit { shmem, arena }
    }

    /// A re-executed copy of this binary in `role`, with the segment inherited.
    pub fn command(&self, role: &str, args: &[&str]) -> Command {
        let raw = self.shmem.memfd().expect("memfd-backed").as_raw_fd();
        let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
        cmd.args(args)
            .env(ROLE_ENV, role)
            .env(FD_ENV, raw.to_string());
        // SAFETY: only fcntl between fork and exec (async-signal-safe, no allocation).
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// Waits (up to 30 s) until a child raises `words[idx]`.
    pub fn wait_word(&self, idx: usize) -> Result<(), String> {
        let t = Instant::now();
        while self.arena.words[idx].load(Ordering::SeqCst) == 0 {
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!("child never raised word {idx}"));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    pub fn spawn(&self, role: &str, args: &[&str]) -> Proc {
        Proc(self.command(role, args).spawn().expect("spawn child"))
    }
}

/// A child process that is killed and reaped if the test gives up on it.
pub struct Proc(pub Child);

impl Proc {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Installs a SIGUSR1 handler that sets this process's latch (`set_my_latch`).
pub fn on_sigusr1_set_my_latch() {
    extern "C" fn on_usr1(_: libc::c_int) {
        pgipc_latch::set_my_latch();
    }
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(on_usr1),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only sets a latch, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &act) }.expect("sigaction");
}

/// Starts `role` (a child that owns `latches[2]`, installs it as its latch with
/// [`on_sigusr1_set_my_latch`], raises `words[3]` and waits), waits until it sleeps in `mode`,
/// sends it SIGUSR1 and requires it to wake up and exit 0 promptly.
pub fn signal_wakes_sleeper(role: &str, mode: pgipc_latch::SleepMode) -> Result<(), String> {
    let kit = Kit::create();
    let mut c = kit.spawn(role, &[]);
    kit.wait_word(3)?;
    let t = Instant::now();
    while kit.arena.latches[2].sleep_mode() != mode && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .map_err(|e| e.to_string())?;
    let t = Instant::now();
    expect_success(&mut c, Duration::from_secs(20))?;
    if t.elapsed() > Duration::from_secs(5) {
        return Err(format!("woke only after {:?}", t.elapsed()));
    }
    Ok(())
}

/// This process's role, if it is a re-executed child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// Waits for `child` for at most `limit`; on timeout kills it and reports a hang.
pub fn wait_child(child: &mut Proc, limit: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.0.try_wait().map_err(|e| e.to_string())? {
            return Ok(st);
        }
        if Instant::now() >= deadline {
            let _ = child.0.kill();
            let _ = child.0.wait();
            return Err(format!("watchdog: child {} hung for {limit:?}", child.id()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for the child and requires exit code 0.
pub fn expect_success(child: &mut Proc, limit: Duration) -> Result<(), String> {
    let st = wait_child(child, limit)?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("child {} failed: {st}", child.id()))
    }
}

/// Pins the calling process to the given CPUs.
pub fn pin(cpus: &[usize]) {
    let mut set = rustix::thread::CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// Number of online CPUs (not just those this process is pinned to).
pub fn ncpus() -> usize {
    // SAFETY: sysconf takes an integer name.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// A tiny deterministic random generator (xorshift) for delays.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Busy-waits about `ns` nanoseconds.
pub fn spin_ns(ns: u64) {
    let t = Instant::now();
    while (t.elapsed().as_nanos() as u64) < ns {
        std::hint::spin_loop();
    }
}

/// A named case: `Ok` passes; `Err` or a panic fails it, with the message.
pub type TestFn = fn() -> Result<(), String>;

/// Runs the cases as libtest-mimic trials (it takes libtest's arguments: filters, `--list`, …)
/// on one test thread, so each runs on the main thread, one after the other; the harness prints
/// every result and libtest's `test result:` line, counting what ran. Call it only after a
/// re-executed child has taken its role, so that a child never runs the harness.
pub fn run_tests(tests: &[(&str, TestFn)]) -> std::process::ExitCode {
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads = Some(1);
    let trials = tests
        .iter()
        .map(|&(name, f)| libtest_mimic::Trial::test(name, move || f().map_err(Into::into)))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
