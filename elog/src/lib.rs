//! The server log: every process writes PostgreSQL's log lines to stderr, synchronously.
//!
//! Mirrors the log half of PostgreSQL's `utils/error/elog.c` (`send_message_to_server_log`,
//! `log_line_prefix`, `is_log_level_output`):
//!
//! ```text
//!  Record { severity, message, detail, hint, context, statement, sqlstate }
//!    │  log_min_messages says no ─► dropped
//!    ▼
//!  <prefix>ERROR:  division by zero            (prefix = log_line_prefix, e.g. "%m [%p] ",
//!  <prefix>DETAIL:  …                            the time in log_timezone)
//!  <prefix>HINT:  …
//!  <prefix>CONTEXT:  …
//!  <prefix>STATEMENT:  select 1/0              (when the severity reaches
//!                                               log_min_error_statement)
//!    └─ one write(2) of all the lines
//! ```
//!
//! `tracing` events of the library crates come out through [`PgFormat`] in the same shape: a
//! message that starts with a severity name and two spaces (`"FATAL:  could not …"`) keeps that
//! severity instead of getting a second one from the event's level.
//!
//! # Contract
//! * The configuration and the session's identity (for `%u`, `%d`, `%r`, …) are process-local
//!   (a lock around a static): [`configure`] after settings are loaded or reloaded,
//!   [`set_backend_type`] when a child knows what it is, [`set_session`] when a backend knows
//!   its client. A forked child inherits its parent's; an exec'd child configures itself.
//! * A log line is one `write` per record: records from concurrent processes never interleave
//!   within a record (stderr writes below PIPE_BUF to a pipe or O_APPEND file are atomic).
//!
//! # What it does not do
//! No `logging_collector`, csvlog, jsonlog or syslog: `log_destination` other than stderr is
//! not honoured. No messages to clients (that is `pgipc_libpq::ErrorFields`' job).

mod prefix;

use std::fmt;
use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use prefix::format_prefix;
pub(crate) use prefix::Data;

/// PostgreSQL's message levels, in its numeric order (`DEBUG5` lowest, `PANIC` highest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `DEBUG5`.
    Debug5,
    /// `DEBUG4`.
    Debug4,
    /// `DEBUG3`.
    Debug3,
    /// `DEBUG2`.
    Debug2,
    /// `DEBUG1`.
    Debug1,
    /// `LOG`: server-side information (ranks just above ERROR for the log, see
    /// [`Severity::is_logged_at`]).
    Log,
    /// `INFO`.
    Info,
    /// `NOTICE`.
    Notice,
    /// `WARNING`.
    Warning,
    /// `ERROR`.
    Error,
    /// `FATAL`.
    Fatal,
    /// `PANIC`.
    Panic,
}

impl Severity {
    /// Every level, lowest first.
    pub const ALL: [Severity; 12] = [
        Severity::Debug5,
        Severity::Debug4,
        Severity::Debug3,
        Severity::Debug2,
        Severity::Debug1,
        Severity::Log,
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Fatal,
        Severity::Panic,
    ];

    /// The name in a log line (`ERROR`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Debug5 => "DEBUG5",
            Severity::Debug4 => "DEBUG4",
            Severity::Debug3 => "DEBUG3",
            Severity::Debug2 => "DEBUG2",
            Severity::Debug1 => "DEBUG1",
            Severity::Log => "LOG",
            Severity::Info => "INFO",
            Severity::Notice => "NOTICE",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Panic => "PANIC",
        }
    }

    /// A level by its name in a log line or a setting (`error`, `DEBUG1`; `debug` is
    /// `DEBUG2`, as in PostgreSQL's `server_message_level_options`).
    pub fn from_name(name: &str) -> Option<Severity> {
        let n = name.trim().to_ascii_uppercase();
        if n == "DEBUG" {
            return Some(Severity::Debug2);
        }
        Severity::ALL.into_iter().find(|s| s.name() == n)
    }

    /// Whether a message of this level goes to the log when the threshold (log_min_messages
    /// or log_min_error_statement) is `min` (PostgreSQL's `is_log_level_output`): LOG ranks
    /// between ERROR and FATAL there, unlike for clients.
    pub fn is_logged_at(self, min: Severity) -> bool {
        if self == Severity::Log {
            min == Severity::Log || min <= Severity::Error
        } else if min == Severity::Log {
            self >= Severity::Fatal
        } else {
            self >= min
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One message for the log: the primary line and its continuation lines.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The level.
    pub severity: Severity,
    /// The primary message.
    pub message: &'a str,
    /// `DETAIL:` line.
    pub detail: Option<&'a str>,
    /// `HINT:` line.
    pub hint: Option<&'a str>,
    /// `CONTEXT:` line.
    pub context: Option<&'a str>,
    /// The statement being run: a `STATEMENT:` line when the severity reaches
    /// `log_min_error_statement`.
    pub statement: Option<&'a str>,
    /// The SQLSTATE, for `%e` (`00000` when none).
    pub sqlstate: Option<&'a str>,
    /// Where in the statement the error is (1-based characters): ` at character N` after
    /// the message, as PostgreSQL writes it to the log.
    pub cursor_position: Option<u32>,
}

impl<'a> Record<'a> {
    /// A record with only a primary message.
    pub fn new(severity: Severity, message: &'a str) -> Self {
        Record {
            severity,
            message,
            detail: None,
            hint: None,
            context: None,
            statement: None,
            sqlstate: None,
            cursor_position: None,
        }
    }
}

/// The settings the log follows (PostgreSQL's GUCs of the same names).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `log_min_messages`.
    pub min_messages: Severity,
    /// `log_min_error_statement`.
    pub min_error_statement: Severity,
    /// `log_line_prefix`.
    pub line_prefix: String,
    /// `log_timezone`.
    pub timezone: jiff::tz::TimeZone,
}

