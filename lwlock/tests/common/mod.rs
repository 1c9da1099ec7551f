//! Shared-memory plumbing for lwlock's multi-process test and benchmark: a memfd mapped shared,
//! handed to a re-executed copy of the current binary through an inherited descriptor.
//! (The `shmem` crate does this properly; lwlock sits below it, so its tests do it by hand.)
#![allow(dead_code, unreachable_pub)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, Command};
use std::ptr::NonNull;

/// Env var that tells a re-executed binary which role to play and which fd holds the memory.
pub const ROLE_ENV: &str = "PGIPC_LWLOCK_CHILD";
pub const FD_ENV: &str = "PGIPC_LWLOCK_FD";

pub struct SharedMap {
    pub fd: OwnedFd,
    pub ptr: NonNull<u8>,
    pub len: usize,
}

impl SharedMap {
    pub fn create(len: usize) -> SharedMap {
        let fd = rustix::fs::memfd_create("pgipc-lwlock-test", rustix::fs::MemfdFlags::empty())
            .expect("memfd_create");
        rustix::fs::ftruncate(&fd, len as u64).expect("ftruncate");
        Self::map(fd, len)
    }

    pub fn from_env() -> SharedMap {
        let raw: RawFd = std::env::var(FD_ENV)
            .expect("fd env")
            .parse()
            .expect("fd number");
        // SAFETY: the parent passed us this descriptor, inherited across exec, and nothing else
        // in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let len = rustix::fs::fstat(&fd).expect("fstat").st_size as usize;
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> SharedMap {
        // SAFETY: a fresh shared mapping of a file we own; no existing Rust object aliases it.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .expect("mmap");
        SharedMap {
            fd,
            ptr: NonNull::new(p.cast()).expect("non-null mapping"),
            len,
        }
    }

    /// A reference to a `T` at `offset`.
    ///
    /// # Safety
    /// `T` must be valid when all-zero (or already initialised there), `offset` aligned for `T`
    /// and in bounds, and `T` must be safe to share between processes (atomics only).
    pub unsafe fn at<T>(&self, offset: usize) -> &T {
        assert!(offset + std::mem::size_of::<T>() <= self.len);
        // SAFETY: per the caller's contract.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<T>() }
    }

    /// A slice of `n` `T`s at `offset`; same contract as [`at`](Self::at).
    pub unsafe fn slice<T>(&self, offset: usize, n: usize) -> &[T] {
        assert!(offset + n * std::mem::size_of::<T>() <= self.len);
        // SAFETY: per the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset).cast::<T>(), n) }
    }

    /// Starts a copy of the current executable in `role`, with this mapping's fd inherited.
    pub fn spawn(&self, role: &str, args: &[&str]) -> Child {
        let raw = self.fd.as_raw_fd();
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.args(args)
            .env(ROLE_ENV, role)
            .env(FD_ENV, raw.to_string());
        // memfd_create without MFD_CLOEXEC: the descriptor survives exec as it is.
        cmd.spawn().expect("spawn child")
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: we created this mapping with exactly this address and length.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Pins the calling process to `cpu` (when the machine has it); returns whether it did.
pub fn pin_to(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).is_ok()
}
