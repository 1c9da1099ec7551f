//! The main segment: its header, creation and attachment, the bump allocator and the Shmem Index.

use crate::hash::{HashHeader, SharedHash};
use crate::shared::{RelPtr, Shared, ShmemSafe};
use crate::size::{
    add_size, cachelinealign, maxalign, mul_size, type_align, SizeError, CACHE_LINE_SIZE,
};
use crate::sys::{self, Mapping};
use crate::{HugePages, HugePagesStatus, InitKind, SharedMemoryType, ShmemError};
use pgipc_lwlock::{
    LWLock, LWLockMode, LWLockPadded, LWLockProc, MainLWLockId, SpinLock, TrancheId, WaitSlot,
    NUM_INDIVIDUAL_LWLOCKS,
};
use std::any::Any;
use std::fmt;
use std::mem::{align_of, size_of};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// `PGShmemMagic`: marks a segment as ours.
pub const PG_SHMEM_MAGIC: i32 = 679_834_894;
/// Longest name of a Shmem Index entry, including PostgreSQL's terminating NUL.
pub const SHMEM_INDEX_KEYSIZE: usize = 48;
/// Capacity of the Shmem Index. PostgreSQL estimates 64 entries and lets the table grow; ours is
/// fixed, so it is sized with room for every subsystem plus add-ins.
pub const SHMEM_INDEX_SIZE: usize = 128;

/// The first bytes of the main segment (PostgreSQL's `PGShmemHeader`, plus the offsets that
/// PostgreSQL keeps in process globals and re-sends to exec'd children).
///
/// # Synchronisation
/// Written by the creator before any other process maps the segment, except: `freeoffset`
/// (advanced under the `ShmemLock` spinlock), `dsm_control` (set once by the postmaster's DSM
/// start-up) and `index_offset` (set once, before children exist).
///
/// The fields are private to this crate: the allocator and the start-up steps of [`Shmem`]
/// are their only writers, and other crates read them through the methods below, each of
/// which states what protects the value it returns.
#[repr(C)]
#[derive(Debug, Default)]
pub struct ShmemHeader {
    /// [`PG_SHMEM_MAGIC`].
    pub(crate) magic: AtomicI32,
    /// Pid of the creating process.
    pub(crate) creator_pid: AtomicI32,
    /// Length of the whole segment (may exceed the request after huge-page rounding).
    pub(crate) totalsize: AtomicU64,
    /// Offset of the first free byte: the bump pointer.
    pub(crate) freeoffset: AtomicU64,
    /// Handle of the DSM control segment (0 = none).
    pub(crate) dsm_control: AtomicU32,
    /// Number of [`ProcWaitSlot`]s reserved (PostgreSQL's semaphores).
    pub(crate) nwait_slots: AtomicU32,
    /// `st_dev` of the data directory (0 when not tied to one).
    pub(crate) device: AtomicU64,
    /// `st_ino` of the data directory.
    pub(crate) inode: AtomicU64,
    /// Offset of the `ShmemLock` spinlock.
    pub(crate) shmem_lock_offset: AtomicU64,
    /// Offset of the wait-slot array.
    pub(crate) wait_slots_offset: AtomicU64,
    /// Offset of the main LWLock array.
    pub(crate) lwlocks_offset: AtomicU64,
    /// Number of locks in the main LWLock array.
    pub(crate) nlwlocks: AtomicU64,
    /// Offset of the Shmem Index hash table.
    pub(crate) index_offset: AtomicU64,
}
// SAFETY: repr(C), atomics only, zero is valid.
unsafe impl ShmemSafe for ShmemHeader {}

impl ShmemHeader {
    /// [`PG_SHMEM_MAGIC`] once the creator has set the segment up. Written once by the creator
    /// before any other process maps the segment.
    pub fn magic(&self) -> i32 {
        self.magic.load(Ordering::Acquire)
    }

    /// Pid of the process that created the segment (the postmaster). Written once by the creator.
    pub fn creator_pid(&self) -> i32 {
        self.creator_pid.load(Ordering::Acquire)
    }

    /// Length of the whole segment in bytes. Written once by the creator.
    pub fn total_size(&self) -> u64 {
        self.totalsize.load(Ordering::Acquire)
    }

