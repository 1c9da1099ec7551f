//! The shared cache-invalidation queue: a ring of 4096 messages every backend reads, where
//! readers that fall too far behind are reset instead of slowing writers down.
//!
//! Mirrors PostgreSQL's `storage/ipc/sinvaladt.c` (with the receiving loop of `sinval.c`).
//! Think of the queue as an endless array of messages numbered from 0; each backend has a
//! cursor (`next_msg_num`) into it. The ring keeps the last 4096. A writer that needs room
//! first runs [`SharedInval::cleanup_queue`]: it marks for *reset* every reader so far behind
//! that its unread messages would be overwritten (that reader must throw away all its caches),
//! and nudges the furthest-behind reader that is more than 2048 behind with a
//! `PROCSIG_CATCHUP_INTERRUPT` (crate `pgipc-procsignal`). A reader that catches up passes the
//! nudge on to the next laggard, so idle backends are woken one at a time, not all at once.
//!
//! ```text
//!  "shmInvalBuffer"
//!  ┌─────────────────────────────────────────────────────────────────────────────────┐
//!  │ SISegHeader  min_msg_num ≤ every active reader's next ≤ max_msg_num             │
//!  │              next_threshold (queue length that triggers a cleanup)              │
//!  │              msgnum_lock (spinlock around max_msg_num)   num_procs              │
//!  ├─────────────────────────────────────────────────────────────────────────────────┤
//!  │ buffer[4096]  MessageCell (16 B);  message k lives at k % 4096                  │
//!  │               ... [min ─── unread by someone ─── max) ...                       │
//!  ├─────────────────────────────────────────────────────────────────────────────────┤
//!  │ proc_state[procno]  pid, next_msg_num, reset_state, signaled, has_messages,     │
//!  │                     send_only, next_lxid                                        │
//!  ├─────────────────────────────────────────────────────────────────────────────────┤
//!  │ pgprocnos[num_procs]  dense list of the active slots (swap-removed on exit)     │
//!  └─────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! # Concurrency contract (PostgreSQL's locking, kept as is)
//! * `SInvalWriteLock` (exclusive only) serialises writers and membership changes (backend
//!   init and exit): `buffer`, `max_msg_num`, `pgprocnos`, `num_procs` change only under it.
//! * `SInvalReadLock` shared means "I touch only my own `proc_state`": a reader advances its
//!   own `next_msg_num` and flags under it. Exclusive means "I update the whole array":
//!   cleanup (resets, signals, `min_msg_num`, `next_threshold`, wraparound rebasing).
//! * `msgnum_lock` (spinlock) orders `max_msg_num` against the ring: a writer stores the
//!   entries, then publishes `max_msg_num` under the spinlock; a reader reads `max_msg_num`
//!   under it before copying entries. Holding the write lock makes the spinlock unnecessary
//!   for reading `max_msg_num`.
//! * `has_messages` is an unlocked hint: writers set it for everyone after inserting, a reader
//!   clears it (with a full fence) *before* reading `max_msg_num`, so a message published
//!   later sets it again. A reader that sees it clear skips all locking.
//! * Writers never wait for readers: cleanup resets exactly the readers in the way, and when it
//!   gives the locks up to send a catch-up signal the writer loops and checks again, so a full
//!   queue cannot block a writer forever.
//! * Counters are `i32`, rebased by [`MSGNUMWRAPAROUND`] when the minimum passes it.
//! * Each process counts its own work in the IPC statistics (pgipc_ipc_stats): messages
//!   written and read, catch-up signals sent, and resets it found on reading.
//!
//! # What this crate does not do
//! * It does not interpret messages: catcache/relcache/smgr handling belongs to their caches;
//!   [`SharedInvalidationMessage`] only gives them the 16-byte format.
//! * It does not decide when to read: a backend reads at transaction start and when a
//!   catch-up interrupt is pending ([`SInvalBackend::receive_shared_invalid_messages`] takes
//!   care of passing the nudge on).
//! * No transactions: PostgreSQL's `ProcessCatchupInterrupt` runs an empty transaction to read;
//!   here the caller just reads.
//!
//! Key items: [`shmem_size`], [`shmem_init`], [`SharedInval`], [`SInvalBackend`],
//! [`SharedInvalidationMessage`], [`Received`], [`SinvalError`].

