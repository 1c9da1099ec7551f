//! A queue inside a DSM segment, laid out with a shm_toc, between two processes, tied to the
//! segment with the dsm [`DetachHook`](pgipc_shm_mq::DetachHook): when the sender's process
//! detaches the segment (without touching its queue handle) the receiver sees `Detached`;
//! when the sender is killed with SIGKILL, the receiver's peer check reports `Detached`.
//! Afterwards every segment is gone from /dev/shm.
//!
//! A harness without libtest; the child is this binary re-executed (see `common`).

mod common;

use common::{expect_success, Kit, CHILD, PARENT, ROLE_ENV};
use pgipc_dsm::{
    dsm_backend_startup, dsm_postmaster_shutdown, dsm_postmaster_startup, CreateFlags, DsmHandle,
    DsmImpl, DsmImplType, DsmSegment,
};
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_shm_mq::{
    AttachOptions, Latches, MqHandle, PidAlive, RecvResult, SendOptions, SendResult, ShmMq, Side,
};
use pgipc_shm_toc::{ShmToc, ShmTocError};
use std::rc::Rc;
use std::time::Duration;

const MAGIC: u64 = 0x5067_4d51;
const KEY_QUEUE: u64 = 1;
const RING: usize = 16_384;
const MESSAGES: u32 = 200;

/// Process-lifetime pieces (a server process keeps them for its whole life).
struct Me {
    kit: &'static Kit,
    latch: &'static OwnedLatch<&'static Latch>,
    waker: &'static Latches<'static>,
}

fn me(kit: Kit, procno: u32) -> Me {
    let kit: &'static Kit = Box::leak(Box::new(kit));
    Me {
        kit,
        latch: Box::leak(Box::new(kit.own(procno))),
        waker: Box::leak(Box::new(kit.waker())),
    }
}

fn imp() -> DsmImpl {
    DsmImpl::new(DsmImplType::Posix, None)
}

/// The sender: attach the segment, find the queue through the TOC, send, then leave in the
/// way `how` says.
fn child(how: &str, h: DsmHandle) -> i32 {
    let me = me(Kit::attach(), CHILD);
    dsm_backend_startup(&me.kit.shmem, imp()).expect("backend startup");
    let seg = DsmSegment::attach(h).expect("attach");
    let base = seg.address().as_ptr();
    // SAFETY: the parent laid a TOC out at the segment's start; we keep the mapping (pinned)
    // for as long as the queue is used.
    match unsafe { ShmToc::attach(MAGIC + 1, base) } {
        Err(ShmTocError::BadMagic { .. }) => {}
        other => panic!("a wrong magic must be refused: {other:?}"),
    }
    // SAFETY: as above.
    let toc = unsafe { ShmToc::attach(MAGIC, base) }.expect("toc");
    let q = toc.lookup_required(KEY_QUEUE).expect("queue key");
    // SAFETY: the parent created the queue in this chunk before spawning us; the segment
    // stays mapped until after the queue's last use (its detach callback runs first).
    let mq = unsafe { ShmMq::from_raw(q.as_ptr()) };
    seg.pin_mapping();
    let mut tx = MqHandle::attach(
        mq,
        Side::Sender,
        CHILD,
        me.latch.as_owner(),
        me.waker,
        AttachOptions {
            segment: Some(Rc::new(seg.reference())),
            ..AttachOptions::default()
        },
    )
    .expect("attach queue");
    for i in 0..MESSAGES {
        let msg = vec![(i % 251) as u8; (i as usize * 37) % 3000];
        assert_eq!(
            tx.send(&msg, SendOptions::FLUSH).expect("send"),
            SendResult::Sent
        );
    }
    // "hang" waits for SIGKILL with the queue attached; "detach-segment" lets only the
    // segment's detach speak for us: the handle itself is never detached.
    if how == "detach-segment" {
        std::mem::forget(tx);
        seg.detach();
    }
    std::thread::sleep(Duration::from_secs(60));
    0
}

fn scenario(me: &Me, how: &str) {
    let seg = DsmSegment::create(RING + 4096, CreateFlags::default())
        .expect("create")
        .expect("slot");
    let h = seg.handle();
    // SAFETY: a fresh page-aligned mapping of RING + 4096 bytes, ours alone until the spawn.
    let toc =
        unsafe { ShmToc::create(MAGIC, seg.address().as_ptr(), seg.map_length()) }.expect("toc");
    let chunk = toc.allocate(RING).expect("chunk");
    toc.insert(KEY_QUEUE, chunk).expect("insert");
    // SAFETY: the chunk is RING bytes inside the segment, which stays mapped (pinned) while
    // the queue is used.
    let mq = unsafe { ShmMq::create(chunk.as_ptr(), RING) }.expect("queue");
    mq.set_receiver(PARENT, me.waker).expect("receiver");
    mq.set_sender(CHILD, me.waker).expect("sender");
    seg.pin_mapping();
    let mut child = me.kit.spawn(how, &[&h.to_string()]);
    let pid = PidAlive(child.0.id() as i32);
    let mut rx = MqHandle::attach(
        mq,
        Side::Receiver,
        PARENT,
        me.latch.as_owner(),
        me.waker,
        AttachOptions {
            segment: Some(Rc::new(seg.reference())),
            peer_alive: Some(Box::leak(Box::new(pid))),
            poll_interval: Duration::from_millis(10),
            ..AttachOptions::default()
        },
    )
    .expect("attach queue");
    let mut n = 0u32;
    loop {
        match rx.receive(false).expect("receive") {
            RecvResult::Received(m) => {
                assert_eq!(m.len(), (n as usize * 37) % 3000);
                assert!(m.iter().all(|&b| b == (n % 251) as u8));
                n += 1;
                if how == "hang" && n == MESSAGES {
                    // Everything arrived; now the sender dies without detaching.
                    child.0.kill().expect("kill");
                }
            }
            RecvResult::WouldBlock => unreachable!("blocking receive"),
            RecvResult::Detached => break,
        }
    }
    assert_eq!(n, MESSAGES, "{how}: every message before Detached");
    let _ = child.0.kill();
    let _ = child.0.wait();
    // The dead child's latch is free for the next one (PostgreSQL resets a dead proc's latch).
    me.kit.arena.latches[CHILD as usize].reclaim_from(child.0.id() as i32);
    drop(rx);
    seg.detach();
    println!("dsm queue, sender {how}: receiver drains then sees Detached ... ok");
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let h: DsmHandle = std::env::args().nth(1).expect("handle").parse().expect("h");
        std::process::exit(child(&role, h));
    }
    // SAFETY: alarm only arms a timer; the default SIGALRM action ends a stuck test (the
    // children die with their 60 s sleeps).
    unsafe { libc::alarm(60) };
    let me = me(Kit::create(1024), PARENT);
    let control = dsm_postmaster_startup(&imp(), 2).expect("control");
    me.kit.shmem.set_dsm_control(control);
    dsm_backend_startup(&me.kit.shmem, imp()).expect("backend startup");
    scenario(&me, "detach-segment");
    scenario(&me, "hang");
    pgipc_dsm::dsm_detach_all();
    // The killed sender never dropped its reference: the postmaster's clean-up removes it.
    let r = dsm_postmaster_shutdown(&imp(), control).expect("shutdown");
    for h in r.destroyed.iter().chain([&control]) {
        assert!(
            !std::path::Path::new(&format!("/dev/shm/PostgreSQL.{h}")).exists(),
            "{h} left behind"
        );
    }
    let _ = expect_success;
    println!("2 passed, 0 failed");
}
