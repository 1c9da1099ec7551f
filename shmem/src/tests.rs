use super::*;
use crate::segment::{IndexEnt, IndexKey};
use std::mem::{align_of, offset_of, size_of};
use std::sync::atomic::{AtomicU64, Ordering};

fn seg(size: usize) -> Shmem {
    Shmem::create_for_tests_with(size, 4).expect("segment")
}

#[test]
fn allocations_are_cache_line_aligned_and_exhaustion_leaves_state_alone() {
    let s = seg(64 * 1024);
    let mut last = 0;
    loop {
        let before = s.header().freeoffset.load(Ordering::Relaxed);
        match s.alloc(1000) {
            Ok(off) => {
                assert_eq!(off % CACHE_LINE_SIZE as u64, 0);
                assert!(off > last);
                last = off;
            }
            Err(e) => {
                assert_eq!(e.to_string(), "out of shared memory (1000 bytes requested)");
                assert_eq!(e.sqlstate(), "53200");
                assert_eq!(s.header().freeoffset.load(Ordering::Relaxed), before);
                break;
            }
        }
    }
    assert_eq!(s.alloc_no_error(1000), None);
}

#[test]
fn init_struct_creates_then_attaches_and_checks_size() {
    let s = seg(1 << 20);
    let (a, k1) = s.init_struct::<AtomicU64>("Test Counter").unwrap();
    assert_eq!(k1, InitKind::Created);
    a.store(7, Ordering::Relaxed);
    let (b, k2) = s.init_struct::<AtomicU64>("Test Counter").unwrap();
    assert_eq!(k2, InitKind::Attached);
    assert_eq!(b.load(Ordering::Relaxed), 7);
    assert_eq!(a.as_ptr(), b.as_ptr());
    let err = s.init_slice::<AtomicU64>("Test Counter", 2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ShmemIndex entry size is wrong for data structure \"Test Counter\": expected 8, actual 16"
    );
}

#[test]
fn names_up_to_47_bytes() {
    let s = seg(1 << 20);
    let n47 = "x".repeat(47);
    assert!(s.init_struct::<u64>(&n47).is_ok());
    let n48 = "x".repeat(48);
    assert!(matches!(
        s.init_struct::<u64>(&n48),
        Err(ShmemError::BadName { .. })
    ));
    assert!(matches!(
        s.init_struct::<u64>(""),
        Err(ShmemError::BadName { .. })
    ));
}

#[test]
fn a_struct_that_does_not_fit_leaves_no_index_entry() {
    let s = seg(64 * 1024);
    let err = s.init_slice::<u64>("Too Big", 1 << 20).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not enough shared memory for data structure \"Too Big\" (8388608 bytes requested)"
    );
    let rows = s.allocations().unwrap();
    assert!(rows
        .iter()
        .all(|r| r.name != AllocationName::Named("Too Big".into())));
    // The name is free again: a smaller request under it succeeds.
    assert_eq!(
        s.init_slice::<u64>("Too Big", 4).unwrap().1,
        InitKind::Created
    );
}

#[test]
fn allocation_rows_add_up() {
    let s = seg(1 << 20);
    s.init_struct::<u64>("A").unwrap();
    s.init_slice::<u64>("B", 100).unwrap();
    s.alloc(5000).unwrap();
    let rows = s.allocations().unwrap();
    let free = s.header().freeoffset.load(Ordering::Relaxed);
    let total = s.total_size() as u64;
    let named: u64 = rows
        .iter()
        .filter(|r| matches!(r.name, AllocationName::Named(_)))
        .map(|r| r.allocated_size)
        .sum();
    let anon = rows
        .iter()
        .find(|r| r.name == AllocationName::Anonymous)
        .unwrap();
    let unused = rows
        .iter()
        .find(|r| r.name == AllocationName::Unused)
        .unwrap();
    assert_eq!(named + anon.allocated_size, free);
    assert_eq!(anon.off, None);
    assert_eq!(unused.off, Some(free));
    assert_eq!(unused.size, total - free);
    let b = rows
        .iter()
        .find(|r| r.name == AllocationName::Named("B".into()))
        .unwrap();
    assert_eq!((b.size, b.allocated_size), (800, 896));
}

