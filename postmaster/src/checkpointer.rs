//! The checkpointer (PostgreSQL's checkpointer.c): a timed checkpoint every
//! `checkpoint_timeout`, and the shutdown checkpoint handshake (SIGINT: write it, send
//! PMSIGNAL_XLOG_IS_SHUTDOWN, wait for SIGUSR2). SIGTERM is ignored; SIGUSR2 alone: exit 0. A
//! checkpoint here only rewrites `global/pg_control`.

use crate::auxprocess::{wait_event, AuxProcess};
use crate::child_env::ChildEnv;
use crate::controlfile::{now_secs, ControlFile, ControlFileError, DbState};
use crate::elog::{elog, Severity};
use crate::signals::{self, Pending};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

/// Why a checkpoint failed.
#[derive(Debug, thiserror::Error)]
enum CheckpointError {
    /// The control file could not be read or written.
    #[error(transparent)]
    ControlFile(#[from] ControlFileError),
    /// The `checkpointer-shutdown-checkpoint` injection point raised an error.
    #[error(transparent)]
    InjectionPoint(#[from] pgipc_injection_point::InjectionError),
}

/// Runs the checkpointer; returns its exit code.
pub(crate) fn checkpointer_main(env: &mut ChildEnv) -> i32 {
    // The checkpointer's shutdown requests are SIGINT and SIGUSR2 only.
    let catches = [Signal::SIGHUP, Signal::SIGINT, Signal::SIGUSR2];
    match AuxProcess::start(env, &catches, &[Signal::SIGTERM]) {
        Some(mut aux) => checkpointer(&mut aux),
        None => 1,
    }
}

/// Writes a checkpoint, counted in `pg_stat_checkpointer` (started as timed or requested;
/// done with its times when it completes).
fn checkpoint(aux: &AuxProcess<'_>, shutdown: bool, reason: &str) -> Result<(), CheckpointError> {
    aux.counters.checkpoint_started(!shutdown);
    let start = Instant::now();
    elog(
        Severity::Log,
        &format_args!("checkpoint starting: {reason}"),
    );
    let dir = &aux.env.data_dir;
    let mut cf = ControlFile::read(dir)?.unwrap_or(ControlFile {
        state: DbState::InProduction,
        checkpoint_time: 0,
        time: 0,
    });
    if shutdown {
        pgipc_injection_point::injection_point!("checkpointer-shutdown-checkpoint")?;
        cf.state = DbState::Shutdowning;
        cf.write(dir)?;
        cf.state = DbState::Shutdowned;
    }
    cf.checkpoint_time = now_secs();
    cf.write(dir)?;
    let elapsed = start.elapsed();
    let total = elapsed.as_secs_f64();
    // Nothing but pg_control is written; its write and fsync count as the sync phase.
    aux.counters
        .checkpoint_done(0, u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    elog(
            Severity::Log,
            &format_args!(
                "checkpoint complete: wrote 0 buffers (0.0%), wrote 0 SLRU buffers; 0 WAL file(s) added, 0 removed, 0 recycled; write=0.000 s, sync={total:.3} s, total={total:.3} s"
            ),
        );
    Ok(())
}

/// The checkpointer's loop.
fn checkpointer(aux: &mut AuxProcess<'_>) -> i32 {
    let mut last = Instant::now();
    loop {
        aux.reload_if_asked();
        if signals::take(Pending::Usr2) {
            return 0;
        }
        if signals::take(Pending::Int) {
            elog(Severity::Log, &"shutting down");
            if let Err(e) = checkpoint(aux, true, "shutdown immediate") {
                elog(Severity::Fatal, &e);
                return 2;
            }
            aux.env.send_postmaster_signal_xlog_shutdown();
            // Wait for the postmaster's SIGUSR2, nothing else (PostgreSQL's
            // ShutdownXLOG + wait loop).
            loop {
                if signals::take(Pending::Usr2) {
                    return 0;
                }
                aux.sleep(Duration::from_secs(60), wait_event::CHECKPOINTER_MAIN);
            }
        }
        let timeout = Duration::from_secs(aux.env.setting_int("checkpoint_timeout").max(1) as u64);
        let elapsed = last.elapsed();
        if elapsed >= timeout {
            if let Err(e) = checkpoint(aux, false, "time") {
                elog(Severity::Error, &e);
            }
            last = Instant::now();
            continue;
        }
        aux.sleep(timeout - elapsed, wait_event::CHECKPOINTER_MAIN);
    }
}
