//! A client backend (PostgreSQL's backend_startup.c and tcop/postgres.c): reads the startup
//! packet, refuses or authenticates (trust), takes a PGPROC and a ProcArray entry, registers
//! its cancel key, then answers the simple and extended query protocols with a small built-in
//! command set.
//!
//! ```text
//!  startup packet ─► SSLRequest/GSSENCRequest: 'N', read again │ CancelRequest: signal, exit
//!     ─► protocol 3.0–3.2 (NegotiateProtocolVersion for newer minors / unknown _pq_ options)
//!     ─► dead-end child: FATAL with the postmaster's reason, exit
//!     ─► AuthenticationOk ─► PGPROC (53300 when none) ─► ProcArray ─► ProcSignal (cancel key)
//!     ─► ParameterStatus… ─► BackendKeyData ─► ReadyForQuery
//!  loop: Q | P B D E S C H | X
//! ```
//!
//! Commands: `SELECT <integer>`, `SELECT pg_backend_pid()`, `SELECT pg_sleep(<seconds>)`,
//! `SHOW <name>`, `SET <name> = <value>`, `BEGIN`/`START TRANSACTION`, `COMMIT`/`END`,
//! `ROLLBACK`/`ABORT`, and the background-worker functions `SELECT pgipc_start_worker('<function>')`,
//! `SELECT pgipc_worker_pid(<handle>)`, `SELECT pgipc_terminate_worker(<handle>)`. Anything
//! else is ERROR 42601 (not SQL this server can parse) or 0A000 (SQL it does not run).
//!
//! Interrupts, as PostgreSQL's: SIGINT cancels the running statement (57014), SIGTERM ends the
//! session (57P01), postmaster death ends it; the handlers only set flags and the latch.

use crate::bgworker::{BgWorkerHandle, BgWorkerSpec, BgwHandleStatus};
use crate::elog::{elog, Severity};
use crate::launch::{CanAcceptConnections, ChildEnv};
use crate::pq::{self, Conn, MsgBuf, MsgReader, ReadError};
use crate::signals::{self, Pending};
use nix::sys::signal::Signal;
use pgipc_latch::{Latch, OwnedLatch};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Type OIDs of the result columns.
const INT4OID: i32 = 23;
const TEXTOID: i32 = 25;
const VOIDOID: i32 = 2278;

/// An error to report to the client.
#[derive(Debug, Clone)]
struct PgError {
    severity: &'static str,
    code: &'static str,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    position: Option<usize>,
}

impl PgError {
    fn error(code: &'static str, message: impl Into<String>) -> Self {
        PgError {
            severity: "ERROR",
            code,
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
        }
    }
    fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        PgError {
            severity: "FATAL",
            ..Self::error(code, message)
        }
    }
    fn body(&self) -> Vec<u8> {
        pq::error_fields(
            self.severity,
            self.code,
            &self.message,
            self.detail.as_deref(),
            self.hint.as_deref(),
            self.position,
        )
    }
}

/// What a statement is, once parsed.
#[derive(Debug, Clone, PartialEq)]
enum Stmt {
    Empty,
    SelectInt(i64),
    BackendPid,
    Sleep(f64),
    Show(String),
    Set(String, String),
    Begin,
    Commit,
    Rollback,
    StartWorker(String),
    WorkerPid(i64),
    TerminateWorker(i64),
}

impl Stmt {
    fn columns(&self) -> Vec<(String, i32)> {
        let c = |name: &str, oid| vec![(name.to_owned(), oid)];
        match self {
            Stmt::SelectInt(_) => c("?column?", INT4OID),
            Stmt::BackendPid => c("pg_backend_pid", INT4OID),
            Stmt::Sleep(_) => c("pg_sleep", VOIDOID),
            Stmt::Show(n) => c(&n.to_ascii_lowercase(), TEXTOID),
            Stmt::StartWorker(_) => c("pgipc_start_worker", INT4OID),
            Stmt::WorkerPid(_) => c("pgipc_worker_pid", INT4OID),
            Stmt::TerminateWorker(_) => c("pgipc_terminate_worker", TEXTOID),
            _ => Vec::new(),
        }
    }
}

