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

mod common;

use common::server::{
    dynamic_worker_starts, pg_err, scratch, wait_for, watchdog, Builder, TestServer,
    WORKER_START_LIMIT,
};
use libtest_mimic::{Arguments, Failed, Trial};
use std::time::Duration;

/// A dynamic worker must be registered and running within this long of asking.
/// Ends the binary if the trials together run longer.
const WATCHDOG: Duration = Duration::from_secs(600);

/// A `postgres` client of `s`; an error with the server log.
fn connect(s: &TestServer) -> Result<postgres::Client, String> {
    s.client().map_err(|e| s.fail(format!("connect: {e}")))
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
    let mut s = Builder::in_dir(scratch("pgipc-crash", mode))
        .listen("127.0.0.1")
        .args(&extra)
        .start()?;
    let took = dynamic_worker_starts(&s, "before any crash", None)?;
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
                let mut c = connect(&s)?;
                let pid: i32 = c
                    .query_one("SELECT pg_backend_pid()", &[])
                    .map_err(|e| s.fail(format!("pg_backend_pid: {}", pg_err(&e))))?
                    .get(0);
                keep.push(c);
                pid
            }
            "" => {
                let mut c = connect(&s)?;
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
            kind => s.wait_pid_of(kind, 0, Duration::from_secs(20))?,
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
        let stat = s.wait_pid_of("background_worker", 0, Duration::from_secs(20))?;
        let after = format!("after kill -9 of the {name} (pid {victim})");
        let took = dynamic_worker_starts(&s, &after, None)?;
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
        "{mode}: {} kills, {restarts} restarts; dynamic worker start slowest {max:?} (limit {WORKER_START_LIMIT:?}); postmaster still maps {} shared regions",
        VICTIMS.len(),
        mapped.len()
    );
    s.stop_ok()?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("crash_restart", WATCHDOG);
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
