use super::*;
use pgipc_proc::{status_flags, BackendType, ProcConfig, INVALID_TRANSACTION_ID};
use pgipc_shmem::Shmem;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

fn cfg(max_connections: u32) -> ProcConfig {
    ProcConfig {
        max_connections,
        autovacuum_worker_slots: 1,
        max_worker_processes: 1,
        max_wal_senders: 1,
        max_prepared_xacts: 0,
    }
}

fn setup(c: &ProcConfig) -> ProcArray {
    let all = c.all_proc_count().unwrap() as usize;
    let shmem = Shmem::create_for_tests_with(8 << 20, all).unwrap();
    pgipc_proc::shmem_init(&shmem, c).unwrap();
    shmem_init(&shmem, c).unwrap()
}

/// A backend slot for a made-up pid, added to the array.
fn backend(pa: &ProcArray, pid: i32) -> ProcNumber {
    let n = pa.procs().alloc_slot(BackendType::Backend, pid).unwrap();
    pa.add(n).unwrap();
    n
}

#[test]
fn add_appends_and_remove_moves_the_last_entry_into_the_hole() {
    let pa = setup(&cfg(10));
    let g = pa.procs();
    let slots: Vec<_> = (0..6)
        .map(|i| g.alloc_slot(BackendType::Backend, 100 + i).unwrap())
        .collect();
    let order = [4usize, 1, 5, 0, 3, 2];
    for &i in &order {
        pa.add(slots[i]).unwrap();
        pa.check_consistency().unwrap();
    }
    // Joining order, whatever the proc numbers: nothing already in the array moved.
    assert_eq!(pa.members(), order.map(|i| slots[i]));
    let x = pa.assign_transaction_id(slots[2], false).unwrap();
    // slots[1] sits at position 1; the last entry (slots[2], with its xid) takes its place.
    pa.remove(slots[1], INVALID_TRANSACTION_ID).unwrap();
    pa.check_consistency().unwrap();
    assert_eq!(pa.members(), [4, 2, 5, 0, 3].map(|i| slots[i]));
    assert_eq!(
        g.xids()[1].load(Ordering::Relaxed),
        x,
        "the xid moved with its proc"
    );
    assert_eq!(
        g.proc(slots[2]).unwrap().pgxactoff.load(Ordering::Relaxed),
        1
    );
    // Removing the last entry moves nothing.
    pa.remove(slots[3], INVALID_TRANSACTION_ID).unwrap();
    pa.check_consistency().unwrap();
    assert_eq!(pa.members(), [4, 2, 5, 0].map(|i| slots[i]));
    assert!(matches!(
        pa.remove(slots[3], 0),
        Err(ProcArrayError::NotInProcArray { .. })
    ));
    assert!(matches!(
        pa.add(slots[0]),
        Err(ProcArrayError::AlreadyInProcArray { .. })
    ));
}

#[test]
fn full_array_is_53300() {
    let c = cfg(2);
    let pa = setup(&c);
    let mb = c.max_backends().unwrap();
    for i in 0..mb {
        pa.add(i).unwrap();
    }
    let e = pa.add(mb).unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.sqlstate()),
        ("sorry, too many clients already", "53300")
    );
    pa.check_consistency().unwrap();
}

