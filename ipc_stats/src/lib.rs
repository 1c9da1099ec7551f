//! IPC statistics no PostgreSQL view has: how often each subsystem worked, per process.
//!
//! ```text
//!  main segment: "IPC Statistics"  one block of STRIDE AtomicU64 per proc number
//!  ┌ block 0 ─────────────────┬ block 1 ──────────────┬ …  (a block is whole cache lines:
//!  │ latch sets · wakeups ·   │                       │     no two processes share one)
//!  │ waits · lwlock acquires… │                       │
//!  └──────────────────────────┴───────────────────────┴
//!        ▲ written only by the process holding that proc number (relaxed fetch_add)
//!        │ read by anyone (pgipc_stat_ipc), zeroed by pgipc_stat_reset_ipc()
//!  process-local: MY_BLOCK → this process's block (set by the proc crate when the process
//!  takes its proc number, cleared when it gives it back; null = not counted)
//! ```
//!
//! The hot path is [`count`]: one relaxed load of a process-local pointer and, when it is set,
//! one relaxed `fetch_add` on a cache line no other process writes. Processes without a proc
//! number (the postmaster, standalone tools, unit tests) count nothing.
//!
//! # Concurrency contract
//! * Block *i* is incremented only by the process holding proc number *i*; a new owner zeroes
//!   it first, so a block counts since its process started.
//! * Readers load each counter with relaxed ordering: a row is a set of independent counters,
//!   not a consistent snapshot (as PostgreSQL's cumulative statistics).
//! * A reset stores zeros; an increment racing with it may survive or be lost.
//!
//! # What this crate does not do
//! The region itself is created by ipci (it needs the shmem crate, which needs lwlock, which
//! counts through this crate); counts of processes that exited leave with them; LWLock counters
//! and wait time are summed over all tranches, ProcSignal sends over all reasons, and the
//! postmaster (no proc number) counts nothing.
//!
//! Key items: [`Counter`], [`count`], [`add`], [`set_my_block`], [`STRIDE`], [`IPC_STATS_NAME`].

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// The region's name in the Shmem Index.
pub const IPC_STATS_NAME: &str = "IPC Statistics";

