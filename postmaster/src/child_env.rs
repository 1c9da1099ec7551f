//! What a running child has (PostgreSQL's globals a child inherits from the postmaster or, in
//! an `EXEC_BACKEND` build, restores in `SubPostmasterMain`): its identity, settings and shared
//! memory ([`ChildEnv`]), the environment variables an exec'd child finds them again from, and
//! the views of shared memory every child takes.

use crate::child::BackendType;
use crate::elog::{elog, Severity};
use pgipc_bgworker::BgWorkerSpec;
use pgipc_guc::{Context, Settings};
use pgipc_ipci::{IpcConfig, IpcState, IpciError};
use pgipc_pmsignal::PmSignalError;
use pgipc_proc::ProcError;
use pgipc_procsignal::ProcSignalError;
use pgipc_shmem::Shmem;
use pgipc_tcop::CanAcceptConnections;
use std::path::PathBuf;
use std::rc::Rc;

/// Environment variable: the main segment's memfd number (exec mode).
pub(crate) const SHMEM_FD_ENV: &str = "PGIPC_SHMEM_FD";
/// Environment variable: the interlock's SysV id (exec mode).
pub(crate) const SHMID_ENV: &str = "PGIPC_SHMID";
/// Environment variable: the client socket's number (exec mode).
pub(crate) const CLIENT_FD_ENV: &str = "PGIPC_CLIENT_FD";
/// Environment variable: the connection verdict (exec mode), see [`cac_word`].
pub(crate) const CAC_ENV: &str = "PGIPC_CAC";
/// Environment variable: a background worker's registration (exec mode).
pub(crate) const BGWORKER_ENV: &str = "PGIPC_BGWORKER";
/// Environment variable: the postmaster's settings (exec mode): its
/// [`pgipc_guc::Snapshot`] as JSON.
pub(crate) const SETTINGS_ENV: &str = "PGIPC_SETTINGS";

/// Environment variable: when the postmaster started (exec mode), see [`pg_start_time`].
pub(crate) const START_TIME_ENV: &str = "PGIPC_START_TIME";

/// PostgreSQL's `PgStartTime`: when the postmaster started, in microseconds since 2000-01-01
/// UTC. Set once by the postmaster before its first child; a forked child inherits it, an
/// exec'd one reads it back from [`START_TIME_ENV`].
static PG_START_TIME: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC).
pub(crate) const UNIX_TO_PG_EPOCH_USECS: i64 = 946_684_800 * 1_000_000;

/// Records the postmaster's start time (the postmaster, or an exec'd child restoring it).
pub(crate) fn set_pg_start_time(t: i64) {
    PG_START_TIME.store(t, std::sync::atomic::Ordering::Relaxed);
}

/// The postmaster's start time (`pg_postmaster_start_time()`), 0 before it was recorded.
pub(crate) fn pg_start_time() -> i64 {
    PG_START_TIME.load(std::sync::atomic::Ordering::Relaxed)
}

/// The connection verdict as one word in [`CAC_ENV`].
pub(crate) fn cac_word(cac: CanAcceptConnections) -> &'static str {
    match cac {
        CanAcceptConnections::Ok => "ok",
        CanAcceptConnections::Startup => "startup",
        CanAcceptConnections::Shutdown => "shutdown",
        CanAcceptConnections::Recovery => "recovery",
        CanAcceptConnections::NotHotStandby { hot_standby: false } => "nothotstandby",
        CanAcceptConnections::NotHotStandby { hot_standby: true } => "nothotstandby-hs",
        CanAcceptConnections::TooMany => "toomany",
    }
}

/// The verdict a [`cac_word`] word names.
pub(crate) fn cac_from_word(w: &str) -> Option<CanAcceptConnections> {
    use CanAcceptConnections::*;
    [
        Ok,
        Startup,
        Shutdown,
        Recovery,
        NotHotStandby { hot_standby: false },
        NotHotStandby { hot_standby: true },
        TooMany,
    ]
    .into_iter()
    .find(|c| cac_word(*c) == w)
}

