//! Named injection points: places in the server where a test can make a process fail, wait,
//! sleep or crash on demand, to exercise paths that are otherwise hard to reach.
//!
//! Mirrors PostgreSQL 17's `utils/misc/injection_point.c` plus the action callbacks of its
//! `src/test/modules/injection_points` module. Code marks a point with
//! [`injection_point!`]`("name")`; a test attaches an [`Action`] to that name at run time:
//!
//! | action      | what the process does when it passes the point                        |
//! |-------------|-----------------------------------------------------------------------|
//! | `error`     | the point returns `InjectionError::Triggered`: the caller's error path (a backend: ERROR/FATAL to the client) |
//! | `notice`    | logs `notice triggered for injection point <name>` and carries on      |
//! | `wait`      | blocks until `injection_points_wakeup(name)` or a detach (or it is killed) |
//! | `panic`     | a Rust panic: in a server process the panic hook logs `PANIC:` and aborts |
//! | `abort`     | logs `PANIC:` and aborts at once, without the panic machinery          |
//! | `sleep N`   | sleeps N milliseconds (`sleep N ms` is accepted too)                   |
//!
//! # Compiled in only on request
//! Everything is behind the cargo feature `injection_points`. Without it (the default, and every
//! release build) [`injection_point!`] expands to `Ok(())`, [`attach_shared`] and
//! [`shmem_init`] are empty inline functions, [`shmem_size`] is 0 (so the main segment's layout
//! does not change) and [`sql_function`] knows no function. The crates that place points
//! (`dsm`, `procarray`, `tcop`, `postmaster`) forward a feature of the same name.
//!
//! # Where attachments live
//! ```text
//!  PGIPC_INJECTION_POINTS="name=action;name=action"   process-local, read once per process;
//!        (environment, inherited by every child,       the only source in the postmaster and
//!         fork or exec)                                 before shared memory exists
//!
//!  main segment: "Injection Points" (feature on only)   attach/detach/wakeup from any process
//!  ┌ spinlock ┬ entry[0] ... entry[MAX_INJECTION_POINTS-1] ┐   (SQL: injection_points_attach,
//!  │          │ state · action · arg · wakeups · waiting ·  │    _detach, _wakeup)
//!  │          │ name (64 bytes)                              │   seen by children that called
//!  └──────────┴──────────────────────────────────────────────┘   attach_shared
//! ```
//! An attach in one session therefore affects every process, as in PostgreSQL (which keeps the
//! attached points in shared memory). The postmaster never calls [`attach_shared`]: it does not
//! trust shared memory after a crash, so its points (e.g. in the crash-restart reset) take their
//! actions from the environment only. The shared table is recreated with the segment, so a
//! crash restart detaches every point attached through it; environment attachments persist.
//!
//! # Concurrency contract
//! Every entry field is written under the table's spinlock; a passing process copies its entry
//! under the same lock and acts without it. `wakeups` only grows (a waiter returns when it
//! changes); `waiting` counts the processes blocked at the point, so a test can tell when a
//! process has arrived.
//!
//! # What this crate does not do
//! * No dynamic loading of callbacks (PostgreSQL's `InjectionPointAttach` takes a library and a
//!   function name): the actions are the fixed set above.
//! * No per-point arguments and no "run once" or per-process conditions.
//! * A `wait` polls its entry every few milliseconds instead of sleeping on a condition
//!   variable, and does not watch for postmaster death (children die with the postmaster
//!   through `PR_SET_PDEATHSIG`).
//!
//! Key items: [`injection_point!`], [`Action`], [`InjectionError`], [`attach_shared`],
//! [`sql_function`], [`ENV_VAR`]; with the feature also `attach`, `detach`, `wakeup`, `waiting`
//! and `InjectionPointTable`.

#[cfg(feature = "injection_points")]
mod active;

#[cfg(feature = "injection_points")]
pub use active::{
    attach, detach, shmem_init, waiting, wakeup, InjectionPointEntry, InjectionPointTable,
};

use std::fmt;
use std::time::Duration;

/// Whether injection points are compiled in.
pub const ENABLED: bool = cfg!(feature = "injection_points");

/// The environment variable a process reads its own attachments from:
/// `name=action` pairs separated by `;`, e.g. `dsm-create=wait;backend-start=sleep 200`.
pub const ENV_VAR: &str = "PGIPC_INJECTION_POINTS";

/// The name of the shared table in the Shmem Index.
pub const TABLE_NAME: &str = "Injection Points";

/// How many points can be attached through shared memory at once.
pub const MAX_INJECTION_POINTS: usize = 16;

