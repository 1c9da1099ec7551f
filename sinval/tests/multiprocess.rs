//! The invalidation queue with real processes: readers that keep up, a reader that stops
//! (catch-up signal, then reset, then resumes), and the catch-up daisy chain. The stalled
//! reader's scenario also checks the IPC statistics each side counts (messages written and
//! catch-up signals sent by the writer, the reset and the messages read by the reader).
//!
//! libtest-mimic on one test thread: each scenario is a trial on the main thread, the writer of a
//! segment of its own, and re-executed copies of this binary are the readers (they take their
//! role before the harness starts). Every wait has a deadline, a failed trial kills its readers,
//! and `alarm(90)` guards the writer itself, so a bug fails the test instead of hanging it.

use libtest_mimic::{Arguments, Trial};
use pgipc_ipc_stats::{Counter, STRIDE};
use pgipc_latch::{install_my_latch, Latch, LatchWait, OwnedLatch};
use pgipc_shmem::{Shared, Shmem, ShmemSafe};
use pgipc_sinval::{shmem_init, Received, SInvalBackend, SharedInval, SharedInvalidationMessage};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SLOTS: usize = 8;
const KEEP_UP_READERS: u32 = 3;
const TOTAL: u32 = 100_000;
const STALLED: u32 = 4;
const CHAIN: [u32; 2] = [5, 6];

#[repr(C)]
struct TestState {
    ready: AtomicU32,
    /// Tells the stalled reader to start reading.
    go: AtomicU32,
    /// Set once the writer has inserted the whole batch the chain readers are to catch up on.
    inserted: AtomicU32,
    acks: [AtomicU32; SLOTS],
    wakeups: [AtomicU32; SLOTS],
    resets: [AtomicU32; SLOTS],
    /// The IPC statistics blocks of the writer and of the stalled reader.
    writer_stats: [AtomicU64; STRIDE],
    stalled_stats: [AtomicU64; STRIDE],
}
// SAFETY: repr(C), atomics only, zero is valid.
unsafe impl ShmemSafe for TestState {}

fn msg(i: u32) -> SharedInvalidationMessage {
    SharedInvalidationMessage::relcache(5, i)
}

fn seq(m: &SharedInvalidationMessage) -> u32 {
    m.words()[1]
}

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// A reader's set-up: segment, proc number, latch, procsignal slot and handler, sinval slot.
fn join(
    procno: u32,
) -> (
    SInvalBackend,
    Shared<TestState>,
    &'static OwnedLatch<Box<Latch>>,
) {
    let fd: i32 = std::env::var("PGIPC_SHMEM_FD").unwrap().parse().unwrap();
    // SAFETY: the parent handed us this inherited descriptor; nothing else owns it here.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach");
    shm.set_proc_number(Some(procno));
    let ps = pgipc_procsignal::shmem_init(&shm, SLOTS).unwrap();
    let si = shmem_init(&shm, SLOTS).unwrap();
    si.set_proc_signal(ps.clone());
    let (st, _) = shm.init_struct::<TestState>("sinval test").unwrap();
    let latch: &'static OwnedLatch<Box<Latch>> = Box::leak(Box::new(OwnedLatch::new_local()));
    install_my_latch(latch.latch());
    pgipc_procsignal::install_handler().unwrap();
    ps.init_slot(procno, std::process::id() as i32, None)
        .unwrap();
    let b = si.shared_inval_backend_init(procno, false).unwrap();
    b.cleanup_on_shmem_exit().unwrap();
    st.ready.fetch_add(1, Ordering::SeqCst);
    (b, st, latch)
}

fn fail(msg: String) -> ! {
    eprintln!("{msg}");
    pgipc_ipc::proc_exit(3)
}

/// Polls without pause and checks every message is the next one.
fn keep_up_reader(procno: u32) {
    let (b, st, _latch) = join(procno);
    let mut buf = [SharedInvalidationMessage::default(); 64];
    let mut expect = 0u32;
    let until = deadline(60);
    while expect < TOTAL {
        match b.get_data_entries(&mut buf).unwrap() {
            Received::Reset => fail(format!("reader {procno}: reset at {expect}")),
            Received::Messages(0) => {
                if Instant::now() > until {
                    fail(format!("reader {procno}: watchdog at {expect}"));
                }
                std::thread::yield_now();
            }
            Received::Messages(n) => {
                for m in &buf[..n] {
                    if seq(m) != expect {
                        fail(format!("reader {procno}: got {} expected {expect}", seq(m)));
                    }
                    expect += 1;
                }
                st.acks[procno as usize].store(expect, Ordering::SeqCst);
            }
        }
    }
    pgipc_ipc::proc_exit(0);
}

