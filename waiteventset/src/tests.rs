//! In-process tests (threads stand in for other processes; postmaster death and cross-process
//! wake-ups are in `tests/multiprocess.rs`).

use crate::*;
use pgipc_latch::{Latch, OwnedLatch};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const LONG: Option<Duration> = Some(Duration::from_secs(10));

fn leaked_latch() -> (&'static Latch, OwnedLatch<&'static Latch>) {
    let l: &'static Latch = Box::leak(Box::new(Latch::new()));
    (l, OwnedLatch::own(l).unwrap())
}

/// Waits once and returns the fired events as (pos, events, user_data).
fn fired(set: &mut WaitEventSet<'_>, timeout: Option<Duration>) -> Vec<(usize, WaitEvents, u64)> {
    let mut out = [WaitEvent::EMPTY; 8];
    let n = set.wait(timeout, &mut out, 0).unwrap();
    out[..n]
        .iter()
        .map(|e| (e.pos, e.events, e.user_data))
        .collect()
}

#[test]
fn socket_readable_reports_fd_and_user_data_then_close() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut set = WaitEventSet::new(4).unwrap();
    let pos = set
        .add_socket(
            WaitEvents::SOCKET_READABLE | WaitEvents::SOCKET_CLOSED,
            a.as_fd(),
            77,
        )
        .unwrap();
    assert_eq!(fired(&mut set, Some(Duration::ZERO)), vec![]);
    b.write_all(b"x").unwrap();
    let mut out = [WaitEvent::EMPTY; 2];
    assert_eq!(set.wait(LONG, &mut out, 0).unwrap(), 1);
    assert_eq!(out[0].pos, pos);
    assert_eq!(out[0].user_data, 77);
    assert_eq!(out[0].events, WaitEvents::SOCKET_READABLE);
    assert_eq!(out[0].fd, Some(std::os::fd::AsRawFd::as_raw_fd(&a)));
    (&a).read_exact(&mut [0u8; 1]).unwrap();
    drop(b);
    assert_eq!(
        fired(&mut set, LONG),
        vec![(
            pos,
            WaitEvents::SOCKET_READABLE | WaitEvents::SOCKET_CLOSED,
            77
        )]
    );
}

#[test]
fn writeable_and_modify() {
    let (a, _b) = UnixStream::pair().unwrap();
    let mut set = WaitEventSet::new(1).unwrap();
    let pos = set
        .add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), 1)
        .unwrap();
    assert_eq!(fired(&mut set, Some(Duration::ZERO)), vec![]);
    set.modify(pos, WaitEvents::SOCKET_WRITEABLE, None).unwrap();
    assert_eq!(
        fired(&mut set, LONG),
        vec![(pos, WaitEvents::SOCKET_WRITEABLE, 1)]
    );
    set.modify(pos, WaitEvents::NONE, None).unwrap(); // disabled
    assert_eq!(fired(&mut set, Some(Duration::from_millis(5))), vec![]);
}

#[test]
fn latch_set_before_wait_in_both_modes() {
    let (_l, owned) = leaked_latch();
    let (a, _b) = UnixStream::pair().unwrap();
    // futex mode (latch only)
    let mut set = WaitEventSet::new(2).unwrap();
    let lpos = set.add_latch(&owned, 5).unwrap();
    owned.set();
    assert_eq!(
        fired(&mut set, LONG),
        vec![(lpos, WaitEvents::LATCH_SET, 5)]
    );
    // epoll mode (latch + socket)
    set.add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), 6)
        .unwrap();
    assert_eq!(
        fired(&mut set, LONG),
        vec![(lpos, WaitEvents::LATCH_SET, 5)]
    );
    owned.reset();
    assert_eq!(fired(&mut set, Some(Duration::ZERO)), vec![]);
}

#[test]
fn latch_set_during_wait_from_another_thread_in_both_modes() {
    let (l, owned) = leaked_latch();
    let (a, _b) = UnixStream::pair().unwrap();
    for with_socket in [false, true] {
        let mut set = WaitEventSet::new(2).unwrap();
        set.add_latch(&owned, 0).unwrap();
        if with_socket {
            set.add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), 1)
                .unwrap();
        }
        for i in 0..300u32 {
            owned.reset();
            let t = std::thread::spawn(move || {
                if i % 2 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
                l.set()
            });
            let got = fired(&mut set, LONG);
            assert_eq!(got.len(), 1, "with_socket={with_socket} i={i}");
            assert_eq!(got[0].1, WaitEvents::LATCH_SET);
            t.join().unwrap();
        }
    }
}

