//! The latch itself: the shared flag, its owner, and the set/reset/sleep protocol.

use crate::sync::{fence, AtomicI32, AtomicU32, Ordering};
use crate::sys;
use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

/// How the owner of a latch is sleeping right now, as published in [`Latch`]'s `maybe_sleeping`
/// word; a setter reads it to choose the wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SleepMode {
    /// Not sleeping: a set only raises the flag, with no system call.
    Awake = 0,
    /// Sleeping (or about to) in `FUTEX_WAIT` on the latch's `is_set` word: a setter calls
    /// `FUTEX_WAKE` on it.
    Futex = 1,
    /// Sleeping (or about to) in `epoll_wait` with the wake-up signal blocked and read through a
    /// signalfd: a setter sends `SIGURG` to the sleeping thread.
    Signal = 2,
}

impl SleepMode {
    fn from_raw(v: u32) -> SleepMode {
        match v {
            1 => SleepMode::Futex,
            2 => SleepMode::Signal,
            _ => SleepMode::Awake,
        }
    }
}

/// Whether a waiter may go to sleep, from [`OwnedLatch::prepare_sleep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// The latch is set: do not sleep (nothing was published, no need to call `finish_sleep`).
    AlreadySet,
    /// The sleep mode is published and the latch was still clear after the barrier: sleep in
    /// that mode, then call [`OwnedLatch::finish_sleep`].
    MaySleep,
}

/// What [`LatchOwner::sleep_unless`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepOutcome {
    /// The latch was already set after the sleep mode was published: no sleep.
    AlreadySet,
    /// The caller's `stop` condition held after the sleep mode was published: no sleep.
    Stopped,
    /// Slept (or would have, with a zero timeout) and woke: by a set, a signal, a timeout or
    /// spuriously. The caller re-checks everything.
    Slept,
}

/// Why [`OwnedLatch::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchWait {
    /// The latch is set (it stays set until the owner resets it).
    Set,
    /// The timeout elapsed with the latch clear.
    TimedOut,
}

/// Misuse of a latch, reported as a value. Texts are PostgreSQL's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LatchError {
    /// `own` on a latch that another process (or this one) already owns.
    #[error("latch already owned by PID {pid}")]
    AlreadyOwned {
        /// The current owner.
        pid: i32,
    },
    /// Waiting on (or registering for waiting) a latch whose recorded owner is not this process,
    /// e.g. after a fork or after the postmaster re-initialised the latch.
    #[error("cannot wait on a latch owned by another process")]
    NotOwner {
        /// The owner recorded in the latch (0: nobody).
        owner: i32,
    },
}

/// A latch: a boolean that any process may set and only its owner may reset and sleep on.
///
/// It lives in shared memory (one per proc slot, PostgreSQL's `PGPROC.procLatch`) or in
/// process-local memory ([`OwnedLatch::new_local`]). A `&Latch` only lets you [`set`](Self::set)
/// it; waiting and resetting need the [`OwnedLatch`] that [`OwnedLatch::own`] hands out.
///
/// # Layout
/// `#[repr(C)]`, 16 bytes, 4-byte aligned, valid when all-zero (= clear, unowned):
///
/// | offset | field | written by |
/// |---|---|---|
/// | 0 | `is_set: AtomicU32` (0/1; also the futex word) | setters (1), owner (0) |
/// | 4 | `maybe_sleeping: AtomicU32` ([`SleepMode`]) | owner only |
/// | 8 | `owner_pid: AtomicI32` (0 = unowned) | `own`/`disown`/`init_shared` |
/// | 12 | `sleeper_tid: AtomicI32` (thread to signal in [`SleepMode::Signal`]) | owner only |
///
/// # Synchronization
/// No lock: the protocol is two Dekker-style barriers (see the crate documentation). Ownership
/// changes use compare-and-swap, so two processes can never both own a latch.
#[repr(C)]
pub struct Latch {
    pub(crate) is_set: AtomicU32,
    pub(crate) maybe_sleeping: AtomicU32,
    pub(crate) owner_pid: AtomicI32,
    pub(crate) sleeper_tid: AtomicI32,
    #[cfg(loom)]
    model: sys::FutexModel,
}

