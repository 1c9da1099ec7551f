//! The regions, what a writer publishes and what a reader copies, and a torn-read stress run.

use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn array(slots: usize, query_size: usize) -> BackendStatusArray {
    let shmem = Shmem::create_for_tests(1 << 22).expect("test segment");
    shmem_init(&shmem, slots, query_size).expect("regions")
}

fn backend(appname: &str) -> StartInfo<'_> {
    StartInfo {
        backend_type: BackendType::Backend,
        state: BackendState::Starting,
        database_id: 5,
        datname: "postgres",
        user_id: 10,
        usename: "alice",
        appname,
        client: Some(ClientAddr::Inet("127.0.0.1".parse().unwrap(), 40001)),
        client_hostname: "",
    }
}

#[test]
fn a_fresh_array_has_no_entries_and_sizes_add_up() {
    let a = array(8, 1024);
    assert_eq!(a.slots(), 8);
    assert!(a.read_current_status(None).is_empty());
    assert_eq!(
        shmem_size(8, 1024).unwrap(),
        8 * (std::mem::size_of::<PgBackendStatus>()
            + 2 * NAMEDATALEN
            + 1024
            + std::mem::size_of::<PgBackendSslStatus>())
    );
    assert!(matches!(
        shmem_size(8, 99),
        Err(BackendStatusError::BadQuerySize(99))
    ));
    assert!(matches!(
        a.writer(8, true),
        Err(BackendStatusError::NoSlot {
            procno: 8,
            slots: 8
        })
    ));
}

#[test]
fn a_backend_publishes_its_tls_state_and_a_new_owner_clears_it() {
    let a = array(4, 1024);
    let w = a.writer(2, true).unwrap();
    w.report_start(4242, &backend("psql"));
    assert_eq!(a.read_entry(2, None).unwrap().ssl, None);
    let tls = SslStatus {
        version: "TLSv1.3".into(),
        cipher: "TLS_AES_256_GCM_SHA384".into(),
        bits: 256,
        client_dn: Some("/CN=alice".into()),
        client_serial: Some("1234567890123456789012345".into()),
        issuer_dn: Some(format!("/CN={}", "x".repeat(100))),
    };
    w.report_ssl(Some(&tls));
    let got = a.read_entry(2, None).unwrap().ssl.unwrap();
    assert_eq!(got.cipher, tls.cipher);
    assert_eq!(got.client_serial, tls.client_serial);
    // Clipped to NAMEDATALEN - 1 bytes, as PostgreSQL's buffer clips it.
    assert_eq!(got.issuer_dn.unwrap().len(), NAMEDATALEN - 1);
    w.report_ssl(Some(&SslStatus {
        client_dn: None,
        ..tls
    }));
    assert_eq!(a.read_entry(2, None).unwrap().ssl.unwrap().client_dn, None);
    w.report_start(4243, &backend("psql"));
    assert_eq!(a.read_entry(2, None).unwrap().ssl, None);
}

#[test]
fn attach_finds_the_query_size_the_creator_used() {
    let shmem = Shmem::create_for_tests(1 << 22).expect("test segment");
    assert!(matches!(
        attach(&shmem, 4),
        Err(BackendStatusError::NotCreated)
    ));
    shmem_init(&shmem, 4, 300).unwrap();
    assert_eq!(attach(&shmem, 4).unwrap().query_size(), 300);
}

#[test]
fn a_started_backend_reads_back_with_its_client_names_and_state() {
    let a = array(4, 1024);
    let w = a.writer(2, true).unwrap();
    w.report_start(4242, &backend("psql"));
    let rows = a.read_current_status(None);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.proc_number, r.pid), (2, 4242));
    assert_eq!(r.backend_type, BackendType::Backend);
    assert_eq!(r.state.as_str(), Some("starting"));
    assert_eq!(
        (r.datname.as_str(), r.usename.as_str()),
        ("postgres", "alice")
    );
    assert_eq!((r.database_id, r.user_id), (5, 10));
    assert_eq!(r.appname, "psql");
    assert_eq!(r.client_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(r.client_port, Some(40001));
    assert_eq!(r.client_hostname, None);
    assert!(r.backend_start.is_some() && r.query_start.is_none() && r.xact_start.is_none());

    w.report_activity(BackendState::Running, Some("SELECT pg_sleep(5)"));
    w.report_xact_timestamp(123);
    let r = a.read_entry(2, None).unwrap();
    assert_eq!(r.state.as_str(), Some("active"));
    assert_eq!(r.activity, "SELECT pg_sleep(5)");
    assert_eq!(r.xact_start, Some(123));
    assert!(r.query_start.is_some() && r.state_change.is_some());

    w.report_activity(BackendState::IdleInTransactionAborted, None);
    let r = a.read_entry(2, None).unwrap();
    assert_eq!(r.state.as_str(), Some("idle in transaction (aborted)"));
    assert_eq!(
        r.activity, "SELECT pg_sleep(5)",
        "the last statement stays shown"
    );

    w.report_appname("renamed");
    assert_eq!(a.read_entry(2, None).unwrap().appname, "renamed");
    w.report_end();
    assert!(a.read_current_status(None).is_empty());
}

