//! Children signal a "postmaster" (this process) all at once, many rounds; every raised reason
//! must be observed after a `SIGUSR1`, none lost. Also the slot protocol across real exits.
//!
//! libtest-mimic on one test thread: each trial runs on the main thread as the postmaster, over a
//! segment of its own, and re-executed copies of this binary are the children (they take their
//! role before the harness parses anything). Every wait has a deadline (the watchdog), so a lost
//! signal fails the test instead of hanging it, and a failed trial kills its children.

use libtest_mimic::{Arguments, Trial};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use pgipc_pmsignal::{shmem_init, PMSignal, PMSignalReason, NUM_PMSIGNALS};
use pgipc_shmem::Shmem;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const CHILDREN: u32 = 8;
const ROUNDS: u32 = 300;
const SLOTS: usize = 16;

/// Test-only shared state: the round to play and how many children finished it.
#[repr(C)]
struct Rounds {
    round: AtomicU32,
    done: AtomicU32,
    same_round: AtomicU32,
    same_done: AtomicU32,
}
// SAFETY: repr(C), atomics only, zero is valid.
unsafe impl pgipc_shmem::ShmemSafe for Rounds {}

fn attach() -> (Shmem, PMSignal) {
    let fd: i32 = std::env::var("PGIPC_SHMEM_FD").unwrap().parse().unwrap();
    // SAFETY: the parent handed us this inherited descriptor; nothing else owns it here.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach");
    let pm = shmem_init(&shm, SLOTS).expect("pmsignal attach");
    (shm, pm)
}

