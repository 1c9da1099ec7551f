//! A single-reader single-writer message queue in shared memory.
//!
//! Mirrors PostgreSQL's `storage/ipc/shm_mq.c`: a byte ring, placed in space the caller owns
//! (normally a DSM segment or a chunk of the main segment), carrying length-prefixed messages
//! from exactly one sending process to exactly one receiving process, with blocking and
//! `nowait` sends and receives, gather sends, zero-copy receives of contiguous messages and
//! reliable reporting that the other side went away.
//!
//! ```text
//!  caller's space (8-byte aligned, >= minimum_size())
//!  ┌───────────────────────────────── ShmMq header (192 B) ──────────────────────────────┐
//!  │ line 0: mutex │ receiver │ sender │ detached │ ring_size  (set-once / sticky fields)  │
//!  │ line 1: bytes_read      (receiver stores)                                           │
//!  │ line 2: bytes_written   (sender stores)                                             │
//!  ├───────────────────────────────── ring (ring_size B, multiple of 8) ─────────────────┤
//!  │ ... free ... │ len │ payload..pad │ len │ payload ...  │ ... free ...               │
//!  │              ^ bytes_read % ring_size           bytes_written % ring_size ^          │
//!  └──────────────────────────────────────────────────────────────────────────────────────┘
//!  message = 8-byte native length word + payload padded to 8; may wrap and may be longer
//!  than the ring (it then streams through it).
//! ```
//!
//! # Concurrency contract
//! * Exactly one process sends and one receives; each holds one [`MqHandle`] for its side.
//!   Only the sender writes free ring bytes and `bytes_written`; only the receiver reads
//!   unread ring bytes and writes `bytes_read`. Hence no lock on the data path.
//! * `sender` and `receiver` (proc numbers) are set once each, under the spinlock `mutex`,
//!   by [`MqRef::set_sender`] / [`MqRef::set_receiver`]; whoever sets one wakes the other if
//!   it is known. `detached` goes from 0 to 1 only, by either side.
//! * Batching: a side keeps written/consumed bytes private (`pending`) and publishes them only
//!   when more than a quarter of the ring is pending, when it would otherwise have to wait
//!   (ring full / empty from its view), at the end of a message sent with
//!   [`SendOptions::force_flush`], or on detach. A sender that stops without flushing or
//!   detaching leaves its last message invisible, as in PostgreSQL.
//! * Wake-ups: publishing sets the peer's latch (a sender's every flush, a receiver's when it
//!   consumed anything), as PostgreSQL. Together with the batching the peer is woken rarely,
//!   and `Latch::set` makes no system call when the latch is already set or its owner is not
//!   sleeping. (Waking only a peer that raised a "may sleep" flag was built and measured on
//!   2 CPUs: it made the 3-worker test_shm_mq figures 2-3x slower, see BENCHMARKS.md,
//!   2026-12-08, so it was not kept.)
//! * Waiting follows the latch protocol: look at the counters, sleep on our own latch, reset it,
//!   look again.
//! * The watch before a sleep (beyond PostgreSQL, which sleeps at once): a blocking send or
//!   receive that finds the ring full or empty first watches the peer's counter for up to
//!   [`AttachOptions::spin`] ([`DEFAULT_SPIN`], 50 us, when more than one CPU is online),
//!   with a CPU pause between looks (the spin hint for 5 us, then `sched_yield`); it stops
//!   at once when the counter moves, when its latch is set (the peer's wake-up, an
//!   interrupt, a detach), when the queue is detached, or when a yield comes back late
//!   (another process wanted the CPU). A streaming peer on another CPU usually publishes
//!   within that time, while a sleep and a cross-CPU futex wake-up cost ~50 us on small VMs.
//!   The watch is adaptive ([`Spin`]): after one that found nothing the next 1, 2, 4 … 64
//!   waits sleep at once, and it is skipped when the scheduler preempted the process since
//!   the previous watch (`ru_nivcsw` moved; read with `getrusage` only when a watch is about
//!   to start), because then the CPUs have more runnable work than they can run and
//!   spinning would take time from the process we wait for. It does not see every such
//!   case: a caller that knows its processes outnumber the CPUs (test_shm_mq's ring) passes
//!   `Some(Duration::ZERO)`.
//! * Beyond PostgreSQL, a message longer than a quarter of the ring is also published in
//!   quarter-ring steps while it is being sent and received, so both ends work in parallel.
//! * Peer death: PostgreSQL learns of a dead worker from the postmaster through a bgworker
//!   handle. Here the caller may supply a [`PeerAlive`] check (e.g. [`PidAlive`]); then sleeps
//!   are bounded by [`AttachOptions::poll_interval`] and the check runs on every wake-up, so a
//!   peer killed with SIGKILL turns into `Detached` instead of a hang. The receiver still
//!   drains everything published before reporting `Detached`.
//! * Segment ties: a queue in a DSM segment is a [`DsmMq`], which holds a
//!   [`DsmLease`](pgipc_dsm::DsmLease) on this process's mapping; [`MqHandle::attach_dsm`]
//!   takes it over and registers the segment's detach callback that marks the queue detached
//!   and wakes the peer (PostgreSQL's `on_dsm_detach` callback). Detaching or dropping the
//!   segment therefore never unmaps memory a handle still uses: the unmap waits for the last
//!   handle, and at process exit, where the segment's reference is given back regardless,
//!   the handle refuses every call with [`ShmMqError::SegmentDetached`]. Nothing borrowed
//!   from a handle or a `DsmMq` (queue reference, received message) can outlive it.
//!
//! # What this crate does not do
//! * No allocation of the space: the caller places the queue (`dsm`, `shm_toc` or the main
//!   segment). For plain memory (the main segment, a test's buffer) the caller vouches for
//!   the placement *and* the lifetime of the mapping in [`ShmMq::create`] /
//!   [`ShmMq::from_raw`]; for a DSM segment [`DsmMq::create`] / [`DsmMq::from_raw`] need only
//!   the placement vouched for, the lease takes care of the lifetime.
//! * No dependency on bgworkers: a dead peer is noticed through [`PeerAlive`]. The only use
//!   of `dsm` is the segment tie ([`DsmMq`]).
//! * No interrupts (`CHECK_FOR_INTERRUPTS`), postmaster-death checks or wait-event reporting
//!   (`MessageQueueSend/Receive/Internal`) while waiting.
//! * No multiple senders or receivers, no message priorities.
//!
//! Key types: [`ShmMq`], [`MqRef`], [`DsmMq`], [`MqHandle`], [`SendResult`], [`RecvResult`],
//! [`ShmMqError`].

