//! The structures that live in shared memory: `PROC_HDR` ("Proc Header"), `PGPROC` and the dense
//! mirrors ("PGPROC structures").

use pgipc_latch::Latch;
use pgipc_shmem::ShmemSafe;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Index of a PGPROC in the array (PostgreSQL's `ProcNumber`).
pub type ProcNumber = u32;
/// "No proc" (PostgreSQL's `INVALID_PROC_NUMBER`, -1 there).
pub const INVALID_PROC_NUMBER: ProcNumber = u32::MAX;
/// A 32-bit transaction id (PostgreSQL's `TransactionId`); comparisons live in `procarray`.
pub type TransactionId = u32;
/// PostgreSQL's `InvalidTransactionId`.
pub const INVALID_TRANSACTION_ID: TransactionId = 0;
/// A local transaction id, the second half of a virtual xid.
pub type LocalTransactionId = u32;
/// An object id (database, role, namespace).
pub type Oid = u32;

/// Subtransaction xids a PGPROC caches before it overflows (`PGPROC_MAX_CACHED_SUBXIDS`).
pub const PGPROC_MAX_CACHED_SUBXIDS: usize = 64;

/// `statusFlags` bits (PostgreSQL's `PROC_*`).
pub mod status_flags {
    /// An autovacuum worker.
    pub const PROC_IS_AUTOVACUUM: u8 = 0x01;
    /// Running lazy VACUUM.
    pub const PROC_IN_VACUUM: u8 = 0x02;
    /// Running a safe CREATE INDEX CONCURRENTLY / REINDEX CONCURRENTLY.
    pub const PROC_IN_SAFE_IC: u8 = 0x04;
    /// Vacuuming to prevent wraparound.
    pub const PROC_VACUUM_FOR_WRAPAROUND: u8 = 0x08;
    /// Doing logical decoding outside a transaction.
    pub const PROC_IN_LOGICAL_DECODING: u8 = 0x10;
    /// Its xmin must count for every database's horizon.
    pub const PROC_AFFECTS_ALL_HORIZONS: u8 = 0x20;
    /// Flags cleared at the end of every transaction (`PROC_VACUUM_STATE_MASK`).
    pub const PROC_VACUUM_STATE_MASK: u8 =
        PROC_IN_VACUUM | PROC_IN_SAFE_IC | PROC_VACUUM_FOR_WRAPAROUND;
    /// Flags that take a proc out of snapshots' xip (`PROC_XMIN_FLAGS`).
    pub const PROC_XMIN_FLAGS: u8 = PROC_IN_VACUUM | PROC_IN_LOGICAL_DECODING;
}

/// The free list a PGPROC belongs to for its whole life (PostgreSQL's `procgloballist`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FreeList {
    /// Regular backends (`freeProcs`).
    Backends = 0,
    /// Autovacuum workers and the special workers (`autovacFreeProcs`).
    Autovac = 1,
    /// Background workers (`bgworkerFreeProcs`).
    BgWorkers = 2,
    /// WAL senders (`walsenderFreeProcs`).
    WalSenders = 3,
}

impl FreeList {
    /// Every list, in array-partition order.
    pub const ALL: [FreeList; 4] = [
        FreeList::Backends,
        FreeList::Autovac,
        FreeList::BgWorkers,
        FreeList::WalSenders,
    ];

    pub(crate) fn from_u8(v: u8) -> Option<FreeList> {
        FreeList::ALL.get(usize::from(v)).copied()
    }
}

/// The two ends of one free list (proc numbers; [`INVALID_PROC_NUMBER`] when empty).
#[repr(C)]
#[derive(Debug, Default)]
pub struct FreeListHead {
    pub(crate) head: AtomicU32,
    pub(crate) tail: AtomicU32,
}

