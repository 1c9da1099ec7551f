//! The wait event set: one epoll instance plus the bookkeeping PostgreSQL keeps beside it.

use crate::error::{sys, WaitEventSetError};
use crate::events::{WaitEvent, WaitEvents};
use crate::postmaster_death::{self, PostmasterStatus};
use crate::report::Reporting;
use crate::support;
use pgipc_latch::{Latch, LatchOwner, OwnedLatch, Prepared, SleepMode};
use rustix::event::epoll;
use rustix::io::Errno;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Entry {
    events: WaitEvents,
    fd: Option<RawFd>,
    user_data: u64,
}

/// A set of conditions to wait for together: at most one latch, any number of sockets,
/// postmaster death; waited on with a timeout (PostgreSQL's `WaitEventSet`).
///
/// `'l` is the lifetime of what the set watches: the latch's [`OwnedLatch`] and the sockets
/// must outlive it (so a socket cannot be closed while registered).
///
/// How it sleeps: when the set's only wake-up source is its latch (no socket events; a
/// postmaster-death event only if the parent-death signal is armed), it sleeps on the latch's
/// futex ([`SleepMode::Futex`]); otherwise in `epoll_wait`, with the latch woken by `SIGURG`
/// through the signalfd registered in the epoll set ([`SleepMode::Signal`]).
pub struct WaitEventSet<'l> {
    epoll: OwnedFd,
    capacity: usize,
    entries: Vec<Entry>,
    latch: Option<LatchOwner<'l>>,
    latch_pos: Option<usize>,
    pm_pos: Option<usize>,
    exit_on_pm_death: bool,
    /// Socket entries with a non-empty mask (decides between futex and epoll sleeps).
    active_sockets: usize,
    ret: Vec<epoll::Event>,
    report: Option<&'l AtomicU32>,
    _fds: PhantomData<BorrowedFd<'l>>,
}

impl fmt::Debug for WaitEventSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitEventSet")
            .field("epoll", &self.epoll)
            .field("capacity", &self.capacity)
            .field("entries", &self.entries)
            .field("latch", &self.latch)
            .field("latch_pos", &self.latch_pos)
            .field("pm_pos", &self.pm_pos)
            .field("exit_on_pm_death", &self.exit_on_pm_death)
            .finish()
    }
}

fn epoll_flags(events: WaitEvents) -> epoll::EventFlags {
    use epoll::EventFlags as F;
    // Errors and hang-ups are always reported by epoll; ask for them explicitly all the same.
    let mut f = F::ERR | F::HUP;
    if events.contains(WaitEvents::SOCKET_READABLE) {
        f |= F::IN;
    }
    if events.contains(WaitEvents::SOCKET_WRITEABLE) {
        f |= F::OUT;
    }
    if events.contains(WaitEvents::SOCKET_CLOSED) {
        f |= F::RDHUP;
    }
    f
}

/// What a socket entry reports for the epoll flags that fired (PostgreSQL's rules: errors and
/// hang-ups count as readiness so the caller finds them by doing the I/O).
fn socket_events(wanted: WaitEvents, got: epoll::EventFlags) -> WaitEvents {
    use epoll::EventFlags as F;
    let mut r = WaitEvents::NONE;
    if wanted.contains(WaitEvents::SOCKET_READABLE) && got.intersects(F::IN | F::ERR | F::HUP) {
        r |= WaitEvents::SOCKET_READABLE;
    }
    if wanted.contains(WaitEvents::SOCKET_WRITEABLE) && got.intersects(F::OUT | F::ERR | F::HUP) {
        r |= WaitEvents::SOCKET_WRITEABLE;
    }
    if wanted.contains(WaitEvents::SOCKET_CLOSED) && got.intersects(F::RDHUP | F::ERR | F::HUP) {
        r |= WaitEvents::SOCKET_CLOSED;
    }
    r
}

const PM_FLAGS: WaitEvents = WaitEvents::from_bits(
    WaitEvents::POSTMASTER_DEATH.bits() | WaitEvents::EXIT_ON_PM_DEATH.bits(),
);