/// Why a child could not take its place in shared memory.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChildEnvError {
    /// PMSignal could not be found or the child slot not marked.
    #[error(transparent)]
    PmSignal(#[from] PmSignalError),
    /// ProcSignal could not be found or its slot not taken.
    #[error(transparent)]
    ProcSignal(#[from] ProcSignalError),
    /// The PGPROC array could not be found or no PGPROC was free.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// The configuration gives no slot count.
    #[error(transparent)]
    Ipci(#[from] IpciError),
    /// The Backend Status Array could not be found.
    #[error(transparent)]
    BackendStatus(#[from] pgipc_backend_status::BackendStatusError),
}

/// Everything a running child has: its identity, settings and shared memory.
#[derive(Debug)]
pub(crate) struct ChildEnv {
    /// The child's kind.
    pub(crate) kind: BackendType,
    /// Its child slot (0 for dead-end backends).
    pub(crate) slot: u32,
    /// The data directory.
    pub(crate) data_dir: PathBuf,
    /// Settings (re-read on SIGHUP with [`ChildEnv::reload_settings`]); shared with the
    /// postmaster's until then, so that launching a child copies none.
    pub(crate) settings: Rc<Settings>,
    /// Shared-memory configuration.
    pub(crate) config: IpcConfig,
    /// The main segment.
    pub(crate) shmem: Shmem,
    /// Exec mode: the attached state (keeps the interlock attachment alive).
    pub(crate) ipc: Option<IpcState>,
    /// For a background worker: what it runs.
    pub(crate) worker: Option<BgWorkerSpec>,
}

impl ChildEnv {
    /// Sets this process's title to `postgres: [<cluster_name>: ]<fixed_part> ` (PostgreSQL's
    /// `init_ps_display`), with `cluster_name` and `update_process_title` from the settings.
    pub(crate) fn init_ps_display(&self, fixed_part: &str) {
        let opts = pgipc_ps_status::TitleOptions {
            cluster_name: self.settings.text("cluster_name").to_owned(),
            update_process_title: self.settings.bool("update_process_title"),
        };
        pgipc_ps_status::init_ps_display(fixed_part, &opts);
    }

    /// An integer setting.
    pub(crate) fn setting_int(&self, name: &str) -> i64 {
        self.settings.int(name)
    }

    /// Re-reads `postgresql.conf` (SIGHUP), as PostgreSQL's children do: silently (the
    /// postmaster logs what changed), all or nothing, command-line values kept.
    pub(crate) fn reload_settings(&mut self) {
        let conf = config_file(&self.settings);
        let own = Rc::make_mut(&mut self.settings);
        // PostgreSQL's IsUnderPostmaster: a reload leaves backend-context values alone.
        own.set_under_postmaster(true);
        let _ = own.process_config_file(&conf, Context::Sighup);
        pgipc_elog::configure(own);
    }

    /// PMSignal's shared state.
    pub(crate) fn pmsignal(&self) -> Result<pgipc_pmsignal::PMSignal, PmSignalError> {
        pgipc_pmsignal::shmem_init(&self.shmem, max_live_children(&self.config))
    }

    /// Tells the postmaster the shutdown checkpoint is written (the checkpointer).
    pub(crate) fn send_postmaster_signal_xlog_shutdown(&self) {
        match self.pmsignal() {
            Ok(p) => {
                if let Err(e) =
                    p.send_postmaster_signal(pgipc_pmsignal::PMSignalReason::XlogIsShutdown)
                {
                    elog(Severity::Log, &e);
                }
            }
            Err(e) => elog(Severity::Log, &e),
        }
    }

    /// Marks its child slot active in PMSignal, takes this process's PGPROC (auxiliary slot
    /// for auxiliary kinds) and registers the clean-up that undoes both at exit.
    ///
    /// The order is PostgreSQL 18's (`InitProcess` starts with `RegisterPostmasterChildActive`):
    /// exit callbacks run newest first, so the slot is marked inactive *last*, after the PGPROC
    /// and everything registered later is released. Until then the postmaster counts an exit as
    /// a crash.
    pub(crate) fn init_my_proc(&self) -> Result<pgipc_proc::MyProc, ChildEnvError> {
        self.mark_active()?;
        let global = pgipc_proc::shmem_init(&self.shmem, &self.config.proc_config())?;
        let me = if self.kind.is_auxiliary() {
            pgipc_proc::init_auxiliary_process(&global, self.kind)
        } else {
            pgipc_proc::init_process(&global, self.kind)
        }?;
        let ps = procsignal(&self.shmem, &self.config)?;
        // No cancel key: auxiliary processes and background workers get no cancel requests
        // (PostgreSQL 18 gives a key only to backends serving a client), and a slot without
        // one matches none. The SIGUSR1 handler is in place since `reset_for_child`.
        ps.init_slot(me.proc_number(), std::process::id() as i32, None)?;
        self.report_backend_start(me.proc_number())?;
        Ok(me)
    }

    /// Fills this process's Backend Status entry (`pgstat_bestart`) and frees it at exit:
    /// processes without a session show no state and no client.
    pub(crate) fn report_backend_start(
        &self,
        procno: pgipc_proc::ProcNumber,
    ) -> Result<(), ChildEnvError> {
        use pgipc_backend_status::{BackendState, StartInfo};
        let status = pgipc_backend_status::shmem_init(
            &self.shmem,
            self.config.num_backend_stat_slots()? as usize,
            self.config.track_activity_query_size,
        )?;
        let w = status.writer(procno, self.settings.bool("track_activities"))?;
        w.report_start(
            std::process::id() as i32,
            &StartInfo {
                backend_type: self.kind,
                state: BackendState::Undefined,
                database_id: 0,
                datname: "",
                user_id: 0,
                usename: "",
                appname: "",
                client: None,
                client_hostname: "",
            },
        );
        pgipc_backend_status::set_my_be_entry(w);
        if let Err(e) = pgipc_ipc::on_shmem_exit(|_| pgipc_backend_status::report_end_mine()) {
            pgipc_backend_status::report_end_mine();
            return Err(ChildEnvError::Proc(e.into()));
        }
        Ok(())
    }

    /// Marks the child slot active and arranges for it to be marked inactive at a clean exit.
    pub(crate) fn mark_active(&self) -> Result<(), PmSignalError> {
        if self.slot == 0 {
            return Ok(());
        }
        self.pmsignal()?.register_child_active(self.slot)
    }
}

/// The configuration file the settings were read from (`config_file`).
pub(crate) fn config_file(s: &Settings) -> PathBuf {
    PathBuf::from(s.text("config_file"))
}

/// How many child slots PMSignal tracks (PostgreSQL's `MaxLivePostmasterChildren`; the same
/// total as the postmaster's pools).
pub(crate) fn max_live_children(cfg: &IpcConfig) -> usize {
    cfg.max_live_postmaster_children().unwrap_or(0) as usize
}

/// ProcSignal's shared state.
pub(crate) fn procsignal(
    shmem: &Shmem,
    cfg: &IpcConfig,
) -> Result<pgipc_procsignal::ProcSignal, ChildEnvError> {
    let n = cfg.num_proc_signal_slots()? as usize;
    Ok(pgipc_procsignal::shmem_init(shmem, n)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_verdict_survives_the_exec_environment() {
        use CanAcceptConnections::*;
        let all = [
            Ok,
            Startup,
            Shutdown,
            Recovery,
            NotHotStandby { hot_standby: false },
            NotHotStandby { hot_standby: true },
            TooMany,
        ];
        for cac in all {
            assert_eq!(cac_from_word(cac_word(cac)), Some(cac), "{cac:?}");
        }
        // The word exec'd children of earlier builds received for CAC_NOTHOTSTANDBY.
        assert_eq!(
            cac_from_word("nothotstandby"),
            Some(NotHotStandby { hot_standby: false })
        );
        assert_eq!(cac_from_word("nonsense"), None);
    }
}
