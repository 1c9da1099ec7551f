//! The change-count protocol across processes: writer processes rewrite their Backend Status
//! Array entries as fast as they can while reader processes copy them with
//! [`BackendStatusArray::read_entry`] and check each copy's internal consistency. No copy
//! may mix two writes.
//!
//! Every write `n` of the writer owning slot `s` publishes, in one `report_activity`:
//! * state `active` for even `n`, `idle` for odd;
//! * the activity text `s<s> n<n> ` followed by `n % 300` copies of the letter `'a' + n % 26`
//!   (so a copy that took the start of one text and the rest of another is caught; the old
//!   text beyond the new terminator stays in the buffer);
//! * `state_change` equal to `query_start` (both set to the same clock reading).
//!
//! A reader checks all of that, that the slot in the text is the entry's own, and that `n`
//! never goes backwards for a slot between two of its reads. The processes are this binary
//! re-executed (`PGIPC_BS_ROLE`), sharing a memfd segment; nothing forks.
//!
//! Reads: `PGIPC_STATUS_STRESS_READS` in total (default 100 000, a few seconds);
//! `ci/status_stress.sh` runs 10 million. The counts printed are the ones the readers made.

use libtest_mimic::{Arguments, Failed, Trial};
use pgipc_backend_status::{BackendState, BackendStatusArray, StartInfo};
use pgipc_proc::BackendType;
use pgipc_shmem::Shmem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROLE: &str = "PGIPC_BS_ROLE";
const FD: &str = "PGIPC_BS_FD";
const ARG: &str = "PGIPC_BS_ARG";
const READS: &str = "PGIPC_STATUS_STRESS_READS";
const SLOTS: usize = 4;
const WRITERS: usize = 2;
const READERS: usize = 2;
const QUERY_SIZE: usize = 1024;

/// Scenario control block, in the segment.
#[repr(C)]
struct Ctl {
    stop: AtomicU32,
    writers_ready: AtomicU32,
    writes: AtomicU64,
    reads: AtomicU64,
    consistent: AtomicU64,
    torn: AtomicU64,
    empty: AtomicU64,
}
// SAFETY: repr(C), atomics only, zero is a valid value, no pointers.
unsafe impl pgipc_shmem::ShmemSafe for Ctl {}

fn open(shmem: &Shmem) -> (BackendStatusArray, pgipc_shmem::Shared<Ctl>) {
    let array = pgipc_backend_status::shmem_init(shmem, SLOTS, QUERY_SIZE).unwrap();
    let (ctl, _) = shmem.init_struct::<Ctl>("stress control").unwrap();
    (array, ctl)
}

fn text_of(slot: usize, n: u64) -> String {
    let c = char::from(b'a' + (n % 26) as u8);
    let mut t = format!("s{slot} n{n} ");
    t.extend(std::iter::repeat_n(c, (n % 300) as usize));
    t
}

/// Writer: owns slots `first` and `first + WRITERS`... (every WRITERS-th slot from `first`).
fn writer(array: &BackendStatusArray, ctl: &Ctl, first: usize) -> u8 {
    let slots: Vec<usize> = (first..SLOTS).step_by(WRITERS).collect();
    let writers: Vec<_> = slots
        .iter()
        .map(|&s| array.writer(s as u32, true).unwrap())
        .collect();
    for w in &writers {
        w.report_start(
            std::process::id() as i32,
            &StartInfo {
                backend_type: BackendType::Backend,
                state: BackendState::Starting,
                database_id: 5,
                datname: "postgres",
                user_id: 10,
                usename: "postgres",
                appname: "stress",
                client: None,
                client_hostname: "",
            },
        );
        w.report_activity(BackendState::Idle, Some(&text_of(w.slot(), 0)));
    }
    ctl.writers_ready.fetch_add(1, Ordering::SeqCst);
    let mut n = 0u64;
    while ctl.stop.load(Ordering::Relaxed) == 0 {
        n += 1;
        for w in &writers {
            let state = if n % 2 == 0 {
                BackendState::Running
            } else {
                BackendState::Idle
            };
            w.report_activity(state, Some(&text_of(w.slot(), n)));
        }
    }
    ctl.writes
        .fetch_add(n * writers.len() as u64, Ordering::SeqCst);
    0
}

