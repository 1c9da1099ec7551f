//! The main shared-memory segment: mapping, interlock, bump allocator, Shmem Index and shared
//! hash tables.
//!
//! Mirrors PostgreSQL's `storage/ipc/shmem.c` and the Unix parts of `port/sysv_shmem.c`. One
//! segment is created by the postmaster before any child exists; everything in it is carved out
//! by a bump allocator that never frees, and named structures are found through the Shmem Index
//! ("create or attach by name").
//!
//! ```text
//!  offset 0                                                               totalsize
//!  ┌────────────┬──────────────┬─────────┬───────────┬─────────────────┬───────────┐
//!  │ShmemHeader │ WaitSlot     │ShmemLock│ LWLock    │ ShmemIndex,     │  unused   │
//!  │ magic, pid │ [n] (one per │ spinlock│ Padded    │ then named and  │           │
//!  │ freeoffset │ proc, 128 B) │ + pad   │ (128 B ea)│ anonymous allocs│           │
//!  └────────────┴──────────────┴─────────┴───────────┴─────────────────┴───────────┘
//!    unlocked allocations ─────────────┘ └─ every allocation from here on starts on a
//!                                            128-byte boundary; freeoffset ──────────┘
//!
//!  System V interlock segment (one page, keyed from the data directory's inode):
//!  magic, creator pid, data dir dev/ino, DSM control handle; its attach count = live processes
//! ```
//!
//! # Concurrency contract
//! * The header's offsets are written by the creator before any other process maps the segment.
//!   The header's fields (and the interlock's) are private to this crate; other crates read
//!   them through [`ShmemHeader`]'s and [`InterlockHeader`]'s methods, which say who writes each.
//! * `freeoffset` advances only under the `ShmemLock` spinlock ([`Shmem::alloc`]); before that
//!   lock exists only the creator allocates ([`Shmem::alloc_unlocked`]).
//! * The Shmem Index changes only under the `ShmemIndex` LWLock (exclusive for
//!   [`Shmem::init_raw`], shared for [`Shmem::allocations`]).
//! * A structure returned with [`InitKind::Created`] is all-zero; its creator initialises it
//!   before anyone else can look it up, which holds because creation happens in the postmaster
//!   before children exist (or under a lock of the caller's).
//! * Nothing in the segment is a pointer: positions are offsets ([`RelPtr`]) or indexes, so exec'd
//!   children can map it anywhere ([`Shmem::attach_fd`]).
//!
//! # What this crate does not do
//! * It never frees: no allocation is returned, as in PostgreSQL.
//! * It does not know the subsystems or their order: `ipci` calls the start-up steps
//!   ([`Shmem::reserve_wait_slots`], [`Shmem::init_allocation`], [`Shmem::create_lwlocks`],
//!   [`Shmem::init_index`]) and every subsystem's init.
//! * No System V main segment (`shared_memory_type = sysv`): the segment is an anonymous mapping
//!   or a memfd; System V is used only for the interlock.
//! * No NUMA view (`pg_shmem_allocations_numa`).
//!
//! Key types: [`Shmem`], [`Shared`], [`ShmemSafe`], [`RelPtr`], [`SharedHash`], [`Interlock`].

mod hash;
mod interlock;
mod segment;
mod shared;
mod size;
mod sys;

pub use hash::{HashFull, HashHeader, SharedHash};
pub use interlock::{Interlock, InterlockHeader, InterlockReport, SegmentState};
pub use segment::{
    AllocationName, AllocationRow, SegmentOptions, Shmem, ShmemHeader, PG_SHMEM_MAGIC,
    SHMEM_INDEX_KEYSIZE, SHMEM_INDEX_SIZE,
};
pub use shared::{RelPtr, Shared, ShmemSafe};
pub use size::{
    add_size, cachelinealign, maxalign, mul_size, type_align, SizeError, ALIGNOF_BUFFER,
    CACHE_LINE_SIZE, MAXIMUM_ALIGNOF,
};
pub use sys::default_huge_page_size;

use std::io;
use std::path::PathBuf;

/// Whether a structure was created by this call or already existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    /// Created now (all-zero): the caller initialises it.
    Created,
    /// Found in the index: somebody else created it.
    Attached,
}

/// How the main segment is backed (the `shared_memory_type` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedMemoryType {
    /// `MAP_SHARED | MAP_ANONYMOUS`: inherited by forked children only (PostgreSQL's default).
    Mmap,
    /// A memfd mapped shared: forked children inherit it and exec'd children attach through the
    /// inherited descriptor.
    Memfd,
}

/// The `huge_pages` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugePages {
    /// Never use huge pages.
    Off,
    /// Use them if the system can; fall back silently.
    Try,
    /// Use them or fail to start.
    On,
}

