//! The auxiliary processes' main loops: startup, checkpointer, background writer, WAL writer,
//! autovacuum launcher and I/O workers (PostgreSQL's startup.c, checkpointer.c, bgwriter.c,
//! walwriter.c, autovacuum.c and method_worker.c, for a server that has no storage).
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
//! What they do in a round is counted in a small shared struct ([`AuxCounters`]) that clients
//! read with `SHOW pgipc.<counter>`.

use crate::child::{backend_type_desc, BackendType};
use crate::controlfile::{format_time, now_secs, ControlFile, DbState};
use crate::elog::{elog, Severity};
use crate::launch::ChildEnv;
use crate::signals::{self, Pending};
use nix::sys::signal::Signal;
use pgipc_shmem::{InitKind, Shared, ShmemSafe};
use pgipc_waiteventset::{wait_latch, WaitEvents};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Name of the counters' allocation in the Shmem Index.
pub const AUX_COUNTERS_NAME: &str = "pgipc Auxiliary Counters";

/// Rounds done by the auxiliary processes since the server (re)started.
#[repr(C)]
#[derive(Debug, Default)]
pub struct AuxCounters {
    /// Checkpoints requested by time (`checkpoints_timed`).
    pub checkpoints_timed: AtomicU64,
    /// Shutdown and other requested checkpoints (`checkpoints_req`).
    pub checkpoints_req: AtomicU64,
    /// Background writer rounds.
    pub bgwriter_rounds: AtomicU64,
    /// WAL writer rounds.
    pub walwriter_rounds: AtomicU64,
    /// Autovacuum launcher rounds.
    pub autovacuum_rounds: AtomicU64,
    /// I/O worker wake-ups.
    pub io_worker_wakeups: AtomicU64,
    /// Completed start-up (crash-recovery) passes.
    pub startup_passes: AtomicU64,
}

// SAFETY: repr(C), only atomics, valid when all-zero, no pointers.
unsafe impl ShmemSafe for AuxCounters {}

impl AuxCounters {
    /// The counters by their `SHOW` names (`pgipc.<name>`).
    pub fn get(&self, name: &str) -> Option<u64> {
        let c = match name {
            "checkpoints_timed" => &self.checkpoints_timed,
            "checkpoints_req" => &self.checkpoints_req,
            "bgwriter_rounds" => &self.bgwriter_rounds,
            "walwriter_rounds" => &self.walwriter_rounds,
            "autovacuum_rounds" => &self.autovacuum_rounds,
            "io_worker_wakeups" => &self.io_worker_wakeups,
            "startup_passes" => &self.startup_passes,
            _ => return None,
        };
        Some(c.load(Ordering::Relaxed))
    }
}

/// Creates or finds the counters.
pub fn aux_counters(shmem: &pgipc_shmem::Shmem) -> Result<Shared<AuxCounters>, String> {
    shmem
        .init_struct::<AuxCounters>(AUX_COUNTERS_NAME)
        .map(|(s, _k): (Shared<AuxCounters>, InitKind)| s)
        .map_err(|e| e.to_string())
}

/// Wait-event codes (PostgreSQL's `WAIT_EVENT_*` of class Activity, 0x05000000).
mod wait_event {
    pub(super) const BGWRITER_MAIN: u32 = 0x0500_0002;
    pub(super) const CHECKPOINTER_MAIN: u32 = 0x0500_0004;
    pub(super) const AUTOVACUUM_MAIN: u32 = 0x0500_0001;
    pub(super) const WAL_WRITER_MAIN: u32 = 0x0500_000C;
    pub(super) const IO_WORKER_MAIN: u32 = 0x0500_0005;
}

