//! Knowing when the postmaster has died (PostgreSQL's postmaster-death pipe and
//! `PostmasterIsAlive`, which live in `pmsignal.c`; our `pmsignal` crate re-exports this).
//!
//! ```text
//!  postmaster                                children (forked or exec'd)
//!  PostmasterDeathPipe::create()
//!    write end ── kept, never written ──┐     read end (non-blocking)
//!    read end  ── inherited ────────────┼──►  PostmasterDeathWatch
//!                                       │       read 1 byte: EAGAIN → alive, EOF → dead
//!  postmaster exits: the kernel closes ─┘       epoll: EPOLLIN/HUP on the read end
//!  the last write end → EOF for everyone      + prctl(PR_SET_PDEATHSIG, SIGPWR) fast path
//! ```
//!
//! # How a child gets the read end
//! * **exec'd child** (`exec` mode, tests): the postmaster calls
//!   [`PostmasterDeathPipe::configure_child`] on the `std::process::Command`. That puts the
//!   read end's descriptor number in [`POSTMASTER_DEATH_FD_ENV`] and the postmaster's pid in
//!   [`POSTMASTER_PID_ENV`], and clears close-on-exec on the read end *in the child only*
//!   (between fork and exec). The child calls [`PostmasterDeathWatch::from_env`] and
//!   [`PostmasterDeathWatch::install`]. The write end stays close-on-exec, so no child ever
//!   holds it after exec.
//! * **forked child**: it calls [`PostmasterDeathPipe::into_child_watch`], which closes the
//!   inherited write end (or the pipe would never reach EOF) and keeps the read end.
//!
//! # The parent-death signal
//! [`PostmasterDeathWatch::install`] also asks the kernel (`prctl(PR_SET_PDEATHSIG)`) to send
//! `SIGPWR` when the parent exits, if the parent is the postmaster. Its handler raises a flag
//! (PostgreSQL's `postmaster_possibly_dead`) and then sets "my latch"
//! ([`pgipc_latch::set_my_latch`]), so [`postmaster_is_alive`] costs one load while the flag
//! is down, and a latch-only wait on my latch can sleep on the latch's futex (no epoll) and
//! still learn of the death at once. The flag only says "go and look": the proof is the pipe
//! at EOF or a parent that is no longer the postmaster (see [`postmaster_is_alive`]).
//! The kernel ties the signal to the parent *thread* that forked us; the postmaster is
//! single-threaded, so that is the postmaster.
//!
//! # No lost wake-up on postmaster death (publish, then check)
//! A futex sleeper must not miss the signal. The waiter (`WaitEventSet::wait`, through
//! [`pgipc_latch::LatchOwner::sleep_unless`]) first publishes that it sleeps (the latch's
//! `maybe_sleeping`), then looks at the latch and at the flag, then sleeps; the handler raises
//! the flag, then sets the latch. Whatever the interleaving, either the waiter sees the flag
//! or the set finds the sleep published and wakes it. The look at the flag is needed too: a
//! signal that came while the process was busy leaves a set latch that the caller's next
//! `reset` consumes. Before issue 11 the handler set a latch pointer that the waiter
//! published *after* its look at the flag; a signal in between set nobody's latch and the
//! child slept out its whole timeout, keeping the shared memory attached. The latch crate's
//! model and loom tests show that window and that the order above closes it;
//! `tests/pmdeath_stress.rs` kills a postmaster 200 times under children in latch-only waits.
//!
//! PostgreSQL 18 has no such window because its handler only raises the flag and every wait
//! for `WL_POSTMASTER_DEATH` / `WL_EXIT_ON_PM_DEATH` has the pipe in its epoll set; our
//! latch-only waits skip epoll for speed, so they depend on the handler's set.

use crate::error::WaitEventSetError;
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pgipc_latch::Latch;

/// Environment variable carrying the inherited read end's descriptor number to an exec'd child.
pub const POSTMASTER_DEATH_FD_ENV: &str = "PGIPC_POSTMASTER_DEATH_FD";
/// Environment variable carrying the postmaster's pid to an exec'd child.
pub const POSTMASTER_PID_ENV: &str = "PGIPC_POSTMASTER_PID";

/// The postmaster's side: both ends of the pipe. Only the postmaster keeps the write end.
#[derive(Debug)]
pub struct PostmasterDeathPipe {
    read: OwnedFd,
    write: OwnedFd,
    pid: i32,
}

impl PostmasterDeathPipe {
    /// Creates the pipe (PostgreSQL's `InitPostmasterDeathWatchHandle`). Both ends are
    /// non-blocking and close-on-exec.
    pub fn create() -> Result<Self, WaitEventSetError> {
        let (read, write) = sys::pipe()?;
        Ok(PostmasterDeathPipe {
            read,
            write,
            pid: std::process::id() as i32,
        })
    }

