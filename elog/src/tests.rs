use super::*;
use std::time::{Duration, UNIX_EPOCH};

/// 2026-12-07 19:30:00.123 UTC.
fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_796_671_800_123)
}

fn state_with(session: SessionInfo) -> State {
    State {
        config: None,
        backend_type: "client backend",
        session,
        line_number: 3,
        start: Some(UNIX_EPOCH + Duration::from_secs(1_796_671_790)),
    }
}

fn check(prefix: &str, tz: &str, session: SessionInfo, expected: &str) {
    let cfg = LogConfig {
        line_prefix: prefix.to_owned(),
        timezone: timezone(tz),
        ..LogConfig::default()
    };
    let st = state_with(session);
    let got = format_prefix(&cfg, &st.prefix_data(Some("22012")), at());
    assert_eq!(
        got,
        expected.replace("<pid>", &std::process::id().to_string())
    );
}

fn client() -> SessionInfo {
    SessionInfo {
        user: "alice".into(),
        database: "db".into(),
        application_name: "psql".into(),
        remote_host: "127.0.0.1".into(),
        remote_port: "54321".into(),
    }
}

#[test]
fn prefixes_follow_log_line_prefix_and_log_timezone() {
    check(
        "%m [%p] ",
        "UTC",
        client(),
        "2026-12-07 19:30:00.123 UTC [<pid>] ",
    );
    check("%m ", "GMT", client(), "2026-12-07 19:30:00.123 GMT ");
    check("%t ", "Europe/Paris", client(), "2026-12-07 20:30:00 CET ");
    check(
        "%m ",
        "America/New_York",
        client(),
        "2026-12-07 14:30:00.123 EST ",
    );
    check("%n|", "Asia/Tokyo", client(), "1796671800.123|");
    check("%m ", "UTC+3", client(), "2026-12-07 16:30:00.123 UTC ");
    check(
        "%m ",
        "No/Such_Zone",
        client(),
        "2026-12-07 19:30:00.123 UTC ",
    );
    check(
        "%u@%d %a %r %h %e %l %b %%|",
        "UTC",
        client(),
        "alice@db psql 127.0.0.1(54321) 127.0.0.1 22012 3 client backend %|",
    );
    check("[%-6u][%6d]", "UTC", client(), "[alice ][    db]");
    check(
        "%s %c|",
        "UTC",
        client(),
        &format!("2026-12-07 19:29:50 UTC 6b17092e.{:x}|", std::process::id()),
    );
    // %q: what follows is only for processes with a client.
    check("%p%q %u", "UTC", SessionInfo::default(), "<pid>");
    check("%p%q %u", "UTC", client(), "<pid> alice");
    check("%z%k!", "UTC", client(), "!");
    // %i: the process title's activity (titles stay in memory here: no argument area saved).
    pgipc_ps_status::init_ps_display(
        "alice db 127.0.0.1(54321)",
        &pgipc_ps_status::TitleOptions {
            cluster_name: String::new(),
            update_process_title: true,
        },
    );
    pgipc_ps_status::set_ps_display("SELECT");
    check("[%i]", "UTC", client(), "[SELECT]");
    check("[%i]", "UTC", SessionInfo::default(), "[]");
}

#[test]
fn one_severity_per_line_and_statement_per_log_min_error_statement() {
    let cfg = LogConfig {
        line_prefix: "P ".into(),
        ..LogConfig::default()
    };
    let st = state_with(client());
    let r = Record {
        detail: Some("d"),
        hint: Some("h"),
        statement: Some("select 1/0"),
        cursor_position: Some(9),
        ..Record::new(Severity::Error, "division by zero")
    };
    assert_eq!(
        render(&st, &cfg, &r, at()),
        "P ERROR:  division by zero at character 9\nP DETAIL:  d\nP HINT:  h\nP STATEMENT:  select 1/0\n"
    );
    let fatal_only = LogConfig {
        min_error_statement: Severity::Fatal,
        ..cfg.clone()
    };
    assert_eq!(
        render(
            &st,
            &fatal_only,
            &Record {
                statement: Some("x"),
                ..Record::new(Severity::Error, "e")
            },
            at()
        ),
        "P ERROR:  e\n"
    );
}

#[test]
fn log_ranks_between_error_and_fatal_for_the_log() {
    use Severity::*;
    assert!(Log.is_logged_at(Warning));
    assert!(Log.is_logged_at(Error));
    assert!(!Log.is_logged_at(Fatal));
    assert!(!Error.is_logged_at(Log));
    assert!(Fatal.is_logged_at(Log));
    assert!(Warning.is_logged_at(Warning));
    assert!(!Notice.is_logged_at(Warning));
    assert!(Debug1.is_logged_at(Debug1));
    assert!(!Debug2.is_logged_at(Debug1));
    assert_eq!(Severity::from_name("debug"), Some(Debug2));
    assert_eq!(Severity::from_name("warning"), Some(Warning));
}

#[test]
fn messages_that_name_their_severity_keep_it() {
    assert_eq!(
        split_severity("FATAL:  could not x"),
        (Some(Severity::Fatal), "could not x")
    );
    assert_eq!(split_severity("plain: text"), (None, "plain: text"));
    assert_eq!(split_severity("Error:  mixed"), (None, "Error:  mixed"));
}