/// Runs the auxiliary process `env.kind`; returns its exit code.
pub fn aux_main(env: &mut ChildEnv) -> i32 {
    let kind = env.kind;
    let catches: &[Signal] = match kind {
        BackendType::Checkpointer => &[Signal::SIGHUP, Signal::SIGINT, Signal::SIGUSR2],
        BackendType::IoWorker => &[Signal::SIGHUP, Signal::SIGUSR2],
        _ => &[Signal::SIGHUP, Signal::SIGTERM],
    };
    let ignores: &[Signal] = match kind {
        // The checkpointer's shutdown requests are SIGINT and SIGUSR2 only.
        BackendType::Checkpointer => &[Signal::SIGTERM],
        BackendType::IoWorker => &[Signal::SIGTERM, Signal::SIGINT],
        _ => &[Signal::SIGINT],
    };
    for s in catches {
        if let Err(e) = signals::catch(*s) {
            elog(
                Severity::Fatal,
                &format_args!("could not set up signal handling: {e}"),
            );
            return 1;
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
        return 1;
    }
    let me = match env.init_my_proc() {
        Ok(m) => m,
        Err(e) => {
            elog(Severity::Fatal, &e);
            return 1;
        }
    };
    let counters = match aux_counters(&env.shmem) {
        Ok(c) => c,
        Err(e) => {
            elog(Severity::Fatal, &e);
            return 1;
        }
    };
    let ps = crate::startup::procsignal(&env.shmem, &env.config).ok();
    let mut aux = Aux {
        env,
        me,
        counters,
        ps,
    };
    match kind {
        BackendType::Startup => aux.startup(),
        BackendType::Checkpointer => aux.checkpointer(),
        BackendType::BgWriter => aux.periodic("bgwriter_delay", wait_event::BGWRITER_MAIN, |c| {
            &c.bgwriter_rounds
        }),
        BackendType::WalWriter => {
            aux.periodic("wal_writer_delay", wait_event::WAL_WRITER_MAIN, |c| {
                &c.walwriter_rounds
            })
        }
        BackendType::AutovacLauncher => {
            aux.periodic("autovacuum_naptime", wait_event::AUTOVACUUM_MAIN, |c| {
                &c.autovacuum_rounds
            })
        }
        BackendType::IoWorker => aux.io_worker(),
        other => {
            elog(
                Severity::Fatal,
                &format_args!("{} is not an auxiliary process", backend_type_desc(other)),
            );
            1
        }
    }
}

struct Aux<'a> {
    env: &'a mut ChildEnv,
    me: pgipc_proc::MyProc,
    counters: Shared<AuxCounters>,
    ps: Option<pgipc_procsignal::ProcSignal>,
}

