//! The fixed-numbered cumulative statistics of the auxiliary processes, in the main segment
//! (PostgreSQL's `utils/activity/pgstat_shmem.c` for the region, `pgstat_bgwriter.c` and
//! `pgstat_checkpointer.c` for what is counted): the numbers behind `pg_stat_bgwriter` and
//! `pg_stat_checkpointer`, and pgipc's own round counters of the other auxiliary processes.
//!
//! ```text
//!  "Shared Memory Stats" (one region, created by ipci at StatsShmemInit's place)
//!  ┌ bgwriter:     buffers_clean, maxwritten_clean, buffers_alloc, stat_reset_timestamp  ┐
//!  ├ checkpointer: num_timed, num_requested, num_performed, restartpoints_{timed,        ┤
//!  │               requested,performed}, write_time, sync_time, buffers_written,        │
//!  │               slru_written, stat_reset_timestamp                                   │
//!  └ aux rounds:   bgwriter, walwriter, autovacuum launcher, io worker, startup passes   ┘
//!  checkpointer ─► checkpointer fields     bgwriter ─► bgwriter fields + its round
//!  every backend ─► reads (pg_stat_bgwriter, pg_stat_checkpointer, pgipc_stat_aux, SHOW)
//! ```
//!
//! # Concurrency contract
//! Every field is an atomic with one writer kind: the checkpointer writes the checkpointer
//! fields, the background writer the bgwriter fields, each auxiliary process its own round
//! counter (io workers share theirs, with `fetch_add`). Writers add with relaxed
//! read-modify-writes; readers load each field relaxed. A reader may therefore see one
//! field of a checkpoint counted and the next not yet (PostgreSQL's readers copy under a
//! change-count protocol to get a consistent row; a row here is consistent per field only,
//! which a monotonic counter view tolerates). The reset timestamps are written once, when the
//! region is created (a crash restart creates it anew, so the counters restart from zero
//! there as PostgreSQL's do after a crash).
//!
//! # What this crate does not do
//! PostgreSQL's "Shared Memory Stats" region holds the whole cumulative statistics system
//! (a DSA with a shared hash table of variable-numbered entries, pending per-backend counts
//! flushed at intervals, a stats file written at shutdown and read at start). Here the region
//! holds only the fixed-numbered bgwriter and checkpointer statistics plus pgipc's round
//! counters, written directly (no pending local counts), and nothing survives a restart. The
//! region keeps PostgreSQL's name so that `pg_shmem_allocations` lists it where PostgreSQL
//! does; its size is pgipc's.
//!
//! Key items: [`shmem_init`], [`PgStatShared`], [`BgWriterStats`], [`CheckpointerStats`],
//! [`AuxRounds`].

use pgipc_shmem::{InitKind, Shared, Shmem, ShmemError, ShmemSafe};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The region's name in the Shmem Index (PostgreSQL's, so `pg_shmem_allocations` matches).
pub const STATS_SHMEM_NAME: &str = "Shared Memory Stats";

/// Why the statistics region could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PgStatError {
    /// The region could not be created or found.
    #[error(transparent)]
    Shmem(#[from] ShmemError),
}

/// The background writer's counters (`PgStatShared_BgWriter`; `pg_stat_bgwriter`'s columns).
///
/// Written by the background writer only.
#[repr(C)]
#[derive(Debug, Default)]
pub struct BgWriterStats {
    /// Buffers written by the background writer (`buffers_clean`).
    pub buffers_clean: AtomicU64,
    /// Rounds stopped because `bgwriter_lru_maxpages` was reached (`maxwritten_clean`).
    pub maxwritten_clean: AtomicU64,
    /// Buffers allocated (`buffers_alloc`).
    pub buffers_alloc: AtomicU64,
    /// When these counters were last reset, PostgreSQL microseconds since 2000-01-01 UTC
    /// (`stats_reset`).
    pub stat_reset_timestamp: AtomicI64,
}

/// The checkpointer's counters (`PgStatShared_Checkpointer`; `pg_stat_checkpointer`'s
/// columns).
///
/// Written by the checkpointer only.
#[repr(C)]
#[derive(Debug, Default)]
pub struct CheckpointerStats {
    /// Checkpoints started because `checkpoint_timeout` passed (`num_timed`).
    pub num_timed: AtomicU64,
    /// Checkpoints requested (shutdown, `CHECKPOINT`, WAL volume) (`num_requested`).
    pub num_requested: AtomicU64,
    /// Checkpoints completed (`num_done`).
    pub num_performed: AtomicU64,
    /// Restartpoints by time (`restartpoints_timed`); a server without recovery has none.
    pub restartpoints_timed: AtomicU64,
    /// Restartpoints requested (`restartpoints_req`).
    pub restartpoints_requested: AtomicU64,
    /// Restartpoints completed (`restartpoints_done`).
    pub restartpoints_performed: AtomicU64,
    /// Milliseconds spent writing files in checkpoints (`write_time`).
    pub write_time: AtomicU64,
    /// Milliseconds spent syncing files in checkpoints (`sync_time`).
    pub sync_time: AtomicU64,
    /// Shared buffers written by checkpoints (`buffers_written`).
    pub buffers_written: AtomicU64,
    /// SLRU buffers written by checkpoints (`slru_written`).
    pub slru_written: AtomicU64,
    /// When these counters were last reset, PostgreSQL microseconds since 2000-01-01 UTC
    /// (`stats_reset`).
    pub stat_reset_timestamp: AtomicI64,
}

