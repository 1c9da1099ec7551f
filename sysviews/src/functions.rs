//! The admin functions (PostgreSQL's signalfuncs.c, and the start/reload times of
//! timestamp.c), as one table: name, argument and result types, volatility, body.

use crate::{internal, SysContext, WARNING};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pgipc_proc::BackendType;
use pgipc_query::{sqlstate, Datum, QueryError, Result, ServerFunction, Session, Type, Volatility};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A function body: the context, the session, the (non-NULL, for strict functions)
/// arguments already coerced to the declared types.
type Body = fn(&SysContext, &mut dyn Session, &[Datum]) -> Result<Datum>;

/// One function of the table.
#[derive(Debug)]
pub struct FunctionDef {
    /// Name (`pg_proc.proname`).
    pub name: &'static str,
    /// Argument types (`proargtypes`); a default argument is a second, shorter entry.
    pub args: &'static [Type],
    /// Result type (`prorettype`).
    pub result: Type,
    /// `provolatile`.
    pub volatility: Volatility,
    body: Body,
}

impl FunctionDef {
    /// The function bound to `ctx`, for [`pgipc_query::Catalog::add_function`].
    pub fn server_function(&self, ctx: &Rc<SysContext>) -> ServerFunction {
        let ctx = ctx.clone();
        let body = self.body;
        ServerFunction {
            name: self.name.to_owned(),
            args: self.args.to_vec(),
            result: self.result,
            volatility: self.volatility,
            strict: true,
            call: Rc::new(move |session, args| body(&ctx, session, args)),
        }
    }
}

/// Every function this crate registers, with PostgreSQL 18's signatures (pg_proc.dat): all
/// strict; `pg_terminate_backend`'s `timeout DEFAULT 0` is the one-argument entry.
pub static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "pg_cancel_backend",
        args: &[Type::Int4],
        result: Type::Bool,
        volatility: Volatility::Volatile,
        body: pg_cancel_backend,
    },
    FunctionDef {
        name: "pg_terminate_backend",
        args: &[Type::Int4],
        result: Type::Bool,
        volatility: Volatility::Volatile,
        body: pg_terminate_backend,
    },
    FunctionDef {
        name: "pg_terminate_backend",
        args: &[Type::Int4, Type::Int8],
        result: Type::Bool,
        volatility: Volatility::Volatile,
        body: pg_terminate_backend,
    },
    FunctionDef {
        name: "pg_reload_conf",
        args: &[],
        result: Type::Bool,
        volatility: Volatility::Volatile,
        body: pg_reload_conf,
    },
    FunctionDef {
        name: "pg_postmaster_start_time",
        args: &[],
        result: Type::Timestamptz,
        volatility: Volatility::Stable,
        body: |ctx, _, _| Ok(Datum::Timestamptz(ctx.postmaster_start_time)),
    },
    FunctionDef {
        name: "pg_conf_load_time",
        args: &[],
        result: Type::Timestamptz,
        volatility: Volatility::Stable,
        body: |ctx, _, _| Ok(Datum::Timestamptz(ctx.conf_load_time.get())),
    },
];

/// What `pg_signal_backend` found (PostgreSQL's `SIGNAL_BACKEND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signalled {
    /// Sent.
    Success,
    /// Not sent, and a WARNING said why (no such backend, kill failed).
    Error,
    /// The target belongs to another role whose privileges we lack.
    NoPermission,
    /// The target is superuser-owned and we are not a superuser.
    NoSuperuser,
    /// The target is an autovacuum worker and we lack `pg_signal_autovacuum_worker`.
    NoAutovac,
}

/// Sends `sig` to the backend with `pid` if it is one (a member of the ProcArray: auxiliary
/// processes and the postmaster are not) and the session may signal it.
fn signal_backend(
    ctx: &SysContext,
    session: &mut dyn Session,
    pid: i32,
    sig: Signal,
) -> Result<Signalled> {
    let pa = ctx.procarray()?;
    let Some(procno) = pa.backend_pid_get_proc(pid) else {
        session.notice(
            "WARNING",
            QueryError::new(
                WARNING,
                format!("PID {pid} is not a PostgreSQL backend process"),
            ),
        );
        return Ok(Signalled::Error);
    };
    let proc = pa
        .procs()
        .proc(procno)
        .map_err(|e| internal(e.to_string()))?;
    let role = proc.role_id.load(Ordering::Relaxed);
    let kind = BackendType::from_u8(proc.backend_type.load(Ordering::Relaxed));
    // A process that advertises no role may matter as much as a superuser's.
    if role == 0 || ctx.role_is_superuser(role) {
        if kind == Some(BackendType::AutovacWorker) {
            if !ctx.superuser && !ctx.pg_signal_autovacuum_worker {
                return Ok(Signalled::NoAutovac);
            }
        } else if !ctx.superuser {
            return Ok(Signalled::NoSuperuser);
        }
    } else if !(ctx.has_privs_of_role(role) || ctx.pg_signal_backend) {
        return Ok(Signalled::NoPermission);
    }
    // The pid may have ended (even been reused) since the look-up; every caller asks a process
    // to end anyway, as PostgreSQL reasons.
    let target = if ctx.signal_process_group { -pid } else { pid };
    match kill(Pid::from_raw(target), sig) {
        Ok(()) => Ok(Signalled::Success),
        Err(e) => {
            session.notice(
                "WARNING",
                QueryError::new(
                    WARNING,
                    format!("could not send signal to process {pid}: {}", e.desc()),
                ),
            );
            Ok(Signalled::Error)
        }
    }
}

