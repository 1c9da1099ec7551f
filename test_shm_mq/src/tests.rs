use crate::leader::verify_for_tests as verify;
use crate::setup::segment_size_for_tests as segment_size;
use crate::TestShmMqError;

fn check(e: TestShmMqError, code: &str, message: &str) {
    assert_eq!((e.sqlstate(), e.to_string().as_str()), (code, message));
}

#[test]
fn a_queue_must_hold_a_header_and_a_word() {
    let min = pgipc_shm_mq::minimum_size();
    for q in [-1, 0, 10, min as i64 - 1] {
        match segment_size(q, 1) {
            Err(e) => check(
                e,
                "22023",
                &format!("queue size must be at least {min} bytes"),
            ),
            Ok(s) => panic!("queue size {q} accepted ({s})"),
        }
    }
    let one = segment_size(min as i64, 1).expect("the minimum is enough");
    let three = segment_size(65536, 3).expect("64 KiB, 3 workers");
    assert!(three >= 4 * 65536 && one >= 2 * min, "{one} {three}");
    assert!(matches!(
        segment_size(i64::MAX, 3),
        Err(TestShmMqError::SizeOverflow)
    ));
}

#[test]
fn verify_reports_the_first_difference_as_postgresql_does() {
    assert!(verify(b"abc", b"abc").is_ok());
    assert!(verify(b"", b"").is_ok());
    let e = verify(b"abc", b"abcd").expect_err("longer");
    assert_eq!(
        e.detail(),
        Some("The original message was 3 bytes but the final message is 4 bytes.")
    );
    check(e, "XX000", "message corrupted");
    let e = verify(b"abc", b"abd").expect_err("differs");
    assert_eq!(
        e.detail(),
        Some("The new and original messages differ at byte 2 of 3.")
    );
}

#[test]
fn errors_carry_postgresql_codes_and_texts() {
    check(
        TestShmMqError::NegativeRepeatCount,
        "22023",
        "repeat count size must be an integer value greater than or equal to zero",
    );
    check(
        TestShmMqError::NoWorkers,
        "22023",
        "number of workers must be an integer value greater than zero",
    );
    check(
        TestShmMqError::NegativeWorkers,
        "22023",
        "number of workers must be an integer value greater than or equal to zero",
    );
    let e = TestShmMqError::CouldNotRegister;
    assert_eq!(
        e.hint(),
        Some("You may need to increase \"max_worker_processes\".")
    );
    check(e, "53000", "could not register background process");
    check(
        TestShmMqError::cancel(),
        "57014",
        "canceling statement due to user request",
    );
    check(
        TestShmMqError::CouldNotReceive,
        "55000",
        "could not receive message",
    );
}

/// A backend with no PGPROC and no postmaster: enough for everything that fails before the
/// segment is made.
struct NoBackend(pgipc_shmem::Shmem);

impl crate::LeaderEnv for NoBackend {
    fn my_proc(&self) -> Option<&'static pgipc_proc::MyProc> {
        None
    }
    fn shmem(&self) -> &pgipc_shmem::Shmem {
        &self.0
    }
    fn pmsignal(&self) -> Option<&pgipc_pmsignal::PMSignal> {
        None
    }
    fn dsm_impl(&self) -> pgipc_dsm::DsmImpl {
        pgipc_dsm::DsmImpl::new(pgipc_dsm::DsmImplType::Posix, None)
    }
    fn max_worker_processes(&self) -> u32 {
        8
    }
    fn max_parallel_workers(&self) -> u32 {
        8
    }
    fn interrupt_pending(&self) -> bool {
        false
    }
    fn check_for_interrupts(&self) -> Result<(), TestShmMqError> {
        Ok(())
    }
}

