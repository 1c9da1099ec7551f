//! The client backend: one process per connection, from the startup packet to Terminate.
//!
//! Mirrors PostgreSQL's `tcop/postgres.c` (`PostgresMain`, the simple and extended query
//! protocols, `ProcessInterrupts`) and the backend half of `tcop/backend_startup.c`
//! (`BackendInitialize`: startup packet, refusals of a dead-end backend, cancel requests).
//! The wire format is the `libpq` crate's; this crate decides what to answer.
//!
//! ```text
//!  backend_main(sock, ctx)                               (in a freshly forked/exec'd child)
//!   ├─ signal handlers: SIGINT/SIGTERM/SIGHUP raise flags + set latch;
//!   │    SIGQUIT: WARNING to the client (57P02 / 57P01, per ctx.quit_reason), _exit(2);
//!   │    SIGUSR2 ignored, SIGUSR1 → hooks.install_signal_handlers; only then unblocked
//!   ├─ log_connections receipt line (the client's address: `%h`/`%r`, the title)
//!   ├─ startup packet (deadline ctx.authentication_timeout)
//!   │    SSLRequest → 'S' + TLS handshake when ssl is on (tls.rs), else 'N'; a direct TLS
//!   │    record (PostgreSQL 17, ALPN postgresql) → handshake; GSSENCRequest → 'N', read again
//!   │    CancelRequest → hooks.cancel_request, exit 0
//!   ├─ ctx.cac ≠ Ok → FATAL (57P03 / 53300), exit 1  (a dead-end backend)
//!   ├─ title `postgres: <user> <db> <host>(<port>) authentication` (ps.rs)
//!   ├─ NegotiateProtocolVersion?  AuthenticationOk (trust)
//!   ├─ NegotiateProtocolVersion?  client authentication (auth.rs: pg_hba.conf, trust / reject /
//!   │    peer / password / md5 / scram-sha-256, role exists and may log in) → AuthenticationOk
//!   ├─ hooks.mark_active → PGPROC (proc::init_process; 53300 when none)
//!   │    → injection point "backend-start" → ProcArray (init_process_phase2)
//!   │    → hooks.register_cancel_key(procno, pid, key)
//!   ├─ log_connections authorization line (connlog.rs, the server's value, as PostgreSQL)
//!   ├─ settings: ctx.settings + the packet's options/parameters (source client; unknown: FATAL)
//!   ├─ ParameterStatus per GUC_REPORT setting, BackendKeyData (4-byte key for 3.0/3.1,
//!   │    32 for 3.2), ReadyForQuery (changed GUC_REPORT values are sent again before each)
//!   ├─ log_disconnections (the session's value): logged at exit, from on_proc_exit
//!   └─ loop: Q | P B D E C S H | X          → exit code (0 clean, 1 FATAL)
//!        title: idle / idle in transaction / … (aborted) before ReadyForQuery, the command
//!        tag while a statement runs; errors to the log with their STATEMENT
//! ```
//!
//! # Contract
//! * The caller forked (or exec'd) this process, attached shared memory (`ctx.shmem`), called
//!   `pgipc_ipc::on_exit_reset` and `pgipc_waiteventset::forget_wait_sets_after_fork` after a
//!   fork, installed the postmaster-death watch, and passes the accepted socket. After
//!   `backend_main` returns it should end the process with `pgipc_ipc::proc_exit(code)`;
//!   `backend_main` has already run the shared-memory exit callbacks (PGPROC, ProcArray and
//!   whatever the hooks registered are released).
//! * Signal handlers only raise flags and set the latch; the work happens at the interrupt
//!   checks between messages and inside `pg_sleep` (PostgreSQL's `CHECK_FOR_INTERRUPTS`).
//!   SIGINT cancels the running statement (57014), and is ignored when idle; SIGTERM ends the
//!   session (57P01); postmaster death ends it.
//! * No client input can panic this process: every parser returns errors, and protocol
//!   violations end the session with PostgreSQL's FATAL texts or silently, as PostgreSQL does.
//!
//! # SQL
//! Statements go through the query layer (`pgipc_query`): a Query message is parsed whole (a
//! syntax error runs nothing) and its statements planned and run one after the other as one
//! implicit transaction (PostgreSQL's `exec_simple_query`); a repeated single SELECT is
//! planned once (`StatementCache`). The extended protocol keeps named statements and portals:
//! Parse reports the inferred `$n` types (ParameterDescription) and result columns
//! (RowDescription), Bind takes text or binary parameters, Execute runs a portal for up to its
//! row limit (PortalSuspended, then more on the next Execute), an error skips messages until
//! Sync. Rows stream: each is encoded as it is produced and the buffer goes out every 16 kB.
//! Command tags are PostgreSQL's (`SELECT n`, `SHOW`, `SET`, `RESET`, `BEGIN`, `COMMIT`,
//! `ROLLBACK`); a failed transaction block answers 25P02 until COMMIT or ROLLBACK.
//!
//! The backend is the query layer's `Session`: its settings (SET, RESET, SHOW, `set_config`,
//! bracketed per transaction; changed `GUC_REPORT` values go out as ParameterStatus before
//! ReadyForQuery), TimeZone, transaction and statement timestamps, notices (NoticeResponse)
//! and interrupt checks (`ProcessInterrupts`: a cancel is 57014, a termination 57P01, the
//! postmaster's death ends the session). The session's catalog adds `version()`,
//! `pg_backend_pid()`, `pg_sleep`/`pg_sleep_for`/`pg_sleep_until` (on the PGPROC latch, an
//! interrupt check at every wake-up), `current_user`/`session_user`, `current_database()`,
//! `inet_server_port()`, `inet_client_addr()`, `pg_is_in_recovery()`, the dynamic-worker
//! functions `pgipc_start_worker('<function>')`, `pgipc_worker_pid(handle)`,
//! `pgipc_terminate_worker(handle)` (on the `pgipc_bgworker` API alone; `ctx.pmsignal` must be
//! set to reach the postmaster), with the `injection_points` feature
//! `injection_points_attach(name, action)`, `injection_points_detach(name)` and
//! `injection_points_wakeup(name)`, and last the host's functions and views
//! ([`BackendHooks::register_functions`]). `SHOW name` asks [`BackendHooks::show`] first.
//!
//! # What this crate does not do
//! * No tables: joins, subqueries, DDL and DML are refused by the query layer (0A000); psql's
//!   catalog meta-commands get a clean ERROR.
//! * Authentication needs `data_directory` set (the postmaster sets it): without it every
//!   connection is trusted as a superuser, as a bare tcop server in tests is; otherwise
//!   `is_superuser` comes from the role. No GSSAPI, no client certificates, no walsenders
//!   (`replication` is refused), no COPY, no fast-path function calls, no binary format for
//!   numeric and text[]. Transactions (`xact`) have top-level ids only: savepoints nest the
//!   settings' stack and recover a failed block, but no SQL here assigns a subtransaction id
//!   (`pg_current_xact_id()` names the top-level one, as in PostgreSQL).
//! * It knows nothing of the postmaster's child slots or of ProcSignal: those are reached
//!   through [`BackendHooks`].

