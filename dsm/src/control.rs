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
/// the ordering.
#[repr(C)]
#[derive(Debug)]
pub struct DsmControlHeader {
    /// [`PG_DYNSHMEM_CONTROL_MAGIC`].
    pub magic: AtomicU32,
    /// Slots `[0, nitems)` have ever been used.
    pub nitems: AtomicU32,
    /// Size of the item table.
    pub maxitems: AtomicU32,
    _pad: u32,
}

/// One slot of the control table (PostgreSQL's `dsm_control_item`).
///
/// Layout: 32 bytes, `#[repr(C)]`. `refcnt` is 0 for a free slot, 1 for a segment being
/// created (the slot reserved under its handle before the OS segment exists) or destroyed (no
/// mapping remains), on which nobody may attach, and `1 + attached processes + pinned` for a
/// live one. Every field is written only under `DynamicSharedMemoryControlLock`
/// (except by the postmaster at start-up and after every child is gone).
#[repr(C)]
#[derive(Debug)]
pub struct DsmControlItem {
    /// The segment's handle.
    pub handle: AtomicU32,
    /// Reference count (see above).
    pub refcnt: AtomicU32,
    /// First page in the main-region pool (main-region segments only).
    pub first_page: AtomicU64,
    /// Pages in the main-region pool (main-region segments only).
    pub npages: AtomicU64,
    /// 1 while pinned by [`DsmSegmentRef::pin_segment`](crate::DsmSegmentRef::pin_segment).
    pub pinned: AtomicU32,
    _pad: u32,
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
