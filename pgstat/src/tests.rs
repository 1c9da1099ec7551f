use super::*;

fn segment() -> Shmem {
    Shmem::create_for_tests(64 * 1024).expect("test segment")
}

#[test]
fn a_new_region_starts_at_zero_with_its_reset_time_set() {
    let shmem = segment();
    let s = shmem_init(&shmem).expect("create");
    assert_eq!(s.checkpointer.num_timed.load(Ordering::Relaxed), 0);
    assert_eq!(s.bgwriter.buffers_alloc.load(Ordering::Relaxed), 0);
    let reset = s.checkpointer.stat_reset_timestamp.load(Ordering::Relaxed);
    // After 2026-01-01 and not in the future.
    assert!(reset > 820_454_400_000_000, "{reset}");
    assert!(reset <= pg_now());
    assert_eq!(
        s.bgwriter.stat_reset_timestamp.load(Ordering::Relaxed),
        reset
    );
}

#[test]
fn attaching_finds_the_same_counters() {
    let shmem = segment();
    let a = shmem_init(&shmem).expect("create");
    a.checkpoint_started(true);
    a.checkpoint_done(3, 4);
    a.checkpoint_started(false);
    a.checkpoint_done(0, 1);
    // A timed checkpoint that failed: started, never done.
    a.checkpoint_started(true);
    a.aux.walwriter_rounds.fetch_add(5, Ordering::Relaxed);
    let b = shmem_init(&shmem).expect("attach");
    let c = &b.checkpointer;
    assert_eq!(c.num_timed.load(Ordering::Relaxed), 2);
    assert_eq!(c.num_requested.load(Ordering::Relaxed), 1);
    assert_eq!(c.num_performed.load(Ordering::Relaxed), 2);
    assert_eq!(c.write_time.load(Ordering::Relaxed), 3);
    assert_eq!(c.sync_time.load(Ordering::Relaxed), 5);
    assert_eq!(b.counter("walwriter_rounds"), Some(5));
    assert_eq!(b.counter("checkpoints_timed"), Some(2));
    assert_eq!(b.counter("checkpoints_req"), Some(1));
    assert_eq!(b.counter("no_such_counter"), None);
}

#[test]
fn every_counter_name_answers() {
    let shmem = segment();
    let s = shmem_init(&shmem).expect("create");
    for n in COUNTER_NAMES {
        assert_eq!(s.counter(n), Some(0), "{n}");
    }
}

#[test]
fn layout() {
    use std::mem::{align_of, offset_of, size_of};
    insta::assert_snapshot!(format!(
        "PgStatShared size={} align={} bgwriter@{} checkpointer@{} aux@{}\n\
         BgWriterStats size={} stat_reset_timestamp@{}\n\
         CheckpointerStats size={} num_performed@{} stat_reset_timestamp@{}\n\
         AuxRounds size={}",
        size_of::<PgStatShared>(),
        align_of::<PgStatShared>(),
        offset_of!(PgStatShared, bgwriter),
        offset_of!(PgStatShared, checkpointer),
        offset_of!(PgStatShared, aux),
        size_of::<BgWriterStats>(),
        offset_of!(BgWriterStats, stat_reset_timestamp),
        size_of::<CheckpointerStats>(),
        offset_of!(CheckpointerStats, num_performed),
        offset_of!(CheckpointerStats, stat_reset_timestamp),
        size_of::<AuxRounds>(),
    ));
}
