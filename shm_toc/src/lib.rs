//! A table of contents inside a shared memory segment: named chunks that processes mapping
//! the segment at different addresses can find by key.
//!
//! Mirrors PostgreSQL's `storage/ipc/shm_toc.c`. The creator of a segment (usually a
//! `pgipc_dsm` segment) places a [`ShmToc`] at its start, carves chunks off the *end* with
//! [`ShmToc::allocate`] and publishes each chunk's position under a 64-bit key with
//! [`ShmToc::insert`]; other processes [`ShmToc::attach`] by magic number and
//! [`ShmToc::lookup`] the keys. Positions are stored as offsets from the TOC's start.
//!
//! ```text
//!  base: 32-byte aligned (DSM mappings are page aligned)
//!  ▼                                                                        base + total_bytes ▼
//!  ┌────────────── header (40 B) ───────────────┬───────── entries ►  free  ◄ chunks ──────────┐
//!  │ magic │ mutex │ total │ allocated │ nentry │ {key,offset} ... │        │ ... c1 │ c0      │
//!  └────────────────────────────────────────────┴──────────────────────────────────────────────┘
//!  total_bytes = nbytes rounded down to 32; entries grow forward from the header, chunks
//!  (sizes rounded up to 32) backward from the end; both allocate and insert check
//!  header + entries + chunks <= total_bytes.
//! ```
//!
//! # Concurrency contract
//! * `magic` and `total_bytes` are written once, by [`ShmToc::create`], before the segment
//!   is shared.
//! * `allocated_bytes`, `nentry` and the entries are written only under the spinlock
//!   `mutex`, by any process (usually only the creator).
//! * [`ShmToc::lookup`] takes no lock: an entry is written completely before `nentry` is
//!   raised with release ordering, and readers load `nentry` with acquire ordering, so a
//!   reader sees either n or n + 1 complete entries, never a half-written one (PostgreSQL's
//!   write and read barriers).
//!
//! # What this crate does not do
//! * No freeing: a TOC only grows. No duplicate-key check (the first entry wins).
//! * No mapping of its own: [`ShmToc::create`] and [`ShmToc::attach`] take an address the
//!   caller vouches for (hence `unsafe`), as PostgreSQL's take a pointer.
//!
//! Key items: [`ShmToc`], [`ShmTocEstimator`], [`ShmTocError`].

use pgipc_lwlock::SpinLock;
use pgipc_shmem::{add_size, mul_size, SizeError, ALIGNOF_BUFFER};
use std::fmt;
use std::marker::PhantomData;
use std::mem::{offset_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The header at the start of a TOC (PostgreSQL's `shm_toc`).
///
/// Layout: `#[repr(C)]`, 40 bytes on 64-bit, entries follow at offset 40. See the crate docs
/// for who writes which field.
#[repr(C)]
#[derive(Debug)]
pub struct ShmTocHeader {
    magic: AtomicU64,
    mutex: SpinLock,
    total_bytes: AtomicU64,
    allocated_bytes: AtomicU64,
    nentry: AtomicU32,
}

/// One entry: a key and the chunk's offset from the TOC's start (`shm_toc_entry`).
///
/// Layout: `#[repr(C)]`, 16 bytes. Written once under the mutex before `nentry` counts it.
#[repr(C)]
#[derive(Debug)]
pub struct ShmTocEntry {
    key: AtomicU64,
    offset: AtomicU64,
}

/// Where the entry array starts (`offsetof(shm_toc, toc_entry)`).
pub const TOC_ENTRIES_OFFSET: usize = size_of::<ShmTocHeader>();

/// Errors, with PostgreSQL's texts where it has them.
#[derive(Debug, thiserror::Error)]
pub enum ShmTocError {
    /// No room for a chunk or an entry (SQLSTATE 53200).
    #[error("out of shared memory")]
    OutOfSharedMemory {
        /// Bytes the failed request needed.
        requested: usize,
    },
    /// The space does not start with a TOC of this magic number (PostgreSQL's callers say
    /// "bad magic number in dynamic shared memory segment", SQLSTATE 55000).
    #[error("bad magic number in dynamic shared memory segment (expected {expected:#x}, found {found:#x})")]
    BadMagic {
        /// The magic asked for.
        expected: u64,
        /// The magic found.
        found: u64,
    },
    /// A key that is not in the table ([`ShmToc::lookup_required`], SQLSTATE XX000).
    #[error("could not find key {key} in shm TOC at {base:#x}")]
    KeyNotFound {
        /// The key.
        key: u64,
        /// The TOC's address in this process.
        base: usize,
    },
    /// The space cannot hold even the header.
    #[error("shm TOC space of {nbytes} bytes is too small")]
    TooSmall {
        /// The space offered.
        nbytes: usize,
    },
    /// An address passed to [`ShmToc::insert`] is not inside the TOC's space.
    #[error("address {addr:#x} is outside the shm TOC at {base:#x}")]
    OutsideToc {
        /// The address.
        addr: usize,
        /// The TOC's address in this process.
        base: usize,
    },
    /// Size arithmetic overflowed.
    #[error(transparent)]
    Size(#[from] SizeError),
}

impl ShmTocError {
    /// PostgreSQL's SQLSTATE for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ShmTocError::OutOfSharedMemory { .. } => "53200",
            ShmTocError::BadMagic { .. } => "55000",
            ShmTocError::Size(e) => e.sqlstate(),
            _ => "XX000",
        }
    }
}

/// `BUFFERALIGN`: rounds up to 32; `None` on overflow.
fn buffer_align(n: usize) -> Option<usize> {
    Some(n.checked_add(ALIGNOF_BUFFER - 1)? & !(ALIGNOF_BUFFER - 1))
}

/// `BUFFERALIGN_DOWN`.
fn buffer_align_down(n: usize) -> usize {
    n & !(ALIGNOF_BUFFER - 1)
}

/// A TOC in this process's mapping of a segment (PostgreSQL's `shm_toc *`).
#[derive(Clone, Copy)]
pub struct ShmToc<'a> {
    base: NonNull<u8>,
    _space: PhantomData<&'a [u8]>,
}