// SAFETY: #[repr(C)], four 32-bit atomics, all-zero is "clear and unowned", no pointers, every
// mutation is atomic (the loom build is never placed in shared memory).
#[cfg(not(loom))]
unsafe impl pgipc_shmem::ShmemSafe for Latch {}

impl Default for Latch {
    fn default() -> Self {
        Latch::new()
    }
}

impl fmt::Debug for Latch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latch")
            .field("is_set", &self.is_set())
            .field("sleep_mode", &self.sleep_mode())
            .field("owner_pid", &self.owner_pid())
            .finish()
    }
}

impl Latch {
    /// A clear, unowned latch (the same as all-zero memory). PostgreSQL's `InitSharedLatch`.
    #[cfg(not(loom))]
    pub const fn new() -> Latch {
        Latch {
            is_set: AtomicU32::new(0),
            maybe_sleeping: AtomicU32::new(0),
            owner_pid: AtomicI32::new(0),
            sleeper_tid: AtomicI32::new(0),
        }
    }

    /// A clear, unowned latch (loom build).
    #[cfg(loom)]
    pub fn new() -> Latch {
        Latch {
            is_set: AtomicU32::new(0),
            maybe_sleeping: AtomicU32::new(0),
            owner_pid: AtomicI32::new(0),
            sleeper_tid: AtomicI32::new(0),
            model: sys::FutexModel::default(),
        }
    }

