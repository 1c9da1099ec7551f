//! Shared-memory plumbing for lwlock's multi-process test and benchmark: a memfd mapped shared,
//! handed to a re-executed copy of the current binary through an inherited descriptor (the test
//! kit's exec'd helper, `pgipc_tests::helper`).
//! (The `shmem` crate does this properly; lwlock sits below it, so its tests do it by hand.)
#![allow(dead_code, unreachable_pub)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Child;
use std::ptr::NonNull;

/// Tells a re-executed binary which role to play (the test kit's exec'd helper).
pub use pgipc_tests::helper::ROLE_ENV;

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

    /// The mapping this re-executed helper inherited.
    pub fn from_env() -> SharedMap {
        let (fd, len) = pgipc_tests::helper::inherited_segment()
            .expect("not a helper")
            .expect("inherited segment");
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
        pgipc_tests::helper::command(role, self.fd.as_raw_fd(), self.len, args)
            .spawn()
            .expect("spawn child")
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: we created this mapping with exactly this address and length.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
