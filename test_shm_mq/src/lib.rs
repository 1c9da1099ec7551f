//! PostgreSQL's `src/test/modules/test_shm_mq`: the proof that dynamic background workers,
//! DSM, `shm_toc` and `shm_mq` work together. A leader builds one DSM segment holding a ring
//! of message queues, starts workers that pass every message along, and checks that what
//! comes back is what it sent.
//!
//! ```text
//!  DSM segment (handle H = bgw_main_arg of every worker), laid out with shm_toc (magic 0x79fb2447)
//!  ┌ key 0: header { mutex │ workers_total │ workers_attached │ workers_ready │ leader_procno } ┐
//!  ├ key 1: queue 0   leader   ──► worker 1                                                   ┤
//!  ├ key 2: queue 1   worker 1 ──► worker 2                                                   ┤
//!  ├ …                                                                                        ┤
//!  ├ key n+1: queue n worker n ──► leader        (each queue_size bytes, shm_mq header + ring) ┤
//!  └ key n+1+k: error queue of worker k ──► leader (ERROR_QUEUE_SIZE bytes, k = 1..n)          ┘
//!
//!  leader: create segment + toc + header + queues (sender of queue 0, receiver of queue n)
//!          ─► register n workers (type "test_shm_mq", never restarted, notify = leader pid)
//!          ─► wait on its latch until workers_ready = n (or a worker stopped: error)
//!          ─► send / receive (test_shm_mq: one message at a time, blocking;
//!             test_shm_mq_pipelined: nowait both ways, latch wait when neither progresses)
//!          ─► verify, detach (the segment goes with the last process that maps it)
//!  worker k: attach H, toc, header; workers_attached += 1 → its number k (under the mutex)
//!          ─► sender of error queue k ─► receiver of queue k-1, sender of queue k
//!          ─► workers_ready += 1, set leader latch
//!          ─► copy messages until either queue is detached ─► detach, exit 1
//!          (an ERROR goes into error queue k before the ring queues detach; the leader, which
//!           reads the error queues on each latch wake-up and whenever a ring queue turns out
//!           detached, raises it with CONTEXT "parallel worker": see `error_queue.rs`)
//! ```
//!
//! # Concurrency contract
//! * The header's counters are read and written only under its spinlock; `workers_total` and
//!   `leader_procno` are written once by the leader before any worker exists.
//! * Each queue has exactly one sender and one receiver (the `shm_mq` contract): the leader
//!   sets its two ends before registering workers, worker k sets the other two ends of its
//!   queues when it attaches.
//! * A worker learns the leader is gone because the leader's queue ends are detached (its
//!   handles detach when dropped, on success, error or cancel); the leader learns a worker
//!   is gone through the worker's background-worker handle (PostgreSQL's
//!   `shm_mq_attach(…, handle)`), checked on every wake-up of a wait, so a worker killed by
//!   SIGKILL is an error, never a hang. Until all workers are ready, any error of the leader
//!   also terminates the workers (PostgreSQL's `cleanup_background_workers`).
//!
//! # Differences from PostgreSQL
//! * The header also records the leader's proc number, so that a worker sets the leader's
//!   latch without looking the notify pid up in the ProcArray (`BackendPidGetProc`).
//! * The minimum queue size is `shm_mq`'s ([`pgipc_shm_mq::minimum_size`], 200 bytes) rather
//!   than PostgreSQL's 64: the queue header is three cache lines here.
//! * The backend's interrupt check, latch, PMSignal and settings come in through
//!   [`LeaderEnv`], so this crate does not depend on the backend (tcop) or the postmaster.
//!
//! # What this crate does not do
//! It starts no process: the postmaster's table of compiled-in worker functions maps
//! [`WORKER_FUNCTION`] to a wrapper that calls [`worker_main`] (and logs the worker's ERROR).
//! PostgreSQL's test_shm_mq has no error queues (its workers' errors only reach the log and the
//! leader sees a detached queue); this crate adds parallel.c's, so a worker's ERROR reaches
//! the leader's client as in a parallel query. The leader reads them on its latch wake-ups and
//! when a queue is detached rather than on a `PROCSIG_PARALLEL_MESSAGE` signal: the worker's
//! send already sets the leader's latch. Only ErrorResponses travel there (no notices,
//! NOTIFYs or the final 'X').
//!
//! The crate also carries PostgreSQL's `test_dsm_registry` functions ([`set_val_in_shmem`],
//! [`get_val_in_shmem`]) and the `pg_dsm_registry_allocations` view over `pgipc_dsm_registry`
//! ([`register_dsm_registry`]), which need the same backend environment.
//!
//! Key items: [`LeaderEnv`], [`test_shm_mq`], [`test_shm_mq_pipelined`], [`worker_main`],
//! [`register`], [`TestShmMqError`], [`WorkerReport`]. With the `injection_points` feature the
//! point `test-shm-mq-worker-copy` fails a worker as it passes a message along.

