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