mod message;

pub use message::{
    MessageCell, Oid, SharedInvalidationMessage, SHAREDINVALCATALOG_ID, SHAREDINVALRELCACHE_ID,
    SHAREDINVALRELMAP_ID, SHAREDINVALRELSYNC_ID, SHAREDINVALSMGR_ID, SHAREDINVALSNAPSHOT_ID,
};
pub use pgipc_proc::{LocalTransactionId, ProcNumber};

use pgipc_ipc_stats::Counter;
use pgipc_lwlock::{LWLockGuard, LWLockMode, LWLockProc, MainLWLockId, SpinLock};
use pgipc_procsignal::{ProcSignal, ProcSignalReason};
use pgipc_shmem::{add_size, mul_size, InitKind, Shared, Shmem, ShmemError, ShmemSafe, SizeError};
use std::fmt;
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The Shmem Index name of the queue (PostgreSQL's).
pub const SINVAL_NAME: &str = "shmInvalBuffer";

/// Ring size (a power of 2).
pub const MAXNUMMESSAGES: i32 = 4096;
/// Counters are rebased when the minimum passes this (a multiple of [`MAXNUMMESSAGES`]).
pub const MSGNUMWRAPAROUND: i32 = MAXNUMMESSAGES * 262_144;
/// Queue length below which writers do not bother to clean up.
pub const CLEANUP_MIN: i32 = MAXNUMMESSAGES / 2;
/// Above [`CLEANUP_MIN`], clean up again each time the queue grows by this much.
pub const CLEANUP_QUANTUM: i32 = MAXNUMMESSAGES / 16;
/// A reader more than this far behind is sent a catch-up signal.
pub const SIG_THRESHOLD: i32 = MAXNUMMESSAGES / 2;
/// Most messages a writer inserts per lock acquisition.
pub const WRITE_QUANTUM: usize = 64;
/// Buffer size of [`SInvalBackend::receive_shared_invalid_messages`].
pub const MAXINVALMSGS: usize = 32;

/// What [`SInvalBackend::get_data_entries`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// This many messages were copied (0 = none pending). Fewer than the buffer holds means
    /// there was nothing more at that moment.
    Messages(usize),
    /// This backend fell too far behind and missed messages: it must discard every cached
    /// thing the messages could concern. It now stands at the current end of the queue.
    Reset,
}