mod dsm_registry_fns;
mod error_queue;
mod leader;
mod setup;
mod sql;
mod worker;

pub use dsm_registry_fns::{
    dsm_registry_allocations, get_val_in_shmem, register_dsm_registry, set_val_in_shmem,
    DsmRegistryFnError, TEST_DSM_REGISTRY_NAME,
};
pub use error_queue::{WorkerReport, ERROR_QUEUE_SIZE, PARALLEL_WORKER_CONTEXT};
pub use leader::{test_shm_mq, test_shm_mq_pipelined};
pub use setup::{ensure_dsm, TestShmMqHeader, PG_TEST_SHM_MQ_MAGIC};
pub use sql::register;
pub use worker::{worker_main, WorkerEnv};

use pgipc_dsm::DsmImpl;
use pgipc_pmsignal::PMSignal;
use pgipc_proc::MyProc;
use pgipc_shmem::Shmem;

/// `bgw_type` of the workers, and their `bgw_library_name` in PostgreSQL.
pub const WORKER_TYPE: &str = "test_shm_mq";
/// `bgw_function_name`: the name the postmaster's table of compiled-in workers must map to a
/// wrapper around [`worker_main`].
pub const WORKER_FUNCTION: &str = "test_shm_mq_main";

/// What the leader needs from the backend it runs in.
pub trait LeaderEnv {
    /// The backend's PGPROC: its latch, proc number and the PGPROC array (to wake workers).
    fn my_proc(&self) -> Option<&'static MyProc>;
    /// The main shared-memory segment (background worker slots, DSM control).
    fn shmem(&self) -> &Shmem;
    /// PMSignal, to tell the postmaster about registrations (`None`: no postmaster).
    fn pmsignal(&self) -> Option<&PMSignal>;
    /// The DSM implementation (`dynamic_shared_memory_type`, data directory).
    fn dsm_impl(&self) -> DsmImpl;
    /// `max_worker_processes`.
    fn max_worker_processes(&self) -> u32;
    /// `max_parallel_workers`.
    fn max_parallel_workers(&self) -> u32;
    /// Whether a cancel or termination request is pending (does not consume it).
    fn interrupt_pending(&self) -> bool;
    /// PostgreSQL's `CHECK_FOR_INTERRUPTS`: serves what the backend serves at every check and
    /// returns [`TestShmMqError::Interrupted`] (57014 for a cancel, which it consumes; 57P01
    /// for a termination, which it leaves pending for the backend) when the call must stop.
    fn check_for_interrupts(&self) -> Result<(), TestShmMqError>;
}

