//! Transaction ids: wraparound-aware comparisons, 64-bit "full" ids, and the shared counters
//! (PostgreSQL's `access/transam/transam.c` comparisons and the `TransamVariables` part of
//! `varsup.c` that the ProcArray needs).

use pgipc_proc::TransactionId;
use pgipc_shmem::ShmemSafe;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// PostgreSQL's `InvalidTransactionId` (defined beside `TransactionId` in `pgipc-proc`).
pub use pgipc_proc::INVALID_TRANSACTION_ID;
/// PostgreSQL's `BootstrapTransactionId`.
pub const BOOTSTRAP_TRANSACTION_ID: TransactionId = 1;
/// PostgreSQL's `FrozenTransactionId`.
pub const FROZEN_TRANSACTION_ID: TransactionId = 2;
/// PostgreSQL's `FirstNormalTransactionId`: the first id handed out.
pub const FIRST_NORMAL_TRANSACTION_ID: TransactionId = 3;

/// Whether `xid` is valid (not 0).
pub fn transaction_id_is_valid(xid: TransactionId) -> bool {
    xid != INVALID_TRANSACTION_ID
}

/// Whether `xid` is a normal id (not one of the three special ones).
pub fn transaction_id_is_normal(xid: TransactionId) -> bool {
    xid >= FIRST_NORMAL_TRANSACTION_ID
}

