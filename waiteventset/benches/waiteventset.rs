//! Wait-event-set benchmarks, each against a raw baseline measured in the same run,
//! interleaved (A B B A ...), median of pairwise ratios:
//!
//! * `waiteventset/latch_socket_roundtrip_*`: two processes ping-pong through each other's
//!   latches while each also waits on an idle socket (so both sleep in epoll and are woken by
//!   SIGURG through the signalfd) vs `raw_signalfd_epoll_pingpong_*` (`kill(SIGURG)`, then
//!   `epoll_wait` on a signalfd and a read of it, each way).
//! * `waiteventset/wait_latch_roundtrip_*`: the same ping-pong through `wait_latch` (the cached
//!   set, latch-only, sleeping on the futex) vs `raw_futex_pingpong_*`.
//! * `waiteventset/wait_1000_idle_1_ready`: one `wait` on a set of 1001 sockets of which one
//!   is readable vs `raw_epoll_wait_1000_idle_1_ready` (one `epoll_wait` on the same sockets).
//!
//! Round trips run with both processes pinned to CPU 0 (`one_cpu`) and to CPUs 0 and 1
//! (`two_cpus`). Run: `cargo bench -p pgipc-waiteventset`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::bench::{interleave, report, Driver};
use common::{bench, pin, role, Kit};
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_waiteventset::{
    initialize_wait_event_support, wait_latch, WaitEvent, WaitEventSet, WaitEvents,
};
use rustix::event::epoll;
use rustix::thread::futex;
use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

const RAW_FUTEX: u64 = 1;
const WAIT_LATCH: u64 = 2;
const RAW_SIGNAL: u64 = 3;
const LATCH_SOCKET: u64 = 4;
const PAIRS: usize = 25;
const ROUND_TRIPS: u64 = 1_000;

fn futex_words(kit: &Kit) -> (&AtomicU32, &AtomicU32) {
    (&kit.arena.slots[2], &kit.arena.slots[3])
}

fn raw_futex_wait(w: &AtomicU32) {
    while w.load(Ordering::Acquire) == 0 {
        let _ = futex::wait(w, futex::Flags::empty(), 0, None);
    }
    w.store(0, Ordering::Relaxed);
}

fn raw_futex_post(w: &AtomicU32) {
    w.store(1, Ordering::Release);
    let _ = futex::wake(w, futex::Flags::empty(), 1);
}

/// The raw baseline's kit: its own signalfd for SIGURG (already blocked) in its own epoll set
/// with an idle socket beside it, like the candidate's set.
struct RawSignal {
    ep: OwnedFd,
    sfd: OwnedFd,
    _idle: (UnixStream, UnixStream),
}

impl RawSignal {
    fn new() -> RawSignal {
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(nix::sys::signal::Signal::SIGURG);
        // SAFETY: a valid sigset for the duration of the call; -1 asks for a new descriptor.
        let raw =
            unsafe { libc::signalfd(-1, set.as_ref(), libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        assert!(raw >= 0, "signalfd");
        // SAFETY: a fresh descriptor nothing else owns.
        let sfd = unsafe { OwnedFd::from_raw_fd(raw) };
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC).expect("epoll");
        let idle = UnixStream::pair().expect("pair");
        epoll::add(
            &ep,
            &sfd,
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN,
        )
        .expect("add");
        epoll::add(
            &ep,
            &idle.0,
            epoll::EventData::new_u64(1),
            epoll::EventFlags::IN,
        )
        .expect("add");
        RawSignal {
            ep,
            sfd,
            _idle: idle,
        }
    }

    fn wait(&self) {
        let mut evs: Vec<epoll::Event> = Vec::with_capacity(2);
        loop {
            if let Ok((got, _)) = epoll::wait(&self.ep, evs.spare_capacity_mut(), None) {
                if !got.is_empty() {
                    break;
                }
            }
        }
        let mut buf = [0u8; 128];
        let _ = rustix::io::read(&self.sfd, &mut buf);
    }
}

fn send_sigurg(pid: i32) {
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(pid, libc::SIGURG) };
}

/// A set with the latch and an idle socket: it sleeps in epoll.
fn latch_socket_set<'l>(
    latch: &'l OwnedLatch<&'l Latch>,
    idle: &'l UnixStream,
) -> WaitEventSet<'l> {
    let mut set = WaitEventSet::new(2).expect("set");
    set.add_latch(latch, 0).expect("latch");
    set.add_socket(WaitEvents::SOCKET_READABLE, idle.as_fd(), 1)
        .expect("socket");
    set
}

fn wait_in(set: &mut WaitEventSet<'_>) {
    let mut out = [WaitEvent::EMPTY; 2];
    let _ = set.wait(None, &mut out, 0);
}

