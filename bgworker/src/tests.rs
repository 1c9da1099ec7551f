//! Single-process tests on a test segment: the region, registration, handles, terminate and
//! the waits' exits. (Wake-ups by the postmaster's SIGUSR1 are covered by the whole-server
//! tests, where a real postmaster starts the workers.)

use super::*;
use pgipc_latch::OwnedLatch;
use pgipc_pmsignal::PMSignal;
use pgipc_shmem::{AllocationName, Shmem};
use std::time::{Duration, Instant};

/// Stands in for the postmaster's pid in PMSignal: the SIGUSR1 of a registration ends it,
/// which is all it is for (a signal to its zombie still succeeds). Killed and reaped on drop.
struct FakePostmaster(std::process::Child);

impl FakePostmaster {
    fn start(pms: &PMSignal) -> Self {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        pms.set_postmaster_pid(child.id() as i32);
        FakePostmaster(child)
    }
}

impl Drop for FakePostmaster {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn segment(slots: u32) -> (Shmem, BgWorkerShared, PMSignal) {
    let shm = Shmem::create_for_tests(1 << 20).expect("segment");
    let sh = shmem_init(&shm, slots).expect("bgworker array");
    let pms = pgipc_pmsignal::shmem_init(&shm, 4).expect("pmsignal");
    (shm, sh, pms)
}

fn never(name: &str) -> BgWorkerSpec {
    let mut s = BgWorkerSpec::new(name, "some_function");
    s.restart = RestartPolicy::Never;
    s
}

#[test]
fn the_array_is_one_region_of_the_computed_size() {
    let (shm, sh, _pms) = segment(4);
    assert_eq!(sh.len(), 4);
    let rows: Vec<_> = shm
        .allocations()
        .expect("allocations")
        .into_iter()
        .filter(|r| r.name.to_string().starts_with("Background Worker"))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].name,
        AllocationName::Named(BGWORKER_DATA_NAME.into())
    );
    assert_eq!(rows[0].size, shmem_size(4).expect("size") as u64);
    // Another process finds it; one with another max_worker_processes is refused.
    assert_eq!(shmem_init(&shm, 4).expect("attach").len(), 4);
    let e = shmem_init(&shm, 5).expect_err("size mismatch");
    assert!(e.to_string().contains(BGWORKER_DATA_NAME), "{e}");
    assert!((0..4).all(|i| !sh.in_use(i) && sh.pid(i).is_none()));
}

#[test]
fn registrations_take_free_slots_and_a_reused_slot_is_not_the_old_worker() {
    let (_shm, sh, pms) = segment(2);
    let _pm = FakePostmaster::start(&pms);
    let a = sh.register_dynamic(&never("a"), 8, &pms).unwrap().unwrap();
    let b = sh.register_dynamic(&never("b"), 8, &pms).unwrap().unwrap();
    assert_eq!((a.slot(), b.slot()), (0, 1));
    assert_eq!(sh.status(a), BgwHandleStatus::NotYetStarted);
    assert_eq!(sh.read_spec(0).map(|s| s.name), Some("a".into()));
    // Full.
    assert_eq!(sh.register_dynamic(&never("c"), 8, &pms), Ok(None));
    sh.postmaster_set_started(0, 777);
    assert_eq!(sh.status(a), BgwHandleStatus::Started(777));
    // Exited and freed: the handle reads Stopped, also once the slot holds another worker.
    sh.postmaster_set_not_running(0, true);
    assert_eq!(sh.status(a), BgwHandleStatus::Stopped);
    sh.postmaster_free_slot(0);
    let c = sh.register_dynamic(&never("c"), 8, &pms).unwrap().unwrap();
    assert_eq!(c.slot(), 0);
    assert_ne!(c.generation(), a.generation());
    assert_eq!(sh.status(a), BgwHandleStatus::Stopped);
    assert_eq!(sh.status(c), BgwHandleStatus::NotYetStarted);
    // A stale handle cannot terminate the slot's new worker.
    sh.terminate(a, &pms);
    assert!(!sh.postmaster_terminate_requested(0));
    sh.terminate(c, &pms);
    assert!(sh.postmaster_terminate_requested(0));
}

#[test]
fn parallel_workers_are_limited_by_max_parallel_workers() {
    let (_shm, sh, pms) = segment(4);
    let _pm = FakePostmaster::start(&pms);
    let mut p = never("parallel");
    p.flags |= BGWORKER_CLASS_PARALLEL;
    let first = sh.register_dynamic(&p, 1, &pms).unwrap().unwrap();
    assert_eq!(sh.register_dynamic(&p, 1, &pms), Ok(None), "limit reached");
    // Non-parallel workers do not count.
    assert!(sh
        .register_dynamic(&never("plain"), 1, &pms)
        .unwrap()
        .is_some());
    // Freeing the parallel worker's slot counts it as terminated.
    sh.postmaster_free_slot(first.slot());
    assert!(sh.register_dynamic(&p, 1, &pms).unwrap().is_some());
}

