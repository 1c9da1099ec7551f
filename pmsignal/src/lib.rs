//! Signals from child processes to the postmaster, and the postmaster's view of each child slot.
//!
//! Mirrors PostgreSQL's `storage/ipc/pmsignal.c` (and `pmsignal.h`). A child that wants the
//! postmaster to act (start a worker, advance its state machine, …) raises a per-reason flag in
//! shared memory and then sends the postmaster `SIGUSR1`; the postmaster's handler only sets its
//! latch, and its main loop later tests and clears each flag. Separately, one word per
//! postmaster child slot says whether the child holding it is attached to shared memory, which
//! is how the postmaster tells an orderly exit from a crash.
//!
//! ```text
//!  "PMSignalState" (one allocation; every field is one atomic word, no locks)
//!  ┌───────────────────────────────────────────────────────────────────────────┐
//!  │ flags[NUM_PMSIGNALS]   0/1 per PMSignalReason   child: store 1, then kill │
//!  │                                                 postmaster: swap(0)       │
//!  │ sigquit_reason         QuitSignalReason         postmaster writes         │
//!  │ postmaster_pid         whom children SIGUSR1    postmaster writes         │
//!  │ num_child_flags        n (informational only)                             │
//!  ├───────────────────────────────────────────────────────────────────────────┤
//!  │ child_flags[n]   slot 1..=n (1-based), one state word each                │
//!  └───────────────────────────────────────────────────────────────────────────┘
//!
//!  life of one slot:
//!    UNUSED ──assign (PM, before fork)──► ASSIGNED ──attach (child)──► ACTIVE
//!      ▲                                   ▲    ▲                        │
//!      │                                   │    └── orderly exit ────────┤
//!      │                                   │                             ▼ declares itself
//!      │                                   └────── orderly exit ─── WALSENDER
//!      └── unassign (PM, after reaping): returns true iff it found ASSIGNED,
//!          i.e. the child detached in order; anything else is a crash
//! ```
//!
//! # Concurrency contract
//! * `flags[r]`: any child stores 1 (then signals); only the postmaster clears it, with an
//!   atomic swap, so a flag raised between the check and the clear is never lost. Two raises
//!   before one check are seen once: handlers of every reason must be idempotent.
//! * `sigquit_reason`, `postmaster_pid`: written by the postmaster only (children read).
//! * `child_flags[slot]`: the postmaster moves UNUSED→ASSIGNED and anything→UNUSED; the child
//!   holding the slot moves ASSIGNED→ACTIVE→WALSENDER and back to ASSIGNED. The two never
//!   write at the same time by construction (the postmaster writes only before the fork and
//!   after reaping).
//! * The postmaster keeps its own copy of the slot count in [`PMSignal`] and never trusts the
//!   shared `num_child_flags`, which a crashing child could have scribbled on.
//!
//! # What this crate does not do
//! * It does not hand out slot numbers: the postmaster's child pools do (PostgreSQL's
//!   pmchild.c); this crate only records each slot's state.
//! * It installs no signal handler: the postmaster's `SIGUSR1` handler sets its latch and its
//!   loop calls [`PMSignal::check_postmaster_signal`].
//! * Postmaster-death detection lives in `pgipc_waiteventset::postmaster_death` (the pipe and
//!   the parent-death signal, which wait sets need); it is re-exported here as
//!   [`postmaster_is_alive`] and [`postmaster_death`].
//!
//! Key items: [`shmem_size`], [`shmem_init`], [`PMSignal`], [`PMSignalReason`],
//! [`QuitSignalReason`], [`ChildSlotState`], [`PmSignalError`].

mod sys;

use pgipc_shmem::{add_size, mul_size, InitKind, Shared, Shmem, ShmemError, ShmemSafe, SizeError};
use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

pub use pgipc_waiteventset::postmaster_death;
pub use pgipc_waiteventset::postmaster_is_alive;

/// The Shmem Index name of the shared state (PostgreSQL's).
pub const PMSIGNAL_STATE_NAME: &str = "PMSignalState";