/// Errors of the sinval crate. Messages are PostgreSQL's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum SinvalError {
    /// A size overflowed.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// The queue could not be created or found.
    #[error("could not initialize \"{SINVAL_NAME}\": {0}")]
    Shmem(#[from] ShmemError),
    /// More slots than a proc number can address.
    #[error("too many sinval slots: {n}")]
    TooManySlots {
        /// The requested count.
        n: usize,
    },
    /// A proc number outside the slot array.
    #[error("unexpected MyProcNumber {procno} in SharedInvalBackendInit (max {max})")]
    InvalidProcNumber {
        /// The rejected proc number.
        procno: ProcNumber,
        /// The largest valid one.
        max: i64,
    },
    /// The slot is held by another process.
    #[error("sinval slot for backend {procno} is already in use by process {pid}")]
    SlotInUse {
        /// The slot.
        procno: ProcNumber,
        /// Its holder.
        pid: i32,
    },
    /// The slot no longer belongs to this backend (it was cleaned up).
    #[error("sinval slot {procno} is not owned by process {pid}")]
    NotOwner {
        /// The slot.
        procno: ProcNumber,
        /// This process.
        pid: i32,
    },
    /// The active list does not hold the slot being released (shared state is corrupt).
    #[error("could not find entry in sinval array")]
    NotInArray,
    /// Registering the exit callback failed.
    #[error(transparent)]
    Ipc(#[from] pgipc_ipc::IpcError),
}

/// The fixed part of "shmInvalBuffer" (PostgreSQL's `SISeg` without its arrays).
///
/// # Layout
/// `#[repr(C)]`, 32 bytes, align 4.
///
/// # Synchronization
/// As the crate docs say per field; the fields are private to this crate (its queue methods
/// are the only writers), and the readers below are lock-free snapshots for monitoring and
/// tests.
#[repr(C)]
#[derive(Debug)]
pub struct SISegHeader {
    /// Lower bound of every active reader's `next_msg_num` (recomputed by cleanup only).
    pub(crate) min_msg_num: AtomicI32,
    /// Number the next message gets. Written under `SInvalWriteLock` + `msgnum_lock`.
    pub(crate) max_msg_num: AtomicI32,
    /// Queue length at which writers run a cleanup.
    pub(crate) next_threshold: AtomicI32,
    /// Orders `max_msg_num` against the ring entries.
    pub(crate) msgnum_lock: SpinLock,
    /// Length of the active list `pgprocnos`.
    pub(crate) num_procs: AtomicI32,
    /// Number of slots (informational).
    pub(crate) num_slots: AtomicU32,
    /// The rebasing point; [`MSGNUMWRAPAROUND`] (tests lower it).
    pub(crate) msgnum_wraparound: AtomicI32,
    _pad: u32,
}

/// One backend's read state (PostgreSQL's `ProcState`).
///
/// # Layout
/// `#[repr(C)]`, 16 bytes, align 4; all-zero is an inactive slot.
///
/// # Synchronization
/// `proc_pid` and `send_only` change under `SInvalWriteLock` (backend init and exit);
/// `next_msg_num`, `reset_state` and `signaled` under `SInvalReadLock`, shared by the owner
/// for its own slot or exclusive by cleanup; `has_messages` is the unlocked hint of the crate
/// docs. Private to this crate; the readers below are lock-free snapshots.
#[repr(C)]
#[derive(Debug)]
pub struct ProcState {
    /// Owner pid, 0 = inactive.
    pub(crate) proc_pid: AtomicI32,
    /// Next message this backend reads.
    pub(crate) next_msg_num: AtomicI32,
    /// It fell too far behind and must reset its caches.
    pub(crate) reset_state: AtomicBool,
    /// A catch-up signal was sent and not yet answered.
    pub(crate) signaled: AtomicBool,
    /// Hint: there may be unread messages (read without locks).
    pub(crate) has_messages: AtomicBool,
    /// Only sends (the startup process in recovery): never read, never waited for.
    pub(crate) send_only: AtomicBool,
    /// Next local transaction id for the next holder of this proc number.
    pub(crate) next_lxid: AtomicU32,
}

impl SISegHeader {
    /// Length of the active reader list (changes under `SInvalWriteLock`).
    pub fn num_procs(&self) -> i32 {
        self.num_procs.load(Ordering::Acquire)
    }

    /// Number the next message gets (published under `msgnum_lock` by a writer holding
    /// `SInvalWriteLock`).
    pub fn max_msg_num(&self) -> i32 {
        self.max_msg_num.load(Ordering::Acquire)
    }

    /// Lower bound of every active reader's next message (recomputed by cleanup, under
    /// `SInvalReadLock` exclusive).
    pub fn min_msg_num(&self) -> i32 {
        self.min_msg_num.load(Ordering::Acquire)
    }
}

impl ProcState {
    /// Owner pid, 0 = inactive (changes under `SInvalWriteLock`).
    pub fn pid(&self) -> i32 {
        self.proc_pid.load(Ordering::Acquire)
    }

    /// Next message the owner reads (its own under `SInvalReadLock` shared, or cleanup's).
    pub fn next_msg_num(&self) -> i32 {
        self.next_msg_num.load(Ordering::Acquire)
    }

    /// Whether cleanup marked the owner for a cache reset (it fell too far behind).
    pub fn reset_state(&self) -> bool {
        self.reset_state.load(Ordering::Acquire)
    }

    /// Whether a catch-up signal was sent and not yet answered.
    pub fn signaled(&self) -> bool {
        self.signaled.load(Ordering::Acquire)
    }
}

// SAFETY: repr(C), atomics and the process-shared spinlock only, no pointers, zero is valid.
unsafe impl ShmemSafe for SISegHeader {}
// SAFETY: as above.
unsafe impl ShmemSafe for ProcState {}

fn buffer_offset() -> usize {
    size_of::<SISegHeader>()
}

fn states_offset() -> usize {
    buffer_offset() + MAXNUMMESSAGES as usize * size_of::<MessageCell>()
}

/// Bytes needed for `n_slots` backends (PostgreSQL's `SharedInvalShmemSize`).
pub fn shmem_size(n_slots: usize) -> Result<usize, SizeError> {
    let states = mul_size(n_slots, size_of::<ProcState>())?;
    let procnos = mul_size(n_slots, size_of::<AtomicI32>())?;
    add_size(add_size(states_offset(), states)?, procnos)
}

/// Creates or finds "shmInvalBuffer" (PostgreSQL's `SharedInvalShmemInit`).
///
/// `n_slots` is `MaxBackends + NUM_AUXILIARY_PROCS` (one slot per proc number); it must be the
/// same in every process. Catch-up signals go through the "ProcSignal" structure of the same
/// segment, found (by the same slot count) the first time one is needed.
pub fn shmem_init(shmem: &Shmem, n_slots: usize) -> Result<SharedInval, SinvalError> {
    let n = u32::try_from(n_slots)
        .ok()
        .filter(|n| *n < i32::MAX as u32)
        .ok_or(SinvalError::TooManySlots { n: n_slots })?;
    let (off, kind) = shmem.init_raw(SINVAL_NAME, shmem_size(n_slots)?)?;
    let hdr: Shared<SISegHeader> = shmem.view(off).ok_or(ShmemError::NotInitialized)?;
    let buffer = shmem
        .view_slice::<MessageCell>(off + buffer_offset() as u64, MAXNUMMESSAGES as usize)
        .ok_or(ShmemError::NotInitialized)?;
    let states = shmem
        .view_slice::<ProcState>(off + states_offset() as u64, n_slots)
        .ok_or(ShmemError::NotInitialized)?;
    let procnos_off = states_offset() + n_slots * size_of::<ProcState>();
    let procnos = shmem
        .view_slice::<AtomicI32>(off + procnos_off as u64, n_slots)
        .ok_or(ShmemError::NotInitialized)?;
    if kind == InitKind::Created {
        hdr.min_msg_num.store(0, Ordering::Relaxed);
        hdr.max_msg_num.store(0, Ordering::Relaxed);
        hdr.next_threshold.store(CLEANUP_MIN, Ordering::Relaxed);
        hdr.msgnum_lock.init();
        hdr.num_procs.store(0, Ordering::Relaxed);
        hdr.msgnum_wraparound
            .store(MSGNUMWRAPAROUND, Ordering::Relaxed);
        for s in states.iter() {
            s.proc_pid.store(0, Ordering::Relaxed);
            s.next_msg_num.store(0, Ordering::Relaxed);
            s.reset_state.store(false, Ordering::Relaxed);
            s.signaled.store(false, Ordering::Relaxed);
            s.has_messages.store(false, Ordering::Relaxed);
            s.send_only.store(false, Ordering::Relaxed);
            s.next_lxid.store(0, Ordering::Relaxed);
        }
        hdr.num_slots.store(n, Ordering::Release);
    }
    Ok(SharedInval {
        shmem: shmem.clone(),
        hdr,
        buffer,
        states,
        procnos,
        n,
        procsignal: Arc::new(OnceLock::new()),
    })
}

/// This process's handle on the queue. Cheap to clone.
#[derive(Clone)]
pub struct SharedInval {
    shmem: Shmem,
    hdr: Shared<SISegHeader>,
    buffer: Shared<[MessageCell]>,
    states: Shared<[ProcState]>,
    procnos: Shared<[AtomicI32]>,
    n: u32,
    procsignal: Arc<OnceLock<ProcSignal>>,
}

impl fmt::Debug for SharedInval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedInval")
            .field("num_slots", &self.n)
            .field("min_msg_num", &self.hdr.min_msg_num.load(Ordering::Relaxed))
            .field("max_msg_num", &self.hdr.max_msg_num.load(Ordering::Relaxed))
            .field("num_procs", &self.hdr.num_procs.load(Ordering::Relaxed))
            .finish()
    }
}

