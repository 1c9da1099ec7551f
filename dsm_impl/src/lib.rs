//! One dynamic shared memory segment at the operating-system level (PostgreSQL's
//! `storage/ipc/dsm_impl.c`): create, attach, detach, destroy and resize, for the three Unix
//! implementations `dynamic_shared_memory_type` can name.
//!
//! ```text
//!  handle h (u32, never 0)          posix: shm_open("/PostgreSQL.<h>")  → /dev/shm/PostgreSQL.<h>
//!        │                          sysv:  shmget(key = h)              → ipcs -m
//!        ▼                          mmap:  <data dir>/pg_dynshmem/mmap.<h> (a file, MAP_SHARED)
//!  create(h, size) ─► Mapping{addr, size} ─► detach (munmap / shmdt) ─► destroy (unlink / IPC_RMID)
//! ```
//!
//! There is no bookkeeping here: who may destroy a segment, and when, is the `dsm` crate's
//! business (reference counts in its control segment). This crate guarantees what PostgreSQL's
//! does: creation is exclusive (a name collision is [`DsmImplError::Exists`], so the caller can
//! pick another handle), posix space is reserved with `posix_fallocate` at creation (a full
//! `/dev/shm` is an error now, never a SIGBUS later), mmap files are filled with zeros for the
//! same reason, and a creation that fails half-way removes what it made. Errors name the
//! segment and the system call, with PostgreSQL's texts.
//!
//! # Concurrency
//! A [`Mapping`] is process-local: the same segment may be mapped at different addresses in
//! different processes. Nothing here takes a lock.
//!
//! # What this crate does not do
//! No Windows implementation; no reservation of file descriptors (PostgreSQL's
//! `ReserveExternalFD`): descriptors are closed as soon as the segment is mapped.

mod sys;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// A segment's handle (PostgreSQL's `dsm_handle`).
pub type DsmHandle = u32;
/// The handle that names no segment (`DSM_HANDLE_INVALID`).
pub const DSM_HANDLE_INVALID: DsmHandle = 0;
/// Directory of the mmap implementation's files, inside the data directory.
pub const PG_DYNSHMEM_DIR: &str = "pg_dynshmem";
/// Prefix of the mmap implementation's file names.
pub const PG_DYNSHMEM_MMAP_FILE_PREFIX: &str = "mmap.";

/// Which operating-system mechanism backs the segments (`dynamic_shared_memory_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsmImplType {
    /// POSIX shared memory (`shm_open`), PostgreSQL's default on Linux.
    Posix,
    /// System V shared memory (`shmget`).
    Sysv,
    /// Memory-mapped files under the data directory's `pg_dynshmem/`.
    Mmap,
}

impl DsmImplType {
    /// The setting's spelling.
    pub fn name(self) -> &'static str {
        match self {
            DsmImplType::Posix => "posix",
            DsmImplType::Sysv => "sysv",
            DsmImplType::Mmap => "mmap",
        }
    }
}

