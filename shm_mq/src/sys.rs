//! The few system calls the crate makes.

/// How many CPUs are online (1 if unknown).
pub(crate) fn cpus_online() -> usize {
    // SAFETY: sysconf takes an integer name and has no other effect.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}
