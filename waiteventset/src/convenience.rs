//! `wait_latch` and `wait_latch_or_socket`: one-call waits over a cached or temporary set
//! (PostgreSQL's `WaitLatch`, `WaitLatchOrSocket` and `LatchWaitSet`).

use crate::error::WaitEventSetError;
use crate::events::{WaitEvent, WaitEvents};
use crate::postmaster_death;
use crate::set::WaitEventSet;
use pgipc_latch::{Latch, OwnedLatch};
use std::cell::RefCell;
use std::ops::Deref;
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// The cached set: position 0 is a latch slot, position 1 postmaster death (under a postmaster).
struct LatchWaitSet {
    set: WaitEventSet<'static>,
    pm_pos: Option<usize>,
}

thread_local! {
    static LATCH_WAIT_SET: RefCell<Option<LatchWaitSet>> = const { RefCell::new(None) };
}

fn build() -> Result<LatchWaitSet, WaitEventSetError> {
    let mut set = WaitEventSet::new(2)?;
    set.add_latch_slot()?;
    let pm_pos = if postmaster_death::under_postmaster() {
        Some(set.add(WaitEvents::EXIT_ON_PM_DEATH, None, None, 0)?)
    } else {
        None
    };
    Ok(LatchWaitSet { set, pm_pos })
}

/// Waits for the latch, postmaster death and/or a timeout (PostgreSQL's `WaitLatch`), over a
/// set built once per thread and reused.
///
/// `events` may hold `LATCH_SET` (then `latch` is required), `POSTMASTER_DEATH` or
/// `EXIT_ON_PM_DEATH` (one of which is required in a process under a postmaster; ignored in
/// one that is not) and `TIMEOUT` (accepted and ignored: `timeout` decides, `None` = no limit).
/// Returns `TIMEOUT`, or the events that fired (at least one, maybe not all).
pub fn wait_latch<L: Deref<Target = Latch>>(
    latch: Option<&OwnedLatch<L>>,
    events: WaitEvents,
    timeout: Option<Duration>,
    wait_event_info: u32,
) -> Result<WaitEvents, WaitEventSetError> {
    let latch = if events.contains(WaitEvents::LATCH_SET) {
        Some(
            latch
                .ok_or(WaitEventSetError::LatchWithoutLatch)?
                .as_owner(),
        )
    } else {
        None
    };
    LATCH_WAIT_SET.with(|cell| {
        let mut slot = cell.borrow_mut();
        // (Re)build when missing, or when a postmaster-death watch was installed after the
        // set was built (PostgreSQL builds LatchWaitSet after the watch; we may be asked first).
        let stale = slot
            .as_ref()
            .is_some_and(|l| l.pm_pos.is_none() && postmaster_death::under_postmaster());
        if slot.is_none() || stale {
            *slot = Some(build()?);
        }
        let Some(lws) = slot.as_mut() else {
            return Err(WaitEventSetError::TooManyEvents { capacity: 0 });
        };
        if let Some(pos) = lws.pm_pos {
            let pm = if events.contains(WaitEvents::EXIT_ON_PM_DEATH) {
                WaitEvents::EXIT_ON_PM_DEATH
            } else if events.contains(WaitEvents::POSTMASTER_DEATH) {
                WaitEvents::POSTMASTER_DEATH
            } else {
                return Err(WaitEventSetError::MissingPostmasterDeath);
            };
            lws.set.modify(pos, pm, None)?;
        }
        let mut out = [WaitEvent::EMPTY; 1];
        let n = lws
            .set
            .wait_with(latch, timeout, &mut out, wait_event_info)?;
        Ok(if n == 0 {
            WaitEvents::TIMEOUT
        } else {
            out[0].events
        })
    })
}

/// Waits for the latch, a socket, postmaster death and/or a timeout (PostgreSQL's
/// `WaitLatchOrSocket`), over a temporary three-slot set.
///
/// As [`wait_latch`], plus socket flags in `events` with `sock`. Returns `TIMEOUT` or the
/// events that fired.
pub fn wait_latch_or_socket<L: Deref<Target = Latch>>(
    latch: Option<&OwnedLatch<L>>,
    events: WaitEvents,
    sock: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
    wait_event_info: u32,
) -> Result<WaitEvents, WaitEventSetError> {
    let mut set = WaitEventSet::new(3)?;
    if events.contains(WaitEvents::LATCH_SET) {
        let l = latch.ok_or(WaitEventSetError::LatchWithoutLatch)?;
        set.add(WaitEvents::LATCH_SET, None, Some(l.as_owner()), 0)?;
    }
    if postmaster_death::under_postmaster() {
        if events.contains(WaitEvents::EXIT_ON_PM_DEATH) {
            set.add(WaitEvents::EXIT_ON_PM_DEATH, None, None, 0)?;
        } else if events.contains(WaitEvents::POSTMASTER_DEATH) {
            set.add(WaitEvents::POSTMASTER_DEATH, None, None, 0)?;
        }
    }
    let sock_events = events & WaitEvents::SOCKET_MASK;
    if !sock_events.is_empty() {
        set.add(sock_events, sock, None, 0)?;
    }
    let mut out = [WaitEvent::EMPTY; 1];
    let n = set.wait(timeout, &mut out, wait_event_info)?;
    Ok(if n == 0 {
        WaitEvents::TIMEOUT
    } else {
        out[0].events
            & (WaitEvents::LATCH_SET | WaitEvents::POSTMASTER_DEATH | WaitEvents::SOCKET_MASK)
    })
}

/// In a forked child: forgets the cached `wait_latch` set inherited from the parent (its epoll
/// instance is shared with the parent, so it must not be modified here), PostgreSQL's
/// `FreeWaitEventSetAfterFork` for `LatchWaitSet`. Sets the child built itself are unaffected;
/// inherited [`WaitEventSet`]s should simply be dropped (that only closes the descriptor).
pub fn forget_wait_sets_after_fork() {
    LATCH_WAIT_SET.with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            slot.take();
        }
    });
}