    /// Offset of the first free byte, the bump pointer. Advanced only by [`Shmem::alloc`] under
    /// the `ShmemLock` spinlock (and, before that lock exists, by the creator alone); read
    /// without the lock it is a snapshot that can only grow.
    pub fn free_offset(&self) -> u64 {
        self.freeoffset.load(Ordering::Acquire)
    }

    /// Handle of the DSM control segment (0 = none). Set once by the postmaster's DSM start-up
    /// ([`Shmem::set_dsm_control`]), before children exist.
    pub fn dsm_control(&self) -> u32 {
        self.dsm_control.load(Ordering::Acquire)
    }

    /// Number of wait slots reserved. Written once by the creator (`reserve_wait_slots`).
    pub fn nwait_slots(&self) -> u32 {
        self.nwait_slots.load(Ordering::Acquire)
    }

    /// `(st_dev, st_ino)` of the data directory the segment belongs to (`(0, 0)` when tied to
    /// none). Written once by the creator.
    pub fn data_dir_id(&self) -> (u64, u64) {
        (
            self.device.load(Ordering::Acquire),
            self.inode.load(Ordering::Acquire),
        )
    }
}

/// A name in the Shmem Index: up to 47 bytes, NUL-padded.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IndexKey([u8; SHMEM_INDEX_KEYSIZE]);

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndexKey({:?})", self.as_str())
    }
}
// SAFETY: plain bytes; zero is the empty name.
unsafe impl ShmemSafe for IndexKey {}

impl IndexKey {
    fn new(name: &str) -> Result<Self, ShmemError> {
        let b = name.as_bytes();
        // PostgreSQL silently truncates longer names (two names with a common 47-byte prefix then
        // collide); we refuse them instead.
        if b.len() >= SHMEM_INDEX_KEYSIZE || b.contains(&0) || b.is_empty() {
            return Err(ShmemError::BadName {
                name: name.to_owned(),
            });
        }
        let mut k = [0u8; SHMEM_INDEX_KEYSIZE];
        k[..b.len()].copy_from_slice(b);
        Ok(IndexKey(k))
    }

    fn as_str(&self) -> String {
        let end = self.0.iter().position(|&c| c == 0).unwrap_or(self.0.len());
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }
}

/// One Shmem Index entry's value (PostgreSQL's `ShmemIndexEnt` less the key).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct IndexEnt {
    /// Offset of the structure from the segment's start.
    pub(crate) location: AtomicU64,
    /// Bytes requested.
    pub(crate) size: AtomicU64,
    /// Bytes consumed (after cache-line rounding).
    pub(crate) allocated_size: AtomicU64,
}
// SAFETY: repr(C), atomics only, zero is valid.
unsafe impl ShmemSafe for IndexEnt {}

type ShmemIndex = SharedHash<IndexKey, IndexEnt>;

/// The name column of an allocation row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocationName {
    /// A named structure from the Shmem Index.
    Named(String),
    /// Everything allocated without a name (PostgreSQL's `<anonymous>` row).
    Anonymous,
    /// The free space at the end (PostgreSQL's row with a NULL name).
    Unused,
}

impl fmt::Display for AllocationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocationName::Named(n) => f.write_str(n),
            AllocationName::Anonymous => f.write_str("<anonymous>"),
            AllocationName::Unused => f.write_str("<unused>"),
        }
    }
}

/// One row of `pg_shmem_allocations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRow {
    /// The structure's name.
    pub name: AllocationName,
    /// Offset from the segment's start (`None` for the anonymous row, as PostgreSQL's NULL).
    pub off: Option<u64>,
    /// Bytes requested.
    pub size: u64,
    /// Bytes consumed.
    pub allocated_size: u64,
}

/// How to create the main segment.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// Bytes wanted (rounded up to the huge page size when huge pages are used).
    pub size: usize,
    /// Anonymous mapping or memfd.
    pub kind: SharedMemoryType,
    /// Whether to use huge pages.
    pub huge_pages: HugePages,
    /// Huge page size to use, in bytes (`None` = the system default).
    pub huge_page_size: Option<usize>,
    /// `(st_dev, st_ino)` of the data directory, recorded in the header.
    pub data_dir_id: Option<(u64, u64)>,
}

