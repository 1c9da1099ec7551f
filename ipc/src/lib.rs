//! Process exit: the callbacks a process runs when it leaves, in PostgreSQL's order.
//!
//! Mirrors PostgreSQL's `storage/ipc/ipc.c`. Every crate that takes something in shared memory
//! (a PGPROC slot, a place in the ProcArray, a sinval reader slot, a DSM mapping) registers a
//! callback here that gives it back, and [`proc_exit`] runs them all before the process ends.
//!
//! ```text
//!  process-local state (one per process, behind a mutex)
//!  ┌──────────────────────────────────────────────────────────┐
//!  │ before_shmem_exit: [cb0, cb1, ...]   ── run newest first │  1. while shared memory is
//!  │                                                          │     fully usable
//!  │ (hook) dsm_backend_shutdown                              │  2. detach DSM segments
//!  │ on_shmem_exit:     [cb0, cb1, ...]   ── run newest first │  3. give back shared slots
//!  │ on_proc_exit:      [cb0, cb1, ...]   ── run newest first │  4. process-local clean-up
//!  └──────────────────────────────────────────────────────────┘
//!  proc_exit(code) = 1..4, then exit(code)     shmem_exit(code) = 1..3 only
//! ```
//!
//! Each list holds at most [`MAX_ON_EXITS`] entries, as in PostgreSQL. A callback is taken off
//! its list *before* it runs, so it never runs twice. A callback registered while the lists are
//! being run is run too (it is the newest entry of its list).
//!
//! # A panicking callback is a crash
//! A panic is a bug, PostgreSQL's PANIC: whatever the callback was giving back may be
//! half-released, so the process must not look as if it left in order. [`proc_exit`],
//! [`shmem_exit`] and the `exit()` hook therefore log `PANIC:` and abort (SIGABRT, which the
//! postmaster answers with a crash restart) instead of carrying on with the remaining callbacks
//! and exiting 0 or 1. (In a server process the panic hook has already aborted by then.) The
//! engine behind them, [`ExitCallbacks`], lets the panic propagate to its caller.
//!
//! # Concurrency contract
//! Server processes are single-threaded, and the lists belong to the **process**, not to a
//! thread: they live in one process-wide mutex-protected value. What that means for a
//! multi-threaded program such as the libtest harness:
//! * every thread registers into the same three lists, so parallel tests see each other's
//!   callbacks;
//! * [`proc_exit`] called from any thread runs *every* registered callback on that thread and
//!   then ends the whole process (the test binary with it);
//! * callbacks run without the mutex held, so they may register or cancel callbacks.
//!
//! Tests that want the ordering rules without touching the process-wide lists use an
//! [`ExitCallbacks`] value of their own (the same engine, owned by the caller). Tests that need
//! the real [`proc_exit`] run it in a child process.
//!
//! # Forked children
//! A child created by `fork()` inherits the parent's lists. It must call [`on_exit_reset`] first
//! thing; [`proc_exit`] in a child that did not refuses to run the parent's callbacks and aborts
//! (PostgreSQL PANICs with "proc_exit() called in child process"). `on_exit_reset` forgets the
//! inherited callbacks without dropping them: their captured values belong to the parent.
//!
//! # What this crate does not do
//! * It knows nothing about what the callbacks release; it has no dependency on shared memory.
//! * DSM detach is a hook ([`set_dsm_hooks`]) that the `dsm` crate installs, because `dsm` sits
//!   above this crate in the layering.
//! * No signal handling: a process that dies from a signal runs nothing (that is a crash, which
//!   the postmaster answers).
//!
//! # Is that process alive?
//! [`pid_alive`] is the workspace's one liveness check of another process by pid (lock files,
//! pg_ctl, a queue's peer): it exists and is not a zombie.
//!
//! Key items: [`proc_exit`], [`shmem_exit`], [`before_shmem_exit`], [`on_shmem_exit`],
//! [`on_proc_exit`], [`cancel_before_shmem_exit`], [`on_exit_reset`], [`ExitCallbacks`],
//! [`pid_alive`].

mod pid;

pub use pid::pid_alive;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard, Once};

/// Most callbacks one list can hold (PostgreSQL's `MAX_ON_EXITS`).
pub const MAX_ON_EXITS: usize = 20;