#[test]
fn socket_and_latch_together_are_both_reported() {
    let (_l, owned) = leaked_latch();
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut set = WaitEventSet::new(2).unwrap();
    let lpos = set.add_latch(&owned, 10).unwrap();
    let spos = set
        .add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), 20)
        .unwrap();
    b.write_all(b"x").unwrap();
    owned.set();
    let mut got = fired(&mut set, LONG);
    got.sort_by_key(|g| g.0);
    assert_eq!(
        got,
        vec![
            (lpos, WaitEvents::LATCH_SET, 10),
            (spos, WaitEvents::SOCKET_READABLE, 20)
        ]
    );
    // With room for one event only, one is reported.
    let mut out = [WaitEvent::EMPTY; 1];
    assert_eq!(set.wait(LONG, &mut out, 0).unwrap(), 1);
}

#[test]
fn timeouts_fire_within_tolerance() {
    let (_l, owned) = leaked_latch();
    let (a, _b) = UnixStream::pair().unwrap();
    let mut latch_only = WaitEventSet::new(1).unwrap();
    latch_only.add_latch(&owned, 0).unwrap();
    let mut with_sock = WaitEventSet::new(2).unwrap();
    with_sock.add_latch(&owned, 0).unwrap();
    with_sock
        .add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), 0)
        .unwrap();
    let mut sock_only = WaitEventSet::new(1).unwrap();
    sock_only
        .add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), 0)
        .unwrap();
    for set in [&mut latch_only, &mut with_sock, &mut sock_only] {
        for ms in [0u64, 1, 30] {
            let t = Instant::now();
            assert_eq!(fired(set, Some(Duration::from_millis(ms))), vec![]);
            let e = t.elapsed();
            assert!(e >= Duration::from_millis(ms), "{e:?} < {ms} ms");
            assert!(e < Duration::from_millis(ms + 200), "{e:?} for {ms} ms");
        }
    }
}

#[test]
fn misuse_gives_postgres_errors() {
    let (_l, owned) = leaked_latch();
    let (_l2, owned2) = leaked_latch();
    let (a, _b) = UnixStream::pair().unwrap();
    let mut set = WaitEventSet::new(3).unwrap();
    let check = |r: Result<usize, WaitEventSetError>, text: &str| {
        assert_eq!(r.unwrap_err().to_string(), text);
    };
    check(
        set.add(WaitEvents::LATCH_SET, None, None, 0),
        "cannot wait on latch without a specified latch",
    );
    check(
        set.add(
            WaitEvents::LATCH_SET | WaitEvents::SOCKET_READABLE,
            Some(a.as_fd()),
            Some(owned.as_owner()),
            0,
        ),
        "latch events only support being set",
    );
    check(
        set.add(
            WaitEvents::SOCKET_READABLE,
            Some(a.as_fd()),
            Some(owned.as_owner()),
            0,
        ),
        "latch events only support being set",
    );
    check(
        set.add(WaitEvents::SOCKET_READABLE, None, None, 0),
        "cannot wait on socket event without a socket",
    );
    check(
        set.add(WaitEvents::POSTMASTER_DEATH, None, None, 0),
        "cannot wait for postmaster death: this process has no postmaster death watch",
    );
    check(
        set.add(WaitEvents::TIMEOUT, None, None, 0),
        "invalid wait event flags 0x8",
    );
    let lpos = set.add_latch(&owned, 0).unwrap();
    check(
        set.add_latch(&owned2, 0),
        "cannot wait on more than one latch",
    );
    assert_eq!(
        set.modify(lpos, WaitEvents::SOCKET_READABLE, None)
            .unwrap_err()
            .to_string(),
        "cannot modify latch event"
    );
    assert_eq!(
        set.modify(9, WaitEvents::SOCKET_READABLE, None)
            .unwrap_err(),
        WaitEventSetError::InvalidPosition { pos: 9, len: 1 }
    );
    set.add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), 0)
        .unwrap();
    set.add_socket(WaitEvents::SOCKET_WRITEABLE, a.as_fd(), 0)
        .unwrap_err(); // same fd twice: EEXIST
    let (c, _d) = UnixStream::pair().unwrap();
    set.add_socket(WaitEvents::SOCKET_WRITEABLE, c.as_fd(), 0)
        .unwrap();
    check(
        set.add_socket(WaitEvents::SOCKET_WRITEABLE, c.as_fd(), 0),
        "too many events in wait event set (capacity 3)",
    );
}

