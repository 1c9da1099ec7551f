//! The main-region pool ("Preallocated DSM", `min_dynamic_shared_memory`): segments carved
//! from the main segment in 4 KiB pages, so small, short-lived segments need no system call.
//!
//! ```text
//!  "Preallocated DSM" (a Shmem Index entry of min_dynamic_shared_memory bytes)
//!  ┌──────────────┬─────────────────────────┬────────────┬──────────┬────
//!  │ PoolHeader   │ bitmap, 1 bit per page: │ page k     │ page k+1 │ ...
//!  │ npages,      │ 1 = in use; the pages   │ (first     │          │ ...
//!  │ first_usable │ holding this metadata   │ usable)    │          │ ...
//!  │              │ are marked in use       │            │          │ ...
//!  └──────────────┴─────────────────────────┴────────────┴──────────┴────
//!  page i starts at pool base + i * 4096
//! ```
//!
//! The bitmap is read and written only under `DynamicSharedMemoryControlLock` (the same lock
//! as the control table; PostgreSQL keeps its FreePageManager under it too). Allocation is
//! first fit over contiguous free pages. Pages are not zeroed when reused.

use pgipc_shmem::{AllocationName, InitKind, Shmem, ShmemSafe};
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};

/// Page size of the pool (`FPM_PAGE_SIZE`).
pub const FPM_PAGE_SIZE: usize = 4096;
/// The pool's name in the Shmem Index.
pub const PREALLOCATED_DSM_NAME: &str = "Preallocated DSM";

/// Start of the pool.
///
/// Layout: `#[repr(C)]`, 16 bytes, then `ceil(npages / 64)` bitmap words. Written once by
/// the postmaster at init; the bitmap afterwards only under `DynamicSharedMemoryControlLock`.
#[repr(C)]
#[derive(Debug)]
pub struct PoolHeader {
    npages: AtomicU64,
    first_usable: AtomicU64,
}

// SAFETY: #[repr(C)], atomics only, valid when all-zero, no pointers.
unsafe impl ShmemSafe for PoolHeader {}

/// Bytes the pool takes for `min_dynamic_shared_memory` bytes (`dsm_estimate_size`): exactly
/// that (0 = no pool).
pub fn dsm_estimate_size(min_dynamic_shared_memory: usize) -> usize {
    min_dynamic_shared_memory
}

fn words(npages: usize) -> usize {
    npages.div_ceil(64)
}

/// Creates the pool in a new main segment (`dsm_shmem_init`); finds it in an attaching
/// process. Nothing when `min_dynamic_shared_memory` is 0 or smaller than two pages.
pub fn dsm_shmem_init(
    shmem: &Shmem,
    min_dynamic_shared_memory: usize,
) -> Result<(), pgipc_shmem::ShmemError> {
    let size = dsm_estimate_size(min_dynamic_shared_memory);
    if size < 2 * FPM_PAGE_SIZE {
        return Ok(());
    }
    let (off, kind) = shmem.init_raw(PREALLOCATED_DSM_NAME, size)?;
    if kind == InitKind::Created {
        let npages = size / FPM_PAGE_SIZE;
        let meta = size_of::<PoolHeader>() + 8 * words(npages);
        let reserved = meta.div_ceil(FPM_PAGE_SIZE);
        let pool = Pool::at(shmem, off, size)
            .ok_or(pgipc_shmem::ShmemError::OutOfSharedMemory { requested: size })?;
        pool.header().npages.store(npages as u64, Ordering::Relaxed);
        pool.header()
            .first_usable
            .store(reserved as u64, Ordering::Relaxed);
        for w in pool.bitmap() {
            w.store(0, Ordering::Relaxed);
        }
        pool.mark(0, reserved, true);
    }
    Ok(())
}

/// This process's view of the pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pool {
    base: *mut u8,
    npages: usize,
}

impl Pool {
    /// The pool at `off` (of `size` bytes) in `shmem`, if it fits there.
    fn at(shmem: &Shmem, off: u64, size: usize) -> Option<Pool> {
        let end = (off as usize).checked_add(size)?;
        if end > shmem.total_size() || off % 8 != 0 {
            return None;
        }
        Some(Pool {
            // The segment stays mapped while the `Shmem` (kept by the caller's context) lives.
            base: shmem.base().wrapping_add(off as usize) as *mut u8,
            npages: size / FPM_PAGE_SIZE,
        })
    }

    /// Finds the pool by name in the Shmem Index, if the server has one.
    pub(crate) fn find(shmem: &Shmem) -> Option<Pool> {
        let row =
            shmem.allocations().ok()?.into_iter().find(
                |r| matches!(&r.name, AllocationName::Named(n) if n == PREALLOCATED_DSM_NAME),
            )?;
        Pool::at(shmem, row.off?, row.size as usize)
    }

    fn header(&self) -> &PoolHeader {
        // SAFETY: `at` checked that the pool lies inside the mapped main segment and is
        // 8-aligned; the header is atomics only; the caller's context keeps the mapping.
        unsafe { &*(self.base as *const PoolHeader) }
    }

    fn bitmap(&self) -> &[AtomicU64] {
        // SAFETY: as for `header`: the words follow the header inside the pool (the pool is
        // at least two pages, and the metadata size was counted when it was created).
        unsafe {
            std::slice::from_raw_parts(
                self.base.add(size_of::<PoolHeader>()) as *const AtomicU64,
                words(self.npages),
            )
        }
    }

    fn used(&self, page: usize) -> bool {
        self.bitmap()[page / 64].load(Ordering::Relaxed) & (1 << (page % 64)) != 0
    }

    fn mark(&self, first: usize, n: usize, used: bool) {
        for p in first..first + n {
            let w = &self.bitmap()[p / 64];
            let bit = 1u64 << (p % 64);
            let v = w.load(Ordering::Relaxed);
            w.store(if used { v | bit } else { v & !bit }, Ordering::Relaxed);
        }
    }

    /// Takes `n` contiguous free pages, first fit. Caller holds the control lock.
    pub(crate) fn get(&self, n: usize) -> Option<usize> {
        let total = (self.header().npages.load(Ordering::Relaxed) as usize).min(self.npages);
        let mut start = self.header().first_usable.load(Ordering::Relaxed) as usize;
        let mut run = 0;
        let mut p = start;
        while p < total && n > 0 {
            if self.used(p) {
                run = 0;
                start = p + 1;
            } else {
                run += 1;
                if run == n {
                    self.mark(start, n, true);
                    return Some(start);
                }
            }
            p += 1;
        }
        None
    }

    /// Gives pages back. Caller holds the control lock.
    pub(crate) fn put(&self, first: usize, n: usize) {
        if first.checked_add(n).is_some_and(|end| end <= self.npages) {
            self.mark(first, n, false);
        }
    }

    /// Address of page `first` if `n` pages from there lie inside the pool.
    pub(crate) fn address(&self, first: usize, n: usize) -> Option<std::ptr::NonNull<u8>> {
        let end = first.checked_add(n)?;
        if n == 0 || end > self.npages {
            return None;
        }
        std::ptr::NonNull::new(self.base.wrapping_add(first * FPM_PAGE_SIZE))
    }
}