    /// The read end (what children watch).
    pub fn read_end(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The postmaster's pid recorded at creation.
    pub fn postmaster_pid(&self) -> i32 {
        self.pid
    }

    /// Prepares `cmd` so that the exec'd child inherits the read end: sets
    /// [`POSTMASTER_DEATH_FD_ENV`] and [`POSTMASTER_PID_ENV`] and clears close-on-exec on the
    /// read end between fork and exec (the parent's descriptor keeps its flag).
    pub fn configure_child(&self, cmd: &mut Command) {
        let fd = self.read.as_raw_fd();
        cmd.env(POSTMASTER_DEATH_FD_ENV, fd.to_string())
            .env(POSTMASTER_PID_ENV, self.pid.to_string());
        // SAFETY: the closure only calls fcntl, which is async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || sys::clear_cloexec_raw(fd));
        }
    }

    /// In a *forked* child: closes the write end and keeps the read end as this process's watch.
    pub fn into_child_watch(self) -> PostmasterDeathWatch {
        drop(self.write);
        PostmasterDeathWatch {
            fd: self.read,
            postmaster_pid: self.pid,
        }
    }
}

/// A child's handle on the read end of the postmaster-death pipe.
#[derive(Debug)]
pub struct PostmasterDeathWatch {
    fd: OwnedFd,
    postmaster_pid: i32,
}

/// Whether the postmaster is alive, from one look at the pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostmasterStatus {
    /// The pipe has no data and is not at EOF: the write end is still open.
    Alive,
    /// The pipe is at EOF: the postmaster has exited.
    Dead,
}

impl PostmasterDeathWatch {
    /// The exec'd child's side: takes the descriptor named by [`POSTMASTER_DEATH_FD_ENV`].
    ///
    /// `Ok(None)` when the variable is absent (not started by a postmaster). The descriptor is
    /// made non-blocking and close-on-exec again.
    pub fn from_env() -> Result<Option<Self>, WaitEventSetError> {
        let Ok(value) = std::env::var(POSTMASTER_DEATH_FD_ENV) else {
            return Ok(None);
        };
        let bad = |var: &'static str, value: &str| WaitEventSetError::BadInheritedFd {
            var,
            value: value.to_owned(),
        };
        let raw: i32 = value
            .parse()
            .map_err(|_| bad(POSTMASTER_DEATH_FD_ENV, &value))?;
        if raw < 0 || !sys::fd_is_open(raw) {
            return Err(bad(POSTMASTER_DEATH_FD_ENV, &value));
        }
        let pid_s = std::env::var(POSTMASTER_PID_ENV).unwrap_or_default();
        let postmaster_pid: i32 = pid_s.parse().map_err(|_| bad(POSTMASTER_PID_ENV, &pid_s))?;
        // SAFETY: the descriptor is open (checked) and, inherited across exec for this purpose,
        // owned by nothing else in this process; the variable is removed so it is taken once.
        let fd = unsafe { sys::own_raw_fd(raw) };
        std::env::remove_var(POSTMASTER_DEATH_FD_ENV);
        sys::set_nonblocking(fd.as_fd())?;
        sys::set_cloexec(fd.as_fd())?;
        Ok(Some(PostmasterDeathWatch { fd, postmaster_pid }))
    }

    /// The watched descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The postmaster's pid.
    pub fn postmaster_pid(&self) -> i32 {
        self.postmaster_pid
    }

    /// Reads the pipe once, without blocking (PostgreSQL's `PostmasterIsAliveInternal`).
    pub fn status(&self) -> Result<PostmasterStatus, WaitEventSetError> {
        match sys::read_one_nonblocking(self.fd.as_fd()) {
            Ok(None) => Ok(PostmasterStatus::Alive),
            Ok(Some(0)) => Ok(PostmasterStatus::Dead),
            Ok(Some(_)) => Err(WaitEventSetError::UnexpectedPipeData),
            Err(errno) => Err(WaitEventSetError::PipeRead { errno }),
        }
    }

    /// Makes this the process's watch, used by [`postmaster_is_alive`] and by postmaster-death
    /// events, and arms the parent-death signal when our parent is the postmaster. Once per
    /// process; a second call returns the watch back as `Err`.
    pub fn install(self) -> Result<(), Box<PostmasterDeathWatch>> {
        let pm = self.postmaster_pid;
        if let Err(w) = WATCH.set(self) {
            return Err(Box::new(w));
        }
        arm_death_signal(pm);
        Ok(())
    }
}

static WATCH: OnceLock<PostmasterDeathWatch> = OnceLock::new();
/// Raised by the parent-death signal handler; lowered by the check that reads the pipe
/// (PostgreSQL's `postmaster_possibly_dead`).
static POSSIBLY_DEAD: AtomicBool = AtomicBool::new(false);
/// Whether the parent-death signal is armed and its handler installed.
static SIGNAL_ARMED: AtomicBool = AtomicBool::new(false);

