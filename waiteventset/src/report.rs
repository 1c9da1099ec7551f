//! Where a waiter records what it is waiting for (PostgreSQL's `pgstat_report_wait_start/end`
//! writing `MyProc->wait_event_info`), so that other processes can read it.

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

static WAIT_EVENT_SLOT: AtomicPtr<AtomicU32> = AtomicPtr::new(std::ptr::null_mut());

/// Sets where this process reports its wait events: normally its proc slot's
/// `ProcWaitSlot::wait_event_info` (the `proc` crate installs it once it has a slot; it keeps
/// the segment mapped for the process's life, hence `'static`). `None` stops reporting.
/// A set with its own target ([`WaitEventSet::report_wait_events_to`](crate::WaitEventSet::report_wait_events_to))
/// uses that one instead.
pub fn set_wait_event_slot(slot: Option<&'static AtomicU32>) {
    let p = slot.map_or(std::ptr::null_mut(), |s| {
        s as *const AtomicU32 as *mut AtomicU32
    });
    WAIT_EVENT_SLOT.store(p, Ordering::Release);
}

/// The process-wide report target, if any.
pub fn wait_event_slot() -> Option<&'static AtomicU32> {
    // SAFETY: only `&'static AtomicU32` values are stored in WAIT_EVENT_SLOT.
    unsafe { WAIT_EVENT_SLOT.load(Ordering::Acquire).as_ref() }
}

/// Writes `info` into the target for the length of a wait, and 0 when dropped.
pub(crate) struct Reporting<'a>(Option<&'a AtomicU32>);

impl<'a> Reporting<'a> {
    pub(crate) fn start(target: Option<&'a AtomicU32>, info: u32) -> Reporting<'a> {
        if let Some(t) = target {
            t.store(info, Ordering::Relaxed);
        }
        Reporting(target)
    }
}

impl Drop for Reporting<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            t.store(0, Ordering::Relaxed);
        }
    }
}
