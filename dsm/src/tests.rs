//! Single-process tests. Each thread has its own process-local dsm state, so a second thread
//! plays "another backend"; real multi-process scenarios are in `tests/multiprocess.rs`.

use crate::*;
use pgipc_shmem::Shmem;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// A main segment with a fresh control segment recorded in it, and this thread attached.
struct Server {
    shm: Shmem,
    imp: DsmImpl,
}

impl Server {
    fn new(max_backends: u32) -> Server {
        let shm = Shmem::create_for_tests(1 << 20).expect("shmem");
        let imp = DsmImpl::new(DsmImplType::Posix, None);
        let h = dsm_postmaster_startup(&imp, max_backends).expect("startup");
        assert_eq!(h & 1, 0, "OS-backed handles are even");
        shm.set_dsm_control(h);
        dsm_backend_startup(&shm, imp.clone()).expect("backend startup");
        Server { shm, imp }
    }

    /// Another "backend" (a thread with its own state) runs `f`.
    fn other<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let shm = self.shm.clone();
        let imp = self.imp.clone();
        std::thread::scope(|s| {
            s.spawn(move || {
                dsm_backend_startup(&shm, imp).expect("backend startup");
                let r = f();
                dsm_detach_all();
                r
            })
            .join()
            .expect("thread")
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        dsm_detach_all();
        let r = dsm_postmaster_shutdown(&self.imp, self.shm.dsm_control()).expect("shutdown");
        assert!(r.control_removed);
        assert!(!posix_exists(self.shm.dsm_control()));
    }
}

fn posix_exists(h: DsmHandle) -> bool {
    Path::new(&format!("/dev/shm/PostgreSQL.{h}")).exists()
}

fn create(size: usize) -> DsmSegment {
    DsmSegment::create(size, CreateFlags::default())
        .expect("create")
        .expect("a free slot")
}

#[test]
fn created_attached_and_detached_by_both_is_gone() {
    let srv = Server::new(2);
    let seg = create(65_536);
    let h = seg.handle();
    assert_eq!(h & 1, 0);
    assert!(seg.map_length() >= 65_536);
    // SAFETY: the mapping is at least 64 KiB and only this thread writes it now.
    unsafe { seg.address().as_ptr().write_bytes(7, 65_536) };
    srv.other(move || {
        let s = DsmSegment::attach(h).expect("attach");
        // SAFETY: as above; the creator finished writing before this thread started.
        assert_eq!(unsafe { *s.address().as_ptr().add(65_535) }, 7);
        assert!(matches!(
            DsmSegment::attach(h),
            Err(DsmError::AlreadyAttached { .. })
        ));
        assert!(dsm_find_mapping(h).is_some());
    });
    assert!(posix_exists(h), "the creator still maps it");
    drop(seg);
    assert!(!posix_exists(h), "last detach destroys");
    assert!(dsm_mapped_handles().is_empty());
}

#[test]
fn attaching_a_missing_handle_is_an_error_and_leaks_nothing() {
    let _srv = Server::new(1);
    for h in [2u32, 4, 0xdead_beee] {
        match DsmSegment::attach(h) {
            Err(e @ DsmError::NotFound { .. }) => assert_eq!(e.sqlstate(), "55000"),
            other => panic!("expected NotFound, got {other:?}"),
        }
        assert!(!posix_exists(h), "nothing was created under {h}");
    }
    assert!(dsm_mapped_handles().is_empty());
    // The failed attaches took no slot: a live segment's count is still creator-only, so a
    // single detach destroys it.
    let seg = create(4096);
    let h = seg.handle();
    assert!(matches!(
        DsmSegment::attach(h ^ 0x8000_0000),
        Err(DsmError::NotFound { .. })
    ));
    drop(seg);
    assert!(!posix_exists(h));
}

#[test]
fn a_panicking_callback_is_not_run_again_and_the_rest_still_run() {
    let _srv = Server::new(1);
    let log = Rc::new(RefCell::new(Vec::new()));
    let seg = create(4096);
    let h = seg.handle();
    let l = log.clone();
    seg.on_detach(move || l.borrow_mut().push("first registered"));
    seg.on_detach(|| panic!("callback failure"));
    let r = seg.reference();
    seg.pin_mapping();
    drop(seg);
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.detach()));
    assert!(first.is_err());
    assert!(!r.is_detached(), "detach stopped at the failing callback");
    r.detach();
    assert_eq!(*log.borrow(), vec!["first registered"]);
    assert!(r.is_detached() && !posix_exists(h));
}