impl Aux<'_> {
    /// Sleeps on the latch for at most `timeout`; exits with 1 if the postmaster dies.
    fn sleep(&self, timeout: Duration, wait_event_info: u32) {
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
    fn reload_if_asked(&mut self) {
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

    /// The startup process: decides from the control file whether the last run crashed,
    /// cleans up, marks the cluster in production and exits 0 so that the server can run.
    fn startup(&mut self) -> i32 {
        let dir = self.env.data_dir.clone();
        let mut cf = match ControlFile::read(&dir) {
            Ok(Some(c)) => c,
            Ok(None) => {
                elog(
                    Severity::Fatal,
                    &format_args!(
                        "could not open file \"{}\": No such file or directory",
                        dir.join(crate::controlfile::CONTROL_FILE).display()
                    ),
                );
                return 1;
            }
            Err(e) => {
                elog(Severity::Fatal, &e);
                return 1;
            }
        };
        let when = format_time(cf.time);
        let clean = match cf.state {
            DbState::Shutdowned | DbState::ShutdownedInRecovery => {
                elog(
                    Severity::Log,
                    &format_args!("database system was shut down at {when}"),
                );
                true
            }
            DbState::Shutdowning => {
                elog(
                    Severity::Log,
                    &format_args!(
                        "database system shutdown was interrupted; last known up at {when}"
                    ),
                );
                false
            }
            DbState::InCrashRecovery | DbState::InArchiveRecovery => {
                elog(
                    Severity::Log,
                    &format_args!("database system was interrupted while in recovery at {when}"),
                );
                false
            }
            DbState::InProduction | DbState::Startup => {
                elog(
                    Severity::Log,
                    &format_args!("database system was interrupted; last known up at {when}"),
                );
                false
            }
        };
        if !clean {
            elog(
                Severity::Log,
                &"database system was not properly shut down; automatic recovery in progress",
            );
            cf.state = DbState::InCrashRecovery;
            if let Err(e) = cf.write(&dir) {
                elog(Severity::Fatal, &e);
                return 1;
            }
            // There is no WAL to replay: the crash left nothing behind but what the postmaster
            // already removed (shared memory, DSM segments).
            elog(Severity::Log, &"redo is not required");
        }
        if signals::is_pending(Pending::Term) {
            return 1;
        }
        cf.state = DbState::InProduction;
        if let Err(e) = cf.write(&dir) {
            elog(Severity::Fatal, &e);
            return 1;
        }
        self.counters.startup_passes.fetch_add(1, Ordering::Relaxed);
        0
    }

    fn checkpoint(&self, shutdown: bool, reason: &str) -> Result<(), String> {
        let start = Instant::now();
        elog(
            Severity::Log,
            &format_args!("checkpoint starting: {reason}"),
        );
        let dir = &self.env.data_dir;
        let mut cf = ControlFile::read(dir)
            .map_err(|e| e.to_string())?
            .unwrap_or(ControlFile {
                state: DbState::InProduction,
                checkpoint_time: 0,
                time: 0,
            });
        if shutdown {
            pgipc_injection_point::injection_point!("checkpointer-shutdown-checkpoint")
                .map_err(|e| e.to_string())?;
            cf.state = DbState::Shutdowning;
            cf.write(dir).map_err(|e| e.to_string())?;
            cf.state = DbState::Shutdowned;
        }
        cf.checkpoint_time = now_secs();
        cf.write(dir).map_err(|e| e.to_string())?;
        let total = start.elapsed().as_secs_f64();
        elog(
            Severity::Log,
            &format_args!(
                "checkpoint complete: wrote 0 buffers (0.0%), wrote 0 SLRU buffers; 0 WAL file(s) added, 0 removed, 0 recycled; write=0.000 s, sync={total:.3} s, total={total:.3} s"
            ),
        );
        Ok(())
    }

    /// The checkpointer: timed checkpoints, and the shutdown checkpoint handshake.
    fn checkpointer(&mut self) -> i32 {
        let mut last = Instant::now();
        loop {
            self.reload_if_asked();
            if signals::take(Pending::Usr2) {
                return 0;
            }
            if signals::take(Pending::Int) {
                elog(Severity::Log, &"shutting down");
                if let Err(e) = self.checkpoint(true, "shutdown immediate") {
                    elog(Severity::Fatal, &e);
                    return 2;
                }
                self.counters
                    .checkpoints_req
                    .fetch_add(1, Ordering::Relaxed);
                self.env.send_postmaster_signal_xlog_shutdown();
                // Wait for the postmaster's SIGUSR2, nothing else (PostgreSQL's
                // ShutdownXLOG + wait loop).
                loop {
                    if signals::take(Pending::Usr2) {
                        return 0;
                    }
                    self.sleep(Duration::from_secs(60), wait_event::CHECKPOINTER_MAIN);
                }
            }
            let timeout =
                Duration::from_secs(self.env.setting_int("checkpoint_timeout").max(1) as u64);
            let elapsed = last.elapsed();
            if elapsed >= timeout {
                if let Err(e) = self.checkpoint(false, "time") {
                    elog(Severity::Error, &e);
                }
                self.counters
                    .checkpoints_timed
                    .fetch_add(1, Ordering::Relaxed);
                last = Instant::now();
                continue;
            }
            self.sleep(timeout - elapsed, wait_event::CHECKPOINTER_MAIN);
        }
    }

    /// A process that does one round per `delay_setting` and exits 0 on SIGTERM.
    fn periodic(
        &mut self,
        delay_setting: &str,
        wait_event_info: u32,
        counter: fn(&AuxCounters) -> &AtomicU64,
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

    /// An I/O worker: waits for work (there is none to submit yet), exits 0 on SIGUSR2.
    fn io_worker(&mut self) -> i32 {
        loop {
            self.reload_if_asked();
            if signals::take(Pending::Usr2) {
                return 0;
            }
            self.counters
                .io_worker_wakeups
                .fetch_add(1, Ordering::Relaxed);
            self.sleep(Duration::from_secs(60), wait_event::IO_WORKER_MAIN);
        }
    }
}