/// The header of the PGPROC table (PostgreSQL's `PROC_HDR`, ShmemIndex name "Proc Header").
///
/// # Layout
/// `#[repr(C)]`, atomics only; zero is "not initialised" (`magic` is written last).
///
/// # Synchronisation
/// * The sizing numbers are written once by the creator, before any other process attaches.
/// * `free`: only under the "ProcStructLock spinlock".
/// * `proc_array_group_first`, `clog_group_first`: lock-free CAS lists of proc numbers.
/// * `walwriter_proc`, `checkpointer_proc`: written by those processes, read by anyone.
///
/// The fields are private to this crate, whose [`ProcGlobal`](crate::ProcGlobal) methods
/// read the sizes and own the free lists; the one list another crate runs is reached through
/// [`proc_array_group_first`](Self::proc_array_group_first).
#[repr(C)]
pub struct ProcHdr {
    pub(crate) magic: AtomicU32,
    /// `MaxBackends`.
    pub(crate) max_backends: AtomicU32,
    /// PGPROCs with a semaphore and a latch: `MaxBackends + NUM_AUXILIARY_PROCS`
    /// (PostgreSQL's `allProcCount`).
    pub(crate) all_proc_count: AtomicU32,
    /// All PGPROCs, prepared-transaction dummies included (`TotalProcs`).
    pub(crate) total_procs: AtomicU32,
    /// End (exclusive) of each free list's partition of the array, in [`FreeList::ALL`] order.
    pub(crate) partition_end: [AtomicU32; 4],
    /// `max_wal_senders`, for the walsender error message.
    pub(crate) max_wal_senders: AtomicU32,
    pub(crate) free: [FreeListHead; 4],
    /// Head of the group xid-clearing list (`procArrayGroupFirst`).
    pub(crate) proc_array_group_first: AtomicU32,
    /// Head of the group clog-update list (`clogGroupFirst`; unused until a clog exists).
    pub(crate) clog_group_first: AtomicU32,
    /// The WAL writer's proc number (`walwriterProc`).
    pub(crate) walwriter_proc: AtomicU32,
    /// The checkpointer's proc number (`checkpointerProc`).
    pub(crate) checkpointer_proc: AtomicU32,
    /// Spinlock back-off estimate shared between processes (`spins_per_delay`).
    pub(crate) spins_per_delay: AtomicI32,
    /// Buffer the startup process waits to pin (`startupBufferPinWaitBufId`, -1 = none).
    pub(crate) startup_buffer_pin_wait_buf_id: AtomicI32,
}

impl ProcHdr {
    /// Head of the group xid-clearing list (PostgreSQL's `procArrayGroupFirst`, a proc number
    /// or [`INVALID_PROC_NUMBER`]). Only the `procarray` crate's group clearing uses it: a
    /// member pushes itself with compare-and-swap (AcqRel), the leader takes the whole list
    /// with a swap; no lock.
    pub fn proc_array_group_first(&self) -> &AtomicU32 {
        &self.proc_array_group_first
    }
}

// SAFETY: repr(C), atomics only, all-zero valid (magic 0 = uninitialised), no pointers.
unsafe impl ShmemSafe for ProcHdr {}
// SAFETY: as above (two atomics).
unsafe impl ShmemSafe for FreeListHead {}

impl fmt::Debug for ProcHdr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcHdr")
            .field("max_backends", &self.max_backends.load(Ordering::Relaxed))
            .field(
                "all_proc_count",
                &self.all_proc_count.load(Ordering::Relaxed),
            )
            .field("total_procs", &self.total_procs.load(Ordering::Relaxed))
            .finish()
    }
}

/// A subtransaction cache's state (PostgreSQL's `XidCacheStatus`), in the PGPROC and mirrored
/// in the dense `subxidStates` array.
///
/// # Layout
/// `#[repr(C)]`, 2 bytes: `count` (0..=64), `overflowed` (more subxids than fit).
#[repr(C)]
#[derive(Default)]
pub struct XidCacheStatus {
    /// Cached subxids.
    pub count: AtomicU8,
    /// Some subxids did not fit in the cache.
    pub overflowed: AtomicBool,
}

// SAFETY: repr(C), two atomics, zero valid.
unsafe impl ShmemSafe for XidCacheStatus {}

impl fmt::Debug for XidCacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XidCacheStatus")
            .field("count", &self.count.load(Ordering::Relaxed))
            .field("overflowed", &self.overflowed.load(Ordering::Relaxed))
            .finish()
    }
}

