//! Server log lines (issue 13): one severity per line, `DETAIL:`/`HINT:`/`STATEMENT:` lines
//! per `log_min_error_statement`, `log_min_messages`, `log_line_prefix` escapes,
//! `log_timezone`, `log_connections` / `log_disconnections`; and the kinds of line a psql
//! session leaves compared with what the installed PostgreSQL 15 writes for the same session.

mod common;

use common::server::{watchdog, Builder, Postgres15, TestServer};
use std::path::Path;
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(240);
const LIMIT: Duration = Duration::from_secs(15);

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// One parsed log line: `<date> <time>.<ms> <zone> [<pid>] <rest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    zone: String,
    pid: i32,
    /// What `%q%u@%d ` wrote (empty for processes with no client or without that escape).
    who: String,
    severity: String,
    message: String,
}

/// Parses a line in the `%m [%p] ` or `%m [%p] %q%u@%d ` shape; `None` if it is not one.
fn parse(line: &str) -> Option<Line> {
    let mut f = line.splitn(4, ' ');
    let (date, time, zone, rest) = (f.next()?, f.next()?, f.next()?, f.next()?);
    let date_ok = date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
    let (hms, ms) = time.split_once('.')?;
    if !date_ok || hms.len() != 8 || ms.len() != 3 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix('[')?;
    let (pid, rest) = rest.split_once("] ")?;
    let (head, message) = rest.split_once(":  ")?;
    let (who, severity) = match head.rsplit_once(' ') {
        Some((w, s)) => (w.to_owned(), s.to_owned()),
        None => (String::new(), head.to_owned()),
    };
    Some(Line {
        zone: zone.to_owned(),
        pid: pid.parse().ok()?,
        who,
        severity,
        message: message.to_owned(),
    })
}

const SEVERITIES: [&str; 17] = [
    "DEBUG5",
    "DEBUG4",
    "DEBUG3",
    "DEBUG2",
    "DEBUG1",
    "LOG",
    "INFO",
    "NOTICE",
    "WARNING",
    "ERROR",
    "FATAL",
    "PANIC",
    "DETAIL",
    "HINT",
    "CONTEXT",
    "STATEMENT",
    "LOCATION",
];

/// Every line of `log` parses, names one known severity, and no message starts with a second
/// one (the old `WARNING:  ERROR:  …`).
fn check_shapes(log: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for l in log.lines() {
        let p = parse(l).unwrap_or_else(|| panic!("not a log line: {l:?}\n{log}"));
        assert!(SEVERITIES.contains(&p.severity.as_str()), "{l}");
        let doubled = SEVERITIES
            .iter()
            .any(|s| p.message.starts_with(&format!("{s}:  ")));
        assert!(!doubled, "two severities: {l}");
        out.push(p);
    }
    out
}

/// The lines one backend wrote, as `SEVERITY:  message` with the variable parts (session
/// time, error position) replaced.
fn session_kinds(lines: &[Line], pid: i32) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.pid == pid)
        .map(|l| {
            let mut m = l.message.clone();
            if let Some(i) = m.find("session time: ") {
                let end = m[i..].find(" user=").map_or(m.len(), |e| i + e);
                m.replace_range(i..end, "session time: T");
            }
            if let Some(i) = m.find(" at character ") {
                m.truncate(i);
            }
            format!("{}:  {m}", l.severity)
        })
        .collect()
}

/// The backends' pids, in the order their `connection received` lines appear.
fn sessions(lines: &[Line]) -> Vec<i32> {
    lines
        .iter()
        .filter(|l| l.message.starts_with("connection received:"))
        .map(|l| l.pid)
        .collect()
}

/// psql running each of `sql` (all of them: no ON_ERROR_STOP), with `PGOPTIONS` = `options`.
fn psql(sock: &Path, port: u16, options: &str, sql: &[&str]) -> Output {
    let mut c = Command::new("psql");
    c.arg("-X")
        .arg("-h")
        .arg(sock)
        .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGOPTIONS", options)
        .stdin(Stdio::null());
    for q in sql {
        c.args(["-c", q]);
    }
    common::server::output_within(&mut c, Duration::from_secs(30)).expect("psql")
}

/// What each session runs: an error with a HINT, then a clean statement.
const SESSION: [&str; 2] = ["SELECT no_such_function()", "SELECT 1"];

fn server(name: &str, extra: &[&str]) -> TestServer {
    let mut b = Builder::in_dir(common::server::scratch("pgipc-log", name))
        .set("log_connections=on")
        .set("log_disconnections=on");
    for s in extra {
        b = b.set(s);
    }
    ok(b.start())
}

/// Waits until the log holds `n` disconnection lines.
fn wait_disconnections(log: impl Fn() -> String, n: usize) -> Result<(), String> {
    common::server::wait_for("the disconnection lines", LIMIT, || {
        log().matches("LOG:  disconnection: ").count() >= n
    })
    .map_err(|e| format!("{e}\n{}", log()))
}

