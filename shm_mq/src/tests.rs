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
fn receiver_detach_is_seen_by_sender_and_hook_runs() {
    use std::cell::RefCell;
    type Callback<'a> = Option<Box<dyn FnOnce() + 'a>>;
    struct Seg<'a>(RefCell<Vec<Callback<'a>>>);
    impl<'a> DetachHook<'a> for Seg<'a> {
        fn on_detach(&self, cb: Box<dyn FnOnce() + 'a>) -> u64 {
            self.0.borrow_mut().push(Some(cb));
            self.0.borrow().len() as u64 - 1
        }
        fn cancel_on_detach(&self, key: u64) {
            self.0.borrow_mut()[key as usize] = None;
        }
    }
    let mut s = space(192 + 64);
    let pr = pair();
    let waker = &Latches(&pr.latches);
    // SAFETY: `s` outlives every use below.
    let q = unsafe { ShmMq::create(s.as_mut_ptr() as *mut u8, 192 + 64) }.expect("create");
    q.set_sender(0, waker).expect("sender");
    q.set_receiver(1, waker).expect("receiver");
    let lr = OwnedLatch::own(&pr.latches[1]).expect("own");
    let ls = OwnedLatch::own(&pr.latches[0]).expect("own");
    let seg = std::rc::Rc::new(Seg(RefCell::new(Vec::new())));
    let rx = MqHandle::attach(
        q,
        Side::Receiver,
        1,
        lr.as_owner(),
        waker,
        AttachOptions {
            segment: Some(seg.clone()),
            ..AttachOptions::default()
        },
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
    // The segment goes away: its callback detaches the queue and wakes the sender.
    let cb = seg.0.borrow_mut()[0].take().expect("callback");
    cb();
    assert!(q.is_detached());
    assert!(pr.latches[0].is_set());
    assert_eq!(
        tx.send(&[1; 100], SendOptions::BLOCKING),
        Ok(SendResult::Detached)
    );
    drop(rx);
}
