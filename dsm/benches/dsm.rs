//! dsm segment life cycles against the raw POSIX cycle, measured in the same run.
//!
//! * `dsm/create_detach_<size>`: `DsmSegment::create` (random handle, `shm_open` O_EXCL,
//!   `posix_fallocate`, `mmap`, control slot under its LWLock) then drop (unmap, slot release,
//!   `shm_unlink` as the last reference).
//! * `dsm/create_attach_detach_destroy_<size>`: create, pin, detach, attach again (slot lookup,
//!   `shm_open`, `fstat`, `mmap`), detach, unpin (destroy): every operation of a segment's life.
//!
//! * `dsm/main_region_create_detach_64KiB`: the same from the main-region pool
//!   (`min_dynamic_shared_memory`): pages from a bitmap under the lock, no system call.
//!
//! Baselines, one process, no bookkeeping: `raw_shm/cycle_<size>` = `shm_open` + `ftruncate` +
//! `mmap` + `munmap` + `shm_unlink` (the baseline, which reserves no pages), and
//! `raw_shm/fallocate_cycle_<size>` = the same with `posix_fallocate` instead of `ftruncate`
//! (what dsm does so that a full /dev/shm is an error at creation, not a SIGBUS later).
//! Rounds interleave baseline and candidate (A B A B ...); each figure is the median of the
//! per-round ratios. The process is pinned to CPU 0 (sched_setaffinity).
//!
//! Run: `cargo bench -p pgipc-dsm`.

use pgipc_dsm::{
    dsm_backend_startup, dsm_detach_all, dsm_postmaster_shutdown, dsm_postmaster_startup,
    dsm_unpin_segment, CreateFlags, DsmImpl, DsmImplType, DsmSegment,
};
use pgipc_shmem::Shmem;
use pgipc_tests::bench::{line, median, median_ratio};
use std::time::Instant;

const ROUNDS: usize = 15;
const ITERS: usize = 400;

fn pin_cpu0() -> bool {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity only touch it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

fn raw_cycle(size: usize, n: usize, reserve: bool) {
    let name = std::ffi::CString::new(format!("/pgipc-bench-raw.{}.{n}", std::process::id()))
        .expect("name");
    // SAFETY: the classic POSIX cycle on a name only this process uses; every result is
    // checked and the mapping is unmapped before the name is removed.
    unsafe {
        let fd = libc::shm_open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            0o600,
        );
        assert!(fd >= 0, "shm_open");
        if reserve {
            assert_eq!(libc::posix_fallocate(fd, 0, size as libc::off_t), 0);
        } else {
            assert_eq!(libc::ftruncate(fd, size as libc::off_t), 0);
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        libc::close(fd);
        p.cast::<u8>().write_volatile(1);
        assert_eq!(libc::munmap(p, size), 0);
        assert_eq!(libc::shm_unlink(name.as_ptr()), 0);
    }
}

fn dsm_create_detach(size: usize) {
    let seg = DsmSegment::create(size, CreateFlags::default())
        .expect("create")
        .expect("slot");
    // SAFETY: `size` bytes are mapped; only this process knows the segment.
    unsafe { seg.address().as_ptr().write_volatile(1) };
    drop(seg);
}

fn dsm_full_life(size: usize) {
    let seg = DsmSegment::create(size, CreateFlags::default())
        .expect("create")
        .expect("slot");
    let h = seg.handle();
    seg.pin_segment().expect("pin");
    seg.detach();
    let seg = DsmSegment::attach(h).expect("attach");
    // SAFETY: as above.
    unsafe { seg.address().as_ptr().write_volatile(1) };
    seg.detach();
    dsm_unpin_segment(h).expect("unpin");
}

/// Nanoseconds per iteration of `f`.
fn time(mut f: impl FnMut(usize)) -> f64 {
    let t = Instant::now();
    for i in 0..ITERS {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / ITERS as f64
}

/// Interleaves `base` and `cand`; prints the candidate's median time and the median of the
/// per-round ratios (candidate time / baseline time: above 1 means slower than the baseline).
fn compare(name: &str, base_name: &str, base: &dyn Fn(usize), cand: &dyn Fn(usize)) {
    time(base);
    time(cand);
    let (mut bs, mut ts) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        bs.push(time(base));
        ts.push(time(cand));
    }
    let (value, ratio) = (median(&ts) / 1000.0, median_ratio(&ts, &bs));
    println!(
        "{}",
        line(&format!("dsm/{name}"), value, 1, "us", ratio, base_name)
    );
}

fn main() {
    let pinned = pin_cpu0();
    println!("# pinned to CPU 0: {pinned}; {ROUNDS} rounds x {ITERS} cycles, interleaved");
    let shm = Shmem::create_for_tests(1 << 20).expect("shmem");
    let imp = DsmImpl::new(DsmImplType::Posix, None);
    let control = dsm_postmaster_startup(&imp, 10).expect("control");
    shm.set_dsm_control(control);
    dsm_backend_startup(&shm, imp.clone()).expect("backend");
    for (size, label) in [(65_536usize, "64KiB"), (1 << 20, "1MiB")] {
        compare(
            &format!("create_detach_{label}"),
            &format!("raw_shm/cycle_{label}"),
            &|i| raw_cycle(size, i, false),
            &|_| dsm_create_detach(size),
        );
        compare(
            &format!("create_detach_{label}_vs_fallocate"),
            &format!("raw_shm/fallocate_cycle_{label}"),
            &|i| raw_cycle(size, i, true),
            &|_| dsm_create_detach(size),
        );
        compare(
            &format!("create_attach_detach_destroy_{label}"),
            &format!("raw_shm/cycle_{label}"),
            &|i| raw_cycle(size, i, false),
            &|_| dsm_full_life(size),
        );
    }
    dsm_detach_all();
    dsm_postmaster_shutdown(&imp, control).expect("shutdown");

    // The main-region pool: a backend of its own (a thread with its own dsm state) on a main
    // segment with min_dynamic_shared_memory = 4 MiB.
    let shm = Shmem::create_for_tests(8 << 20).expect("shmem");
    pgipc_dsm::dsm_shmem_init(&shm, 4 << 20).expect("pool");
    let control = dsm_postmaster_startup(&imp, 10).expect("control");
    shm.set_dsm_control(control);
    std::thread::scope(|s| {
        s.spawn(|| {
            dsm_backend_startup(&shm, imp.clone()).expect("backend");
            compare(
                "main_region_create_detach_64KiB",
                "raw_shm/cycle_64KiB",
                &|i| raw_cycle(65_536, i, false),
                &|_| dsm_create_detach(65_536),
            );
            dsm_detach_all();
        });
    });
    dsm_postmaster_shutdown(&imp, control).expect("shutdown");
}
