//! Multi-process tests of shm_mq, under libtest-mimic on one test thread: each case is a trial
//! run on the main thread as the parent, and re-executed copies of this binary are the children
//! (never a bare fork; they take their role before the harness starts). Children have a
//! watchdog (killed after a limit), and the parent arms `alarm()` so that a hang in the parent
//! kills the test instead of CI.

mod common;

use common::*;
use pgipc_shm_mq::{PidAlive, RecvResult, SendOptions, SendResult, Side};
use std::sync::atomic::Ordering;
use std::time::Duration;

const STREAM_MESSAGES: u64 = 1_000_000;
/// Ring of 64 bytes: messages of 0..192 bytes wrap and outgrow it all the time.
const STREAM_SPACE: usize = 192 + 64;
const WATCHDOG: Duration = Duration::from_secs(120);

fn main() -> std::process::ExitCode {
    if let Some(r) = role() {
        let args: Vec<String> = std::env::args().collect();
        // SAFETY: alarm only arms a timer; the default SIGALRM action ends a stuck child.
        unsafe { libc::alarm(150) };
        std::process::exit(child(&r, &args[1..]));
    }
    run_tests(&[
        ("stream_1e6_random_sizes_with_checksum", stream),
        ("nowait_both_ends_report_would_block", nowait),
        ("stream_with_the_adaptive_watch_on_every_cpu", stream_spin),
        ("sender_detach_is_seen_after_draining", sender_detach),
        ("receiver_detach_is_seen_by_blocked_sender", receiver_detach),
        ("sigkilled_sender_is_detected", killed_sender),
        ("sigkilled_receiver_is_detected", killed_receiver),
    ])
}

/// Random messages: slices of a random pool, sizes 0..3x the ring.
struct Gen {
    rng: Rng,
    pool: Vec<u8>,
    ring: usize,
}

impl Gen {
    fn new(ring: usize) -> Gen {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let pool = (0..6 * ring).map(|_| rng.next() as u8).collect();
        Gen { rng, pool, ring }
    }
    fn next(&mut self) -> (usize, usize) {
        let len = (self.rng.next() % (3 * self.ring as u64 + 1)) as usize;
        let start = (self.rng.next() % (3 * self.ring as u64)) as usize;
        (start, len)
    }
}

fn child(role: &str, args: &[String]) -> i32 {
    let kit = Kit::attach();
    let n: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(0);
    let waker = kit.waker();
    let latch = kit.own(CHILD);
    let w = &kit.arena.words;
    let sender = matches!(
        role,
        "stream" | "nowait" | "stream-spin" | "detach-sender" | "sleep-sender"
    );
    if sender {
        kit.mq().set_sender(CHILD, &waker).expect("set sender");
    } else {
        kit.mq().set_receiver(CHILD, &waker).expect("set receiver");
    }
    let side = if sender { Side::Sender } else { Side::Receiver };
    // Stream tests pin both processes to CPU 0: spinning would only delay the peer. The
    // adaptive watch's test runs unpinned with the default watch.
    let spin = (role != "stream-spin").then_some(Duration::ZERO);
    let mut h = attach(&kit, &waker, &latch, side, None, spin);
    match role {
        "stream" | "nowait" | "stream-spin" => {
            if role != "stream-spin" {
                pin(&[0]);
            }
            let nowait = role == "nowait";
            let mut g = Gen::new(kit.mq().ring_size());
            let mut sum = 0u64;
            let mut blocked = 0u64;
            for i in 0..n {
                let (s, len) = g.next();
                let msg = &g.pool[s..s + len];
                sum = checksum(sum, msg);
                let opts = SendOptions {
                    nowait,
                    force_flush: i + 1 == n,
                };
                // Vectored: split each message in two pieces at a random point.
                let cut = len / 3;
                loop {
                    match h.sendv(&[&msg[..cut], &msg[cut..]], opts) {
                        Ok(SendResult::Sent) => break,
                        Ok(SendResult::WouldBlock) => {
                            // No timeout: a lost wake-up hangs here and the watchdog fails
                            // the test.
                            blocked += 1;
                            let _ = latch.wait(None);
                            latch.reset();
                        }
                        other => {
                            eprintln!("send {i}: {other:?}");
                            return 2;
                        }
                    }
                }
            }
            w[0].store(sum, Ordering::SeqCst);
            w[1].store(blocked, Ordering::SeqCst);
            h.detach();
            0
        }
        "detach-sender" | "sleep-sender" => {
            for i in 0..n {
                if h.send(&i.to_ne_bytes(), SendOptions::FLUSH) != Ok(SendResult::Sent) {
                    return 2;
                }
            }
            if role == "sleep-sender" {
                w[5].store(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(100));
                return 3;
            }
            h.detach();
            0
        }
        "detach-receiver" => match h.receive(false) {
            Ok(RecvResult::Received(m)) if m == b"first" => {
                h.detach();
                0
            }
            other => {
                eprintln!("receive: {other:?}");
                2
            }
        },
        "sleep-receiver" => {
            w[5].store(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(100));
            3
        }
        _ => 100,
    }
}