/// The errors of the two functions and of a worker, with PostgreSQL's texts.
#[derive(Debug, thiserror::Error)]
pub enum TestShmMqError {
    /// A negative repeat count.
    #[error("repeat count size must be an integer value greater than or equal to zero")]
    NegativeRepeatCount,
    /// `test_shm_mq` with fewer than one worker.
    #[error("number of workers must be an integer value greater than zero")]
    NoWorkers,
    /// `test_shm_mq_pipelined` with a negative worker count.
    #[error("number of workers must be an integer value greater than or equal to zero")]
    NegativeWorkers,
    /// The queue cannot hold a queue header and one word.
    #[error("queue size must be at least {min} bytes")]
    QueueTooSmall {
        /// [`pgipc_shm_mq::minimum_size`].
        min: usize,
    },
    /// The segment's size does not fit in `usize`.
    #[error("requested shared memory size overflows size_t")]
    SizeOverflow,
    /// No free background-worker slot.
    #[error("could not register background process")]
    CouldNotRegister,
    /// A worker (or the postmaster) stopped before every worker was ready.
    #[error("one or more background workers failed to start")]
    FailedToStart,
    /// The next process in the ring went away.
    #[error("could not send message")]
    CouldNotSend,
    /// The previous process in the ring went away.
    #[error("could not receive message")]
    CouldNotReceive,
    /// What came back is not what was sent.
    #[error("message corrupted")]
    Corrupted {
        /// PostgreSQL's DETAIL.
        detail: String,
    },
    /// Pipelined: all received but not all sent.
    #[error("message sent {sent} times, but received {received} times")]
    CountMismatch {
        /// Messages sent.
        sent: i32,
        /// Messages received.
        received: i32,
    },
    /// The backend has no PGPROC or no postmaster.
    #[error("{0}")]
    NoBackend(&'static str),
    /// A cancel (57014) or termination (57P01) request stopped the call (or whatever error
    /// the backend's interrupt check raised).
    #[error("{message}")]
    Interrupted {
        /// 57014, 57P01, or the interrupt check's code.
        sqlstate: pgipc_query::SqlState,
        /// PostgreSQL's text.
        message: String,
    },
    /// The worker could not map the segment.
    #[error("unable to map dynamic shared memory segment")]
    NoSegment,
    /// The segment holds no test_shm_mq table of contents.
    #[error("bad magic number in dynamic shared memory segment")]
    BadMagic,
    /// More workers attached than the leader started.
    #[error("too many message queue testing workers already")]
    TooManyWorkers,
    /// A SIGTERM reached a worker.
    #[error("terminating background worker \"{WORKER_TYPE}\" due to administrator command")]
    Terminated,
    /// Creating or attaching the segment failed.
    #[error(transparent)]
    Dsm(#[from] pgipc_dsm::DsmError),
    /// The table of contents failed.
    #[error(transparent)]
    Toc(#[from] pgipc_shm_toc::ShmTocError),
    /// A queue operation failed.
    #[error(transparent)]
    Mq(#[from] pgipc_shm_mq::ShmMqError),
    /// Registering or following a worker failed.
    #[error(transparent)]
    BgWorker(#[from] pgipc_bgworker::BgWorkerError),
    /// A worker's ERROR, read from its error queue and raised by the leader (PostgreSQL's
    /// `ProcessParallelMessage`).
    #[error("{}", .0.message)]
    Worker(Box<WorkerReport>),
    /// An error queue carried something other than an ErrorResponse.
    #[error("unrecognized message type received from parallel worker: {kind} (message length {len} bytes)")]
    UnrecognizedMessage {
        /// The message's first byte.
        kind: char,
        /// Its length.
        len: usize,
    },
    /// An injection point attached to `error` in the worker's copy loop
    /// (`test-shm-mq-worker-copy`; the `injection_points` feature only).
    #[error(transparent)]
    Injection(#[from] pgipc_injection_point::InjectionError),
}

impl TestShmMqError {
    /// The SQLSTATE.
    pub fn sqlstate(&self) -> &str {
        use TestShmMqError::*;
        match self {
            NegativeRepeatCount | NoWorkers | NegativeWorkers | QueueTooSmall { .. } => "22023",
            SizeOverflow => "54000",
            CouldNotRegister | FailedToStart => "53000",
            CouldNotSend | CouldNotReceive | NoSegment | BadMagic | NoBackend(_) => "55000",
            Corrupted { .. } | CountMismatch { .. } | TooManyWorkers => "XX000",
            Interrupted { sqlstate, .. } => sqlstate,
            Terminated => "57P01",
            Dsm(e) => e.sqlstate(),
            Toc(e) => e.sqlstate(),
            Mq(pgipc_shm_mq::ShmMqError::QueueTooSmall { .. }) => "22023",
            Mq(pgipc_shm_mq::ShmMqError::MessageTooLarge { .. }) => "54000",
            Mq(_) => "XX000",
            BgWorker(e) => e.sqlstate(),
            Worker(r) => r.sqlstate.as_str(),
            UnrecognizedMessage { .. } => "XX000",
            Injection(e) => e.sqlstate(),
        }
    }

    /// PostgreSQL's DETAIL, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            TestShmMqError::Corrupted { detail } => Some(detail),
            TestShmMqError::Worker(r) => r.detail.as_deref(),
            _ => None,
        }
    }

    /// PostgreSQL's HINT, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            TestShmMqError::CouldNotRegister => {
                Some("You may need to increase \"max_worker_processes\".")
            }
            TestShmMqError::Worker(r) => r.hint.as_deref(),
            _ => None,
        }
    }

    /// PostgreSQL's CONTEXT, if any: a worker's error raised by the leader ends with
    /// `parallel worker`.
    pub fn context(&self) -> Option<String> {
        match self {
            TestShmMqError::Worker(r) => r.context.clone(),
            _ => None,
        }
    }

    /// A query cancel (57014).
    pub fn cancel() -> Self {
        TestShmMqError::Interrupted {
            sqlstate: pgipc_query::SqlState::new("57014"),
            message: "canceling statement due to user request".into(),
        }
    }

    /// A termination request (57P01).
    pub fn terminate() -> Self {
        TestShmMqError::Interrupted {
            sqlstate: pgipc_query::SqlState::new("57P01"),
            message: "terminating connection due to administrator command".into(),
        }
    }
}

#[cfg(test)]
mod tests;
