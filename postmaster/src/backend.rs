//! A client backend or dead-end backend: the `tcop` crate runs the session; this module
//! connects it to the rest of the server through [`tcop::BackendHooks`] (PostgreSQL's
//! `BackendMain` between `InitPostmasterChild` and `PostgresMain`):
//!
//! ```text
//!  cancel request   ─► ProcSignal::send_cancel_request (constant-time key check, SIGINT)
//!  PGPROC taken     ─► PMSignal: child slot ACTIVE (inactive again at a clean exit)
//!  cancel key chosen─► ProcSignal slot (procno, pid, key) + SIGUSR1 handler
//!  interrupt checks ─► absorb ProcSignal barriers
//!  SIGHUP           ─► re-read postgresql.conf
//!  SHOW             ─► server settings, `pgipc.<counter>` (auxiliary rounds),
//!                      `pgipc.pid_of.<kind>` (from the PGPROC array)
//!  SIGQUIT          ─► PMSignal's quit reason picks the client's last warning
//!  functions        ─► pgipc_start_worker('<function>') → handle, pgipc_worker_pid(handle),
//!                      pgipc_terminate_worker(handle): dynamic background workers
//! ```

use crate::bgworker::{
    BgWorkerHandle, BgWorkerShared, BgWorkerSpec, BgwHandleStatus, RestartPolicy,
};
use crate::launch::{CanAcceptConnections, ChildEnv};
use pgipc_pmsignal::{PMSignal, QuitSignalReason};
use pgipc_proc::{BackendType, ProcNumber};
use pgipc_procsignal::{ProcSignal, ProcSignalReason};
use pgipc_tcop::Datum;
use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

/// PMSignal, for the SIGQUIT handler's quit-reason lookup (one atomic load).
static QUIT_PMSIGNAL: OnceLock<PMSignal> = OnceLock::new();

fn quit_reason() -> tcop::QuitReason {
    match QUIT_PMSIGNAL.get().map(PMSignal::quit_signal_reason) {
        Some(QuitSignalReason::ForCrash) => tcop::QuitReason::Crash,
        Some(QuitSignalReason::ForStop) => tcop::QuitReason::ImmediateShutdown,
        _ => tcop::QuitReason::Unknown,
    }
}

use pgipc_tcop as tcop;

/// The server's side of a session.
struct Hooks {
    env: RefCell<ChildEnv>,
    procsignal: Option<ProcSignal>,
    /// Dynamic background workers this session started (the SQL handle is the index).
    workers: RefCell<Vec<BgWorkerHandle>>,
}

fn sql_error(code: &str, msg: impl Into<String>) -> Box<pgipc_libpq::ErrorFields> {
    Box::new(pgipc_libpq::ErrorFields::new(
        pgipc_libpq::Severity::Error,
        code,
        msg,
    ))
}

impl Hooks {
    fn shared_workers(&self) -> Result<BgWorkerShared, Box<pgipc_libpq::ErrorFields>> {
        let env = self.env.borrow();
        crate::bgworker::shmem_init(&env.shmem, env.config.max_worker_processes)
            .map_err(|e| sql_error("XX000", e))
    }

    fn handle(&self, args: &[String]) -> Result<BgWorkerHandle, Box<pgipc_libpq::ErrorFields>> {
        let arg = args.first().map(String::as_str).unwrap_or("");
        arg.trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| self.workers.borrow().get(i).copied())
            .ok_or_else(|| {
                sql_error(
                    "22023",
                    format!("no background worker handle {arg} in this session"),
                )
            })
    }

    /// `pgipc_start_worker('<function>')`: registers a dynamic worker (never restarted), waits
    /// until it runs, returns its handle number in this session.
    fn start_worker(&self, args: &[String]) -> Result<Datum, Box<pgipc_libpq::ErrorFields>> {
        let function = args.first().cloned().unwrap_or_default();
        let mut spec = BgWorkerSpec::new(&format!("pgipc dynamic {function}"), &function);
        spec.restart = RestartPolicy::Never;
        spec.notify_pid = std::process::id() as i32;
        let sh = self.shared_workers()?;
        let (pms, maxp) = {
            let env = self.env.borrow();
            let pms = env.pmsignal().map_err(|e| sql_error("XX000", e))?;
            (pms, env.settings.int("max_parallel_workers").max(0) as u32)
        };
        let h = match sh.register_dynamic(&spec, maxp, &pms) {
            Ok(Some(h)) => h,
            Ok(None) => {
                let mut e = pgipc_libpq::ErrorFields::new(
                    pgipc_libpq::Severity::Error,
                    "53000",
                    "could not register background process",
                );
                e = e.with_hint("You may need to increase \"max_worker_processes\".");
                return Err(Box::new(e));
            }
            Err(e) => return Err(sql_error(e.sqlstate(), e.to_string())),
        };
        let st = sh.wait_for_startup(h, Duration::from_secs(30));
        if !matches!(st, BgwHandleStatus::Started(_)) {
            return Err(sql_error(
                "55000",
                format!("background worker did not start: {st:?}"),
            ));
        }
        let mut w = self.workers.borrow_mut();
        w.push(h);
        Ok(Datum::Int4((w.len() - 1) as i32))
    }

    fn pid_of(&self, kind: &str) -> i32 {
        use BackendType::*;
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
        let env = self.env.borrow();
        let Ok(g) = pgipc_proc::shmem_init(&env.shmem, &env.config.proc_config()) else {
            return 0;
        };
        let me = std::process::id() as i32;
        g.all_procs()
            .iter()
            .filter(|p| BackendType::from_u8(p.backend_type.load(Ordering::Relaxed)) == Some(want))
            .map(|p| p.pid.load(Ordering::Relaxed))
            .find(|pid| *pid != 0 && *pid != me)
            .unwrap_or(0)
    }
}

