//! Named DSM segments (PostgreSQL 17's `storage/ipc/dsm_registry.c`): code that was not in
//! `shared_preload_libraries`, and so could not reserve main shared memory, asks for a segment
//! by name; the first caller creates and initialises it, every later caller (in any process)
//! attaches the same one. Segments are pinned: they live until the server's shared memory is
//! discarded (shutdown or crash restart).
//!
//! ```text
//!  "DSM Registry Data" (main segment; ipci creates it right after the DSM pool, before
//!  everything else, so with no preallocated DSM it is the first row of the Shmem Index)
//!  ┌ mutex (spinlock) │ nentries ┐
//!  ├ entry 0: state │ owner pid │ handle │ size │ name[64]  ┤   state: 0 free ─► 1 being
//!  ├ …                                                    ┤   initialised by `owner pid` ─►
//!  └ entry MAX_ENTRIES-1                                  ┘   2 ready (never goes back)
//! ```
//!
//! # Concurrency contract
//! * Entries are claimed, published and looked up under the spinlock only; no system call and
//!   no initialisation callback runs while it is held.
//! * The process that claims a free entry (state 1, its pid) creates the segment, runs the
//!   initialisation callback, pins the segment, and then publishes handle, size and state 2.
//!   Others that find state 1 wait (polling) until it is 2; if the owner died meanwhile, the
//!   entry is freed again and the next caller starts over (PostgreSQL holds a dshash lock
//!   across the initialisation instead, which its error recovery releases).
//! * Each process keeps its own map of names to mappings, so a second call in the same process
//!   attaches nothing.
//!
//! # Differences from PostgreSQL
//! The table is a fixed array of [`MAX_ENTRIES`] entries in the main segment, not a dshash
//! table in a DSA area (so "DSM Registry Data" is bigger than PostgreSQL's 16 bytes), and only
//! whole segments are registered (PostgreSQL 18 added named DSA areas and dshash tables).
//!
//! Key items: [`get_named_dsm_segment`], [`shmem_init`], [`DsmRegistry`],
//! [`DsmRegistryError`].

use pgipc_dsm::{CreateFlags, DsmSegment};
use pgipc_lwlock::SpinLock;
use pgipc_shmem::{InitKind, Shared, Shmem, ShmemSafe};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The table's name in the Shmem Index (PostgreSQL's).
pub const DSM_REGISTRY_NAME: &str = "DSM Registry Data";
/// How many named segments a server may have.
pub const MAX_ENTRIES: usize = 64;
/// Longest name, terminating NUL included (PostgreSQL's `NAMEDATALEN`-sized key).
pub const NAME_LEN: usize = 64;

const FREE: u32 = 0;
const INITIALIZING: u32 = 1;
const READY: u32 = 2;

/// One named segment.
///
/// Layout: `#[repr(C)]`, 88 bytes. Every field is written under the table's mutex.
#[repr(C)]
#[derive(Debug)]
pub struct DsmRegistryEntry {
    state: AtomicU32,
    owner: AtomicI32,
    handle: AtomicU32,
    size: AtomicU64,
    name: [AtomicU8x8; NAME_LEN / 8],
}

/// Eight name bytes (atomics so that the entry is valid shared data for any bytes).
#[repr(transparent)]
#[derive(Debug)]
struct AtomicU8x8(AtomicU64);

/// "DSM Registry Data".
///
/// Layout: `#[repr(C)]`, a header then [`MAX_ENTRIES`] entries; see the crate docs.
#[repr(C)]
#[derive(Debug)]
pub struct DsmRegistryCtl {
    mutex: SpinLock,
    nentries: AtomicU32,
    entries: [DsmRegistryEntry; MAX_ENTRIES],
}

// SAFETY: repr(C), atomics and a spinlock only, valid when all-zero, no pointers.
unsafe impl ShmemSafe for DsmRegistryCtl {}

