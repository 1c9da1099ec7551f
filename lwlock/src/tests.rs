//! In-process tests (threads stand in for processes: the memory semantics are the same; the
//! multi-process versions live in `tests/multiprocess.rs`).

use super::*;
use std::mem::{align_of, offset_of, size_of};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn slots(n: usize) -> Arc<Vec<WaitSlot>> {
    Arc::new((0..n).map(|_| WaitSlot::default()).collect())
}

#[test]
fn layout() {
    let s = format!(
        "SpinLock size={} align={}\n\
         PgSemaphore size={} align={}\n\
         LWLock size={} align={}\n\
         LWLockPadded size={} align={}\n\
         ProcWaitSlot size={} align={} sem@{} wait_event_info@{}\n\
         WaitSlot size={} align={} slot@{}",
        size_of::<SpinLock>(),
        align_of::<SpinLock>(),
        size_of::<PgSemaphore>(),
        align_of::<PgSemaphore>(),
        size_of::<LWLock>(),
        align_of::<LWLock>(),
        size_of::<LWLockPadded>(),
        align_of::<LWLockPadded>(),
        size_of::<ProcWaitSlot>(),
        align_of::<ProcWaitSlot>(),
        offset_of!(ProcWaitSlot, sem),
        offset_of!(ProcWaitSlot, wait_event_info),
        size_of::<WaitSlot>(),
        align_of::<WaitSlot>(),
        {
            let w = WaitSlot::default();
            (&*w as *const ProcWaitSlot as usize) - (&w as *const WaitSlot as usize)
        },
    );
    insta::assert_snapshot!(s);
}

#[test]
fn spinlock_basic_and_stuck_detection() {
    let l = SpinLock::new();
    let g = l.try_lock().expect("free lock");
    assert!(l.try_lock().is_none());
    let t0 = Instant::now();
    let err = l
        .lock_within("test lock", Duration::from_millis(50))
        .unwrap_err();
    assert_eq!(err.what, "test lock");
    assert!(err.waited >= Duration::from_millis(50));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(err
        .to_string()
        .starts_with("stuck spinlock detected at test lock"));
    drop(g);
    assert!(l
        .lock_within("test lock", Duration::from_millis(50))
        .is_ok());
}

#[test]
fn semaphore_counts_and_times_out() {
    let s = PgSemaphore::new();
    assert!(!s.try_lock());
    s.unlock();
    s.unlock();
    assert!(s.try_lock());
    assert!(s.lock_timeout(Some(Duration::from_millis(1))));
    let t0 = Instant::now();
    assert!(!s.lock_timeout(Some(Duration::from_millis(30))));
    assert!(t0.elapsed() >= Duration::from_millis(30));
}

#[test]
fn out_of_range_proc_number_is_an_error() {
    let s = slots(2);
    assert_eq!(
        LWLockProc::new(&s, 2).unwrap_err(),
        LWLockError::ProcNumberOutOfRange {
            procno: 2,
            nslots: 2
        }
    );
}

#[test]
fn conditional_acquire_respects_modes() {
    let s = slots(2);
    let lock = LWLock::new(tranche::builtin::TEST);
    let a = LWLockProc::new(&s, 0).unwrap();
    let b = LWLockProc::new(&s, 1).unwrap();
    let g1 = lock.conditional_acquire(&a, LWLockMode::Shared).unwrap();
    let g2 = lock.conditional_acquire(&b, LWLockMode::Shared).unwrap();
    assert!(lock
        .conditional_acquire(&b, LWLockMode::Exclusive)
        .is_none());
    assert_eq!(a.held_count(), 1);
    drop((g1, g2));
    let g = lock.conditional_acquire(&a, LWLockMode::Exclusive).unwrap();
    assert!(lock.conditional_acquire(&b, LWLockMode::Shared).is_none());
    drop(g);
    assert!(!lock.is_held());
}

#[test]
fn contended_counter_is_exact_and_modes_never_overlap() {
    const THREADS: usize = 4;
    const ITERS: u64 = 20_000;
    let s = slots(THREADS);
    let lock = Arc::new(LWLock::new(tranche::builtin::TEST));
    let counter = Arc::new(AtomicU64::new(0));
    let exclusive_in = Arc::new(AtomicBool::new(false));
    let shared_in = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (s, lock, counter, ex, sh) = (
                s.clone(),
                lock.clone(),
                counter.clone(),
                exclusive_in.clone(),
                shared_in.clone(),
            );
            std::thread::spawn(move || {
                let me = LWLockProc::new(&s, t as u32).unwrap();
                for i in 0..ITERS {
                    if i % 4 == 0 {
                        let _g = lock.acquire(&me, LWLockMode::Shared);
                        sh.fetch_add(1, Ordering::SeqCst);
                        assert!(!ex.load(Ordering::SeqCst), "shared overlapped exclusive");
                        sh.fetch_sub(1, Ordering::SeqCst);
                    } else {
                        let _g = lock.acquire(&me, LWLockMode::Exclusive);
                        assert!(!ex.swap(true, Ordering::SeqCst), "two exclusive holders");
                        assert_eq!(sh.load(Ordering::SeqCst), 0, "exclusive overlapped shared");
                        // Non-atomic-style increment: load then store, only safe under the lock.
                        let v = counter.load(Ordering::Relaxed);
                        counter.store(v + 1, Ordering::Relaxed);
                        ex.store(false, Ordering::SeqCst);
                    }
                }
                assert_eq!(me.held_count(), 0);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        counter.load(Ordering::Relaxed),
        THREADS as u64 * ITERS * 3 / 4
    );
    assert!(!lock.is_held());
}

#[test]
fn waiter_sleeps_reports_wait_event_and_wakes_on_release() {
    let s = slots(2);
    let lock = Arc::new(LWLock::new(MainLWLockId::ProcArray.tranche()));
    let holder = LWLockProc::new(&s, 0).unwrap();
    let g = lock.acquire(&holder, LWLockMode::Exclusive);
    let got = Arc::new(AtomicBool::new(false));
    let (s2, lock2, got2) = (s.clone(), lock.clone(), got.clone());
    let t = std::thread::spawn(move || {
        let me = LWLockProc::new(&s2, 1).unwrap();
        let _g = lock2.acquire(&me, LWLockMode::Shared);
        got2.store(true, Ordering::SeqCst);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while s[1].wait_event_info.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "waiter never went to sleep");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        s[1].wait_event_info.load(Ordering::SeqCst),
        PG_WAIT_LWLOCK | MainLWLockId::ProcArray as u32
    );
    assert!(!got.load(Ordering::SeqCst));
    drop(g);
    t.join().unwrap();
    assert!(got.load(Ordering::SeqCst));
    assert_eq!(s[1].wait_event_info.load(Ordering::SeqCst), 0);
}

#[test]
fn process_without_slot_can_lock() {
    let s = slots(1);
    let lock = Arc::new(LWLock::new(tranche::builtin::TEST));
    let me = LWLockProc::new(&s, 0).unwrap();
    let g = lock.acquire(&me, LWLockMode::Exclusive);
    let (s2, lock2) = (s.clone(), lock.clone());
    let t = std::thread::spawn(move || {
        let anon = LWLockProc::without_slot(&s2);
        let _g = lock2.acquire(&anon, LWLockMode::Exclusive);
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(g);
    t.join().unwrap();
}
