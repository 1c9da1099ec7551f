//! Where a waiter records what it is waiting for (PostgreSQL's `pgstat_report_wait_start/end`
//! writing `MyProc->wait_event_info`), so that other processes can read it. The process-wide
//! target is the `wait_event` crate's storage pointer.

use std::sync::atomic::{AtomicU32, Ordering};

/// Sets where this process reports its wait events: normally its proc slot's
/// `ProcWaitSlot::wait_event_info` (the `proc` crate installs it once it has a slot). `None`
/// sends reports back to a process-local word. A set with its own target
/// ([`WaitEventSet::report_wait_events_to`](crate::WaitEventSet::report_wait_events_to))
/// uses that one instead.
pub fn set_wait_event_slot(slot: Option<&'static AtomicU32>) {
    match slot {
        // SAFETY: a 'static reference stays valid for the rest of the process.
        Some(s) => unsafe { pgipc_wait_event::set_wait_event_storage(s) },
        None => pgipc_wait_event::reset_wait_event_storage(),
    }
}

/// Writes `info` into the target (the set's own, else the process's) for the length of a
/// wait, and 0 when dropped.
pub(crate) struct Reporting<'a>(Option<&'a AtomicU32>);

impl<'a> Reporting<'a> {
    pub(crate) fn start(target: Option<&'a AtomicU32>, info: u32) -> Reporting<'a> {
        match target {
            Some(t) => t.store(info, Ordering::Relaxed),
            None => pgipc_wait_event::report_wait_start(info),
        }
        Reporting(target)
    }
}

impl Drop for Reporting<'_> {
    fn drop(&mut self) {
        match self.0 {
            Some(t) => t.store(0, Ordering::Relaxed),
            None => pgipc_wait_event::report_wait_end(),
        }
    }
}
