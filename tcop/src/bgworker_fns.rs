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
//! start-up wait sees the worker stopped). Handles are numbers local to the session. The
//! waits serve interrupts through the session's `check_for_interrupts` (a cancel ends them
//! with 57014, a termination request with 57P01).

use pgipc_bgworker::{
    BgWorkerError, BgWorkerHandle, BgWorkerShared, BgWorkerSpec, BgwHandleStatus, RestartPolicy,
};
use pgipc_proc::{MyProc, ProcConfig};
use pgipc_query::{sqlstate, Datum, QueryError, Result, Session};
use pgipc_shmem::Shmem;
use std::cell::RefCell;
use std::time::Duration;

/// How long the functions wait for the worker to start or stop before they report the status
/// it has then.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

fn sql_error(code: &'static str, msg: impl Into<String>) -> QueryError {
    QueryError::new(code, msg)
}

/// The session's dynamic workers: the SQL handle is the index.
pub(crate) struct WorkerFns {
    shmem: Shmem,
    proc_config: ProcConfig,
    pmsignal: Option<pgipc_pmsignal::PMSignal>,
    handles: RefCell<Vec<BgWorkerHandle>>,
}

impl std::fmt::Debug for WorkerFns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerFns")
            .field("handles", &self.handles.borrow().len())
            .finish_non_exhaustive()
    }
}

/// Runs a wait whose interrupt check is the session's: the first error it raises ends the
/// wait and is the function's error.
fn wait_with<T>(
    s: &mut dyn Session,
    wait: impl FnOnce(&mut dyn FnMut() -> bool) -> std::result::Result<T, BgWorkerError>,
) -> Result<T> {
    let mut raised: Option<QueryError> = None;
    let r = wait(&mut || match s.check_for_interrupts() {
        Ok(()) => false,
        Err(e) => {
            raised = Some(e);
            true
        }
    });
    match (r, raised) {
        (_, Some(e)) => Err(e),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(sql_error(e.sqlstate(), e.to_string())),
    }
}

impl WorkerFns {
    pub(crate) fn new(
        shmem: Shmem,
        proc_config: ProcConfig,
        pmsignal: Option<pgipc_pmsignal::PMSignal>,
    ) -> WorkerFns {
        WorkerFns {
            shmem,
            proc_config,
            pmsignal,
            handles: RefCell::new(Vec::new()),
        }
    }

    fn shared(&self) -> Result<BgWorkerShared> {
        pgipc_bgworker::shmem_init(&self.shmem, self.proc_config.max_worker_processes)
            .map_err(|e| sql_error(e.sqlstate(), e.to_string()))
    }

    fn pmsignal(&self) -> Result<&pgipc_pmsignal::PMSignal> {
        self.pmsignal
            .as_ref()
            .ok_or_else(|| sql_error("55000", "no postmaster to start background workers"))
    }

    fn handle(&self, h: i32) -> Result<BgWorkerHandle> {
        usize::try_from(h)
            .ok()
            .and_then(|i| self.handles.borrow().get(i).copied())
            .ok_or_else(|| {
                sql_error(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("no background worker handle {h} in this session"),
                )
            })
    }

    /// `pgipc_worker_pid(handle)`.
    pub(crate) fn worker_pid(&self, h: i32) -> Result<Datum> {
        let sh = self.shared()?;
        Ok(Datum::Int4(match sh.status(self.handle(h)?) {
            BgwHandleStatus::Started(p) => p,
            _ => 0,
        }))
    }

    /// `pgipc_terminate_worker(handle)`.
    pub(crate) fn terminate_worker(
        &self,
        s: &mut dyn Session,
        me: Option<&MyProc>,
        h: i32,
    ) -> Result<Datum> {
        let sh = self.shared()?;
        let me = me.ok_or_else(|| sql_error(sqlstate::INTERNAL_ERROR, "no PGPROC to wait on"))?;
        let h = self.handle(h)?;
        sh.terminate(h, self.pmsignal()?);
        let st = wait_with(s, |check| {
            sh.wait_for_shutdown(h, me.latch(), WAIT_LIMIT, check)
        })?;
        Ok(Datum::Text(format!("{st:?}").to_lowercase()))
    }

    /// `pgipc_start_worker(function)`: registers a dynamic worker running `function` (never
    /// restarted, this backend notified), waits until it runs, returns its handle number.
    pub(crate) fn start_worker(
        &self,
        s: &mut dyn Session,
        me: Option<&MyProc>,
        function: &str,
    ) -> Result<Datum> {
        let sh = self.shared()?;
        let me = me.ok_or_else(|| sql_error(sqlstate::INTERNAL_ERROR, "no PGPROC to wait on"))?;
        let mut spec = BgWorkerSpec::new(&format!("pgipc dynamic {function}"), function);
        spec.restart = RestartPolicy::Never;
        spec.notify_pid = std::process::id() as i32;
        let max_parallel = s
            .current_setting("max_parallel_workers", true)?
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(8);
        let h = match sh.register_dynamic(&spec, max_parallel, self.pmsignal()?) {
            Ok(Some(h)) => h,
            Ok(None) => {
                return Err(sql_error("53000", "could not register background process")
                    .with_hint("You may need to increase \"max_worker_processes\"."))
            }
            Err(e) => return Err(sql_error(e.sqlstate(), e.to_string())),
        };
        let st = wait_with(s, |check| {
            sh.wait_for_startup(h, me.latch(), WAIT_LIMIT, check)
        })?;
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
