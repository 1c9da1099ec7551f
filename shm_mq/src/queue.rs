//! The shared header, its placement in caller-provided space, and the sender/receiver fields.

use crate::error::ShmMqError;
use crate::ProcWaker;
use pgipc_lwlock::SpinLock;
use pgipc_proc::{ProcNumber, INVALID_PROC_NUMBER};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// PostgreSQL's `MAXIMUM_ALIGNOF` (the `shmem` crate's): every chunk in the ring is accounted in
/// multiples of this.
pub const MAXALIGN: usize = pgipc_shmem::MAXIMUM_ALIGNOF;

/// Largest message that may be sent (PostgreSQL's `MaxAllocSize`, 1 GiB - 1).
pub const MAX_MESSAGE_SIZE: usize = 0x3fff_ffff;

pub(crate) const fn maxalign(n: usize) -> usize {
    (n + MAXALIGN - 1) & !(MAXALIGN - 1)
}

/// The shared header of a queue; the ring follows it at byte [`ShmMq::RING_OFFSET`].
///
/// # Layout
/// `#[repr(C)]`, 192 bytes, 8-byte aligned; the two byte counters sit on cache lines of their
/// own (relative to a 64-byte aligned start) so that the sender's and the receiver's stores do
/// not contend with each other or with the read-mostly first line.
///
/// | offset | field | written by |
/// |---|---|---|
/// | 0 | `mutex: SpinLock` | protects `receiver`/`sender` while set and read before attach |
/// | 4 | `receiver: AtomicU32` (proc number, `u32::MAX` = unset) | once, under `mutex` |
/// | 8 | `sender: AtomicU32` (same) | once, under `mutex` |
/// | 12 | `detached: AtomicU32` (0/1, never back to 0) | either side |
/// | 16 | `ring_size: AtomicU64` | the creator only, before anyone attaches |
/// | 64 | `bytes_read: AtomicU64` | the receiver only (load + store, no read-modify-write) |
/// | 128 | `bytes_written: AtomicU64` | the sender only (load + store) |
/// | 192 | ring bytes | the sender writes free bytes, the receiver reads unread bytes |
///
/// The counters are padded with plain `u64` arrays, not crossbeam's `CachePadded` (align 128):
/// a queue goes wherever its creator puts it, which PostgreSQL's `shm_mq_create` only asks to
/// be MAXALIGNed and `shm_toc` chunks only 32-byte aligned, so the header may not demand more
/// than 8-byte alignment.
///
/// # Synchronization
/// No lock on the ring: free bytes belong to the sender, unread bytes to the receiver, and the
/// two counters hand bytes over (release store / acquire load). The sender reads `bytes_read`
/// (acquire) before overwriting ring bytes, and publishes `bytes_written` (release) after
/// writing them; the receiver mirrors that. Invariant:
/// `0 <= bytes_written - bytes_read <= ring_size`, unread data starts at
/// `bytes_read % ring_size`.
#[repr(C)]
pub struct ShmMq {
    mutex: SpinLock,
    receiver: AtomicU32,
    sender: AtomicU32,
    detached: AtomicU32,
    ring_size: AtomicU64,
    _pad0: [u64; 5],
    pub(crate) bytes_read: AtomicU64,
    _pad1: [u64; 7],
    pub(crate) bytes_written: AtomicU64,
    _pad2: [u64; 7],
}

// SAFETY: #[repr(C)], atomics, a SpinLock and padding only; all-zero is a valid (if unusable,
// ring_size 0) header; no pointers.
unsafe impl pgipc_shmem::ShmemSafe for ShmMq {}

impl fmt::Debug for ShmMq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmMq")
            .field("ring_size", &self.ring_size.load(Ordering::Relaxed))
            .field("bytes_read", &self.bytes_read.load(Ordering::Relaxed))
            .field("bytes_written", &self.bytes_written.load(Ordering::Relaxed))
            .field("detached", &self.detached.load(Ordering::Relaxed))
            .finish()
    }
}