    /// Re-initialises a latch in place to clear and unowned (`InitSharedLatch`), as the
    /// postmaster does for every proc slot when it (re)creates shared memory. Nobody may be
    /// using the latch; a process that still held it gets [`LatchError::NotOwner`] on its next
    /// wait.
    pub fn init_shared(&self) {
        self.is_set.store(0, Ordering::Relaxed);
        self.maybe_sleeping.store(0, Ordering::Relaxed);
        self.sleeper_tid.store(0, Ordering::Relaxed);
        self.owner_pid.store(0, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Clears the ownership a dead process left behind (postmaster reclaim of a proc slot).
    ///
    /// Only when the recorded owner is `dead_pid`: the latch is then cleared and unowned and
    /// `true` is returned. A latch owned by anyone else is left alone.
    pub fn reclaim_from(&self, dead_pid: i32) -> bool {
        if dead_pid == 0
            || self
                .owner_pid
                .compare_exchange(dead_pid, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        self.maybe_sleeping.store(0, Ordering::Relaxed);
        self.sleeper_tid.store(0, Ordering::Relaxed);
        self.is_set.store(0, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        true
    }

    /// Sets the latch and wakes its owner if the owner sleeps on it (PostgreSQL's `SetLatch`).
    ///
    /// Callable from any process that maps the latch, and from a signal handler: it only touches
    /// atomics and, when the owner sleeps, makes one system call (`FUTEX_WAKE` through rustix's
    /// raw system calls, which never write `errno`, or `tgkill`, around which `errno` is saved
    /// and restored), so the interrupted code sees no change.
    /// Setting a latch that is already set, or whose owner is awake, makes no system call.
    pub fn set(&self) {
        // Publish the caller's work before looking at the flag: if the flag is already set we
        // return at once, and the owner's reset barrier then guarantees it sees our work.
        fence(Ordering::SeqCst);
        if self.is_set.load(Ordering::Relaxed) != 0 {
            return;
        }
        self.is_set.store(1, Ordering::Relaxed);
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::LatchSets);
        // Pairs with the fence in `prepare_sleep`: either the owner sees is_set, or we see its
        // published sleep mode.
        fence(Ordering::SeqCst);
        match SleepMode::from_raw(self.maybe_sleeping.load(Ordering::Acquire)) {
            SleepMode::Awake => {}
            SleepMode::Futex => {
                pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::LatchWakeups);
                self.futex_wake()
            }
            SleepMode::Signal => {
                let pid = self.owner_pid.load(Ordering::Relaxed);
                let tid = self.sleeper_tid.load(Ordering::Relaxed);
                if pid > 0 {
                    pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::LatchWakeups);
                    sys::send_wakeup(pid, tid);
                }
            }
        }
    }

    /// Whether the latch is set right now.
    pub fn is_set(&self) -> bool {
        self.is_set.load(Ordering::Acquire) != 0
    }

    /// The owner's pid, or `None` when unowned.
    pub fn owner_pid(&self) -> Option<i32> {
        match self.owner_pid.load(Ordering::Relaxed) {
            0 => None,
            p => Some(p),
        }
    }

    /// How the owner sleeps right now (diagnostics and tests).
    pub fn sleep_mode(&self) -> SleepMode {
        SleepMode::from_raw(self.maybe_sleeping.load(Ordering::Relaxed))
    }

    #[cfg(not(loom))]
    fn futex_wake(&self) {
        sys::futex_wake(&self.is_set);
    }

    #[cfg(loom)]
    fn futex_wake(&self) {
        self.model.wake();
    }

    #[cfg(not(loom))]
    fn futex_wait(&self, timeout: Option<Duration>) {
        sys::futex_wait(&self.is_set, 0, timeout);
    }

    #[cfg(loom)]
    fn futex_wait(&self, _timeout: Option<Duration>) {
        self.model.wait(&self.is_set, 0);
    }
}

/// The right to reset and sleep on a latch: exactly one per latch, held by the owning process.
///
/// `L` is whatever keeps the latch alive: `&Latch`, a shared-memory handle such as
/// `pgipc_shmem::Shared<Latch>`, or `Box<Latch>` for a process-local latch. It dereferences to
/// the [`Latch`], so the owner can also [`set`](Latch::set) it. Dropping it disowns the latch
/// (PostgreSQL's `DisownLatch`).
pub struct OwnedLatch<L: Deref<Target = Latch>> {
    latch: L,
    pid: i32,
}

impl<L: Deref<Target = Latch>> fmt::Debug for OwnedLatch<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedLatch")
            .field("latch", &*self.latch)
            .field("pid", &self.pid)
            .finish()
    }
}

impl OwnedLatch<Box<Latch>> {
    /// A process-local latch owned by this process (PostgreSQL's `InitLatch`), for example the
    /// one a process uses as "my latch" before it has a proc slot.
    pub fn new_local() -> Self {
        let latch = Box::new(Latch::new());
        let pid = sys::my_pid();
        latch.owner_pid.store(pid, Ordering::Relaxed);
        OwnedLatch { latch, pid }
    }
}

