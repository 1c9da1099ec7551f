//! Barriers, reasons, cancel keys and dead targets with real processes.
//!
//! libtest-mimic on one test thread: the trials run on the main thread, the emitter, in order,
//! as steps over one set of participants (re-executed copies of this binary, proc numbers 0..8,
//! which take their role before the harness starts); a step runs only after the one before it
//! passed. Every wait has a deadline (the watchdog): a bug fails the test instead of hanging it,
//! and a failed step kills the children.

use libtest_mimic::{Arguments, Trial};
use pgipc_latch::{install_my_latch, Latch, OwnedLatch};
use pgipc_procsignal::{
    any_pending, install_handler, register_barrier_callback, shmem_init, take_pending,
    BarrierProgress, ProcSignal, ProcSignalBarrierType, ProcSignalError, ProcSignalReason,
};
use pgipc_shmem::{Shared, Shmem, ShmemSafe};
use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const N: usize = 8;
const SLOTS: usize = 16;
const ROUNDS: u32 = 20;

#[repr(C)]
struct TestState {
    ready: AtomicU32,
    stop: AtomicU32,
    /// procno + 1 of a child that must exit instead of absorbing the next barrier.
    exit_on_barrier: AtomicU32,
    absorbed: [AtomicU32; N],
    notified: [AtomicU32; N],
    cancelled: [AtomicU32; N],
    pids: [AtomicI32; N],
}
// SAFETY: repr(C), atomics only, zero is valid.
unsafe impl ShmemSafe for TestState {}

static STATE: OnceLock<Shared<TestState>> = OnceLock::new();
static ME: AtomicU32 = AtomicU32::new(0);
static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
static CANCELLED: AtomicBool = AtomicBool::new(false);

fn key(procno: u32) -> Vec<u8> {
    (0..32)
        .map(|i| (i as u8).wrapping_mul(7) ^ procno as u8)
        .collect()
}

/// Barrier work: slow (procno ms), and child 0 asks to be retried every other time.
fn absorb_smgr_release() -> bool {
    let me = ME.load(Ordering::Relaxed) as usize;
    if me == 0 && ATTEMPTS.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
        return false;
    }
    std::thread::sleep(Duration::from_millis(me as u64));
    STATE.get().unwrap().absorbed[me].fetch_add(1, Ordering::SeqCst);
    true
}

extern "C" fn on_sigint(_: i32) {
    CANCELLED.store(true, Ordering::SeqCst);
    pgipc_latch::set_my_latch();
}

fn attach() -> (Shmem, ProcSignal, Shared<TestState>) {
    let fd: i32 = std::env::var("PGIPC_SHMEM_FD").unwrap().parse().unwrap();
    // SAFETY: the parent handed us this inherited descriptor; nothing else owns it here.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach");
    let ps = shmem_init(&shm, SLOTS).expect("procsignal attach");
    let (st, _) = shm.init_struct::<TestState>("procsignal test").unwrap();
    (shm, ps, st)
}