/// Smallest space [`ShmMq::create`] accepts: the header plus one aligned word of ring
/// (PostgreSQL's `shm_mq_minimum_size`).
pub const fn minimum_size() -> usize {
    ShmMq::RING_OFFSET + MAXALIGN
}

/// Which end of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The one process that sends.
    Sender,
    /// The one process that receives.
    Receiver,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Sender => "sender",
            Side::Receiver => "receiver",
        }
    }
}

/// A process-local reference to a queue placed in shared memory: its header and its ring.
///
/// `Copy`; valid for `'a`, the lifetime of the mapping the caller vouched for in
/// [`ShmMq::create`] / [`ShmMq::from_raw`].
#[derive(Clone, Copy)]
pub struct MqRef<'a> {
    hdr: &'a ShmMq,
    ring: *mut u8,
    ring_size: usize,
    _ring: PhantomData<&'a [std::cell::UnsafeCell<u8>]>,
}

impl fmt::Debug for MqRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqRef")
            .field("ring_size", &self.ring_size)
            .field("sender", &self.sender())
            .field("receiver", &self.receiver())
            .field("bytes_read", &self.hdr.bytes_read.load(Ordering::Relaxed))
            .field(
                "bytes_written",
                &self.hdr.bytes_written.load(Ordering::Relaxed),
            )
            .field("detached", &self.is_detached())
            .finish()
    }
}

impl ShmMq {
    /// Where the ring starts, from the start of the header.
    pub const RING_OFFSET: usize = std::mem::size_of::<ShmMq>();

    /// Initialises a queue in `size` bytes at `space` (PostgreSQL's `shm_mq_create`): the size
    /// is rounded down to a multiple of 8, the ring gets what the header leaves, both sides
    /// are unset and the counters zero.
    ///
    /// Errors: [`ShmMqError::QueueTooSmall`], [`ShmMqError::Misaligned`].
    ///
    /// # Safety
    /// `space..space+size` must be writable memory (normally a shared mapping) that stays
    /// mapped for `'a`, that nobody else uses while this runs, and that from now on is only
    /// accessed through this crate.
    pub unsafe fn create<'a>(space: *mut u8, size: usize) -> Result<MqRef<'a>, ShmMqError> {
        if (space as usize) % MAXALIGN != 0 {
            return Err(ShmMqError::Misaligned {
                addr: space as usize,
            });
        }
        let size = size & !(MAXALIGN - 1);
        if size < minimum_size() {
            return Err(ShmMqError::QueueTooSmall {
                min: minimum_size(),
                size,
            });
        }
        // SAFETY: the caller gives us exclusive use of `size >= RING_OFFSET` aligned bytes.
        unsafe { std::ptr::write_bytes(space, 0, ShmMq::RING_OFFSET) };
        // SAFETY: as above; all-zero is a valid header.
        let hdr = unsafe { &*(space as *const ShmMq) };
        hdr.mutex.init();
        hdr.receiver.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        hdr.sender.store(INVALID_PROC_NUMBER, Ordering::Relaxed);
        hdr.ring_size
            .store((size - ShmMq::RING_OFFSET) as u64, Ordering::Release);
        // SAFETY: forwarded from the caller's contract; the header is initialised.
        Ok(unsafe { ShmMq::from_raw(space) })
    }

    /// Refers to a queue that [`ShmMq::create`] initialised at `space` (possibly in another
    /// process, at another address).
    ///
    /// # Safety
    /// `space` must be the start of a queue created with `create` whose whole space stays
    /// mapped for `'a`.
    pub unsafe fn from_raw<'a>(space: *mut u8) -> MqRef<'a> {
        // SAFETY: the caller vouches for an initialised header at `space`.
        let ring_size = unsafe { &*(space as *const ShmMq) }
            .ring_size
            .load(Ordering::Acquire) as usize;
        // SAFETY: forwarded from the caller, with the ring size the header records.
        unsafe { ShmMq::from_parts(space, ring_size) }
    }