mod auth;
mod auth_load;
mod auth_views;
mod bgworker_fns;
mod binary;
mod catalog;
mod connlog;
mod ps;
mod session;
mod status;
mod sys;
mod test_shm_mq_fns;
mod tls;
mod user;
mod wait;
mod xact;

pub use auth_load::preload_auth;
pub use user::{role_command, RoleCommandDone};

use pgipc_guc::Settings;
use pgipc_libpq::ErrorFields;
use pgipc_proc::{ProcConfig, ProcNumber};
use pgipc_shmem::Shmem;
use std::fmt;
use std::os::fd::OwnedFd;
use std::time::Duration;

/// An error report on its way to the client (boxed: the fields are large and the happy path
/// should not carry them).
type Report = Box<ErrorFields>;

/// Whether the postmaster lets this connection in (PostgreSQL 18's `CAC_state`), computed by
/// the postmaster when it accepted the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanAcceptConnections {
    /// `CAC_OK`.
    Ok,
    /// `CAC_STARTUP`: the startup process is still running.
    Startup,
    /// `CAC_SHUTDOWN`: a shutdown is under way.
    Shutdown,
    /// `CAC_RECOVERY`: crash recovery (after a crash restart) has not begun redo yet.
    Recovery,
    /// `CAC_NOTHOTSTANDBY` (called `CAC_NOTCONSISTENT` before PostgreSQL 18): in recovery,
    /// not (yet) accepting read-only connections.
    #[doc(alias = "CAC_NOTCONSISTENT")]
    NotHotStandby {
        /// `hot_standby` is on (so connections will be accepted once consistent).
        hot_standby: bool,
    },
    /// `CAC_TOOMANY`: no backend slot left.
    TooMany,
}

