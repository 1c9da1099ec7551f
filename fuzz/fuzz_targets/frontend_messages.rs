//! A stream of frontend messages after start-up, as a backend reads it: the bytes go through
//! a real socket into `Conn::read_message` (type byte, length word, per-type limits), and each
//! body to the decoder a backend uses for its type (`parse_query`, `parse_parse`,
//! `parse_bind`, `parse_target`, `parse_execute`).
//!
//! Beyond "no panic" it checks the framing against the protocol's rules written out here
//! independently (every message is exactly the bytes its length word covers, the right error
//! where the stream goes wrong, nothing read past the end), and that every decoded message
//! re-encodes to a body that decodes to the same value, byte for byte when the body was UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgipc_libpq::{
    parse_bind, parse_execute, parse_parse, parse_query, parse_target, Conn, MessageBuf, PollWait,
    ReadError, Target,
};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// What the protocol says the next read must give.
#[derive(Debug, PartialEq)]
enum Expected<'a> {
    Message(u8, &'a [u8]),
    Eof,
    UnexpectedEof,
    InvalidType(u8),
    InvalidLength,
}

/// The framing rules of PostgreSQL's `SocketBackend`/`pq_getmessage`, from the protocol
/// documentation rather than from the code under test.
fn expected(rest: &[u8]) -> Expected<'_> {
    let Some(&ty) = rest.first() else {
        return Expected::Eof;
    };
    let limit: usize = match ty {
        b'Q' | b'F' | b'B' | b'P' | b'd' => 0x3fff_fffe,
        b'X' | b'C' | b'D' | b'E' | b'H' | b'S' | b'c' | b'f' => 10_000,
        _ => return Expected::InvalidType(ty),
    };
    let Some(word) = rest.get(1..5) else {
        return Expected::UnexpectedEof;
    };
    let len = u32::from_be_bytes([word[0], word[1], word[2], word[3]]) as usize;
    if !(4..=limit).contains(&len) {
        return Expected::InvalidLength;
    }
    match rest.get(5..1 + len) {
        Some(body) => Expected::Message(ty, body),
        None => Expected::UnexpectedEof,
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input must fit in the socket buffer: the writer does not wait for a reader.
    if data.len() > 64 * 1024 {
        return;
    }
    let (server, mut client) = UnixStream::pair().expect("socketpair");
    client.write_all(data).expect("write to socketpair");
    drop(client);
    let mut conn = Conn::new(server.as_fd(), PollWait).expect("Conn::new");
    let deadline = Some(Instant::now() + Duration::from_secs(10));
    let mut rest = data;
    loop {
        let want = expected(rest);
        let got = conn.read_message(deadline);
        match (&got, &want) {
            (Ok((ty, body)), Expected::Message(t, b)) if ty == t && body == b => {
                rest = &rest[5 + body.len()..];
                decode(*ty, body);
            }
            (Err(ReadError::Eof), Expected::Eof)
            | (Err(ReadError::UnexpectedEof), Expected::UnexpectedEof)
            | (Err(ReadError::InvalidLength), Expected::InvalidLength) => break,
            (Err(ReadError::InvalidMessageType(t)), Expected::InvalidType(u)) if t == u => break,
            _ => panic!("read_message gave {got:?}, the protocol says {want:?}"),
        }
    }
});

/// Decodes a body as a backend does, and checks that the value re-encodes faithfully.
fn decode(ty: u8, body: &[u8]) {
    // Decoding replaces bytes that are not UTF-8 in strings; otherwise it is lossless.
    let exact = std::str::from_utf8(body).is_ok();
    let check = |again: Vec<u8>, same: bool| {
        assert!(same, "type {ty}: re-encoded body decodes differently");
        if exact {
            assert_eq!(again, body, "type {ty}: re-encoded body differs");
        }
    };
    match ty {
        b'Q' => {
            if let Ok(q) = parse_query(body) {
                let again = encode(ty, |m| {
                    m.cstr(&q);
                });
                check(again.clone(), parse_query(&again) == Ok(q));
            }
        }
        b'P' => {
            if let Ok(p) = parse_parse(body) {
                let again = encode(ty, |m| {
                    m.cstr(&p.name).cstr(&p.query);
                    m.i16(p.param_types.len() as i16);
                    for t in &p.param_types {
                        m.u32(*t);
                    }
                });
                check(again.clone(), parse_parse(&again) == Ok(p));
            }
        }
        b'B' => {
            if let Ok(b) = parse_bind(body) {
                let again = encode(ty, |m| {
                    m.cstr(&b.portal).cstr(&b.statement);
                    m.i16(b.param_formats.len() as i16);
                    for f in &b.param_formats {
                        m.i16(*f);
                    }
                    m.i16(b.params.len() as i16);
                    for p in &b.params {
                        match p {
                            None => m.i32(-1),
                            Some(v) => m.i32(v.len() as i32).bytes(v),
                        };
                    }
                    m.i16(b.result_formats.len() as i16);
                    for f in &b.result_formats {
                        m.i16(*f);
                    }
                });
                check(again.clone(), parse_bind(&again) == Ok(b));
            }
        }
        b'D' | b'C' => {
            if let Ok(t) = parse_target(ty, body) {
                let again = encode(ty, |m| {
                    m.u8(match t.target {
                        Target::Statement => b'S',
                        Target::Portal => b'P',
                    })
                    .cstr(&t.name);
                });
                check(again.clone(), parse_target(ty, &again) == Ok(t));
            }
        }
        b'E' => {
            if let Ok(e) = parse_execute(body) {
                let again = encode(ty, |m| {
                    m.cstr(&e.portal).i32(e.max_rows);
                });
                check(again.clone(), parse_execute(&again) == Ok(e));
            }
        }
        _ => {}
    }
}

/// The body of one message built with the crate's own encoder.
fn encode(ty: u8, build: impl FnOnce(&mut pgipc_libpq::MessageBuilder<'_>)) -> Vec<u8> {
    let mut out = MessageBuf::new();
    build(&mut out.begin(ty));
    let bytes = out.as_bytes();
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    assert_eq!(len + 1, bytes.len(), "the builder's length word");
    bytes[5..].to_vec()
}
