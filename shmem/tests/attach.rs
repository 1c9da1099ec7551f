//! Exec'd children attach the main segment by its inherited memfd, find structures by name and
//! lock each other out with a main LWLock. libtest-mimic on one test thread: the trial runs on
//! the main thread as the parent; re-executed copies of this binary are the children.

use libtest_mimic::{Arguments, Trial};
use pgipc_lwlock::{LWLockMode, MainLWLockId};
use pgipc_shmem::{InitKind, Shmem};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CHILDREN: u32 = 3;
const ITERS: u64 = 200_000;

fn child(fd: i32, procno: u32) {
    // SAFETY: the parent handed us this inherited descriptor; nothing else owns it here.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach");
    shm.set_proc_number(Some(procno));
    let (counter, kind) = shm
        .init_struct::<AtomicU64>("Attach Test Counter")
        .expect("lookup");
    assert_eq!(
        kind,
        InitKind::Attached,
        "the child must find the parent's structure"
    );
    let me = shm.lwlock_proc();
    let lock = shm.main_lwlock(MainLWLockId::AddinShmemInit);
    for _ in 0..ITERS {
        let _g = lock.acquire(&me, LWLockMode::Exclusive);
        let v = counter.load(Ordering::Relaxed);
        counter.store(v + 1, Ordering::Relaxed);
    }
}

/// The children, killed and reaped if the trial fails half-way.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for k in &mut self.0 {
            let _ = k.kill();
            let _ = k.wait();
        }
    }
}

fn children_increment_under_a_main_lwlock() {
    let shm = Shmem::create_for_tests_with(1 << 20, CHILDREN as usize).expect("segment");
    let (counter, kind) = shm
        .init_struct::<AtomicU64>("Attach Test Counter")
        .expect("create");
    assert_eq!(kind, InitKind::Created);
    let fd = shm.memfd().expect("memfd-backed").as_raw_fd();
    let mut kids = Kids(
        (0..CHILDREN)
            .map(|n| {
                Command::new(std::env::current_exe().expect("exe"))
                    .env("PGIPC_SHMEM_FD", fd.to_string())
                    .env("PGIPC_PROCNO", n.to_string())
                    .spawn()
                    .expect("spawn")
            })
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    for k in &mut kids.0 {
        loop {
            if let Some(st) = k.try_wait().expect("wait") {
                assert!(st.success(), "child failed: {st}");
                break;
            }
            if Instant::now() > deadline {
                // The guard kills and reaps them.
                panic!("watchdog: children did not finish");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert_eq!(counter.load(Ordering::SeqCst), u64::from(CHILDREN) * ITERS);
}

fn main() -> ExitCode {
    if let (Ok(fd), Ok(n)) = (
        std::env::var("PGIPC_SHMEM_FD"),
        std::env::var("PGIPC_PROCNO"),
    ) {
        child(fd.parse().expect("fd"), n.parse().expect("procno"));
        return ExitCode::SUCCESS;
    }
    let mut args = Arguments::from_args();
    // One test thread: the trial runs on the main thread, the only one.
    args.test_threads = Some(1);
    let trials = vec![Trial::test(
        "exec_children_increment_under_a_main_lwlock",
        || {
            children_increment_under_a_main_lwlock();
            Ok(())
        },
    )];
    libtest_mimic::run(&args, trials).exit_code()
}
