//! A writer, a reader that keeps up and a reader that falls asleep.
//!
//! `cargo run -p pgipc-sinval --example invalidate`
//!
//! Everything runs in one process with two backend memberships, which is enough to watch the
//! queue's rules: the attentive reader gets every message in order; the sleeper is marked for
//! reset once the writer needs the space it still holds, and when it wakes up it learns that it
//! missed messages (and must drop its caches), then reads on from the current end.

use pgipc_shmem::Shmem;
use pgipc_sinval::{shmem_init, Received, SharedInvalidationMessage, MAXNUMMESSAGES};

fn main() {
    let shm = Shmem::create_for_tests_with(1 << 20, 4).expect("segment");
    let queue = shmem_init(&shm, 4).expect("shmInvalBuffer");
    let attentive = queue.shared_inval_backend_init(1, false).expect("join");
    let sleeper = queue.shared_inval_backend_init(2, false).expect("join");

    let mut buf = [SharedInvalidationMessage::default(); 32];
    let mut seen = 0u32;
    let total = 3 * MAXNUMMESSAGES as u32;
    for rel in 0..total {
        // "relation `rel` of database 5 changed"
        queue.insert_data_entries(&[SharedInvalidationMessage::relcache(5, rel)]);
        while let Ok(Received::Messages(n @ 1..)) = attentive.get_data_entries(&mut buf) {
            for m in &buf[..n] {
                assert_eq!(m.words()[1], seen, "in order");
                seen += 1;
            }
        }
    }
    println!("attentive reader: {seen} of {total} messages, in order");

    let st = queue.proc_state(2).expect("state");
    println!(
        "sleeper: marked for reset = {}, catch-up signal sent = {}",
        st.reset_state(),
        st.signaled()
    );
    match sleeper.get_data_entries(&mut buf).expect("read") {
        Received::Reset => println!("sleeper wakes up: Reset (drop every cache)"),
        other => println!("sleeper wakes up: {other:?}"),
    }
    queue.insert_data_entries(&[SharedInvalidationMessage::relmap(5)]);
    match sleeper.get_data_entries(&mut buf).expect("read") {
        Received::Messages(n) => println!(
            "then reads on from the current end: {n} new message(s), id {}",
            buf[0].id()
        ),
        Received::Reset => println!("unexpected second reset"),
    }
    attentive.cleanup().expect("leave");
    sleeper.cleanup().expect("leave");
}