impl Default for LogConfig {
    /// PostgreSQL's defaults (with `log_timezone` UTC).
    fn default() -> Self {
        LogConfig {
            min_messages: Severity::Warning,
            min_error_statement: Severity::Error,
            line_prefix: "%m [%p] ".to_owned(),
            timezone: jiff::tz::TimeZone::UTC,
        }
    }
}

impl LogConfig {
    /// The configuration `settings` describe. An unknown `log_timezone` name falls back to
    /// UTC (the settings layer has accepted it; the log must still be written).
    pub fn from_settings(settings: &pgipc_guc::Settings) -> LogConfig {
        let d = LogConfig::default();
        let level = |name: &str, or: Severity| {
            settings
                .show(name)
                .ok()
                .and_then(|v| Severity::from_name(&v))
                .unwrap_or(or)
        };
        LogConfig {
            min_messages: level("log_min_messages", d.min_messages),
            min_error_statement: level("log_min_error_statement", d.min_error_statement),
            line_prefix: settings.text("log_line_prefix").to_owned(),
            timezone: timezone(settings.text("log_timezone")),
        }
    }
}

/// A time zone by name from the system's tz database (`GMT`, `Europe/Paris`, `UTC`), else as
/// a POSIX time-zone string (`UTC+3`, three hours *west* of Greenwich, as PostgreSQL reads it
/// too), else UTC.
pub fn timezone(name: &str) -> jiff::tz::TimeZone {
    if name.eq_ignore_ascii_case("utc") || name.is_empty() {
        return jiff::tz::TimeZone::UTC;
    }
    jiff::tz::TimeZone::get(name)
        .or_else(|_| jiff::tz::TimeZone::posix(name))
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// Who is logging, for the prefix's escapes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// `%u`.
    pub user: String,
    /// `%d`.
    pub database: String,
    /// `%a`.
    pub application_name: String,
    /// `%h` (`[local]` on a Unix socket).
    pub remote_host: String,
    /// With `%r`: `host(port)` when there is a port.
    pub remote_port: String,
}

#[derive(Debug)]
struct State {
    config: Option<LogConfig>,
    backend_type: &'static str,
    session: SessionInfo,
    /// `%l`: the number of records this process wrote.
    line_number: u64,
    /// `%c` and `%s`: when this process (session) started.
    start: Option<SystemTime>,
}

