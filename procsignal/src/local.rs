//! Process-local state: "my slot" as the signal handler sees it, the pending reasons, the
//! handler itself, and the barrier callbacks.

use crate::{
    sys, ProcNumber, ProcSignal, ProcSignalBarrierType, ProcSignalError, ProcSignalReason,
    ProcSignalSlot, NUM_BARRIER_TYPES, NUM_PROCSIGNALS,
};
use pgipc_shmem::Shared;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::sync::Mutex;

/// This process's slot, for the handler; null when it has none. Set after the slot is claimed,
/// cleared before it is released.
static MY_SLOT: AtomicPtr<ProcSignalSlot> = AtomicPtr::new(std::ptr::null_mut());
/// This process's proc number (`u32::MAX` = none).
static MY_SLOT_INDEX: AtomicU32 = AtomicU32::new(u32::MAX);
/// Keeps the mapping behind `MY_SLOT` alive for the rest of the process.
static KEEP: Mutex<Vec<Shared<[ProcSignalSlot]>>> = Mutex::new(Vec::new());

/// Reasons the handler has seen and the process has not yet taken.
static PENDING: [AtomicBool; NUM_PROCSIGNALS] = [const { AtomicBool::new(false) }; NUM_PROCSIGNALS];

/// A barrier kind's work in this process: `true` when absorbed, `false` to be retried later.
pub type BarrierCallback = fn() -> bool;

static CALLBACKS: Mutex<[Option<BarrierCallback>; NUM_BARRIER_TYPES]> =
    Mutex::new([None; NUM_BARRIER_TYPES]);

pub(crate) fn set_my_slot(ps: &ProcSignal, procno: ProcNumber) {
    let slot = &ps.slots[procno as usize];
    let mut keep = KEEP.lock().unwrap_or_else(|e| e.into_inner());
    if !keep
        .iter()
        .any(|k| std::ptr::eq(k.as_ptr(), ps.slots.as_ptr()))
    {
        keep.push(ps.slots.clone());
    }
    drop(keep);
    MY_SLOT_INDEX.store(procno, Ordering::SeqCst);
    MY_SLOT.store(
        slot as *const ProcSignalSlot as *mut ProcSignalSlot,
        Ordering::SeqCst,
    );
}

/// Detaches the handler from the slot; returns the proc number it had.
pub(crate) fn clear_my_slot() -> Option<ProcNumber> {
    MY_SLOT.store(std::ptr::null_mut(), Ordering::SeqCst);
    match MY_SLOT_INDEX.swap(u32::MAX, Ordering::SeqCst) {
        u32::MAX => None,
        n => Some(n),
    }
}

pub(crate) fn my_slot_index() -> Option<ProcNumber> {
    match MY_SLOT_INDEX.load(Ordering::SeqCst) {
        u32::MAX => None,
        n => Some(n),
    }
}

pub(crate) fn clear_barrier_pending() {
    PENDING[ProcSignalReason::Barrier as usize].store(false, Ordering::SeqCst);
}

pub(crate) fn set_barrier_pending() {
    PENDING[ProcSignalReason::Barrier as usize].store(true, Ordering::SeqCst);
}

/// The `SIGUSR1` handler (PostgreSQL's `procsignal_sigusr1_handler`): moves every raised flag
/// of this process's slot into [`PENDING`] and sets the process latch. Atomics only, plus
/// `Latch::set`, which is async-signal-safe; `errno` is preserved.
extern "C" fn handle_sigusr1(_sig: i32) {
    let saved = sys::errno();
    // SAFETY: MY_SLOT is null or points into a mapping that KEEP holds for the whole process;
    // the slot is made of atomics, so a shared reference is all we need.
    if let Some(slot) = unsafe { MY_SLOT.load(Ordering::SeqCst).as_ref() } {
        for r in ProcSignalReason::HANDLER_ORDER {
            let f = &slot.signal_flags[r as usize];
            if f.load(Ordering::Relaxed) != 0 && f.swap(0, Ordering::SeqCst) != 0 {
                PENDING[r as usize].store(true, Ordering::SeqCst);
            }
        }
    }
    pgipc_latch::set_my_latch();
    sys::set_errno(saved);
}

/// Installs the `SIGUSR1` handler that records pending reasons and sets the process latch
/// (install the latch with `pgipc_latch::install_my_latch`).
pub fn install_handler() -> Result<(), ProcSignalError> {
    sys::install_sigusr1(handle_sigusr1).map_err(ProcSignalError::Handler)
}

/// Whether `reason` was signalled since the last call; clears it (the work is the caller's).
pub fn take_pending(reason: ProcSignalReason) -> bool {
    let p = &PENDING[reason as usize];
    p.load(Ordering::Relaxed) && p.swap(false, Ordering::SeqCst)
}

/// Whether any reason is pending (without clearing anything).
pub fn any_pending() -> bool {
    PENDING.iter().any(|p| p.load(Ordering::SeqCst))
}

/// Sets the work this process does to absorb barriers of `kind` (replacing any earlier one).
/// A kind without a callback is absorbed with no work.
pub fn register_barrier_callback(kind: ProcSignalBarrierType, cb: BarrierCallback) {
    CALLBACKS.lock().unwrap_or_else(|e| e.into_inner())[kind as usize] = Some(cb);
}

pub(crate) fn run_barrier_callback(kind: ProcSignalBarrierType) -> bool {
    let cb = CALLBACKS.lock().unwrap_or_else(|e| e.into_inner())[kind as usize];
    cb.is_none_or(|f| f())
}
