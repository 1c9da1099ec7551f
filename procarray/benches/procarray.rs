//! `get_snapshot_data` next to a raw scan of the same dense xid array, measured in the same run.
//!
//! `cargo bench -p pgipc-procarray`. For 100 and 1000 registered procs (10% of them in a
//! transaction), baseline and candidate alternate in rounds (A B A B ...); each figure is the
//! median over rounds and the ratio the median of the per-round ratios. Prints
//! `BENCH <name> <value> <unit> <ratio>x <baseline>`.
//!
//! * `raw_scan/N`: the baseline, a loop over `xids[0..N]` that collects the valid xids below
//!   xmax and their minimum into a preallocated vector, with no lock.
//! * `get_snapshot_data/N`: a full snapshot (the reuse shortcut defeated by zeroing the
//!   snapshot's completion count before each call).
//! * `get_snapshot_data_reuse/N`: nothing ended since the previous snapshot (O(1) path).
//! * `get_snapshot_data_vs_commits/1000` (reuse allowed) and `..._full/1000` (reuse defeated):
//!   while a second process pinned to CPU 1 commits transactions continuously (this process on
//!   CPU 0); the committer's rate during each kind of phase is printed too.

use pgipc_proc::{BackendType, ProcConfig, ProcNumber};
use pgipc_procarray::{ProcArray, Snapshot};
use pgipc_shmem::Shmem;
use std::hint::black_box;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROLE: &str = "PGIPC_PA_BENCH_ROLE";
const ROUNDS: usize = 21;

#[repr(C)]
struct Ctl {
    stop: AtomicU32,
    ready: AtomicU32,
    commits: AtomicU64,
}
// SAFETY: repr(C), atomics only, zero valid, no pointers.
unsafe impl pgipc_shmem::ShmemSafe for Ctl {}