#[test]
fn closed_fd_is_an_error_value() {
    let mut set = WaitEventSet::new(1).unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    // A high descriptor number, so that other test threads (which get the lowest free numbers)
    // do not reuse it between our close and the add.
    let a2 = rustix::io::fcntl_dupfd_cloexec(&a, 900).unwrap();
    let raw = std::os::fd::IntoRawFd::into_raw_fd(a2);
    // SAFETY: test of bad input: we close the descriptor ourselves and only hand its stale
    // number to epoll_ctl, which must report EBADF; nothing else uses that number.
    unsafe { libc::close(raw) };
    // SAFETY: as above; the borrow is only given to epoll_ctl.
    let stale = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
    let err = set
        .add_socket(WaitEvents::SOCKET_READABLE, stale, 0)
        .unwrap_err();
    assert_eq!(
        err,
        WaitEventSetError::Sys {
            call: "epoll_ctl()",
            errno: rustix::io::Errno::BADF
        }
    );
    assert!(err.to_string().starts_with("epoll_ctl() failed: "), "{err}");
}

#[test]
fn waiting_on_a_latch_no_longer_owned_is_an_error() {
    let (l, owned) = leaked_latch();
    let mut set = WaitEventSet::new(1).unwrap();
    set.add_latch(&owned, 0).unwrap();
    l.init_shared();
    let mut out = [WaitEvent::EMPTY; 1];
    assert_eq!(
        set.wait(Some(Duration::ZERO), &mut out, 0)
            .unwrap_err()
            .to_string(),
        "cannot wait on a latch owned by another process"
    );
}

#[test]
fn wait_event_info_is_visible_during_the_wait() {
    let slot: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
    let (l, owned) = leaked_latch();
    let mut set = WaitEventSet::new(1).unwrap();
    set.add_latch(&owned, 0).unwrap();
    set.report_wait_events_to(slot);
    let t = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while slot.load(Ordering::Relaxed) != 0x0800_0001 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let seen = slot.load(Ordering::Relaxed);
        l.set();
        seen
    });
    let mut out = [WaitEvent::EMPTY; 1];
    assert_eq!(set.wait(LONG, &mut out, 0x0800_0001).unwrap(), 1);
    assert_eq!(t.join().unwrap(), 0x0800_0001);
    assert_eq!(slot.load(Ordering::Relaxed), 0);
}

#[test]
fn wait_latch_and_wait_latch_or_socket() {
    let (l, owned) = leaked_latch();
    let ev = WaitEvents::LATCH_SET | WaitEvents::TIMEOUT | WaitEvents::EXIT_ON_PM_DEATH;
    assert_eq!(
        wait_latch(Some(&owned), ev, Some(Duration::from_millis(2)), 0),
        Ok(WaitEvents::TIMEOUT)
    );
    l.set();
    assert_eq!(
        wait_latch(Some(&owned), ev, None, 0),
        Ok(WaitEvents::LATCH_SET)
    );
    assert_eq!(
        wait_latch::<&Latch>(None, WaitEvents::LATCH_SET, None, 0),
        Err(WaitEventSetError::LatchWithoutLatch)
    );
    // Without LATCH_SET the latch is not looked at.
    assert_eq!(
        wait_latch(
            Some(&owned),
            WaitEvents::TIMEOUT,
            Some(Duration::from_millis(1)),
            0
        ),
        Ok(WaitEvents::TIMEOUT)
    );
    owned.reset();
    let (a, mut b) = UnixStream::pair().unwrap();
    let sev = WaitEvents::LATCH_SET | WaitEvents::SOCKET_READABLE;
    assert_eq!(
        wait_latch_or_socket(
            Some(&owned),
            sev,
            Some(a.as_fd()),
            Some(Duration::from_millis(2)),
            0
        ),
        Ok(WaitEvents::TIMEOUT)
    );
    b.write_all(b"x").unwrap();
    assert_eq!(
        wait_latch_or_socket(Some(&owned), sev, Some(a.as_fd()), LONG, 0),
        Ok(WaitEvents::SOCKET_READABLE)
    );
}