/// The parent-death signal handler: raise the flag, *then* set the process latch.
///
/// The order pairs with [`pgipc_latch::LatchOwner::sleep_unless`] (publish the sleep, then
/// look at the flag): a waiter that looked before the flag went up is woken by the set.
/// PostgreSQL's handler only raises the flag, because its waits watch the pipe in epoll; our
/// latch-only waits sleep on the latch's futex and have only this set to wake them.
extern "C" fn on_death_signal(_sig: libc::c_int) {
    let saved = std::io::Error::last_os_error().raw_os_error();
    POSSIBLY_DEAD.store(true, Ordering::SeqCst);
    // "My latch" is a `&'static Latch` (never freed), and `set` is async-signal-safe.
    pgipc_latch::set_my_latch();
    if let Some(e) = saved {
        // SAFETY: restoring errno, which the interrupted code may be about to read.
        unsafe { *libc::__errno_location() = e };
    }
}

fn arm_death_signal(postmaster_pid: i32) {
    // SAFETY: the handler only stores atomics and sets a latch, all async-signal-safe.
    if unsafe { sys::install_handler(sys::POSTMASTER_DEATH_SIGNAL, on_death_signal) }.is_err() {
        return;
    }
    if sys::set_parent_death_signal(Some(sys::POSTMASTER_DEATH_SIGNAL)).is_err() {
        return;
    }
    // Only meaningful if our parent is the postmaster and is still there (it may have died
    // before the prctl, in which case no signal will ever come).
    if sys::parent_pid() == postmaster_pid {
        SIGNAL_ARMED.store(true, Ordering::SeqCst);
    } else {
        let _ = sys::set_parent_death_signal(None);
    }
}

/// The process's installed watch, if any.
pub fn postmaster_death_watch() -> Option<&'static PostmasterDeathWatch> {
    WATCH.get()
}

/// Whether this process was started under a postmaster (a watch is installed).
pub fn under_postmaster() -> bool {
    WATCH.get().is_some()
}

/// Whether the parent-death signal fast path is armed in this process.
pub fn death_signal_armed() -> bool {
    SIGNAL_ARMED.load(Ordering::Relaxed)
}

/// Whether a latch-only wait on `latch` may sleep on the latch's futex and still learn of
/// postmaster death at once: the parent-death signal is armed and `latch` is this process's
/// "my latch", the one the signal handler sets. Any other wait that watches postmaster death
/// sleeps in epoll on the pipe.
pub(crate) fn death_signal_wakes(latch: &Latch) -> bool {
    death_signal_armed() && pgipc_latch::my_latch().is_some_and(|m| std::ptr::eq(m, latch))
}

/// Whether the postmaster is alive (PostgreSQL's `PostmasterIsAlive`).
///
/// With the parent-death signal armed this is one atomic load until the signal arrives. Then
/// (and always without the fast path) it looks for proof of death: the pipe at EOF, or, with
/// the signal armed, a parent that is no longer the postmaster (the kernel re-parents us before
/// it sends the signal, and the signal is armed only while the postmaster is our parent). The
/// second proof matters: for the moment between `fork` and `exec` of a child the postmaster
/// was starting when it died, that child still holds the write end, so the pipe reads "alive"
/// although the postmaster is gone, and a futex sleeper would never hear of it again.
/// PostgreSQL reads the pipe only; its waits stay in epoll on the pipe and see the EOF later.
/// A process without a watch has no postmaster to lose and gets `true`. A pipe error (which
/// PostgreSQL treats as FATAL) reads as "dead", so the caller exits. Death is sticky: once
/// seen, every later call looks again and answers `false`.
pub fn postmaster_is_alive() -> bool {
    let Some(w) = WATCH.get() else {
        return true;
    };
    let armed = death_signal_armed();
    if armed && !POSSIBLY_DEAD.load(Ordering::Relaxed) {
        return true;
    }
    // Lower the flag before looking, so a signal that arrives during the look is not missed.
    POSSIBLY_DEAD.store(false, Ordering::SeqCst);
    let orphaned = armed && sys::parent_pid() != w.postmaster_pid;
    if !orphaned && matches!(w.status(), Ok(PostmasterStatus::Alive)) {
        return true;
    }
    POSSIBLY_DEAD.store(true, Ordering::SeqCst);
    false
}

/// Whether the death signal has been seen and not yet checked against the pipe.
pub(crate) fn possibly_dead() -> bool {
    POSSIBLY_DEAD.load(Ordering::SeqCst)
}

/// The watch's descriptor for epoll registration.
pub(crate) fn watch_fd() -> Result<BorrowedFd<'static>, WaitEventSetError> {
    WATCH
        .get()
        .map(|w| w.fd.as_fd())
        .ok_or(WaitEventSetError::NoPostmasterDeathWatch)
}

#[allow(dead_code)]
pub(crate) fn watch_raw_fd() -> Option<i32> {
    WATCH.get().map(|w| sys::raw(w.fd.as_fd()))
}