/// Longest point name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// What an attached point does (see the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Return `InjectionError::Triggered` to the caller.
    Error,
    /// Log a notice and carry on.
    Notice,
    /// Block until woken up or detached.
    Wait,
    /// Panic (the server's panic hook logs PANIC and aborts).
    Panic,
    /// Log PANIC and abort immediately.
    Abort,
    /// Sleep this many milliseconds.
    Sleep(u32),
}

impl Action {
    /// Parses `error`, `notice`, `wait`, `panic`, `abort`, `sleep N` or `sleep N ms`
    /// (case-insensitive); `None` for anything else.
    pub fn parse(s: &str) -> Option<Action> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "error" => Action::Error,
            "notice" => Action::Notice,
            "wait" => Action::Wait,
            "panic" => Action::Panic,
            "abort" => Action::Abort,
            _ => {
                let rest = s.strip_prefix("sleep")?.trim();
                let rest = rest.strip_suffix("ms").unwrap_or(rest).trim();
                Action::Sleep(rest.parse().ok()?)
            }
        })
    }

    /// The sleep, for [`Action::Sleep`].
    pub fn duration(self) -> Option<Duration> {
        match self {
            Action::Sleep(ms) => Some(Duration::from_millis(u64::from(ms))),
            _ => None,
        }
    }

    #[cfg_attr(not(feature = "injection_points"), allow(dead_code))]
    fn code(self) -> (u32, u32) {
        match self {
            Action::Error => (1, 0),
            Action::Notice => (2, 0),
            Action::Wait => (3, 0),
            Action::Panic => (4, 0),
            Action::Abort => (5, 0),
            Action::Sleep(ms) => (6, ms),
        }
    }

    #[cfg_attr(not(feature = "injection_points"), allow(dead_code))]
    fn from_code(code: u32, arg: u32) -> Option<Action> {
        Some(match code {
            1 => Action::Error,
            2 => Action::Notice,
            3 => Action::Wait,
            4 => Action::Panic,
            5 => Action::Abort,
            6 => Action::Sleep(arg),
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Error => f.write_str("error"),
            Action::Notice => f.write_str("notice"),
            Action::Wait => f.write_str("wait"),
            Action::Panic => f.write_str("panic"),
            Action::Abort => f.write_str("abort"),
            Action::Sleep(ms) => write!(f, "sleep {ms}"),
        }
    }
}

/// Without the feature no injection point can fail: the error type has no values, so callers'
/// error paths for it compile to nothing (and no message text is linked in).
#[cfg(not(feature = "injection_points"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InjectionError {}

#[cfg(not(feature = "injection_points"))]
impl fmt::Display for InjectionError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

#[cfg(not(feature = "injection_points"))]
impl std::error::Error for InjectionError {}

#[cfg(not(feature = "injection_points"))]
impl InjectionError {
    /// The SQLSTATE a client sees for this error (no values exist without the feature).
    pub const fn sqlstate(&self) -> &'static str {
        match *self {}
    }
}

/// Failures of injection points: the `error` action, and bad requests to the shared table.
#[cfg(feature = "injection_points")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectionError {
    /// A point attached to `error` was passed (PostgreSQL's injection_error text).
    #[error("error triggered for injection point {name}")]
    Triggered {
        /// The point.
        name: String,
    },
    /// The action is not one of the known ones.
    #[error("invalid action \"{action}\" for injection point {name}")]
    InvalidAction {
        /// The point.
        name: String,
        /// What was asked for.
        action: String,
    },
    /// The name is empty or longer than [`MAX_NAME_LEN`] bytes.
    #[error("injection point name \"{name}\" is empty or longer than {MAX_NAME_LEN} bytes")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// Every entry of the shared table is taken.
    #[error("too many injection points attached (at most {MAX_INJECTION_POINTS})")]
    TableFull,
    /// Detach or wakeup of a point that is not attached.
    #[error("could not find injection point {name}")]
    NotAttached {
        /// The point.
        name: String,
    },
    /// This process has no shared table (the feature is off, or shared memory was not set up
    /// with it).
    #[error("injection points are not available in this process")]
    Unavailable,
}

#[cfg(feature = "injection_points")]
impl InjectionError {
    /// The SQLSTATE a client sees for this error.
    pub const fn sqlstate(&self) -> &'static str {
        match self {
            InjectionError::Triggered { .. } | InjectionError::Unavailable => "XX000",
            InjectionError::InvalidAction { .. } | InjectionError::InvalidName { .. } => "22023",
            InjectionError::TableFull => "53000",
            InjectionError::NotAttached { .. } => "42704",
        }
    }
}

/// Marks an injection point named by a string literal; evaluates to
/// `Result<(), InjectionError>` (`Err` only for the `error` action).
///
/// Without the `injection_points` feature it expands to `Ok(())` and nothing else.
#[cfg(feature = "injection_points")]
#[macro_export]
macro_rules! injection_point {
    ($name:literal) => {
        $crate::run($name)
    };
}