/// A callback run at exit; it receives the exit code (`-1` when the process left through
/// `exit()` without calling [`proc_exit`]).
pub type ExitCallback = Box<dyn FnOnce(i32) + Send + 'static>;

/// Identifies one registration, so that [`cancel_before_shmem_exit`] can name it (PostgreSQL
/// compares the function pointer and its argument instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

/// The three callback lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitList {
    /// Run first, while every shared structure is still usable.
    BeforeShmemExit,
    /// Run after DSM detach: releases of shared-memory slots.
    OnShmemExit,
    /// Run last: process-local clean-up.
    OnProcExit,
}

impl fmt::Display for ExitList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitList::BeforeShmemExit => "before_shmem_exit",
            ExitList::OnShmemExit => "on_shmem_exit",
            ExitList::OnProcExit => "on_proc_exit",
        })
    }
}

/// Failures of callback registration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpcError {
    /// The list already holds [`MAX_ON_EXITS`] callbacks (PostgreSQL: FATAL, SQLSTATE 54000).
    #[error("out of {list} slots")]
    OutOfSlots {
        /// The full list.
        list: ExitList,
    },
    /// [`cancel_before_shmem_exit`] named a callback that is not the newest entry.
    #[error("before_shmem_exit callback {id:?} is not the latest entry")]
    NotLatest {
        /// The callback the caller tried to cancel.
        id: CallbackId,
    },
}

impl IpcError {
    /// The SQLSTATE PostgreSQL reports for this error (`XX000` for internal errors).
    pub const fn sqlstate(&self) -> &'static str {
        match self {
            IpcError::OutOfSlots { .. } => "54000",
            IpcError::NotLatest { .. } => "XX000",
        }
    }
}

/// Hooks the `dsm` crate installs: what `shmem_exit` and `on_exit_reset` do about DSM.
#[derive(Debug, Clone, Copy)]
pub struct DsmHooks {
    /// Detaches every DSM segment, running their detach callbacks (PostgreSQL's
    /// `dsm_backend_shutdown`); called between the two shared-memory lists.
    pub backend_shutdown: fn(),
    /// Forgets the inherited DSM detach callbacks in a forked child (`reset_on_dsm_detach`).
    pub reset_on_detach: fn(),
}

/// The three lists and the exit state: the engine behind the process-wide functions, usable on
/// its own by tests and by anything that wants a private set of exit actions.
pub struct ExitCallbacks {
    lists: [Vec<(CallbackId, ExitCallback)>; 3],
    next_id: u64,
    shmem_exit_inprogress: bool,
    proc_exit_inprogress: bool,
    dsm: Option<DsmHooks>,
    owner_pid: u32,
}

impl fmt::Debug for ExitCallbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExitCallbacks")
            .field("before_shmem_exit", &self.lists[0].len())
            .field("on_shmem_exit", &self.lists[1].len())
            .field("on_proc_exit", &self.lists[2].len())
            .field("shmem_exit_inprogress", &self.shmem_exit_inprogress)
            .field("proc_exit_inprogress", &self.proc_exit_inprogress)
            .finish()
    }
}

impl Default for ExitCallbacks {
    fn default() -> Self {
        Self::new()
    }
}

fn slot(list: ExitList) -> usize {
    match list {
        ExitList::BeforeShmemExit => 0,
        ExitList::OnShmemExit => 1,
        ExitList::OnProcExit => 2,
    }
}

impl ExitCallbacks {
    /// Empty lists, nothing in progress.
    pub const fn new() -> Self {
        ExitCallbacks {
            lists: [Vec::new(), Vec::new(), Vec::new()],
            next_id: 1,
            shmem_exit_inprogress: false,
            proc_exit_inprogress: false,
            dsm: None,
            owner_pid: 0,
        }
    }

    /// Adds `cb` to `list`; it will run before every callback already there.
    pub fn register(&mut self, list: ExitList, cb: ExitCallback) -> Result<CallbackId, IpcError> {
        let l = &mut self.lists[slot(list)];
        if l.len() >= MAX_ON_EXITS {
            return Err(IpcError::OutOfSlots { list });
        }
        let id = CallbackId(self.next_id);
        self.next_id += 1;
        l.push((id, cb));
        if self.owner_pid == 0 {
            self.owner_pid = std::process::id();
        }
        Ok(id)
    }

