//! Multi-process tests of wait event sets: wake-ups through epoll + signalfd across processes,
//! sockets and latches together, postmaster death, signal handlers, wait-event reporting.
//! Each case a libtest-mimic trial on the main thread (one test thread); children are
//! re-executed copies of this binary, dispatched before the harness starts; every wait has
//! a timeout and every child a watchdog.

mod common;

use common::{expect_success, pin, role, run_tests, spin_ns, wait_child, Kit, Rng};
use pgipc_latch::{install_my_latch, Latch, OwnedLatch, SleepMode};
use pgipc_waiteventset::{
    initialize_wait_event_support, postmaster_death, postmaster_is_alive, wait_latch,
    PostmasterDeathPipe, PostmasterDeathWatch, WaitEvent, WaitEventSet, WaitEvents,
};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const PING_PONGS: u64 = 100_000;
const STRESS_ROUNDS: u64 = 50_000;
const WAIT: Option<Duration> = Some(Duration::from_secs(10));
const WATCHDOG: Duration = Duration::from_secs(120);

fn main() -> std::process::ExitCode {
    initialize_wait_event_support().expect("wait event support");
    if let Some(r) = role() {
        let args: Vec<String> = std::env::args().collect();
        std::process::exit(child(&r, &args[1..]));
    }
    run_tests(&[
        ("ping_pong_with_a_socket_in_the_set", ping_pong),
        ("set_between_reset_and_epoll_wait_is_never_lost", stress),
        ("socket_event_and_latch_set_both_reported", socket_and_latch),
        (
            "latch_set_from_signal_handler_wakes_epoll_sleeper",
            signal_handler,
        ),
        (
            "wait_event_code_is_visible_to_other_processes",
            wait_event_report,
        ),
        ("pm_death_exit_latch_only_wait", || {
            pm_death("exit-futex", 1)
        }),
        ("pm_death_exit_wait_with_socket", || {
            pm_death("exit-epoll", 1)
        }),
        ("pm_death_reported_latch_only_wait", || {
            pm_death("report-futex", 3)
        }),
        ("pm_death_reported_wait_with_socket", || {
            pm_death("report-epoll", 3)
        }),
    ])
}

/// A set with the latch and an idle socket, so that it sleeps in epoll (signal mode).
fn epoll_set<'l>(latch: &'l OwnedLatch<&'l Latch>, idle: &'l UnixStream) -> WaitEventSet<'l> {
    let mut set = WaitEventSet::new(3).expect("set");
    set.add_latch(latch, 0).expect("add latch");
    set.add_socket(WaitEvents::SOCKET_READABLE, idle.as_fd(), 1)
        .expect("add socket");
    set
}

/// Waits until the latch is set, in `set`; false on timeout.
fn wait_set(set: &mut WaitEventSet<'_>) -> bool {
    let mut out = [WaitEvent::EMPTY; 2];
    let n = set.wait(WAIT, &mut out, 0).expect("wait");
    out[..n]
        .iter()
        .any(|e| e.events.contains(WaitEvents::LATCH_SET))
}

fn child(role: &str, args: &[String]) -> i32 {
    let kit: &'static Kit = Box::leak(Box::new(Kit::attach()));
    let a = &*kit.arena;
    let n: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(0);
    let (idle, _idle_peer) = UnixStream::pair().expect("socketpair");
    match role {
        "pong" => {
            pin(&[0]);
            let mine = OwnedLatch::own(&a.latches[1]).expect("own");
            let mut set = epoll_set(&mine, &idle);
            a.words[9].store(1, Ordering::SeqCst);
            for _ in 0..n {
                if !wait_set(&mut set) {
                    return 2;
                }
                mine.reset();
                a.words[0].fetch_add(1, Ordering::Relaxed);
                a.latches[0].set();
            }
            0
        }
        "stress" => {
            let mine = OwnedLatch::own(&a.latches[1]).expect("own");
            let mut set = epoll_set(&mine, &idle);
            a.words[9].store(1, Ordering::SeqCst);
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            for k in 1..=n {
                spin_ns(rng.next() % 20_000);
                a.words[1].store(k, Ordering::Relaxed);
                a.latches[0].set();
                loop {
                    mine.reset();
                    if a.words[2].load(Ordering::Relaxed) >= k {
                        break;
                    }
                    let mut out = [WaitEvent::EMPTY; 2];
                    if set.wait(WAIT, &mut out, 0).expect("wait") == 0 {
                        return 2;
                    }
                }
            }
            0
        }
        "sock-and-latch" => {
            let raw: i32 = args[0].parse().expect("fd");
            // SAFETY: the parent cleared close-on-exec on this socket for us; nothing else here
            // owns it.
            let mut s = unsafe { <UnixStream as std::os::fd::FromRawFd>::from_raw_fd(raw) };
            std::thread::sleep(Duration::from_millis(args[1].parse().unwrap_or(0)));
            s.write_all(b"x").expect("write");
            a.latches[0].set();
            0
        }
        "handler" => {
            let latch: &'static Latch = &a.latches[2];
            let mine = OwnedLatch::own(latch).expect("own");
            install_my_latch(latch);
            common::on_sigusr1_set_my_latch();
            let mut set = epoll_set(&mine, &idle);
            mine.reset();
            a.words[3].store(1, Ordering::SeqCst);
            if wait_set(&mut set) {
                0
            } else {
                3
            }
        }
        "report" => {
            pgipc_waiteventset::set_wait_event_slot(Some(&a.slots[0]));
            let mine = OwnedLatch::own(&a.latches[2]).expect("own");
            let ev = WaitEvents::LATCH_SET | WaitEvents::EXIT_ON_PM_DEATH;
            match wait_latch(Some(&mine), ev, WAIT, 0x0500_0007) {
                Ok(e) if e == WaitEvents::LATCH_SET => 0,
                _ => 3,
            }
        }
        "postmaster" => {
            let pipe = PostmasterDeathPipe::create().expect("pipe");
            let mut cmd = kit.command("pm-child", &[&args[0]]);
            pipe.configure_child(&mut cmd);
            let mut c = cmd.spawn().expect("spawn pm-child");
            // Live until killed (the test then reaps the orphan: it is the subreaper); if the
            // child ends first, report how.
            c.wait().map_or(101, |st| st.code().unwrap_or(102))
        }
        "pm-child" => pm_child(&args[0], &idle),
        _ => 100,
    }
}