macro_rules! counters {
    ($( $(#[$doc:meta])* $v:ident = ($sub:literal, $name:literal), )*) => {
        /// One counter of a process's block.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(usize)]
        pub enum Counter {
            $( $(#[$doc])* $v, )*
        }

        impl Counter {
            /// Every counter, in block order.
            pub const ALL: &'static [Counter] = &[$(Counter::$v),*];

            /// The subsystem it belongs to (`latch`, `lwlock`…), the view's first column.
            pub fn subsystem(self) -> &'static str {
                match self { $(Counter::$v => $sub,)* }
            }

            /// Its name within the subsystem (`sets`, `waits`…).
            pub fn name(self) -> &'static str {
                match self { $(Counter::$v => $name,)* }
            }
        }
    };
}

counters! {
    /// `SetLatch` calls that found the latch unset and set it.
    LatchSets = ("latch", "sets"),
    /// Sets whose owner was asleep, so the set made a system call (futex wake or signal).
    LatchWakeups = ("latch", "wakeups"),
    /// Waits on a wait event set (`WaitLatch`, `WaitEventSetWait`) that were entered.
    LatchWaits = ("latch", "waits"),
    /// LWLock acquisitions (blocking and successful conditional ones).
    LWLockAcquires = ("lwlock", "acquisitions"),
    /// Acquisitions that had to sleep on the process's semaphore.
    LWLockWaits = ("lwlock", "waits"),
    /// `SendProcSignal` calls that reached their target.
    ProcSignalSends = ("procsignal", "sends"),
    /// Dynamic shared memory segments created.
    DsmCreates = ("dsm", "creates"),
    /// Dynamic shared memory segments attached.
    DsmAttaches = ("dsm", "attaches"),
    /// Snapshots computed from the ProcArray (`GetSnapshotData`).
    SnapshotsComputed = ("snapshot", "computed"),
    /// Snapshots reused because no transaction ended since the last one.
    SnapshotsReused = ("snapshot", "reused"),
    /// Shared invalidation messages appended to the ring (`SIInsertDataEntries`).
    SinvalWrites = ("sinval", "messages_written"),
    /// Shared invalidation messages read from the ring (`SIGetDataEntries`).
    SinvalReads = ("sinval", "messages_read"),
    /// Catch-up signals sent to a reader falling behind (counted by the sender).
    SinvalCatchups = ("sinval", "catchup_signals"),
    /// Resets: a reader that fell so far behind that its messages were lost (counted by
    /// that reader when it finds out).
    SinvalResets = ("sinval", "resets"),
    /// Messages sent through shm_mq queues (counted when a send completes).
    ShmMqSent = ("shm_mq", "messages_sent"),
    /// Payload bytes of those messages (length words and padding not counted).
    ShmMqBytesSent = ("shm_mq", "bytes_sent"),
    /// Messages received from shm_mq queues.
    ShmMqReceived = ("shm_mq", "messages_received"),
    /// Payload bytes of those messages.
    ShmMqBytesReceived = ("shm_mq", "bytes_received"),
    /// Microseconds LWLock acquisitions spent asleep on the semaphore (all tranches).
    LWLockWaitMicros = ("lwlock", "wait_time_us"),
    /// Spinlock waits that slept (PostgreSQL's `perform_spin_delay` past its spins).
    SpinDelays = ("spinlock", "delays"),
    /// ProcSignal barriers emitted (`EmitProcSignalBarrier`).
    BarrierEmits = ("procsignal", "barrier_emits"),
    /// Barrier generations absorbed (`ProcessProcSignalBarrier` that caught up).
    BarrierAbsorbs = ("procsignal", "barrier_absorbs"),
    /// Dynamic shared memory segments destroyed by this process (the last reference).
    DsmDestroys = ("dsm", "destroys"),
    /// Bytes of the dynamic shared memory segments this process created.
    DsmBytesCreated = ("dsm", "bytes_created"),
    /// Sleeps of a shm_mq sender on its latch (the ring was full or the receiver absent).
    ShmMqSendSleeps = ("shm_mq", "send_sleeps"),
    /// Sleeps of a shm_mq receiver on its latch (the ring was empty).
    ShmMqReceiveSleeps = ("shm_mq", "receive_sleeps"),
}

/// Counters per block: [`Counter::ALL`]'s length rounded up to whole 64-byte cache lines.
pub const STRIDE: usize = Counter::ALL.len().div_ceil(8) * 8;

/// The region's length in counters for `procs` proc numbers.
pub fn region_len(procs: usize) -> Option<usize> {
    procs.checked_mul(STRIDE)
}

/// This process's block, or null.
static MY_BLOCK: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

/// Makes `block` (its first counter; [`STRIDE`] counters) this process's, zeroing it.
///
/// # Safety
/// `block` must point at [`STRIDE`] `AtomicU64`s that stay mapped until [`clear_my_block`] is
/// called (the main segment, held by whoever calls this), and no other process may count
/// into them meanwhile.
pub unsafe fn set_my_block(block: *const AtomicU64) {
    for k in 0..STRIDE {
        // SAFETY: the caller guarantees STRIDE live counters at `block`.
        unsafe { (*block.add(k)).store(0, Ordering::Relaxed) };
    }
    MY_BLOCK.store(block.cast_mut(), Ordering::Release);
}

/// Stops counting (before the block's memory or proc number is given up).
pub fn clear_my_block() {
    MY_BLOCK.store(std::ptr::null_mut(), Ordering::Release);
}

/// Adds `n` to counter `c` of this process (nothing when it has no block).
#[inline]
pub fn add(c: Counter, n: u64) {
    let p = MY_BLOCK.load(Ordering::Relaxed);
    if !p.is_null() {
        // SAFETY: set_my_block's contract keeps STRIDE counters alive at `p` while it is
        // installed, and `c` is below Counter::ALL.len() <= STRIDE.
        unsafe { (*p.add(c as usize)).fetch_add(n, Ordering::Relaxed) };
    }
}

/// Adds one to counter `c` of this process.
#[inline]
pub fn count(c: Counter) {
    add(c, 1);
}

/// Counts one message of `bytes` payload bytes: one in `messages` and `bytes` in the counter
/// that follows it ([`Counter::ShmMqSent`] → [`Counter::ShmMqBytesSent`],
/// [`Counter::ShmMqReceived`] → [`Counter::ShmMqBytesReceived`]); one load of the block
/// pointer for both.
#[inline]
pub fn count_message(messages: Counter, bytes: usize) {
    let p = MY_BLOCK.load(Ordering::Relaxed);
    let k = messages as usize;
    if !p.is_null() && k + 1 < Counter::ALL.len() {
        // SAFETY: as in `add`; `k` and `k + 1` are below Counter::ALL.len() <= STRIDE.
        unsafe {
            (*p.add(k)).fetch_add(1, Ordering::Relaxed);
            (*p.add(k + 1)).fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }
}

/// Counter `c` of the block starting at `k * STRIDE` in `region`.
pub fn read(region: &[AtomicU64], k: usize, c: Counter) -> u64 {
    region
        .get(k * STRIDE + c as usize)
        .map_or(0, |v| v.load(Ordering::Relaxed))
}

/// Zeroes every block of `region` (`pgipc_stat_reset_ipc()`).
pub fn reset(region: &[AtomicU64]) {
    for v in region {
        v.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_counts_into_its_own_block_only_while_it_has_one() {
        let region: Vec<AtomicU64> = (0..STRIDE * 3).map(|_| AtomicU64::new(7)).collect();
        count(Counter::LatchSets);
        assert_eq!(read(&region, 1, Counter::LatchSets), 7, "no block yet");
        // SAFETY: `region` outlives the block's use: cleared below before it is dropped.
        unsafe { set_my_block(region[STRIDE..].as_ptr()) };
        assert_eq!(
            read(&region, 1, Counter::LatchSets),
            0,
            "zeroed by its new owner"
        );
        count(Counter::LatchSets);
        add(Counter::DsmAttaches, 3);
        clear_my_block();
        count(Counter::LatchSets);
        assert_eq!(read(&region, 1, Counter::LatchSets), 1);
        assert_eq!(read(&region, 1, Counter::DsmAttaches), 3);
        assert_eq!(
            read(&region, 0, Counter::LatchSets),
            7,
            "other blocks untouched"
        );
        assert_eq!(read(&region, 2, Counter::LatchSets), 7);
        reset(&region);
        assert!(region.iter().all(|v| v.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn blocks_are_whole_cache_lines_with_room_for_every_counter() {
        assert!(STRIDE >= Counter::ALL.len());
        assert_eq!(STRIDE * 8 % 64, 0);
        let mut names: Vec<(&str, &str)> = Counter::ALL
            .iter()
            .map(|c| (c.subsystem(), c.name()))
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
        for (k, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, k);
        }
    }
}
