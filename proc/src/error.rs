//! The crate's error type.

use crate::config::{ProcConfig, MAX_BACKENDS, NUM_SPECIAL_WORKER_PROCS};
use crate::shared::ProcNumber;
use crate::BackendType;

/// Failures of the PGPROC table.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// No free slot of the regular kinds (SQLSTATE 53300).
    #[error("sorry, too many clients already")]
    TooManyClients,
    /// No free WAL sender slot (SQLSTATE 53300).
    #[error("number of requested standby connections exceeds \"max_wal_senders\" (currently {max_wal_senders})")]
    TooManyWalSenders {
        /// The configured `max_wal_senders`.
        max_wal_senders: u32,
    },
    /// No free auxiliary slot.
    #[error("all AuxiliaryProcs are in use")]
    AllAuxiliaryProcsInUse,
    /// This process already has a PGPROC.
    #[error("you already exist")]
    AlreadyExists,
    /// `init_process` for a kind that takes an auxiliary slot, or the reverse.
    #[error("backend type {0:?} cannot take this kind of PGPROC")]
    WrongKind(BackendType),
    /// A proc number outside the array.
    #[error("procNumber out of range")]
    ProcNumberOutOfRange {
        /// The rejected number.
        procno: ProcNumber,
    },
    /// `MaxBackends` would exceed PostgreSQL's limit (SQLSTATE 22023).
    #[error(
        "too many server processes configured: \"max_connections\" ({}) plus \
         \"autovacuum_worker_slots\" ({}) plus \"max_worker_processes\" ({}) plus \
         \"max_wal_senders\" ({}) must be less than {}",
        config.max_connections, config.autovacuum_worker_slots, config.max_worker_processes,
        config.max_wal_senders, MAX_BACKENDS - NUM_SPECIAL_WORKER_PROCS + 1
    )]
    TooManyBackends {
        /// The offending settings.
        config: ProcConfig,
    },
    /// The segment has fewer wait slots (semaphores) than PGPROCs that can sleep.
    #[error("the segment has {have} wait slots, the PGPROC array needs {need}")]
    NotEnoughWaitSlots {
        /// Slots in the segment.
        have: usize,
        /// `all_proc_count`.
        need: usize,
    },
    /// The structure found by name was made for other settings.
    #[error("\"Proc Header\" was created for {found} PGPROCs, this process expects {expected}")]
    ConfigMismatch {
        /// What the shared header says.
        found: u32,
        /// What this process computed.
        expected: u32,
    },
    /// A dead process's PGPROC cannot be reclaimed yet because it is still in the ProcArray.
    #[error("PGPROC {procno} of dead process {pid} is still in the ProcArray; remove it first")]
    StillInProcArray {
        /// The slot.
        procno: ProcNumber,
        /// The dead process.
        pid: i32,
    },
    /// An index read from shared memory is out of range (memory a crashed process may have
    /// scribbled on); the answer is a crash restart.
    #[error("shared memory is corrupted: {what} out of range")]
    Corrupted {
        /// Which value.
        what: &'static str,
    },
    /// The ProcStructLock stayed held (its holder probably died inside it).
    #[error(transparent)]
    Stuck(#[from] pgipc_lwlock::StuckSpinlock),
    /// The slot's latch could not be owned or waited on.
    #[error(transparent)]
    Latch(#[from] pgipc_latch::LatchError),
    /// Registering the exit callback failed.
    #[error(transparent)]
    Ipc(#[from] pgipc_ipc::IpcError),
    /// Allocation or lookup in the segment failed.
    #[error(transparent)]
    Shmem(#[from] pgipc_shmem::ShmemError),
    /// A size overflowed.
    #[error(transparent)]
    Size(#[from] pgipc_shmem::SizeError),
}

impl ProcError {
    /// The SQLSTATE PostgreSQL reports for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ProcError::TooManyClients | ProcError::TooManyWalSenders { .. } => "53300",
            ProcError::TooManyBackends { .. } => "22023",
            ProcError::Size(_) => "54000",
            ProcError::Ipc(e) => e.sqlstate(),
            _ => "XX000",
        }
    }
}