fn pm_child(mode: &str, idle: &UnixStream) -> i32 {
    let watch = PostmasterDeathWatch::from_env()
        .expect("watch")
        .expect("started by a postmaster");
    let pm = watch.postmaster_pid();
    watch.install().expect("install watch");
    // "My latch", as in a server process: the death-signal handler sets it.
    let latch: &'static OwnedLatch<Box<Latch>> = Box::leak(Box::new(OwnedLatch::new_local()));
    install_my_latch(latch.latch());
    latch.reset();
    let alive = postmaster_is_alive();
    let armed = postmaster_death::death_signal_armed();
    println!("ready {} {pm} {alive} {armed}", std::process::id());
    let _ = std::io::stdout().flush();
    let exit = mode.starts_with("exit");
    let died = if mode.ends_with("futex") {
        let ev = WaitEvents::LATCH_SET
            | if exit {
                WaitEvents::EXIT_ON_PM_DEATH
            } else {
                WaitEvents::POSTMASTER_DEATH
            };
        match wait_latch(Some(latch), ev, Some(Duration::from_secs(30)), 0) {
            Ok(e) => e.contains(WaitEvents::POSTMASTER_DEATH),
            Err(_) => false,
        }
    } else {
        let mut set = WaitEventSet::new(3).expect("set");
        set.add_latch(latch, 0).expect("latch");
        set.add_socket(WaitEvents::SOCKET_READABLE, idle.as_fd(), 0)
            .expect("socket");
        set.add_postmaster_death(exit, 0).expect("pm death");
        let mut out = [WaitEvent::EMPTY; 3];
        let n = set
            .wait(Some(Duration::from_secs(30)), &mut out, 0)
            .expect("wait");
        out[..n]
            .iter()
            .any(|e| e.events == WaitEvents::POSTMASTER_DEATH)
    };
    if died {
        3
    } else {
        10
    }
}

fn ping_pong() -> Result<(), String> {
    pin(&[0]);
    let kit = Kit::create();
    let a = &*kit.arena;
    let (idle, _p) = UnixStream::pair().map_err(|e| e.to_string())?;
    let mine = OwnedLatch::own(&a.latches[0]).map_err(|e| e.to_string())?;
    let mut set = epoll_set(&mine, &idle);
    let mut c = kit.spawn("pong", &[&PING_PONGS.to_string()]);
    kit.wait_word(9)?;
    for i in 0..PING_PONGS {
        a.latches[1].set();
        if !wait_set(&mut set) {
            return Err(format!("no answer to ping {i}"));
        }
        mine.reset();
    }
    expect_success(&mut c, WATCHDOG)?;
    match a.words[0].load(Ordering::SeqCst) {
        PING_PONGS => Ok(()),
        got => Err(format!("{got} pongs")),
    }
}