/// Which locks a cleanup starts with and must end with.
enum WriteLock<'a> {
    /// The caller holds `SInvalWriteLock` and gets it back.
    Held(LWLockGuard<'a>),
    /// The caller holds nothing.
    NotHeld,
}

impl SharedInval {
    /// Number of slots.
    pub fn num_slots(&self) -> u32 {
        self.n
    }

    /// The shared header (diagnostics and tests).
    pub fn header(&self) -> &SISegHeader {
        &self.hdr
    }

    /// The read state of `procno`.
    pub fn proc_state(&self, procno: ProcNumber) -> Result<&ProcState, SinvalError> {
        self.states
            .get(procno as usize)
            .ok_or(SinvalError::InvalidProcNumber {
                procno,
                max: i64::from(self.n) - 1,
            })
    }

    /// Uses `ps` for catch-up signals instead of looking "ProcSignal" up on first use.
    /// Returns `false` if one was already set.
    pub fn set_proc_signal(&self, ps: ProcSignal) -> bool {
        self.procsignal.set(ps).is_ok()
    }

    fn proc_signal(&self) -> Option<&ProcSignal> {
        if let Some(ps) = self.procsignal.get() {
            return Some(ps);
        }
        match pgipc_procsignal::shmem_init(&self.shmem, self.n as usize) {
            Ok(ps) => Some(self.procsignal.get_or_init(|| ps)),
            Err(e) => {
                tracing::warn!(target: "pgipc", "sinval: no ProcSignal for catch-up signals: {e}");
                None
            }
        }
    }