/// Errors, with PostgreSQL's texts.
#[derive(Debug, thiserror::Error)]
pub enum DsmRegistryError {
    /// An empty name.
    #[error("DSM segment name cannot be empty")]
    EmptyName,
    /// A name of [`NAME_LEN`] bytes or more.
    #[error("DSM segment name too long")]
    NameTooLong,
    /// A size of 0.
    #[error("DSM segment size must be nonzero")]
    ZeroSize,
    /// The name exists with another size.
    #[error("requested DSM segment size does not match size of existing segment")]
    SizeMismatch,
    /// Every entry is taken.
    #[error("too many named DSM segments (at most {MAX_ENTRIES})")]
    Full,
    /// Another process has been initialising the segment for too long.
    #[error("timed out waiting for DSM segment \"{0}\" to be initialized")]
    Timeout(String),
    /// The table could not be created or found.
    #[error("could not initialize \"{DSM_REGISTRY_NAME}\": {0}")]
    Shmem(String),
    /// Creating or attaching the segment failed.
    #[error(transparent)]
    Dsm(#[from] pgipc_dsm::DsmError),
}

impl DsmRegistryError {
    /// The SQLSTATE.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            DsmRegistryError::EmptyName
            | DsmRegistryError::NameTooLong
            | DsmRegistryError::ZeroSize
            | DsmRegistryError::SizeMismatch => "22023",
            DsmRegistryError::Full => "53000",
            DsmRegistryError::Timeout(_) => "55000",
            DsmRegistryError::Shmem(_) => "XX000",
            DsmRegistryError::Dsm(e) => e.sqlstate(),
        }
    }
}

/// Bytes "DSM Registry Data" needs (`DSMRegistryShmemSize`).
pub fn shmem_size() -> usize {
    std::mem::size_of::<DsmRegistryCtl>()
}

/// This process's view of the table.
#[derive(Debug, Clone)]
pub struct DsmRegistry {
    ctl: Shared<DsmRegistryCtl>,
}

/// Creates (postmaster: empty) or finds (any other process) the table
/// (`DSMRegistryShmemInit`).
pub fn shmem_init(shmem: &Shmem) -> Result<DsmRegistry, DsmRegistryError> {
    let (ctl, kind) = shmem
        .init_struct::<DsmRegistryCtl>(DSM_REGISTRY_NAME)
        .map_err(|e| DsmRegistryError::Shmem(e.to_string()))?;
    if kind == InitKind::Created {
        ctl.mutex.init();
        ctl.nentries.store(0, Ordering::Relaxed);
    }
    Ok(DsmRegistry { ctl })
}

fn name_bytes(name: &str) -> Result<[u8; NAME_LEN], DsmRegistryError> {
    if name.is_empty() {
        return Err(DsmRegistryError::EmptyName);
    }
    if name.len() >= NAME_LEN {
        return Err(DsmRegistryError::NameTooLong);
    }
    let mut b = [0u8; NAME_LEN];
    b[..name.len()].copy_from_slice(name.as_bytes());
    Ok(b)
}

impl DsmRegistryEntry {
    fn name(&self) -> [u8; NAME_LEN] {
        let mut b = [0u8; NAME_LEN];
        for (i, w) in self.name.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.0.load(Ordering::Relaxed).to_ne_bytes());
        }
        b
    }

    fn set_name(&self, b: &[u8; NAME_LEN]) {
        for (i, w) in self.name.iter().enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&b[i * 8..i * 8 + 8]);
            w.0.store(u64::from_ne_bytes(word), Ordering::Relaxed);
        }
    }
}

/// What the lookup under the mutex found.
enum Found {
    Ready { handle: u32, size: u64 },
    Busy,
    Claimed(usize),
}

thread_local! {
    /// This process's mappings of named segments.
    static MAPPED: RefCell<HashMap<String, (NonNull<u8>, usize)>> = RefCell::new(HashMap::new());
}

