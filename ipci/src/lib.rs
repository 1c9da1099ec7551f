//! Sizing and initialising all shared memory, in PostgreSQL's order.
//!
//! Mirrors PostgreSQL's `storage/ipc/ipci.c`. This is the one place that knows every subsystem:
//! it adds up their sizes ([`calculate_shmem_size`]), creates the segment and its interlock, lays
//! out the foundation (wait slots, allocator lock, main LWLocks, Shmem Index) and then calls each
//! subsystem's init in PostgreSQL 18's order ([`create_shared_memory_and_semaphores`]). An exec'd
//! child runs the same inits against the inherited segment, where every one of them finds its
//! structure by name ([`attach`]). Code outside the workspace takes part through [`Addin`]:
//! extra space and named LWLock tranches requested up front, and a start-up hook.
//!
//! ```text
//!  IpcConfig ──► calculate_shmem_size: 100000 + wait slots + Shmem Index + LWLocks
//!                                      + Σ subsystem sizes + add-in requests, then +8192 round-up
//!            ──► Interlock::create (SysV, keyed by the data dir)      [postmaster only]
//!            ──► Shmem::create ─► reserve_wait_slots ─► init_allocation ─► create_lwlocks
//!                ─► init_index ─► SUBSYSTEMS[i].init (in order) ─► SUBSYSTEMS[i].startup
//!                ─► Addin::startup hooks
//! ```
//!
//! # Concurrency contract
//! Creation runs in the postmaster before any child exists, so nothing here locks beyond what
//! `shmem` does. [`attach`] runs in a child that already has the segment; every init it calls
//! must only look structures up.
//!
//! # What this crate does not do
//! It owns no shared structure of its own and parses no configuration file: the postmaster turns
//! settings into an [`IpcConfig`]. [`IpcState::bgworkers`] is only a view of the bgworker
//! crate's region, for the postmaster.
//!
//! [`ShmemDescription`] is the resulting layout as data (PostgreSQL's `pg_shmem_allocations`),
//! printed as a table or serialised as JSON by `postmaster --describe-shmem`.
//!
//! Key items: [`IpcConfig`], [`Subsystem`], [`SUBSYSTEMS`], [`Addin`], [`IpcState`],
//! [`ShmemDescription`].

mod config;
mod describe;
mod subsystems;

pub use config::{
    DsmImplType, IpcConfig, MAX_BACKENDS, MAX_IO_WORKERS, NUM_AUXILIARY_PROCS,
    NUM_SPECIAL_WORKER_PROCS,
};
pub use describe::{ShmemAllocation, ShmemDescription};
pub use subsystems::SUBSYSTEMS;

use pgipc_lwlock::{
    register_tranche, tranche::builtin, LWLockPadded, TrancheId, NUM_INDIVIDUAL_LWLOCKS,
};
use pgipc_shmem::{
    add_size, mul_size, Interlock, InterlockReport, SegmentOptions, Shmem, ShmemError, SizeError,
};
use std::fmt;
use std::os::fd::OwnedFd;

/// A boxed error from a subsystem's own error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of shared-memory set-up.
#[derive(Debug, thiserror::Error)]
pub enum IpciError {
    /// `MaxBackends` would exceed PostgreSQL's limit.
    #[error(
        "too many server processes configured: \"max_connections\" ({max_connections}) plus \
         \"autovacuum_worker_slots\" ({autovacuum_worker_slots}) plus \"max_worker_processes\" \
         ({max_worker_processes}) plus \"max_wal_senders\" ({max_wal_senders}) must be less than {limit}",
        limit = MAX_BACKENDS - NUM_SPECIAL_WORKER_PROCS + 1
    )]
    TooManyBackends {
        /// `max_connections`.
        max_connections: u32,
        /// `autovacuum_worker_slots`.
        autovacuum_worker_slots: u32,
        /// `max_worker_processes`.
        max_worker_processes: u32,
        /// `max_wal_senders`.
        max_wal_senders: u32,
    },
    /// A size overflowed.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// The shmem layer failed.
    #[error(transparent)]
    Shmem(#[from] ShmemError),
    /// A subsystem's size or init failed.
    #[error("{subsystem}: {source}")]
    Subsystem {
        /// The subsystem's name.
        subsystem: &'static str,
        /// Its error.
        source: BoxError,
    },
    /// An add-in's start-up hook failed.
    #[error("shmem startup hook of \"{addin}\" failed: {source}")]
    Addin {
        /// The add-in's name.
        addin: String,
        /// Its error.
        source: BoxError,
    },
}

impl IpciError {
    /// Wraps a subsystem's error.
    pub fn subsystem(subsystem: &'static str, source: impl Into<BoxError>) -> Self {
        IpciError::Subsystem {
            subsystem,
            source: source.into(),
        }
    }
}