/// One psql session's lines, each with one severity, and the prefix's escapes and time zone.
fn one_session_lines() {
    let s = server(
        "shapes",
        &[
            "log_line_prefix=%m [%p] %q%u@%d ",
            "log_timezone=Asia/Tokyo",
        ],
    );
    let o = psql(s.sock_dir(), s.port(), "", &SESSION);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no_such_function"));
    ok(wait_disconnections(|| s.log_text(), 1));
    let lines = check_shapes(&s.log_text());
    let pid = sessions(&lines)[0];
    let mine: Vec<&Line> = lines.iter().filter(|l| l.pid == pid).collect();
    for l in &mine {
        assert_eq!(l.zone, "JST", "log_timezone: {l:?}");
    }
    // %q: the postmaster's lines stop before %u@%d; the backend's have them once known.
    assert!(lines.iter().any(|l| l.pid == s.pid() && l.who.is_empty()));
    assert!(
        mine.iter()
            .filter(|l| !l.message.starts_with("connection received"))
            .all(|l| l.who == "postgres@postgres"),
        "{mine:?}"
    );
    assert_eq!(
        session_kinds(&lines, pid),
        [
            "LOG:  connection received: host=[local]",
            "LOG:  connection authorized: user=postgres database=postgres application_name=psql",
            "ERROR:  function no_such_function() does not exist",
            "HINT:  No function matches the given name and argument types. You might need to add explicit type casts.",
            "STATEMENT:  SELECT no_such_function()",
            "LOG:  disconnection: session time: T user=postgres database=postgres host=[local]",
        ]
    );
}

/// `log_min_error_statement` drops the STATEMENT line, `log_min_messages` the ERROR itself,
/// and `log_connections` takes PostgreSQL 18's list (receipt only here).
fn thresholds_and_connection_aspects() {
    let s = server("levels", &[]);
    psql(
        s.sock_dir(),
        s.port(),
        "-c log_min_error_statement=panic",
        &SESSION,
    );
    psql(
        s.sock_dir(),
        s.port(),
        "-c log_min_messages=fatal",
        &SESSION,
    );
    psql(
        s.sock_dir(),
        s.port(),
        "-c log_connections=receipt -c log_disconnections=off",
        &SESSION,
    );
    // Only the first session logs its disconnection (the second's LOG lines are below
    // log_min_messages = fatal, the third turned log_disconnections off): wait for the third's
    // STATEMENT line, then a moment.
    ok(wait_disconnections(|| s.log_text(), 1));
    ok(s.wait_for("the third session", LIMIT, |s| {
        s.log_text().matches("connection received").count() == 3
            && s.log_text().matches("STATEMENT:  ").count() == 1
    }));
    std::thread::sleep(Duration::from_millis(300));
    let lines = check_shapes(&s.log_text());
    let p = sessions(&lines);
    let kinds: Vec<Vec<String>> = p.iter().map(|pid| session_kinds(&lines, *pid)).collect();
    let sev = |k: &Vec<String>| -> Vec<String> {
        k.iter()
            .map(|l| l.split(':').next().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(sev(&kinds[0]), ["LOG", "LOG", "ERROR", "HINT", "LOG"]);
    // log_min_messages = fatal (from the startup packet): the receipt and authorization lines,
    // logged before the packet's options apply; neither the ERROR nor the disconnection (LOG
    // ranks between ERROR and FATAL for the log), as in PostgreSQL.
    assert_eq!(sev(&kinds[1]), ["LOG", "LOG"], "{kinds:?}");
    // log_connections from the startup packet comes too late for this session's own lines
    // (both are logged with the server's value, as in PostgreSQL); log_disconnections is in
    // time to silence the disconnection.
    assert_eq!(sev(&kinds[2]), ["LOG", "LOG", "ERROR", "HINT", "STATEMENT"]);
    assert!(kinds[2][1].starts_with("LOG:  connection authorized"));
}

/// [`SESSION`], then a session refused for a bad option in its startup packet; waits for
/// their last lines in `log`.
fn two_sessions(sock: &Path, port: u16, log: &dyn Fn() -> String) {
    psql(sock, port, "", &SESSION);
    ok(wait_disconnections(log, 1));
    psql(sock, port, "-c no_such_setting=1", &SESSION);
    ok(common::server::wait_for("the FATAL line", LIMIT, || {
        log().contains("FATAL:  ")
    }));
}

/// The same psql session against PostgreSQL 15 leaves the same kinds of line, with the same
/// texts but for the error's position.
fn lines_match_postgresql_15() {
    let pg = ok(Postgres15::start("log-lines"));
    let alter = Command::new("psql")
        .args(["-X", "-h"])
        .arg(pg.sock_dir())
        .args([
            "-p",
            &pg.port().to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args([
            "-c",
            "ALTER SYSTEM SET log_connections = on",
            "-c",
            "ALTER SYSTEM SET log_disconnections = on",
            "-c",
            "SELECT pg_reload_conf()",
        ])
        .output()
        .expect("psql");
    assert!(alter.status.success(), "{alter:?}");
    ok(common::server::wait_for(
        "PostgreSQL 15 to reload",
        LIMIT,
        || {
            pg.log_text()
                .contains("parameter \"log_disconnections\" changed")
        },
    ));
    let s = server("vs15", &[]);
    // A session with an error, and one refused for a bad option in its startup packet (FATAL
    // after authorization: no disconnection line).
    two_sessions(pg.sock_dir(), pg.port(), &|| pg.log_text());
    two_sessions(s.sock_dir(), s.port(), &|| s.log_text());
    let theirs = check_shapes(&pg.log_text());
    let ours = check_shapes(&s.log_text());
    // (libpq retries a connection refused with 42704 without its application_name, so the
    // refused session may count twice: the same on both sides.)
    let kinds = |lines: &[Line]| -> Vec<Vec<String>> {
        sessions(lines)
            .iter()
            .map(|p| session_kinds(lines, *p))
            .collect()
    };
    assert_eq!(kinds(&ours), kinds(&theirs));
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("log_lines", WATCHDOG);
    pgipc_tests::harness::run_cases(&[
        ("one_session_lines", one_session_lines),
        (
            "thresholds_and_connection_aspects",
            thresholds_and_connection_aspects,
        ),
        ("lines_match_postgresql_15", lines_match_postgresql_15),
    ])
}
