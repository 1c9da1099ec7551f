//! The system calls behind each implementation. Every `unsafe` block is here.

use crate::{DsmHandle, DsmImplError, DsmImplType};
use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;

fn last() -> io::Error {
    io::Error::last_os_error()
}

fn cname(name: &str) -> CString {
    // Segment names are built from a number and a fixed prefix: never an interior NUL.
    CString::new(name).unwrap_or_default()
}

fn map_fd(fd: RawFd, size: usize) -> Result<NonNull<u8>, io::Error> {
    // SAFETY: a fresh shared mapping of an open descriptor; the kernel picks the address.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(last());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

fn fstat_size(fd: RawFd) -> Result<usize, io::Error> {
    // SAFETY: a zeroed stat buffer is valid for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and buffer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(last());
    }
    Ok(st.st_size as usize)
}

/// Reserves `size` bytes for `fd`, retrying when a signal interrupts (PostgreSQL's
/// `dsm_impl_posix_resize` on Linux).
fn fallocate(fd: RawFd, size: usize) -> Result<(), io::Error> {
    loop {
        // SAFETY: plain call on an open descriptor.
        let rc = unsafe { libc::posix_fallocate(fd, 0, size as libc::off_t) };
        match rc {
            0 => return Ok(()),
            libc::EINTR => continue,
            // tmpfs without fallocate support (old kernels): fall back to ftruncate.
            libc::EOPNOTSUPP => {
                // SAFETY: plain call on an open descriptor.
                if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
                    return Err(last());
                }
                return Ok(());
            }
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

fn shm_open(name: &str, create: bool) -> Result<OwnedFd, io::Error> {
    let c = cname(name);
    let flags = libc::O_RDWR
        | libc::O_CLOEXEC
        | if create {
            libc::O_CREAT | libc::O_EXCL
        } else {
            0
        };
    // SAFETY: NUL-terminated name, valid flags and mode.
    let fd = unsafe { libc::shm_open(c.as_ptr(), flags, 0o600) };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: shm_open returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn posix_remove(name: &str) -> Result<(), DsmImplError> {
    let c = cname(name);
    // SAFETY: NUL-terminated name.
    if unsafe { libc::shm_unlink(c.as_ptr()) } != 0 {
        return Err(DsmImplError::Remove {
            name: name.to_owned(),
            source: last(),
        });
    }
    Ok(())
}

pub(crate) fn posix_create(name: &str, size: usize) -> Result<(NonNull<u8>, usize), DsmImplError> {
    let fd = shm_open(name, true).map_err(|source| {
        if source.raw_os_error() == Some(libc::EEXIST) {
            DsmImplError::Exists {
                name: name.to_owned(),
            }
        } else {
            DsmImplError::Open {
                name: name.to_owned(),
                source,
            }
        }
    })?;
    if let Err(source) = fallocate(fd.as_raw_fd(), size) {
        drop(fd);
        let _ = posix_remove(name);
        return Err(DsmImplError::Resize {
            name: name.to_owned(),
            size,
            source,
        });
    }
    match map_fd(fd.as_raw_fd(), size) {
        Ok(p) => Ok((p, size)),
        Err(source) => {
            drop(fd);
            let _ = posix_remove(name);
            Err(DsmImplError::Map {
                name: name.to_owned(),
                source,
            })
        }
    }
}

pub(crate) fn posix_attach(name: &str) -> Result<(NonNull<u8>, usize), DsmImplError> {
    let fd = shm_open(name, false).map_err(|source| DsmImplError::Open {
        name: name.to_owned(),
        source,
    })?;
    attach_fd(&fd, name)
}

fn attach_fd(fd: &OwnedFd, name: &str) -> Result<(NonNull<u8>, usize), DsmImplError> {
    let size = fstat_size(fd.as_raw_fd()).map_err(|source| DsmImplError::Stat {
        name: name.to_owned(),
        source,
    })?;
    if size == 0 {
        return Err(DsmImplError::BadSize {
            name: name.to_owned(),
            size,
        });
    }
    let p = map_fd(fd.as_raw_fd(), size).map_err(|source| DsmImplError::Map {
        name: name.to_owned(),
        source,
    })?;
    Ok((p, size))
}

fn remap(
    fd: &OwnedFd,
    name: &str,
    old: NonNull<u8>,
    old_size: usize,
    new_size: usize,
) -> Result<(NonNull<u8>, usize), DsmImplError> {
    let p = map_fd(fd.as_raw_fd(), new_size).map_err(|source| DsmImplError::Map {
        name: name.to_owned(),
        source,
    })?;
    // The old mapping goes only once the new one exists, so a failure leaves the caller's.
    // SAFETY: the caller gave up `old..old+old_size`, a mapping this crate made.
    unsafe { libc::munmap(old.as_ptr().cast(), old_size) };
    Ok((p, new_size))
}

pub(crate) fn posix_resize(
    name: &str,
    old: NonNull<u8>,
    old_size: usize,
    new_size: usize,
) -> Result<(NonNull<u8>, usize), DsmImplError> {
    let fd = shm_open(name, false).map_err(|source| DsmImplError::Open {
        name: name.to_owned(),
        source,
    })?;
    let r = if new_size > old_size {
        fallocate(fd.as_raw_fd(), new_size)
    } else {
        // SAFETY: plain call on an open descriptor.
        match unsafe { libc::ftruncate(fd.as_raw_fd(), new_size as libc::off_t) } {
            0 => Ok(()),
            _ => Err(last()),
        }
    };
    r.map_err(|source| DsmImplError::Resize {
        name: name.to_owned(),
        size: new_size,
        source,
    })?;
    remap(&fd, name, old, old_size, new_size)
}

/// System V key of a handle (PostgreSQL: the handle itself, negated if not positive).
fn sysv_key(handle: DsmHandle) -> libc::key_t {
    let k = handle as libc::key_t;
    if k < 1 {
        k.wrapping_neg()
    } else {
        k
    }
}

pub(crate) fn sysv_create(
    handle: DsmHandle,
    name: &str,
    size: usize,
) -> Result<(NonNull<u8>, usize), DsmImplError> {
    let key = sysv_key(handle);
    if key == libc::IPC_PRIVATE {
        // Cannot name a private segment: let the caller pick another handle.
        return Err(DsmImplError::Exists {
            name: name.to_owned(),
        });
    }
    // SAFETY: plain shmget.
    let id = unsafe { libc::shmget(key, size, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    if id < 0 {
        let source = last();
        return Err(if source.raw_os_error() == Some(libc::EEXIST) {
            DsmImplError::Exists {
                name: name.to_owned(),
            }
        } else {
            DsmImplError::Open {
                name: name.to_owned(),
                source,
            }
        });
    }
    // SAFETY: attach at an address of the kernel's choosing.
    let p = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    if p as isize == -1 {
        let source = last();
        // SAFETY: removing the segment we just created.
        unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        return Err(DsmImplError::Map {
            name: name.to_owned(),
            source,
        });
    }
    let p = NonNull::new(p.cast()).ok_or_else(|| DsmImplError::Map {
        name: name.to_owned(),
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    Ok((p, size))
}

fn sysv_id(handle: DsmHandle, name: &str) -> Result<i32, DsmImplError> {
    // SAFETY: plain shmget of an existing key.
    let id = unsafe { libc::shmget(sysv_key(handle), 0, 0o600) };
    if id < 0 {
        return Err(DsmImplError::Open {
            name: name.to_owned(),
            source: last(),
        });
    }
    Ok(id)
}

pub(crate) fn sysv_attach(
    handle: DsmHandle,
    name: &str,
) -> Result<(NonNull<u8>, usize), DsmImplError> {
    let id = sysv_id(handle, name)?;
    // SAFETY: a zeroed shmid_ds is a valid IPC_STAT buffer.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: valid id and buffer.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } != 0 {
        return Err(DsmImplError::Stat {
            name: name.to_owned(),
            source: last(),
        });
    }
    // SAFETY: attach at an address of the kernel's choosing.
    let p = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    if p as isize == -1 {
        return Err(DsmImplError::Map {
            name: name.to_owned(),
            source: last(),
        });
    }
    let p = NonNull::new(p.cast()).ok_or_else(|| DsmImplError::Map {
        name: name.to_owned(),
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    Ok((p, ds.shm_segsz))
}

pub(crate) fn sysv_remove(handle: DsmHandle, name: &str) -> Result<(), DsmImplError> {
    let id = sysv_id(handle, name).map_err(|e| match e {
        DsmImplError::Open { name, source } => DsmImplError::Remove { name, source },
        e => e,
    })?;
    // SAFETY: IPC_RMID on an id we just looked up.
    if unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) } != 0 {
        return Err(DsmImplError::Remove {
            name: name.to_owned(),
            source: last(),
        });
    }
    Ok(())
}

pub(crate) fn unmap(
    kind: DsmImplType,
    addr: NonNull<u8>,
    size: usize,
    name: &str,
) -> Result<(), DsmImplError> {
    let rc = match kind {
        // SAFETY: detaching a System V attachment this crate made.
        DsmImplType::Sysv => unsafe { libc::shmdt(addr.as_ptr().cast()) },
        // SAFETY: unmapping a mapping this crate made, of exactly this size.
        _ => unsafe { libc::munmap(addr.as_ptr().cast(), size) },
    };
    if rc != 0 {
        return Err(DsmImplError::Unmap {
            name: name.to_owned(),
            source: last(),
        });
    }
    Ok(())
}

/// Writes zeros from `from` up to `to`, 8 KiB at a time, so the blocks really exist (PostgreSQL's
/// `ZBUFFER_SIZE` loop): a full disk is an error now, not a SIGBUS later.
fn zero_fill(f: &mut std::fs::File, from: usize, to: usize) -> Result<(), io::Error> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(from as u64))?;
    let zeros = [0u8; 8192];
    let mut left = to - from;
    while left > 0 {
        let n = left.min(zeros.len());
        f.write_all(&zeros[..n])?;
        left -= n;
    }
    f.flush()
}

pub(crate) fn file_create(
    path: &Path,
    name: &str,
    size: usize,
) -> Result<(NonNull<u8>, usize), DsmImplError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DsmImplError::Open {
            name: name.to_owned(),
            source,
        })?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                DsmImplError::Exists {
                    name: name.to_owned(),
                }
            } else {
                DsmImplError::Open {
                    name: name.to_owned(),
                    source,
                }
            }
        })?;
    if let Err(source) = zero_fill(&mut f, 0, size) {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(DsmImplError::Resize {
            name: name.to_owned(),
            size,
            source,
        });
    }
    match map_fd(f.as_raw_fd(), size) {
        Ok(p) => Ok((p, size)),
        Err(source) => {
            drop(f);
            let _ = std::fs::remove_file(path);
            Err(DsmImplError::Map {
                name: name.to_owned(),
                source,
            })
        }
    }
}

fn open_file(path: &Path, name: &str) -> Result<std::fs::File, DsmImplError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| DsmImplError::Open {
            name: name.to_owned(),
            source,
        })
}

pub(crate) fn file_attach(path: &Path, name: &str) -> Result<(NonNull<u8>, usize), DsmImplError> {
    let f = open_file(path, name)?;
    attach_fd(&OwnedFd::from(f), name)
}

pub(crate) fn file_resize(
    path: &Path,
    name: &str,
    old: NonNull<u8>,
    old_size: usize,
    new_size: usize,
) -> Result<(NonNull<u8>, usize), DsmImplError> {
    let mut f = open_file(path, name)?;
    let cur = fstat_size(f.as_raw_fd()).map_err(|source| DsmImplError::Stat {
        name: name.to_owned(),
        source,
    })?;
    let r = if new_size > cur {
        zero_fill(&mut f, cur, new_size)
    } else {
        f.set_len(new_size as u64)
    };
    r.map_err(|source| DsmImplError::Resize {
        name: name.to_owned(),
        size: new_size,
        source,
    })?;
    remap(&OwnedFd::from(f), name, old, old_size, new_size)
}
