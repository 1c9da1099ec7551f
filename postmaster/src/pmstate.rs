//! The postmaster's state machine's states (PostgreSQL's `PMState`, postmaster.c) and how far
//! a shutdown has been asked to go; the transitions are the server's (server.rs), the
//! background-worker list reads the state to decide which workers may start.

/// PostgreSQL's `PMState`, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PmState {
    /// `PM_INIT`.
    Init,
    /// `PM_STARTUP`: the startup process runs.
    Startup,
    /// `PM_RECOVERY`.
    Recovery,
    /// `PM_HOT_STANDBY` (never entered: there is no WAL, hence no standby; kept so that the
    /// transitions read as PostgreSQL's).
    #[allow(dead_code)]
    HotStandby,
    /// `PM_RUN`: normal operation.
    Run,
    /// `PM_STOP_BACKENDS`.
    StopBackends,
    /// `PM_WAIT_BACKENDS`.
    WaitBackends,
    /// `PM_WAIT_XLOG_SHUTDOWN`.
    WaitXlogShutdown,
    /// `PM_WAIT_XLOG_ARCHIVAL`.
    WaitXlogArchival,
    /// `PM_WAIT_IO_WORKERS`.
    WaitIoWorkers,
    /// `PM_WAIT_CHECKPOINTER`.
    WaitCheckpointer,
    /// `PM_WAIT_DEAD_END`.
    WaitDeadEnd,
    /// `PM_NO_CHILDREN`.
    NoChildren,
}

impl PmState {
    pub(crate) fn name(self) -> &'static str {
        use PmState::*;
        match self {
            Init => "PM_INIT",
            Startup => "PM_STARTUP",
            Recovery => "PM_RECOVERY",
            HotStandby => "PM_HOT_STANDBY",
            Run => "PM_RUN",
            StopBackends => "PM_STOP_BACKENDS",
            WaitBackends => "PM_WAIT_BACKENDS",
            WaitXlogShutdown => "PM_WAIT_XLOG_SHUTDOWN",
            WaitXlogArchival => "PM_WAIT_XLOG_ARCHIVAL",
            WaitIoWorkers => "PM_WAIT_IO_WORKERS",
            WaitCheckpointer => "PM_WAIT_CHECKPOINTER",
            WaitDeadEnd => "PM_WAIT_DEAD_END",
            NoChildren => "PM_NO_CHILDREN",
        }
    }
}

/// How far a shutdown has been asked to go (only ever increases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shutdown {
    /// None requested.
    No,
    /// SIGTERM: wait for clients to leave.
    Smart,
    /// SIGINT: terminate sessions, then a shutdown checkpoint.
    Fast,
    /// SIGQUIT: SIGQUIT everyone and exit; the next start recovers.
    Immediate,
}
