//! A client backend or dead-end backend: the `tcop` crate runs the session; this module
//! connects it to the rest of the server through [`tcop::BackendHooks`] (PostgreSQL's
//! `BackendMain` between `InitPostmasterChild` and `PostgresMain`):
//!
//! ```text
//!  cancel request   ─► ProcSignal::send_cancel_request (constant-time key check, SIGINT)
//!  PGPROC taken     ─► PMSignal: child slot ACTIVE (inactive again at a clean exit)
//!  cancel key chosen─► ProcSignal slot (procno, pid, key) + SIGUSR1 handler
//!  interrupt checks ─► absorb ProcSignal barriers
//!  SIGHUP           ─► (tcop re-reads postgresql.conf into the session's settings)
//!  SHOW             ─► `pgipc.<counter>` (auxiliary rounds, from "Shared Memory Stats"),
//!                      `pgipc.pid_of.<kind>` (from the PGPROC array)
//!  SIGQUIT          ─► PMSignal's quit reason picks the client's last warning
//!  PMSignal         ─► handed to tcop (`BackendContext::pmsignal`), whose built-in
//!                      functions register dynamic background workers through pgipc_bgworker
//! ```

use crate::child_env::ChildEnv;
use pgipc_pmsignal::{PMSignal, QuitSignalReason};
use pgipc_proc::{BackendType, ProcNumber};
use pgipc_procsignal::{ProcSignal, ProcSignalReason};
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
}

impl Hooks {
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
    fn cancel_request(&self, pid: i32, key: &[u8]) {
        if let Some(ps) = &self.procsignal {
            // A wrong key is ignored silently, as PostgreSQL does.
            let _ = ps.send_cancel_request(pid, key);
        }
    }

    fn mark_active(&self) -> Result<(), String> {
        self.env.borrow().mark_active().map_err(|e| e.to_string())
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

    fn show(&self, name: &str) -> Option<String> {
        let lname = name.to_ascii_lowercase();
        if let Some(kind) = lname.strip_prefix("pgipc.pid_of.") {
            return Some(self.pid_of(kind).to_string());
        }
        let env = self.env.borrow();
        if let Some(counter) = lname.strip_prefix("pgipc.") {
            let c = pgipc_pgstat::shmem_init(&env.shmem).ok()?;
            return c.counter(counter).map(|v| v.to_string());
        }
        None
    }
}

/// Runs a client backend (or, with a refusing `cac`, a dead-end backend) on `client`;
/// returns the exit code.
pub(crate) fn backend_main(
    env: &mut ChildEnv,
    client: OwnedFd,
    cac: tcop::CanAcceptConnections,
) -> i32 {
    let pmsignal = env.pmsignal().ok();
    if let Some(p) = &pmsignal {
        let _ = QUIT_PMSIGNAL.set(p.clone());
    }
    let procsignal = crate::child_env::procsignal(&env.shmem, &env.config).ok();
    let taken = ChildEnv {
        kind: env.kind,
        slot: env.slot,
        data_dir: env.data_dir.clone(),
        settings: env.settings.clone(),
        config: env.config.clone(),
        shmem: env.shmem.clone(),
        ipc: env.ipc.take(),
        worker: None,
    };
    // The session's own settings (SET, RESET, SHOW, reload) start from the server's.
    let mut settings = pgipc_guc::Settings::clone(&taken.settings);
    settings.set_under_postmaster(true);
    let mut ctx = tcop::BackendContext::new(
        taken.shmem.clone(),
        taken.config.proc_config(),
        cac,
        settings,
    );
    ctx.authentication_timeout =
        Duration::from_secs(taken.settings.int("authentication_timeout").max(1) as u64);
    ctx.quit_reason = Some(quit_reason);
    ctx.postmaster_start_time = crate::child_env::pg_start_time();
    ctx.pmsignal = pmsignal;
    ctx.hooks = Box::new(Hooks {
        env: RefCell::new(taken),
        procsignal,
    });
    tcop::backend_main(client, ctx)
}