/// One process slot (PostgreSQL's `PGPROC`), the parts the IPC layer needs.
///
/// The semaphore and the wait-event code are *not* here: they are the `lwlock` crate's
/// `ProcWaitSlot` of the same proc number (reserved by ipci before this array).
///
/// # Layout
/// `#[repr(C)]`, atomics only; the layout is pinned by a snapshot test. The table holds each
/// slot as `CachePadded<PgProc>` (alone on its 128-byte lines, PostgreSQL's
/// `PG_CACHE_LINE_SIZE`), so one process's stores to its own slot do not slow its neighbours.
///
/// # Synchronisation
/// * `free_next`: the free-list link, only under the ProcStructLock spinlock.
/// * `pid`, `proc_number`, `backend_type`, `is_regular_backend`, identity fields: written by the
///   owner while it sets itself up or exits (and by the postmaster's reclaim of a dead owner);
///   read by anyone. Aux slots' `pid` is claimed under the spinlock.
/// * `xid`: written by the owner under XidGenLock (assignment) or ProcArrayLock exclusive (end
///   of transaction, possibly by a group leader on the owner's behalf); mirrored in
///   `xids[pgxactoff]`. `subxids`/`subxid_status` the same way (the array is written before the
///   count, with a barrier between).
/// * `xmin`, `lxid`, `delay_chkpt_flags`: the owner, lock-free; readers under ProcArrayLock.
/// * `status_flags`: the owner, under ProcArrayLock exclusive (mirrored in `statusFlags[]`).
/// * `pgxactoff`: under ProcArrayLock exclusive + XidGenLock exclusive (`procarray` add/remove);
///   [`INVALID_PROC_NUMBER`] while the proc is not in the ProcArray.
/// * `latch`: the `latch` crate's rules (owner resets and sleeps, anyone sets); ownership
///   follows the slot's.
/// * `proc_array_group_*`: the group xid-clearing protocol (owner pushes itself, the leader
///   clears `proc_array_group_member` after doing its work).
#[repr(C)]
pub struct PgProc {
    /// OS process id; 0 when the slot is free (or a prepared transaction's dummy).
    pub pid: AtomicI32,
    /// `vxid.procNumber`: this slot's own number while in use, [`INVALID_PROC_NUMBER`] otherwise.
    pub proc_number: AtomicU32,
    /// `vxid.lxid`: the local transaction id.
    pub lxid: AtomicU32,
    /// Top-level transaction id, [`INVALID_TRANSACTION_ID`] if none.
    pub xid: AtomicU32,
    /// Oldest xid this process's snapshots may still see as running.
    pub xmin: AtomicU32,
    /// Position in the dense arrays while in the ProcArray.
    pub pgxactoff: AtomicU32,
    /// Database, or 0 (InvalidOid) while starting or for processes without one.
    pub database_id: AtomicU32,
    /// Role, or 0.
    pub role_id: AtomicU32,
    /// Temporary namespace, or 0.
    pub temp_namespace_id: AtomicU32,
    /// Next member in the group xid-clearing list (`procArrayGroupNext`).
    pub proc_array_group_next: AtomicU32,
    /// The xid whose end the group leader must record for this member.
    pub proc_array_group_member_xid: AtomicU32,
    /// Free-list link (proc number).
    pub(crate) free_next: AtomicU32,
    /// The [`crate::BackendType`] of the owner, as its `u8`.
    pub backend_type: AtomicU8,
    /// Which [`FreeList`] this slot belongs to (fixed at creation; 0xff for aux/prepared).
    pub(crate) free_list: AtomicU8,
    /// A client backend (PostgreSQL's `isRegularBackend`).
    pub is_regular_backend: AtomicBool,
    /// `PROC_*` flags (see [`status_flags`]).
    pub status_flags: AtomicU8,
    /// `DELAY_CHKPT_*` flags.
    pub delay_chkpt_flags: AtomicU8,
    /// A recovery conflict was signalled to this process.
    pub recovery_conflict_pending: AtomicBool,
    /// This proc is queued for (or in) a group xid clear.
    pub proc_array_group_member: AtomicBool,
    _pad: u8,
    /// When the current heavyweight-lock wait started (µs since epoch; 0 = none).
    pub wait_start: AtomicU64,
    /// The subtransaction cache's state.
    pub subxid_status: XidCacheStatus,
    _pad2: [u8; 6],
    /// Cached subtransaction xids (the first `subxid_status.count` are valid).
    pub subxids: [AtomicU32; PGPROC_MAX_CACHED_SUBXIDS],
    /// The process latch (PostgreSQL's `procLatch`): initialised once by the creator, owned by
    /// whoever holds the slot, set by anyone to wake it.
    pub latch: Latch,
}

// SAFETY: repr(C), atomics, plain padding and a Latch (itself ShmemSafe: atomics, zero =
// clear and unowned) only; all-zero valid (pid 0 = free); no pointers.
unsafe impl ShmemSafe for PgProc {}

impl fmt::Debug for PgProc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgProc")
            .field("pid", &self.pid.load(Ordering::Relaxed))
            .field("proc_number", &self.proc_number.load(Ordering::Relaxed))
            .field("xid", &self.xid.load(Ordering::Relaxed))
            .field("xmin", &self.xmin.load(Ordering::Relaxed))
            .field("pgxactoff", &self.pgxactoff.load(Ordering::Relaxed))
            .field("status_flags", &self.status_flags.load(Ordering::Relaxed))
            .finish()
    }
}
