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

use crate::{IpciError, Subsystem};

/// Every subsystem of the workspace, in init order.
pub static SUBSYSTEMS: &[Subsystem] = &[
    // dsm_shmem_init
    // VarsupShmemInit
    Subsystem {
        name: pgipc_procarray::TRANSAM_VARIABLES_NAME,
        size: |_| Ok(pgipc_procarray::transam_shmem_size()),
        init: |s, _| {
            pgipc_procarray::transam_shmem_init(s)
                .map(drop)
                .map_err(|e| IpciError::subsystem(pgipc_procarray::TRANSAM_VARIABLES_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
    // InitProcGlobal
    Subsystem {
        name: pgipc_proc::PROC_HEADER_NAME,
        size: |c| {
            pgipc_proc::shmem_size(&c.proc_config())
                .map_err(|e| IpciError::subsystem(pgipc_proc::PROC_HEADER_NAME, e))
        },
        init: |s, c| {
            pgipc_proc::shmem_init(s, &c.proc_config())
                .map(drop)
                .map_err(|e| IpciError::subsystem(pgipc_proc::PROC_HEADER_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
    // ProcArrayShmemInit
    Subsystem {
        name: pgipc_procarray::PROC_ARRAY_NAME,
        size: |c| {
            pgipc_procarray::shmem_size(&c.proc_config())
                .map_err(|e| IpciError::subsystem(pgipc_procarray::PROC_ARRAY_NAME, e))
        },
        init: |s, c| {
            pgipc_procarray::shmem_init(s, &c.proc_config())
                .map(drop)
                .map_err(|e| IpciError::subsystem(pgipc_procarray::PROC_ARRAY_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
    // BackgroundWorkerShmemInit
    // SharedInvalShmemInit
    Subsystem {
        name: pgipc_sinval::SINVAL_NAME,
        size: |c| {
            pgipc_sinval::shmem_size(c.num_proc_signal_slots()? as usize)
                .map_err(|e| IpciError::subsystem(pgipc_sinval::SINVAL_NAME, e))
        },
        init: |s, c| {
            pgipc_sinval::shmem_init(s, c.num_proc_signal_slots()? as usize)
                .map(drop)
                .map_err(|e| IpciError::subsystem(pgipc_sinval::SINVAL_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
    // PMSignalShmemInit
    Subsystem {
        name: pgipc_pmsignal::PMSIGNAL_STATE_NAME,
        size: |c| {
            pgipc_pmsignal::shmem_size(c.max_live_postmaster_children()? as usize)
                .map_err(|e| IpciError::subsystem(pgipc_pmsignal::PMSIGNAL_STATE_NAME, e))
        },
        init: |s, c| {
            pgipc_pmsignal::shmem_init(s, c.max_live_postmaster_children()? as usize)
                .map(drop)
                .map_err(|e| IpciError::subsystem(pgipc_pmsignal::PMSIGNAL_STATE_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
    // ProcSignalShmemInit
    Subsystem {
        name: pgipc_procsignal::PROCSIGNAL_NAME,
        size: |c| {
            pgipc_procsignal::shmem_size(c.num_proc_signal_slots()? as usize)
                .map_err(|e| IpciError::subsystem(pgipc_procsignal::PROCSIGNAL_NAME, e))
        },
        init: |s, c| {
            pgipc_procsignal::shmem_init(s, c.num_proc_signal_slots()? as usize)
                .map(drop)
                .map_err(|e| IpciError::subsystem(pgipc_procsignal::PROCSIGNAL_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
    // CheckpointerShmemInit
];
