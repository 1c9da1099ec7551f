//! Two processes ping-pong through each other's latches in a shared segment.
//!
//! `cargo run -p pgipc-latch --example ping_pong -- [round_trips]`
//!
//! The parent creates a memfd-backed segment with two latches, owns latch 0 and re-executes
//! itself as the child, which attaches the segment through the inherited descriptor and owns
//! latch 1. Each side sets the other's latch, then waits on its own and resets it.

use pgipc_latch::{Latch, LatchWait, OwnedLatch};
use pgipc_shmem::Shmem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

const FD_ENV: &str = "PING_PONG_FD";

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let child = std::env::var(FD_ENV).is_ok();
    let shmem = if child {
        let raw: i32 = std::env::var(FD_ENV).unwrap().parse().expect("fd number");
        // SAFETY: the parent left this descriptor open across exec for us; nothing else owns it.
        Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(raw) }).expect("attach")
    } else {
        Shmem::create_for_tests(1 << 20).expect("create segment")
    };
    let (latches, _) = shmem
        .init_slice::<Latch>("ping pong latches", 2)
        .expect("latches");
    let (me, peer) = if child { (1, 0) } else { (0, 1) };
    let mine = OwnedLatch::own(&latches[me]).expect("own my latch");
    let timeout = Some(Duration::from_secs(10));

    if child {
        for _ in 0..n {
            if mine.wait(timeout) != Ok(LatchWait::Set) {
                eprintln!("child: no ping for 10 s");
                std::process::exit(1);
            }
            mine.reset();
            latches[peer].set();
        }
        return;
    }

    let raw = shmem.memfd().expect("memfd-backed segment").as_raw_fd();
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.arg(n.to_string()).env(FD_ENV, raw.to_string());
    // SAFETY: only fcntl (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut c = cmd.spawn().expect("spawn child");
    let t = Instant::now();
    for i in 0..n {
        latches[peer].set();
        if mine.wait(timeout) != Ok(LatchWait::Set) {
            eprintln!("parent: no pong to ping {i}");
            let _ = c.kill();
            let _ = c.wait();
            std::process::exit(1);
        }
        mine.reset();
    }
    let e = t.elapsed();
    let st = c.wait().expect("wait child");
    println!(
        "{n} round trips in {e:.2?}: {:.2} us each (child {st})",
        e.as_secs_f64() * 1e6 / n as f64
    );
}