/// Why a child signals the postmaster (PostgreSQL 18's `PMSignalReason`, in its order).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PMSignalReason {
    /// The startup process began recovery.
    RecoveryStarted = 0,
    /// Recovery reached a consistent state.
    RecoveryConsistent,
    /// Hot standby may begin accepting connections.
    BeginHotStandby,
    /// Ask the syslogger to rotate its file.
    RotateLogfile,
    /// Start the autovacuum launcher.
    StartAutovacLauncher,
    /// Start an autovacuum worker.
    StartAutovacWorker,
    /// Background worker registrations changed.
    BackgroundWorkerChange,
    /// Start the WAL receiver.
    StartWalreceiver,
    /// Re-evaluate the postmaster's state machine.
    AdvanceStateMachine,
    /// The checkpointer finished the shutdown checkpoint (new in PostgreSQL 18).
    XlogIsShutdown,
}

/// Number of [`PMSignalReason`]s (`NUM_PMSIGNALS`).
pub const NUM_PMSIGNALS: usize = 10;

impl PMSignalReason {
    /// Every reason, in index order (the order the postmaster may check them in).
    pub const ALL: [PMSignalReason; NUM_PMSIGNALS] = [
        PMSignalReason::RecoveryStarted,
        PMSignalReason::RecoveryConsistent,
        PMSignalReason::BeginHotStandby,
        PMSignalReason::RotateLogfile,
        PMSignalReason::StartAutovacLauncher,
        PMSignalReason::StartAutovacWorker,
        PMSignalReason::BackgroundWorkerChange,
        PMSignalReason::StartWalreceiver,
        PMSignalReason::AdvanceStateMachine,
        PMSignalReason::XlogIsShutdown,
    ];

    /// PostgreSQL's name for the reason (`PMSIGNAL_...`).
    pub const fn name(self) -> &'static str {
        match self {
            PMSignalReason::RecoveryStarted => "PMSIGNAL_RECOVERY_STARTED",
            PMSignalReason::RecoveryConsistent => "PMSIGNAL_RECOVERY_CONSISTENT",
            PMSignalReason::BeginHotStandby => "PMSIGNAL_BEGIN_HOT_STANDBY",
            PMSignalReason::RotateLogfile => "PMSIGNAL_ROTATE_LOGFILE",
            PMSignalReason::StartAutovacLauncher => "PMSIGNAL_START_AUTOVAC_LAUNCHER",
            PMSignalReason::StartAutovacWorker => "PMSIGNAL_START_AUTOVAC_WORKER",
            PMSignalReason::BackgroundWorkerChange => "PMSIGNAL_BACKGROUND_WORKER_CHANGE",
            PMSignalReason::StartWalreceiver => "PMSIGNAL_START_WALRECEIVER",
            PMSignalReason::AdvanceStateMachine => "PMSIGNAL_ADVANCE_STATE_MACHINE",
            PMSignalReason::XlogIsShutdown => "PMSIGNAL_XLOG_IS_SHUTDOWN",
        }
    }
}

impl TryFrom<u32> for PMSignalReason {
    type Error = PmSignalError;
    fn try_from(v: u32) -> Result<Self, PmSignalError> {
        PMSignalReason::ALL
            .get(v as usize)
            .copied()
            .ok_or(PmSignalError::InvalidReason { reason: v })
    }
}

/// Why the postmaster sent `SIGQUIT` (PostgreSQL's `QuitSignalReason`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuitSignalReason {
    /// No `SIGQUIT` was sent by the postmaster (or we cannot tell).
    NotSent = 0,
    /// Another process crashed.
    ForCrash = 1,
    /// Immediate shutdown.
    ForStop = 2,
}

/// The state of one postmaster child slot (PostgreSQL's `PM_CHILD_*`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildSlotState {
    /// Nobody holds the slot.
    Unused = 0,
    /// A child holds it but is not attached to shared memory (not yet, or not any more).
    Assigned = 1,
    /// The child is attached to shared memory.
    Active = 2,
    /// Active, and it declared itself a WAL sender.
    WalSender = 3,
}

impl ChildSlotState {
    fn from_raw(v: u32) -> Option<ChildSlotState> {
        Some(match v {
            0 => ChildSlotState::Unused,
            1 => ChildSlotState::Assigned,
            2 => ChildSlotState::Active,
            3 => ChildSlotState::WalSender,
            _ => return None,
        })
    }
}