    /// Removes `id` from the before-shmem-exit list if it is the newest entry there (the only
    /// cancellation PostgreSQL allows); otherwise an error and nothing changes.
    pub fn cancel_before_shmem_exit(&mut self, id: CallbackId) -> Result<(), IpcError> {
        let l = &mut self.lists[0];
        match l.last() {
            Some((last, _)) if *last == id => {
                l.pop();
                Ok(())
            }
            _ => Err(IpcError::NotLatest { id }),
        }
    }

    /// How many callbacks `list` holds.
    pub fn len(&self, list: ExitList) -> usize {
        self.lists[slot(list)].len()
    }

    /// Whether all three lists are empty.
    pub fn is_empty(&self) -> bool {
        self.lists.iter().all(Vec::is_empty)
    }

    /// Empties every list without running or dropping the callbacks (see the crate docs on
    /// forked children) and makes the calling process their owner.
    pub fn reset(&mut self) {
        for l in &mut self.lists {
            for entry in l.drain(..) {
                std::mem::forget(entry);
            }
        }
        self.shmem_exit_inprogress = false;
        self.proc_exit_inprogress = false;
        self.owner_pid = std::process::id();
        if let Some(h) = self.dsm {
            (h.reset_on_detach)();
        }
    }

    fn pop(&mut self, list: ExitList) -> Option<ExitCallback> {
        self.lists[slot(list)].pop().map(|(_, cb)| cb)
    }

    /// Runs the before-shmem-exit callbacks, the DSM hook and the on-shmem-exit callbacks,
    /// newest first (PostgreSQL's `shmem_exit`). The lists are empty afterwards. A panicking
    /// callback's panic propagates; the callbacks after it stay on their lists.
    pub fn shmem_exit(&mut self, code: i32) {
        run_shmem_exit(&mut |f| f(self), code);
    }

    /// [`shmem_exit`](Self::shmem_exit), then the on-proc-exit callbacks (PostgreSQL's
    /// `proc_exit_prepare`); does not end the process.
    pub fn proc_exit_prepare(&mut self, code: i32) {
        run_proc_exit_prepare(&mut |f| f(self), code);
    }
}

/// Runs `cb`; a panic propagates (see the crate documentation: a panicking callback is a crash).
fn run_one(cb: ExitCallback, code: i32) {
    cb(code);
}

/// Runs `f` (the process-wide lists); a panic out of a callback logs PANIC and aborts, so the
/// process exits as crashed and not with a clean code.
fn crash_on_panic(what: &str, f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        eprintln!("PANIC:  {what} callback panicked: {msg}");
        std::process::abort();
    }
}

/// Access to an `ExitCallbacks` for the duration of one closure call (never held while a
/// callback runs).
type With<'a> = dyn FnMut(&mut dyn FnMut(&mut ExitCallbacks)) + 'a;

fn run_list(with: &mut With<'_>, list: ExitList, code: i32) {
    loop {
        let mut next = None;
        with(&mut |s| next = s.pop(list));
        match next {
            Some(cb) => run_one(cb, code),
            None => break,
        }
    }
}

fn run_shmem_exit(with: &mut With<'_>, code: i32) {
    let mut hooks = None;
    with(&mut |s| {
        s.shmem_exit_inprogress = true;
        hooks = s.dsm;
    });
    run_list(with, ExitList::BeforeShmemExit, code);
    if let Some(h) = hooks {
        (h.backend_shutdown)();
    }
    run_list(with, ExitList::OnShmemExit, code);
    with(&mut |s| s.shmem_exit_inprogress = false);
}

fn run_proc_exit_prepare(with: &mut With<'_>, code: i32) {
    with(&mut |s| s.proc_exit_inprogress = true);
    run_shmem_exit(with, code);
    run_list(with, ExitList::OnProcExit, code);
}

// ---- the process-wide lists ----

static STATE: Mutex<ExitCallbacks> = Mutex::new(ExitCallbacks::new());
static ATEXIT: Once = Once::new();

fn state() -> MutexGuard<'static, ExitCallbacks> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn with_global(f: &mut dyn FnMut(&mut ExitCallbacks)) {
    f(&mut state());
}

