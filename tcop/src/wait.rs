//! How a backend sleeps on its client socket: one wait-event set over the socket, the process
//! latch (set by the signal handlers and by other processes) and postmaster death, as
//! PostgreSQL's `secure_read`/`secure_write` wait on `FeBeWaitSet`.

use pgipc_latch::LatchOwner;
use pgipc_libpq::{Interest, Readiness, SocketWait};
use pgipc_waiteventset::{WaitEvent, WaitEventSet, WaitEvents};
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Instant;

/// `PG_WAIT_CLIENT`, the wait-event class of client reads and writes.
const PG_WAIT_CLIENT: u32 = 0x0600_0000;
/// `WAIT_EVENT_CLIENT_READ`.
pub(crate) const WAIT_EVENT_CLIENT_READ: u32 = PG_WAIT_CLIENT;
/// `WAIT_EVENT_CLIENT_WRITE`.
pub(crate) const WAIT_EVENT_CLIENT_WRITE: u32 = PG_WAIT_CLIENT | 1;

const LATCH_DATA: u64 = 1;
const PM_DATA: u64 = 2;
const SOCK_DATA: u64 = 3;

/// The backend's [`SocketWait`].
pub(crate) struct BackendWait<'s> {
    set: WaitEventSet<'s>,
    latch: LatchOwner<'s>,
    latch_pos: usize,
    sock_pos: usize,
    interest: Interest,
    /// Postmaster death was seen; the session must end.
    pub(crate) postmaster_died: bool,
}

impl std::fmt::Debug for BackendWait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendWait")
            .field("interest", &self.interest)
            .field("postmaster_died", &self.postmaster_died)
            .finish_non_exhaustive()
    }
}

fn io_err(e: pgipc_waiteventset::WaitEventSetError) -> io::Error {
    io::Error::other(e)
}

impl<'s> BackendWait<'s> {
    /// A set over `sock`, `latch` and, when this process runs under a postmaster, its death.
    pub(crate) fn new(sock: BorrowedFd<'s>, latch: LatchOwner<'s>) -> io::Result<Self> {
        let mut set = WaitEventSet::new(3).map_err(io_err)?;
        let latch_pos = set
            .add(WaitEvents::LATCH_SET, None, Some(latch), LATCH_DATA)
            .map_err(io_err)?;
        if pgipc_waiteventset::postmaster_death::under_postmaster() {
            set.add_postmaster_death(false, PM_DATA).map_err(io_err)?;
        }
        let sock_pos = set
            .add_socket(WaitEvents::SOCKET_READABLE, sock, SOCK_DATA)
            .map_err(io_err)?;
        Ok(BackendWait {
            set,
            latch,
            latch_pos,
            sock_pos,
            interest: Interest::Readable,
            postmaster_died: false,
        })
    }

    /// Waits on `latch` from now on (the PGPROC's, once the backend has one).
    pub(crate) fn switch_latch(&mut self, latch: LatchOwner<'s>) -> io::Result<()> {
        self.set
            .modify(self.latch_pos, WaitEvents::LATCH_SET, Some(latch))
            .map_err(io_err)?;
        self.latch = latch;
        Ok(())
    }
}

impl SocketWait for BackendWait<'_> {
    fn wait(
        &mut self,
        _sock: BorrowedFd<'_>,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> io::Result<Readiness> {
        if interest != self.interest {
            let ev = match interest {
                Interest::Readable => WaitEvents::SOCKET_READABLE,
                Interest::Writable => WaitEvents::SOCKET_WRITEABLE,
            };
            self.set.modify(self.sock_pos, ev, None).map_err(io_err)?;
            self.interest = interest;
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let info = match interest {
            Interest::Readable => WAIT_EVENT_CLIENT_READ,
            Interest::Writable => WAIT_EVENT_CLIENT_WRITE,
        };
        let mut out = [WaitEvent::EMPTY; 3];
        let n = self.set.wait(timeout, &mut out, info).map_err(io_err)?;
        if n == 0 {
            return Ok(Readiness::TimedOut);
        }
        let mut interrupted = false;
        for ev in &out[..n] {
            match ev.user_data {
                LATCH_DATA => {
                    // Reset before the caller looks at its flags: a flag raised after this
                    // point sets the latch again.
                    self.latch.reset();
                    interrupted = true;
                }
                PM_DATA => {
                    self.postmaster_died = true;
                    interrupted = true;
                }
                _ => {}
            }
        }
        Ok(if interrupted {
            Readiness::Interrupted
        } else {
            Readiness::Ready
        })
    }
}
