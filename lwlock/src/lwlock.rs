//! LWLocks: shared/exclusive locks whose waiters queue in shared memory and sleep on their own
//! semaphore (PostgreSQL's storage/lmgr/lwlock.c, in our own words).

use crate::sema::PgSemaphore;
use crate::spin::{stuck_abort, SpinDelay, DEFAULT_STUCK_TIMEOUT};
use crate::tranche::{tranche_name, TrancheId};
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU8, Ordering};
use std::time::Duration;

/// Wait-event class of LWLock waits, as PostgreSQL's `PG_WAIT_LWLOCK` (the tranche id is OR'ed in).
pub const PG_WAIT_LWLOCK: u32 = 0x0100_0000;

/// The mode a lock is taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LWLockMode {
    /// One holder, no shared holders.
    Exclusive = 1,
    /// Any number of holders, no exclusive holder.
    Shared = 2,
}

// State word layout. Zero is "free, nobody waiting, wake-ups allowed", so a lock in freshly
// zeroed shared memory is valid.
const SHARED_MASK: u32 = (1 << 24) - 1; // number of shared holders
const VAL_EXCLUSIVE: u32 = 1 << 24; // an exclusive holder
const LOCK_MASK: u32 = SHARED_MASK | VAL_EXCLUSIVE;
const FLAG_LIST_LOCKED: u32 = 1 << 28; // the wait list is being edited
const FLAG_WAKE_PENDING: u32 = 1 << 29; // woken waiters have not run yet: releasers skip waking
const FLAG_HAS_WAITERS: u32 = 1 << 30; // the wait list is not empty

// ProcWaitSlot::lw_waiting values.
const NOT_WAITING: u8 = 0;
const WAITING: u8 = 1;
const PENDING_WAKEUP: u8 = 2;

/// "No proc" in the wait-list links (links store proc number + 1, so zero means none).
const NIL: u32 = 0;

/// One process's waiting state, indexed by proc number: PostgreSQL keeps these fields in PGPROC
/// (`sem`, `lwWaiting`, `lwWaitMode`, `lwWaitLink`, `wait_event_info`); here they sit in a table
/// of their own so that locking needs nothing from the later `proc` crate.
///
/// # Layout
/// `#[repr(C)]`, 24 bytes, align 4. The table holds each slot alone on a cache line, as
/// [`WaitSlot`] = `CachePadded<ProcWaitSlot>` (PostgreSQL pads each semaphore to
/// `PG_CACHE_LINE_SIZE`), so sleepers do not false-share. All-zero = not waiting, count 0.
///
/// # Synchronisation
/// * `sem`: only the slot's owner sleeps on it; anyone wakes it.
/// * `lw_waiting`, `lw_wait_mode`, `next`, `prev`: written by the owner when it queues itself and
///   by whoever holds the wait-list bit of the lock it is queued on.
/// * `wait_event_info`: written only by the owner; read by anyone (monitoring).
#[repr(C)]
#[derive(Default)]
pub struct ProcWaitSlot {
    /// The semaphore this process sleeps on.
    pub sem: PgSemaphore,
    /// What the process is waiting for right now (0 = nothing), PostgreSQL's `wait_event_info`.
    pub wait_event_info: AtomicU32,
    lw_waiting: AtomicU8,
    lw_wait_mode: AtomicU8,
    _pad: [u8; 2],
    next: AtomicU32,
    prev: AtomicU32,
}

impl fmt::Debug for ProcWaitSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcWaitSlot")
            .field(
                "wait_event_info",
                &self.wait_event_info.load(Ordering::Relaxed),
            )
            .field("lw_waiting", &self.lw_waiting.load(Ordering::Relaxed))
            .finish()
    }
}

/// One entry of the wait-slot table: a [`ProcWaitSlot`] alone on a cache line (128 bytes, align
/// 128 on x86_64 and aarch64; crossbeam's `CachePadded`, `#[repr(C)]` with the slot at offset
/// 0). Dereferences to the slot.
pub type WaitSlot = CachePadded<ProcWaitSlot>;