fn cfg(n: u32) -> ProcConfig {
    ProcConfig {
        max_connections: n + 2,
        autovacuum_worker_slots: 1,
        max_worker_processes: 1,
        max_wal_senders: 1,
        max_prepared_xacts: 0,
    }
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity get valid pointers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// ns per call of `f`, over a batch sized to take about 2 ms.
fn per_op(iters: u64, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

fn report(name: &str, values: &mut [f64], ratios: &mut [f64], baseline: &str) {
    let v = median(values);
    let r = median(ratios);
    println!("{name:<40} {v:>10.1} ns   ({r:.2}x {baseline})");
    println!("BENCH {name} {v:.1} ns {r:.2}x {baseline}");
}

struct Setup {
    pa: ProcArray,
    reader: ProcNumber,
    n: usize,
    ctl: pgipc_shmem::Shared<Ctl>,
}

/// `n` registered backends, every tenth in a transaction whose xid is below xmax.
fn setup(n: u32) -> Setup {
    let c = cfg(n);
    let shmem =
        Shmem::create_for_tests_with(64 << 20, c.all_proc_count().unwrap() as usize).unwrap();
    pgipc_proc::shmem_init(&shmem, &c).unwrap();
    let pa = pgipc_procarray::shmem_init(&shmem, &c).unwrap();
    let (ctl, _) = shmem.init_struct::<Ctl>("bench control").unwrap();
    let mut procs = Vec::new();
    for i in 0..n {
        let p = pa
            .procs()
            .alloc_slot(BackendType::Backend, 100_000 + i as i32)
            .unwrap();
        pa.add(p).unwrap();
        procs.push(p);
    }
    for p in procs.iter().skip(1).step_by(10) {
        pa.assign_transaction_id(*p, false).unwrap();
    }
    // One finished transaction after them, so that they are all below xmax.
    let last = procs[2];
    let x = pa.assign_transaction_id(last, false).unwrap();
    pa.end_transaction(last, x).unwrap();
    let reader = procs[0];
    shmem.set_proc_number(Some(reader));
    Setup {
        pa,
        reader,
        n: n as usize,
        ctl,
    }
}

/// The baseline: what a snapshot must minimally do with the dense array, with no lock.
fn raw_scan(xids: &[AtomicU32], xmax: u32, out: &mut Vec<u32>) -> u32 {
    out.clear();
    let mut xmin = xmax;
    for x in xids {
        let x = x.load(Ordering::Relaxed);
        if x >= 3 && x < xmax {
            xmin = xmin.min(x);
            out.push(x);
        }
    }
    xmin
}

fn bench_size(n: u32) -> (f64, f64) {
    let s = setup(n);
    let xids = &s.pa.procs().xids()[..s.n];
    let mut snap = Snapshot::new();
    s.pa.get_snapshot_data(s.reader, &mut snap).unwrap();
    let xmax = snap.xmax;
    assert_eq!(
        snap.xip.len(),
        (s.n - 1).div_ceil(10),
        "10% of the procs are listed"
    );
    let mut out = Vec::with_capacity(s.n);
    let iters = if n >= 1000 { 4_000 } else { 20_000 };
    let (mut base, mut full, mut reuse, mut rf, mut rr) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let b = per_op(iters, || {
            black_box(raw_scan(black_box(xids), xmax, &mut out));
        });
        let f = per_op(iters, || {
            snap.snap_xact_completion_count = 0;
            s.pa.get_snapshot_data(s.reader, &mut snap).unwrap();
            black_box(&snap);
        });
        let b2 = per_op(iters, || {
            black_box(raw_scan(black_box(xids), xmax, &mut out));
        });
        let r = per_op(iters * 10, || {
            s.pa.get_snapshot_data(s.reader, &mut snap).unwrap();
            black_box(&snap);
        });
        assert!(snap.reused);
        base.push((b + b2) / 2.0);
        full.push(f);
        reuse.push(r);
        rf.push(f / ((b + b2) / 2.0));
        rr.push(r / ((b + b2) / 2.0));
    }
    let bl = format!("raw_scan/{n}");
    let mut ones = vec![1.0; ROUNDS];
    report(&bl, &mut base.clone(), &mut ones, &bl);
    report(&format!("get_snapshot_data/{n}"), &mut full, &mut rf, &bl);
    report(
        &format!("get_snapshot_data_reuse/{n}"),
        &mut reuse,
        &mut rr,
        &bl,
    );
    (median(&mut base), median(&mut reuse))
}

fn committer() -> ! {
    pin_to(1);
    let fd: i32 = std::env::var("PGIPC_PA_BENCH_FD").unwrap().parse().unwrap();
    let n: u32 = std::env::var("PGIPC_PA_BENCH_N").unwrap().parse().unwrap();
    // SAFETY: the parent left this descriptor open for us; nothing else owns it here.
    let shmem = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).unwrap();
    let c = cfg(n);
    let procs = pgipc_proc::shmem_init(&shmem, &c).unwrap();
    let pa = pgipc_procarray::shmem_init(&shmem, &c).unwrap();
    let (ctl, _) = shmem.init_struct::<Ctl>("bench control").unwrap();
    let me = pgipc_proc::init_process(&procs, BackendType::Backend).unwrap();
    pa.init_process_phase2(&me).unwrap();
    let p = me.proc_number();
    ctl.ready.store(1, Ordering::SeqCst);
    while ctl.stop.load(Ordering::Relaxed) == 0 {
        let x = pa.assign_transaction_id(p, false).unwrap();
        pa.end_transaction(p, x).unwrap();
        ctl.commits.fetch_add(1, Ordering::Relaxed);
    }
    pgipc_ipc::proc_exit(0)
}

