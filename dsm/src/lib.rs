//! Dynamic shared memory segments: handles, reference counts, pins, detach callbacks, and
//! the control segment that lets the postmaster destroy every segment exactly once.
//!
//! Mirrors PostgreSQL's `storage/ipc/dsm.c`. A backend creates a segment after start-up,
//! passes its [`DsmHandle`] to other processes, which attach it; the segment is destroyed by
//! whoever drops the last reference, or by the postmaster when it discards shared memory, or
//! by the next postmaster if the whole server was killed. The operating-system work (posix,
//! sysv or mmap) is the `pgipc_dsm_impl` crate's.
//!
//! ```text
//!  main segment (Shmem)                   control segment (its own OS segment, handle H)
//!  ┌──────────────────────────────┐       ┌──────────────────────────────────────────────┐
//!  │ ShmemHeader.dsm_control = H ─┼──────►│ magic 0x9a503d32 │ nitems │ maxitems         │
//!  │ DynamicSharedMemoryControl   │       ├──────────────────────────────────────────────┤
//!  │   LWLock (guards the table)  │       │ slot 0: handle h0  refcnt 3  pinned 0        │
//!  └──────────────────────────────┘       │ slot 1: handle h1  refcnt 1  (dying)         │
//!  SysV interlock header.dsm_control = H  │ slot 2: handle 0   refcnt 0  (free)          │
//!  (found again after a SIGKILL)          │ ... up to maxitems = 64 + 5 * MaxBackends    │
//!                                         └──────────────────────────────────────────────┘
//!  per process (not shared): list of mappings {handle, slot, address, size, callbacks}
//!  refcnt: 0 free │ 1 being created or dying, nobody may attach │ n ≥ 2 = 1 + attached + pinned
//! ```
//!
//! # Concurrency contract
//! * Every read and write of the control table by a backend happens under
//!   `DynamicSharedMemoryControlLock` (a main LWLock), taken exclusively and never held
//!   while a system call creates, maps or destroys a segment.
//! * The postmaster never takes that lock and never maps ordinary segments: it creates and
//!   initialises the control segment before any child exists
//!   ([`dsm_postmaster_startup`]), and reads it without the lock only after every child is
//!   gone ([`dsm_postmaster_shutdown`], [`dsm_cleanup_using_control_segment`]), after a
//!   sanity check, because a crashed child may have scribbled on it.
//! * A detaching process unmaps *before* it drops its reference, so the process that takes
//!   the count to 1 knows nobody maps the segment and destroys it without the lock, then
//!   frees the slot. If it dies in between, the slot stays at 1 until the postmaster cleans up.
//!   One exception, at process exit under a live [`DsmLease`]: the reference goes first and
//!   the mapping lingers until the process ends. The destroyer's unlink (or `IPC_RMID`) leaves
//!   existing mappings valid, and main-region pages that go back to the pool are never touched
//!   again by the exiting process (its leases are unusable).
//! * A creating process reserves its slot (count 1, the chosen handle) *before* it creates the
//!   OS segment and makes the slot live (count 2) after, so a process killed half-way leaves a
//!   slot the clean-up destroys, never an OS segment nobody lists (PostgreSQL creates first
//!   and leaks in that window). The injection point `dsm-create` (feature `injection_points`)
//!   sits in that window.
//! * Per-process state (the list of mappings and the control mapping) is process-local,
//!   kept in a thread-local of the process's (single) thread; [`DsmSegment`] is `!Send`.
//!   Detach callbacks are `'static` closures, as PostgreSQL's are a function and a Datum.
//!
//! # Lifetimes of a mapping
//! [`DsmSegment`] owns a mapping and detaches it when dropped (PostgreSQL's resource-owner
//! release), unless [`DsmSegmentRef::pin_mapping`] made it last until an explicit detach or
//! process exit. [`DsmSegmentRef`] is a cloneable non-owning reference (what callbacks keep).
//! A [`DsmLease`] ([`DsmSegmentRef::lease`]) keeps the *memory* mapped: a detach still runs
//! the callbacks at once, but the unmap and the release of the reference wait for the last
//! lease, so whatever lives in the segment (`shm_mq` handles hold one) can never be left
//! pointing at unmapped memory by safe code. At process exit `pgipc_ipc::shmem_exit`
//! detaches what is left ([`dsm_backend_shutdown`], installed by [`dsm_backend_startup`]);
//! there references are given back even under a lease (nothing would ever drop it), the
//! memory stays mapped until the process ends, and the lease reports itself unusable.
//!
//! # The main-region pool
//! With `min_dynamic_shared_memory` > 0, [`dsm_shmem_init`] reserves that much of the main
//! segment ("Preallocated DSM") and [`DsmSegment::create`] first carves segments from it in
//! 4 KiB pages (first fit over a bitmap, under the same control lock), giving them odd
//! handles (`1 | slot << 1 | random bits`, as PostgreSQL 18). Such segments cost no system
//! call and are never passed to `dsm_impl`; their pages are not zeroed when reused. When the
//! pool has no room the segment is an ordinary OS one.
//!
//! # What this crate does not do
//! * No FreePageManager: the pool's allocator is a plain bitmap, fine for the few hundred
//!   segments a server has, not a general-purpose page allocator.
//! * No resource owners; no Windows pinning into the postmaster; no resize (PostgreSQL
//!   removed it in version 12; `pgipc_dsm_impl` still offers it for one segment).
//! * No registry of named segments (`dsm_registry.c`).
//!
//! Key items: [`DsmSegment`], [`DsmSegmentRef`], [`DsmLease`], [`dsm_backend_startup`], [`dsm_shmem_init`],
//! [`dsm_postmaster_startup`], [`dsm_postmaster_shutdown`],
//! [`dsm_cleanup_using_control_segment`], [`DsmError`].