#[test]
fn thousand_idle_sockets_and_one_ready() {
    let pairs: Vec<_> = (0..1001).map(|_| UnixStream::pair().unwrap()).collect();
    let mut set = WaitEventSet::new(1001).unwrap();
    for (i, (a, _)) in pairs.iter().enumerate() {
        set.add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), i as u64)
            .unwrap();
    }
    (&pairs[637].1).write_all(b"x").unwrap();
    let got = fired(&mut set, LONG);
    assert_eq!(got, vec![(637, WaitEvents::SOCKET_READABLE, 637)]);
}

#[test]
fn flags_debug_names() {
    assert_eq!(
        format!("{:?}", WaitEvents::LATCH_SET | WaitEvents::SOCKET_CLOSED),
        "LATCH_SET | SOCKET_CLOSED"
    );
    assert_eq!(WaitEvents::SOCKET_ACCEPT, WaitEvents::SOCKET_READABLE);
    assert_eq!(WaitEvents::SOCKET_CONNECTED, WaitEvents::SOCKET_WRITEABLE);
}

#[test]
fn death_pipe_reads_dead_once_the_write_end_is_gone() {
    let pipe = PostmasterDeathPipe::create().unwrap();
    assert_eq!(pipe.postmaster_pid(), std::process::id() as i32);
    let watch = pipe.into_child_watch();
    assert_eq!(watch.status(), Ok(PostmasterStatus::Dead));
    // Not installed: this process has no postmaster to lose.
    assert!(postmaster_is_alive());
}

#[test]
fn bad_inherited_watch_fd_is_an_error_value() {
    std::env::set_var(postmaster_death::POSTMASTER_DEATH_FD_ENV, "not-a-number");
    let err = PostmasterDeathWatch::from_env().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid postmaster death descriptor in PGIPC_POSTMASTER_DEATH_FD: \"not-a-number\""
    );
    std::env::set_var(postmaster_death::POSTMASTER_DEATH_FD_ENV, "987654");
    assert!(matches!(
        PostmasterDeathWatch::from_env(),
        Err(WaitEventSetError::BadInheritedFd { .. })
    ));
    std::env::remove_var(postmaster_death::POSTMASTER_DEATH_FD_ENV);
    assert!(PostmasterDeathWatch::from_env().unwrap().is_none());
}

#[test]
fn accept_and_connected_events() {
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut set = WaitEventSet::new(2).unwrap();
    let lpos = set
        .add_socket(WaitEvents::SOCKET_ACCEPT, listener.as_fd(), 1)
        .unwrap();
    assert_eq!(fired(&mut set, Some(Duration::ZERO)), vec![]);
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    assert_eq!(
        fired(&mut set, LONG),
        vec![(lpos, WaitEvents::SOCKET_ACCEPT, 1)]
    );
    let (_server, _) = listener.accept().unwrap();
    let mut set2 = WaitEventSet::new(1).unwrap();
    let cpos = set2
        .add_socket(WaitEvents::SOCKET_CONNECTED, client.as_fd(), 2)
        .unwrap();
    assert_eq!(
        fired(&mut set2, LONG),
        vec![(cpos, WaitEvents::SOCKET_CONNECTED, 2)]
    );
}

#[test]
fn spurious_wakeup_signals_do_not_extend_the_timeout() {
    let (_l, owned) = leaked_latch();
    let (a, _b) = UnixStream::pair().unwrap();
    let mut set = WaitEventSet::new(2).unwrap();
    let lpos = set.add_latch(&owned, 0).unwrap();
    set.add_socket(WaitEvents::SOCKET_READABLE, a.as_fd(), 1)
        .unwrap();
    let pid = std::process::id() as i32;
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    for disabled in [false, true] {
        if disabled {
            // A latch entry without a latch still drains the signalfd and reports nothing.
            set.modify(lpos, WaitEvents::LATCH_SET, None).unwrap();
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let spammer = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                // SAFETY: tgkill takes integers; SIGURG is blocked in the target thread.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGURG) };
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let t = Instant::now();
        let got = fired(&mut set, Some(Duration::from_millis(60)));
        let e = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        spammer.join().unwrap();
        assert_eq!(got, vec![], "disabled={disabled}");
        assert!(e >= Duration::from_millis(60), "{e:?}");
        assert!(e < Duration::from_millis(300), "{e:?}");
    }
}
