//! Signals between server processes, multiplexed over `SIGUSR1`, signal barriers, and cancel
//! keys.
//!
//! Mirrors PostgreSQL 18's `storage/ipc/procsignal.c` (and `procsignal.h`). Each process that
//! takes part has a slot indexed by its proc number. To ask it for something, raise the reason's
//! flag in its slot and send it `SIGUSR1`; its handler moves every raised flag into
//! process-local "pending" flags and sets its latch, and the process acts at its next
//! interrupt check ([`take_pending`]). A *barrier* makes every process absorb a state change
//! (e.g. "close all your file handles") and lets the emitter wait until all have. Since
//! PostgreSQL 18 the slot also keeps the backend's cancel key, against which cancel requests
//! are checked ([`ProcSignal::send_cancel_request`]); a process that joins without a key
//! (`None`: auxiliary processes, background workers) can never be matched.
//!
//! ```text
//!  "ProcSignal"
//!  ┌───────────────────────────────────────────────────────────────────────────────┐
//!  │ header: barrier_generation (u64, only grows)     num_slots                    │
//!  ├───────────────────────────────────────────────────────────────────────────────┤
//!  │ slot[procno]  (procno = MaxBackends + NUM_AUXILIARY_PROCS slots)              │
//!  │   pid               owner, 0 = free           ┐                               │
//!  │   cancel_key_len    0 = not cancellable       │ written under `mutex`         │
//!  │   cancel_key[32]                              │ (a spinlock); pid also read   │
//!  │   signal_flags[15]  one word per reason       ┘ unlocked as a pre-check       │
//!  │   mutex             spinlock                                                  │
//!  │   barrier_check_mask  kinds still to absorb (emitters OR, owner swaps to 0)   │
//!  │   barrier_generation  last generation absorbed; u64::MAX when free            │
//!  │   barrier_cv          futex word, bumped and woken when the generation moves  │
//!  └───────────────────────────────────────────────────────────────────────────────┘
//!
//!  sender: lock slot; pid still the target? → flag[r] = 1; unlock; kill(pid, SIGUSR1)
//!  target's handler: for each reason: flag swap 0 → PENDING[r] = true; set_my_latch()
//!  emitter: OR kind bit into every mask → generation += 1 → flag BARRIER + SIGUSR1 to all
//!  owner:   mask swap 0 → run each kind's callback → slot generation = generation read
//!  waiter:  for each slot: sleep on barrier_cv while slot generation < target
//! ```
//!
//! # Concurrency contract
//! * `pid`, `cancel_key*` and `signal_flags` are written under the slot's spinlock. The owner
//!   writes `pid` (set at [`ProcSignal::init_slot`], cleared at exit); senders set flags only
//!   after re-checking `pid` under the lock, so a slot taken over by another process never gets
//!   a flag meant for the previous owner. The owner's handler clears flags without the lock
//!   (an atomic swap: a flag raised again meanwhile is seen on the next signal).
//! * `barrier_check_mask`: any emitter ORs bits in; only the owner clears them (swap), *before*
//!   acting on them, so an emission during processing is never lost.
//! * `barrier_generation` (slot): written by the owner only, and only upwards, except that exit
//!   sets it to `u64::MAX` (a free slot satisfies every waiter).
//! * The global generation is bumped *after* the masks are set; a joining process publishes
//!   its pid with a full fence *before* copying the global generation. So an emitter either
//!   sees the newcomer (and signals it), or the newcomer starts at the new generation.
//! * Every reason must be harmless when delivered spuriously (a pid can be reused).
//! * The handler only touches atomics, sets the latch and restores `errno`.
//!
//! # What this crate does not do
//! * It does not run the work a reason asks for: callers check [`take_pending`] at their
//!   interrupt checks (PostgreSQL's `Handle*Interrupt` functions only set flags too). Barrier
//!   kinds run callbacks registered with [`register_barrier_callback`].
//! * The condition variable is a futex word per slot rather than PostgreSQL's general
//!   `ConditionVariable` (the workspace has none); the timed sleep and its "still waiting"
//!   log line every 5 s are kept.
//! * Cancel requests are sent to the backend's pid, not its process group.
//! * One slot per process: the handler's view of "my slot" is process-global.
//!
//! Key items: [`shmem_size`], [`shmem_init`], [`ProcSignal`], [`ProcSignalReason`],
//! [`ProcSignalBarrierType`], [`install_handler`], [`take_pending`], [`BarrierProgress`],
//! [`ProcSignalError`].