extern "C" fn atexit_callback() {
    // `exit()` without `proc_exit` (a library, or `std::process::exit`): run what is left, as
    // PostgreSQL's atexit hook does, but never the callbacks of a parent we were forked from.
    let (mine, running) = {
        let s = state();
        (s.owner_pid == std::process::id(), s.proc_exit_inprogress)
    };
    if mine && !running {
        crash_on_panic("exit", || run_proc_exit_prepare(&mut with_global, -1));
    }
}

fn register(list: ExitList, cb: ExitCallback) -> Result<CallbackId, IpcError> {
    ATEXIT.call_once(|| {
        // SAFETY: `atexit_callback` is a plain `extern "C" fn()` that stays valid for the life of
        // the process; registering it has no other precondition.
        unsafe {
            libc::atexit(atexit_callback);
        }
    });
    state().register(list, cb)
}

/// Registers `cb` to run early in [`shmem_exit`], while shared memory is fully usable
/// (PostgreSQL's `before_shmem_exit`). Newest runs first.
pub fn before_shmem_exit(cb: impl FnOnce(i32) + Send + 'static) -> Result<CallbackId, IpcError> {
    register(ExitList::BeforeShmemExit, Box::new(cb))
}

/// Registers `cb` to run in [`shmem_exit`] after DSM detach: the place to give back shared
/// slots (PostgreSQL's `on_shmem_exit`). Newest runs first.
pub fn on_shmem_exit(cb: impl FnOnce(i32) + Send + 'static) -> Result<CallbackId, IpcError> {
    register(ExitList::OnShmemExit, Box::new(cb))
}

/// Registers `cb` to run in [`proc_exit`] after every shared-memory callback
/// (PostgreSQL's `on_proc_exit`). Newest runs first.
pub fn on_proc_exit(cb: impl FnOnce(i32) + Send + 'static) -> Result<CallbackId, IpcError> {
    register(ExitList::OnProcExit, Box::new(cb))
}

/// Removes a before-shmem-exit callback, which must be the newest one
/// (PostgreSQL's `cancel_before_shmem_exit`).
pub fn cancel_before_shmem_exit(id: CallbackId) -> Result<(), IpcError> {
    state().cancel_before_shmem_exit(id)
}

/// Installs the DSM hooks (called once by the `dsm` crate).
pub fn set_dsm_hooks(hooks: DsmHooks) {
    state().dsm = Some(hooks);
}

/// Runs the shared-memory callbacks without ending the process (PostgreSQL's `shmem_exit`,
/// used by the postmaster before a crash restart and by single-user mode).
pub fn shmem_exit(code: i32) {
    crash_on_panic("shmem_exit", || run_shmem_exit(&mut with_global, code));
}

/// Runs every exit callback in order, then ends the process with `code`
/// (PostgreSQL's `proc_exit`).
///
/// Called in a forked child that has not called [`on_exit_reset`], it prints
/// `PANIC:  proc_exit() called in child process` and aborts without running anything.
pub fn proc_exit(code: i32) -> ! {
    let owner = state().owner_pid;
    if owner != 0 && owner != std::process::id() {
        eprintln!("PANIC:  proc_exit() called in child process");
        std::process::abort();
    }
    crash_on_panic("proc_exit", || {
        run_proc_exit_prepare(&mut with_global, code)
    });
    std::process::exit(code)
}

/// Forgets every inherited callback (first thing a forked child does; PostgreSQL's
/// `on_exit_reset`, which also resets DSM detach callbacks through the hook).
pub fn on_exit_reset() {
    state().reset();
}

/// Whether [`shmem_exit`] is running (PostgreSQL's `shmem_exit_inprogress`).
pub fn shmem_exit_inprogress() -> bool {
    state().shmem_exit_inprogress
}