/// Splits a simple-Query string into statements at top-level semicolons.
fn split_statements(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for ch in q.chars() {
        match (quote, ch) {
            (None, '\'') | (None, '"') => {
                quote = Some(ch);
                cur.push(ch);
            }
            (Some(qc), c) if c == qc => {
                quote = None;
                cur.push(c);
            }
            (None, ';') => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

const SQL_KEYWORDS: &[&str] = &[
    "select",
    "insert",
    "update",
    "delete",
    "create",
    "drop",
    "alter",
    "with",
    "values",
    "table",
    "explain",
    "copy",
    "vacuum",
    "analyze",
    "grant",
    "revoke",
    "truncate",
    "lock",
    "prepare",
    "execute",
    "deallocate",
    "declare",
    "fetch",
    "close",
    "listen",
    "notify",
    "unlisten",
    "discard",
    "reset",
    "checkpoint",
    "cluster",
    "comment",
    "do",
    "call",
    "merge",
    "savepoint",
    "release",
    "refresh",
    "reindex",
    "security",
    "load",
    "import",
];

fn syntax_error(q: &str) -> PgError {
    let tok = q.split_whitespace().next().unwrap_or(q);
    let tok: String = tok.chars().take_while(|c| *c != '(' && *c != ';').collect();
    let mut e = PgError::error("42601", format!("syntax error at or near \"{tok}\""));
    e.position = Some(q.find(&tok).map_or(1, |p| p + 1));
    e
}

fn unsupported(q: &str) -> PgError {
    let mut e = PgError::error(
        "0A000",
        "this statement is not supported by the pgipc server",
    );
    e.detail = Some(format!("Statement: {q}"));
    e.hint = Some(
        "Supported: SELECT <integer>, SELECT pg_backend_pid(), SELECT pg_sleep(n), SHOW, SET, BEGIN, COMMIT, ROLLBACK.".into(),
    );
    e
}

/// Parses one statement.
fn parse(q: &str) -> Result<Stmt, PgError> {
    let t = q.trim().trim_end_matches(';').trim();
    if t.is_empty() {
        return Ok(Stmt::Empty);
    }
    let lower = t.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let first = words.first().copied().unwrap_or("");
    match words.as_slice() {
        ["begin"] | ["begin", "transaction"] | ["begin", "work"] | ["start", "transaction"] => {
            return Ok(Stmt::Begin)
        }
        ["commit"]
        | ["commit", "transaction"]
        | ["commit", "work"]
        | ["end"]
        | ["end", "transaction"] => return Ok(Stmt::Commit),
        ["rollback"] | ["rollback", "transaction"] | ["rollback", "work"] | ["abort"] => {
            return Ok(Stmt::Rollback)
        }
        ["show", name] => return Ok(Stmt::Show((*name).to_owned())),
        _ => {}
    }
    if first == "set" {
        let rest = t[3..].trim();
        let rest = rest
            .strip_prefix("SESSION ")
            .or_else(|| rest.strip_prefix("session "))
            .unwrap_or(rest);
        let (name, value) = rest
            .split_once('=')
            .or_else(|| {
                let l = rest.to_ascii_lowercase();
                l.find(" to ").map(|i| (&rest[..i], &rest[i + 4..]))
            })
            .ok_or_else(|| syntax_error(t))?;
        let value = value.trim().trim_matches('\'').to_owned();
        return Ok(Stmt::Set(name.trim().to_ascii_lowercase(), value));
    }
    if first == "select" {
        let expr: String = t[6..].trim().to_owned();
        let e = expr.to_ascii_lowercase().replace(' ', "");
        if let Ok(n) = expr.parse::<i64>() {
            if i32::try_from(n).is_ok() {
                return Ok(Stmt::SelectInt(n));
            }
        }
        if e == "pg_backend_pid()" {
            return Ok(Stmt::BackendPid);
        }
        let arg = |name: &str| -> Option<String> {
            e.strip_prefix(name)?
                .strip_prefix('(')?
                .strip_suffix(')')
                .map(|a| a.trim_matches('\'').to_owned())
        };
        if let Some(a) = arg("pg_sleep") {
            return a
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite())
                .map(Stmt::Sleep)
                .ok_or_else(|| {
                    PgError::error(
                        "22P02",
                        format!("invalid input syntax for type double precision: \"{a}\""),
                    )
                });
        }
        if let Some(a) = arg("pgipc_start_worker") {
            return Ok(Stmt::StartWorker(a));
        }
        let int_arg = |name: &str| arg(name).and_then(|a| a.parse::<i64>().ok());
        if let Some(h) = int_arg("pgipc_worker_pid") {
            return Ok(Stmt::WorkerPid(h));
        }
        if let Some(h) = int_arg("pgipc_terminate_worker") {
            return Ok(Stmt::TerminateWorker(h));
        }
        return Err(unsupported(t));
    }
    if SQL_KEYWORDS.contains(&first) {
        return Err(unsupported(t));
    }
    Err(syntax_error(t))
}

/// Transaction block status, as ReadyForQuery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxStatus {
    Idle,
    InBlock,
    Failed,
}

impl TxStatus {
    fn byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InBlock => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

/// A prepared statement.
#[derive(Debug, Clone)]
struct Prepared {
    stmt: Stmt,
    nparams: usize,
}

/// A portal: a bound statement and its result formats.
#[derive(Debug, Clone)]
struct Portal {
    stmt: Stmt,
    formats: Vec<i16>,
    done: bool,
}

/// Why the session ends.
enum Exit {
    /// Normal end (Terminate or EOF): exit code 0.
    Clean,
    /// FATAL already sent (or the client is gone): exit code 1.
    Fatal,
}

struct Session<'l> {
    conn: Conn<'l>,
    env: &'l mut ChildEnv,
    latch: &'l OwnedLatch<&'static Latch>,
    tx: TxStatus,
    prepared: HashMap<String, Prepared>,
    portals: HashMap<String, Portal>,
    session_settings: HashMap<String, String>,
    my_workers: Vec<BgWorkerHandle>,
    skip_till_sync: bool,
    procsignal: Option<pgipc_procsignal::ProcSignal>,
}

/// Runs a client backend on the accepted socket; returns the exit code.
pub fn backend_main(env: &mut ChildEnv, client: OwnedFd, cac: CanAcceptConnections) -> i32 {
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let _ = signals::catch(s);
    }
    // Our own latch object: the local one until the PGPROC's takes over as "my latch" (the
    // PGPROC latch is then what handlers set; this one is only used for waiting before that).
    let latch: &'static Latch = Box::leak(Box::new(Latch::new()));
    let Ok(owned) = OwnedLatch::own(latch) else {
        return 1;
    };
    pgipc_latch::install_my_latch(latch);
    let owned: &'static OwnedLatch<&'static Latch> = Box::leak(Box::new(owned));
    let conn = match Conn::new(client, owned) {
        Ok(c) => c,
        Err(e) => {
            elog(
                Severity::Log,
                &format_args!("could not set up the client connection: {e}"),
            );
            return 1;
        }
    };
    let mut s = Session {
        conn,
        env,
        latch: owned,
        tx: TxStatus::Idle,
        prepared: HashMap::new(),
        portals: HashMap::new(),
        session_settings: HashMap::new(),
        my_workers: Vec::new(),
        skip_till_sync: false,
        procsignal: None,
    };
    match s.run(cac) {
        Exit::Clean => 0,
        Exit::Fatal => 1,
    }
}

