//! A fixed-capacity hash table in shared memory (what PostgreSQL's dynahash provides for shared
//! tables created with `ShmemInitHash` and `HASH_FIXED_SIZE`).
//!
//! ```text
//!  HashHeader | buckets: [u32; nbuckets] | entries: [Entry<K, V>; capacity]
//!  (offsets from the header; bucket and `next` links are entry index + 1, 0 = end of chain)
//! ```
//!
//! Concurrency: the table's own spinlock guards the chains, the free list and the keys, so every
//! operation is safe from any process. The *values* are the caller's: they are `ShmemSafe`
//! (atomics or shared locks), and which process may change them, and when an entry may be
//! removed while others still look at it, is the caller's lock protocol, as with dynahash.
//! Like dynahash's `HASH_ENTER`, a newly entered value is zero the first time a slot is used but
//! keeps a removed entry's old contents when a slot is reused: initialise it when
//! [`InitKind::Created`] comes back.

use crate::shared::{Shared, ShmemSafe};
use crate::size::{add_size, mul_size, type_align, SizeError};
use crate::InitKind;
use pgipc_lwlock::SpinLock;
use std::cell::UnsafeCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicU32, Ordering};

/// Header of a shared hash table.
///
/// # Layout
/// `#[repr(C)]`; the fields after `lock` are written once by the creator, except `nentries`,
/// `high_water` and `free_head`, which change under `lock`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct HashHeader {
    lock: SpinLock,
    nbuckets: AtomicU32,
    capacity: AtomicU32,
    nentries: AtomicU32,
    high_water: AtomicU32,
    free_head: AtomicU32,
    entry_size: AtomicU32,
    buckets_off: AtomicU32,
    entries_off: AtomicU32,
}
// SAFETY: repr(C), atomics and a shared spinlock; zero is valid.
unsafe impl ShmemSafe for HashHeader {}

#[repr(C)]
struct Entry<K, V> {
    next: AtomicU32,
    hash: AtomicU32,
    key: UnsafeCell<K>,
    value: V,
}

/// The table is full (PostgreSQL: `out of shared memory` from a fixed-size table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("out of shared memory: hash table is full ({capacity} entries)")]
pub struct HashFull {
    /// The table's capacity.
    pub capacity: u32,
}