#[test]
fn shared_hash_enter_find_remove_full() {
    let s = seg(1 << 20);
    let (h, kind) = s.init_hash::<u32, AtomicU64>("Test Hash", 8).unwrap();
    assert_eq!(kind, InitKind::Created);
    for k in 0..8u32 {
        let (v, kind) = h.enter(&k).unwrap();
        assert_eq!(kind, InitKind::Created);
        v.store(u64::from(k) * 10, Ordering::Relaxed);
    }
    assert_eq!(h.enter(&99).unwrap_err(), HashFull { capacity: 8 });
    assert_eq!(h.enter(&3).unwrap().1, InitKind::Attached);
    assert_eq!(h.find(&5).unwrap().load(Ordering::Relaxed), 50);
    assert!(h.remove(&5));
    assert!(!h.remove(&5));
    assert!(h.find(&5).is_none());
    assert_eq!(h.len(), 7);
    assert_eq!(h.enter(&99).unwrap().1, InitKind::Created);
    let (h2, kind2) = s.init_hash::<u32, AtomicU64>("Test Hash", 8).unwrap();
    assert_eq!(kind2, InitKind::Attached);
    assert_eq!(h2.find(&7).unwrap().load(Ordering::Relaxed), 70);
    let mut keys: Vec<u32> = h2.entries().into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, vec![0, 1, 2, 3, 4, 6, 7, 99]);
}

#[test]
fn relptr_and_views_check_bounds() {
    let s = seg(1 << 20);
    let (a, _) = s.init_struct::<AtomicU64>("Rel").unwrap();
    let off = s.offset_of(a.as_ptr()).unwrap();
    let p = RelPtr::<AtomicU64>::from_offset(off);
    assert_eq!(s.resolve(p).unwrap().as_ptr(), a.as_ptr());
    assert!(s.resolve(RelPtr::<AtomicU64>::NULL).is_none());
    assert!(s
        .resolve(RelPtr::<AtomicU64>::from_offset(off + 1))
        .is_none());
    assert!(s
        .resolve(RelPtr::<AtomicU64>::from_offset(s.total_size() as u64))
        .is_none());
    assert_eq!(s.offset_of(&0u8 as *const u8), None);
}

#[test]
fn interlock_refuses_a_second_user_until_removed() {
    let dir = std::env::temp_dir().join(format!("pgipc-interlock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (first, report) = Interlock::create(&dir, 1234).unwrap();
    assert!(report.stale_dsm_controls.is_empty());
    first.set_dsm_control(42);
    match Interlock::create(&dir, 1234) {
        Err(e @ ShmemError::InUse { .. }) => {
            assert_eq!(e.sqlstate(), "F0001");
            assert!(e
                .to_string()
                .starts_with("pre-existing shared memory block (key "));
            assert!(e
                .hint()
                .unwrap()
                .contains("Terminate any old server processes"));
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(Interlock::is_in_use(&dir, first.shmid()));
    let line = first.lock_file_line();
    assert_eq!(line.len(), 19, "{line:?}");
    first.remove().unwrap();
    let (second, _) = Interlock::create(&dir, 1).unwrap();
    second.remove().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn huge_pages_on_without_huge_pages_is_an_error() {
    let mut opts = SegmentOptions::new(1 << 20);
    opts.huge_pages = HugePages::On;
    // Whether this machine has huge pages reserved decides the outcome; both are checked.
    match Shmem::create(&opts) {
        Ok(s) => assert_eq!(s.huge_pages_status(), HugePagesStatus::On),
        Err(e) => assert!(
            matches!(
                e,
                ShmemError::Map { huge: true, .. } | ShmemError::HugePagesUnsupported
            ),
            "{e}"
        ),
    }
    opts.huge_pages = HugePages::Try;
    let s = Shmem::create(&opts).expect("try falls back");
    assert_ne!(s.huge_pages_status(), HugePagesStatus::Unknown);
}

#[test]
fn layout() {
    let mut out = String::new();
    macro_rules! layout {
        ($t:ty; $($f:ident),*) => {{
            out.push_str(&format!("{} size={} align={}", stringify!($t), size_of::<$t>(), align_of::<$t>()));
            $( out.push_str(&format!(" {}@{}", stringify!($f), offset_of!($t, $f))); )*
            out.push('\n');
        }};
    }
    layout!(ShmemHeader; magic, creator_pid, totalsize, freeoffset, dsm_control, nwait_slots,
        device, inode, shmem_lock_offset, wait_slots_offset, lwlocks_offset, nlwlocks, index_offset);
    layout!(InterlockHeader; magic, creator_pid, totalsize, dsm_control, device, inode);
    layout!(IndexEnt; location, size, allocated_size);
    layout!(IndexKey;);
    layout!(HashHeader;);
    layout!(RelPtr<u64>;);
    insta::assert_snapshot!(out);
}