    fn me(&self) -> LWLockProc<'_> {
        self.shmem.lwlock_proc()
    }

    fn read_max(&self) -> i32 {
        let _g = self.hdr.msgnum_lock.lock();
        self.hdr.max_msg_num.load(Ordering::Acquire)
    }

    fn active(&self) -> impl Iterator<Item = (ProcNumber, &ProcState)> + '_ {
        let k = self.hdr.num_procs.load(Ordering::Acquire).max(0) as usize;
        self.procnos[..k.min(self.procnos.len())]
            .iter()
            .filter_map(move |p| {
                let p = p.load(Ordering::Acquire) as u32;
                self.states.get(p as usize).map(|s| (p, s))
            })
    }

    // ---- membership ----

    /// Joins the queue as proc number `procno` (PostgreSQL's `SharedInvalBackendInit`): the new
    /// backend has "read" everything already queued. `send_only` backends (the startup process
    /// during recovery) never read and never hold writers back.
    ///
    /// Call [`SInvalBackend::cleanup`] at exit, or [`SInvalBackend::cleanup_on_shmem_exit`] to
    /// have the exit callbacks do it.
    pub fn shared_inval_backend_init(
        &self,
        procno: ProcNumber,
        send_only: bool,
    ) -> Result<SInvalBackend, SinvalError> {
        let st = self.proc_state(procno)?;
        let pid = std::process::id() as i32;
        let me = self.me();
        let _w = self
            .shmem
            .main_lwlock(MainLWLockId::SInvalWrite)
            .acquire(&me, LWLockMode::Exclusive);
        let holder = st.proc_pid.load(Ordering::Acquire);
        if holder != 0 {
            return Err(SinvalError::SlotInUse {
                procno,
                pid: holder,
            });
        }
        let k = self.hdr.num_procs.load(Ordering::Relaxed);
        self.procnos[k as usize].store(procno as i32, Ordering::Relaxed);
        self.hdr.num_procs.store(k + 1, Ordering::Release);
        let next_lxid = st.next_lxid.load(Ordering::Relaxed);
        st.next_msg_num.store(
            self.hdr.max_msg_num.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        st.reset_state.store(false, Ordering::Relaxed);
        st.signaled.store(false, Ordering::Relaxed);
        st.has_messages.store(false, Ordering::Relaxed);
        st.send_only.store(send_only, Ordering::Relaxed);
        st.proc_pid.store(pid, Ordering::Release);
        Ok(SInvalBackend {
            si: self.clone(),
            procno,
            pid,
            next_lxid: Arc::new(AtomicU32::new(next_lxid)),
            counter: Arc::new(AtomicU64::new(0)),
        })
    }

    // ---- writing ----

    /// Appends `msgs` to the queue, at most [`WRITE_QUANTUM`] per lock acquisition
    /// (PostgreSQL's `SIInsertDataEntries`). Never waits for readers: laggards in the way are
    /// reset.
    pub fn insert_data_entries(&self, msgs: &[SharedInvalidationMessage]) {
        let me = self.me();
        let write = self.shmem.main_lwlock(MainLWLockId::SInvalWrite);
        for chunk in msgs.chunks(WRITE_QUANTUM) {
            let n = chunk.len() as i32;
            let mut guard = write.acquire(&me, LWLockMode::Exclusive);
            // Make room. A cleanup that sent a signal gave the locks up for a moment, so look
            // again; each round resets or signals someone, so this ends.
            let max = loop {
                let max = self.hdr.max_msg_num.load(Ordering::Relaxed);
                let queued = max - self.hdr.min_msg_num.load(Ordering::Relaxed);
                if queued + n <= MAXNUMMESSAGES
                    && queued < self.hdr.next_threshold.load(Ordering::Relaxed)
                {
                    break max;
                }
                guard = match self.cleanup_locked(&me, WriteLock::Held(guard), n) {
                    Some(g) => g,
                    None => write.acquire(&me, LWLockMode::Exclusive),
                };
            };
            for (i, m) in chunk.iter().enumerate() {
                let k = (max + i as i32) & (MAXNUMMESSAGES - 1);
                self.buffer[k as usize].store(*m);
            }
            {
                let _s = self.hdr.msgnum_lock.lock();
                self.hdr.max_msg_num.store(max + n, Ordering::Release);
            }
            for (_, st) in self.active() {
                st.has_messages.store(true, Ordering::Relaxed);
            }
            // Releasing the LWLock is a full barrier: readers that skip locking on a clear
            // `has_messages` will see the flags at their next lock acquisition.
            fence(Ordering::SeqCst);
            drop(guard);
            pgipc_ipc_stats::add(Counter::SinvalWrites, n as u64);
        }
    }

    /// Resets readers in the way of `min_free` more messages, recomputes the minimum and the
    /// next threshold, and signals the furthest-behind reader that is more than
    /// [`SIG_THRESHOLD`] behind and not yet signalled (PostgreSQL's `SICleanupQueue` for a
    /// caller holding no lock). A reader calls it after catching up, to pass the nudge on.
    pub fn cleanup_queue(&self, min_free: usize) {
        let me = self.me();
        let min_free = i32::try_from(min_free).unwrap_or(MAXNUMMESSAGES);
        let _ = self.cleanup_locked(&me, WriteLock::NotHeld, min_free);
    }

    /// The cleanup proper. Returns the write lock again iff the caller held it (`None` when
    /// the caller held it but it had to be given up and was not retaken is impossible: it is
    /// always retaken for a holder).
    fn cleanup_locked<'a>(
        &'a self,
        me: &'a LWLockProc<'a>,
        caller: WriteLock<'a>,
        min_free: i32,
    ) -> Option<LWLockGuard<'a>> {
        let write_lock = self.shmem.main_lwlock(MainLWLockId::SInvalWrite);
        let (caller_held, w) = match caller {
            WriteLock::Held(g) => (true, g),
            WriteLock::NotHeld => (false, write_lock.acquire(me, LWLockMode::Exclusive)),
        };
        let r = self
            .shmem
            .main_lwlock(MainLWLockId::SInvalRead)
            .acquire(me, LWLockMode::Exclusive);
        let max = self.hdr.max_msg_num.load(Ordering::Relaxed);
        let mut min = max;
        let mut minsig = max - SIG_THRESHOLD;
        let lowbound = max - MAXNUMMESSAGES + min_free;
        let mut need_sig: Option<(ProcNumber, &ProcState)> = None;
        for (p, st) in self.active() {
            if st.proc_pid.load(Ordering::Relaxed) == 0
                || st.reset_state.load(Ordering::Relaxed)
                || st.send_only.load(Ordering::Relaxed)
            {
                continue;
            }
            let n = st.next_msg_num.load(Ordering::Relaxed);
            if n < lowbound {
                // Its unread messages are about to be overwritten; a signal would not help.
                st.reset_state.store(true, Ordering::Relaxed);
                continue;
            }
            min = min.min(n);
            if n < minsig && !st.signaled.load(Ordering::Relaxed) {
                minsig = n;
                need_sig = Some((p, st));
            }
        }
        self.hdr.min_msg_num.store(min, Ordering::Relaxed);

        // Rebase every counter before it can overflow; distances are unchanged.
        let wrap = self.hdr.msgnum_wraparound.load(Ordering::Relaxed);
        if min >= wrap {
            self.hdr.min_msg_num.fetch_sub(wrap, Ordering::Relaxed);
            {
                let _s = self.hdr.msgnum_lock.lock();
                self.hdr.max_msg_num.fetch_sub(wrap, Ordering::Release);
            }
            for (_, st) in self.active() {
                st.next_msg_num.fetch_sub(wrap, Ordering::Relaxed);
            }
        }

        let queued = self.hdr.max_msg_num.load(Ordering::Relaxed)
            - self.hdr.min_msg_num.load(Ordering::Relaxed);
        let threshold = if queued < CLEANUP_MIN {
            CLEANUP_MIN
        } else {
            (queued / CLEANUP_QUANTUM + 1) * CLEANUP_QUANTUM
        };
        self.hdr.next_threshold.store(threshold, Ordering::Relaxed);

        match need_sig {
            Some((procno, st)) => {
                let pid = st.proc_pid.load(Ordering::Relaxed);
                st.signaled.store(true, Ordering::Relaxed);
                // Never signal while holding the locks.
                drop(r);
                drop(w);
                if let Some(ps) = self.proc_signal() {
                    match ps.send_proc_signal(pid, ProcSignalReason::CatchupInterrupt, Some(procno))
                    {
                        Ok(_) => pgipc_ipc_stats::count(Counter::SinvalCatchups),
                        Err(e) => {
                            tracing::debug!(target: "pgipc", "sinval: catch-up signal to {pid}: {e}")
                        }
                    }
                }
                caller_held.then(|| write_lock.acquire(me, LWLockMode::Exclusive))
            }
            None => {
                drop(r);
                if caller_held {
                    Some(w)
                } else {
                    drop(w);
                    None
                }
            }
        }
    }
}

