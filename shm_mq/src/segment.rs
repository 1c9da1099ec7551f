//! A queue inside a DSM segment that holds the segment's mapping for as long as it is used.

use crate::error::ShmMqError;
use crate::queue::{minimum_size, MqRef, ShmMq, MAXALIGN};
use pgipc_dsm::{DsmLease, DsmSegmentRef};
use std::fmt;
use std::ptr::NonNull;

/// A queue placed in a DSM segment (PostgreSQL's `shm_mq` in a `dsm_segment`), owning a
/// [`DsmLease`] on this process's mapping of it.
///
/// Unlike an [`MqRef`] made with [`ShmMq::from_raw`], whose lifetime the caller vouches
/// for, a `DsmMq` cannot be left pointing at unmapped memory by safe code: detaching or
/// dropping the segment runs its detach callbacks at once (a handle's callback marks the queue
/// detached and wakes the peer) but leaves the memory mapped until the last `DsmMq` or
/// [`MqHandle`](crate::MqHandle) made from it is gone. At process exit the segment's
/// reference is given back even then; the queue then refuses every use with
/// [`ShmMqError::SegmentDetached`] (see [`MqHandle::attach_dsm`](crate::MqHandle::attach_dsm)).
///
/// Cloning takes another lease on the same mapping (one per handle).
///
/// A reference to the queue cannot outlive the `DsmMq`:
/// ```compile_fail,E0505
/// fn escape(q: pgipc_shm_mq::DsmMq) {
///     let mq = q.queue().unwrap();
///     drop(q); // gives the lease up: the memory may be unmapped now
///     mq.is_detached(); // error: `q` moved while borrowed
/// }
/// ```
/// nor be kept by a detach callback (those must be `'static`; [`MqHandle::attach_dsm`](crate::MqHandle::attach_dsm)'s own
/// callback is the one place that does this, inside the crate):
/// ```compile_fail,E0597
/// fn smuggle(q: pgipc_shm_mq::DsmMq) {
///     let mq = q.queue().unwrap();
///     q.segment().on_detach(move || {
///         mq.is_detached(); // error: `q` does not live long enough
///     });
/// }
/// ```
/// whereas using it while the `DsmMq` lives compiles:
/// ```
/// fn fine(q: pgipc_shm_mq::DsmMq) -> bool {
///     let mq = q.queue().unwrap();
///     let d = mq.is_detached();
///     drop(q);
///     d
/// }
/// ```
#[derive(Clone)]
pub struct DsmMq {
    lease: DsmLease,
    offset: usize,
    ring_size: usize,
}

impl fmt::Debug for DsmMq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsmMq")
            .field("segment", &self.lease.handle())
            .field("offset", &self.offset)
            .field("ring_size", &self.ring_size)
            .field("usable", &self.lease.is_usable())
            .finish()
    }
}

/// `space` as an offset into `lease`'s mapping, if `len` bytes from there fit in it.
fn offset_in(lease: &DsmLease, space: NonNull<u8>, len: usize) -> Result<usize, ShmMqError> {
    let base = lease.address().as_ptr() as usize;
    let at = space.as_ptr() as usize;
    let map_length = lease.map_length();
    let outside = ShmMqError::OutsideSegment {
        offset: at.wrapping_sub(base) as isize,
        size: len,
        map_length,
    };
    let offset = at.checked_sub(base).ok_or(outside.clone())?;
    match offset.checked_add(len) {
        Some(end) if end <= map_length => Ok(offset),
        _ => Err(outside),
    }
}

fn lease(seg: &DsmSegmentRef) -> Result<DsmLease, ShmMqError> {
    seg.lease().map_err(|_| ShmMqError::SegmentDetached {
        handle: seg.handle(),
    })
}

