//! The postmaster's listen sockets: the `libpq` crate opens them (TCP for `listen_addresses`
//! and `port`, `.s.PGSQL.<port>` plus its lock file in every `unix_socket_directories` entry);
//! this module maps the settings, keeps the set alive for ServerLoop, and removes the socket
//! and lock files when the postmaster drops it.

use pgipc_guc::Settings;
use pgipc_libpq::{ListenConfig, ListenSockets};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

/// PostgreSQL's listen backlog cap (`PG_SOMAXCONN`).
const PG_SOMAXCONN: i64 = 10_000;

/// The open listen sockets (their files are removed on drop, in the postmaster only).
#[derive(Debug)]
pub(crate) struct Listen {
    sockets: ListenSockets,
}

impl Listen {
    /// The sockets' descriptor numbers (forked children close them).
    pub(crate) fn raw_fds(&self) -> Vec<RawFd> {
        self.sockets.fds().iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// The sockets.
    pub(crate) fn fds(&self) -> &[OwnedFd] {
        self.sockets.fds()
    }
}

/// Why the listen sockets could not be opened; the text is PostgreSQL's FATAL message (with
/// its hint on a second line, as the postmaster has always logged it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListenError {
    /// A socket could not be created, bound or listened on.
    #[error("{}", with_hint(.0))]
    Open(#[from] pgipc_libpq::ListenError),
    /// The settings name no socket at all.
    #[error("no socket created for listening")]
    NoSocket,
}

fn with_hint(e: &pgipc_libpq::ListenError) -> String {
    match e.hint() {
        Some(h) => format!("{e}\nHINT:  {h}"),
        None => e.to_string(),
    }
}

/// Opens every listen socket the settings ask for (PostgreSQL's start-up step 10).
pub(crate) fn open_listen_sockets(
    settings: &Settings,
    data_dir: &Path,
) -> Result<Listen, ListenError> {
    let cfg = ListenConfig {
        listen_addresses: settings.text("listen_addresses").to_owned(),
        port: settings.int("port") as u16,
        unix_socket_directories: settings.text("unix_socket_directories").to_owned(),
        unix_socket_permissions: settings.int("unix_socket_permissions") as u32,
        data_dir: data_dir.to_path_buf(),
        backlog: (settings.int("max_connections") * 2).clamp(1, PG_SOMAXCONN) as i32,
    };
    let sockets = ListenSockets::open(&cfg)?;
    if sockets.fds().is_empty() {
        return Err(ListenError::NoSocket);
    }
    Ok(Listen { sockets })
}

/// How long ServerLoop pauses after `accept()` failed (PostgreSQL's 100 ms): the socket stays
/// readable, and without a pause a postmaster out of descriptors (EMFILE, ENFILE) would spin.
pub(crate) const ACCEPT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// Accepts one connection; `Ok(None)` when there was none after all.
pub(crate) fn accept(listener: BorrowedFd<'_>) -> std::io::Result<Option<OwnedFd>> {
    pgipc_libpq::accept_nonblocking(listener)
}

/// After a failed fork: the best-effort message PostgreSQL sends the client.
pub(crate) fn report_fork_failure(client: OwnedFd, msg: &std::io::Error) {
    use std::os::fd::AsFd;
    pgipc_libpq::report_fork_failure(client.as_fd(), msg);
}
