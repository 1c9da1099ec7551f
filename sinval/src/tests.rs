use super::*;

fn setup(n: usize) -> (Shmem, SharedInval) {
    let shm = Shmem::create_for_tests_with(1 << 20, n).expect("segment");
    let si = shmem_init(&shm, n).expect("init");
    (shm, si)
}

fn msg(i: u32) -> SharedInvalidationMessage {
    SharedInvalidationMessage::relcache(5, i)
}

fn seq_of(m: &SharedInvalidationMessage) -> u32 {
    m.words()[1]
}

/// Reads everything available in `chunk`-sized pieces; returns the sequence numbers and
/// whether a reset came first.
fn drain(b: &SInvalBackend, chunk: usize) -> (bool, Vec<u32>) {
    let mut buf = vec![SharedInvalidationMessage::default(); chunk];
    let mut out = vec![];
    let mut reset = false;
    loop {
        match b.get_data_entries(&mut buf).unwrap() {
            Received::Reset => reset = true,
            Received::Messages(0) => return (reset, out),
            Received::Messages(n) => out.extend(buf[..n].iter().map(seq_of)),
        }
    }
}

fn insert_range(si: &SharedInval, r: std::ops::Range<u32>) {
    let v: Vec<_> = r.map(msg).collect();
    si.insert_data_entries(&v);
}

#[test]
fn message_format_matches_postgres_union() {
    assert_eq!(size_of::<SharedInvalidationMessage>(), 16);
    let m = SharedInvalidationMessage::catcache(7, 1, 0xdead_beef);
    assert_eq!(m.id(), 7);
    assert_eq!(m.words(), [1, 0xdead_beef, 0]);
    let s = SharedInvalidationMessage::smgr(-1, 1663, 5, 16384);
    assert_eq!(s.id(), SHAREDINVALSMGR_ID);
    assert_eq!(s.smgr_backend(), -1);
    assert_eq!(s.words(), [1663, 5, 16384]);
    assert_eq!(
        SharedInvalidationMessage::smgr(70_000, 0, 0, 0).smgr_backend(),
        70_000
    );
    for (m, id) in [
        (
            SharedInvalidationMessage::catalog(1, 2),
            SHAREDINVALCATALOG_ID,
        ),
        (
            SharedInvalidationMessage::relcache(1, 2),
            SHAREDINVALRELCACHE_ID,
        ),
        (SharedInvalidationMessage::relmap(1), SHAREDINVALRELMAP_ID),
        (
            SharedInvalidationMessage::snapshot(1, 2),
            SHAREDINVALSNAPSHOT_ID,
        ),
        (
            SharedInvalidationMessage::relsync(1, 2),
            SHAREDINVALRELSYNC_ID,
        ),
    ] {
        assert_eq!(m.id(), id);
        assert_eq!(SharedInvalidationMessage::from_bytes(*m.as_bytes()), m);
    }
    let cell = MessageCell::default();
    cell.store(s);
    assert_eq!(cell.load(), s);
}

#[test]
fn size_and_bad_input() {
    assert_eq!(shmem_size(0).unwrap(), 32 + 4096 * 16);
    assert_eq!(shmem_size(10).unwrap(), 32 + 4096 * 16 + 10 * 20);
    assert!(shmem_size(usize::MAX / 4).is_err());
    let (shm, si) = setup(4);
    assert!(matches!(
        si.shared_inval_backend_init(4, false),
        Err(SinvalError::InvalidProcNumber { procno: 4, max: 3 })
    ));
    let _b = si.shared_inval_backend_init(1, false).unwrap();
    assert!(matches!(
        si.shared_inval_backend_init(1, false),
        Err(SinvalError::SlotInUse { procno: 1, .. })
    ));
    assert!(matches!(shmem_init(&shm, 5), Err(SinvalError::Shmem(_))));
}

#[test]
fn readers_see_messages_in_order_and_latecomers_see_none() {
    let (_shm, si) = setup(4);
    let a = si.shared_inval_backend_init(0, false).unwrap();
    let b = si.shared_inval_backend_init(1, false).unwrap();
    insert_range(&si, 0..10);
    let c = si.shared_inval_backend_init(2, false).unwrap();
    assert_eq!(drain(&a, 32), (false, (0..10).collect()));
    assert_eq!(drain(&b, 3), (false, (0..10).collect()));
    assert_eq!(drain(&c, 32), (false, vec![]));
    insert_range(&si, 10..12);
    assert_eq!(drain(&c, 32), (false, vec![10, 11]));
    assert_eq!(a.message_counter(), 10);
}

