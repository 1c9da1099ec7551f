//! One session: start-up, then the message loop (PostgreSQL's `BackendInitialize` and
//! `PostgresMain`).

use crate::bgworker_fns::WorkerFns;
use crate::catalog::{self, SessionInfo};
use crate::sys::{self, Pending};
use crate::test_shm_mq_fns::SessionLeader;
use crate::wait::BackendWait;
use crate::{binary, BackendContext, Report};
use pgipc_guc::{Action, Context, GucError, SetOptions, Source};
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_libpq::{
    parse_bind, parse_execute, parse_parse, parse_query, parse_startup_packet, parse_target, Conn,
    ErrorFields, FieldDescription, ReadError, Replication, Severity, StartupError, StartupPacket,
    StartupRequest, Target, TransactionStatus,
};
use pgipc_proc::MyProc;
use pgipc_query::{
    Catalog, Column, Datum, QueryError, Rows, Session as QuerySession, Statement, StatementCache,
    TimeZone, Type,
};
use pgipc_sysviews::SysContext;
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Rows are sent to the client whenever this many bytes are waiting (a long result streams
/// instead of piling up in memory).
const FLUSH_AT: usize = 16 * 1024;

/// How the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// The client said goodbye or hung up: exit code 0.
    Clean,
    /// FATAL, or the connection broke: exit code 1.
    Fatal,
}

/// Why a statement or message did not complete.
#[derive(Debug)]
enum Failure {
    /// An ERROR for the client; the session goes on.
    Error(Report),
    /// The session ends.
    Leave(Leave),
}

impl From<Report> for Failure {
    fn from(e: Report) -> Self {
        Failure::Error(e)
    }
}

impl From<ErrorFields> for Failure {
    fn from(e: ErrorFields) -> Self {
        Failure::Error(Box::new(e))
    }
}

/// A prepared statement (Parse).
#[derive(Debug, Clone)]
struct Prepared {
    stmt: Rc<Statement>,
    /// The query text (for the log).
    text: Rc<str>,
    /// The parameter types' OIDs, for ParameterDescription.
    param_types: Vec<u32>,
    /// A role command (`stmt` is then `Statement::Empty`): it runs at Execute through
    /// `crate::role_command`, as the simple protocol runs it.
    role: bool,
}

/// A bound portal (Bind), possibly suspended in the middle of its rows.
#[derive(Debug)]
struct Portal {
    stmt: Rc<Statement>,
    /// The query text (for the log).
    text: Rc<str>,
    /// The parameters, until the first Execute takes them.
    params: Vec<Datum>,
    /// Result formats (Bind's convention).
    formats: Vec<i16>,
    /// The rows of a started, suspended SELECT.
    rows: Option<Rows>,
    /// Ran to completion.
    done: bool,
    /// A role command's text; after it ran, its command tag (for a second Execute).
    role: Option<(Rc<str>, Option<&'static str>)>,
}

struct Session<'s> {
    conn: Conn<'s, BackendWait<'s>>,
    /// The context; its `settings` are the session's (SET, RESET, SHOW).
    ctx: &'s mut BackendContext,
    pid: i32,
    tx: TransactionStatus,
    statements: HashMap<String, Prepared>,
    portals: HashMap<String, Portal>,
    /// A settings transaction is open (`Settings::start_transaction` called, not yet ended):
    /// opened by the first statement of a transaction that changes a setting.
    guc_xact: bool,
    /// The block's open savepoints, oldest first: name and the settings nest level each
    /// opened (PostgreSQL's subtransaction stack).
    savepoints: Vec<(String, u32)>,
    /// Something may have changed a `GUC_REPORT` setting since the last ReadyForQuery.
    report_pending: bool,
    /// The settings' generation when a transaction last started with its modes set from the
    /// defaults: while it has not moved, they still are.
    modes_generation: Option<u64>,
    /// `transaction_isolation` and the settings' generation it was read at.
    isolation: std::cell::Cell<(u64, &'static str)>,
    /// The simple Query being run has several statements (PostgreSQL's implicit
    /// transaction block).
    implicit_block: bool,
    /// The session user is a superuser (from the role catalog; always without one).
    superuser: bool,
    /// The session user's role OID (published in PGPROC `roleId` once the backend has one).
    role_oid: u32,
    /// `rolconnlimit` of the session user (-1: no limit).
    connection_limit: i32,
    /// Every superuser role's OID at connection start.
    superuser_roles: Vec<u32>,
    ignore_till_sync: bool,
    me: Option<&'static MyProc>,
    /// The dynamic background workers this session started.
    workers: Rc<WorkerFns>,
    /// The functions and views SQL sees (built once start-up is done).
    catalog: Catalog,
    /// Plans of repeated simple queries.
    cache: StatementCache,
    /// What the admin functions and system views (`pgipc_sysviews`) read: built with the
    /// catalog, kept to move `pg_conf_load_time()` at each reload.
    sys: Option<Rc<SysContext>>,
    /// The startup packet's user and database.
    user: String,
    database: String,
    /// The session's TimeZone, re-read whenever the settings may have changed.
    tz: TimeZone,
    tz_name: String,
    /// `statement_timestamp()` of the running statement.
    stmt_ts: i64,
    /// `transaction_timestamp()`: set by the transaction's first statement.
    xact_ts: Option<i64>,
    /// An interrupt check inside a statement ended the session (the FATAL is sent): the
    /// statement's error unwinds to the main loop, which leaves.
    leave: Option<Leave>,
    /// The text of the statement the extended-protocol message at hand concerns (for the log).
    current_text: Option<Rc<str>>,
}

fn error(code: &str, message: impl Into<String>) -> ErrorFields {
    ErrorFields::new(Severity::Error, code, message)
}

fn fatal(code: &str, message: impl Into<String>) -> ErrorFields {
    ErrorFields::new(Severity::Fatal, code, message)
}

/// A settings error as the client sees it (code, message, DETAIL, HINT).
fn guc_error(e: &GucError, severity: Severity) -> ErrorFields {
    let mut f = ErrorFields::new(severity, e.sqlstate(), e.to_string());
    if let Some(d) = e.detail() {
        f = f.with_detail(d);
    }
    if let Some(h) = e.hint() {
        f = f.with_hint(h);
    }
    f
}

/// Writes a report to the server log with its own severity, DETAIL, HINT and CONTEXT lines, and the
/// statement (`STATEMENT:`, per `log_min_error_statement`); `log_min_messages` decides.
fn log_report(f: &ErrorFields, statement: Option<&str>) {
    use pgipc_elog::Severity as Log;
    let severity = match f.severity {
        Severity::Error => Log::Error,
        Severity::Fatal => Log::Fatal,
        Severity::Panic => Log::Panic,
        Severity::Warning => Log::Warning,
        Severity::Notice => Log::Notice,
        Severity::Debug => Log::Debug1,
        Severity::Info => Log::Info,
        Severity::Log => Log::Log,
    };
    pgipc_elog::emit(&pgipc_elog::Record {
        detail: f.detail.as_deref(),
        hint: f.hint.as_deref(),
        context: f.context.as_deref(),
        statement,
        sqlstate: Some(&f.code),
        cursor_position: f.position,
        ..pgipc_elog::Record::new(severity, &f.message)
    });
}

/// A cancel key of `len` bytes from the kernel's random source (`getrandom(2)`, which is what
/// PostgreSQL's `pg_strong_random` reads on Linux). `None` when that fails: there is no weaker
/// fallback, and the caller refuses the connection as PostgreSQL 18 does.
pub(crate) fn random_key(len: usize) -> Option<Vec<u8>> {
    key_from(len, |buf| {
        rustix::rand::getrandom(buf, rustix::rand::GetRandomFlags::empty())
            .map_err(std::io::Error::from)
    })
}

/// Fills a key of `len` bytes with `fill`, which may return short counts or be interrupted;
/// any other error, or a source that returns nothing, gives `None`.
fn key_from(
    len: usize,
    mut fill: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
) -> Option<Vec<u8>> {
    let mut key = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match fill(&mut key[done..]) {
            Ok(0) => return None,
            Ok(n) => done += n.min(len - done),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(key)
}

/// The whole session; returns the exit code.
pub(crate) fn run(sock: &OwnedFd, ctx: &mut BackendContext) -> i32 {
    if let Err(e) = sys::install_handlers() {
        tracing::error!("FATAL:  could not install signal handlers: {e}");
        return 1;
    }
    if let Err(e) = ctx.hooks.install_signal_handlers() {
        tracing::error!("FATAL:  could not install signal handlers: {e}");
        return 1;
    }
    // A postmaster forks with signals blocked so that none arrives before its handler exists
    // (PostgreSQL's BlockSig); now that they are installed, let them in.
    if let Err(e) = sys::unblock_signals() {
        tracing::error!("FATAL:  could not unblock signals: {e}");
        return 1;
    }
    // Until the PGPROC's latch takes over, a process-local one (kept for the process's life,
    // as "my latch" must be).
    let local: &'static OwnedLatch<&'static Latch> = {
        let latch: &'static Latch = Box::leak(Box::new(Latch::new()));
        match OwnedLatch::own(latch) {
            Ok(o) => {
                pgipc_latch::install_my_latch(latch);
                Box::leak(Box::new(o))
            }
            Err(e) => {
                tracing::error!("FATAL:  could not own a local latch: {e}");
                return 1;
            }
        }
    };
    let conn =
        BackendWait::new(sock.as_fd(), local.as_owner()).and_then(|w| Conn::new(sock.as_fd(), w));
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("FATAL:  could not set up the client connection: {e}");
            return 1;
        }
    };
    sys::prepare_quit_warning(std::os::fd::AsRawFd::as_raw_fd(sock), ctx.quit_reason);
    let (ctx_shmem, ctx_proc_config, ctx_pmsignal) =
        (ctx.shmem.clone(), ctx.proc_config, ctx.pmsignal.clone());
    let mut s = Session {
        conn,
        ctx,
        pid: std::process::id() as i32,
        tx: TransactionStatus::Idle,
        statements: HashMap::new(),
        portals: HashMap::new(),
        guc_xact: false,
        savepoints: Vec::new(),
        report_pending: false,
        modes_generation: None,
        isolation: std::cell::Cell::new((u64::MAX, "read committed")),
        implicit_block: false,
        superuser: true,
        role_oid: pgipc_sysviews::BOOTSTRAP_SUPERUSERID,
        connection_limit: -1,
        superuser_roles: vec![pgipc_sysviews::BOOTSTRAP_SUPERUSERID],
        ignore_till_sync: false,
        me: None,
        workers: Rc::new(WorkerFns::new(ctx_shmem, ctx_proc_config, ctx_pmsignal)),
        catalog: Catalog::new(),
        cache: StatementCache::new(),
        sys: None,
        user: String::new(),
        database: String::new(),
        tz: TimeZone::utc(),
        tz_name: String::new(),
        stmt_ts: pgipc_query::system_now(),
        xact_ts: None,
        leave: None,
        current_text: None,
    };
    match s
        .start()
        .map(|()| s.build_catalog())
        .and_then(|()| s.main_loop())
    {
        Ok(()) | Err(Leave::Clean) => 0,
        Err(Leave::Fatal) => 1,
    }
}

