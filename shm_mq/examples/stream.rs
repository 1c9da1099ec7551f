//! Two processes streaming through a shm_mq: the parent sends `N` messages of growing size
//! (wrapping around and outgrowing the 4 KiB ring), a re-executed child receives them,
//! checks each one and prints a summary.
//!
//! Run: `cargo run --release -p pgipc-shm-mq --example stream -- 100000`

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use pgipc_shm_mq::{PidAlive, RecvResult, SendOptions, SendResult, Side};
use std::time::{Duration, Instant};

const SPACE: usize = 192 + 4096;

fn message(i: u64) -> Vec<u8> {
    let len = (i * 37 % 12_000) as usize;
    (0..len).map(|k| (i as usize + k) as u8).collect()
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    if role().is_some() {
        // The receiver.
        let kit = Kit::attach();
        let waker = kit.waker();
        let latch = kit.own(CHILD);
        let parent = PidAlive(std::os::unix::process::parent_id() as i32);
        let mut h = attach(&kit, &waker, &latch, Side::Receiver, Some(&parent), None);
        let (mut count, mut bytes) = (0u64, 0usize);
        loop {
            match h.receive(false) {
                Ok(RecvResult::Received(m)) => {
                    if m != message(count).as_slice() {
                        eprintln!("receiver: message {count} corrupted");
                        std::process::exit(1);
                    }
                    count += 1;
                    bytes += m.len();
                }
                Ok(RecvResult::Detached) => break,
                other => {
                    eprintln!("receiver: {other:?}");
                    std::process::exit(1);
                }
            }
        }
        println!("receiver: {count} messages, {bytes} bytes, all intact; sender detached");
        return;
    }
    let kit = Kit::create(SPACE);
    let mq = kit.create_mq();
    let waker = kit.waker();
    mq.set_sender(PARENT, &waker).expect("set sender");
    mq.set_receiver(CHILD, &waker).expect("set receiver");
    let latch = kit.own(PARENT);
    let mut child = kit.spawn("receiver", &[&n.to_string()]);
    let alive = PidAlive(child.id() as i32);
    let mut h = attach(&kit, &waker, &latch, Side::Sender, Some(&alive), None);
    let t = Instant::now();
    for i in 0..n {
        let opts = if i + 1 == n {
            SendOptions::FLUSH
        } else {
            SendOptions::BLOCKING
        };
        match h.send(&message(i), opts) {
            Ok(SendResult::Sent) => {}
            other => {
                eprintln!("sender: message {i}: {other:?}");
                std::process::exit(1);
            }
        }
    }
    h.detach();
    let st = wait_child(&mut child, Duration::from_secs(60)).expect("receiver finished");
    println!(
        "sender: {n} messages through a {} B ring in {:.2?}; receiver {st}",
        mq.ring_size(),
        t.elapsed()
    );
}
