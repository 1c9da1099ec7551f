//! In-process unit tests (threads stand in for processes; the multi-process tests are in
//! `tests/multiprocess.rs`).

use crate::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn layout_is_sixteen_bytes_of_atomics() {
    use std::mem::{align_of, offset_of, size_of};
    let layout = format!(
        "Latch size={} align={}\n  is_set@{}\n  maybe_sleeping@{}\n  owner_pid@{}\n  sleeper_tid@{}",
        size_of::<Latch>(),
        align_of::<Latch>(),
        offset_of!(Latch, is_set),
        offset_of!(Latch, maybe_sleeping),
        offset_of!(Latch, owner_pid),
        offset_of!(Latch, sleeper_tid),
    );
    insta::assert_snapshot!(layout);
}

#[test]
fn set_before_wait_returns_at_once() {
    let l = OwnedLatch::new_local();
    l.set();
    assert!(l.is_set());
    assert_eq!(l.wait(None), Ok(LatchWait::Set));
    // Stays set until reset.
    assert_eq!(l.wait(Some(Duration::ZERO)), Ok(LatchWait::Set));
    l.reset();
    assert_eq!(l.wait(Some(Duration::ZERO)), Ok(LatchWait::TimedOut));
}

#[test]
fn timeout_fires_within_tolerance() {
    let l = OwnedLatch::new_local();
    for ms in [1u64, 20, 50] {
        let t = Instant::now();
        assert_eq!(
            l.wait(Some(Duration::from_millis(ms))),
            Ok(LatchWait::TimedOut)
        );
        let e = t.elapsed();
        assert!(e >= Duration::from_millis(ms), "{e:?} < {ms} ms");
        assert!(
            e < Duration::from_millis(ms + 200),
            "{e:?} too long for {ms} ms"
        );
    }
}

#[test]
fn owning_an_owned_latch_names_the_owner() {
    let latch = Latch::new();
    let owned = OwnedLatch::own(&latch).expect("first own");
    let me = rustix::process::getpid().as_raw_nonzero().get();
    assert_eq!(latch.owner_pid(), Some(me));
    let err = OwnedLatch::own(&latch).unwrap_err();
    assert_eq!(err, LatchError::AlreadyOwned { pid: me });
    assert_eq!(err.to_string(), format!("latch already owned by PID {me}"));
    owned.disown();
    assert_eq!(latch.owner_pid(), None);
    let again = OwnedLatch::own(&latch).expect("own after disown");
    drop(again);
}

#[test]
fn waiting_on_a_reinitialised_latch_is_an_error() {
    let latch = Latch::new();
    let owned = OwnedLatch::own(&latch).unwrap();
    latch.init_shared(); // the postmaster re-initialised it under us
    let err = owned.wait(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err, LatchError::NotOwner { owner: 0 });
    assert_eq!(
        err.to_string(),
        "cannot wait on a latch owned by another process"
    );
    drop(owned);
    assert_eq!(latch.owner_pid(), None);
    // (That a stale handle's drop leaves a new owner in another process alone is checked in
    // tests/multiprocess.rs.)
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let owned = OwnedLatch::own(&latch).unwrap();
    assert!(!latch.reclaim_from(me + 1));
    std::mem::forget(owned); // "dies" holding it
    assert!(latch.reclaim_from(me));
    assert_eq!(latch.owner_pid(), None);
}

#[test]
fn set_from_another_thread_wakes_the_sleeper() {
    let latch: &'static Latch = Box::leak(Box::new(Latch::new()));
    let owned = OwnedLatch::own(latch).unwrap();
    for _ in 0..200 {
        owned.reset();
        let t = std::thread::spawn(move || latch.set());
        assert_eq!(
            owned.wait(Some(Duration::from_secs(10))),
            Ok(LatchWait::Set)
        );
        t.join().unwrap();
    }
}

#[test]
fn threads_ping_pong_through_two_latches() {
    let a = Arc::new(Latch::new());
    let b = Arc::new(Latch::new());
    let (a2, b2) = (a.clone(), b.clone());
    const N: u32 = 20_000;
    let t = std::thread::spawn(move || {
        let mine = OwnedLatch::own(b2).unwrap();
        for _ in 0..N {
            assert_eq!(mine.wait(Some(Duration::from_secs(10))), Ok(LatchWait::Set));
            mine.reset();
            a2.set();
        }
    });
    let mine = OwnedLatch::own(a).unwrap();
    for _ in 0..N {
        b.set();
        assert_eq!(mine.wait(Some(Duration::from_secs(10))), Ok(LatchWait::Set));
        mine.reset();
    }
    t.join().unwrap();
}

#[test]
fn set_on_a_set_latch_leaves_the_sleep_state_alone() {
    let l = OwnedLatch::new_local();
    l.set();
    l.set();
    assert_eq!(l.sleep_mode(), SleepMode::Awake);
    assert_eq!(l.prepare_sleep(SleepMode::Futex), Prepared::AlreadySet);
    assert_eq!(l.sleep_mode(), SleepMode::Awake);
    l.reset();
    assert_eq!(l.prepare_sleep(SleepMode::Futex), Prepared::MaySleep);
    assert_eq!(l.sleep_mode(), SleepMode::Futex);
    l.finish_sleep();
    assert_eq!(l.sleep_mode(), SleepMode::Awake);
}

#[test]
fn my_latch_is_set_on_install_and_by_handlers() {
    let owned: &'static OwnedLatch<Box<Latch>> = Box::leak(Box::new(OwnedLatch::new_local()));
    let latch: &'static Latch = owned;
    install_my_latch(latch);
    assert!(latch.is_set());
    owned.reset();
    set_my_latch();
    assert!(latch.is_set());
    assert!(std::ptr::eq(my_latch().unwrap(), latch));
}