    /// [`from_raw`](Self::from_raw) with a ring size already read (and checked) by the caller.
    ///
    /// # Safety
    /// As `from_raw`, and `space + RING_OFFSET + ring_size` must stay inside the mapping.
    pub(crate) unsafe fn from_parts<'a>(space: *mut u8, ring_size: usize) -> MqRef<'a> {
        // SAFETY: the caller vouches for an initialised header at `space`.
        let hdr = unsafe { &*(space as *const ShmMq) };
        MqRef {
            hdr,
            // SAFETY: the ring follows the header inside the caller's space.
            ring: unsafe { space.add(ShmMq::RING_OFFSET) },
            ring_size,
            _ring: PhantomData,
        }
    }
}

fn opt(p: u32) -> Option<ProcNumber> {
    (p != INVALID_PROC_NUMBER).then_some(p)
}

impl<'a> MqRef<'a> {
    /// The header.
    pub fn header(&self) -> &'a ShmMq {
        self.hdr
    }

    /// Usable ring bytes (a multiple of 8).
    pub fn ring_size(&self) -> usize {
        self.ring_size
    }

    pub(crate) fn ring_ptr(&self) -> *mut u8 {
        self.ring
    }

    /// Whether either side has detached (sticky).
    pub fn is_detached(&self) -> bool {
        self.hdr.detached.load(Ordering::Acquire) != 0
    }

    pub(crate) fn mark_detached(&self) {
        self.hdr.detached.store(1, Ordering::Release);
    }

    /// The receiver's proc number, read under the mutex (`shm_mq_get_receiver`).
    pub fn receiver(&self) -> Option<ProcNumber> {
        let _g = self.hdr.mutex.lock();
        opt(self.hdr.receiver.load(Ordering::Relaxed))
    }

    /// The sender's proc number, read under the mutex (`shm_mq_get_sender`).
    pub fn sender(&self) -> Option<ProcNumber> {
        let _g = self.hdr.mutex.lock();
        opt(self.hdr.sender.load(Ordering::Relaxed))
    }

    pub(crate) fn get(&self, side: Side) -> Option<ProcNumber> {
        match side {
            Side::Sender => self.sender(),
            Side::Receiver => self.receiver(),
        }
    }

    /// Records the receiver and wakes the sender if it is already known
    /// (`shm_mq_set_receiver`).
    pub fn set_receiver(
        &self,
        procno: ProcNumber,
        waker: &dyn ProcWaker,
    ) -> Result<(), ShmMqError> {
        self.set(Side::Receiver, procno, waker)
    }

    /// Records the sender and wakes the receiver if it is already known (`shm_mq_set_sender`).
    pub fn set_sender(&self, procno: ProcNumber, waker: &dyn ProcWaker) -> Result<(), ShmMqError> {
        self.set(Side::Sender, procno, waker)
    }

    fn set(&self, side: Side, procno: ProcNumber, waker: &dyn ProcWaker) -> Result<(), ShmMqError> {
        if procno == INVALID_PROC_NUMBER {
            return Err(ShmMqError::InvalidProcNumber { procno });
        }
        let (mine, other) = match side {
            Side::Sender => (&self.hdr.sender, &self.hdr.receiver),
            Side::Receiver => (&self.hdr.receiver, &self.hdr.sender),
        };
        let other = {
            let _g = self.hdr.mutex.lock();
            if let Some(cur) = opt(mine.load(Ordering::Relaxed)) {
                return Err(ShmMqError::AlreadySet {
                    side: side.name(),
                    procno: cur,
                });
            }
            mine.store(procno, Ordering::Relaxed);
            opt(other.load(Ordering::Relaxed))
        };
        if let Some(o) = other {
            waker.wake(o);
        }
        Ok(())
    }

    /// Marks the queue detached and wakes the side that is not `me` (`shm_mq_detach_internal`).
    pub(crate) fn detach_as(&self, me: Side, waker: &dyn ProcWaker) {
        let victim = {
            let _g = self.hdr.mutex.lock();
            self.hdr.detached.store(1, Ordering::Release);
            match me {
                Side::Sender => opt(self.hdr.receiver.load(Ordering::Relaxed)),
                Side::Receiver => opt(self.hdr.sender.load(Ordering::Relaxed)),
            }
        };
        if let Some(v) = victim {
            waker.wake(v);
        }
    }
}
