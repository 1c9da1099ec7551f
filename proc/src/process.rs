//! This process's own slot: `InitProcess`, `InitAuxiliaryProcess`, release at exit, sleep and
//! wake-up.

use crate::config::BackendType;
use crate::global::ProcGlobal;
use crate::latch_glue::{self, ProcLatch};
use crate::shared::{PgProc, ProcNumber, INVALID_PROC_NUMBER};
use crate::ProcError;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// This process's proc number (PostgreSQL's `MyProcNumber`), or [`INVALID_PROC_NUMBER`].
static MY_PROC_NUMBER: AtomicU32 = AtomicU32::new(INVALID_PROC_NUMBER);

/// This process's proc number, if it has a PGPROC (PostgreSQL's `MyProcNumber`).
pub fn my_proc_number() -> Option<ProcNumber> {
    match MY_PROC_NUMBER.load(Ordering::Relaxed) {
        INVALID_PROC_NUMBER => None,
        n => Some(n),
    }
}

/// The calling process's PGPROC (PostgreSQL's `MyProc`): process-local, returned by
/// [`init_process`] / [`init_auxiliary_process`], holding the ownership of the slot's latch.
/// The slot is given back by the exit callback those functions register, not when this value
/// is dropped.
#[derive(Clone)]
pub struct MyProc {
    global: ProcGlobal,
    procno: ProcNumber,
    latch: ProcLatch,
}

impl fmt::Debug for MyProc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MyProc")
            .field("procno", &self.procno)
            .field("proc", self.pgproc())
            .finish()
    }
}

impl MyProc {
    /// The proc number.
    pub fn proc_number(&self) -> ProcNumber {
        self.procno
    }

    /// The table this slot belongs to.
    pub fn global(&self) -> &ProcGlobal {
        &self.global
    }

    /// The shared slot.
    pub fn pgproc(&self) -> &PgProc {
        &self.global.all_procs()[self.procno as usize]
    }

    /// The owned process latch, for callers that wait on it with other events
    /// (`waiteventset`).
    pub fn latch(&self) -> &pgipc_latch::OwnedLatch<pgipc_shmem::Shared<pgipc_latch::Latch>> {
        &self.latch
    }

    /// Publishes what this process waits for (`pgstat_report_wait_start/end`; 0 = nothing).
    pub fn set_wait_event(&self, wait_event_info: u32) {
        pgipc_wait_event::report_wait_start(wait_event_info);
    }

    /// Sleeps until the process latch is set, then resets it (PostgreSQL's
    /// `ProcWaitForSignal`: `WaitLatch` + `ResetLatch`); another process wakes it with
    /// [`ProcGlobal::proc_send_signal`]. Wake-ups may be spurious: re-check the condition.
    /// Postmaster death is not watched here (use `waiteventset` for that).
    #[doc(alias = "ProcWaitForSignal")]
    pub fn wait_for_signal(&self, wait_event_info: u32) -> Result<(), ProcError> {
        self.set_wait_event(wait_event_info);
        let r = self.latch.wait(None);
        self.set_wait_event(0);
        r?;
        self.latch.reset();
        Ok(())
    }
}

impl ProcGlobal {
    /// Wakes the process that owns `procno` by setting its latch (PostgreSQL's
    /// `ProcSendSignal`); error `procNumber out of range` outside the latch-bearing slots.
    #[doc(alias = "ProcSendSignal")]
    pub fn proc_send_signal(&self, procno: ProcNumber) -> Result<(), ProcError> {
        if procno >= self.all_proc_count() {
            return Err(ProcError::ProcNumberOutOfRange { procno });
        }
        self.proc(procno)?.latch.set();
        Ok(())
    }
}

/// The exit callback (PostgreSQL's `ProcKill` / `AuxiliaryProcKill`).
fn proc_kill(global: &ProcGlobal, procno: ProcNumber, pid: i32, aux: bool) {
    if std::process::id() as i32 != pid {
        let which = if aux { "AuxiliaryProcKill" } else { "ProcKill" };
        eprintln!("PANIC:  {which}() called in child process");
        std::process::abort();
    }
    let p = &global.all_procs()[procno as usize];
    // Wait reports go back to a process-local word before the slot can be reused
    // (`pgstat_reset_wait_event_storage`).
    pgipc_wait_event::reset_wait_event_storage();
    // Latch first: the next owner's `own` must not find us.
    latch_glue::disown(p, pid);
    pgipc_ipc_stats::clear_my_block();
    global.shmem().set_proc_number(None);
    MY_PROC_NUMBER.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
    let _ = if aux {
        global.release_aux_slot(procno)
    } else {
        global.release_slot(procno)
    };
}