mod local;
mod sys;

use pgipc_lwlock::SpinLock;
pub use pgipc_proc::ProcNumber;
use pgipc_shmem::{add_size, mul_size, InitKind, Shared, Shmem, ShmemError, ShmemSafe, SizeError};
use std::fmt;
use std::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

pub use local::{
    any_pending, install_handler, register_barrier_callback, take_pending, BarrierCallback,
};

/// The Shmem Index name of the shared state (PostgreSQL's).
pub const PROCSIGNAL_NAME: &str = "ProcSignal";

/// Longest cancel key a slot stores, and the length of the keys the server hands out to
/// protocol 3.2 clients (PostgreSQL 18's `MAX_CANCEL_KEY_LENGTH`). The one definition in the
/// workspace: `pgipc-libpq` uses it for the key length it announces.
pub const MAX_CANCEL_KEY_LENGTH: usize = 32;

/// Longest key a CancelRequest may carry on the wire (the protocol's bound, 256 bytes, which
/// PostgreSQL 18's `ProcessCancelRequestPacket` enforces). Longer than any key a slot stores:
/// such a request can never match, and is refused before any slot is looked at.
pub const MAX_CANCEL_REQUEST_KEY_LENGTH: usize = 256;

/// How long a barrier waiter sleeps before logging that it is still waiting.
pub const BARRIER_WAIT_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Why a process is signalled (PostgreSQL 18's `ProcSignalReason`, in its order).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcSignalReason {
    /// Shared-invalidation catch-up (sinval).
    CatchupInterrupt = 0,
    /// LISTEN/NOTIFY.
    NotifyInterrupt,
    /// A message from a parallel worker.
    ParallelMessage,
    /// Ask a WAL sender that is still initialising to stop.
    WalsndInitStopping,
    /// A signal barrier is waiting to be absorbed.
    Barrier,
    /// Log the memory contexts.
    LogMemoryContext,
    /// A message from a parallel apply worker.
    ParallelApplyMessage,
    /// Recovery conflict: database dropped.
    RecoveryConflictDatabase,
    /// Recovery conflict: tablespace dropped.
    RecoveryConflictTablespace,
    /// Recovery conflict: lock.
    RecoveryConflictLock,
    /// Recovery conflict: snapshot.
    RecoveryConflictSnapshot,
    /// Recovery conflict: logical slot.
    RecoveryConflictLogicalslot,
    /// Recovery conflict: buffer pin.
    RecoveryConflictBufferpin,
    /// Recovery conflict: startup-process deadlock.
    RecoveryConflictStartupDeadlock,
    /// Ask the slot-sync worker to stop.
    SlotsyncMessage,
}

/// Number of [`ProcSignalReason`]s (`NUM_PROCSIGNALS`).
pub const NUM_PROCSIGNALS: usize = 15;

impl ProcSignalReason {
    /// Every reason, in index order.
    pub const ALL: [ProcSignalReason; NUM_PROCSIGNALS] = [
        ProcSignalReason::CatchupInterrupt,
        ProcSignalReason::NotifyInterrupt,
        ProcSignalReason::ParallelMessage,
        ProcSignalReason::WalsndInitStopping,
        ProcSignalReason::Barrier,
        ProcSignalReason::LogMemoryContext,
        ProcSignalReason::ParallelApplyMessage,
        ProcSignalReason::RecoveryConflictDatabase,
        ProcSignalReason::RecoveryConflictTablespace,
        ProcSignalReason::RecoveryConflictLock,
        ProcSignalReason::RecoveryConflictSnapshot,
        ProcSignalReason::RecoveryConflictLogicalslot,
        ProcSignalReason::RecoveryConflictBufferpin,
        ProcSignalReason::RecoveryConflictStartupDeadlock,
        ProcSignalReason::SlotsyncMessage,
    ];

    /// The order in which the handler looks at the reasons (PostgreSQL's handler order: the
    /// plain interrupts, then the recovery conflicts, buffer pin last).
    pub const HANDLER_ORDER: [ProcSignalReason; NUM_PROCSIGNALS] = [
        ProcSignalReason::CatchupInterrupt,
        ProcSignalReason::NotifyInterrupt,
        ProcSignalReason::ParallelMessage,
        ProcSignalReason::WalsndInitStopping,
        ProcSignalReason::Barrier,
        ProcSignalReason::LogMemoryContext,
        ProcSignalReason::ParallelApplyMessage,
        ProcSignalReason::SlotsyncMessage,
        ProcSignalReason::RecoveryConflictDatabase,
        ProcSignalReason::RecoveryConflictTablespace,
        ProcSignalReason::RecoveryConflictLock,
        ProcSignalReason::RecoveryConflictSnapshot,
        ProcSignalReason::RecoveryConflictLogicalslot,
        ProcSignalReason::RecoveryConflictStartupDeadlock,
        ProcSignalReason::RecoveryConflictBufferpin,
    ];

