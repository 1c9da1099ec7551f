//! How a backend sleeps on its client socket: one wait-event set over the socket, the process
//! latch (set by the signal handlers and by other processes) and postmaster death, as
//! PostgreSQL's `secure_read`/`secure_write` wait on `FeBeWaitSet`. Unlike PostgreSQL, a read
//! that finds nothing first watches the socket for a few microseconds while the CPUs are idle
//! ([`CLIENT_READ_SPIN`]).

use pgipc_latch::LatchOwner;
use pgipc_libpq::{Interest, Readiness, SocketWait};
use pgipc_waiteventset::{WaitEvent, WaitEventSet, WaitEvents};
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `PG_WAIT_CLIENT`, the wait-event class of client reads and writes.
const PG_WAIT_CLIENT: u32 = 0x0600_0000;
/// `WAIT_EVENT_CLIENT_READ`.
pub(crate) const WAIT_EVENT_CLIENT_READ: u32 = PG_WAIT_CLIENT;
/// `WAIT_EVENT_CLIENT_WRITE`.
pub(crate) const WAIT_EVENT_CLIENT_WRITE: u32 = PG_WAIT_CLIENT | 1;

/// How long a backend that found no client message watches its socket before it sleeps.
///
/// Beyond PostgreSQL, which sleeps at once. A client that sends its next statement as soon as
/// it has the last result (a driver's pipeline, pgbench) answers within tens of microseconds;
/// a sleep and wake-up across CPUs costs about as much again, on both sides of every
/// statement. The watch yields the CPU between looks (`sched_yield`), and it is skipped when
/// the scheduler preempted this backend since its last wait (the CPUs have more runnable
/// processes than they can run: spinning would take time from them) or when only one CPU is
/// online ([`spin_enabled`]).
const CLIENT_READ_SPIN: Duration = Duration::from_micros(30);

/// Whether [`CLIENT_READ_SPIN`] applies: more than one CPU online. Asked once, in the
/// postmaster (see `prewarm_for_backends`), so that forked backends inherit the answer.
pub(crate) fn spin_enabled() -> bool {
    static MULTI_CPU: OnceLock<bool> = OnceLock::new();
    *MULTI_CPU.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// This process's involuntary context switches so far (`ru_nivcsw`): the scheduler took the
/// CPU from it for another runnable process.
fn involuntary_switches() -> i64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable `rusage`; getrusage(RUSAGE_SELF) only writes it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return -1;
    }
    // SAFETY: getrusage returned 0, so it filled the struct (and it was zeroed before).
    unsafe { ru.assume_init() }.ru_nivcsw
}

/// What [`spin_for_input`] found.
#[derive(Debug, PartialEq, Eq)]
enum Spin {
    /// Input arrived.
    Input,
    /// The time ran out, or the latch was set.
    Nothing,
    /// A `sched_yield` handed the CPU to another process: the CPUs are busy.
    Contended,
}

/// Watches `sock` for input for up to [`CLIENT_READ_SPIN`]. Stops early when the latch is set
/// (an interrupt to serve: the wait that follows reports it) or when a yield shows that other
/// processes wanted the CPU.
fn spin_for_input(sock: BorrowedFd<'_>, latch: &pgipc_latch::Latch) -> Spin {
    use rustix::event::{poll, PollFd, PollFlags};
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let start = Instant::now();
    loop {
        if latch.is_set() {
            return Spin::Nothing;
        }
        let mut fds = [PollFd::new(&sock, PollFlags::IN)];
        if matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0) {
            return Spin::Input;
        }
        let before_yield = Instant::now();
        if before_yield.duration_since(start) >= CLIENT_READ_SPIN {
            return Spin::Nothing;
        }
        rustix::thread::sched_yield();
        if before_yield.elapsed() >= YIELD_GAVE_CPU {
            return Spin::Contended;
        }
    }
}

/// A `sched_yield` that returns later than this ran another process in between.
const YIELD_GAVE_CPU: Duration = Duration::from_micros(10);

/// Waits without watching after [`Spin::Contended`] or a preemption. Each back-off that
/// follows another without a watch that found input in between is twice as long, up to
/// [`SPIN_BACKOFF_MAX`]: on CPUs that stay busy the watch, and the `getrusage` that decides
/// it, are left out of almost every wait.
const SPIN_BACKOFF_WAITS: u32 = 16;

/// The longest back-off, in waits.
const SPIN_BACKOFF_MAX: u32 = 1024;

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
    /// `ru_nivcsw` at the previous wait ([`CLIENT_READ_SPIN`]'s condition).
    preempted_at: i64,
    /// Waits left to go without watching the socket first (the CPUs were found busy).
    spin_backoff: u32,
    /// The length of the next back-off.
    backoff_len: u32,
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
            preempted_at: -1,
            spin_backoff: 0,
            backoff_len: SPIN_BACKOFF_WAITS,
            postmaster_died: false,
        })
    }

    /// Starts a back-off ([`SPIN_BACKOFF_WAITS`]) and doubles the next one.
    fn back_off(&mut self) {
        self.spin_backoff = self.backoff_len;
        self.backoff_len = (self.backoff_len * 2).min(SPIN_BACKOFF_MAX);
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
        sock: BorrowedFd<'_>,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> io::Result<Readiness> {
        if interest == Interest::Readable && spin_enabled() {
            if self.spin_backoff > 0 {
                // Backing off: no system call here. The last wait of the back-off takes the
                // baseline that the next one compares with.
                self.spin_backoff -= 1;
                if self.spin_backoff == 0 {
                    self.preempted_at = involuntary_switches();
                }
            } else {
                let preempted = involuntary_switches();
                if preempted != self.preempted_at {
                    self.preempted_at = preempted;
                    self.back_off();
                } else {
                    match spin_for_input(sock, self.latch.latch()) {
                        Spin::Input => {
                            self.backoff_len = SPIN_BACKOFF_WAITS;
                            return Ok(Readiness::Ready);
                        }
                        Spin::Nothing => {}
                        Spin::Contended => self.back_off(),
                    }
                }
            }
        }
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