impl Session<'_> {
    /// Sends a FATAL report and ends the session.
    fn die(&mut self, f: ErrorFields) -> Leave {
        log_report(&f, None);
        self.conn.out().error_response(&f);
        let _ = self
            .conn
            .flush(Some(Instant::now() + Duration::from_secs(5)));
        Leave::Fatal
    }

    // ---------------------------------------------------------------- start-up

    /// Reads start-up packets until a StartupMessage (`Ok`) or a reason to leave.
    fn read_startup(&mut self, deadline: Instant) -> Result<StartupPacket, Leave> {
        let (mut ssl_done, mut gss_done) = (false, false);
        // PostgreSQL 17's direct TLS: a TLS record where a startup packet's length word would
        // be (only when ssl is on; otherwise it is an invalid length, as in PostgreSQL).
        if self.ctx.settings.bool("ssl") {
            if let Ok(Some(0x16)) = self.conn.peek_first_byte(deadline) {
                self.start_tls(deadline)?;
                let alpn = self.conn.tls().and_then(|t| t.alpn_protocol());
                if alpn != Some(crate::tls::ALPN) {
                    return Err(self.die(fatal(
                        "08P01",
                        "received direct SSL connection request without ALPN protocol \
                         negotiation extension",
                    )));
                }
                ssl_done = true;
            }
        }
        loop {
            let packet = match self.conn.read_startup_packet(deadline) {
                Ok(p) => p,
                Err(StartupError::Interrupted) => {
                    // PostgreSQL leaves at once, without a word, on SIGTERM here.
                    if sys::peek(Pending::Die) || self.conn.waiter_mut().postmaster_died {
                        return Err(Leave::Fatal);
                    }
                    continue;
                }
                Err(e) => return Err(self.startup_failed(e)),
            };
            match parse_startup_packet(&packet, ssl_done, gss_done) {
                Ok(r @ (StartupRequest::Ssl | StartupRequest::Gss)) => {
                    let ssl = r == StartupRequest::Ssl;
                    if ssl {
                        ssl_done = true;
                    } else {
                        gss_done = true;
                    }
                    let tls = ssl && self.ctx.settings.bool("ssl");
                    self.conn.out().raw_byte(if tls { b'S' } else { b'N' });
                    if self.conn.flush(Some(deadline)).is_err() {
                        return Err(Leave::Fatal);
                    }
                    // Bytes sent before our answer cannot be part of an encrypted session.
                    if self.conn.has_buffered_input() {
                        let what = if ssl {
                            "received unencrypted data after SSL request"
                        } else {
                            "received unencrypted data after GSSAPI encryption request"
                        };
                        let f = fatal("08P01", what).with_detail(
                            "This could be either a client-software bug or evidence of an \
                             attempted man-in-the-middle attack.",
                        );
                        return Err(self.die(f));
                    }
                    if tls {
                        self.start_tls(deadline)?;
                    }
                }
                Ok(StartupRequest::Cancel { pid, key }) => {
                    if pid != 0 {
                        self.ctx.hooks.cancel_request(pid, &key);
                    }
                    // Not an error, but nothing more to do.
                    return Err(Leave::Clean);
                }
                Ok(StartupRequest::Startup(p)) => return Ok(p),
                Err(e) => return Err(self.startup_failed(e)),
            }
        }
    }

    /// The TLS handshake (PostgreSQL's `secure_open_server`); a failure is logged and ends the
    /// connection without a word (there is no channel to send it on).
    fn start_tls(&mut self, deadline: Instant) -> Result<(), Leave> {
        let cfg = match crate::tls::current(&self.ctx.settings) {
            Ok(c) => c.config.clone(),
            Err(e) => {
                tracing::info!("LOG:  could not accept SSL connection: {e}");
                return Err(Leave::Fatal);
            }
        };
        let stop = |w: &mut BackendWait<'_>| sys::peek(Pending::Die) || w.postmaster_died;
        if let Err(e) = self.conn.start_tls(cfg, deadline, stop) {
            tracing::info!("LOG:  could not accept SSL connection: {e}");
            return Err(Leave::Fatal);
        }
        Ok(())
    }

    fn startup_failed(&mut self, e: StartupError) -> Leave {
        if e.is_reported_to_client() {
            let mut f = fatal(e.sqlstate(), e.to_string());
            if let Some(h) = e.hint() {
                f = f.with_hint(h);
            }
            return self.die(f);
        }
        if e.is_logged() {
            tracing::info!("{e}");
        }
        Leave::Fatal
    }

    /// Start-up up to the first ReadyForQuery.
    fn start(&mut self) -> Result<(), Leave> {
        let deadline = Instant::now() + self.ctx.authentication_timeout;
        crate::connlog::received(self.conn.socket(), &self.ctx.settings);
        let packet = self.read_startup(deadline)?;
        if let Some(f) = self.ctx.cac.refusal() {
            return Err(self.die(f));
        }
        crate::ps::init_title(&packet.user, &packet.database, &self.ctx.settings);
        if packet.replication != Replication::Off {
            return Err(self.die(fatal(
                "0A000",
                "replication connections are not supported by this server",
            )));
        }
        let version = packet.version();
        if packet.needs_negotiation() {
            self.conn
                .out()
                .negotiate_protocol_version(version, &packet.unrecognized_protocol_options);
        }
        // pg_hba.conf, the method's exchange, the role's checks (crate::auth).
        match crate::auth::client_authentication(
            &mut self.conn,
            &self.ctx.settings,
            &packet,
            deadline,
        ) {
            Ok(who) => {
                self.superuser = who.superuser;
                self.role_oid = who.role_oid;
                self.connection_limit = who.connection_limit;
                self.superuser_roles = who.superuser_roles;
            }
            Err(crate::auth::AuthFailure::Report(f)) => return Err(self.die(*f)),
            Err(crate::auth::AuthFailure::Silent(log)) => {
                if let Some(l) = log {
                    tracing::info!("{l}");
                }
                return Err(Leave::Fatal);
            }
        }

        // PostgreSQL 18's PostgresMain: no key, no session (an ERROR before the session's
        // error handling exists, so the backend exits FATAL).
        let Some(key) = random_key(version.cancel_key_len()) else {
            return Err(self.die(fatal("XX000", "could not generate random cancel key")));
        };
        let me = self.init_backend(&key).map_err(|f| self.die(*f))?;
        self.me = Some(me);
        // PostgreSQL's InitializeSessionUserId: publish the role, then count its backends.
        if let Err(f) = self.claim_role_slot(me, &packet.user) {
            return Err(self.die(*f));
        }
        if let Err(e) = self.conn.waiter_mut().switch_latch(me.latch().as_owner()) {
            return Err(self.die(fatal(
                "XX000",
                format!("could not wait on the process latch: {e}"),
            )));
        }

        crate::connlog::authorized(&packet, &self.ctx.settings);
        if let Err(f) = self.apply_startup_settings(&packet) {
            return Err(self.die(*f));
        }
        crate::ps::settings_changed(&self.ctx.settings);
        let started = crate::status::backend_start(&crate::status::Session {
            shmem: &self.ctx.shmem,
            proc_config: &self.ctx.proc_config,
            me,
            pid: self.pid,
            user: &packet.user,
            database: &packet.database,
            appname: self.ctx.settings.text("application_name"),
            track_activities: self.ctx.settings.bool("track_activities"),
            sock: self.conn.socket(),
        });
        if let Err(e) = started {
            tracing::warn!("no backend status entry: {e}");
        }
        crate::status::report_ssl(self.conn.tls_status());
        // PostgreSQL's BeginReportingGUCOptions: every GUC_REPORT setting, once.
        for (name, value) in self.ctx.settings.begin_reporting() {
            self.conn.out().parameter_status(&name, &value);
        }
        self.conn.out().backend_key_data(self.pid, &key);
        crate::connlog::session_started(&packet, &self.ctx.settings);
        crate::ps::report_activity(crate::ps::idle(TransactionStatus::Idle));
        self.conn.out().ready_for_query(TransactionStatus::Idle);
        Ok(())
    }

    /// The settings a session starts with (PostgreSQL's `InitPostgres` and
    /// `process_startup_options`): the server's computed values, then the startup packet's
    /// `options` (`-c name=value`, `--name=value`) and parameters with source "client". An
    /// unknown name or a bad value is FATAL, as in PostgreSQL.
    fn apply_startup_settings(&mut self, packet: &StartupPacket) -> Result<(), Report> {
        let fatal_of = |e: GucError| Box::new(guc_error(&e, Severity::Fatal));
        self.user.clone_from(&packet.user);
        self.database.clone_from(&packet.database);
        let st = &mut self.ctx.settings;
        // The database's encoding is UTF8; the client's defaults to it.
        st.set_computed("server_encoding", "UTF8")
            .map_err(fatal_of)?;
        st.set_computed("client_encoding", "UTF8")
            .map_err(fatal_of)?;
        st.set_computed("is_superuser", if self.superuser { "on" } else { "off" })
            .map_err(fatal_of)?;
        st.set_override("session_authorization", &packet.user)
            .map_err(fatal_of)?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(opts) = &packet.options {
            let words = split_options(opts);
            let mut it = words.iter();
            while let Some(w) = it.next() {
                let setting = if w == "-c" {
                    it.next().cloned()
                } else if let Some(rest) = w.strip_prefix("-c") {
                    Some(rest.to_owned())
                } else {
                    w.strip_prefix("--").map(str::to_owned)
                };
                let Some(setting) = setting else {
                    return Err(Box::new(
                        fatal(
                            "42601",
                            format!("invalid command-line argument for server process: {w}"),
                        )
                        .with_hint("Try \"postgres --help\" for more information."),
                    ));
                };
                match setting.split_once('=') {
                    Some((n, v)) => pairs.push((n.replace('-', "_"), v.to_owned())),
                    None => return Err(fatal_of(GucError::NeedsValue(setting))),
                }
            }
        }
        pairs.extend(packet.params.iter().cloned());
        for (name, value) in &pairs {
            // libpq resolves "auto" itself; a client that sends it gets the server's.
            let value = if name.eq_ignore_ascii_case("client_encoding")
                && value.eq_ignore_ascii_case("auto")
            {
                "UTF8"
            } else {
                value.as_str()
            };
            st.set_client(name, value, self.superuser)
                .map_err(fatal_of)?;
        }
        Ok(())
    }

    /// PMSignal, PGPROC, ProcArray, cancel key (PostgreSQL's `InitProcess`,
    /// `InitProcessPhase2`, `ProcSignalInit`). The child slot is marked active first, as
    /// PostgreSQL 18's `InitProcess` does, so that its exit callback (run newest first) marks
    /// it inactive only after the PGPROC and the ProcArray entry are released.
    fn init_backend(&self, key: &[u8]) -> Result<&'static MyProc, Report> {
        let internal = |e: String| Box::new(fatal("XX000", e));
        self.ctx.hooks.mark_active().map_err(internal)?;
        let global = pgipc_proc::shmem_init(&self.ctx.shmem, &self.ctx.proc_config)
            .map_err(|e| internal(e.to_string()))?;
        let me = pgipc_proc::init_process(&global, pgipc_proc::BackendType::Backend).map_err(
            |e| match e.sqlstate() {
                "53300" => Box::new(fatal("53300", e.to_string())),
                _ => internal(e.to_string()),
            },
        )?;
        // The slot is released by the exit callback init_process registered; the value lives
        // as long as the process (wait sets borrow its latch).
        let me: &'static MyProc = Box::leak(Box::new(me));
        pgipc_injection_point::injection_point!("backend-start")
            .map_err(|e| Box::new(fatal(e.sqlstate(), e.to_string())))?;
        let pa = pgipc_procarray::shmem_init(&self.ctx.shmem, &self.ctx.proc_config)
            .map_err(|e| internal(e.to_string()))?;
        pa.init_process_phase2(me)
            .map_err(|e| internal(e.to_string()))?;
        crate::xact::init(pa, me.proc_number()).map_err(internal)?;
        self.ctx
            .hooks
            .register_cancel_key(me.proc_number(), self.pid, key)
            .map_err(internal)?;
        Ok(me)
    }

    /// Publishes the session's role in PGPROC (`roleId`, which `pg_terminate_backend` and
    /// friends judge other backends by) and enforces `rolconnlimit` as PostgreSQL's
    /// `InitializeSessionUserId` does: superusers are exempt, and a role over its limit gets
    /// FATAL 53300. The count includes this backend, which is already in the ProcArray, so
    /// two backends racing for the last slot may both be refused, as in PostgreSQL.
    fn claim_role_slot(&self, me: &MyProc, user: &str) -> Result<(), Report> {
        me.pgproc()
            .role_id
            .store(self.role_oid, std::sync::atomic::Ordering::Relaxed);
        if self.superuser || self.connection_limit < 0 {
            return Ok(());
        }
        let pa = pgipc_procarray::shmem_init(&self.ctx.shmem, &self.ctx.proc_config)
            .map_err(|e| Box::new(fatal("XX000", e.to_string())))?;
        let procs = pa.procs();
        // CountUserBackends: members of the ProcArray with a pid and this role.
        let count = pa
            .members()
            .into_iter()
            .filter_map(|n| procs.proc(n).ok())
            .filter(|p| {
                p.pid.load(std::sync::atomic::Ordering::Relaxed) != 0
                    && p.role_id.load(std::sync::atomic::Ordering::Relaxed) == self.role_oid
            })
            .count();
        if count > usize::try_from(self.connection_limit).unwrap_or(0) {
            return Err(Box::new(fatal(
                "53300",
                format!("too many connections for role \"{user}\""),
            )));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- interrupts

    /// PostgreSQL's `ProcessInterrupts`. `running`: a statement is executing (a cancel is for
    /// it); otherwise a cancel is dropped, as PostgreSQL drops one that arrives while idle.
    fn check_interrupts(&mut self, running: bool) -> Result<(), Failure> {
        if sys::take(Pending::Die) {
            return Err(Failure::Leave(self.die(fatal(
                "57P01",
                "terminating connection due to administrator command",
            ))));
        }
        let pm_died = self.conn.waiter_mut().postmaster_died || sys::postmaster_death_seen();
        if pm_died && !pgipc_waiteventset::postmaster_is_alive() {
            return Err(Failure::Leave(self.die(fatal(
                "57P01",
                "terminating connection due to unexpected postmaster exit",
            ))));
        }
        if sys::take(Pending::Reload) {
            // PostgreSQL's backends re-read the file too, logging nothing (the postmaster
            // logs what changed).
            let conf = std::path::PathBuf::from(self.ctx.settings.text("config_file"));
            if !conf.as_os_str().is_empty() {
                let _ = self
                    .ctx
                    .settings
                    .process_config_file(&conf, Context::Sighup);
                self.report_pending = true;
                self.refresh_tz();
                if let Some(sys) = &self.sys {
                    sys.conf_load_time.set(pgipc_query::system_now());
                }
            }
            self.ctx.hooks.reload();
        }
        self.ctx.hooks.process_interrupts();
        if sys::take(Pending::Cancel) && running {
            return Err(error("57014", "canceling statement due to user request").into());
        }
        Ok(())
    }

    /// Sends what is buffered, serving interrupts while the client does not read.
    fn flush(&mut self) -> Result<(), Leave> {
        loop {
            match self.conn.flush(None) {
                Ok(()) => return Ok(()),
                Err(ReadError::Interrupted) => match self.check_interrupts(false) {
                    Ok(()) | Err(Failure::Error(_)) => {}
                    Err(Failure::Leave(l)) => return Err(l),
                },
                Err(_) => return Err(Leave::Fatal),
            }
        }
    }

    // ---------------------------------------------------------------- catalog and clock

    /// Sets up the session's catalog: tcop's functions, the system views, the auth views and
    /// test_shm_mq's functions are registered when a statement first looks a function or a
    /// view up (a connection that only runs `SELECT 1` never builds them); the host's are
    /// added now, after them in order.
    fn build_catalog(&mut self) {
        let (server, client) = socket_addresses(self.conn.socket());
        let info = SessionInfo {
            pid: self.pid,
            user: self.user.clone(),
            database: self.database.clone(),
            server_version: self.ctx.settings.show("server_version").unwrap_or_default(),
            server_port: server.map(|(_, p)| p),
            server_addr: server.map(|(a, _)| a),
            client,
            me: self.me,
        };
        let mut sys = SysContext::new(self.ctx.shmem.clone(), self.ctx.proc_config);
        sys.my_pid = self.pid;
        sys.postmaster_pid = self.ctx.pmsignal.as_ref().map_or(0, |p| p.postmaster_pid());
        sys.postmaster_start_time = self.ctx.postmaster_start_time;
        sys.superuser = self.superuser;
        sys.role_id = self.role_oid;
        sys.superuser_roles = self.superuser_roles.clone();
        sys.role_name = self.user.clone();
        let sys = Rc::new(sys);
        self.sys = Some(sys.clone());
        let st = &self.ctx.settings;
        let leader: Rc<dyn pgipc_test_shm_mq::LeaderEnv> = Rc::new(SessionLeader {
            shmem: self.ctx.shmem.clone(),
            pmsignal: self.ctx.pmsignal.clone(),
            max_worker_processes: self.ctx.proc_config.max_worker_processes,
            max_parallel_workers: u32::try_from(st.int("max_parallel_workers")).unwrap_or(0),
            dsm_type: SessionLeader::dsm_type_of(st.text("dynamic_shared_memory_type")),
            data_dir: Some(st.text("data_directory"))
                .filter(|d| !d.is_empty())
                .map(std::path::PathBuf::from),
            me: self.me,
        });
        let data_dir = st.text("data_directory");
        let views = (!data_dir.is_empty()).then(|| crate::auth_views::AuthViewsContext {
            data_dir: std::path::PathBuf::from(data_dir),
            hba_file: st.text("hba_file").to_owned(),
            ssl_enabled: st.bool("ssl"),
            superuser: self.superuser,
        });
        let workers = self.workers.clone();
        let mut cat = Catalog::deferred(move |cat| {
            *cat = catalog::build(&info, workers);
            pgipc_sysviews::register(cat, sys);
            if let Some(views) = views {
                crate::auth_views::register(cat, Rc::new(views));
            }
            pgipc_test_shm_mq::register(cat, leader.clone());
            pgipc_test_shm_mq::register_dsm_registry(cat, leader);
        });
        self.ctx.hooks.register_functions(&mut cat);
        self.catalog = cat;
        self.cache.clear();
        self.refresh_tz();
    }

    /// Re-reads TimeZone after the settings may have changed.
    fn refresh_tz(&mut self) {
        let Ok(name) = self.ctx.settings.show("TimeZone") else {
            return;
        };
        if name != self.tz_name {
            if let Ok(tz) = TimeZone::from_setting(&name) {
                self.tz = tz;
            }
            self.tz_name = name;
        }
    }

    /// A statement starts: its timestamp, and the transaction's if it is the first.
    fn start_statement(&mut self) {
        self.stmt_ts = pgipc_query::system_now();
        if self.xact_ts.is_none() {
            self.xact_ts = Some(self.stmt_ts);
            pgipc_backend_status::report_xact_timestamp(self.stmt_ts);
            crate::xact::begin();
            // StartTransaction: the transaction's modes start as the session's defaults
            // (looked up only when a setting changed since they last were).
            let st = &mut self.ctx.settings;
            if self.modes_generation != Some(st.generation()) {
                st.assign_from("transaction_isolation", "default_transaction_isolation");
                st.assign_from("transaction_read_only", "default_transaction_read_only");
                self.modes_generation = Some(st.generation());
            }
        }
    }

    /// A statement that reads takes its snapshot (SHOW and utility statements take none).
    fn take_snapshot(&self, q: &pgipc_query::Prepared) {
        if !q.is_show() {
            let generation = self.ctx.settings.generation();
            let (at, mut level) = self.isolation.get();
            if at != generation {
                level = match self.ctx.settings.text("transaction_isolation") {
                    "serializable" => "serializable",
                    "repeatable read" => "repeatable read",
                    "read uncommitted" => "read uncommitted",
                    _ => "read committed",
                };
                self.isolation.set((generation, level));
            }
            crate::xact::statement_start(level);
        }
    }

    /// A query-layer error as the statement's failure (or the session's end, when an
    /// interrupt check inside the statement decided so).
    fn query_failure(&mut self, e: QueryError) -> Failure {
        match self.leave.take() {
            Some(l) => Failure::Leave(l),
            None => Failure::Error(report_of(e)),
        }
    }

    // ---------------------------------------------------------------- main loop

    fn main_loop(&mut self) -> Result<(), Leave> {
        loop {
            if !self.conn.has_buffered_input() {
                self.flush()?;
            }
            if let Err(Failure::Leave(l)) = self.check_interrupts(false) {
                return Err(l);
            }
            let (ty, body) = match self.conn.read_message(None) {
                Ok(m) => m,
                Err(ReadError::Interrupted) => continue,
                Err(ReadError::Eof) => {
                    if self.tx != TransactionStatus::Idle {
                        tracing::info!(
                            "LOG:  unexpected EOF on client connection with an open transaction"
                        );
                    }
                    return Err(Leave::Clean);
                }
                Err(e @ ReadError::InvalidMessageType(_)) => {
                    return Err(self.die(fatal("08P01", e.to_string())))
                }
                Err(ReadError::Io(e)) => {
                    tracing::info!("could not receive data from client: {e}");
                    return Err(Leave::Fatal);
                }
                Err(e) => {
                    // Broken framing: PostgreSQL logs it and closes the connection.
                    tracing::info!("{e}");
                    return Err(Leave::Fatal);
                }
            };
            if self.ignore_till_sync && !matches!(ty, b'S' | b'X') {
                continue;
            }
            let extended = pgipc_libpq::is_extended_query_message(ty);
            self.current_text = None;
            let r = match ty {
                b'X' => return Err(Leave::Clean),
                b'Q' => self.simple_query(&body),
                b'P' => self.parse_msg(&body),
                b'B' => self.bind_msg(&body),
                b'D' => self.describe_msg(&body),
                b'E' => self.execute_msg(&body),
                b'C' => self.close_msg(&body),
                b'S' => {
                    self.ignore_till_sync = false;
                    if self.tx == TransactionStatus::Idle {
                        // The implicit transaction ends: its portals go.
                        self.portals.clear();
                        self.end_guc_xact(true);
                        self.xact_ts = None;
                    }
                    self.ready_for_query();
                    Ok(())
                }
                b'H' => self.flush().map_err(Failure::Leave),
                b'F' => Err(error("0A000", "fast-path function calls are not supported").into()),
                // CopyData/CopyDone/CopyFail outside COPY: ignored, as PostgreSQL does.
                _ => Ok(()),
            };
            match r {
                Ok(()) => {}
                Err(Failure::Leave(l)) => return Err(l),
                Err(Failure::Error(f)) => {
                    log_report(&f, self.current_text.as_deref());
                    self.conn.out().error_response(&f);
                    self.abort_xact();
                    if extended {
                        self.ignore_till_sync = true;
                    } else if ty != b'Q' {
                        self.ready_for_query();
                    }
                }
            }
        }
    }

    fn simple_query(&mut self, body: &[u8]) -> Result<(), Failure> {
        let q = parse_query(body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        self.start_statement();
        pgipc_backend_status::report_activity(
            pgipc_backend_status::BackendState::Running,
            Some(&q),
        );
        let result = self.run_simple(&q);
        self.implicit_block = false;
        match result {
            Err(Failure::Error(f)) => {
                log_report(&f, Some(&q));
                self.conn.out().error_response(&f);
                self.abort_xact();
            }
            Err(l @ Failure::Leave(_)) => return Err(l),
            Ok(()) => {
                if self.tx == TransactionStatus::Idle {
                    // The query's implicit transaction commits.
                    self.end_guc_xact(true);
                }
            }
        }
        if self.tx == TransactionStatus::Idle {
            self.xact_ts = None;
        }
        self.ready_for_query();
        Ok(())
    }

    /// The statements of one Query message, in order, until the first error (PostgreSQL's
    /// `exec_simple_query`: one syntax error and nothing runs; several statements form one
    /// implicit transaction).
    fn run_simple(&mut self, q: &str) -> Result<(), Failure> {
        if may_be_role_command(q) {
            if let Some(r) = crate::role_command(&self.ctx.settings, &self.user, q) {
                crate::ps::report_activity(r.as_ref().map_or("", |d| d.tag));
                self.failed_block_check(&Statement::Empty)?;
                let done = r?;
                for n in &done.notices {
                    self.conn.out().notice_response(n);
                }
                self.conn.out().command_complete(done.tag);
                return Ok(());
            }
        }
        let stmts = match self.cache.parse_each(q, &[], &self.catalog) {
            Ok(s) => s,
            Err(e) => return Err(self.query_failure(e)),
        };
        self.implicit_block = stmts.len() > 1;
        for st in stmts {
            let st = st.map_err(report_of)?;
            if let Statement::Query(p) = &st {
                // A Query message carries no parameter values.
                if !p.param_types().is_empty() {
                    return Err(error("42P02", "there is no parameter $1").into());
                }
            }
            self.run_statement(&st, &[], true)?;
        }
        Ok(())
    }

    /// ParameterStatus for every `GUC_REPORT` setting that changed (PostgreSQL's
    /// `ReportChangedGUCOptions`), then ReadyForQuery.
    fn ready_for_query(&mut self) {
        if self.report_pending {
            crate::ps::settings_changed(&self.ctx.settings);
            self.report_pending = false;
            for (name, value) in self.ctx.settings.changed_reports() {
                self.conn.out().parameter_status(&name, &value);
            }
            let track = self.ctx.settings.bool("track_activities");
            let appname = self.ctx.settings.text("application_name");
            pgipc_backend_status::with_my_be_entry(|w| {
                w.set_track_activities(track);
                w.report_appname(appname);
            });
        }
        if self.xact_ts.is_none() {
            pgipc_backend_status::report_xact_timestamp(0);
        }
        crate::xact::idle(self.tx != TransactionStatus::Idle);
        pgipc_backend_status::report_activity(crate::status::idle_state(self.tx), None);
        crate::ps::report_activity(crate::ps::idle(self.tx));
        self.conn.out().ready_for_query(self.tx);
    }

    /// An ERROR aborts the transaction: its settings changes are undone at once (PostgreSQL's
    /// `AbortTransaction` runs `AtEOXact_GUC`), and an explicit block waits for ROLLBACK.
    fn abort_xact(&mut self) {
        if let Some(&(_, level)) = self.savepoints.last() {
            // Only the innermost subtransaction aborts (`AbortSubTransaction`); the block
            // waits for ROLLBACK TO or ROLLBACK.
            if self.guc_xact {
                self.ctx.settings.at_eoxact(false, level);
                self.report_pending = true;
                self.refresh_tz();
            }
        } else {
            self.end_guc_xact(false);
        }
        if self.tx == TransactionStatus::InBlock {
            self.tx = TransactionStatus::Failed;
        }
    }

    /// Ends the settings transaction, if one is open.
    fn end_guc_xact(&mut self, commit: bool) {
        if self.guc_xact {
            self.ctx.settings.end_transaction(commit);
            self.guc_xact = false;
            self.report_pending = true;
            self.refresh_tz();
        }
    }

    /// Opens the settings transaction (nest level 1) before the transaction's first change.
    fn begin_guc_xact(&mut self) {
        if !self.guc_xact {
            self.ctx.settings.start_transaction();
            self.guc_xact = true;
        }
    }

    /// `SET [LOCAL] name {TO value | TO DEFAULT}` (PostgreSQL's `ExecSetVariableStmt`); the
    /// query layer has flattened the value list.
    fn set_variable(&mut self, name: &str, value: Option<&str>, local: bool) -> Result<(), Report> {
        if local && self.tx == TransactionStatus::Idle && !self.implicit_block {
            self.conn.out().notice_response(&ErrorFields::new(
                Severity::Warning,
                "25P01",
                "SET LOCAL can only be used in transaction blocks",
            ));
        }
        self.set_variable_quiet(name, value, local)
    }

    /// The checks of `transaction_isolation` and `transaction_read_only` (PostgreSQL's
    /// `check_transaction_isolation` / `check_transaction_read_only`): once the transaction
    /// took a snapshot, or inside a subtransaction, they cannot change.
    fn check_transaction_mode(&self, name: &str, value: &str) -> Result<(), Report> {
        let v = value.trim().to_ascii_lowercase();
        let fail = |m: &str| Err(Box::new(error("25001", m.to_owned())));
        if name.eq_ignore_ascii_case("transaction_isolation") {
            let known = [
                "serializable",
                "repeatable read",
                "read committed",
                "read uncommitted",
            ];
            if known.contains(&v.as_str()) && v != self.ctx.settings.text("transaction_isolation") {
                if crate::xact::first_snapshot_set() {
                    return fail("SET TRANSACTION ISOLATION LEVEL must be called before any query");
                }
                if !self.savepoints.is_empty() {
                    return fail(
                        "SET TRANSACTION ISOLATION LEVEL must not be called in a subtransaction",
                    );
                }
            }
        } else if name.eq_ignore_ascii_case("transaction_read_only")
            && matches!(v.as_str(), "off" | "of" | "false" | "f" | "no" | "n" | "0")
            && self.ctx.settings.bool("transaction_read_only")
            && crate::xact::first_snapshot_set()
        {
            return fail("transaction read-write mode must be set before any query");
        }
        Ok(())
    }

    /// [`set_variable`](Self::set_variable) without the `SET LOCAL` warning.
    fn set_variable_quiet(
        &mut self,
        name: &str,
        value: Option<&str>,
        local: bool,
    ) -> Result<(), Report> {
        if let Some(v) = value {
            self.check_transaction_mode(name, v)?;
        }
        self.begin_guc_xact();
        self.report_pending = true;
        let superuser = self.superuser;
        let st = &mut self.ctx.settings;
        let r = match (value, local) {
            (Some(t), _) => st.set_session(name, t, superuser, local),
            (None, false) => st.reset(name, superuser),
            (None, true) => st
                .set_config_option(
                    name,
                    None,
                    SetOptions {
                        context: if superuser {
                            Context::Superuser
                        } else {
                            Context::User
                        },
                        source: Source::Session,
                        action: Action::Local,
                        location: None,
                    },
                )
                .map(|_| ()),
        };
        self.refresh_tz();
        r.map_err(|e| Box::new(guc_error(&e, Severity::Error)))
    }

    /// RowDescription for `columns` with Bind's `formats`.
    fn row_description(&mut self, columns: &[Column], formats: &[i16]) {
        let fields: Vec<FieldDescription> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut f = FieldDescription::computed(&c.name, c.ty.oid(), c.ty.typlen());
                f.format = format_of(formats, i);
                f
            })
            .collect();
        self.conn.out().row_description(&fields);
    }

    /// The result columns of `stmt`, if it returns rows.
    fn columns_of(stmt: &Statement) -> Option<Vec<Column>> {
        match stmt {
            Statement::Query(p) => Some(p.columns().to_vec()),
            Statement::ShowAll => Some(
                ["name", "setting", "description"]
                    .iter()
                    .map(|n| Column::new(*n, Type::Text))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// In a failed transaction block only its end may run (PostgreSQL's
    /// `IsTransactionExitStmt`).
    fn failed_block_check(&self, stmt: &Statement) -> Result<(), Report> {
        let exits = matches!(
            stmt,
            Statement::Transaction("COMMIT" | "ROLLBACK") | Statement::RollbackTo(_)
        );
        if self.tx == TransactionStatus::Failed && !exits {
            return Err(Box::new(error(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )));
        }
        Ok(())
    }

    /// Sends up to `max` rows (0: all) of `rows`; returns how many and whether they are
    /// exhausted. Rows go out as they come: the buffer is flushed every [`FLUSH_AT`] bytes.
    fn send_rows(
        &mut self,
        rows: &mut Rows,
        formats: &[i16],
        max: i32,
    ) -> Result<(u64, bool), Failure> {
        let mut n: u64 = 0;
        let mut cells: Vec<Option<Vec<u8>>> = Vec::new();
        loop {
            if max > 0 && n == max as u64 {
                return Ok((n, false));
            }
            let row = match rows.next_row(self) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok((n, true)),
                Err(e) => return Err(self.query_failure(e)),
            };
            cells.clear();
            for (i, d) in row.iter().enumerate() {
                cells.push(if format_of(formats, i) == 1 {
                    binary::encode(d).map_err(report_of)?
                } else {
                    d.to_text(rows.time_zone()).map(String::into_bytes)
                });
            }
            let refs: Vec<Option<&[u8]>> = cells.iter().map(|c| c.as_deref()).collect();
            self.conn.out().data_row(&refs);
            n += 1;
            if self.conn.out().len() >= FLUSH_AT {
                self.flush_running()?;
            }
        }
    }

    /// Flushes in the middle of a statement: a cancel while the client does not read
    /// cancels the statement.
    fn flush_running(&mut self) -> Result<(), Failure> {
        loop {
            match self.conn.flush(None) {
                Ok(()) => return Ok(()),
                Err(ReadError::Interrupted) => self.check_interrupts(true)?,
                Err(_) => return Err(Failure::Leave(Leave::Fatal)),
            }
        }
    }

    /// Runs one statement (the whole of it): `describe` sends RowDescription first (the
    /// simple protocol); CommandComplete at the end.
    fn run_statement(
        &mut self,
        stmt: &Statement,
        formats: &[i16],
        describe: bool,
    ) -> Result<(), Failure> {
        crate::ps::report_activity(activity_of(stmt));
        self.failed_block_check(stmt)?;
        if describe {
            if let Some(cols) = Self::columns_of(stmt) {
                self.row_description(&cols, formats);
            }
        }
        let tag: String = match stmt {
            Statement::Empty => {
                self.conn.out().empty_query_response();
                return Ok(());
            }
            Statement::Query(p) => {
                self.take_snapshot(p);
                let mut rows = p.execute(Vec::new(), &*self);
                let (n, _) = self.send_rows(&mut rows, formats, 0)?;
                select_tag(p.is_show(), n)
            }
            Statement::ShowAll => {
                for r in self.ctx.settings.show_all(self.superuser) {
                    self.conn.out().data_row(&[
                        Some(r.name.as_bytes()),
                        Some(r.setting.as_bytes()),
                        Some(r.description.as_bytes()),
                    ]);
                }
                "SHOW".into()
            }
            Statement::Set { name, value, local } => {
                self.set_variable(name, value.as_deref(), *local)?;
                "SET".into()
            }
            Statement::Reset(Some(name)) => {
                self.set_variable(name, None, false)?;
                "RESET".into()
            }
            Statement::Reset(None) => {
                self.begin_guc_xact();
                self.report_pending = true;
                self.ctx.settings.reset_all();
                self.refresh_tz();
                "RESET".into()
            }
            Statement::Transaction(t) => self.transaction(t).into(),
            Statement::Begin { start, modes } => {
                self.transaction("BEGIN");
                for (name, value) in modes {
                    self.set_variable(name, Some(value), true)?;
                }
                if *start { "START TRANSACTION" } else { "BEGIN" }.into()
            }
            Statement::SetTransaction { session, modes } => {
                if !*session && self.tx == TransactionStatus::Idle && !self.implicit_block {
                    self.conn.out().notice_response(&ErrorFields::new(
                        Severity::Warning,
                        "25P01",
                        "SET TRANSACTION can only be used in transaction blocks",
                    ));
                }
                for (name, value) in modes {
                    self.set_variable_quiet(name, Some(value), !*session)?;
                }
                "SET".into()
            }
            Statement::Savepoint(name) => {
                self.require_block("SAVEPOINT")?;
                self.begin_guc_xact();
                let level = self.ctx.settings.new_nest_level();
                self.savepoints.push((name.clone(), level));
                crate::xact::subxact_start();
                "SAVEPOINT".into()
            }
            Statement::Release(name) => {
                self.require_block("RELEASE SAVEPOINT")?;
                let at = self.find_savepoint(name)?;
                // Each subtransaction above and at `at` commits into its parent
                // (`CommitSubTransaction` runs `AtEOSubXact_GUC(true)`).
                while self.savepoints.len() > at {
                    if let Some((_, level)) = self.savepoints.pop() {
                        self.ctx.settings.at_eoxact(true, level);
                    }
                }
                crate::xact::subxact_release(at);
                "RELEASE".into()
            }
            Statement::RollbackTo(name) => {
                self.require_block("ROLLBACK TO SAVEPOINT")?;
                let at = self.find_savepoint(name)?;
                self.savepoints.truncate(at + 1);
                crate::xact::subxact_rollback_to(at).map_err(report_of)?;
                let level = self.savepoints[at].1;
                // The savepoint's subtransaction and those above abort; it starts again.
                self.ctx.settings.at_eoxact(false, level);
                self.savepoints[at].1 = self.ctx.settings.new_nest_level();
                self.report_pending = true;
                self.refresh_tz();
                self.tx = TransactionStatus::InBlock;
                "ROLLBACK".into()
            }
        };
        self.conn.out().command_complete(&tag);
        Ok(())
    }

    /// SAVEPOINT, RELEASE and ROLLBACK TO outside a transaction block: PostgreSQL's
    /// `RequireTransactionBlock` error (an implicit block of several statements counts as
    /// outside, as `DefineSavepoint` says).
    fn require_block(&self, what: &str) -> Result<(), Report> {
        if self.tx == TransactionStatus::Idle {
            return Err(Box::new(error(
                "25P01",
                format!("{what} can only be used in transaction blocks"),
            )));
        }
        Ok(())
    }

    /// The index of the innermost savepoint named `name`, or 3B001.
    fn find_savepoint(&self, name: &str) -> Result<usize, Report> {
        self.savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| {
                Box::new(error(
                    "3B001",
                    format!("savepoint \"{name}\" does not exist"),
                ))
            })
    }

    /// BEGIN / COMMIT / ROLLBACK; returns the command tag.
    fn transaction(&mut self, tag: &'static str) -> &'static str {
        if tag == "BEGIN" {
            if self.tx != TransactionStatus::Idle {
                self.conn.out().notice_response(&ErrorFields::new(
                    Severity::Warning,
                    "25001",
                    "there is already a transaction in progress",
                ));
            }
            if self.tx == TransactionStatus::Idle {
                self.tx = TransactionStatus::InBlock;
            }
            return "BEGIN";
        }
        let was = self.tx;
        if was == TransactionStatus::Idle {
            self.conn.out().notice_response(&ErrorFields::new(
                Severity::Warning,
                "25P01",
                "there is no transaction in progress",
            ));
        }
        self.tx = TransactionStatus::Idle;
        self.xact_ts = None;
        let commit = tag == "COMMIT" && was != TransactionStatus::Failed;
        if commit && self.guc_xact {
            // Open savepoints commit into their parents first (`CommitSubTransaction`).
            while let Some((_, level)) = self.savepoints.pop() {
                self.ctx.settings.at_eoxact(true, level);
            }
        }
        self.savepoints.clear();
        self.end_guc_xact(commit);
        if commit {
            "COMMIT"
        } else {
            "ROLLBACK"
        }
    }

    // ---------------------------------------------------------------- extended protocol

    fn parse_msg(&mut self, body: &[u8]) -> Result<(), Failure> {
        let m = parse_parse(body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        self.start_statement();
        let text: Rc<str> = Rc::from(m.query.as_str());
        self.current_text = Some(text.clone());
        if may_be_role_command(&m.query) {
            if let Some(checked) = crate::user::check_role_command(&m.query) {
                checked?;
                return self.prepare(m.name, Statement::Empty, text, Vec::new(), true);
            }
        }
        let mut declared = Vec::with_capacity(m.param_types.len());
        for &oid in &m.param_types {
            declared.push(match oid {
                0 => None,
                oid => Some(Type::from_oid(oid).ok_or_else(|| {
                    error(
                        "0A000",
                        format!("parameters of the type with OID {oid} are not supported"),
                    )
                })?),
            });
        }
        let mut stmts = match self.cache.parse_each(&m.query, &declared, &self.catalog) {
            Ok(s) => s,
            Err(e) => return Err(self.query_failure(e)),
        };
        if stmts.len() > 1 {
            return Err(error(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            )
            .into());
        }
        let stmt = match stmts.pop() {
            Some(s) => s.map_err(report_of)?,
            None => Statement::Empty,
        };
        let param_types = match &stmt {
            Statement::Query(p) => p.param_types().iter().map(|t| t.oid()).collect(),
            _ => Vec::new(),
        };
        self.prepare(m.name, stmt, text, param_types, false)
    }

    /// Stores a parsed statement under `name` and answers ParseComplete.
    fn prepare(
        &mut self,
        name: String,
        stmt: Statement,
        text: Rc<str>,
        param_types: Vec<u32>,
        role: bool,
    ) -> Result<(), Failure> {
        self.failed_block_check(&stmt)?;
        if !name.is_empty() && self.statements.contains_key(&name) {
            return Err(error(
                "42P05",
                format!("prepared statement \"{name}\" already exists"),
            )
            .into());
        }
        self.statements.insert(
            name,
            Prepared {
                stmt: Rc::new(stmt),
                text,
                param_types,
                role,
            },
        );
        self.conn.out().parse_complete();
        Ok(())
    }

    fn bind_msg(&mut self, body: &[u8]) -> Result<(), Failure> {
        let m = parse_bind(body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        self.start_statement();
        let Some(p) = self.statements.get(&m.statement) else {
            return Err(no_statement(&m.statement).into());
        };
        let stmt = p.stmt.clone();
        let text = p.text.clone();
        let role = p.role.then(|| (text.clone(), None));
        self.current_text = Some(text.clone());
        let nparams = p.param_types.len();
        if m.params.len() != nparams {
            return Err(error(
                "08P01",
                format!(
                    "bind message supplies {} parameters, but prepared statement \"{}\" requires {}",
                    m.params.len(),
                    m.statement,
                    nparams
                ),
            )
            .into());
        }
        if m.param_formats.len() > 1 && m.param_formats.len() != m.params.len() {
            return Err(error(
                "08P01",
                format!(
                    "bind message has {} parameter formats but {} parameters",
                    m.param_formats.len(),
                    m.params.len()
                ),
            )
            .into());
        }
        if let Some(cols) = Self::columns_of(&stmt) {
            let nf = m.result_formats.len();
            if nf > 1 && nf != cols.len() {
                return Err(error(
                    "08P01",
                    format!(
                        "bind message has {nf} result formats but query has {} columns",
                        cols.len()
                    ),
                )
                .into());
            }
        }
        self.failed_block_check(&stmt)?;
        if !m.portal.is_empty() && self.portals.contains_key(&m.portal) {
            return Err(error("42P03", format!("portal \"{}\" already exists", m.portal)).into());
        }
        let params = match &*stmt {
            Statement::Query(p) => self.bind_params(p, &m.params, &m.param_formats)?,
            _ => Vec::new(),
        };
        self.portals.insert(
            m.portal,
            Portal {
                stmt,
                text,
                params,
                formats: m.result_formats,
                rows: None,
                done: false,
                role,
            },
        );
        self.conn.out().bind_complete();
        Ok(())
    }

    /// Bind's parameter values: text through each type's input function, binary through
    /// its receive function.
    fn bind_params(
        &self,
        p: &pgipc_query::Prepared,
        values: &[Option<Vec<u8>>],
        formats: &[i16],
    ) -> Result<Vec<Datum>, Report> {
        let mut texts: Vec<Option<&str>> = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            texts.push(match v {
                Some(b) if format_of(formats, i) == 0 => {
                    Some(std::str::from_utf8(b).map_err(|_| {
                        Box::new(error(
                            "22021",
                            "invalid byte sequence for encoding \"UTF8\"",
                        ))
                    })?)
                }
                _ => None,
            });
        }
        let mut out = p.params_from_text(&texts, self).map_err(report_of)?;
        for (i, v) in values.iter().enumerate() {
            if let (Some(b), 1) = (v, format_of(formats, i)) {
                out[i] = binary::decode(b, p.param_types()[i], i + 1).map_err(report_of)?;
            }
        }
        Ok(out)
    }

    fn describe_msg(&mut self, body: &[u8]) -> Result<(), Failure> {
        let m = parse_target(b'D', body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        match m.target {
            Target::Statement => {
                let Some(p) = self.statements.get(&m.name).cloned() else {
                    return Err(no_statement(&m.name).into());
                };
                self.conn.out().parameter_description(&p.param_types);
                match Self::columns_of(&p.stmt) {
                    Some(cols) => self.row_description(&cols, &[]),
                    None => self.conn.out().no_data(),
                }
            }
            Target::Portal => {
                let Some(p) = self.portals.get(&m.name) else {
                    return Err(no_portal(&m.name).into());
                };
                let (cols, formats) = (Self::columns_of(&p.stmt), p.formats.clone());
                match cols {
                    Some(cols) => self.row_description(&cols, &formats),
                    None => self.conn.out().no_data(),
                }
            }
        }
        Ok(())
    }

    fn execute_msg(&mut self, body: &[u8]) -> Result<(), Failure> {
        let m = parse_execute(body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        let Some(mut portal) = self.portals.remove(&m.portal) else {
            return Err(no_portal(&m.portal).into());
        };
        self.current_text = Some(portal.text.clone());
        if portal.rows.is_none() && !portal.done {
            self.start_statement();
        }
        pgipc_backend_status::report_activity(
            pgipc_backend_status::BackendState::Running,
            Some(&portal.text),
        );
        let r = self.execute_portal(&mut portal, m.max_rows);
        // A portal whose run failed is gone (PostgreSQL marks it failed and drops it).
        if r.is_ok() {
            self.portals.insert(m.portal, portal);
        }
        r
    }

    /// Execute: runs the portal, or continues a suspended one, for up to `max_rows` rows.
    fn execute_portal(&mut self, p: &mut Portal, max_rows: i32) -> Result<(), Failure> {
        self.failed_block_check(&p.stmt)?;
        if let Some((sql, tag)) = &mut p.role {
            if let Some(t) = tag {
                // A utility statement runs once per portal.
                self.conn.out().command_complete(t);
                return Ok(());
            }
            let Some(r) = crate::role_command(&self.ctx.settings, &self.user, sql) else {
                return Err(error("XX000", "role command no longer parses").into());
            };
            crate::ps::report_activity(r.as_ref().map_or("", |d| d.tag));
            let done = r?;
            for n in &done.notices {
                self.conn.out().notice_response(n);
            }
            self.conn.out().command_complete(done.tag);
            *tag = Some(done.tag);
            p.done = true;
            return Ok(());
        }
        let stmt = p.stmt.clone();
        match &*stmt {
            Statement::Query(q) => {
                crate::ps::report_activity(activity_of(&stmt));
                if p.done {
                    self.conn
                        .out()
                        .command_complete(&select_tag(q.is_show(), 0));
                    return Ok(());
                }
                let mut rows = match p.rows.take() {
                    Some(r) => r,
                    None => {
                        self.take_snapshot(q);
                        q.execute(std::mem::take(&mut p.params), &*self)
                    }
                };
                let (n, finished) = self.send_rows(&mut rows, &p.formats, max_rows)?;
                if finished {
                    p.done = true;
                    self.conn
                        .out()
                        .command_complete(&select_tag(q.is_show(), n));
                } else {
                    p.rows = Some(rows);
                    self.conn.out().portal_suspended();
                }
                Ok(())
            }
            other => {
                if p.done && !matches!(other, Statement::Empty) {
                    // A utility statement runs once per portal.
                    self.conn.out().command_complete(utility_tag(other));
                    return Ok(());
                }
                p.done = true;
                self.run_statement(other, &p.formats, false)
            }
        }
    }

    fn close_msg(&mut self, body: &[u8]) -> Result<(), Failure> {
        let m = parse_target(b'C', body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        // Closing something that does not exist is not an error.
        match m.target {
            Target::Statement => {
                self.statements.remove(&m.name);
            }
            Target::Portal => {
                self.portals.remove(&m.name);
            }
        }
        self.conn.out().close_complete();
        Ok(())
    }
}

/// The session as the query layer sees it: settings, TimeZone, clock, notices, interrupts.
impl QuerySession for Session<'_> {
    fn current_setting(
        &mut self,
        name: &str,
        missing_ok: bool,
    ) -> pgipc_query::Result<Option<String>> {
        if let Some(v) = self.ctx.hooks.show(name) {
            return Ok(Some(v));
        }
        match self.ctx.settings.show_as(name, self.superuser) {
            Ok(v) => Ok(Some(v)),
            Err(GucError::Unknown(..)) if missing_ok => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn set_config(
        &mut self,
        name: &str,
        value: &str,
        is_local: bool,
    ) -> pgipc_query::Result<String> {
        self.begin_guc_xact();
        self.report_pending = true;
        let r = self
            .ctx
            .settings
            .set_session(name, value, self.superuser, is_local);
        self.refresh_tz();
        r?;
        Ok(self.ctx.settings.show(name)?)
    }

    fn time_zone(&self) -> TimeZone {
        self.tz.clone()
    }

    fn transaction_timestamp(&self) -> i64 {
        self.xact_ts.unwrap_or(self.stmt_ts)
    }

    fn statement_timestamp(&self) -> i64 {
        self.stmt_ts
    }

    fn notice(&mut self, severity: &'static str, notice: QueryError) {
        let severity = match severity {
            "WARNING" => Severity::Warning,
            "INFO" => Severity::Info,
            "LOG" => Severity::Log,
            "DEBUG" => Severity::Debug,
            _ => Severity::Notice,
        };
        let mut f = *report_of(notice);
        f.severity = severity;
        self.conn.out().notice_response(&f);
    }

    fn check_for_interrupts(&mut self) -> pgipc_query::Result<()> {
        match self.check_interrupts(true) {
            Ok(()) => Ok(()),
            // The only error an interrupt check raises: a query cancel.
            Err(Failure::Error(f)) => Err(QueryError::new("57014", f.message.clone())),
            Err(Failure::Leave(l)) => {
                // The FATAL is sent; the statement unwinds and the session ends.
                self.leave = Some(l);
                Err(QueryError::new(
                    "57P01",
                    "terminating connection due to administrator command",
                ))
            }
        }
    }

    fn settings(&self) -> Option<&pgipc_guc::Settings> {
        Some(&self.ctx.settings)
    }
}

/// A query-layer error as an ErrorResponse's fields.
fn report_of(e: QueryError) -> Report {
    let mut f = ErrorFields::new(Severity::Error, &e.sqlstate, e.message);
    f.detail = e.detail;
    f.hint = e.hint;
    f.position = e.position;
    f.context = e.context;
    Box::new(f)
}

/// `SELECT n`, or `SHOW` for `SHOW name`.
fn select_tag(show: bool, n: u64) -> String {
    if show {
        "SHOW".into()
    } else {
        format!("SELECT {n}")
    }
}

/// The command tag of a statement that returns no rows of its own.
/// Whether `q` may be a role command (CREATE/ALTER/DROP ROLE, USER, GROUP): its first word is
/// one of the verbs, or it starts with a comment. A cheap test that keeps `SELECT 1` off the
/// role parser's tokenizer.
fn may_be_role_command(q: &str) -> bool {
    let t = q.trim_start();
    if t.starts_with("--") || t.starts_with("/*") {
        return true;
    }
    let word: String = t
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .take(7)
        .collect();
    ["create", "alter", "drop"]
        .iter()
        .any(|v| word.eq_ignore_ascii_case(v))
}

/// What the process title shows while `stmt` runs (PostgreSQL's command tag without counts).
fn activity_of(stmt: &Statement) -> &'static str {
    match stmt {
        Statement::Query(q) if q.is_show() => "SHOW",
        Statement::Query(_) => "SELECT",
        Statement::Empty => "",
        other => utility_tag(other),
    }
}

fn utility_tag(stmt: &Statement) -> &'static str {
    match stmt {
        Statement::Set { .. } => "SET",
        Statement::Reset(_) => "RESET",
        Statement::ShowAll => "SHOW",
        Statement::Transaction(t) => t,
        Statement::Begin { start: true, .. } => "START TRANSACTION",
        Statement::Begin { start: false, .. } => "BEGIN",
        Statement::SetTransaction { .. } => "SET",
        Statement::Savepoint(_) => "SAVEPOINT",
        Statement::Release(_) => "RELEASE",
        Statement::RollbackTo(_) => "ROLLBACK",
        Statement::Query(_) | Statement::Empty => "SELECT 0",
    }
}

/// An address and a port of a TCP connection.
type Endpoint = (IpAddr, i32);

/// The local and the peer address and port of a TCP connection (`None` over a Unix socket).
fn socket_addresses(sock: std::os::fd::BorrowedFd<'_>) -> (Option<Endpoint>, Option<Endpoint>) {
    use nix::sys::socket::{getpeername, getsockname, SockaddrStorage};
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let inet = |a: SockaddrStorage| -> Option<Endpoint> {
        if let Some(v4) = a.as_sockaddr_in() {
            return Some((v4.ip().into(), i32::from(v4.port())));
        }
        a.as_sockaddr_in6()
            .map(|v6| (v6.ip().into(), i32::from(v6.port())))
    };
    let local = getsockname::<SockaddrStorage>(fd).ok().and_then(inet);
    let peer = getpeername::<SockaddrStorage>(fd).ok().and_then(inet);
    (local, peer)
}

fn no_statement(name: &str) -> ErrorFields {
    if name.is_empty() {
        error("26000", "unnamed prepared statement does not exist")
    } else {
        error(
            "26000",
            format!("prepared statement \"{name}\" does not exist"),
        )
    }
}

fn no_portal(name: &str) -> ErrorFields {
    error("34000", format!("portal \"{name}\" does not exist"))
}

/// The words of a startup packet's `options` (PostgreSQL's `pg_split_opts`): separated by
/// blanks, a backslash takes the next character literally.
fn split_options(opts: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = opts.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            c if c.is_ascii_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// The format code of column `i` under the Bind convention: none = text, one = all.
fn format_of(formats: &[i16], i: usize) -> i16 {
    match formats.len() {
        0 => 0,
        1 => formats[0],
        _ => formats.get(i).copied().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_keys_come_from_the_kernel_or_not_at_all() {
        let a = random_key(32).unwrap();
        let b = random_key(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b, "two keys of 256 random bits differ");
        assert_eq!(random_key(4).unwrap().len(), 4);
        // A failing source gives no key at all (no time-and-pid stand-in).
        assert_eq!(
            key_from(32, |_| Err(std::io::Error::from_raw_os_error(libc::ENOSYS))),
            None
        );
        assert_eq!(key_from(4, |_| Ok(0)), None);
        // Short reads and interruptions are continued.
        let mut calls = 0;
        let k = key_from(5, |b| {
            calls += 1;
            if calls == 1 {
                return Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
            }
            b[0] = calls;
            Ok(1)
        })
        .unwrap();
        assert_eq!(k, vec![2, 3, 4, 5, 6]);
    }
}