impl SegmentOptions {
    /// An anonymous segment of `size` bytes without huge pages, tied to no data directory.
    pub fn new(size: usize) -> Self {
        SegmentOptions {
            size,
            kind: SharedMemoryType::Mmap,
            huge_pages: HugePages::Off,
            huge_page_size: None,
            data_dir_id: None,
        }
    }
}

struct Inner {
    map: Mapping,
    fd: Option<OwnedFd>,
    huge_pages: HugePagesStatus,
    my_procno: AtomicU32,
}

/// This process's handle on the main shared-memory segment. Cheap to clone; the mapping goes
/// away with the last clone (and every [`Shared`] view made from it).
#[derive(Clone)]
pub struct Shmem {
    inner: Arc<Inner>,
}

impl fmt::Debug for Shmem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shmem")
            .field("base", &self.inner.map.base)
            .field("totalsize", &self.total_size())
            .field(
                "freeoffset",
                &self.header().freeoffset.load(Ordering::Relaxed),
            )
            .field("memfd", &self.inner.fd.is_some())
            .finish()
    }
}

const NO_PROC: u32 = u32::MAX;

impl Shmem {
    /// Maps a new segment and writes its header (PostgreSQL's `PGSharedMemoryCreate` for the
    /// mapping part, then `InitShmemAccess`). The interlock is separate: see [`crate::Interlock`].
    pub fn create(opts: &SegmentOptions) -> Result<Shmem, ShmemError> {
        let min = maxalign(size_of::<ShmemHeader>())?;
        if opts.size < min {
            return Err(ShmemError::OutOfSharedMemory { requested: min });
        }
        let want_huge = opts.huge_pages != HugePages::Off;
        let attempt = |huge: bool| -> Result<(Mapping, Option<OwnedFd>, usize), ShmemError> {
            let size = if huge {
                let hp = opts
                    .huge_page_size
                    .or_else(sys::default_huge_page_size)
                    .ok_or(ShmemError::HugePagesUnsupported)?;
                type_align(hp, opts.size)?
            } else {
                opts.size
            };
            let map_err = |e| ShmemError::Map {
                size,
                huge,
                source: e,
            };
            match opts.kind {
                SharedMemoryType::Mmap => {
                    Ok((sys::map_anonymous(size, huge).map_err(map_err)?, None, size))
                }
                SharedMemoryType::Memfd => {
                    let fd = sys::memfd(c"pgipc-main", size, huge).map_err(map_err)?;
                    let map = sys::map_fd(fd.as_fd(), size).map_err(map_err)?;
                    Ok((map, Some(fd), size))
                }
            }
        };
        let (map, fd, size, status) = if want_huge {
            match attempt(true) {
                Ok((m, f, s)) => (m, f, s, HugePagesStatus::On),
                Err(e) if opts.huge_pages == HugePages::On => return Err(e),
                Err(e) => {
                    tracing::debug!("mmap with huge pages failed, huge pages disabled: {e}");
                    let (m, f, s) = attempt(false)?;
                    (m, f, s, HugePagesStatus::Off)
                }
            }
        } else {
            let (m, f, s) = attempt(false)?;
            (m, f, s, HugePagesStatus::Off)
        };
        let shmem = Shmem {
            inner: Arc::new(Inner {
                map,
                fd,
                huge_pages: status,
                my_procno: AtomicU32::new(NO_PROC),
            }),
        };
        let h = shmem.header();
        h.creator_pid
            .store(std::process::id() as i32, Ordering::Relaxed);
        h.totalsize.store(size as u64, Ordering::Relaxed);
        h.freeoffset.store(min as u64, Ordering::Relaxed);
        if let Some((dev, ino)) = opts.data_dir_id {
            h.device.store(dev, Ordering::Relaxed);
            h.inode.store(ino, Ordering::Relaxed);
        }
        h.magic.store(PG_SHMEM_MAGIC, Ordering::Release);
        Ok(shmem)
    }

