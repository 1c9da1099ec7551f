use super::*;
use pgipc_shmem::Shmem;
use std::mem::{align_of, offset_of, size_of};

fn small() -> ProcConfig {
    ProcConfig {
        max_connections: 3,
        autovacuum_worker_slots: 1,
        max_worker_processes: 1,
        max_wal_senders: 1,
        max_prepared_xacts: 2,
    }
}

fn setup(cfg: &ProcConfig) -> ProcGlobal {
    let all = cfg.all_proc_count().unwrap() as usize;
    let shmem = Shmem::create_for_tests_with(4 << 20, all).unwrap();
    shmem_init(&shmem, cfg).unwrap()
}

fn lists(g: &ProcGlobal) -> Vec<Vec<ProcNumber>> {
    FreeList::ALL
        .iter()
        .map(|l| g.free_list_members(*l))
        .collect()
}

#[test]
fn max_backends_formula() {
    let d = ProcConfig::default();
    assert_eq!(d.max_backends().unwrap(), 100 + 16 + 8 + 10 + 2);
    assert_eq!(d.all_proc_count().unwrap(), 136 + 38);
    let big = ProcConfig {
        max_connections: MAX_BACKENDS,
        ..d
    };
    let e = big.max_backends().unwrap_err();
    assert_eq!(e.sqlstate(), "22023");
    assert_eq!(
        e.to_string(),
        "too many server processes configured: \"max_connections\" (262143) plus \
         \"autovacuum_worker_slots\" (16) plus \"max_worker_processes\" (8) plus \
         \"max_wal_senders\" (10) must be less than 262142"
    );
}

#[test]
fn partitions_and_free_lists() {
    let g = setup(&small());
    assert_eq!(g.max_backends(), 8);
    assert_eq!(g.all_proc_count(), 8 + NUM_AUXILIARY_PROCS);
    assert_eq!(g.all_procs().len(), 8 + 38 + 2);
    assert_eq!(
        lists(&g),
        vec![vec![0, 1, 2], vec![3, 4, 5], vec![6], vec![7]]
    );
    assert_eq!(g.have_n_free_procs(3), (true, 3));
    assert_eq!(g.have_n_free_procs(4), (false, 3));
}

#[test]
fn exhaustion_is_53300_and_leaves_lists_intact() {
    let g = setup(&small());
    for want in 0..3 {
        assert_eq!(
            g.alloc_slot(BackendType::Backend, 1000 + want as i32)
                .unwrap(),
            want
        );
    }
    let before = lists(&g);
    let e = g.alloc_slot(BackendType::Backend, 2000).unwrap_err();
    assert_eq!(e.to_string(), "sorry, too many clients already");
    assert_eq!(e.sqlstate(), "53300");
    assert_eq!(lists(&g), before);
    assert_eq!(g.alloc_slot(BackendType::WalSender, 3000).unwrap(), 7);
    let e = g.alloc_slot(BackendType::WalSender, 3001).unwrap_err();
    assert_eq!(
        e.to_string(),
        "number of requested standby connections exceeds \"max_wal_senders\" (currently 1)"
    );
    assert_eq!(e.sqlstate(), "53300");
    // Other kinds are unaffected.
    assert_eq!(g.alloc_slot(BackendType::BgWorker, 4000).unwrap(), 6);
    assert_eq!(g.alloc_slot(BackendType::AutovacWorker, 5000).unwrap(), 3);
    assert_eq!(
        g.all_procs()[3]
            .status_flags
            .load(std::sync::atomic::Ordering::Relaxed),
        status_flags::PROC_IS_AUTOVACUUM
    );
    // Release puts the slot at the tail; it is reusable.
    assert!(g.release_slot(1).unwrap());
    assert!(!g.release_slot(1).unwrap(), "double release is a no-op");
    assert_eq!(g.free_list_members(FreeList::Backends), vec![1]);
    assert_eq!(g.alloc_slot(BackendType::Backend, 6000).unwrap(), 1);
    assert!(matches!(
        g.alloc_slot(BackendType::Checkpointer, 1),
        Err(ProcError::WrongKind(_))
    ));
}

#[test]
fn auxiliary_slots() {
    let g = setup(&small());
    let mut got = Vec::new();
    for i in 0..NUM_AUXILIARY_PROCS {
        got.push(
            g.alloc_aux_slot(BackendType::IoWorker, 100 + i as i32)
                .unwrap(),
        );
    }
    assert_eq!(got.first(), Some(&8));
    assert_eq!(got.last(), Some(&(8 + 37)));
    let e = g.alloc_aux_slot(BackendType::Checkpointer, 1).unwrap_err();
    assert_eq!(e.to_string(), "all AuxiliaryProcs are in use");
    assert_eq!(g.auxiliary_pid_get_proc(105), Some(13));
    assert!(g.release_aux_slot(13).unwrap());
    assert_eq!(g.alloc_aux_slot(BackendType::WalWriter, 7).unwrap(), 13);
    assert!(matches!(
        g.alloc_aux_slot(BackendType::Backend, 1),
        Err(ProcError::WrongKind(_))
    ));
}

