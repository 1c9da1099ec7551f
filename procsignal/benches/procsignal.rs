//! procsignal benchmarks, each against a raw operating-system baseline measured in the same
//! run, interleaved (A B A B …), reporting the median of the pairwise ratios:
//!
//! * `procsignal/round_trip`: process P sends a reason to C with `send_proc_signal`; C's
//!   handler sets its latch, C wakes, takes the reason and sends one back; P wakes the same
//!   way. Baseline `raw_kill_signalfd/round_trip`: `kill(SIGUSR2)` both ways, each side
//!   blocked in `read` on a signalfd.
//! * `procsignal/barrier_8`: P emits a barrier and waits until 8 processes absorbed it.
//!   Baseline `raw_kill_signalfd/fanout_8`: P sends `SIGUSR2` to 8 processes, each bumps a
//!   shared counter and signals P back, P waits for all 8.
//!
//! Every process is pinned to CPU 0 (`sched_setaffinity`): on these 2-vCPU VMs cross-CPU
//! wake-ups cost ~50 us and drift, which would drown the difference being measured.
//! Run: `cargo bench -p pgipc-procsignal`.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use pgipc_latch::{install_my_latch, Latch, OwnedLatch};
use pgipc_procsignal::{
    install_handler, shmem_init, take_pending, ProcSignal, ProcSignalBarrierType, ProcSignalReason,
};
use pgipc_shmem::{Shared, Shmem, ShmemSafe};
use pgipc_tests::bench::{line, median, median_ratio};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

const FANOUT: usize = 8;
const PAIRS: usize = 15;
const TRIPS: u32 = 2000;
const BARRIERS: u32 = 300;
const SLOTS: usize = 1 + FANOUT;

#[repr(C)]
struct BenchState {
    parent_pid: AtomicI32,
    stop: AtomicU32,
    replies: AtomicU32,
}
// SAFETY: repr(C), atomics only, zero is valid.
unsafe impl ShmemSafe for BenchState {}

fn pin_cpu0() {
    let mut set = rustix::thread::CpuSet::new();
    set.set(0);
    rustix::thread::sched_setaffinity(None, &set).expect("sched_setaffinity");
}

fn attach() -> (Shmem, ProcSignal, Shared<BenchState>) {
    let fd: i32 = std::env::var("PGIPC_SHMEM_FD").unwrap().parse().unwrap();
    // SAFETY: the parent handed us this inherited descriptor; nothing else owns it here.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach");
    let ps = shmem_init(&shm, SLOTS).unwrap();
    let (st, _) = shm.init_struct::<BenchState>("bench").unwrap();
    (shm, ps, st)
}

fn my_latch() -> &'static OwnedLatch<Box<Latch>> {
    let latch: &'static OwnedLatch<Box<Latch>> = Box::leak(Box::new(OwnedLatch::new_local()));
    install_my_latch(latch.latch());
    latch
}

/// A procsignal participant: answers NOTIFY with NOTIFY to the parent, absorbs barriers.
fn ps_child(procno: u32) {
    let (_shm, ps, st) = attach();
    let latch = my_latch();
    install_handler().unwrap();
    ps.init_slot(procno, std::process::id() as i32, None)
        .unwrap();
    let parent = st.parent_pid.load(Ordering::SeqCst);
    loop {
        latch.reset();
        if st.stop.load(Ordering::SeqCst) != 0 {
            pgipc_ipc::proc_exit(0);
        }
        if take_pending(ProcSignalReason::NotifyInterrupt) {
            ps.send_proc_signal(parent, ProcSignalReason::NotifyInterrupt, Some(0))
                .unwrap();
        }
        if take_pending(ProcSignalReason::Barrier) {
            ps.process_proc_signal_barrier().unwrap();
        }
        latch.wait(Some(Duration::from_secs(1))).unwrap();
    }
}

fn block_usr2() -> SignalFd {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGUSR2);
    mask.thread_block().unwrap();
    SignalFd::new(&mask).unwrap()
}

/// A raw participant: every SIGUSR2 read from its signalfd is answered with a counter bump
/// and a SIGUSR2 to the parent.
fn raw_child() {
    let (_shm, _ps, st) = attach();
    let sfd = block_usr2();
    let parent = nix::unistd::Pid::from_raw(st.parent_pid.load(Ordering::SeqCst));
    loop {
        sfd.read_signal().unwrap();
        if st.stop.load(Ordering::SeqCst) != 0 {
            return;
        }
        st.replies.fetch_add(1, Ordering::SeqCst);
        nix::sys::signal::kill(parent, Signal::SIGUSR2).unwrap();
    }
}

