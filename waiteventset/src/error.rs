//! The crate's one error type. Texts are PostgreSQL's where it has one.

use pgipc_latch::LatchError;
use rustix::io::Errno;

/// A wait-event-set failure or misuse, reported as a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitEventSetError {
    /// The latch is not (or no longer) owned by this process.
    #[error(transparent)]
    Latch(#[from] LatchError),
    /// A second latch event in one set.
    #[error("cannot wait on more than one latch")]
    MoreThanOneLatch,
    /// `LATCH_SET` combined with other bits in one event.
    #[error("latch events only support being set")]
    LatchEventsOnlySet,
    /// `LATCH_SET` without a latch.
    #[error("cannot wait on latch without a specified latch")]
    LatchWithoutLatch,
    /// Socket bits without a socket.
    #[error("cannot wait on socket event without a socket")]
    SocketWithoutSocket,
    /// An event with no bits PostgreSQL knows, or with `TIMEOUT` (not an event).
    #[error("invalid wait event flags {events:#x}")]
    InvalidEvents {
        /// The flags given.
        events: u32,
    },
    /// Modifying the postmaster-death entry into something else.
    #[error("cannot remove postmaster death event")]
    CannotRemovePostmasterDeath,
    /// Changing a latch entry's event mask.
    #[error("cannot modify latch event")]
    CannotModifyLatchEvent,
    /// More events than the set was created for.
    #[error("too many events in wait event set (capacity {capacity})")]
    TooManyEvents {
        /// The capacity given to `WaitEventSet::new`.
        capacity: usize,
    },
    /// `modify` of a position that does not exist.
    #[error("invalid wait event position {pos} (set has {len} events)")]
    InvalidPosition {
        /// The position given.
        pos: usize,
        /// The number of registered events.
        len: usize,
    },
    /// A postmaster-death event in a process that has no postmaster death watch installed.
    #[error("cannot wait for postmaster death: this process has no postmaster death watch")]
    NoPostmasterDeathWatch,
    /// `wait_latch` in a process under a postmaster without a postmaster-death flag.
    #[error(
        "WaitLatch under a postmaster must request WL_EXIT_ON_PM_DEATH or WL_POSTMASTER_DEATH"
    )]
    MissingPostmasterDeath,
    /// A system call failed; `call` names it as PostgreSQL's message does.
    #[error("{call} failed: {errno}")]
    Sys {
        /// The call, e.g. `epoll_ctl()`.
        call: &'static str,
        /// Its errno.
        errno: Errno,
    },
    /// The signalfd reported end of file.
    #[error("unexpected EOF on signalfd")]
    SignalfdEof,
    /// Data in the postmaster-death pipe (nobody may write to it).
    #[error("unexpected data in postmaster death monitoring pipe")]
    UnexpectedPipeData,
    /// Reading the postmaster-death pipe failed.
    #[error("read on postmaster death monitoring pipe failed: {errno}")]
    PipeRead {
        /// Its errno.
        errno: Errno,
    },
    /// The inherited postmaster-death descriptor named in the environment is unusable.
    #[error("invalid postmaster death descriptor in {var}: {value:?}")]
    BadInheritedFd {
        /// The environment variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
}

pub(crate) fn sys(call: &'static str) -> impl FnOnce(Errno) -> WaitEventSetError {
    move |errno| WaitEventSetError::Sys { call, errno }
}
