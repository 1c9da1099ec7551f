//! Multi-process scenarios for the PGPROC table and the ProcArray.
//!
//! `harness = false` with libtest-mimic on one test thread: each scenario is a trial run on the
//! main thread, the "postmaster" (no other threads), and this binary re-executed with
//! `PGIPC_PA_ROLE` set is every child (it takes its role before the harness starts). The segment
//! is a memfd inherited by the children (FD_CLOEXEC cleared, number in `PGIPC_PA_FD`). Every
//! scenario has a watchdog that kills the children and fails if they do not finish in time, and
//! a failed scenario kills its children.
//!
//! 1. `snapshots`: writers run many short transactions (top-level xid, sometimes subxids,
//!    sometimes a snapshot of their own) while readers take snapshots continuously. Every
//!    snapshot is checked against a ground-truth log in the segment:
//!    * every xid in `xip`/`subxip` had not finished ending before the snapshot started;
//!    * every xid below `xmax` that is not listed (xmin included) had started ending before the
//!      snapshot finished;
//!    * `xmax` is past every xid whose end had completed before the snapshot started.
//! 2. `exhaustion`: with `max_connections = 2`, a third backend gets 53300 and the free lists
//!    stay as they were.
//! 3. `sigkill`: a backend killed with SIGKILL in the middle of a transaction leaves its slot;
//!    `cleanup_dead_process` reclaims it and a new backend gets it.
//! 4. `wakeup`: a backend and an auxiliary process sleep on their PGPROC latches
//!    (`wait_for_signal`) until the parent wakes them with `proc_send_signal`.

use libtest_mimic::{Arguments, Trial};
use pgipc_proc::{BackendType, FreeList, ProcConfig};
use pgipc_procarray::{EndPath, ProcArray, Reclaim, Snapshot};
use pgipc_shmem::Shmem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROLE: &str = "PGIPC_PA_ROLE";
const FD: &str = "PGIPC_PA_FD";
const CFG: &str = "PGIPC_PA_MAXCONN";
/// Xids the ground-truth log can hold; writers stop before reaching it.
const LOG_XIDS: usize = 1 << 19;
/// How far below xmax each snapshot's unlisted xids are checked.
const WINDOW: u32 = 1024;
const WRITERS: usize = 3;
const READERS: usize = 2;
const RUN_FOR: Duration = Duration::from_millis(2500);

/// Scenario control block, in the segment.
#[repr(C)]
struct Ctl {
    seq: AtomicU64,
    stop: AtomicU32,
    ready: AtomicU32,
    max_ended: AtomicU32,
    violations: AtomicU32,
    snapshots: AtomicU64,
    reused: AtomicU64,
    txns: AtomicU64,
    subxids: AtomicU64,
    victim_xid: AtomicU32,
    direct: AtomicU64,
    leaders: AtomicU64,
    led: AtomicU64,
    followers: AtomicU64,
}
// SAFETY: repr(C), atomics only, zero valid, no pointers.
unsafe impl pgipc_shmem::ShmemSafe for Ctl {}

fn cfg(max_connections: u32) -> ProcConfig {
    ProcConfig {
        max_connections,
        autovacuum_worker_slots: 1,
        max_worker_processes: 1,
        max_wal_senders: 1,
        max_prepared_xacts: 0,
    }
}

struct Env {
    shmem: Shmem,
    pa: ProcArray,
    ctl: pgipc_shmem::Shared<Ctl>,
    end_start: pgipc_shmem::Shared<[AtomicU64]>,
    end_done: pgipc_shmem::Shared<[AtomicU64]>,
}

fn open(shmem: Shmem, c: &ProcConfig) -> Env {
    pgipc_proc::shmem_init(&shmem, c).unwrap();
    let pa = pgipc_procarray::shmem_init(&shmem, c).unwrap();
    let (ctl, _) = shmem.init_struct::<Ctl>("test control").unwrap();
    let (end_start, _) = shmem
        .init_slice::<AtomicU64>("test end_start", LOG_XIDS)
        .unwrap();
    let (end_done, _) = shmem
        .init_slice::<AtomicU64>("test end_done", LOG_XIDS)
        .unwrap();
    Env {
        shmem,
        pa,
        ctl,
        end_start,
        end_done,
    }
}

