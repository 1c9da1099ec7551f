//! The ProcArray itself: its shared header, creation/attach, and keeping the proc numbers
//! and the dense arrays in step on add (append) and remove (the last entry fills the hole).

use crate::transam::{
    transaction_id_is_valid, FullTransactionId, TransamVariables, FIRST_NORMAL_TRANSACTION_ID,
};
use crate::ProcArrayError;
use pgipc_lwlock::{LWLock, LWLockMode, LWLockProc, MainLWLockId, WaitSlot};
use pgipc_proc::{
    MyProc, ProcConfig, ProcGlobal, ProcNumber, Reclaim, TransactionId, INVALID_PROC_NUMBER,
    INVALID_TRANSACTION_ID,
};
use pgipc_shmem::{add_size, mul_size, InitKind, Shared, Shmem, ShmemSafe};
use std::fmt;
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, Ordering};

/// ShmemIndex name of the ProcArray.
pub const PROC_ARRAY_NAME: &str = "Proc Array";
/// ShmemIndex name of the transaction counters.
pub const TRANSAM_VARIABLES_NAME: &str = "TransamVariables";

const MAGIC: u32 = 0x5041_5252; // "PARR"

/// The fixed part of the ProcArray (PostgreSQL's `ProcArrayStruct` up to `pgprocnos`); the
/// members' proc numbers follow it in the same allocation (in no particular order).
///
/// # Layout
/// `#[repr(C)]`, nine 32-bit words (36 bytes), as PostgreSQL's `offsetof(pgprocnos)`; then
/// `pgprocnos[max_procs]`.
///
/// # Synchronisation
/// `num_procs` and `pgprocnos` change only under ProcArrayLock exclusive *and* XidGenLock
/// exclusive; readers hold either at least shared. The known-assigned-xids fields are for hot
/// standby, which pgipc does not implement (always 0). The fields are private to this crate,
/// whose [`ProcArray`] methods take the locks.
#[repr(C)]
pub struct ProcArrayHdr {
    /// Members now.
    pub(crate) num_procs: AtomicU32,
    /// Capacity: `MaxBackends + max_prepared_xacts` (`PROCARRAY_MAXPROCS`).
    pub(crate) max_procs: AtomicU32,
    /// Hot standby: capacity of KnownAssignedXids (0: not implemented).
    pub(crate) max_known_assigned_xids: AtomicU32,
    /// Hot standby: entries in KnownAssignedXids.
    pub(crate) num_known_assigned_xids: AtomicU32,
    /// Hot standby: ring tail.
    pub(crate) tail_known_assigned_xids: AtomicU32,
    /// Hot standby: ring head.
    pub(crate) head_known_assigned_xids: AtomicU32,
    /// Hot standby: newest xid whose subxids overflowed.
    pub(crate) last_overflowed_xid: AtomicU32,
    /// Oldest xmin any replication slot needs.
    pub(crate) replication_slot_xmin: AtomicU32,
    /// Oldest catalog xmin any replication slot needs.
    pub(crate) replication_slot_catalog_xmin: AtomicU32,
}

// SAFETY: repr(C), atomics only, all-zero valid (an empty array), no pointers.
unsafe impl ShmemSafe for ProcArrayHdr {}

impl fmt::Debug for ProcArrayHdr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcArrayHdr")
            .field("num_procs", &self.num_procs.load(Ordering::Relaxed))
            .field("max_procs", &self.max_procs.load(Ordering::Relaxed))
            .finish()
    }
}

fn max_procs(cfg: &ProcConfig) -> Result<u32, ProcArrayError> {
    Ok(cfg
        .max_backends()?
        .checked_add(cfg.max_prepared_xacts)
        .ok_or(pgipc_proc::ProcError::TooManyBackends { config: *cfg })?)
}

