//! Single-process tests: both ends in one process, driven with `nowait`.

use crate::*;
use pgipc_latch::{Latch, OwnedLatch};

/// 8-aligned local space for a queue.
fn space(bytes: usize) -> Vec<u64> {
    vec![0u64; bytes.div_ceil(8)]
}

struct Pair {
    latches: Vec<Latch>,
}

fn pair() -> Pair {
    Pair {
        latches: vec![Latch::new(), Latch::new()],
    }
}

#[test]
fn layout_is_pinned() {
    assert_eq!(ShmMq::RING_OFFSET, 192);
    assert_eq!(std::mem::align_of::<ShmMq>(), 8);
    assert_eq!(minimum_size(), 200);
}

#[test]
fn too_small_and_misaligned_are_errors() {
    let mut s = space(1024);
    let p = s.as_mut_ptr() as *mut u8;
    // SAFETY: `s` is ours and outlives the queue references.
    let r = unsafe { ShmMq::create(p, 199) };
    assert_eq!(
        r.err(),
        Some(ShmMqError::QueueTooSmall {
            min: 200,
            size: 192
        })
    );
    // SAFETY: as above.
    let r = unsafe { ShmMq::create(p.wrapping_add(4), 512) };
    assert!(matches!(r, Err(ShmMqError::Misaligned { .. })));
    // SAFETY: as above.
    let q = unsafe { ShmMq::create(p, 205) }.expect("create");
    assert_eq!(q.ring_size(), 8);
}

#[test]
fn roundtrip_wrap_oversize_nowait_and_detach() {
    let mut s = space(192 + 64);
    let pr = pair();
    let waker = &Latches(&pr.latches);
    // SAFETY: `s` outlives every use below.
    let q = unsafe { ShmMq::create(s.as_mut_ptr() as *mut u8, 192 + 64) }.expect("create");
    assert_eq!(q.ring_size(), 64);
    q.set_sender(0, waker).expect("sender");
    assert_eq!(
        q.set_sender(1, waker),
        Err(ShmMqError::AlreadySet {
            side: "sender",
            procno: 0
        })
    );
    let ls = OwnedLatch::own(&pr.latches[0]).expect("own");
    let lr = OwnedLatch::own(&pr.latches[1]).expect("own");
    let mut tx = MqHandle::attach(
        q,
        Side::Sender,
        0,
        ls.as_owner(),
        waker,
        AttachOptions::default(),
    )
    .expect("attach");
    assert!(matches!(
        MqHandle::attach(
            q,
            Side::Receiver,
            1,
            lr.as_owner(),
            waker,
            AttachOptions::default()
        ),
        Err(ShmMqError::NotParticipant { .. })
    ));
    q.set_receiver(1, waker).expect("receiver");
    assert!(
        pr.latches[0].is_set(),
        "setting the receiver wakes the sender"
    );
    let mut rx = MqHandle::attach(
        q,
        Side::Receiver,
        1,
        lr.as_owner(),
        waker,
        AttachOptions::default(),
    )
    .expect("attach");
    assert_eq!(rx.receive(true), Ok(RecvResult::WouldBlock));
    assert_eq!(
        tx.send(&vec![0; MAX_MESSAGE_SIZE + 1], SendOptions::NOWAIT),
        Err(ShmMqError::MessageTooLarge {
            size: MAX_MESSAGE_SIZE + 1
        })
    );
    // Vectored, flushed, then a message larger than the ring streamed in nowait steps.
    assert_eq!(
        tx.sendv(
            &[b"ab", b"", b"cde"],
            SendOptions {
                nowait: true,
                force_flush: true
            }
        ),
        Ok(SendResult::Sent)
    );
    assert_eq!(rx.receive(true), Ok(RecvResult::Received(&b"abcde"[..])));
    let big: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    let mut got = None;
    for _ in 0..100 {
        let st = tx.send(
            &big,
            SendOptions {
                nowait: true,
                force_flush: true,
            },
        );
        match rx.receive(true).expect("receive") {
            RecvResult::Received(m) => {
                got = Some(m.to_vec());
            }
            RecvResult::WouldBlock => {}
            RecvResult::Detached => panic!("detached"),
        }
        if st == Ok(SendResult::Sent) {
            break;
        }
    }
    if got.is_none() {
        got = match rx.receive(true).expect("receive") {
            RecvResult::Received(m) => Some(m.to_vec()),
            other => panic!("{other:?}"),
        };
    }
    assert_eq!(got.as_deref(), Some(&big[..]));
    // Empty message, then detach: the receiver drains, then sees Detached.
    assert_eq!(tx.send(&[], SendOptions::NOWAIT), Ok(SendResult::Sent));
    tx.detach();
    assert_eq!(rx.receive(true), Ok(RecvResult::Received(&[][..])));
    assert_eq!(rx.receive(true), Ok(RecvResult::Detached));
    assert_eq!(rx.receive(false), Ok(RecvResult::Detached));
    assert_eq!(tx.send(b"x", SendOptions::NOWAIT), Ok(SendResult::Detached));
}