fn bench_vs_commits(n: u32) {
    let s = setup(n);
    let shmem = s.pa.procs().shmem().clone();
    let fd = shmem.memfd().unwrap().as_raw_fd();
    // SAFETY: clearing FD_CLOEXEC on our own descriptor so the child inherits it.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }, 0);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "committer")
        .env("PGIPC_PA_BENCH_FD", fd.to_string())
        .env("PGIPC_PA_BENCH_N", n.to_string())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.ctl.ready.load(Ordering::SeqCst) == 0 {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("committer did not start");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    pin_to(0);
    let xids = &s.pa.procs().xids()[..s.n + 1];
    let mut snap = Snapshot::new();
    let mut out = Vec::with_capacity(s.n + 1);
    let iters = 4_000;
    let (mut base, mut cand, mut full, mut rc, mut rf) = (vec![], vec![], vec![], vec![], vec![]);
    let mut reused = 0u64;
    // Commits the other process made during each kind of phase, and the time spent in it.
    let mut commits = [0u64; 3];
    let mut spent = [0f64; 3];
    let mut phase = |k: usize, f: &mut dyn FnMut() -> f64| {
        let c0 = s.ctl.commits.load(Ordering::Relaxed);
        let t = Instant::now();
        let v = f();
        spent[k] += t.elapsed().as_secs_f64();
        commits[k] += s.ctl.commits.load(Ordering::Relaxed) - c0;
        v
    };
    for _ in 0..ROUNDS {
        let xmax = s.pa.read_next_full_transaction_id().xid();
        let b = phase(0, &mut || {
            per_op(iters, || {
                black_box(raw_scan(black_box(xids), xmax, &mut out));
            })
        });
        let c = phase(1, &mut || {
            per_op(iters, || {
                s.pa.get_snapshot_data(s.reader, &mut snap).unwrap();
                reused += u64::from(snap.reused);
                black_box(&snap);
            })
        });
        let f = phase(2, &mut || {
            per_op(iters, || {
                snap.snap_xact_completion_count = 0;
                s.pa.get_snapshot_data(s.reader, &mut snap).unwrap();
                black_box(&snap);
            })
        });
        let b2 = phase(0, &mut || {
            per_op(iters, || {
                black_box(raw_scan(black_box(xids), xmax, &mut out));
            })
        });
        let bm = (b + b2) / 2.0;
        base.push(bm);
        cand.push(c);
        full.push(f);
        rc.push(c / bm);
        rf.push(f / bm);
    }
    s.ctl.stop.store(1, Ordering::SeqCst);
    let st = child.wait().unwrap();
    assert!(st.success());
    let bl = format!("raw_scan_vs_commits/{n}");
    let mut ones = vec![1.0; ROUNDS];
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mb, mc, mf) = (mean(&base), mean(&cand), mean(&full));
    report(&bl, &mut base, &mut ones, &bl);
    report(
        &format!("get_snapshot_data_vs_commits/{n}"),
        &mut cand,
        &mut rc,
        &bl,
    );
    report(
        &format!("get_snapshot_data_vs_commits_full/{n}"),
        &mut full,
        &mut rf,
        &bl,
    );
    // A round in which the snapshot taker had to hand the lock to the committer (a cross-CPU
    // wake-up) costs far more than the others; the median hides those rounds, the mean shows them.
    println!(
        "  means over rounds: raw scan {mb:.1} ns, snapshots {mc:.1} ns, forced full {mf:.1} ns"
    );
    println!("BENCH get_snapshot_data_vs_commits_mean/{n} {mc:.1} ns {:.2}x raw_scan_vs_commits_mean/{n}", mc / mb);
    println!("BENCH get_snapshot_data_vs_commits_full_mean/{n} {mf:.1} ns {:.2}x raw_scan_vs_commits_mean/{n}", mf / mb);
    let rate = |k: usize| commits[k] as f64 / spent[k];
    let total = (ROUNDS as u64) * iters;
    println!(
        "  committer on CPU 1: {:.2} M commits/s during raw scans, {:.2} M/s during snapshots \
         ({reused} of {total} reused), {:.2} M/s during forced full snapshots",
        rate(0) / 1e6,
        rate(1) / 1e6,
        rate(2) / 1e6
    );
    for (k, name) in [(0, "raw_scan"), (1, "snapshots"), (2, "full_snapshots")] {
        println!("BENCH committer_rate_during_{name}/{n} {:.0} commits/s {:.2}x committer_rate_during_raw_scan/{n}", rate(k), rate(k) / rate(0));
    }
}

fn main() {
    if std::env::var(ROLE).is_ok() {
        committer();
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    pin_to(0);
    if let Ok(n) = std::env::var("PGIPC_PA_BENCH_ONLY") {
        bench_size(n.parse().expect("a proc count"));
        return;
    }
    println!("single process pinned to CPU 0; {ROUNDS} interleaved rounds per figure");
    let (b100, r100) = bench_size(100);
    let (b1000, r1000) = bench_size(1000);
    println!(
        "  reuse path: {r100:.1} ns at 100 procs, {r1000:.1} ns at 1000 ({:.2}x; the raw scan grew {:.1}x)",
        r1000 / r100,
        b1000 / b100
    );
    println!(
        "BENCH get_snapshot_data_reuse/1000_vs_100 {:.2} ratio {:.2}x get_snapshot_data_reuse/100",
        r1000 / r100,
        r1000 / r100
    );
    bench_vs_commits(1000);
}