fn participant(procno: u32) {
    let (_shm, ps, st) = attach();
    let _ = STATE.set(st.clone());
    ME.store(procno, Ordering::Relaxed);
    let latch: &'static OwnedLatch<Box<Latch>> = Box::leak(Box::new(OwnedLatch::new_local()));
    install_my_latch(latch.latch());
    register_barrier_callback(ProcSignalBarrierType::SmgrRelease, absorb_smgr_release);
    install_handler().unwrap();
    {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        let act = SigAction::new(
            SigHandler::Handler(on_sigint),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only stores an atomic and sets the latch.
        unsafe { sigaction(Signal::SIGINT, &act) }.unwrap();
    }
    let pid = std::process::id() as i32;
    ps.init_slot(procno, pid, Some(&key(procno))).unwrap();
    st.pids[procno as usize].store(pid, Ordering::SeqCst);
    st.ready.fetch_add(1, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        latch.reset();
        if st.stop.load(Ordering::SeqCst) != 0 {
            pgipc_ipc::proc_exit(0);
        }
        if take_pending(ProcSignalReason::NotifyInterrupt) {
            st.notified[procno as usize].fetch_add(1, Ordering::SeqCst);
        }
        if CANCELLED.swap(false, Ordering::SeqCst) {
            st.cancelled[procno as usize].fetch_add(1, Ordering::SeqCst);
        }
        if take_pending(ProcSignalReason::Barrier) {
            if st.exit_on_barrier.load(Ordering::SeqCst) == procno + 1 {
                // Leave without absorbing: the exit callback frees the slot.
                pgipc_ipc::proc_exit(0);
            }
            let p = ps.process_proc_signal_barrier().unwrap();
            assert_ne!(p, BarrierProgress::UpToDate, "signalled for nothing");
        }
        let nap = if any_pending() { 5 } else { 1000 };
        latch.wait(Some(Duration::from_millis(nap))).unwrap();
    }
    panic!("participant {procno}: watchdog");
}

struct Kids(Vec<Child>);
impl Drop for Kids {
    fn drop(&mut self) {
        self.kill_all();
    }
}
impl Kids {
    fn kill_all(&mut self) {
        for k in &mut self.0 {
            let _ = k.kill();
            let _ = k.wait();
        }
    }
}

fn fail(kids: &mut Kids, msg: String) -> ! {
    kids.kill_all();
    panic!("{msg}");
}

fn wait_until(kids: &mut Kids, what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        if Instant::now() > deadline {
            fail(kids, format!("watchdog: {what}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What the steps share: the segment, the participants, and how many steps passed so far.
struct Fixture {
    _shm: Shmem,
    ps: ProcSignal,
    st: Shared<TestState>,
    kids: Kids,
    passed: usize,
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

fn start_participants() -> Fixture {
    let shm = Shmem::create_for_tests(1 << 20).expect("segment");
    let ps = shmem_init(&shm, SLOTS).expect("procsignal");
    let (st, _) = shm.init_struct::<TestState>("procsignal test").unwrap();
    let fd = shm.memfd().unwrap().as_raw_fd().to_string();
    let mut kids = Kids(
        (0..N)
            .map(|i| {
                Command::new(std::env::current_exe().unwrap())
                    .env("PGIPC_SHMEM_FD", &fd)
                    .env("PGIPC_PROCNO", i.to_string())
                    .spawn()
                    .expect("spawn")
            })
            .collect(),
    );
    wait_until(&mut kids, "participants ready", 20, || {
        st.ready.load(Ordering::SeqCst) == N as u32
    });
    Fixture {
        _shm: shm,
        ps,
        st,
        kids,
        passed: 0,
    }
}

/// One step of the sequence, over the fixture's pieces.
type Step = fn(&ProcSignal, &TestState, &mut Kids);

/// Runs step `n` (0-based) of the sequence, once steps 0..n have passed; a failed step kills the
/// participants (the later steps then fail for want of them).
fn step(n: usize, f: Step) {
    FIXTURE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if n == 0 {
            *slot = Some(start_participants());
        }
        let fx = slot
            .as_mut()
            .filter(|fx| fx.passed == n)
            .unwrap_or_else(|| panic!("step {n} runs only after steps 0..{n} passed"));
        /// Kills the participants if the step panics.
        struct OnPanic<'a>(&'a mut Kids);
        impl Drop for OnPanic<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.kill_all();
                }
            }
        }
        let guard = OnPanic(&mut fx.kids);
        f(&fx.ps, &fx.st, guard.0);
        drop(guard);
        fx.passed += 1;
    });
}

fn barriers_complete_only_after_every_participant_absorbed(
    ps: &ProcSignal,
    st: &TestState,
    kids: &mut Kids,
) {
    // 1. A barrier completes only after each of the 8 absorbed it (child 0 defers once each
    //    time, the others take procno ms).
    let t0 = Instant::now();
    for round in 1..=ROUNDS {
        let g = ps.emit_proc_signal_barrier(ProcSignalBarrierType::SmgrRelease);
        match ps.wait_for_proc_signal_barrier_until(g, Some(Duration::from_secs(20))) {
            Ok(true) => {}
            other => fail(kids, format!("round {round}: barrier wait {other:?}")),
        }
        for i in 0..N {
            let a = st.absorbed[i].load(Ordering::SeqCst);
            if a != round {
                fail(kids, format!("round {round}: child {i} absorbed {a} times"));
            }
        }
    }
    println!(
        "procsignal: {ROUNDS} barriers with {N} processes, each complete only after all absorbed \
         ({:.1} ms per barrier)",
        t0.elapsed().as_secs_f64() * 1e3 / f64::from(ROUNDS)
    );
}

fn reasons_reach_their_target_only(ps: &ProcSignal, st: &TestState, kids: &mut Kids) {
    // 2. A reason reaches exactly its target, with the target's latch set.
    for i in 0..N {
        let pid = st.pids[i].load(Ordering::SeqCst);
        ps.send_proc_signal(pid, ProcSignalReason::NotifyInterrupt, Some(i as u32))
            .unwrap();
        wait_until(kids, "notify delivered", 10, || {
            st.notified[i].load(Ordering::SeqCst) == 1
        });
    }
    ps.send_proc_signal(
        st.pids[3].load(Ordering::SeqCst),
        ProcSignalReason::NotifyInterrupt,
        None,
    )
    .unwrap();
    wait_until(kids, "notify by pid scan", 10, || {
        st.notified[3].load(Ordering::SeqCst) == 2
    });
    let wrong = ps.send_proc_signal(
        st.pids[4].load(Ordering::SeqCst),
        ProcSignalReason::NotifyInterrupt,
        Some(5),
    );
    assert!(
        matches!(wrong, Err(ProcSignalError::NoSuchProcess { .. })),
        "{wrong:?}"
    );
}

