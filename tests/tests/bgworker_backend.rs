//! Dynamic background workers registered by a backend through the `pgipc_bgworker` API: the
//! SQL functions `pgipc_start_worker`, `pgipc_worker_pid` and `pgipc_terminate_worker` are
//! tcop's built-ins (the postmaster's backend hooks define no function), and the postmaster
//! starts, reports and stops the workers from the shared slots alone. Also: `--describe-shmem`
//! lists "Background Worker Data" once, after the Backend Status regions and right before
//! shmInvalBuffer, as PostgreSQL 18 does.
//!
//! A `libtest-mimic` harness (`harness = false`), one test thread. Every server has its own
//! port and socket directory and is stopped by `Drop` if a trial fails; every wait has a
//! deadline, and a watchdog ends the binary if a trial hangs anyway.

mod common;

use common::server::{
    children_of, output_within, pg_err, postmaster, scratch, sqlstate, watchdog, Builder,
};
use libtest_mimic::{Arguments, Failed, Trial};
use std::time::Duration;

/// Ends the binary if the trials together run longer.
const WATCHDOG: Duration = Duration::from_secs(300);

fn backend_registers_workers_through_the_bgworker_api(exec: bool) -> Result<(), Failed> {
    let mode = if exec { "exec" } else { "fork" };
    let s = Builder::in_dir(scratch("pgipc-bgw-backend", mode))
        .exec(exec)
        .set("max_worker_processes=2")
        .start()?;
    let mut c = s
        .client()
        .map_err(|e| s.fail(format!("connect: {}", pg_err(&e))))?;
    let q = |c: &mut postgres::Client, sql: &str| {
        c.query_one(sql, &[])
            .map_err(|e| s.fail(format!("{sql}: {}", pg_err(&e))))
    };
    // Two workers fill max_worker_processes; each is a child of the postmaster.
    let mut handles = Vec::new();
    for _ in 0..2 {
        let h: i32 = q(&mut c, "SELECT pgipc_start_worker('pgipc_worker_sleep')")?.get(0);
        let pid: i32 = q(&mut c, &format!("SELECT pgipc_worker_pid({h})"))?.get(0);
        if !children_of(s.pid()).contains_key(&pid) {
            return Err(s
                .fail(format!("worker pid {pid} is not a child of the postmaster"))
                .into());
        }
        handles.push((h, pid));
    }
    // No slot left: PostgreSQL's error and hint.
    match c.simple_query("SELECT pgipc_start_worker('pgipc_worker_sleep')") {
        Err(e) if sqlstate(&e) == "53000" => {
            let db = e.as_db_error().map(|d| (d.message(), d.hint()));
            if db
                != Some((
                    "could not register background process",
                    Some("You may need to increase \"max_worker_processes\"."),
                ))
            {
                return Err(s.fail(format!("full: {db:?}")).into());
            }
        }
        other => return Err(s.fail(format!("a third worker: {other:?}")).into()),
    }
    // Terminate one: its slot is free again, the handle reads 0.
    let (h, pid) = handles[0];
    let st: String = q(&mut c, &format!("SELECT pgipc_terminate_worker({h})"))?.get(0);
    if st != "stopped" {
        return Err(s.fail(format!("terminate said {st:?}")).into());
    }
    let gone: i32 = q(&mut c, &format!("SELECT pgipc_worker_pid({h})"))?.get(0);
    if gone != 0 || children_of(s.pid()).contains_key(&pid) {
        return Err(s.fail(format!("worker {pid} still there ({gone})")).into());
    }
    let h3: i32 = q(&mut c, "SELECT pgipc_start_worker('pgipc_worker_sleep')")?.get(0);
    let pid3: i32 = q(&mut c, &format!("SELECT pgipc_worker_pid({h3})"))?.get(0);
    if pid3 <= 0 || pid3 == pid {
        return Err(s
            .fail(format!("the freed slot's new worker: pid {pid3}"))
            .into());
    }
    // Another session's handles are not this one's.
    let mut other = s
        .client()
        .map_err(|e| s.fail(format!("connect: {}", pg_err(&e))))?;
    match other.simple_query(&format!("SELECT pgipc_worker_pid({h3})")) {
        Err(e) if sqlstate(&e) == "22023" => {}
        r => return Err(s.fail(format!("foreign handle: {r:?}")).into()),
    }
    // The backend ends: its workers go on, nobody is notified any more.
    drop(other);
    drop(c);
    let mut c = s
        .client()
        .map_err(|e| s.fail(format!("connect: {}", pg_err(&e))))?;
    let kids = children_of(s.pid());
    if !kids.contains_key(&handles[1].1) || !kids.contains_key(&pid3) {
        return Err(s
            .fail(format!("workers ended with their backend: {kids:?}"))
            .into());
    }
    let n: i32 = q(&mut c, "SELECT 1")?.get(0);
    assert_eq!(n, 1);
    Ok(())
}

/// `(name, offset)` of each row of the `--describe-shmem` table that has an offset.
fn describe_rows(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .skip(1)
        .filter(|l| l.len() > 40)
        .filter_map(|l| {
            let (name, rest) = l.split_at(40);
            let off = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.trim().to_owned(), off))
        })
        .collect()
}

fn describe_shmem_lists_background_worker_data_before_shm_inval_buffer() -> Result<(), Failed> {
    let dir = scratch("pgipc-bgw-describe", "data");
    // Missing: the postmaster creates it (mode 0700), as for -C.
    let _ = std::fs::remove_dir_all(&dir);
    let out = output_within(
        postmaster().arg("-D").arg(&dir).arg("--describe-shmem"),
        Duration::from_secs(60),
    )
    .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "--describe-shmem: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut rows = describe_rows(&text);
    rows.sort_by_key(|r| r.1);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let bgw: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].starts_with("Background Worker"))
        .collect();
    match bgw.as_slice() {
        [i] if names[*i] == "Background Worker Data"
            && names.get(i + 1) == Some(&"shmInvalBuffer")
            && names.get(i.wrapping_sub(1)) == Some(&"Backend SSL Status Buffer") =>
        {
            Ok(())
        }
        _ => Err(format!("allocations in offset order: {names:?}\n{text}").into()),
    }
}

fn main() -> std::process::ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("bgworker_backend", WATCHDOG);
    let mut args = Arguments::from_args();
    // Servers are processes; one at a time keeps the timings honest on a small machine.
    args.test_threads = Some(1);
    let mut trials: Vec<Trial> = [false, true]
        .into_iter()
        .map(|exec| {
            let mode = if exec { "exec" } else { "fork" };
            Trial::test(
                format!("{mode}: a backend starts, follows and terminates dynamic workers through pgipc_bgworker"),
                move || backend_registers_workers_through_the_bgworker_api(exec),
            )
        })
        .collect();
    trials.push(Trial::test(
        "--describe-shmem: \"Background Worker Data\" once, right before shmInvalBuffer",
        describe_shmem_lists_background_worker_data_before_shm_inval_buffer,
    ));
    libtest_mimic::run(&args, trials).exit();
}
