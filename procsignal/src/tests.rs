use super::*;

/// A pid that cannot exist (Linux pid_max is at most 2^22).
const GONE: i32 = i32::MAX - 7;

fn setup(n: usize) -> (Shmem, ProcSignal) {
    let shm = Shmem::create_for_tests(1 << 20).expect("segment");
    let ps = shmem_init(&shm, n).expect("init");
    (shm, ps)
}

#[test]
fn reasons_and_kinds_round_trip_and_bad_numbers_are_errors() {
    for (i, r) in ProcSignalReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
        assert_eq!(ProcSignalReason::try_from(i as u32).unwrap(), *r);
        assert!(ProcSignalReason::HANDLER_ORDER.contains(r));
    }
    assert!(matches!(
        ProcSignalReason::try_from(15),
        Err(ProcSignalError::InvalidReason { reason: 15 })
    ));
    assert!(matches!(
        ProcSignalBarrierType::try_from(1),
        Err(ProcSignalError::InvalidBarrierType { kind: 1 })
    ));
    let conflicts = ProcSignalReason::ALL
        .iter()
        .filter(|r| r.is_recovery_conflict())
        .count();
    assert_eq!(conflicts, 7);
}

#[test]
fn init_writes_free_slots_and_attach_checks_size() {
    let (shm, ps) = setup(4);
    for p in 0..4 {
        let s = ps.slot(p).unwrap();
        assert_eq!(s.pid.load(Ordering::Relaxed), 0);
        assert_eq!(s.barrier_generation.load(Ordering::Relaxed), u64::MAX);
    }
    assert!(shmem_init(&shm, 4).is_ok());
    assert!(matches!(
        shmem_init(&shm, 5),
        Err(ProcSignalError::Shmem(_))
    ));
}

#[test]
fn out_of_range_proc_numbers_are_errors() {
    let (_shm, ps) = setup(2);
    assert!(matches!(
        ps.claim_slot(2, 100, None),
        Err(ProcSignalError::InvalidProcNumber { procno: 2, max: 1 })
    ));
    assert!(matches!(
        ps.send_proc_signal(100, ProcSignalReason::NotifyInterrupt, Some(7)),
        Err(ProcSignalError::InvalidProcNumber { .. })
    ));
    assert!(matches!(
        ps.slot_pid(u32::MAX),
        Err(ProcSignalError::InvalidProcNumber { .. })
    ));
}

#[test]
fn cancel_key_longer_than_32_is_an_error() {
    let (_shm, ps) = setup(1);
    assert!(matches!(
        ps.claim_slot(0, 100, Some(&[1; 33])),
        Err(ProcSignalError::InvalidCancelKeyLength { len: 33 })
    ));
    assert_eq!(ps.claim_slot(0, 100, Some(&[1; 32])).unwrap(), 0);
    // An empty key is not "no key": it is refused, so no slot can hold one.
    assert!(matches!(
        ps.claim_slot(0, 100, Some(&[])),
        Err(ProcSignalError::InvalidCancelKeyLength { len: 0 })
    ));
}

/// A live process (`sleep`) standing in for a server process: a matching cancel request
/// would SIGINT it, so "still running" proves no request matched.
fn bystander() -> std::process::Child {
    std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep")
}

fn still_running(c: &mut std::process::Child) -> bool {
    std::thread::sleep(std::time::Duration::from_millis(50));
    c.try_wait().expect("try_wait").is_none()
}

#[test]
fn a_slot_without_a_key_matches_no_cancel_request() {
    let (_shm, ps) = setup(2);
    let mut child = bystander();
    let pid = child.id() as i32;
    ps.claim_slot(1, pid, None).unwrap();
    // Empty, short, the lengths keys have (4, 32), the protocol's longest and beyond, all
    // zero bytes (what an unset key is made of) or not.
    for len in [0usize, 1, 3, 4, 32, 33, 256, 257] {
        for fill in [0u8, 0xa5] {
            assert!(
                !ps.send_cancel_request(pid, &vec![fill; len]),
                "{len} x {fill:#x}"
            );
        }
    }
    assert!(still_running(&mut child), "a keyless slot was matched");
    // The same process with a key: wrong keys and wrong lengths fail, the key itself works.
    let key = *b"0123456789abcdef0123456789abcdef";
    ps.claim_slot(1, pid, Some(&key)).unwrap();
    assert!(!ps.send_cancel_request(pid, &key[..4]));
    assert!(!ps.send_cancel_request(pid, b""));
    let mut longer = key.to_vec();
    longer.push(0);
    assert!(!ps.send_cancel_request(pid, &longer));
    assert!(still_running(&mut child), "a wrong key was matched");
    assert!(ps.send_cancel_request(pid, &key));
    let status = child.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(sys::SIGINT.as_raw()));
}

#[test]
fn send_checks_ownership_and_reports_gone_processes() {
    let (_shm, ps) = setup(3);
    let r = ProcSignalReason::NotifyInterrupt;
    // Nobody owns a slot.
    assert!(matches!(
        ps.send_proc_signal(GONE, r, None),
        Err(ProcSignalError::NoSuchProcess { pid: GONE })
    ));
    // The slot belongs to someone else.
    ps.claim_slot(1, GONE - 1, None).unwrap();
    assert!(matches!(
        ps.send_proc_signal(GONE, r, Some(1)),
        Err(ProcSignalError::NoSuchProcess { .. })
    ));
    assert_eq!(
        ps.slot(1).unwrap().signal_flags[r as usize].load(Ordering::Relaxed),
        0
    );
    // The owner died without cleaning up: the flag is raised, kill says ESRCH.
    ps.claim_slot(2, GONE, None).unwrap();
    assert!(matches!(
        ps.send_proc_signal(GONE, r, None),
        Err(ProcSignalError::NoSuchProcess { pid: GONE })
    ));
    assert_eq!(
        ps.slot(2).unwrap().signal_flags[r as usize].load(Ordering::Relaxed),
        1
    );
    // Pids that would address process groups are refused before anything is touched.
    for bad in [0, -1, -GONE] {
        assert!(matches!(
            ps.send_proc_signal(bad, r, None),
            Err(ProcSignalError::NoSuchProcess { .. })
        ));
    }
}