/// `a` is logically older than `b` (PostgreSQL's `TransactionIdPrecedes`): special ids compare
/// as plain numbers; normal ids compare modulo 2^32, so each id has 2^31 ids "before" it.
pub fn transaction_id_precedes(a: TransactionId, b: TransactionId) -> bool {
    if !transaction_id_is_normal(a) || !transaction_id_is_normal(b) {
        return a < b;
    }
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` precedes or equals `b`.
pub fn transaction_id_precedes_or_equals(a: TransactionId, b: TransactionId) -> bool {
    a == b || transaction_id_precedes(a, b)
}

/// `a` is logically newer than `b`.
pub fn transaction_id_follows(a: TransactionId, b: TransactionId) -> bool {
    transaction_id_precedes(b, a)
}

/// `a` follows or equals `b`.
pub fn transaction_id_follows_or_equals(a: TransactionId, b: TransactionId) -> bool {
    a == b || transaction_id_precedes(b, a)
}

/// The older of two ids, ignoring invalid ones (PostgreSQL's `TransactionIdOlder`).
pub fn transaction_id_older(a: TransactionId, b: TransactionId) -> TransactionId {
    if !transaction_id_is_valid(a) {
        return b;
    }
    if !transaction_id_is_valid(b) {
        return a;
    }
    if transaction_id_precedes(a, b) {
        a
    } else {
        b
    }
}

/// An epoch-extended transaction id (PostgreSQL's `FullTransactionId`): never wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FullTransactionId(pub u64);

impl FullTransactionId {
    /// The 32-bit id.
    pub fn xid(self) -> TransactionId {
        self.0 as u32
    }

    /// The epoch (wraparound count).
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The next id, skipping the special ids after a wraparound (`FullTransactionIdAdvance`).
    pub fn advance(self) -> Self {
        let mut v = self.0 + 1;
        while (v as u32) < FIRST_NORMAL_TRANSACTION_ID {
            v += 1;
        }
        FullTransactionId(v)
    }

    /// The previous normal id (`FullTransactionIdRetreat`).
    pub fn retreat(self) -> Self {
        let mut v = self.0.saturating_sub(1);
        while v > 0 && (v as u32) < FIRST_NORMAL_TRANSACTION_ID {
            v -= 1;
        }
        FullTransactionId(v)
    }

    /// The full id of `xid`, taken to be within 2^31 of `self` (`FullXidRelativeTo`).
    pub fn relative(self, xid: TransactionId) -> Self {
        let diff = i64::from(xid.wrapping_sub(self.xid()) as i32);
        FullTransactionId((self.0 as i64 + diff) as u64)
    }
}

/// The shared transaction counters (PostgreSQL's `TransamVariablesData`, ShmemIndex name
/// "TransamVariables"), reduced to what the ProcArray uses.
///
/// # Layout
/// `#[repr(C)]`, atomics only; `magic` is 0 until the creator has written the start values.
///
/// # Synchronisation
/// * `next_xid`: under XidGenLock exclusive.
/// * `latest_completed_xid`, `xact_completion_count`: under ProcArrayLock exclusive; readers
///   hold it at least shared.
/// * `oldest_xid`: written by the creator (no vacuum truncation exists here).
///
/// The fields are private to this crate (the ProcArray's methods are the writers); the readers
/// below are lock-free snapshots for monitoring and tests: a caller that needs a consistent
/// pair takes ProcArrayLock itself.
#[repr(C)]
pub struct TransamVariables {
    pub(crate) magic: AtomicU32,
    /// Oldest xid still considered by wraparound protection.
    pub(crate) oldest_xid: AtomicU32,
    /// Next id to hand out, as a full id.
    pub(crate) next_xid: AtomicU64,
    /// Newest id that committed or aborted, as a full id.
    pub(crate) latest_completed_xid: AtomicU64,
    /// Count of transaction ends; starts at 1 (0 in a snapshot means "never reuse").
    pub(crate) xact_completion_count: AtomicU64,
}

// SAFETY: repr(C), atomics only, all-zero valid (magic 0 = not initialised), no pointers.
unsafe impl ShmemSafe for TransamVariables {}

impl TransamVariables {
    /// Next id to hand out, as a full id (advanced under XidGenLock exclusive).
    pub fn next_xid(&self) -> u64 {
        self.next_xid.load(Ordering::Acquire)
    }

    /// Newest id that committed or aborted, as a full id (under ProcArrayLock exclusive).
    pub fn latest_completed_xid(&self) -> u64 {
        self.latest_completed_xid.load(Ordering::Acquire)
    }

    /// Count of transaction ends (under ProcArrayLock exclusive).
    pub fn xact_completion_count(&self) -> u64 {
        self.xact_completion_count.load(Ordering::Acquire)
    }

    /// Oldest xid still considered by wraparound protection (written by the creator).
    pub fn oldest_xid(&self) -> TransactionId {
        self.oldest_xid.load(Ordering::Acquire)
    }
}

impl fmt::Debug for TransamVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransamVariables")
            .field("next_xid", &self.next_xid.load(Ordering::Relaxed))
            .field(
                "latest_completed_xid",
                &self.latest_completed_xid.load(Ordering::Relaxed),
            )
            .field(
                "xact_completion_count",
                &self.xact_completion_count.load(Ordering::Relaxed),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap() {
        assert!(transaction_id_precedes(3, 4));
        assert!(
            transaction_id_precedes(u32::MAX, 3 + 5),
            "just before a wraparound"
        );
        assert!(transaction_id_follows(10, u32::MAX - 10));
        assert!(
            transaction_id_precedes(1, 3),
            "special ids compare as numbers"
        );
        assert!(!transaction_id_precedes(3, 2));
        assert!(transaction_id_precedes_or_equals(7, 7));
        assert!(transaction_id_follows_or_equals(7, 7));
        assert_eq!(transaction_id_older(0, 9), 9);
        assert_eq!(transaction_id_older(u32::MAX, 5), u32::MAX);
    }

    #[test]
    fn full_ids() {
        let f = FullTransactionId(u64::from(u32::MAX));
        let n = f.advance();
        assert_eq!((n.epoch(), n.xid()), (1, 3));
        assert_eq!(n.retreat(), f);
        assert_eq!(n.relative(u32::MAX).0, u64::from(u32::MAX));
        assert_eq!(f.relative(5), FullTransactionId((1 << 32) + 5));
    }
}
