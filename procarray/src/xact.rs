//! Transaction ids for procs, and the end of a transaction, including PostgreSQL's group xid
//! clearing (`GetNewTransactionId`, `ProcArrayEndTransaction`, `ProcArrayGroupClearXid`).

use crate::array::ProcArray;
use crate::transam::{transaction_id_is_valid, FullTransactionId};
use crate::ProcArrayError;
use pgipc_lwlock::LWLockMode;
use pgipc_proc::{
    status_flags::PROC_VACUUM_STATE_MASK, PgProc, ProcNumber, TransactionId, INVALID_PROC_NUMBER,
    INVALID_TRANSACTION_ID, PGPROC_MAX_CACHED_SUBXIDS,
};
use std::sync::atomic::{fence, Ordering};

/// Wait-event class of IPC waits (PostgreSQL's `PG_WAIT_IPC`).
pub const PG_WAIT_IPC: u32 = pgipc_wait_event::PG_WAIT_IPC;
/// `WAIT_EVENT_PROC_ARRAY_GROUP_UPDATE` (`IPC/ProcarrayGroupUpdate`): a follower waiting for
/// the group leader to clear its xid.
pub const WAIT_EVENT_PROC_ARRAY_GROUP_UPDATE: u32 =
    pgipc_wait_event::WAIT_EVENT_PROCARRAY_GROUP_UPDATE;

/// How [`ProcArray::end_transaction`] recorded the end (none of these is a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPath {
    /// The transaction had no xid: nothing shared to clear.
    NoXid,
    /// ProcArrayLock was free: cleared under it directly.
    Direct,
    /// Led a group clear: this many transactions (its own included) cleared under one lock
    /// acquisition.
    GroupLeader {
        /// Members cleared, the leader included.
        members: u32,
    },
    /// Queued behind a group leader, which cleared it; slept on the proc's semaphore.
    GroupFollower,
}

impl ProcArray {
    /// Hands out the next transaction id to `procno` (PostgreSQL's `GetNewTransactionId`).
    ///
    /// A top-level id (`is_subxact == false`) becomes the proc's `xid` and is mirrored into the
    /// dense array; a subtransaction id goes into the proc's subxid cache (or sets `overflowed`
    /// once 64 are cached); assign the top-level id first, as PostgreSQL's `AssignTransactionId`
    /// does. The proc must be in the ProcArray. Runs under XidGenLock exclusive,
    /// which is what makes the id visible to snapshots before any later id can end.
    ///
    /// Wraparound protection (the vacuum limits of `SetTransactionIdLimit`) is not modelled:
    /// ids wrap modulo 2^32 as the comparisons expect.
    #[doc(alias = "GetNewTransactionId")]
    pub fn assign_transaction_id(
        &self,
        procno: ProcNumber,
        is_subxact: bool,
    ) -> Result<TransactionId, ProcArrayError> {
        let p = self.proc_checked(procno)?;
        let me = self.actor(procno);
        let _xg = self.xid_gen_lock().acquire(&me, LWLockMode::Exclusive);
        let off = p.pgxactoff.load(Ordering::Relaxed);
        if off == INVALID_PROC_NUMBER {
            return Err(ProcArrayError::NotInProcArray { procno });
        }
        let off = off as usize;
        // Under XidGenLock, before anything changed: a test holds the lock here (`wait`) to
        // show another process waiting on it as LWLock/XidGen; `error` fails the assignment.
        pgipc_injection_point::injection_point!("get-new-transaction-id")?;
        let full = FullTransactionId(self.transam.next_xid.load(Ordering::Relaxed));
        let xid = full.xid();
        self.transam
            .next_xid
            .store(full.advance().0, Ordering::Relaxed);
        if !is_subxact {
            p.xid.store(xid, Ordering::Relaxed);
            self.procs.xids()[off].store(xid, Ordering::Release);
        } else {
            let dense = &self.procs.subxid_states()[off];
            let n = usize::from(p.subxid_status.count.load(Ordering::Relaxed));
            if n < PGPROC_MAX_CACHED_SUBXIDS {
                p.subxids[n].store(xid, Ordering::Relaxed);
                // The cache entry must be visible before the count that covers it.
                fence(Ordering::Release);
                p.subxid_status.count.store(n as u8 + 1, Ordering::Release);
                dense.count.store(n as u8 + 1, Ordering::Release);
            } else {
                p.subxid_status.overflowed.store(true, Ordering::Release);
                dense.overflowed.store(true, Ordering::Release);
            }
        }
        Ok(xid)
    }

