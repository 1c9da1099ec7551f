use super::*;
use pgipc_shmem::{AllocationName, HugePages, InitKind, SharedMemoryType};
use std::sync::atomic::{AtomicU64, Ordering};

fn reference() -> IpcConfig {
    // PostgreSQL's defaults (max_connections = 100), huge pages off so that the layout does not
    // depend on the machine.
    IpcConfig {
        huge_pages: HugePages::Off,
        ..IpcConfig::default()
    }
}

#[test]
fn max_backends_as_postgresql() {
    let c = IpcConfig::default();
    assert_eq!(c.max_backends().unwrap(), 100 + 16 + 8 + 10 + 2);
    assert_eq!(c.num_semaphores().unwrap(), 136 + 38);
    let huge = IpcConfig {
        max_connections: 100_000_000,
        ..IpcConfig::default()
    };
    let e = huge.max_backends().unwrap_err();
    assert_eq!(
        e.to_string(),
        "too many server processes configured: \"max_connections\" (100000000) plus \
         \"autovacuum_worker_slots\" (16) plus \"max_worker_processes\" (8) plus \
         \"max_wal_senders\" (10) must be less than 262142"
    );
    assert!(calculate_shmem_size(&huge, &Addins::new()).is_err());
}

#[test]
fn size_rounding() {
    assert_eq!(round_up_8192(1).unwrap(), 8192);
    assert_eq!(round_up_8192(8191).unwrap(), 8192);
    assert_eq!(round_up_8192(8192).unwrap(), 16384);
    assert!(round_up_8192(usize::MAX).is_err());
    let s = calculate_shmem_size(&reference(), &Addins::new()).unwrap();
    assert_eq!(s % 8192, 0);
}

#[test]
fn runtime_gucs() {
    let g = shmem_gucs(&reference(), &Addins::new()).unwrap();
    let size = calculate_shmem_size(&reference(), &Addins::new()).unwrap();
    assert_eq!(g.shared_memory_size_mb, size.div_ceil(1 << 20));
    assert_eq!(g.num_os_semaphores, 174);
    let hp = IpcConfig {
        huge_page_size: 2 << 20,
        ..reference()
    };
    let g = shmem_gucs(&hp, &Addins::new()).unwrap();
    assert_eq!(
        g.shared_memory_size_in_huge_pages,
        (size / (2 << 20) + 1) as i64
    );
}

fn table(state: &IpcState) -> String {
    let mut out = format!("totalsize {}\n", state.shmem.total_size());
    for r in state.shmem.allocations().unwrap() {
        let off = r
            .off
            .map(|o| o.to_string())
            .unwrap_or_else(|| "NULL".into());
        let name = r.name.to_string();
        out.push_str(&format!(
            "{name:<32} {off:>10} {:>10} {:>10}\n",
            r.size, r.allocated_size
        ));
    }
    out
}

#[test]
fn reference_allocation_table() {
    let state = create_shared_memory_and_semaphores(&reference(), &Addins::new()).unwrap();
    assert_eq!(
        state.size,
        calculate_shmem_size(&reference(), &Addins::new()).unwrap()
    );
    insta::assert_snapshot!(table(&state));
    state.shutdown().unwrap();
}

#[test]
fn background_worker_data_is_one_region_right_before_shm_inval_buffer() {
    let state = create_shared_memory_and_semaphores(&reference(), &Addins::new()).unwrap();
    let mut rows = state.shmem.allocations().unwrap();
    rows.retain(|r| r.off.is_some());
    rows.sort_by_key(|r| r.off);
    let names: Vec<String> = rows.iter().map(|r| r.name.to_string()).collect();
    let bgw: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].starts_with("Background Worker"))
        .collect();
    assert_eq!(bgw.len(), 1, "{names:?}");
    assert_eq!(names[bgw[0]], pgipc_bgworker::BGWORKER_DATA_NAME);
    assert_eq!(names[bgw[0] + 1], pgipc_sinval::SINVAL_NAME, "{names:?}");
    let row = &rows[bgw[0]];
    assert_eq!(
        row.size,
        pgipc_bgworker::shmem_size(reference().max_worker_processes).unwrap() as u64
    );
    // ipci's view finds the same region, with max_worker_processes slots.
    assert_eq!(state.bgworkers().unwrap().len(), 8);
    state.shutdown().unwrap();
}