/// One backend's membership in the queue (returned by
/// [`SharedInval::shared_inval_backend_init`]). Cheap to clone; all clones are the same
/// membership.
#[derive(Clone)]
pub struct SInvalBackend {
    si: SharedInval,
    procno: ProcNumber,
    pid: i32,
    next_lxid: Arc<AtomicU32>,
    counter: Arc<AtomicU64>,
}

impl fmt::Debug for SInvalBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SInvalBackend")
            .field("procno", &self.procno)
            .field("pid", &self.pid)
            .finish()
    }
}

impl SInvalBackend {
    /// This backend's proc number.
    pub fn proc_number(&self) -> ProcNumber {
        self.procno
    }

    /// The queue.
    pub fn queue(&self) -> &SharedInval {
        &self.si
    }

    fn state(&self) -> &ProcState {
        &self.si.states[self.procno as usize]
    }

    /// Copies up to `buf.len()` unread messages into `buf` (PostgreSQL's `SIGetDataEntries`).
    ///
    /// [`Received::Reset`] means messages were lost; the backend then stands at the current end
    /// of the queue and later calls return what arrives from there on.
    pub fn get_data_entries(
        &self,
        buf: &mut [SharedInvalidationMessage],
    ) -> Result<Received, SinvalError> {
        let st = self.state();
        // Unlocked fast path: nothing new since our last read.
        if !st.has_messages.load(Ordering::Acquire) {
            return Ok(Received::Messages(0));
        }
        let me = self.si.me();
        let _r = self
            .si
            .shmem
            .main_lwlock(MainLWLockId::SInvalRead)
            .acquire(&me, LWLockMode::Shared);
        if st.proc_pid.load(Ordering::Relaxed) != self.pid {
            return Err(SinvalError::NotOwner {
                procno: self.procno,
                pid: self.pid,
            });
        }
        // Clear the hint before looking at the end of the queue, so that a message published
        // after this point sets it again.
        st.has_messages.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let max = self.si.read_max();
        if st.reset_state.load(Ordering::Relaxed) {
            st.next_msg_num.store(max, Ordering::Relaxed);
            st.reset_state.store(false, Ordering::Relaxed);
            st.signaled.store(false, Ordering::Relaxed);
            self.counter.fetch_add(1, Ordering::Relaxed);
            pgipc_ipc_stats::count(Counter::SinvalResets);
            return Ok(Received::Reset);
        }
        let mut next = st.next_msg_num.load(Ordering::Relaxed);
        let mut n = 0;
        while n < buf.len() && next < max {
            buf[n] = self.si.buffer[(next & (MAXNUMMESSAGES - 1)) as usize].load();
            next += 1;
            n += 1;
        }
        st.next_msg_num.store(next, Ordering::Relaxed);
        if next >= max {
            st.signaled.store(false, Ordering::Relaxed);
        } else {
            st.has_messages.store(true, Ordering::Relaxed);
        }
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        pgipc_ipc_stats::add(Counter::SinvalReads, n as u64);
        Ok(Received::Messages(n))
    }

