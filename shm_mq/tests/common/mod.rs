//! Plumbing shared by the multi-process tests, the benchmark and the example: a memfd segment
//! holding two latches, some words and a queue's space, handed to re-executed copies of the
//! current binary through the test kit's exec'd helper (`pgipc_tests::helper`); the kit's
//! runner, child guard and pinning are re-exported here.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub use pgipc_tests::cpu::{pin, Rng};
pub use pgipc_tests::harness::{expect_success, run_tests, wait_child, Proc};
pub use pgipc_tests::helper::{role, ROLE_ENV};

use pgipc_latch::{Latch, OwnedLatch};
use pgipc_shm_mq::{AttachOptions, Latches, MqHandle, MqRef, ShmMq, Side};
use pgipc_shmem::{Shared, Shmem, ShmemSafe};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The segment holds the arena and the index besides the queue's space.
const OVERHEAD: usize = 1 << 20;
const QUEUE_NAME: &str = "shm_mq test queue";

/// Proc numbers: the parent is 0, the child 1.
pub const PARENT: u32 = 0;
pub const CHILD: u32 = 1;

#[repr(C)]
pub struct Arena {
    pub latches: [Latch; 2],
    pub words: [AtomicU64; 16],
}

// SAFETY: #[repr(C)], latches and atomics only, all-zero is valid.
unsafe impl ShmemSafe for Arena {}

pub struct Kit {
    pub shmem: Shmem,
    pub arena: Shared<Arena>,
    pub space: usize,
    off: u64,
}

impl Kit {
    /// A segment with `space` bytes for a queue (created by the caller with [`Kit::create_mq`]).
    pub fn create(space: usize) -> Kit {
        let shmem = Shmem::create_for_tests(space + OVERHEAD).expect("create segment");
        Kit::open(shmem, space)
    }

    /// The segment this re-executed helper inherited.
    pub fn attach() -> Kit {
        let (fd, size) = pgipc_tests::helper::inherited_segment()
            .expect("not a helper")
            .expect("inherited segment");
        Kit::open(
            Shmem::attach_fd(fd).expect("attach segment"),
            size - OVERHEAD,
        )
    }

    fn open(shmem: Shmem, space: usize) -> Kit {
        let (arena, _) = shmem
            .init_struct::<Arena>("shm_mq test arena")
            .expect("arena");
        let (off, _) = shmem.init_raw(QUEUE_NAME, space).expect("queue space");
        Kit {
            shmem,
            arena,
            space,
            off,
        }
    }

    fn ptr(&self) -> *mut u8 {
        self.shmem.base().wrapping_add(self.off as usize) as *mut u8
    }

    /// Initialises the queue (parent, before spawning).
    pub fn create_mq(&self) -> MqRef<'_> {
        // SAFETY: the space was allocated for the queue in this segment, which `self` keeps
        // mapped; no child runs yet.
        unsafe { ShmMq::create(self.ptr(), self.space) }.expect("create queue")
    }

    pub fn mq(&self) -> MqRef<'_> {
        // SAFETY: the parent created the queue there before spawning us; `self` keeps it mapped.
        unsafe { ShmMq::from_raw(self.ptr()) }
    }

    pub fn waker(&self) -> Latches<'_> {
        Latches(&self.arena.latches)
    }

    pub fn own(&self, procno: u32) -> OwnedLatch<&Latch> {
        OwnedLatch::own(&self.arena.latches[procno as usize]).expect("own latch")
    }

    /// A re-executed copy of this binary in `role`, with the segment inherited.
    pub fn command(&self, role: &str, args: &[&str]) -> Command {
        let raw = self.shmem.memfd().expect("memfd-backed").as_raw_fd();
        pgipc_tests::helper::command(role, raw, self.space + OVERHEAD, args)
    }

    pub fn spawn(&self, role: &str, args: &[&str]) -> Proc {
        Proc(self.command(role, args).spawn().expect("spawn child"))
    }

    /// Waits (up to 30 s) until `words[idx]` is non-zero.
    pub fn wait_word(&self, idx: usize) -> Result<(), String> {
        let t = Instant::now();
        while self.arena.words[idx].load(Ordering::SeqCst) == 0 {
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!("word {idx} never raised"));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }
}

/// Attaches `side` with default options plus an optional peer-alive check and spin.
pub fn attach<'a>(
    kit: &'a Kit,
    waker: &'a Latches<'a>,
    latch: &'a OwnedLatch<&'a Latch>,
    side: Side,
    peer_alive: Option<&'a dyn pgipc_shm_mq::PeerAlive>,
    spin: Option<Duration>,
) -> MqHandle<'a> {
    let me = match side {
        Side::Sender => kit.mq().sender(),
        Side::Receiver => kit.mq().receiver(),
    }
    .expect("side set");
    MqHandle::attach(
        kit.mq(),
        side,
        me,
        latch.as_owner(),
        waker,
        AttachOptions {
            peer_alive,
            poll_interval: Duration::from_millis(20),
            spin,
        },
    )
    .expect("attach")
}

/// FNV-1a-style running checksum (message length mixed in, so empty messages count).
pub fn checksum(acc: u64, msg: &[u8]) -> u64 {
    let mut h = acc ^ (msg.len() as u64);
    h = h.wrapping_mul(0x100_0000_01b3);
    for chunk in msg.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_ne_bytes(w)).wrapping_mul(0x100_0000_01b3);
    }
    h
}
