//! pgipc's dev-only test kit, and the home of the whole-server tests.
//!
//! The library holds what tests and benches of any pgipc crate share; crates use it as a
//! dev-dependency (`pgipc-tests = { workspace = true }`). It depends on no pgipc crate, so a
//! crate's own tests can use it without seeing a second copy of that crate's types: it deals
//! in raw descriptors and words, and each crate maps and attaches with its own types.
//!
//! * [`harness`]: named cases as libtest-mimic trials on one test thread (the `test result:`
//!   line counts what ran), child guards ([`harness::Proc`]) and bounded waits for children.
//! * [`helper`]: the exec'd helper, the current test binary re-executed in a role, handed a
//!   segment descriptor (fd and size through the environment).
//! * [`cpu`]: CPU pinning, the online CPU count, a small deterministic generator, spinning.
//! * [`bench`](mod@bench): the interleaved A/B runner, median of pairwise ratios, the `BENCH` line, and
//!   a persistent bench helper driven through shared words.
//! * Here: scratch directories, free ports, bounded polling ([`wait_for`]), a [`watchdog`]
//!   that ends a test binary that ran over its time, [`which`], and the re-exec dispatch of
//!   the whole-server tests ([`serve_if_asked`]).
//!
//! The package's integration tests (`tests/*.rs`, `harness = false`, libtest-mimic) and its
//! bench (`benches/server.rs`) run whole servers: each test binary, re-executed with
//! `PGIPC_TESTS_RUN_AS=postmaster` (or `pgipc_ctl`), runs the server program
//! (`pgipc_postmaster::entry`) instead of its tests, so `cargo test -p pgipc-tests` needs no
//! binary of another package.

pub mod bench;
pub mod cpu;
pub mod harness;
pub mod helper;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Set in the environment of a whole-server test binary re-executed as a program under test:
/// `postmaster` or `pgipc_ctl`. The server's children inherit it, so an exec'd backend (which
/// re-executes /proc/self/exe) comes back as the server too.
pub const RUN_AS: &str = "PGIPC_TESTS_RUN_AS";

/// The programs a whole-server test binary can be re-executed as (the server's entry points;
/// this kit depends on no pgipc crate, so the tests hand them in).
#[derive(Debug, Clone, Copy)]
pub struct Programs {
    /// The postmaster: its command line without the program name.
    pub postmaster: fn(Vec<String>) -> ExitCode,
    /// pgipc_ctl: its command line without the program name, and the postmaster to start.
    pub ctl: fn(Vec<String>, &Path) -> ExitCode,
}

/// The first thing a whole-server test binary's `main` does: when [`RUN_AS`] says this process
/// is a program under test, runs it to its end and returns its exit code; `None` in the test
/// binary proper (no [`RUN_AS`]). Call it before any thread is started: the server forks.
pub fn serve_if_asked(programs: &Programs) -> Option<ExitCode> {
    let role = std::env::var_os(RUN_AS)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if role == "pgipc_ctl" {
        // The server pgipc_ctl starts is this binary again, as the postmaster. This process
        // has no other thread, so changing its environment races with nothing.
        std::env::set_var(RUN_AS, "postmaster");
        return Some((programs.ctl)(args, &server_exe()));
    }
    if role != "postmaster" {
        eprintln!("{RUN_AS}={role:?}: not a program under test (postmaster, pgipc_ctl)");
        return Some(ExitCode::FAILURE);
    }
    Some((programs.postmaster)(args))
}

/// The executable a server under test runs as: the current test binary, re-executed.
pub fn server_exe() -> PathBuf {
    std::env::current_exe().expect("current_exe")
}

/// A command that runs the postmaster under test (this binary with [`RUN_AS`]=postmaster).
pub fn postmaster() -> Command {
    let mut c = Command::new(server_exe());
    c.env(RUN_AS, "postmaster");
    c
}

/// A command that runs pgipc_ctl under test (this binary with [`RUN_AS`]=pgipc_ctl), which
/// starts this binary as its postmaster.
pub fn pgipc_ctl() -> Command {
    let mut c = Command::new(server_exe());
    c.env(RUN_AS, "pgipc_ctl");
    c
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `std::env::temp_dir()/<prefix>-<name>-<our pid>`, removed if it exists.
pub fn scratch(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Polls `f` every 20 ms until it holds; an error naming `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !f() {
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Ends the whole test binary (exit 1) if it still runs after `limit`.
pub fn watchdog(name: &str, limit: Duration) {
    let name = name.to_owned();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("watchdog: {name} ran over {limit:?}");
        std::process::exit(1);
    });
}

/// `cmd` found on PATH.
pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|f| f.exists())
    })
}