impl Session<'_> {
    fn send_error(&mut self, e: &PgError) {
        let b = e.body();
        self.conn.send(b'E', &b);
    }

    fn fatal(&mut self, e: PgError) -> Exit {
        self.send_error(&e);
        let _ = self.conn.flush();
        Exit::Fatal
    }

    fn notice(&mut self, code: &'static str, msg: &str) {
        let b = pq::error_fields("WARNING", code, msg, None, None, None);
        self.conn.send(b'N', &b);
    }

    fn run(&mut self, cac: CanAcceptConnections) -> Exit {
        let timeout =
            Duration::from_secs(self.env.setting_int("authentication_timeout").max(1) as u64);
        let deadline = Instant::now() + timeout;
        let (params, minor, unknown_opts) = match self.startup_packet(deadline) {
            Ok(Some(p)) => p,
            Ok(None) => return Exit::Clean,
            Err(e) => {
                if let Some(e) = e {
                    elog(Severity::Log, &e);
                }
                return Exit::Fatal;
            }
        };
        if let Some(e) = refusal(cac) {
            return self.fatal(e);
        }
        let user = params.get("user").cloned().unwrap_or_default();
        if user.is_empty() {
            return self.fatal(PgError::fatal(
                "28000",
                "no PostgreSQL user name specified in startup packet",
            ));
        }
        if minor > 2 || !unknown_opts.is_empty() {
            let mut b = MsgBuf::default();
            b.i32(pq::PG_PROTOCOL_LATEST as i32)
                .i32(unknown_opts.len() as i32);
            for o in &unknown_opts {
                b.cstr(o);
            }
            self.conn.send(b'v', &b.0);
        }
        // Trust authentication.
        self.conn.send(b'R', &0i32.to_be_bytes());

        // A PGPROC, the ProcArray, PMSignal and ProcSignal.
        let key: Vec<u8> = random_key(if minor >= 2 { 32 } else { 4 });
        let me = match self.init_backend(&key) {
            Ok(m) => m,
            Err(e) => return self.fatal(e),
        };
        // The PGPROC's latch is "my latch" now: wait on it (kept for the process's life).
        let me: &'static pgipc_proc::MyProc = Box::leak(Box::new(me));
        if self.conn.use_latch(me.latch().as_owner()).is_err() {
            return Exit::Fatal;
        }

        let db = params
            .get("database")
            .cloned()
            .unwrap_or_else(|| user.clone());
        let app = params.get("application_name").cloned().unwrap_or_default();
        let client_enc = params
            .get("client_encoding")
            .cloned()
            .unwrap_or_else(|| "UTF8".into());
        let _ = db;
        let status: [(&str, String); 15] = [
            ("application_name", app),
            ("client_encoding", client_enc),
            ("DateStyle", "ISO, MDY".into()),
            ("default_transaction_read_only", "off".into()),
            ("in_hot_standby", "off".into()),
            ("integer_datetimes", "on".into()),
            ("IntervalStyle", "postgres".into()),
            ("is_superuser", "on".into()),
            ("scram_iterations", "4096".into()),
            ("search_path", "\"$user\", public".into()),
            ("server_encoding", "UTF8".into()),
            ("server_version", "18.6 (pgipc)".into()),
            ("session_authorization", user.clone()),
            ("standard_conforming_strings", "on".into()),
            ("TimeZone", "UTC".into()),
        ];
        for (n, v) in &status {
            let mut b = MsgBuf::default();
            b.cstr(n).cstr(v);
            self.conn.send(b'S', &b.0);
        }
        let mut b = MsgBuf::default();
        b.i32(std::process::id() as i32).bytes(&key);
        self.conn.send(b'K', &b.0);
        self.ready_for_query();
        if self.conn.flush().is_err() {
            return Exit::Fatal;
        }
        self.main_loop(me)
    }

    /// Reads the startup packet (PostgreSQL's `ProcessStartupPacket`). `Ok(None)`: a cancel
    /// request was handled, leave quietly. `Err(Some(msg))`: log `msg` and leave.
    #[allow(clippy::type_complexity)]
    fn startup_packet(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<(HashMap<String, String>, u32, Vec<String>)>, Option<String>> {
        let mut ssl_done = false;
        let mut gss_done = false;
        loop {
            let (code, body) = match self.conn.read_startup_packet(deadline) {
                Ok(p) => p,
                Err(ReadError::Protocol(m)) => return Err(Some(m)),
                // EOF before anything, or timeout: PostgreSQL leaves without a word.
                Err(_) => return Err(None),
            };
            match code {
                pq::CANCEL_REQUEST_CODE => {
                    if body.len() >= 4 && body.len() - 4 <= pq::MAX_CANCEL_KEY_LENGTH {
                        let pid = pq::be_u32(&body) as i32;
                        if let Ok(ps) =
                            crate::startup::procsignal(&self.env.shmem, &self.env.config)
                        {
                            // A wrong key is ignored silently (no answer either way).
                            let _ = ps.send_cancel_request(pid, &body[4..]);
                        }
                    } else {
                        return Err(Some("invalid length of query cancel packet".into()));
                    }
                    return Ok(None);
                }
                pq::NEGOTIATE_SSL_CODE if !ssl_done => {
                    ssl_done = true;
                    self.conn.write_raw(b"N");
                    if self.conn.flush().is_err() {
                        return Err(None);
                    }
                    if self.conn.has_buffered_input() {
                        // Data after the request before our answer: a TLS hello we cannot read.
                        return Err(Some("received unencrypted data after SSL request".into()));
                    }
                    continue;
                }
                pq::NEGOTIATE_GSS_CODE if !gss_done => {
                    gss_done = true;
                    self.conn.write_raw(b"N");
                    if self.conn.flush().is_err() {
                        return Err(None);
                    }
                    if self.conn.has_buffered_input() {
                        return Err(Some(
                            "received unencrypted data after GSSAPI encryption request".into(),
                        ));
                    }
                    continue;
                }
                _ => {}
            }
            let major = code >> 16;
            let minor = code & 0xffff;
            if major != 3 {
                let e = PgError::fatal(
                    "0A000",
                    format!(
                        "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.2"
                    ),
                );
                self.send_error(&e);
                let _ = self.conn.flush();
                return Err(Some(e.message));
            }
            let mut params = HashMap::new();
            let mut unknown = Vec::new();
            let mut r = MsgReader::new(&body);
            loop {
                let name = r.cstr().map_err(|_| {
                    Some(
                        "invalid startup packet layout: expected terminator as last byte"
                            .to_owned(),
                    )
                })?;
                if name.is_empty() {
                    break;
                }
                let value = r.cstr().map_err(|_| {
                    Some(
                        "invalid startup packet layout: expected terminator as last byte"
                            .to_owned(),
                    )
                })?;
                if name.starts_with("_pq_.") {
                    unknown.push(name);
                } else {
                    params.insert(name, value);
                }
            }
            if r.end().is_err() {
                return Err(Some(
                    "invalid startup packet layout: expected terminator as last byte".into(),
                ));
            }
            return Ok(Some((params, minor, unknown)));
        }
    }

    fn init_backend(&mut self, key: &[u8]) -> Result<pgipc_proc::MyProc, PgError> {
        let internal = |e: String| PgError::fatal("XX000", e);
        let global = pgipc_proc::shmem_init(&self.env.shmem, &self.env.config.proc_config())
            .map_err(|e| internal(e.to_string()))?;
        let me = pgipc_proc::init_process(&global, pgipc_proc::BackendType::Backend).map_err(
            |e| match e.sqlstate() {
                "53300" => PgError::fatal("53300", e.to_string()),
                _ => internal(e.to_string()),
            },
        )?;
        self.env.mark_active().map_err(internal)?;
        let pa = pgipc_procarray::shmem_init(&self.env.shmem, &self.env.config.proc_config())
            .map_err(|e| internal(e.to_string()))?;
        pa.init_process_phase2(&me)
            .map_err(|e| internal(e.to_string()))?;
        let ps = crate::startup::procsignal(&self.env.shmem, &self.env.config).map_err(internal)?;
        ps.init_slot(me.proc_number(), std::process::id() as i32, key)
            .map_err(|e| internal(e.to_string()))?;
        pgipc_procsignal::install_handler().map_err(|e| internal(e.to_string()))?;
        self.procsignal = Some(ps);
        Ok(me)
    }

    fn ready_for_query(&mut self) {
        self.conn.send(b'Z', &[self.tx.byte()]);
    }

    /// Interrupt checks between and inside statements (PostgreSQL's `ProcessInterrupts`):
    /// `Err(Exit)` ends the session; `Ok(true)` means "cancel the running statement".
    fn check_interrupts(&mut self, in_statement: bool) -> Result<bool, Exit> {
        if signals::take(Pending::Term) {
            let e = PgError::fatal(
                "57P01",
                "terminating connection due to administrator command",
            );
            return Err(self.fatal(e));
        }
        if !pgipc_waiteventset::postmaster_death::postmaster_is_alive() {
            return Err(Exit::Fatal);
        }
        if signals::take(Pending::Hup) {
            self.env.reload_settings();
        }
        if pgipc_procsignal::take_pending(pgipc_procsignal::ProcSignalReason::Barrier) {
            if let Some(ps) = &self.procsignal {
                let _ = ps.process_proc_signal_barrier();
            }
        }
        let cancel = signals::take(Pending::Int);
        Ok(cancel && in_statement)
    }

    fn main_loop(&mut self, me: &pgipc_proc::MyProc) -> Exit {
        loop {
            // Idle: a cancel arriving now is ignored, as in PostgreSQL.
            match self.check_interrupts(false) {
                Ok(_) => {}
                Err(x) => return x,
            }
            let (ty, body) = match self.conn.read_message() {
                Ok(m) => m,
                Err(ReadError::Interrupted) => {
                    me.latch().reset();
                    self.latch.reset();
                    continue;
                }
                Err(ReadError::Eof) => return Exit::Clean,
                Err(ReadError::Protocol(m)) => {
                    return self.fatal(PgError::fatal("08P01", m));
                }
                Err(_) => return Exit::Fatal,
            };
            let r = match ty {
                b'X' => return Exit::Clean,
                b'Q' => self.simple_query(&body, me),
                b'S' => {
                    self.skip_till_sync = false;
                    self.portals.remove("");
                    self.ready_for_query();
                    Ok(())
                }
                b'H' => Ok(()),
                b'P' | b'B' | b'D' | b'E' | b'C' if self.skip_till_sync => Ok(()),
                b'P' => self.parse_msg(&body),
                b'B' => self.bind_msg(&body),
                b'D' => self.describe_msg(&body),
                b'E' => self.execute_msg(&body, me),
                b'C' => self.close_msg(&body),
                b'd' | b'c' | b'f' => Ok(()), // COPY data outside COPY: ignored, as PostgreSQL does
                other => {
                    return self.fatal(PgError::fatal(
                        "08P01",
                        format!("invalid frontend message type {other}"),
                    ))
                }
            };
            match r {
                Ok(()) => {}
                Err(SessionErr::Exit(x)) => return x,
                Err(SessionErr::Pg(e)) => {
                    let fatal = e.severity == "FATAL";
                    self.send_error(&e);
                    if fatal {
                        let _ = self.conn.flush();
                        return Exit::Fatal;
                    }
                    if self.tx == TxStatus::InBlock {
                        self.tx = TxStatus::Failed;
                    }
                    if matches!(ty, b'P' | b'B' | b'D' | b'E' | b'C') {
                        self.skip_till_sync = true;
                    } else {
                        self.ready_for_query();
                    }
                }
            }
            // Flush when the client waits for an answer (nothing more buffered) or asked.
            if !self.conn.has_buffered_input() || matches!(ty, b'H' | b'S' | b'Q') {
                match self.conn.flush() {
                    Ok(()) => {}
                    Err(ReadError::Interrupted) => {
                        if let Err(x) = self.check_interrupts(false) {
                            return x;
                        }
                        if self.conn.flush().is_err() {
                            return Exit::Fatal;
                        }
                    }
                    Err(_) => return Exit::Fatal,
                }
            }
        }
    }

    fn simple_query(&mut self, body: &[u8], me: &pgipc_proc::MyProc) -> Result<(), SessionErr> {
        let mut r = MsgReader::new(body);
        let q = r.cstr().map_err(|m| PgError::fatal("08P01", m))?;
        let stmts = split_statements(&q);
        if stmts.is_empty() {
            self.conn.send(b'I', &[]);
            self.ready_for_query();
            return Ok(());
        }
        for s in stmts {
            let stmt = parse(&s)?;
            let formats = Vec::new();
            self.describe_rows(&stmt, &formats);
            self.execute(&stmt, &formats, me)?;
        }
        self.ready_for_query();
        Ok(())
    }

    fn describe_rows(&mut self, stmt: &Stmt, formats: &[i16]) {
        let cols = stmt.columns();
        if cols.is_empty() {
            return;
        }
        let mut b = MsgBuf::default();
        b.i16(cols.len() as i16);
        for (i, (name, oid)) in cols.iter().enumerate() {
            let len: i16 = if *oid == TEXTOID { -1 } else { 4 };
            b.cstr(name)
                .i32(0)
                .i16(0)
                .i32(*oid)
                .i16(len)
                .i32(-1)
                .i16(format_of(formats, i));
        }
        self.conn.send(b'T', &b.0);
    }

    fn show(&self, name: &str) -> Result<String, PgError> {
        let lname = name.to_ascii_lowercase();
        if let Some(v) = self.session_settings.get(&lname) {
            return Ok(v.clone());
        }
        if let Some(kind) = lname.strip_prefix("pgipc.pid_of.") {
            return Ok(self.pid_of(kind).to_string());
        }
        if let Some(counter) = lname.strip_prefix("pgipc.") {
            if let Ok(c) = crate::aux::aux_counters(&self.env.shmem) {
                if let Some(v) = c.get(counter) {
                    return Ok(v.to_string());
                }
            }
        }
        match lname.as_str() {
            "server_encoding" | "client_encoding" => return Ok("UTF8".into()),
            "timezone" => return Ok("UTC".into()),
            "datestyle" => return Ok("ISO, MDY".into()),
            "transaction_isolation" => return Ok("read committed".into()),
            "is_superuser" | "standard_conforming_strings" | "integer_datetimes" => {
                return Ok("on".into())
            }
            _ => {}
        }
        self.env.settings.show(&lname).map_err(|_| {
            PgError::error(
                "42704",
                format!("unrecognized configuration parameter \"{name}\""),
            )
        })
    }

    /// The pid of the first live process of a kind, from the PGPROC array (0 if none).
    fn pid_of(&self, kind: &str) -> i32 {
        use pgipc_proc::BackendType::*;
        let want = match kind {
            "checkpointer" => Checkpointer,
            "bgwriter" | "background_writer" => BgWriter,
            "walwriter" => WalWriter,
            "autovacuum_launcher" => AutovacLauncher,
            "io_worker" => IoWorker,
            "startup" => Startup,
            "background_worker" => BgWorker,
            "backend" => Backend,
            _ => return 0,
        };
        let Ok(g) = pgipc_proc::shmem_init(&self.env.shmem, &self.env.config.proc_config()) else {
            return 0;
        };
        let me = std::process::id() as i32;
        g.all_procs()
            .iter()
            .filter(|p| {
                pgipc_proc::BackendType::from_u8(p.backend_type.load(Ordering::Relaxed))
                    == Some(want)
            })
            .map(|p| p.pid.load(Ordering::Relaxed))
            .find(|pid| *pid != 0 && *pid != me)
            .unwrap_or(0)
    }

    fn execute(
        &mut self,
        stmt: &Stmt,
        formats: &[i16],
        me: &pgipc_proc::MyProc,
    ) -> Result<(), SessionErr> {
        if self.tx == TxStatus::Failed && !matches!(stmt, Stmt::Commit | Stmt::Rollback) {
            return Err(PgError::error(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )
            .into());
        }
        // A cancel that arrived before the statement started is not for it.
        let _ = signals::take(Pending::Int);
        let row = |s: &mut Self, v: Vec<Option<Vec<u8>>>| {
            let mut b = MsgBuf::default();
            b.i16(v.len() as i16);
            for c in v {
                match c {
                    Some(bytes) => {
                        b.i32(bytes.len() as i32).bytes(&bytes);
                    }
                    None => {
                        b.i32(-1);
                    }
                }
            }
            s.conn.send(b'D', &b.0);
        };
        let int = |v: i64, f: i16| -> Vec<u8> {
            if f == 1 {
                (v as i32).to_be_bytes().to_vec()
            } else {
                v.to_string().into_bytes()
            }
        };
        let tag: String = match stmt {
            Stmt::Empty => {
                self.conn.send(b'I', &[]);
                return Ok(());
            }
            Stmt::SelectInt(n) => {
                row(self, vec![Some(int(*n, format_of(formats, 0)))]);
                "SELECT 1".into()
            }
            Stmt::BackendPid => {
                row(
                    self,
                    vec![Some(int(
                        i64::from(std::process::id()),
                        format_of(formats, 0),
                    ))],
                );
                "SELECT 1".into()
            }
            Stmt::Sleep(secs) => {
                self.sleep(*secs, me)?;
                row(self, vec![Some(Vec::new())]);
                "SELECT 1".into()
            }
            Stmt::Show(name) => {
                let v = self.show(name)?;
                row(self, vec![Some(v.into_bytes())]);
                "SHOW".into()
            }
            Stmt::Set(name, value) => {
                if crate::guc::Settings::def(name).is_none()
                    && !name.contains('.')
                    && ![
                        "application_name",
                        "client_encoding",
                        "timezone",
                        "datestyle",
                        "search_path",
                        "extra_float_digits",
                        "statement_timeout",
                    ]
                    .contains(&name.as_str())
                {
                    return Err(PgError::error(
                        "42704",
                        format!("unrecognized configuration parameter \"{name}\""),
                    )
                    .into());
                }
                if crate::guc::Settings::def(name).is_some() {
                    return Err(PgError::error(
                        "55P02",
                        format!("parameter \"{name}\" cannot be changed now"),
                    )
                    .into());
                }
                self.session_settings.insert(name.clone(), value.clone());
                "SET".into()
            }
            Stmt::Begin => {
                if self.tx != TxStatus::Idle {
                    self.notice("25001", "there is already a transaction in progress");
                } else {
                    self.tx = TxStatus::InBlock;
                }
                "BEGIN".into()
            }
            Stmt::Commit => {
                let t = match self.tx {
                    TxStatus::Idle => {
                        self.notice("25P01", "there is no transaction in progress");
                        "COMMIT"
                    }
                    TxStatus::InBlock => "COMMIT",
                    TxStatus::Failed => "ROLLBACK",
                };
                self.tx = TxStatus::Idle;
                t.into()
            }
            Stmt::Rollback => {
                if self.tx == TxStatus::Idle {
                    self.notice("25P01", "there is no transaction in progress");
                }
                self.tx = TxStatus::Idle;
                "ROLLBACK".into()
            }
            Stmt::StartWorker(function) => {
                let h = self.start_worker(function, me)?;
                row(self, vec![Some(int(h, format_of(formats, 0)))]);
                "SELECT 1".into()
            }
            Stmt::WorkerPid(h) => {
                let pid = self.worker_status(*h)?;
                row(self, vec![Some(int(i64::from(pid), format_of(formats, 0)))]);
                "SELECT 1".into()
            }
            Stmt::TerminateWorker(h) => {
                let handle = self.handle(*h)?;
                let sh = crate::bgworker::shmem_init(
                    &self.env.shmem,
                    self.env.config.max_worker_processes,
                )
                .map_err(|e| PgError::error("XX000", e))?;
                let pms = self
                    .env
                    .pmsignal()
                    .map_err(|e| PgError::error("XX000", e))?;
                sh.terminate(handle, &pms);
                let st = sh.wait_for_shutdown(handle, me.latch(), Duration::from_secs(30));
                row(self, vec![Some(format!("{st:?}").into_bytes())]);
                "SELECT 1".into()
            }
        };
        let mut b = MsgBuf::default();
        b.cstr(&tag);
        self.conn.send(b'C', &b.0);
        Ok(())
    }

    fn handle(&self, h: i64) -> Result<BgWorkerHandle, PgError> {
        usize::try_from(h)
            .ok()
            .and_then(|i| self.my_workers.get(i).copied())
            .ok_or_else(|| {
                PgError::error(
                    "22023",
                    format!("no background worker handle {h} in this session"),
                )
            })
    }

    fn start_worker(&mut self, function: &str, me: &pgipc_proc::MyProc) -> Result<i64, PgError> {
        let mut spec = BgWorkerSpec::new(&format!("pgipc dynamic {function}"), function);
        spec.restart = crate::bgworker::RestartPolicy::Never;
        spec.notify_pid = std::process::id() as i32;
        let sh = crate::bgworker::shmem_init(&self.env.shmem, self.env.config.max_worker_processes)
            .map_err(|e| PgError::error("XX000", e))?;
        let pms = self
            .env
            .pmsignal()
            .map_err(|e| PgError::error("XX000", e))?;
        let maxp = self.env.setting_int("max_parallel_workers").max(0) as u32;
        match sh.register_dynamic(&spec, maxp, &pms) {
            Ok(Some(h)) => {
                let st = sh.wait_for_startup(h, me.latch(), Duration::from_secs(30));
                if !matches!(st, BgwHandleStatus::Started(_)) {
                    return Err(PgError::error(
                        "55000",
                        format!("background worker did not start: {st:?}"),
                    ));
                }
                self.my_workers.push(h);
                Ok((self.my_workers.len() - 1) as i64)
            }
            Ok(None) => {
                let mut e = PgError::error("53000", "could not register background process");
                e.hint = Some("You may need to increase \"max_worker_processes\".".into());
                Err(e)
            }
            Err(e) => Err(PgError::error(
                if e.sqlstate() == "22023" {
                    "22023"
                } else {
                    "42883"
                },
                e.to_string(),
            )),
        }
    }

    fn worker_status(&self, h: i64) -> Result<i32, PgError> {
        let handle = self.handle(h)?;
        let sh = crate::bgworker::shmem_init(&self.env.shmem, self.env.config.max_worker_processes)
            .map_err(|e| PgError::error("XX000", e))?;
        Ok(match sh.status(handle) {
            BgwHandleStatus::Started(p) => p,
            _ => 0,
        })
    }

    /// `pg_sleep`: waits on the latch until the time is up or an interrupt arrives.
    fn sleep(&mut self, secs: f64, me: &pgipc_proc::MyProc) -> Result<(), SessionErr> {
        let end = Instant::now() + Duration::from_secs_f64(secs.clamp(0.0, 1e9));
        loop {
            match self.check_interrupts(true) {
                Ok(true) => {
                    return Err(
                        PgError::error("57014", "canceling statement due to user request").into(),
                    )
                }
                Ok(false) => {}
                Err(x) => return Err(SessionErr::Exit(x)),
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let _ = pgipc_waiteventset::wait_latch(
                Some(me.latch()),
                pgipc_waiteventset::WaitEvents::LATCH_SET
                    | pgipc_waiteventset::WaitEvents::EXIT_ON_PM_DEATH,
                Some(left),
                0x0900_0000 | 3, // PG_WAIT_TIMEOUT / PG_SLEEP
            );
            me.latch().reset();
        }
    }

    fn parse_msg(&mut self, body: &[u8]) -> Result<(), SessionErr> {
        let mut r = MsgReader::new(body);
        let bad = |m: String| PgError::fatal("08P01", m);
        let name = r.cstr().map_err(bad)?;
        let query = r.cstr().map_err(bad)?;
        let n = r.i16().map_err(bad)?;
        if n < 0 {
            return Err(bad("invalid message format".into()).into());
        }
        for _ in 0..n {
            r.i32().map_err(bad)?;
        }
        r.end().map_err(bad)?;
        let stmts = split_statements(&query);
        if stmts.len() > 1 {
            return Err(PgError::error(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            )
            .into());
        }
        let stmt = parse(stmts.first().map_or("", String::as_str))?;
        if !name.is_empty() && self.prepared.contains_key(&name) {
            return Err(PgError::error(
                "42P05",
                format!("prepared statement \"{name}\" already exists"),
            )
            .into());
        }
        self.prepared.insert(
            name,
            Prepared {
                stmt,
                nparams: n as usize,
            },
        );
        self.conn.send(b'1', &[]);
        Ok(())
    }

    fn bind_msg(&mut self, body: &[u8]) -> Result<(), SessionErr> {
        let mut r = MsgReader::new(body);
        let bad = |m: String| PgError::fatal("08P01", m);
        let portal = r.cstr().map_err(bad)?;
        let stmt_name = r.cstr().map_err(bad)?;
        let nf = r.i16().map_err(bad)?;
        for _ in 0..nf.max(0) {
            r.i16().map_err(bad)?;
        }
        let np = r.i16().map_err(bad)?;
        for _ in 0..np.max(0) {
            let len = r.i32().map_err(bad)?;
            if len > 0 {
                r.bytes(len as usize).map_err(bad)?;
            }
        }
        let nr = r.i16().map_err(bad)?;
        let mut formats = Vec::new();
        for _ in 0..nr.max(0) {
            formats.push(r.i16().map_err(bad)?);
        }
        r.end().map_err(bad)?;
        let Some(p) = self.prepared.get(&stmt_name) else {
            return Err(PgError::error(
                "26000",
                format!("prepared statement \"{stmt_name}\" does not exist"),
            )
            .into());
        };
        if np.max(0) as usize != p.nparams {
            return Err(PgError::error(
                "08P01",
                format!(
                    "bind message supplies {np} parameters, but prepared statement \"{stmt_name}\" requires {}",
                    p.nparams
                ),
            )
            .into());
        }
        if formats.iter().any(|f| *f != 0 && *f != 1) {
            return Err(PgError::error("22023", "unsupported format code").into());
        }
        let stmt = p.stmt.clone();
        if !portal.is_empty() && self.portals.contains_key(&portal) {
            return Err(
                PgError::error("42P03", format!("cursor \"{portal}\" already exists")).into(),
            );
        }
        self.portals.insert(
            portal,
            Portal {
                stmt,
                formats,
                done: false,
            },
        );
        self.conn.send(b'2', &[]);
        Ok(())
    }

    fn describe_msg(&mut self, body: &[u8]) -> Result<(), SessionErr> {
        let mut r = MsgReader::new(body);
        let bad = |m: String| PgError::fatal("08P01", m);
        let kind = r.byte().map_err(bad)?;
        let name = r.cstr().map_err(bad)?;
        match kind {
            b'S' => {
                let Some(p) = self.prepared.get(&name).cloned() else {
                    return Err(PgError::error(
                        "26000",
                        format!("prepared statement \"{name}\" does not exist"),
                    )
                    .into());
                };
                let mut b = MsgBuf::default();
                b.i16(p.nparams as i16);
                for _ in 0..p.nparams {
                    b.i32(TEXTOID);
                }
                self.conn.send(b't', &b.0);
                if p.stmt.columns().is_empty() {
                    self.conn.send(b'n', &[]);
                } else {
                    self.describe_rows(&p.stmt, &[]);
                }
            }
            b'P' => {
                let Some(p) = self.portals.get(&name).cloned() else {
                    return Err(PgError::error(
                        "34000",
                        format!("portal \"{name}\" does not exist"),
                    )
                    .into());
                };
                if p.stmt.columns().is_empty() {
                    self.conn.send(b'n', &[]);
                } else {
                    self.describe_rows(&p.stmt, &p.formats);
                }
            }
            _ => {
                return Err(PgError::fatal(
                    "08P01",
                    format!("invalid DESCRIBE message subtype {kind}"),
                )
                .into())
            }
        }
        Ok(())
    }

    fn execute_msg(&mut self, body: &[u8], me: &pgipc_proc::MyProc) -> Result<(), SessionErr> {
        let mut r = MsgReader::new(body);
        let bad = |m: String| PgError::fatal("08P01", m);
        let name = r.cstr().map_err(bad)?;
        let _max_rows = r.i32().map_err(bad)?;
        let Some(p) = self.portals.get(&name).cloned() else {
            return Err(
                PgError::error("34000", format!("portal \"{name}\" does not exist")).into(),
            );
        };
        if p.done {
            // Running a finished portal again returns no rows.
            let mut b = MsgBuf::default();
            b.cstr("SELECT 0");
            self.conn.send(b'C', &b.0);
            return Ok(());
        }
        self.execute(&p.stmt, &p.formats, me)?;
        if let Some(p) = self.portals.get_mut(&name) {
            p.done = true;
        }
        Ok(())
    }

    fn close_msg(&mut self, body: &[u8]) -> Result<(), SessionErr> {
        let mut r = MsgReader::new(body);
        let bad = |m: String| PgError::fatal("08P01", m);
        let kind = r.byte().map_err(bad)?;
        let name = r.cstr().map_err(bad)?;
        match kind {
            b'S' => {
                self.prepared.remove(&name);
            }
            b'P' => {
                self.portals.remove(&name);
            }
            _ => {
                return Err(PgError::fatal(
                    "08P01",
                    format!("invalid CLOSE message subtype {kind}"),
                )
                .into())
            }
        }
        self.conn.send(b'3', &[]);
        Ok(())
    }
}

enum SessionErr {
    Pg(PgError),
    Exit(Exit),
}

impl From<PgError> for SessionErr {
    fn from(e: PgError) -> Self {
        SessionErr::Pg(e)
    }
}

fn format_of(formats: &[i16], i: usize) -> i16 {
    match formats.len() {
        0 => 0,
        1 => formats[0],
        _ => formats.get(i).copied().unwrap_or(0),
    }
}

/// The FATAL a dead-end child sends for the postmaster's verdict.
fn refusal(cac: CanAcceptConnections) -> Option<PgError> {
    let (code, msg) = match cac {
        CanAcceptConnections::Ok => return None,
        CanAcceptConnections::Startup => ("57P03", "the database system is starting up"),
        CanAcceptConnections::Shutdown => ("57P03", "the database system is shutting down"),
        CanAcceptConnections::Recovery => ("57P03", "the database system is in recovery mode"),
        CanAcceptConnections::NotHotStandby => {
            ("57P03", "the database system is not accepting connections")
        }
        CanAcceptConnections::TooMany => ("53300", "sorry, too many clients already"),
    };
    Some(PgError::fatal(code, msg))
}

/// A random cancel key from the kernel.
fn random_key(n: usize) -> Vec<u8> {
    let mut k = vec![0u8; n];
    // SAFETY: getrandom writes at most `n` bytes into our buffer.
    let r = unsafe { libc::getrandom(k.as_mut_ptr().cast(), n, 0) };
    if r != n as isize {
        // Fall back on the clock and pid: weaker, but never a fixed key.
        let seed = Instant::now().elapsed().as_nanos() as u64
            ^ (u64::from(std::process::id()) << 32)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        for (i, b) in k.iter_mut().enumerate() {
            *b = (seed.rotate_left(i as u32 * 8) & 0xff) as u8;
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_quotes() {
        assert_eq!(
            split_statements("SELECT 1; SHOW port ;; SELECT ';' "),
            vec!["SELECT 1", "SHOW port", "SELECT ';'"]
        );
        assert!(split_statements("  ;  ").is_empty());
    }

    #[test]
    fn parser_answers_and_refusals() {
        assert_eq!(parse("select 1").unwrap(), Stmt::SelectInt(1));
        assert_eq!(parse("SELECT pg_backend_pid()").unwrap(), Stmt::BackendPid);
        assert_eq!(parse("SELECT pg_sleep(0.5)").unwrap(), Stmt::Sleep(0.5));
        assert_eq!(
            parse("show max_connections").unwrap(),
            Stmt::Show("max_connections".into())
        );
        assert_eq!(parse("begin").unwrap(), Stmt::Begin);
        assert_eq!(parse("END").unwrap(), Stmt::Commit);
        assert_eq!(
            parse("SET application_name = 'x'").unwrap(),
            Stmt::Set("application_name".into(), "x".into())
        );
        assert_eq!(parse("SELEKT 1").unwrap_err().code, "42601");
        assert_eq!(parse("SELECT * FROM t").unwrap_err().code, "0A000");
        assert_eq!(parse("CREATE TABLE t()").unwrap_err().code, "0A000");
        assert_eq!(parse("SELECT pg_sleep(x)").unwrap_err().code, "22P02");
        assert_eq!(parse("SELECT 99999999999").unwrap_err().code, "0A000");
    }

    #[test]
    fn refusals_use_postgres_texts() {
        let e = refusal(CanAcceptConnections::TooMany).unwrap();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("53300", "sorry, too many clients already")
        );
        assert!(refusal(CanAcceptConnections::Ok).is_none());
    }
}
