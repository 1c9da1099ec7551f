//! `log_connections` and `log_disconnections` (PostgreSQL 18's texts, backend_startup.c,
//! postinit.c and postgres.c), and the client's address they and the process title show.
//!
//! PostgreSQL 18's `log_connections` is a list of aspects: `receipt` (`connection received:
//! host=… port=…`), `authentication` (`connection authenticated: …`, only for methods that
//! establish an identity, so never with trust), `authorization` (`connection authorized:
//! user=… database=… application_name=…`), `setup_durations`, or `all`; the old booleans still
//! work (`on` is receipt, authentication and authorization). `setup_durations` is accepted but
//! logs nothing yet: its line needs the fork's start time, which the postmaster does not pass.

use pgipc_elog::Severity;
use pgipc_guc::Settings;
use pgipc_libpq::StartupPacket;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Mutex;
use std::time::Instant;

/// The aspects of `log_connections` that are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogConnections {
    pub(crate) receipt: bool,
    pub(crate) authentication: bool,
    pub(crate) authorization: bool,
    pub(crate) setup_durations: bool,
}

impl LogConnections {
    /// Parses the setting's value (unknown words are ignored; the settings layer validates).
    pub(crate) fn parse(value: &str) -> LogConnections {
        let v = value.trim().to_ascii_lowercase();
        let on = LogConnections {
            receipt: true,
            authentication: true,
            authorization: true,
            setup_durations: false,
        };
        match v.as_str() {
            "on" | "true" | "yes" | "1" => return on,
            "off" | "false" | "no" | "0" | "" => return LogConnections::default(),
            _ => {}
        }
        let mut r = LogConnections::default();
        for w in v.split(',').map(str::trim) {
            match w {
                "receipt" => r.receipt = true,
                "authentication" => r.authentication = true,
                "authorization" => r.authorization = true,
                "setup_durations" => r.setup_durations = true,
                "all" => {
                    r = LogConnections {
                        setup_durations: true,
                        ..on
                    }
                }
                _ => {}
            }
        }
        r
    }
}

#[derive(Debug)]
struct Client {
    host: String,
    port: String,
    /// When the backend started serving the connection (PostgreSQL's MyStartTimestamp).
    since: Instant,
}

static CLIENT: Mutex<Option<Client>> = Mutex::new(None);

fn client() -> std::sync::MutexGuard<'static, Option<Client>> {
    CLIENT.lock().unwrap_or_else(|p| p.into_inner())
}

/// The client's host and port as PostgreSQL shows them (numeric; `[local]` and no port for a
/// Unix socket).
pub(crate) fn remote_of(sock: BorrowedFd<'_>) -> (String, String) {
    use nix::sys::socket::{getpeername, SockaddrLike, SockaddrStorage};
    match getpeername::<SockaddrStorage>(sock.as_raw_fd()) {
        Ok(a) => {
            if let Some(v4) = a.as_sockaddr_in() {
                (v4.ip().to_string(), v4.port().to_string())
            } else if let Some(v6) = a.as_sockaddr_in6() {
                (v6.ip().to_string(), v6.port().to_string())
            } else if a.family() == Some(nix::sys::socket::AddressFamily::Unix) {
                ("[local]".to_owned(), String::new())
            } else {
                (String::new(), String::new())
            }
        }
        Err(_) => (String::new(), String::new()),
    }
}

/// The client's host and port (see [`remote_of`]), once [`received`] has run.
pub(crate) fn remote() -> (String, String) {
    client()
        .as_ref()
        .map(|c| (c.host.clone(), c.port.clone()))
        .unwrap_or_default()
}

