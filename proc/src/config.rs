//! The numbers that size the PGPROC array, the `MaxBackends` formula and the process kinds.

use crate::shared::FreeList;
use crate::ProcError;

/// PostgreSQL's `MAX_BACKENDS`: proc numbers fit in 18 bits.
pub const MAX_BACKENDS: u32 = (1 << 18) - 1;
/// The autovacuum launcher and the slot-sync worker (`NUM_SPECIAL_WORKER_PROCS`).
pub const NUM_SPECIAL_WORKER_PROCS: u32 = 2;
/// Most I/O workers (`MAX_IO_WORKERS`).
pub const MAX_IO_WORKERS: u32 = 32;
/// Auxiliary processes with a PGPROC (`NUM_AUXILIARY_PROCS = 6 + MAX_IO_WORKERS`).
pub const NUM_AUXILIARY_PROCS: u32 = 6 + MAX_IO_WORKERS;

/// The settings that size the PGPROC array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcConfig {
    /// `max_connections`.
    pub max_connections: u32,
    /// `autovacuum_worker_slots`.
    pub autovacuum_worker_slots: u32,
    /// `max_worker_processes`.
    pub max_worker_processes: u32,
    /// `max_wal_senders`.
    pub max_wal_senders: u32,
    /// `max_prepared_transactions` (dummy PGPROCs with neither semaphore nor latch).
    pub max_prepared_xacts: u32,
}

impl Default for ProcConfig {
    /// PostgreSQL 18's defaults.
    fn default() -> Self {
        ProcConfig {
            max_connections: 100,
            autovacuum_worker_slots: 16,
            max_worker_processes: 8,
            max_wal_senders: 10,
            max_prepared_xacts: 0,
        }
    }
}

impl ProcConfig {
    /// `MaxBackends` (PostgreSQL's `InitializeMaxBackends`), or the error PostgreSQL gives when
    /// the sum exceeds [`MAX_BACKENDS`].
    pub fn max_backends(&self) -> Result<u32, ProcError> {
        let total = u64::from(self.max_connections)
            + u64::from(self.autovacuum_worker_slots)
            + u64::from(self.max_worker_processes)
            + u64::from(self.max_wal_senders)
            + u64::from(NUM_SPECIAL_WORKER_PROCS);
        if total > u64::from(MAX_BACKENDS) {
            return Err(ProcError::TooManyBackends { config: *self });
        }
        Ok(total as u32)
    }

    /// PGPROCs with a semaphore and a latch: `MaxBackends + NUM_AUXILIARY_PROCS`
    /// (`ProcGlobalSemas`, PostgreSQL's `allProcCount`); ipci reserves this many wait slots.
    pub fn all_proc_count(&self) -> Result<u32, ProcError> {
        Ok(self.max_backends()? + NUM_AUXILIARY_PROCS)
    }

    /// Every PGPROC, prepared-transaction dummies included (`TotalProcs`).
    pub fn total_procs(&self) -> Result<u32, ProcError> {
        self.all_proc_count()?
            .checked_add(self.max_prepared_xacts)
            .ok_or(ProcError::TooManyBackends { config: *self })
    }

    /// End (exclusive) of each free list's partition of the array, in [`FreeList::ALL`] order:
    /// regular backends, then autovacuum workers + special workers, then background workers,
    /// then WAL senders up to `MaxBackends`.
    pub fn partition_ends(&self) -> Result<[u32; 4], ProcError> {
        let mb = self.max_backends()?;
        let a = self.max_connections;
        let b = a + self.autovacuum_worker_slots + NUM_SPECIAL_WORKER_PROCS;
        let c = b + self.max_worker_processes;
        Ok([a, b, c, mb])
    }
}

/// What kind of process a PGPROC serves (PostgreSQL 18's `BackendType`, same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum BackendType {
    Invalid = 0,
    /// A client backend.
    Backend,
    DeadEndBackend,
    AutovacLauncher,
    AutovacWorker,
    BgWorker,
    WalSender,
    SlotsyncWorker,
    StandaloneBackend,
    Archiver,
    BgWriter,
    Checkpointer,
    IoWorker,
    Startup,
    WalReceiver,
    WalSummarizer,
    WalWriter,
    Logger,
}

impl BackendType {
    /// Every type, in numeric order.
    pub const ALL: [BackendType; 18] = [
        BackendType::Invalid,
        BackendType::Backend,
        BackendType::DeadEndBackend,
        BackendType::AutovacLauncher,
        BackendType::AutovacWorker,
        BackendType::BgWorker,
        BackendType::WalSender,
        BackendType::SlotsyncWorker,
        BackendType::StandaloneBackend,
        BackendType::Archiver,
        BackendType::BgWriter,
        BackendType::Checkpointer,
        BackendType::IoWorker,
        BackendType::Startup,
        BackendType::WalReceiver,
        BackendType::WalSummarizer,
        BackendType::WalWriter,
        BackendType::Logger,
    ];

    /// The type stored as `v`, if any.
    pub fn from_u8(v: u8) -> Option<BackendType> {
        BackendType::ALL.get(usize::from(v)).copied()
    }

    /// The free list `InitProcess` takes a slot of this kind from, or `None` for kinds that
    /// use an auxiliary slot or none at all.
    pub fn free_list(self) -> Option<FreeList> {
        use BackendType::*;
        match self {
            AutovacWorker | AutovacLauncher | SlotsyncWorker => Some(FreeList::Autovac),
            BgWorker => Some(FreeList::BgWorkers),
            WalSender => Some(FreeList::WalSenders),
            Backend | StandaloneBackend => Some(FreeList::Backends),
            _ => None,
        }
    }

    /// Whether this kind takes an auxiliary slot (`InitAuxiliaryProcess`).
    pub fn is_auxiliary(self) -> bool {
        use BackendType::*;
        matches!(
            self,
            Archiver
                | BgWriter
                | Checkpointer
                | IoWorker
                | Startup
                | WalReceiver
                | WalSummarizer
                | WalWriter
        )
    }

    /// A client backend (`AmRegularBackendProcess`).
    pub fn is_regular_backend(self) -> bool {
        self == BackendType::Backend
    }
}