impl tcop::BackendHooks for Hooks {
    fn function_result_type(&self, name: &str) -> Option<u32> {
        match name {
            "pgipc_start_worker" | "pgipc_worker_pid" => Some(23),
            "pgipc_terminate_worker" => Some(25),
            _ => None,
        }
    }

    fn call_function(
        &self,
        name: &str,
        args: &[String],
    ) -> Result<Datum, Box<pgipc_libpq::ErrorFields>> {
        match name {
            "pgipc_start_worker" => self.start_worker(args),
            "pgipc_worker_pid" => {
                let h = self.handle(args)?;
                Ok(Datum::Int4(match self.shared_workers()?.status(h) {
                    BgwHandleStatus::Started(p) => p,
                    _ => 0,
                }))
            }
            "pgipc_terminate_worker" => {
                let h = self.handle(args)?;
                let sh = self.shared_workers()?;
                let pms = self
                    .env
                    .borrow()
                    .pmsignal()
                    .map_err(|e| sql_error("XX000", e))?;
                sh.terminate(h, &pms);
                let st = sh.wait_for_shutdown(h, Duration::from_secs(30));
                Ok(Datum::Text(format!("{st:?}").to_lowercase()))
            }
            _ => Err(sql_error(
                "42883",
                format!("function {name} does not exist"),
            )),
        }
    }

    fn cancel_request(&self, pid: i32, key: &[u8]) {
        if let Some(ps) = &self.procsignal {
            // A wrong key is ignored silently, as PostgreSQL does.
            let _ = ps.send_cancel_request(pid, key);
        }
    }

    fn mark_active(&self) -> Result<(), String> {
        self.env.borrow().mark_active()
    }

    fn register_cancel_key(&self, procno: ProcNumber, pid: i32, key: &[u8]) -> Result<(), String> {
        let ps = self
            .procsignal
            .as_ref()
            .ok_or_else(|| "ProcSignal is not available".to_owned())?;
        ps.init_slot(procno, pid, Some(key))
            .map_err(|e| e.to_string())
    }

    fn install_signal_handlers(&self) -> Result<(), String> {
        pgipc_procsignal::install_handler().map_err(|e| e.to_string())
    }

    fn process_interrupts(&self) {
        if pgipc_procsignal::take_pending(ProcSignalReason::Barrier) {
            if let Some(ps) = &self.procsignal {
                let _ = ps.process_proc_signal_barrier();
            }
        }
    }

    fn reload(&self) {
        self.env.borrow_mut().reload_settings();
    }

    fn show(&self, name: &str) -> Option<String> {
        let lname = name.to_ascii_lowercase();
        if let Some(kind) = lname.strip_prefix("pgipc.pid_of.") {
            return Some(self.pid_of(kind).to_string());
        }
        let env = self.env.borrow();
        if let Some(counter) = lname.strip_prefix("pgipc.") {
            let c = crate::aux::aux_counters(&env.shmem).ok()?;
            return c.get(counter).map(|v| v.to_string());
        }
        env.settings.show(&lname).ok()
    }
}

/// Runs a client backend (or, with a refusing `cac`, a dead-end backend) on `client`;
/// returns the exit code.
pub fn backend_main(env: &mut ChildEnv, client: OwnedFd, cac: CanAcceptConnections) -> i32 {
    let cac = match cac {
        CanAcceptConnections::Ok => tcop::CanAcceptConnections::Ok,
        CanAcceptConnections::Startup => tcop::CanAcceptConnections::Startup,
        CanAcceptConnections::Shutdown => tcop::CanAcceptConnections::Shutdown,
        CanAcceptConnections::Recovery => tcop::CanAcceptConnections::Recovery,
        CanAcceptConnections::NotHotStandby => {
            tcop::CanAcceptConnections::NotHotStandby { hot_standby: false }
        }
        CanAcceptConnections::TooMany => tcop::CanAcceptConnections::TooMany,
    };
    if let Ok(p) = env.pmsignal() {
        let _ = QUIT_PMSIGNAL.set(p);
    }
    let procsignal = crate::startup::procsignal(&env.shmem, &env.config).ok();
    let taken = ChildEnv {
        kind: env.kind,
        slot: env.slot,
        data_dir: env.data_dir.clone(),
        settings: env.settings.clone(),
        cli_settings: env.cli_settings.clone(),
        config: env.config.clone(),
        shmem: env.shmem.clone(),
        ipc: env.ipc.take(),
        worker: None,
    };
    let mut ctx = tcop::BackendContext::new(taken.shmem.clone(), taken.config.proc_config(), cac);
    ctx.authentication_timeout =
        Duration::from_secs(taken.settings.int("authentication_timeout").max(1) as u64);
    ctx.quit_reason = Some(quit_reason);
    ctx.hooks = Box::new(Hooks {
        env: RefCell::new(taken),
        procsignal,
        workers: RefCell::new(Vec::new()),
    });
    tcop::backend_main(client, ctx)
}
