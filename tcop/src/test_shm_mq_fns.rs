//! The session as `pgipc_test_shm_mq`'s leader sees it: the [`LeaderEnv`] that the query-layer
//! functions `test_shm_mq`, `test_shm_mq_pipelined`, `set_val_in_shmem`, `get_val_in_shmem`
//! and the view `pg_dsm_registry_allocations` (registered by `pgipc_test_shm_mq::register` and
//! `register_dsm_registry` in the session's catalog) work through.

use crate::sys::{self, Pending};
use pgipc_dsm::{DsmImpl, DsmImplType};
use pgipc_pmsignal::PMSignal;
use pgipc_proc::MyProc;
use pgipc_shmem::Shmem;
use pgipc_test_shm_mq::{LeaderEnv, TestShmMqError};
use std::path::PathBuf;

/// What a leader needs of its backend, owned so that the catalog's functions can keep it.
#[derive(Debug)]
pub(crate) struct SessionLeader {
    /// The main segment.
    pub(crate) shmem: Shmem,
    /// PMSignal, to tell the postmaster of registrations (`None`: no postmaster).
    pub(crate) pmsignal: Option<PMSignal>,
    /// `max_worker_processes` (fixed at server start).
    pub(crate) max_worker_processes: u32,
    /// `max_parallel_workers` as it was when the session's catalog was built.
    pub(crate) max_parallel_workers: u32,
    /// `dynamic_shared_memory_type`.
    pub(crate) dsm_type: DsmImplType,
    /// The data directory (where `mmap` segments live).
    pub(crate) data_dir: Option<PathBuf>,
    /// The backend's PGPROC.
    pub(crate) me: Option<&'static MyProc>,
}

impl SessionLeader {
    /// The implementation named by a `dynamic_shared_memory_type` value.
    pub(crate) fn dsm_type_of(setting: &str) -> DsmImplType {
        match setting {
            "sysv" => DsmImplType::Sysv,
            "mmap" => DsmImplType::Mmap,
            _ => DsmImplType::Posix,
        }
    }
}

impl LeaderEnv for SessionLeader {
    fn my_proc(&self) -> Option<&'static MyProc> {
        self.me
    }

    fn shmem(&self) -> &Shmem {
        &self.shmem
    }

    fn pmsignal(&self) -> Option<&PMSignal> {
        self.pmsignal.as_ref()
    }

    fn dsm_impl(&self) -> DsmImpl {
        DsmImpl::new(self.dsm_type, self.data_dir.as_deref())
    }

    fn max_worker_processes(&self) -> u32 {
        self.max_worker_processes
    }

    fn max_parallel_workers(&self) -> u32 {
        self.max_parallel_workers
    }

    fn interrupt_pending(&self) -> bool {
        sys::peek(Pending::Cancel) || sys::peek(Pending::Die)
    }

    fn check_for_interrupts(&self) -> Result<(), TestShmMqError> {
        // The registered functions also run the statement's Session::check_for_interrupts,
        // which serves (and reports) what is pending.
        Ok(())
    }
}