impl<L: Deref<Target = Latch>> OwnedLatch<L> {
    /// Takes ownership of a latch for this process (PostgreSQL's `OwnLatch`).
    ///
    /// Fails with [`LatchError::AlreadyOwned`] naming the owner if the latch has one; the check
    /// and the claim are one compare-and-swap, so two processes cannot both succeed.
    pub fn own(latch: L) -> Result<Self, LatchError> {
        let pid = sys::my_pid();
        match latch
            .owner_pid
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(OwnedLatch { latch, pid }),
            Err(owner) => Err(LatchError::AlreadyOwned { pid: owner }),
        }
    }

    /// Gives the latch up (the same as dropping this handle).
    pub fn disown(self) {}

    /// The latch (also reachable through `Deref`).
    pub fn latch(&self) -> &Latch {
        &self.latch
    }

    /// The borrowed owner's view of this latch, to hand to a wait set.
    pub fn as_owner(&self) -> LatchOwner<'_> {
        LatchOwner {
            latch: &self.latch,
            pid: self.pid,
        }
    }

    /// See [`LatchOwner::check_owner`].
    pub fn check_owner(&self) -> Result<(), LatchError> {
        self.as_owner().check_owner()
    }

    /// See [`LatchOwner::reset`].
    pub fn reset(&self) {
        self.as_owner().reset()
    }

    /// See [`LatchOwner::wait`].
    pub fn wait(&self, timeout: Option<Duration>) -> Result<LatchWait, LatchError> {
        self.as_owner().wait(timeout)
    }

    /// See [`LatchOwner::prepare_sleep`].
    pub fn prepare_sleep(&self, mode: SleepMode) -> Prepared {
        self.as_owner().prepare_sleep(mode)
    }

    /// See [`LatchOwner::sleep_unless`].
    pub fn sleep_unless(
        &self,
        timeout: Option<Duration>,
        stop: impl FnOnce() -> bool,
    ) -> SleepOutcome {
        self.as_owner().sleep_unless(timeout, stop)
    }

    /// See [`LatchOwner::futex_sleep`].
    pub fn futex_sleep(&self, timeout: Option<Duration>) {
        self.as_owner().futex_sleep(timeout)
    }

    /// See [`LatchOwner::finish_sleep`].
    pub fn finish_sleep(&self) {
        self.as_owner().finish_sleep()
    }
}

/// A borrowed owner's right to a latch, from [`OwnedLatch::as_owner`]: what a wait set stores.
///
/// It can only be made from an [`OwnedLatch`] and cannot outlive it, so holding one proves
/// (at the time it was made) that this process owns the latch; [`check_owner`](Self::check_owner)
/// re-checks it cheaply before every sleep.
#[derive(Clone, Copy)]
pub struct LatchOwner<'a> {
    latch: &'a Latch,
    pid: i32,
}

impl fmt::Debug for LatchOwner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatchOwner")
            .field("latch", self.latch)
            .field("pid", &self.pid)
            .finish()
    }
}

