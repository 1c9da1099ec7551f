//! The auxiliary processes' common part (PostgreSQL's auxprocess.c, `AuxiliaryProcessMain`,
//! and `HandleMainLoopInterrupts` of interrupt.c); each kind's main loop is its own module:
//! startup.rs, checkpointer.rs, bgwriter.rs, walwriter.rs, autovacuum.rs (the launcher) and
//! ioworker.rs (PostgreSQL's startup.c, checkpointer.c, bgwriter.c, walwriter.c, autovacuum.c
//! and method_worker.c, for a server that has no storage).
//!
//! Each one takes its PGPROC slot, marks its child slot active, sleeps on its latch (with
//! postmaster death as an exit condition), re-reads `postgresql.conf` on SIGHUP and does its
//! part in shutdown exactly as PostgreSQL's counterpart does:
//!
//! ```text
//!  kind          SIGTERM        SIGINT                 SIGUSR2        a round is
//!  startup       exit 1         -                      -              crash check, then exit 0
//!  checkpointer  ignored        shutdown checkpoint,   exit 0         a timed checkpoint
//!                               PMSIGNAL_XLOG_IS_SHUTDOWN
//!  bgwriter      exit 0         ignored                -              one bgwriter_delay
//!  walwriter     exit 0         ignored                -              one wal_writer_delay
//!  autovacuum    exit 0         ignored                -              one autovacuum_naptime
//!  io worker     ignored        ignored                exit 0         one wake-up
//!  (all)         SIGQUIT: _exit(2) at once
//! ```
//!
//! What they do is counted in the pgstat crate's "Shared Memory Stats"
//! ([`pgipc_pgstat::PgStatShared`]): the checkpointer's checkpoints as PostgreSQL counts them
//! (`pg_stat_checkpointer`), the other kinds' rounds in pgipc's own counters (the
//! `pgipc_stat_aux` view, `SHOW pgipc.<counter>`).

use crate::child_env::ChildEnv;
use crate::elog::{elog, Severity};
use crate::signals::{self, Pending};
use nix::sys::signal::Signal;
use pgipc_pgstat::PgStatShared;
use pgipc_shmem::Shared;
use pgipc_waiteventset::{wait_latch, WaitEvents};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Wait-event codes of the auxiliary main loops (class Activity, from the wait_event crate).
pub(crate) mod wait_event {
    pub(crate) use pgipc_wait_event::{
        WAIT_EVENT_AUTOVACUUM_MAIN as AUTOVACUUM_MAIN, WAIT_EVENT_BGWRITER_MAIN as BGWRITER_MAIN,
        WAIT_EVENT_CHECKPOINTER_MAIN as CHECKPOINTER_MAIN,
        WAIT_EVENT_IO_WORKER_MAIN as IO_WORKER_MAIN, WAIT_EVENT_WAL_WRITER_MAIN as WAL_WRITER_MAIN,
    };
}

/// A running auxiliary process: its environment, PGPROC, the shared counters and ProcSignal.
pub(crate) struct AuxProcess<'a> {
    pub(crate) env: &'a mut ChildEnv,
    pub(crate) me: pgipc_proc::MyProc,
    pub(crate) counters: Shared<PgStatShared>,
    ps: Option<pgipc_procsignal::ProcSignal>,
}

impl<'a> AuxProcess<'a> {
    /// Catches `catches`, ignores `ignores`, unblocks signals, takes the PGPROC and finds the
    /// counters; `None` (after a FATAL line) if any of it fails: the process exits 1.
    pub(crate) fn start(
        env: &'a mut ChildEnv,
        catches: &[Signal],
        ignores: &[Signal],
    ) -> Option<Self> {
        env.init_ps_display(crate::child::backend_type_desc(env.kind));
        for s in catches {
            if let Err(e) = signals::catch(*s) {
                elog(
                    Severity::Fatal,
                    &format_args!("could not set up signal handling: {e}"),
                );
                return None;
            }
        }
        for s in ignores {
            let _ = signals::ignore(*s);
        }
        if let Err(e) = signals::unblock_for_child() {
            elog(
                Severity::Fatal,
                &format_args!("could not unblock signals: {e}"),
            );
            return None;
        }
        let me = match env.init_my_proc() {
            Ok(m) => m,
            Err(e) => {
                elog(Severity::Fatal, &e);
                return None;
            }
        };
        let counters = match pgipc_pgstat::shmem_init(&env.shmem) {
            Ok(c) => c,
            Err(e) => {
                elog(Severity::Fatal, &e);
                return None;
            }
        };
        let ps = crate::child_env::procsignal(&env.shmem, &env.config).ok();
        Some(AuxProcess {
            env,
            me,
            counters,
            ps,
        })
    }

    /// Sleeps on the latch for at most `timeout`; exits with 1 if the postmaster dies.
    pub(crate) fn sleep(&self, timeout: Duration, wait_event_info: u32) {
        let r = wait_latch(
            Some(self.me.latch()),
            WaitEvents::LATCH_SET | WaitEvents::EXIT_ON_PM_DEATH,
            Some(timeout),
            wait_event_info,
        );
        if let Err(e) = r {
            elog(Severity::Fatal, &format_args!("could not wait: {e}"));
            pgipc_ipc::proc_exit(1);
        }
        self.me.latch().reset();
    }

    /// Reloads settings on SIGHUP and absorbs signal barriers (PostgreSQL's
    /// `HandleMainLoopInterrupts`).
    pub(crate) fn reload_if_asked(&mut self) {
        if signals::take(Pending::Hup) {
            self.env.reload_settings();
        }
        if pgipc_procsignal::take_pending(pgipc_procsignal::ProcSignalReason::Barrier) {
            if let Some(ps) = &self.ps {
                if let Err(e) = ps.process_proc_signal_barrier() {
                    elog(Severity::Log, &e);
                }
            }
        }
    }

    /// A process that does one round per `delay_setting` and exits 0 on SIGTERM.
    pub(crate) fn periodic(
        &mut self,
        delay_setting: &str,
        wait_event_info: u32,
        counter: fn(&PgStatShared) -> &AtomicU64,
    ) -> i32 {
        let ms_per_unit = if delay_setting == "autovacuum_naptime" {
            1000
        } else {
            1
        };
        loop {
            self.reload_if_asked();
            if signals::take(Pending::Term) {
                return 0;
            }
            counter(&self.counters).fetch_add(1, Ordering::Relaxed);
            let delay = self.env.setting_int(delay_setting).max(1) as u64 * ms_per_unit;
            self.sleep(Duration::from_millis(delay), wait_event_info);
        }
    }
}

/// The signals of a process that does periodic rounds and exits 0 on SIGTERM (the background
/// writer, WAL writer and autovacuum launcher): SIGHUP and SIGTERM caught, SIGINT ignored.
pub(crate) fn periodic_main(
    env: &mut ChildEnv,
    delay_setting: &str,
    wait_event_info: u32,
    counter: fn(&PgStatShared) -> &AtomicU64,
) -> i32 {
    match AuxProcess::start(env, &[Signal::SIGHUP, Signal::SIGTERM], &[Signal::SIGINT]) {
        Some(mut aux) => aux.periodic(delay_setting, wait_event_info, counter),
        None => 1,
    }
}
