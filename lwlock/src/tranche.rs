//! Tranche ids and names: what a waiter says it is waiting for.
//!
//! PostgreSQL numbers its individual LWLocks (the `MainLWLockArray` entries, `lwlocklist.h`) and
//! then its built-in tranches; extensions add named tranches. We keep PostgreSQL 18's numbers for
//! the individual locks, so a wait-event code means the same lock in both systems, and our own
//! numbers for the handful of built-in tranches this project uses.

use std::sync::Mutex;

/// Identifies a family of LWLocks (for wait events and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrancheId(pub u16);

macro_rules! individual_locks {
    ($( $num:literal $name:ident ),* $(,)?) => {
        /// The individually named LWLocks of the main LWLock array, with PostgreSQL 18's numbers
        /// (gaps are numbers PostgreSQL retired). Each one's tranche id is its own number.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        #[allow(missing_docs)]
        pub enum MainLWLockId { $( $name = $num ),* }

        impl MainLWLockId {
            /// Every individual lock, in array order.
            pub const ALL: &'static [MainLWLockId] = &[$(MainLWLockId::$name),*];

            /// The lock's name without the `Lock` suffix, as PostgreSQL's wait events show it.
            pub const fn name(self) -> &'static str {
                match self { $( MainLWLockId::$name => stringify!($name) ),* }
            }
        }

        fn individual_name(n: u16) -> Option<&'static str> {
            match n { $( $num => Some(stringify!($name)), )* _ => None }
        }
    };
}

individual_locks! {
    1 ShmemIndex, 2 OidGen, 3 XidGen, 4 ProcArray, 5 SInvalRead, 6 SInvalWrite,
    7 WALBufMapping, 8 WALWrite, 9 ControlFile, 13 MultiXactGen, 16 RelCacheInit,
    17 CheckpointerComm, 18 TwoPhaseState, 19 TablespaceCreate, 20 BtreeVacuum,
    21 AddinShmemInit, 22 Autovacuum, 23 AutovacuumSchedule, 24 SyncScan, 25 RelationMapping,
    27 NotifyQueue, 28 SerializableXactHash, 29 SerializableFinishedList,
    30 SerializablePredicateList, 32 SyncRep, 33 BackgroundWorker, 34 DynamicSharedMemoryControl,
    35 AutoFile, 36 ReplicationSlotAllocation, 37 ReplicationSlotControl, 39 CommitTs,
    40 ReplicationOrigin, 41 MultiXactTruncation, 43 LogicalRepWorker, 44 XactTruncation,
    46 WrapLimitsVacuum, 47 NotifyQueueTail, 48 WaitEventCustom, 49 WALSummarizer,
    50 DSMRegistry, 51 InjectionPoint, 52 SerialControl, 53 AioWorkerSubmissionQueue,
}

/// Size of the individual-lock part of the main array (PostgreSQL's `NUM_INDIVIDUAL_LWLOCKS`);
/// slot 0 and the retired numbers are unused.
pub const NUM_INDIVIDUAL_LWLOCKS: usize = 54;

impl MainLWLockId {
    /// The tranche of this lock.
    pub const fn tranche(self) -> TrancheId {
        TrancheId(self as u16)
    }
}

/// Built-in tranches used by pgipc's own subsystems (numbered after the individual locks).
pub mod builtin {
    use super::TrancheId;
    /// Per-PGPROC fast-path lock (PostgreSQL's `LockFastPath`).
    pub const LOCK_FASTPATH: TrancheId = TrancheId(60);
    /// Locks a test or benchmark makes for itself.
    pub const TEST: TrancheId = TrancheId(61);
    /// The first id handed to named tranches requested by add-ins.
    pub const FIRST_USER_DEFINED: TrancheId = TrancheId(100);
}

static REGISTERED: Mutex<Vec<(u16, &'static str)>> = Mutex::new(Vec::new());

/// Records a name for tranche `id` in this process (PostgreSQL's `LWLockRegisterTranche`).
///
/// Names are process-local, as in PostgreSQL: every process that wants to report a tranche by
/// name registers it (ipci does so for add-in tranches in every process it sets up).
pub fn register_tranche(id: TrancheId, name: &str) {
    let mut reg = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = reg.iter_mut().find(|(n, _)| *n == id.0) {
        if entry.1 == name {
            return;
        }
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    reg.retain(|(n, _)| *n != id.0);
    reg.push((id.0, leaked));
}

/// The name of tranche `id`, or `"extension"` for an unknown id (as PostgreSQL reports it).
pub fn tranche_name(id: TrancheId) -> &'static str {
    if let Some(n) = individual_name(id.0) {
        return n;
    }
    match id {
        builtin::LOCK_FASTPATH => return "LockFastPath",
        builtin::TEST => return "Test",
        _ => {}
    }
    let reg = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    reg.iter()
        .find(|(n, _)| *n == id.0)
        .map(|(_, s)| *s)
        .unwrap_or("extension")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            tranche_name(MainLWLockId::ShmemIndex.tranche()),
            "ShmemIndex"
        );
        assert_eq!(tranche_name(MainLWLockId::ProcArray.tranche()), "ProcArray");
        assert_eq!(tranche_name(TrancheId(0)), "extension");
        register_tranche(TrancheId(4242), "my_ext");
        assert_eq!(tranche_name(TrancheId(4242)), "my_ext");
        assert!(MainLWLockId::ALL
            .iter()
            .all(|l| (*l as usize) < NUM_INDIVIDUAL_LWLOCKS));
    }
}