    /// Reads everything pending (PostgreSQL's `ReceiveSharedInvalidMessages`): calls `inval`
    /// for each message, or `reset` once if messages were lost (and stops there, as the reset
    /// covers everything). Then, if a catch-up interrupt is pending
    /// (`pgipc_procsignal::take_pending`), passes the nudge on to the next laggard.
    pub fn receive_shared_invalid_messages(
        &self,
        mut inval: impl FnMut(&SharedInvalidationMessage),
        mut reset: impl FnMut(),
    ) -> Result<(), SinvalError> {
        let mut buf = [SharedInvalidationMessage::default(); MAXINVALMSGS];
        loop {
            match self.get_data_entries(&mut buf)? {
                Received::Reset => {
                    tracing::trace!(target: "pgipc", "cache state reset");
                    reset();
                    break;
                }
                Received::Messages(n) => {
                    buf[..n].iter().for_each(&mut inval);
                    if n < MAXINVALMSGS {
                        break;
                    }
                }
            }
        }
        if pgipc_procsignal::take_pending(ProcSignalReason::CatchupInterrupt) {
            self.si.cleanup_queue(0);
        }
        Ok(())
    }

    /// Messages and resets received so far (PostgreSQL's `SharedInvalidMessageCounter`):
    /// callers compare two readings to learn whether anything arrived in between.
    pub fn message_counter(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }

