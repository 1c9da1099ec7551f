//! The first bytes a client sends, as the backend takes them apart: up to three startup
//! packets (SSLRequest and GSSENCRequest may come before the real one), each a length word
//! checked by `check_startup_length` and a body given to `parse_startup_packet`.
//!
//! Beyond "no panic" it checks that what parsed is what a client could have meant: a cancel
//! request has a key of 1 to 256 bytes and re-encodes to exactly its bytes, a StartupMessage's
//! names obey the limits, and re-encoding a parsed StartupMessage parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgipc_libpq::{
    check_startup_length, parse_startup_packet, Replication, StartupPacket, StartupRequest,
    CANCEL_REQUEST_CODE, MAX_CANCEL_REQUEST_KEY_LENGTH, MAX_NAME_LEN, MAX_STARTUP_PACKET_LENGTH,
};

fuzz_target!(|data: &[u8]| {
    let (mut ssl_done, mut gss_done) = (false, false);
    let mut rest = data;
    for _ in 0..3 {
        let Some(word) = rest.get(..4) else { return };
        let len = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        let Ok(body_len) = check_startup_length(len) else {
            assert!(!(8..=MAX_STARTUP_PACKET_LENGTH as u32 + 4).contains(&len));
            return;
        };
        assert_eq!(body_len as u32, len - 4);
        // What the connection would wait for; a shorter input is an incomplete packet.
        let Some(body) = rest.get(4..4 + body_len) else {
            return;
        };
        rest = &rest[4 + body_len..];
        match parse_startup_packet(body, ssl_done, gss_done) {
            Ok(StartupRequest::Ssl) => {
                assert!(!ssl_done && body.len() >= 4);
                ssl_done = true;
            }
            Ok(StartupRequest::Gss) => {
                assert!(!gss_done && body.len() >= 4);
                gss_done = true;
            }
            Ok(StartupRequest::Cancel { pid, key }) => {
                // PostgreSQL 18: 1 to 256 bytes; an empty key could match a process without one.
                assert!((1..=MAX_CANCEL_REQUEST_KEY_LENGTH).contains(&key.len()));
                let mut again = CANCEL_REQUEST_CODE.to_be_bytes().to_vec();
                again.extend_from_slice(&pid.to_be_bytes());
                again.extend_from_slice(&key);
                assert_eq!(again, body, "a cancel request is exactly code, pid and key");
                return;
            }
            Ok(StartupRequest::Startup(p)) => {
                check_startup(&p, ssl_done, gss_done);
                return;
            }
            Err(_) => return,
        }
    }
});

fn check_startup(p: &StartupPacket, ssl_done: bool, gss_done: bool) {
    assert_eq!(p.requested.major(), 3);
    assert!(!p.user.is_empty() && p.user.len() <= MAX_NAME_LEN);
    assert!(!p.database.is_empty() && p.database.len() <= MAX_NAME_LEN);
    for (name, _) in &p.params {
        assert!(!name.is_empty() && !name.starts_with("_pq_."));
        assert!(!["user", "database", "options", "replication"].contains(&name.as_str()));
    }
    // What a client would send to mean exactly this; it must parse to the same packet.
    let mut body = p.requested.code().to_be_bytes().to_vec();
    let mut pair = |name: &str, value: &str| {
        for s in [name, value] {
            body.extend_from_slice(s.as_bytes());
            body.push(0);
        }
    };
    pair("user", &p.user);
    pair("database", &p.database);
    if let Some(o) = &p.options {
        pair("options", o);
    }
    match p.replication {
        Replication::Off => {}
        Replication::Physical => pair("replication", "true"),
        Replication::Database => pair("replication", "database"),
    }
    for (n, v) in &p.params {
        pair(n, v);
    }
    for n in &p.unrecognized_protocol_options {
        pair(n, "");
    }
    body.push(0);
    match parse_startup_packet(&body, ssl_done, gss_done) {
        Ok(StartupRequest::Startup(again)) => assert_eq!(&again, p),
        other => panic!("re-encoded startup packet parsed as {other:?}"),
    }
}