impl<'l> WaitEventSet<'l> {
    /// An empty set with room for `capacity` events (PostgreSQL's `CreateWaitEventSet`).
    pub fn new(capacity: usize) -> Result<Self, WaitEventSetError> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(sys("epoll_create1"))?;
        Ok(WaitEventSet {
            epoll,
            capacity,
            entries: Vec::with_capacity(capacity),
            latch: None,
            latch_pos: None,
            pm_pos: None,
            exit_on_pm_death: false,
            active_sockets: 0,
            ret: Vec::with_capacity(capacity.max(1)),
            report: None,
            _fds: PhantomData,
        })
    }

    /// Reports this set's waits into `slot` instead of the process-wide slot
    /// ([`set_wait_event_slot`](crate::set_wait_event_slot)).
    pub fn report_wait_events_to(&mut self, slot: &'l AtomicU32) {
        self.report = Some(slot);
    }

    /// The number of registered events (`GetNumRegisteredWaitEvents`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no event is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The capacity given to [`new`](Self::new).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether a socket's peer close can be reported (`WaitEventSetCanReportClosed`): always,
    /// with epoll.
    pub fn can_report_closed() -> bool {
        true
    }

    /// Registers an event and returns its position (PostgreSQL's `AddWaitEventToSet`).
    ///
    /// * `LATCH_SET` alone, with `latch` (from [`OwnedLatch::as_owner`]);
    /// * `POSTMASTER_DEATH` or `EXIT_ON_PM_DEATH` alone (needs an installed
    ///   [`PostmasterDeathWatch`](crate::PostmasterDeathWatch));
    /// * socket flags (`SOCKET_READABLE`, `SOCKET_WRITEABLE`, `SOCKET_CONNECTED`,
    ///   `SOCKET_ACCEPT`, `SOCKET_CLOSED`) with `fd`.
    ///
    /// Misuse is an error value with PostgreSQL's text; a closed `fd` is `epoll_ctl() failed`.
    pub fn add(
        &mut self,
        events: WaitEvents,
        fd: Option<BorrowedFd<'l>>,
        latch: Option<LatchOwner<'l>>,
        user_data: u64,
    ) -> Result<usize, WaitEventSetError> {
        self.add_inner(events, fd, latch, user_data, false)
    }

    /// Registers the latch (`LATCH_SET`); see [`add`](Self::add).
    pub fn add_latch<L: Deref<Target = Latch>>(
        &mut self,
        latch: &'l OwnedLatch<L>,
        user_data: u64,
    ) -> Result<usize, WaitEventSetError> {
        self.add(
            WaitEvents::LATCH_SET,
            None,
            Some(latch.as_owner()),
            user_data,
        )
    }

    /// Registers a socket for `events`; see [`add`](Self::add).
    pub fn add_socket(
        &mut self,
        events: WaitEvents,
        fd: BorrowedFd<'l>,
        user_data: u64,
    ) -> Result<usize, WaitEventSetError> {
        self.add(events, Some(fd), None, user_data)
    }

    /// Registers postmaster death: reported as `POSTMASTER_DEATH`, or, with `exit`, the process
    /// exits with code 1 through `pgipc_ipc::proc_exit`.
    pub fn add_postmaster_death(
        &mut self,
        exit: bool,
        user_data: u64,
    ) -> Result<usize, WaitEventSetError> {
        let ev = if exit {
            WaitEvents::EXIT_ON_PM_DEATH
        } else {
            WaitEvents::POSTMASTER_DEATH
        };
        self.add(ev, None, None, user_data)
    }

    /// A latch entry with no latch yet (the cached `wait_latch` set swaps latches per call).
    pub(crate) fn add_latch_slot(&mut self) -> Result<usize, WaitEventSetError> {
        self.add_inner(WaitEvents::LATCH_SET, None, None, 0, true)
    }

    fn add_inner(
        &mut self,
        mut events: WaitEvents,
        fd: Option<BorrowedFd<'l>>,
        latch: Option<LatchOwner<'l>>,
        user_data: u64,
        allow_no_latch: bool,
    ) -> Result<usize, WaitEventSetError> {
        if self.entries.len() >= self.capacity {
            return Err(WaitEventSetError::TooManyEvents {
                capacity: self.capacity,
            });
        }
        if events.is_empty() || events.has_unknown_bits() || events.contains(WaitEvents::TIMEOUT) {
            return Err(WaitEventSetError::InvalidEvents {
                events: events.bits(),
            });
        }
        let pos = self.entries.len();
        let mut raw_fd = None;
        if events.contains(WaitEvents::LATCH_SET) {
            if events != WaitEvents::LATCH_SET {
                return Err(WaitEventSetError::LatchEventsOnlySet);
            }
            if self.latch_pos.is_some() {
                return Err(WaitEventSetError::MoreThanOneLatch);
            }
            match latch {
                Some(l) => l.check_owner()?,
                None if allow_no_latch => {}
                None => return Err(WaitEventSetError::LatchWithoutLatch),
            }
            let sfd = support::signal_fd()?;
            epoll::add(
                &self.epoll,
                sfd,
                epoll::EventData::new_u64(pos as u64),
                epoll::EventFlags::IN | epoll::EventFlags::ERR | epoll::EventFlags::HUP,
            )
            .map_err(sys("epoll_ctl()"))?;
            self.latch = latch;
            self.latch_pos = Some(pos);
        } else if latch.is_some() {
            return Err(WaitEventSetError::LatchEventsOnlySet);
        } else if events.intersects(PM_FLAGS) {
            if events != WaitEvents::POSTMASTER_DEATH && events != WaitEvents::EXIT_ON_PM_DEATH {
                return Err(WaitEventSetError::InvalidEvents {
                    events: events.bits(),
                });
            }
            if self.pm_pos.is_some() {
                return Err(WaitEventSetError::InvalidEvents {
                    events: events.bits(),
                });
            }
            let wfd = postmaster_death::watch_fd()?;
            epoll::add(
                &self.epoll,
                wfd,
                epoll::EventData::new_u64(pos as u64),
                epoll::EventFlags::IN | epoll::EventFlags::ERR | epoll::EventFlags::HUP,
            )
            .map_err(sys("epoll_ctl()"))?;
            self.exit_on_pm_death = events == WaitEvents::EXIT_ON_PM_DEATH;
            events = WaitEvents::POSTMASTER_DEATH;
            self.pm_pos = Some(pos);
        } else {
            let Some(fd) = fd else {
                return Err(WaitEventSetError::SocketWithoutSocket);
            };
            epoll::add(
                &self.epoll,
                fd,
                epoll::EventData::new_u64(pos as u64),
                epoll_flags(events),
            )
            .map_err(sys("epoll_ctl()"))?;
            raw_fd = Some(fd.as_raw_fd());
            self.active_sockets += 1;
        }
        self.entries.push(Entry {
            events,
            fd: raw_fd,
            user_data,
        });
        Ok(pos)
    }

    /// Changes what an event waits for (PostgreSQL's `ModifyWaitEvent`).
    ///
    /// The postmaster-death entry may only switch between `POSTMASTER_DEATH` and
    /// `EXIT_ON_PM_DEATH`; the latch entry keeps `LATCH_SET` and may change its latch (`None`
    /// disables it, with no system call); a socket entry may take any socket flags, including
    /// none (disabled).
    pub fn modify(
        &mut self,
        pos: usize,
        events: WaitEvents,
        latch: Option<LatchOwner<'l>>,
    ) -> Result<(), WaitEventSetError> {
        let len = self.entries.len();
        let Some(entry) = self.entries.get(pos).copied() else {
            return Err(WaitEventSetError::InvalidPosition { pos, len });
        };
        if Some(pos) == self.pm_pos {
            if events == WaitEvents::POSTMASTER_DEATH {
                self.exit_on_pm_death = false;
            } else if events == WaitEvents::EXIT_ON_PM_DEATH {
                self.exit_on_pm_death = true;
            } else {
                return Err(WaitEventSetError::CannotRemovePostmasterDeath);
            }
            return Ok(());
        }
        if Some(pos) == self.latch_pos {
            if events != WaitEvents::LATCH_SET {
                return Err(WaitEventSetError::CannotModifyLatchEvent);
            }
            if let Some(l) = latch {
                l.check_owner()?;
            }
            self.latch = latch;
            return Ok(());
        }
        if latch.is_some()
            || events.has_unknown_bits()
            || events.intersects(!WaitEvents::SOCKET_MASK)
        {
            return Err(WaitEventSetError::InvalidEvents {
                events: events.bits(),
            });
        }
        if events == entry.events {
            return Ok(());
        }
        let Some(raw) = entry.fd else {
            return Err(WaitEventSetError::SocketWithoutSocket);
        };
        // SAFETY: the descriptor was borrowed for 'l at `add` and the set does not outlive 'l.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        epoll::modify(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(pos as u64),
            epoll_flags(events),
        )
        .map_err(sys("epoll_ctl()"))?;
        match (entry.events.is_empty(), events.is_empty()) {
            (true, false) => self.active_sockets += 1,
            (false, true) => self.active_sockets -= 1,
            _ => {}
        }
        self.entries[pos].events = events;
        Ok(())
    }

    /// Waits until at least one event fires or `timeout` elapses (`None`: no limit; zero: poll)
    /// and fills `occurred` with what fired; returns how many (0: timeout). PostgreSQL's
    /// `WaitEventSetWait`. `wait_event_info` is visible in the report slot for the whole call.
    ///
    /// The timeout is a total: signals and spurious wake-ups do not extend it. An empty
    /// `occurred` returns 0 at once.
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
        occurred: &mut [WaitEvent],
        wait_event_info: u32,
    ) -> Result<usize, WaitEventSetError> {
        let latch = self.latch;
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::LatchWaits);
        self.wait_with(latch, timeout, occurred, wait_event_info)
    }

    /// [`wait`](Self::wait) with `latch` in the latch entry for this call only.
    pub(crate) fn wait_with(
        &mut self,
        latch: Option<LatchOwner<'_>>,
        timeout: Option<Duration>,
        occurred: &mut [WaitEvent],
        wait_event_info: u32,
    ) -> Result<usize, WaitEventSetError> {
        if occurred.is_empty() {
            return Ok(0);
        }
        let latch = match self.latch_pos {
            Some(_) => latch,
            None => None,
        };
        if let Some(l) = latch {
            l.check_owner()?;
        }
        let _reporting = Reporting::start(self.report, wait_event_info);
        let futex_mode = latch.is_some_and(|l| {
            self.active_sockets == 0
                && (self.pm_pos.is_none() || postmaster_death::death_signal_wakes(l.latch()))
        });
        if !futex_mode {
            support::ensure_thread_ready()?;
        }
        // No clock read at all for an unbounded wait (the common latch wait).
        let start = timeout.map(|_| Instant::now());
        let elapsed = || start.map_or(Duration::ZERO, |s| s.elapsed());
        loop {
            let remaining = timeout.map(|t| t.saturating_sub(elapsed()));
            let n = match latch {
                Some(l) if futex_mode => self.wait_once_futex(l, remaining, occurred),
                _ => self.wait_once_epoll(latch, remaining, occurred)?,
            };
            if n > 0 {
                return Ok(n);
            }
            if remaining == Some(Duration::ZERO) || timeout.is_some_and(|t| elapsed() >= t) {
                return Ok(0);
            }
        }
    }

    fn latch_event(&self) -> WaitEvent {
        let pos = self.latch_pos.unwrap_or(0);
        WaitEvent {
            pos,
            events: WaitEvents::LATCH_SET,
            fd: None,
            user_data: self.entries[pos].user_data,
        }
    }

    /// When postmaster death is watched and the postmaster is gone: exits or records the event.
    fn check_postmaster(&self, occurred: &mut [WaitEvent], n: &mut usize) {
        if self.pm_pos.is_some() && !postmaster_death::postmaster_is_alive() {
            self.postmaster_died(occurred, n);
        }
    }

    fn postmaster_died(&self, occurred: &mut [WaitEvent], n: &mut usize) {
        if self.exit_on_pm_death {
            pgipc_ipc::proc_exit(1);
        }
        let pos = self.pm_pos.unwrap_or(0);
        if *n < occurred.len() {
            occurred[*n] = WaitEvent {
                pos,
                events: WaitEvents::POSTMASTER_DEATH,
                fd: None,
                user_data: self.entries[pos].user_data,
            };
            *n += 1;
        }
    }

    /// One sleep on the latch's futex (latch-only sets).
    ///
    /// Publish, then check: `sleep_unless` publishes the sleep before it looks at the
    /// postmaster-death flag, and the death-signal handler raises the flag before it sets the
    /// latch (see [`postmaster_death`]), so a death is never slept through.
    fn wait_once_futex(
        &mut self,
        latch: LatchOwner<'_>,
        remaining: Option<Duration>,
        occurred: &mut [WaitEvent],
    ) -> usize {
        let mut n = 0;
        let watch_pm = self.pm_pos.is_some();
        latch.sleep_unless(remaining, || watch_pm && postmaster_death::possibly_dead());
        // Postmaster death first: the death-signal handler sets the latch to wake us, and a
        // one-slot caller must hear about the death rather than that latch.
        if watch_pm && postmaster_death::possibly_dead() {
            self.check_postmaster(occurred, &mut n);
        }
        if latch.latch().is_set() && n < occurred.len() {
            occurred[n] = self.latch_event();
            n += 1;
        }
        n
    }

    /// One `epoll_wait` (sets with sockets or without a latch).
    fn wait_once_epoll(
        &mut self,
        latch: Option<LatchOwner<'_>>,
        remaining: Option<Duration>,
        occurred: &mut [WaitEvent],
    ) -> Result<usize, WaitEventSetError> {
        let mut n = 0;
        let mut prepared = false;
        if let Some(l) = latch {
            match l.prepare_sleep(SleepMode::Signal) {
                Prepared::AlreadySet => {
                    occurred[0] = self.latch_event();
                    n = 1;
                    if n == occurred.len() {
                        return Ok(n);
                    }
                }
                Prepared::MaySleep => prepared = true,
            }
        }
        // With the latch already reported, only harvest what else is ready.
        let timeout = if n > 0 {
            Some(Duration::ZERO)
        } else {
            remaining
        };
        let ts = timeout.map(|d| {
            // Whole milliseconds, rounded up, as epoll_wait counts them.
            let ms = d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i64;
            rustix::time::Timespec {
                tv_sec: ms / 1000,
                tv_nsec: (ms % 1000) * 1_000_000,
            }
        });
        self.ret.clear();
        let want = (occurred.len() - n).min(self.capacity.max(1));
        self.ret.reserve(want);
        let spare = &mut self.ret.spare_capacity_mut()[..want];
        let result = epoll::wait(&self.epoll, spare, ts.as_ref());
        if prepared {
            if let Some(l) = latch {
                l.finish_sleep();
            }
        }
        let got = match result {
            Ok((got, _)) => got.len(),
            Err(Errno::INTR) => 0,
            Err(errno) => {
                return Err(WaitEventSetError::Sys {
                    call: "epoll_wait()",
                    errno,
                })
            }
        };
        // SAFETY: epoll_wait initialised the first `got` elements of the spare capacity.
        unsafe { self.ret.set_len(got) };
        let mut latch_reported = n > 0;
        for i in 0..got {
            if n >= occurred.len() {
                break;
            }
            let ev = self.ret[i];
            let pos = ev.data.u64() as usize;
            let Some(entry) = self.entries.get(pos).copied() else {
                continue;
            };
            if Some(pos) == self.latch_pos {
                support::signal_fd().and_then(crate::sys::drain_signalfd)?;
                if let Some(l) = latch {
                    if !latch_reported && l.latch().is_set() {
                        occurred[n] = self.latch_event();
                        n += 1;
                        latch_reported = true;
                    }
                }
            } else if Some(pos) == self.pm_pos {
                // Confirm with a read: epoll may report spuriously.
                match postmaster_death::postmaster_death_watch().map(|w| w.status()) {
                    Some(Ok(PostmasterStatus::Alive)) => {}
                    _ => self.postmaster_died(occurred, &mut n),
                }
            } else {
                let fired = socket_events(entry.events, ev.flags);
                if !fired.is_empty() {
                    occurred[n] = WaitEvent {
                        pos,
                        events: fired,
                        fd: entry.fd,
                        user_data: entry.user_data,
                    };
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

impl AsFd for WaitEventSet<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}
