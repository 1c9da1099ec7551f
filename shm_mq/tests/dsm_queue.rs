//! A queue inside a DSM segment, laid out with a shm_toc, between two processes, each end a
//! [`DsmMq`](pgipc_shm_mq::DsmMq) handle tied to the segment: when the sender's process
//! detaches the segment (without detaching its queue handle, which it still uses afterwards
//! and gets `Detached`) the receiver sees `Detached`; when the sender exits with the handle
//! alive (`proc_exit`, the handle dropped later by `exit()` itself, refusing with
//! `SegmentDetached`) the receiver sees `Detached` and the child exits cleanly; when the
//! sender is killed with SIGKILL, the receiver's peer check reports `Detached`. Afterwards
//! no segment is left in /dev/shm, and only the killed sender's needed the postmaster's
//! clean-up.
//!
//! libtest-mimic on one test thread: each scenario is a trial on the main thread, the last one
//! shuts the DSM control down; the child is this binary re-executed (see `common`), dispatched
//! before the harness starts.

mod common;

use common::{expect_success, Kit, CHILD, PARENT, ROLE_ENV};
use libtest_mimic::{Arguments, Trial};
use pgipc_dsm::{
    dsm_backend_startup, dsm_postmaster_shutdown, dsm_postmaster_startup, CreateFlags, DsmHandle,
    DsmImpl, DsmImplType, DsmSegment,
};
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_shm_mq::{
    AttachOptions, DsmMq, Latches, MqHandle, PidAlive, RecvResult, SendOptions, SendResult,
    ShmMqError, Side,
};
use pgipc_shm_toc::{ShmToc, ShmTocError};
use std::cell::{Cell, OnceCell};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
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

/// Words of the kit's arena the child reports through.
const WORD_LATE_SEND: usize = 0;
/// Values of those words: the late call said `Detached` / `SegmentDetached` / something else.
const SAW_DETACHED: u64 = 1;
const SAW_SEGMENT_GONE: u64 = 2;
const SAW_OTHER: u64 = 3;

/// A sender handle kept in a thread-local, so that it is dropped by `exit()` itself (after
/// `proc_exit` ran the exit hook that gave the segment back): its drop tries one more send
/// and reports what it got.
struct Late(MqHandle<'static>, &'static Kit);

impl Drop for Late {
    fn drop(&mut self) {
        let word = match self.0.send(b"after exit", SendOptions::FLUSH) {
            Err(ShmMqError::SegmentDetached { .. }) => SAW_SEGMENT_GONE,
            _ => SAW_OTHER,
        };
        self.1.arena.words[WORD_LATE_SEND].store(word, Ordering::SeqCst);
    }
}

thread_local! {
    static LATE: std::cell::RefCell<Option<Late>> = const { std::cell::RefCell::new(None) };
}

/// The sender: attach the segment, find the queue through the TOC, send, then leave in the
/// way `how` says.
fn child(how: &str, h: DsmHandle) -> i32 {
    let me = me(Kit::attach(), CHILD);
    dsm_backend_startup(&me.kit.shmem, imp()).expect("backend startup");
    let seg = DsmSegment::attach(h).expect("attach");
    let base = seg.address().as_ptr();
    // SAFETY: the parent laid a TOC out at the segment's start, which `seg` keeps mapped
    // while the TOC is used (just below).
    match unsafe { ShmToc::attach(MAGIC + 1, base) } {
        Err(ShmTocError::BadMagic { .. }) => {}
        other => panic!("a wrong magic must be refused: {other:?}"),
    }
    // SAFETY: as above.
    let toc = unsafe { ShmToc::attach(MAGIC, base) }.expect("toc");
    let chunk = toc.lookup_required(KEY_QUEUE).expect("queue key");
    // SAFETY: the parent created the queue in this chunk before spawning us, and only this
    // crate touches it. (How long it stays mapped is the queue's lease's business.)
    let q = unsafe { DsmMq::from_raw(&seg, chunk) }.expect("queue");
    let mut tx = MqHandle::attach_dsm(
        q,
        Side::Sender,
        CHILD,
        me.latch.as_owner(),
        me.waker,
        AttachOptions::default(),
    )
    .expect("attach queue");
    for i in 0..MESSAGES {
        let msg = vec![(i % 251) as u8; (i as usize * 37) % 3000];
        assert_eq!(
            tx.send(&msg, SendOptions::FLUSH).expect("send"),
            SendResult::Sent
        );
    }
    match how {
        // Only the segment's detach speaks for us; the handle lives on and is used after it.
        "detach-segment" => {
            seg.detach();
            let word = match tx.send(b"late", SendOptions::FLUSH) {
                Ok(SendResult::Detached) => SAW_DETACHED,
                _ => SAW_OTHER,
            };
            me.kit.arena.words[WORD_LATE_SEND].store(word, Ordering::SeqCst);
            // The last lease goes: unmapped, and our reference is given back.
            drop(tx);
        }
        // Exit with the handle alive: `proc_exit` runs the DSM exit hook, which runs the
        // queue's detach callback and gives the segment back; the handle is dropped later
        // still, by exit()'s thread-local destructors.
        "exit" => {
            LATE.with(|l| *l.borrow_mut() = Some(Late(tx, me.kit)));
            pgipc_ipc::proc_exit(0);
        }
        // "hang": wait below for SIGKILL with the queue attached.
        _ => {}
    }
    std::thread::sleep(Duration::from_secs(60));
    0
}