    /// Maps an existing memfd-backed segment handed down by the postmaster (an exec'd child's
    /// side of `PGSharedMemoryReAttach`).
    pub fn attach_fd(fd: OwnedFd) -> Result<Shmem, ShmemError> {
        let len = sys::fd_len(&fd).map_err(|e| ShmemError::Attach {
            reason: format!("fstat failed: {e}"),
        })?;
        if len < size_of::<ShmemHeader>() {
            return Err(ShmemError::Attach {
                reason: format!("segment of {len} bytes is too small"),
            });
        }
        let map = sys::map_fd(fd.as_fd(), len).map_err(|e| ShmemError::Map {
            size: len,
            huge: false,
            source: e,
        })?;
        let shmem = Shmem {
            inner: Arc::new(Inner {
                map,
                fd: Some(fd),
                huge_pages: HugePagesStatus::Unknown,
                my_procno: AtomicU32::new(NO_PROC),
            }),
        };
        let h = shmem.header();
        if h.magic.load(Ordering::Acquire) != PG_SHMEM_MAGIC {
            return Err(ShmemError::Attach {
                reason: "bad magic number".into(),
            });
        }
        if h.totalsize.load(Ordering::Relaxed) != len as u64 {
            return Err(ShmemError::Attach {
                reason: format!(
                    "header says {} bytes, the segment has {len}",
                    h.totalsize.load(Ordering::Relaxed)
                ),
            });
        }
        if h.index_offset.load(Ordering::Acquire) == 0 {
            return Err(ShmemError::Attach {
                reason: "the Shmem Index was never created".into(),
            });
        }
        Ok(shmem)
    }

    /// A memfd-backed segment of `size` bytes with `nslots` wait slots, its allocator, main
    /// LWLocks and Shmem Index ready: what tests and examples need to share memory with
    /// processes they spawn (hand [`memfd`](Self::memfd) to the child, which calls
    /// [`attach_fd`](Self::attach_fd)). Test-only: behind the `testing` feature, which the
    /// crates' dev-dependencies on this crate enable.
    #[cfg(any(test, feature = "testing"))]
    pub fn create_for_tests_with(size: usize, nslots: usize) -> Result<Shmem, ShmemError> {
        let mut opts = SegmentOptions::new(size);
        opts.kind = SharedMemoryType::Memfd;
        let shmem = Shmem::create(&opts)?;
        shmem.reserve_wait_slots(nslots)?;
        shmem.init_allocation()?;
        shmem.create_lwlocks(&[])?;
        shmem.init_index()?;
        Ok(shmem)
    }

    /// [`create_for_tests_with`](Self::create_for_tests_with) with 128 wait slots.
    #[cfg(any(test, feature = "testing"))]
    pub fn create_for_tests(size: usize) -> Result<Shmem, ShmemError> {
        Self::create_for_tests_with(size, 128)
    }

    fn keep(&self) -> Arc<dyn Any + Send + Sync> {
        self.inner.clone()
    }

    /// The segment header.
    pub fn header(&self) -> &ShmemHeader {
        // SAFETY: every segment starts with a ShmemHeader (atomics only, valid zeroed), the base
        // is page aligned, and the mapping lives as long as `self`.
        unsafe { &*self.inner.map.base.as_ptr().cast::<ShmemHeader>() }
    }

    /// Length of the whole segment.
    pub fn total_size(&self) -> usize {
        self.inner.map.len
    }

    /// Address of the segment in this process (differs between processes in exec mode).
    pub fn base(&self) -> *const u8 {
        self.inner.map.base.as_ptr()
    }

