use super::*;

const MAGIC: u64 = 0x79fb_2447;

/// 32-byte aligned scratch space standing in for a segment.
#[repr(C, align(4096))]
struct Space([u8; 16384]);

fn space() -> Box<Space> {
    Box::new(Space([0; 16384]))
}

#[test]
fn estimate_fits_exactly_then_one_more_chunk_is_out_of_shared_memory() {
    let sizes = [1usize, 31, 32, 100, 4096, 7];
    let mut e = ShmTocEstimator::new();
    for s in sizes {
        e.estimate_chunk(s).unwrap();
    }
    e.estimate_keys(sizes.len()).unwrap();
    let need = e.estimate().unwrap();
    assert_eq!(
        need,
        buffer_align(40 + 16 * sizes.len() + [32, 32, 32, 128, 4096, 32].iter().sum::<usize>())
            .unwrap()
    );
    let mut s = space();
    // SAFETY: `s` is 4096-aligned, 16 KiB, outlives `toc` and is used by nobody else.
    let toc = unsafe { ShmToc::create(MAGIC, s.0.as_mut_ptr(), need) }.unwrap();
    let mut prev = usize::MAX;
    for (k, sz) in sizes.iter().enumerate() {
        let p = toc.allocate(*sz).unwrap();
        let off = p.as_ptr() as usize - toc.base().as_ptr() as usize;
        assert_eq!(off % 32, 0, "chunks are 32-byte aligned");
        assert!(off < prev, "chunks go downwards");
        prev = off;
        toc.insert(k as u64, p).unwrap();
    }
    match toc.allocate(1) {
        Err(e @ ShmTocError::OutOfSharedMemory { .. }) => {
            assert_eq!(e.to_string(), "out of shared memory");
            assert_eq!(e.sqlstate(), "53200");
        }
        other => panic!("expected out of shared memory, got {other:?}"),
    }
    // 6 keys: 40 + 96 = 136 -> aligned to 160 leaves 24 bytes: one more entry fits, not two.
    toc.insert(100, toc.lookup(0).unwrap()).unwrap();
    assert!(matches!(
        toc.insert(101, toc.lookup(0).unwrap()),
        Err(ShmTocError::OutOfSharedMemory { .. })
    ));
    assert_eq!(toc.freespace(), 0);
}

#[test]
fn attach_finds_entries_at_another_address_and_refuses_a_wrong_magic() {
    let mut a = space();
    // SAFETY: as above.
    let toc = unsafe { ShmToc::create(MAGIC, a.0.as_mut_ptr(), 16384) }.unwrap();
    let p = toc.allocate(64).unwrap();
    toc.insert(7, p).unwrap();
    let off = toc.lookup_offset(7).unwrap();
    let mut b = space();
    b.0.copy_from_slice(&a.0);
    // SAFETY: `b` holds a copy of the TOC laid out in `a`.
    let other = unsafe { ShmToc::attach(MAGIC, b.0.as_mut_ptr()) }.unwrap();
    assert_eq!(other.lookup_offset(7), Some(off));
    assert_eq!(
        other.lookup(7).unwrap().as_ptr() as usize - b.0.as_ptr() as usize,
        off
    );
    assert_eq!(other.lookup(8), None);
    assert!(matches!(
        other.lookup_required(8),
        Err(ShmTocError::KeyNotFound { key: 8, .. })
    ));
    // SAFETY: as above.
    match unsafe { ShmToc::attach(MAGIC + 1, b.0.as_mut_ptr()) } {
        Err(e @ ShmTocError::BadMagic { .. }) => assert_eq!(e.sqlstate(), "55000"),
        other => panic!("expected BadMagic, got {other:?}"),
    }
}

#[test]
fn bad_input_is_an_error() {
    let mut s = space();
    // SAFETY: as above.
    let small = unsafe { ShmToc::create(MAGIC, s.0.as_mut_ptr(), 40) };
    assert!(matches!(small, Err(ShmTocError::TooSmall { .. })));
    // SAFETY: as above.
    let toc = unsafe { ShmToc::create(MAGIC, s.0.as_mut_ptr(), 1000) }.unwrap();
    assert_eq!(toc.total_bytes(), 992, "rounded down to 32");
    assert!(matches!(
        toc.allocate(usize::MAX),
        Err(ShmTocError::OutOfSharedMemory { .. })
    ));
    assert!(matches!(
        toc.insert(1, toc.base()),
        Err(ShmTocError::OutsideToc { .. })
    ));
    assert!(matches!(
        toc.insert_offset(1, 5000),
        Err(ShmTocError::OutsideToc { .. })
    ));
    let mut e = ShmTocEstimator::new();
    e.estimate_keys(usize::MAX).unwrap();
    assert!(e.estimate().is_err());
}

#[test]
fn readers_never_see_a_half_written_entry() {
    use std::sync::atomic::AtomicBool;
    /// Stops the readers even if the writer panics, so a failure cannot hang the test.
    struct Done<'d>(&'d AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let offset_of_key = |k: u64| 32 * (k as usize % 400 + 1);
    let mut s = space();
    // SAFETY: as above; the threads below end before `s` is dropped.
    let toc = unsafe { ShmToc::create(MAGIC, s.0.as_mut_ptr(), 16384) }.unwrap();
    let n = 900u64;
    let done = AtomicBool::new(false);
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| loop {
                let finished = done.load(Ordering::Acquire);
                let seen = toc.nentry() as u64;
                for k in 0..seen {
                    // Every counted entry is complete.
                    assert_eq!(toc.lookup_offset(k), Some(offset_of_key(k)));
                }
                if finished {
                    break;
                }
            });
        }
        let _done = Done(&done);
        for k in 0..n {
            toc.insert_offset(k, offset_of_key(k)).unwrap();
        }
    });
    assert_eq!(toc.nentry() as u64, n);
}