#[test]
fn short_buffer_returns_exactly_its_size_and_keeps_the_hint() {
    let (_shm, si) = setup(2);
    let a = si.shared_inval_backend_init(0, false).unwrap();
    insert_range(&si, 0..5);
    let mut buf = [SharedInvalidationMessage::default(); 2];
    assert_eq!(a.get_data_entries(&mut buf).unwrap(), Received::Messages(2));
    assert!(si
        .proc_state(0)
        .unwrap()
        .has_messages
        .load(Ordering::Relaxed));
    assert_eq!(a.get_data_entries(&mut buf).unwrap(), Received::Messages(2));
    assert_eq!(a.get_data_entries(&mut buf).unwrap(), Received::Messages(1));
    assert!(!si
        .proc_state(0)
        .unwrap()
        .has_messages
        .load(Ordering::Relaxed));
    assert_eq!(a.get_data_entries(&mut buf).unwrap(), Received::Messages(0));
}

#[test]
fn idle_reader_is_reset_once_then_resumes_and_writer_never_blocks() {
    let (_shm, si) = setup(2);
    let idle = si.shared_inval_backend_init(0, false).unwrap();
    // 100 000 messages past a reader that never reads: the writer must not block.
    for base in (0..100_000u32).step_by(1000) {
        insert_range(&si, base..base + 1000);
    }
    let h = si.header();
    let queued = h.max_msg_num.load(Ordering::Relaxed) - h.min_msg_num.load(Ordering::Relaxed);
    assert!(queued <= MAXNUMMESSAGES, "queue holds {queued}");
    let mut buf = [SharedInvalidationMessage::default(); 32];
    assert_eq!(idle.get_data_entries(&mut buf).unwrap(), Received::Reset);
    assert_eq!(
        idle.get_data_entries(&mut buf).unwrap(),
        Received::Messages(0)
    );
    insert_range(&si, 200_000..200_003);
    assert_eq!(drain(&idle, 32), (false, vec![200_000, 200_001, 200_002]));
}

#[test]
fn catch_up_signal_only_past_sig_threshold_and_only_once() {
    let (_shm, si) = setup(3);
    let lag = si.shared_inval_backend_init(0, false).unwrap();
    let st = si.proc_state(0).unwrap();
    // Exactly 2048 behind: the cleanup at the 2048 threshold does not signal.
    insert_range(&si, 0..2048);
    insert_range(&si, 2048..2049);
    assert!(!st.signaled.load(Ordering::Relaxed));
    assert_eq!(si.header().next_threshold.load(Ordering::Relaxed), 2304);
    // Past the next threshold (2304 queued) it is signalled (no ProcSignal slot here, so the
    // send itself fails quietly), once.
    insert_range(&si, 2049..2400);
    assert!(st.signaled.load(Ordering::Relaxed));
    assert!(!st.reset_state.load(Ordering::Relaxed));
    // Catching up clears `signaled`.
    let (reset, got) = drain(&lag, 100);
    assert!(!reset);
    assert_eq!(got.len(), 2400);
    assert!(!st.signaled.load(Ordering::Relaxed));
}

#[test]
fn send_only_backends_never_hold_writers_back() {
    let (_shm, si) = setup(2);
    let startup = si.shared_inval_backend_init(0, true).unwrap();
    insert_range(&si, 0..10_000);
    let st = si.proc_state(0).unwrap();
    assert!(!st.reset_state.load(Ordering::Relaxed));
    assert!(!st.signaled.load(Ordering::Relaxed));
    startup.cleanup().unwrap();
}