/// Bytes of "Proc Array" for `cfg` (PostgreSQL's `ProcArrayShmemSize` without hot standby).
pub fn shmem_size(cfg: &ProcConfig) -> Result<usize, ProcArrayError> {
    let n = max_procs(cfg)? as usize;
    Ok(add_size(
        size_of::<ProcArrayHdr>(),
        mul_size(n, size_of::<u32>())?,
    )?)
}

/// Bytes of "TransamVariables".
pub fn transam_shmem_size() -> usize {
    size_of::<TransamVariables>()
}

/// Creates or finds "TransamVariables" (PostgreSQL's `VarsupShmemInit`). The creator starts the
/// counters at the first normal xid, as a fresh cluster does.
pub fn transam_shmem_init(shmem: &Shmem) -> Result<Shared<TransamVariables>, ProcArrayError> {
    let (t, kind) = shmem.init_struct::<TransamVariables>(TRANSAM_VARIABLES_NAME)?;
    if kind == InitKind::Created {
        let first = FullTransactionId(u64::from(FIRST_NORMAL_TRANSACTION_ID));
        t.next_xid.store(first.0, Ordering::Relaxed);
        t.oldest_xid
            .store(FIRST_NORMAL_TRANSACTION_ID, Ordering::Relaxed);
        t.latest_completed_xid
            .store(first.retreat().0, Ordering::Relaxed);
        t.xact_completion_count.store(1, Ordering::Relaxed);
        t.magic.store(MAGIC, Ordering::Release);
    } else if t.magic.load(Ordering::Acquire) != MAGIC {
        return Err(ProcArrayError::NotInitialized {
            what: TRANSAM_VARIABLES_NAME,
        });
    }
    Ok(t)
}

/// This process's handle on the ProcArray (plus the PGPROC table and the transaction counters
/// it works with). Cheap to clone.
///
/// Operations take the proc number they act for: a real backend passes its own
/// ([`MyProc::proc_number`]); tests and benchmarks may act for slots they populated themselves.
#[derive(Clone)]
pub struct ProcArray {
    pub(crate) procs: ProcGlobal,
    pub(crate) hdr: Shared<ProcArrayHdr>,
    pub(crate) pgprocnos: Shared<[AtomicU32]>,
    pub(crate) transam: Shared<TransamVariables>,
    // Resolved once: the per-call lookups through `Shmem` cost as much as a small scan.
    slots: Shared<[WaitSlot]>,
    proc_array_lock: Shared<LWLock>,
    xid_gen_lock: Shared<LWLock>,
}

impl fmt::Debug for ProcArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcArray")
            .field("hdr", &*self.hdr)
            .field("transam", &*self.transam)
            .finish()
    }
}

/// Creates the ProcArray in `shmem` or finds it (PostgreSQL's `ProcArrayShmemInit`); also
/// attaches the PGPROC table (which must exist: `pgipc_proc::shmem_init` runs first) and
/// creates or finds "TransamVariables".
#[doc(alias = "ProcArrayShmemInit")]
pub fn shmem_init(shmem: &Shmem, cfg: &ProcConfig) -> Result<ProcArray, ProcArrayError> {
    let transam = transam_shmem_init(shmem)?;
    let procs = pgipc_proc::shmem_init(shmem, cfg)?;
    let n = max_procs(cfg)?;
    let (off, kind) = shmem.init_raw(PROC_ARRAY_NAME, shmem_size(cfg)?)?;
    let missing = || ProcArrayError::NotInitialized {
        what: PROC_ARRAY_NAME,
    };
    let hdr: Shared<ProcArrayHdr> = shmem.view(off).ok_or_else(missing)?;
    let pgprocnos = shmem
        .view_slice::<AtomicU32>(off + size_of::<ProcArrayHdr>() as u64, n as usize)
        .ok_or_else(missing)?;
    if kind == InitKind::Created {
        hdr.num_procs.store(0, Ordering::Relaxed);
        hdr.max_procs.store(n, Ordering::Release);
    } else if hdr.max_procs.load(Ordering::Acquire) != n {
        return Err(ProcArrayError::NotInitialized {
            what: PROC_ARRAY_NAME,
        });
    }
    let slots = shmem.wait_slots();
    let slots = shmem
        .offset_of(slots.as_ptr())
        .and_then(|o| shmem.view_slice::<WaitSlot>(o, slots.len()))
        .ok_or_else(missing)?;
    let lock = |id| {
        let l: *const LWLock = shmem.main_lwlock(id);
        shmem
            .offset_of(l)
            .and_then(|o| shmem.view::<LWLock>(o))
            .ok_or_else(missing)
    };
    let proc_array_lock = lock(MainLWLockId::ProcArray)?;
    let xid_gen_lock = lock(MainLWLockId::XidGen)?;
    Ok(ProcArray {
        procs,
        hdr,
        pgprocnos,
        transam,
        slots,
        proc_array_lock,
        xid_gen_lock,
    })
}

