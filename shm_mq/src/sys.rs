//! The few system calls the crate makes.

/// How many CPUs are online (1 if unknown).
pub(crate) fn cpus_online() -> usize {
    // SAFETY: sysconf takes an integer name and has no other effect.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// Whether process `pid` exists and is not a zombie (an unreaped child that already died).
pub(crate) fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(s) => !matches!(
            s.rsplit_once(')')
                .and_then(|(_, t)| t.trim_start().chars().next()),
            Some('Z') | Some('X')
        ),
        Err(_) => false,
    }
}