fn denied(message: &str, detail: String) -> QueryError {
    QueryError::new(sqlstate::INSUFFICIENT_PRIVILEGE, message).with_detail(detail)
}

fn int4(args: &[Datum], k: usize) -> Result<i32> {
    match args.get(k) {
        Some(Datum::Int4(v)) => Ok(*v),
        other => Err(internal(format!(
            "argument {k} is not an integer: {other:?}"
        ))),
    }
}

/// `pg_cancel_backend(pid int4) → bool`: SIGINT to a backend.
fn pg_cancel_backend(ctx: &SysContext, session: &mut dyn Session, args: &[Datum]) -> Result<Datum> {
    let pid = int4(args, 0)?;
    const MSG: &str = "permission denied to cancel query";
    match signal_backend(ctx, session, pid, Signal::SIGINT)? {
        Signalled::NoSuperuser => Err(denied(
            MSG,
            "Only roles with the SUPERUSER attribute may cancel queries of roles with the SUPERUSER attribute.".into(),
        )),
        Signalled::NoAutovac => Err(denied(
            MSG,
            "Only roles with privileges of the \"pg_signal_autovacuum_worker\" role may cancel autovacuum workers.".into(),
        )),
        Signalled::NoPermission => Err(denied(
            MSG,
            "Only roles with privileges of the role whose query is being canceled or with privileges of the \"pg_signal_backend\" role may cancel this query.".into(),
        )),
        r => Ok(Datum::Bool(r == Signalled::Success)),
    }
}

/// `pg_terminate_backend(pid int4, timeout int8 DEFAULT 0) → bool`: SIGTERM to a backend,
/// then, with a timeout, wait for it to be gone.
fn pg_terminate_backend(
    ctx: &SysContext,
    session: &mut dyn Session,
    args: &[Datum],
) -> Result<Datum> {
    let pid = int4(args, 0)?;
    let timeout = match args.get(1) {
        Some(Datum::Int8(v)) => *v,
        _ => 0,
    };
    if timeout < 0 {
        return Err(QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "\"timeout\" must not be negative",
        ));
    }
    const MSG: &str = "permission denied to terminate process";
    match signal_backend(ctx, session, pid, Signal::SIGTERM)? {
        Signalled::NoSuperuser => Err(denied(
            MSG,
            "Only roles with the SUPERUSER attribute may terminate processes of roles with the SUPERUSER attribute.".into(),
        )),
        Signalled::NoAutovac => Err(denied(
            MSG,
            "Only roles with privileges of the \"pg_signal_autovacuum_worker\" role may terminate autovacuum workers.".into(),
        )),
        Signalled::NoPermission => Err(denied(
            MSG,
            "Only roles with privileges of the role whose process is being terminated or with privileges of the \"pg_signal_backend\" role may terminate this process.".into(),
        )),
        Signalled::Success if timeout > 0 => {
            wait_until_termination(session, pid, timeout).map(Datum::Bool)
        }
        r => Ok(Datum::Bool(r == Signalled::Success)),
    }
}

/// How often the wait looks at the process and at interrupts.
const POLL: Duration = Duration::from_millis(10);

/// Waits until no process has `pid` (true) or `timeout_ms` passed (a WARNING and false),
/// checking for interrupts at every step (PostgreSQL's `pg_wait_until_termination`, which
/// polls every 100 ms on its latch; here every 10 ms, by sleeping).
fn wait_until_termination(session: &mut dyn Session, pid: i32, timeout_ms: i64) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms as u64);
    loop {
        match kill(Pid::from_raw(pid), None) {
            Err(Errno::ESRCH) => return Ok(true),
            Err(e) => {
                return Err(internal(format!(
                    "could not check the existence of the backend with PID {pid}: {}",
                    e.desc()
                )))
            }
            Ok(()) => {}
        }
        session.check_for_interrupts()?;
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
    let unit = if timeout_ms == 1 {
        "millisecond"
    } else {
        "milliseconds"
    };
    session.notice(
        "WARNING",
        QueryError::new(
            WARNING,
            format!("backend with PID {pid} did not terminate within {timeout_ms} {unit}"),
        ),
    );
    Ok(false)
}

/// `pg_reload_conf() → bool`: SIGHUP to the postmaster.
fn pg_reload_conf(ctx: &SysContext, session: &mut dyn Session, _: &[Datum]) -> Result<Datum> {
    let sent = if ctx.postmaster_pid > 0 {
        kill(Pid::from_raw(ctx.postmaster_pid), Signal::SIGHUP)
    } else {
        Err(Errno::ESRCH)
    };
    match sent {
        Ok(()) => Ok(Datum::Bool(true)),
        Err(e) => {
            session.notice(
                "WARNING",
                QueryError::new(
                    WARNING,
                    format!("failed to send signal to postmaster: {}", e.desc()),
                ),
            );
            Ok(Datum::Bool(false))
        }
    }
}
