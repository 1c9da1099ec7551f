//! Background workers, the half every process shares (PostgreSQL's `postmaster/bgworker.c`
//! minus the postmaster's list): the registration type, the "Background Worker Data" array in
//! the main segment, and what a backend does with it — register a dynamic worker, follow it
//! through a handle, wait for it to start or stop, ask for it to be terminated.
//!
//! ```text
//!  "Background Worker Data" (one region, created by ipci right before shmInvalBuffer)
//!  ┌ header: total_slots, parallel_register_count, parallel_terminate_count ┐
//!  ├ slot 0: in_use, terminate, pid, generation, notify pid, registration  ┤
//!  ├ …                                                                     ┤
//!  └ slot max_worker_processes-1                                           ┘
//!  backend:    BackgroundWorkerLock X ─► free slot, generation+1, fill, in_use = 1 (release)
//!              ─► PMSIGNAL_BACKGROUND_WORKER_CHANGE ─► the postmaster copies it into its list
//!  postmaster: reads slots with acquire loads, never takes the lock; writes pid at start
//!              (0 once gone), frees the slot (in_use = 0, release), SIGUSR1s bgw_notify_pid
//!  backend:    status / wait_for_startup / wait_for_shutdown (latch, woken by that SIGUSR1)
//! ```
//!
//! # Concurrency contract
//! Backends change a slot only under `BackgroundWorkerLock` (exclusive): registration and the
//! terminate flag. The postmaster never takes that lock (a crashed backend could hold it): it
//! is the only writer of `pid`, of freeing a slot and of `parallel_terminate_count`, and it
//! reads a registration only after an acquire load of `in_use` that pairs with the
//! registrant's release store. Every method says which side may call it.
//!
//! # What this crate does not do
//! It starts no process and knows no worker code: the postmaster's list (start and restart
//! policy, re-publication after a crash reset) and the table of compiled-in entry points that
//! `bgw_function_name` names live in the postmaster crate. A registration naming a function
//! the server does not have is refused by the postmaster, not here (as in PostgreSQL, where
//! the name is looked up when the worker starts).
//!
//! Key items: [`BgWorkerSpec`], [`shmem_init`], [`BgWorkerShared`], [`BgWorkerHandle`],
//! [`BgwHandleStatus`].

mod shared;
mod spec;

pub use shared::{shmem_init, shmem_size, BgWorkerHandle, BgWorkerShared, BgwHandleStatus};
pub use spec::{
    BgWorkerError, BgWorkerSpec, BgwStartTime, RestartPolicy, BGWORKER_BACKEND_DATABASE_CONNECTION,
    BGWORKER_CLASS_PARALLEL, BGWORKER_SHMEM_ACCESS, BGW_DEFAULT_RESTART_INTERVAL, BGW_MAXLEN,
    BGW_NEVER_RESTART,
};

/// The array's name in the Shmem Index (PostgreSQL's, so `pg_shmem_allocations` matches).
pub const BGWORKER_DATA_NAME: &str = "Background Worker Data";

/// The wait-event code of [`BgWorkerShared::wait_for_startup`] (`IPC/BgworkerStartup`).
pub const WAIT_EVENT_BGWORKER_STARTUP: u32 = pgipc_wait_event::WAIT_EVENT_BGWORKER_STARTUP;
/// The wait-event code of [`BgWorkerShared::wait_for_shutdown`] (`IPC/BgworkerShutdown`).
pub const WAIT_EVENT_BGWORKER_SHUTDOWN: u32 = pgipc_wait_event::WAIT_EVENT_BGWORKER_SHUTDOWN;

#[cfg(test)]
mod tests;
