//! A tour of the ProcArray in one process: a few backend slots, some transactions, and the
//! snapshots they produce (with the reuse shortcut and the xmin horizon).
//!
//! `cargo run -p pgipc-procarray --example snapshots`
//!
//! A real backend would call `pgipc_proc::init_process` and `ProcArray::init_process_phase2`
//! for itself; here one process populates several slots with the lower-level `alloc_slot` and
//! acts for each of them in turn.

use pgipc_proc::{BackendType, ProcConfig};
use pgipc_procarray::Snapshot;
use pgipc_shmem::Shmem;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cfg = ProcConfig {
        max_connections: 4,
        ..ProcConfig::default()
    };
    let shmem = Shmem::create_for_tests_with(4 << 20, cfg.all_proc_count()? as usize)?;
    pgipc_proc::shmem_init(&shmem, &cfg)?;
    let pa = pgipc_procarray::shmem_init(&shmem, &cfg)?;

    let mut backends = Vec::new();
    for pid in [101, 102, 103, 104] {
        let p = pa.procs().alloc_slot(BackendType::Backend, pid)?;
        pa.add(p)?;
        backends.push(p);
    }
    let [reader, a, b, c] = backends[..] else {
        unreachable!()
    };
    println!(
        "members (proc numbers in joining order): {:?}",
        pa.members()
    );

    let xa = pa.assign_transaction_id(a, false)?;
    let xb = pa.assign_transaction_id(b, false)?;
    let sub = pa.assign_transaction_id(b, true)?;
    let xc = pa.assign_transaction_id(c, false)?;
    println!("a runs {xa}, b runs {xb} with subtransaction {sub}, c runs {xc}");
    println!("c commits: {:?}", pa.end_transaction(c, xc)?);

    let mut snap = Snapshot::new();
    pa.get_snapshot_data(reader, &mut snap)?;
    println!(
        "snapshot: xmin {} xmax {} xip {:?} subxip {:?} (reused: {})",
        snap.xmin, snap.xmax, snap.xip, snap.subxip, snap.reused
    );
    for x in [xa, xb, sub, xc] {
        println!(
            "  xid {x} running for this snapshot: {}",
            snap.xid_in_snapshot(x)
        );
    }
    pa.get_snapshot_data(reader, &mut snap)?;
    println!("again, nothing ended in between: reused = {}", snap.reused);

    println!("a aborts: {:?}", pa.end_transaction(a, xa)?);
    pa.get_snapshot_data(reader, &mut snap)?;
    println!(
        "snapshot: xmin {} xmax {} xip {:?} (reused: {})",
        snap.xmin, snap.xmax, snap.xip, snap.reused
    );
    println!(
        "oldest xid vacuum must keep: {} (the reader's snapshot xmin holds it back)",
        pa.compute_xid_horizons(0).data_oldest_nonremovable
    );
    pa.clear_xmin(reader)?;
    println!(
        "after the reader drops its snapshot: {} (b's transaction)",
        pa.compute_xid_horizons(0).data_oldest_nonremovable
    );
    println!(
        "backend with pid 102 has proc number {:?}",
        pa.backend_pid_get_proc(102)
    );
    Ok(())
}