impl ProcArray {
    /// The PGPROC table.
    pub fn procs(&self) -> &ProcGlobal {
        &self.procs
    }

    /// The shared header.
    pub fn hdr(&self) -> &ProcArrayHdr {
        &self.hdr
    }

    /// The transaction counters.
    pub fn transam(&self) -> &TransamVariables {
        &self.transam
    }

    pub(crate) fn proc_array_lock(&self) -> &LWLock {
        &self.proc_array_lock
    }

    pub(crate) fn xid_gen_lock(&self) -> &LWLock {
        &self.xid_gen_lock
    }

    /// The LWLock identity of a caller acting for `procno`: its waits sleep on that proc's
    /// semaphore. (Operations whose proc number names the *subject*, such as `add`, use the
    /// process's own identity instead.)
    pub(crate) fn actor(&self, procno: ProcNumber) -> LWLockProc<'_> {
        LWLockProc::new(&self.slots, procno)
            .unwrap_or_else(|_| LWLockProc::without_slot(&self.slots))
    }

    pub(crate) fn proc_checked(
        &self,
        procno: ProcNumber,
    ) -> Result<&pgipc_proc::PgProc, ProcArrayError> {
        self.procs
            .all_procs()
            .get(procno as usize)
            .map(|p| &**p)
            .ok_or(ProcArrayError::Proc(
                pgipc_proc::ProcError::ProcNumberOutOfRange { procno },
            ))
    }

    /// The members' proc numbers in array order (joining order, with the last member moved
    /// into each leaver's place; not sorted), read under ProcArrayLock shared.
    pub fn members(&self) -> Vec<ProcNumber> {
        let me = self.procs.shmem().lwlock_proc();
        let _g = self.proc_array_lock().acquire(&me, LWLockMode::Shared);
        let n = self.hdr.num_procs.load(Ordering::Relaxed) as usize;
        self.pgprocnos[..n]
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .collect()
    }

    /// Checks every invariant of the dense arrays (`pgxactoff` back-links, so each member once,
    /// mirrors equal to the PGPROC fields); returns a description of the first violation.
    /// Takes ProcArrayLock shared.
    pub fn check_consistency(&self) -> Result<(), String> {
        let me = self.procs.shmem().lwlock_proc();
        let _g = self.proc_array_lock().acquire(&me, LWLockMode::Shared);
        let n = self.hdr.num_procs.load(Ordering::Relaxed) as usize;
        let all = self.procs.all_procs();
        for i in 0..n {
            let pn = self.pgprocnos[i].load(Ordering::Relaxed);
            let p = all
                .get(pn as usize)
                .ok_or(format!("bad proc number {pn} at {i}"))?;
            let off = p.pgxactoff.load(Ordering::Relaxed);
            if off as usize != i {
                return Err(format!("proc {pn} at {i} has pgxactoff {off}"));
            }
            let x = self.procs.xids()[i].load(Ordering::Relaxed);
            if x != p.xid.load(Ordering::Relaxed) {
                return Err(format!(
                    "xids[{i}] = {x} but proc {pn} has {}",
                    p.xid.load(Ordering::Relaxed)
                ));
            }
            let f = self.procs.status_flags()[i].load(Ordering::Relaxed);
            if f != p.status_flags.load(Ordering::Relaxed) {
                return Err(format!("statusFlags[{i}] differs from proc {pn}"));
            }
            let s = &self.procs.subxid_states()[i];
            if s.count.load(Ordering::Relaxed) != p.subxid_status.count.load(Ordering::Relaxed)
                || s.overflowed.load(Ordering::Relaxed)
                    != p.subxid_status.overflowed.load(Ordering::Relaxed)
            {
                return Err(format!("subxidStates[{i}] differs from proc {pn}"));
            }
        }
        Ok(())
    }

    /// Moves dense entry `from` to `to` (all four arrays) and fixes the moved proc's offset.
    fn move_entry(&self, from: usize, to: usize) {
        let pn = self.pgprocnos[from].load(Ordering::Relaxed);
        self.pgprocnos[to].store(pn, Ordering::Relaxed);
        let (x, s, f) = (
            self.procs.xids(),
            self.procs.subxid_states(),
            self.procs.status_flags(),
        );
        x[to].store(x[from].load(Ordering::Relaxed), Ordering::Relaxed);
        s[to]
            .count
            .store(s[from].count.load(Ordering::Relaxed), Ordering::Relaxed);
        s[to].overflowed.store(
            s[from].overflowed.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        f[to].store(f[from].load(Ordering::Relaxed), Ordering::Relaxed);
        self.procs.all_procs()[pn as usize]
            .pgxactoff
            .store(to as u32, Ordering::Relaxed);
    }

    /// Adds `procno` to the array (PostgreSQL's `ProcArrayAdd`): appended after the last
    /// member, its xid/subxid state/flags copied into the dense arrays. A full array gives
    /// [`ProcArrayError::TooManyClients`] (53300).
    ///
    /// PostgreSQL inserts at the proc number's sorted place and shifts every later entry,
    /// rewriting each moved proc's `pgxactoff`: with 10,000 members and proc numbers handed
    /// out in no particular order (the free list is FIFO, so after sessions close it holds
    /// them in exit order) that touched thousands of PGPROCs per connection, a page fault for
    /// every few in a freshly forked backend, under both locks. Appending is O(1), and the
    /// snapshot scans read the dense arrays in whatever order they are.
    #[doc(alias = "ProcArrayAdd")]
    pub fn add(&self, procno: ProcNumber) -> Result<(), ProcArrayError> {
        let p = self.proc_checked(procno)?;
        let me = self.procs.shmem().lwlock_proc();
        let _pa = self.proc_array_lock().acquire(&me, LWLockMode::Exclusive);
        let _xg = self.xid_gen_lock().acquire(&me, LWLockMode::Exclusive);
        if p.pgxactoff.load(Ordering::Relaxed) != INVALID_PROC_NUMBER {
            return Err(ProcArrayError::AlreadyInProcArray { procno });
        }
        let n = self.hdr.num_procs.load(Ordering::Relaxed) as usize;
        if n >= self.hdr.max_procs.load(Ordering::Relaxed) as usize {
            return Err(ProcArrayError::TooManyClients);
        }
        let idx = n;
        // Mid-update, both locks held: the new entry is not written yet. Nothing may leave this state but a crash, so an `error` attached here is
        // promoted to a panic, as PostgreSQL promotes an ERROR inside a critical section.
        if let Err(e) = pgipc_injection_point::injection_point!("procarray-add") {
            panic!("{e} (in a critical section)");
        }
        self.pgprocnos[idx].store(procno, Ordering::Relaxed);
        self.procs.xids()[idx].store(p.xid.load(Ordering::Relaxed), Ordering::Relaxed);
        let s = &self.procs.subxid_states()[idx];
        s.count.store(
            p.subxid_status.count.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        s.overflowed.store(
            p.subxid_status.overflowed.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.procs.status_flags()[idx]
            .store(p.status_flags.load(Ordering::Relaxed), Ordering::Relaxed);
        p.pgxactoff.store(idx as u32, Ordering::Relaxed);
        self.hdr.num_procs.store(n as u32 + 1, Ordering::Relaxed);
        Ok(())
    }

    /// Removes `procno` from the array (PostgreSQL's `ProcArrayRemove`). With a valid
    /// `latest_xid` (a prepared transaction, or a dead process's transaction) that transaction
    /// counts as ended: `latest_completed_xid` advances and the completion counter is bumped.
    /// A backend leaving normally passes [`INVALID_TRANSACTION_ID`] (its xid is already clear).
    #[doc(alias = "ProcArrayRemove")]
    pub fn remove(
        &self,
        procno: ProcNumber,
        latest_xid: TransactionId,
    ) -> Result<(), ProcArrayError> {
        let p = self.proc_checked(procno)?;
        let me = self.procs.shmem().lwlock_proc();
        let _pa = self.proc_array_lock().acquire(&me, LWLockMode::Exclusive);
        let _xg = self.xid_gen_lock().acquire(&me, LWLockMode::Exclusive);
        self.remove_locked(p, procno, latest_xid)
    }

    /// The body of [`remove`](Self::remove); the caller holds ProcArrayLock and XidGenLock
    /// exclusive. Every index read from shared memory is checked before anything is changed.
    fn remove_locked(
        &self,
        p: &pgipc_proc::PgProc,
        procno: ProcNumber,
        latest_xid: TransactionId,
    ) -> Result<(), ProcArrayError> {
        let n = self.hdr.num_procs.load(Ordering::Relaxed) as usize;
        let all = self.procs.all_procs().len();
        if n > self.pgprocnos.len()
            || self.pgprocnos[..n]
                .iter()
                .any(|pn| pn.load(Ordering::Relaxed) as usize >= all)
        {
            return Err(ProcArrayError::Proc(pgipc_proc::ProcError::Corrupted {
                what: "ProcArray",
            }));
        }
        let off = p.pgxactoff.load(Ordering::Relaxed) as usize;
        if off >= n || self.pgprocnos[off].load(Ordering::Relaxed) != procno {
            return Err(ProcArrayError::NotInProcArray { procno });
        }
        if transaction_id_is_valid(latest_xid) {
            self.maintain_latest_completed_xid(latest_xid);
            self.transam
                .xact_completion_count
                .fetch_add(1, Ordering::Relaxed);
        }
        // The last member fills the hole (PostgreSQL shifts every later entry down instead).
        let last = n - 1;
        if off != last {
            self.move_entry(last, off);
        }
        self.pgprocnos[last].store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        self.procs.xids()[last].store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
        self.procs.subxid_states()[last]
            .count
            .store(0, Ordering::Relaxed);
        self.procs.subxid_states()[last]
            .overflowed
            .store(false, Ordering::Relaxed);
        self.procs.status_flags()[last].store(0, Ordering::Relaxed);
        p.pgxactoff.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        self.hdr.num_procs.store(last as u32, Ordering::Relaxed);
        Ok(())
    }

    /// Advances `latest_completed_xid` to `latest_xid` if that is newer. Caller holds
    /// ProcArrayLock exclusive.
    pub(crate) fn maintain_latest_completed_xid(&self, latest_xid: TransactionId) {
        let cur = FullTransactionId(self.transam.latest_completed_xid.load(Ordering::Relaxed));
        let new = cur.relative(latest_xid);
        if new > cur {
            self.transam
                .latest_completed_xid
                .store(new.0, Ordering::Relaxed);
        }
    }

    /// Joins the ProcArray and arranges to leave it at exit (PostgreSQL's `InitProcessPhase2`):
    /// [`add`](Self::add), then an `on_shmem_exit` callback that removes the proc; registered
    /// after the slot's own release callback, it runs before it.
    #[doc(alias = "InitProcessPhase2")]
    pub fn init_process_phase2(&self, me: &MyProc) -> Result<(), ProcArrayError> {
        let procno = me.proc_number();
        self.add(procno)?;
        let pa = self.clone();
        if let Err(e) = pgipc_ipc::on_shmem_exit(move |_| {
            let _ = pa.remove_aborting(procno);
        }) {
            let _ = self.remove(procno, INVALID_TRANSACTION_ID);
            return Err(e.into());
        }
        Ok(())
    }

    /// Removes `procno`, ending (as aborted) a transaction it still has: the exit path of a
    /// process that leaves in the middle of a transaction.
    fn remove_aborting(&self, procno: ProcNumber) -> Result<(), ProcArrayError> {
        let p = self.proc_checked(procno)?;
        self.remove(procno, latest_xid_of(p))?;
        forget_xact(p);
        Ok(())
    }

    /// Postmaster side, after reaping process `pid` that died without its exit callbacks
    /// (SIGKILL): takes its PGPROC out of the ProcArray, counting a transaction it had as ended
    /// (aborted), then gives the slot back to its free list
    /// ([`ProcGlobal::reclaim_dead_process`](pgipc_proc::ProcGlobal::reclaim_dead_process)).
    ///
    /// It never blocks, as the postmaster must not wait for an LWLock: ProcArrayLock and
    /// XidGenLock are only tried (conditional acquire), and [`Reclaim::WouldBlock`] asks the
    /// caller to call again later (the postmaster's next loop iteration); a retry after the
    /// ProcArray step resumes with the slot step. Indexes read from shared memory are checked
    /// first (a corrupted array is an error, not a panic). A process that died while holding an
    /// LWLock or a spinlock makes every retry report `WouldBlock`, and one that died in the
    /// middle of a group xid clear may have left followers asleep: both need a crash restart,
    /// which is the postmaster's call.
    pub fn cleanup_dead_process(&self, pid: i32) -> Result<Reclaim, ProcArrayError> {
        if pid == 0 {
            return Ok(Reclaim::NoSuchProcess);
        }
        let procs = self.procs.all_procs();
        let all = (self.procs.all_proc_count() as usize).min(procs.len());
        let Some(procno) = (0..all).find(|&i| procs[i].pid.load(Ordering::Acquire) == pid) else {
            return Ok(Reclaim::NoSuchProcess);
        };
        let p = &procs[procno];
        let procno = procno as ProcNumber;
        if p.pgxactoff.load(Ordering::Acquire) != INVALID_PROC_NUMBER {
            let me = self.procs.shmem().lwlock_proc();
            let Some(_pa) = self
                .proc_array_lock()
                .conditional_acquire(&me, LWLockMode::Exclusive)
            else {
                return Ok(Reclaim::WouldBlock);
            };
            let Some(_xg) = self
                .xid_gen_lock()
                .conditional_acquire(&me, LWLockMode::Exclusive)
            else {
                return Ok(Reclaim::WouldBlock);
            };
            self.remove_locked(p, procno, latest_xid_of(p))?;
            forget_xact(p);
        }
        Ok(self.procs.reclaim_dead_process(pid)?)
    }
}

/// The newest xid of `p`'s transaction: its own or a cached subtransaction's (what an abort
/// reports as `latestXid`); invalid if it has none.
fn latest_xid_of(p: &pgipc_proc::PgProc) -> TransactionId {
    let mut latest = p.xid.load(Ordering::Acquire);
    let nsub = usize::from(p.subxid_status.count.load(Ordering::Acquire)).min(p.subxids.len());
    for s in &p.subxids[..nsub] {
        let x = s.load(Ordering::Relaxed);
        if !transaction_id_is_valid(latest) || crate::transam::transaction_id_follows(x, latest) {
            latest = x;
        }
    }
    latest
}

/// Clears the transaction fields of a PGPROC that just left the ProcArray with them set.
fn forget_xact(p: &pgipc_proc::PgProc) {
    p.xid.store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
    p.subxid_status.count.store(0, Ordering::Relaxed);
    p.subxid_status.overflowed.store(false, Ordering::Relaxed);
}
