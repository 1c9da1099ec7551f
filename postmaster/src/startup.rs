//! The startup process (PostgreSQL's startup.c and the crash-recovery decision of xlog.c's
//! `StartupXLOG`): reads the control file, decides whether the last run crashed, marks the
//! cluster in production and exits 0 so that the server can run. SIGTERM: exit 1.

use crate::auxprocess::AuxProcess;
use crate::child_env::ChildEnv;
use crate::controlfile::{format_time, ControlFile, DbState};
use crate::elog::{elog, Severity};
use crate::signals::{self, Pending};
use nix::sys::signal::Signal;
use std::sync::atomic::Ordering;

/// Runs the startup process; returns its exit code.
pub(crate) fn startup_main(env: &mut ChildEnv) -> i32 {
    match AuxProcess::start(env, &[Signal::SIGHUP, Signal::SIGTERM], &[Signal::SIGINT]) {
        Some(mut aux) => startup(&mut aux),
        None => 1,
    }
}

fn startup(aux: &mut AuxProcess<'_>) -> i32 {
    let dir = aux.env.data_dir.clone();
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
                &format_args!("database system shutdown was interrupted; last known up at {when}"),
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
    aux.counters
        .aux
        .startup_passes
        .fetch_add(1, Ordering::Relaxed);
    0
}
