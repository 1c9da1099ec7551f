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

use crate::{IpcConfig, IpciError, StartupContext, Subsystem};
use pgipc_dsm::DsmImpl;

const DSM_NAME: &str = "dynamic shared memory control";

fn dsm_impl(config: &IpcConfig) -> DsmImpl {
    DsmImpl::new(
        config.dynamic_shared_memory_type,
        config.data_dir.as_deref(),
    )
}

/// Removes what dead predecessors' control segments still list, then creates this server's
/// control segment and records its handle in the segment header and the interlock
/// (PostgreSQL's `dsm_cleanup_using_control_segment` + `dsm_postmaster_startup`).
fn dsm_startup(ctx: &mut StartupContext<'_>) -> Result<(), IpciError> {
    let imp = dsm_impl(ctx.config);
    for &old in &ctx.report.stale_dsm_controls {
        match pgipc_dsm::dsm_cleanup_using_control_segment(&imp, old) {
            Ok(r) if r.control_removed => tracing::info!(
                "removed {} dynamic shared memory segment(s) left by a dead server (control segment {old})",
                r.destroyed.len()
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    }
    let handle = pgipc_dsm::dsm_postmaster_startup(&imp, ctx.config.max_backends()?)
        .map_err(|e| IpciError::subsystem(DSM_NAME, e))?;
    ctx.shmem.set_dsm_control(handle);
    if let Some(i) = ctx.interlock {
        i.set_dsm_control(handle);
    }
    Ok(())
}

/// Destroys every segment still listed and the control segment (`dsm_postmaster_shutdown`).
fn dsm_shutdown(shmem: &pgipc_shmem::Shmem, config: &IpcConfig) {
    let handle = shmem.dsm_control();
    if handle == pgipc_dsm::DSM_HANDLE_INVALID {
        return;
    }
    match pgipc_dsm::dsm_postmaster_shutdown(&dsm_impl(config), handle) {
        Ok(_) => shmem.set_dsm_control(pgipc_dsm::DSM_HANDLE_INVALID),
        Err(e) => tracing::warn!("{e}"),
    }
}

/// Every subsystem of the workspace, in init order.
pub static SUBSYSTEMS: &[Subsystem] = &[
    // dsm_shmem_init ("Preallocated DSM" when min_dynamic_shared_memory > 0; the start-up step
    // creates the DSM control segment)
    Subsystem {
        name: DSM_NAME,
        size: |c| Ok(pgipc_dsm::dsm_estimate_size(c.min_dynamic_shared_memory)),
        init: |s, c| {
            pgipc_dsm::dsm_shmem_init(s, c.min_dynamic_shared_memory)
                .map_err(|e| IpciError::subsystem(pgipc_dsm::PREALLOCATED_DSM_NAME, e))
        },
        startup: Some(dsm_startup),
        shutdown: Some(dsm_shutdown),
    },
    // DSMRegistryShmemInit (PostgreSQL 17+): right after the DSM pool, so with no
    // preallocated DSM "DSM Registry Data" is the first row of the Shmem Index.
    Subsystem {
        name: pgipc_dsm_registry::DSM_REGISTRY_NAME,
        size: |_| Ok(pgipc_dsm_registry::shmem_size()),
        init: |s, _| {
            pgipc_dsm_registry::shmem_init(s)
                .map(drop)
                .map_err(|e| IpciError::subsystem(pgipc_dsm_registry::DSM_REGISTRY_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
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
    // BackendStatusShmemInit (the status array and its three text buffers; no SSL/GSS ones)
    Subsystem {
        name: pgipc_backend_status::BACKEND_STATUS_ARRAY_NAME,
        size: |c| {
            pgipc_backend_status::shmem_size(
                c.num_backend_stat_slots()? as usize,
                c.track_activity_query_size,
            )
            .map_err(|e| IpciError::subsystem(pgipc_backend_status::BACKEND_STATUS_ARRAY_NAME, e))
        },
        init: |s, c| {
            pgipc_backend_status::shmem_init(
                s,
                c.num_backend_stat_slots()? as usize,
                c.track_activity_query_size,
            )
            .map(drop)
            .map_err(|e| IpciError::subsystem(pgipc_backend_status::BACKEND_STATUS_ARRAY_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
    // BackgroundWorkerShmemInit
    Subsystem {
        name: pgipc_bgworker::BGWORKER_DATA_NAME,
        size: |c| pgipc_bgworker::shmem_size(c.max_worker_processes).map_err(IpciError::from),
        init: |s, c| {
            pgipc_bgworker::shmem_init(s, c.max_worker_processes)
                .map(drop)
                .map_err(|e| IpciError::subsystem(pgipc_bgworker::BGWORKER_DATA_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
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
    // StatsShmemInit (only the fixed-numbered bgwriter/checkpointer statistics and pgipc's
    // auxiliary round counters; see the pgstat crate)
    Subsystem {
        name: pgipc_pgstat::STATS_SHMEM_NAME,
        size: |_| Ok(pgipc_pgstat::shmem_size()),
        init: |s, _| {
            pgipc_pgstat::shmem_init(s)
                .map(drop)
                .map_err(|e| IpciError::subsystem(pgipc_pgstat::STATS_SHMEM_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
    // pgipc's IPC statistics: one block of counters per proc number (no PostgreSQL
    // counterpart; beside the other statistics)
    Subsystem {
        name: pgipc_ipc_stats::IPC_STATS_NAME,
        size: |c| {
            let len = ipc_stats_len(c)?;
            pgipc_shmem::mul_size(len, std::mem::size_of::<std::sync::atomic::AtomicU64>())
                .map_err(IpciError::from)
        },
        init: |s, c| {
            s.init_slice::<std::sync::atomic::AtomicU64>(
                pgipc_ipc_stats::IPC_STATS_NAME,
                ipc_stats_len(c)?,
            )
            .map(drop)
            .map_err(|e| IpciError::subsystem(pgipc_ipc_stats::IPC_STATS_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
    // InjectionPointShmemInit (the shared table of attached points; with the
    // `injection_points` feature only, so the default layout does not change)
    #[cfg(feature = "injection_points")]
    Subsystem {
        name: pgipc_injection_point::TABLE_NAME,
        size: |_| Ok(pgipc_injection_point::shmem_size()),
        init: |s, _| {
            pgipc_injection_point::shmem_init(s)
                .map_err(|e| IpciError::subsystem(pgipc_injection_point::TABLE_NAME, e))
        },
        startup: None,
        shutdown: None,
    },
];

/// Counters in "IPC Statistics": a block per PGPROC.
fn ipc_stats_len(c: &IpcConfig) -> Result<usize, IpciError> {
    let procs = c
        .proc_config()
        .all_proc_count()
        .map_err(|e| IpciError::subsystem(pgipc_ipc_stats::IPC_STATS_NAME, e))?
        as usize;
    Ok(pgipc_shmem::mul_size(procs, pgipc_ipc_stats::STRIDE)?)
}