fn main() {
    initialize_wait_event_support().expect("wait event support");
    let ncpus = common::ncpus();
    if let Some(r) = role() {
        child(&r);
        return;
    }
    // `cargo bench -p pgipc-waiteventset -- sockets` runs only the 1000-socket figure.
    if std::env::args().skip(1).any(|a| a == "sockets") {
        thousand_sockets();
        return;
    }
    println!("waiteventset benchmarks: {PAIRS} interleaved pairs of {ROUND_TRIPS} round trips");
    let raw = RawSignal::new();
    let (idle, _peer) = UnixStream::pair().expect("pair");
    for (label, child_cpu) in [("one_cpu", 0usize), ("two_cpus", 1)] {
        if child_cpu >= ncpus {
            continue;
        }
        pin(&[0]);
        let kit = Kit::create();
        let mine = OwnedLatch::own(&kit.arena.latches[0]).expect("own");
        let mut set = latch_socket_set(&mine, &idle);
        let child = kit.spawn("pong", &[&child_cpu.to_string()]);
        let child_pid = child.id() as i32;
        let mut d = Driver::new(kit.bench_words(), child);
        let (to_child, from_child) = futex_words(&kit);
        let peer: &Latch = &kit.arena.latches[1];
        d.batch(LATCH_SOCKET, 500, || {
            peer.set();
            wait_in(&mut set);
            mine.reset();
        });
        let (base, cand) = interleave(PAIRS, |candidate| {
            if candidate {
                d.batch(LATCH_SOCKET, ROUND_TRIPS, || {
                    peer.set();
                    wait_in(&mut set);
                    mine.reset();
                })
            } else {
                d.batch(RAW_SIGNAL, ROUND_TRIPS, || {
                    send_sigurg(child_pid);
                    raw.wait();
                })
            }
        });
        println!("# latch + socket round trip, parent pinned to CPU 0, child to CPU {child_cpu}");
        report(
            &format!("waiteventset/latch_socket_roundtrip_{label}"),
            "us",
            &cand,
            &format!("raw_signalfd_epoll_pingpong_{label}"),
            &base,
        );
        let ev = WaitEvents::LATCH_SET;
        let (base, cand) = interleave(PAIRS, |candidate| {
            if candidate {
                d.batch(WAIT_LATCH, ROUND_TRIPS, || {
                    peer.set();
                    let _ = wait_latch(Some(&mine), ev, None, 0);
                    mine.reset();
                })
            } else {
                d.batch(RAW_FUTEX, ROUND_TRIPS, || {
                    raw_futex_post(to_child);
                    raw_futex_wait(from_child);
                })
            }
        });
        println!("# wait_latch round trip, parent pinned to CPU 0, child to CPU {child_cpu}");
        report(
            &format!("waiteventset/wait_latch_roundtrip_{label}"),
            "us",
            &cand,
            &format!("raw_futex_pingpong_{label}"),
            &base,
        );
        d.finish();
    }
    thousand_sockets();
}

fn child(role: &str) {
    assert_eq!(role, "pong");
    let kit = Kit::attach();
    let cpu: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pin(&[cpu]);
    let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    let mine = OwnedLatch::own(&kit.arena.latches[1]).expect("own");
    let peer: &Latch = &kit.arena.latches[0];
    let (idle, _p) = UnixStream::pair().expect("pair");
    let mut set = latch_socket_set(&mine, &idle);
    let raw = RawSignal::new();
    let (to_child, from_child) = futex_words(&kit);
    bench::serve(kit.bench_words(), |mode, n| {
        for _ in 0..n {
            match mode {
                RAW_FUTEX => {
                    raw_futex_wait(to_child);
                    raw_futex_post(from_child);
                }
                WAIT_LATCH => {
                    let _ = wait_latch(Some(&mine), WaitEvents::LATCH_SET, None, 0);
                    mine.reset();
                    peer.set();
                }
                RAW_SIGNAL => {
                    raw.wait();
                    send_sigurg(parent);
                }
                _ => {
                    wait_in(&mut set);
                    mine.reset();
                    peer.set();
                }
            }
        }
    });
}

fn thousand_sockets() {
    const N: u64 = 100_000;
    pin(&[0]);
    let pairs: Vec<_> = (0..1001)
        .map(|_| UnixStream::pair().expect("pair"))
        .collect();
    let mut set = WaitEventSet::new(1001).expect("set");
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).expect("epoll");
    for (i, (a, _)) in pairs.iter().enumerate() {
        set.add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), i as u64)
            .expect("add");
        epoll::add(
            &ep,
            a,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN,
        )
        .expect("add");
    }
    (&pairs[500].1).write_all(b"x").expect("write");
    let mut out = [WaitEvent::EMPTY; 4];
    let mut evs: Vec<epoll::Event> = Vec::with_capacity(4);
    let (base, cand) = interleave(PAIRS, |candidate| {
        let t = Instant::now();
        for _ in 0..N {
            if candidate {
                assert_eq!(set.wait(None, &mut out, 0).expect("wait"), 1);
            } else {
                let (got, _) = epoll::wait(&ep, evs.spare_capacity_mut(), None).expect("wait");
                assert_eq!(got.len(), 1);
            }
        }
        t.elapsed().as_secs_f64() * 1e9 / N as f64
    });
    println!("# one wait over 1000 idle sockets and one ready one, pinned to CPU 0");
    report(
        "waiteventset/wait_1000_idle_1_ready",
        "ns",
        &cand,
        "raw_epoll_wait_1000_idle_1_ready",
        &base,
    );
}