#[test]
fn reclaim_dead_process() {
    use std::sync::atomic::Ordering;
    let g = setup(&small());
    let n = g.alloc_slot(BackendType::Backend, 4242).unwrap();
    let aux = g.alloc_aux_slot(BackendType::BgWriter, 4343).unwrap();
    g.all_procs()[n as usize]
        .pgxactoff
        .store(0, Ordering::Relaxed);
    assert!(matches!(
        g.reclaim_dead_process(4242),
        Err(ProcError::StillInProcArray { .. })
    ));
    g.all_procs()[n as usize]
        .pgxactoff
        .store(INVALID_PROC_NUMBER, Ordering::Relaxed);
    assert_eq!(g.reclaim_dead_process(4242).unwrap(), Reclaim::Reclaimed(n));
    assert_eq!(
        g.reclaim_dead_process(4242).unwrap(),
        Reclaim::NoSuchProcess
    );
    // A busy ProcStructLock is reported, not waited for.
    let n2 = g.alloc_slot(BackendType::Backend, 4444).unwrap();
    {
        let (lock, _) = g
            .shmem()
            .init_struct::<pgipc_lwlock::SpinLock>(PROC_STRUCT_LOCK_NAME)
            .unwrap();
        let _held = lock.lock();
        assert_eq!(g.reclaim_dead_process(4444).unwrap(), Reclaim::WouldBlock);
    }
    assert_eq!(
        g.reclaim_dead_process(4444).unwrap(),
        Reclaim::Reclaimed(n2)
    );
    assert_eq!(
        g.reclaim_dead_process(4343).unwrap(),
        Reclaim::Reclaimed(aux)
    );
    assert_eq!(lists(&g)[0], vec![2, 0, 1]);
    assert_eq!(g.auxiliary_pid_get_proc(4343), None);
}

#[test]
fn attach_finds_the_same_table_and_checks_settings() {
    let cfg = small();
    let g = setup(&cfg);
    let again = shmem_init(g.shmem(), &cfg).unwrap();
    assert_eq!(again.all_procs().as_ptr(), g.all_procs().as_ptr());
    let other = ProcConfig {
        max_prepared_xacts: 5,
        ..cfg
    };
    assert!(shmem_init(g.shmem(), &other).is_err());
    let names: Vec<String> = g
        .shmem()
        .allocations()
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.name {
            pgipc_shmem::AllocationName::Named(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            PROC_HEADER_NAME,
            PGPROC_STRUCTURES_NAME,
            PROC_STRUCT_LOCK_NAME
        ]
    );
}

#[test]
fn too_few_wait_slots() {
    let shmem = Shmem::create_for_tests_with(4 << 20, 10).unwrap();
    let e = shmem_init(&shmem, &small()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the segment has 10 wait slots, the PGPROC array needs 46"
    );
}

/// The only test in this binary that gives the test process itself a PGPROC.
#[test]
fn init_process_once_per_process() {
    let g = setup(&small());
    let me = init_process(&g, BackendType::Backend).unwrap();
    assert_eq!(my_proc_number(), Some(me.proc_number()));
    assert_eq!(
        me.pgproc().pid.load(std::sync::atomic::Ordering::Relaxed),
        std::process::id() as i32
    );
    assert!(matches!(
        init_process(&g, BackendType::Backend),
        Err(ProcError::AlreadyExists)
    ));
    assert!(matches!(
        init_auxiliary_process(&g, BackendType::Startup),
        Err(ProcError::AlreadyExists)
    ));
    // A signal sent before the wait is not lost.
    g.proc_send_signal(me.proc_number()).unwrap();
    me.wait_for_signal(0x0800_0001).unwrap();
    assert!(!me.latch().is_set());
    assert_eq!(g.wait_event_info(me.proc_number()).unwrap(), 0);
    assert!(matches!(
        g.proc_send_signal(9999),
        Err(ProcError::ProcNumberOutOfRange { procno: 9999 })
    ));
}

#[test]
fn layout() {
    let s = format!(
        "PgProc size {} align {}\n pid {} proc_number {} lxid {} xid {} xmin {} pgxactoff {} \
         database_id {} group_next {} backend_type {} status_flags {} wait_start {} \
         subxid_status {} subxids {} latch {}\nProcHdr size {} align {} free {} group_first {}\n\
         XidCacheStatus size {}\nCachePadded<PgProc> (a table entry) size {} align {}",
        size_of::<PgProc>(),
        align_of::<PgProc>(),
        offset_of!(PgProc, pid),
        offset_of!(PgProc, proc_number),
        offset_of!(PgProc, lxid),
        offset_of!(PgProc, xid),
        offset_of!(PgProc, xmin),
        offset_of!(PgProc, pgxactoff),
        offset_of!(PgProc, database_id),
        offset_of!(PgProc, proc_array_group_next),
        offset_of!(PgProc, backend_type),
        offset_of!(PgProc, status_flags),
        offset_of!(PgProc, wait_start),
        offset_of!(PgProc, subxid_status),
        offset_of!(PgProc, subxids),
        offset_of!(PgProc, latch),
        size_of::<ProcHdr>(),
        align_of::<ProcHdr>(),
        offset_of!(ProcHdr, free),
        offset_of!(ProcHdr, proc_array_group_first),
        size_of::<XidCacheStatus>(),
        size_of::<pgipc_lwlock::CachePadded<PgProc>>(),
        align_of::<pgipc_lwlock::CachePadded<PgProc>>(),
    );
    insta::assert_snapshot!(s);
}