#[test]
fn bad_registrations_and_a_missing_postmaster_take_no_slot() {
    let (_shm, sh, pms) = segment(2);
    let e = sh.register_dynamic(&never("w"), 8, &pms).unwrap_err();
    assert_eq!(e, BgWorkerError::NoPostmaster("w".into()));
    let _pm = FakePostmaster::start(&pms);
    let mut s = never("w");
    s.flags = 0;
    let e = sh.register_dynamic(&s, 8, &pms).unwrap_err();
    assert_eq!(
        e.to_string(),
        "background worker \"w\": background workers without shared memory access are not supported"
    );
    assert_eq!(e.sqlstate(), "22023");
    let mut s = BgWorkerSpec::new("w", "f");
    s.flags |= BGWORKER_CLASS_PARALLEL;
    assert!(matches!(
        sh.register_dynamic(&s, 8, &pms),
        Err(BgWorkerError::ParallelRestart(_))
    ));
    let mut s = never("w");
    s.restart = RestartPolicy::After(86_401);
    assert!(matches!(
        s.sanity_check(),
        Err(BgWorkerError::BadRestart(_))
    ));
    let mut s = never("w");
    s.flags |= BGWORKER_BACKEND_DATABASE_CONNECTION;
    s.start_time = BgwStartTime::PostmasterStart;
    assert!(matches!(
        s.sanity_check(),
        Err(BgWorkerError::DatabaseAtStart(_))
    ));
    assert!((0..2).all(|i| !sh.in_use(i)));
}

#[test]
fn waits_end_when_done_at_the_timeout_or_on_an_interrupt() {
    let (_shm, sh, pms) = segment(2);
    let _pm = FakePostmaster::start(&pms);
    let latch = OwnedLatch::new_local();
    let h = sh.register_dynamic(&never("w"), 8, &pms).unwrap().unwrap();
    let mut no = || false;
    // Not started: the wait gives up at its timeout with the status of then.
    let t = Instant::now();
    let st = sh.wait_for_startup(h, &latch, Duration::from_millis(50), &mut no);
    assert_eq!(st, Ok(BgwHandleStatus::NotYetStarted));
    assert!(t.elapsed() >= Duration::from_millis(50));
    // An interrupt ends it at once.
    let mut yes = || true;
    let st = sh.wait_for_startup(h, &latch, Duration::from_secs(60), &mut yes);
    assert_eq!(st, Err(BgWorkerError::Interrupted));
    // Started and stopped: both waits return without sleeping.
    sh.postmaster_set_started(h.slot(), 4321);
    let st = sh.wait_for_startup(h, &latch, Duration::from_secs(60), &mut yes);
    assert_eq!(st, Ok(BgwHandleStatus::Started(4321)));
    let st = sh.wait_for_shutdown(h, &latch, Duration::from_millis(20), &mut no);
    assert_eq!(st, Ok(BgwHandleStatus::Started(4321)), "still running");
    sh.postmaster_set_not_running(h.slot(), true);
    sh.postmaster_free_slot(h.slot());
    let st = sh.wait_for_shutdown(h, &latch, Duration::from_secs(60), &mut yes);
    assert_eq!(st, Ok(BgwHandleStatus::Stopped));
    // A worker that can never start (slot freed) ends the start-up wait too.
    let h2 = sh.register_dynamic(&never("x"), 8, &pms).unwrap().unwrap();
    sh.postmaster_free_slot(h2.slot());
    let st = sh.wait_for_startup(h2, &latch, Duration::from_secs(60), &mut no);
    assert_eq!(st, Ok(BgwHandleStatus::Stopped));
}

#[test]
fn the_postmaster_publishes_into_free_slots_only_and_clears_notify_pids() {
    let (_shm, sh, _pms) = segment(2);
    let mut s = BgWorkerSpec::new("static", "f");
    s.notify_pid = 99;
    assert!(sh.postmaster_publish(0, &s));
    assert!(!sh.postmaster_publish(0, &s), "slot 0 is taken");
    assert!(!sh.postmaster_publish(2, &s), "no slot 2");
    assert_eq!(sh.read_spec(0), Some(s.clone()));
    sh.postmaster_clear_notify_pid(0);
    assert_eq!(sh.read_spec(0).map(|s| s.notify_pid), Some(0));
    assert_eq!(sh.pid(0), None);
    sh.postmaster_set_not_running(0, false);
    assert_eq!(
        sh.pid(0),
        None,
        "waiting for a restart reads as not started"
    );
    assert_eq!(sh.read_spec(1), None);
}

#[test]
fn specs_round_trip_through_the_environment_and_slots_cut_long_names() {
    let mut s = BgWorkerSpec::new("we\u{1f}ird\\name \\u", "pgipc_worker_exit");
    s.main_arg = -5;
    s.notify_pid = 42;
    s.restart = RestartPolicy::Never;
    assert_eq!(BgWorkerSpec::decode(&s.encode()), Some(s.clone()));
    assert_eq!(BgWorkerSpec::decode("garbage"), None);
    assert_eq!(
        BgWorkerSpec::decode(&s.encode().replace("\\\\", "\\x")),
        None
    );

    let (_shm, sh, _pms) = segment(1);
    let long = "é".repeat(60); // 120 bytes: cut to 94, the last whole character below 96
    let s = BgWorkerSpec::new(&long, "f");
    assert!(sh.postmaster_publish(0, &s));
    let back = sh.read_spec(0).expect("published").name;
    assert_eq!(back, "é".repeat(47));
    assert!(back.len() < BGW_MAXLEN);
}