/// The machine-readable layout (`--describe-shmem=json`): pinned as JSON, read back by serde
/// into the same value, and the same rows as the allocation table.
#[test]
fn reference_allocation_json() {
    let state = create_shared_memory_and_semaphores(&reference(), &Addins::new()).unwrap();
    let d = state.describe().unwrap();
    let json = d.to_json();
    insta::assert_snapshot!(json);
    let back: ShmemDescription = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    assert_eq!(d.total_size, state.shmem.total_size() as u64);
    let rows = state.shmem.allocations().unwrap();
    assert_eq!(d.allocations.len(), rows.len());
    for (j, r) in d.allocations.iter().zip(&rows) {
        assert_eq!(
            (j.off, j.size, j.allocated_size),
            (r.off, r.size, r.allocated_size)
        );
        match &r.name {
            AllocationName::Unused => assert_eq!(j.name, None),
            n => assert_eq!(j.name.as_deref(), Some(n.to_string().as_str())),
        }
    }
    // The table is the same rows, one per line between the header and the total.
    let table = d.to_table();
    assert_eq!(table.lines().count(), rows.len() + 2, "{table}");
    assert!(table.contains("<anonymous>") && table.contains("<unused>"));
    state.shutdown().unwrap();
}

#[derive(Debug)]
struct Counter;

impl Addin for Counter {
    fn name(&self) -> &str {
        "counter"
    }
    fn request_shmem(&self, r: &mut ShmemRequests) {
        r.request_addin_shmem_space(4096);
        r.request_named_lwlock_tranche("counter_locks", 2);
    }
    fn startup(&self, shmem: &Shmem, tranches: &NamedTranches) -> Result<(), BoxError> {
        let (c, kind) = shmem.init_struct::<AtomicU64>("counter state")?;
        if kind == InitKind::Created {
            c.store(41, Ordering::Relaxed);
        }
        let locks = tranches
            .get(shmem, "counter_locks")
            .ok_or("tranche missing")?;
        if locks.len() != 2 {
            return Err("wrong tranche size".into());
        }
        if pgipc_lwlock::tranche_name(locks[0].tranche()) != "counter_locks" {
            return Err("tranche not named".into());
        }
        Ok(())
    }
}

#[test]
fn addins_get_space_tranches_and_a_startup_hook() {
    let mut addins = Addins::new();
    let plain = calculate_shmem_size(&reference(), &addins).unwrap();
    addins.register(Box::new(Counter));
    let with = calculate_shmem_size(&reference(), &addins).unwrap();
    assert!(with >= plain + 4096 + 2 * 128 - 8192, "{plain} -> {with}");
    let state = create_shared_memory_and_semaphores(&reference(), &addins).unwrap();
    let (c, kind) = state
        .shmem
        .init_struct::<AtomicU64>("counter state")
        .unwrap();
    assert_eq!((kind, c.load(Ordering::Relaxed)), (InitKind::Attached, 41));
    assert!(state
        .shmem
        .allocations()
        .unwrap()
        .iter()
        .any(|r| r.name == AllocationName::Named("counter state".into())));
    state.shutdown().unwrap();
}

#[test]
fn data_dir_interlock_refuses_a_second_creator() {
    let dir = std::env::temp_dir().join(format!("pgipc-ipci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = IpcConfig {
        data_dir: Some(dir.clone()),
        shared_memory_type: SharedMemoryType::Memfd,
        ..reference()
    };
    let first = create_shared_memory_and_semaphores(&cfg, &Addins::new()).unwrap();
    let second = create_shared_memory_and_semaphores(&cfg, &Addins::new());
    assert!(
        matches!(second, Err(IpciError::Shmem(ShmemError::InUse { .. }))),
        "{second:?}"
    );
    first.shutdown().unwrap();
    let third = create_shared_memory_and_semaphores(&cfg, &Addins::new()).unwrap();
    third.shutdown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