mod error;
mod handle;
mod queue;
mod segment;
mod spin;
mod sys;
#[cfg(test)]
mod tests;

pub use error::ShmMqError;
pub use handle::{AttachOptions, AttachResult, MqHandle, RecvResult, SendOptions, SendResult};
pub use queue::{minimum_size, MqRef, ShmMq, Side, MAXALIGN, MAX_MESSAGE_SIZE};
pub use segment::DsmMq;
pub use spin::{Spin, Watched, DEFAULT_SPIN};

use pgipc_latch::Latch;
use pgipc_proc::ProcNumber;

/// Sets the latch of a process given its proc number ("whom to wake").
pub trait ProcWaker {
    /// Sets `procno`'s latch; an unknown number is ignored.
    fn wake(&self, procno: ProcNumber);
}

/// A [`ProcWaker`] over a plain array of latches: proc number = index.
#[derive(Debug, Clone, Copy)]
pub struct Latches<'a>(pub &'a [Latch]);

impl ProcWaker for Latches<'_> {
    fn wake(&self, procno: ProcNumber) {
        if let Some(l) = self.0.get(procno as usize) {
            l.set();
        }
    }
}

/// The PGPROC array: sets `PGPROC.procLatch`, as PostgreSQL does.
impl ProcWaker for pgipc_proc::ProcGlobal {
    fn wake(&self, procno: ProcNumber) {
        if let Ok(p) = self.proc(procno) {
            p.latch.set();
        }
    }
}

/// Tells whether the peer process still lives.
pub trait PeerAlive {
    /// `false` once the peer is known dead (it never becomes alive again).
    fn is_alive(&self) -> bool;
}

impl<F: Fn() -> bool> PeerAlive for F {
    fn is_alive(&self) -> bool {
        self()
    }
}

/// A [`PeerAlive`] check by process id: dead when the process no longer exists or is a
/// zombie (an unreaped child of ours).
#[derive(Debug, Clone, Copy)]
pub struct PidAlive(pub i32);

impl PeerAlive for PidAlive {
    fn is_alive(&self) -> bool {
        pgipc_ipc::pid_alive(self.0)
    }
}
