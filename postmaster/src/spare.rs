//! Spare backends: client backends forked before their connection arrives (`spare_backends`,
//! beyond PostgreSQL, which forks at accept; 0 turns them off).
//!
//! ```text
//!  postmaster                                    spare backend (a forked child, kind Backend)
//!  ServerLoop, PM_RUN: fork spares up to     ──► common child start, title "spare backend",
//!    spare_backends, each with a socketpair        the session's signal handlers, then a wait
//!                                                  on {channel, latch, postmaster death}
//!  accept ─► hand_over: the client socket    ──► the socket arrives ─► backend_main: the
//!    in one SCM_RIGHTS message, our end closed     session, exactly as a backend forked now
//!  reload, shutdown, crash: retire (close    ──► end of file or SIGTERM ─► exit 0
//!    every idle spare's channel, SIGTERM)
//! ```
//!
//! Why: a fork copies the postmaster's page tables, and the child then faults in the pages
//! of code and data it touches first; with a spare, the client waits for none of that. A
//! connection that finds no spare (a storm, `spare_backends = 0`, `exec_backend = on`) is
//! forked at accept as before.
//!
//! A spare holds a child slot from the backends' pool (twice the connection limit, so spares
//! never keep a session out) and nothing in shared memory: no PGPROC, ProcSignal slot or
//! backend-status entry. SQL sees it only once its client has connected.
//!
//! Invariants:
//! - A connection is never served by a backend forked under older settings: a reload retires
//!   every idle spare before the postmaster forks new ones (and before it hands over another
//!   connection). Signals that reach a spare raise the session's flags, so a SIGHUP between
//!   the hand-over and the session's start is not lost.
//! - A spare exits with code 0 or 1 (end of file, SIGTERM, postmaster death), which the
//!   reaper treats as a clean exit; anything else is a crash like any backend's.
//! - Only the postmaster and the spare hold a channel's ends: every forked child closes its
//!   copies of the idle spares' channels, as it closes the listen sockets.

use crate::elog::{elog, Severity};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_waiteventset::{WaitEvent, WaitEventSet, WaitEvents};
use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The one byte sent with the client socket.
const HAND_OVER: u8 = b'C';

/// The postmaster's idle spares, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    idle: VecDeque<Spare>,
}

/// One idle spare: its pid and the postmaster's end of its channel.
#[derive(Debug)]
pub(crate) struct Spare {
    pub(crate) pid: i32,
    channel: OwnedFd,
}

impl Spares {
    /// How many are idle.
    pub(crate) fn len(&self) -> usize {
        self.idle.len()
    }

    /// Whether none is idle.
    pub(crate) fn is_empty(&self) -> bool {
        self.idle.is_empty()
    }

    /// Adds a spare just forked.
    pub(crate) fn push(&mut self, pid: i32, channel: OwnedFd) {
        self.idle.push_back(Spare { pid, channel });
    }

    /// The oldest idle spare, to hand a connection to.
    pub(crate) fn take(&mut self) -> Option<Spare> {
        self.idle.pop_front()
    }

    /// Forgets an idle spare that exited; whether `pid` was one.
    pub(crate) fn forget(&mut self, pid: i32) -> bool {
        let before = self.idle.len();
        self.idle.retain(|s| s.pid != pid);
        self.idle.len() != before
    }

    /// The postmaster's ends of the idle spares' channels (a forked child closes its copies).
    pub(crate) fn channel_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.idle.iter().map(|s| s.channel.as_raw_fd())
    }

    /// Closes every idle spare's channel: each sees end of file and exits with code 0. Each
    /// also gets SIGTERM, which ends a waiting spare the same way, so that nothing holding a
    /// copy of a channel could keep a retired spare waiting (and a smart shutdown waiting for
    /// it). Returns how many were retired.
    pub(crate) fn retire_all(&mut self) -> usize {
        let n = self.idle.len();
        for s in self.idle.drain(..) {
            // An idle spare has not been reaped (the reaper forgets it first), so its pid is
            // still its own.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(s.pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        n
    }
}

impl Spare {
    /// Sends `client` to the spare; it becomes that connection's backend. On failure (the
    /// spare died, or its queue is full) gives the socket back, for a fork at accept.
    pub(crate) fn hand_over(self, client: OwnedFd) -> Result<i32, (std::io::Error, OwnedFd)> {
        let fds = [client.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [IoSlice::new(&[HAND_OVER])];
        match sendmsg::<()>(
            self.channel.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            // The message holds its own reference to the socket; ours and the channel close
            // now (the spare reads the message before it sees end of file).
            Ok(_) => Ok(self.pid),
            Err(e) => Err((std::io::Error::from(e), client)),
        }
    }
}

/// A channel for a new spare: (the postmaster's end, the child's end). Both close on exec.
pub(crate) fn channel() -> std::io::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)
}