#[test]
fn snapshot_contents_and_reuse() {
    let pa = setup(&cfg(10));
    let me = backend(&pa, 1);
    let a = backend(&pa, 2);
    let b = backend(&pa, 3);
    let v = backend(&pa, 4);
    let xa = pa.assign_transaction_id(a, false).unwrap();
    let xb = pa.assign_transaction_id(b, false).unwrap();
    let xv = pa.assign_transaction_id(v, false).unwrap();
    pa.set_status_flags(v, status_flags::PROC_IN_VACUUM, 0)
        .unwrap();
    let mut s = Snapshot::new();
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert_eq!(
        (s.xmin, s.xmax, s.xip.clone()),
        (3, 3, vec![]),
        "nothing ended yet: xmax = 3"
    );
    let t = backend(&pa, 5);
    let xt = pa.assign_transaction_id(t, false).unwrap();
    pa.end_transaction(t, xt).unwrap();
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert_eq!(
        (s.xmin, s.xmax, s.xip.clone(), s.reused),
        (xa, xt + 1, vec![xa, xb], false)
    );
    assert!(
        !s.xid_in_snapshot(xv),
        "a VACUUM's xid is left out of snapshots"
    );
    assert!(
        s.xid_in_snapshot(xt + 1),
        "at or past xmax counts as running"
    );
    assert_eq!(
        pa.procs().proc(me).unwrap().xmin.load(Ordering::Relaxed),
        xa
    );
    // Nothing ended: reused.
    let xme = pa.assign_transaction_id(me, false).unwrap();
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert!(s.reused);
    // One commit: rebuilt, xmax moves past it, own xid never listed.
    pa.end_transaction(b, xb).unwrap();
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert!(!s.reused);
    assert_eq!((s.xmin, s.xmax, s.xip.clone()), (xa, xt + 1, vec![xa]));
    assert!(!s.xid_in_snapshot(xb));
    assert!(pa.transaction_id_is_in_progress(me, xa).unwrap());
    assert!(pa.transaction_id_is_in_progress(me, xme).unwrap());
    assert!(!pa.transaction_id_is_in_progress(me, xb).unwrap());
    // The vacuum flag is cleared at end of transaction.
    pa.end_transaction(v, xv).unwrap();
    assert_eq!(
        pa.procs()
            .proc(v)
            .unwrap()
            .status_flags
            .load(Ordering::Relaxed),
        0
    );
    pa.check_consistency().unwrap();
}

#[test]
fn subtransactions_and_overflow() {
    let pa = setup(&cfg(10));
    let me = backend(&pa, 1);
    let a = backend(&pa, 2);
    let top = pa.assign_transaction_id(a, false).unwrap();
    let subs: Vec<_> = (0..3)
        .map(|_| pa.assign_transaction_id(a, true).unwrap())
        .collect();
    let _ = pa.assign_transaction_id(me, false).unwrap();
    let mut s = Snapshot::new();
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert_eq!(
        s.subxip,
        vec![0u32; 0],
        "subxids of xids >= xmax are not listed"
    );
    pa.end_transaction(me, pa.procs().proc(me).unwrap().xid.load(Ordering::Relaxed))
        .unwrap();
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert_eq!(
        (s.xip.clone(), s.subxip.clone(), s.suboverflowed),
        (vec![top], subs.clone(), false)
    );
    assert!(pa.transaction_id_is_in_progress(me, subs[1]).unwrap());
    for _ in 0..62 {
        pa.assign_transaction_id(a, true).unwrap();
    }
    assert_eq!(
        pa.procs().subxid_states()[1].count.load(Ordering::Relaxed),
        64
    );
    assert!(
        pa.procs().subxid_states()[1]
            .overflowed
            .load(Ordering::Relaxed),
        "65th overflowed"
    );
    pa.get_snapshot_data(me, &mut s).unwrap(); // nothing ended: reused, still not overflowed
    assert!(s.reused);
    s.snap_xact_completion_count = 0;
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert!(s.suboverflowed);
    let last = pa.read_next_full_transaction_id().retreat().xid();
    pa.end_transaction(a, last).unwrap();
    let st = &pa.procs().subxid_states()[1];
    assert_eq!(
        (
            st.count.load(Ordering::Relaxed),
            st.overflowed.load(Ordering::Relaxed)
        ),
        (0, false)
    );
    assert_eq!(
        pa.transam().latest_completed_xid.load(Ordering::Relaxed),
        u64::from(last)
    );
}