fn scenario(me: &Me, how: &str) -> DsmHandle {
    let seg = DsmSegment::create(RING + 4096, CreateFlags::default())
        .expect("create")
        .expect("slot");
    let h = seg.handle();
    // SAFETY: a fresh page-aligned mapping of RING + 4096 bytes, ours alone until the spawn.
    let toc =
        unsafe { ShmToc::create(MAGIC, seg.address().as_ptr(), seg.map_length()) }.expect("toc");
    let chunk = toc.allocate(RING).expect("chunk");
    toc.insert(KEY_QUEUE, chunk).expect("insert");
    // SAFETY: the chunk is RING bytes inside the segment, ours alone until the spawn and only
    // used through this crate.
    let q = unsafe { DsmMq::create(&seg, chunk, RING) }.expect("queue");
    let mq = q.queue().expect("mapped");
    mq.set_receiver(PARENT, me.waker).expect("receiver");
    mq.set_sender(CHILD, me.waker).expect("sender");
    me.kit.arena.words[WORD_LATE_SEND].store(0, Ordering::SeqCst);
    let mut child = me.kit.spawn(how, &[&h.to_string()]);
    let pid = PidAlive(child.0.id() as i32);
    let mut rx = MqHandle::attach_dsm(
        q,
        Side::Receiver,
        PARENT,
        me.latch.as_owner(),
        me.waker,
        AttachOptions {
            peer_alive: Some(&pid),
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
    if how == "exit" {
        let st = child.0.wait().expect("wait");
        assert!(
            st.success(),
            "exit: the child exits cleanly (no fault), got {st}"
        );
    } else {
        let _ = child.0.kill();
        let _ = child.0.wait();
    }
    let late = me.kit.arena.words[WORD_LATE_SEND].load(Ordering::SeqCst);
    match how {
        "detach-segment" => assert_eq!(late, SAW_DETACHED, "a send after the detach"),
        "exit" => assert_eq!(
            late, SAW_SEGMENT_GONE,
            "a send after exit gave the segment back"
        ),
        _ => {}
    }
    // The dead child's latch is free for the next one (PostgreSQL resets a dead proc's latch).
    me.kit.arena.latches[CHILD as usize].reclaim_from(child.0.id() as i32);
    drop(rx);
    seg.detach();
    // Unless the child was killed holding its reference, the segment is gone now.
    assert_eq!(exists(h), how == "hang", "{how}: segment {h} left behind?");
    h
}

fn exists(h: DsmHandle) -> bool {
    std::path::Path::new(&format!("/dev/shm/PostgreSQL.{h}")).exists()
}

/// The parent's process-lifetime state: its latch and arena, the DSM control segment, and the
/// segment of the sender that was killed (only that one needs the postmaster's clean-up).
struct Parent {
    me: Me,
    control: DsmHandle,
    killed: Cell<Option<DsmHandle>>,
}

thread_local! {
    static PARENT_STATE: OnceCell<&'static Parent> = const { OnceCell::new() };
}

/// The parent's state, set up by the first trial that needs it (trials run on the main thread).
fn parent() -> &'static Parent {
    PARENT_STATE.with(|p| {
        *p.get_or_init(|| {
            let me = me(Kit::create(1024), PARENT);
            let control = dsm_postmaster_startup(&imp(), 2).expect("control");
            me.kit.shmem.set_dsm_control(control);
            dsm_backend_startup(&me.kit.shmem, imp()).expect("backend startup");
            Box::leak(Box::new(Parent {
                me,
                control,
                killed: Cell::new(None),
            }))
        })
    })
}

fn postmaster_shutdown_leaves_no_segment() {
    let (control, killed) = (parent().control, parent().killed.get());
    pgipc_dsm::dsm_detach_all();
    // Only the killed sender never gave its reference back: the postmaster's clean-up
    // removes that one segment, and nothing else was left.
    let r = dsm_postmaster_shutdown(&imp(), control).expect("shutdown");
    assert_eq!(r.destroyed, killed.into_iter().collect::<Vec<_>>());
    for h in r.destroyed.iter().chain([&control]) {
        assert!(!exists(*h), "{h} left behind");
    }
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let h: DsmHandle = std::env::args().nth(1).expect("handle").parse().expect("h");
        std::process::exit(child(&role, h));
    }
    // SAFETY: alarm only arms a timer; the default SIGALRM action ends a stuck test (the
    // children die with their 60 s sleeps).
    unsafe { libc::alarm(60) };
    let _ = expect_success;
    let mut trials: Vec<Trial> = [
        ("sender_detaches_the_segment", "detach-segment"),
        ("sender_exits_with_the_handle_alive", "exit"),
        ("sender_killed_with_the_queue_attached", "hang"),
    ]
    .into_iter()
    .map(|(name, how)| {
        Trial::test(name, move || {
            let h = scenario(&parent().me, how);
            if how == "hang" {
                parent().killed.set(Some(h));
            }
            Ok(())
        })
    })
    .collect();
    trials.push(Trial::test("postmaster_shutdown_leaves_no_segment", || {
        postmaster_shutdown_leaves_no_segment();
        Ok(())
    }));
    let mut args = Arguments::from_args();
    // One test thread: the trials run one after the other on the main thread, in this order.
    args.test_threads = Some(1);
    libtest_mimic::run(&args, trials).exit_code()
}
