//! The control segment's layout: a header and a table of slots, one per live segment.

use pgipc_dsm_impl::{DsmHandle, Mapping};
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Magic number at the start of a control segment (`PG_DYNSHMEM_CONTROL_MAGIC`).
pub const PG_DYNSHMEM_CONTROL_MAGIC: u32 = 0x9a50_3d32;
/// Slots every server has, whatever its size (`PG_DYNSHMEM_FIXED_SLOTS`).
pub const PG_DYNSHMEM_FIXED_SLOTS: u32 = 64;
/// Extra slots per backend (`PG_DYNSHMEM_SLOTS_PER_BACKEND`).
pub const PG_DYNSHMEM_SLOTS_PER_BACKEND: u32 = 5;

/// Start of the control segment.
///
/// Layout: 16 bytes, `#[repr(C)]`; the item table follows at offset 16.
/// Synchronization: `magic` and `maxitems` are written once by the postmaster before any
/// child exists. `nitems` (high-water mark of used slots, never shrinks) is written only
/// under `DynamicSharedMemoryControlLock`. The fields are atomics so that the postmaster's
/// unlocked reads after a crash are defined; all accesses are `Relaxed` and the lock gives
/// the ordering. The fields are private to this crate; [`control_items_from_bytes`] reads a
/// copy.
#[repr(C)]
#[derive(Debug)]
pub struct DsmControlHeader {
    /// [`PG_DYNSHMEM_CONTROL_MAGIC`].
    pub(crate) magic: AtomicU32,
    /// Slots `[0, nitems)` have ever been used.
    pub(crate) nitems: AtomicU32,
    /// Size of the item table.
    pub(crate) maxitems: AtomicU32,
    _pad: u32,
}

/// One slot of the control table (PostgreSQL's `dsm_control_item`).
///
/// Layout: 32 bytes, `#[repr(C)]`. `refcnt` is 0 for a free slot, 1 for a segment being
/// created (the slot reserved under its handle before the OS segment exists) or destroyed (no
/// mapping remains), on which nobody may attach, and `1 + attached processes + pinned` for a
/// live one. Every field is written only under `DynamicSharedMemoryControlLock`
/// (except by the postmaster at start-up and after every child is gone), all by this crate:
/// the fields are private to it.
#[repr(C)]
#[derive(Debug)]
pub struct DsmControlItem {
    /// The segment's handle.
    pub(crate) handle: AtomicU32,
    /// Reference count (see above).
    pub(crate) refcnt: AtomicU32,
    /// First page in the main-region pool (main-region segments only).
    pub(crate) first_page: AtomicU64,
    /// Pages in the main-region pool (main-region segments only).
    pub(crate) npages: AtomicU64,
    /// 1 while pinned by [`DsmSegmentRef::pin_segment`](crate::DsmSegmentRef::pin_segment).
    pub(crate) pinned: AtomicU32,
    _pad: u32,
}

/// The `(handle, refcnt)` of every slot a control segment has ever used (`[0, nitems)`), read
/// from a *copy* of its bytes (a file under `/dev/shm`, say) as a clean-up tool or a test would;
/// `None` when the bytes are not a control segment (wrong magic, or shorter than `nitems`
/// says). Reads no live memory, so it takes no lock.
pub fn control_items_from_bytes(bytes: &[u8]) -> Option<Vec<(DsmHandle, u32)>> {
    let u32_at = |off: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(
            bytes.get(off..off + 4)?.try_into().ok()?,
        ))
    };
    if u32_at(std::mem::offset_of!(DsmControlHeader, magic))? != PG_DYNSHMEM_CONTROL_MAGIC {
        return None;
    }
    let nitems = u32_at(std::mem::offset_of!(DsmControlHeader, nitems))? as usize;
    (0..nitems)
        .map(|i| {
            let item = size_of::<DsmControlHeader>() + i * size_of::<DsmControlItem>();
            Some((
                u32_at(item + std::mem::offset_of!(DsmControlItem, handle))?,
                u32_at(item + std::mem::offset_of!(DsmControlItem, refcnt))?,
            ))
        })
        .collect()
}

/// Bytes a control segment with `maxitems` slots needs (`dsm_control_bytes_needed`);
/// `None` on overflow.
pub fn control_bytes_needed(maxitems: u32) -> Option<usize> {
    size_of::<DsmControlItem>()
        .checked_mul(maxitems as usize)?
        .checked_add(size_of::<DsmControlHeader>())
}