// SAFETY: a ShmToc is an address of shared memory whose fields are atomics and a spinlock;
// every access goes through them, so sharing or sending the view between threads is as safe
// as sharing it between processes.
unsafe impl Send for ShmToc<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for ShmToc<'_> {}

impl fmt::Debug for ShmToc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.header();
        f.debug_struct("ShmToc")
            .field("base", &self.base)
            .field("magic", &h.magic.load(Ordering::Relaxed))
            .field("total_bytes", &h.total_bytes.load(Ordering::Relaxed))
            .field(
                "allocated_bytes",
                &h.allocated_bytes.load(Ordering::Relaxed),
            )
            .field("nentry", &h.nentry.load(Ordering::Relaxed))
            .finish()
    }
}

impl<'a> ShmToc<'a> {
    /// Lays out an empty TOC with `magic` at `address`, owning `nbytes` bytes
    /// (`shm_toc_create`). Only `nbytes` rounded down to 32 is used.
    ///
    /// # Safety
    /// `address..address + nbytes` must be writable memory, shared or not, aligned to 32
    /// bytes, that stays mapped for `'a` and that nobody else uses until this call returns.
    pub unsafe fn create(
        magic: u64,
        address: *mut u8,
        nbytes: usize,
    ) -> Result<ShmToc<'a>, ShmTocError> {
        let total = buffer_align_down(nbytes);
        let base = NonNull::new(address).ok_or(ShmTocError::TooSmall { nbytes })?;
        if total <= TOC_ENTRIES_OFFSET || address as usize % ALIGNOF_BUFFER != 0 {
            return Err(ShmTocError::TooSmall { nbytes });
        }
        let toc = ShmToc {
            base,
            _space: PhantomData,
        };
        let h = toc.header();
        h.mutex.init();
        h.total_bytes.store(total as u64, Ordering::Relaxed);
        h.allocated_bytes.store(0, Ordering::Relaxed);
        h.nentry.store(0, Ordering::Relaxed);
        h.magic.store(magic, Ordering::Release);
        Ok(toc)
    }

    /// Finds the TOC with `magic` at `address` (`shm_toc_attach`); another magic number is
    /// [`ShmTocError::BadMagic`].
    ///
    /// # Safety
    /// `address` must be 8-aligned and point to at least the 40-byte header, mapped for
    /// `'a`; if the magic matches, to the whole space a [`create`](Self::create) with that
    /// magic laid out there.
    pub unsafe fn attach(magic: u64, address: *mut u8) -> Result<ShmToc<'a>, ShmTocError> {
        let base = NonNull::new(address).ok_or(ShmTocError::TooSmall { nbytes: 0 })?;
        let toc = ShmToc {
            base,
            _space: PhantomData,
        };
        let found = toc.header().magic.load(Ordering::Acquire);
        if found != magic {
            return Err(ShmTocError::BadMagic {
                expected: magic,
                found,
            });
        }
        Ok(toc)
    }

    fn header(&self) -> &'a ShmTocHeader {
        // SAFETY: `create`/`attach` callers vouched for a mapped, aligned header living for
        // 'a; every field is an atomic or a spinlock (itself an atomic), valid for any bytes.
        unsafe { &*(self.base.as_ptr() as *const ShmTocHeader) }
    }

    fn entry(&self, i: usize) -> &'a ShmTocEntry {
        // SAFETY: callers only pass i < nentry, or i == nentry after checking room under the
        // mutex; every such entry lies inside total_bytes, mapped for 'a.
        unsafe {
            &*(self
                .base
                .as_ptr()
                .add(TOC_ENTRIES_OFFSET + i * size_of::<ShmTocEntry>())
                as *const ShmTocEntry)
        }
    }

    /// The TOC's address in this process.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Usable bytes (`nbytes` of create rounded down to 32).
    pub fn total_bytes(&self) -> usize {
        self.header().total_bytes.load(Ordering::Relaxed) as usize
    }

    /// Entries published so far.
    pub fn nentry(&self) -> u32 {
        self.header().nentry.load(Ordering::Acquire)
    }

    /// Takes `nbytes` (rounded up to 32) from the end of the free space and returns its start
    /// (`shm_toc_allocate`); 32-byte aligned. [`ShmTocError::OutOfSharedMemory`] when the
    /// chunk would overlap the entries.
    pub fn allocate(&self, nbytes: usize) -> Result<NonNull<u8>, ShmTocError> {
        let off = self.allocate_offset(nbytes)?;
        // SAFETY: `off < total_bytes`, inside the space vouched for at create/attach.
        Ok(unsafe { NonNull::new_unchecked(self.base.as_ptr().add(off)) })
    }

    /// [`allocate`](Self::allocate), returning the chunk's offset from the TOC's start.
    pub fn allocate_offset(&self, nbytes: usize) -> Result<usize, ShmTocError> {
        let oom = ShmTocError::OutOfSharedMemory { requested: nbytes };
        let n = buffer_align(nbytes).ok_or(oom)?;
        let h = self.header();
        let _g = h.mutex.lock();
        let total = h.total_bytes.load(Ordering::Relaxed) as usize;
        let allocated = h.allocated_bytes.load(Ordering::Relaxed) as usize;
        let nentry = h.nentry.load(Ordering::Relaxed) as usize;
        let used = TOC_ENTRIES_OFFSET + nentry * size_of::<ShmTocEntry>() + allocated;
        match used.checked_add(n) {
            Some(u) if u <= total => {}
            _ => return Err(ShmTocError::OutOfSharedMemory { requested: nbytes }),
        }
        let allocated = allocated + n;
        h.allocated_bytes.store(allocated as u64, Ordering::Relaxed);
        Ok(total - allocated)
    }

    /// Bytes still free for chunks (`shm_toc_freespace`).
    pub fn freespace(&self) -> usize {
        let h = self.header();
        let _g = h.mutex.lock();
        let total = h.total_bytes.load(Ordering::Relaxed) as usize;
        let allocated = h.allocated_bytes.load(Ordering::Relaxed) as usize;
        let nentry = h.nentry.load(Ordering::Relaxed) as usize;
        let toc_bytes = TOC_ENTRIES_OFFSET + nentry * size_of::<ShmTocEntry>();
        let toc_bytes = buffer_align(toc_bytes).unwrap_or(usize::MAX);
        total.saturating_sub(allocated.saturating_add(toc_bytes))
    }

    /// Publishes `address` (inside the TOC's space) under `key` (`shm_toc_insert`).
    pub fn insert(&self, key: u64, address: NonNull<u8>) -> Result<(), ShmTocError> {
        let base = self.base.as_ptr() as usize;
        let addr = address.as_ptr() as usize;
        match addr.checked_sub(base) {
            Some(off) if off > 0 && off < self.total_bytes() => self.insert_offset(key, off),
            _ => Err(ShmTocError::OutsideToc { addr, base }),
        }
    }

    /// Publishes the chunk at `offset` from the TOC's start under `key`.
    pub fn insert_offset(&self, key: u64, offset: usize) -> Result<(), ShmTocError> {
        let h = self.header();
        let _g = h.mutex.lock();
        let total = h.total_bytes.load(Ordering::Relaxed) as usize;
        if offset == 0 || offset >= total {
            return Err(ShmTocError::OutsideToc {
                addr: self.base.as_ptr() as usize + offset,
                base: self.base.as_ptr() as usize,
            });
        }
        let allocated = h.allocated_bytes.load(Ordering::Relaxed) as usize;
        let nentry = h.nentry.load(Ordering::Relaxed);
        let used = TOC_ENTRIES_OFFSET + nentry as usize * size_of::<ShmTocEntry>() + allocated;
        if used + size_of::<ShmTocEntry>() > total || nentry == u32::MAX {
            return Err(ShmTocError::OutOfSharedMemory {
                requested: size_of::<ShmTocEntry>(),
            });
        }
        let e = self.entry(nentry as usize);
        e.key.store(key, Ordering::Relaxed);
        e.offset.store(offset as u64, Ordering::Relaxed);
        // Release: the entry is complete before a lock-free reader can count it.
        h.nentry.store(nentry + 1, Ordering::Release);
        Ok(())
    }

    /// The chunk published under `key`, or `None` (`shm_toc_lookup` with `noError`).
    /// Lock-free. The first entry with the key wins.
    pub fn lookup(&self, key: u64) -> Option<NonNull<u8>> {
        let off = self.lookup_offset(key)?;
        // SAFETY: `off < total_bytes` (checked in lookup_offset), inside the mapped space.
        Some(unsafe { NonNull::new_unchecked(self.base.as_ptr().add(off)) })
    }

    /// [`lookup`](Self::lookup), returning the offset from the TOC's start. Entries whose
    /// offset lies outside the space (scribbled memory) are ignored.
    pub fn lookup_offset(&self, key: u64) -> Option<usize> {
        let h = self.header();
        // Acquire: pairs with the release in insert; entries below n are complete.
        let n = h.nentry.load(Ordering::Acquire) as usize;
        let total = self.total_bytes();
        let max = total.saturating_sub(TOC_ENTRIES_OFFSET) / size_of::<ShmTocEntry>();
        (0..n.min(max))
            .map(|i| self.entry(i))
            .find(|e| e.key.load(Ordering::Relaxed) == key)
            .map(|e| e.offset.load(Ordering::Relaxed) as usize)
            .filter(|&off| off > 0 && off < total)
    }

    /// [`lookup`](Self::lookup) where a missing key is an error (`shm_toc_lookup` without
    /// `noError`).
    pub fn lookup_required(&self, key: u64) -> Result<NonNull<u8>, ShmTocError> {
        self.lookup(key).ok_or(ShmTocError::KeyNotFound {
            key,
            base: self.base.as_ptr() as usize,
        })
    }
}