impl CanAcceptConnections {
    /// The FATAL report a refused connection gets (`None` for [`CanAcceptConnections::Ok`]).
    pub fn refusal(self) -> Option<ErrorFields> {
        use pgipc_libpq::Severity::Fatal;
        let cannot_connect_now = "57P03";
        Some(match self {
            CanAcceptConnections::Ok => return None,
            CanAcceptConnections::Startup => ErrorFields::new(
                Fatal,
                cannot_connect_now,
                "the database system is starting up",
            ),
            CanAcceptConnections::Shutdown => ErrorFields::new(
                Fatal,
                cannot_connect_now,
                "the database system is shutting down",
            ),
            CanAcceptConnections::Recovery => ErrorFields::new(
                Fatal,
                cannot_connect_now,
                "the database system is in recovery mode",
            ),
            CanAcceptConnections::NotHotStandby { hot_standby: true } => ErrorFields::new(
                Fatal,
                cannot_connect_now,
                "the database system is not yet accepting connections",
            )
            .with_detail("Consistent recovery state has not been yet reached."),
            CanAcceptConnections::NotHotStandby { hot_standby: false } => ErrorFields::new(
                Fatal,
                cannot_connect_now,
                "the database system is not accepting connections",
            )
            .with_detail("Hot standby mode is disabled."),
            CanAcceptConnections::TooMany => {
                ErrorFields::new(Fatal, "53300", "sorry, too many clients already")
            }
        })
    }
}

/// What the backend needs from the processes around it, kept behind a trait so that this crate
/// does not depend on the postmaster's bookkeeping (PMSignal child slots) nor on ProcSignal.
///
/// Every method has a default that does nothing, which is enough for a server without cancel
/// support.
pub trait BackendHooks {
    /// A CancelRequest arrived for `pid` with `key`. Wire it to
    /// `pgipc_procsignal::ProcSignal::send_cancel_request` (which compares the key in constant
    /// time and signals the target). Nothing is answered to the requester either way.
    fn cancel_request(&self, pid: i32, key: &[u8]) {
        let _ = (pid, key);
    }

    /// The backend is about to take its PGPROC (PostgreSQL 18's `RegisterPostmasterChildActive`,
    /// the first step of `InitProcess`): mark the child slot active and register, with
    /// `on_shmem_exit`, marking it inactive. Registered before the PGPROC's clean-up, it runs
    /// after it. An error ends the session with FATAL.
    fn mark_active(&self) -> Result<(), String> {
        Ok(())
    }

    /// Installs the host's handlers for signals this crate leaves to it: SIGUSR1, which
    /// this crate ignores until then (wire it to `pgipc_procsignal::install_handler()`).
    /// Called once at the start, while every signal is still blocked (the postmaster forks
    /// with all of them blocked), so no signal meets a default action that would kill the
    /// backend. An error ends the session with FATAL.
    fn install_signal_handlers(&self) -> Result<(), String> {
        Ok(())
    }

    /// The backend is in the ProcArray and its cancel key is chosen (a client backend always
    /// has one): record it where cancel requests will find it
    /// (`ProcSignal::init_slot(procno, pid, Some(key))`). An error ends the session with
    /// FATAL.
    fn register_cancel_key(&self, procno: ProcNumber, pid: i32, key: &[u8]) -> Result<(), String> {
        let _ = (procno, pid, key);
        Ok(())
    }

    /// Called at every interrupt check (e.g. absorb ProcSignal barriers).
    fn process_interrupts(&self) {}

    /// SIGHUP arrived: re-read the configuration.
    fn reload(&self) {}

    /// Adds the host's functions and views to the session's catalog (built once, at the
    /// start of the session, after tcop's own: `version()`, `pg_backend_pid()`,
    /// `pg_sleep`...). A function registered here with the same argument types shadows one
    /// of tcop's.
    fn register_functions(&self, catalog: &mut pgipc_query::Catalog) {
        let _ = catalog;
    }

    /// The current value of a setting the host computes for `SHOW` (checked before
    /// [`BackendContext::settings`], e.g. `pgipc.<counter>`); `None`: not known here.
    fn show(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }
}

/// Why the postmaster sent SIGQUIT (PostgreSQL's `QuitSignalReason`), which decides the
/// warning a client backend sends before it dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitReason {
    /// Not recorded: "terminating connection due to unexpected SIGQUIT signal" (57P01).
    Unknown,
    /// Another process crashed: "terminating connection because of crash of another server
    /// process" (57P02).
    Crash,
    /// Immediate shutdown: "terminating connection due to immediate shutdown command" (57P01).
    ImmediateShutdown,
}

/// Hooks that do nothing (a server without cancel support or child slots).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl BackendHooks for NoHooks {}

