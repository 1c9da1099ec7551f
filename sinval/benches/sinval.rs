//! sinval throughput: messages per second through the shared invalidation queue with 1, 10
//! and 50 reading processes, against a raw broadcast ring measured in the same run.
//!
//! * Candidate `sinval/readers_N`: the writer (this process) calls `insert_data_entries` with
//!   batches of 32; N reader processes poll `get_data_entries` (64 at a time) and yield when
//!   empty. The figure is messages inserted per second until every reader has read all of
//!   them (each message is delivered N times).
//! * Baseline `raw_ring/readers_N`: the same processes, ring size, batches and polling, but the
//!   ring is one atomic head counter over 4096 entries with no locks, no spinlock, no hints:
//!   the memory-traffic ceiling of a broadcast ring.
//! * Both throttle the writer to stay within 2048 messages of the slowest reader, so nobody is
//!   reset and every message counts.
//!
//! Interleaved A B A B…, median of the pairwise ratios (candidate / baseline, higher is
//! better); processes left free on the machine's CPUs (no pinning: 51 processes on 2 vCPUs).
//! Run: `cargo bench -p pgipc-sinval`.

use pgipc_shmem::{Shared, Shmem, ShmemSafe};
use pgipc_sinval::{shmem_init, Received, SharedInval, SharedInvalidationMessage};
use pgipc_tests::bench::{line, median, median_ratio};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MAX_READERS: usize = 50;
const SLOTS: usize = MAX_READERS + 1;
const RING: u64 = 4096;
const BATCH: u64 = 32;
const SLACK: u64 = 2048;

const MODE_SINVAL: u32 = 1;
const MODE_RAW: u32 = 2;
const MODE_STOP: u32 = 3;

#[repr(C)]
struct BenchState {
    epoch: AtomicU32,
    mode: AtomicU32,
    readers: AtomicU32,
    armed: AtomicU32,
    errors: AtomicU32,
    /// Messages in this run.
    count: AtomicU64,
    /// Head of the raw ring.
    raw_head: AtomicU64,
    acks: [AtomicU64; SLOTS],
}
// SAFETY: repr(C), atomics only, zero is valid.
unsafe impl ShmemSafe for BenchState {}

#[repr(C)]
struct RawRing {
    cells: [MessageCellRaw; RING as usize],
}
#[repr(C)]
struct MessageCellRaw([AtomicU32; 4]);
// SAFETY: repr(C), atomics only, zero is valid.
unsafe impl ShmemSafe for MessageCellRaw {}
// SAFETY: as above.
unsafe impl ShmemSafe for RawRing {}

fn msg(i: u64) -> SharedInvalidationMessage {
    SharedInvalidationMessage::relcache(5, i as u32)
}

fn attach() -> (Shmem, SharedInval, Shared<BenchState>, Shared<RawRing>) {
    let fd: i32 = std::env::var("PGIPC_SHMEM_FD").unwrap().parse().unwrap();
    // SAFETY: the parent handed us this inherited descriptor; nothing else owns it here.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach");
    let si = shmem_init(&shm, SLOTS).unwrap();
    let (st, _) = shm.init_struct::<BenchState>("bench").unwrap();
    let (ring, _) = shm.init_struct::<RawRing>("raw ring").unwrap();
    (shm, si, st, ring)
}