#[test]
fn snapshots_across_xid_wraparound() {
    let pa = setup(&cfg(10));
    let t = pa.transam();
    let start = FullTransactionId(u64::from(u32::MAX - 3));
    t.next_xid.store(start.0, Ordering::Relaxed);
    t.latest_completed_xid
        .store(start.retreat().0, Ordering::Relaxed);
    let me = backend(&pa, 1);
    let ps: Vec<_> = (0..5).map(|i| backend(&pa, 10 + i)).collect();
    let xs: Vec<_> = ps
        .iter()
        .map(|&p| pa.assign_transaction_id(p, false).unwrap())
        .collect();
    assert_eq!(
        xs,
        [u32::MAX - 3, u32::MAX - 2, u32::MAX - 1, u32::MAX, 3],
        "special ids skipped"
    );
    assert_eq!(
        pa.read_next_full_transaction_id(),
        FullTransactionId((1 << 32) + 4)
    );
    pa.end_transaction(ps[4], xs[4]).unwrap();
    pa.end_transaction(ps[3], xs[3]).unwrap();
    assert_eq!(
        t.latest_completed_xid.load(Ordering::Relaxed),
        (1 << 32) + 3,
        "an older end does not move it back"
    );
    let mut s = Snapshot::new();
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert_eq!((s.xmin, s.xmax), (u32::MAX - 3, 4));
    assert_eq!(s.xip, &xs[..3]);
    assert!(s.xid_in_snapshot(u32::MAX - 3) && s.xid_in_snapshot(4) && s.xid_in_snapshot(7));
    assert!(!s.xid_in_snapshot(u32::MAX) && !s.xid_in_snapshot(3));
    assert!(
        !s.xid_in_snapshot(u32::MAX - 10),
        "before xmin, across the wrap"
    );
    assert_eq!(
        pa.compute_xid_horizons(0).oldest_considered_running,
        u32::MAX - 3
    );
    assert!(pa.transaction_id_is_in_progress(me, u32::MAX - 1).unwrap());
    assert!(!pa.transaction_id_is_in_progress(me, 3).unwrap());
}

#[test]
fn horizons_lookups_counts() {
    let pa = setup(&cfg(10));
    let a = backend(&pa, 11);
    let b = backend(&pa, 12);
    let c = backend(&pa, 13);
    let g = pa.procs();
    g.proc(a).unwrap().database_id.store(5, Ordering::Relaxed);
    g.proc(b).unwrap().database_id.store(6, Ordering::Relaxed);
    g.proc(c).unwrap().database_id.store(5, Ordering::Relaxed);
    g.proc(c).unwrap().role_id.store(77, Ordering::Relaxed);
    let xb = pa.assign_transaction_id(b, false).unwrap();
    let xc = pa.assign_transaction_id(c, false).unwrap();
    pa.set_status_flags(c, status_flags::PROC_IN_VACUUM, 0)
        .unwrap();
    let t = backend(&pa, 14);
    let xt = pa.assign_transaction_id(t, false).unwrap();
    pa.end_transaction(t, xt).unwrap();
    assert!(xb < xc && xc < xt);
    let h = pa.compute_xid_horizons(5);
    assert_eq!(h.oldest_considered_running, xb);
    assert_eq!(
        h.shared_oldest_nonremovable, xb,
        "the vacuum's xid does not count"
    );
    assert_eq!(
        h.data_oldest_nonremovable,
        xt + 1,
        "db 6's xid and the vacuum do not count"
    );
    assert_eq!(pa.get_oldest_non_removable_transaction_id(0), xb);
    assert_eq!(pa.backend_pid_get_proc(12), Some(b));
    assert_eq!(pa.backend_pid_get_proc(0), None);
    assert!(pa.is_backend_pid(13) && !pa.is_backend_pid(99));
    assert_eq!(pa.backend_xid_get_pid(xc), Some(13));
    assert_eq!((pa.count_db_backends(0), pa.count_db_backends(5)), (4, 2));
    assert_eq!(
        (pa.count_db_connections(6), pa.count_user_backends(77)),
        (1, 1)
    );
}

#[test]
fn cleanup_of_a_dead_process() {
    let pa = setup(&cfg(3));
    let me = backend(&pa, 1);
    let dead = backend(&pa, 4242);
    let x = pa.assign_transaction_id(dead, false).unwrap();
    let count = pa.transam().xact_completion_count.load(Ordering::Relaxed);
    assert!(matches!(
        pa.procs().reclaim_dead_process(4242),
        Err(pgipc_proc::ProcError::StillInProcArray { .. })
    ));
    assert_eq!(
        pa.cleanup_dead_process(4242).unwrap(),
        Reclaim::Reclaimed(dead)
    );
    assert_eq!(
        pa.cleanup_dead_process(4242).unwrap(),
        Reclaim::NoSuchProcess
    );
    assert_eq!(pa.members(), [me]);
    assert_eq!(
        pa.transam().xact_completion_count.load(Ordering::Relaxed),
        count + 1
    );
    let mut s = Snapshot::new();
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert!(
        !s.xid_in_snapshot(x),
        "the dead transaction counts as ended"
    );
    assert_eq!(
        pa.procs().free_list_members(pgipc_proc::FreeList::Backends),
        [2, dead]
    );
    pa.check_consistency().unwrap();
}

