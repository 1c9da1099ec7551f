//! The admin functions of `pgipc_sysviews` on a running server, through SQL from real clients:
//! `pg_terminate_backend` ends another session (57P01, its process gone), `pg_cancel_backend`
//! cancels a `pg_sleep(30)` within 100 ms of the call (57014) and refuses an auxiliary process with
//! PostgreSQL's WARNING, `pg_reload_conf()` applies an edited postgresql.conf and moves
//! `pg_conf_load_time()`, and `pg_postmaster_start_time()` is the postmaster's start.
//!
//! A `libtest-mimic` harness (`harness = false`), one test thread; fork and exec mode.

mod common;

use common::server::{children_of, pg_err, scratch, sqlstate, watchdog, Builder, TestServer};
use libtest_mimic::{Arguments, Failed, Trial};
use std::time::{Duration, Instant, SystemTime};

/// Ends the binary if the trials together run longer.
const WATCHDOG: Duration = Duration::from_secs(300);

fn connect(s: &TestServer) -> Result<postgres::Client, String> {
    s.client()
        .map_err(|e| s.fail(format!("connect: {}", pg_err(&e))))
}

fn one<T: for<'a> postgres::types::FromSql<'a>>(
    s: &TestServer,
    c: &mut postgres::Client,
    sql: &str,
) -> Result<T, String> {
    c.query_one(sql, &[])
        .map(|r| r.get(0))
        .map_err(|e| s.fail(format!("{sql}: {}", pg_err(&e))))
}

fn terminate_and_cancel(exec: bool) -> Result<(), Failed> {
    let mode = if exec { "exec" } else { "fork" };
    let s = Builder::in_dir(scratch("pgipc-admin-fns", mode))
        .exec(exec)
        .start()?;
    let mut admin = connect(&s)?;

    // pg_terminate_backend with a timeout: true once the victim is gone; the victim's next
    // statement finds its connection ended with 57P01.
    let mut victim = connect(&s)?;
    let vpid: i32 = one(&s, &mut victim, "SELECT pg_backend_pid()")?;
    if !children_of(s.pid()).contains_key(&vpid) {
        return Err(s
            .fail(format!("{vpid} is not a child of the postmaster"))
            .into());
    }
    let done: bool = one(
        &s,
        &mut admin,
        &format!("SELECT pg_terminate_backend({vpid}, 5000)"),
    )?;
    if !done || children_of(s.pid()).contains_key(&vpid) {
        return Err(s
            .fail(format!(
                "terminate returned {done}; still a child: {:?}",
                children_of(s.pid())
            ))
            .into());
    }
    match victim.simple_query("SELECT 1") {
        // The FATAL (57P01) if the client reads it first, else the closed socket.
        Err(e) if sqlstate(&e) == "57P01" || e.as_db_error().is_none() => {}
        r => return Err(s.fail(format!("the terminated session: {r:?}")).into()),
    }

    // pg_cancel_backend on a pg_sleep(30): 57014 within 100 ms of the call's return.
    let mut sleeper = connect(&s)?;
    let spid: i32 = one(&s, &mut sleeper, "SELECT pg_backend_pid()")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let r = sleeper.simple_query("SELECT pg_sleep(30)");
        let _ = tx.send((Instant::now(), r.map(|_| ()).map_err(|e| sqlstate(&e))));
    });
    // Give the sleeper time to be inside its statement (a cancel before it would be ignored
    // while idle, and the sleep would run its 30 s: the 10 s wait below then fails).
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    let cancelled: bool = one(&s, &mut admin, &format!("SELECT pg_cancel_backend({spid})"))?;
    let (at, r) = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| s.fail("the cancelled pg_sleep did not return within 10 s"))?;
    let _ = t.join();
    let took = at.saturating_duration_since(sent);
    if !cancelled || r != Err("57014".to_owned()) || took > Duration::from_millis(100) {
        return Err(s
            .fail(format!(
                "cancel returned {cancelled}, sleep gave {r:?} after {took:?}"
            ))
            .into());
    }
    println!("{mode}: pg_sleep(30) cancelled in {took:?}");

    // An auxiliary process is no PostgreSQL backend process: false (and a WARNING).
    let ckpt: String = one(&s, &mut admin, "SHOW pgipc.pid_of.checkpointer")?;
    let rows = admin
        .simple_query(&format!("SELECT pg_cancel_backend({ckpt})"))
        .map_err(|e| s.fail(format!("cancel the checkpointer: {}", pg_err(&e))))?;
    let value = rows.iter().find_map(|m| match m {
        postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    if value.as_deref() != Some("f") {
        return Err(s
            .fail(format!("cancel of the checkpointer: {value:?}"))
            .into());
    }
    Ok(())
}

fn reload_and_times(exec: bool) -> Result<(), Failed> {
    let mode = if exec { "exec" } else { "fork" };
    let before_start = SystemTime::now();
    let s = Builder::in_dir(scratch("pgipc-admin-reload", mode))
        .exec(exec)
        .start()?;
    let mut c = connect(&s)?;
    // The start time lies between the test's clock before the start and now.
    let age: String = one(
        &s,
        &mut c,
        "SELECT (now() - pg_postmaster_start_time())::text",
    )?;
    let age_s = parse_interval_secs(&age);
    let bound = before_start.elapsed().unwrap_or_default().as_secs_f64() + 1.0;
    if !(0.0..=bound).contains(&age_s) {
        return Err(s
            .fail(format!(
                "pg_postmaster_start_time() is {age_s} s old (bound {bound})"
            ))
            .into());
    }
    let load1: String = one(&s, &mut c, "SELECT pg_conf_load_time()::text")?;
    let before: String = one(&s, &mut c, "SHOW work_mem")?;
    let conf = s.data_dir().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).map_err(|e| e.to_string())?;
    text.push_str("\nwork_mem = '7MB'\n");
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(20));
    let ok: bool = one(&s, &mut c, "SELECT pg_reload_conf()")?;
    if !ok {
        return Err(s.fail("pg_reload_conf() returned false").into());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: String = one(&s, &mut c, "SHOW work_mem")?;
        let load2: String = one(&s, &mut c, "SELECT pg_conf_load_time()::text")?;
        if now == "7MB" && load2 > load1 {
            break;
        }
        if Instant::now() > deadline {
            return Err(s
                .fail(format!(
                    "after pg_reload_conf(): work_mem {before} -> {now}, load time {load1} -> {load2}"
                ))
                .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Seconds of an interval printed as `HH:MM:SS.ffffff`.
fn parse_interval_secs(t: &str) -> f64 {
    let mut secs = 0.0;
    for part in t.split(':') {
        secs = secs * 60.0 + part.trim().parse::<f64>().unwrap_or(f64::NAN);
    }
    secs
}

fn main() -> std::process::ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("admin_functions", WATCHDOG);
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let mut trials = Vec::new();
    for exec in [false, true] {
        let mode = if exec { "exec" } else { "fork" };
        trials.push(Trial::test(
            format!("{mode}: pg_terminate_backend ends a session, pg_cancel_backend cancels pg_sleep within 100 ms and refuses the checkpointer"),
            move || terminate_and_cancel(exec),
        ));
        trials.push(Trial::test(
            format!("{mode}: pg_reload_conf applies an edited postgresql.conf and moves pg_conf_load_time; pg_postmaster_start_time is the start"),
            move || reload_and_times(exec),
        ));
    }
    libtest_mimic::run(&args, trials).exit();
}