#[test]
fn batching_publishes_only_past_a_quarter() {
    let mut s = space(192 + 1024);
    let pr = pair();
    let waker = &Latches(&pr.latches);
    // SAFETY: `s` outlives every use below.
    let q = unsafe { ShmMq::create(s.as_mut_ptr() as *mut u8, 192 + 1024) }.expect("create");
    q.set_sender(0, waker).expect("sender");
    q.set_receiver(1, waker).expect("receiver");
    let ls = OwnedLatch::own(&pr.latches[0]).expect("own");
    let mut tx = MqHandle::attach(
        q,
        Side::Sender,
        0,
        ls.as_owner(),
        waker,
        AttachOptions::default(),
    )
    .expect("attach");
    pr.latches[1].set();
    OwnedLatch::own(&pr.latches[1]).expect("own").reset();
    // 16 + 8 = 24 bytes per message: 10 messages stay private (240 <= 256).
    for _ in 0..10 {
        assert_eq!(
            tx.send(&[7; 16], SendOptions::BLOCKING),
            Ok(SendResult::Sent)
        );
    }
    assert_eq!(
        q.header()
            .bytes_written
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(!pr.latches[1].is_set());
    assert_eq!(
        tx.send(&[7; 16], SendOptions::BLOCKING),
        Ok(SendResult::Sent)
    );
    assert_eq!(
        q.header()
            .bytes_written
            .load(std::sync::atomic::Ordering::SeqCst),
        264
    );
    assert!(pr.latches[1].is_set(), "publishing wakes the receiver");
}

#[test]
fn receiver_detach_is_seen_by_sender() {
    let mut s = space(192 + 64);
    let pr = pair();
    let waker = &Latches(&pr.latches);
    // SAFETY: `s` outlives every use below.
    let q = unsafe { ShmMq::create(s.as_mut_ptr() as *mut u8, 192 + 64) }.expect("create");
    q.set_sender(0, waker).expect("sender");
    q.set_receiver(1, waker).expect("receiver");
    let lr = OwnedLatch::own(&pr.latches[1]).expect("own");
    let ls = OwnedLatch::own(&pr.latches[0]).expect("own");
    let rx = MqHandle::attach(
        q,
        Side::Receiver,
        1,
        lr.as_owner(),
        waker,
        AttachOptions::default(),
    )
    .expect("attach");
    let mut tx = MqHandle::attach(
        q,
        Side::Sender,
        0,
        ls.as_owner(),
        waker,
        AttachOptions::default(),
    )
    .expect("attach");
    drop(rx);
    assert!(q.is_detached());
    assert!(
        pr.latches[0].is_set(),
        "the receiver's detach wakes the sender"
    );
    assert_eq!(
        tx.send(&[1; 100], SendOptions::BLOCKING),
        Ok(SendResult::Detached)
    );
}

// ---- queues in DSM segments (this thread plays one backend) ----

mod in_dsm {
    use crate::*;
    use pgipc_dsm::{
        dsm_backend_shutdown, dsm_backend_startup, dsm_detach_all, dsm_find_mapping,
        dsm_postmaster_shutdown, dsm_postmaster_startup, CreateFlags, DsmHandle, DsmImpl,
        DsmImplType, DsmSegment,
    };
    use pgipc_latch::{Latch, OwnedLatch};
    use std::ptr::NonNull;

    /// A main segment with a DSM control segment, this thread attached, and two latches
    /// (proc 0 sends, proc 1 receives) that live as long as the process.
    struct Server {
        shm: pgipc_shmem::Shmem,
        imp: DsmImpl,
        latches: &'static [Latch],
        waker: &'static Latches<'static>,
    }

    fn server() -> Server {
        let shm = pgipc_shmem::Shmem::create_for_tests(1 << 20).expect("shmem");
        let imp = DsmImpl::new(DsmImplType::Posix, None);
        shm.set_dsm_control(dsm_postmaster_startup(&imp, 2).expect("control"));
        dsm_backend_startup(&shm, imp.clone()).expect("backend startup");
        let latches: &'static [Latch] = Box::leak(vec![Latch::new(), Latch::new()].into());
        Server {
            shm,
            imp,
            latches,
            waker: Box::leak(Box::new(Latches(latches))),
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            dsm_detach_all();
            let r = dsm_postmaster_shutdown(&self.imp, self.shm.dsm_control());
            if !std::thread::panicking() {
                let r = r.expect("shutdown");
                assert!(r.control_removed);
                assert_eq!(r.destroyed, Vec::<DsmHandle>::new(), "no segment left over");
            }
        }
    }

    fn exists(h: DsmHandle) -> bool {
        std::path::Path::new(&format!("/dev/shm/PostgreSQL.{h}")).exists()
    }

    fn mapped_here(h: DsmHandle) -> bool {
        std::fs::read_to_string("/proc/self/maps")
            .expect("maps")
            .contains(&format!("/PostgreSQL.{h}"))
    }

    fn segment() -> DsmSegment {
        DsmSegment::create(8192, CreateFlags::default())
            .expect("create")
            .expect("slot")
    }

    /// A queue of 4096 bytes at the segment's start, both sides set.
    fn queue(srv: &Server, seg: &DsmSegment) -> DsmMq {
        // SAFETY: a fresh segment, only used through this crate.
        let q = unsafe { DsmMq::create(seg, seg.address(), 4096) }.expect("queue");
        let mq = q.queue().expect("usable");
        mq.set_sender(0, srv.waker).expect("sender");
        mq.set_receiver(1, srv.waker).expect("receiver");
        q
    }

    fn handles<'l>(
        srv: &Server,
        q: DsmMq,
        ls: &'l OwnedLatch<&'static Latch>,
        lr: &'l OwnedLatch<&'static Latch>,
    ) -> (MqHandle<'l>, MqHandle<'l>) {
        let tx = MqHandle::attach_dsm(
            q.clone(),
            Side::Sender,
            0,
            ls.as_owner(),
            srv.waker,
            AttachOptions::default(),
        )
        .expect("attach sender");
        let rx = MqHandle::attach_dsm(
            q,
            Side::Receiver,
            1,
            lr.as_owner(),
            srv.waker,
            AttachOptions::default(),
        )
        .expect("attach receiver");
        (tx, rx)
    }

    #[test]
    fn detaching_the_segment_detaches_the_queue_and_the_memory_stays_until_the_last_handle() {
        let srv = server();
        let seg = segment();
        let h = seg.handle();
        let q = queue(&srv, &seg);
        let ls = OwnedLatch::own(&srv.latches[0]).expect("own");
        let lr = OwnedLatch::own(&srv.latches[1]).expect("own");
        let (mut tx, mut rx) = handles(&srv, q, &ls, &lr);
        assert_eq!(tx.send(b"hello", SendOptions::FLUSH), Ok(SendResult::Sent));
        assert_eq!(rx.receive(true), Ok(RecvResult::Received(&b"hello"[..])));
        assert_eq!(tx.send(b"unread", SendOptions::FLUSH), Ok(SendResult::Sent));
        ls.reset();
        lr.reset();
        // Safe code gives the segment up while both handles live (before this fix, the next
        // lines touched unmapped memory).
        seg.detach();
        assert!(dsm_find_mapping(h).is_none(), "detached in this process");
        assert!(
            srv.latches[0].is_set() && srv.latches[1].is_set(),
            "both ends woken"
        );
        assert!(tx.queue().is_detached());
        assert_eq!(
            tx.send(b"late", SendOptions::FLUSH),
            Ok(SendResult::Detached)
        );
        assert_eq!(rx.receive(false), Ok(RecvResult::Received(&b"unread"[..])));
        assert_eq!(rx.receive(false), Ok(RecvResult::Detached));
        assert!(exists(h) && mapped_here(h), "kept while a handle uses it");
        drop(tx);
        assert!(exists(h) && mapped_here(h), "the receiver still uses it");
        drop(rx);
        assert!(!mapped_here(h), "the last handle unmapped it");
        assert!(!exists(h), "and gave the last reference back: destroyed");
    }

    #[test]
    fn dropping_the_segment_owner_is_a_detach_too() {
        let srv = server();
        let seg = segment();
        let h = seg.handle();
        let q = queue(&srv, &seg);
        let ls = OwnedLatch::own(&srv.latches[0]).expect("own");
        let lr = OwnedLatch::own(&srv.latches[1]).expect("own");
        let (mut tx, rx) = handles(&srv, q, &ls, &lr);
        drop(seg);
        drop(rx);
        assert_eq!(tx.send(b"x", SendOptions::NOWAIT), Ok(SendResult::Detached));
        assert!(mapped_here(h));
        drop(tx);
        assert!(!mapped_here(h) && !exists(h));
    }

    #[test]
    fn at_exit_the_segment_goes_back_and_live_handles_refuse_without_writing() {
        let srv = server();
        let seg = segment();
        let h = seg.handle();
        let q = queue(&srv, &seg);
        let spare = q.clone();
        let ls = OwnedLatch::own(&srv.latches[0]).expect("own");
        let lr = OwnedLatch::own(&srv.latches[1]).expect("own");
        let (mut tx, mut rx) = handles(&srv, q, &ls, &lr);
        // Written but not published: a detach of the handle would publish it.
        assert_eq!(
            tx.send(b"pending", SendOptions::NOWAIT),
            Ok(SendResult::Sent)
        );
        assert!(tx.wait_for_attach().is_ok());
        // What `proc_exit` runs: the callbacks mark the queue detached, then every reference
        // goes back although the handles live on.
        dsm_backend_shutdown();
        assert!(!exists(h), "the segment is not leaked by the live handles");
        let gone = ShmMqError::SegmentDetached { handle: h };
        assert_eq!(tx.send(b"late", SendOptions::NOWAIT), Err(gone.clone()));
        assert_eq!(rx.receive(true), Err(gone.clone()));
        assert_eq!(tx.wait_for_attach(), Err(gone.clone()));
        assert_eq!(spare.queue().err(), Some(gone.clone()));
        assert_eq!(
            gone.to_string(),
            format!(
                "dynamic shared memory segment {h} holding the shared memory queue is detached"
            )
        );
        // The memory is still mapped (so nothing can fault), and dropping the handles
        // writes nothing into it.
        assert!(mapped_here(h));
        let at = spare.segment().address().as_ptr();
        // SAFETY: mapped while `spare` holds its lease; read-only.
        let before: Vec<u8> = unsafe { std::slice::from_raw_parts(at, 4096) }.to_vec();
        drop(tx);
        drop(rx);
        // SAFETY: as above.
        let after = unsafe { std::slice::from_raw_parts(at, 4096) };
        assert_eq!(before, after, "no write after the segment went back");
        drop(spare);
        assert!(!mapped_here(h));
        drop(seg);
    }

    #[test]
    fn placement_is_checked_against_the_mapping() {
        let srv = server();
        let seg = segment();
        let base = seg.address();
        let len = seg.map_length();
        let at = |off: usize| NonNull::new(base.as_ptr().wrapping_add(off)).expect("non-null");
        // SAFETY: the segment is fresh and only used through this crate (so for each call
        // below).
        let r = unsafe { DsmMq::create(&seg, at(len - 1024), 2048) };
        assert_eq!(
            r.err(),
            Some(ShmMqError::OutsideSegment {
                offset: (len - 1024) as isize,
                size: 2048,
                map_length: len
            })
        );
        // SAFETY: as above.
        let r = unsafe {
            DsmMq::from_raw(
                &seg,
                NonNull::new(base.as_ptr().wrapping_sub(4096)).expect("nn"),
            )
        };
        assert!(matches!(
            r,
            Err(ShmMqError::OutsideSegment { offset: -4096, .. })
        ));
        // SAFETY: as above.
        let r = unsafe { DsmMq::create(&seg, at(4), 512) };
        assert!(matches!(r, Err(ShmMqError::Misaligned { .. })));
        // A zero header (ring of 0 bytes) is refused.
        // SAFETY: as above.
        let r = unsafe { DsmMq::from_raw(&seg, at(len - 2048)) };
        assert!(
            matches!(r, Err(ShmMqError::OutsideSegment { .. })),
            "zero header"
        );
        // A header that claims a ring past the end of the mapping is refused: copy the header
        // of a whole-segment queue to 1 KiB before the end.
        // SAFETY: as above.
        let whole = unsafe { DsmMq::create(&seg, at(0), len) }.expect("whole segment");
        assert_eq!(
            whole.queue().expect("usable").ring_size(),
            len - ShmMq::RING_OFFSET
        );
        // SAFETY: both ranges lie in the mapping (`whole` holds a lease) and do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(at(0).as_ptr(), at(len - 1024).as_ptr(), 192) };
        // SAFETY: as above.
        let r = unsafe { DsmMq::from_raw(&seg, at(len - 1024)) };
        assert_eq!(
            r.err(),
            Some(ShmMqError::OutsideSegment {
                offset: (len - 1024) as isize,
                size: len,
                map_length: len
            })
        );
        // SAFETY: as above; the original header is intact.
        assert!(unsafe { DsmMq::from_raw(&seg, at(0)) }.is_ok());
        drop(whole);
        // Once the segment is detached, no queue can be set up in it.
        let r = seg.reference();
        seg.detach();
        // SAFETY: nothing is touched: the segment is refused first.
        let e = unsafe { DsmMq::from_raw(&r, base) }.unwrap_err();
        assert_eq!(e, ShmMqError::SegmentDetached { handle: r.handle() });
        drop(srv);
    }
}

