//! A worker's registration (PostgreSQL's `BackgroundWorker`) in its process-local form, its
//! checks and the errors of registration.

/// Length of the name, type and function fields (`BGW_MAXLEN`).
pub const BGW_MAXLEN: usize = 96;
/// `BGW_NEVER_RESTART`.
pub const BGW_NEVER_RESTART: i32 = -1;
/// `BGW_DEFAULT_RESTART_INTERVAL` (seconds).
pub const BGW_DEFAULT_RESTART_INTERVAL: i32 = 60;
/// `BGWORKER_SHMEM_ACCESS`.
pub const BGWORKER_SHMEM_ACCESS: u32 = 0x0001;
/// `BGWORKER_BACKEND_DATABASE_CONNECTION`.
pub const BGWORKER_BACKEND_DATABASE_CONNECTION: u32 = 0x0002;
/// `BGWORKER_CLASS_PARALLEL`.
pub const BGWORKER_CLASS_PARALLEL: u32 = 0x0010;
/// The longest restart interval PostgreSQL accepts: one day, in seconds.
const MAX_RESTART_INTERVAL: u32 = 86_400;

/// When a worker may start (`BgWorkerStartTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BgwStartTime {
    /// With the postmaster, before start-up is over.
    PostmasterStart = 0,
    /// Once the database is consistent.
    ConsistentState = 1,
    /// Once recovery is finished (normal running).
    RecoveryFinished = 2,
}

impl BgwStartTime {
    pub(crate) fn from_raw(v: u32) -> Option<Self> {
        match v {
            0 => Some(BgwStartTime::PostmasterStart),
            1 => Some(BgwStartTime::ConsistentState),
            2 => Some(BgwStartTime::RecoveryFinished),
            _ => None,
        }
    }
}

/// What happens when a worker exits with code 1 (`bgw_restart_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// `BGW_NEVER_RESTART`: forgotten.
    Never,
    /// Restarted this many seconds after it exited.
    After(u32),
}

impl RestartPolicy {
    pub(crate) fn to_raw(self) -> i32 {
        match self {
            RestartPolicy::Never => BGW_NEVER_RESTART,
            RestartPolicy::After(s) => i32::try_from(s).unwrap_or(i32::MAX),
        }
    }

    pub(crate) fn from_raw(v: i32) -> Option<Self> {
        match v {
            BGW_NEVER_RESTART => Some(RestartPolicy::Never),
            s if (0..=MAX_RESTART_INTERVAL as i32).contains(&s) => {
                Some(RestartPolicy::After(s as u32))
            }
            _ => None,
        }
    }
}

/// A worker's registration (PostgreSQL's `BackgroundWorker`), process-local form. The text
/// fields are cut to `BGW_MAXLEN - 1` bytes when stored in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgWorkerSpec {
    /// `bgw_name`: appears in log lines.
    pub name: String,
    /// `bgw_type`.
    pub type_name: String,
    /// `bgw_function_name`: the worker code, looked up by the postmaster among the server's
    /// compiled-in entry points.
    pub function: String,
    /// `bgw_flags`.
    pub flags: u32,
    /// `bgw_start_time`.
    pub start_time: BgwStartTime,
    /// `bgw_restart_time`.
    pub restart: RestartPolicy,
    /// `bgw_main_arg`.
    pub main_arg: i64,
    /// `bgw_notify_pid` (0: none): the process the postmaster SIGUSR1s when the worker
    /// starts or stops.
    pub notify_pid: i32,
}