#[test]
fn claim_clears_flags_and_reports_previous_owner() {
    let (_shm, ps) = setup(1);
    assert_eq!(ps.claim_slot(0, GONE, Some(b"k")).unwrap(), 0);
    ps.slot(0).unwrap().signal_flags[3].store(1, Ordering::Relaxed);
    assert_eq!(ps.claim_slot(0, GONE - 1, None).unwrap(), GONE);
    assert_eq!(
        ps.slot(0).unwrap().signal_flags[3].load(Ordering::Relaxed),
        0
    );
    // Release by the wrong pid leaves it alone; by the owner frees it.
    ps.release_slot(0, GONE);
    assert_eq!(ps.slot_pid(0).unwrap(), GONE - 1);
    ps.release_slot(0, GONE - 1);
    assert_eq!(ps.slot_pid(0).unwrap(), 0);
    assert_eq!(
        ps.slot(0)
            .unwrap()
            .barrier_generation
            .load(Ordering::Relaxed),
        u64::MAX
    );
}

#[test]
fn cancel_request_needs_the_exact_key() {
    let (_shm, ps) = setup(2);
    ps.claim_slot(1, GONE, Some(b"0123456789abcdef0123456789abcdef"))
        .unwrap();
    // Right key: the kill fails (no such process), so still false, but wrong keys never get
    // that far; check the comparison itself.
    let slot = ps.slot(1).unwrap();
    assert!(key_equal(
        &slot.cancel_key[..32],
        b"0123456789abcdef0123456789abcdef"
    ));
    assert!(!key_equal(
        &slot.cancel_key[..32],
        b"0123456789abcdef0123456789abcdeX"
    ));
    assert!(!ps.send_cancel_request(GONE, b"0123456789abcdef0123456789abcdeX"));
    assert!(!ps.send_cancel_request(GONE, b"0123"));
    assert!(!ps.send_cancel_request(GONE - 3, b"0123456789abcdef0123456789abcdef"));
    assert!(!ps.send_cancel_request(0, b""));
}

#[test]
fn barrier_generation_flow_in_one_process() {
    let (_shm, ps) = setup(3);
    ps.claim_slot(0, GONE, None).unwrap();
    ps.claim_slot(2, GONE - 1, None).unwrap();
    assert_eq!(ps.absorb(0).unwrap(), BarrierProgress::UpToDate);
    let g = ps.emit_proc_signal_barrier(ProcSignalBarrierType::SmgrRelease);
    assert_eq!(g, 1);
    assert!(matches!(
        ps.wait_for_proc_signal_barrier(2),
        Err(ProcSignalError::InvalidGeneration {
            generation: 2,
            current: 1
        })
    ));
    assert!(
        !ps.wait_for_proc_signal_barrier_until(g, Some(Duration::from_millis(20)))
            .unwrap(),
        "nobody absorbed yet"
    );
    // Each slot got the BARRIER flag and the kind bit.
    let s0 = ps.slot(0).unwrap();
    assert_eq!(
        s0.signal_flags[ProcSignalReason::Barrier as usize].load(Ordering::Relaxed),
        1
    );
    assert_eq!(s0.barrier_check_mask.load(Ordering::Relaxed), 1);
    assert_eq!(ps.absorb(0).unwrap(), BarrierProgress::Absorbed);
    assert_eq!(s0.barrier_check_mask.load(Ordering::Relaxed), 0);
    assert_eq!(ps.absorb(0).unwrap(), BarrierProgress::UpToDate);
    // Slot 2 exits instead of absorbing: the wait completes.
    ps.release_slot(2, GONE - 1);
    assert!(ps
        .wait_for_proc_signal_barrier_until(g, Some(Duration::from_secs(5)))
        .unwrap());
    // A newcomer starts at the current generation and is not waited for.
    ps.claim_slot(1, GONE - 2, None).unwrap();
    assert_eq!(
        ps.slot(1)
            .unwrap()
            .barrier_generation
            .load(Ordering::Relaxed),
        1
    );
    assert_eq!(ps.absorb(1).unwrap(), BarrierProgress::UpToDate);
}

#[test]
fn layout() {
    insta::assert_snapshot!(format!(
        "ProcSignalHeader size={} align={}\nProcSignalSlot size={} align={} pid@{} mutex@{} \
         cancel_key_len@{} signal_flags@{} barrier_check_mask@{} barrier_cv@{} cancel_key@{} \
         barrier_generation@{}",
        size_of::<ProcSignalHeader>(),
        align_of::<ProcSignalHeader>(),
        size_of::<ProcSignalSlot>(),
        align_of::<ProcSignalSlot>(),
        std::mem::offset_of!(ProcSignalSlot, pid),
        std::mem::offset_of!(ProcSignalSlot, mutex),
        std::mem::offset_of!(ProcSignalSlot, cancel_key_len),
        std::mem::offset_of!(ProcSignalSlot, signal_flags),
        std::mem::offset_of!(ProcSignalSlot, barrier_check_mask),
        std::mem::offset_of!(ProcSignalSlot, barrier_cv),
        std::mem::offset_of!(ProcSignalSlot, cancel_key),
        std::mem::offset_of!(ProcSignalSlot, barrier_generation),
    ));
}
