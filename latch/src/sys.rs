//! Every system call the latch makes: the shared futex, the wake-up signal, and process/thread ids.
//!
//! All of them are async-signal-safe (plain system calls, no allocation, no locks), because
//! [`Latch::set`](crate::Latch::set) may run inside a signal handler.
//!
//! Under `cfg(loom)` the futex is replaced by a model made of loom's mutex and condition
//! variable (see [`FutexModel`]), so that a lost wake-up shows up as a loom deadlock.

use crate::sync::AtomicU32;
#[cfg(not(loom))]
use std::time::Duration;

/// The signal a setter sends to an owner that sleeps in epoll (PostgreSQL uses SIGURG too).
pub(crate) const WAKEUP_SIGNAL: i32 = libc::SIGURG;

/// Sleeps while `*word == expected` (the `lwlock` crate's shared futex: the word may be in
/// memory other processes map).
///
/// Returns on a wake-up, a signal, a timeout, or at once if the word differs; callers re-check.
#[cfg(not(loom))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    pgipc_lwlock::futex::wait(word, expected, timeout);
}

/// Wakes every process sleeping on `word` (shared futex). Async-signal-safe.
#[cfg(not(loom))]
pub(crate) fn futex_wake(word: &AtomicU32) {
    pgipc_lwlock::futex::wake_all(word);
}

/// Sends the wake-up signal to thread `tid` of process `pid` (or to the process when `tid` is 0).
///
/// Errors (the process exited, the pid was reused by a process we may not signal) are ignored, as
/// PostgreSQL ignores them: a lost target has nobody left to wake. Async-signal-safe.
pub(crate) fn send_wakeup(pid: i32, tid: i32) {
    // SAFETY: reading and restoring this thread's errno (we may be in a signal handler that
    // interrupted code about to look at it); tgkill/kill take plain integers.
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        if tid > 0 {
            libc::syscall(libc::SYS_tgkill, pid, tid, WAKEUP_SIGNAL);
        } else {
            libc::kill(pid, WAKEUP_SIGNAL);
        }
        *errno = saved;
    }
}

/// This process's id, cached (a wait checks ownership against it, and a `getpid` system call
/// per wait would show in the latch round-trip benchmark). A `pthread_atfork` child handler
/// refreshes the cache, so a forked child sees its own pid.
pub(crate) fn my_pid() -> i32 {
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::Once;
    static PID: AtomicI32 = AtomicI32::new(0);
    static ATFORK: Once = Once::new();
    extern "C" fn refresh_in_child() {
        PID.store(
            rustix::process::getpid().as_raw_nonzero().get(),
            Ordering::Relaxed,
        );
    }
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only stores an atomic; no pointers are passed.
        unsafe {
            libc::pthread_atfork(None, None, Some(refresh_in_child));
        }
    });
    refresh_in_child();
    PID.load(Ordering::Relaxed)
}

/// This thread's id, cached per thread (a signal-mode wait publishes it on every sleep). The
/// cache remembers the pid it was taken under, so a forked child's thread asks again.
pub(crate) fn my_tid() -> i32 {
    use std::cell::Cell;
    thread_local! {
        static TID: Cell<(i32, i32)> = const { Cell::new((0, 0)) };
    }
    let pid = my_pid();
    TID.with(|c| {
        let (cached_pid, tid) = c.get();
        if cached_pid == pid {
            return tid;
        }
        let tid = rustix::thread::gettid().as_raw_nonzero().get();
        c.set((pid, tid));
        tid
    })
}

/// A futex for loom: `wait` checks the word and enqueues under one mutex, exactly as the kernel
/// checks and enqueues under its hash-bucket lock, so a wake that precedes the check is seen
/// through the word and a wake that follows it is seen through the sequence number.
#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct FutexModel {
    seq: loom::sync::Mutex<u64>,
    cv: loom::sync::Condvar,
}

#[cfg(loom)]
impl FutexModel {
    pub(crate) fn wait(&self, word: &AtomicU32, expected: u32) {
        let mut g = self.seq.lock().unwrap();
        if word.load(crate::sync::Ordering::SeqCst) != expected {
            return;
        }
        let start = *g;
        while *g == start {
            g = self.cv.wait(g).unwrap();
        }
    }

    pub(crate) fn wake(&self) {
        *self.seq.lock().unwrap() += 1;
        self.cv.notify_all();
    }
}