/// Parent side: arms the alarm, creates the queue, records itself as `side`.
fn setup(space: usize, side: Side) -> Kit {
    // SAFETY: alarm only arms a timer; the default SIGALRM action ends a stuck test.
    unsafe { libc::alarm(150) };
    let kit = Kit::create(space);
    let mq = kit.create_mq();
    let waker = kit.waker();
    match side {
        Side::Sender => mq.set_sender(PARENT, &waker),
        Side::Receiver => mq.set_receiver(PARENT, &waker),
    }
    .expect("set side");
    kit
}

fn receive_all(
    h: &mut pgipc_shm_mq::MqHandle<'_>,
    nowait: bool,
    latch_wait: impl Fn(),
) -> Result<(u64, u64, u64), String> {
    let (mut count, mut sum, mut blocked) = (0u64, 0u64, 0u64);
    loop {
        match h.receive(nowait).map_err(|e| e.to_string())? {
            RecvResult::Received(m) => {
                sum = checksum(sum, m);
                count += 1;
            }
            RecvResult::WouldBlock => {
                blocked += 1;
                latch_wait();
            }
            RecvResult::Detached => return Ok((count, sum, blocked)),
        }
    }
}

/// Streams `n` random messages from a child to this process. Every sleep is unbounded (no
/// peer-alive check, no latch timeout), so a lost wake-up hangs the test until its watchdog.
fn stream_with(role: &str, nowait: bool, n: u64, space: usize) -> Result<(u64, u64), String> {
    let spin = role == "stream-spin";
    if !spin {
        pin(&[0]);
    }
    let kit = setup(space, Side::Receiver);
    let waker = kit.waker();
    let latch = kit.own(PARENT);
    let mut c = kit.spawn(role, &[&n.to_string()]);
    let mut h = attach(
        &kit,
        &waker,
        &latch,
        Side::Receiver,
        None,
        (!spin).then_some(Duration::ZERO),
    );
    let (count, sum, blocked) = receive_all(&mut h, nowait, || {
        let _ = latch.wait(None);
        latch.reset();
    })?;
    expect_success(&mut c, WATCHDOG)?;
    if count != n {
        return Err(format!(
            "message sent {n} times, but received {count} times"
        ));
    }
    let want = kit.arena.words[0].load(Ordering::SeqCst);
    if sum != want {
        return Err(format!("checksum {sum:#x} != sender's {want:#x}"));
    }
    Ok((blocked, kit.arena.words[1].load(Ordering::SeqCst)))
}

fn stream() -> Result<(), String> {
    stream_with("stream", false, STREAM_MESSAGES, STREAM_SPACE).map(|_| ())
}

/// Blocking calls with the default (adaptive) watch, both processes free to run on any CPU:
/// watches that find the counter moved, fruitless ones, backed-off waits and sleeps mix.
fn stream_spin() -> Result<(), String> {
    stream_with("stream-spin", false, 200_000, 192 + 1024).map(|_| ())
}