    /// Removes aborted subtransaction ids from `procno`'s subxid cache (PostgreSQL's
    /// `XidCacheRemoveRunningXids`): `xid` (the aborted subtransaction's own) and `children`
    /// (its committed children's), each found from the newest end and replaced by the
    /// cache's last entry, the count lowered in the PGPROC and the dense array alike. The
    /// `overflowed` flag stays set: ids that never fitted cannot be told apart. Under
    /// ProcArrayLock exclusive, which also advances `latestCompletedXid` to `latest_xid` and
    /// counts a completion (snapshots taken before are not reused).
    ///
    /// Returns how many of the ids were not in the cache: none unless it overflowed
    /// (PostgreSQL warns `did not find subXID` in that case).
    #[doc(alias = "XidCacheRemoveRunningXids")]
    pub fn xid_cache_remove_running_xids(
        &self,
        procno: ProcNumber,
        xid: TransactionId,
        children: &[TransactionId],
        latest_xid: TransactionId,
    ) -> Result<usize, ProcArrayError> {
        let p = self.proc_checked(procno)?;
        let me = self.actor(procno);
        let _g = self.proc_array_lock().acquire(&me, LWLockMode::Exclusive);
        let off = p.pgxactoff.load(Ordering::Relaxed);
        if off == INVALID_PROC_NUMBER {
            return Err(ProcArrayError::NotInProcArray { procno });
        }
        let dense = &self.procs.subxid_states()[off as usize];
        let mut missing = 0;
        // Children first, newest first, then the subtransaction itself (the likely order
        // of the cache's tail).
        for &x in children.iter().rev().chain(std::iter::once(&xid)) {
            if !transaction_id_is_valid(x) {
                continue;
            }
            let n = usize::from(p.subxid_status.count.load(Ordering::Relaxed))
                .min(PGPROC_MAX_CACHED_SUBXIDS);
            match (0..n)
                .rev()
                .find(|&j| p.subxids[j].load(Ordering::Relaxed) == x)
            {
                Some(j) => {
                    let last = p.subxids[n - 1].load(Ordering::Relaxed);
                    p.subxids[j].store(last, Ordering::Relaxed);
                    // A reader holding ProcArrayLock shared cannot be here; the lowered count
                    // is published after the move.
                    fence(Ordering::Release);
                    p.subxid_status.count.store(n as u8 - 1, Ordering::Release);
                    dense.count.store(n as u8 - 1, Ordering::Release);
                }
                None => missing += 1,
            }
        }
        if transaction_id_is_valid(latest_xid) {
            self.maintain_latest_completed_xid(latest_xid);
        }
        self.transam
            .xact_completion_count
            .fetch_add(1, Ordering::Relaxed);
        Ok(missing)
    }

    /// The next id that will be handed out (`ReadNextFullTransactionId`).
    pub fn read_next_full_transaction_id(&self) -> FullTransactionId {
        let me = self.procs.shmem().lwlock_proc();
        let _xg = self.xid_gen_lock().acquire(&me, LWLockMode::Shared);
        FullTransactionId(self.transam.next_xid.load(Ordering::Relaxed))
    }

    /// Ends `procno`'s transaction, commit or abort alike (PostgreSQL's
    /// `ProcArrayEndTransaction`). `latest_xid` is the newest id of the transaction (its own or
    /// a subtransaction's), or [`INVALID_TRANSACTION_ID`] if it never had one.
    ///
    /// With an xid: if ProcArrayLock is free it is taken exclusive at once; otherwise the proc
    /// joins the group-clearing list and either becomes the leader (clears everyone's xid under
    /// one lock acquisition) or sleeps on its semaphore until a leader has cleared it.
    /// Without an xid: only process-local fields are reset, without any lock unless vacuum
    /// flags must be cleared.
    #[doc(alias = "ProcArrayEndTransaction")]
    pub fn end_transaction(
        &self,
        procno: ProcNumber,
        latest_xid: TransactionId,
    ) -> Result<EndPath, ProcArrayError> {
        let p = self.proc_checked(procno)?;
        if transaction_id_is_valid(latest_xid) {
            if p.pgxactoff.load(Ordering::Relaxed) == INVALID_PROC_NUMBER {
                return Err(ProcArrayError::NotInProcArray { procno });
            }
            let me = self.actor(procno);
            if let Some(_g) = self
                .proc_array_lock()
                .conditional_acquire(&me, LWLockMode::Exclusive)
            {
                self.end_transaction_internal(p, latest_xid);
                return Ok(EndPath::Direct);
            }
            return Ok(self.group_clear_xid(procno, latest_xid));
        }
        p.lxid.store(0, Ordering::Relaxed);
        p.xmin.store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
        p.delay_chkpt_flags.store(0, Ordering::Relaxed);
        p.recovery_conflict_pending.store(false, Ordering::Relaxed);
        if p.status_flags.load(Ordering::Relaxed) & PROC_VACUUM_STATE_MASK != 0 {
            let me = self.actor(procno);
            let _g = self.proc_array_lock().acquire(&me, LWLockMode::Exclusive);
            let f = p.status_flags.load(Ordering::Relaxed) & !PROC_VACUUM_STATE_MASK;
            p.status_flags.store(f, Ordering::Relaxed);
            if let Some(d) = self
                .procs
                .status_flags()
                .get(p.pgxactoff.load(Ordering::Relaxed) as usize)
            {
                d.store(f, Ordering::Relaxed);
            }
        }
        Ok(EndPath::NoXid)
    }