/// Marks an injection point named by a string literal; evaluates to
/// `Result<(), InjectionError>` (`Err` only for the `error` action).
///
/// Without the `injection_points` feature (as here) it expands to `Ok(())` and nothing else.
#[cfg(not(feature = "injection_points"))]
#[macro_export]
macro_rules! injection_point {
    ($name:literal) => {
        ::core::result::Result::<(), $crate::InjectionError>::Ok(())
    };
}

/// Runs the action attached to `name`, if any (what [`injection_point!`] expands to).
#[cfg(feature = "injection_points")]
#[doc(hidden)]
#[track_caller]
pub fn run(name: &'static str) -> Result<(), InjectionError> {
    active::run(name)
}

/// Bytes the shared table needs in the main segment (0 without the feature).
pub const fn shmem_size() -> usize {
    if ENABLED {
        // The struct plus the allocator's cache-line alignment.
        SHARED_TABLE_SIZE + 128
    } else {
        0
    }
}

#[cfg(feature = "injection_points")]
const SHARED_TABLE_SIZE: usize = std::mem::size_of::<InjectionPointTable>();
#[cfg(not(feature = "injection_points"))]
const SHARED_TABLE_SIZE: usize = 0;

/// Creates (postmaster) or finds (exec'd child) the shared table; does nothing without the
/// feature.
#[cfg(not(feature = "injection_points"))]
#[inline(always)]
pub fn shmem_init(_shmem: &pgipc_shmem::Shmem) -> Result<(), pgipc_shmem::ShmemError> {
    Ok(())
}

/// Makes this process see the attachments of the shared table in `shmem` (every child of the
/// postmaster calls it once shared memory is mapped; never the postmaster). Without the
/// feature, or when `shmem` has no table, it does nothing.
#[inline(always)]
pub fn attach_shared(shmem: &pgipc_shmem::Shmem) {
    #[cfg(feature = "injection_points")]
    active::attach_shared(shmem);
    #[cfg(not(feature = "injection_points"))]
    let _ = shmem;
}

/// Whether `name` is one of the SQL functions of [`sql_function`] (never, without the feature).
#[inline(always)]
pub fn sql_function_exists(name: &str) -> bool {
    ENABLED && SQL_FUNCTIONS.contains(&name)
}

/// The names [`sql_function`] answers to.
pub const SQL_FUNCTIONS: [&str; 3] = [
    "injection_points_attach",
    "injection_points_detach",
    "injection_points_wakeup",
];

/// The SQL functions the backend offers when points are compiled in:
/// `injection_points_attach(name, action)`, `injection_points_detach(name)` and
/// `injection_points_wakeup(name)` (all `void`). Returns `None` when `name` is not one of them
/// (always, without the feature), else the outcome of the call.
#[inline(always)]
pub fn sql_function(name: &str, args: &[String]) -> Option<Result<(), InjectionError>> {
    #[cfg(feature = "injection_points")]
    {
        active::sql_function(name, args)
    }
    #[cfg(not(feature = "injection_points"))]
    {
        let _ = (name, args);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<Action>) {
        assert_eq!(Action::parse(input), expected, "{input:?}");
    }

    #[test]
    fn actions_parse() {
        check("error", Some(Action::Error));
        check(" NOTICE ", Some(Action::Notice));
        check("wait", Some(Action::Wait));
        check("panic", Some(Action::Panic));
        check("abort", Some(Action::Abort));
        check("sleep 250", Some(Action::Sleep(250)));
        check("sleep 250 ms", Some(Action::Sleep(250)));
        check("sleep250ms", Some(Action::Sleep(250)));
        check("sleep", None);
        check("sleep -1", None);
        check("explode", None);
        check("", None);
    }

    #[test]
    fn codes_round_trip() {
        for a in [
            Action::Error,
            Action::Notice,
            Action::Wait,
            Action::Panic,
            Action::Abort,
            Action::Sleep(7),
        ] {
            let (c, arg) = a.code();
            assert_eq!(Action::from_code(c, arg), Some(a));
            assert_eq!(Action::parse(&a.to_string()), Some(a));
        }
        assert_eq!(Action::from_code(0, 0), None);
    }

    #[test]
    fn without_the_feature_nothing_is_compiled_in() {
        assert_eq!(ENABLED, cfg!(feature = "injection_points"));
        if !ENABLED {
            assert_eq!(shmem_size(), 0);
            assert_eq!(sql_function("injection_points_attach", &[]), None);
            assert_eq!(injection_point!("anything"), Ok(()));
        }
    }
}