fn spawn(fd: &str, role: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("PGIPC_SHMEM_FD", fd)
        .env("PGIPC_BENCH_ROLE", role)
        .spawn()
        .expect("spawn")
}

fn report(name: &str, base: &str, cand: &[f64], raw: &[f64]) {
    let (c, r) = (median(cand), median(raw));
    println!("# {name}: median {c:.2} us, {base}: median {r:.2} us");
    println!("{}", line(name, c, 2, "us", median_ratio(cand, raw), base));
}

fn main() {
    if let Ok(role) = std::env::var("PGIPC_BENCH_ROLE") {
        pin_cpu0();
        match role.strip_prefix("ps") {
            Some(n) => ps_child(n.parse().unwrap()),
            None => raw_child(),
        }
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    pin_cpu0();
    let shm = Shmem::create_for_tests(1 << 20).expect("segment");
    let ps = shmem_init(&shm, SLOTS).unwrap();
    let (st, _) = shm.init_struct::<BenchState>("bench").unwrap();
    let me = std::process::id() as i32;
    st.parent_pid.store(me, Ordering::SeqCst);
    let latch = my_latch();
    install_handler().unwrap();
    ps.init_slot(0, me, None).unwrap();
    let sfd = block_usr2();
    let fd = shm.memfd().unwrap().as_raw_fd().to_string();
    let ps_kids: Vec<Child> = (1..=FANOUT)
        .map(|i| spawn(&fd, &format!("ps{i}")))
        .collect();
    let raw_kids: Vec<Child> = (0..FANOUT).map(|_| spawn(&fd, "raw")).collect();
    let raw_pids: Vec<nix::unistd::Pid> = raw_kids
        .iter()
        .map(|k| nix::unistd::Pid::from_raw(k.id() as i32))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (1..=FANOUT as u32).any(|p| ps.slot_pid(p).unwrap() == 0) {
        assert!(Instant::now() < deadline, "participants did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    let ps_pid1 = ps.slot_pid(1).unwrap();

    let ps_round_trip = || {
        let t = Instant::now();
        for _ in 0..TRIPS {
            ps.send_proc_signal(ps_pid1, ProcSignalReason::NotifyInterrupt, Some(1))
                .unwrap();
            loop {
                latch.reset();
                if take_pending(ProcSignalReason::NotifyInterrupt) {
                    break;
                }
                latch.wait(Some(Duration::from_secs(5))).unwrap();
            }
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(TRIPS)
    };
    let raw_fan = |targets: &[nix::unistd::Pid], rounds: u32| {
        let t = Instant::now();
        for _ in 0..rounds {
            st.replies.store(0, Ordering::SeqCst);
            for p in targets {
                nix::sys::signal::kill(*p, Signal::SIGUSR2).unwrap();
            }
            while st.replies.load(Ordering::SeqCst) < targets.len() as u32 {
                sfd.read_signal().unwrap();
            }
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    };
    let ps_barrier = || {
        let t = Instant::now();
        for _ in 0..BARRIERS {
            let g = ps.emit_proc_signal_barrier(ProcSignalBarrierType::SmgrRelease);
            // The emitter has a slot too: absorb our own part first.
            ps.process_proc_signal_barrier().unwrap();
            ps.wait_for_proc_signal_barrier(g).unwrap();
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(BARRIERS)
    };

    // Warm-up.
    ps_round_trip();
    raw_fan(&raw_pids[..1], TRIPS);
    ps_barrier();
    raw_fan(&raw_pids, BARRIERS);

    let (mut c1, mut r1, mut c8, mut r8) = (vec![], vec![], vec![], vec![]);
    for _ in 0..PAIRS {
        c1.push(ps_round_trip());
        r1.push(raw_fan(&raw_pids[..1], TRIPS));
        c8.push(ps_barrier());
        r8.push(raw_fan(&raw_pids, BARRIERS));
    }
    // Drop stray barrier flags our own slot collected.
    take_pending(ProcSignalReason::Barrier);
    report(
        "procsignal/round_trip",
        "raw_kill_signalfd/round_trip",
        &c1,
        &r1,
    );
    report(
        "procsignal/barrier_8",
        "raw_kill_signalfd/fanout_8",
        &c8,
        &r8,
    );
    println!("# all processes pinned to CPU 0; {PAIRS} interleaved pairs");

    st.stop.store(1, Ordering::SeqCst);
    for k in ps_kids.iter() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(k.id() as i32), Signal::SIGUSR1);
    }
    for p in &raw_pids {
        let _ = nix::sys::signal::kill(*p, Signal::SIGUSR2);
    }
    for mut k in ps_kids.into_iter().chain(raw_kids) {
        let _ = k.wait();
    }
}