fn nowait() -> Result<(), String> {
    let (rx_blocked, tx_blocked) = stream_with("nowait", true, 20_000, 192 + 256)?;
    if rx_blocked == 0 || tx_blocked == 0 {
        return Err(format!(
            "expected would-block on both ends, got receiver {rx_blocked}, sender {tx_blocked}"
        ));
    }
    Ok(())
}

fn sender_detach() -> Result<(), String> {
    let kit = setup(192 + 1024, Side::Receiver);
    let waker = kit.waker();
    let latch = kit.own(PARENT);
    let mut c = kit.spawn("detach-sender", &["3"]);
    let mut h = attach(
        &kit,
        &waker,
        &latch,
        Side::Receiver,
        None,
        Some(Duration::ZERO),
    );
    let (count, _, _) = receive_all(&mut h, false, || {})?;
    expect_success(&mut c, WATCHDOG)?;
    if count != 3 {
        return Err(format!("received {count} messages before Detached, want 3"));
    }
    Ok(())
}

fn receiver_detach() -> Result<(), String> {
    let kit = setup(192 + 1024, Side::Sender);
    let waker = kit.waker();
    let latch = kit.own(PARENT);
    let mut c = kit.spawn("detach-receiver", &[]);
    let mut h = attach(
        &kit,
        &waker,
        &latch,
        Side::Sender,
        None,
        Some(Duration::ZERO),
    );
    if h.send(b"first", SendOptions::FLUSH) != Ok(SendResult::Sent) {
        return Err("first send failed".into());
    }
    for _ in 0..100_000 {
        match h.send(&[0; 500], SendOptions::BLOCKING) {
            Ok(SendResult::Sent) => {}
            Ok(SendResult::Detached) => return expect_success(&mut c, WATCHDOG),
            other => return Err(format!("{other:?}")),
        }
    }
    Err("sender never saw Detached".into())
}

/// Kills `pid` with SIGKILL after `ms`, from a helper process (we are about to block).
fn kill_later(pid: u32, ms: u64) -> Proc {
    Proc(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("sleep {}; kill -9 {pid}", ms as f64 / 1000.0))
            .spawn()
            .expect("spawn killer"),
    )
}

fn killed_sender() -> Result<(), String> {
    let kit = setup(192 + 1024, Side::Receiver);
    let waker = kit.waker();
    let latch = kit.own(PARENT);
    let mut c = kit.spawn("sleep-sender", &["5"]);
    let alive = PidAlive(c.id() as i32);
    let mut h = attach(&kit, &waker, &latch, Side::Receiver, Some(&alive), None);
    kit.wait_word(5)?;
    let mut killer = kill_later(c.id(), 200);
    let t = std::time::Instant::now();
    let (count, _, _) = receive_all(&mut h, false, || {})?;
    let _ = wait_child(&mut killer, WATCHDOG)?;
    let st = wait_child(&mut c, WATCHDOG)?;
    if count != 5 || st.success() {
        return Err(format!("received {count} (want 5), child {st}"));
    }
    if t.elapsed() > Duration::from_secs(10) {
        return Err(format!("death noticed only after {:?}", t.elapsed()));
    }
    Ok(())
}

fn killed_receiver() -> Result<(), String> {
    let kit = setup(192 + 1024, Side::Sender);
    let waker = kit.waker();
    let latch = kit.own(PARENT);
    let mut c = kit.spawn("sleep-receiver", &[]);
    kit.wait_word(5)?;
    let alive = PidAlive(c.id() as i32);
    let mut h = attach(&kit, &waker, &latch, Side::Sender, Some(&alive), None);
    let mut killer = kill_later(c.id(), 200);
    let mut res = Ok(SendResult::Sent);
    for _ in 0..100 {
        res = h.send(&[1; 300], SendOptions::BLOCKING);
        if res != Ok(SendResult::Sent) {
            break;
        }
    }
    let _ = wait_child(&mut killer, WATCHDOG)?;
    let _ = wait_child(&mut c, WATCHDOG)?;
    if res != Ok(SendResult::Detached) {
        return Err(format!("blocked sender got {res:?}, want Detached"));
    }
    Ok(())
}
