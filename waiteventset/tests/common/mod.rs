//! Plumbing for waiteventset's multi-process tests and benchmark: a shared arena (four latches and some
//! words) in a `pgipc_shmem` memfd segment, handed to re-executed copies of the current binary
//! through the test kit's exec'd helper (`pgipc_tests::helper`); the kit's runner, child guard,
//! pinning and A/B bench pieces are re-exported here. latch's tests have their own
//! copy of the arena (a crate's tests include no other crate's files).
#![allow(dead_code, unreachable_pub, unused_imports)]

pub use pgipc_tests::bench;
pub use pgipc_tests::cpu::{ncpus, pin, spin_ns, Rng};
pub use pgipc_tests::harness::{expect_success, run_tests, wait_child, Proc, TestFn};
pub use pgipc_tests::helper::role;

use pgipc_latch::Latch;
use pgipc_shmem::{Shared, Shmem, ShmemSafe};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SIZE: usize = 1 << 20;

/// What the processes share.
#[repr(C)]
pub struct Arena {
    pub latches: [Latch; 4],
    pub words: [AtomicU64; 16],
    pub slots: [AtomicU32; 4],
}

// SAFETY: #[repr(C)], latches and atomics only, all-zero is valid.
unsafe impl ShmemSafe for Arena {}

pub struct Kit {
    pub shmem: Shmem,
    pub arena: Shared<Arena>,
}

impl Kit {
    pub fn create() -> Kit {
        let shmem = Shmem::create_for_tests(SIZE).expect("create segment");
        Kit::open(shmem)
    }

    /// The segment this re-executed helper inherited.
    pub fn attach() -> Kit {
        let (fd, _) = pgipc_tests::helper::inherited_segment()
            .expect("not a helper")
            .expect("inherited segment");
        Kit::open(Shmem::attach_fd(fd).expect("attach segment"))
    }

    fn open(shmem: Shmem) -> Kit {
        let (arena, _) = shmem
            .init_struct::<Arena>("waiteventset test arena")
            .expect("arena");
        Kit { shmem, arena }
    }

    /// A re-executed copy of this binary in `role`, with the segment inherited.
    pub fn command(&self, role: &str, args: &[&str]) -> Command {
        let raw = self.shmem.memfd().expect("memfd-backed").as_raw_fd();
        pgipc_tests::helper::command(role, raw, SIZE, args)
    }

    /// The words a bench's persistent helper is driven through (`bench::serve`/`Driver`).
    pub fn bench_words(&self) -> &[AtomicU64] {
        &self.arena.words[10..]
    }

    /// Waits (up to 30 s) until a child raises `words[idx]`.
    pub fn wait_word(&self, idx: usize) -> Result<(), String> {
        let t = Instant::now();
        while self.arena.words[idx].load(Ordering::SeqCst) == 0 {
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!("child never raised word {idx}"));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    pub fn spawn(&self, role: &str, args: &[&str]) -> Proc {
        Proc(self.command(role, args).spawn().expect("spawn child"))
    }
}

/// Installs a SIGUSR1 handler that sets this process's latch (`set_my_latch`).
pub fn on_sigusr1_set_my_latch() {
    extern "C" fn on_usr1(_: libc::c_int) {
        pgipc_latch::set_my_latch();
    }
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(on_usr1),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only sets a latch, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &act) }.expect("sigaction");
}

/// Starts `role` (a child that owns `latches[2]`, installs it as its latch with
/// [`on_sigusr1_set_my_latch`], raises `words[3]` and waits), waits until it sleeps in `mode`,
/// sends it SIGUSR1 and requires it to wake up and exit 0 promptly.
pub fn signal_wakes_sleeper(role: &str, mode: pgipc_latch::SleepMode) -> Result<(), String> {
    let kit = Kit::create();
    let mut c = kit.spawn(role, &[]);
    kit.wait_word(3)?;
    let t = Instant::now();
    while kit.arena.latches[2].sleep_mode() != mode && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .map_err(|e| e.to_string())?;
    let t = Instant::now();
    expect_success(&mut c, Duration::from_secs(20))?;
    if t.elapsed() > Duration::from_secs(5) {
        return Err(format!("woke only after {:?}", t.elapsed()));
    }
    Ok(())
}
