//! `ProcGlobal`: this process's handle on the PGPROC table, creation/attach, free lists and the
//! postmaster-side reclaim of a dead process's slot.

use crate::config::{BackendType, ProcConfig};
use crate::shared::{
    status_flags, FreeList, PgProc, ProcHdr, ProcNumber, XidCacheStatus, INVALID_PROC_NUMBER,
    INVALID_TRANSACTION_ID,
};
use crate::ProcError;
use pgipc_lwlock::{CachePadded, ProcWaitSlot, SpinLock, SpinLockGuard};
use pgipc_shmem::{add_size, mul_size, InitKind, Shared, Shmem, SizeError};
use std::fmt;
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// ShmemIndex name of the header.
pub const PROC_HEADER_NAME: &str = "Proc Header";
/// ShmemIndex name of the PGPROC array and its three dense mirrors.
pub const PGPROC_STRUCTURES_NAME: &str = "PGPROC structures";
/// ShmemIndex name of the free-list spinlock.
pub const PROC_STRUCT_LOCK_NAME: &str = "ProcStructLock spinlock";

const MAGIC: u32 = 0x5047_5052; // "PGPR"
const NOT_ON_A_LIST: u8 = 0xff;
/// How many times the postmaster tries the ProcStructLock before it reports `WouldBlock`.
const RECLAIM_SPINS: u32 = 10_000;

/// What [`ProcGlobal::reclaim_dead_process`] did (none of these is a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaim {
    /// The slot is free again (back on its free list, or an auxiliary slot with pid 0).
    Reclaimed(ProcNumber),
    /// No slot names that pid (it exited cleanly, or never had one).
    NoSuchProcess,
    /// A lock the reclaim needs is busy right now; try again later (never waits).
    WouldBlock,
}

/// Bytes of "PGPROC structures" for `total` procs (PostgreSQL's `PGProcShmemSize`): the PGPROCs
/// plus one `xids`, `subxidStates` and `statusFlags` entry each.
fn pgproc_structures_size(total: usize) -> Result<usize, SizeError> {
    let per = size_of::<CachePadded<PgProc>>()
        + size_of::<u32>()
        + size_of::<XidCacheStatus>()
        + size_of::<u8>();
    mul_size(total, per)
}

/// Shared-memory bytes of the PGPROC table for `cfg` (PostgreSQL's `ProcGlobalShmemSize`,
/// without a fast-path lock array: pgipc has no lock manager).
#[doc(alias = "ProcGlobalShmemSize")]
pub fn shmem_size(cfg: &ProcConfig) -> Result<usize, ProcError> {
    let total = cfg.total_procs()? as usize;
    let mut size = size_of::<ProcHdr>();
    size = add_size(size, size_of::<SpinLock>())?;
    size = add_size(size, pgproc_structures_size(total)?)?;
    Ok(size)
}

/// This process's handle on the PGPROC table (PostgreSQL's `ProcGlobal` pointer plus the
/// arrays it points at). Cheap to clone; keeps the mapping alive.
#[derive(Clone)]
pub struct ProcGlobal {
    shmem: Shmem,
    hdr: Shared<ProcHdr>,
    procs: Shared<[CachePadded<PgProc>]>,
    xids: Shared<[AtomicU32]>,
    subxid_states: Shared<[XidCacheStatus]>,
    status_flags: Shared<[AtomicU8]>,
    lock: Shared<SpinLock>,
}

impl fmt::Debug for ProcGlobal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcGlobal")
            .field("hdr", &*self.hdr)
            .finish()
    }
}