/// Everything [`backend_main`] needs from the postmaster.
pub struct BackendContext {
    /// The main shared-memory segment, created (or attached, in exec mode) by the postmaster.
    pub shmem: Shmem,
    /// Sizes of the PGPROC array (`IpcConfig::proc_config()`).
    pub proc_config: ProcConfig,
    /// The postmaster's verdict on this connection.
    pub cac: CanAcceptConnections,
    /// `authentication_timeout` (PostgreSQL's default: 60 s).
    pub authentication_timeout: Duration,
    /// PMSignal, to tell the postmaster about background worker registrations and
    /// terminate requests (`None`: no postmaster; `pgipc_start_worker` then fails).
    pub pmsignal: Option<pgipc_pmsignal::PMSignal>,
    /// The server's settings, which the session starts from: the startup packet's parameters
    /// apply on top (source "client"), then `SET` / `RESET` / `SHOW` work on them, and SIGHUP
    /// re-reads `config_file` (when set) into them.
    pub settings: Settings,
    /// The connections to the rest of the server.
    pub hooks: Box<dyn BackendHooks>,
    /// Called from the SIGQUIT handler to pick the client's last warning, so it must be
    /// async-signal-safe: e.g. one atomic load of PMSignal's `sigquit_reason` through a
    /// `static`. `None`: always [`QuitReason::Unknown`].
    pub quit_reason: Option<fn() -> QuitReason>,
    /// When the postmaster started (PostgreSQL's `PgStartTime`, microseconds since
    /// 2000-01-01 UTC; 0 when unknown): `pg_postmaster_start_time()`.
    pub postmaster_start_time: i64,
}

impl BackendContext {
    /// A context with PostgreSQL's defaults, the server's `settings` and [`NoHooks`].
    pub fn new(
        shmem: Shmem,
        proc_config: ProcConfig,
        cac: CanAcceptConnections,
        settings: Settings,
    ) -> Self {
        BackendContext {
            shmem,
            proc_config,
            cac,
            authentication_timeout: Duration::from_secs(60),
            pmsignal: None,
            settings,
            hooks: Box::new(NoHooks),
            quit_reason: None,
            postmaster_start_time: 0,
        }
    }

    /// The value of a server setting: the hooks first, then [`settings`](Self::settings).
    pub fn setting(&self, name: &str) -> Option<String> {
        self.hooks
            .show(name)
            .or_else(|| self.settings.show(name).ok())
    }
}

impl fmt::Debug for BackendContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendContext")
            .field("cac", &self.cac)
            .field("authentication_timeout", &self.authentication_timeout)
            .finish_non_exhaustive()
    }
}

/// Whether the kernel's random source answers (one byte through `getrandom(2)`). The
/// postmaster asks once at start-up: every session's cancel key comes from that source, with
/// no fallback, so a server without it could not accept a single connection.
pub fn random_source_works() -> bool {
    session::random_key(1).is_some()
}

/// Does in the postmaster, once, what every forked backend would otherwise do again (the
/// children inherit the result): the SQL parser's stack-depth guard finds the thread's stack
/// bounds on first use (glibc parses `/proc/self/maps` for that, ~17% of a `SELECT 1`
/// connection's backend time), and the TimeZone setting's rules are looked up. An exec'd
/// child does both itself.
pub fn prewarm_for_backends(settings: &Settings) {
    let _ = wait::spin_enabled();
    let _ = pgipc_query::parse("SELECT 1", &[], &pgipc_query::Catalog::new());
    if let Ok(name) = settings.show("TimeZone") {
        let _ = pgipc_query::TimeZone::from_setting(&name);
    }
}

/// Installs the session's signal handlers and lets signals in, ahead of the session. A spare
/// backend (forked before its client connects: the postmaster's `spare` module) waits with
/// them, so that what arrives meanwhile raises the flags the session reads once it runs: a
/// SIGHUP makes the session re-read the configuration, and a SIGTERM before any client
/// arrived is seen by [`die_pending`].
pub fn install_signal_handlers_early() -> Result<(), nix::Error> {
    sys::install_handlers()?;
    sys::unblock_signals()
}

/// Whether SIGTERM arrived (the flag stays raised for the session).
pub fn die_pending() -> bool {
    sys::peek(sys::Pending::Die)
}

/// Builds the TLS configuration the settings name (`ssl_cert_file`, `ssl_key_file`,
/// `ssl_ca_file`, `ssl_min_protocol_version`, relative to `data_directory`) and keeps it in
/// this process, for the backends it forks to inherit (PostgreSQL's `be_tls_init` in the
/// postmaster). The postmaster calls it at start when `ssl` is on, and refuses to start on an
/// error, and again on SIGHUP, where an error keeps the configuration it had
/// ("SSL configuration was not reloaded"). A backend that inherited none (exec'd) builds its
/// own at its first handshake.
pub fn load_tls_config(settings: &Settings) -> Result<(), String> {
    tls::load_config(settings)
}

/// Drops the TLS configuration [`load_tls_config`] kept (`ssl` turned off by a reload).
pub fn forget_tls_config() {
    tls::forget_config()
}

/// Runs a client backend on the accepted socket `sock`; returns the exit code (0: the client
/// left, 1: FATAL or a broken connection). See the crate documentation for what the caller
/// must have done before and does after.
pub fn backend_main(sock: OwnedFd, mut ctx: BackendContext) -> i32 {
    let code = session::run(&sock, &mut ctx);
    // PGPROC, ProcArray entry and whatever the hooks registered go back now.
    pgipc_ipc::shmem_exit(code);
    code
}
