//! The few system calls the crate makes.

/// How many CPUs this process may run on (1 if unknown).
pub(crate) fn cpus_allowed() -> usize {
    // SAFETY: `set` is a plain bit set that sched_getaffinity fills for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 1;
        }
        libc::CPU_COUNT(&set).max(1) as usize
    }
}
