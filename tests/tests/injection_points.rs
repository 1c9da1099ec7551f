//! Injection points against the real server (built with the `injection_points` feature:
//! `cargo test -p pgipc-tests --features injection_points --test injection_points`), with psql
//! as the client.
//!
//! * A backend that panics in the middle of a ProcArray update (point `procarray-add`, attached
//!   from SQL by a bystander session) aborts: `PANIC:` in the log, the postmaster restarts
//!   everything, the bystander gets 57P02, and new connections work afterwards (the restart
//!   also dropped the shared attachment). Once with fork, once with `exec_backend = on`.
//! * `error` at `backend-start`, attached through `PGIPC_INJECTION_POINTS`, is a FATAL for
//!   that client only: a clean exit, no restart.
//! * The SQL functions refuse bad input with an ERROR and leave the session usable.
//! * Issue 11's item 2 (dynamic background workers after a crash restart), driven by points
//!   instead of `kill -9`, in fork and exec mode, with the static `pgipc_demo` worker loaded
//!   (so the reset has a surviving worker to re-publish): a dynamic worker panicking at
//!   `bgworker-start`, then a backend aborting at `backend-start` (both attached from SQL),
//!   crash the server; after each restart the attachment is gone (the shared table is new),
//!   the static worker runs again and a dynamic worker registers and starts within 1 s
//!   (measured and printed).
//! * `postmaster-reset` = `sleep 200` (environment) holds the postmaster inside the reset:
//!   raw connections made then are neither refused nor answered until the reset is over
//!   (PostgreSQL 18 stops watching its listen sockets from PM_WAIT_DEAD_END until the new
//!   shared memory exists), then get 57P03 or a session; a dynamic worker starts within 1 s.
//!
//! `harness = false` with libtest-mimic on one thread; every wait has a deadline and a
//! watchdog ends the binary if the trials together overrun.

mod common;