#[test]
fn unix_clients_show_no_address_and_port_minus_one_and_aux_processes_no_state() {
    let a = array(4, 1024);
    let mut info = backend("");
    info.client = Some(ClientAddr::Unix);
    a.writer(0, true).unwrap().report_start(1, &info);
    let aux = StartInfo {
        backend_type: BackendType::Checkpointer,
        state: BackendState::Undefined,
        database_id: 0,
        datname: "",
        user_id: 0,
        usename: "",
        appname: "",
        client: None,
        client_hostname: "",
    };
    a.writer(3, true).unwrap().report_start(2, &aux);
    let rows = a.read_current_status(None);
    assert_eq!(
        (rows[0].client_addr.clone(), rows[0].client_port),
        (None, Some(-1))
    );
    assert_eq!(
        (rows[1].client_addr.clone(), rows[1].client_port),
        (None, None)
    );
    assert_eq!(rows[1].state.as_str(), None);
    assert_eq!(backend_type_desc(rows[1].backend_type), "checkpointer");
}

#[test]
fn activity_is_clipped_at_a_character_boundary() {
    let a = array(2, 100);
    let w = a.writer(0, true).unwrap();
    w.report_start(1, &backend(""));
    // 98 ASCII bytes then a two-byte character: 99 bytes fit, the character does not.
    let q = format!("{}é tail", "x".repeat(98));
    w.report_activity(BackendState::Running, Some(&q));
    assert_eq!(a.read_entry(0, None).unwrap().activity, "x".repeat(98));
    assert_eq!(clip_len("aé", 2), 1);
    assert_eq!(clip_len("aé", 3), 3);
}

#[test]
fn track_activities_off_shows_disabled_without_text() {
    let a = array(2, 1024);
    let mut w = a.writer(1, true).unwrap();
    w.report_start(1, &backend(""));
    w.report_activity(BackendState::Running, Some("SELECT 1"));
    w.set_track_activities(false);
    w.report_activity(BackendState::Running, Some("SELECT secret"));
    let r = a.read_entry(1, None).unwrap();
    assert_eq!(r.state.as_str(), Some("disabled"));
    assert_eq!(r.activity, "");
    assert_eq!((r.query_start, r.state_change), (None, None));
}

#[test]
fn readers_never_see_a_torn_entry_while_owners_rewrite_them() {
    let a = array(4, 1024);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for slot in 0..2u32 {
        let w = a.writer(slot, true).unwrap();
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            let mut v: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                v += 1;
                let text = format!("{v}:").repeat(1 + (v % 50) as usize);
                let name = v.to_string();
                let info = StartInfo {
                    appname: &name,
                    ..backend("")
                };
                w.report_start(100 + slot as i32, &info);
                w.report_activity(BackendState::Running, Some(&text));
                w.report_query_id(v as i64);
                // Leave readers windows between writes (on a loaded two-core machine a writer
                // that never pauses starves them of an even count).
                if v % 4 == 0 {
                    std::thread::yield_now();
                }
            }
            v
        }));
    }
    while a.read_entry(0, None).is_none() || a.read_entry(1, None).is_none() {
        std::thread::yield_now();
    }
    let reads = 20_000;
    let mut checked = 0;
    let mut full = 0;
    for i in 0..reads {
        if let Some(r) = a.read_entry(i % 2, None) {
            checked += 1;
            assert_eq!(r.pid, 100 + (i % 2) as i32);
            // Each write publishes start info then activity then query id; a consistent copy
            // is one of the states between whole writes.
            if r.query_id != 0 {
                full += 1;
                let v = r.query_id as u64;
                assert_eq!(r.appname, v.to_string(), "{r:?}");
                assert_eq!(r.activity, format!("{v}:").repeat(1 + (v % 50) as usize));
            } else if !r.activity.is_empty() {
                let v: u64 = r.appname.parse().unwrap();
                assert_eq!(r.activity, format!("{v}:").repeat(1 + (v % 50) as usize));
            } else {
                assert!(r.appname.parse::<u64>().is_ok(), "{r:?}");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes: u64 = writers.into_iter().map(|t| t.join().unwrap()).sum();
    println!(
        "{checked} consistent reads ({full} of fully written entries) against {writes} writes"
    );
    assert!(checked == reads && writes > 0, "{checked} of {reads}");
}