/// Why a spare stopped waiting without a client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpareWaitError {
    /// The postmaster retired it (closed the channel) or exited.
    #[error("retired")]
    Retired,
    /// SIGTERM arrived.
    #[error("terminated")]
    Terminated,
    /// The postmaster died.
    #[error("postmaster died")]
    PostmasterDied,
    /// The signal handlers or the wait could not be set up.
    #[error("{0}")]
    Setup(String),
    /// The channel broke, or carried no socket.
    #[error("could not receive the client connection: {0}")]
    Receive(String),
}

const CHANNEL_DATA: u64 = 1;
const LATCH_DATA: u64 = 2;
const PM_DATA: u64 = 3;

/// The spare's side: waits for the postmaster to hand over a client socket. Installs the
/// session's signal handlers first (see [`pgipc_tcop::install_signal_handlers_early`]).
pub(crate) fn wait_for_client(channel: OwnedFd) -> Result<OwnedFd, SpareWaitError> {
    pgipc_tcop::install_signal_handlers_early()
        .map_err(|e| SpareWaitError::Setup(format!("could not install signal handlers: {e}")))?;
    // A process-local latch for the wait, set by the handlers (the session installs its own).
    let latch: &'static Latch = Box::leak(Box::new(Latch::new()));
    let owned: &'static OwnedLatch<&'static Latch> = Box::leak(Box::new(
        OwnedLatch::own(latch).map_err(|e| SpareWaitError::Setup(e.to_string()))?,
    ));
    pgipc_latch::install_my_latch(latch);
    let setup = |e: pgipc_waiteventset::WaitEventSetError| SpareWaitError::Setup(e.to_string());
    let mut set = WaitEventSet::new(3).map_err(setup)?;
    set.add_latch(owned, LATCH_DATA).map_err(setup)?;
    if pgipc_waiteventset::postmaster_death::under_postmaster() {
        set.add_postmaster_death(false, PM_DATA).map_err(setup)?;
    }
    set.add_socket(WaitEvents::SOCKET_READABLE, channel.as_fd(), CHANNEL_DATA)
        .map_err(setup)?;
    let mut out = [WaitEvent::EMPTY; 3];
    loop {
        // The channel first: a spare handed a client before a SIGTERM serves it (the session
        // sees the flag and says why it ends, as any backend would).
        match receive(channel.as_raw_fd()) {
            Ok(Some(client)) => return Ok(client),
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        if pgipc_tcop::die_pending() {
            return Err(SpareWaitError::Terminated);
        }
        let n = set.wait(None, &mut out, 0).map_err(setup)?;
        for ev in &out[..n] {
            match ev.user_data {
                LATCH_DATA => owned.reset(),
                PM_DATA => return Err(SpareWaitError::PostmasterDied),
                _ => {}
            }
        }
    }
}

/// One non-blocking look at the channel: the client socket, nothing yet, or why not.
fn receive(channel: RawFd) -> Result<Option<OwnedFd>, SpareWaitError> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = match recvmsg::<()>(
        channel,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(m) => m,
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
        Err(e) => return Err(SpareWaitError::Receive(e.to_string())),
    };
    if msg.bytes == 0 {
        return Err(SpareWaitError::Retired);
    }
    let mut client = None;
    for c in msg
        .cmsgs()
        .map_err(|e| SpareWaitError::Receive(e.to_string()))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel installed `fd` in this process for this message; nothing
                // else refers to it. Extra descriptors (there should be none) close on drop.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if client.is_none() {
                    client = Some(owned);
                }
            }
        }
    }
    match client {
        Some(c) if byte[0] == HAND_OVER => Ok(Some(c)),
        _ => Err(SpareWaitError::Receive("no socket in the message".into())),
    }
}

/// Logs why a spare ends without a client, when that is worth a line (a retired or
/// terminated spare ends silently).
pub(crate) fn report_end(e: &SpareWaitError) -> i32 {
    match e {
        SpareWaitError::Retired | SpareWaitError::Terminated => 0,
        SpareWaitError::PostmasterDied => 1,
        SpareWaitError::Setup(_) | SpareWaitError::Receive(_) => {
            elog(Severity::Log, &format_args!("spare backend: {e}"));
            1
        }
    }
}
