//! Multi-process tests of the locks, under libtest-mimic on one test thread: each trial runs on
//! the main thread as the parent, and re-executed copies of this binary are the children (they
//! take their role before the harness parses anything). Every wait has a watchdog, and a failed
//! trial kills its children.

mod common;

use common::{SharedMap, ROLE_ENV};
use libtest_mimic::{Arguments, Trial};
use pgipc_lwlock::{tranche, LWLock, LWLockMode, LWLockProc, SpinLock, WaitSlot};
use std::process::{Child, ExitCode};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NPROCS: usize = 4;
const ITERS: u64 = 1_000_000;

// Layout of the test segment.
const LOCK_OFF: usize = 0; // LWLock
const SPIN_OFF: usize = 64; // SpinLock
const COUNTER_OFF: usize = 128; // u64, changed only under the lock
const EXCL_OFF: usize = 192; // AtomicU32: exclusive holders right now
const SHARED_OFF: usize = 256; // AtomicU32: shared holders right now
const VIOLATIONS_OFF: usize = 320; // AtomicU32: overlaps seen
const READY_OFF: usize = 384; // AtomicU32: children that hold the spinlock / are ready
const CONTENDED_OFF: usize = 448; // AtomicU64: acquisitions that found the lock held
const SLOTS_OFF: usize = 1024;
const MAP_LEN: usize = SLOTS_OFF + 16 * std::mem::size_of::<WaitSlot>();

struct View<'a> {
    lock: &'a LWLock,
    spin: &'a SpinLock,
    counter: &'a AtomicU64,
    excl: &'a AtomicU32,
    shared: &'a AtomicU32,
    violations: &'a AtomicU32,
    ready: &'a AtomicU32,
    contended: &'a AtomicU64,
    slots: &'a [WaitSlot],
}

fn view(m: &SharedMap) -> View<'_> {
    // SAFETY: every type here is atomics-only and valid when zeroed; offsets are aligned and in
    // bounds of MAP_LEN; all processes use the same layout.
    unsafe {
        View {
            lock: m.at(LOCK_OFF),
            spin: m.at(SPIN_OFF),
            counter: m.at(COUNTER_OFF),
            excl: m.at(EXCL_OFF),
            shared: m.at(SHARED_OFF),
            violations: m.at(VIOLATIONS_OFF),
            ready: m.at(READY_OFF),
            contended: m.at(CONTENDED_OFF),
            slots: m.slice(SLOTS_OFF, 16),
        }
    }
}

fn child(role: &str) {
    let m = SharedMap::from_env();
    let v = view(&m);
    let procno: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("procno arg");
    match role {
        "increment" => {
            let me = LWLockProc::new(v.slots, procno).expect("proc number");
            // Start barrier in the segment, so that the children really overlap.
            v.ready.fetch_add(1, Ordering::SeqCst);
            while v.ready.load(Ordering::SeqCst) < NPROCS as u32 {
                std::hint::spin_loop();
            }
            let mut slept = 0u64;
            for i in 0..ITERS {
                if i % 8 == 7 {
                    let _g = v.lock.acquire(&me, LWLockMode::Shared);
                    v.shared.fetch_add(1, Ordering::SeqCst);
                    if v.excl.load(Ordering::SeqCst) != 0 {
                        v.violations.fetch_add(1, Ordering::SeqCst);
                    }
                    v.shared.fetch_sub(1, Ordering::SeqCst);
                }
                if v.lock.is_held() {
                    slept += 1;
                }
                let _g = v.lock.acquire(&me, LWLockMode::Exclusive);
                if v.excl.fetch_add(1, Ordering::SeqCst) != 0
                    || v.shared.load(Ordering::SeqCst) != 0
                {
                    v.violations.fetch_add(1, Ordering::SeqCst);
                }
                // A deliberately non-atomic read-modify-write: exact only under mutual exclusion.
                let c = v.counter.load(Ordering::Relaxed);
                v.counter.store(c + 1, Ordering::Relaxed);
                v.excl.fetch_sub(1, Ordering::SeqCst);
            }
            v.contended.fetch_add(slept, Ordering::SeqCst);
        }
        "hold-spinlock" => {
            let g = v.spin.lock();
            v.ready.store(1, Ordering::SeqCst);
            // Hold it until killed.
            std::thread::sleep(Duration::from_secs(600));
            drop(g);
        }
        other => panic!("unknown role {other}"),
    }
}

/// Children killed and reaped when dropped, so that a failed trial leaves none behind.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for k in &mut self.0 {
            let _ = k.kill();
            let _ = k.wait();
        }
    }
}

/// Waits for every child, killing all of them if `limit` passes; returns their exit success.
fn wait_all(children: &mut [Child], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut ok = true;
    for c in children.iter_mut() {
        loop {
            match c.try_wait().expect("try_wait") {
                Some(st) => {
                    ok &= st.success();
                    break;
                }
                None if Instant::now() > deadline => {
                    for k in children.iter_mut() {
                        let _ = k.kill();
                        let _ = k.wait();
                    }
                    panic!("watchdog: children still running after {limit:?}");
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    ok
}

fn lwlock_counter_is_exact_across_processes() {
    let m = SharedMap::create(MAP_LEN);
    let v = view(&m);
    v.lock.init(tranche::builtin::TEST);
    let mut kids = Kids(
        (0..NPROCS)
            .map(|i| m.spawn("increment", &[&i.to_string()]))
            .collect(),
    );
    assert!(
        wait_all(&mut kids.0, Duration::from_secs(240)),
        "a child failed"
    );
    assert_eq!(v.counter.load(Ordering::SeqCst), NPROCS as u64 * ITERS);
    assert_eq!(
        v.violations.load(Ordering::SeqCst),
        0,
        "shared and exclusive holders overlapped"
    );
    assert!(!v.lock.is_held());
    assert!(v
        .slots
        .iter()
        .all(|s| s.wait_event_info.load(Ordering::SeqCst) == 0));
    let contended = v.contended.load(Ordering::SeqCst);
    assert!(
        contended > 0,
        "the children never contended: the test proved nothing"
    );
    println!("lwlock: {NPROCS} processes x {ITERS} increments exact ({contended} contended)");
}

fn spinlock_held_by_a_killed_process_is_reported_stuck() {
    let m = SharedMap::create(MAP_LEN);
    let v = view(&m);
    let mut kid = Kids(vec![m.spawn("hold-spinlock", &["0"])]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while v.ready.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "child never took the spinlock");
        std::thread::sleep(Duration::from_millis(1));
    }
    kid.0[0].kill().expect("kill");
    kid.0[0].wait().expect("wait");
    let err = v
        .spin
        .lock_within("test spinlock", Duration::from_millis(200))
        .unwrap_err();
    assert_eq!(err.what, "test spinlock");
    assert!(err.waited >= Duration::from_millis(200));
    println!(
        "spinlock: holder killed -> stuck detected after {:?}",
        err.waited
    );
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        child(&role);
        return ExitCode::SUCCESS;
    }
    let mut args = Arguments::from_args();
    // One test thread: the trials run one after the other on the main thread.
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test("lwlock_counter_is_exact_across_processes", || {
            lwlock_counter_is_exact_across_processes();
            Ok(())
        }),
        Trial::test(
            "spinlock_held_by_a_killed_process_is_reported_stuck",
            || {
                spinlock_held_by_a_killed_process_is_reported_stuck();
                Ok(())
            },
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
