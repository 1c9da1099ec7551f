//! The backend's Backend Status entry (PostgreSQL's `pgstat_bestart` and
//! `pgstat_report_activity` calls in `PostgresMain`): filled once the session is set up,
//! updated when a statement starts and at every ReadyForQuery, freed at exit.

use pgipc_backend_status::{BackendState, ClientAddr, StartInfo};
use pgipc_libpq::TransactionStatus;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;

/// The client of `sock` as `pg_stat_activity` shows it.
fn client_of(sock: BorrowedFd<'_>) -> Option<ClientAddr> {
    use nix::sys::socket::{getpeername, SockaddrStorage};
    use std::os::fd::AsRawFd;
    let a: SockaddrStorage = getpeername(sock.as_raw_fd()).ok()?;
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(ClientAddr::Inet(IpAddr::V4(v4.ip()), v4.port()));
    }
    if let Some(v6) = a.as_sockaddr_in6() {
        return Some(ClientAddr::Inet(IpAddr::V6(v6.ip()), v6.port()));
    }
    Some(ClientAddr::Unix)
}

/// What the session knows when it starts.
pub(crate) struct Session<'a> {
    pub(crate) shmem: &'a pgipc_shmem::Shmem,
    pub(crate) proc_config: &'a pgipc_proc::ProcConfig,
    pub(crate) me: &'a pgipc_proc::MyProc,
    pub(crate) pid: i32,
    pub(crate) user: &'a str,
    pub(crate) database: &'a str,
    pub(crate) appname: &'a str,
    pub(crate) track_activities: bool,
    pub(crate) sock: BorrowedFd<'a>,
}

/// Fills this backend's entry (`pgstat_bestart`) and frees it at exit; an error leaves the
/// backend without one (the session works, `pg_stat_activity` does not list it).
pub(crate) fn backend_start(s: &Session<'_>) -> Result<(), String> {
    let slots = s.proc_config.max_backends().map_err(|e| e.to_string())? as usize
        + pgipc_proc::NUM_AUXILIARY_PROCS as usize;
    let status = pgipc_backend_status::attach(s.shmem, slots).map_err(|e| e.to_string())?;
    let w = status
        .writer(s.me.proc_number(), s.track_activities)
        .map_err(|e| e.to_string())?;
    let p = s.me.pgproc();
    let ld = |a: &std::sync::atomic::AtomicU32| a.load(std::sync::atomic::Ordering::Relaxed);
    w.report_start(
        s.pid,
        &StartInfo {
            backend_type: pgipc_proc::BackendType::Backend,
            state: BackendState::Starting,
            database_id: ld(&p.database_id),
            datname: s.database,
            user_id: ld(&p.role_id),
            usename: s.user,
            appname: s.appname,
            client: client_of(s.sock),
            client_hostname: "",
        },
    );
    pgipc_backend_status::set_my_be_entry(w);
    if let Err(e) = pgipc_ipc::on_shmem_exit(|_| pgipc_backend_status::report_end_mine()) {
        pgipc_backend_status::report_end_mine();
        return Err(e.to_string());
    }
    Ok(())
}

/// Publishes the connection's TLS state in this backend's entry (`pgstat_bestart`'s SSL
/// part), for `pg_stat_ssl`.
pub(crate) fn report_ssl(tls: Option<pgipc_libpq::TlsStatus>) {
    let ssl = tls.map(|t| {
        let (client_dn, client_serial, issuer_dn) = match t.client {
            Some(c) => (Some(c.subject), Some(c.serial), Some(c.issuer)),
            None => (None, None, None),
        };
        pgipc_backend_status::SslStatus {
            version: t.version.to_owned(),
            cipher: t.cipher,
            bits: t.bits,
            client_dn,
            client_serial,
            issuer_dn,
        }
    });
    pgipc_backend_status::with_my_be_entry(|w| w.report_ssl(ssl.as_ref()));
}

/// The state an idle session shows for its transaction status.
pub(crate) fn idle_state(tx: TransactionStatus) -> BackendState {
    match tx {
        TransactionStatus::Idle => BackendState::Idle,
        TransactionStatus::InBlock => BackendState::IdleInTransaction,
        TransactionStatus::Failed => BackendState::IdleInTransactionAborted,
    }
}