/// Creates the PGPROC table in `shmem` or finds the one already there (PostgreSQL's
/// `InitProcGlobal` in the postmaster; the attach half is what an exec'd child does).
///
/// The creator lays out every slot, initialises the shared latches and puts each slot on the
/// free list of its partition. The segment must hold at least `all_proc_count` wait slots.
#[doc(alias = "InitProcGlobal")]
pub fn shmem_init(shmem: &Shmem, cfg: &ProcConfig) -> Result<ProcGlobal, ProcError> {
    let total = cfg.total_procs()?;
    let all = cfg.all_proc_count()?;
    let have = shmem.wait_slots().len();
    if have < all as usize {
        return Err(ProcError::NotEnoughWaitSlots {
            have,
            need: all as usize,
        });
    }
    let (hdr, kind) = shmem.init_struct::<ProcHdr>(PROC_HEADER_NAME)?;
    let n = total as usize;
    let (off, _) = shmem.init_raw(PGPROC_STRUCTURES_NAME, pgproc_structures_size(n)?)?;
    let missing = || ProcError::Shmem(pgipc_shmem::ShmemError::NotInitialized);
    let procs = shmem
        .view_slice::<CachePadded<PgProc>>(off, n)
        .ok_or_else(missing)?;
    let mut at = off + (n * size_of::<CachePadded<PgProc>>()) as u64;
    let xids = shmem.view_slice::<AtomicU32>(at, n).ok_or_else(missing)?;
    at += (n * size_of::<u32>()) as u64;
    let subxid_states = shmem
        .view_slice::<XidCacheStatus>(at, n)
        .ok_or_else(missing)?;
    at += (n * size_of::<XidCacheStatus>()) as u64;
    let status_flags = shmem.view_slice::<AtomicU8>(at, n).ok_or_else(missing)?;
    let (lock, _) = shmem.init_struct::<SpinLock>(PROC_STRUCT_LOCK_NAME)?;
    let g = ProcGlobal {
        shmem: shmem.clone(),
        hdr,
        procs,
        xids,
        subxid_states,
        status_flags,
        lock,
    };
    match kind {
        InitKind::Created => g.initialize(cfg, all)?,
        InitKind::Attached => {
            let found = g.hdr.total_procs.load(Ordering::Acquire);
            if g.hdr.magic.load(Ordering::Acquire) != MAGIC || found != total {
                return Err(ProcError::ConfigMismatch {
                    found,
                    expected: total,
                });
            }
        }
    }
    Ok(g)
}

impl ProcGlobal {
    fn initialize(&self, cfg: &ProcConfig, all: u32) -> Result<(), ProcError> {
        let h = &*self.hdr;
        let ends = cfg.partition_ends()?;
        h.max_backends.store(cfg.max_backends()?, Ordering::Relaxed);
        h.all_proc_count.store(all, Ordering::Relaxed);
        h.total_procs
            .store(self.procs.len() as u32, Ordering::Relaxed);
        h.max_wal_senders
            .store(cfg.max_wal_senders, Ordering::Relaxed);
        for (e, v) in h.partition_end.iter().zip(ends) {
            e.store(v, Ordering::Relaxed);
        }
        for l in &h.free {
            l.head.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
            l.tail.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        }
        for head in [
            &h.proc_array_group_first,
            &h.clog_group_first,
            &h.walwriter_proc,
            &h.checkpointer_proc,
        ] {
            head.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        }
        h.startup_buffer_pin_wait_buf_id
            .store(-1, Ordering::Relaxed);
        self.lock.init();
        for (i, p) in self.procs.iter().enumerate() {
            let i = i as u32;
            p.proc_number.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
            p.pgxactoff.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
            p.proc_array_group_next
                .store(INVALID_PROC_NUMBER, Ordering::Relaxed);
            p.free_next.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
            let list = ends.iter().position(|&end| i < end);
            p.free_list
                .store(list.map_or(NOT_ON_A_LIST, |l| l as u8), Ordering::Relaxed);
            if i < all {
                crate::latch_glue::init_shared(p);
            }
            if let Some(l) = list {
                self.push_tail(FreeList::ALL[l], i)?;
            }
        }
        h.magic.store(MAGIC, Ordering::Release);
        Ok(())
    }

    /// The segment this table lives in.
    pub fn shmem(&self) -> &Shmem {
        &self.shmem
    }

    /// The header.
    pub fn hdr(&self) -> &ProcHdr {
        &self.hdr
    }

    /// Every PGPROC (PostgreSQL's `allProcs`), prepared-transaction dummies included.
    pub fn all_procs(&self) -> &[CachePadded<PgProc>] {
        &self.procs
    }

    /// The PGPROC of `procno` (PostgreSQL's `GetPGProcByNumber`).
    pub fn proc(&self, procno: ProcNumber) -> Result<&PgProc, ProcError> {
        self.procs
            .get(procno as usize)
            .map(|p| &**p)
            .ok_or(ProcError::ProcNumberOutOfRange { procno })
    }

