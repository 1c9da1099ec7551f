//! The encoding, the names and descriptions as PostgreSQL shows them, and the report target.

use super::*;

#[test]
fn info_is_class_shifted_left_24_or_id() {
    assert_eq!(WAIT_EVENT_CHECKPOINTER_MAIN >> 24, 0x05);
    assert_eq!(WAIT_EVENT_CLIENT_READ, 0x0600_0000);
    assert_eq!(WAIT_EVENT_CLIENT_WRITE, 0x0600_0001);
    assert_eq!(WAIT_EVENT_PG_SLEEP, 0x0900_0002);
    assert_eq!(
        lwlock_event(MainLWLockId::ProcArray.tranche()),
        0x0100_0000 | 4
    );
}

#[test]
fn decode_names_events_as_pg_stat_activity_shows_them() {
    assert_eq!(decode(0), None);
    assert_eq!(
        decode(WAIT_EVENT_CHECKPOINTER_MAIN),
        Some(("Activity", "CheckpointerMain"))
    );
    assert_eq!(
        decode(WAIT_EVENT_BGWRITER_HIBERNATE),
        Some(("Activity", "BgwriterHibernate"))
    );
    assert_eq!(
        decode(WAIT_EVENT_IO_WORKER_MAIN),
        Some(("Activity", "IoWorkerMain"))
    );
    assert_eq!(
        decode(WAIT_EVENT_CLIENT_READ),
        Some(("Client", "ClientRead"))
    );
    assert_eq!(decode(WAIT_EVENT_PG_SLEEP), Some(("Timeout", "PgSleep")));
    assert_eq!(
        decode(WAIT_EVENT_BGWORKER_STARTUP),
        Some(("IPC", "BgworkerStartup"))
    );
    assert_eq!(
        decode(WAIT_EVENT_MESSAGE_QUEUE_SEND),
        Some(("IPC", "MessageQueueSend"))
    );
    assert_eq!(
        decode(WAIT_EVENT_PROC_SIGNAL_BARRIER),
        Some(("IPC", "ProcSignalBarrier"))
    );
    assert_eq!(
        decode(lwlock_event(MainLWLockId::ProcArray.tranche())),
        Some(("LWLock", "ProcArray"))
    );
    assert_eq!(
        decode(WAIT_EVENT_EXTENSION),
        Some(("Extension", "Extension"))
    );
    assert_eq!(
        decode(PG_WAIT_TIMEOUT | 0xFFFF),
        Some(("Timeout", "unknown wait event"))
    );
    assert_eq!(decode(0x7F00_0000), Some(("???", "unknown wait event")));
}

#[test]
fn every_list_is_sorted_so_ids_match_postgresql_generated_enums() {
    for class in [
        WaitClass::Activity,
        WaitClass::Client,
        WaitClass::Ipc,
        WaitClass::Timeout,
    ] {
        let l = class.list();
        assert!(l.windows(2).all(|w| w[0].0 < w[1].0), "{class:?} unsorted");
    }
}

#[test]
fn pg_wait_events_rows_carry_plain_descriptions() {
    let rows = pg_wait_events();
    let find = |t: &str, n: &str| {
        rows.iter()
            .find(|r| r.class.name() == t && r.name == n)
            .unwrap_or_else(|| panic!("{t}/{n} missing"))
    };
    assert_eq!(
        find("Timeout", "PgSleep").description,
        "Waiting due to a call to pg_sleep or a sibling function."
    );
    assert_eq!(
        find("IPC", "ArchiveCleanupCommand").description,
        "Waiting for archive_cleanup_command to complete."
    );
    assert_eq!(
        find("IPC", "AppendReady").description,
        "Waiting for subplan nodes of an Append plan node to be ready."
    );
    assert_eq!(
        find("Client", "ClientRead").description,
        "Waiting to read data from the client."
    );
    assert_eq!(
        find("LWLock", "ProcArray").info,
        lwlock_event(MainLWLockId::ProcArray.tranche())
    );
    // LWLocks carry PostgreSQL 18's sentence for each lock, markup removed.
    assert_eq!(
        find("LWLock", "XidGen").description,
        "Waiting to allocate a new transaction ID."
    );
    assert_eq!(
        find("LWLock", "ControlFile").description,
        "Waiting to read or update the pg_control file or create a new WAL file."
    );
    assert_eq!(
        find("LWLock", "LockFastPath").description,
        "Waiting to read or update a process' fast-path lock information."
    );
    assert_eq!(
        find("LWLock", "LockFastPath").info,
        lwlock_event(pgipc_lwlock::tranche::builtin::LOCK_FASTPATH)
    );
    // Classes in PostgreSQL's case-insensitive order: Activity, Client, IPC, LWLock, Timeout.
    let mut classes: Vec<&str> = rows.iter().map(|r| r.class.name()).collect();
    classes.dedup();
    assert_eq!(classes, ["Activity", "Client", "IPC", "LWLock", "Timeout"]);
    assert!(rows.iter().all(|r| !r.description.contains('<')));
}

#[test]
fn reports_go_to_the_local_word_until_storage_is_set_then_to_the_storage() {
    reset_wait_event_storage();
    report_wait_start(WAIT_EVENT_PG_SLEEP);
    assert_eq!(my_wait_event_info(), WAIT_EVENT_PG_SLEEP);
    report_wait_end();
    let shared = Box::leak(Box::new(AtomicU32::new(0)));
    // SAFETY: leaked, so valid for the rest of the test process.
    unsafe { set_wait_event_storage(shared) };
    report_wait_start(WAIT_EVENT_CLIENT_READ);
    assert_eq!(shared.load(Ordering::Relaxed), WAIT_EVENT_CLIENT_READ);
    report_wait_end();
    assert_eq!(shared.load(Ordering::Relaxed), 0);
    reset_wait_event_storage();
    report_wait_start(WAIT_EVENT_CLIENT_WRITE);
    assert_eq!(shared.load(Ordering::Relaxed), 0);
    report_wait_end();
}

#[test]
fn every_listed_lwlock_has_postgresql_s_description_and_the_table_nothing_else() {
    let names: Vec<&str> = MainLWLockId::ALL
        .iter()
        .map(|l| l.name())
        .chain(["LockFastPath"])
        .collect();
    let table: Vec<&str> = table::LWLOCK.iter().map(|(n, _)| *n).collect();
    assert_eq!(table, names, "one sentence per lock, in lwlocklist.h order");
    let lw: Vec<&WaitEventRow> = pg_wait_events()
        .iter()
        .filter(|r| r.class == WaitClass::LWLock)
        .collect();
    assert_eq!(lw.len(), names.len());
    for r in lw {
        assert!(
            !r.description.starts_with("Waiting for the "),
            "{}: generic description {:?}",
            r.name,
            r.description
        );
        assert_eq!(decode(r.info), Some(("LWLock", tranche_name_of(r))));
    }
}

fn tranche_name_of(r: &WaitEventRow) -> &'static str {
    pgipc_lwlock::tranche_name(pgipc_lwlock::TrancheId((r.info & 0xFFFF) as u16))
}