fn reader(procno: u32) {
    let (shm, si, st, ring) = attach();
    shm.set_proc_number(Some(procno));
    let b = si.shared_inval_backend_init(procno, false).unwrap();
    let ack = &st.acks[procno as usize];
    let mut buf = [SharedInvalidationMessage::default(); 64];
    let mut raw_next;
    let mut seen_epoch = 0;
    let parent = std::os::unix::process::parent_id();
    // Watchdog: a reader whose parent is gone (e.g. it failed an assertion) leaves at once.
    let orphaned = || std::os::unix::process::parent_id() != parent;
    loop {
        let e = st.epoch.load(Ordering::Acquire);
        if e == seen_epoch {
            if orphaned() {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        seen_epoch = e;
        let mode = st.mode.load(Ordering::Acquire);
        if mode == MODE_STOP || procno > st.readers.load(Ordering::Acquire) {
            if mode == MODE_STOP {
                b.cleanup().unwrap();
                return;
            }
            continue;
        }
        let count = st.count.load(Ordering::Acquire);
        // Start from the current end: skip what was sent while this reader sat out a run.
        raw_next = st.raw_head.load(Ordering::Acquire);
        while b.get_data_entries(&mut buf).unwrap() != Received::Messages(0) {}
        ack.store(0, Ordering::Release);
        st.armed.fetch_add(1, Ordering::AcqRel);
        let mut got = 0u64;
        let mut sum = 0u64;
        while got < count {
            if mode == MODE_SINVAL {
                match b.get_data_entries(&mut buf).unwrap() {
                    Received::Reset => {
                        st.errors.fetch_add(1, Ordering::Relaxed);
                        got = count;
                    }
                    Received::Messages(0) if orphaned() => return,
                    Received::Messages(0) => std::thread::yield_now(),
                    Received::Messages(n) => {
                        sum += buf[..n]
                            .iter()
                            .map(|m| u64::from(m.words()[1]))
                            .sum::<u64>();
                        got += n as u64;
                    }
                }
            } else {
                let head = st.raw_head.load(Ordering::Acquire);
                if head == raw_next {
                    if orphaned() {
                        return;
                    }
                    std::thread::yield_now();
                    continue;
                }
                while raw_next < head {
                    let mut n = 0;
                    while n < buf.len() && raw_next < head {
                        let c = &ring.cells[(raw_next % RING) as usize];
                        let w: [u32; 4] = std::array::from_fn(|i| c.0[i].load(Ordering::Relaxed));
                        let mut bytes = [0u8; 16];
                        for (i, x) in w.iter().enumerate() {
                            bytes[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
                        }
                        buf[n] = SharedInvalidationMessage::from_bytes(bytes);
                        n += 1;
                        raw_next += 1;
                    }
                    sum += buf[..n]
                        .iter()
                        .map(|m| u64::from(m.words()[1]))
                        .sum::<u64>();
                    got += n as u64;
                }
            }
            ack.store(got, Ordering::Release);
        }
        std::hint::black_box(sum);
    }
}

/// One timed run: `count` messages to the first `readers` readers; returns messages/s.
fn run(
    st: &BenchState,
    si: &SharedInval,
    ring: &RawRing,
    mode: u32,
    readers: u32,
    count: u64,
) -> f64 {
    st.mode.store(mode, Ordering::Release);
    st.readers.store(readers, Ordering::Release);
    st.count.store(count, Ordering::Release);
    st.armed.store(0, Ordering::Release);
    st.epoch.fetch_add(1, Ordering::AcqRel);
    let until = Instant::now() + Duration::from_secs(60);
    while st.armed.load(Ordering::Acquire) < readers {
        assert!(Instant::now() < until, "readers did not arm");
        std::thread::sleep(Duration::from_micros(100));
    }
    let slowest = || {
        (1..=readers as usize)
            .map(|i| st.acks[i].load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    };
    let mut batch = [SharedInvalidationMessage::default(); BATCH as usize];
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < count {
        let n = BATCH.min(count - sent);
        while slowest() + SLACK < sent + n {
            assert!(Instant::now() < until, "readers stalled");
            std::thread::yield_now();
        }
        for (i, m) in batch[..n as usize].iter_mut().enumerate() {
            *m = msg(sent + i as u64);
        }
        if mode == MODE_SINVAL {
            si.insert_data_entries(&batch[..n as usize]);
        } else {
            let head = st.raw_head.load(Ordering::Relaxed);
            for (i, m) in batch[..n as usize].iter().enumerate() {
                let c = &ring.cells[((head + i as u64) % RING) as usize];
                for (j, w) in m.as_bytes().chunks(4).enumerate() {
                    c.0[j].store(
                        u32::from_le_bytes([w[0], w[1], w[2], w[3]]),
                        Ordering::Relaxed,
                    );
                }
            }
            st.raw_head.store(head + n, Ordering::Release);
        }
        sent += n;
    }
    while slowest() < count {
        assert!(Instant::now() < until, "readers did not finish");
        std::thread::yield_now();
    }
    count as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if let Ok(p) = std::env::var("PGIPC_PROCNO") {
        reader(p.parse().unwrap());
        return;
    }
    let shm = Shmem::create_for_tests_with(4 << 20, SLOTS).expect("segment");
    shm.set_proc_number(Some(0));
    let si = shmem_init(&shm, SLOTS).unwrap();
    let (st, _) = shm.init_struct::<BenchState>("bench").unwrap();
    let (ring, _) = shm.init_struct::<RawRing>("raw ring").unwrap();
    let fd = shm.memfd().unwrap().as_raw_fd().to_string();
    let mut kids: Vec<Child> = (1..=MAX_READERS)
        .map(|p| {
            Command::new(std::env::current_exe().unwrap())
                .env("PGIPC_SHMEM_FD", &fd)
                .env("PGIPC_PROCNO", p.to_string())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(30);
    while si.header().num_procs() < MAX_READERS as i32 {
        assert!(Instant::now() < until, "readers did not join");
        std::thread::sleep(Duration::from_millis(1));
    }
    let quick = std::env::var_os("PGIPC_BENCH_QUICK").is_some();
    for (readers, count, pairs) in [
        (1u32, 6_000_000u64, 7),
        (10, 2_000_000, 7),
        (50, 600_000, 5),
    ] {
        let (count, pairs) = if quick {
            (count / 10, 1)
        } else {
            (count, pairs)
        };
        eprintln!("# warm-up readers={readers}");
        run(&st, &si, &ring, MODE_SINVAL, readers, count);
        eprintln!("# warm-up raw readers={readers}");
        run(&st, &si, &ring, MODE_RAW, readers, count);
        let (mut c, mut r) = (vec![], vec![]);
        for _ in 0..pairs {
            c.push(run(&st, &si, &ring, MODE_SINVAL, readers, count));
            r.push(run(&st, &si, &ring, MODE_RAW, readers, count));
        }
        println!(
            "# readers={readers}: sinval median {:.3} Mmsg/s, raw ring median {:.3} Mmsg/s ({pairs} pairs of {count} messages)",
            median(&c) / 1e6,
            median(&r) / 1e6
        );
        let (cand, base) = (
            format!("sinval/readers_{readers}"),
            format!("raw_ring/readers_{readers}"),
        );
        let ratio = median_ratio(&c, &r);
        println!(
            "{}",
            line(&cand, median(&c) / 1e6, 3, "Mmsg/s", ratio, &base)
        );
    }
    assert_eq!(st.errors.load(Ordering::Relaxed), 0, "a reader was reset");
    println!("# processes not pinned; writer throttled to stay within {SLACK} messages of the slowest reader");
    st.mode.store(MODE_STOP, Ordering::Release);
    st.epoch.fetch_add(1, Ordering::AcqRel);
    for k in &mut kids {
        let _ = k.wait();
    }
}