/// Errors of worker registration and of waiting for a worker, with PostgreSQL's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BgWorkerError {
    /// No `BGWORKER_SHMEM_ACCESS`.
    #[error("background worker \"{0}\": background workers without shared memory access are not supported")]
    NoShmemAccess(String),
    /// Database access asked for at postmaster start.
    #[error(
        "background worker \"{0}\": cannot request database access if starting at postmaster start"
    )]
    DatabaseAtStart(String),
    /// A restart interval out of range.
    #[error("background worker \"{0}\": invalid restart interval")]
    BadRestart(String),
    /// A parallel worker that asks to be restarted.
    #[error("background worker \"{0}\": parallel workers may not be configured for restart")]
    ParallelRestart(String),
    /// Not compiled into the server (the postmaster's check).
    #[error("could not find function \"{0}\" in the server's built-in background workers")]
    UnknownFunction(String),
    /// Too many static workers (the postmaster's check).
    #[error("too many background workers")]
    TooMany {
        /// `max_worker_processes`.
        limit: u32,
    },
    /// A static registration after shared memory was created (the postmaster's check).
    #[error("cannot register background worker \"{0}\" after shmem init")]
    AfterShmemInit(String),
    /// A dynamic registration in a process that has no postmaster to start the worker
    /// (PostgreSQL's `RegisterDynamicBackgroundWorker` returns false when not under one).
    #[error("cannot register background worker \"{0}\": no postmaster is running")]
    NoPostmaster(String),
    /// A wait was given up because the caller had an interrupt to serve.
    #[error("wait for background worker interrupted")]
    Interrupted,
    /// Shared memory or the wait machinery failed.
    #[error("{0}")]
    Shmem(String),
}

impl BgWorkerError {
    /// The SQLSTATE.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            BgWorkerError::TooMany { .. } => "53400",
            BgWorkerError::UnknownFunction(_) => "42883",
            BgWorkerError::NoPostmaster(_) => "55000",
            BgWorkerError::Interrupted => "57014",
            BgWorkerError::AfterShmemInit(_) | BgWorkerError::Shmem(_) => "XX000",
            _ => "22023",
        }
    }
}

impl BgWorkerSpec {
    /// A worker running `function` with PostgreSQL's defaults (shared memory access, start
    /// when recovery is finished, restart after 60 s).
    pub fn new(name: &str, function: &str) -> Self {
        BgWorkerSpec {
            name: name.to_owned(),
            type_name: name.to_owned(),
            function: function.to_owned(),
            flags: BGWORKER_SHMEM_ACCESS,
            start_time: BgwStartTime::RecoveryFinished,
            restart: RestartPolicy::After(BGW_DEFAULT_RESTART_INTERVAL as u32),
            main_arg: 0,
            notify_pid: 0,
        }
    }

    /// PostgreSQL's `SanityCheckBackgroundWorker` (which does not look the function up).
    pub fn sanity_check(&self) -> Result<(), BgWorkerError> {
        let n = || self.name.clone();
        if self.flags & BGWORKER_SHMEM_ACCESS == 0 {
            return Err(BgWorkerError::NoShmemAccess(n()));
        }
        if self.flags & BGWORKER_BACKEND_DATABASE_CONNECTION != 0
            && self.start_time == BgwStartTime::PostmasterStart
        {
            return Err(BgWorkerError::DatabaseAtStart(n()));
        }
        if let RestartPolicy::After(s) = self.restart {
            if s > MAX_RESTART_INTERVAL {
                return Err(BgWorkerError::BadRestart(n()));
            }
            if self.flags & BGWORKER_CLASS_PARALLEL != 0 {
                return Err(BgWorkerError::ParallelRestart(n()));
            }
        }
        Ok(())
    }

    /// One-line encoding for an exec'd child's environment.
    pub fn encode(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('\u{1f}', "\\u");
        [
            esc(&self.name),
            esc(&self.type_name),
            esc(&self.function),
            self.flags.to_string(),
            (self.start_time as u32).to_string(),
            self.restart.to_raw().to_string(),
            self.main_arg.to_string(),
            self.notify_pid.to_string(),
        ]
        .join("\u{1f}")
    }

    /// The inverse of [`encode`](Self::encode).
    pub fn decode(s: &str) -> Option<Self> {
        let f: Vec<&str> = s.split('\u{1f}').collect();
        if f.len() != 8 {
            return None;
        }
        Some(BgWorkerSpec {
            name: unescape(f[0])?,
            type_name: unescape(f[1])?,
            function: unescape(f[2])?,
            flags: f[3].parse().ok()?,
            start_time: BgwStartTime::from_raw(f[4].parse().ok()?)?,
            restart: RestartPolicy::from_raw(f[5].parse().ok()?)?,
            main_arg: f[6].parse().ok()?,
            notify_pid: f[7].parse().ok()?,
        })
    }
}

/// Undoes [`BgWorkerSpec::encode`]'s escapes (`\\` and `\u`); `None` for any other escape.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'u' => out.push('\u{1f}'),
            _ => return None,
        }
    }
    Some(out)
}