fn only_the_right_cancel_key_sends_sigint(ps: &ProcSignal, st: &TestState, kids: &mut Kids) {
    // 3. Cancel: a wrong key does nothing, the right key delivers SIGINT.
    let pid2 = st.pids[2].load(Ordering::SeqCst);
    let mut bad = key(2);
    bad[31] ^= 1;
    assert!(!ps.send_cancel_request(pid2, &bad));
    assert!(!ps.send_cancel_request(pid2, &key(2)[..4]));
    assert!(!ps.send_cancel_request(pid2, &key(3)));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        st.cancelled[2].load(Ordering::SeqCst),
        0,
        "wrong keys must not cancel"
    );
    assert!(ps.send_cancel_request(pid2, &key(2)));
    wait_until(kids, "cancel delivered", 10, || {
        st.cancelled[2].load(Ordering::SeqCst) == 1
    });
}

fn barrier_completes_when_a_participant_exits_meanwhile(
    ps: &ProcSignal,
    st: &TestState,
    kids: &mut Kids,
) {
    // 4. A barrier completes although a participant exits instead of absorbing it.
    st.exit_on_barrier.store(7 + 1, Ordering::SeqCst);
    let g = ps.emit_proc_signal_barrier(ProcSignalBarrierType::SmgrRelease);
    match ps.wait_for_proc_signal_barrier_until(g, Some(Duration::from_secs(20))) {
        Ok(true) => {}
        other => fail(kids, format!("barrier with an exiting process: {other:?}")),
    }
    let st7 = kids.0[7].wait().unwrap();
    assert!(st7.success());
    for i in 0..7 {
        assert_eq!(st.absorbed[i].load(Ordering::SeqCst), ROUNDS + 1);
    }
    assert_eq!(st.absorbed[7].load(Ordering::SeqCst), ROUNDS);
}

fn signalling_an_exited_process_is_an_error(ps: &ProcSignal, st: &TestState, kids: &mut Kids) {
    // 5. Signalling a process that exited is an error: cleanly (slot freed) or killed (slot
    //    left behind, kill says ESRCH).
    let pid7 = st.pids[7].load(Ordering::SeqCst);
    for procno in [None, Some(7)] {
        let r = ps.send_proc_signal(pid7, ProcSignalReason::NotifyInterrupt, procno);
        assert!(
            matches!(r, Err(ProcSignalError::NoSuchProcess { pid }) if pid == pid7),
            "{r:?}"
        );
    }
    let pid6 = st.pids[6].load(Ordering::SeqCst);
    kids.0[6].kill().unwrap();
    kids.0[6].wait().unwrap();
    assert_eq!(
        ps.slot_pid(6).unwrap(),
        pid6,
        "a killed process leaves its slot"
    );
    let r = ps.send_proc_signal(pid6, ProcSignalReason::NotifyInterrupt, Some(6));
    assert!(
        matches!(r, Err(ProcSignalError::NoSuchProcess { .. })),
        "{r:?}"
    );
}

fn remaining_participants_free_their_slots_at_exit(
    ps: &ProcSignal,
    st: &TestState,
    kids: &mut Kids,
) {
    st.stop.store(1, Ordering::SeqCst);
    for i in 0..6 {
        let pid = st.pids[i].load(Ordering::SeqCst);
        let _ = ps.send_proc_signal(pid, ProcSignalReason::NotifyInterrupt, None);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..6 {
        loop {
            match kids.0[i].try_wait().unwrap() {
                Some(s) if s.success() => break,
                Some(s) => fail(kids, format!("child {i} failed: {s}")),
                None if Instant::now() > deadline => fail(kids, "watchdog: exit".into()),
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        assert_eq!(ps.slot_pid(i as u32).unwrap(), 0, "slot {i} freed at exit");
    }
}

fn main() -> ExitCode {
    if let Ok(p) = std::env::var("PGIPC_PROCNO") {
        participant(p.parse().unwrap());
        return ExitCode::SUCCESS;
    }
    let steps: [(&str, Step); 6] = [
        (
            "barriers_complete_only_after_every_participant_absorbed",
            barriers_complete_only_after_every_participant_absorbed,
        ),
        (
            "reasons_reach_their_target_only",
            reasons_reach_their_target_only,
        ),
        (
            "only_the_right_cancel_key_sends_sigint",
            only_the_right_cancel_key_sends_sigint,
        ),
        (
            "barrier_completes_when_a_participant_exits_meanwhile",
            barrier_completes_when_a_participant_exits_meanwhile,
        ),
        (
            "signalling_an_exited_process_is_an_error",
            signalling_an_exited_process_is_an_error,
        ),
        (
            "remaining_participants_free_their_slots_at_exit",
            remaining_participants_free_their_slots_at_exit,
        ),
    ];
    let trials = steps
        .into_iter()
        .enumerate()
        .map(|(n, (name, f))| {
            Trial::test(name, move || {
                step(n, f);
                Ok(())
            })
        })
        .collect();
    let mut args = Arguments::from_args();
    // One test thread: the steps run in order on the main thread.
    args.test_threads = Some(1);
    let conclusion = libtest_mimic::run(&args, trials);
    // Whatever is still running is killed and reaped.
    FIXTURE.with(|cell| cell.borrow_mut().take());
    conclusion.exit_code()
}
