//! `log_line_prefix`: PostgreSQL's `%` escapes, with its optional padding (`%-10u`, `%5p`).

use crate::{LogConfig, SessionInfo};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the escapes read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Data<'a> {
    pub(crate) pid: u32,
    pub(crate) backend_type: &'a str,
    pub(crate) session: &'a SessionInfo,
    pub(crate) line_number: u64,
    pub(crate) start: Option<SystemTime>,
    pub(crate) sqlstate: Option<&'a str>,
}

fn zoned(t: SystemTime, cfg: &LogConfig) -> Option<jiff::Zoned> {
    let ts = jiff::Timestamp::try_from(t).ok()?;
    Some(ts.to_zoned(cfg.timezone.clone()))
}

/// `%m`: `2026-12-07 19:30:00.123 UTC` in `log_timezone`.
fn with_millis(t: SystemTime, cfg: &LogConfig) -> String {
    zoned(t, cfg).map_or_else(String::new, |z| {
        let ms = z.subsec_nanosecond() / 1_000_000;
        format!(
            "{}.{ms:03} {}",
            z.strftime("%Y-%m-%d %H:%M:%S"),
            z.strftime("%Z")
        )
    })
}

/// `%t` and `%s`: without the milliseconds.
fn seconds(t: SystemTime, cfg: &LogConfig) -> String {
    zoned(t, cfg).map_or_else(String::new, |z| {
        z.strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
    })
}

/// The prefix of a line written at `now` (PostgreSQL's `log_status_format`). Unknown escapes
/// write nothing, as PostgreSQL's do; `%q` ends the prefix in processes with no client.
pub(crate) fn format_prefix(cfg: &LogConfig, d: &Data<'_>, now: SystemTime) -> String {
    let fmt = cfg.line_prefix.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let has_client = !d.session.remote_host.is_empty();
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            // Copy a run of plain text (keeping multi-byte characters whole).
            let start = i;
            while i < fmt.len() && fmt[i] != b'%' {
                i += 1;
            }
            out.push_str(&cfg.line_prefix[start..i]);
            continue;
        }
        i += 1;
        // Optional padding: -?digits.
        let neg = i < fmt.len() && fmt[i] == b'-';
        if neg {
            i += 1;
        }
        let mut width = 0usize;
        while i < fmt.len() && fmt[i].is_ascii_digit() {
            width = width * 10 + usize::from(fmt[i] - b'0');
            i += 1;
        }
        let Some(&esc) = fmt.get(i) else { break };
        i += 1;
        let value: String = match esc {
            b'a' => d.session.application_name.clone(),
            b'u' => d.session.user.clone(),
            b'd' => d.session.database.clone(),
            b'b' => d.backend_type.to_owned(),
            b'p' => d.pid.to_string(),
            b'P' => String::new(),
            b'l' => d.line_number.to_string(),
            b'm' => with_millis(now, cfg),
            b't' => seconds(now, cfg),
            b'n' => {
                let e = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                format!("{}.{:03}", e.as_secs(), e.subsec_millis())
            }
            b's' => d.start.map_or_else(String::new, |s| seconds(s, cfg)),
            b'c' => {
                let s = d
                    .start
                    .and_then(|s| s.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |e| e.as_secs());
                format!("{s:x}.{:x}", d.pid)
            }
            b'h' => d.session.remote_host.clone(),
            b'r' => {
                if d.session.remote_port.is_empty() {
                    d.session.remote_host.clone()
                } else {
                    format!("{}({})", d.session.remote_host, d.session.remote_port)
                }
            }
            b'e' => d.sqlstate.unwrap_or("00000").to_owned(),
            b'x' | b'Q' => "0".to_owned(),
            // The command tag (the title's activity), for processes with a client.
            b'i' if has_client => pgipc_ps_status::get_ps_display(),
            b'v' | b'i' => String::new(),
            b'q' => {
                if !has_client {
                    break;
                }
                continue;
            }
            b'%' => "%".to_owned(),
            _ => continue,
        };
        let n = value.chars().count();
        if width > n {
            let pad = " ".repeat(width - n);
            if neg {
                out.push_str(&value);
                out.push_str(&pad);
            } else {
                out.push_str(&pad);
                out.push_str(&value);
            }
        } else {
            out.push_str(&value);
        }
    }
    out
}