    /// Whether this is one of the recovery-conflict reasons.
    pub const fn is_recovery_conflict(self) -> bool {
        let i = self as u32;
        i >= ProcSignalReason::RecoveryConflictDatabase as u32
            && i <= ProcSignalReason::RecoveryConflictStartupDeadlock as u32
    }
}

impl TryFrom<u32> for ProcSignalReason {
    type Error = ProcSignalError;
    fn try_from(v: u32) -> Result<Self, ProcSignalError> {
        ProcSignalReason::ALL
            .get(v as usize)
            .copied()
            .ok_or(ProcSignalError::InvalidReason { reason: v })
    }
}

/// Kinds of signal barrier (PostgreSQL 18's `ProcSignalBarrierType`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcSignalBarrierType {
    /// Close every storage-manager file handle (`PROCSIGNAL_BARRIER_SMGRRELEASE`).
    SmgrRelease = 0,
}

/// Number of [`ProcSignalBarrierType`]s.
pub const NUM_BARRIER_TYPES: usize = 1;

impl ProcSignalBarrierType {
    /// Every kind, in bit order.
    pub const ALL: [ProcSignalBarrierType; NUM_BARRIER_TYPES] =
        [ProcSignalBarrierType::SmgrRelease];
}

impl TryFrom<u32> for ProcSignalBarrierType {
    type Error = ProcSignalError;
    fn try_from(v: u32) -> Result<Self, ProcSignalError> {
        ProcSignalBarrierType::ALL
            .get(v as usize)
            .copied()
            .ok_or(ProcSignalError::InvalidBarrierType { kind: v })
    }
}

/// What [`ProcSignal::process_proc_signal_barrier`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierProgress {
    /// Nothing was emitted since this process last absorbed.
    UpToDate,
    /// Every pending kind was absorbed; the slot's generation moved forward.
    Absorbed,
    /// A callback asked to be retried later: the kind stays pending (and
    /// [`ProcSignalReason::Barrier`] pending locally), the generation did not move.
    Deferred,
}

