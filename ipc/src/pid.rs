//! Whether another process still lives: the one check every crate uses (the data-directory and
//! socket lock files, pg_ctl, a queue waiting for its peer).

use std::io;

/// Whether process `pid` exists and has not died: `kill(pid, 0)` succeeds or fails only for
/// lack of permission (PostgreSQL's lock-file test), and the process is not a zombie (dead but
/// not yet reaped by its parent, which `kill` alone counts as alive).
///
/// `false` for `pid <= 0` (those name process groups, never one process).
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists and that we may
    // signal it.
    if unsafe { libc::kill(pid, 0) } != 0
        && io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
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
        // Gone between the two checks.
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        // Hidden from us (hidepid) or /proc missing: kill said it exists.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::pid_alive;

    #[test]
    fn self_and_parent_live_nonsense_does_not() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(0));
        assert!(!pid_alive(-1));
        // Above the kernel's largest pid (pid_max is at most 2^22).
        assert!(!pid_alive(i32::MAX));
    }

    #[test]
    fn an_unreaped_child_is_dead() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id() as i32;
        // Wait for it to exit without reaping it: a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pid_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!pid_alive(pid), "zombie {pid} still counted alive");
        child.wait().expect("reap");
        assert!(!pid_alive(pid));
    }
}
