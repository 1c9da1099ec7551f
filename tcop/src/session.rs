//! One session: start-up, then the message loop (PostgreSQL's `BackendInitialize` and
//! `PostgresMain`).

use crate::sql::{self, IntLit, SetValue, Stmt};
use crate::sys::{self, Pending};
use crate::wait::BackendWait;
use crate::{BackendContext, Datum, Report};
use pgipc_guc::{Action, Context, GucError, SetOptions, Source};
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_libpq::{
    parse_bind, parse_execute, parse_parse, parse_query, parse_startup_packet, parse_target, Conn,
    ErrorFields, FieldDescription, ReadError, Replication, Severity, StartupError, StartupPacket,
    StartupRequest, Target, TransactionStatus,
};
use pgipc_proc::MyProc;
use pgipc_waiteventset::WaitEvents;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// `PG_WAIT_TIMEOUT | PgSleep`: what `pg_sleep` publishes as its wait event.
const WAIT_EVENT_PG_SLEEP: u32 = 0x0900_0000 | 2;

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

/// A prepared statement.
#[derive(Debug, Clone)]
struct Prepared {
    stmt: Stmt,
    param_types: Vec<u32>,
}

/// A bound portal.
#[derive(Debug, Clone)]
struct Portal {
    stmt: Stmt,
    formats: Vec<i16>,
    done: bool,
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
    /// Something may have changed a `GUC_REPORT` setting since the last ReadyForQuery.
    report_pending: bool,
    /// The simple Query being run has several statements (PostgreSQL's implicit
    /// transaction block).
    implicit_block: bool,
    /// The session user is a superuser (from the role catalog; always without one).
    superuser: bool,
    ignore_till_sync: bool,
    me: Option<&'static MyProc>,
    /// The dynamic background workers this session started.
    workers: crate::bgworker_fns::WorkerFns,
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

fn log_report(f: &ErrorFields) {
    match f.severity {
        Severity::Fatal | Severity::Panic => {
            tracing::error!("{}:  {} ({})", f.severity.name(), f.message, f.code)
        }
        Severity::Error => tracing::warn!("{}:  {} ({})", f.severity.name(), f.message, f.code),
        _ => tracing::info!("{}:  {} ({})", f.severity.name(), f.message, f.code),
    }
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
    let mut s = Session {
        conn,
        ctx,
        pid: std::process::id() as i32,
        tx: TransactionStatus::Idle,
        statements: HashMap::new(),
        portals: HashMap::new(),
        guc_xact: false,
        report_pending: false,
        implicit_block: false,
        superuser: true,
        ignore_till_sync: false,
        me: None,
        workers: Default::default(),
    };
    match s.start().and_then(|()| s.main_loop()) {
        Ok(()) | Err(Leave::Clean) => 0,
        Err(Leave::Fatal) => 1,
    }
}

impl Session<'_> {
    /// Sends a FATAL report and ends the session.
    fn die(&mut self, f: ErrorFields) -> Leave {
        log_report(&f);
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
        let cfg = match crate::tls::server_config(&self.ctx.settings) {
            Ok(c) => c,
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
        let packet = self.read_startup(deadline)?;
        if let Some(f) = self.ctx.cac.refusal() {
            return Err(self.die(f));
        }
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
            Ok(who) => self.superuser = who.superuser,
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
        if let Err(e) = self.conn.waiter_mut().switch_latch(me.latch().as_owner()) {
            return Err(self.die(fatal(
                "XX000",
                format!("could not wait on the process latch: {e}"),
            )));
        }

        if let Err(f) = self.apply_startup_settings(&packet) {
            return Err(self.die(*f));
        }
        // PostgreSQL's BeginReportingGUCOptions: every GUC_REPORT setting, once.
        for (name, value) in self.ctx.settings.begin_reporting() {
            self.conn.out().parameter_status(&name, &value);
        }
        self.conn.out().backend_key_data(self.pid, &key);
        self.conn.out().ready_for_query(TransactionStatus::Idle);
        tracing::debug!(
            "connection authorized: user={} database={} protocol={version}",
            packet.user,
            packet.database
        );
        Ok(())
    }

    /// The settings a session starts with (PostgreSQL's `InitPostgres` and
    /// `process_startup_options`): the server's computed values, then the startup packet's
    /// `options` (`-c name=value`, `--name=value`) and parameters with source "client". An
    /// unknown name or a bad value is FATAL, as in PostgreSQL.
    fn apply_startup_settings(&mut self, packet: &StartupPacket) -> Result<(), Report> {
        let fatal_of = |e: GucError| Box::new(guc_error(&e, Severity::Fatal));
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
        self.ctx
            .hooks
            .register_cancel_key(me.proc_number(), self.pid, key)
            .map_err(internal)?;
        Ok(me)
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
        let pm_died = self.conn.waiter_mut().postmaster_died;
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
                    log_report(&f);
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
        let stmts = sql::split_statements(&q);
        let mut result = Ok(());
        if stmts.is_empty() {
            self.conn.out().empty_query_response();
        }
        self.implicit_block = stmts.len() > 1;
        for (offset, text) in stmts {
            let r = self
                .analyze(text, offset)
                .map_err(Failure::from)
                .and_then(|stmt| self.execute(&stmt, &[], true));
            if let Err(e) = r {
                result = Err(e);
                break;
            }
        }
        self.implicit_block = false;
        match result {
            Err(Failure::Error(f)) => {
                log_report(&f);
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
        self.ready_for_query();
        Ok(())
    }

    /// ParameterStatus for every `GUC_REPORT` setting that changed (PostgreSQL's
    /// `ReportChangedGUCOptions`), then ReadyForQuery.
    fn ready_for_query(&mut self) {
        if self.report_pending {
            self.report_pending = false;
            for (name, value) in self.ctx.settings.changed_reports() {
                self.conn.out().parameter_status(&name, &value);
            }
        }
        self.conn.out().ready_for_query(self.tx);
    }

    /// An ERROR aborts the transaction: its settings changes are undone at once (PostgreSQL's
    /// `AbortTransaction` runs `AtEOXact_GUC`), and an explicit block waits for ROLLBACK.
    fn abort_xact(&mut self) {
        self.end_guc_xact(false);
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
        }
    }

    /// Opens the settings transaction (nest level 1) before the transaction's first change.
    fn begin_guc_xact(&mut self) {
        if !self.guc_xact {
            self.ctx.settings.start_transaction();
            self.guc_xact = true;
        }
    }

    /// `SET [LOCAL] name {TO value, … | TO DEFAULT}` (PostgreSQL's `ExecSetVariableStmt`).
    fn set_variable(
        &mut self,
        name: &str,
        value: Option<&[SetValue]>,
        local: bool,
    ) -> Result<(), Report> {
        if local && self.tx == TransactionStatus::Idle && !self.implicit_block {
            self.conn.out().notice_response(&ErrorFields::new(
                Severity::Warning,
                "25P01",
                "SET LOCAL can only be used in transaction blocks",
            ));
        }
        let text = match value {
            Some(v) => {
                let args: Vec<_> = v.iter().map(SetValue::as_arg).collect();
                Some(
                    pgipc_guc::flatten_set_args(name, &args)
                        .map_err(|e| Box::new(guc_error(&e, Severity::Error)))?,
                )
            }
            None => None,
        };
        self.begin_guc_xact();
        self.report_pending = true;
        let superuser = self.superuser;
        let st = &mut self.ctx.settings;
        let r = match (&text, local) {
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
        r.map_err(|e| Box::new(guc_error(&e, Severity::Error)))
    }

    /// The result column of `stmt`, asking the hooks about functions.
    fn column(&self, stmt: &Stmt) -> Option<(String, u32, i16)> {
        stmt.column(|name| self.function_result_type(name))
    }

    /// The result type of function `name`: the injection-point functions (compiled in with the
    /// `injection_points` feature only), the background-worker ones, then the hooks'.
    fn function_result_type(&self, name: &str) -> Option<u32> {
        const VOID: u32 = 2278;
        match pgipc_injection_point::sql_function_exists(name) {
            true => Some(VOID),
            false => crate::bgworker_fns::result_type(name)
                .or_else(|| self.ctx.hooks.function_result_type(name)),
        }
    }

    fn call_function(&self, name: &str, args: &[String]) -> Result<Datum, Report> {
        match pgipc_injection_point::sql_function(name, args) {
            Some(Ok(())) => Ok(Datum::Void),
            Some(Err(e)) => Err(Box::new(error(e.sqlstate(), e.to_string()))),
            None => match self.workers.call(self.ctx, self.me, name, args) {
                Some(r) => r,
                None => self.ctx.hooks.call_function(name, args),
            },
        }
    }

    /// Parses one statement and checks that a called function exists (parse analysis).
    fn analyze(&self, text: &str, offset: usize) -> Result<Stmt, Report> {
        let stmt = sql::parse_statement(text, offset)?;
        if let Stmt::Call {
            name, arg_types, ..
        } = &stmt
        {
            if self.function_result_type(name).is_none() {
                return Err(Box::new(
                    error(
                        "42883",
                        format!("function {name}({}) does not exist", arg_types.join(", ")),
                    )
                    .with_hint(
                        "No function matches the given name and argument types. \
                         You might need to add explicit type casts.",
                    ),
                ));
            }
        }
        Ok(stmt)
    }

    fn row_description(&mut self, stmt: &Stmt, formats: &[i16]) {
        match self.column(stmt) {
            Some(_) if *stmt == Stmt::ShowAll => {
                let fields: Vec<FieldDescription> = ["name", "setting", "description"]
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let mut f = FieldDescription::computed(n, sql::TEXTOID, -1);
                        f.format = format_of(formats, i);
                        f
                    })
                    .collect();
                self.conn.out().row_description(&fields);
            }
            Some((name, oid, len)) => {
                let mut f = FieldDescription::computed(&name, oid, len);
                f.format = format_of(formats, 0);
                self.conn.out().row_description(&[f]);
            }
            None => self.conn.out().no_data(),
        }
    }

    /// Runs one statement: optional RowDescription, rows, CommandComplete.
    fn execute(&mut self, stmt: &Stmt, formats: &[i16], describe: bool) -> Result<(), Failure> {
        if self.tx == TransactionStatus::Failed && !stmt.is_transaction_end() {
            return Err(error(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )
            .into());
        }
        if describe && self.column(stmt).is_some() {
            self.row_description(stmt, formats);
        }
        let fmt = format_of(formats, 0);
        let tag = match stmt {
            Stmt::Empty => {
                self.conn.out().empty_query_response();
                return Ok(());
            }
            Stmt::SelectInt(v) => {
                let bytes = match (v, fmt) {
                    (IntLit::Int4(n), 1) => n.to_be_bytes().to_vec(),
                    (IntLit::Int8(n), 1) => n.to_be_bytes().to_vec(),
                    (IntLit::Numeric(_), 1) => {
                        return Err(error(
                            "0A000",
                            "binary output of numeric values is not supported",
                        )
                        .into())
                    }
                    (IntLit::Int4(n), _) => n.to_string().into_bytes(),
                    (IntLit::Int8(n), _) => n.to_string().into_bytes(),
                    (IntLit::Numeric(s), _) => s.clone().into_bytes(),
                };
                self.conn.out().data_row(&[Some(&bytes)]);
                "SELECT 1"
            }
            Stmt::BackendPid => {
                let bytes = if fmt == 1 {
                    self.pid.to_be_bytes().to_vec()
                } else {
                    self.pid.to_string().into_bytes()
                };
                self.conn.out().data_row(&[Some(&bytes)]);
                "SELECT 1"
            }
            Stmt::Sleep(secs) => {
                self.sleep(*secs)?;
                self.conn.out().data_row(&[Some(b"")]);
                "SELECT 1"
            }
            Stmt::Call { name, args, .. } => {
                let bytes = match self.call_function(name, args)? {
                    Datum::Int4(n) if fmt == 1 => Some(n.to_be_bytes().to_vec()),
                    Datum::Int8(n) if fmt == 1 => Some(n.to_be_bytes().to_vec()),
                    Datum::Bool(b) if fmt == 1 => Some(vec![u8::from(b)]),
                    Datum::Int4(n) => Some(n.to_string().into_bytes()),
                    Datum::Int8(n) => Some(n.to_string().into_bytes()),
                    Datum::Bool(b) => Some(if b { b"t".to_vec() } else { b"f".to_vec() }),
                    Datum::Text(t) => Some(t.into_bytes()),
                    Datum::Void => Some(Vec::new()),
                    Datum::Null => None,
                };
                self.conn.out().data_row(&[bytes.as_deref()]);
                "SELECT 1"
            }
            Stmt::Show(name) => {
                let v = self.show(name)?;
                self.conn.out().data_row(&[Some(v.as_bytes())]);
                "SHOW"
            }
            Stmt::ShowAll => {
                for r in self.ctx.settings.show_all(self.superuser) {
                    self.conn.out().data_row(&[
                        Some(r.name.as_bytes()),
                        Some(r.setting.as_bytes()),
                        Some(r.description.as_bytes()),
                    ]);
                }
                "SHOW"
            }
            Stmt::Set { name, value, local } => {
                self.set_variable(name, value.as_deref(), *local)?;
                "SET"
            }
            Stmt::Reset(name) => {
                self.set_variable(name, None, false)?;
                "RESET"
            }
            Stmt::ResetAll => {
                self.begin_guc_xact();
                self.report_pending = true;
                self.ctx.settings.reset_all();
                "RESET"
            }
            Stmt::Begin => {
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
                "BEGIN"
            }
            Stmt::Commit | Stmt::Rollback => {
                let was = self.tx;
                if was == TransactionStatus::Idle {
                    self.conn.out().notice_response(&ErrorFields::new(
                        Severity::Warning,
                        "25P01",
                        "there is no transaction in progress",
                    ));
                }
                self.tx = TransactionStatus::Idle;
                let commit = matches!(stmt, Stmt::Commit) && was != TransactionStatus::Failed;
                self.end_guc_xact(commit);
                if commit {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                }
            }
        };
        self.conn.out().command_complete(tag);
        Ok(())
    }

    /// `SHOW name`: what the hooks compute (`pgipc.<counter>`), else the session's setting.
    fn show(&self, name: &str) -> Result<String, Report> {
        if let Some(v) = self.ctx.hooks.show(name) {
            return Ok(v);
        }
        self.ctx
            .settings
            .show_as(name, self.superuser)
            .map_err(|e| Box::new(guc_error(&e, Severity::Error)))
    }

    /// `pg_sleep`: waits on the process latch until the time is up, serving interrupts.
    fn sleep(&mut self, secs: f64) -> Result<(), Failure> {
        let Some(me) = self.me else {
            return Ok(());
        };
        let end = Instant::now() + Duration::from_secs_f64(secs.clamp(0.0, 1e9));
        loop {
            self.check_interrupts(true)?;
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let r = pgipc_waiteventset::wait_latch(
                Some(me.latch()),
                WaitEvents::LATCH_SET | WaitEvents::POSTMASTER_DEATH,
                Some(left),
                WAIT_EVENT_PG_SLEEP,
            );
            match r {
                Ok(ev) => {
                    if ev.contains(WaitEvents::POSTMASTER_DEATH) {
                        self.conn.waiter_mut().postmaster_died = true;
                    }
                    if ev.contains(WaitEvents::LATCH_SET) {
                        me.latch().reset();
                    }
                }
                Err(e) => return Err(error("XX000", format!("could not wait: {e}")).into()),
            }
        }
    }

    // ---------------------------------------------------------------- extended protocol

    fn aborted_block_check(&self, stmt: &Stmt) -> Result<(), Report> {
        if self.tx == TransactionStatus::Failed && !stmt.is_transaction_end() {
            return Err(Box::new(error(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )));
        }
        Ok(())
    }

    fn parse_msg(&mut self, body: &[u8]) -> Result<(), Failure> {
        let m = parse_parse(body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        let pieces = sql::split_statements(&m.query);
        let stmt = match pieces.as_slice() {
            [] => Stmt::Empty,
            [(offset, text)] => self.analyze(text, *offset)?,
            _ => {
                return Err(error(
                    "42601",
                    "cannot insert multiple commands into a prepared statement",
                )
                .into())
            }
        };
        self.aborted_block_check(&stmt)?;
        if !m.name.is_empty() && self.statements.contains_key(&m.name) {
            return Err(error(
                "42P05",
                format!("prepared statement \"{}\" already exists", m.name),
            )
            .into());
        }
        self.statements.insert(
            m.name,
            Prepared {
                stmt,
                param_types: m.param_types,
            },
        );
        self.conn.out().parse_complete();
        Ok(())
    }

    fn bind_msg(&mut self, body: &[u8]) -> Result<(), Failure> {
        let m = parse_bind(body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        let Some(p) = self.statements.get(&m.statement) else {
            return Err(no_statement(&m.statement).into());
        };
        let stmt = p.stmt.clone();
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
        self.aborted_block_check(&stmt)?;
        if !m.portal.is_empty() && self.portals.contains_key(&m.portal) {
            return Err(error("42P03", format!("portal \"{}\" already exists", m.portal)).into());
        }
        self.portals.insert(
            m.portal,
            Portal {
                stmt,
                formats: m.result_formats,
                done: false,
            },
        );
        self.conn.out().bind_complete();
        Ok(())
    }

    fn describe_msg(&mut self, body: &[u8]) -> Result<(), Failure> {
        let m = parse_target(b'D', body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        match m.target {
            Target::Statement => {
                let Some(p) = self.statements.get(&m.name).cloned() else {
                    return Err(no_statement(&m.name).into());
                };
                let types: Vec<u32> = p
                    .param_types
                    .iter()
                    .map(|&t| if t == 0 { sql::TEXTOID } else { t })
                    .collect();
                self.conn.out().parameter_description(&types);
                self.row_description(&p.stmt, &[]);
            }
            Target::Portal => {
                let Some(p) = self.portals.get(&m.name).cloned() else {
                    return Err(no_portal(&m.name).into());
                };
                self.row_description(&p.stmt, &p.formats);
            }
        }
        Ok(())
    }

    fn execute_msg(&mut self, body: &[u8]) -> Result<(), Failure> {
        let m = parse_execute(body).map_err(|e| error(e.sqlstate(), e.to_string()))?;
        let returns_rows = match self.portals.get(&m.portal) {
            Some(p) => self.column(&p.stmt).is_some(),
            None => return Err(no_portal(&m.portal).into()),
        };
        let Some(p) = self.portals.get_mut(&m.portal) else {
            return Err(no_portal(&m.portal).into());
        };
        if p.done && returns_rows {
            // Every built-in query returns at most one row, all sent the first time.
            self.conn.out().command_complete("SELECT 0");
            return Ok(());
        }
        p.done = true;
        let (stmt, formats) = (p.stmt.clone(), p.formats.clone());
        self.execute(&stmt, &formats, false)
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