/// Errors of the pmsignal crate. Messages are PostgreSQL's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum PmSignalError {
    /// A size overflowed.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// The shared state could not be created or found.
    #[error("could not initialize \"{PMSIGNAL_STATE_NAME}\": {0}")]
    Shmem(#[from] ShmemError),
    /// A reason number outside [`PMSignalReason`].
    #[error("invalid postmaster signal reason {reason}")]
    InvalidReason {
        /// The rejected number.
        reason: u32,
    },
    /// More child slots than a slot number can address.
    #[error("too many postmaster child slots: {n}")]
    TooManySlots {
        /// The requested count.
        n: usize,
    },
    /// A child slot number outside `1..=n`.
    #[error("postmaster child slot {slot} is out of range (1..={n})")]
    InvalidSlot {
        /// The rejected slot number.
        slot: u32,
        /// The number of slots.
        n: u32,
    },
    /// The postmaster tried to assign a slot that is not free.
    #[error("postmaster child slot is already in use")]
    SlotInUse {
        /// The slot.
        slot: u32,
        /// What it held.
        state: ChildSlotState,
    },
    /// A child changed its slot from a state the protocol does not allow.
    #[error("postmaster child slot {slot} is in state {found:?}, expected {expected:?}")]
    WrongSlotState {
        /// The slot.
        slot: u32,
        /// What it held.
        found: Option<ChildSlotState>,
        /// What the transition needs.
        expected: ChildSlotState,
    },
    /// No postmaster pid is recorded (a standalone process): nobody to signal.
    #[error("no postmaster to signal")]
    NoPostmaster,
    /// `kill` failed.
    #[error("could not send signal to postmaster {pid}: {source}")]
    Kill {
        /// The postmaster's pid.
        pid: i32,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// Registering the exit callback failed.
    #[error(transparent)]
    Ipc(#[from] pgipc_ipc::IpcError),
}

/// The fixed part of "PMSignalState"; the child flags follow it in the same allocation.
///
/// # Layout
/// `#[repr(C)]`, 13 words of 4 bytes, align 4; all-zero is the initial state.
///
/// # Synchronization
/// The writers are named per field (see also the crate docs); the fields are private to this
/// crate, and other crates go through [`PMSignal`]'s methods.
#[repr(C)]
#[derive(Debug)]
pub struct PMSignalHeader {
    /// One word per [`PMSignalReason`]: 1 = raised.
    pub(crate) flags: [AtomicU32; NUM_PMSIGNALS],
    /// A [`QuitSignalReason`], written by the postmaster before it broadcasts `SIGQUIT`.
    pub(crate) sigquit_reason: AtomicU32,
    /// The postmaster's pid (0 = none), written by the postmaster.
    pub(crate) postmaster_pid: AtomicI32,
    /// Length of the child-flag array that follows (informational; see the crate docs).
    pub(crate) num_child_flags: AtomicU32,
}

// SAFETY: repr(C), atomics only, all-zero is the initial state, no pointers.
unsafe impl ShmemSafe for PMSignalHeader {}

/// Bytes needed for `n_child_slots` child slots (PostgreSQL's `PMSignalShmemSize`).
pub fn shmem_size(n_child_slots: usize) -> Result<usize, SizeError> {
    add_size(
        size_of::<PMSignalHeader>(),
        mul_size(n_child_slots, size_of::<AtomicU32>())?,
    )
}

/// Creates or finds "PMSignalState" (PostgreSQL's `PMSignalShmemInit`).
///
/// `n_child_slots` is PostgreSQL's `MaxLivePostmasterChildren()`; it must be the same in every
/// process (the size is checked against the existing allocation).
pub fn shmem_init(shmem: &Shmem, n_child_slots: usize) -> Result<PMSignal, PmSignalError> {
    let n = u32::try_from(n_child_slots)
        .map_err(|_| PmSignalError::TooManySlots { n: n_child_slots })?;
    let (off, kind) = shmem.init_raw(PMSIGNAL_STATE_NAME, shmem_size(n_child_slots)?)?;
    let hdr: Shared<PMSignalHeader> = shmem.view(off).ok_or(ShmemError::NotInitialized)?;
    let child_flags = shmem
        .view_slice::<AtomicU32>(off + size_of::<PMSignalHeader>() as u64, n_child_slots)
        .ok_or(ShmemError::NotInitialized)?;
    if kind == InitKind::Created {
        for f in &hdr.flags {
            f.store(0, Ordering::Relaxed);
        }
        hdr.sigquit_reason
            .store(QuitSignalReason::NotSent as u32, Ordering::Relaxed);
        hdr.postmaster_pid.store(0, Ordering::Relaxed);
        for f in child_flags.iter() {
            f.store(ChildSlotState::Unused as u32, Ordering::Relaxed);
        }
        hdr.num_child_flags.store(n, Ordering::Release);
    }
    Ok(PMSignal {
        hdr,
        child_flags,
        n,
    })
}

/// This process's handle on "PMSignalState". Cheap to clone.
#[derive(Clone)]
pub struct PMSignal {
    hdr: Shared<PMSignalHeader>,
    child_flags: Shared<[AtomicU32]>,
    /// Private copy of the slot count (never re-read from shared memory).
    n: u32,
}

impl fmt::Debug for PMSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PMSignal")
            .field("postmaster_pid", &self.postmaster_pid())
            .field("n_child_slots", &self.n)
            .finish()
    }
}

