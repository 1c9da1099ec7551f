//! The process-wide exit lists, exercised in child processes (this binary re-executed with a
//! role in `PGIPC_IPC_ROLE`), because `proc_exit` ends the process that calls it.
//!
//! `harness = false` with libtest-mimic on one test thread: every trial runs on the main thread
//! and `main` starts no threads, so the fork in the `fork` role (a re-executed child, which
//! never reaches the harness) is safe.

use libtest_mimic::{Arguments, Trial};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "PGIPC_IPC_ROLE";

fn say(what: &str, code: i32) {
    // Unbuffered: the process ends right after.
    println!("{what}({code})");
}

fn register_all() {
    pgipc_ipc::on_proc_exit(|c| say("proc1", c)).unwrap();
    pgipc_ipc::on_shmem_exit(|c| say("shmem1", c)).unwrap();
    pgipc_ipc::before_shmem_exit(|c| say("before1", c)).unwrap();
    pgipc_ipc::on_shmem_exit(|c| {
        say("shmem2", c);
        // Registering during exit: runs next, as the newest entry of its list.
        pgipc_ipc::on_shmem_exit(|c| say("late", c)).unwrap();
    })
    .unwrap();
    let cancelled = pgipc_ipc::before_shmem_exit(|c| say("cancelled", c)).unwrap();
    pgipc_ipc::cancel_before_shmem_exit(cancelled).unwrap();
}

fn child(role: &str) -> ! {
    match role {
        "proc_exit" => {
            register_all();
            pgipc_ipc::proc_exit(3)
        }
        "plain_exit" => {
            register_all();
            // Leaving through exit() without proc_exit: the atexit hook runs the lists with -1.
            std::process::exit(0)
        }
        "fork" => {
            register_all();
            // SAFETY: this process is single-threaded (harness = false, no threads started).
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                pgipc_ipc::on_exit_reset();
                pgipc_ipc::on_proc_exit(|c| say("child", c)).unwrap();
                pgipc_ipc::proc_exit(5);
            }
            let mut status = 0;
            // SAFETY: waiting for the child we just forked; `status` is a valid out pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            say("forked-child-exit", libc::WEXITSTATUS(status));
            pgipc_ipc::proc_exit(0)
        }
        "fork_without_reset" => {
            register_all();
            // SAFETY: single-threaded, as above.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                pgipc_ipc::proc_exit(5);
            }
            let mut status = 0;
            // SAFETY: as above.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            say("child-aborted", i32::from(libc::WIFSIGNALED(status)));
            // Leave without running anything ourselves.
            pgipc_ipc::on_exit_reset();
            pgipc_ipc::proc_exit(0)
        }
        other => panic!("unknown role {other}"),
    }
}

fn run(role: &str) -> (Option<i32>, String) {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Watchdog: a hung child fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if c.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("child {role} hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = c.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

fn check(role: &str, code: i32, expected: &[&str]) {
    let (got_code, out) = run(role);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, expected, "role {role}");
    assert_eq!(got_code, Some(code), "role {role}");
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
    }
    let mut args = Arguments::from_args();
    // One test thread: the trials run one after the other on the main thread.
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test("trials_run_on_the_main_thread", || {
            // SAFETY: getpid and gettid only read the caller's ids.
            let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
            assert_eq!(tid, pid, "a trial must run on the main thread");
            Ok(())
        }),
        Trial::test("proc_exit", || {
            check(
                "proc_exit",
                3,
                &[
                    "before1(3)",
                    "shmem2(3)",
                    "late(3)",
                    "shmem1(3)",
                    "proc1(3)",
                ],
            );
            Ok(())
        }),
        Trial::test("plain_exit", || {
            check(
                "plain_exit",
                0,
                &[
                    "before1(-1)",
                    "shmem2(-1)",
                    "late(-1)",
                    "shmem1(-1)",
                    "proc1(-1)",
                ],
            );
            Ok(())
        }),
        Trial::test("fork", || {
            check(
                "fork",
                0,
                &[
                    "child(5)",
                    "forked-child-exit(5)",
                    "before1(0)",
                    "shmem2(0)",
                    "late(0)",
                    "shmem1(0)",
                    "proc1(0)",
                ],
            );
            Ok(())
        }),
        Trial::test("fork_without_reset", || {
            check("fork_without_reset", 0, &["child-aborted(1)"]);
            Ok(())
        }),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