    /// Clears `p`'s transaction in the PGPROC and the dense arrays and records the end.
    /// Caller holds ProcArrayLock exclusive (`ProcArrayEndTransactionInternal`).
    fn end_transaction_internal(&self, p: &PgProc, latest_xid: TransactionId) {
        let off = p.pgxactoff.load(Ordering::Relaxed) as usize;
        self.procs.xids()[off].store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
        p.xid.store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
        p.lxid.store(0, Ordering::Relaxed);
        p.xmin.store(INVALID_TRANSACTION_ID, Ordering::Relaxed);
        p.delay_chkpt_flags.store(0, Ordering::Relaxed);
        p.recovery_conflict_pending.store(false, Ordering::Relaxed);
        let flags = p.status_flags.load(Ordering::Relaxed);
        if flags & PROC_VACUUM_STATE_MASK != 0 {
            let f = flags & !PROC_VACUUM_STATE_MASK;
            p.status_flags.store(f, Ordering::Relaxed);
            self.procs.status_flags()[off].store(f, Ordering::Relaxed);
        }
        let dense = &self.procs.subxid_states()[off];
        if p.subxid_status.count.load(Ordering::Relaxed) > 0
            || p.subxid_status.overflowed.load(Ordering::Relaxed)
        {
            p.subxid_status.count.store(0, Ordering::Relaxed);
            p.subxid_status.overflowed.store(false, Ordering::Relaxed);
            dense.count.store(0, Ordering::Relaxed);
            dense.overflowed.store(false, Ordering::Relaxed);
        }
        self.maintain_latest_completed_xid(latest_xid);
        self.transam
            .xact_completion_count
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The group path of [`end_transaction`](Self::end_transaction)
    /// (`ProcArrayGroupClearXid`).
    fn group_clear_xid(&self, procno: ProcNumber, latest_xid: TransactionId) -> EndPath {
        let all = self.procs.all_procs();
        let p = &all[procno as usize];
        let head = self.procs.hdr().proc_array_group_first();
        p.proc_array_group_member.store(true, Ordering::Relaxed);
        p.proc_array_group_member_xid
            .store(latest_xid, Ordering::Relaxed);
        // Push ourselves on the lock-free list.
        let mut next = head.load(Ordering::Acquire);
        loop {
            p.proc_array_group_next.store(next, Ordering::Relaxed);
            match head.compare_exchange_weak(next, procno, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => next = now,
            }
        }
        if next != INVALID_PROC_NUMBER {
            // A follower: the leader clears our xid and posts our semaphore.
            let Ok(slot) = self.procs.wait_slot(procno) else {
                // No semaphore (a prepared-transaction dummy cannot get here): poll.
                while p.proc_array_group_member.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                return EndPath::GroupFollower;
            };
            slot.wait_event_info
                .store(WAIT_EVENT_PROC_ARRAY_GROUP_UPDATE, Ordering::Relaxed);
            let mut extra = 0u32;
            loop {
                slot.sem.lock();
                if !p.proc_array_group_member.load(Ordering::Acquire) {
                    break;
                }
                extra += 1; // a wake-up meant for another wait of ours
            }
            slot.wait_event_info.store(0, Ordering::Relaxed);
            for _ in 0..extra {
                slot.sem.unlock();
            }
            return EndPath::GroupFollower;
        }
        // The leader: clear everyone queued so far under one exclusive acquisition.
        let me = self.actor(procno);
        let guard = self.proc_array_lock().acquire(&me, LWLockMode::Exclusive);
        let first = head.swap(INVALID_PROC_NUMBER, Ordering::AcqRel);
        let mut cur = first;
        let mut members = 0;
        while cur != INVALID_PROC_NUMBER {
            let m = &all[cur as usize];
            self.end_transaction_internal(m, m.proc_array_group_member_xid.load(Ordering::Relaxed));
            cur = m.proc_array_group_next.load(Ordering::Relaxed);
            members += 1;
        }
        drop(guard);
        // Wake the followers only after the lock is released, so they do not pile onto it.
        let mut cur = first;
        while cur != INVALID_PROC_NUMBER {
            let m = &all[cur as usize];
            // Read the link before releasing the member: once released it may queue again.
            let next = m.proc_array_group_next.load(Ordering::Relaxed);
            m.proc_array_group_next
                .store(INVALID_PROC_NUMBER, Ordering::Relaxed);
            m.proc_array_group_member.store(false, Ordering::Release);
            if cur != procno {
                if let Ok(slot) = self.procs.wait_slot(cur) {
                    slot.sem.unlock();
                }
            }
            cur = next;
        }
        EndPath::GroupLeader { members }
    }
}