impl PMSignal {
    /// Number of child slots.
    pub fn n_child_slots(&self) -> u32 {
        self.n
    }

    /// Records the postmaster's pid so children know whom to signal (postmaster, at start-up).
    pub fn set_postmaster_pid(&self, pid: i32) {
        self.hdr.postmaster_pid.store(pid, Ordering::Release);
    }

    /// The recorded postmaster pid (0 = none).
    pub fn postmaster_pid(&self) -> i32 {
        self.hdr.postmaster_pid.load(Ordering::Acquire)
    }

    // ---- child → postmaster signals ----

    /// Asks the postmaster to act on `reason`: raise its flag, then send `SIGUSR1`
    /// (PostgreSQL's `SendPostmasterSignal`).
    ///
    /// Fails with [`PmSignalError::NoPostmaster`] (without raising the flag) when no postmaster
    /// pid is recorded — PostgreSQL's standalone-backend no-op; callers may ignore it.
    pub fn send_postmaster_signal(&self, reason: PMSignalReason) -> Result<(), PmSignalError> {
        let pid = self.postmaster_pid();
        if pid <= 0 {
            return Err(PmSignalError::NoPostmaster);
        }
        // The flag must be visible before the signal arrives: the store is SeqCst and kill() is
        // a system call, which the receiver's handler follows.
        self.hdr.flags[reason as usize].store(1, Ordering::SeqCst);
        sys::send_sigusr1(pid).map_err(|source| PmSignalError::Kill { pid, source })
    }

    /// Tests and clears `reason`'s flag (postmaster; PostgreSQL's `CheckPostmasterSignal`).
    ///
    /// A flag raised twice before one check is reported once.
    pub fn check_postmaster_signal(&self, reason: PMSignalReason) -> bool {
        let f = &self.hdr.flags[reason as usize];
        // Cheap unlocked look first; the swap clears only a flag we have seen set.
        f.load(Ordering::Relaxed) != 0 && f.swap(0, Ordering::AcqRel) != 0
    }

    /// Records why `SIGQUIT` is about to be broadcast (postmaster; `SetQuitSignalReason`).
    pub fn set_quit_signal_reason(&self, reason: QuitSignalReason) {
        self.hdr
            .sigquit_reason
            .store(reason as u32, Ordering::Release);
    }

    /// Why the postmaster sent `SIGQUIT` (child, from its handler: one atomic load, so
    /// async-signal-safe; PostgreSQL's `GetQuitSignalReason`).
    pub fn quit_signal_reason(&self) -> QuitSignalReason {
        match self.hdr.sigquit_reason.load(Ordering::Acquire) {
            1 => QuitSignalReason::ForCrash,
            2 => QuitSignalReason::ForStop,
            _ => QuitSignalReason::NotSent,
        }
    }

    // ---- child slots ----

    fn slot(&self, slot: u32) -> Result<&AtomicU32, PmSignalError> {
        if slot == 0 || slot > self.n {
            return Err(PmSignalError::InvalidSlot { slot, n: self.n });
        }
        Ok(&self.child_flags[(slot - 1) as usize])
    }

    /// The state of `slot` (1-based).
    pub fn child_slot_state(&self, slot: u32) -> Result<Option<ChildSlotState>, PmSignalError> {
        Ok(ChildSlotState::from_raw(
            self.slot(slot)?.load(Ordering::Acquire),
        ))
    }

