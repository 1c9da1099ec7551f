//! The crate's one error type.

use pgipc_proc::ProcNumber;

/// Real failures of queue operations (outcomes such as "would block" or "the peer detached"
/// are values of [`SendResult`](crate::SendResult) / [`RecvResult`](crate::RecvResult)).
/// Texts follow PostgreSQL's where it has an equivalent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShmMqError {
    /// The space given to [`ShmMq::create`](crate::ShmMq::create) cannot hold the header and
    /// one aligned word of ring (SQLSTATE 22023).
    #[error("queue size must be at least {min} bytes")]
    QueueTooSmall {
        /// The minimum ([`minimum_size`](crate::minimum_size)).
        min: usize,
        /// What was offered.
        size: usize,
    },
    /// The space given is not 8-byte aligned.
    #[error("shared memory queue space at {addr:#x} is not 8-byte aligned")]
    Misaligned {
        /// The address offered.
        addr: usize,
    },
    /// A message longer than [`MAX_MESSAGE_SIZE`](crate::MAX_MESSAGE_SIZE) (SQLSTATE 54000).
    #[error("cannot send a message of size {size} via shared memory queue")]
    MessageTooLarge {
        /// The message's total length.
        size: usize,
    },
    /// The length word read from the ring is impossible (SQLSTATE 54000): the sender is not
    /// following the protocol or shared memory is corrupt.
    #[error("invalid message size {size} in shared memory queue")]
    InvalidMessageSize {
        /// The length word read.
        size: u64,
    },
    /// `set_sender` / `set_receiver` on a queue whose side is already set.
    #[error("shared memory queue {side} is already set to proc number {procno}")]
    AlreadySet {
        /// "sender" or "receiver".
        side: &'static str,
        /// Who is recorded.
        procno: ProcNumber,
    },
    /// `attach` by a process that is not recorded as the side it claims.
    #[error(
        "proc number {me} is not the {side} of this shared memory queue (recorded: {recorded:?})"
    )]
    NotParticipant {
        /// "sender" or "receiver".
        side: &'static str,
        /// The caller.
        me: ProcNumber,
        /// What the queue records for that side (None: unset).
        recorded: Option<ProcNumber>,
    },
    /// Sending on a receiver's handle or receiving on a sender's.
    #[error("this shared memory queue handle is the {side}; it cannot {op}")]
    WrongSide {
        /// The handle's side.
        side: &'static str,
        /// "send" or "receive".
        op: &'static str,
    },
    /// An invalid proc number was passed as a sender or receiver.
    #[error("invalid proc number {procno} for a shared memory queue")]
    InvalidProcNumber {
        /// The number passed.
        procno: ProcNumber,
    },
    /// A queue was to be placed (or found) in a DSM segment at a place that does not lie
    /// inside this process's mapping of it.
    #[error(
        "shared memory queue of {size} bytes at offset {offset} does not fit in its dynamic shared memory segment of {map_length} bytes"
    )]
    OutsideSegment {
        /// Start of the queue relative to the mapping (negative: before it).
        offset: isize,
        /// Bytes the queue needs there.
        size: usize,
        /// Length of the mapping.
        map_length: usize,
    },
    /// The DSM segment holding the queue is no longer this process's: it was detached before
    /// the queue was set up, or process exit gave its reference back while a handle still
    /// lived. The handle refuses to touch the memory.
    #[error("dynamic shared memory segment {handle} holding the shared memory queue is detached")]
    SegmentDetached {
        /// The segment's handle.
        handle: u32,
    },
    /// Waiting on our latch failed (it is not ours any more).
    #[error(transparent)]
    Latch(#[from] pgipc_latch::LatchError),
}
