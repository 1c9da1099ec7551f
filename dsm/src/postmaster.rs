//! The postmaster's side: create the control segment, and destroy what a control segment
//! still lists (at shutdown, crash restart, or after a dead predecessor).

use crate::control::{
    control_bytes_needed, control_max_items, is_main_region_dsm_handle, ControlView,
};
use crate::DsmError;
use pgipc_dsm_impl::{DsmHandle, DsmImpl, DsmImplError, DsmImplType, DSM_HANDLE_INVALID};
use std::sync::atomic::Ordering;

/// What a clean-up destroyed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// Handles of the segments destroyed (the control segment itself not included).
    pub destroyed: Vec<DsmHandle>,
    /// Segments listed but not destroyed, with the reason (already gone, permissions...).
    pub failed: Vec<(DsmHandle, String)>,
    /// Whether the control segment itself was found and removed.
    pub control_removed: bool,
}

/// Creates the control segment for a server of `max_backends` backends (64 + 5 per backend
/// slots) under a fresh random handle and returns that handle (PostgreSQL's
/// `dsm_postmaster_startup`). For the mmap implementation, first removes every
/// `pg_dynshmem/mmap.*` file (they survive crashes and reboots).
///
/// The caller records the handle in the main segment (`Shmem::set_dsm_control`) and in the
/// interlock (`Interlock::set_dsm_control`), and calls [`dsm_postmaster_shutdown`] when it
/// discards shared memory. The postmaster keeps no mapping of it.
pub fn dsm_postmaster_startup(imp: &DsmImpl, max_backends: u32) -> Result<DsmHandle, DsmError> {
    if imp.kind() == DsmImplType::Mmap {
        let dir = imp.data_dir().ok_or(DsmImplError::NoDataDir)?;
        DsmImpl::cleanup_mmap_files(dir)?;
    }
    let maxitems = control_max_items(max_backends).ok_or(DsmError::ControlTooLarge)?;
    let size = control_bytes_needed(maxitems).ok_or(DsmError::ControlTooLarge)?;
    loop {
        let h = crate::sys::random_u32() << 1;
        if h == DSM_HANDLE_INVALID {
            continue;
        }
        let m = match imp.create(h, size) {
            Ok(m) => m,
            Err(DsmImplError::Exists { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let ok = ControlView::init(&m, maxitems).is_some();
        let detached = imp.detach(m);
        if !ok {
            let _ = imp.destroy(None, h);
            return Err(DsmError::ControlNotValid);
        }
        detached?;
        return Ok(h);
    }
}

/// Destroys every segment the control segment `control` still lists, then the control
/// segment itself (PostgreSQL's `dsm_postmaster_shutdown`, run when the postmaster discards
/// shared memory: at shutdown and before a crash restart). Every child must be gone: the
/// table is read without the lock. A control segment that fails the sanity check is left
/// alone: [`DsmError::ControlCorrupt`].
pub fn dsm_postmaster_shutdown(
    imp: &DsmImpl,
    control: DsmHandle,
) -> Result<CleanupReport, DsmError> {
    let m = imp.attach(control)?;
    cleanup(imp, control, m).ok_or(DsmError::ControlCorrupt)
}

/// Destroys what a dead predecessor's control segment `old` lists, then that control
/// segment (PostgreSQL's `dsm_cleanup_using_control_segment`, called at start-up for each
/// handle the interlock found in a dead server's header). A control segment that is gone
/// is nothing to do (`Ok` with an empty report); one that fails the sanity check is left
/// alone ([`DsmError::ControlCorrupt`]).
pub fn dsm_cleanup_using_control_segment(
    imp: &DsmImpl,
    old: DsmHandle,
) -> Result<CleanupReport, DsmError> {
    let m = match imp.attach(old) {
        Ok(m) => m,
        Err(_) => return Ok(CleanupReport::default()),
    };
    cleanup(imp, old, m).ok_or(DsmError::ControlCorrupt)
}

/// The non-free slots of control segment `control` as `(handle, refcnt)` pairs, read without
/// the lock (a snapshot for diagnostics and tests: values may change as soon as they are read).
/// [`DsmError::ControlCorrupt`] when the segment fails the sanity check.
pub fn dsm_control_slots(
    imp: &DsmImpl,
    control: DsmHandle,
) -> Result<Vec<(DsmHandle, u32)>, DsmError> {
    let m = imp.attach(control)?;
    let slots = ControlView::sane(&m).map(|v| {
        v.used()
            .iter()
            .map(|it| {
                (
                    it.handle.load(Ordering::Relaxed),
                    it.refcnt.load(Ordering::Relaxed),
                )
            })
            .filter(|&(_, r)| r != 0)
            .collect()
    });
    imp.detach(m)?;
    slots.ok_or(DsmError::ControlCorrupt)
}

fn cleanup(imp: &DsmImpl, control: DsmHandle, m: pgipc_dsm_impl::Mapping) -> Option<CleanupReport> {
    let mut report = CleanupReport::default();
    let listed: Option<Vec<DsmHandle>> = ControlView::sane(&m).map(|v| {
        v.used()
            .iter()
            // Free slots hold nothing; slots at 1 are segments whose destroyer may have died.
            .filter(|it| it.refcnt.load(Ordering::Relaxed) != 0)
            .map(|it| it.handle.load(Ordering::Relaxed))
            .filter(|&h| h != DSM_HANDLE_INVALID && !is_main_region_dsm_handle(h))
            .collect()
    });
    let Some(listed) = listed else {
        let _ = imp.detach(m);
        return None;
    };
    for h in listed {
        match imp.destroy(None, h) {
            Ok(()) => report.destroyed.push(h),
            Err(e) => {
                tracing::info!("{e}");
                report.failed.push((h, e.to_string()));
            }
        }
    }
    match imp.destroy(Some(m), control) {
        Ok(()) => report.control_removed = true,
        Err(e) => report.failed.push((control, e.to_string())),
    }
    Some(report)
}