    /// The next local transaction id, skipping the invalid id 0 (PostgreSQL's
    /// `GetNextLocalTransactionId`); the counter carries over to the next holder of this proc
    /// number.
    pub fn get_next_local_transaction_id(&self) -> LocalTransactionId {
        loop {
            let v = self.next_lxid.fetch_add(1, Ordering::Relaxed);
            if v != 0 {
                return v;
            }
        }
    }

    /// Leaves the queue (PostgreSQL's `CleanupInvalidationState`), saving the local
    /// transaction counter for the next holder of the proc number.
    pub fn cleanup(&self) -> Result<(), SinvalError> {
        let si = &self.si;
        let me = si.me();
        let _w = si
            .shmem
            .main_lwlock(MainLWLockId::SInvalWrite)
            .acquire(&me, LWLockMode::Exclusive);
        let st = self.state();
        if st.proc_pid.load(Ordering::Relaxed) != self.pid {
            return Err(SinvalError::NotOwner {
                procno: self.procno,
                pid: self.pid,
            });
        }
        st.next_lxid
            .store(self.next_lxid.load(Ordering::Relaxed), Ordering::Relaxed);
        st.proc_pid.store(0, Ordering::Release);
        st.next_msg_num.store(0, Ordering::Relaxed);
        st.reset_state.store(false, Ordering::Relaxed);
        st.signaled.store(false, Ordering::Relaxed);
        let k = si.hdr.num_procs.load(Ordering::Relaxed);
        let pos = (0..k.max(0) as usize)
            .find(|i| si.procnos[*i].load(Ordering::Relaxed) == self.procno as i32)
            .ok_or(SinvalError::NotInArray)?;
        let last = si.procnos[(k - 1) as usize].load(Ordering::Relaxed);
        si.procnos[pos].store(last, Ordering::Relaxed);
        si.hdr.num_procs.store(k - 1, Ordering::Release);
        Ok(())
    }

    /// Registers [`cleanup`](Self::cleanup) as an `on_shmem_exit` callback of this process.
    pub fn cleanup_on_shmem_exit(&self) -> Result<(), SinvalError> {
        let me = self.clone();
        pgipc_ipc::on_shmem_exit(move |_| {
            if let Err(e) = me.cleanup() {
                tracing::warn!(target: "pgipc", "{e}");
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
