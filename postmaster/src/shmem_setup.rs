//! The postmaster's shared-memory set-up (PostgreSQL's ipci.c as PostmasterMain and the crash
//! reset call it, and `InitializeShmemGUCs`): the sizing numbers from the settings
//! ([`ipc_config`]), the runtime settings computed from them, `--describe-shmem`, the
//! add-ins, and one generation of shared memory as the postmaster holds it ([`PmShmem`]).

use crate::child_env::max_live_children;
use crate::elog::{elog, Severity};
use pgipc_bgworker::BgWorkerShared;
use pgipc_guc::{GucError, Settings};
use pgipc_ipci::{DsmImplType, IpcConfig, IpciError};
use pgipc_pmsignal::PmSignalError;
use pgipc_shmem::{HugePages, SharedMemoryType, ShmemError};
use std::path::Path;

/// Why shared memory could not be set up or sized.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShmemSetupError {
    /// A computed setting was refused.
    #[error(transparent)]
    Guc(#[from] GucError),
    /// Creating, sizing or describing the segment failed.
    #[error(transparent)]
    Ipci(#[from] IpciError),
    /// PMSignal could not be found in the new segment.
    #[error(transparent)]
    PmSignal(#[from] PmSignalError),
    /// An allocation of the postmaster's own could not be made.
    #[error(transparent)]
    Shmem(#[from] ShmemError),
}

impl ShmemSetupError {
    /// The HINT line, if PostgreSQL has one for this error.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            ShmemSetupError::Guc(e) => e.hint().map(str::to_owned),
            ShmemSetupError::Ipci(IpciError::Shmem(e)) | ShmemSetupError::Shmem(e) => e.hint(),
            _ => None,
        }
    }
}

/// Turns settings into the numbers that size shared memory.
pub(crate) fn ipc_config(s: &Settings, data_dir: Option<&Path>) -> IpcConfig {
    let u32_of = |n: &str| u32::try_from(s.int(n)).unwrap_or(u32::MAX);
    IpcConfig {
        max_connections: u32_of("max_connections"),
        autovacuum_worker_slots: u32_of("autovacuum_worker_slots"),
        max_worker_processes: u32_of("max_worker_processes"),
        max_wal_senders: u32_of("max_wal_senders"),
        max_prepared_transactions: u32_of("max_prepared_transactions"),
        shared_memory_type: match s.text("shared_memory_type") {
            "memfd" => SharedMemoryType::Memfd,
            _ => SharedMemoryType::Mmap,
        },
        dynamic_shared_memory_type: match s.text("dynamic_shared_memory_type") {
            "sysv" => DsmImplType::Sysv,
            "mmap" => DsmImplType::Mmap,
            _ => DsmImplType::Posix,
        },
        huge_pages: match s.text("huge_pages") {
            "on" => HugePages::On,
            "off" => HugePages::Off,
            _ => HugePages::Try,
        },
        huge_page_size: (s.int("huge_page_size") as usize).saturating_mul(1024),
        min_dynamic_shared_memory: (s.int("min_dynamic_shared_memory") as usize)
            .saturating_mul(1024 * 1024),
        track_activity_query_size: usize::try_from(s.int("track_activity_query_size"))
            .unwrap_or(1024),
        data_dir: data_dir.map(Path::to_path_buf),
    }
}

/// Computes the runtime settings (`shared_memory_size`, ...), PostgreSQL's
/// `InitializeShmemGUCs`.
pub(crate) fn compute_runtime_settings(
    s: &mut Settings,
    cfg: &IpcConfig,
) -> Result<(), ShmemSetupError> {
    let g = pgipc_ipci::shmem_gucs(cfg, &addins_for(cfg))?;
    s.set_computed("shared_memory_size", &g.shared_memory_size_mb.to_string())?;
    s.set_computed(
        "shared_memory_size_in_huge_pages",
        &g.shared_memory_size_in_huge_pages.to_string(),
    )?;
    s.set_computed("num_os_semaphores", &g.num_os_semaphores.to_string())?;
    Ok(())
}

/// What `--describe-shmem` prints: the layout of a segment made for `cfg`, one row per
/// `pg_shmem_allocations` row (print it with `to_table` or `to_json`).
pub(crate) fn describe_shmem(
    cfg: &IpcConfig,
) -> Result<pgipc_ipci::ShmemDescription, ShmemSetupError> {
    let cfg = IpcConfig {
        data_dir: None,
        ..cfg.clone()
    };
    let state = pgipc_ipci::create_shared_memory_and_semaphores(&cfg, &addins_for(&cfg))?;
    let d = state.describe()?;
    state.shutdown()?;
    Ok(d)
}

/// The add-ins of this server: none today (the auxiliary processes' counters, once an
/// add-in of the postmaster's, are in the pgstat crate's "Shared Memory Stats", a core
/// region); the place where compiled-in add-ins would be registered.
pub(crate) fn addins_for(_cfg: &IpcConfig) -> pgipc_ipci::Addins {
    pgipc_ipci::Addins::new()
}

/// One generation of shared memory as the postmaster holds it: the segment (with its
/// interlock and DSM control segment) and every view the postmaster keeps into it.
///
/// The postmaster's other state is process-local (its latch, child list, slot pools, the
/// background-worker list) or lives only in the children (ProcSignal, PGPROC, statistics
/// counters, DSM mappings: each child attaches its own). So this struct is the only place
/// that refers to a segment: it is made as a whole by [`create_shared_state`] and discarded
/// as a whole by [`PmShmem::shutdown`], and the crash reset swaps one generation for the
/// next. The fields are private so no view can be copied out and outlive its generation.
#[derive(Debug)]
pub(crate) struct PmShmem {
    ipc: pgipc_ipci::IpcState,
    pmsignal: pgipc_pmsignal::PMSignal,
    bgworkers: BgWorkerShared,
}

impl PmShmem {
    /// The segment, its interlock and what creating it found.
    pub(crate) fn ipc(&self) -> &pgipc_ipci::IpcState {
        &self.ipc
    }

    /// "PMSignalState" in this generation.
    pub(crate) fn pmsignal(&self) -> &pgipc_pmsignal::PMSignal {
        &self.pmsignal
    }

    /// "Background Worker Data" in this generation (ipci's view).
    pub(crate) fn bgworkers(&self) -> &BgWorkerShared {
        &self.bgworkers
    }

    /// Discards this generation: the views first, then the segment and its DSM segments
    /// (unmapped once the last view is gone).
    pub(crate) fn shutdown(self) -> Result<(), IpciError> {
        let PmShmem {
            ipc,
            pmsignal,
            bgworkers,
        } = self;
        drop(pmsignal);
        drop(bgworkers);
        ipc.shutdown()
    }
}

/// Creates shared memory, finds the postmaster's views in it, records the postmaster's pid
/// in PMSignal and hands the new "Background Worker Data" to `publish` (the postmaster
/// publishes every registered background worker into it) (start-up and every crash restart).
pub(crate) fn create_shared_state(
    cfg: &IpcConfig,
    publish: impl FnOnce(&BgWorkerShared),
) -> Result<PmShmem, ShmemSetupError> {
    let state = pgipc_ipci::create_shared_memory_and_semaphores(cfg, &addins_for(cfg))?;
    for note in &state.report.notes {
        elog(Severity::Log, note);
    }
    let views = pgipc_pmsignal::shmem_init(&state.shmem, max_live_children(cfg))
        .map_err(ShmemSetupError::from)
        .and_then(|p| {
            state
                .bgworkers()
                .map(|b| (p, b))
                .map_err(ShmemSetupError::from)
        });
    let (pmsignal, bgworkers) = match views {
        Ok(v) => v,
        Err(e) => {
            let _ = state.shutdown();
            return Err(e);
        }
    };
    pmsignal.set_postmaster_pid(std::process::id() as i32);
    publish(&bgworkers);
    Ok(PmShmem {
        ipc: state,
        pmsignal,
        bgworkers,
    })
}
