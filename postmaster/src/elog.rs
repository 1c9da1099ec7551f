//! Server log lines in PostgreSQL's style: `2026-11-22 15:10:26.123 UTC [4242] LOG:  message`,
//! written synchronously to stderr (no background thread: server processes are
//! single-threaded) by the `pgipc_elog` crate, which follows `log_line_prefix`,
//! `log_timezone` and `log_min_messages`. `tracing` events from the library crates come out the
//! same way. This module keeps the postmaster's short `elog(Severity, msg)` form.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// PostgreSQL's message severities that the postmaster writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// `LOG`.
    Log,
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
            Severity::Log => "LOG",
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

/// A timestamp with milliseconds, UTC (the control file's times; the log's own follow
/// `log_timezone`).
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

/// Writes one log line: a severity through the server log (`log_min_messages`,
/// `log_line_prefix`, `log_timezone`: the `pgipc_elog` crate), a continuation line as it is.
pub(crate) fn elog(severity: Severity, msg: &dyn fmt::Display) {
    let sev = match severity {
        Severity::Log => pgipc_elog::Severity::Log,
        Severity::Error => pgipc_elog::Severity::Error,
        Severity::Fatal => pgipc_elog::Severity::Fatal,
        Severity::Panic => pgipc_elog::Severity::Panic,
        Severity::Detail | Severity::Hint => {
            return pgipc_elog::continuation(severity.as_str(), msg);
        }
    };
    pgipc_elog::elog(sev, msg);
}

/// Routes `tracing` events (LOG and above unless `debug`) to the server log.
pub(crate) fn init(debug: bool) {
    pgipc_elog::init_tracing(debug);
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
