//! An I/O worker (PostgreSQL's storage/aio/method_worker.c): waits for work (there is none to
//! submit yet), counts its wake-ups in `pgipc.io_worker_wakeups`, exits 0 on SIGUSR2; SIGTERM
//! and SIGINT are ignored.

use crate::auxprocess::{wait_event, AuxProcess};
use crate::child::{BackendType, PoolSizes};
use crate::child_env::ChildEnv;
use crate::signals::{self, Pending};
use nix::sys::signal::Signal;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Runs an I/O worker; returns its exit code.
pub(crate) fn io_worker_main(env: &mut ChildEnv) -> i32 {
    let ignores = [Signal::SIGTERM, Signal::SIGINT];
    match AuxProcess::start(env, &[Signal::SIGHUP, Signal::SIGUSR2], &ignores) {
        Some(mut aux) => io_worker(&mut aux),
        None => 1,
    }
}

fn io_worker(aux: &mut AuxProcess<'_>) -> i32 {
    // PostgreSQL's IoWorkerMain shows its worker number as the activity.
    pgipc_ps_status::set_ps_display(&io_worker_id(aux).to_string());
    loop {
        aux.reload_if_asked();
        if signals::take(Pending::Usr2) {
            return 0;
        }
        aux.counters
            .aux
            .io_worker_wakeups
            .fetch_add(1, Ordering::Relaxed);
        aux.sleep(Duration::from_secs(60), wait_event::IO_WORKER_MAIN);
    }
}

/// This worker's number: its place in the I/O workers' pool of child slots, which the
/// postmaster hands out lowest first (PostgreSQL's workers take the first free entry of their
/// control array, which gives the same numbers).
fn io_worker_id(aux: &AuxProcess<'_>) -> u32 {
    let c = &aux.env.config;
    let sizes = PoolSizes {
        max_connections: c.max_connections,
        max_wal_senders: c.max_wal_senders,
        autovacuum_worker_slots: c.autovacuum_worker_slots,
        max_worker_processes: c.max_worker_processes,
    };
    aux.env
        .slot
        .saturating_sub(sizes.first_slot(BackendType::IoWorker))
}
