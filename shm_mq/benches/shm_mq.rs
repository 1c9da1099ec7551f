//! shm_mq throughput between two processes vs a plain shared-memory copy ring of the same size.
//!
//! The parent sends, a re-executed child receives; parent pinned to CPU 0, child to CPU 1
//! (both on CPU 0 on a one-CPU machine). For each message size the runs alternate
//! raw ring / shm_mq, which goes first alternating (A B, B A, ...: the kit's interleaved
//! A/B runner, `pgipc_tests::bench`), every run moves about 32 MiB, and the line reports the
//! median shm_mq throughput and the median of the pairwise ratios.
//!
//! The raw ring is the floor of a copy ring: the same 8-byte length word and 8-byte padding,
//! the sender copies in and publishes its position after every chunk, the receiver copies out
//! into a local buffer and publishes after every chunk, and both busy-wait (spin, then yield)
//! instead of sleeping. The shm_mq receiver copies every message that it receives as a slice of
//! the ring into a local buffer too; a message that wrapped arrives already copied into the
//! handle's buffer and is not copied again.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use pgipc_shm_mq::{RecvResult, SendOptions, SendResult, Side};
use pgipc_tests::bench::{interleave, line, median, median_ratio};
use pgipc_tests::cpu::ncpus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const RING: usize = 64 * 1024;
const SPACE: usize = 192 + RING;
const VOLUME: usize = 32 << 20;
const ROUNDS: usize = 7;

// Command words.
const CMD_SEQ: usize = 8;
const CMD_MODE: usize = 9;
const CMD_SIZE: usize = 10;
const CMD_COUNT: usize = 11;
const DONE_SEQ: usize = 12;
const MODE_EXIT: u64 = 0;
const MODE_MQ: u64 = 1;
const MODE_RAW: u64 = 2;

#[repr(C)]
struct RawRing {
    head: AtomicU64, // bytes written (sender)
    _p0: [u64; 7],
    tail: AtomicU64, // bytes read (receiver)
    _p1: [u64; 7],
    data: [u8; RING],
}

// SAFETY: #[repr(C)], atomics and bytes, all-zero valid.
unsafe impl pgipc_shmem::ShmemSafe for RawRing {}

fn raw_ring(kit: &Kit) -> pgipc_shmem::Shared<RawRing> {
    kit.shmem
        .init_struct::<RawRing>("raw ring")
        .expect("raw ring")
        .0
}

