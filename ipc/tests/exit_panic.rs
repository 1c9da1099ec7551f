//! A panicking exit callback makes the process exit as crashed (SIGABRT after a `PANIC:` line),
//! never with the clean code it asked for, through each way of leaving: `proc_exit`,
//! `shmem_exit` and plain `exit()`. Each case re-executes this binary with a role in
//! `PGIPC_IPC_PANIC_ROLE` and judges the child's wait status in the parent.
//!
//! `harness = false` with libtest-mimic on one thread; every child has a 30 s watchdog.

use libtest_mimic::{Arguments, Failed, Trial};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "PGIPC_IPC_PANIC_ROLE";

fn register() {
    // Older than the panicking one: it would run next if the panic were swallowed.
    pgipc_ipc::on_shmem_exit(|c| println!("older({c})")).unwrap();
    pgipc_ipc::on_proc_exit(|c| println!("proc({c})")).unwrap();
    pgipc_ipc::on_shmem_exit(|_| panic!("boom")).unwrap();
}

fn child(role: &str) -> ! {
    register();
    match role {
        "proc_exit" => pgipc_ipc::proc_exit(0),
        "shmem_exit" => {
            pgipc_ipc::shmem_exit(1);
            println!("survived");
            std::process::exit(1)
        }
        // exit() without proc_exit: the atexit hook runs the lists.
        _ => std::process::exit(0),
    }
}

fn run_child(role: &str) -> Result<Output, Failed> {
    let mut c = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            return Err("watchdog: child did not exit within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    c.wait_with_output().map_err(|e| e.to_string().into())
}

fn crashed(role: &'static str, what: &'static str) -> Trial {
    Trial::test(format!("{role}: a panicking callback aborts"), move || {
        let out = run_child(role)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.signal() != Some(libc::SIGABRT) {
            return Err(format!("expected SIGABRT, got {:?}; stderr: {stderr}", out.status).into());
        }
        let line = format!("PANIC:  {what} callback panicked: boom");
        if !stderr.contains(&line) {
            return Err(format!("no \"{line}\" in stderr: {stderr}").into());
        }
        if !stdout.is_empty() {
            return Err(format!("callbacks or code ran after the panic: {stdout:?}").into());
        }
        Ok(())
    })
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
    }
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        crashed("proc_exit", "proc_exit"),
        crashed("shmem_exit", "shmem_exit"),
        crashed("exit", "exit"),
    ];
    libtest_mimic::run(&args, trials).exit();
}
