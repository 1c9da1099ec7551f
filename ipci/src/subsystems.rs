//! The registry of subsystems, in PostgreSQL 18's `CreateOrAttachShmemStructs` order.
//!
//! Each later crate that owns shared memory adds one entry here, at the position its PostgreSQL
//! counterpart has in that order (the comments below list the whole order; subsystems pgipc does
//! not have are skipped). Sizes are summed with overflow checks; because the sum does not depend
//! on the order, only the init order is kept (it decides the layout).
//!
//! PostgreSQL 18 init order: CreateLWLocks, InitShmemIndex (both done by the shmem crate before
//! this list runs), dsm_shmem_init, DSMRegistryShmemInit, VarsupShmemInit, XLOGShmemInit,
//! XLogPrefetchShmemInit, XLogRecoveryShmemInit, CLOGShmemInit, CommitTsShmemInit,
//! SUBTRANSShmemInit, MultiXactShmemInit, BufferManagerShmemInit, LockManagerShmemInit,
//! PredicateLockShmemInit, InitProcGlobal, ProcArrayShmemInit, BackendStatusShmemInit,
//! TwoPhaseShmemInit, BackgroundWorkerShmemInit, SharedInvalShmemInit, PMSignalShmemInit,
//! ProcSignalShmemInit, CheckpointerShmemInit, AutoVacuumShmemInit, ReplicationSlotsShmemInit,
//! ReplicationOriginShmemInit, WalSndShmemInit, WalRcvShmemInit, WalSummarizerShmemInit,
//! PgArchShmemInit, ApplyLauncherShmemInit, SlotSyncShmemInit, BTreeShmemInit,
//! SyncScanShmemInit, AsyncShmemInit, StatsShmemInit, WaitEventCustomShmemInit,
//! InjectionPointShmemInit, AioShmemInit.

use crate::Subsystem;

/// Every subsystem of the workspace, in init order.
pub static SUBSYSTEMS: &[Subsystem] = &[
    // dsm_shmem_init
    // InitProcGlobal
    // ProcArrayShmemInit
    // BackgroundWorkerShmemInit
    // SharedInvalShmemInit
    // PMSignalShmemInit
    // ProcSignalShmemInit
    // CheckpointerShmemInit
];
