//! The 16-byte invalidation message (PostgreSQL's `SharedInvalidationMessage` union).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// An object identifier.
pub type Oid = u32;

/// Message id of a catalog-wide invalidation (`SHAREDINVALCATALOG_ID`).
pub const SHAREDINVALCATALOG_ID: i8 = -1;
/// Message id of a relcache invalidation (`SHAREDINVALRELCACHE_ID`).
pub const SHAREDINVALRELCACHE_ID: i8 = -2;
/// Message id of a storage-manager invalidation (`SHAREDINVALSMGR_ID`).
pub const SHAREDINVALSMGR_ID: i8 = -3;
/// Message id of a relation-map invalidation (`SHAREDINVALRELMAP_ID`).
pub const SHAREDINVALRELMAP_ID: i8 = -4;
/// Message id of a catalog-snapshot invalidation (`SHAREDINVALSNAPSHOT_ID`).
pub const SHAREDINVALSNAPSHOT_ID: i8 = -5;
/// Message id of a relation-sync invalidation (`SHAREDINVALRELSYNC_ID`, new in 18).
pub const SHAREDINVALRELSYNC_ID: i8 = -6;

/// One invalidation message: 16 bytes whose first byte says what the rest means.
///
/// # Layout
/// `#[repr(C, align(4))]`, 16 bytes, laid out as PostgreSQL's union on little-endian machines:
/// byte 0 is the signed id (≥ 0: a catcache id; < 0: one of the `SHAREDINVAL*_ID`
/// constants); the database OID is bytes 4..8 and the second OID or hash bytes 8..12 for every
/// kind but the smgr one, which puts its backend number in bytes 1..4 and a relation file
/// locator (tablespace, database, relation number) in bytes 4..16.
///
/// The ring treats messages as opaque; the constructors and accessors are for producers,
/// consumers and tests.
#[repr(C, align(4))]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SharedInvalidationMessage {
    bytes: [u8; 16],
}

impl fmt::Debug for SharedInvalidationMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedInvalidationMessage")
            .field("id", &self.id())
            .field("words", &self.words())
            .finish()
    }
}

impl SharedInvalidationMessage {
    /// A message from its raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        SharedInvalidationMessage { bytes }
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    fn with_id_and_words(id: i8, w1: u32, w2: u32, w3: u32) -> Self {
        let mut bytes = [0u8; 16];
        bytes[0] = id as u8;
        bytes[4..8].copy_from_slice(&w1.to_le_bytes());
        bytes[8..12].copy_from_slice(&w2.to_le_bytes());
        bytes[12..16].copy_from_slice(&w3.to_le_bytes());
        SharedInvalidationMessage { bytes }
    }

    /// A catcache entry invalidation: cache `cache_id` (≥ 0), database, hash of the key.
    pub fn catcache(cache_id: i8, db_id: Oid, hash_value: u32) -> Self {
        Self::with_id_and_words(cache_id.max(0), db_id, hash_value, 0)
    }

    /// Invalidate a whole catalog's cache.
    pub fn catalog(db_id: Oid, cat_id: Oid) -> Self {
        Self::with_id_and_words(SHAREDINVALCATALOG_ID, db_id, cat_id, 0)
    }

    /// Invalidate a relcache entry (`rel_id` 0 = all of them).
    pub fn relcache(db_id: Oid, rel_id: Oid) -> Self {
        Self::with_id_and_words(SHAREDINVALRELCACHE_ID, db_id, rel_id, 0)
    }

    /// Close a relation's storage-manager files. `backend` is the owning proc number of a
    /// temporary relation (24 bits, -1 for none).
    pub fn smgr(backend: i32, spc_oid: Oid, db_oid: Oid, rel_number: u32) -> Self {
        let mut m = Self::with_id_and_words(SHAREDINVALSMGR_ID, spc_oid, db_oid, rel_number);
        m.bytes[1] = (backend >> 16) as u8;
        m.bytes[2..4].copy_from_slice(&((backend & 0xffff) as u16).to_le_bytes());
        m
    }

    /// Reload a relation map (`db_id` 0 = the shared map).
    pub fn relmap(db_id: Oid) -> Self {
        Self::with_id_and_words(SHAREDINVALRELMAP_ID, db_id, 0, 0)
    }

    /// Invalidate the catalog snapshot.
    pub fn snapshot(db_id: Oid, rel_id: Oid) -> Self {
        Self::with_id_and_words(SHAREDINVALSNAPSHOT_ID, db_id, rel_id, 0)
    }

    /// Invalidate a relation-sync entry (logical replication; `rel_id` 0 = all).
    pub fn relsync(db_id: Oid, rel_id: Oid) -> Self {
        Self::with_id_and_words(SHAREDINVALRELSYNC_ID, db_id, rel_id, 0)
    }

    /// The id byte: a catcache id (≥ 0) or a `SHAREDINVAL*_ID`.
    pub const fn id(&self) -> i8 {
        self.bytes[0] as i8
    }

    /// Bytes 4..16 as three little-endian words (database OID first for most kinds).
    pub fn words(&self) -> [u32; 3] {
        let w = |i: usize| {
            u32::from_le_bytes([
                self.bytes[i],
                self.bytes[i + 1],
                self.bytes[i + 2],
                self.bytes[i + 3],
            ])
        };
        [w(4), w(8), w(12)]
    }

    /// The backend number of an smgr message (sign-extended from 24 bits).
    pub fn smgr_backend(&self) -> i32 {
        let hi = i32::from(self.bytes[1] as i8);
        let lo = i32::from(u16::from_le_bytes([self.bytes[2], self.bytes[3]]));
        (hi << 16) | lo
    }

    fn to_words(self) -> [u32; 4] {
        let b = self.bytes;
        std::array::from_fn(|i| {
            u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
        })
    }

    fn from_words(w: [u32; 4]) -> Self {
        let mut bytes = [0u8; 16];
        for (i, x) in w.iter().enumerate() {
            bytes[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
        }
        SharedInvalidationMessage { bytes }
    }
}

/// One ring entry in shared memory: a message as four atomic words.
///
/// Writers fill entries under `SInvalWriteLock` before publishing `maxMsgNum`; readers copy only
/// entries below the `maxMsgNum` they read, and writers never overwrite an entry an active,
/// non-reset reader still needs. Relaxed atomics are enough; the ordering comes from
/// `msgnumLock`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct MessageCell([AtomicU32; 4]);

// SAFETY: repr(C), atomics only, zero is valid, no pointers.
unsafe impl pgipc_shmem::ShmemSafe for MessageCell {}

impl MessageCell {
    pub(crate) fn store(&self, m: SharedInvalidationMessage) {
        for (c, w) in self.0.iter().zip(m.to_words()) {
            c.store(w, Ordering::Relaxed);
        }
    }

    pub(crate) fn load(&self) -> SharedInvalidationMessage {
        SharedInvalidationMessage::from_words(std::array::from_fn(|i| {
            self.0[i].load(Ordering::Relaxed)
        }))
    }
}
