//! Raw system calls: shared mappings, memfds and System V segments.
//!
//! Everything unsafe about mapping memory lives here; the rest of the crate works with the
//! `Mapping` this module hands out.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

/// One shared mapping, unmapped when dropped.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(crate) base: NonNull<u8>,
    pub(crate) len: usize,
}

// SAFETY: the mapping is plain shared memory; all access to it goes through atomics or
// process-shared locks (ShmemSafe), so using it from several threads is as safe as from several
// processes.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` describe a mapping this object created and nobody else unmaps.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

fn prot_rw() -> rustix::mm::ProtFlags {
    rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE
}

/// `mmap(MAP_SHARED|MAP_ANONYMOUS[|MAP_HUGETLB])` of `len` bytes.
pub(crate) fn map_anonymous(len: usize, huge: bool) -> io::Result<Mapping> {
    let mut flags = rustix::mm::MapFlags::SHARED;
    if huge {
        flags |= rustix::mm::MapFlags::HUGETLB;
    }
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing aliases nothing.
    let p = unsafe { rustix::mm::mmap_anonymous(std::ptr::null_mut(), len, prot_rw(), flags) }?;
    Ok(Mapping {
        base: NonNull::new(p.cast()).ok_or(io::ErrorKind::Other)?,
        len,
    })
}

/// `mmap(MAP_SHARED)` of the first `len` bytes of `fd`.
pub(crate) fn map_fd(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
    // SAFETY: a fresh mapping at an address of the kernel's choosing aliases no Rust object.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            prot_rw(),
            rustix::mm::MapFlags::SHARED,
            fd,
            0,
        )
    }?;
    Ok(Mapping {
        base: NonNull::new(p.cast()).ok_or(io::ErrorKind::Other)?,
        len,
    })
}

/// A memfd of `len` bytes (inheritable across exec: no close-on-exec flag).
pub(crate) fn memfd(name: &CStr, len: usize, huge: bool) -> io::Result<OwnedFd> {
    let mut flags = rustix::fs::MemfdFlags::empty();
    if huge {
        flags |= rustix::fs::MemfdFlags::HUGETLB;
    }
    let fd = rustix::fs::memfd_create(name, flags)?;
    rustix::fs::ftruncate(&fd, len as u64)?;
    Ok(fd)
}

/// Size of the file behind `fd`.
pub(crate) fn fd_len(fd: impl AsFd) -> io::Result<usize> {
    Ok(rustix::fs::fstat(fd)?.st_size as usize)
}

/// The system's default huge page size, from `/proc/meminfo` (`Hugepagesize:`), if it has one.
pub fn default_huge_page_size() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_huge_page_size(&text)
}

pub(crate) fn parse_huge_page_size(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find(|l| l.starts_with("Hugepagesize:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let n: usize = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => n.checked_mul(1024),
        _ => None,
    }
}

// ---- System V shared memory (the interlock) ----

/// What `shmctl(IPC_STAT)` tells about a segment.
pub(crate) struct SysvStat {
    pub(crate) nattch: u64,
    pub(crate) key: i32,
}

pub(crate) fn shmget(key: i32, size: usize, flags: i32) -> io::Result<i32> {
    // SAFETY: shmget takes plain integers.
    let id = unsafe { libc::shmget(key, size, flags) };
    if id < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(id)
    }
}

pub(crate) fn shmstat(shmid: i32) -> io::Result<SysvStat> {
    // SAFETY: zeroed shmid_ds is a valid output buffer for IPC_STAT.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds.
    if unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SysvStat {
        nattch: ds.shm_nattch as u64,
        key: ds.shm_perm.__key,
    })
}

pub(crate) fn shmrmid(shmid: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument.
    if unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An attachment of a System V segment, detached when dropped.
#[derive(Debug)]
pub(crate) struct SysvAttach {
    pub(crate) addr: NonNull<u8>,
}

// SAFETY: like Mapping: shared memory accessed only through atomics.
unsafe impl Send for SysvAttach {}
// SAFETY: as above.
unsafe impl Sync for SysvAttach {}

pub(crate) fn shmat(shmid: i32) -> io::Result<SysvAttach> {
    // SAFETY: attaching at an address of the kernel's choosing aliases no Rust object.
    let p = unsafe { libc::shmat(shmid, std::ptr::null(), 0) };
    if p as isize == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(SysvAttach {
        addr: NonNull::new(p.cast()).ok_or(io::ErrorKind::Other)?,
    })
}

impl Drop for SysvAttach {
    fn drop(&mut self) {
        // SAFETY: `addr` is an attachment this object made and nobody else detaches.
        unsafe { libc::shmdt(self.addr.as_ptr().cast()) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn meminfo_parsing() {
        let t = "MemTotal: 1 kB\nHugepagesize:       2048 kB\nHugetlb: 0 kB\n";
        assert_eq!(super::parse_huge_page_size(t), Some(2 * 1024 * 1024));
        assert_eq!(super::parse_huge_page_size("MemTotal: 1 kB\n"), None);
    }
}