#[test]
fn group_clear_under_contention() {
    const K: u32 = 6;
    let pa = setup(&cfg(10));
    let procs: Vec<_> = (0..K).map(|i| backend(&pa, 100 + i as i32)).collect();
    let xids: Vec<_> = procs
        .iter()
        .map(|&p| pa.assign_transaction_id(p, false).unwrap())
        .collect();
    let before = pa.transam().xact_completion_count.load(Ordering::Relaxed);
    let me = pa.procs().shmem().lwlock_proc();
    let guard = pa
        .proc_array_lock()
        .acquire(&me, pgipc_lwlock::LWLockMode::Exclusive);
    let handles: Vec<_> = procs
        .iter()
        .zip(&xids)
        .map(|(&p, &x)| {
            let pa = pa.clone();
            std::thread::spawn(move || pa.end_transaction(p, x).unwrap())
        })
        .collect();
    // Let them all queue (the first one to arrive leads and waits for the lock).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while procs.iter().any(|&p| {
        !pa.procs()
            .proc(p)
            .unwrap()
            .proc_array_group_member
            .load(Ordering::Relaxed)
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "threads did not queue"
        );
        std::thread::yield_now();
    }
    drop(guard);
    let mut paths: Vec<EndPath> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    paths.sort_by_key(|p| matches!(p, EndPath::GroupFollower));
    assert_eq!(
        paths[0],
        EndPath::GroupLeader { members: K },
        "one leader cleared everyone"
    );
    assert!(paths[1..].iter().all(|p| *p == EndPath::GroupFollower));
    assert_eq!(
        pa.transam().xact_completion_count.load(Ordering::Relaxed),
        before + u64::from(K)
    );
    assert!(pa
        .procs()
        .xids()
        .iter()
        .all(|x| x.load(Ordering::Relaxed) == 0));
    assert_eq!(
        pa.procs()
            .hdr()
            .proc_array_group_first()
            .load(Ordering::Relaxed),
        pgipc_proc::INVALID_PROC_NUMBER
    );
    for &p in &procs {
        assert!(!pa
            .procs()
            .proc(p)
            .unwrap()
            .proc_array_group_member
            .load(Ordering::Relaxed));
        let slot = pa.procs().wait_slot(p).unwrap();
        assert!(
            !slot.sem.try_lock(),
            "no stray wake-up left on proc {p}'s semaphore"
        );
    }
    pa.check_consistency().unwrap();
}