/// Rounds done by the auxiliary processes that have no PostgreSQL statistics view (pgipc's
/// own; the `pgipc_stat_aux` view and `SHOW pgipc.<name>` read them).
///
/// Each field is written by the process kind it names.
#[repr(C)]
#[derive(Debug, Default)]
pub struct AuxRounds {
    /// Background writer rounds (one per `bgwriter_delay`).
    pub bgwriter_rounds: AtomicU64,
    /// WAL writer rounds (one per `wal_writer_delay`).
    pub walwriter_rounds: AtomicU64,
    /// Autovacuum launcher rounds (one per `autovacuum_naptime`).
    pub autovacuum_rounds: AtomicU64,
    /// I/O worker wake-ups (all io workers together).
    pub io_worker_wakeups: AtomicU64,
    /// Completed start-up (crash-recovery) passes.
    pub startup_passes: AtomicU64,
}

/// The whole region.
///
/// Layout: `#[repr(C)]`, the three parts in order, 8-byte aligned, all atomics (valid when
/// all-zero). Synchronization: see the crate's concurrency contract.
#[repr(C)]
#[derive(Debug, Default)]
pub struct PgStatShared {
    /// `pg_stat_bgwriter`.
    pub bgwriter: BgWriterStats,
    /// `pg_stat_checkpointer`.
    pub checkpointer: CheckpointerStats,
    /// pgipc's round counters.
    pub aux: AuxRounds,
}

// SAFETY: repr(C), only atomics (valid when all-zero), no pointers; Sync because atomics are.
unsafe impl ShmemSafe for PgStatShared {}

/// The names the round counters and the older checkpoint counters answer to (`SHOW
/// pgipc.<name>`, the rows of `pgipc_stat_aux`), in the view's order.
pub const COUNTER_NAMES: [&str; 7] = [
    "checkpoints_timed",
    "checkpoints_req",
    "bgwriter_rounds",
    "walwriter_rounds",
    "autovacuum_rounds",
    "io_worker_wakeups",
    "startup_passes",
];

impl PgStatShared {
    /// A counter by its `SHOW pgipc.<name>` name (one of [`COUNTER_NAMES`]): the checkpoint
    /// counts come from the checkpointer's statistics, the rest from [`AuxRounds`].
    pub fn counter(&self, name: &str) -> Option<u64> {
        let c = match name {
            "checkpoints_timed" => &self.checkpointer.num_timed,
            "checkpoints_req" => &self.checkpointer.num_requested,
            "bgwriter_rounds" => &self.aux.bgwriter_rounds,
            "walwriter_rounds" => &self.aux.walwriter_rounds,
            "autovacuum_rounds" => &self.aux.autovacuum_rounds,
            "io_worker_wakeups" => &self.aux.io_worker_wakeups,
            "startup_passes" => &self.aux.startup_passes,
            _ => return None,
        };
        Some(c.load(Ordering::Relaxed))
    }

    /// Counts a checkpoint as it starts: `timed` says whether `checkpoint_timeout` started
    /// it (`num_timed`), else it was requested (`num_requested`), as PostgreSQL counts a
    /// checkpoint when it decides to do one. Called by the checkpointer only.
    pub fn checkpoint_started(&self, timed: bool) {
        let c = &self.checkpointer;
        if timed {
            c.num_timed.fetch_add(1, Ordering::Relaxed);
        } else {
            c.num_requested.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a completed checkpoint (`num_done`) and the milliseconds it spent writing and
    /// syncing. Called by the checkpointer only.
    pub fn checkpoint_done(&self, write_ms: u64, sync_ms: u64) {
        let c = &self.checkpointer;
        c.write_time.fetch_add(write_ms, Ordering::Relaxed);
        c.sync_time.fetch_add(sync_ms, Ordering::Relaxed);
        c.num_performed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Bytes the region needs (`StatsShmemSize`).
pub fn shmem_size() -> usize {
    std::mem::size_of::<PgStatShared>()
}

/// Creates the region (all counters zero, the reset timestamps set to now) or attaches to it
/// (`StatsShmemInit`).
pub fn shmem_init(shmem: &Shmem) -> Result<Shared<PgStatShared>, PgStatError> {
    let (s, kind): (Shared<PgStatShared>, InitKind) = shmem.init_struct(STATS_SHMEM_NAME)?;
    if kind == InitKind::Created {
        let now = pg_now();
        s.bgwriter
            .stat_reset_timestamp
            .store(now, Ordering::Relaxed);
        s.checkpointer
            .stat_reset_timestamp
            .store(now, Ordering::Relaxed);
    }
    Ok(s)
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
const UNIX_TO_PG_USECS: i64 = 946_684_800_000_000;

/// The system clock in PostgreSQL microseconds since 2000-01-01 UTC.
fn pg_now() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX) - UNIX_TO_PG_USECS
}

#[cfg(test)]
mod tests;