/// Why a copy is not one write's: `None` if it is.
fn inconsistency(slot: usize, row: &pgipc_backend_status::BackendStatus) -> Option<String> {
    let Some(rest) = row.activity.strip_prefix(&format!("s{slot} n")) else {
        return Some(format!("slot {slot} shows {:?}", row.activity));
    };
    let Some((n, pad)) = rest.split_once(' ') else {
        return Some(format!("no sequence number: {:?}", row.activity));
    };
    let Ok(n) = n.parse::<u64>() else {
        return Some(format!("bad sequence number: {:?}", row.activity));
    };
    if pad != &text_of(slot, n)[format!("s{slot} n{n} ").len()..] {
        return Some(format!(
            "text of write {n} mixed with another: {:?}",
            row.activity
        ));
    }
    let want = if n % 2 == 0 && n > 0 {
        BackendState::Running
    } else {
        BackendState::Idle
    };
    if row.state != want {
        return Some(format!("write {n} with state {:?}", row.state));
    }
    if row.state_change != row.query_start {
        return Some(format!(
            "write {n}: state_change {:?} != query_start {:?}",
            row.state_change, row.query_start
        ));
    }
    None
}

fn reader(array: &BackendStatusArray, ctl: &Ctl, reads: u64) -> u8 {
    let mut last = [0u64; SLOTS];
    let (mut ok, mut torn, mut empty) = (0u64, 0u64, 0u64);
    for k in 0..reads {
        let slot = (k as usize) % SLOTS;
        let Some(row) = array.read_entry(slot, None) else {
            empty += 1;
            continue;
        };
        let mut bad = inconsistency(slot, &row);
        if bad.is_none() {
            let n: u64 = row.activity[format!("s{slot} n").len()..]
                .split(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if n < last[slot] {
                bad = Some(format!("slot {slot} went back from {} to {n}", last[slot]));
            }
            last[slot] = n;
        }
        match bad {
            None => ok += 1,
            Some(why) => {
                if torn < 5 {
                    eprintln!("TORN READ (pid {}): {why}", std::process::id());
                }
                torn += 1;
            }
        }
    }
    ctl.reads.fetch_add(reads, Ordering::SeqCst);
    ctl.consistent.fetch_add(ok, Ordering::SeqCst);
    ctl.torn.fetch_add(torn, Ordering::SeqCst);
    ctl.empty.fetch_add(empty, Ordering::SeqCst);
    0
}

fn child(role: &str) -> ! {
    let fd: i32 = std::env::var(FD).unwrap().parse().unwrap();
    // SAFETY: the parent left this descriptor open for us and nothing else here owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let shmem = Shmem::attach_fd(fd).unwrap();
    let (array, ctl) = open(&shmem);
    let arg: u64 = std::env::var(ARG).unwrap().parse().unwrap();
    let code = match role {
        "writer" => writer(&array, &ctl, arg as usize),
        "reader" => reader(&array, &ctl, arg),
        other => panic!("unknown role {other}"),
    };
    std::process::exit(i32::from(code))
}

/// The children of a run, killed if the run fails.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(shmem: &Shmem, role: &str, arg: u64) -> Child {
    let fd = shmem.memfd().expect("memfd-backed segment");
    let raw = fd.as_raw_fd();
    // SAFETY: clearing FD_CLOEXEC on a descriptor this process owns, so the child inherits it.
    let rc = unsafe { libc::fcntl(raw, libc::F_SETFD, 0) };
    assert_eq!(rc, 0);
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env(FD, raw.to_string())
        .env(ARG, arg.to_string())
        .spawn()
        .unwrap()
}