#[test]
fn layout() {
    use std::mem::{offset_of, size_of};
    insta::assert_snapshot!(format!(
        "ProcArrayHdr size {} (pgprocnos follow at that offset)\nTransamVariables size {} next_xid {} \
         latest_completed_xid {} xact_completion_count {}\nshmem_size(default) {}",
        size_of::<ProcArrayHdr>(),
        size_of::<TransamVariables>(),
        offset_of!(TransamVariables, next_xid),
        offset_of!(TransamVariables, latest_completed_xid),
        offset_of!(TransamVariables, xact_completion_count),
        shmem_size(&ProcConfig::default()).unwrap(),
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Add(u32),
    Remove(u32),
    Assign(u32),
    End(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..16).prop_map(Op::Add),
        2 => (0u32..16).prop_map(Op::Remove),
        2 => (0u32..16).prop_map(Op::Assign),
        1 => (0u32..16).prop_map(Op::End),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Random adds, removes, xid assignments and ends against a model: the members are the model's set, every
    /// `pgxactoff` pointing back, dense mirrors equal to the PGPROC fields.
    #[test]
    fn dense_arrays_follow_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        let c = cfg(12); // MaxBackends = 12 + 1 + 1 + 1 + 2 = 17 >= 16
        let pa = setup(&c);
        // Slots 12..16 stay unallocated: membership does not depend on a pid.
        for i in 0..12 {
            prop_assert_eq!(pa.procs().alloc_slot(BackendType::Backend, 1000 + i as i32).ok(), Some(i));
        }
        let mut model = BTreeSet::new();
        let mut running = std::collections::BTreeMap::new();
        for o in ops {
            match o {
                Op::Add(n) => {
                    let r = pa.add(n);
                    prop_assert_eq!(r.is_ok(), model.insert(n));
                }
                Op::Remove(n) => {
                    if running.contains_key(&n) { continue; }
                    let r = pa.remove(n, INVALID_TRANSACTION_ID);
                    prop_assert_eq!(r.is_ok(), model.remove(&n));
                }
                Op::Assign(n) => {
                    if running.contains_key(&n) { continue; }
                    let r = pa.assign_transaction_id(n, false);
                    prop_assert_eq!(r.is_ok(), model.contains(&n));
                    if let Ok(x) = r { running.insert(n, x); }
                }
                Op::End(n) => {
                    if let Some(x) = running.remove(&n) {
                        pa.end_transaction(n, x).unwrap();
                    }
                }
            }
            prop_assert_eq!(pa.check_consistency(), Ok(()));
            prop_assert_eq!(pa.members().into_iter().collect::<BTreeSet<_>>(), model.clone());
            prop_assert_eq!(pa.members().len(), model.len());
            let dense: BTreeSet<_> = pa.procs().xids().iter().map(|x| x.load(Ordering::Relaxed)).filter(|&x| x != 0).collect();
            prop_assert_eq!(dense, running.values().copied().collect::<BTreeSet<_>>());
        }
    }
}

#[test]
fn aborted_subtransactions_leave_the_subxid_cache() {
    let pa = setup(&cfg(10));
    let me = backend(&pa, 1);
    let a = backend(&pa, 2);
    let top = pa.assign_transaction_id(a, false).unwrap();
    let s1 = pa.assign_transaction_id(a, true).unwrap();
    let s2 = pa.assign_transaction_id(a, true).unwrap();
    let s3 = pa.assign_transaction_id(a, true).unwrap();
    let count = || {
        let st = &pa.procs().subxid_states()[1];
        (
            st.count.load(Ordering::Relaxed),
            pa.procs()
                .proc(a)
                .unwrap()
                .subxid_status
                .count
                .load(Ordering::Relaxed),
        )
    };
    assert_eq!(count(), (3, 3));
    let done_before = pa.transam().xact_completion_count.load(Ordering::Relaxed);
    // s2 aborts with its committed child s3 (ROLLBACK TO a savepoint holding both).
    assert_eq!(
        pa.xid_cache_remove_running_xids(a, s2, &[s3], s3).unwrap(),
        0
    );
    assert_eq!(count(), (1, 1));
    assert_eq!(
        pa.transam().xact_completion_count.load(Ordering::Relaxed),
        done_before + 1
    );
    assert_eq!(
        pa.transam().latest_completed_xid.load(Ordering::Relaxed),
        u64::from(s3)
    );
    pa.check_consistency().unwrap();
    let mut s = Snapshot::new();
    pa.get_snapshot_data(me, &mut s).unwrap();
    assert_eq!((s.xip.clone(), s.subxip.clone()), (vec![top], vec![s1]));
    assert!(!s.xid_in_snapshot(s2) && !s.xid_in_snapshot(s3));
    assert!(s.xid_in_snapshot(s1));
    // An id that is not cached is reported, and nothing changes.
    assert_eq!(pa.xid_cache_remove_running_xids(a, s3, &[], s3).unwrap(), 1);
    assert_eq!(count(), (1, 1));
    // Past 64 the cache overflows; removing cached ids keeps the flag.
    let more: Vec<_> = (0..64)
        .map(|_| pa.assign_transaction_id(a, true).unwrap())
        .collect();
    assert!(pa.procs().subxid_states()[1]
        .overflowed
        .load(Ordering::Relaxed));
    let last = *more.last().unwrap();
    assert_eq!(
        pa.xid_cache_remove_running_xids(a, last, &more[..10], last)
            .unwrap(),
        1,
        "the 65th never fitted"
    );
    assert_eq!(count(), (54, 54));
    assert!(pa.procs().subxid_states()[1]
        .overflowed
        .load(Ordering::Relaxed));
    pa.check_consistency().unwrap();
    pa.end_transaction(a, last).unwrap();
    assert_eq!(count(), (0, 0));
}