/// Adds up the space a TOC will need (PostgreSQL's `shm_toc_estimator` and its macros).
/// The estimate is an upper bound of what [`ShmToc::create`] followed by the same
/// allocations and insertions consumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShmTocEstimator {
    /// Bytes of chunks, each rounded up to 32.
    pub space_for_chunks: usize,
    /// Keys to be inserted.
    pub number_of_keys: usize,
}

impl ShmTocEstimator {
    /// An empty estimate (`shm_toc_initialize_estimator`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a chunk of `nbytes` (`shm_toc_estimate_chunk`).
    pub fn estimate_chunk(&mut self, nbytes: usize) -> Result<&mut Self, SizeError> {
        let n = buffer_align(nbytes).ok_or(SizeError::Add(nbytes, ALIGNOF_BUFFER - 1))?;
        self.space_for_chunks = add_size(self.space_for_chunks, n)?;
        Ok(self)
    }

    /// Counts `count` keys (`shm_toc_estimate_keys`).
    pub fn estimate_keys(&mut self, count: usize) -> Result<&mut Self, SizeError> {
        self.number_of_keys = add_size(self.number_of_keys, count)?;
        Ok(self)
    }

    /// The bytes to give [`ShmToc::create`] (`shm_toc_estimate`).
    pub fn estimate(&self) -> Result<usize, SizeError> {
        let sz = add_size(
            TOC_ENTRIES_OFFSET,
            mul_size(self.number_of_keys, size_of::<ShmTocEntry>())?,
        )?;
        let sz = add_size(sz, self.space_for_chunks)?;
        buffer_align(sz).ok_or(SizeError::Add(sz, ALIGNOF_BUFFER - 1))
    }
}

const _: () = assert!(offset_of!(ShmTocHeader, nentry) == 32);
const _: () = assert!(size_of::<ShmTocHeader>() == 40);
const _: () = assert!(size_of::<ShmTocEntry>() == 16);

#[cfg(test)]
mod tests;
