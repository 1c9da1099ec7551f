//! A backend and a postmaster in separate processes over one segment: the backend registers a
//! worker and sleeps on its latch; the postmaster's SIGUSR1 to `bgw_notify_pid` wakes it as
//! soon as the slot says "started", then "stopped" (well before the waits' 1 s safety re-check
//! could have noticed); and a postmaster that dies ends the backend's wait with
//! `PostmasterDied` instead of leaving it asleep.
//!
//! libtest-mimic on one test thread: each trial runs on the main thread, and re-executed
//! copies of this binary take the other roles (chosen by `PGIPC_BGW_ROLE` before the harness
//! parses anything). Every wait has a deadline and a watchdog ends the binary if a trial hangs.

use libtest_mimic::{Arguments, Failed, Trial};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;
use pgipc_bgworker::{shmem_init, BgWorkerShared, BgWorkerSpec, BgwHandleStatus, RestartPolicy};
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_pmsignal::PMSignal;
use pgipc_shmem::{Shmem, ShmemSafe};
use pgipc_waiteventset::postmaster_death::{PostmasterDeathPipe, PostmasterDeathWatch};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SLOTS: u32 = 2;
const CHILD_SLOTS: usize = 4;
const ROLE: &str = "PGIPC_BGW_ROLE";
const FD: &str = "PGIPC_SHMEM_FD";
/// How long the postmaster waits before it answers, so that the backend is asleep by then.
const ANSWER_DELAY: Duration = Duration::from_millis(300);
/// A wake-up by the signal must come this soon after the answer (the waits' safety re-check
/// runs only after 1 s of sleep).
const WAKE_LIMIT: Duration = Duration::from_millis(900);
/// Every poll loop gives up after this long.
const DEADLINE: Duration = Duration::from_secs(30);

/// Test-only results the backend of the death trial leaves (its parent is gone by then).
#[repr(C)]
struct Results {
    /// 0: not yet; 1: `PostmasterDied`; 2: anything else.
    death: AtomicU32,
    /// Milliseconds the wait took.
    death_ms: AtomicI64,
}
// SAFETY: repr(C), atomics only, zero is valid.
unsafe impl ShmemSafe for Results {}

fn attach() -> (Shmem, BgWorkerShared, PMSignal) {
    let fd: i32 = std::env::var(FD).expect(FD).parse().expect("fd");
    // SAFETY: the parent handed us this inherited descriptor; nothing else owns it here.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach");
    let sh = shmem_init(&shm, SLOTS).expect("bgworker attach");
    let pms = pgipc_pmsignal::shmem_init(&shm, CHILD_SLOTS).expect("pmsignal attach");
    (shm, sh, pms)
}

extern "C" fn on_sigusr1(_sig: i32) {
    pgipc_latch::set_my_latch();
}

/// What a backend has: a latch of its own, installed as "my latch", that SIGUSR1 sets.
fn backend_latch() -> &'static OwnedLatch<&'static Latch> {
    let latch: &'static Latch = Box::leak(Box::new(Latch::new()));
    let owned = Box::leak(Box::new(OwnedLatch::own(latch).expect("own latch")));
    pgipc_latch::install_my_latch(latch);
    let act = SigAction::new(
        SigHandler::Handler(on_sigusr1),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only sets the latch, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &act) }.expect("sigaction");
    owned
}

fn spec() -> BgWorkerSpec {
    let mut s = BgWorkerSpec::new("multiprocess", "some_function");
    s.restart = RestartPolicy::Never;
    s.notify_pid = std::process::id() as i32;
    s
}

/// Backend of the first trial: register, wait for start-up, terminate, wait for shutdown.
fn backend_start_stop() -> Result<(), String> {
    let (_shm, sh, pms) = attach();
    let latch = backend_latch();
    let h = sh
        .register_dynamic(&spec(), 8, &pms)
        .map_err(|e| e.to_string())?
        .ok_or("no free slot")?;
    let mut no = || false;
    let t = Instant::now();
    let st = sh
        .wait_for_startup(h, latch, DEADLINE, &mut no)
        .map_err(|e| e.to_string())?;
    let took = t.elapsed();
    if st != BgwHandleStatus::Started(4242) || took < ANSWER_DELAY || took >= WAKE_LIMIT {
        return Err(format!("start-up wait: {st:?} after {took:?}"));
    }
    sh.terminate(h, &pms);
    let t = Instant::now();
    let st = sh
        .wait_for_shutdown(h, latch, DEADLINE, &mut no)
        .map_err(|e| e.to_string())?;
    let took = t.elapsed();
    if st != BgwHandleStatus::Stopped || took < ANSWER_DELAY || took >= WAKE_LIMIT {
        return Err(format!("shutdown wait: {st:?} after {took:?}"));
    }
    eprintln!("backend: woken {took:?} after asking (answer delayed {ANSWER_DELAY:?})");
    Ok(())
}

