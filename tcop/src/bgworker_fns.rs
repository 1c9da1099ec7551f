//! The built-in SQL functions over dynamic background workers, on the `pgipc_bgworker` API
//! alone (PostgreSQL's backends call `RegisterDynamicBackgroundWorker` and friends the same
//! way, from parallel query or an extension):
//!
//! ```text
//!  pgipc_start_worker('<function>') → int4   register (never restarted, notify me), wait for
//!                                             start-up on my latch, return a handle number
//!  pgipc_worker_pid(handle)         → int4   the worker's pid, 0 when it is not running
//!  pgipc_terminate_worker(handle)   → text   ask the postmaster to stop it, wait until it
//!                                             stopped, return the final status
//! ```
//!
//! The worker's function name is only written into `bgw_function_name`: the postmaster looks
//! it up among its compiled-in entry points and refuses a name it does not have (then the
//! start-up wait sees the worker stopped). Handles are numbers local to the session.

use crate::sys::{self, Pending};
use crate::{BackendContext, Datum, Report};
use pgipc_bgworker::{
    BgWorkerError, BgWorkerHandle, BgWorkerShared, BgWorkerSpec, BgwHandleStatus, RestartPolicy,
};
use pgipc_libpq::{ErrorFields, Severity};
use pgipc_proc::MyProc;
use std::cell::RefCell;
use std::time::Duration;

/// How long the functions wait for the worker to start or stop before they report the status
/// it has then.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// `int4`.
const INT4OID: u32 = 23;
/// `text`.
const TEXTOID: u32 = 25;

/// The result type of the function `name`, if it is one of these.
pub(crate) fn result_type(name: &str) -> Option<u32> {
    match name {
        "pgipc_start_worker" | "pgipc_worker_pid" => Some(INT4OID),
        "pgipc_terminate_worker" => Some(TEXTOID),
        _ => None,
    }
}

fn sql_error(code: &str, msg: impl Into<String>) -> Report {
    Box::new(ErrorFields::new(Severity::Error, code, msg))
}

/// A wait ended by an interrupt: a cancel becomes PostgreSQL's error (and is consumed); a
/// termination request is left pending for the session's next interrupt check.
fn wait_error(e: BgWorkerError) -> Report {
    match e {
        BgWorkerError::Interrupted if sys::take(Pending::Cancel) => {
            sql_error("57014", "canceling statement due to user request")
        }
        e => sql_error(e.sqlstate(), e.to_string()),
    }
}

/// The session's dynamic workers: the SQL handle is the index.
#[derive(Debug, Default)]
pub(crate) struct WorkerFns {
    handles: RefCell<Vec<BgWorkerHandle>>,
}

impl WorkerFns {
    /// Runs the function `name` if it is one of these; `None` otherwise. `me` is the session's
    /// PGPROC, whose latch the postmaster's SIGUSR1 sets.
    pub(crate) fn call(
        &self,
        ctx: &BackendContext,
        me: Option<&MyProc>,
        name: &str,
        args: &[String],
    ) -> Option<Result<Datum, Report>> {
        result_type(name)?;
        Some(self.run(ctx, me, name, args))
    }

    fn run(
        &self,
        ctx: &BackendContext,
        me: Option<&MyProc>,
        name: &str,
        args: &[String],
    ) -> Result<Datum, Report> {
        let sh = pgipc_bgworker::shmem_init(&ctx.shmem, ctx.proc_config.max_worker_processes)
            .map_err(|e| sql_error(e.sqlstate(), e.to_string()))?;
        let me = me.ok_or_else(|| sql_error("XX000", "no PGPROC to wait on"))?;
        match name {
            "pgipc_start_worker" => self.start_worker(ctx, &sh, me, args),
            "pgipc_worker_pid" => Ok(Datum::Int4(match sh.status(self.handle(args)?) {
                BgwHandleStatus::Started(p) => p,
                _ => 0,
            })),
            _ => {
                let h = self.handle(args)?;
                sh.terminate(h, pmsignal(ctx)?);
                let st = sh
                    .wait_for_shutdown(h, me.latch(), WAIT_LIMIT, &mut || interrupted(ctx))
                    .map_err(wait_error)?;
                Ok(Datum::Text(format!("{st:?}").to_lowercase()))
            }
        }
    }

    fn handle(&self, args: &[String]) -> Result<BgWorkerHandle, Report> {
        let arg = args.first().map(String::as_str).unwrap_or("");
        arg.trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| self.handles.borrow().get(i).copied())
            .ok_or_else(|| {
                sql_error(
                    "22023",
                    format!("no background worker handle {arg} in this session"),
                )
            })
    }

    /// Registers a dynamic worker running `args[0]` (never restarted, this backend notified),
    /// waits until it runs, returns its handle number.
    fn start_worker(
        &self,
        ctx: &BackendContext,
        sh: &BgWorkerShared,
        me: &MyProc,
        args: &[String],
    ) -> Result<Datum, Report> {
        let function = args.first().cloned().unwrap_or_default();
        let mut spec = BgWorkerSpec::new(&format!("pgipc dynamic {function}"), &function);
        spec.restart = RestartPolicy::Never;
        spec.notify_pid = std::process::id() as i32;
        let max_parallel = ctx
            .setting("max_parallel_workers")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(8);
        let h = match sh.register_dynamic(&spec, max_parallel, pmsignal(ctx)?) {
            Ok(Some(h)) => h,
            Ok(None) => {
                return Err(Box::new(
                    ErrorFields::new(
                        Severity::Error,
                        "53000",
                        "could not register background process",
                    )
                    .with_hint("You may need to increase \"max_worker_processes\"."),
                ))
            }
            Err(e) => return Err(sql_error(e.sqlstate(), e.to_string())),
        };
        let st = sh
            .wait_for_startup(h, me.latch(), WAIT_LIMIT, &mut || interrupted(ctx))
            .map_err(wait_error)?;
        if !matches!(st, BgwHandleStatus::Started(_)) {
            return Err(sql_error(
                "55000",
                format!("background worker did not start: {st:?}"),
            ));
        }
        let mut handles = self.handles.borrow_mut();
        handles.push(h);
        Ok(Datum::Int4((handles.len() - 1) as i32))
    }
}

fn pmsignal(ctx: &BackendContext) -> Result<&pgipc_pmsignal::PMSignal, Report> {
    ctx.pmsignal
        .as_ref()
        .ok_or_else(|| sql_error("55000", "no postmaster to start background workers"))
}

/// The waits' interrupt check (PostgreSQL's `CHECK_FOR_INTERRUPTS` inside them): serves what
/// the host serves at every check (e.g. ProcSignal barriers, so that nobody waits for this
/// backend meanwhile), and says whether the wait must stop for a query cancel or a
/// termination request.
fn interrupted(ctx: &BackendContext) -> bool {
    ctx.hooks.process_interrupts();
    sys::peek(Pending::Cancel) || sys::peek(Pending::Die)
}