#[test]
fn the_query_layer_resolves_every_arity_and_reports_postgresql_errors() {
    let shm = pgipc_shmem::Shmem::create_for_tests(1 << 20).expect("segment");
    let mut catalog = pgipc_query::Catalog::new();
    crate::register(&mut catalog, std::rc::Rc::new(NoBackend(shm)));
    let mut s = pgipc_query::GucSession::new(pgipc_guc::Settings::new());
    let mut check = |sql: &str, code: &str, message: &str| {
        let e = pgipc_query::query_text(sql, &catalog, &mut s).expect_err(sql);
        assert_eq!(
            (e.sqlstate.as_str(), e.message.as_str()),
            (code, message),
            "{sql}"
        );
    };
    let negative = "repeat count size must be an integer value greater than or equal to zero";
    check("SELECT test_shm_mq(1024, 'a', -1)", "22023", negative);
    check("SELECT test_shm_mq(1024, 'a', -1, 1)", "22023", negative);
    check(
        "SELECT test_shm_mq(1024, 'a', 1, 0)",
        "22023",
        "number of workers must be an integer value greater than zero",
    );
    check(
        "SELECT test_shm_mq_pipelined(1024, 'a', -1)",
        "22023",
        negative,
    );
    check(
        "SELECT test_shm_mq_pipelined(1024, 'a', 1, -1, false)",
        "22023",
        "number of workers must be an integer value greater than or equal to zero",
    );
    let min = pgipc_shm_mq::minimum_size();
    check(
        "SELECT test_shm_mq_pipelined(10, repeat('x', 3))",
        "22023",
        &format!("queue size must be at least {min} bytes"),
    );
    // The defaults (1, 1, true) reach the backend, which has no PGPROC here.
    check(
        "SELECT test_shm_mq(1024, 'a')",
        "55000",
        "no PGPROC to wait on",
    );
    check(
        "SELECT test_shm_mq_pipelined(1024, 'a')",
        "55000",
        "no PGPROC to wait on",
    );
    // No overload takes a sixth argument.
    let e = pgipc_query::query_text(
        "SELECT test_shm_mq_pipelined(1024, 'a', 1, 1, true, 1)",
        &catalog,
        &mut s,
    )
    .expect_err("six arguments");
    assert_eq!(e.sqlstate, "42883");
}

#[test]
fn the_query_layer_has_the_dsm_registry_functions_and_view() {
    let shm = pgipc_shmem::Shmem::create_for_tests(1 << 20).expect("segment");
    let reg = pgipc_dsm_registry::shmem_init(&shm).expect("registry");
    let mut catalog = pgipc_query::Catalog::new();
    crate::register_dsm_registry(&mut catalog, std::rc::Rc::new(NoBackend(shm)));
    let mut s = pgipc_query::GucSession::new(pgipc_guc::Settings::new());
    let (cols, rows) = pgipc_query::query_text(
        "SELECT name, type, size FROM pg_dsm_registry_allocations",
        &catalog,
        &mut s,
    )
    .expect("the view");
    assert_eq!(cols.len(), 3);
    assert!(rows.is_empty(), "{rows:?}");
    // (No DSM control segment exists in a unit test: the whole-server test fills the table.)
    drop(reg);
    let e = pgipc_query::query_text("SELECT get_val_in_shmem(1)", &catalog, &mut s)
        .expect_err("no such overload");
    assert_eq!(e.sqlstate, "42883");
}

#[test]
fn a_workers_error_crosses_the_error_queue_with_context_parallel_worker() {
    use crate::error_queue::{decode, encode};
    let e = TestShmMqError::Corrupted {
        detail: "The new and original messages differ at byte 3 of 10.".into(),
    };
    let wire = encode(&e);
    assert_eq!(wire[0], b'E');
    assert_eq!(wire.last(), Some(&0));
    let r = decode(&wire).expect("a well-formed ErrorResponse");
    assert_eq!(r.sqlstate, "XX000");
    assert_eq!(r.message, "message corrupted");
    assert_eq!(r.detail.as_deref(), e.detail());
    assert_eq!(r.context.as_deref(), Some("parallel worker"));
    // Raised by the leader: the same code, text, detail, and the CONTEXT.
    let raised = TestShmMqError::Worker(Box::new(r));
    assert_eq!(raised.sqlstate(), "XX000");
    assert_eq!(raised.to_string(), "message corrupted");
    assert_eq!(raised.context().as_deref(), Some("parallel worker"));
    // A worker's own CONTEXT keeps its lines, `parallel worker` last (and a relayed error
    // gets one line per hop, as PostgreSQL's nested parallelism would).
    let again = decode(&encode(&raised)).expect("relayed");
    assert_eq!(
        again.context.as_deref(),
        Some("parallel worker\nparallel worker")
    );
    // A termination request travels as FATAL and keeps its code.
    let fatal = encode(&TestShmMqError::Terminated);
    assert!(fatal.windows(7).any(|w| w == b"SFATAL\0"));
    assert_eq!(decode(&fatal).expect("fatal").sqlstate, "57P01");
}

#[test]
fn anything_but_an_error_response_on_an_error_queue_is_an_internal_error() {
    use crate::error_queue::decode;
    for bad in [&b""[..], b"X", b"Zabc", b"ECXX000", b"E"] {
        match decode(bad) {
            Err(e @ TestShmMqError::UnrecognizedMessage { .. }) => {
                assert_eq!(e.sqlstate(), "XX000");
                assert!(e
                    .to_string()
                    .starts_with("unrecognized message type received from parallel worker"));
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // A malformed SQLSTATE never escapes as such.
    let r = decode(b"ECbad\0Mm\0\0").expect("well-formed");
    assert_eq!(r.sqlstate, "XX000");
}