static STATE: Mutex<State> = Mutex::new(State {
    config: None,
    backend_type: "postmaster",
    session: SessionInfo {
        user: String::new(),
        database: String::new(),
        application_name: String::new(),
        remote_host: String::new(),
        remote_port: String::new(),
    },
    line_number: 0,
    start: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    // A panic holding it aborts the process (the server's panic hook): poison is moot.
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Follows `settings` from now on (after a load or a reload).
pub fn configure(settings: &pgipc_guc::Settings) {
    state().config = Some(LogConfig::from_settings(settings));
}

/// Follows `config` from now on.
pub fn set_config(config: LogConfig) {
    state().config = Some(config);
}

/// This process's kind for `%b` (`checkpointer`, `client backend`); its start time (for `%c`
/// and `%s`) is taken now.
pub fn set_backend_type(desc: &'static str) {
    let mut st = state();
    st.backend_type = desc;
    st.start = Some(SystemTime::now());
    st.line_number = 0;
}

/// The client this backend serves, for `%u %d %a %h %r`.
pub fn set_session(info: SessionInfo) {
    state().session = info;
}

/// Whether a record of `severity` would be written (`log_min_messages`).
pub fn is_logged(severity: Severity) -> bool {
    let st = state();
    let min = st
        .config
        .as_ref()
        .map_or(Severity::Warning, |c| c.min_messages);
    severity.is_logged_at(min)
}

/// Writes `record` if `log_min_messages` lets it through: its lines, each with the prefix,
/// in one write to stderr.
pub fn emit(record: &Record<'_>) {
    let text = {
        let mut st = state();
        let cfg = st.config.clone().unwrap_or_default();
        if !record.severity.is_logged_at(cfg.min_messages) {
            return;
        }
        st.line_number += 1;
        render(&st, &cfg, record, SystemTime::now())
    };
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes one message of `severity` (the usual case: no DETAIL or statement).
pub fn elog(severity: Severity, message: &dyn fmt::Display) {
    emit(&Record::new(severity, &message.to_string()));
}

/// Writes a continuation line (`DETAIL`, `HINT`, `CONTEXT`, `STATEMENT`) on its own, with
/// the prefix, for code that reports them one at a time.
pub fn continuation(label: &str, message: &dyn fmt::Display) {
    let text = {
        let st = state();
        let cfg = st.config.clone().unwrap_or_default();
        let p = format_prefix(&cfg, &st.prefix_data(None), SystemTime::now());
        format!("{p}{label}:  {message}\n")
    };
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

impl State {
    fn prefix_data<'a>(&'a self, sqlstate: Option<&'a str>) -> Data<'a> {
        Data {
            pid: std::process::id(),
            backend_type: self.backend_type,
            session: &self.session,
            line_number: self.line_number,
            start: self.start,
            sqlstate,
        }
    }
}

/// The lines of `record` as they go to the log.
fn render(st: &State, cfg: &LogConfig, record: &Record<'_>, now: SystemTime) -> String {
    let p = format_prefix(cfg, &st.prefix_data(record.sqlstate), now);
    let mut out = format!("{p}{}:  {}", record.severity.name(), record.message);
    if let Some(n) = record.cursor_position.filter(|n| *n > 0) {
        out.push_str(&format!(" at character {n}"));
    }
    out.push('\n');
    for (label, text) in [
        ("DETAIL", record.detail),
        ("HINT", record.hint),
        ("CONTEXT", record.context),
    ] {
        if let Some(t) = text {
            out.push_str(&format!("{p}{label}:  {t}\n"));
        }
    }
    if let Some(s) = record.statement {
        if record.severity.is_logged_at(cfg.min_error_statement) {
            out.push_str(&format!("{p}STATEMENT:  {s}\n"));
        }
    }
    out
}

/// Formats `tracing` events as log records: the level maps to a severity (ERROR, WARNING,
/// LOG, DEBUG1), unless the message names its own (`"FATAL:  …"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PgFormat;

/// The severity a message names at its start (`"FATAL:  x"` → FATAL, `"x"`), and the rest.
pub fn split_severity(message: &str) -> (Option<Severity>, &str) {
    if let Some((head, rest)) = message.split_once(":  ") {
        if let Some(s) = Severity::from_name(head).filter(|_| head == head.to_ascii_uppercase()) {
            return (Some(s), rest);
        }
    }
    (None, message)
}

impl<S, N> FormatEvent<S, N> for PgFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => Severity::Error,
            Level::WARN => Severity::Warning,
            Level::INFO => Severity::Log,
            _ => Severity::Debug1,
        };
        let mut text = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut text), event)?;
        let (named, rest) = split_severity(&text);
        let severity = named.unwrap_or(level);
        let mut st = state();
        let cfg = st.config.clone().unwrap_or_default();
        if !severity.is_logged_at(cfg.min_messages) {
            return Ok(());
        }
        st.line_number += 1;
        let line = render(&st, &cfg, &Record::new(severity, rest), SystemTime::now());
        writer.write_str(&line)
    }
}

/// Routes `tracing` events to stderr through [`PgFormat`] (`log_min_messages` then decides;
/// `debug` lets DEBUG events reach it at all).
pub fn init_tracing(debug: bool) {
    let level = if debug { Level::DEBUG } else { Level::INFO };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(PgFormat)
        .try_init();
}

#[cfg(test)]
mod tests;