impl DsmMq {
    /// Initialises a queue in `size` bytes at `space` inside `seg`'s mapping
    /// ([`ShmMq::create`] there) and takes a lease on the mapping.
    ///
    /// Errors: [`ShmMqError::SegmentDetached`] (the segment is detached already),
    /// [`ShmMqError::OutsideSegment`] (the space does not lie inside the mapping), and those
    /// of [`ShmMq::create`].
    ///
    /// # Safety
    /// Nobody else may use `space..space+size` while this runs, and from now on it must only
    /// be accessed through this crate. (How long it stays mapped is the lease's business,
    /// not the caller's.)
    pub unsafe fn create(
        seg: &DsmSegmentRef,
        space: NonNull<u8>,
        size: usize,
    ) -> Result<DsmMq, ShmMqError> {
        let lease = lease(seg)?;
        let offset = offset_in(&lease, space, size)?;
        // SAFETY: the space lies inside the mapping, which `lease` keeps; exclusive use and
        // access through this crate are the caller's promise.
        let mq = unsafe { ShmMq::create(space.as_ptr(), size) }?;
        Ok(DsmMq {
            offset,
            ring_size: mq.ring_size(),
            lease,
        })
    }

    /// Refers to a queue that [`DsmMq::create`] (or [`ShmMq::create`]) initialised at `space`
    /// inside `seg`'s mapping, possibly in another process, and takes a lease on the mapping.
    /// The ring size is read once and checked against the mapping, so a scribbled header
    /// cannot make the queue reach past it.
    ///
    /// Errors: [`ShmMqError::SegmentDetached`], [`ShmMqError::Misaligned`],
    /// [`ShmMqError::OutsideSegment`] (the header or the ring it records does not fit).
    ///
    /// # Safety
    /// `space` must be the start of a queue created there (before this call, or by a process
    /// that cannot have run `create` concurrently), only accessed through this crate.
    pub unsafe fn from_raw(seg: &DsmSegmentRef, space: NonNull<u8>) -> Result<DsmMq, ShmMqError> {
        let lease = lease(seg)?;
        if (space.as_ptr() as usize) % MAXALIGN != 0 {
            return Err(ShmMqError::Misaligned {
                addr: space.as_ptr() as usize,
            });
        }
        let offset = offset_in(&lease, space, minimum_size())?;
        // SAFETY: the header lies inside the mapping (checked above), which `lease` keeps;
        // that it is an initialised queue is the caller's promise.
        let ring_size = unsafe { ShmMq::from_raw(space.as_ptr()) }.ring_size();
        let needed = ShmMq::RING_OFFSET.saturating_add(ring_size);
        if ring_size < MAXALIGN || ring_size % MAXALIGN != 0 {
            return Err(ShmMqError::OutsideSegment {
                offset: offset as isize,
                size: needed,
                map_length: lease.map_length(),
            });
        }
        offset_in(&lease, space, needed)?;
        Ok(DsmMq {
            lease,
            offset,
            ring_size,
        })
    }

    /// The queue, borrowed from `self` (so it cannot outlive the lease). Fails with
    /// [`ShmMqError::SegmentDetached`] once process exit gave the segment's reference back.
    pub fn queue(&self) -> Result<MqRef<'_>, ShmMqError> {
        if !self.lease.is_usable() {
            return Err(self.gone());
        }
        // SAFETY: `lease` keeps the mapping while `self` is borrowed; the header and ring
        // were checked to lie inside it.
        Ok(unsafe { self.queue_unbounded() })
    }

    /// The queue with a lifetime of the caller's choice.
    ///
    /// # Safety
    /// The reference must only be used while a lease on the mapping lives and is usable
    /// (or, for a detach callback, while the segment is still mapped).
    pub(crate) unsafe fn queue_unbounded<'x>(&self) -> MqRef<'x> {
        // SAFETY: forwarded; `offset..offset + RING_OFFSET + ring_size` is inside the mapping.
        unsafe {
            ShmMq::from_parts(
                self.lease.address().as_ptr().add(self.offset),
                self.ring_size,
            )
        }
    }

    /// Whether the queue's memory may still be used (see [`DsmLease::is_usable`]).
    pub fn is_usable(&self) -> bool {
        self.lease.is_usable()
    }

    /// The segment holding the queue.
    pub fn segment(&self) -> DsmSegmentRef {
        self.lease.segment()
    }

    pub(crate) fn gone(&self) -> ShmMqError {
        ShmMqError::SegmentDetached {
            handle: self.lease.handle(),
        }
    }
}