/// Whether [`proc_exit`] (or the `exit()` hook) is running (PostgreSQL's `proc_exit_inprogress`).
pub fn proc_exit_inprogress() -> bool {
    state().proc_exit_inprogress
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    type Log = Arc<StdMutex<Vec<String>>>;

    fn logger(log: &Log, what: &str) -> ExitCallback {
        let log = log.clone();
        let what = what.to_owned();
        Box::new(move |code| log.lock().unwrap().push(format!("{what}({code})")))
    }

    #[test]
    fn order_is_lifo_within_lists_and_lists_in_postgres_order() {
        let log: Log = Arc::default();
        let mut cbs = ExitCallbacks::new();
        cbs.register(ExitList::OnProcExit, logger(&log, "proc1"))
            .unwrap();
        cbs.register(ExitList::OnShmemExit, logger(&log, "shmem1"))
            .unwrap();
        cbs.register(ExitList::BeforeShmemExit, logger(&log, "before1"))
            .unwrap();
        cbs.register(ExitList::OnShmemExit, logger(&log, "shmem2"))
            .unwrap();
        cbs.register(ExitList::OnProcExit, logger(&log, "proc2"))
            .unwrap();
        cbs.register(ExitList::BeforeShmemExit, logger(&log, "before2"))
            .unwrap();
        cbs.proc_exit_prepare(7);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "before2(7)",
                "before1(7)",
                "shmem2(7)",
                "shmem1(7)",
                "proc2(7)",
                "proc1(7)"
            ]
        );
        assert!(cbs.is_empty());
    }

    #[test]
    fn shmem_exit_leaves_proc_exit_list() {
        let log: Log = Arc::default();
        let mut cbs = ExitCallbacks::new();
        cbs.register(ExitList::OnProcExit, logger(&log, "proc"))
            .unwrap();
        cbs.register(ExitList::OnShmemExit, logger(&log, "shmem"))
            .unwrap();
        cbs.shmem_exit(0);
        assert_eq!(*log.lock().unwrap(), ["shmem(0)"]);
        assert_eq!(cbs.len(ExitList::OnProcExit), 1);
        assert!(!cbs.shmem_exit_inprogress);
    }

    #[test]
    fn list_limit() {
        let mut cbs = ExitCallbacks::new();
        for _ in 0..MAX_ON_EXITS {
            cbs.register(ExitList::OnShmemExit, Box::new(|_| {}))
                .unwrap();
        }
        let err = cbs
            .register(ExitList::OnShmemExit, Box::new(|_| {}))
            .unwrap_err();
        assert_eq!(err.to_string(), "out of on_shmem_exit slots");
        assert_eq!(err.sqlstate(), "54000");
        // The other lists are independent.
        cbs.register(ExitList::OnProcExit, Box::new(|_| {}))
            .unwrap();
    }

    #[test]
    fn cancel_only_the_latest() {
        let log: Log = Arc::default();
        let mut cbs = ExitCallbacks::new();
        let a = cbs
            .register(ExitList::BeforeShmemExit, logger(&log, "a"))
            .unwrap();
        let b = cbs
            .register(ExitList::BeforeShmemExit, logger(&log, "b"))
            .unwrap();
        assert_eq!(
            cbs.cancel_before_shmem_exit(a),
            Err(IpcError::NotLatest { id: a })
        );
        cbs.cancel_before_shmem_exit(b).unwrap();
        cbs.shmem_exit(1);
        assert_eq!(*log.lock().unwrap(), ["a(1)"]);
        assert_eq!(
            cbs.cancel_before_shmem_exit(a),
            Err(IpcError::NotLatest { id: a })
        );
    }

    #[test]
    fn a_panicking_callback_is_not_swallowed() {
        let log: Log = Arc::default();
        let mut cbs = ExitCallbacks::new();
        cbs.register(ExitList::OnShmemExit, logger(&log, "first"))
            .unwrap();
        cbs.register(ExitList::OnShmemExit, Box::new(|_| panic!("boom")))
            .unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| cbs.shmem_exit(2)));
        let msg = r.expect_err("the panic reaches the caller");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"boom"));
        // Nothing ran after it; the panicking callback itself is gone (never run twice).
        assert!(log.lock().unwrap().is_empty());
        assert_eq!(cbs.len(ExitList::OnShmemExit), 1);
    }

    #[test]
    fn reset_forgets_without_running() {
        let log: Log = Arc::default();
        let mut cbs = ExitCallbacks::new();
        cbs.register(ExitList::OnShmemExit, logger(&log, "x"))
            .unwrap();
        cbs.reset();
        cbs.proc_exit_prepare(0);
        assert!(log.lock().unwrap().is_empty());
    }
}
