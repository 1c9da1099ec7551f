//! MVCC snapshots, in-progress checks and xmin horizons (`GetSnapshotData`,
//! `TransactionIdIsInProgress`, `ComputeXidHorizons`).

use crate::array::ProcArray;
use crate::transam::{
    transaction_id_follows, transaction_id_follows_or_equals, transaction_id_is_normal,
    transaction_id_is_valid, transaction_id_older, transaction_id_precedes, FullTransactionId,
};
use crate::ProcArrayError;
use pgipc_lwlock::LWLockMode;
use pgipc_proc::{
    status_flags::{PROC_AFFECTS_ALL_HORIZONS, PROC_XMIN_FLAGS},
    Oid, ProcNumber, TransactionId, INVALID_PROC_NUMBER, INVALID_TRANSACTION_ID,
    PGPROC_MAX_CACHED_SUBXIDS,
};
use std::sync::atomic::{fence, Ordering};

/// Which transactions a snapshot sees as still running (the process-local half of PostgreSQL's
/// `SnapshotData` that `GetSnapshotData` fills).
///
/// Visibility: an xid below `xmin` had ended; an xid at or past `xmax` was not yet ended;
/// in between it was running iff it is in `xip` or `subxip` (or, with `suboverflowed`, possibly
/// a subtransaction whose parent is in `xip`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every xid older than this had ended.
    pub xmin: TransactionId,
    /// Every xid at or past this had not ended (latest completed + 1).
    pub xmax: TransactionId,
    /// Running top-level xids in `[xmin, xmax)`, in array order.
    pub xip: Vec<TransactionId>,
    /// Running cached subtransaction xids.
    pub subxip: Vec<TransactionId>,
    /// Some running transaction had more subtransactions than its cache holds.
    pub suboverflowed: bool,
    /// The completion counter when the contents were computed (0 = never reuse).
    pub snap_xact_completion_count: u64,
    /// Whether the last [`ProcArray::get_snapshot_data`] reused the previous contents.
    pub reused: bool,
}

impl Snapshot {
    /// An empty snapshot that the next `get_snapshot_data` will fill from scratch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `xid` counts as still running for this snapshot (PostgreSQL's
    /// `XidInMVCCSnapshot`). Without pg_subtrans, an xid in `[xmin, xmax)` that is in neither
    /// list of a `suboverflowed` snapshot is reported as running (the conservative answer).
    pub fn xid_in_snapshot(&self, xid: TransactionId) -> bool {
        if transaction_id_precedes(xid, self.xmin) {
            return false;
        }
        if transaction_id_follows_or_equals(xid, self.xmax) {
            return true;
        }
        if self.xip.contains(&xid) || self.subxip.contains(&xid) {
            return true;
        }
        self.suboverflowed
    }
}

/// xmin horizons (PostgreSQL's `ComputeXidHorizonsResult`, the fields without hot standby and
/// replication slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidHorizons {
    /// `latest_completed_xid` when computed.
    pub latest_completed: FullTransactionId,
    /// Oldest xid any proc may still consider running (includes vacuum and logical decoding).
    pub oldest_considered_running: TransactionId,
    /// Oldest xid whose effects may still be needed in shared catalogs (all databases).
    pub shared_oldest_nonremovable: TransactionId,
    /// The same for the given database's own tables.
    pub data_oldest_nonremovable: TransactionId,
}