#[test]
fn full_slot_table_is_none_or_error_and_releases_the_new_segment() {
    let _srv = Server::new(0); // 64 slots
    let segs: Vec<DsmSegment> = (0..PG_DYNSHMEM_FIXED_SLOTS).map(|_| create(4096)).collect();
    let none = DsmSegment::create(4096, CreateFlags::NULL_IF_MAXSEGMENTS).expect("no error");
    assert!(none.is_none());
    match DsmSegment::create(4096, CreateFlags::default()) {
        Err(e @ DsmError::TooManySegments) => {
            assert_eq!(e.to_string(), "too many dynamic shared memory segments");
            assert_eq!(e.sqlstate(), "53000");
        }
        other => panic!("expected TooManySegments, got {other:?}"),
    }
    assert_eq!(dsm_mapped_handles().len(), segs.len());
    // A freed slot is reused.
    let h0 = segs[0].handle();
    drop(segs);
    assert!(!posix_exists(h0));
    drop(create(4096));
}

#[test]
fn detach_callbacks_run_newest_first_and_cancel_removes_one() {
    let _srv = Server::new(1);
    let log = Rc::new(RefCell::new(Vec::new()));
    let seg = create(4096);
    let mut ids = Vec::new();
    for i in 0..4 {
        let l = log.clone();
        let addr = seg.address();
        ids.push(seg.on_detach(move || {
            // The segment is still mapped while callbacks run.
            // SAFETY: the mapping lives until after the last callback.
            unsafe { addr.as_ptr().write(i as u8) };
            l.borrow_mut().push(i)
        }));
    }
    assert!(seg.cancel_on_detach(ids[1]));
    assert!(!seg.cancel_on_detach(ids[1]));
    let r = seg.reference();
    seg.detach();
    assert_eq!(*log.borrow(), vec![3, 2, 0]);
    assert!(r.is_detached());
    r.detach(); // idempotent: callbacks do not run again
    assert_eq!(log.borrow().len(), 3);
}