/// The `huge_pages_status` read-only setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugePagesStatus {
    /// Not using huge pages.
    Off,
    /// Using huge pages.
    On,
    /// Not known in this process (it attached rather than created).
    Unknown,
}

/// Errors of the shmem crate. Messages are PostgreSQL's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum ShmemError {
    /// The segment is full (SQLSTATE 53200).
    #[error("out of shared memory ({requested} bytes requested)")]
    OutOfSharedMemory {
        /// Bytes the caller asked for.
        requested: usize,
    },
    /// The Shmem Index is full (SQLSTATE 53200).
    #[error("could not create ShmemIndex entry for data structure \"{name}\"")]
    IndexFull {
        /// The structure's name.
        name: String,
    },
    /// No room for a named structure (SQLSTATE 53200).
    #[error(
        "not enough shared memory for data structure \"{name}\" ({requested} bytes requested)"
    )]
    NotEnoughForStruct {
        /// The structure's name.
        name: String,
        /// Bytes requested.
        requested: usize,
    },
    /// A structure exists under this name with another size (SQLSTATE XX000).
    #[error("ShmemIndex entry size is wrong for data structure \"{name}\": expected {expected}, actual {actual}")]
    SizeMismatch {
        /// The structure's name.
        name: String,
        /// Size recorded in the index.
        expected: usize,
        /// Size asked for now.
        actual: usize,
    },
    /// Names are 1..=47 bytes without NUL (PostgreSQL would silently truncate).
    #[error("invalid ShmemIndex name \"{name}\": names are 1 to 47 bytes without NUL")]
    BadName {
        /// The rejected name.
        name: String,
    },
    /// A type needs more alignment than a cache line.
    #[error("data structure \"{name}\" needs alignment {align}, more than a cache line")]
    Alignment {
        /// The structure's name.
        name: String,
        /// Its alignment.
        align: usize,
    },
    /// A size computation overflowed (SQLSTATE 54000).
    #[error(transparent)]
    Size(#[from] SizeError),
    /// A start-up step ran out of order.
    #[error("shared memory is not initialized yet")]
    NotInitialized,
    /// A start-up step ran twice.
    #[error("{what} already initialized")]
    AlreadyInitialized {
        /// Which step.
        what: &'static str,
    },
    /// Huge pages requested, but the system has none (SQLSTATE 0A000).
    #[error("huge pages not supported on this platform")]
    HugePagesUnsupported,
    /// Mapping the segment failed.
    #[error(
        "could not map anonymous shared memory: {source} (size={size} bytes, huge pages={huge})"
    )]
    Map {
        /// Bytes requested.
        size: usize,
        /// Whether huge pages were asked for.
        huge: bool,
        /// The system error.
        source: io::Error,
    },
    /// Attaching an existing segment failed.
    #[error("could not attach to shared memory: {reason}")]
    Attach {
        /// Why.
        reason: String,
    },
    /// The data directory could not be examined.
    #[error("could not stat data directory \"{}\": {source}", dir.display())]
    StatDataDir {
        /// The directory.
        dir: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// A live server (or one of its children) still uses the data directory (SQLSTATE F0001).
    #[error("pre-existing shared memory block (key {key}, ID {shmid}) is still in use")]
    InUse {
        /// The segment key.
        key: i32,
        /// The segment id.
        shmid: i32,
        /// The data directory (for the hint).
        data_dir: PathBuf,
    },
    /// A System V call on the interlock failed.
    #[error("could not create shared memory segment: {call} (key={key}) failed: {source}")]
    Interlock {
        /// The failing call.
        call: &'static str,
        /// The key involved.
        key: i32,
        /// The system error.
        source: io::Error,
    },
}

impl ShmemError {
    /// The SQLSTATE PostgreSQL reports for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ShmemError::OutOfSharedMemory { .. }
            | ShmemError::IndexFull { .. }
            | ShmemError::NotEnoughForStruct { .. } => "53200",
            ShmemError::Size(_) => "54000",
            ShmemError::HugePagesUnsupported => "0A000",
            ShmemError::InUse { .. } => "F0001",
            _ => "XX000",
        }
    }

    /// PostgreSQL's hint for this error, if it has one.
    pub fn hint(&self) -> Option<String> {
        match self {
            ShmemError::InUse { data_dir, .. } => Some(format!(
                "Terminate any old server processes associated with data directory \"{}\".",
                data_dir.display()
            )),
            ShmemError::Map { source, .. } if source.raw_os_error() == Some(libc::ENOMEM) => Some(
                "This error usually means that the request for a shared memory segment exceeded \
                 available memory, swap space, or huge pages. To reduce the request size, reduce \
                 max_connections or the other settings that size shared memory."
                    .into(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