/// A subsystem's postmaster-only start-up step.
pub type StartupFn = fn(&mut StartupContext<'_>) -> Result<(), IpciError>;

/// One subsystem's part in shared memory (PostgreSQL's `XxxShmemSize` / `XxxShmemInit` pair).
#[derive(Debug)]
pub struct Subsystem {
    /// Name for diagnostics (its main allocation's name where it has one).
    pub name: &'static str,
    /// Bytes it needs for this configuration.
    pub size: fn(&IpcConfig) -> Result<usize, IpciError>,
    /// Creates its structures (postmaster) or finds them (exec'd child).
    pub init: fn(&Shmem, &IpcConfig) -> Result<(), IpciError>,
    /// Postmaster-only work after every init ran (e.g. the DSM control segment).
    pub startup: Option<StartupFn>,
    /// Postmaster-only clean-up when shared memory is discarded (shutdown or crash restart).
    pub shutdown: Option<fn(&Shmem, &IpcConfig)>,
}

/// What a subsystem's postmaster start-up step may use.
#[derive(Debug)]
pub struct StartupContext<'a> {
    /// The new segment.
    pub shmem: &'a Shmem,
    /// The configuration.
    pub config: &'a IpcConfig,
    /// The interlock, when tied to a data directory (to record the DSM control handle).
    pub interlock: Option<&'a Interlock>,
    /// What the interlock found of dead predecessors (stale DSM control handles).
    pub report: &'a InterlockReport,
}

/// Requests an add-in makes before shared memory is sized (PostgreSQL's `shmem_request_hook`).
/// It exists only while [`Addin::request_shmem`] runs, so a request outside the hook cannot be
/// written.
#[derive(Debug, Default)]
pub struct ShmemRequests {
    space: usize,
    tranches: Vec<(String, usize)>,
    error: Option<SizeError>,
}

impl ShmemRequests {
    /// Asks for `size` more bytes (PostgreSQL's `RequestAddinShmemSpace`).
    pub fn request_addin_shmem_space(&mut self, size: usize) {
        match add_size(self.space, size) {
            Ok(s) => self.space = s,
            Err(e) => self.error = Some(e),
        }
    }

    /// Asks for `num_lwlocks` LWLocks in a tranche named `name` (PostgreSQL's
    /// `RequestNamedLWLockTranche`).
    pub fn request_named_lwlock_tranche(&mut self, name: &str, num_lwlocks: usize) {
        self.tranches.push((name.to_owned(), num_lwlocks));
    }
}

/// Code outside the workspace that keeps state in the main segment.
pub trait Addin: fmt::Debug + Send + Sync {
    /// Its name, for errors.
    fn name(&self) -> &str;
    /// Says how much space and which LWLock tranches it needs.
    fn request_shmem(&self, requests: &mut ShmemRequests);
    /// Creates or attaches its structures (PostgreSQL's `shmem_startup_hook`); runs after every
    /// subsystem's init, in the postmaster and in every exec'd child.
    fn startup(&self, shmem: &Shmem, tranches: &NamedTranches) -> Result<(), BoxError>;
}

/// The add-ins' LWLock tranches, as laid out after the individual locks.
#[derive(Debug, Clone, Default)]
pub struct NamedTranches {
    entries: Vec<(String, TrancheId, usize, usize)>, // name, id, first index, count
}

impl NamedTranches {
    fn layout(requests: &[(String, usize)]) -> Result<Self, IpciError> {
        let mut entries = Vec::new();
        let mut next = NUM_INDIVIDUAL_LWLOCKS;
        for (i, (name, n)) in requests.iter().enumerate() {
            let id = TrancheId(builtin::FIRST_USER_DEFINED.0 + i as u16);
            entries.push((name.clone(), id, next, *n));
            next = add_size(next, *n)?;
        }
        Ok(NamedTranches { entries })
    }

    fn extra_locks(&self) -> Vec<(TrancheId, usize)> {
        self.entries.iter().map(|(_, id, _, n)| (*id, *n)).collect()
    }

    fn register_names(&self) {
        for (name, id, _, _) in &self.entries {
            register_tranche(*id, name);
        }
    }

    /// The locks of the tranche `name` (PostgreSQL's `GetNamedLWLockTranche`).
    pub fn get<'a>(&self, shmem: &'a Shmem, name: &str) -> Option<&'a [LWLockPadded]> {
        let (_, _, first, n) = self.entries.iter().find(|e| e.0 == name)?;
        shmem.lwlocks().get(*first..*first + *n)
    }
}