/// Points this process's IPC counters at its block of "IPC Statistics", if the segment has
/// that region (ipci creates it; segments made for unit tests may not).
fn attach_ipc_stats(global: &ProcGlobal, procno: ProcNumber) {
    let shmem = global.shmem();
    let Some((off, size)) = shmem.find_raw(pgipc_ipc_stats::IPC_STATS_NAME) else {
        return;
    };
    let len = size / std::mem::size_of::<std::sync::atomic::AtomicU64>();
    let Some(region) = shmem.view_slice::<std::sync::atomic::AtomicU64>(off, len) else {
        return;
    };
    let start = procno as usize * pgipc_ipc_stats::STRIDE;
    if let Some(block) = region.get(start..start + pgipc_ipc_stats::STRIDE) {
        // SAFETY: the block lives in the main segment, which stays mapped while `global`
        // (held by the exit callback registered next) lives; that callback clears the pointer
        // before the proc number is released, and only the holder of `procno` counts here.
        unsafe { pgipc_ipc_stats::set_my_block(block.as_ptr()) };
    }
}

fn init_common(global: &ProcGlobal, kind: BackendType, aux: bool) -> Result<MyProc, ProcError> {
    if my_proc_number().is_some() {
        return Err(ProcError::AlreadyExists);
    }
    let pid = std::process::id() as i32;
    let procno = if aux {
        global.alloc_aux_slot(kind, pid)?
    } else {
        global.alloc_slot(kind, pid)?
    };
    let undo = |e: ProcError| {
        let _ = if aux {
            global.release_aux_slot(procno)
        } else {
            global.release_slot(procno)
        };
        e
    };
    let latch = latch_glue::own(global.latch(procno)?).map_err(undo)?;
    if let Ok(slot) = global.wait_slot(procno) {
        // A crashed previous owner may have left a count or a wait event behind.
        slot.sem.reset();
        slot.wait_event_info.store(0, Ordering::Relaxed);
        // SAFETY: the slot lives in the main segment, which stays mapped while `global` (held
        // by the exit callback registered below) lives; that callback resets the storage
        // before the slot is released (`pgstat_set_wait_event_storage`).
        unsafe { pgipc_wait_event::set_wait_event_storage(&slot.wait_event_info) };
    }
    global.shmem().set_proc_number(Some(procno));
    MY_PROC_NUMBER.store(procno, Ordering::Relaxed);
    attach_ipc_stats(global, procno);
    let g = global.clone();
    if let Err(e) = pgipc_ipc::on_shmem_exit(move |_| proc_kill(&g, procno, pid, aux)) {
        proc_kill(global, procno, pid, aux);
        return Err(e.into());
    }
    Ok(MyProc {
        global: global.clone(),
        procno,
        latch,
    })
}

/// Gives the calling process a PGPROC from the free list of its kind (PostgreSQL's
/// `InitProcess`): backends, autovacuum workers and launcher, the slot-sync worker, background
/// workers and WAL senders.
///
/// It owns the slot's latch and makes it the process's "my latch", resets the slot's semaphore
/// and records the proc number for LWLock waits. Errors: [`ProcError::TooManyClients`] /
/// [`ProcError::TooManyWalSenders`] (SQLSTATE 53300) when the list is empty, which leaves every
/// list as it was; [`ProcError::AlreadyExists`] if this process already has one. On success an
/// `on_shmem_exit` callback is registered that gives everything back at exit; the process joins
/// the ProcArray separately (`procarray`'s `init_process_phase2`).
#[doc(alias = "InitProcess")]
pub fn init_process(global: &ProcGlobal, kind: BackendType) -> Result<MyProc, ProcError> {
    init_common(global, kind, false)
}

/// Gives the calling auxiliary process (checkpointer, WAL writer, startup, I/O worker, ...) the
/// first free auxiliary PGPROC (PostgreSQL's `InitAuxiliaryProcess`); error
/// [`ProcError::AllAuxiliaryProcsInUse`] when none is left. Auxiliary procs never join the
/// ProcArray.
#[doc(alias = "InitAuxiliaryProcess")]
pub fn init_auxiliary_process(global: &ProcGlobal, kind: BackendType) -> Result<MyProc, ProcError> {
    init_common(global, kind, true)
}