fn wait_until(mut f: impl FnMut() -> bool) {
    let mut i = 0u32;
    while !f() {
        i += 1;
        if i < 1000 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

fn ring_ptr(r: &RawRing) -> *mut u8 {
    r.data.as_ptr() as *mut u8
}

/// Copies `len` bytes between `buf` and the ring at stream position `pos`, chunk by chunk as
/// room (`to_ring`) or data allows, publishing after each chunk.
fn raw_transfer(r: &RawRing, buf: *mut u8, len: usize, to_ring: bool, pos: &mut u64) {
    let mut done = 0;
    while done < len {
        let (mine, theirs) = if to_ring {
            (&r.head, &r.tail)
        } else {
            (&r.tail, &r.head)
        };
        let mut avail = 0;
        wait_until(|| {
            let other = theirs.load(Ordering::Acquire);
            avail = if to_ring {
                RING - (*pos - other) as usize
            } else {
                (other - *pos) as usize
            };
            avail > 0
        });
        let off = (*pos % RING as u64) as usize;
        let n = avail.min(RING - off).min(len - done);
        // SAFETY: the chunk is ours (free space for the sender, unread data for the
        // receiver) and inside the ring and the caller's buffer.
        unsafe {
            if to_ring {
                std::ptr::copy_nonoverlapping(buf.add(done), ring_ptr(r).add(off), n);
            } else {
                std::ptr::copy_nonoverlapping(ring_ptr(r).add(off), buf.add(done), n);
            }
        }
        done += n;
        *pos += ((n + 7) & !7) as u64;
        mine.store(*pos, Ordering::Release);
    }
}

fn raw_send(r: &RawRing, msg: &[u8], pos: &mut u64) {
    let mut word = (msg.len() as u64).to_ne_bytes();
    raw_transfer(r, word.as_mut_ptr(), 8, true, pos);
    raw_transfer(r, msg.as_ptr() as *mut u8, msg.len(), true, pos);
}

fn raw_receive(r: &RawRing, buf: &mut Vec<u8>, pos: &mut u64) {
    let mut word = [0u8; 8];
    raw_transfer(r, word.as_mut_ptr(), 8, false, pos);
    let n = u64::from_ne_bytes(word) as usize;
    buf.resize(n, 0);
    raw_transfer(r, buf.as_mut_ptr(), n, false, pos);
}

fn child() -> i32 {
    let kit = Kit::attach();
    pin(&[if ncpus() > 1 { 1 } else { 0 }]);
    let waker = kit.waker();
    let latch = kit.own(CHILD);
    let mut h = attach(&kit, &waker, &latch, Side::Receiver, None, None);
    let ring_lo = kit.mq().header() as *const _ as usize;
    let ring_hi = ring_lo + SPACE;
    let raw = raw_ring(&kit);
    let w = &kit.arena.words;
    let mut buf = Vec::new();
    let mut rpos = 0u64;
    let mut last = 0;
    loop {
        let seq = w[CMD_SEQ].load(Ordering::SeqCst);
        if seq == last {
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        last = seq;
        let mode = w[CMD_MODE].load(Ordering::SeqCst);
        let count = w[CMD_COUNT].load(Ordering::SeqCst);
        match mode {
            MODE_MQ => {
                for _ in 0..count {
                    match h.receive(false) {
                        Ok(RecvResult::Received(m)) => {
                            // Lent from the ring: copy it out, as the raw receiver does.
                            // Reassembled in the handle's buffer: it is already a local copy.
                            let p = m.as_ptr() as usize;
                            if p >= ring_lo && p < ring_hi {
                                buf.clear();
                                buf.extend_from_slice(m);
                            } else {
                                std::hint::black_box(m);
                            }
                        }
                        other => {
                            eprintln!("bench receive: {other:?}");
                            return 2;
                        }
                    }
                }
            }
            MODE_RAW => {
                for _ in 0..count {
                    raw_receive(&raw, &mut buf, &mut rpos);
                }
            }
            _ => return 0,
        }
        w[DONE_SEQ].store(seq, Ordering::SeqCst);
    }
}

fn main() {
    if role().is_some() {
        std::process::exit(child());
    }
    let kit = Kit::create(SPACE);
    let mq = kit.create_mq();
    let waker = kit.waker();
    mq.set_sender(PARENT, &waker).expect("sender");
    mq.set_receiver(CHILD, &waker).expect("receiver");
    let raw = raw_ring(&kit);
    let latch = kit.own(PARENT);
    let mut h = attach(&kit, &waker, &latch, Side::Sender, None, None);
    let mut c = kit.spawn("receiver", &[]);
    pin(&[0]);
    let pinning = if ncpus() > 1 {
        "sender on CPU 0, receiver on CPU 1"
    } else {
        "both on CPU 0"
    };
    println!(
        "shm_mq bench: ring {RING} B, ~{} MiB per run, {ROUNDS} A/B rounds, {pinning}",
        VOLUME >> 20
    );
    let w = &kit.arena.words;
    let mut seq = 0u64;
    let mut wpos = 0u64;
    let payload: Vec<u8> = (0..(1 << 20)).map(|i| i as u8).collect();
    for (name, size) in [
        ("100B", 100usize),
        ("1KiB", 1024),
        ("64KiB", 65536),
        ("1MiB", 1 << 20),
    ] {
        let count = (VOLUME / size).max(8) as u64;
        let msg = &payload[..size];
        let mut run = |mode: u64| -> f64 {
            seq += 1;
            w[CMD_MODE].store(mode, Ordering::SeqCst);
            w[CMD_SIZE].store(size as u64, Ordering::SeqCst);
            w[CMD_COUNT].store(count, Ordering::SeqCst);
            w[CMD_SEQ].store(seq, Ordering::SeqCst);
            let t = Instant::now();
            for i in 0..count {
                if mode == MODE_MQ {
                    let opts = if i + 1 == count {
                        SendOptions::FLUSH
                    } else {
                        SendOptions::BLOCKING
                    };
                    assert_eq!(h.send(msg, opts), Ok(SendResult::Sent));
                } else {
                    raw_send(&raw, msg, &mut wpos);
                }
            }
            wait_until(|| w[DONE_SEQ].load(Ordering::SeqCst) == seq);
            (count as usize * size) as f64 / t.elapsed().as_secs_f64()
        };
        run(MODE_RAW);
        run(MODE_MQ); // warm-up
        let (raws, mqs) = interleave(ROUNDS, |mq| run(if mq { MODE_MQ } else { MODE_RAW }));
        let (m, r) = (median(&mqs) / 1e9, median_ratio(&mqs, &raws));
        let rr = median(&raws) / 1e9;
        let (cand, base) = (format!("shm_mq/{name}"), format!("raw_ring/{name}"));
        println!("{}", line(&cand, m, 3, "GB/s", r, &base));
        println!("  (raw_ring/{name} median {rr:.3} GB/s)");
    }
    seq += 1;
    w[CMD_MODE].store(MODE_EXIT, Ordering::SeqCst);
    w[CMD_SEQ].store(seq, Ordering::SeqCst);
    let _ = wait_child(&mut c, Duration::from_secs(10));
}