/// Errors of the procsignal crate. Messages are PostgreSQL's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum ProcSignalError {
    /// A size overflowed.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// The shared state could not be created or found.
    #[error("could not initialize \"{PROCSIGNAL_NAME}\": {0}")]
    Shmem(#[from] ShmemError),
    /// More slots than a proc number can address.
    #[error("too many ProcSignal slots: {n}")]
    TooManySlots {
        /// The requested count.
        n: usize,
    },
    /// A proc number outside the slot array.
    #[error("unexpected proc number {procno} (max {max})")]
    InvalidProcNumber {
        /// The rejected proc number.
        procno: ProcNumber,
        /// The largest valid one.
        max: i64,
    },
    /// A reason number outside [`ProcSignalReason`].
    #[error("invalid ProcSignal reason {reason}")]
    InvalidReason {
        /// The rejected number.
        reason: u32,
    },
    /// A barrier type number outside [`ProcSignalBarrierType`].
    #[error("invalid ProcSignalBarrier type {kind}")]
    InvalidBarrierType {
        /// The rejected number.
        kind: u32,
    },
    /// A generation that was never emitted.
    #[error("ProcSignalBarrier generation {generation} was not emitted (current {current})")]
    InvalidGeneration {
        /// The requested generation.
        generation: u64,
        /// The current one.
        current: u64,
    },
    /// A cancel key that is empty or longer than a slot holds (a process without a key
    /// passes `None` instead).
    #[error("invalid cancel key length {len}: must be 1 to {MAX_CANCEL_KEY_LENGTH} bytes")]
    InvalidCancelKeyLength {
        /// Its length.
        len: usize,
    },
    /// The target pid owns no slot, or is gone (errno `ESRCH`).
    #[error("process {pid} is not a server process or does not exist")]
    NoSuchProcess {
        /// The target pid.
        pid: i32,
    },
    /// `kill` failed for another reason (e.g. `EPERM`).
    #[error("could not send signal to process {pid}: {source}")]
    Kill {
        /// The target pid.
        pid: i32,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// This process has no ProcSignal slot.
    #[error("ProcSignal slot not initialized in this process")]
    NoSlot,
    /// Installing the signal handler failed.
    #[error("could not install SIGUSR1 handler: {0}")]
    Handler(#[source] std::io::Error),
    /// Registering the exit callback failed.
    #[error(transparent)]
    Ipc(#[from] pgipc_ipc::IpcError),
}

/// The fixed part of "ProcSignal"; the slots follow it in the same allocation.
///
/// # Layout
/// `#[repr(C)]`, 16 bytes, align 8.
///
/// # Synchronization
/// `barrier_generation` only grows, by atomic add of an emitter; `num_slots` is written once
/// by the creator. Private to this crate ([`ProcSignal::current_barrier_generation`] reads it).
#[repr(C)]
#[derive(Debug)]
pub struct ProcSignalHeader {
    /// The highest barrier generation emitted (only grows).
    pub(crate) barrier_generation: AtomicU64,
    /// Number of slots (informational).
    pub(crate) num_slots: AtomicU32,
    _pad: u32,
}

/// One process's slot (PostgreSQL's `ProcSignalSlot`).
///
/// # Layout
/// `#[repr(C)]`, 120 bytes, align 8; all-zero is a free slot except that
/// `barrier_generation` must be `u64::MAX` when free ([`shmem_init`] writes it).
///
/// # Synchronization
/// See the crate docs: `pid`, `cancel_key_len`, `cancel_key` and `signal_flags` are written
/// under `mutex`; the barrier fields are atomics with the rules given there. The fields are
/// private to this crate, whose methods are the only writers; other crates read a slot through
/// [`pid`](Self::pid) and [`barrier_generation`](Self::barrier_generation).
#[repr(C)]
pub struct ProcSignalSlot {
    /// Owner pid, 0 when free.
    pub(crate) pid: AtomicI32,
    /// Protects the identity fields and the flags against concurrent writers.
    pub(crate) mutex: SpinLock,
    /// Length of the cancel key; 0 = the process has no key (auxiliary processes, background
    /// workers) and no cancel request ever matches it.
    pub(crate) cancel_key_len: AtomicU32,
    /// One word per [`ProcSignalReason`]: 1 = raised, not yet seen by the handler.
    pub(crate) signal_flags: [AtomicU32; NUM_PROCSIGNALS],
    /// Bits of the [`ProcSignalBarrierType`]s this process still has to absorb.
    pub(crate) barrier_check_mask: AtomicU32,
    /// Futex word of the barrier condition variable (a wake-up counter).
    pub(crate) barrier_cv: AtomicU32,
    /// The cancel key (first `cancel_key_len` bytes).
    pub(crate) cancel_key: [AtomicU8; MAX_CANCEL_KEY_LENGTH],
    /// Last barrier generation this process absorbed; `u64::MAX` when the slot is free.
    pub(crate) barrier_generation: AtomicU64,
}

impl fmt::Debug for ProcSignalSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcSignalSlot")
            .field("pid", &self.pid.load(Ordering::Relaxed))
            .field(
                "barrier_generation",
                &self.barrier_generation.load(Ordering::Relaxed),
            )
            .field(
                "barrier_check_mask",
                &self.barrier_check_mask.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl ProcSignalSlot {
    /// Owner pid, 0 when free. Written under the slot's `mutex`, only by the owner as it joins
    /// and leaves (a crashed owner's slot goes with the crash restart); read lock-free with
    /// Acquire, so it can be stale by the time it is used (a sender re-checks it under the
    /// mutex).
    pub fn pid(&self) -> i32 {
        self.pid.load(Ordering::Acquire)
    }

    /// Last barrier generation the owner absorbed (`u64::MAX` when the slot is free). Written
    /// only by the owner, only upwards (to `u64::MAX` as it leaves); read lock-free with
    /// Acquire by barrier waiters.
    pub fn barrier_generation(&self) -> u64 {
        self.barrier_generation.load(Ordering::Acquire)
    }
}

// SAFETY: repr(C), atomics and the process-shared spinlock only, no pointers; all-zero is a
// valid (if not yet initialised) value.
unsafe impl ShmemSafe for ProcSignalHeader {}
// SAFETY: as above.
unsafe impl ShmemSafe for ProcSignalSlot {}

/// Bytes needed for `n_slots` slots (PostgreSQL's `ProcSignalShmemSize`).
pub fn shmem_size(n_slots: usize) -> Result<usize, SizeError> {
    add_size(
        size_of::<ProcSignalHeader>(),
        mul_size(n_slots, size_of::<ProcSignalSlot>())?,
    )
}

/// Creates or finds "ProcSignal" (PostgreSQL's `ProcSignalShmemInit`).
///
/// `n_slots` is `MaxBackends + NUM_AUXILIARY_PROCS` (every proc number that can signal or be
/// signalled); it must be the same in every process.
pub fn shmem_init(shmem: &Shmem, n_slots: usize) -> Result<ProcSignal, ProcSignalError> {
    let n = u32::try_from(n_slots)
        .ok()
        .filter(|n| *n < u32::MAX)
        .ok_or(ProcSignalError::TooManySlots { n: n_slots })?;
    let (off, kind) = shmem.init_raw(PROCSIGNAL_NAME, shmem_size(n_slots)?)?;
    let hdr: Shared<ProcSignalHeader> = shmem.view(off).ok_or(ShmemError::NotInitialized)?;
    let slots = shmem
        .view_slice::<ProcSignalSlot>(off + size_of::<ProcSignalHeader>() as u64, n_slots)
        .ok_or(ShmemError::NotInitialized)?;
    if kind == InitKind::Created {
        hdr.barrier_generation.store(0, Ordering::Relaxed);
        for s in slots.iter() {
            s.mutex.init();
            s.pid.store(0, Ordering::Relaxed);
            s.cancel_key_len.store(0, Ordering::Relaxed);
            for f in &s.signal_flags {
                f.store(0, Ordering::Relaxed);
            }
            s.barrier_check_mask.store(0, Ordering::Relaxed);
            s.barrier_cv.store(0, Ordering::Relaxed);
            s.barrier_generation.store(u64::MAX, Ordering::Relaxed);
        }
        hdr.num_slots.store(n, Ordering::Release);
    }
    Ok(ProcSignal { hdr, slots, n })
}

/// This process's handle on "ProcSignal". Cheap to clone.
#[derive(Clone)]
pub struct ProcSignal {
    hdr: Shared<ProcSignalHeader>,
    slots: Shared<[ProcSignalSlot]>,
    n: u32,
}

impl fmt::Debug for ProcSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcSignal")
            .field("num_slots", &self.n)
            .field(
                "barrier_generation",
                &self.hdr.barrier_generation.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl ProcSignal {
    /// Number of slots.
    pub fn num_slots(&self) -> u32 {
        self.n
    }

    /// The slot of `procno` (its fields are this crate's; [`ProcSignalSlot`] has readers).
    pub fn slot(&self, procno: ProcNumber) -> Result<&ProcSignalSlot, ProcSignalError> {
        self.slots
            .get(procno as usize)
            .ok_or(ProcSignalError::InvalidProcNumber {
                procno,
                max: i64::from(self.n) - 1,
            })
    }

    /// The pid owning `procno`'s slot (0 = free).
    pub fn slot_pid(&self, procno: ProcNumber) -> Result<i32, ProcSignalError> {
        Ok(self.slot(procno)?.pid())
    }

    /// The highest barrier generation emitted so far.
    pub fn current_barrier_generation(&self) -> u64 {
        self.hdr.barrier_generation.load(Ordering::Acquire)
    }

    // ---- joining and leaving ----

    /// Claims `procno`'s slot for this process (PostgreSQL 18's `ProcSignalInit`).
    ///
    /// Stores `pid` and the cancel key (`None` for a process without one, which no cancel
    /// request can match; else 1 to [`MAX_CANCEL_KEY_LENGTH`] bytes), starts at the current
    /// barrier generation, makes the
    /// slot this process's (what the handler and
    /// [`process_proc_signal_barrier`](Self::process_proc_signal_barrier) use), and registers an
    /// `on_shmem_exit` callback that frees it. Call [`install_handler`] too.
    pub fn init_slot(
        &self,
        procno: ProcNumber,
        pid: i32,
        cancel_key: Option<&[u8]>,
    ) -> Result<(), ProcSignalError> {
        let old = self.claim_slot(procno, pid, cancel_key)?;
        if old != 0 {
            tracing::info!(
                target: "pgipc",
                "process {pid} taking over ProcSignal slot {procno}, but it's not empty"
            );
        }
        local::set_my_slot(self, procno);
        let me = self.clone();
        pgipc_ipc::on_shmem_exit(move |_| me.cleanup_slot(pid))?;
        Ok(())
    }

    /// The shared part of `init_slot`: returns the pid the slot held before.
    fn claim_slot(
        &self,
        procno: ProcNumber,
        pid: i32,
        cancel_key: Option<&[u8]>,
    ) -> Result<i32, ProcSignalError> {
        let slot = self.slot(procno)?;
        // "No key" is its own state, never an empty key: stored as length 0, which the
        // sender treats as unmatchable whatever the request carries.
        let cancel_key: &[u8] = match cancel_key {
            None => &[],
            Some(k) if k.is_empty() || k.len() > MAX_CANCEL_KEY_LENGTH => {
                return Err(ProcSignalError::InvalidCancelKeyLength { len: k.len() });
            }
            Some(k) => k,
        };
        let _g = slot.mutex.lock();
        let old = slot.pid.load(Ordering::Relaxed);
        for f in &slot.signal_flags {
            f.store(0, Ordering::Relaxed);
        }
        // Publish the pid before reading the global generation (full fence): an emitter that
        // bumps the generation after this either sees our pid and signals us, or we read its
        // new generation below. Either way we never absorb a barrier we did not see.
        slot.pid.store(pid, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        slot.barrier_check_mask.store(0, Ordering::Relaxed);
        let generation = self.hdr.barrier_generation.load(Ordering::SeqCst);
        slot.barrier_generation.store(generation, Ordering::Release);
        for (i, b) in slot.cancel_key.iter().enumerate() {
            b.store(cancel_key.get(i).copied().unwrap_or(0), Ordering::Relaxed);
        }
        slot.cancel_key_len
            .store(cancel_key.len() as u32, Ordering::Relaxed);
        Ok(old)
    }

    /// Frees this process's slot (PostgreSQL's `CleanupProcSignalState`, normally run by the
    /// exit callback [`init_slot`](Self::init_slot) registered). A slot that `pid` no longer
    /// owns is left alone.
    pub fn cleanup_slot(&self, pid: i32) {
        // The handler must stop touching the slot first.
        let Some(procno) = local::clear_my_slot() else {
            return;
        };
        self.release_slot(procno, pid);
    }

    fn release_slot(&self, procno: ProcNumber, pid: i32) {
        let Ok(slot) = self.slot(procno) else {
            return;
        };
        {
            let _g = slot.mutex.lock();
            let owner = slot.pid.load(Ordering::Relaxed);
            if owner != pid {
                drop(_g);
                tracing::info!(
                    target: "pgipc",
                    "process {pid} releasing ProcSignal slot {procno}, but it contains {owner}"
                );
                return;
            }
            slot.pid.store(0, Ordering::Release);
            slot.cancel_key_len.store(0, Ordering::Relaxed);
        }
        // A free slot satisfies every barrier waiter.
        slot.barrier_generation.store(u64::MAX, Ordering::Release);
        broadcast(slot);
    }

    // ---- signals ----

    /// Asks process `pid` to act on `reason` (PostgreSQL's `SendProcSignal`).
    ///
    /// With `procno` only that slot is looked at; without, every slot (from the end, where the
    /// auxiliary processes live). Fails with [`ProcSignalError::NoSuchProcess`] when no slot
    /// belongs to `pid` (it exited, or never joined) or when the process is gone, and with
    /// [`ProcSignalError::InvalidProcNumber`] for a proc number outside the array.
    pub fn send_proc_signal(
        &self,
        pid: i32,
        reason: ProcSignalReason,
        procno: Option<ProcNumber>,
    ) -> Result<(), ProcSignalError> {
        if pid <= 0 {
            return Err(ProcSignalError::NoSuchProcess { pid });
        }
        let raised = match procno {
            Some(p) => self.raise(self.slot(p)?, pid, reason),
            None => self
                .slots
                .iter()
                .rev()
                .any(|s| s.pid.load(Ordering::Relaxed) == pid && self.raise(s, pid, reason)),
        };
        if !raised {
            return Err(ProcSignalError::NoSuchProcess { pid });
        }
        sys::kill(pid, sys::SIGUSR1).map_err(|source| {
            if source.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) {
                ProcSignalError::NoSuchProcess { pid }
            } else {
                ProcSignalError::Kill { pid, source }
            }
        })?;
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::ProcSignalSends);
        Ok(())
    }

    /// Raises `reason` in `slot` if `pid` owns it (checked under the lock).
    fn raise(&self, slot: &ProcSignalSlot, pid: i32, reason: ProcSignalReason) -> bool {
        let _g = slot.mutex.lock();
        if slot.pid.load(Ordering::Relaxed) != pid {
            return false;
        }
        slot.signal_flags[reason as usize].store(1, Ordering::SeqCst);
        true
    }

    /// Checks a cancel request and, if the key matches, sends `SIGINT` to the backend
    /// (PostgreSQL 18's `SendCancelRequest`). A slot without a key (an auxiliary process, a
    /// background worker) never matches; otherwise the lengths must be equal and the bytes
    /// are compared in time independent of where they differ. An empty key or one longer
    /// than [`MAX_CANCEL_REQUEST_KEY_LENGTH`] is refused before any slot is looked at (the
    /// startup-packet parser already refuses them; this keeps the check where the match is
    /// decided). A wrong key, an unknown pid or a failed `kill` return `false` and are only
    /// logged: the requester learns nothing.
    pub fn send_cancel_request(&self, backend_pid: i32, key: &[u8]) -> bool {
        if backend_pid <= 0 {
            tracing::info!(target: "pgipc", "invalid cancel request with PID {backend_pid}");
            return false;
        }
        if key.is_empty() || key.len() > MAX_CANCEL_REQUEST_KEY_LENGTH {
            tracing::info!(
                target: "pgipc",
                "invalid length of cancel key in cancel request packet"
            );
            return false;
        }
        for slot in self.slots.iter() {
            if slot.pid.load(Ordering::Relaxed) != backend_pid {
                continue;
            }
            let matched = {
                let _g = slot.mutex.lock();
                if slot.pid.load(Ordering::Relaxed) != backend_pid {
                    continue;
                }
                let len = (slot.cancel_key_len.load(Ordering::Relaxed) as usize)
                    .min(MAX_CANCEL_KEY_LENGTH);
                // len 0: the process has no key; nothing matches it.
                len != 0 && len == key.len() && key_equal(&slot.cancel_key[..len], key)
            };
            if !matched {
                tracing::info!(
                    target: "pgipc",
                    "wrong key in cancel request for process {backend_pid}"
                );
                return false;
            }
            tracing::debug!(target: "pgipc", "processing cancel request: sending SIGINT to process {backend_pid}");
            return match sys::kill(backend_pid, sys::SIGINT) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(target: "pgipc", "kill({backend_pid},SIGINT) failed: {e}");
                    false
                }
            };
        }
        tracing::info!(
            target: "pgipc",
            "PID {backend_pid} in cancel request did not match any process"
        );
        false
    }

    // ---- barriers ----

    /// Starts a barrier of `kind` and returns its generation (PostgreSQL's
    /// `EmitProcSignalBarrier`). Never fails: processes that cannot be signalled absorb it at
    /// their next check or are gone (their slot then satisfies waiters).
    pub fn emit_proc_signal_barrier(&self, kind: ProcSignalBarrierType) -> u64 {
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::BarrierEmits);
        let bit = 1u32 << (kind as u32);
        // Masks first, generation second (see the crate docs).
        for s in self.slots.iter() {
            s.barrier_check_mask.fetch_or(bit, Ordering::SeqCst);
        }
        let generation = self.hdr.barrier_generation.fetch_add(1, Ordering::SeqCst) + 1;
        for s in self.slots.iter().rev() {
            let pid = s.pid.load(Ordering::SeqCst);
            if pid != 0 && self.raise(s, pid, ProcSignalReason::Barrier) {
                // A process that died without cleaning up is no concern here.
                let _ = sys::kill(pid, sys::SIGUSR1);
            }
        }
        generation
    }

    /// Waits until every process with a slot has absorbed barrier `generation` (PostgreSQL's
    /// `WaitForProcSignalBarrier`). A process that exits meanwhile frees its slot, which counts
    /// as absorbed. Logs "still waiting" every [`BARRIER_WAIT_LOG_INTERVAL`] for a laggard.
    ///
    /// Fails only for a generation that was never emitted (waiting for it could never end).
    pub fn wait_for_proc_signal_barrier(&self, generation: u64) -> Result<(), ProcSignalError> {
        self.wait_for_proc_signal_barrier_until(generation, None)
            .map(drop)
    }

    /// [`wait_for_proc_signal_barrier`](Self::wait_for_proc_signal_barrier) that gives up after
    /// `timeout`: returns `Ok(true)` when the barrier completed, `Ok(false)` on timeout.
    pub fn wait_for_proc_signal_barrier_until(
        &self,
        generation: u64,
        timeout: Option<Duration>,
    ) -> Result<bool, ProcSignalError> {
        let current = self.current_barrier_generation();
        if generation > current {
            return Err(ProcSignalError::InvalidGeneration {
                generation,
                current,
            });
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        for s in self.slots.iter().rev() {
            loop {
                let seq = s.barrier_cv.load(Ordering::SeqCst);
                if s.barrier_generation.load(Ordering::SeqCst) >= generation {
                    break;
                }
                let mut nap = BARRIER_WAIT_LOG_INTERVAL;
                if let Some(d) = deadline {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    nap = nap.min(left);
                }
                pgipc_wait_event::report_wait_start(
                    pgipc_wait_event::WAIT_EVENT_PROC_SIGNAL_BARRIER,
                );
                let woken = pgipc_lwlock::futex::wait(&s.barrier_cv, seq, Some(nap));
                pgipc_wait_event::report_wait_end();
                if !woken && nap == BARRIER_WAIT_LOG_INTERVAL {
                    tracing::info!(
                        target: "pgipc",
                        "still waiting for backend with PID {} to accept ProcSignalBarrier",
                        s.pid.load(Ordering::Relaxed)
                    );
                }
            }
        }
        // The caller may now rely on every process having changed state.
        fence(Ordering::SeqCst);
        Ok(true)
    }

    /// Absorbs every barrier emitted since this process last did (PostgreSQL's
    /// `ProcessProcSignalBarrier`): runs the callback of each pending kind, lowest bit first.
    ///
    /// Call it when [`take_pending`]`(ProcSignalReason::Barrier)` said so (it is also cheap to
    /// call at any time). A callback that returns `false` leaves its kind pending and the
    /// generation unchanged ([`BarrierProgress::Deferred`]); a callback that panics does the
    /// same for every kind not yet done, and the panic continues.
    pub fn process_proc_signal_barrier(&self) -> Result<BarrierProgress, ProcSignalError> {
        let procno = local::my_slot_index().ok_or(ProcSignalError::NoSlot)?;
        local::clear_barrier_pending();
        let progress = self.absorb(procno)?;
        if progress == BarrierProgress::Deferred {
            local::set_barrier_pending();
        }
        Ok(progress)
    }

    /// The shared part of `process_proc_signal_barrier`, for slot `procno`.
    fn absorb(&self, procno: ProcNumber) -> Result<BarrierProgress, ProcSignalError> {
        let slot = self.slot(procno)?;
        let shared = self.hdr.barrier_generation.load(Ordering::SeqCst);
        let local = slot.barrier_generation.load(Ordering::Acquire);
        if local == shared {
            return Ok(BarrierProgress::UpToDate);
        }
        // Clear before acting: a kind emitted again while we work stays set for next time.
        let mut todo = slot.barrier_check_mask.swap(0, Ordering::SeqCst);
        let mut failed = 0u32;
        while todo != 0 {
            let bit = todo & todo.wrapping_neg();
            todo &= !bit;
            let kind = ProcSignalBarrierType::try_from(bit.trailing_zeros())?;
            match std::panic::catch_unwind(|| local::run_barrier_callback(kind)) {
                Ok(true) => {}
                Ok(false) => failed |= bit,
                Err(panic) => {
                    slot.barrier_check_mask
                        .fetch_or(failed | bit | todo, Ordering::SeqCst);
                    local::set_barrier_pending();
                    std::panic::resume_unwind(panic);
                }
            }
        }
        if failed != 0 {
            slot.barrier_check_mask.fetch_or(failed, Ordering::SeqCst);
            return Ok(BarrierProgress::Deferred);
        }
        slot.barrier_generation.store(shared, Ordering::SeqCst);
        broadcast(slot);
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::BarrierAbsorbs);
        Ok(BarrierProgress::Absorbed)
    }
}

/// Wakes every waiter of `slot`'s barrier condition variable.
fn broadcast(slot: &ProcSignalSlot) {
    slot.barrier_cv.fetch_add(1, Ordering::SeqCst);
    pgipc_lwlock::futex::wake_all(&slot.barrier_cv);
}

/// Compares two equally long byte strings in time independent of where they differ
/// (PostgreSQL's `timingsafe_bcmp`).
fn key_equal(stored: &[AtomicU8], given: &[u8]) -> bool {
    let diff = stored
        .iter()
        .zip(given)
        .fold(0u8, |acc, (a, b)| acc | (a.load(Ordering::Relaxed) ^ b));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests;