/// Backend of the death trial: a child of the "postmaster" (watching its death pipe), waits
/// for a worker that never starts.
fn backend_pm_dies() -> Result<(), String> {
    let watch = PostmasterDeathWatch::from_env()
        .map_err(|e| e.to_string())?
        .ok_or("no death pipe")?;
    watch.install().map_err(|_| "watch installed twice")?;
    let (shm, sh, pms) = attach();
    let (results, _) = shm
        .init_struct::<Results>("test results")
        .map_err(|e| e.to_string())?;
    let latch = backend_latch();
    let h = sh
        .register_dynamic(&spec(), 8, &pms)
        .map_err(|e| e.to_string())?
        .ok_or("no free slot")?;
    let t = Instant::now();
    let st = sh.wait_for_startup(h, latch, DEADLINE, &mut || false);
    results
        .death_ms
        .store(t.elapsed().as_millis() as i64, Ordering::Relaxed);
    let code = if st == Ok(BgwHandleStatus::PostmasterDied) {
        1
    } else {
        eprintln!("backend: the wait returned {st:?}");
        2
    };
    results.death.store(code, Ordering::Release);
    Ok(())
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        if Instant::now() >= end {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// "Postmaster" of the death trial: starts the backend with a death pipe, waits for its
/// registration, then exits without starting the worker.
fn postmaster_that_dies() -> Result<(), String> {
    let (_shm, sh, pms) = attach();
    pms.set_postmaster_pid(std::process::id() as i32);
    let pipe = PostmasterDeathPipe::create().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    cmd.env(ROLE, "backend-pm-dies");
    pipe.configure_child(&mut cmd);
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    wait_until("the registration", || sh.in_use(0))?;
    // The backend is about to sleep (or sleeps already); die under it. Its wait must end.
    std::thread::sleep(ANSWER_DELAY);
    drop(child);
    std::process::exit(0);
}

/// A segment with the array, PMSignal and the test struct, and its memfd for children.
fn segment() -> Result<(Shmem, BgWorkerShared, PMSignal, i32), String> {
    let shm = Shmem::create_for_tests(1 << 20).map_err(|e| e.to_string())?;
    let sh = shmem_init(&shm, SLOTS).map_err(|e| e.to_string())?;
    let pms = pgipc_pmsignal::shmem_init(&shm, CHILD_SLOTS).map_err(|e| e.to_string())?;
    shm.init_struct::<Results>("test results")
        .map_err(|e| e.to_string())?;
    let fd = shm.memfd().ok_or("no memfd")?.as_raw_fd();
    Ok((shm, sh, pms, fd))
}

fn spawn(role: &str, fd: i32) -> Result<std::process::Child, String> {
    let fd_copy = fd;
    let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    cmd.env(ROLE, role).env(FD, fd.to_string());
    // SAFETY: fcntl only, async-signal-safe, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            let flags = libc::fcntl(fd_copy, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd_copy, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| e.to_string())
}

/// The postmaster's side of the first trial, on this process's main thread.
fn signal_wakes_the_waits() -> Result<(), Failed> {
    let (_shm, sh, pms, fd) = segment()?;
    pms.set_postmaster_pid(std::process::id() as i32);
    let mut child = spawn("backend-start-stop", fd)?;
    let backend = Pid::from_raw(child.id() as i32);
    let mut run = || -> Result<(), String> {
        wait_until("the registration", || sh.in_use(0))?;
        let notify = sh.read_spec(0).map(|s| s.notify_pid);
        if notify != Some(backend.as_raw()) {
            return Err(format!("notify pid {notify:?}, backend {backend}"));
        }
        std::thread::sleep(ANSWER_DELAY);
        sh.postmaster_set_started(0, 4242);
        kill(backend, Signal::SIGUSR1).map_err(|e| e.to_string())?;
        wait_until("the terminate request", || {
            sh.postmaster_terminate_requested(0)
        })?;
        std::thread::sleep(ANSWER_DELAY);
        sh.postmaster_set_not_running(0, true);
        sh.postmaster_free_slot(0);
        kill(backend, Signal::SIGUSR1).map_err(|e| e.to_string())?;
        wait_until("the backend's exit", || {
            child.try_wait().ok().flatten().is_some()
        })?;
        match child.wait().map_err(|e| e.to_string())?.code() {
            Some(0) => Ok(()),
            c => Err(format!("backend exited with {c:?}")),
        }
    };
    let r = run();
    let _ = child.kill();
    let _ = child.wait();
    Ok(r?)
}

/// The death trial: this process only watches the results the orphaned backend leaves.
fn postmaster_death_ends_the_wait() -> Result<(), Failed> {
    let (shm, _sh, _pms, fd) = segment()?;
    let (results, _) = shm
        .init_struct::<Results>("test results")
        .map_err(|e| e.to_string())?;
    let mut pm = spawn("postmaster-that-dies", fd)?;
    let r = wait_until("the backend's result", || {
        results.death.load(Ordering::Acquire) != 0
    });
    let _ = pm.kill();
    let _ = pm.wait();
    r?;
    let ms = results.death_ms.load(Ordering::Relaxed);
    eprintln!(
        "postmaster death: the backend's wait ended after {ms} ms (death at ~{ANSWER_DELAY:?})"
    );
    // Woken by the death itself, not by the waits' 1 s safety re-check.
    match results.death.load(Ordering::Acquire) {
        1 if ms < WAKE_LIMIT.as_millis() as i64 => Ok(()),
        c => Err(format!("the wait ended with code {c} after {ms} ms").into()),
    }
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        // The registration's SIGUSR1 to a "postmaster" must not kill it.
        // SAFETY: SIG_IGN installs no code.
        let _ = unsafe { nix::sys::signal::signal(Signal::SIGUSR1, SigHandler::SigIgn) };
        let r = match role.as_str() {
            "backend-start-stop" => backend_start_stop(),
            "backend-pm-dies" => backend_pm_dies(),
            "postmaster-that-dies" => postmaster_that_dies(),
            other => Err(format!("unknown role {other}")),
        };
        return match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{role}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        eprintln!("multiprocess: watchdog: trials took over 120 s");
        std::process::exit(101);
    });
    // SAFETY: as above; this process plays the postmaster, which registrations signal.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGUSR1, SigHandler::SigIgn) };
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test(
            "the postmaster's SIGUSR1 wakes the start-up and shutdown waits at once",
            signal_wakes_the_waits,
        ),
        Trial::test(
            "postmaster death ends a start-up wait with PostmasterDied",
            postmaster_death_ends_the_wait,
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