/// A process's identity for locking: the shared slot table and, once it has one, its proc number.
///
/// Process-local (not `Sync`). A process without a proc number (the postmaster, a process still
/// starting) can take LWLocks too, but cannot sleep in the wait queue: it polls with back-off,
/// which is acceptable only where contention is impossible or rare (start-up, attach).
pub struct LWLockProc<'a> {
    slots: &'a [WaitSlot],
    me: Option<u32>,
    held: Cell<u32>,
}

impl fmt::Debug for LWLockProc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LWLockProc")
            .field("me", &self.me)
            .field("held", &self.held.get())
            .finish()
    }
}

/// Errors of LWLock identity set-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LWLockError {
    /// The proc number is outside the slot table.
    #[error("proc number {procno} is out of range (the wait slot table has {nslots} slots)")]
    ProcNumberOutOfRange {
        /// The rejected proc number.
        procno: u32,
        /// The table's size.
        nslots: usize,
    },
}

impl<'a> LWLockProc<'a> {
    /// The identity of proc number `procno` in `slots`.
    pub fn new(slots: &'a [WaitSlot], procno: u32) -> Result<Self, LWLockError> {
        if procno as usize >= slots.len() || procno == u32::MAX {
            return Err(LWLockError::ProcNumberOutOfRange {
                procno,
                nslots: slots.len(),
            });
        }
        Ok(LWLockProc {
            slots,
            me: Some(procno),
            held: Cell::new(0),
        })
    }

    /// An identity with no proc number: may lock, never queues (see the type's docs).
    pub fn without_slot(slots: &'a [WaitSlot]) -> Self {
        LWLockProc {
            slots,
            me: None,
            held: Cell::new(0),
        }
    }

    /// This process's proc number, if it has one.
    pub fn proc_number(&self) -> Option<u32> {
        self.me
    }

    /// How many LWLocks this identity holds right now.
    pub fn held_count(&self) -> u32 {
        self.held.get()
    }

    /// This process's wait slot.
    pub fn my_slot(&self) -> Option<&'a ProcWaitSlot> {
        self.me.map(|n| &*self.slots[n as usize])
    }

    fn slot(&self, link: u32) -> &'a ProcWaitSlot {
        &self.slots[(link - 1) as usize]
    }
}

/// A lightweight lock in shared memory.
///
/// # Layout
/// `#[repr(C)]`, 16 bytes, align 4: `tranche: u16`, 2 bytes padding, `state: u32`, wait list
/// `head: u32`, `tail: u32` (proc number + 1; 0 = empty). All-zero is a free lock of tranche 0.
/// Arrays of locks that are hot are padded to a cache line by [`LWLockPadded`].
///
/// # Synchronisation
/// `state` changes only by atomic read-modify-write. `head`, `tail` and the waiters' links change
/// only while the changer holds the `FLAG_LIST_LOCKED` bit of `state`, a tiny spinlock.
#[repr(C)]
#[derive(Default)]
pub struct LWLock {
    tranche: AtomicU16,
    _pad: u16,
    state: AtomicU32,
    head: AtomicU32,
    tail: AtomicU32,
}

impl fmt::Debug for LWLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("LWLock")
            .field("tranche", &tranche_name(self.tranche()))
            .field("exclusive", &(s & VAL_EXCLUSIVE != 0))
            .field("shared", &(s & SHARED_MASK))
            .field("has_waiters", &(s & FLAG_HAS_WAITERS != 0))
            .finish()
    }
}

/// An [`LWLock`] alone on a cache line (PostgreSQL's `LWLockPadded`): crossbeam's
/// `CachePadded`, `#[repr(C)]` with the lock at offset 0, 128 bytes on x86_64 and aarch64 (the
/// line pair the adjacent-line prefetcher fetches; PostgreSQL's `PG_CACHE_LINE_SIZE` is 128
/// too). Dereferences to the lock.
pub type LWLockPadded = CachePadded<LWLock>;

