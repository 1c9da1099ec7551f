use super::*;

fn registry() -> DsmRegistry {
    let shm = Shmem::create_for_tests(1 << 20).expect("segment");
    shmem_init(&shm).expect("registry")
}

#[test]
fn names_and_sizes_are_checked_as_postgresql_does() {
    let reg = registry();
    let mut never = |_: NonNull<u8>| panic!("no segment may be created");
    let check = |r: Result<(NonNull<u8>, bool), DsmRegistryError>, code: &str, msg: &str| {
        let e = r.expect_err(msg);
        assert_eq!((e.sqlstate(), e.to_string().as_str()), (code, msg));
    };
    check(
        get_named_dsm_segment(&reg, "", 8, &mut never),
        "22023",
        "DSM segment name cannot be empty",
    );
    check(
        get_named_dsm_segment(&reg, &"n".repeat(NAME_LEN), 8, &mut never),
        "22023",
        "DSM segment name too long",
    );
    check(
        get_named_dsm_segment(&reg, "x", 0, &mut never),
        "22023",
        "DSM segment size must be nonzero",
    );
    assert!(reg.allocations().is_empty());
}

#[test]
fn an_entry_is_claimed_once_published_once_and_freed_on_failure() {
    let reg = registry();
    let key = name_bytes("test_dsm_registry").expect("name");
    let Ok(Found::Claimed(i)) = reg.lookup_or_claim(&key) else {
        panic!("a new name is claimed");
    };
    // The claimer lives (this process): others wait.
    assert!(matches!(reg.lookup_or_claim(&key), Ok(Found::Busy)));
    assert!(reg.allocations().is_empty(), "not ready yet");
    reg.publish(i, 1234, 4);
    assert!(matches!(
        reg.lookup_or_claim(&key),
        Ok(Found::Ready {
            handle: 1234,
            size: 4
        })
    ));
    assert_eq!(reg.allocations(), vec![("test_dsm_registry".to_owned(), 4)]);
    // A failed creation frees its entry for the next name.
    let other = name_bytes("other").expect("name");
    let Ok(Found::Claimed(j)) = reg.lookup_or_claim(&other) else {
        panic!("claimed");
    };
    reg.release(j);
    let Ok(Found::Claimed(k)) = reg.lookup_or_claim(&name_bytes("third").expect("name")) else {
        panic!("claimed");
    };
    assert_eq!(k, j, "the freed entry is reused");
}

#[test]
fn the_table_is_full_after_max_entries() {
    let reg = registry();
    for n in 0..MAX_ENTRIES {
        let Ok(Found::Claimed(i)) = reg.lookup_or_claim(&name_bytes(&format!("s{n}")).unwrap())
        else {
            panic!("entry {n}");
        };
        reg.publish(i, n as u32 + 1, 8);
    }
    assert!(matches!(
        reg.lookup_or_claim(&name_bytes("one more").unwrap()),
        Err(DsmRegistryError::Full)
    ));
    assert_eq!(reg.allocations().len(), MAX_ENTRIES);
}