impl<'a> LatchOwner<'a> {
    /// The latch.
    pub fn latch(&self) -> &'a Latch {
        self.latch
    }

    /// Checks that the latch's recorded owner is still this process (not a forked copy, not a
    /// latch the postmaster has re-initialised under us).
    pub fn check_owner(&self) -> Result<(), LatchError> {
        let owner = self.latch.owner_pid.load(Ordering::Relaxed);
        if owner == self.pid && owner == sys::my_pid() {
            Ok(())
        } else {
            Err(LatchError::NotOwner { owner })
        }
    }

    /// Clears the latch (PostgreSQL's `ResetLatch`).
    ///
    /// The barrier after the clear orders it before the caller's next look at its work flags,
    /// so a setter that found the latch still set (and therefore sent nothing) has published
    /// its work before that look.
    pub fn reset(&self) {
        debug_assert_eq!(self.latch.sleep_mode(), SleepMode::Awake);
        self.latch.is_set.store(0, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Sleeps until the latch is set or `timeout` elapses (`None`: no limit; zero: just look).
    ///
    /// The sleep is a shared-futex wait on the latch word, so a setter in another process wakes
    /// it with one `FUTEX_WAKE`. This waits on the latch alone; to wait also for sockets or
    /// postmaster death use the `waiteventset` crate (`wait_latch`, `WaitEventSet`).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<LatchWait, LatchError> {
        self.check_owner()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if self.prepare_sleep(SleepMode::Futex) == Prepared::AlreadySet {
                return Ok(LatchWait::Set);
            }
            if remaining == Some(Duration::ZERO) {
                self.finish_sleep();
                return Ok(LatchWait::TimedOut);
            }
            self.futex_sleep(remaining);
            self.finish_sleep();
            if self.latch.is_set.load(Ordering::Relaxed) != 0 {
                return Ok(LatchWait::Set);
            }
        }
    }

    /// First half of a sleep, for waiters that block elsewhere (the `waiteventset` crate):
    /// if the latch is clear, publish `mode` so that setters know how to wake us, then re-check
    /// after a full barrier.
    ///
    /// On [`Prepared::MaySleep`] the caller blocks (in [`futex_sleep`](Self::futex_sleep) for
    /// [`SleepMode::Futex`], in `epoll_wait` with `SIGURG` blocked and a signalfd registered for
    /// [`SleepMode::Signal`]) and then calls [`finish_sleep`](Self::finish_sleep). Only the
    /// thread that will block may call this, and `mode` must not be `Awake`.
    pub fn prepare_sleep(&self, mode: SleepMode) -> Prepared {
        let l = self.latch;
        if l.is_set.load(Ordering::Relaxed) != 0 {
            return Prepared::AlreadySet;
        }
        if mode == SleepMode::Signal {
            l.sleeper_tid.store(sys::my_tid(), Ordering::Relaxed);
        }
        // Release: a setter that reads `Signal` also reads our thread id.
        l.maybe_sleeping.store(mode as u32, Ordering::Release);
        // Pairs with the second fence in `set`.
        fence(Ordering::SeqCst);
        if l.is_set.load(Ordering::Relaxed) != 0 {
            l.maybe_sleeping.store(0, Ordering::Relaxed);
            return Prepared::AlreadySet;
        }
        Prepared::MaySleep
    }

    /// One futex sleep that a second condition can also end: publish-then-check.
    ///
    /// In this order: publish [`SleepMode::Futex`] and fence ([`prepare_sleep`](Self::prepare_sleep)),
    /// look at the latch, *then* evaluate `stop`, and only if both are clear block in
    /// `FUTEX_WAIT` for at most `timeout`. `stop` is the waiter's look at a flag that some other
    /// party raises *and then sets this latch* (the parent-death signal handler in
    /// `waiteventset` raises its "postmaster possibly dead" flag, then sets the process latch).
    /// With that pairing no wake-up is lost: if `stop` misses the flag, the flag was raised
    /// after our publication, so the set that follows it is seen by the kernel's compare of the
    /// futex word or wakes us with `FUTEX_WAKE`. The opposite order (look at the flag, then
    /// publish) leaves a window in which the raiser finds nobody to wake; the latch crate's
    /// model test and loom test show that window and show this order closes it.
    ///
    /// `stop` must be async-signal-safe in spirit (a load of an atomic flag); it runs with the
    /// sleep mode published, so it must not wait on this latch.
    pub fn sleep_unless(
        &self,
        timeout: Option<Duration>,
        stop: impl FnOnce() -> bool,
    ) -> SleepOutcome {
        if self.prepare_sleep(SleepMode::Futex) == Prepared::AlreadySet {
            return SleepOutcome::AlreadySet;
        }
        if stop() {
            self.finish_sleep();
            return SleepOutcome::Stopped;
        }
        if timeout != Some(Duration::ZERO) {
            self.futex_sleep(timeout);
        }
        self.finish_sleep();
        SleepOutcome::Slept
    }

    /// Blocks in `FUTEX_WAIT` while the latch is clear, for at most `timeout`; may return early
    /// (signal, spurious wake-up). Call between [`prepare_sleep`](Self::prepare_sleep)
    /// (`SleepMode::Futex`, `MaySleep`) and [`finish_sleep`](Self::finish_sleep).
    pub fn futex_sleep(&self, timeout: Option<Duration>) {
        self.latch.futex_wait(timeout);
    }

    /// Second half of a sleep: we are awake again, setters need not wake us.
    pub fn finish_sleep(&self) {
        self.latch.maybe_sleeping.store(0, Ordering::Relaxed);
    }
}

impl<L: Deref<Target = Latch>> Deref for OwnedLatch<L> {
    type Target = Latch;
    fn deref(&self) -> &Latch {
        &self.latch
    }
}

impl<L: Deref<Target = Latch>> Drop for OwnedLatch<L> {
    fn drop(&mut self) {
        // Only give up what is still ours: after a re-initialisation someone else may own it.
        let _ =
            self.latch
                .owner_pid
                .compare_exchange(self.pid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}