/// A connection arrived on `sock`: remembers its address (for the title and `%h`/`%r`) and
/// logs `connection received` when asked to.
pub(crate) fn received(sock: BorrowedFd<'_>, settings: &Settings) {
    let (host, port) = remote_of(sock);
    pgipc_elog::set_session(pgipc_elog::SessionInfo {
        remote_host: host.clone(),
        remote_port: port.clone(),
        ..Default::default()
    });
    if LogConnections::parse(settings.text("log_connections")).receipt {
        let msg = if port.is_empty() {
            format!("connection received: host={host}")
        } else {
            format!("connection received: host={host} port={port}")
        };
        pgipc_elog::elog(Severity::Log, &msg);
    }
    *client() = Some(Client {
        host,
        port,
        since: Instant::now(),
    });
}

/// The client is authorized (PostgreSQL's `PerformAuthentication`, before the startup
/// packet's options apply): `%u %d %a` are known, and `connection authorized` is logged when
/// the server's `log_connections` asks for it.
pub(crate) fn authorized(packet: &StartupPacket, settings: &Settings) {
    let (host, port) = remote();
    let application_name = packet
        .params
        .iter()
        .find(|(k, _)| k == "application_name")
        .map(|(_, v)| v.as_str());
    pgipc_elog::set_session(pgipc_elog::SessionInfo {
        user: packet.user.clone(),
        database: packet.database.clone(),
        application_name: application_name.unwrap_or("").to_owned(),
        remote_host: host,
        remote_port: port,
    });
    if LogConnections::parse(settings.text("log_connections")).authorization {
        let mut msg = format!(
            "connection authorized: user={} database={}",
            packet.user, packet.database
        );
        if let Some(a) = application_name {
            msg.push_str(&format!(" application_name={a}"));
        }
        pgipc_elog::elog(Severity::Log, &msg);
    }
}

/// The session is set up (PostgreSQL's `PostgresMain` after `InitPostgres`): with the
/// session's `log_disconnections` on, the process's exit will log `disconnection`
/// (PostgreSQL registers it with `on_proc_exit` too, so a FATAL later logs it, an immediate
/// `_exit` does not, and a session that failed before this point never does).
pub(crate) fn session_started(packet: &StartupPacket, settings: &Settings) {
    if !settings.bool("log_disconnections") {
        return;
    }
    let (host, port) = remote();
    let (user, database) = (packet.user.clone(), packet.database.clone());
    let since = client().as_ref().map_or_else(Instant::now, |c| c.since);
    let _ = pgipc_ipc::on_proc_exit(move |_| {
        let msg = disconnection_message(since.elapsed(), &user, &database, &host, &port);
        pgipc_elog::elog(Severity::Log, &msg);
    });
}

fn disconnection_message(
    took: std::time::Duration,
    user: &str,
    database: &str,
    host: &str,
    port: &str,
) -> String {
    let ms = took.as_millis();
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let port = if port.is_empty() {
        String::new()
    } else {
        format!(" port={port}")
    };
    format!(
        "disconnection: session time: {h}:{m:02}:{s:02}.{ms:03} user={user} database={database} host={host}{port}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn log_connections_takes_pg18_lists_and_booleans() {
        let on = LogConnections::parse("on");
        assert!(on.receipt && on.authentication && on.authorization && !on.setup_durations);
        assert_eq!(LogConnections::parse("off"), LogConnections::default());
        assert_eq!(LogConnections::parse(""), LogConnections::default());
        let all = LogConnections::parse("all");
        assert!(all.receipt && all.setup_durations);
        let some = LogConnections::parse("receipt, setup_durations");
        assert!(some.receipt && some.setup_durations && !some.authorization);
    }

    #[test]
    fn disconnection_lines_are_pg18_s() {
        assert_eq!(
            disconnection_message(Duration::from_millis(10), "u", "d", "[local]", ""),
            "disconnection: session time: 0:00:00.010 user=u database=d host=[local]"
        );
        assert_eq!(
            disconnection_message(Duration::from_millis(3_723_004), "u", "d", "::1", "5432"),
            "disconnection: session time: 1:02:03.004 user=u database=d host=::1 port=5432"
        );
    }
}
