//! The one system call this crate makes itself (everything else goes through `dsm_impl`).

/// A random u32 from the kernel (`getrandom(2)`); falls back to time and pid bits if the
/// call fails, which is good enough to pick a handle (collisions are retried anyway).
pub(crate) fn random_u32() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: the buffer is a valid, writable 4-byte local; getrandom writes at most 4 bytes.
    let n = unsafe { libc::getrandom((&mut v as *mut u32).cast(), 4, 0) };
    if n == 4 {
        return v;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}