    /// The semaphore / wait-event slot of `procno` (the `lwlock` crate's, same numbering).
    pub fn wait_slot(&self, procno: ProcNumber) -> Result<&ProcWaitSlot, ProcError> {
        let all = self.all_proc_count();
        self.shmem
            .wait_slots()
            .get(procno as usize)
            .filter(|_| procno < all)
            .map(|s| &**s)
            .ok_or(ProcError::ProcNumberOutOfRange { procno })
    }

    /// The latch of `procno`, as a handle that keeps the mapping alive.
    pub fn latch(&self, procno: ProcNumber) -> Result<Shared<pgipc_latch::Latch>, ProcError> {
        self.proc(procno)?;
        Ok(self.procs.map(|p| &p[procno as usize].latch))
    }

    /// The wait-event code `procno` shows right now (PostgreSQL's `PGPROC.wait_event_info`).
    pub fn wait_event_info(&self, procno: ProcNumber) -> Result<u32, ProcError> {
        Ok(self
            .wait_slot(procno)?
            .wait_event_info
            .load(Ordering::Relaxed))
    }

    /// The dense xid mirror, indexed by `pgxactoff` (maintained by `procarray`).
    pub fn xids(&self) -> &[AtomicU32] {
        &self.xids
    }

    /// The dense subtransaction-cache mirror, indexed by `pgxactoff`.
    pub fn subxid_states(&self) -> &[XidCacheStatus] {
        &self.subxid_states
    }

    /// The dense status-flags mirror, indexed by `pgxactoff`.
    pub fn status_flags(&self) -> &[AtomicU8] {
        &self.status_flags
    }

    /// `MaxBackends`.
    pub fn max_backends(&self) -> u32 {
        self.hdr.max_backends.load(Ordering::Relaxed)
    }

    /// PGPROCs with a semaphore and latch (`allProcCount`).
    pub fn all_proc_count(&self) -> u32 {
        self.hdr.all_proc_count.load(Ordering::Relaxed)
    }

    // ---- free lists (caller holds the spinlock) ----

