//! The few system calls the crate makes.

/// How many CPUs are online (1 if unknown).
pub(crate) fn cpus_online() -> usize {
    // SAFETY: sysconf takes an integer name and has no other effect.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// The calling thread's involuntary context switches so far (`ru_nivcsw`: the scheduler took
/// the CPU from it for another runnable thread); -1 if unknown.
pub(crate) fn involuntary_switches() -> i64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable `rusage`; getrusage(RUSAGE_THREAD) only writes it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) };
    if rc != 0 {
        return -1;
    }
    // SAFETY: getrusage returned 0, so it filled the struct (and it was zeroed before).
    unsafe { ru.assume_init() }.ru_nivcsw
}

/// Gives the CPU to another runnable thread, if any (`sched_yield`).
pub(crate) fn sched_yield() {
    // SAFETY: sched_yield takes no arguments and cannot fail on Linux.
    unsafe { libc::sched_yield() };
}