use common::server::{
    dynamic_worker_starts, finish, scratch, startup_packet, watchdog, Builder, Stdout, TestServer,
    WORKER_START_LIMIT,
};
use libtest_mimic::{Arguments, Failed, Trial};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A server on `<tmp>/pgipc-inj-<name>-<pid>` (socket directory and log beside it, all removed
/// on drop), Unix socket only, with `extra` arguments and `env` for the postmaster.
fn start(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<TestServer, Failed> {
    let dir = scratch("pgipc-inj", name);
    let mut b = Builder::beside(dir.clone())
        .remove_on_drop(dir.clone())
        .remove_on_drop(dir.with_extension("sock"))
        .remove_on_drop(dir.with_extension("log"))
        .stdout(Stdout::Null)
        .args(extra);
    for (k, v) in env {
        b = b.env(k, v);
    }
    Ok(b.start()?)
}

/// psql the way this file runs it: verbose errors (with the SQLSTATE), output piped.
trait VerbosePsql {
    fn psql_v_cmd(&self, sql: &[&str]) -> Command;
    /// One psql run, killed after 30 s.
    fn psql_v(&self, sql: &str) -> Output;
    /// One psql run that must succeed.
    fn psql_v_ok(&self, sql: &str) -> Result<String, Failed>;
    /// Polls `cond` for up to 30 s.
    fn wait_until(&self, what: &str, cond: impl FnMut(&TestServer) -> bool) -> Result<(), Failed>;
}

impl VerbosePsql for TestServer {
    fn psql_v_cmd(&self, sql: &[&str]) -> Command {
        let mut c = self.psql_command(&["-At", "-v", "VERBOSITY=verbose"], sql);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    fn psql_v(&self, sql: &str) -> Output {
        let child = self.psql_v_cmd(&[sql]).spawn().expect("psql");
        finish(child, Duration::from_secs(30))
    }

    fn psql_v_ok(&self, sql: &str) -> Result<String, Failed> {
        let o = self.psql_v(sql);
        if !o.status.success() {
            return Err(self.fail(format!("{sql}: {o:?}")).into());
        }
        Ok(text(&o.stdout))
    }

    fn wait_until(&self, what: &str, cond: impl FnMut(&TestServer) -> bool) -> Result<(), Failed> {
        Ok(self.wait_for(what, Duration::from_secs(30), cond)?)
    }
}

/// Fast shutdown, with a deadline.
fn stop(srv: TestServer) -> Result<(), Failed> {
    stop_with_log(srv).map(drop)
}

/// Fast shutdown; returns the whole server log.
fn stop_with_log(mut srv: TestServer) -> Result<String, Failed> {
    srv.stop()?;
    Ok(srv.log_text())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn backend_panic(name: &'static str, extra: &'static [&'static str]) -> Trial {
    Trial::test(
        format!("{name}: a backend panicking mid-update crashes the server; bystanders get 57P02"),
        move || {
            let srv = start(name, extra, &[])?;
            // The bystander attaches the point for everybody, then sits in a statement.
            let bystander = srv
                .psql_v_cmd(&[
                    "SELECT injection_points_attach('procarray-add', 'panic')",
                    "SELECT pg_sleep(60)",
                ])
                .spawn()
                .map_err(|e| e.to_string())?;
            // New connections work until the attach lands; the first one after it panics in
            // ProcArrayAdd with ProcArrayLock held.
            let mut refused = None;
            srv.wait_until("a connection to hit the injection point", |s| {
                let o = s.psql_v("SELECT 1");
                if !o.status.success() {
                    refused = Some(o);
                }
                refused.is_some()
            })?;
            let by = finish(bystander, Duration::from_secs(30));
            let by_err = text(&by.stderr);
            srv.wait_until("a connection after the restart", |s| {
                s.psql_v("SELECT 1").status.success()
            })?;
            let log = srv.log_text();
            let checks = [
                (
                    log.contains("PANIC:  panic triggered for injection point procarray-add"),
                    "PANIC line in the log",
                ),
                (
                    log.contains("was terminated by signal 6"),
                    "the postmaster saw SIGABRT",
                ),
                (
                    log.contains("all server processes terminated; reinitializing"),
                    "a crash restart",
                ),
                (
                    !by.status.success() && by_err.contains("57P02"),
                    "57P02 for the bystander",
                ),
            ];
            for (ok, what) in checks {
                if !ok {
                    return Err(format!(
                        "{what}: missing\nbystander: {by_err}\nrefused: {refused:?}\nlog:\n{log}"
                    )
                    .into());
                }
            }
            // The attachment lived in the old shared memory: the point no longer fires.
            let o = srv.psql_v("SELECT injection_points_detach('procarray-add')");
            if !text(&o.stderr).contains("42704") {
                return Err(format!("point still attached after the restart: {o:?}").into());
            }
            stop(srv)
        },
    )
}

fn error_at_backend_start() -> Result<(), Failed> {
    let srv = start(
        "env-error",
        &[],
        &[(pgipc_injection_point::ENV_VAR, "backend-start=error")],
    )?;
    for _ in 0..2 {
        let o = srv.psql_v("SELECT 1");
        let err = text(&o.stderr);
        if o.status.success()
            || !err.contains("FATAL:  error triggered for injection point backend-start")
        {
            return Err(format!("expected the injected FATAL, got {o:?}").into());
        }
    }
    let log = srv.log_text();
    if log.contains("terminated by signal") || log.contains("reinitializing") {
        return Err(format!("a FATAL at backend start caused a restart:\n{log}").into());
    }
    stop(srv)
}

fn sql_functions() -> Result<(), Failed> {
    let srv = start("sql", &[], &[])?;
    let cases = [
        ("SELECT injection_points_attach('x', 'explode')", "22023"),
        ("SELECT injection_points_detach('never-attached')", "42704"),
        ("SELECT injection_points_wakeup('never-attached')", "42704"),
    ];
    for (sql, code) in cases {
        let o = srv.psql_v(sql);
        if o.status.success() || !text(&o.stderr).contains(&format!("ERROR:  {code}")) {
            return Err(format!("{sql}: expected ERROR {code}, got {o:?}").into());
        }
    }
    // Attach, notice, detach in one session; the session stays usable.
    let o = finish(
        srv.psql_v_cmd(&[
            "SELECT injection_points_attach('bgworker-start', 'notice')",
            "SELECT injection_points_detach('bgworker-start')",
            "SELECT 7",
        ])
        .spawn()
        .map_err(|e| e.to_string())?,
        Duration::from_secs(30),
    );
    if !o.status.success() || !text(&o.stdout).ends_with("7\n") {
        return Err(format!("attach/detach session: {o:?}").into());
    }
    stop(srv)
}

/// `error` at `postmaster-reset`, attached through the environment (the postmaster never reads
/// the shared table): the crash restart after a SIGKILL fails there and the postmaster exits 1.
fn error_at_postmaster_reset() -> Result<(), Failed> {
    let mut srv = start(
        "reset-error",
        &[],
        &[(pgipc_injection_point::ENV_VAR, "postmaster-reset=error")],
    )?;
    let o = srv.psql_v("SHOW pgipc.pid_of.checkpointer");
    let pid: i32 = text(&o.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("checkpointer pid: {e}: {o:?}"))?;
    // SAFETY: SIGKILL to the server's checkpointer, a process of the server we started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = srv.wait_exit()?;
    let log = srv.log_text();
    if status.code() != Some(1)
        || !log.contains("all server processes terminated; reinitializing")
        || !log.contains("FATAL:  error triggered for injection point postmaster-reset")
    {
        return Err(
            format!("expected a FATAL exit at the reset, got {status:?}; log:\n{log}").into(),
        );
    }
    Ok(())
}

/// `error` at `bgworker-start`, attached from SQL: the worker leaves with FATAL (a clean exit
/// code, no crash restart) and the session goes on.
fn error_at_bgworker_start() -> Result<(), Failed> {
    let srv = start("bgw-error", &[], &[])?;
    let o = srv.psql_v_cmd(&[
        "SELECT injection_points_attach('bgworker-start', 'error')",
        "SELECT pgipc_start_worker('pgipc_worker_sleep')",
    ]);
    let _ = finish(o.spawn_checked()?, Duration::from_secs(40));
    srv.wait_until("the worker's FATAL", |s| {
        s.log_text()
            .contains("FATAL:  error triggered for injection point bgworker-start")
    })?;
    if !srv.psql_v("SELECT 1").status.success() || srv.log_text().contains("reinitializing") {
        return Err(format!(
            "the worker's FATAL disturbed the server:\n{}",
            srv.log_text()
        )
        .into());
    }
    stop(srv)
}

/// `notice` at `checkpointer-shutdown-checkpoint` (environment): the shutdown checkpoint passes
/// the point, logs, and the shutdown completes.
fn notice_at_shutdown_checkpoint() -> Result<(), Failed> {
    let srv = start(
        "ckpt-notice",
        &[],
        &[(
            pgipc_injection_point::ENV_VAR,
            "checkpointer-shutdown-checkpoint=notice",
        )],
    )?;
    let text = stop_with_log(srv)?;
    let notice =
        text.find("LOG:  notice triggered for injection point checkpointer-shutdown-checkpoint");
    let done = text.find("database system is shut down");
    match (notice, done) {
        (Some(n), Some(d)) if n < d => Ok(()),
        _ => Err(format!("no notice before the end of the shutdown:\n{text}").into()),
    }
}

trait SpawnChecked {
    fn spawn_checked(self) -> Result<Child, Failed>;
}

impl SpawnChecked for Command {
    fn spawn_checked(mut self) -> Result<Child, Failed> {
        self.spawn().map_err(|e| e.to_string().into())
    }
}

// ---- item 2 of issue 11 through injection points ---------------------------------------------

const READY: &str = "database system is ready to accept connections";
/// Ends the binary if the trials together run longer (each wait has its own deadline too).
const WATCHDOG: Duration = Duration::from_secs(900);

/// The "ready to accept connections" lines in the log.
fn readies(s: &TestServer) -> usize {
    s.log_text().matches(READY).count()
}

/// After crash restart number `n`: connections work, the shared attachment of `point` went
/// with the old segment (detach answers 42704), the static worker runs again (a new process,
/// not `old_static`) and a dynamic worker registers and starts within [`WORKER_START_LIMIT`].
/// Returns the new static worker's pid.
fn after_restart(
    s: &TestServer,
    mode: &str,
    n: usize,
    point: &str,
    old_static: i32,
) -> Result<i32, Failed> {
    s.wait_until(&format!("restart #{n}"), |s| s.restarts() >= n)?;
    s.wait_until("a connection after the restart", |s| {
        s.psql_v("SELECT 1").status.success()
    })?;
    let o = s.psql_v(&format!("SELECT injection_points_detach('{point}')"));
    if o.status.success() || !text(&o.stderr).contains("42704") {
        return Err(s
            .fail(format!(
                "{point} still attached after the restart (the shared table should be new): {o:?}"
            ))
            .into());
    }
    let stat = s.wait_pid_of("background_worker", old_static, Duration::from_secs(30))?;
    let after = format!("after the crash at {point} (restart #{n})");
    let took = dynamic_worker_starts(s, &after, Some(stat))?;
    println!(
        "{mode}: {after}: static worker back as pid {stat}; dynamic worker registered and started in {took:?} (limit {WORKER_START_LIMIT:?})"
    );
    Ok(stat)
}

fn preload(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec!["-c", "shared_preload_libraries=pgipc_demo"];
    v.extend_from_slice(extra);
    v
}

/// Item 2 through injection points: a dynamic worker panicking at `bgworker-start` (attached
/// from SQL) and then a backend aborting at `backend-start` (SQL) each crash the server; after
/// each restart a dynamic worker registers and starts within 1 s.
fn crash_at_points_then_dynamic_worker(
    mode: &'static str,
    extra: &[&'static str],
) -> Result<(), Failed> {
    let srv = start(&format!("restart-{mode}"), &preload(extra), &[])?;
    let stat = srv.wait_pid_of("background_worker", 0, Duration::from_secs(30))?;
    let took = dynamic_worker_starts(&srv, "before any crash", Some(stat))?;
    println!("{mode}: before any crash: dynamic worker registered and started in {took:?}");

    // Crash 1: the dynamic worker panics in its start-up.
    let o = finish(
        srv.psql_v_cmd(&[
            "SELECT injection_points_attach('bgworker-start', 'panic')",
            "SELECT pgipc_start_worker('pgipc_worker_sleep')",
        ])
        .spawn_checked()?,
        Duration::from_secs(40),
    );
    srv.wait_until("restart #1", |s| s.restarts() >= 1)?;
    let log = srv.log_text();
    for want in [
        "PANIC:  panic triggered for injection point bgworker-start",
        "was terminated by signal 6",
    ] {
        if !log.contains(want) {
            return Err(srv
                .fail(format!("crash 1: {want:?} missing; session: {o:?}"))
                .into());
        }
    }
    let stat = after_restart(&srv, mode, 1, "bgworker-start", stat)?;

    // Crash 2: a new backend aborts right after taking its PGPROC.
    srv.psql_v_ok("SELECT injection_points_attach('backend-start', 'abort')")?;
    let o = srv.psql_v("SELECT 1");
    if o.status.success() {
        return Err(srv
            .fail(format!("a backend passed backend-start=abort: {o:?}"))
            .into());
    }
    srv.wait_until("restart #2", |s| s.restarts() >= 2)?;
    if !srv
        .log_text()
        .contains("PANIC:  abort triggered for injection point backend-start")
    {
        return Err(srv.fail("crash 2: no PANIC line for backend-start").into());
    }
    after_restart(&srv, mode, 2, "backend-start", stat)?;
    let restarts = srv.restarts();
    if restarts != 2 {
        return Err(srv
            .fail(format!("{restarts} restarts for 2 crashes"))
            .into());
    }
    stop(srv)
}

/// What a raw connection attempt got back.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// ErrorResponse: SQLSTATE and message.
    Error(String, String),
    /// Authenticated, ReadyForQuery seen.
    Ready,
    /// The server closed the connection without an answer.
    Eof,
    /// connect() or the write failed.
    Refused(String),
    /// Nothing within the read timeout.
    Timeout,
}

/// One connection attempt during the crash, classified.
#[derive(Debug)]
struct Probe {
    /// Restarts logged ("reinitializing") before connect().
    restarts_before: usize,
    /// postmaster.pid's status, then the "ready" lines, read just after connect().
    status_after_connect: String,
    readies_after_connect: usize,
    answer: Answer,
    /// From connect() to the answer.
    waited: Duration,
    /// postmaster.pid's status, then the "ready" lines, read just after the answer.
    status_at_answer: String,
    readies_at_answer: usize,
}

/// Opens a Unix-socket connection, sends a startup packet (user and database postgres) and
/// reads until an ErrorResponse, ReadyForQuery, EOF or 10 s.
fn probe_once(s: &TestServer) -> Probe {
    use std::io::{Read, Write};
    let restarts_before = s.restarts();
    let t0 = Instant::now();
    let conn = s.connect_raw();
    let status_after_connect = s.pid_status();
    let readies_after_connect = readies(s);
    let answer = (|| {
        let mut c = match conn {
            Ok(c) => c,
            Err(e) => return Answer::Refused(format!("connect: {e}")),
        };
        if let Err(e) = c.write_all(&startup_packet()) {
            return Answer::Refused(format!("write: {e}"));
        }
        let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
        loop {
            let mut hdr = [0u8; 5];
            match c.read_exact(&mut hdr) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Answer::Eof,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Answer::Timeout
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Answer::Eof,
                Err(e) => return Answer::Refused(format!("read: {e}")),
            }
            let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
            let mut msg = vec![0u8; len.saturating_sub(4)];
            if c.read_exact(&mut msg).is_err() {
                return Answer::Eof;
            }
            match hdr[0] {
                b'E' => {
                    let (mut code, mut text) = (String::new(), String::new());
                    for f in msg.split(|b| *b == 0).filter(|f| !f.is_empty()) {
                        let v = String::from_utf8_lossy(&f[1..]).into_owned();
                        match f[0] {
                            b'C' => code = v,
                            b'M' => text = v,
                            _ => {}
                        }
                    }
                    return Answer::Error(code, text);
                }
                b'Z' => {
                    let _ = c.write_all(&[b'X', 0, 0, 0, 4]);
                    return Answer::Ready;
                }
                _ => {}
            }
        }
    })();
    let waited = t0.elapsed();
    let status_at_answer = s.pid_status();
    let readies_at_answer = readies(s);
    Probe {
        restarts_before,
        status_after_connect,
        readies_after_connect,
        answer,
        waited,
        status_at_answer,
        readies_at_answer,
    }
}

/// `postmaster-reset` = `sleep 200` (environment: the postmaster reads nothing else) slows the
/// crash reset. Like PostgreSQL 18, whose postmaster stops watching its listen sockets from
/// PM_WAIT_DEAD_END until the new shared memory exists and answers "in recovery mode"
/// (57P03) while the startup process runs, a connection made during the reset is neither
/// refused nor answered: it waits in the listen queue, and once the reset is over it gets
/// 57P03 or a session. Afterwards a dynamic worker starts within 1 s.
fn slow_reset_then_dynamic_worker(
    mode: &'static str,
    extra: &[&'static str],
) -> Result<(), Failed> {
    let srv = start(
        &format!("slow-reset-{mode}"),
        &preload(extra),
        &[(pgipc_injection_point::ENV_VAR, "postmaster-reset=sleep 200")],
    )?;
    let mut stat = srv.wait_pid_of("background_worker", 0, Duration::from_secs(30))?;
    let took = dynamic_worker_starts(&srv, "before any crash", Some(stat))?;
    println!("{mode}: before any crash: dynamic worker registered and started in {took:?}");
    // The probe is made within a few ms of the "reinitializing" line, inside the 200 ms
    // reset, unless this process stalls that long; then the crash is repeated (3 times at most).
    let mut in_reset = Vec::new();
    for attempt in 1..=3 {
        let restarts0 = srv.restarts();
        let readies0 = readies(&srv);
        srv.psql_v_ok("SELECT injection_points_attach('backend-start', 'abort')")?;
        // The crash: this backend aborts right after taking its PGPROC.
        let crash = probe_once(&srv);
        if crash.answer != Answer::Eof {
            return Err(srv.fail(format!("backend-start=abort: {crash:#?}")).into());
        }
        // No connection until the postmaster logs that it reinitializes (then it sleeps).
        let seen_at = {
            let deadline = Instant::now() + Duration::from_secs(30);
            while srv.restarts() == restarts0 {
                if Instant::now() > deadline {
                    return Err(srv.fail("no crash restart within 30 s of the abort").into());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Instant::now()
        };
        let mut probes = vec![probe_once(&srv)];
        let first = &probes[0];
        // Inside the reset: the reinitializing line came before connect(), and postmaster.pid
        // still said "ready" from before the crash just after
        // connect() (the new generation writes "starting"; a finished start-up logs its
        // ready line before it writes "ready").
        let inside = first.restarts_before > restarts0
            && first.status_after_connect == "ready"
            && first.readies_after_connect == readies0;
        if inside {
            let over = first.status_at_answer == "starting" || first.readies_at_answer > readies0;
            let ok_answer = matches!(&first.answer, Answer::Error(c, _) if c == "57P03")
                || first.answer == Answer::Ready;
            if !over || !ok_answer {
                return Err(srv.fail(format!(
                    "a connection made during the reset must wait for its end, then get 57P03 or a session; got {first:#?}"
                )).into());
            }
            println!(
                "{mode}: attempt {attempt}: connection made {:?} after the reinitializing line was seen, during the reset: waited {:?}, then got {:?} (postmaster.pid then said {:?})",
                seen_at.elapsed().saturating_sub(first.waited),
                first.waited,
                first.answer,
                first.status_at_answer
            );
            in_reset.push(first.waited);
        }
        // Then 57P03 until start-up is over, then sessions.
        let deadline = Instant::now() + Duration::from_secs(30);
        while probes.last().map(|p| &p.answer) != Some(&Answer::Ready) {
            if Instant::now() > deadline {
                return Err(srv
                    .fail(format!(
                    "attempt {attempt}: no session within 30 s of the reset; probes: {probes:#?}"
                ))
                    .into());
            }
            std::thread::sleep(Duration::from_millis(5));
            probes.push(probe_once(&srv));
        }
        if let Some(p) = probes.iter().find(|p| {
            !(matches!(&p.answer, Answer::Error(c, _) if c == "57P03") || p.answer == Answer::Ready)
        }) {
            return Err(srv
                .fail(format!("attempt {attempt}: after the reset began: {p:#?}"))
                .into());
        }
        let refusals: std::collections::BTreeSet<String> = probes[1..]
            .iter()
            .filter_map(|p| match &p.answer {
                Answer::Error(c, m) => Some(format!("{c} {m}")),
                _ => None,
            })
            .collect();
        println!(
            "{mode}: attempt {attempt}: after it {} more connection(s) until a session: {} refused with {refusals:?}",
            probes.len() - 1,
            probes.len() - 2
        );
        if srv.restarts() != restarts0 + 1 {
            return Err(srv
                .fail(format!(
                    "attempt {attempt}: expected exactly one more restart"
                ))
                .into());
        }
        if !srv
            .log_text()
            .contains("PANIC:  abort triggered for injection point backend-start")
        {
            return Err(srv.fail("no PANIC line for backend-start").into());
        }
        stat = after_restart(&srv, mode, restarts0 + 1, "backend-start", stat)?;
        if !in_reset.is_empty() {
            break;
        }
        println!("{mode}: attempt {attempt}: the probe missed the reset; crashing again");
    }
    if in_reset.is_empty() {
        return Err(srv
            .fail("in 3 crashes no connection was made during the reset")
            .into());
    }
    stop(srv)
}

fn main() -> std::process::ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("injection_points", WATCHDOG);
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let mut trials = vec![
        backend_panic("fork", &[]),
        backend_panic("exec", &["-c", "exec_backend=on"]),
        Trial::test(
            "error at backend-start (environment): FATAL for that client, no restart",
            error_at_backend_start,
        ),
        Trial::test("the SQL functions check their input", sql_functions),
        Trial::test(
            "error at postmaster-reset (environment): the crash restart stops with FATAL",
            error_at_postmaster_reset,
        ),
        Trial::test(
            "error at bgworker-start (SQL): the worker leaves with FATAL, no restart",
            error_at_bgworker_start,
        ),
        Trial::test(
            "notice at checkpointer-shutdown-checkpoint (environment): logged, shutdown completes",
            notice_at_shutdown_checkpoint,
        ),
    ];
    for (mode, extra) in [("fork", &[][..]), ("exec", &["-c", "exec_backend=on"][..])] {
        trials.push(Trial::test(
            format!("{mode}: crashes at bgworker-start=panic and backend-start=abort (SQL); after each restart a dynamic worker starts within 1 s"),
            move || crash_at_points_then_dynamic_worker(mode, extra),
        ));
        trials.push(Trial::test(
            format!("{mode}: postmaster-reset=sleep 200 (environment): connections during the reset wait, then 57P03 or a session; a dynamic worker starts within 1 s"),
            move || slow_reset_then_dynamic_worker(mode, extra),
        ));
    }
    libtest_mimic::run(&args, trials).exit();
}