/// The registered add-ins with their collected requests.
#[derive(Debug, Default)]
pub struct Addins {
    addins: Vec<Box<dyn Addin>>,
}

struct Collected {
    space: usize,
    tranches: NamedTranches,
}

impl Addins {
    /// No add-ins.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an add-in (PostgreSQL: a library in `shared_preload_libraries`).
    pub fn register(&mut self, addin: Box<dyn Addin>) {
        self.addins.push(addin);
    }

    fn collect(&self) -> Result<Collected, IpciError> {
        let mut r = ShmemRequests::default();
        for a in &self.addins {
            a.request_shmem(&mut r);
        }
        if let Some(e) = r.error {
            return Err(e.into());
        }
        Ok(Collected {
            space: r.space,
            tranches: NamedTranches::layout(&r.tranches)?,
        })
    }

    fn run_startup(&self, shmem: &Shmem, tranches: &NamedTranches) -> Result<(), IpciError> {
        for a in &self.addins {
            a.startup(shmem, tranches)
                .map_err(|source| IpciError::Addin {
                    addin: a.name().to_owned(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// Fixed slack PostgreSQL adds for small allocations nobody sized.
const SLACK: usize = 100_000;

/// The main segment's size for `config` and `addins` (PostgreSQL's `CalculateShmemSize`):
/// always a multiple of 8192, and a full 8192 more when the sum already was one.
pub fn calculate_shmem_size(config: &IpcConfig, addins: &Addins) -> Result<usize, IpciError> {
    let collected = addins.collect()?;
    size_with(config, &collected)
}

fn size_with(config: &IpcConfig, collected: &Collected) -> Result<usize, IpciError> {
    let nsemas = config.num_semaphores()? as usize;
    let mut size = SLACK;
    size = add_size(
        size,
        mul_size(nsemas, std::mem::size_of::<pgipc_lwlock::WaitSlot>())?,
    )?;
    // The wait-slot array is aligned to a cache line: room for that padding.
    size = add_size(size, pgipc_shmem::CACHE_LINE_SIZE)?;
    size = add_size(size, Shmem::index_size()?)?;
    let extra_locks: usize = collected
        .tranches
        .extra_locks()
        .iter()
        .map(|(_, n)| *n)
        .sum();
    size = add_size(size, Shmem::lwlocks_size(extra_locks)?)?;
    for s in SUBSYSTEMS {
        size = add_size(size, (s.size)(config)?)?;
    }
    size = add_size(size, collected.space)?;
    Ok(round_up_8192(size)?)
}

/// PostgreSQL's final rounding: up to the next multiple of 8192, a whole 8192 more when `size`
/// already is one.
fn round_up_8192(size: usize) -> Result<usize, SizeError> {
    add_size(size, 8192 - (size % 8192))
}

/// Values PostgreSQL computes at start-up and shows as read-only settings
/// (`InitializeShmemGUCs`), available before the server starts (`postmaster -C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShmemGucs {
    /// `shared_memory_size`, in MB, rounded up.
    pub shared_memory_size_mb: usize,
    /// `shared_memory_size_in_huge_pages` (-1 when the system has no huge pages).
    pub shared_memory_size_in_huge_pages: i64,
    /// `num_os_semaphores`.
    pub num_os_semaphores: u32,
}

/// Computes the runtime settings for `config` without creating anything.
pub fn shmem_gucs(config: &IpcConfig, addins: &Addins) -> Result<ShmemGucs, IpciError> {
    let size = calculate_shmem_size(config, addins)?;
    let mb = add_size(size, (1 << 20) - 1)? / (1 << 20);
    let hp = if config.huge_page_size != 0 {
        Some(config.huge_page_size)
    } else {
        pgipc_shmem::default_huge_page_size()
    };
    let pages = match hp {
        Some(hp) if hp > 0 => add_size(size / hp, 1)? as i64,
        _ => -1,
    };
    Ok(ShmemGucs {
        shared_memory_size_mb: mb,
        shared_memory_size_in_huge_pages: pages,
        num_os_semaphores: config.num_semaphores()?,
    })
}

/// Everything a process holds of shared memory after set-up.
#[derive(Debug)]
pub struct IpcState {
    /// The main segment.
    pub shmem: Shmem,
    /// The interlock (postmaster: created; exec'd child: attached), if tied to a data directory.
    pub interlock: Option<Interlock>,
    /// What the interlock found (postmaster only).
    pub report: InterlockReport,
    /// The size that was computed.
    pub size: usize,
    /// The add-ins' LWLock tranches.
    pub tranches: NamedTranches,
    config: IpcConfig,
}

impl IpcState {
    /// The configuration shared memory was made for.
    pub fn config(&self) -> &IpcConfig {
        &self.config
    }

    /// This process's view of "Background Worker Data", the region the bgworker init created
    /// (or found) in this segment.
    pub fn bgworkers(&self) -> Result<pgipc_bgworker::BgWorkerShared, IpciError> {
        pgipc_bgworker::shmem_init(&self.shmem, self.config.max_worker_processes)
            .map_err(|e| IpciError::subsystem(pgipc_bgworker::BGWORKER_DATA_NAME, e))
    }

    /// The segment's layout (`pg_shmem_allocations`).
    pub fn describe(&self) -> Result<ShmemDescription, IpciError> {
        Ok(ShmemDescription::of(&self.shmem)?)
    }

    /// Discards shared memory (postmaster only: shutdown or crash restart): runs the subsystems'
    /// clean-up steps, removes the interlock, and unmaps the segment once the last view is gone.
    /// A child simply exits (or drops its state), which detaches without removing anything.
    pub fn shutdown(self) -> Result<(), IpciError> {
        for s in SUBSYSTEMS.iter().rev() {
            if let Some(f) = s.shutdown {
                f(&self.shmem, &self.config);
            }
        }
        if let Some(i) = self.interlock {
            i.remove()?;
        }
        Ok(())
    }
}

/// Creates and initialises all shared memory (PostgreSQL's `CreateSharedMemoryAndSemaphores`);
/// postmaster (or a standalone process) only.
pub fn create_shared_memory_and_semaphores(
    config: &IpcConfig,
    addins: &Addins,
) -> Result<IpcState, IpciError> {
    let collected = addins.collect()?;
    let size = size_with(config, &collected)?;
    let nsemas = config.num_semaphores()? as usize;

    let (interlock, report, dir_id) = match &config.data_dir {
        Some(dir) => {
            let id = Interlock::data_dir_id(dir)?;
            let (i, r) = Interlock::create(dir, size as u64)?;
            (Some(i), r, Some(id))
        }
        None => (None, InterlockReport::default(), None),
    };
    let opts = SegmentOptions {
        size,
        kind: config.shared_memory_type,
        huge_pages: config.huge_pages,
        huge_page_size: (config.huge_page_size != 0).then_some(config.huge_page_size),
        data_dir_id: dir_id,
    };
    let built = (|| {
        let shmem = Shmem::create(&opts)?;
        shmem.reserve_wait_slots(nsemas)?;
        shmem.init_allocation()?;
        shmem.create_lwlocks(&collected.tranches.extra_locks())?;
        shmem.init_index()?;
        Ok::<_, IpciError>(shmem)
    })();
    let shmem = match built {
        Ok(s) => s,
        Err(e) => {
            if let Some(i) = interlock {
                let _ = i.remove();
            }
            return Err(e);
        }
    };
    let state = IpcState {
        shmem,
        interlock,
        report,
        size,
        tranches: collected.tranches,
        config: config.clone(),
    };
    if let Err(e) = init_all(&state, addins, true) {
        let _ = state.shutdown();
        return Err(e);
    }
    Ok(state)
}

fn init_all(state: &IpcState, addins: &Addins, postmaster: bool) -> Result<(), IpciError> {
    state.tranches.register_names();
    for s in SUBSYSTEMS {
        (s.init)(&state.shmem, &state.config)?;
    }
    if postmaster {
        let mut ctx = StartupContext {
            shmem: &state.shmem,
            config: &state.config,
            interlock: state.interlock.as_ref(),
            report: &state.report,
        };
        for s in SUBSYSTEMS {
            if let Some(f) = s.startup {
                f(&mut ctx)?;
            }
        }
    }
    addins.run_startup(&state.shmem, &state.tranches)
}

/// Attaches an exec'd child to the postmaster's shared memory (PostgreSQL's
/// `PGSharedMemoryReAttach` + `AttachSharedMemoryStructs`): maps the inherited memfd, re-attaches
/// the interlock by id so the kernel counts this process, and runs every init, each of which
/// finds its structures by name.
pub fn attach(
    config: &IpcConfig,
    addins: &Addins,
    memfd: OwnedFd,
    interlock_shmid: Option<i32>,
) -> Result<IpcState, IpciError> {
    let collected = addins.collect()?;
    let shmem = Shmem::attach_fd(memfd)?;
    let interlock = interlock_shmid
        .map(Interlock::attach_existing)
        .transpose()?;
    let state = IpcState {
        size: shmem.total_size(),
        shmem,
        interlock,
        report: InterlockReport::default(),
        tranches: collected.tranches,
        config: config.clone(),
    };
    init_all(&state, addins, false)?;
    Ok(state)
}

#[cfg(test)]
mod tests;