#[test]
fn cleanup_swap_removes_and_carries_lxid() {
    let (_shm, si) = setup(4);
    let a = si.shared_inval_backend_init(0, false).unwrap();
    let b = si.shared_inval_backend_init(1, false).unwrap();
    let c = si.shared_inval_backend_init(2, false).unwrap();
    assert_eq!(b.get_next_local_transaction_id(), 1, "0 is skipped");
    assert_eq!(b.get_next_local_transaction_id(), 2);
    b.cleanup().unwrap();
    assert!(matches!(b.cleanup(), Err(SinvalError::NotOwner { .. })));
    assert_eq!(si.header().num_procs.load(Ordering::Relaxed), 2);
    let b2 = si.shared_inval_backend_init(1, false).unwrap();
    assert_eq!(b2.get_next_local_transaction_id(), 3);
    insert_range(&si, 0..3);
    for x in [&a, &b2, &c] {
        assert_eq!(drain(x, 8).1, vec![0, 1, 2]);
    }
}

#[test]
fn rebasing_at_wraparound_keeps_distances() {
    let (_shm, si) = setup(2);
    si.header().msgnum_wraparound.store(8192, Ordering::Relaxed);
    let a = si.shared_inval_backend_init(0, false).unwrap();
    let mut expect = 0u32;
    for round in 0..40u32 {
        insert_range(&si, round * 1000..round * 1000 + 1000);
        let (reset, got) = drain(&a, 64);
        assert!(!reset);
        assert_eq!(got, (expect..expect + 1000).collect::<Vec<_>>());
        expect += 1000;
    }
    let h = si.header();
    assert!(
        h.max_msg_num.load(Ordering::Relaxed) < 8192 + 4096,
        "rebased"
    );
    assert_eq!(
        si.proc_state(0)
            .unwrap()
            .next_msg_num
            .load(Ordering::Relaxed),
        h.max_msg_num.load(Ordering::Relaxed)
    );
}

#[test]
fn layout() {
    insta::assert_snapshot!(format!(
        "SISegHeader size={} align={}\nProcState size={} align={}\nMessageCell size={}\n\
         shmem_size(142)={}",
        size_of::<SISegHeader>(),
        align_of::<SISegHeader>(),
        size_of::<ProcState>(),
        align_of::<ProcState>(),
        size_of::<MessageCell>(),
        shmem_size(142).unwrap(),
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u32),
    Read { reader: usize, buf: usize },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (1u32..700).prop_map(Op::Insert),
        (0usize..3, 1usize..100).prop_map(|(reader, buf)| Op::Read { reader, buf }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Against a model: every reader gets messages in order without gaps, except that a reset
    /// moves it to the end of the queue as it was at that read; a reset only comes after the
    /// reader fell more than a ring minus a write batch behind; the queue never holds more
    /// than the ring.
    #[test]
    fn readers_follow_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        let (_shm, si) = setup(4);
        si.header().msgnum_wraparound.store(3 * MAXNUMMESSAGES, Ordering::Relaxed);
        let readers: Vec<_> = (0..3).map(|p| si.shared_inval_backend_init(p, false).unwrap()).collect();
        let mut next_seq = 0u32;
        let mut expect = [0u32; 3];
        let mut max_lag = [0u32; 3];
        for op in ops {
            match op {
                Op::Insert(n) => {
                    insert_range(&si, next_seq..next_seq + n);
                    next_seq += n;
                    for r in 0..3 {
                        max_lag[r] = max_lag[r].max(next_seq - expect[r]);
                    }
                    let h = si.header();
                    let queued = h.max_msg_num.load(Ordering::Relaxed) - h.min_msg_num.load(Ordering::Relaxed);
                    proptest::prop_assert!(queued <= MAXNUMMESSAGES);
                }
                Op::Read { reader, buf } => {
                    let mut b = vec![SharedInvalidationMessage::default(); buf];
                    match readers[reader].get_data_entries(&mut b).unwrap() {
                        Received::Reset => {
                            proptest::prop_assert!(
                                max_lag[reader] > (MAXNUMMESSAGES as u32) - (WRITE_QUANTUM as u32),
                                "reset after a lag of only {}", max_lag[reader]
                            );
                            expect[reader] = next_seq;
                            max_lag[reader] = 0;
                        }
                        Received::Messages(n) => {
                            proptest::prop_assert!(n <= buf);
                            for m in &b[..n] {
                                proptest::prop_assert_eq!(seq_of(m), expect[reader]);
                                expect[reader] += 1;
                            }
                            if n < buf {
                                proptest::prop_assert_eq!(expect[reader], next_seq, "short read but more pending");
                            }
                            max_lag[reader] = next_seq - expect[reader];
                        }
                    }
                }
            }
        }
    }
}
