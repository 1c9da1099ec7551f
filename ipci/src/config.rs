//! The settings that size shared memory, and the numbers derived from them.

use crate::IpciError;
use pgipc_shmem::{HugePages, SharedMemoryType};
use std::path::PathBuf;

pub use pgipc_proc::{MAX_BACKENDS, MAX_IO_WORKERS, NUM_AUXILIARY_PROCS, NUM_SPECIAL_WORKER_PROCS};

/// The dynamic shared memory implementation (`dynamic_shared_memory_type`): the `dsm_impl`
/// crate's type, re-exported so that a caller configuring ipci needs no other import.
pub use pgipc_dsm::DsmImplType;

/// Everything that decides the size and layout of shared memory.
#[derive(Debug, Clone)]
pub struct IpcConfig {
    /// `max_connections`.
    pub max_connections: u32,
    /// `autovacuum_worker_slots`.
    pub autovacuum_worker_slots: u32,
    /// `max_worker_processes`.
    pub max_worker_processes: u32,
    /// `max_wal_senders`.
    pub max_wal_senders: u32,
    /// `max_prepared_transactions` (PGPROCs without semaphores).
    pub max_prepared_transactions: u32,
    /// `shared_memory_type`.
    pub shared_memory_type: SharedMemoryType,
    /// `dynamic_shared_memory_type`.
    pub dynamic_shared_memory_type: DsmImplType,
    /// `huge_pages`.
    pub huge_pages: HugePages,
    /// `huge_page_size` in bytes (0 = the system default).
    pub huge_page_size: usize,
    /// `min_dynamic_shared_memory` in bytes.
    pub min_dynamic_shared_memory: usize,
    /// `track_activity_query_size` in bytes (the Backend Activity Buffer holds this much per
    /// backend status slot).
    pub track_activity_query_size: usize,
    /// The data directory (ties the segment and its interlock to it); `None` for tests.
    pub data_dir: Option<PathBuf>,
}

impl Default for IpcConfig {
    /// PostgreSQL 18's defaults.
    fn default() -> Self {
        IpcConfig {
            max_connections: 100,
            autovacuum_worker_slots: 16,
            max_worker_processes: 8,
            max_wal_senders: 10,
            max_prepared_transactions: 0,
            shared_memory_type: SharedMemoryType::Mmap,
            dynamic_shared_memory_type: DsmImplType::Posix,
            huge_pages: HugePages::Try,
            huge_page_size: 0,
            min_dynamic_shared_memory: 0,
            track_activity_query_size: 1024,
            data_dir: None,
        }
    }
}

impl IpcConfig {
    /// The part of the configuration that sizes the PGPROC array (the `proc` crate owns the
    /// formulas, so there is one copy of them).
    pub fn proc_config(&self) -> pgipc_proc::ProcConfig {
        pgipc_proc::ProcConfig {
            max_connections: self.max_connections,
            autovacuum_worker_slots: self.autovacuum_worker_slots,
            max_worker_processes: self.max_worker_processes,
            max_wal_senders: self.max_wal_senders,
            max_prepared_xacts: self.max_prepared_transactions,
        }
    }

    fn too_many(&self) -> IpciError {
        IpciError::TooManyBackends {
            max_connections: self.max_connections,
            autovacuum_worker_slots: self.autovacuum_worker_slots,
            max_worker_processes: self.max_worker_processes,
            max_wal_senders: self.max_wal_senders,
        }
    }

    /// PostgreSQL's `MaxBackends`: regular backends, autovacuum workers, background workers,
    /// WAL senders and the special workers (`InitializeMaxBackends`).
    pub fn max_backends(&self) -> Result<u32, IpciError> {
        self.proc_config()
            .max_backends()
            .map_err(|_| self.too_many())
    }

    /// Semaphores (wait slots) needed: one per PGPROC that can sleep (`ProcGlobalSemas`).
    pub fn num_semaphores(&self) -> Result<u32, IpciError> {
        self.proc_config()
            .all_proc_count()
            .map_err(|_| self.too_many())
    }

    /// Postmaster child slots (PostgreSQL 18's `MaxLivePostmasterChildren`, the pool sizes of
    /// `InitPostmasterChildSlots`): twice `max_connections + max_wal_senders` (clients and
    /// WAL senders still authenticating), autovacuum workers, background workers, IO workers,
    /// and one each for the ten singleton processes. PMSignal has one flag per slot.
    pub fn max_live_postmaster_children(&self) -> Result<u32, IpciError> {
        let backends = self
            .max_connections
            .checked_add(self.max_wal_senders)
            .and_then(|n| n.checked_mul(2));
        backends
            .and_then(|n| n.checked_add(self.autovacuum_worker_slots))
            .and_then(|n| n.checked_add(self.max_worker_processes))
            .and_then(|n| n.checked_add(MAX_IO_WORKERS + 10))
            .ok_or_else(|| self.too_many())
    }

    /// ProcSignal and sinval slots: one per proc number that can take part
    /// (`MaxBackends + NUM_AUXILIARY_PROCS`).
    pub fn num_proc_signal_slots(&self) -> Result<u32, IpciError> {
        Ok(self.max_backends()? + NUM_AUXILIARY_PROCS)
    }

    /// Backend status slots: one per proc number that can run (`NumBackendStatSlots`,
    /// `MaxBackends + NUM_AUXILIARY_PROCS`).
    pub fn num_backend_stat_slots(&self) -> Result<u32, IpciError> {
        Ok(self.max_backends()? + NUM_AUXILIARY_PROCS)
    }

    /// All PGPROCs: backends, auxiliary processes and prepared-transaction dummies
    /// (`TotalProcs` in PostgreSQL's `InitProcGlobal`).
    pub fn total_procs(&self) -> Result<u32, IpciError> {
        self.proc_config()
            .total_procs()
            .map_err(|_| self.too_many())
    }
}