    /// Marks `slot` as held by a child about to be started (postmaster;
    /// `MarkPostmasterChildSlotAssigned`). The slot must be unused.
    pub fn mark_child_slot_assigned(&self, slot: u32) -> Result<(), PmSignalError> {
        let f = self.slot(slot)?;
        let cur = f.load(Ordering::Acquire);
        if cur != ChildSlotState::Unused as u32 {
            let state = ChildSlotState::from_raw(cur).unwrap_or(ChildSlotState::Active);
            return Err(PmSignalError::SlotInUse { slot, state });
        }
        f.store(ChildSlotState::Assigned as u32, Ordering::Release);
        Ok(())
    }

    /// Frees `slot` after its child was reaped (postmaster;
    /// `MarkPostmasterChildSlotUnassigned`). Returns `true` if the child had detached from
    /// shared memory in order (state ASSIGNED); `false` means it died while attached — a crash.
    ///
    /// Always leaves the slot unused, so calling it twice is harmless (the second call returns
    /// `false`). An out-of-range slot also returns `false`: the postmaster's books are wrong,
    /// and a crash restart is the safe answer.
    pub fn mark_child_slot_unassigned(&self, slot: u32) -> bool {
        match self.slot(slot) {
            Ok(f) => {
                f.swap(ChildSlotState::Unused as u32, Ordering::AcqRel)
                    == ChildSlotState::Assigned as u32
            }
            Err(e) => {
                tracing::warn!(target: "pgipc", "{e}");
                false
            }
        }
    }

    /// Whether the child in `slot` declared itself a WAL sender (postmaster;
    /// `IsPostmasterChildWalSender`). `false` for an out-of-range slot.
    pub fn is_child_walsender(&self, slot: u32) -> bool {
        self.slot(slot)
            .map(|f| f.load(Ordering::Acquire) == ChildSlotState::WalSender as u32)
            .unwrap_or(false)
    }

    fn transition(
        &self,
        slot: u32,
        from: ChildSlotState,
        to: ChildSlotState,
    ) -> Result<(), PmSignalError> {
        let f = self.slot(slot)?;
        f.compare_exchange(from as u32, to as u32, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(|found| PmSignalError::WrongSlotState {
                slot,
                found: ChildSlotState::from_raw(found),
                expected: from,
            })
    }

    /// The child holding `slot` is now attached to shared memory: ASSIGNED → ACTIVE.
    pub fn mark_child_active(&self, slot: u32) -> Result<(), PmSignalError> {
        self.transition(slot, ChildSlotState::Assigned, ChildSlotState::Active)
    }

    /// The child holding `slot` has detached in order: ACTIVE or WALSENDER → ASSIGNED
    /// (PostgreSQL's `MarkPostmasterChildInactive`, run at shmem exit).
    pub fn mark_child_inactive(&self, slot: u32) -> Result<(), PmSignalError> {
        self.transition(slot, ChildSlotState::Active, ChildSlotState::Assigned)
            .or_else(|_| self.transition(slot, ChildSlotState::WalSender, ChildSlotState::Assigned))
            .map_err(|e| match e {
                PmSignalError::WrongSlotState { slot, found, .. } => {
                    PmSignalError::WrongSlotState {
                        slot,
                        found,
                        expected: ChildSlotState::Active,
                    }
                }
                e => e,
            })
    }

    /// The child holding `slot` is a WAL sender: ACTIVE → WALSENDER
    /// (PostgreSQL's `MarkPostmasterChildWalSender`). There is no way back but exiting.
    pub fn mark_child_walsender(&self, slot: u32) -> Result<(), PmSignalError> {
        self.transition(slot, ChildSlotState::Active, ChildSlotState::WalSender)
    }

    /// [`mark_child_active`](Self::mark_child_active) plus an `on_shmem_exit` callback that
    /// marks the slot inactive again when this process exits in order (PostgreSQL's
    /// `RegisterPostmasterChildActive`).
    pub fn register_child_active(&self, slot: u32) -> Result<(), PmSignalError> {
        self.mark_child_active(slot)?;
        let me = self.clone();
        pgipc_ipc::on_shmem_exit(move |_| {
            if let Err(e) = me.mark_child_inactive(slot) {
                tracing::warn!(target: "pgipc", "{e}");
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