/// Errors, each naming the segment and what failed, with PostgreSQL's texts.
#[derive(Debug, thiserror::Error)]
pub enum DsmImplError {
    /// Creation found the name taken: pick another handle (PostgreSQL: silent `false`).
    #[error("shared memory segment \"{name}\" already exists")]
    Exists {
        /// The segment.
        name: String,
    },
    /// Opening (or `shmget`) failed; for an attach this usually means the segment is gone.
    #[error("could not open shared memory segment \"{name}\": {source}")]
    Open {
        /// The segment.
        name: String,
        /// The system error.
        source: io::Error,
    },
    /// `fstat` / `IPC_STAT` failed.
    #[error("could not stat shared memory segment \"{name}\": {source}")]
    Stat {
        /// The segment.
        name: String,
        /// The system error.
        source: io::Error,
    },
    /// Reserving the space failed (a full `/dev/shm` is `ENOSPC` here).
    #[error("could not resize shared memory segment \"{name}\" to {size} bytes: {source}")]
    Resize {
        /// The segment.
        name: String,
        /// The requested size.
        size: usize,
        /// The system error.
        source: io::Error,
    },
    /// `mmap` / `shmat` failed.
    #[error("could not map shared memory segment \"{name}\": {source}")]
    Map {
        /// The segment.
        name: String,
        /// The system error.
        source: io::Error,
    },
    /// `munmap` / `shmdt` failed.
    #[error("could not unmap shared memory segment \"{name}\": {source}")]
    Unmap {
        /// The segment.
        name: String,
        /// The system error.
        source: io::Error,
    },
    /// `shm_unlink` / `IPC_RMID` / `unlink` failed.
    #[error("could not remove shared memory segment \"{name}\": {source}")]
    Remove {
        /// The segment.
        name: String,
        /// The system error.
        source: io::Error,
    },
    /// A size of zero, or one the platform cannot express.
    #[error("invalid size {size} for shared memory segment \"{name}\"")]
    BadSize {
        /// The segment.
        name: String,
        /// The size.
        size: usize,
    },
    /// The mmap implementation needs a data directory.
    #[error("dynamic_shared_memory_type \"mmap\" needs a data directory")]
    NoDataDir,
    /// The operation is not possible with this implementation.
    #[error("cannot resize a \"{0}\" dynamic shared memory segment")]
    ResizeUnsupported(&'static str),
}

impl DsmImplError {
    /// PostgreSQL's SQLSTATE (`errcode_for_dynamic_shared_memory`): 53200 for EFBIG/ENOMEM,
    /// 53100 for ENOSPC, the file-access mapping otherwise.
    pub fn sqlstate(&self) -> &'static str {
        let errno = match self {
            DsmImplError::Open { source, .. }
            | DsmImplError::Stat { source, .. }
            | DsmImplError::Resize { source, .. }
            | DsmImplError::Map { source, .. }
            | DsmImplError::Unmap { source, .. }
            | DsmImplError::Remove { source, .. } => source.raw_os_error(),
            DsmImplError::BadSize { .. } => return "22023",
            DsmImplError::Exists { .. } => return "42710",
            _ => return "XX000",
        };
        match errno {
            Some(libc::EFBIG) | Some(libc::ENOMEM) => "53200",
            Some(libc::ENOSPC) => "53100",
            Some(libc::EACCES) | Some(libc::EPERM) => "42501",
            Some(libc::ENOENT) => "58P01",
            _ => "58030",
        }
    }
}

/// A segment mapped into this process. Dropping it does nothing: detach or destroy it
/// explicitly (the `dsm` crate decides which).
pub struct Mapping {
    addr: NonNull<u8>,
    size: usize,
    handle: DsmHandle,
    kind: DsmImplType,
}

// SAFETY: a Mapping is an address range shared with other processes; moving the descriptor of
// that range to another thread of this process changes nothing about its validity.
unsafe impl Send for Mapping {}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("handle", &self.handle)
            .field("kind", &self.kind)
            .field("addr", &self.addr)
            .field("size", &self.size)
            .finish()
    }
}

impl Mapping {
    /// Start of the mapping in this process.
    pub fn addr(&self) -> NonNull<u8> {
        self.addr
    }

    /// Its length (at least what was asked for at creation).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The segment's handle.
    pub fn handle(&self) -> DsmHandle {
        self.handle
    }

    /// The mapped bytes.
    ///
    /// # Safety
    /// Other processes may write the segment at any time; the caller must synchronise access
    /// (the slice is a snapshot view, valid until the mapping is detached).
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: `addr..addr+size` is a live mapping owned by this value; the caller accepts
        // the concurrency caveat above.
        unsafe { std::slice::from_raw_parts(self.addr.as_ptr(), self.size) }
    }
}

/// The implementation in use and where its files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsmImpl {
    kind: DsmImplType,
    data_dir: Option<PathBuf>,
}

impl DsmImpl {
    /// An implementation; `data_dir` is required for [`DsmImplType::Mmap`].
    pub fn new(kind: DsmImplType, data_dir: Option<&Path>) -> Self {
        DsmImpl {
            kind,
            data_dir: data_dir.map(Path::to_path_buf),
        }
    }

    /// Which mechanism.
    pub fn kind(&self) -> DsmImplType {
        self.kind
    }

    /// The data directory, if any.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The segment's name as PostgreSQL prints it: `/PostgreSQL.<h>` (posix), `<h>` (sysv),
    /// `pg_dynshmem/mmap.<h>` (mmap).
    pub fn segment_name(&self, handle: DsmHandle) -> String {
        match self.kind {
            DsmImplType::Posix => format!("/PostgreSQL.{handle}"),
            DsmImplType::Sysv => format!("{handle}"),
            DsmImplType::Mmap => {
                format!("{PG_DYNSHMEM_DIR}/{PG_DYNSHMEM_MMAP_FILE_PREFIX}{handle}")
            }
        }
    }

    fn mmap_path(&self, handle: DsmHandle) -> Result<PathBuf, DsmImplError> {
        let dir = self.data_dir.as_ref().ok_or(DsmImplError::NoDataDir)?;
        Ok(dir.join(self.segment_name(handle)))
    }

