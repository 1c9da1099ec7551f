//! Three processes absorb a signal barrier; the emitter waits for all of them.
//!
//! `cargo run -p pgipc-procsignal --example barrier`
//!
//! The parent creates a segment with "ProcSignal" in it and starts three copies of itself
//! (proc numbers 1..=3), each of which claims its slot, installs the `SIGUSR1` handler and then
//! runs the usual backend loop: reset the latch, look at the pending reasons, sleep on the
//! latch. The parent sends each a notify, then emits a barrier and waits until all three
//! absorbed it; finally it asks them to exit, and their exit callbacks free the slots.

use pgipc_latch::{install_my_latch, Latch, OwnedLatch};
use pgipc_procsignal::{
    install_handler, register_barrier_callback, shmem_init, take_pending, ProcSignalBarrierType,
    ProcSignalReason,
};
use pgipc_shmem::Shmem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

const SLOTS: usize = 4;

fn release_files() -> bool {
    println!(
        "  [{}] absorbing SMGRRELEASE: closing files",
        std::process::id()
    );
    true
}

fn child(procno: u32) {
    let fd: i32 = std::env::var("EXAMPLE_SHMEM_FD").unwrap().parse().unwrap();
    // SAFETY: the parent handed us this inherited descriptor; nothing else owns it here.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach");
    let ps = shmem_init(&shm, SLOTS).expect("ProcSignal");
    let latch: &'static OwnedLatch<Box<Latch>> = Box::leak(Box::new(OwnedLatch::new_local()));
    install_my_latch(latch.latch());
    register_barrier_callback(ProcSignalBarrierType::SmgrRelease, release_files);
    install_handler().expect("handler");
    ps.init_slot(procno, std::process::id() as i32, None)
        .expect("slot");
    let give_up = Instant::now() + Duration::from_secs(30);
    while Instant::now() < give_up {
        latch.reset();
        if take_pending(ProcSignalReason::NotifyInterrupt) {
            println!("  [{}] proc {procno}: got a notify", std::process::id());
        }
        if take_pending(ProcSignalReason::Barrier) {
            ps.process_proc_signal_barrier().expect("absorb");
        }
        if take_pending(ProcSignalReason::WalsndInitStopping) {
            // The example borrows this reason as its "please stop". proc_exit runs the exit
            // callbacks, which free the ProcSignal slot.
            pgipc_ipc::proc_exit(0);
        }
        latch.wait(Some(Duration::from_secs(1))).expect("wait");
    }
    pgipc_ipc::proc_exit(1);
}

fn main() {
    if let Ok(p) = std::env::var("EXAMPLE_PROCNO") {
        child(p.parse().unwrap());
    }
    let shm = Shmem::create_for_tests(1 << 20).expect("segment");
    let ps = shmem_init(&shm, SLOTS).expect("ProcSignal");
    let fd = shm.memfd().expect("memfd").as_raw_fd().to_string();
    let mut kids: Vec<_> = (1..SLOTS as u32)
        .map(|p| {
            Command::new(std::env::current_exe().unwrap())
                .env("EXAMPLE_SHMEM_FD", &fd)
                .env("EXAMPLE_PROCNO", p.to_string())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let give_up = Instant::now() + Duration::from_secs(10);
    while (1..SLOTS as u32).any(|p| ps.slot_pid(p).unwrap() == 0) {
        assert!(Instant::now() < give_up, "children did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    for p in 1..SLOTS as u32 {
        let pid = ps.slot_pid(p).unwrap();
        ps.send_proc_signal(pid, ProcSignalReason::NotifyInterrupt, Some(p))
            .expect("send");
    }
    let t = Instant::now();
    let generation = ps.emit_proc_signal_barrier(ProcSignalBarrierType::SmgrRelease);
    println!("emitted barrier generation {generation}");
    let done = ps
        .wait_for_proc_signal_barrier_until(generation, Some(Duration::from_secs(10)))
        .expect("wait");
    assert!(done, "the barrier did not complete");
    println!("every process absorbed it after {:?}", t.elapsed());
    for p in 1..SLOTS as u32 {
        let pid = ps.slot_pid(p).unwrap();
        ps.send_proc_signal(pid, ProcSignalReason::WalsndInitStopping, Some(p))
            .expect("send");
    }
    for k in &mut kids {
        assert!(k.wait().expect("wait").success());
    }
    let free = (1..SLOTS as u32).all(|p| ps.slot_pid(p).unwrap() == 0);
    println!("children exited; slots free again: {free}");
}
