//! Server log lines in PostgreSQL's style: `2026-11-22 15:10:26.123 UTC [4242] LOG:  message`,
//! written synchronously to stderr (no background thread: server processes are
//! single-threaded). `tracing` events from the library crates come out the same way.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// PostgreSQL's message severities that the postmaster writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// `DEBUG1`.
    Debug1,
    /// `LOG`.
    Log,
    /// `WARNING`.
    Warning,
    /// `ERROR`.
    Error,
    /// `FATAL`.
    Fatal,
    /// `PANIC`: the process aborts right after (see [`install_panic_hook`]).
    Panic,
    /// `DETAIL` continuation line.
    Detail,
    /// `HINT` continuation line.
    Hint,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Debug1 => "DEBUG1",
            Severity::Log => "LOG",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Panic => "PANIC",
            Severity::Detail => "DETAIL",
            Severity::Hint => "HINT",
        }
    }
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The `%m` timestamp: milliseconds, UTC.
pub(crate) fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, da) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{da:02} {:02}:{:02}:{:02}.{:03} UTC",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        d.subsec_millis()
    )
}

fn prefix() -> String {
    format!("{} [{}] ", timestamp(SystemTime::now()), std::process::id())
}

/// Writes one log line.
pub(crate) fn elog(severity: Severity, msg: &dyn fmt::Display) {
    let line = format!("{}{}:  {}\n", prefix(), severity.as_str(), msg);
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Formats `tracing` events as PostgreSQL log lines.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PgFormat;

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
        let sev = match *event.metadata().level() {
            Level::ERROR => Severity::Error,
            Level::WARN => Severity::Warning,
            Level::INFO => Severity::Log,
            _ => Severity::Debug1,
        };
        write!(writer, "{}{}:  ", prefix(), sev.as_str())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Routes `tracing` events (LOG and above unless `debug`) to stderr in this format.
pub(crate) fn init(debug: bool) {
    let level = if debug { Level::DEBUG } else { Level::INFO };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(PgFormat)
        .try_init();
}

/// Makes every panic in this process a PostgreSQL PANIC: one `PANIC:  <message>` line (and a
/// `DETAIL:` with where it happened) in the server log, then `abort()`.
///
/// A panic must never unwind in a server process: unwinding runs guards' `Drop`, which releases
/// LWLocks and spinlocks over shared data the panic left half-updated, and lets the process
/// leave with a clean exit code. Aborting instead kills it with SIGABRT, which the postmaster
/// reads as a crash: every other child gets SIGQUIT (clients see 57P02) and shared memory is
/// built anew. Release builds also compile with `panic = "abort"`; the hook is what makes test
/// and debug builds (always compiled to unwind) behave the same. Installed first thing by the
/// `postmaster` binary, so the postmaster, every forked child (which inherits it) and every
/// exec'd child (which runs `main` again) have it.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic with a non-string payload");
        elog(Severity::Panic, &msg);
        if let Some(at) = info.location() {
            elog(
                Severity::Detail,
                &format_args!("at {}:{}:{}", at.file(), at.line(), at.column()),
            );
        }
        std::process::abort();
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00.000 UTC");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_360_226_123);
        assert_eq!(timestamp(t), "2026-11-22 15:10:26.123 UTC");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29 00:00:00.000 UTC");
    }
}