    fn lock(&self) -> SpinLockGuard<'_> {
        self.lock.lock()
    }

    fn push_tail(&self, list: FreeList, procno: ProcNumber) -> Result<(), ProcError> {
        let l = &self.hdr.free[list as usize];
        let tail = l.tail.load(Ordering::Relaxed);
        let corrupted = ProcError::Corrupted {
            what: "free list tail",
        };
        let tail_proc = match tail {
            INVALID_PROC_NUMBER => None,
            t => Some(self.procs.get(t as usize).ok_or(corrupted)?),
        };
        self.procs[procno as usize]
            .free_next
            .store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        match tail_proc {
            None => l.head.store(procno, Ordering::Relaxed),
            Some(t) => t.free_next.store(procno, Ordering::Relaxed),
        }
        l.tail.store(procno, Ordering::Relaxed);
        Ok(())
    }

    fn pop_head(&self, list: FreeList) -> Option<ProcNumber> {
        let l = &self.hdr.free[list as usize];
        let head = l.head.load(Ordering::Relaxed);
        if head == INVALID_PROC_NUMBER {
            return None;
        }
        // A corrupted head reads as an empty list rather than a panic.
        let next = self
            .procs
            .get(head as usize)?
            .free_next
            .swap(INVALID_PROC_NUMBER, Ordering::Relaxed);
        l.head.store(next, Ordering::Relaxed);
        if next == INVALID_PROC_NUMBER {
            l.tail.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        }
        Some(head)
    }

    fn walk(&self, list: FreeList, limit: usize) -> Vec<ProcNumber> {
        let mut out = Vec::new();
        let mut cur = self.hdr.free[list as usize].head.load(Ordering::Relaxed);
        while cur != INVALID_PROC_NUMBER && out.len() < limit {
            let Some(p) = self.procs.get(cur as usize) else {
                break;
            };
            out.push(cur);
            cur = p.free_next.load(Ordering::Relaxed);
        }
        out
    }

    /// The proc numbers on `list`, head first (a diagnostic; takes the spinlock).
    pub fn free_list_members(&self, list: FreeList) -> Vec<ProcNumber> {
        let _g = self.lock();
        self.walk(list, self.procs.len())
    }

    /// Whether at least `n` regular-backend slots are free (PostgreSQL's `HaveNFreeProcs`,
    /// used for reserved connections); also returns how many were counted (at most `n`).
    #[doc(alias = "HaveNFreeProcs")]
    pub fn have_n_free_procs(&self, n: usize) -> (bool, usize) {
        let _g = self.lock();
        let nfree = self.walk(FreeList::Backends, n).len();
        (nfree == n, nfree)
    }

    // ---- taking and giving back slots ----

    /// Takes a free slot of `kind`'s list for process `pid` and resets its fields: the
    /// shared-memory half of `InitProcess`. [`crate::init_process`] is what a real process
    /// calls; this lower level serves the postmaster's bookkeeping, tests and benchmarks that
    /// populate many slots from one process.
    pub fn alloc_slot(&self, kind: BackendType, pid: i32) -> Result<ProcNumber, ProcError> {
        let list = kind.free_list().ok_or(ProcError::WrongKind(kind))?;
        let popped = {
            let _g = self.lock();
            self.pop_head(list)
        };
        let Some(procno) = popped else {
            return Err(match list {
                FreeList::WalSenders => ProcError::TooManyWalSenders {
                    max_wal_senders: self.hdr.max_wal_senders.load(Ordering::Relaxed),
                },
                _ => ProcError::TooManyClients,
            });
        };
        let p = &self.procs[procno as usize];
        self.reset_fields(p, kind, procno);
        p.pid.store(pid, Ordering::Release);
        Ok(procno)
    }

    fn reset_fields(&self, p: &PgProc, kind: BackendType, vxid_procno: ProcNumber) {
        p.proc_number.store(vxid_procno, Ordering::Relaxed);
        p.lxid.store(0, Ordering::Relaxed);
        p.xid.store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
        p.xmin.store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
        p.pgxactoff.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        p.database_id.store(0, Ordering::Relaxed);
        p.role_id.store(0, Ordering::Relaxed);
        p.temp_namespace_id.store(0, Ordering::Relaxed);
        p.backend_type.store(kind as u8, Ordering::Relaxed);
        p.is_regular_backend
            .store(kind.is_regular_backend(), Ordering::Relaxed);
        let flags = if kind == BackendType::AutovacWorker {
            status_flags::PROC_IS_AUTOVACUUM
        } else {
            0
        };
        p.status_flags.store(flags, Ordering::Relaxed);
        p.delay_chkpt_flags.store(0, Ordering::Relaxed);
        p.recovery_conflict_pending.store(false, Ordering::Relaxed);
        p.proc_array_group_member.store(false, Ordering::Relaxed);
        p.proc_array_group_next
            .store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        p.proc_array_group_member_xid
            .store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
        p.wait_start.store(0, Ordering::Relaxed);
        p.subxid_status.count.store(0, Ordering::Relaxed);
        p.subxid_status.overflowed.store(false, Ordering::Relaxed);
    }

    /// Gives a regular slot back to its free list (the shared-memory half of `ProcKill`).
    /// Returns `false` (and changes nothing) if the slot was not in use.
    pub fn release_slot(&self, procno: ProcNumber) -> Result<bool, ProcError> {
        let _g = self.lock();
        self.release_locked(procno)
    }

    fn release_locked(&self, procno: ProcNumber) -> Result<bool, ProcError> {
        let p = self.proc(procno)?;
        let Some(list) = FreeList::from_u8(p.free_list.load(Ordering::Relaxed)) else {
            return Err(ProcError::ProcNumberOutOfRange { procno });
        };
        if p.pid.load(Ordering::Relaxed) == 0 {
            return Ok(false);
        }
        p.proc_number.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        p.lxid.store(0, Ordering::Relaxed);
        p.pid.store(0, Ordering::Release);
        self.push_tail(list, procno)?;
        Ok(true)
    }

    /// Claims the first free auxiliary slot for `pid` (the shared half of
    /// `InitAuxiliaryProcess`).
    pub fn alloc_aux_slot(&self, kind: BackendType, pid: i32) -> Result<ProcNumber, ProcError> {
        if !kind.is_auxiliary() {
            return Err(ProcError::WrongKind(kind));
        }
        let first = self.max_backends();
        let claimed = {
            let _g = self.lock();
            let found = (first..self.all_proc_count())
                .find(|&i| self.procs[i as usize].pid.load(Ordering::Relaxed) == 0);
            if let Some(i) = found {
                self.procs[i as usize].pid.store(pid, Ordering::Release);
            }
            found
        };
        let procno = claimed.ok_or(ProcError::AllAuxiliaryProcsInUse)?;
        let p = &self.procs[procno as usize];
        self.reset_fields(p, kind, INVALID_PROC_NUMBER);
        Ok(procno)
    }

    /// Frees an auxiliary slot (the shared half of `AuxiliaryProcKill`).
    pub fn release_aux_slot(&self, procno: ProcNumber) -> Result<bool, ProcError> {
        let _g = self.lock();
        self.release_aux_locked(procno)
    }

    fn release_aux_locked(&self, procno: ProcNumber) -> Result<bool, ProcError> {
        if procno < self.max_backends() || procno >= self.all_proc_count() {
            return Err(ProcError::ProcNumberOutOfRange { procno });
        }
        let p = &self.procs[procno as usize];
        p.proc_number.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        Ok(p.pid.swap(0, Ordering::AcqRel) != 0)
    }

    /// The auxiliary process with `pid` (PostgreSQL's `AuxiliaryPidGetProc`).
    #[doc(alias = "AuxiliaryPidGetProc")]
    pub fn auxiliary_pid_get_proc(&self, pid: i32) -> Option<ProcNumber> {
        if pid == 0 {
            return None;
        }
        (self.max_backends()..self.all_proc_count())
            .find(|&i| self.procs[i as usize].pid.load(Ordering::Acquire) == pid)
    }

    /// Postmaster side: gives back the slot of process `pid`, which died without running its
    /// exit callbacks (killed by SIGKILL, say).
    ///
    /// The caller must have reaped the process (so the pid is not reused yet) and must already
    /// have taken the slot out of the ProcArray (`procarray`'s `cleanup_dead_process` does both
    /// steps in order); a slot still there is refused with [`ProcError::StillInProcArray`].
    ///
    /// It never blocks, so the postmaster can call it from its event loop: the ProcStructLock
    /// spinlock is only tried, and [`Reclaim::WouldBlock`] asks the caller to try again later.
    /// A spinlock that stays busy across retries was probably left held by the dead process;
    /// that, like a death while holding or waiting for an LWLock, leaves state no reclaim can
    /// repair, and the answer is a crash restart. Indexes read from shared memory are checked,
    /// so scribbled-on memory gives [`ProcError::Corrupted`], not a panic.
    pub fn reclaim_dead_process(&self, pid: i32) -> Result<Reclaim, ProcError> {
        if pid == 0 {
            return Ok(Reclaim::NoSuchProcess);
        }
        let all = (self.all_proc_count() as usize).min(self.procs.len()) as u32;
        let Some(procno) =
            (0..all).find(|&i| self.procs[i as usize].pid.load(Ordering::Acquire) == pid)
        else {
            return Ok(Reclaim::NoSuchProcess);
        };
        let p = &self.procs[procno as usize];
        if p.pgxactoff.load(Ordering::Acquire) != INVALID_PROC_NUMBER {
            return Err(ProcError::StillInProcArray { procno, pid });
        }
        let Some(_g) = self.try_lock_briefly() else {
            return Ok(Reclaim::WouldBlock);
        };
        crate::latch_glue::force_disown(p, pid);
        if let Ok(slot) = self.wait_slot(procno) {
            slot.wait_event_info.store(0, Ordering::Relaxed);
        }
        if procno >= self.max_backends() {
            self.release_aux_locked(procno)?;
        } else {
            self.release_locked(procno)?;
        }
        Ok(Reclaim::Reclaimed(procno))
    }

    /// The ProcStructLock if it can be had within a short spin (it is only ever held for a few
    /// instructions), else `None`.
    fn try_lock_briefly(&self) -> Option<SpinLockGuard<'_>> {
        for _ in 0..RECLAIM_SPINS {
            if let Some(g) = self.lock.try_lock() {
                return Some(g);
            }
            std::hint::spin_loop();
        }
        None
    }
}