fn stress() -> Result<(), String> {
    pin(&[0, 1][..common::ncpus().min(2)]);
    let kit = Kit::create();
    let a = &*kit.arena;
    let (idle, _p) = UnixStream::pair().map_err(|e| e.to_string())?;
    let mine = OwnedLatch::own(&a.latches[0]).map_err(|e| e.to_string())?;
    let mut set = epoll_set(&mine, &idle);
    let mut c = kit.spawn("stress", &[&STRESS_ROUNDS.to_string()]);
    kit.wait_word(9)?;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for k in 1..=STRESS_ROUNDS {
        loop {
            mine.reset();
            if a.words[1].load(Ordering::Relaxed) >= k {
                break;
            }
            let mut out = [WaitEvent::EMPTY; 2];
            if set.wait(WAIT, &mut out, 0).map_err(|e| e.to_string())? == 0 {
                return Err(format!("lost wake-up in round {k}"));
            }
        }
        spin_ns(rng.next() % 20_000);
        a.words[2].store(k, Ordering::Relaxed);
        a.latches[1].set();
    }
    expect_success(&mut c, WATCHDOG)
}

fn socket_and_latch() -> Result<(), String> {
    let kit = Kit::create();
    let a = &*kit.arena;
    let mine = OwnedLatch::own(&a.latches[0]).map_err(|e| e.to_string())?;
    for delay_ms in ["0", "30"] {
        mine.reset();
        let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
        let mut set = WaitEventSet::new(2).map_err(|e| e.to_string())?;
        set.add_latch(&mine, 100).map_err(|e| e.to_string())?;
        set.add_socket(WaitEvents::SOCKET_READABLE, ours.as_fd(), 200)
            .map_err(|e| e.to_string())?;
        let raw = theirs.as_raw_fd();
        let mut cmd = kit.command("sock-and-latch", &[&raw.to_string(), delay_ms]);
        // SAFETY: only fcntl between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut c = common::Proc(cmd.spawn().map_err(|e| e.to_string())?);
        drop(theirs);
        if delay_ms == "0" {
            // Both arrive before we wait: one wait reports both.
            expect_success(&mut c, WATCHDOG)?;
        }
        let mut seen = WaitEvents::NONE;
        let t = Instant::now();
        while !seen.contains(WaitEvents::LATCH_SET | WaitEvents::SOCKET_READABLE) {
            let mut out = [WaitEvent::EMPTY; 4];
            let n = set.wait(WAIT, &mut out, 0).map_err(|e| e.to_string())?;
            for e in &out[..n] {
                let expect = if e.events == WaitEvents::LATCH_SET {
                    100
                } else {
                    200
                };
                if e.user_data != expect {
                    return Err(format!("{e:?}"));
                }
                seen |= e.events;
            }
            if delay_ms == "0"
                && !seen.contains(WaitEvents::LATCH_SET | WaitEvents::SOCKET_READABLE)
            {
                return Err(format!("one wait saw only {seen:?}"));
            }
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!("saw only {seen:?}"));
            }
        }
        expect_success(&mut c, WATCHDOG)?;
    }
    Ok(())
}

fn signal_handler() -> Result<(), String> {
    common::signal_wakes_sleeper("handler", SleepMode::Signal)
}

fn wait_event_report() -> Result<(), String> {
    let kit = Kit::create();
    let a = &*kit.arena;
    let mut c = kit.spawn("report", &[]);
    let t = Instant::now();
    while a.slots[0].load(Ordering::SeqCst) != 0x0500_0007 {
        if t.elapsed() > Duration::from_secs(10) {
            return Err("wait event never reported".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    a.latches[2].set();
    expect_success(&mut c, WATCHDOG)?;
    match a.slots[0].load(Ordering::SeqCst) {
        0 => Ok(()),
        v => Err(format!("slot left at {v:#x}")),
    }
}

fn pm_death(mode: &str, want_code: i32) -> Result<(), String> {
    // Become the subreaper so that the orphaned child is re-parented to us and we can reap it.
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let kit = Kit::create();
    let mut pm = common::Proc(
        kit.command("postmaster", &[mode])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?,
    );
    let out = pm.0.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 5 || f[0] != "ready" {
        return Err(format!("child said {line:?}"));
    }
    let cpid: i32 = f[1].parse().map_err(|_| "pid")?;
    if f[2] != pm.id().to_string() || f[3] != "true" || f[4] != "true" {
        return Err(format!("child state: {line:?} (postmaster {})", pm.id()));
    }
    std::thread::sleep(Duration::from_millis(50)); // let it fall asleep
    pm.0.kill().map_err(|e| e.to_string())?;
    let t = Instant::now();
    let _ = wait_child(&mut pm, WATCHDOG);
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(cpid);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => {
                let e = t.elapsed();
                if code != want_code {
                    return Err(format!("exit code {code}, want {want_code}"));
                }
                if e > Duration::from_secs(1) {
                    return Err(format!("exited after {e:?}"));
                }
                return Ok(());
            }
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => {}
            Ok(other) => return Err(format!("{other:?}")),
            Err(e) => return Err(e.to_string()),
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            return Err("child did not exit after postmaster death".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