// ---------------------------------------------------------------- children

fn child(role: &str) -> ! {
    let fd: i32 = std::env::var(FD).unwrap().parse().unwrap();
    // SAFETY: the parent left this descriptor open for us and nothing else in this process
    // owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let maxconn: u32 = std::env::var(CFG).unwrap().parse().unwrap();
    let env = open(Shmem::attach_fd(fd).unwrap(), &cfg(maxconn));
    let code = match role {
        "writer" => writer(&env),
        "reader" => reader(&env),
        "holder" => holder(&env),
        "extra" => extra(&env),
        "victim" => victim(&env),
        "reuser" => reuser(&env),
        "sleeper" => sleeper(&env, false),
        "aux" => sleeper(&env, true),
        other => panic!("unknown role {other}"),
    };
    pgipc_ipc::proc_exit(code)
}

fn join(env: &Env) -> pgipc_proc::MyProc {
    let me = pgipc_proc::init_process(env.pa.procs(), BackendType::Backend).unwrap();
    env.pa.init_process_phase2(&me).unwrap();
    me
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Takes one snapshot as `procno` and checks it against the log; `mine` are this process's own
/// running xids (never listed, not checked). Returns the number of violations.
fn take_and_check(env: &Env, procno: u32, snap: &mut Snapshot, mine: &[u32]) -> u32 {
    let c = &env.ctl;
    let m0 = c.max_ended.load(Ordering::SeqCst);
    let s0 = c.seq.fetch_add(1, Ordering::SeqCst);
    env.pa.get_snapshot_data(procno, snap).unwrap();
    let s1 = c.seq.fetch_add(1, Ordering::SeqCst);
    c.snapshots.fetch_add(1, Ordering::Relaxed);
    if snap.reused {
        c.reused.fetch_add(1, Ordering::Relaxed);
    }
    let mut bad = 0;
    let mut fail = |what: String| {
        if bad == 0 {
            eprintln!(
                "VIOLATION (pid {}): {what}; xmin {} xmax {} xip {:?}",
                std::process::id(),
                snap.xmin,
                snap.xmax,
                snap.xip
            );
        }
        bad += 1;
    };
    if m0 != 0 && m0 >= snap.xmax {
        fail(format!(
            "xmax {} not past {m0}, which had ended before the snapshot",
            snap.xmax
        ));
    }
    if snap.suboverflowed {
        fail("suboverflowed without any overflow".into());
    }
    let listed: std::collections::HashSet<u32> =
        snap.xip.iter().chain(&snap.subxip).copied().collect();
    for &x in &snap.xip {
        if x < snap.xmin || x >= snap.xmax {
            fail(format!("xip entry {x} outside [xmin, xmax)"));
        }
    }
    // (subxip may hold subxids at or past xmax: a listed transaction's later subtransactions.)
    for &x in &listed {
        let done = env.end_done[x as usize].load(Ordering::SeqCst);
        if done != 0 && done < s0 {
            fail(format!(
                "listed xid {x} had finished ending at {done}, snapshot started at {s0}"
            ));
        }
    }
    let lo = snap.xmax.saturating_sub(WINDOW).max(3);
    for x in lo..snap.xmax {
        if listed.contains(&x) || mine.contains(&x) {
            continue;
        }
        let start = env.end_start[x as usize].load(Ordering::SeqCst);
        if start == 0 || start > s1 {
            let below = if x < snap.xmin { " (below xmin)" } else { "" };
            fail(format!("unlisted xid {x}{below} had not started ending (end_start {start}, snapshot ended at {s1})"));
        }
    }
    if bad > 0 {
        c.violations.fetch_add(bad, Ordering::SeqCst);
    }
    bad
}

fn writer(env: &Env) -> i32 {
    let me = join(env);
    let n = me.proc_number();
    let c = &env.ctl;
    c.ready.fetch_add(1, Ordering::SeqCst);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut snap = Snapshot::new();
    let mut mine = Vec::with_capacity(4);
    while c.stop.load(Ordering::Relaxed) == 0 {
        mine.clear();
        let top = env.pa.assign_transaction_id(n, false).unwrap();
        mine.push(top);
        // Near the end of the log: end this one (logged as usual) and stop everyone.
        let full = top as usize >= LOG_XIDS - 64;
        let r = rng.next();
        if !full && r % 5 == 0 {
            for _ in 0..(r >> 8) % 3 + 1 {
                mine.push(env.pa.assign_transaction_id(n, true).unwrap());
                c.subxids.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !full && (r >> 16) % 4 == 0 {
            // Violations are counted in the segment; the parent stops the run.
            take_and_check(env, n, &mut snap, &mine);
        }
        let latest = *mine.iter().max().unwrap();
        let e = c.seq.fetch_add(1, Ordering::SeqCst);
        for &x in &mine {
            env.end_start[x as usize].store(e, Ordering::SeqCst);
        }
        match env.pa.end_transaction(n, latest).unwrap() {
            EndPath::Direct => c.direct.fetch_add(1, Ordering::Relaxed),
            EndPath::GroupLeader { members } => {
                c.led.fetch_add(u64::from(members), Ordering::Relaxed);
                c.leaders.fetch_add(1, Ordering::Relaxed)
            }
            EndPath::GroupFollower => c.followers.fetch_add(1, Ordering::Relaxed),
            EndPath::NoXid => c.violations.fetch_add(1, Ordering::SeqCst).into(),
        };
        env.pa.clear_xmin(n).unwrap();
        let d = c.seq.fetch_add(1, Ordering::SeqCst);
        for &x in &mine {
            env.end_done[x as usize].store(d, Ordering::SeqCst);
        }
        c.max_ended.fetch_max(latest, Ordering::SeqCst);
        c.txns.fetch_add(1, Ordering::Relaxed);
        if full {
            c.stop.store(1, Ordering::SeqCst);
        }
    }
    0
}

fn reader(env: &Env) -> i32 {
    let me = join(env);
    let n = me.proc_number();
    let c = &env.ctl;
    c.ready.fetch_add(1, Ordering::SeqCst);
    let mut snap = Snapshot::new();
    while c.stop.load(Ordering::Relaxed) == 0 {
        take_and_check(env, n, &mut snap, &[]);
        env.pa.clear_xmin(n).unwrap();
    }
    0
}

fn holder(env: &Env) -> i32 {
    let _me = join(env);
    env.ctl.ready.fetch_add(1, Ordering::SeqCst);
    while env.ctl.stop.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    0
}

fn extra(env: &Env) -> i32 {
    match pgipc_proc::init_process(env.pa.procs(), BackendType::Backend) {
        Err(e) if e.sqlstate() == "53300" && e.to_string() == "sorry, too many clients already" => {
            53
        }
        Err(e) => {
            eprintln!("unexpected error: {e}");
            1
        }
        Ok(_) => 2,
    }
}

fn victim(env: &Env) -> i32 {
    let me = join(env);
    let x = env
        .pa
        .assign_transaction_id(me.proc_number(), false)
        .unwrap();
    env.ctl.victim_xid.store(x, Ordering::SeqCst);
    env.ctl.ready.fetch_add(1, Ordering::SeqCst);
    loop {
        // Sleep on the latch until killed.
        let _ = me.wait_for_signal(0);
    }
}

/// Sleeps on its PGPROC latch until the parent sets `stop` and signals it.
fn sleeper(env: &Env, aux: bool) -> i32 {
    let g = env.pa.procs();
    let me = if aux {
        pgipc_proc::init_auxiliary_process(g, BackendType::Checkpointer).unwrap()
    } else {
        pgipc_proc::init_process(g, BackendType::Backend).unwrap()
    };
    env.ctl.ready.fetch_add(1, Ordering::SeqCst);
    let mut wakeups = 0;
    while env.ctl.stop.load(Ordering::SeqCst) == 0 {
        me.wait_for_signal(0x0800_0042).unwrap();
        wakeups += 1;
    }
    // At least the wake-up that came with `stop`; spurious ones are allowed but not many.
    if (1..=3).contains(&wakeups) {
        0
    } else {
        eprintln!("sleeper woke {wakeups} times");
        1
    }
}

fn reuser(env: &Env) -> i32 {
    let me = join(env);
    println!("reuser got proc {}", me.proc_number());
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    i32::try_from(me.proc_number()).unwrap_or(-1) + 10
}

// ---------------------------------------------------------------- parent

struct Kids {
    kids: Vec<Child>,
    deadline: Instant,
}

impl Kids {
    fn new(limit: Duration) -> Self {
        Kids {
            kids: Vec::new(),
            deadline: Instant::now() + limit,
        }
    }

    fn spawn(&mut self, env: &Env, maxconn: u32, role: &str) -> u32 {
        let fd = env.shmem.memfd().expect("memfd-backed segment");
        let raw = fd.as_raw_fd();
        // SAFETY: clearing FD_CLOEXEC on a descriptor this process owns, so the child inherits it.
        let rc = unsafe { libc::fcntl(raw, libc::F_SETFD, 0) };
        assert_eq!(rc, 0);
        let c = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, role)
            .env(FD, raw.to_string())
            .env(CFG, maxconn.to_string())
            .spawn()
            .unwrap();
        let pid = c.id();
        self.kids.push(c);
        pid
    }

    fn check_deadline(&mut self, what: &str) {
        if Instant::now() > self.deadline {
            self.kill_all();
            panic!("watchdog: {what} did not finish in time");
        }
    }

    fn wait_for(&mut self, what: &str, cond: impl Fn() -> bool) {
        while !cond() {
            self.check_deadline(what);
            if let Some(i) = self
                .kids
                .iter_mut()
                .position(|k| matches!(k.try_wait(), Ok(Some(_))))
            {
                let st = self.kids[i].try_wait().unwrap();
                if st.is_some_and(|s| !s.success()) {
                    self.kill_all();
                    panic!("a child failed ({st:?}) while waiting for {what}");
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for child `pid` and returns its exit status.
    fn wait_pid(&mut self, pid: u32) -> std::process::ExitStatus {
        let i = self.kids.iter().position(|k| k.id() == pid).unwrap();
        loop {
            if let Some(st) = self.kids[i].try_wait().unwrap() {
                let _ = self.kids.remove(i).wait(); // already reaped by try_wait
                return st;
            }
            self.check_deadline("a child");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn wait_all(&mut self) {
        while let Some(k) = self.kids.first() {
            let pid = k.id();
            let st = self.wait_pid(pid);
            assert!(st.success(), "child {pid} exited with {st:?}");
        }
    }

    fn kill_all(&mut self) {
        for k in &mut self.kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        self.kids.clear();
    }
}

impl Drop for Kids {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn new_env(maxconn: u32, size: usize) -> Env {
    let c = cfg(maxconn);
    let shmem = Shmem::create_for_tests_with(size, c.all_proc_count().unwrap() as usize).unwrap();
    let env = open(shmem, &c);
    // Sequence numbers start at 1: 0 in the log means "not yet".
    env.ctl.seq.store(1, Ordering::SeqCst);
    env
}

fn lists(env: &Env) -> Vec<Vec<u32>> {
    FreeList::ALL
        .iter()
        .map(|l| env.pa.procs().free_list_members(*l))
        .collect()
}

fn assert_all_back(env: &Env, maxconn: u32) {
    assert!(
        env.pa.members().is_empty(),
        "ProcArray not empty: {:?}",
        env.pa.members()
    );
    env.pa.check_consistency().unwrap();
    let mut regular = lists(env)[0].clone();
    regular.sort_unstable();
    assert_eq!(
        regular,
        (0..maxconn).collect::<Vec<_>>(),
        "every backend slot is free again"
    );
    assert!(env
        .pa
        .procs()
        .xids()
        .iter()
        .all(|x| x.load(Ordering::Relaxed) == 0));
}

fn snapshots() {
    let maxconn = 8;
    let env = new_env(maxconn, 64 << 20);
    let mut kids = Kids::new(Duration::from_secs(40));
    for _ in 0..WRITERS {
        kids.spawn(&env, maxconn, "writer");
    }
    for _ in 0..READERS {
        kids.spawn(&env, maxconn, "reader");
    }
    let total = (WRITERS + READERS) as u32;
    kids.wait_for("children to join", || {
        env.ctl.ready.load(Ordering::SeqCst) == total
    });
    let start = Instant::now();
    kids.wait_for("the run", || {
        start.elapsed() > RUN_FOR || env.ctl.violations.load(Ordering::SeqCst) > 0
    });
    env.ctl.stop.store(1, Ordering::SeqCst);
    kids.wait_all();
    let c = &env.ctl;
    let (txns, snaps, reused, subs) = (
        c.txns.load(Ordering::Relaxed),
        c.snapshots.load(Ordering::Relaxed),
        c.reused.load(Ordering::Relaxed),
        c.subxids.load(Ordering::Relaxed),
    );
    println!(
        "snapshots: {txns} transactions ({subs} subxids), {snaps} snapshots checked ({reused} reused) in {:?}",
        start.elapsed()
    );
    let (direct, leaders, led, followers) = (
        c.direct.load(Ordering::Relaxed),
        c.leaders.load(Ordering::Relaxed),
        c.led.load(Ordering::Relaxed),
        c.followers.load(Ordering::Relaxed),
    );
    println!(
        "snapshots: ends: {direct} direct, {leaders} group leaders clearing {led}, {followers} followers"
    );
    assert_eq!(
        c.violations.load(Ordering::SeqCst),
        0,
        "snapshot violations"
    );
    assert_eq!(direct + led, txns, "every end recorded exactly once");
    assert_eq!(
        led,
        leaders + followers,
        "every follower was cleared by a leader"
    );
    assert!(
        leaders > 0,
        "the group xid-clearing path was never exercised"
    );
    assert!(
        txns > 1000 && snaps > 1000,
        "too little work to mean anything"
    );
    assert_all_back(&env, maxconn);
}

fn exhaustion() {
    let maxconn = 2;
    let env = new_env(maxconn, 24 << 20);
    let mut kids = Kids::new(Duration::from_secs(20));
    kids.spawn(&env, maxconn, "holder");
    kids.spawn(&env, maxconn, "holder");
    kids.wait_for("holders", || env.ctl.ready.load(Ordering::SeqCst) == 2);
    let before = lists(&env);
    assert!(before[0].is_empty());
    let pid = kids.spawn(&env, maxconn, "extra");
    let st = kids.wait_pid(pid);
    assert_eq!(st.code(), Some(53), "the third backend must get 53300");
    assert_eq!(
        lists(&env),
        before,
        "a refused backend leaves the free lists intact"
    );
    assert_eq!(env.pa.count_db_backends(0), 2);
    env.ctl.stop.store(1, Ordering::SeqCst);
    kids.wait_all();
    assert_all_back(&env, maxconn);
    println!("exhaustion: 3rd backend refused with 53300, lists intact, all slots back after exit");
}

fn sigkill() {
    let maxconn = 1;
    let env = new_env(maxconn, 24 << 20);
    let mut kids = Kids::new(Duration::from_secs(20));
    let pid = kids.spawn(&env, maxconn, "victim");
    kids.wait_for("the victim", || env.ctl.ready.load(Ordering::SeqCst) == 1);
    let x = env.ctl.victim_xid.load(Ordering::SeqCst);
    let procno = env
        .pa
        .backend_pid_get_proc(pid as i32)
        .expect("victim is a member");
    assert_eq!(env.pa.backend_xid_get_pid(x), Some(pid as i32));
    let count = env.pa.transam().xact_completion_count();
    // SAFETY: sending SIGKILL to our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let st = kids.wait_pid(pid);
    assert!(!st.success());
    // The slot is leaked until the postmaster cleans up.
    let p = env.pa.procs().proc(procno).unwrap();
    assert_eq!(p.pid.load(Ordering::SeqCst), pid as i32);
    assert_eq!(p.latch.owner_pid(), Some(pid as i32));
    assert!(lists(&env)[0].is_empty());
    // The postmaster never waits for an LWLock: while ProcArrayLock is busy it is told to
    // come back later.
    {
        let me = env.shmem.lwlock_proc();
        let lock = env.shmem.main_lwlock(pgipc_lwlock::MainLWLockId::ProcArray);
        let _busy = lock.acquire(&me, pgipc_lwlock::LWLockMode::Shared);
        assert_eq!(
            env.pa.cleanup_dead_process(pid as i32).unwrap(),
            Reclaim::WouldBlock
        );
    }
    assert_eq!(
        env.pa.cleanup_dead_process(pid as i32).unwrap(),
        Reclaim::Reclaimed(procno)
    );
    assert!(env.pa.members().is_empty());
    assert_eq!(lists(&env)[0], vec![procno]);
    assert_eq!(p.latch.owner_pid(), None);
    assert_eq!(
        env.pa.transam().xact_completion_count(),
        count + 1,
        "the dead xid counts as ended"
    );
    assert!(env.pa.transam().latest_completed_xid() >= u64::from(x));
    assert!(!env.pa.transaction_id_is_in_progress(procno, x).unwrap());
    // A new backend gets the same (only) slot, owns its latch and leaves cleanly.
    let pid2 = kids.spawn(&env, maxconn, "reuser");
    let st = kids.wait_pid(pid2);
    assert_eq!(st.code(), Some(10 + procno as i32));
    assert_all_back(&env, maxconn);
    println!("sigkill: slot {procno} of killed pid {pid} reclaimed and reused");
}

fn wakeup() {
    let maxconn = 2;
    let env = new_env(maxconn, 24 << 20);
    let mut kids = Kids::new(Duration::from_secs(20));
    let backend = kids.spawn(&env, maxconn, "sleeper");
    let aux = kids.spawn(&env, maxconn, "aux");
    kids.wait_for("sleepers", || env.ctl.ready.load(Ordering::SeqCst) == 2);
    let g = env.pa.procs();
    let b = (0..g.all_proc_count())
        .find(|&i| g.proc(i).unwrap().pid.load(Ordering::SeqCst) == backend as i32)
        .expect("the backend has a slot");
    let a = g
        .auxiliary_pid_get_proc(aux as i32)
        .expect("the aux process has an aux slot");
    assert!(a >= g.max_backends(), "aux slots come after MaxBackends");
    assert_eq!(
        env.pa.backend_pid_get_proc(aux as i32),
        None,
        "aux procs are not members"
    );
    // Both are asleep on their latches (their wait event says so) until signalled.
    kids.wait_for("the sleepers to sleep", || {
        g.wait_event_info(a).unwrap() == 0x0800_0042 && g.wait_event_info(b).unwrap() == 0x0800_0042
    });
    env.ctl.stop.store(1, Ordering::SeqCst);
    g.proc_send_signal(b).unwrap();
    g.proc_send_signal(a).unwrap();
    kids.wait_all();
    assert_eq!(
        g.auxiliary_pid_get_proc(aux as i32),
        None,
        "aux slot released at exit"
    );
    assert_all_back(&env, maxconn);
    assert_eq!(g.proc(a).unwrap().latch.owner_pid(), None);
    println!("wakeup: backend {b} and auxiliary {a} woken through their PGPROC latches");
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
    }
    let scenarios: [(&str, fn()); 4] = [
        ("exhaustion", exhaustion),
        ("sigkill", sigkill),
        ("wakeup", wakeup),
        ("snapshots", snapshots),
    ];
    let trials = scenarios
        .into_iter()
        .map(|(name, f)| {
            Trial::test(name, move || {
                f();
                Ok(())
            })
        })
        .collect();
    let mut args = Arguments::from_args();
    // One test thread: the scenarios run one after the other on the main thread.
    args.test_threads = Some(1);
    libtest_mimic::run(&args, trials).exit_code()
}