/// Slots for a server with `max_backends` backends: 64 + 5 per backend.
pub fn control_max_items(max_backends: u32) -> Option<u32> {
    PG_DYNSHMEM_SLOTS_PER_BACKEND
        .checked_mul(max_backends)?
        .checked_add(PG_DYNSHMEM_FIXED_SLOTS)
}

/// A validated view of a mapped control segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ControlView<'m> {
    pub(crate) header: &'m DsmControlHeader,
    pub(crate) items: &'m [DsmControlItem],
}

impl<'m> ControlView<'m> {
    /// Checks that `m` holds a control segment one can trust (`dsm_control_segment_sane`):
    /// big enough for its header, the right magic, `maxitems` slots fit, `nitems <= maxitems`.
    pub(crate) fn sane(m: &'m Mapping) -> Option<ControlView<'m>> {
        let base = m.addr().as_ptr();
        if m.size() < size_of::<DsmControlHeader>() || base as usize % align_of::<u64>() != 0 {
            return None;
        }
        // SAFETY: the mapping is at least a header long and 8-aligned (checked above, and
        // mappings are page-aligned); the header is made of atomics, valid for any bytes.
        let header = unsafe { &*(base as *const DsmControlHeader) };
        if header.magic.load(Ordering::Relaxed) != PG_DYNSHMEM_CONTROL_MAGIC {
            return None;
        }
        let maxitems = header.maxitems.load(Ordering::Relaxed);
        match control_bytes_needed(maxitems) {
            Some(n) if n <= m.size() => {}
            _ => return None,
        }
        if header.nitems.load(Ordering::Relaxed) > maxitems {
            return None;
        }
        // SAFETY: `maxitems` items fit in the mapping after the header (checked above); the
        // items are atomics, valid for any bytes; the view lives no longer than `m`.
        let items = unsafe {
            std::slice::from_raw_parts(
                base.add(size_of::<DsmControlHeader>()) as *const DsmControlItem,
                maxitems as usize,
            )
        };
        Some(ControlView { header, items })
    }

    /// Writes a fresh header into a just-created segment and returns its view.
    pub(crate) fn init(m: &'m Mapping, maxitems: u32) -> Option<ControlView<'m>> {
        if control_bytes_needed(maxitems)? > m.size() {
            return None;
        }
        // SAFETY: as in `sane`: the mapping holds at least a header, page-aligned.
        let header = unsafe { &*(m.addr().as_ptr() as *const DsmControlHeader) };
        header.maxitems.store(maxitems, Ordering::Relaxed);
        header.nitems.store(0, Ordering::Relaxed);
        header
            .magic
            .store(PG_DYNSHMEM_CONTROL_MAGIC, Ordering::Release);
        ControlView::sane(m)
    }

    /// Slots `[0, nitems)`.
    pub(crate) fn used(&self) -> &'m [DsmControlItem] {
        let n = self.header.nitems.load(Ordering::Relaxed) as usize;
        &self.items[..n.min(self.items.len())]
    }
}

/// Whether `h` names a segment of the main-region pool (odd handles, PostgreSQL 18).
pub fn is_main_region_dsm_handle(h: DsmHandle) -> bool {
    h & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_from_a_copy_of_the_bytes() {
        let mut b = vec![0u8; control_bytes_needed(4).unwrap()];
        let put = |b: &mut Vec<u8>, off: usize, v: u32| {
            b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        };
        put(
            &mut b,
            std::mem::offset_of!(DsmControlHeader, magic),
            PG_DYNSHMEM_CONTROL_MAGIC,
        );
        put(&mut b, std::mem::offset_of!(DsmControlHeader, maxitems), 4);
        put(&mut b, std::mem::offset_of!(DsmControlHeader, nitems), 2);
        for (i, (h, r)) in [(42u32, 2u32), (7, 0)].into_iter().enumerate() {
            let item = size_of::<DsmControlHeader>() + i * size_of::<DsmControlItem>();
            put(
                &mut b,
                item + std::mem::offset_of!(DsmControlItem, handle),
                h,
            );
            put(
                &mut b,
                item + std::mem::offset_of!(DsmControlItem, refcnt),
                r,
            );
        }
        assert_eq!(control_items_from_bytes(&b), Some(vec![(42, 2), (7, 0)]));
        // Truncated before the slots nitems claims, or not a control segment at all.
        assert_eq!(
            control_items_from_bytes(&b[..size_of::<DsmControlHeader>() + 8]),
            None
        );
        put(&mut b, 0, 1);
        assert_eq!(control_items_from_bytes(&b), None);
        assert_eq!(control_items_from_bytes(&[]), None);
    }
}
