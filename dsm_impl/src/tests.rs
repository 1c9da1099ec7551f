//! Each implementation: create, attach (a second mapping sees the same bytes), resize, detach,
//! destroy; exclusive creation; errors for missing segments; nothing left behind.

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A handle unique in this run (the counter's bits stay clear of the pid's) and unlikely to
/// collide with other runs.
fn handle() -> DsmHandle {
    let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0x7fff;
    0x8000_0000 | ((std::process::id() & 0x7fff) << 16) | (n << 1)
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "pgipc-dsm-impl-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn exists(i: &DsmImpl, h: DsmHandle) -> bool {
    match i.kind() {
        DsmImplType::Posix => Path::new(&format!("/dev/shm/PostgreSQL.{h}")).exists(),
        DsmImplType::Mmap => i.data_dir().unwrap().join(i.segment_name(h)).exists(),
        DsmImplType::Sysv => i.attach(h).map(|m| i.detach(m).unwrap()).is_ok(),
    }
}

fn round_trip(kind: DsmImplType) {
    let dir = scratch();
    let i = DsmImpl::new(kind, Some(&dir));
    let h = handle();
    let m = i.create(h, 1 << 20).expect("create");
    assert!(m.size() >= 1 << 20);
    assert!(exists(&i, h));
    // SAFETY: writing into our own fresh mapping.
    unsafe { m.addr().as_ptr().add(4095).write(0xA5) };
    let m2 = i.attach(h).expect("attach");
    assert_ne!(m.addr(), m2.addr());
    // SAFETY: reading the second mapping of the same segment.
    assert_eq!(unsafe { m2.as_slice() }[4095], 0xA5);
    assert!(matches!(
        i.create(h, 4096),
        Err(DsmImplError::Exists { .. })
    ));
    i.detach(m2).expect("detach");
    let m = if kind == DsmImplType::Sysv {
        assert!(matches!(
            i.resize(m, 2 << 20),
            Err(DsmImplError::ResizeUnsupported(_))
        ));
        i.attach(h).expect("attach again")
    } else {
        let m = i.resize(m, 2 << 20).expect("grow");
        assert_eq!(m.size(), 2 << 20);
        // SAFETY: the new mapping covers the old bytes.
        assert_eq!(unsafe { m.as_slice() }[4095], 0xA5);
        let m = i.resize(m, 8192).expect("shrink");
        assert_eq!(
            i.attach(h)
                .map(|x| {
                    let s = x.size();
                    i.detach(x).unwrap();
                    s
                })
                .unwrap(),
            8192
        );
        m
    };
    i.destroy(Some(m), h).expect("destroy");
    assert!(!exists(&i, h), "{} segment left behind", kind.name());
    let e = i.attach(h).expect_err("gone");
    assert!(
        e.to_string().starts_with(&format!(
            "could not open shared memory segment \"{}\"",
            i.segment_name(h)
        )),
        "{e}"
    );
    assert!(i.destroy(None, h).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn posix_round_trip() {
    round_trip(DsmImplType::Posix);
}

#[test]
fn sysv_round_trip() {
    round_trip(DsmImplType::Sysv);
}

#[test]
fn mmap_round_trip() {
    round_trip(DsmImplType::Mmap);
}

#[test]
fn names_are_postgres_names() {
    let i = DsmImpl::new(DsmImplType::Posix, None);
    assert_eq!(i.segment_name(42), "/PostgreSQL.42");
    assert_eq!(
        DsmImpl::new(DsmImplType::Mmap, None).segment_name(42),
        "pg_dynshmem/mmap.42"
    );
    assert_eq!(DsmImpl::new(DsmImplType::Sysv, None).segment_name(42), "42");
}

#[test]
fn bad_sizes_and_missing_data_dir_are_errors() {
    let i = DsmImpl::new(DsmImplType::Posix, None);
    assert!(matches!(
        i.create(handle(), 0),
        Err(DsmImplError::BadSize { .. })
    ));
    assert!(matches!(
        i.create(0, 4096),
        Err(DsmImplError::BadSize { .. })
    ));
    assert!(matches!(
        i.create(handle(), usize::MAX),
        Err(DsmImplError::BadSize { .. })
    ));
    let m = DsmImpl::new(DsmImplType::Mmap, None);
    assert!(matches!(
        m.create(handle(), 4096),
        Err(DsmImplError::NoDataDir)
    ));
}

#[test]
fn an_impossible_size_fails_cleanly() {
    // Far more than /dev/shm holds: the reservation fails and nothing is left.
    let i = DsmImpl::new(DsmImplType::Posix, None);
    let h = handle();
    let e = i.create(h, 1 << 46).expect_err("too big");
    assert!(
        e.to_string()
            .contains("could not resize shared memory segment"),
        "{e}"
    );
    assert!(
        matches!(e.sqlstate(), "53100" | "53200"),
        "{}",
        e.sqlstate()
    );
    assert!(!Path::new(&format!("/dev/shm/PostgreSQL.{h}")).exists());
}

#[test]
fn mmap_leftovers_are_cleaned() {
    let dir = scratch();
    let i = DsmImpl::new(DsmImplType::Mmap, Some(&dir));
    let (a, b) = (handle(), handle());
    let ma = i.create(a, 8192).unwrap();
    let mb = i.create(b, 8192).unwrap();
    i.detach(ma).unwrap();
    i.detach(mb).unwrap();
    std::fs::write(dir.join(PG_DYNSHMEM_DIR).join("unrelated"), b"x").unwrap();
    assert_eq!(DsmImpl::cleanup_mmap_files(&dir).unwrap(), 2);
    assert!(!exists(&i, a) && !exists(&i, b));
    assert!(dir.join(PG_DYNSHMEM_DIR).join("unrelated").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