/// Does not read until told to; counts catch-up wake-ups meanwhile.
fn stalled_reader(procno: u32) {
    let (b, st, latch) = join(procno);
    // SAFETY: the block is in the test segment, mapped until this process exits; only this
    // process counts into it.
    unsafe { pgipc_ipc_stats::set_my_block(st.stalled_stats.as_ptr()) };
    let until = deadline(60);
    while st.go.load(Ordering::SeqCst) == 0 {
        if Instant::now() > until {
            fail("stalled reader: watchdog".into());
        }
        latch.reset();
        if pgipc_procsignal::take_pending(pgipc_procsignal::ProcSignalReason::CatchupInterrupt) {
            st.wakeups[procno as usize].fetch_add(1, Ordering::SeqCst);
        }
        latch.wait(Some(Duration::from_millis(100))).unwrap();
    }
    let mut buf = [SharedInvalidationMessage::default(); 64];
    match b.get_data_entries(&mut buf).unwrap() {
        Received::Reset => st.resets[procno as usize].fetch_add(1, Ordering::SeqCst),
        other => fail(format!("stalled reader: expected a reset, got {other:?}")),
    };
    // From the current position on: exactly what the writer sends next (seq 1_000_000..).
    let mut expect = 1_000_000u32;
    while expect < 1_000_010 {
        match b.get_data_entries(&mut buf).unwrap() {
            Received::Reset => fail("stalled reader: second reset".into()),
            Received::Messages(0) => {
                if Instant::now() > until {
                    fail("stalled reader: watchdog after reset".into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Received::Messages(n) => {
                for m in &buf[..n] {
                    if seq(m) != expect {
                        fail(format!("after reset got {} expected {expect}", seq(m)));
                    }
                    expect += 1;
                }
            }
        }
        st.acks[procno as usize].store(expect, Ordering::SeqCst);
    }
    pgipc_ipc::proc_exit(0);
}

/// Reads only when woken by a catch-up signal, then passes the nudge on.
fn chain_reader(procno: u32) {
    let (b, st, latch) = join(procno);
    let until = deadline(60);
    let mut got = 0u32;
    while Instant::now() < until {
        latch.reset();
        let pending = pgipc_procsignal::any_pending();
        if pending {
            st.wakeups[procno as usize].fetch_add(1, Ordering::SeqCst);
            // Handle the interrupt only once the writer's batch is complete, as a busy backend
            // would: the writer's own cleanup signals mid-batch, and a reader that read only
            // the first part would be left below the signal threshold with no one to nudge it
            // (as in PostgreSQL, it would read the rest at its next transaction start).
            while st.inserted.load(Ordering::SeqCst) == 0 {
                if Instant::now() > until {
                    fail(format!("chain reader {procno}: the writer never finished"));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            b.receive_shared_invalid_messages(
                |_| got += 1,
                || {
                    st.resets[procno as usize].fetch_add(1, Ordering::SeqCst);
                },
            )
            .unwrap();
            st.acks[procno as usize].store(got, Ordering::SeqCst);
        }
        if st.go.load(Ordering::SeqCst) != 0 {
            pgipc_ipc::proc_exit(0);
        }
        if latch.wait(Some(Duration::from_millis(200))).unwrap() == LatchWait::TimedOut {
            continue;
        }
    }
    fail(format!("chain reader {procno}: watchdog"));
}

fn spawn(fd: &str, role: &str, procno: u32) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("PGIPC_SHMEM_FD", fd)
        .env("PGIPC_ROLE", role)
        .env("PGIPC_PROCNO", procno.to_string())
        .spawn()
        .expect("spawn")
}

/// Readers killed and reaped when dropped, so that a failed trial leaves none behind.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for k in &mut self.0 {
            let _ = k.kill();
            let _ = k.wait();
        }
    }
}

impl std::ops::Deref for Kids {
    type Target = Vec<Child>;
    fn deref(&self) -> &Vec<Child> {
        &self.0
    }
}

impl std::ops::DerefMut for Kids {
    fn deref_mut(&mut self) -> &mut Vec<Child> {
        &mut self.0
    }
}

fn wait_for(kids: &mut [Child], what: &str, mut cond: impl FnMut() -> bool) {
    let until = deadline(30);
    while !cond() {
        if Instant::now() > until {
            kids.iter_mut().for_each(|k| drop(k.kill()));
            panic!("watchdog: {what}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn reap(kids: &mut [Child]) {
    let until = deadline(30);
    for i in 0..kids.len() {
        loop {
            if let Some(s) = kids[i].try_wait().unwrap() {
                if !s.success() {
                    kids.iter_mut().for_each(|k| drop(k.kill()));
                    panic!("reader failed: {s}");
                }
                break;
            }
            if Instant::now() > until {
                kids.iter_mut().for_each(|k| drop(k.kill()));
                panic!("watchdog: readers did not exit");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn insert(si: &SharedInval, r: std::ops::Range<u32>) {
    let v: Vec<_> = r.map(msg).collect();
    si.insert_data_entries(&v);
}

/// The writer's side of a fresh segment: procsignal and sinval set up, the test state, and the
/// memfd's descriptor number for the readers.
struct Writer {
    shm: Shmem,
    si: SharedInval,
    st: Shared<TestState>,
    fd: String,
}

fn writer() -> Writer {
    let shm = Shmem::create_for_tests_with(1 << 21, SLOTS).expect("segment");
    shm.set_proc_number(Some(0));
    let ps = pgipc_procsignal::shmem_init(&shm, SLOTS).unwrap();
    let si = shmem_init(&shm, SLOTS).unwrap();
    si.set_proc_signal(ps);
    let (st, _) = shm.init_struct::<TestState>("sinval test").unwrap();
    let fd = shm.memfd().unwrap().as_raw_fd().to_string();
    Writer { shm, si, st, fd }
}

fn readers_that_keep_up_get_everything_in_order() {
    let Writer {
        shm: _shm,
        si,
        st,
        fd,
    } = writer();
    // 1. Readers that keep up get every message, in order, without a reset.
    let mut kids = Kids(
        (1..=KEEP_UP_READERS)
            .map(|p| spawn(&fd, "keep_up", p))
            .collect(),
    );
    wait_for(&mut kids, "readers ready", || {
        st.ready.load(Ordering::SeqCst) == KEEP_UP_READERS
    });
    let t = Instant::now();
    for base in (0..TOTAL).step_by(50) {
        // Stay within half a ring of the slowest reader, so keeping up is possible.
        wait_for(&mut kids, "readers keep up", || {
            (1..=KEEP_UP_READERS)
                .all(|p| st.acks[p as usize].load(Ordering::SeqCst) + 2048 >= base + 50)
        });
        insert(&si, base..(base + 50).min(TOTAL));
    }
    reap(&mut kids);
    println!(
        "sinval: {KEEP_UP_READERS} readers that keep up got all {TOTAL} messages in order ({:.0} ms)",
        t.elapsed().as_secs_f64() * 1e3
    );
}

fn idle_reader_is_signalled_then_reset_then_resumes() {
    let Writer {
        shm: _shm,
        si,
        st,
        fd,
    } = writer();
    // 2. A reader that stops is signalled to catch up; still idle, it is reset; then it
    //    resumes from the current position. The writer never blocks on it.
    // SAFETY: the block is in the writer's segment, mapped until the end of this trial, where
    // counting stops; no other process counts into it.
    unsafe { pgipc_ipc_stats::set_my_block(st.writer_stats.as_ptr()) };
    let mut kids = Kids(vec![spawn(&fd, "stalled", STALLED)]);
    wait_for(&mut kids, "stalled reader ready", || {
        st.ready.load(Ordering::SeqCst) == 1
    });
    insert(&si, 0..2400);
    wait_for(&mut kids, "catch-up signal", || {
        st.wakeups[STALLED as usize].load(Ordering::SeqCst) >= 1
    });
    let stalled_state = si.proc_state(STALLED).unwrap();
    assert!(stalled_state.signaled());
    assert!(!stalled_state.reset_state());
    let t = Instant::now();
    insert(&si, 2400..50_000);
    let writer_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(stalled_state.reset_state(), "laggard marked for reset");
    assert_eq!(
        st.wakeups[STALLED as usize].load(Ordering::SeqCst),
        1,
        "signalled once"
    );
    st.go.store(1, Ordering::SeqCst);
    wait_for(&mut kids, "reset observed", || {
        st.resets[STALLED as usize].load(Ordering::SeqCst) == 1
    });
    insert(&si, 1_000_000..1_000_010);
    reap(&mut kids);
    pgipc_ipc_stats::clear_my_block();
    let stat = |block: &[AtomicU64; STRIDE], c: Counter| block[c as usize].load(Ordering::SeqCst);
    assert_eq!(
        (
            stat(&st.writer_stats, Counter::SinvalWrites),
            stat(&st.writer_stats, Counter::SinvalCatchups),
            stat(&st.writer_stats, Counter::SinvalReads),
        ),
        (50_010, 1, 0),
        "the writer: every message written, one catch-up signal, nothing read"
    );
    assert_eq!(
        (
            stat(&st.stalled_stats, Counter::SinvalResets),
            stat(&st.stalled_stats, Counter::SinvalReads),
            stat(&st.stalled_stats, Counter::SinvalWrites),
        ),
        (1, 10, 0),
        "the stalled reader: one reset, then the ten messages sent after it"
    );
    println!(
        "sinval: idle reader signalled once, then reset, then resumed at the current position; \
         writer passed it with 47600 messages in {writer_ms:.1} ms"
    );
}

fn catch_up_signal_is_passed_from_reader_to_reader() {
    let Writer {
        shm: _shm,
        si,
        st,
        fd,
    } = writer();
    // 3. The catch-up nudge is passed from reader to reader (daisy chain): the writer stops
    //    after one cleanup signalled one of them, yet both catch up without a reset.
    let mut kids = Kids(CHAIN.iter().map(|p| spawn(&fd, "chain", *p)).collect());
    wait_for(&mut kids, "chain readers ready", || {
        st.ready.load(Ordering::SeqCst) == 2
    });
    insert(&si, 0..2400);
    st.inserted.store(1, Ordering::SeqCst);
    wait_for(&mut kids, "both chain readers caught up", || {
        CHAIN
            .iter()
            .all(|p| st.acks[*p as usize].load(Ordering::SeqCst) == 2400)
    });
    for p in CHAIN {
        assert_eq!(st.resets[p as usize].load(Ordering::SeqCst), 0);
        assert_eq!(
            st.wakeups[p as usize].load(Ordering::SeqCst),
            1,
            "reader {p} woken once"
        );
    }
    st.go.store(1, Ordering::SeqCst);
    let pids: Vec<i32> = kids.iter().map(|k| k.id() as i32).collect();
    for pid in pids {
        // SAFETY: plain kill(2) of our own child to wake it; its handler only sets its latch.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }
    reap(&mut kids);
    assert_eq!(si.header().num_procs(), 0, "every reader left");
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("PGIPC_ROLE") {
        let procno: u32 = std::env::var("PGIPC_PROCNO").unwrap().parse().unwrap();
        match role.as_str() {
            "keep_up" => keep_up_reader(procno),
            "stalled" => stalled_reader(procno),
            _ => chain_reader(procno),
        }
        return ExitCode::SUCCESS;
    }
    // SAFETY: alarm only arms a timer; its default action ends this process if we hang.
    unsafe { libc::alarm(90) };
    let mut args = Arguments::from_args();
    // One test thread: the trials run one after the other on the main thread.
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test("readers_that_keep_up_get_everything_in_order", || {
            readers_that_keep_up_get_everything_in_order();
            Ok(())
        }),
        Trial::test("idle_reader_is_signalled_then_reset_then_resumes", || {
            idle_reader_is_signalled_then_reset_then_resumes();
            Ok(())
        }),
        Trial::test("catch_up_signal_is_passed_from_reader_to_reader", || {
            catch_up_signal_is_passed_from_reader_to_reader();
            Ok(())
        }),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
