//! A "postmaster" starts a child that waits on its latch, a socket and postmaster death; the
//! postmaster then exits, and the child notices at once.
//!
//! `cargo run -p pgipc-waiteventset --example postmaster_death`
//!
//! Shows how the death pipe reaches an exec'd child (`PostmasterDeathPipe::configure_child`,
//! `PostmasterDeathWatch::from_env` + `install`) and what the child's wait reports.

use pgipc_latch::OwnedLatch;
use pgipc_waiteventset::{
    initialize_wait_event_support, postmaster_death, PostmasterDeathPipe, PostmasterDeathWatch,
    WaitEvent, WaitEventSet, WaitEvents,
};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    initialize_wait_event_support().expect("wait event support");
    match PostmasterDeathWatch::from_env().expect("inherited watch") {
        None => postmaster(),
        Some(watch) => child(watch),
    }
}

fn postmaster() {
    let pipe = PostmasterDeathPipe::create().expect("death pipe");
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    pipe.configure_child(&mut cmd);
    let child = cmd.spawn().expect("spawn child");
    println!(
        "postmaster {}: started child {}",
        std::process::id(),
        child.id()
    );
    std::thread::sleep(Duration::from_millis(300));
    println!("postmaster: exiting without waiting for the child");
    // Exiting closes the write end: the child sees EOF (and SIGPWR, its parent-death signal).
    std::mem::forget(child);
}

fn child(watch: PostmasterDeathWatch) {
    watch.install().expect("install watch");
    let latch = OwnedLatch::new_local();
    let (sock, _peer) = UnixStream::pair().expect("socketpair");
    let mut set = WaitEventSet::new(3).expect("set");
    set.add_latch(&latch, 1).expect("latch");
    set.add_socket(WaitEvents::SOCKET_READABLE, sock.as_fd(), 2)
        .expect("socket");
    set.add_postmaster_death(false, 3)
        .expect("postmaster death");
    println!(
        "child {}: waiting (parent-death signal armed: {})",
        std::process::id(),
        postmaster_death::death_signal_armed()
    );
    let t = Instant::now();
    let mut out = [WaitEvent::EMPTY; 3];
    let n = set
        .wait(Some(Duration::from_secs(10)), &mut out, 0)
        .expect("wait");
    for e in &out[..n] {
        println!(
            "child: {:?} (user data {}) after {:.2?}",
            e.events,
            e.user_data,
            t.elapsed()
        );
    }
}