    /// Creates segment `handle` of `size` bytes and maps it. The name must be free:
    /// [`DsmImplError::Exists`] otherwise. On any other failure nothing is left behind.
    pub fn create(&self, handle: DsmHandle, size: usize) -> Result<Mapping, DsmImplError> {
        let name = self.segment_name(handle);
        if size == 0 || handle == DSM_HANDLE_INVALID || isize::try_from(size).is_err() {
            return Err(DsmImplError::BadSize { name, size });
        }
        let (addr, size) = match self.kind {
            DsmImplType::Posix => sys::posix_create(&name, size)?,
            DsmImplType::Sysv => sys::sysv_create(handle, &name, size)?,
            DsmImplType::Mmap => {
                let path = self.mmap_path(handle)?;
                sys::file_create(&path, &name, size)?
            }
        };
        Ok(Mapping {
            addr,
            size,
            handle,
            kind: self.kind,
        })
    }

    /// Maps the existing segment `handle`, at its full size.
    pub fn attach(&self, handle: DsmHandle) -> Result<Mapping, DsmImplError> {
        let name = self.segment_name(handle);
        let (addr, size) = match self.kind {
            DsmImplType::Posix => sys::posix_attach(&name)?,
            DsmImplType::Sysv => sys::sysv_attach(handle, &name)?,
            DsmImplType::Mmap => {
                let path = self.mmap_path(handle)?;
                sys::file_attach(&path, &name)?
            }
        };
        Ok(Mapping {
            addr,
            size,
            handle,
            kind: self.kind,
        })
    }

    /// Unmaps `m`; the segment itself stays.
    pub fn detach(&self, m: Mapping) -> Result<(), DsmImplError> {
        let name = self.segment_name(m.handle);
        sys::unmap(m.kind, m.addr, m.size, &name)
    }

    /// Unmaps `m` (if given) and removes segment `handle`.
    pub fn destroy(&self, m: Option<Mapping>, handle: DsmHandle) -> Result<(), DsmImplError> {
        let name = self.segment_name(handle);
        let unmapped = match m {
            Some(m) => sys::unmap(m.kind, m.addr, m.size, &name),
            None => Ok(()),
        };
        let removed = match self.kind {
            DsmImplType::Posix => sys::posix_remove(&name),
            DsmImplType::Sysv => sys::sysv_remove(handle, &name),
            DsmImplType::Mmap => {
                let path = self.mmap_path(handle)?;
                std::fs::remove_file(&path).map_err(|source| DsmImplError::Remove { name, source })
            }
        };
        unmapped.and(removed)
    }

    /// Changes the size of segment `m` and maps it again (posix and mmap; System V segments
    /// cannot change size). Growing reserves the new space first, like creation. Every other
    /// process must map the segment again to see a new size.
    pub fn resize(&self, m: Mapping, new_size: usize) -> Result<Mapping, DsmImplError> {
        let name = self.segment_name(m.handle);
        if new_size == 0 || isize::try_from(new_size).is_err() {
            return Err(DsmImplError::BadSize {
                name,
                size: new_size,
            });
        }
        let (addr, size) = match self.kind {
            DsmImplType::Sysv => return Err(DsmImplError::ResizeUnsupported("sysv")),
            DsmImplType::Posix => sys::posix_resize(&name, m.addr, m.size, new_size)?,
            DsmImplType::Mmap => {
                let path = self.mmap_path(m.handle)?;
                sys::file_resize(&path, &name, m.addr, m.size, new_size)?
            }
        };
        Ok(Mapping {
            addr,
            size,
            handle: m.handle,
            kind: m.kind,
        })
    }

    /// Removes every mmap segment file left in `data_dir/pg_dynshmem` (PostgreSQL's
    /// `dsm_cleanup_for_mmap`, run at postmaster start: such files survive even a reboot).
    pub fn cleanup_mmap_files(data_dir: &Path) -> Result<usize, DsmImplError> {
        let dir = data_dir.join(PG_DYNSHMEM_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(DsmImplError::Open {
                    name: dir.display().to_string(),
                    source,
                })
            }
        };
        let mut n = 0;
        for e in entries.flatten() {
            let fname = e.file_name();
            if fname
                .to_string_lossy()
                .starts_with(PG_DYNSHMEM_MMAP_FILE_PREFIX)
            {
                std::fs::remove_file(e.path()).map_err(|source| DsmImplError::Remove {
                    name: e.path().display().to_string(),
                    source,
                })?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
