//! Settings end to end, with PostgreSQL as the oracle: the same SET / SHOW / RESET /
//! transaction script runs against our postmaster and the installed PostgreSQL 15, and the
//! outcomes (rows, SQLSTATE, message, DETAIL, HINT, warnings) must be equal; psql's
//! `\encoding` shows what the server reported; a reload with a bad line applies nothing and
//! logs file and line, a placeholder line is accepted (checked on both servers); `-C` prints
//! base units as PostgreSQL's does; an exec'd child starts from the postmaster's settings.
//!
//! A `harness = false` test: libtest-mimic runs the cases one after the other on one test
//! thread; a watchdog ends the binary if it hangs. Where PostgreSQL 15 and 18 differ (or 15
//! lacks a parameter), the script says so beside the statement.

mod common;

use common::server::{
    output_within, postmaster, scratch, wait_for, watchdog, Builder, Postgres15, TestServer,
};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(300);

/// A failed step fails the case with its message.
fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn server(name: &str, exec: bool) -> TestServer {
    ok(Builder::in_dir(scratch("pgipc-settings", name))
        .exec(exec)
        .start())
}

/// The statements both servers run, in order, on one connection: see [`Compare`].
const SCRIPT: &[(&str, Compare)] = &[
    // Errors: 55P02 for postmaster, internal and sighup settings.
    ("SET max_connections = 1", Compare::Exact),
    ("SET port = 1", Compare::Exact),
    ("SET server_version = '1'", Compare::Exact),
    ("SET authentication_timeout = '10s'", Compare::Exact),
    // 42704 for unknown names, in SET, SHOW and RESET.
    ("SET no_such = 1", Compare::Exact),
    ("SHOW no_such", Compare::Exact),
    ("RESET no_such", Compare::Exact),
    // 22023 for bad values, with PostgreSQL's hints.
    ("SET work_mem = 'x'", Compare::Exact),
    // PostgreSQL 16 added the unit to the bounds (guc.c's parse_and_validate_value).
    (
        "SET work_mem = '-5'",
        Compare::Newer("ERROR 22023: -5 kB is outside the valid range for parameter \"work_mem\" (64 kB .. 2147483647 kB)"),
    ),
    (
        "SET work_mem = 10",
        Compare::Newer("ERROR 22023: 10 kB is outside the valid range for parameter \"work_mem\" (64 kB .. 2147483647 kB)"),
    ),
    ("SET work_mem = '3 parsecs'", Compare::Exact),
    ("SET enable_seqscan = 'maybe'", Compare::Exact),
    // PostgreSQL 15 names the parameter as typed (down-cased by the parser); the guc crate
    // names it as the table spells it (which PostgreSQL 18 does is not checked here).
    (
        "SET IntervalStyle = 'bogus'",
        Compare::Newer("ERROR 22023: invalid value for parameter \"IntervalStyle\": \"bogus\" HINT: Available values: postgres, postgres_verbose, sql_standard, iso_8601."),
    ),
    ("SET work_mem TO 1, 2", Compare::Exact),
    // Placeholders.
    ("SET myext.anything = 'v'", Compare::Exact),
    ("SHOW myext.anything", Compare::Exact),
    ("SHOW myext.nothing", Compare::Exact),
    ("SET myext = 1", Compare::Exact),
    // SHOW's unit formatting.
    ("SET work_mem = '8MB'", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    ("SET work_mem = 1024", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    ("SET work_mem = '1536kB'", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    ("SET statement_timeout = 300000", Compare::Exact),
    ("SHOW statement_timeout", Compare::Exact),
    ("SET statement_timeout = '90s'", Compare::Exact),
    ("SHOW statement_timeout", Compare::Exact),
    ("SET work_mem TO DEFAULT", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    ("SHOW max_connections", Compare::Exact),
    ("SHOW shared_memory_size", Compare::Digits),
    ("SET TIME ZONE 'UTC'", Compare::Exact),
    ("SHOW TimeZone", Compare::Exact),
    ("SET log_min_messages = 'debug1'", Compare::Exact),
    ("SHOW log_min_messages", Compare::Exact),
    // Transactions: ROLLBACK undoes, COMMIT keeps, SET LOCAL ends with its transaction.
    ("SET application_name = 'orig'", Compare::Exact),
    ("BEGIN", Compare::Exact),
    ("SET application_name = 'a'", Compare::Exact),
    ("SHOW application_name", Compare::Exact),
    ("ROLLBACK", Compare::Exact),
    ("SHOW application_name", Compare::Exact),
    ("BEGIN", Compare::Exact),
    ("SET application_name = 'b'", Compare::Exact),
    ("COMMIT", Compare::Exact),
    ("SHOW application_name", Compare::Exact),
    ("BEGIN", Compare::Exact),
    ("SET LOCAL work_mem = '16MB'", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    ("COMMIT", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    ("SET LOCAL work_mem = '16MB'", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    // An error aborts the block; ROLLBACK undoes its SET.
    ("BEGIN", Compare::Exact),
    ("SET work_mem = '32MB'", Compare::Exact),
    ("SET no_such = 1", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    ("ROLLBACK", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    // A failing multi-statement query is one transaction: its SET is undone.
    ("SET work_mem = '8MB'; SET no_such = 1", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    (
        "SET work_mem = '8MB'; SET LOCAL work_mem = '9MB'; SHOW work_mem",
        Compare::Exact,
    ),
    ("SHOW work_mem", Compare::Exact),
    // RESET and RESET ALL.
    ("SET work_mem = '64MB'", Compare::Exact),
    ("SET search_path = a, \"B c\"", Compare::Exact),
    ("SHOW search_path", Compare::Exact),
    ("RESET ALL", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    ("SHOW search_path", Compare::Exact),
    ("SHOW myext.anything", Compare::Exact),
    ("SET SESSION work_mem = '2MB'", Compare::Exact),
    ("RESET work_mem", Compare::Exact),
    ("SHOW work_mem", Compare::Exact),
    ("RESET max_connections", Compare::Exact),
];

/// How our outcome is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Equal to PostgreSQL 15's.
    Exact,
    /// Equal to PostgreSQL 15's with every run of digits replaced (sizes that depend on the
    /// build and the machine).
    Digits,
    /// Where 15 differs from newer PostgreSQL: ours must be this text (15's outcome is printed
    /// beside it).
    Newer(&'static str),
}

/// What one statement did, as text: rows, or the error's fields, and the warnings before.
fn outcome(c: &mut postgres::Client, notices: &Mutex<Vec<String>>, sql: &str) -> String {
    let mut out = String::new();
    match c.simple_query(sql) {
        Ok(msgs) => {
            for m in msgs {
                if let postgres::SimpleQueryMessage::Row(r) = m {
                    let cols: Vec<&str> =
                        (0..r.len()).map(|i| r.get(i).unwrap_or("NULL")).collect();
                    out.push_str(&format!("row {cols:?}; "));
                }
            }
            out.push_str("ok");
        }
        Err(e) => match e.as_db_error() {
            Some(d) => {
                out.push_str(&format!(
                    "{} {}: {}",
                    d.severity(),
                    d.code().code(),
                    d.message()
                ));
                if let Some(x) = d.detail() {
                    out.push_str(&format!(" DETAIL: {x}"));
                }
                if let Some(x) = d.hint() {
                    out.push_str(&format!(" HINT: {x}"));
                }
            }
            None => out.push_str(&format!("client error: {e}")),
        },
    }
    let mut n = notices.lock().unwrap_or_else(|e| e.into_inner());
    let warnings: String = n.drain(..).map(|w| format!("{w}; ")).collect();
    format!("{warnings}{out}")
}

/// The warnings a client received, oldest first.
type Notices = Arc<Mutex<Vec<String>>>;

/// A client that records the warnings the server sends.
fn client_with_notices(sock: &Path, port: u16) -> Result<(postgres::Client, Notices), String> {
    let notices: Notices = Arc::default();
    let sink = notices.clone();
    let c = postgres::Config::new()
        .host_path(sock)
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(10))
        .notice_callback(move |n| {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                "{} {}: {}",
                n.severity(),
                n.code().code(),
                n.message()
            ))
        })
        .connect(postgres::NoTls)
        .map_err(|e| format!("connect: {e}"))?;
    Ok((c, notices))
}

fn digits_blurred(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(ch);
        }
    }
    out
}

fn pg15() -> Postgres15 {
    ok(Postgres15::start("settings"))
}

fn set_show_reset_rollback_match_postgresql() {
    let ours = server("script", false);
    let pg = pg15();
    let (mut a, an) = ok(client_with_notices(ours.sock_dir(), ours.port()));
    let (mut b, bn) = ok(client_with_notices(pg.sock_dir(), pg.port()));
    let mut diffs = Vec::new();
    for (sql, how) in SCRIPT {
        let (x, y) = (outcome(&mut a, &an, sql), outcome(&mut b, &bn, sql));
        let (x, y) = match how {
            Compare::Exact => (x, y),
            Compare::Digits => (digits_blurred(&x), digits_blurred(&y)),
            Compare::Newer(want) => {
                println!("{sql}\n  pgipc:         {x}\n  PostgreSQL 15: {y}");
                (x, (*want).to_owned())
            }
        };
        if x != y {
            diffs.push(format!("{sql}\n  pgipc:    {x}\n  expected: {y}"));
        }
    }
    println!("{} statements compared with PostgreSQL 15", SCRIPT.len());
    assert!(
        diffs.is_empty(),
        "{} of {} outcomes differ:\n{}",
        diffs.len(),
        SCRIPT.len(),
        diffs.join("\n")
    );
    // SHOW shared_memory_size has a unit (PostgreSQL 18 shows e.g. "143MB").
    let v = outcome(&mut a, &an, "SHOW shared_memory_size");
    assert!(digits_blurred(&v) == "row [\"NMB\"]; ok", "{v}");
}

fn show_all_has_postgresql_columns() {
    let ours = server("showall", false);
    let pg = pg15();
    let cols = |c: &mut postgres::Client| -> (Vec<String>, Vec<(String, String)>) {
        let msgs = c.simple_query("SHOW ALL").expect("SHOW ALL");
        let mut names = Vec::new();
        let mut rows = Vec::new();
        for m in msgs {
            match m {
                postgres::SimpleQueryMessage::RowDescription(d) => {
                    names = d.iter().map(|c| c.name().to_owned()).collect()
                }
                postgres::SimpleQueryMessage::Row(r) => rows.push((
                    r.get(0).unwrap_or("").to_owned(),
                    r.get(1).unwrap_or("").to_owned(),
                )),
                _ => {}
            }
        }
        (names, rows)
    };
    let mut a = ok(ours.client().map_err(|e| e.to_string()));
    let mut b = ok(pg.client().map_err(|e| e.to_string()));
    let ((na, ra), (nb, rb)) = (cols(&mut a), cols(&mut b));
    assert_eq!(na, nb);
    assert_eq!(na, ["name", "setting", "description"]);
    for rows in [&ra, &rb] {
        let mut sorted = rows.clone();
        sorted.sort_by_key(|(n, _)| n.to_ascii_lowercase());
        assert_eq!(rows, &sorted, "sorted by name");
    }
    // Settings initdb does not write into PostgreSQL's postgresql.conf have their defaults.
    for name in [
        "work_mem",
        "statement_timeout",
        "bgwriter_delay",
        "search_path",
    ] {
        let get = |r: &[(String, String)]| r.iter().find(|(n, _)| n == name).cloned();
        assert_eq!(get(&ra), get(&rb), "{name}");
    }
    println!(
        "SHOW ALL: {} rows here, {} in PostgreSQL 15",
        ra.len(),
        rb.len()
    );
}

/// `psql -c '\encoding'` after `sql`, trimmed.
fn psql_encoding(mut cmd: Command) -> String {
    let o = output_within(&mut cmd, Duration::from_secs(30)).expect("psql");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn psql_encoding_shows_what_the_server_reported() {
    let ours = server("encoding", false);
    let pg = pg15();
    let flags = ["-A", "-t", "-q"];
    let latin1 = ["SET client_encoding = 'LATIN1'", "\\encoding"];
    assert_eq!(
        psql_encoding(ours.psql_command(&flags, &["\\encoding"])),
        "UTF8"
    );
    assert_eq!(
        psql_encoding(pg.psql_command(&flags, &["\\encoding"])),
        "UTF8"
    );
    let (x, y) = (
        psql_encoding(ours.psql_command(&flags, &latin1)),
        psql_encoding(pg.psql_command(&flags, &latin1)),
    );
    assert_eq!((x.as_str(), y.as_str()), ("LATIN1", "LATIN1"));
    // Rolled back: psql follows the ParameterStatus of the undone value.
    let rolled = [
        "BEGIN",
        "SET client_encoding = 'LATIN1'",
        "ROLLBACK",
        "\\encoding",
    ];
    let (x, y) = (
        psql_encoding(ours.psql_command(&flags, &rolled)),
        psql_encoding(pg.psql_command(&flags, &rolled)),
    );
    assert_eq!(x, y);
    assert_eq!(x, "UTF8");
}

/// What the reload case needs of a server.
trait Reloadable {
    fn conf(&self) -> PathBuf;
    fn hup(&mut self);
    fn log(&self) -> String;
    fn show(&self, name: &str) -> String;
    fn session(&self) -> postgres::Client;
}

impl Reloadable for TestServer {
    fn conf(&self) -> PathBuf {
        self.data_dir().join("postgresql.conf")
    }
    fn hup(&mut self) {
        ok(self.signal(libc::SIGHUP));
    }
    fn log(&self) -> String {
        self.log_text()
    }
    fn show(&self, name: &str) -> String {
        ok(self.psql_ok(&format!("SHOW {name}")))
    }
    fn session(&self) -> postgres::Client {
        self.client().expect("client")
    }
}

impl Reloadable for Postgres15 {
    fn conf(&self) -> PathBuf {
        self.data_dir().join("postgresql.conf")
    }
    fn hup(&mut self) {
        ok(self.signal(libc::SIGHUP));
    }
    fn log(&self) -> String {
        self.log_text()
    }
    fn show(&self, name: &str) -> String {
        let o = output_within(
            &mut self.psql_command(&["-A", "-t"], &[&format!("SHOW {name}")]),
            Duration::from_secs(30),
        )
        .expect("psql");
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }
    fn session(&self) -> postgres::Client {
        self.client().expect("client")
    }
}

fn wait_log(s: &dyn Reloadable, needle: &str) {
    let r = wait_for(needle, Duration::from_secs(15), || s.log().contains(needle));
    assert!(r.is_ok(), "log never said {needle:?}:\n{}", s.log());
}

fn session_show(c: &mut postgres::Client, name: &str) -> String {
    let msgs = c.simple_query(&format!("SHOW {name}")).expect("SHOW");
    msgs.into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default()
}

/// The reload script, the same for both servers.
fn reload_case(s: &mut dyn Reloadable, who: &str) {
    let conf = s.conf();
    let original = std::fs::read_to_string(&conf).expect("conf");
    let mut old_session = s.session();
    assert_eq!(
        session_show(&mut old_session, "bgwriter_delay"),
        "200ms",
        "{who}"
    );
    // A syntax error: nothing applied, the error with file and line.
    let bad = format!("{original}\nbgwriter_delay = 300ms\nthis is bad\n");
    std::fs::write(&conf, &bad).expect("write conf");
    let line = bad.lines().count();
    s.hup();
    wait_log(
        s,
        &format!(
            "syntax error in file \"{}\" line {line}, near token \"bad\"",
            conf.display()
        ),
    );
    wait_log(
        s,
        &format!(
            "configuration file \"{}\" contains errors; no changes were applied",
            conf.display()
        ),
    );
    assert_eq!(s.show("bgwriter_delay"), "200ms", "{who}: nothing applied");
    // Fixed, with a placeholder line: applied and logged, in old and new sessions.
    let good = format!("{original}\nbgwriter_delay = 300ms\nmyext.setting = 'v'\n");
    std::fs::write(&conf, &good).expect("write conf");
    s.hup();
    wait_log(s, "parameter \"bgwriter_delay\" changed to \"300ms\"");
    assert_eq!(s.show("bgwriter_delay"), "300ms", "{who}");
    assert_eq!(s.show("myext.setting"), "v", "{who}");
    let r = wait_for("the old session's reload", Duration::from_secs(10), || {
        session_show(&mut old_session, "bgwriter_delay") == "300ms"
    });
    assert!(r.is_ok(), "{who}: an open session did not re-read the file");
    // A postmaster-context change waits for a restart.
    std::fs::write(&conf, format!("{good}max_connections = 7\n")).expect("write conf");
    s.hup();
    wait_log(
        s,
        "parameter \"max_connections\" cannot be changed without restarting the server",
    );
    wait_log(
        s,
        &format!(
            "configuration file \"{}\" contains errors; unaffected changes were applied",
            conf.display()
        ),
    );
    assert_eq!(s.show("max_connections"), "100", "{who}");
    println!("{who}: bad line refused with file:line, placeholder accepted, restart noted");
}

fn reload_bad_line_applies_nothing() {
    for exec in [false, true] {
        let mut ours = server(if exec { "reload-exec" } else { "reload" }, exec);
        reload_case(
            &mut ours,
            if exec { "pgipc (exec)" } else { "pgipc (fork)" },
        );
    }
    let mut pg = pg15();
    reload_case(&mut pg, "PostgreSQL 15");
}

fn dash_c_prints_base_units_as_postgresql() {
    let ours = server("dash-c", false);
    let pg = pg15();
    let names = [
        "work_mem",
        "bgwriter_delay",
        "statement_timeout",
        "max_connections",
        "unix_socket_permissions",
        "autovacuum_naptime",
        "checkpoint_timeout",
        "enable_seqscan",
        "IntervalStyle",
    ];
    for name in names {
        let mut c = postmaster();
        c.arg("-D").arg(ours.data_dir()).args(["-C", name]);
        let x = output_within(c.stdin(Stdio::null()), Duration::from_secs(30)).expect("-C");
        let mut c = Postgres15::as_postgres("postgres");
        c.arg("-D").arg(pg.data_dir()).args(["-C", name]);
        let y = output_within(c.stdin(Stdio::null()), Duration::from_secs(30)).expect("-C");
        assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
        assert_eq!(
            String::from_utf8_lossy(&x.stdout),
            String::from_utf8_lossy(&y.stdout),
            "-C {name}"
        );
    }
    println!(
        "-C: {} settings print as PostgreSQL 15 prints them",
        names.len()
    );
}

fn exec_children_start_from_the_snapshot() {
    let ours = ok(Builder::in_dir(scratch("pgipc-settings", "snapshot"))
        .exec(true)
        .set("work_mem=8MB")
        .set("myext.from_cli=x")
        .start());
    assert_eq!(ok(ours.psql_ok("SHOW work_mem")), "8MB");
    assert_eq!(ok(ours.psql_ok("SHOW myext.from_cli")), "x");
    // Exec mode forces memfd (an override), and the computed sizes travel too.
    assert_eq!(ok(ours.psql_ok("SHOW shared_memory_type")), "memfd");
    let size = ok(ours.psql_ok("SHOW shared_memory_size"));
    assert_eq!(digits_blurred(&size), "NMB", "{size}");
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("settings", WATCHDOG);
    let cases: [(&str, fn()); 6] = [
        (
            "set_show_reset_rollback_match_postgresql",
            set_show_reset_rollback_match_postgresql,
        ),
        (
            "show_all_has_postgresql_columns",
            show_all_has_postgresql_columns,
        ),
        (
            "psql_encoding_shows_what_the_server_reported",
            psql_encoding_shows_what_the_server_reported,
        ),
        (
            "reload_bad_line_applies_nothing",
            reload_bad_line_applies_nothing,
        ),
        (
            "dash_c_prints_base_units_as_postgresql",
            dash_c_prints_base_units_as_postgresql,
        ),
        (
            "exec_children_start_from_the_snapshot",
            exec_children_start_from_the_snapshot,
        ),
    ];
    // One test thread: the cases run one after the other on the main thread.
    pgipc_tests::harness::run_cases(&cases)
}