fn wait_all(kids: &mut Kids, from: usize, to: usize, deadline: Instant) -> Result<(), Failed> {
    for c in &mut kids.0[from..to] {
        loop {
            if let Some(st) = c.try_wait().map_err(|e| e.to_string())? {
                if !st.success() {
                    return Err(format!("child {} failed: {st}", c.id()).into());
                }
                break;
            }
            if Instant::now() > deadline {
                return Err("children did not finish in time".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

fn no_torn_reads() -> Result<(), Failed> {
    let total: u64 = std::env::var(READS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let size = pgipc_backend_status::shmem_size(SLOTS, QUERY_SIZE).unwrap() + (1 << 20);
    let shmem = Shmem::create_for_tests(size).unwrap();
    let (array, ctl) = open(&shmem);
    let started = Instant::now();
    // Generous: 10 million reads on a loaded machine.
    let deadline = started + Duration::from_secs(60 + total / 20_000);
    let mut kids = Kids(Vec::new());
    for w in 0..WRITERS {
        kids.0.push(spawn(&shmem, "writer", w as u64));
    }
    while ctl.writers_ready.load(Ordering::SeqCst) < WRITERS as u32 {
        if Instant::now() > deadline {
            return Err("writers did not start".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for r in 0..READERS {
        let share = total / READERS as u64 + u64::from(r == 0) * (total % READERS as u64);
        kids.0.push(spawn(&shmem, "reader", share));
    }
    wait_all(&mut kids, WRITERS, WRITERS + READERS, deadline)?;
    ctl.stop.store(1, Ordering::SeqCst);
    wait_all(&mut kids, 0, WRITERS, deadline)?;
    let (reads, ok, torn, empty, writes) = (
        ctl.reads.load(Ordering::SeqCst),
        ctl.consistent.load(Ordering::SeqCst),
        ctl.torn.load(Ordering::SeqCst),
        ctl.empty.load(Ordering::SeqCst),
        ctl.writes.load(Ordering::SeqCst),
    );
    println!(
        "{reads} reads by {READERS} reader processes of {SLOTS} entries while {WRITERS} writer \
         processes made {writes} writes in {:.2} s: {ok} consistent, {torn} torn, {empty} free",
        started.elapsed().as_secs_f64()
    );
    // The array is whole afterwards too.
    assert_eq!(array.read_current_status(None).len(), SLOTS);
    if torn != 0 {
        return Err(format!("{torn} torn reads").into());
    }
    if reads != total || ok + empty != reads || empty != 0 || writes < SLOTS as u64 {
        return Err(format!(
            "the run did not happen as planned: {reads} reads of {total}, {empty} free, {writes} writes"
        )
        .into());
    }
    Ok(())
}

/// The checker itself: one write's copy passes; copies mixing two writes' text, state or
/// timestamps do not.
fn the_checker_catches_mixed_copies() -> Result<(), Failed> {
    let shmem = Shmem::create_for_tests(1 << 20).unwrap();
    let (array, _) = open(&shmem);
    let w = array.writer(1, true).unwrap();
    w.report_start(
        std::process::id() as i32,
        &StartInfo {
            backend_type: BackendType::Backend,
            state: BackendState::Starting,
            database_id: 0,
            datname: "",
            user_id: 0,
            usename: "",
            appname: "",
            client: None,
            client_hostname: "",
        },
    );
    w.report_activity(BackendState::Running, Some(&text_of(1, 290)));
    let row = array.read_entry(1, None).unwrap();
    assert_eq!(inconsistency(1, &row), None);
    let (new, old) = (text_of(1, 290), text_of(1, 289));
    let mut cases = Vec::new();
    let mut r = row.clone();
    r.activity = format!("{}{}", &new[..12], &old[12..]);
    cases.push(("text", r));
    let mut r = row.clone();
    r.state = BackendState::Idle;
    cases.push(("state", r));
    let mut r = row.clone();
    r.state_change = r.query_start.map(|t| t - 1);
    cases.push(("timestamps", r));
    let mut r = row.clone();
    r.activity = text_of(2, 290);
    cases.push(("slot", r));
    for (what, r) in cases {
        if inconsistency(1, &r).is_none() {
            return Err(format!("a copy with mixed {what} passed").into());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
    }
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test(
            "the_checker_catches_mixed_copies",
            the_checker_catches_mixed_copies,
        ),
        Trial::test("no_torn_reads_across_processes", no_torn_reads),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
