//! The server side of a SCRAM-SHA-256 exchange, fed what a client could send: a
//! SASLInitialResponse body (mechanism, length, data) and then a SASLResponse body, split at
//! the first 0xFF byte (which no SCRAM message, being UTF-8, can contain). The first input byte
//! picks the set-up: a real secret or a mock one (an unknown role), and whether the connection
//! is under TLS (channel binding data present).
//!
//! Beyond "no panic": an exchange on a mock secret never succeeds; an exchange never succeeds
//! before the client's final message; every error carries one of the SQLSTATEs PostgreSQL uses
//! for SCRAM errors (08P01, 0A000, XX000) and a non-empty message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgipc_libpq::parse_sasl_initial_response;
use pgipc_libpq::scram::{scram_mock_secret, SaslStep, ScramExchange, ScramSecret};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (first, second) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let Ok((mech, initial)) = parse_sasl_initial_response(first) else {
        return;
    };
    let real = mode & 1 == 0;
    let secret = real.then(|| ScramSecret::from_password("pencil", b"0123456789abcdef", 2));
    let mock = scram_mock_secret("user", b"nonce", 2);
    let cbind = (mode & 2 != 0).then(|| vec![7u8; 32]);
    let check_err = |e: &pgipc_libpq::scram::ScramError| {
        assert!(matches!(e.code, "08P01" | "0A000" | "XX000"), "{e:?}");
        assert!(!e.message.is_empty());
    };
    let mut ex = match ScramExchange::new(&mech, secret, mock, cbind) {
        Ok(ex) => ex,
        Err(e) => return check_err(&e),
    };
    let mut step = match ex.exchange(initial) {
        Ok(s) => s,
        Err(e) => return check_err(&e),
    };
    assert!(
        !matches!(step, SaslStep::Success(_)),
        "success on the client's first message"
    );
    if let SaslStep::Continue(ref d) = step {
        if d.is_empty() {
            // An initial response without data: the client-first comes as a SASLResponse.
            match ex.exchange(second) {
                Ok(s) => step = s,
                Err(e) => return check_err(&e),
            }
            assert!(!matches!(step, SaslStep::Success(_)));
            return;
        }
    }
    let Some(second) = second else { return };
    match ex.exchange(Some(second)) {
        Ok(SaslStep::Success(_)) => assert!(real, "a mock exchange succeeded"),
        Ok(_) => {}
        Err(e) => check_err(&e),
    }
    // Anything after the end is refused.
    assert!(ex.exchange(Some(b"c=biws,r=x,p=AAAA")).is_err());
});