    /// The memfd behind the segment, if it has one (to hand to an exec'd child).
    pub fn memfd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.fd.as_ref().map(|f| f.as_fd())
    }

    /// Whether the creator got huge pages (`Unknown` in a process that only attached).
    pub fn huge_pages_status(&self) -> HugePagesStatus {
        self.inner.huge_pages
    }

    /// Offset of `ptr` from the segment start, if it points inside the segment
    /// (PostgreSQL's `ShmemAddrIsValid`).
    pub fn offset_of<T: ?Sized>(&self, ptr: *const T) -> Option<u64> {
        let p = ptr.cast::<u8>() as usize;
        let b = self.base() as usize;
        (p >= b && p < b + self.total_size()).then(|| (p - b) as u64)
    }

    /// A typed view at `offset`, checked for bounds and alignment.
    pub fn view<T: ShmemSafe>(&self, offset: u64) -> Option<Shared<T>> {
        let off = usize::try_from(offset).ok()?;
        let end = off.checked_add(size_of::<T>())?;
        if off == 0 || end > self.total_size() || off % align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: in bounds and aligned (checked above); T is ShmemSafe so any bytes there,
        // including zeros, are a valid T only mutated through atomics; `keep` holds the mapping.
        Some(unsafe {
            Shared::from_raw(
                NonNull::new_unchecked(self.base().add(off) as *mut T),
                self.keep(),
            )
        })
    }

    /// A typed slice view of `len` elements at `offset`, checked for bounds and alignment.
    pub fn view_slice<T: ShmemSafe>(&self, offset: u64, len: usize) -> Option<Shared<[T]>> {
        let off = usize::try_from(offset).ok()?;
        let end = off.checked_add(size_of::<T>().checked_mul(len)?)?;
        if off == 0 || end > self.total_size() || off % align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: as in `view`, for `len` consecutive elements.
        Some(unsafe {
            let p = std::ptr::slice_from_raw_parts_mut(self.base().add(off) as *mut T, len);
            Shared::from_raw(NonNull::new_unchecked(p), self.keep())
        })
    }

    /// Resolves a [`RelPtr`] into this segment.
    pub fn resolve<T: ShmemSafe>(&self, p: RelPtr<T>) -> Option<Shared<T>> {
        self.view(p.offset())
    }

    // ---- the allocator ----

    fn bump(&self, size: usize) -> Option<u64> {
        let h = self.header();
        let total = h.totalsize.load(Ordering::Relaxed);
        let old = h.freeoffset.load(Ordering::Relaxed);
        let new = old.checked_add(size as u64)?;
        if new > total {
            return None;
        }
        h.freeoffset.store(new, Ordering::Relaxed);
        Some(old)
    }

    /// Allocates without the allocator lock (PostgreSQL's `ShmemAllocUnlocked`): only for the
    /// creator before [`init_allocation`](Self::init_allocation), when no other process exists.
    /// The size is rounded up to 8 bytes.
    pub fn alloc_unlocked(&self, size: usize) -> Result<u64, ShmemError> {
        let size = maxalign(size)?;
        self.bump(size)
            .ok_or(ShmemError::OutOfSharedMemory { requested: size })
    }

    fn shmem_lock(&self) -> Option<Shared<SpinLock>> {
        self.view(self.header().shmem_lock_offset.load(Ordering::Acquire))
    }

    /// Allocates `size` bytes rounded up to a cache line; returns the offset and the allocated
    /// size, or `None` when the segment is full (PostgreSQL's `ShmemAllocRaw`).
    fn alloc_raw(&self, size: usize) -> Result<Option<(u64, usize)>, ShmemError> {
        let size = cachelinealign(size)?;
        let lock = self.shmem_lock().ok_or(ShmemError::NotInitialized)?;
        let _g = lock.lock();
        Ok(self.bump(size).map(|off| (off, size)))
    }

    /// Allocates anonymous space, cache-line aligned (PostgreSQL's `ShmemAlloc`); returns its
    /// offset. Exhaustion is an error naming the caller's size.
    pub fn alloc(&self, size: usize) -> Result<u64, ShmemError> {
        self.alloc_raw(size)?
            .map(|(off, _)| off)
            .ok_or(ShmemError::OutOfSharedMemory { requested: size })
    }

    /// Like [`alloc`](Self::alloc) but `None` on exhaustion (PostgreSQL's `ShmemAllocNoError`).
    pub fn alloc_no_error(&self, size: usize) -> Option<u64> {
        self.alloc_raw(size).ok().flatten().map(|(off, _)| off)
    }

    // ---- start-up steps, in ipci's order ----

    /// Reserves the per-process wait slots (PostgreSQL's `PGReserveSemaphores`: one semaphore
    /// per PGPROC that can sleep, allocated before the allocator lock exists).
    pub fn reserve_wait_slots(&self, n: usize) -> Result<(), ShmemError> {
        let h = self.header();
        if h.wait_slots_offset.load(Ordering::Relaxed) != 0 {
            return Err(ShmemError::AlreadyInitialized { what: "wait slots" });
        }
        let n32 = u32::try_from(n).map_err(|_| SizeError::Mul(n, size_of::<WaitSlot>()))?;
        let bytes = mul_size(n, size_of::<WaitSlot>())?;
        // Align the array to its element (a padded cache line) by bumping a little padding first.
        let free = h.freeoffset.load(Ordering::Relaxed) as usize;
        let pad = type_align(align_of::<WaitSlot>(), free)? - free;
        let off = self.alloc_unlocked(add_size(pad, bytes)?)? + pad as u64;
        h.nwait_slots.store(n32, Ordering::Relaxed);
        h.wait_slots_offset.store(off, Ordering::Release);
        Ok(())
    }

    /// Creates the `ShmemLock` spinlock and aligns the bump pointer to a cache line
    /// (PostgreSQL's `InitShmemAllocation`). Every later allocation is cache-line aligned.
    pub fn init_allocation(&self) -> Result<(), ShmemError> {
        let h = self.header();
        if h.shmem_lock_offset.load(Ordering::Relaxed) != 0 {
            return Err(ShmemError::AlreadyInitialized {
                what: "the allocator",
            });
        }
        let off = self.alloc_unlocked(size_of::<SpinLock>())?;
        let free = h.freeoffset.load(Ordering::Relaxed) as usize;
        let aligned = cachelinealign(free)?;
        self.alloc_unlocked(aligned - free)?;
        h.shmem_lock_offset.store(off, Ordering::Release);
        if let Some(l) = self.shmem_lock() {
            l.init();
        }
        Ok(())
    }

    /// Size of the main LWLock array for `extra` add-in locks (PostgreSQL's `LWLockShmemSize`).
    pub fn lwlocks_size(extra: usize) -> Result<usize, SizeError> {
        mul_size(
            add_size(NUM_INDIVIDUAL_LWLOCKS, extra)?,
            size_of::<LWLockPadded>(),
        )
    }

    /// Creates the main LWLock array: the individual locks, then `extra` locks for add-in named
    /// tranches, each given as `(tranche, how many)` (PostgreSQL's `CreateLWLocks`).
    pub fn create_lwlocks(&self, extra: &[(TrancheId, usize)]) -> Result<(), ShmemError> {
        let h = self.header();
        if h.lwlocks_offset.load(Ordering::Relaxed) != 0 {
            return Err(ShmemError::AlreadyInitialized {
                what: "the main LWLock array",
            });
        }
        let n_extra = extra
            .iter()
            .try_fold(0usize, |acc, (_, n)| add_size(acc, *n))?;
        let n = add_size(NUM_INDIVIDUAL_LWLOCKS, n_extra)?;
        let off = self.alloc(Self::lwlocks_size(n_extra)?)?;
        h.lwlocks_offset.store(off, Ordering::Release);
        h.nlwlocks.store(n as u64, Ordering::Release);
        let locks = self.lwlocks();
        for (i, l) in locks.iter().take(NUM_INDIVIDUAL_LWLOCKS).enumerate() {
            l.init(TrancheId(i as u16));
        }
        let mut next = NUM_INDIVIDUAL_LWLOCKS;
        for (tranche, count) in extra {
            for l in &locks[next..next + count] {
                l.init(*tranche);
            }
            next += count;
        }
        Ok(())
    }

    /// Creates the Shmem Index (PostgreSQL's `InitShmemIndex`). Its own space is anonymous.
    pub fn init_index(&self) -> Result<(), ShmemError> {
        let h = self.header();
        if h.index_offset.load(Ordering::Relaxed) != 0 {
            return Err(ShmemError::AlreadyInitialized {
                what: "the Shmem Index",
            });
        }
        let size = ShmemIndex::shmem_size(SHMEM_INDEX_SIZE)?;
        let off = self.alloc(size)?;
        let hdr: Shared<HashHeader> = self.view(off).ok_or(ShmemError::NotInitialized)?;
        // SAFETY: a fresh, cache-line-aligned region of exactly shmem_size(SHMEM_INDEX_SIZE)
        // bytes, used for nothing else.
        unsafe { ShmemIndex::from_region(hdr, SHMEM_INDEX_SIZE, InitKind::Created)? };
        h.index_offset.store(off, Ordering::Release);
        Ok(())
    }

    /// Size of the Shmem Index (what ipci adds for it).
    pub fn index_size() -> Result<usize, SizeError> {
        ShmemIndex::shmem_size(SHMEM_INDEX_SIZE)
    }

    fn index(&self) -> Result<ShmemIndex, ShmemError> {
        let hdr: Shared<HashHeader> = self
            .view(self.header().index_offset.load(Ordering::Acquire))
            .ok_or(ShmemError::NotInitialized)?;
        // SAFETY: index_offset points at the table init_index created with these types and
        // capacity (the segment's magic was checked when this process mapped it).
        Ok(unsafe { ShmemIndex::from_region(hdr, SHMEM_INDEX_SIZE, InitKind::Attached)? })
    }

    // ---- locks ----

    /// The wait slots, one per proc number.
    pub fn wait_slots(&self) -> &[WaitSlot] {
        let h = self.header();
        let n = h.nwait_slots.load(Ordering::Acquire) as usize;
        match self.view_slice::<WaitSlot>(h.wait_slots_offset.load(Ordering::Acquire), n) {
            // SAFETY: the slice lies inside the mapping, which `self` keeps alive.
            Some(s) => unsafe { &*s.as_ptr() },
            None => &[],
        }
    }

    /// The main LWLock array (individual locks first, then add-in tranches).
    pub fn lwlocks(&self) -> &[LWLockPadded] {
        let h = self.header();
        let n = h.nlwlocks.load(Ordering::Acquire) as usize;
        match self.view_slice::<LWLockPadded>(h.lwlocks_offset.load(Ordering::Acquire), n) {
            // SAFETY: the slice lies inside the mapping, which `self` keeps alive.
            Some(s) => unsafe { &*s.as_ptr() },
            None => &[],
        }
    }

    /// One of the individually named LWLocks.
    ///
    /// # Panics
    /// Never once the segment is initialised; before [`create_lwlocks`](Self::create_lwlocks) the
    /// array is empty, which is a start-up ordering bug.
    pub fn main_lwlock(&self, id: MainLWLockId) -> &LWLock {
        &self.lwlocks()[id as usize]
    }

    /// Records this process's proc number (or `None`), used by [`lwlock_proc`](Self::lwlock_proc).
    pub fn set_proc_number(&self, procno: Option<u32>) {
        self.inner
            .my_procno
            .store(procno.unwrap_or(NO_PROC), Ordering::Relaxed);
    }

    /// This process's identity for taking LWLocks in this segment.
    pub fn lwlock_proc(&self) -> LWLockProc<'_> {
        let slots = self.wait_slots();
        match self.inner.my_procno.load(Ordering::Relaxed) {
            NO_PROC => LWLockProc::without_slot(slots),
            n => LWLockProc::new(slots, n).unwrap_or_else(|_| LWLockProc::without_slot(slots)),
        }
    }

    // ---- the DSM control handle ----

    /// The DSM control segment's handle recorded in the header (0 = none).
    pub fn dsm_control(&self) -> u32 {
        self.header().dsm_control.load(Ordering::Acquire)
    }

    /// Records the DSM control segment's handle in the header.
    pub fn set_dsm_control(&self, handle: u32) {
        self.header().dsm_control.store(handle, Ordering::Release);
    }

    // ---- create or attach by name ----

    /// Finds the structure `name` or allocates `size` bytes for it (PostgreSQL's
    /// `ShmemInitStruct`). Returns its offset and whether it was created now.
    pub fn init_raw(&self, name: &str, size: usize) -> Result<(u64, InitKind), ShmemError> {
        let key = IndexKey::new(name)?;
        let index = self.index()?;
        let me = self.lwlock_proc();
        let _g = self
            .main_lwlock(MainLWLockId::ShmemIndex)
            .acquire(&me, LWLockMode::Exclusive);
        let (ent, kind) = index.enter(&key).map_err(|_| ShmemError::IndexFull {
            name: name.to_owned(),
        })?;
        if kind == InitKind::Attached {
            let expected = ent.size.load(Ordering::Relaxed) as usize;
            if expected != size {
                return Err(ShmemError::SizeMismatch {
                    name: name.to_owned(),
                    expected,
                    actual: size,
                });
            }
            return Ok((ent.location.load(Ordering::Relaxed), InitKind::Attached));
        }
        match self.alloc_raw(size)? {
            Some((off, allocated)) => {
                ent.location.store(off, Ordering::Relaxed);
                ent.size.store(size as u64, Ordering::Relaxed);
                ent.allocated_size
                    .store(allocated as u64, Ordering::Relaxed);
                Ok((off, InitKind::Created))
            }
            None => {
                index.remove(&key);
                Err(ShmemError::NotEnoughForStruct {
                    name: name.to_owned(),
                    requested: size,
                })
            }
        }
    }

    /// Finds the structure `name` without creating it: its offset and size, or `None` if the
    /// segment has none (a reader's lookup, under ShmemIndexLock shared).
    pub fn find_raw(&self, name: &str) -> Option<(u64, usize)> {
        let key = IndexKey::new(name).ok()?;
        let index = self.index().ok()?;
        let me = self.lwlock_proc();
        let _g = self
            .main_lwlock(MainLWLockId::ShmemIndex)
            .acquire(&me, LWLockMode::Shared);
        let ent = index.find(&key)?;
        Some((
            ent.location.load(Ordering::Relaxed),
            ent.size.load(Ordering::Relaxed) as usize,
        ))
    }

    /// Finds or creates the `T` named `name`. A created one is all-zero; initialise it when
    /// [`InitKind::Created`] comes back, before other processes can look for it.
    pub fn init_struct<T: ShmemSafe>(
        &self,
        name: &str,
    ) -> Result<(Shared<T>, InitKind), ShmemError> {
        check_align::<T>(name)?;
        let (off, kind) = self.init_raw(name, size_of::<T>())?;
        let v = self.view(off).ok_or(ShmemError::NotInitialized)?;
        Ok((v, kind))
    }

    /// Finds or creates an array of `len` `T`s named `name` (zero-filled when created).
    pub fn init_slice<T: ShmemSafe>(
        &self,
        name: &str,
        len: usize,
    ) -> Result<(Shared<[T]>, InitKind), ShmemError> {
        check_align::<T>(name)?;
        let (off, kind) = self.init_raw(name, mul_size(len, size_of::<T>())?)?;
        let v = self
            .view_slice(off, len)
            .ok_or(ShmemError::NotInitialized)?;
        Ok((v, kind))
    }

    /// Finds or creates a shared hash table of fixed `capacity` named `name` (PostgreSQL's
    /// `ShmemInitHash` with `init_size == max_size`).
    pub fn init_hash<K, V>(
        &self,
        name: &str,
        capacity: usize,
    ) -> Result<(SharedHash<K, V>, InitKind), ShmemError>
    where
        K: ShmemSafe + Copy + Eq + std::hash::Hash,
        V: ShmemSafe,
    {
        let size = SharedHash::<K, V>::shmem_size(capacity)?;
        let (off, kind) = self.init_raw(name, size)?;
        let hdr: Shared<HashHeader> = self.view(off).ok_or(ShmemError::NotInitialized)?;
        // SAFETY: init_raw returned a cache-line-aligned region of exactly this size reserved for
        // `name`; a found region was created by this same call shape (same size checked).
        let table = unsafe { SharedHash::from_region(hdr, capacity, kind)? };
        Ok((table, kind))
    }

    /// The rows of PostgreSQL's `pg_shmem_allocations`: named structures (sorted by offset),
    /// then `<anonymous>`, then the unused tail.
    pub fn allocations(&self) -> Result<Vec<AllocationRow>, ShmemError> {
        let index = self.index()?;
        let me = self.lwlock_proc();
        let _g = self
            .main_lwlock(MainLWLockId::ShmemIndex)
            .acquire(&me, LWLockMode::Shared);
        let mut rows: Vec<AllocationRow> = index
            .entries()
            .into_iter()
            .map(|(k, e)| AllocationRow {
                name: AllocationName::Named(k.as_str()),
                off: Some(e.location.load(Ordering::Relaxed)),
                size: e.size.load(Ordering::Relaxed),
                allocated_size: e.allocated_size.load(Ordering::Relaxed),
            })
            .collect();
        rows.sort_by_key(|r| r.off);
        let named: u64 = rows.iter().map(|r| r.allocated_size).sum();
        let h = self.header();
        let free = h.freeoffset.load(Ordering::Relaxed);
        let total = h.totalsize.load(Ordering::Relaxed);
        rows.push(AllocationRow {
            name: AllocationName::Anonymous,
            off: None,
            size: free - named,
            allocated_size: free - named,
        });
        rows.push(AllocationRow {
            name: AllocationName::Unused,
            off: Some(free),
            size: total - free,
            allocated_size: total - free,
        });
        Ok(rows)
    }
}

fn check_align<T>(name: &str) -> Result<(), ShmemError> {
    if align_of::<T>() > CACHE_LINE_SIZE {
        return Err(ShmemError::Alignment {
            name: name.to_owned(),
            align: align_of::<T>(),
        });
    }
    Ok(())
}