mod control;
mod pool;
mod postmaster;
mod segment;
mod sys;
#[cfg(test)]
mod tests;

pub use control::{
    control_bytes_needed, control_items_from_bytes, control_max_items, is_main_region_dsm_handle,
    DsmControlHeader, DsmControlItem, PG_DYNSHMEM_CONTROL_MAGIC, PG_DYNSHMEM_FIXED_SLOTS,
    PG_DYNSHMEM_SLOTS_PER_BACKEND,
};
pub use pgipc_dsm_impl::{DsmHandle, DsmImpl, DsmImplError, DsmImplType, DSM_HANDLE_INVALID};
pub use pool::{
    dsm_estimate_size, dsm_shmem_init, PoolHeader, FPM_PAGE_SIZE, PREALLOCATED_DSM_NAME,
};
pub use postmaster::{
    dsm_cleanup_using_control_segment, dsm_control_slots, dsm_postmaster_shutdown,
    dsm_postmaster_startup, CleanupReport,
};
pub use segment::{
    dsm_backend_shutdown, dsm_backend_startup, dsm_detach_all, dsm_find_mapping,
    dsm_mapped_handles, dsm_unpin_segment, reset_on_dsm_detach, CreateFlags, DetachCallbackId,
    DsmLease, DsmSegment, DsmSegmentRef,
};

/// Errors of the dsm crate, with PostgreSQL's texts where it has them.
#[derive(Debug, thiserror::Error)]
pub enum DsmError {
    /// The operating-system layer failed (names the segment and the call).
    #[error(transparent)]
    Impl(#[from] DsmImplError),
    /// Every control slot is taken (SQLSTATE 53000).
    #[error("too many dynamic shared memory segments")]
    TooManySegments,
    /// No live segment has this handle (PostgreSQL's `dsm_attach` returns NULL; its callers
    /// report SQLSTATE 55000).
    #[error("could not map dynamic shared memory segment {handle}: no such segment")]
    NotFound {
        /// The handle.
        handle: DsmHandle,
    },
    /// This process maps the segment already.
    #[error("can't attach the same segment more than once")]
    AlreadyAttached {
        /// The handle.
        handle: DsmHandle,
    },
    /// `pin_segment` twice.
    #[error("cannot pin a segment that is already pinned")]
    AlreadyPinned {
        /// The handle.
        handle: DsmHandle,
    },
    /// `dsm_unpin_segment` of a handle no live slot has.
    #[error("cannot unpin unknown segment handle")]
    UnknownHandle {
        /// The handle.
        handle: DsmHandle,
    },
    /// `dsm_unpin_segment` of a segment that is not pinned.
    #[error("cannot unpin a segment that is not pinned")]
    NotPinned {
        /// The handle.
        handle: DsmHandle,
    },
    /// The operation needs a segment this process still maps.
    #[error("dynamic shared memory segment {handle} is detached")]
    Detached {
        /// The handle.
        handle: DsmHandle,
    },
    /// The control segment failed its sanity check in a backend (SQLSTATE XX000, FATAL).
    #[error("dynamic shared memory control segment is not valid")]
    ControlNotValid,
    /// The control segment failed its sanity check at clean-up; nothing was destroyed.
    #[error("dynamic shared memory control segment is corrupt")]
    ControlCorrupt,
    /// `max_backends` too large for a control segment.
    #[error("dynamic shared memory control segment would be too large")]
    ControlTooLarge,
    /// The main segment records no control segment (the postmaster did not create one).
    #[error("no dynamic shared memory control segment is recorded in shared memory")]
    NoControlSegment,
    /// [`dsm_backend_startup`] has not run in this process (or the postmaster asked).
    #[error("dynamic shared memory is not initialized in this process")]
    NotInitialized,
    /// An injection point attached to `error` fired (test builds with the
    /// `injection_points` feature only).
    #[error(transparent)]
    Injected(#[from] pgipc_injection_point::InjectionError),
}

impl DsmError {
    /// PostgreSQL's SQLSTATE for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            DsmError::Impl(e) => e.sqlstate(),
            DsmError::TooManySegments => "53000",
            DsmError::NotFound { .. } => "55000",
            DsmError::ControlTooLarge => "53200",
            _ => "XX000",
        }
    }
}