/// A handle on a shared hash table mapping `K` to `V`.
pub struct SharedHash<K, V> {
    hdr: Shared<HashHeader>,
    _kv: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for SharedHash<K, V> {
    fn clone(&self) -> Self {
        SharedHash {
            hdr: self.hdr.clone(),
            _kv: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for SharedHash<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedHash")
            .field("capacity", &self.hdr.capacity.load(Ordering::Relaxed))
            .field("len", &self.hdr.nentries.load(Ordering::Relaxed))
            .finish()
    }
}

/// A stable FNV-1a hasher: every process must hash a key to the same bucket.
struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn hash_of<K: Hash>(k: &K) -> u32 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    k.hash(&mut h);
    let v = h.finish();
    (v ^ (v >> 32)) as u32
}

struct Geometry {
    nbuckets: usize,
    buckets_off: usize,
    entries_off: usize,
    total: usize,
}

impl<K, V> SharedHash<K, V>
where
    K: ShmemSafe + Copy + Eq + Hash,
    V: ShmemSafe,
{
    fn geometry(capacity: usize) -> Result<Geometry, SizeError> {
        let nbuckets = capacity
            .max(1)
            .checked_next_power_of_two()
            .ok_or(SizeError::Mul(capacity, 2))?;
        let buckets_off = type_align(align_of::<AtomicU32>(), size_of::<HashHeader>())?;
        let after_buckets = add_size(buckets_off, mul_size(nbuckets, size_of::<AtomicU32>())?)?;
        let entries_off = type_align(align_of::<Entry<K, V>>(), after_buckets)?;
        let total = add_size(entries_off, mul_size(capacity, size_of::<Entry<K, V>>())?)?;
        Ok(Geometry {
            nbuckets,
            buckets_off,
            entries_off,
            total,
        })
    }

    /// Bytes needed for a table of `capacity` entries (PostgreSQL's `hash_estimate_size`).
    pub fn shmem_size(capacity: usize) -> Result<usize, SizeError> {
        Ok(Self::geometry(capacity)?.total)
    }

    /// Sets up (when `kind` is `Created`) or checks a table whose memory `hdr` starts.
    ///
    /// # Safety
    /// `hdr` must start a region of at least `shmem_size(capacity)` bytes of this mapping, aligned
    /// to `align_of::<Entry<K, V>>()`, used for nothing else; when `kind` is `Attached` it must
    /// have been created with the same `K`, `V` and capacity.
    pub(crate) unsafe fn from_region(
        hdr: Shared<HashHeader>,
        capacity: usize,
        kind: InitKind,
    ) -> Result<Self, SizeError> {
        let g = Self::geometry(capacity)?;
        if kind == InitKind::Created {
            let h = &*hdr;
            let to_u32 = |v: usize| u32::try_from(v).map_err(|_| SizeError::Mul(v, 1));
            h.nbuckets.store(to_u32(g.nbuckets)?, Ordering::Relaxed);
            h.capacity.store(to_u32(capacity)?, Ordering::Relaxed);
            h.entry_size
                .store(to_u32(size_of::<Entry<K, V>>())?, Ordering::Relaxed);
            h.buckets_off
                .store(to_u32(g.buckets_off)?, Ordering::Relaxed);
            h.entries_off
                .store(to_u32(g.entries_off)?, Ordering::Relaxed);
            h.nentries.store(0, Ordering::Relaxed);
            h.high_water.store(0, Ordering::Relaxed);
            h.free_head.store(0, Ordering::Release);
        }
        Ok(SharedHash {
            hdr,
            _kv: PhantomData,
        })
    }

    fn bucket(&self, i: usize) -> &AtomicU32 {
        let off = self.hdr.buckets_off.load(Ordering::Relaxed) as usize;
        debug_assert!(i < self.hdr.nbuckets.load(Ordering::Relaxed) as usize);
        // SAFETY: from_region's contract: the bucket array lies at `off` and has nbuckets
        // AtomicU32s (zero = empty chain is valid).
        unsafe {
            &*self
                .hdr
                .as_ptr()
                .cast::<u8>()
                .add(off)
                .cast::<AtomicU32>()
                .add(i)
        }
    }

    fn entry(&self, link: u32) -> &Entry<K, V> {
        debug_assert!(link >= 1 && link <= self.hdr.capacity.load(Ordering::Relaxed));
        let off = self.hdr.entries_off.load(Ordering::Relaxed) as usize;
        // SAFETY: from_region's contract: `capacity` entries lie at `off`; links are index + 1 and
        // only ever point at slots below the high-water mark; Entry's fields are valid zeroed.
        unsafe {
            &*self
                .hdr
                .as_ptr()
                .cast::<u8>()
                .add(off)
                .cast::<Entry<K, V>>()
                .add(link as usize - 1)
        }
    }

    fn key_of(&self, e: &Entry<K, V>) -> K {
        // SAFETY: keys are read and written only while holding the table's spinlock.
        unsafe { *e.key.get() }
    }

    /// Finds `key`'s chain position; call with the spinlock held. Returns (prev link, link).
    fn locate(&self, key: &K, h: u32) -> (u32, u32) {
        let nb = self.hdr.nbuckets.load(Ordering::Relaxed);
        let mut prev = 0;
        let mut cur = self.bucket((h & (nb - 1)) as usize).load(Ordering::Relaxed);
        while cur != 0 {
            let e = self.entry(cur);
            if e.hash.load(Ordering::Relaxed) == h && self.key_of(e) == *key {
                return (prev, cur);
            }
            prev = cur;
            cur = e.next.load(Ordering::Relaxed);
        }
        (prev, 0)
    }

    /// Looks `key` up.
    pub fn find(&self, key: &K) -> Option<&V> {
        let h = hash_of(key);
        let _g = self.hdr.lock.lock();
        let (_, link) = self.locate(key, h);
        (link != 0).then(|| &self.entry(link).value)
    }

    /// Finds `key`, or enters it (PostgreSQL's `HASH_ENTER_NULL`): the value of a new entry is
    /// the caller's to initialise (see the module docs).
    pub fn enter(&self, key: &K) -> Result<(&V, InitKind), HashFull> {
        let h = hash_of(key);
        let _g = self.hdr.lock.lock();
        let (_, link) = self.locate(key, h);
        if link != 0 {
            return Ok((&self.entry(link).value, InitKind::Attached));
        }
        let hdr = &*self.hdr;
        let cap = hdr.capacity.load(Ordering::Relaxed);
        let link = match hdr.free_head.load(Ordering::Relaxed) {
            0 => {
                let hw = hdr.high_water.load(Ordering::Relaxed);
                if hw >= cap {
                    return Err(HashFull { capacity: cap });
                }
                hdr.high_water.store(hw + 1, Ordering::Relaxed);
                hw + 1
            }
            free => {
                hdr.free_head.store(
                    self.entry(free).next.load(Ordering::Relaxed),
                    Ordering::Relaxed,
                );
                free
            }
        };
        let e = self.entry(link);
        // SAFETY: the spinlock is held; the slot is off every chain, so nobody reads this key.
        unsafe { *e.key.get() = *key };
        e.hash.store(h, Ordering::Relaxed);
        let b = self.bucket((h & (hdr.nbuckets.load(Ordering::Relaxed) - 1)) as usize);
        e.next.store(b.load(Ordering::Relaxed), Ordering::Relaxed);
        b.store(link, Ordering::Relaxed);
        hdr.nentries.fetch_add(1, Ordering::Relaxed);
        Ok((&e.value, InitKind::Created))
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&self, key: &K) -> bool {
        let h = hash_of(key);
        let _g = self.hdr.lock.lock();
        let (prev, link) = self.locate(key, h);
        if link == 0 {
            return false;
        }
        let next = self.entry(link).next.load(Ordering::Relaxed);
        if prev == 0 {
            let nb = self.hdr.nbuckets.load(Ordering::Relaxed);
            self.bucket((h & (nb - 1)) as usize)
                .store(next, Ordering::Relaxed);
        } else {
            self.entry(prev).next.store(next, Ordering::Relaxed);
        }
        self.entry(link).next.store(
            self.hdr.free_head.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.hdr.free_head.store(link, Ordering::Relaxed);
        self.hdr.nentries.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.hdr.nentries.load(Ordering::Relaxed) as usize
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.hdr.capacity.load(Ordering::Relaxed) as usize
    }

    /// A snapshot of the entries (keys copied, values by reference), in no particular order.
    pub fn entries(&self) -> Vec<(K, &V)> {
        let _g = self.hdr.lock.lock();
        let nb = self.hdr.nbuckets.load(Ordering::Relaxed) as usize;
        let mut out = Vec::with_capacity(self.len());
        for b in 0..nb {
            let mut cur = self.bucket(b).load(Ordering::Relaxed);
            while cur != 0 {
                let e = self.entry(cur);
                out.push((self.key_of(e), &e.value));
                cur = e.next.load(Ordering::Relaxed);
            }
        }
        out
    }
}
