//! Waiting for several things at once: a latch, sockets, postmaster death and a timeout.
//!
//! Mirrors PostgreSQL's `storage/ipc/waiteventset.c` (`CreateWaitEventSet`,
//! `AddWaitEventToSet`, `ModifyWaitEvent`, `WaitEventSetWait`, `InitializeWaitEventSupport`),
//! the waiting half of `latch.c` (`WaitLatch`, `WaitLatchOrSocket`, `LatchWaitSet`) and, because
//! `pmsignal` sits later in our layering, the postmaster-death pipe of `pmsignal.c`
//! ([`postmaster_death`]; `pmsignal` re-exports it). Nothing here lives in shared memory.
//!
//! ```text
//!  WaitEventSet (process-local)                       kernel
//!  ┌──────────────────────────────────────┐
//!  │ entries[pos] = {events, fd, data}    │      epoll fd ─┬─ signalfd(SIGURG)   ◄─ tgkill by set()
//!  │ latch: LatchOwner (≤ 1) ─────────────┼─► Latch        ├─ PM-death pipe read end ◄─ EOF at PM exit
//!  │ latch_pos, pm_pos, exit_on_pm_death  │   (shared mem) └─ sockets
//!  │ report → &AtomicU32 (wait_event_info)│
//!  └──────────────────────────────────────┘   latch-only: FUTEX_WAIT on Latch.is_set ◄─ FUTEX_WAKE
//! ```
//!
//! # How a wait sleeps
//! A set whose only source of wake-ups is its latch (no socket events, and postmaster death
//! only when the parent-death signal fast path is armed and the latch is the process's "my
//! latch") sleeps in `FUTEX_WAIT` on the latch word: that is most `wait_latch` calls, and it
//! costs a setter one `FUTEX_WAKE`. Any other set
//! sleeps in `epoll_wait`; its latch entry is the process's signalfd for `SIGURG`, which stays
//! blocked, so a wake-up sent before the sleep pends on the fd and cannot be lost. The sleeper
//! publishes its mode in the latch before its final check (see `pgipc_latch`), so the setter
//! always wakes it the right way. With the fast path armed, the `SIGPWR` handler raises a flag
//! and then sets my latch, and a futex sleeper publishes its sleep before it looks at the flag
//! (publish, then check: [`postmaster_death`] explains why that order, and only it, never
//! sleeps through a death); the death is then confirmed from the pipe or from our re-parenting,
//! as PostgreSQL's `PostmasterIsAlive` confirms it from the pipe.
//!
//! # Concurrency contract
//! * A set is used by one thread at a time (`wait` takes `&mut self`); at most one latch per set,
//!   owned by this process ([`pgipc_latch::OwnedLatch`]); ownership is re-checked at each wait.
//! * `SIGURG` must be blocked in every thread that might receive it: call
//!   [`initialize_wait_event_support`] early in `main`. Wakers aim `SIGURG` at the sleeping
//!   thread (`tgkill`), so other threads never see it anyway.
//! * The wait-event code is written to the report slot (a `&AtomicU32`, normally the proc
//!   slot's `ProcWaitSlot::wait_event_info`) at the start of a wait and cleared at the end; only
//!   the waiter writes it, anyone may read it.
//! * Timeouts are totals; `EINTR` and spurious wake-ups do not extend them. Spurious returns
//!   are possible only as PostgreSQL allows them (the latch may be set by anyone at any time).
//!
//! # What this crate does not do
//! * No poll/kqueue/Windows back ends, no self-pipe: Linux epoll + signalfd + futex only.
//! * No resource owners: a set is freed when dropped (its epoll fd is close-on-exec).
//! * No external-FD accounting (`AcquireExternalFD`).
//! * It does not decide when the postmaster creates the pipe or forks; `postmaster` does, using
//!   [`PostmasterDeathPipe`].
//!
//! Key items: [`WaitEventSet`], [`WaitEvents`], [`WaitEvent`], [`wait_latch`],
//! [`wait_latch_or_socket`], [`PostmasterDeathPipe`], [`PostmasterDeathWatch`],
//! [`postmaster_is_alive`], [`set_wait_event_slot`].

mod convenience;
mod error;
mod events;
pub mod postmaster_death;
mod report;
mod set;
mod support;
mod sys;

pub use convenience::{forget_wait_sets_after_fork, wait_latch, wait_latch_or_socket};
pub use error::WaitEventSetError;
pub use events::{WaitEvent, WaitEvents};
pub use postmaster_death::{
    postmaster_is_alive, PostmasterDeathPipe, PostmasterDeathWatch, PostmasterStatus,
};
pub use report::set_wait_event_slot;
pub use set::WaitEventSet;
pub use support::initialize_wait_event_support;

#[cfg(test)]
mod tests;
