use super::*;

fn setup(n: usize) -> (Shmem, PMSignal) {
    let shm = Shmem::create_for_tests(1 << 20).expect("segment");
    let pm = shmem_init(&shm, n).expect("init");
    (shm, pm)
}

#[test]
fn size_is_header_plus_one_word_per_slot() {
    assert_eq!(size_of::<PMSignalHeader>(), 52);
    assert_eq!(shmem_size(0).unwrap(), 52);
    assert_eq!(shmem_size(10).unwrap(), 92);
    assert!(shmem_size(usize::MAX / 2).is_err());
}

#[test]
fn attach_finds_the_same_state_and_checks_the_size() {
    let (shm, pm) = setup(4);
    pm.set_postmaster_pid(1234);
    let again = shmem_init(&shm, 4).expect("attach");
    assert_eq!(again.postmaster_pid(), 1234);
    assert!(matches!(shmem_init(&shm, 5), Err(PmSignalError::Shmem(_))));
}

#[test]
fn reasons_round_trip_and_bad_numbers_are_errors() {
    for (i, r) in PMSignalReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
        assert_eq!(PMSignalReason::try_from(i as u32).unwrap(), *r);
        assert!(r.name().starts_with("PMSIGNAL_"));
    }
    assert!(matches!(
        PMSignalReason::try_from(NUM_PMSIGNALS as u32),
        Err(PmSignalError::InvalidReason { reason: 10 })
    ));
}

#[test]
fn check_clears_and_two_raises_are_seen_once() {
    let (_shm, pm) = setup(1);
    let r = PMSignalReason::BackgroundWorkerChange;
    assert!(!pm.check_postmaster_signal(r));
    pm.hdr.flags[r as usize].store(1, Ordering::SeqCst);
    pm.hdr.flags[r as usize].store(1, Ordering::SeqCst);
    assert!(pm.check_postmaster_signal(r));
    assert!(!pm.check_postmaster_signal(r));
}

#[test]
fn send_without_a_postmaster_is_an_error_and_raises_nothing() {
    let (_shm, pm) = setup(1);
    let r = PMSignalReason::AdvanceStateMachine;
    assert!(matches!(
        pm.send_postmaster_signal(r),
        Err(PmSignalError::NoPostmaster)
    ));
    assert!(!pm.check_postmaster_signal(r));
}

#[test]
fn send_to_a_dead_postmaster_reports_kill_failure() {
    let (_shm, pm) = setup(1);
    // pid_max on Linux is at most 2^22, so this pid cannot exist.
    pm.set_postmaster_pid(i32::MAX - 1);
    let r = PMSignalReason::RotateLogfile;
    assert!(matches!(
        pm.send_postmaster_signal(r),
        Err(PmSignalError::Kill { .. })
    ));
}

#[test]
fn quit_reason() {
    let (_shm, pm) = setup(1);
    assert_eq!(pm.quit_signal_reason(), QuitSignalReason::NotSent);
    pm.set_quit_signal_reason(QuitSignalReason::ForCrash);
    assert_eq!(pm.quit_signal_reason(), QuitSignalReason::ForCrash);
    pm.set_quit_signal_reason(QuitSignalReason::ForStop);
    assert_eq!(pm.quit_signal_reason(), QuitSignalReason::ForStop);
}

#[test]
fn slot_life_cycle_clean_exit() {
    let (_shm, pm) = setup(3);
    pm.mark_child_slot_assigned(2).unwrap();
    pm.mark_child_active(2).unwrap();
    assert!(!pm.is_child_walsender(2));
    pm.mark_child_walsender(2).unwrap();
    assert!(pm.is_child_walsender(2));
    pm.mark_child_inactive(2).unwrap();
    assert_eq!(
        pm.child_slot_state(2).unwrap(),
        Some(ChildSlotState::Assigned)
    );
    assert!(pm.mark_child_slot_unassigned(2), "orderly exit");
    assert!(!pm.mark_child_slot_unassigned(2), "second call is harmless");
    assert_eq!(
        pm.child_slot_state(2).unwrap(),
        Some(ChildSlotState::Unused)
    );
}

#[test]
fn slot_left_active_is_a_crash() {
    let (_shm, pm) = setup(3);
    pm.mark_child_slot_assigned(1).unwrap();
    pm.mark_child_active(1).unwrap();
    assert!(!pm.mark_child_slot_unassigned(1));
    pm.mark_child_slot_assigned(3).unwrap();
    pm.mark_child_active(3).unwrap();
    pm.mark_child_walsender(3).unwrap();
    assert!(!pm.mark_child_slot_unassigned(3));
}

#[test]
fn bad_slots_and_bad_transitions_are_errors() {
    let (_shm, pm) = setup(2);
    for bad in [0, 3, u32::MAX] {
        assert!(matches!(
            pm.mark_child_slot_assigned(bad),
            Err(PmSignalError::InvalidSlot { .. })
        ));
        assert!(matches!(
            pm.mark_child_active(bad),
            Err(PmSignalError::InvalidSlot { .. })
        ));
        assert!(!pm.mark_child_slot_unassigned(bad));
        assert!(!pm.is_child_walsender(bad));
    }
    pm.mark_child_slot_assigned(1).unwrap();
    assert!(matches!(
        pm.mark_child_slot_assigned(1),
        Err(PmSignalError::SlotInUse {
            slot: 1,
            state: ChildSlotState::Assigned
        })
    ));
    assert!(matches!(
        pm.mark_child_walsender(1),
        Err(PmSignalError::WrongSlotState { .. })
    ));
    assert!(matches!(
        pm.mark_child_inactive(1),
        Err(PmSignalError::WrongSlotState {
            expected: ChildSlotState::Active,
            ..
        })
    ));
    assert!(matches!(
        pm.mark_child_active(2),
        Err(PmSignalError::WrongSlotState { .. })
    ));
}

#[test]
fn layout() {
    insta::assert_snapshot!(format!(
        "PMSignalHeader size={} align={} flags@{} sigquit_reason@{} postmaster_pid@{} num_child_flags@{}",
        size_of::<PMSignalHeader>(),
        align_of::<PMSignalHeader>(),
        std::mem::offset_of!(PMSignalHeader, flags),
        std::mem::offset_of!(PMSignalHeader, sigquit_reason),
        std::mem::offset_of!(PMSignalHeader, postmaster_pid),
        std::mem::offset_of!(PMSignalHeader, num_child_flags),
    ));
}