impl ProcArray {
    /// Fills `snap` with the transactions running now, as seen by `procno` (PostgreSQL's
    /// `GetSnapshotData`). Sets the proc's `xmin` if it had none.
    ///
    /// If no transaction ended since `snap` was last filled (the completion counter did not
    /// move), the contents are reused as they are: O(1), `snap.reused` is set. Otherwise the
    /// dense arrays are scanned once under ProcArrayLock shared. `xip` and `subxip` are sized for
    /// the worst case on first use and not reallocated after that.
    #[doc(alias = "GetSnapshotData")]
    pub fn get_snapshot_data(
        &self,
        procno: ProcNumber,
        snap: &mut Snapshot,
    ) -> Result<(), ProcArrayError> {
        let p = self.proc_checked(procno)?;
        let max_procs = self.hdr.max_procs.load(Ordering::Relaxed) as usize;
        if snap.xip.capacity() < max_procs {
            snap.xip.reserve(max_procs - snap.xip.len());
        }
        let max_sub = max_procs * (PGPROC_MAX_CACHED_SUBXIDS + 1);
        if snap.subxip.capacity() < max_sub {
            snap.subxip.reserve(max_sub - snap.subxip.len());
        }
        let me = self.actor(procno);
        let _g = self.proc_array_lock().acquire(&me, LWLockMode::Shared);
        let count = self.transam.xact_completion_count.load(Ordering::Relaxed);
        if snap.snap_xact_completion_count != 0 && snap.snap_xact_completion_count == count {
            if !transaction_id_is_valid(p.xmin.load(Ordering::Relaxed)) {
                p.xmin.store(snap.xmin, Ordering::Relaxed);
            }
            snap.reused = true;
            pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::SnapshotsReused);
            return Ok(());
        }
        let latest = FullTransactionId(self.transam.latest_completed_xid.load(Ordering::Relaxed));
        let xmax = latest.advance().xid();
        let mut xmin = xmax;
        let n = self.hdr.num_procs.load(Ordering::Relaxed) as usize;
        let my_off = p.pgxactoff.load(Ordering::Relaxed) as usize;
        let xids = &self.procs.xids()[..n];
        let flags = &self.procs.status_flags()[..n];
        let subs = &self.procs.subxid_states()[..n];
        let all = self.procs.all_procs();
        if let Some(x) = xids.get(my_off) {
            let myxid = x.load(Ordering::Relaxed);
            if transaction_id_is_normal(myxid) && transaction_id_precedes(myxid, xmax) {
                xmin = myxid;
            }
        }
        snap.xip.clear();
        snap.subxip.clear();
        let mut suboverflowed = false;
        for (i, x) in xids.iter().enumerate() {
            // One load: the slot may be cleared (never set to another running id) meanwhile.
            let xid = x.load(Ordering::Relaxed);
            // Most slots hold no xid: keep that test alone at the top of the loop.
            if !transaction_id_is_normal(xid) {
                continue;
            }
            // Assigned after latest_completed was read: running for us anyway (>= xmax).
            if !transaction_id_precedes(xid, xmax) || i == my_off {
                continue;
            }
            if flags[i].load(Ordering::Relaxed) & PROC_XMIN_FLAGS != 0 {
                continue;
            }
            if transaction_id_precedes(xid, xmin) {
                xmin = xid;
            }
            snap.xip.push(xid);
            if !suboverflowed {
                if subs[i].overflowed.load(Ordering::Relaxed) {
                    suboverflowed = true;
                } else {
                    let nsub = usize::from(subs[i].count.load(Ordering::Acquire));
                    if nsub > 0 {
                        // Pairs with the release in assign_transaction_id: entries before count.
                        fence(Ordering::Acquire);
                        let pn = self.pgprocnos[i].load(Ordering::Relaxed) as usize;
                        let cache = &all[pn].subxids[..nsub.min(PGPROC_MAX_CACHED_SUBXIDS)];
                        snap.subxip
                            .extend(cache.iter().map(|s| s.load(Ordering::Relaxed)));
                    }
                }
            }
        }
        if !transaction_id_is_valid(p.xmin.load(Ordering::Relaxed)) {
            p.xmin.store(xmin, Ordering::Relaxed);
        }
        snap.xmin = xmin;
        snap.xmax = xmax;
        snap.suboverflowed = suboverflowed;
        snap.snap_xact_completion_count = count;
        snap.reused = false;
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::SnapshotsComputed);
        Ok(())
    }

    /// Whether `xid` belongs to a transaction still running (PostgreSQL's
    /// `TransactionIdIsInProgress`), as `procno` sees it.
    ///
    /// Without pg_subtrans and clog: an xid not found anywhere is reported as not running; an
    /// xid that could be an uncached subtransaction (some running transaction older than it
    /// overflowed its cache) is reported as running, the conservative answer.
    #[doc(alias = "TransactionIdIsInProgress")]
    pub fn transaction_id_is_in_progress(
        &self,
        procno: ProcNumber,
        xid: TransactionId,
    ) -> Result<bool, ProcArrayError> {
        let p = self.proc_checked(procno)?;
        if !transaction_id_is_normal(xid) {
            return Ok(false);
        }
        if p.xid.load(Ordering::Relaxed) == xid {
            return Ok(true);
        }
        let me = self.actor(procno);
        let _g = self.proc_array_lock().acquire(&me, LWLockMode::Shared);
        let latest = FullTransactionId(self.transam.latest_completed_xid.load(Ordering::Relaxed));
        if transaction_id_follows(xid, latest.xid()) {
            return Ok(true);
        }
        let n = self.hdr.num_procs.load(Ordering::Relaxed) as usize;
        let all = self.procs.all_procs();
        let mut maybe_overflowed_parent = false;
        for i in 0..n {
            let pxid = self.procs.xids()[i].load(Ordering::Relaxed);
            if !transaction_id_is_valid(pxid) {
                continue;
            }
            if pxid == xid {
                return Ok(true);
            }
            // A subxid always follows its parent.
            if transaction_id_precedes(xid, pxid) {
                continue;
            }
            let st = &self.procs.subxid_states()[i];
            let nsub = usize::from(st.count.load(Ordering::Acquire)).min(PGPROC_MAX_CACHED_SUBXIDS);
            let pn = self.pgprocnos[i].load(Ordering::Relaxed) as usize;
            if all[pn].subxids[..nsub]
                .iter()
                .rev()
                .any(|s| s.load(Ordering::Relaxed) == xid)
            {
                return Ok(true);
            }
            if st.overflowed.load(Ordering::Relaxed) {
                maybe_overflowed_parent = true;
            }
        }
        Ok(maybe_overflowed_parent)
    }

    /// The xmin horizons (PostgreSQL's `ComputeXidHorizons`), for `my_database_id`
    /// (0 = count every database). Procs running VACUUM or logical decoding only hold back
    /// `oldest_considered_running`.
    #[doc(alias = "ComputeXidHorizons")]
    pub fn compute_xid_horizons(&self, my_database_id: Oid) -> XidHorizons {
        let me = self.procs.shmem().lwlock_proc();
        let _g = self.proc_array_lock().acquire(&me, LWLockMode::Shared);
        let latest = FullTransactionId(self.transam.latest_completed_xid.load(Ordering::Relaxed));
        let initial = latest.advance().xid();
        let mut h = XidHorizons {
            latest_completed: latest,
            oldest_considered_running: initial,
            shared_oldest_nonremovable: initial,
            data_oldest_nonremovable: initial,
        };
        let n = self.hdr.num_procs.load(Ordering::Relaxed) as usize;
        let all = self.procs.all_procs();
        for i in 0..n {
            let p = &all[self.pgprocnos[i].load(Ordering::Relaxed) as usize];
            let xid = self.procs.xids()[i].load(Ordering::Relaxed);
            let xmin = transaction_id_older(p.xmin.load(Ordering::Relaxed), xid);
            if !transaction_id_is_valid(xmin) {
                continue;
            }
            h.oldest_considered_running = transaction_id_older(h.oldest_considered_running, xmin);
            let flags = self.procs.status_flags()[i].load(Ordering::Relaxed);
            if flags & PROC_XMIN_FLAGS != 0 {
                continue;
            }
            h.shared_oldest_nonremovable = transaction_id_older(h.shared_oldest_nonremovable, xmin);
            if my_database_id == 0
                || p.database_id.load(Ordering::Relaxed) == my_database_id
                || flags & PROC_AFFECTS_ALL_HORIZONS != 0
            {
                h.data_oldest_nonremovable = transaction_id_older(h.data_oldest_nonremovable, xmin);
            }
        }
        h
    }

    /// The oldest xid whose effects vacuum must keep for `database_id`'s tables
    /// (`GetOldestNonRemovableTransactionId` for a plain table).
    pub fn get_oldest_non_removable_transaction_id(&self, database_id: Oid) -> TransactionId {
        self.compute_xid_horizons(database_id)
            .data_oldest_nonremovable
    }

    /// Sets or clears `PROC_*` flags of `procno` in its PGPROC and the dense array, under
    /// ProcArrayLock exclusive (how VACUUM announces itself).
    pub fn set_status_flags(
        &self,
        procno: ProcNumber,
        set: u8,
        clear: u8,
    ) -> Result<(), ProcArrayError> {
        let p = self.proc_checked(procno)?;
        let me = self.actor(procno);
        let _g = self.proc_array_lock().acquire(&me, LWLockMode::Exclusive);
        let f = (p.status_flags.load(Ordering::Relaxed) | set) & !clear;
        p.status_flags.store(f, Ordering::Relaxed);
        let off = p.pgxactoff.load(Ordering::Relaxed);
        if off != INVALID_PROC_NUMBER {
            self.procs.status_flags()[off as usize].store(f, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Clears `procno`'s snapshot xmin (what releasing the last snapshot does).
    pub fn clear_xmin(&self, procno: ProcNumber) -> Result<(), ProcArrayError> {
        self.proc_checked(procno)?
            .xmin
            .store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
        Ok(())
    }
}