#[test]
fn the_watch_ends_on_progress_or_a_set_latch_and_backs_off_exponentially() {
    use std::cell::Cell;
    use std::time::Duration;
    let latch = Latch::new();
    // A first watch never counts as preempted (no earlier sample): it looks.
    assert_eq!(
        Spin::new(Duration::from_micros(200)).watch(&latch, || true),
        Watched::Progress
    );
    latch.set();
    assert_eq!(
        Spin::new(Duration::from_micros(200)).watch(&latch, || false),
        Watched::LatchSet,
        "a set latch ends the watch at once"
    );
    let looked = Cell::new(false);
    let look = || {
        looked.set(true);
        false
    };
    assert_eq!(
        Spin::new(Duration::ZERO).watch(&latch, look),
        Watched::Nothing
    );
    assert!(!looked.get(), "a zero budget never looks");

    let clear = Latch::new();
    let mut s = Spin::new(Duration::from_micros(50));
    let looks = |s: &mut Spin| {
        looked.set(false);
        assert_eq!(s.watch(&clear, look), Watched::Nothing);
        looked.get()
    };
    assert!(
        looks(&mut s),
        "the first watch looks until its budget runs out"
    );
    // Whether the next one finds this thread preempted or looks in vain, it backs off the
    // same way: 1 wait skipped, then 2, then 4.
    assert!(!looks(&mut s), "one wait skips the watch");
    looks(&mut s);
    assert!(!looks(&mut s));
    assert!(!looks(&mut s), "then two");
    looks(&mut s);
    for _ in 0..4 {
        assert!(!looks(&mut s), "then four");
    }
}