fn sender(idx: u32) {
    let (shm, pm) = attach();
    let (rounds, _) = shm.init_struct::<Rounds>("test rounds").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for r in 1..=ROUNDS {
        while rounds.round.load(Ordering::Acquire) < r {
            assert!(Instant::now() < deadline, "child {idx}: stuck at round {r}");
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        // Children in a round send different reasons, and the set changes every round.
        let reason = PMSignalReason::ALL[((idx + r) as usize) % NUM_PMSIGNALS];
        // Count first: the postmaster may finish the round as soon as the signal lands.
        rounds.done.fetch_add(1, Ordering::AcqRel);
        pm.send_postmaster_signal(reason).expect("send");
    }
}

/// Every child sends the same reason in a round; counts after sending.
fn same_sender(idx: u32) {
    let (shm, pm) = attach();
    let (rounds, _) = shm.init_struct::<Rounds>("test rounds").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for r in 1..=ROUNDS {
        while rounds.same_round.load(Ordering::Acquire) < r {
            assert!(Instant::now() < deadline, "child {idx}: stuck at round {r}");
            std::thread::yield_now();
        }
        pm.send_postmaster_signal(PMSignalReason::ALL[r as usize % NUM_PMSIGNALS])
            .expect("send");
        rounds.same_done.fetch_add(1, Ordering::AcqRel);
    }
}

fn slot_child(slot: u32, clean: bool) {
    let (_shm, pm) = attach();
    pm.register_child_active(slot).expect("active");
    if slot % 2 == 0 {
        pm.mark_child_walsender(slot).expect("walsender");
    }
    if clean {
        pgipc_ipc::proc_exit(0);
    }
    // A crash: no exit callbacks run (not even atexit hooks), yet the status is 0.
    // SAFETY: _exit ends the process at once; nothing is left half-done that matters here.
    unsafe { libc::_exit(0) }
}

fn spawn(shm: &Shmem, role: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(
            "PGIPC_SHMEM_FD",
            shm.memfd().unwrap().as_raw_fd().to_string(),
        )
        .env("PGIPC_ROLE", role)
        .spawn()
        .expect("spawn")
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

fn reap(kids: &mut [Child], deadline: Instant) {
    for k in kids.iter_mut() {
        loop {
            if let Some(st) = k.try_wait().unwrap() {
                assert!(st.success(), "child failed: {st}");
                break;
            }
            if Instant::now() > deadline {
                kids.iter_mut().for_each(|k| drop(k.kill()));
                panic!("watchdog: children did not finish");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn no_signal_is_lost(shm: &Shmem, pm: &PMSignal) {
    let (rounds, _) = shm.init_struct::<Rounds>("test rounds").unwrap();
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGUSR1);
    mask.thread_block().unwrap();
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK).unwrap();
    pm.set_postmaster_pid(std::process::id() as i32);
    let mut kids = Kids(
        (0..CHILDREN)
            .map(|i| spawn(shm, &format!("send{i}")))
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut observed_total = 0u64;
    for r in 1..=ROUNDS {
        let want: Vec<PMSignalReason> = (0..CHILDREN)
            .map(|i| PMSignalReason::ALL[((i + r) as usize) % NUM_PMSIGNALS])
            .collect();
        let mut seen = [false; NUM_PMSIGNALS];
        rounds.round.store(r, Ordering::Release);
        // Like ServerLoop: sleep until SIGUSR1, then check every reason.
        while !(rounds.done.load(Ordering::Acquire) == r * CHILDREN
            && want.iter().all(|w| seen[*w as usize]))
        {
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            let n = poll(&mut fds, PollTimeout::from(5000u16)).unwrap();
            if n == 0 || Instant::now() > deadline {
                kids.0.iter_mut().for_each(|k| drop(k.kill()));
                panic!("round {r}: a postmaster signal was lost (seen {seen:?}, want {want:?})");
            }
            while let Ok(Some(_)) = sfd.read_signal() {}
            for reason in PMSignalReason::ALL {
                if pm.check_postmaster_signal(reason) {
                    assert!(want.contains(&reason), "round {r}: unexpected {reason:?}");
                    seen[reason as usize] = true;
                    observed_total += 1;
                }
            }
        }
    }
    reap(&mut kids.0, deadline);
    mask.thread_unblock().unwrap();
    println!(
        "pmsignal: {CHILDREN} children x {ROUNDS} rounds sending at once, every reason observed \
         ({observed_total} observations, coalesced from {})",
        u64::from(CHILDREN * ROUNDS)
    );
}

/// Eight children raise the same reason at once: the postmaster sees it (coalesced) every
/// round, and nothing of one round leaks into the next.
fn same_reason_coalesces(shm: &Shmem, pm: &PMSignal) {
    let (rounds, _) = shm.init_struct::<Rounds>("test rounds").unwrap();
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGUSR1);
    mask.thread_block().unwrap();
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK).unwrap();
    let mut kids = Kids(
        (0..CHILDREN)
            .map(|i| spawn(shm, &format!("same{i}")))
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut observations, mut signals) = (0u32, 0u32);
    for r in 1..=ROUNDS {
        let want = PMSignalReason::ALL[r as usize % NUM_PMSIGNALS];
        let (mut seen, mut round_signals) = (false, 0u32);
        rounds.same_round.store(r, Ordering::Release);
        loop {
            // Every child raised its flag and sent its signal before counting itself done, so
            // once all are done one last sweep sees whatever is still raised.
            let all_done = rounds.same_done.load(Ordering::Acquire) == r * CHILDREN;
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(2u16)).unwrap();
            while let Ok(Some(_)) = sfd.read_signal() {
                round_signals += 1;
            }
            for reason in PMSignalReason::ALL {
                if pm.check_postmaster_signal(reason) {
                    if reason != want {
                        kids.0.iter_mut().for_each(|k| drop(k.kill()));
                        panic!("round {r}: stale or stray {reason:?}");
                    }
                    seen = true;
                    observations += 1;
                }
            }
            if all_done {
                break;
            }
            if Instant::now() > deadline {
                kids.0.iter_mut().for_each(|k| drop(k.kill()));
                panic!("watchdog: round {r}");
            }
        }
        assert!(
            seen,
            "round {r}: {want:?} raised by {CHILDREN} children was lost"
        );
        assert!(round_signals >= 1, "round {r}: no SIGUSR1 arrived");
        signals += round_signals;
    }
    reap(&mut kids.0, deadline);
    mask.thread_unblock().unwrap();
    println!(
        "pmsignal: {CHILDREN} children x {ROUNDS} rounds raising the same reason: seen every round, \
         never leaking into the next ({observations} observations, {signals} signals read for \
         {} sent)",
        CHILDREN * ROUNDS
    );
}

fn slots_tell_crash_from_clean_exit(shm: &Shmem, pm: &PMSignal) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for (slot, clean) in [(1u32, true), (2, true), (3, false), (4, false)] {
        pm.mark_child_slot_assigned(slot).unwrap();
        let role = format!("slot{slot}{}", if clean { "clean" } else { "crash" });
        let mut kid = Kids(vec![spawn(shm, &role)]);
        reap(&mut kid.0, deadline);
        assert_eq!(
            pm.mark_child_slot_unassigned(slot),
            clean,
            "slot {slot}: clean={clean}"
        );
    }
}

/// Runs `scenario` as the postmaster of a segment of its own.
fn on_fresh_segment(scenario: fn(&Shmem, &PMSignal)) {
    let shm = Shmem::create_for_tests(1 << 20).expect("segment");
    let pm = shmem_init(&shm, SLOTS).expect("pmsignal");
    pm.set_postmaster_pid(std::process::id() as i32);
    scenario(&shm, &pm);
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("PGIPC_ROLE") {
        if let Some(i) = role.strip_prefix("send") {
            sender(i.parse().unwrap());
        } else if let Some(i) = role.strip_prefix("same") {
            same_sender(i.parse().unwrap());
        } else if let Some(rest) = role.strip_prefix("slot") {
            let clean = rest.ends_with("clean");
            let slot = rest.trim_end_matches("clean").trim_end_matches("crash");
            slot_child(slot.parse().unwrap(), clean);
        }
        return ExitCode::SUCCESS;
    }
    let mut args = Arguments::from_args();
    // One test thread: the trials run one after the other on the main thread.
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test("no_signal_is_lost", || {
            on_fresh_segment(no_signal_is_lost);
            Ok(())
        }),
        Trial::test("same_reason_coalesces", || {
            on_fresh_segment(same_reason_coalesces);
            Ok(())
        }),
        Trial::test("slots_tell_crash_from_clean_exit", || {
            on_fresh_segment(slots_tell_crash_from_clean_exit);
            Ok(())
        }),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