impl LWLock {
    /// A free lock of tranche `tranche`.
    pub const fn new(tranche: TrancheId) -> Self {
        LWLock {
            tranche: AtomicU16::new(tranche.0),
            _pad: 0,
            state: AtomicU32::new(0),
            head: AtomicU32::new(NIL),
            tail: AtomicU32::new(NIL),
        }
    }

    /// (Re)initialises a lock in shared memory: free, no waiters, the given tranche.
    ///
    /// Only for the creator of a structure, before anyone else can see it.
    pub fn init(&self, tranche: TrancheId) {
        self.tranche.store(tranche.0, Ordering::Relaxed);
        self.head.store(NIL, Ordering::Relaxed);
        self.tail.store(NIL, Ordering::Relaxed);
        self.state.store(0, Ordering::Release);
    }

    /// The tranche this lock belongs to.
    pub fn tranche(&self) -> TrancheId {
        TrancheId(self.tranche.load(Ordering::Relaxed))
    }

    /// Whether anyone holds the lock in any mode (a racy hint).
    pub fn is_held(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCK_MASK != 0
    }

    /// Acquires the lock in `mode`, sleeping on `proc`'s semaphore while it is unavailable.
    pub fn acquire<'a>(&'a self, proc: &'a LWLockProc<'a>, mode: LWLockMode) -> LWLockGuard<'a> {
        let Some(me) = proc.me else {
            return self.acquire_polling(proc, mode);
        };
        let slot = &proc.slots[me as usize];
        let mut extra_waits = 0u32;
        loop {
            if !self.attempt(mode) {
                break;
            }
            self.queue(proc, me, mode);
            // Second try: the holder may have released between our first try and the queueing,
            // and then nobody would wake us.
            if !self.attempt(mode) {
                self.dequeue_self(proc, me);
                break;
            }
            let tranche = self.tranche.load(Ordering::Relaxed);
            slot.wait_event_info
                .store(PG_WAIT_LWLOCK | u32::from(tranche), Ordering::Relaxed);
            pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::LWLockWaits);
            let slept = std::time::Instant::now();
            loop {
                slot.sem.lock();
                if slot.lw_waiting.load(Ordering::Acquire) == NOT_WAITING {
                    break;
                }
                // A wake-up meant for some other wait of ours (or a stray one): keep it for later.
                extra_waits += 1;
            }
            slot.wait_event_info.store(0, Ordering::Relaxed);
            pgipc_ipc_stats::add(
                pgipc_ipc_stats::Counter::LWLockWaitMicros,
                slept.elapsed().as_micros() as u64,
            );
            // We have run; let releasers wake the next waiters again.
            self.state.fetch_and(!FLAG_WAKE_PENDING, Ordering::Release);
        }
        for _ in 0..extra_waits {
            slot.sem.unlock();
        }
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::LWLockAcquires);
        proc.held.set(proc.held.get() + 1);
        LWLockGuard {
            lock: self,
            proc,
            mode,
        }
    }

    /// Acquires the lock in `mode` only if that needs no wait.
    pub fn conditional_acquire<'a>(
        &'a self,
        proc: &'a LWLockProc<'a>,
        mode: LWLockMode,
    ) -> Option<LWLockGuard<'a>> {
        if self.attempt(mode) {
            None
        } else {
            pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::LWLockAcquires);
            proc.held.set(proc.held.get() + 1);
            Some(LWLockGuard {
                lock: self,
                proc,
                mode,
            })
        }
    }

    /// Polling acquisition for a process without a wait slot.
    fn acquire_polling<'a>(
        &'a self,
        proc: &'a LWLockProc<'a>,
        mode: LWLockMode,
    ) -> LWLockGuard<'a> {
        let mut delay = SpinDelay::new("LWLock (no wait slot)", Duration::MAX);
        while self.attempt(mode) {
            // An infinite limit never reports stuck.
            let _ = delay.pause();
        }
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::LWLockAcquires);
        proc.held.set(proc.held.get() + 1);
        LWLockGuard {
            lock: self,
            proc,
            mode,
        }
    }

    /// One attempt to take the lock; returns `true` if the caller must wait.
    fn attempt(&self, mode: LWLockMode) -> bool {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            let (free, desired) = match mode {
                LWLockMode::Exclusive => (old & LOCK_MASK == 0, old + VAL_EXCLUSIVE),
                LWLockMode::Shared => (old & VAL_EXCLUSIVE == 0, old + 1),
            };
            if !free {
                return true;
            }
            match self.state.compare_exchange_weak(
                old,
                desired,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return false,
                Err(now) => old = now,
            }
        }
    }

    /// Takes the wait-list bit; returns the state word as it is with the bit held.
    fn lock_wait_list(&self) -> u32 {
        let mut delay = SpinDelay::new("LWLock wait list", DEFAULT_STUCK_TIMEOUT);
        loop {
            let old = self.state.fetch_or(FLAG_LIST_LOCKED, Ordering::Acquire);
            if old & FLAG_LIST_LOCKED == 0 {
                return old | FLAG_LIST_LOCKED;
            }
            // Wait for the bit to clear with plain loads before trying again.
            while self.state.load(Ordering::Relaxed) & FLAG_LIST_LOCKED != 0 {
                if let Err(stuck) = delay.pause() {
                    stuck_abort(&stuck);
                }
            }
        }
    }

    fn unlock_wait_list(&self) {
        self.state.fetch_and(!FLAG_LIST_LOCKED, Ordering::Release);
    }

    /// Appends `me` to the wait list and marks the lock as having waiters.
    fn queue(&self, proc: &LWLockProc<'_>, me: u32, mode: LWLockMode) {
        let slot = &proc.slots[me as usize];
        self.lock_wait_list();
        slot.lw_waiting.store(WAITING, Ordering::Relaxed);
        slot.lw_wait_mode.store(mode as u8, Ordering::Relaxed);
        let link = me + 1;
        let tail = self.tail.load(Ordering::Relaxed);
        slot.prev.store(tail, Ordering::Relaxed);
        slot.next.store(NIL, Ordering::Relaxed);
        if tail == NIL {
            self.head.store(link, Ordering::Relaxed);
        } else {
            proc.slot(tail).next.store(link, Ordering::Relaxed);
        }
        self.tail.store(link, Ordering::Relaxed);
        self.state.fetch_or(FLAG_HAS_WAITERS, Ordering::Relaxed);
        self.unlock_wait_list();
    }

    /// Unlinks `link` from the wait list. The caller holds the wait-list bit.
    fn unlink(&self, proc: &LWLockProc<'_>, link: u32) {
        let s = proc.slot(link);
        let (prev, next) = (
            s.prev.load(Ordering::Relaxed),
            s.next.load(Ordering::Relaxed),
        );
        if prev == NIL {
            self.head.store(next, Ordering::Relaxed);
        } else {
            proc.slot(prev).next.store(next, Ordering::Relaxed);
        }
        if next == NIL {
            self.tail.store(prev, Ordering::Relaxed);
        } else {
            proc.slot(next).prev.store(prev, Ordering::Relaxed);
        }
        s.prev.store(NIL, Ordering::Relaxed);
        s.next.store(NIL, Ordering::Relaxed);
    }

    /// Takes `me` back off the wait list after the second attempt succeeded.
    fn dequeue_self(&self, proc: &LWLockProc<'_>, me: u32) {
        let slot = &proc.slots[me as usize];
        self.lock_wait_list();
        let still_queued = slot.lw_waiting.load(Ordering::Relaxed) == WAITING;
        if still_queued {
            self.unlink(proc, me + 1);
            slot.lw_waiting.store(NOT_WAITING, Ordering::Relaxed);
        }
        if self.head.load(Ordering::Relaxed) == NIL {
            self.state.fetch_and(!FLAG_HAS_WAITERS, Ordering::Relaxed);
        }
        self.unlock_wait_list();
        if !still_queued {
            // A releaser dequeued us and has posted (or will post) our semaphore: absorb that
            // wake-up now so it cannot end a later, unrelated sleep too early.
            self.state.fetch_and(!FLAG_WAKE_PENDING, Ordering::Release);
            let mut extra = 0u32;
            loop {
                slot.sem.lock();
                if slot.lw_waiting.load(Ordering::Acquire) == NOT_WAITING {
                    break;
                }
                extra += 1;
            }
            for _ in 0..extra {
                slot.sem.unlock();
            }
        }
    }

    fn release(&self, proc: &LWLockProc<'_>, mode: LWLockMode) {
        let sub = match mode {
            LWLockMode::Exclusive => VAL_EXCLUSIVE,
            LWLockMode::Shared => 1,
        };
        let new = self.state.fetch_sub(sub, Ordering::Release) - sub;
        proc.held.set(proc.held.get().saturating_sub(1));
        if new & (FLAG_HAS_WAITERS | FLAG_WAKE_PENDING) == FLAG_HAS_WAITERS && new & LOCK_MASK == 0
        {
            self.wake_waiters(proc);
        }
    }

    /// Wakes the waiters that can run now: the first one if it wants exclusive, otherwise every
    /// shared waiter in the queue (exclusive waiters behind them keep their place).
    fn wake_waiters(&self, proc: &LWLockProc<'_>) {
        self.lock_wait_list();
        let mut woken_head = NIL; // a private chain through `next`, built after unlinking
        let mut woken_tail = NIL;
        let mut woke_any = false;
        let mut cur = self.head.load(Ordering::Relaxed);
        while cur != NIL {
            let s = proc.slot(cur);
            let next = s.next.load(Ordering::Relaxed);
            let mode = s.lw_wait_mode.load(Ordering::Relaxed);
            if woke_any && mode == LWLockMode::Exclusive as u8 {
                cur = next;
                continue;
            }
            self.unlink(proc, cur);
            s.lw_waiting.store(PENDING_WAKEUP, Ordering::Relaxed);
            if woken_tail == NIL {
                woken_head = cur;
            } else {
                proc.slot(woken_tail).next.store(cur, Ordering::Relaxed);
            }
            woken_tail = cur;
            woke_any = true;
            if mode == LWLockMode::Exclusive as u8 {
                break;
            }
            cur = next;
        }
        // Publish the new flags and drop the wait-list bit in one step.
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            let mut new = old & !FLAG_LIST_LOCKED;
            if woke_any {
                new |= FLAG_WAKE_PENDING;
            }
            if self.head.load(Ordering::Relaxed) == NIL {
                new &= !FLAG_HAS_WAITERS;
            }
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => old = now,
            }
        }
        // Wake them outside the wait-list lock.
        let mut cur = woken_head;
        while cur != NIL {
            let s = proc.slot(cur);
            let next = s.next.load(Ordering::Relaxed);
            s.next.store(NIL, Ordering::Relaxed);
            s.lw_waiting.store(NOT_WAITING, Ordering::Release);
            s.sem.unlock();
            cur = next;
        }
    }
}

/// Holds an [`LWLock`]; releases it (and wakes waiters) when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LWLockGuard<'a> {
    lock: &'a LWLock,
    proc: &'a LWLockProc<'a>,
    mode: LWLockMode,
}

impl fmt::Debug for LWLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LWLockGuard")
            .field("lock", self.lock)
            .field("mode", &self.mode)
            .finish()
    }
}

impl LWLockGuard<'_> {
    /// The mode the lock is held in.
    pub fn mode(&self) -> LWLockMode {
        self.mode
    }
}

impl Drop for LWLockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release(self.proc, self.mode);
    }
}