impl DsmRegistry {
    /// The ready entries: (name, size), oldest first (`pg_dsm_registry_allocations`).
    pub fn allocations(&self) -> Vec<(String, u64)> {
        let _g = self.ctl.mutex.lock();
        let n = self.ctl.nentries.load(Ordering::Relaxed) as usize;
        self.ctl.entries[..n.min(MAX_ENTRIES)]
            .iter()
            .filter(|e| e.state.load(Ordering::Relaxed) == READY)
            .map(|e| {
                let b = e.name();
                let len = b.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
                (
                    String::from_utf8_lossy(&b[..len]).into_owned(),
                    e.size.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    fn lookup_or_claim(&self, name: &[u8; NAME_LEN]) -> Result<Found, DsmRegistryError> {
        let _g = self.ctl.mutex.lock();
        let n = (self.ctl.nentries.load(Ordering::Relaxed) as usize).min(MAX_ENTRIES);
        let mut free = None;
        for (i, e) in self.ctl.entries[..n].iter().enumerate() {
            match e.state.load(Ordering::Relaxed) {
                FREE => free = free.or(Some(i)),
                s if e.name() == *name => {
                    if s == READY {
                        return Ok(Found::Ready {
                            handle: e.handle.load(Ordering::Relaxed),
                            size: e.size.load(Ordering::Relaxed),
                        });
                    }
                    if pgipc_ipc::pid_alive(e.owner.load(Ordering::Relaxed)) {
                        return Ok(Found::Busy);
                    }
                    // The initialiser died: start over in this entry.
                    e.owner.store(std::process::id() as i32, Ordering::Relaxed);
                    return Ok(Found::Claimed(i));
                }
                _ => {}
            }
        }
        let i = match free {
            Some(i) => i,
            None if n < MAX_ENTRIES => {
                self.ctl.nentries.store(n as u32 + 1, Ordering::Relaxed);
                n
            }
            None => return Err(DsmRegistryError::Full),
        };
        let e = &self.ctl.entries[i];
        e.set_name(name);
        e.owner.store(std::process::id() as i32, Ordering::Relaxed);
        e.state.store(INITIALIZING, Ordering::Relaxed);
        Ok(Found::Claimed(i))
    }

    fn publish(&self, i: usize, handle: u32, size: usize) {
        let _g = self.ctl.mutex.lock();
        let e = &self.ctl.entries[i];
        e.handle.store(handle, Ordering::Relaxed);
        e.size.store(size as u64, Ordering::Relaxed);
        e.state.store(READY, Ordering::Relaxed);
    }

    fn release(&self, i: usize) {
        let _g = self.ctl.mutex.lock();
        self.ctl.entries[i].state.store(FREE, Ordering::Relaxed);
    }
}

/// `GetNamedDSMSegment(name, size, init_callback, &found)`: the address of this process's
/// mapping of the segment `name` (created with `size` bytes and initialised by `init` if it
/// did not exist yet) and whether it existed. The process must have called
/// `pgipc_dsm::dsm_backend_startup`. The mapping lasts until process exit.
pub fn get_named_dsm_segment(
    reg: &DsmRegistry,
    name: &str,
    size: usize,
    init: &mut dyn FnMut(NonNull<u8>),
) -> Result<(NonNull<u8>, bool), DsmRegistryError> {
    let key = name_bytes(name)?;
    if size == 0 {
        return Err(DsmRegistryError::ZeroSize);
    }
    if let Some((addr, len)) = MAPPED.with(|m| m.borrow().get(name).copied()) {
        if len < size {
            return Err(DsmRegistryError::SizeMismatch);
        }
        return Ok((addr, true));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match reg.lookup_or_claim(&key)? {
            Found::Ready { handle, size: have } => {
                if have != size as u64 {
                    return Err(DsmRegistryError::SizeMismatch);
                }
                let seg = DsmSegment::attach(handle)?;
                seg.pin_mapping();
                let addr = seg.address();
                MAPPED.with(|m| m.borrow_mut().insert(name.to_owned(), (addr, size)));
                drop(seg);
                return Ok((addr, true));
            }
            Found::Busy if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Found::Busy => return Err(DsmRegistryError::Timeout(name.to_owned())),
            Found::Claimed(i) => {
                let made = DsmSegment::create(size, CreateFlags::default())
                    .and_then(|s| s.ok_or(pgipc_dsm::DsmError::TooManySegments));
                let seg = match made {
                    Ok(s) => s,
                    Err(e) => {
                        reg.release(i);
                        return Err(e.into());
                    }
                };
                let addr = seg.address();
                init(addr);
                if let Err(e) = seg.pin_segment() {
                    reg.release(i);
                    return Err(e.into());
                }
                seg.pin_mapping();
                reg.publish(i, seg.handle(), size);
                MAPPED.with(|m| m.borrow_mut().insert(name.to_owned(), (addr, size)));
                drop(seg);
                return Ok((addr, false));
            }
        }
    }
}

#[cfg(test)]
mod tests;