#[test]
fn pinned_segment_outlives_its_attachers_until_unpinned() {
    let srv = Server::new(1);
    let seg = create(4096);
    let h = seg.handle();
    seg.pin_segment().expect("pin");
    match seg.pin_segment() {
        Err(e @ DsmError::AlreadyPinned { .. }) => {
            assert_eq!(e.to_string(), "cannot pin a segment that is already pinned")
        }
        other => panic!("{other:?}"),
    }
    drop(seg);
    assert!(posix_exists(h), "pinned: survives with no attacher");
    srv.other(move || {
        let s = DsmSegment::attach(h).expect("a pinned segment can be attached");
        s.detach();
    });
    assert!(posix_exists(h));
    dsm_unpin_segment(h).expect("unpin");
    assert!(!posix_exists(h), "unpinned with no attacher: destroyed");
    match dsm_unpin_segment(h) {
        Err(e @ DsmError::UnknownHandle { .. }) => {
            assert_eq!(e.to_string(), "cannot unpin unknown segment handle")
        }
        other => panic!("{other:?}"),
    }
    let seg = create(4096);
    match dsm_unpin_segment(seg.handle()) {
        Err(e @ DsmError::NotPinned { .. }) => {
            assert_eq!(e.to_string(), "cannot unpin a segment that is not pinned")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pinned_mapping_survives_its_owner_until_detach_all() {
    let _srv = Server::new(1);
    let seg = create(4096);
    let h = seg.handle();
    seg.pin_mapping();
    drop(seg);
    let r = dsm_find_mapping(h).expect("still mapped");
    assert!(!r.is_detached());
    dsm_backend_shutdown();
    assert!(r.is_detached());
    assert!(!posix_exists(h));
}

#[test]
fn cleanup_destroys_what_a_dead_server_left() {
    let imp = DsmImpl::new(DsmImplType::Posix, None);
    let shm = Shmem::create_for_tests(1 << 20).expect("shmem");
    let control = dsm_postmaster_startup(&imp, 1).expect("startup");
    shm.set_dsm_control(control);
    let handles: Vec<DsmHandle> = std::thread::scope(|s| {
        s.spawn(|| {
            dsm_backend_startup(&shm, imp.clone()).expect("backend");
            let hs = (0..3)
                .map(|_| {
                    let seg = create(8192);
                    seg.pin_mapping();
                    seg.handle()
                })
                .collect();
            // "SIGKILL": forget everything without detaching.
            reset_on_dsm_detach();
            hs
        })
        .join()
        .expect("thread")
    });
    for h in &handles {
        assert!(posix_exists(*h));
    }
    let r = dsm_cleanup_using_control_segment(&imp, control).expect("cleanup");
    assert_eq!(r.destroyed.len(), 3, "{r:?}");
    assert!(r.control_removed);
    for h in handles.iter().chain([&control]) {
        assert!(!posix_exists(*h), "{h} left behind");
    }
    // A control segment that is already gone is nothing to do.
    let r = dsm_cleanup_using_control_segment(&imp, control).expect("gone");
    assert_eq!(r, CleanupReport::default());
}

#[test]
fn a_corrupt_control_segment_is_refused() {
    let imp = DsmImpl::new(DsmImplType::Posix, None);
    let control = dsm_postmaster_startup(&imp, 1).expect("startup");
    let m = imp.attach(control).expect("attach");
    // SAFETY: the control segment is at least a header long; nobody else uses it.
    unsafe { m.addr().as_ptr().cast::<u32>().write(0x1234_5678) };
    imp.detach(m).expect("detach");
    assert!(matches!(
        dsm_cleanup_using_control_segment(&imp, control),
        Err(DsmError::ControlCorrupt)
    ));
    let shm = Shmem::create_for_tests(1 << 20).expect("shmem");
    shm.set_dsm_control(control);
    assert!(matches!(
        dsm_backend_startup(&shm, imp.clone()),
        Err(DsmError::ControlNotValid)
    ));
    imp.destroy(None, control).expect("remove");
}

#[test]
fn without_backend_startup_nothing_is_created() {
    std::thread::spawn(|| {
        assert!(matches!(
            DsmSegment::create(4096, CreateFlags::default()),
            Err(DsmError::NotInitialized)
        ));
        assert!(matches!(
            DsmSegment::attach(2),
            Err(DsmError::NotInitialized)
        ));
    })
    .join()
    .expect("thread");
}

#[test]
fn control_layout() {
    assert_eq!(std::mem::size_of::<DsmControlHeader>(), 16);
    assert_eq!(std::mem::size_of::<DsmControlItem>(), 32);
    assert_eq!(control_max_items(100), Some(564));
    assert_eq!(control_bytes_needed(64), Some(16 + 64 * 32));
    assert!(is_main_region_dsm_handle(3) && !is_main_region_dsm_handle(2));
}

#[test]
fn main_region_segments_have_odd_handles_share_pages_and_fall_back_to_os() {
    let shm = Shmem::create_for_tests(4 << 20).expect("shmem");
    dsm_shmem_init(&shm, 64 * FPM_PAGE_SIZE).expect("pool"); // 64 pages, 1 for metadata
    let imp = DsmImpl::new(DsmImplType::Posix, None);
    let control = dsm_postmaster_startup(&imp, 1).expect("startup");
    shm.set_dsm_control(control);
    std::thread::scope(|s| {
        s.spawn(|| {
            dsm_backend_startup(&shm, imp.clone()).expect("backend");
            let a = create(10_000); // 3 pages
            let h = a.handle();
            assert!(is_main_region_dsm_handle(h), "{h:#x}");
            assert_eq!(a.map_length(), 3 * FPM_PAGE_SIZE);
            assert!(!posix_exists(h), "no OS segment behind it");
            // SAFETY: 3 pages of the pool are ours.
            unsafe { a.address().as_ptr().write_bytes(9, 10_000) };
            let a_addr = a.address();
            std::thread::scope(|s2| {
                s2.spawn(|| {
                    dsm_backend_startup(&shm, imp.clone()).expect("backend 2");
                    let b = DsmSegment::attach(h).expect("attach main-region segment");
                    assert_eq!(b.map_length(), 3 * FPM_PAGE_SIZE);
                    // SAFETY: as above; the creator finished writing.
                    assert_eq!(unsafe { *b.address().as_ptr().add(9_999) }, 9);
                    drop(b);
                    dsm_detach_all();
                });
            });
            drop(a);
            // The pages came back: the next segment starts where `a` did.
            let c = create(100);
            assert_eq!(c.address(), a_addr);
            // Too big for the pool: an ordinary OS segment with an even handle.
            let big = create(100 * FPM_PAGE_SIZE);
            assert!(!is_main_region_dsm_handle(big.handle()));
            assert!(posix_exists(big.handle()));
            drop(big);
            drop(c);
            dsm_detach_all();
        });
    });
    let r = dsm_postmaster_shutdown(&imp, control).expect("shutdown");
    assert!(r.destroyed.is_empty() && r.control_removed);
}

/// Whether this process maps the OS segment `h` (`/proc/self/maps`).
fn mapped_here(h: DsmHandle) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .expect("maps")
        .contains(&format!("/PostgreSQL.{h}"))
}

#[test]
fn a_lease_keeps_the_mapping_after_detach_until_the_last_lease_goes() {
    let _srv = Server::new(1);
    let seg = create(4096);
    let h = seg.handle();
    let ran = Rc::new(std::cell::Cell::new(false));
    let r = ran.clone();
    seg.on_detach(move || r.set(true));
    let lease = seg.lease().expect("lease");
    let second = lease.clone();
    let addr = lease.address();
    // SAFETY: the segment is mapped while a lease lives; nobody else uses it.
    unsafe { addr.as_ptr().write(7) };
    drop(seg); // the owner goes: the callbacks run now, the unmap waits
    assert!(ran.get());
    assert!(
        dsm_find_mapping(h).is_none(),
        "detached: not found by handle"
    );
    assert!(!dsm_mapped_handles().contains(&h));
    assert!(posix_exists(h), "still referenced while leased");
    assert!(mapped_here(h));
    // SAFETY: still mapped (leased).
    assert_eq!(unsafe { addr.as_ptr().read() }, 7);
    assert!(lease.is_usable());
    assert!(matches!(
        lease.segment().lease(),
        Err(DsmError::Detached { .. })
    ));
    assert!(matches!(
        lease.segment().pin_segment(),
        Err(DsmError::Detached { .. })
    ));
    drop(lease);
    assert!(posix_exists(h) && mapped_here(h), "one lease left");
    drop(second);
    assert!(!mapped_here(h), "last lease gone: unmapped");
    assert!(
        !posix_exists(h),
        "and the last reference released: destroyed"
    );
}

#[test]
fn exit_gives_back_leased_references_and_marks_the_lease_unusable() {
    let _srv = Server::new(1);
    let seg = create(4096);
    let h = seg.handle();
    let lease = seg.lease().expect("lease");
    assert!(lease.is_usable());
    dsm_backend_shutdown();
    assert!(!posix_exists(h), "the reference went back although leased");
    assert!(!lease.is_usable());
    assert!(
        mapped_here(h),
        "but the memory is not pulled from under the lease"
    );
    drop(seg);
    drop(lease);
    assert!(!mapped_here(h));
}
