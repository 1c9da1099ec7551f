//! Parsers against hand-built byte strings, encoders against `postgres-protocol`'s decoders,
//! random input against everything, and the socket paths over socket pairs.

use super::*;
use bytes::BytesMut;
use postgres_protocol::message::{backend, frontend as fe};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A startup packet: length word + code + payload.
fn packet(code: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn params(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (n, val) in pairs {
        v.extend_from_slice(n.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
    v.push(0);
    v
}

/// Parses what follows the length word of a hand-built packet.
fn check_startup(bytes: &[u8]) -> Result<StartupRequest, StartupError> {
    parse_startup_packet(&bytes[4..], false, false)
}

#[test]
fn startup_message_with_parameters() {
    let p = packet(
        ProtocolVersion::V3_0.code(),
        &params(&[
            ("user", "alice"),
            ("application_name", "psql"),
            ("client_encoding", "UTF8"),
            ("_pq_.compression", "on"),
        ]),
    );
    let StartupRequest::Startup(s) = check_startup(&p).unwrap() else {
        panic!("not a startup message");
    };
    assert_eq!(s.user, "alice");
    assert_eq!(s.database, "alice", "database defaults to the user");
    assert_eq!(s.param("application_name"), Some("psql"));
    assert_eq!(s.unrecognized_protocol_options, vec!["_pq_.compression"]);
    assert!(s.needs_negotiation());
    assert_eq!(s.version(), ProtocolVersion::V3_0);
    assert_eq!(s.replication, Replication::Off);
}

#[test]
fn startup_versions() {
    let body = params(&[("user", "u"), ("database", "d")]);
    let v = |maj, min| check_startup(&packet(ProtocolVersion::new(maj, min).code(), &body));
    let StartupRequest::Startup(s) = v(3, 2).unwrap() else {
        panic!()
    };
    assert!(!s.needs_negotiation());
    assert_eq!(s.database, "d");
    assert_eq!(s.version().cancel_key_len(), 32);
    let StartupRequest::Startup(s) = v(3, 9).unwrap() else {
        panic!()
    };
    assert!(s.needs_negotiation());
    assert_eq!(s.version(), ProtocolVersion::V3_2);
    let e = v(2, 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported frontend protocol 2.0: server supports 3.0 to 3.2"
    );
    assert_eq!(e.sqlstate(), "0A000");
    assert!(e.is_reported_to_client());
    assert!(matches!(v(4, 0), Err(StartupError::UnsupportedProtocol(_))));
}

#[test]
fn startup_layout_errors() {
    let code = ProtocolVersion::V3_0.code();
    // No terminator at all, value missing, bytes after the terminator, no user.
    for payload in [
        &b""[..],
        b"user\0alice\0",
        b"user\0",
        b"user\0alice\0\0x",
        b"user\0alice\0\0\0",
    ] {
        let e = check_startup(&packet(code, payload)).unwrap_err();
        assert!(matches!(e, StartupError::InvalidLayout), "{payload:?}: {e}");
    }
    let e = check_startup(&packet(code, b"database\0x\0\0")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no PostgreSQL user name specified in startup packet"
    );
    assert_eq!(e.sqlstate(), "28000");
    let e = check_startup(&packet(code, &params(&[("user", "")]))).unwrap_err();
    assert!(matches!(e, StartupError::NoUser));
}

#[test]
fn startup_replication_and_long_names() {
    let code = ProtocolVersion::V3_0.code();
    let r = |v: &str| check_startup(&packet(code, &params(&[("user", "u"), ("replication", v)])));
    for (v, want) in [
        ("true", Replication::Physical),
        ("on", Replication::Physical),
        ("1", Replication::Physical),
        ("no", Replication::Off),
        ("off", Replication::Off),
        ("database", Replication::Database),
    ] {
        let StartupRequest::Startup(s) = r(v).unwrap() else {
            panic!()
        };
        assert_eq!(s.replication, want, "{v}");
    }
    let e = r("o").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value for parameter \"replication\": \"o\""
    );
    assert!(e.hint().is_some());
    let long = "x".repeat(100);
    let StartupRequest::Startup(s) =
        check_startup(&packet(code, &params(&[("user", &long)]))).unwrap()
    else {
        panic!()
    };
    assert_eq!(s.user.len(), MAX_NAME_LEN);
}

#[test]
fn special_requests() {
    assert_eq!(
        check_startup(&packet(NEGOTIATE_SSL_CODE, b"")).unwrap(),
        StartupRequest::Ssl
    );
    assert_eq!(
        check_startup(&packet(NEGOTIATE_GSS_CODE, b"")).unwrap(),
        StartupRequest::Gss
    );
    // A second SSLRequest is just an unsupported protocol (1234.5679).
    let p = packet(NEGOTIATE_SSL_CODE, b"");
    let e = parse_startup_packet(&p[4..], true, false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.2"
    );

    let mut c = 4242i32.to_be_bytes().to_vec();
    c.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(
        check_startup(&packet(CANCEL_REQUEST_CODE, &c)).unwrap(),
        StartupRequest::Cancel {
            pid: 4242,
            key: vec![1, 2, 3, 4]
        }
    );
    c.extend_from_slice(&[9; 252]);
    let StartupRequest::Cancel { key, .. } =
        check_startup(&packet(CANCEL_REQUEST_CODE, &c)).unwrap()
    else {
        panic!()
    };
    assert_eq!(key.len(), 256);
    c.push(0);
    let e = check_startup(&packet(CANCEL_REQUEST_CODE, &c)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid length of cancel key in cancel request packet"
    );
    assert!(!e.is_reported_to_client());
    // The 12-byte request with an empty key (pid only) is refused too.
    let e = check_startup(&packet(CANCEL_REQUEST_CODE, &4242i32.to_be_bytes())).unwrap_err();
    assert!(matches!(e, StartupError::InvalidCancelKeyLength), "{e:?}");
    assert!(!e.is_reported_to_client());
    let e = check_startup(&packet(CANCEL_REQUEST_CODE, &[0, 0, 1])).unwrap_err();
    assert!(matches!(e, StartupError::InvalidCancelLength));
    assert_eq!(e.to_string(), "invalid length of cancel request packet");
}

#[test]
fn startup_length_limits() {
    assert!(check_startup_length(7).is_err());
    assert_eq!(check_startup_length(8).unwrap(), 4);
    assert_eq!(check_startup_length(10_004).unwrap(), 10_000);
    let e = check_startup_length(10_005).unwrap_err();
    assert_eq!(e.to_string(), "invalid length of startup packet");
    assert!(check_startup_length(u32::MAX).is_err());
    assert!(check_startup_length(0).is_err());
}

/// Our startup parser agrees with the packets the Rust client library writes.
#[test]
fn startup_message_from_postgres_protocol() {
    let mut buf = BytesMut::new();
    fe::startup_message(
        [("user", "bob"), ("database", "db1"), ("options", "-c x=1")],
        &mut buf,
    )
    .unwrap();
    let StartupRequest::Startup(s) = check_startup(&buf).unwrap() else {
        panic!()
    };
    assert_eq!((s.user.as_str(), s.database.as_str()), ("bob", "db1"));
    assert_eq!(s.options.as_deref(), Some("-c x=1"));
    let mut buf = BytesMut::new();
    fe::ssl_request(&mut buf);
    assert_eq!(check_startup(&buf).unwrap(), StartupRequest::Ssl);
    let mut buf = BytesMut::new();
    fe::cancel_request(77, 0x0102_0304, &mut buf);
    assert_eq!(
        check_startup(&buf).unwrap(),
        StartupRequest::Cancel {
            pid: 77,
            key: vec![1, 2, 3, 4]
        }
    );
}

#[test]
fn frontend_messages_from_postgres_protocol() {
    // Each frontend encoder's output, minus type byte and length, parsed back.
    let body = |buf: &BytesMut| buf[5..].to_vec();
    let mut buf = BytesMut::new();
    fe::query("SELECT 1", &mut buf).unwrap();
    assert_eq!(buf[0], b'Q');
    assert_eq!(parse_query(&body(&buf)).unwrap(), "SELECT 1");

    let mut buf = BytesMut::new();
    fe::parse("s1", "SELECT $1", [23u32, 25], &mut buf).unwrap();
    let p = parse_parse(&body(&buf)).unwrap();
    assert_eq!(
        p,
        ParseMsg {
            name: "s1".into(),
            query: "SELECT $1".into(),
            param_types: vec![23, 25]
        }
    );

    let mut buf = BytesMut::new();
    fe::bind(
        "p1",
        "s1",
        [1i16],
        [Some(&b"42"[..]), None],
        |v: Option<&[u8]>, out: &mut BytesMut| match v {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(postgres_protocol::IsNull::No)
            }
            None => Ok(postgres_protocol::IsNull::Yes),
        },
        [0i16, 1],
        &mut buf,
    )
    .map_err(|_| ())
    .unwrap();
    let b = parse_bind(&body(&buf)).unwrap();
    assert_eq!(b.portal, "p1");
    assert_eq!(b.statement, "s1");
    assert_eq!(b.param_formats, vec![1]);
    assert_eq!(b.params, vec![Some(b"42".to_vec()), None]);
    assert_eq!(b.result_formats, vec![0, 1]);

    let mut buf = BytesMut::new();
    fe::describe(b'S', "s1", &mut buf).unwrap();
    assert_eq!(
        parse_target(b'D', &body(&buf)).unwrap(),
        TargetMsg {
            target: Target::Statement,
            name: "s1".into()
        }
    );
    let mut buf = BytesMut::new();
    fe::close(b'P', "", &mut buf).unwrap();
    assert_eq!(
        parse_target(b'C', &body(&buf)).unwrap(),
        TargetMsg {
            target: Target::Portal,
            name: String::new()
        }
    );
    let mut buf = BytesMut::new();
    fe::execute("p1", 10, &mut buf).unwrap();
    assert_eq!(
        parse_execute(&body(&buf)).unwrap(),
        ExecuteMsg {
            portal: "p1".into(),
            max_rows: 10
        }
    );
}

#[test]
fn frontend_message_errors() {
    assert_eq!(
        parse_query(b"SELECT 1").unwrap_err(),
        FormatError::InvalidString
    );
    assert_eq!(
        parse_query(b"SELECT 1\0x").unwrap_err(),
        FormatError::InvalidFormat
    );
    assert_eq!(
        parse_execute(b"p\0\0\0").unwrap_err(),
        FormatError::InsufficientData
    );
    let e = parse_target(b'D', b"X\0").unwrap_err();
    assert_eq!(e.to_string(), "invalid DESCRIBE message subtype 88");
    let e = parse_target(b'C', b"Q\0").unwrap_err();
    assert_eq!(e.to_string(), "invalid CLOSE message subtype 81");
    // Negative parameter count; negative (other than -1) value length.
    assert_eq!(
        parse_parse(b"\0q\0\xff\xff").unwrap_err(),
        FormatError::InvalidFormat
    );
    let bad_len = b"\0\0\0\0\0\x01\xff\xff\xff\xfe\0\0";
    assert_eq!(
        parse_bind(bad_len).unwrap_err(),
        FormatError::InsufficientData
    );
    // A huge count with no data behind it fails without allocating it.
    assert_eq!(
        parse_parse(b"\0q\0\x7f\xff").unwrap_err(),
        FormatError::InsufficientData
    );
    assert_eq!(frontend_message_limit(b'Q'), Some(PQ_LARGE_MESSAGE_LIMIT));
    assert_eq!(frontend_message_limit(b'S'), Some(PQ_SMALL_MESSAGE_LIMIT));
    assert_eq!(frontend_message_limit(b'Z'), None);
}

/// Every backend message we build decodes with the client library's decoder.
#[test]
fn backend_messages_decode_with_postgres_protocol() {
    let mut out = MessageBuf::new();
    out.authentication_ok();
    out.parameter_status("server_version", "18.0");
    out.backend_key_data(1234, &[7; 4]); // this decoder knows only 3.0's 4-byte keys
    out.row_description(&[FieldDescription::computed("?column?", 23, 4)]);
    out.data_row(&[Some(b"1"), None]);
    out.command_complete("SELECT 1");
    out.empty_query_response();
    out.error_response(
        &ErrorFields::new(Severity::Error, "42601", "syntax error at or near \"x\"")
            .with_position(1)
            .with_hint("h"),
    );
    out.notice_response(&ErrorFields::new(Severity::Warning, "01000", "w").with_detail("d"));
    out.parse_complete();
    out.bind_complete();
    out.close_complete();
    out.no_data();
    out.parameter_description(&[23, 25]);
    out.portal_suspended();
    out.ready_for_query(TransactionStatus::InBlock);
    let mut buf = BytesMut::from(out.as_bytes());
    let mut next = || backend::Message::parse(&mut buf).unwrap().unwrap();
    use fallible_iterator_shim::{collect_fields, collect_oids, first};
    use postgres_protocol::message::backend::Message as M;
    assert!(matches!(next(), M::AuthenticationOk));
    let M::ParameterStatus(p) = next() else {
        panic!()
    };
    assert_eq!(
        (p.name().unwrap(), p.value().unwrap()),
        ("server_version", "18.0")
    );
    let M::BackendKeyData(k) = next() else {
        panic!()
    };
    assert_eq!(k.process_id(), 1234);
    let M::RowDescription(r) = next() else {
        panic!()
    };
    let f = first(r.fields());
    assert_eq!((f.0, f.1), ("?column?".to_owned(), 23));
    let M::DataRow(d) = next() else { panic!() };
    assert_eq!(d.buffer().len(), 4 + 1 + 4);
    let M::CommandComplete(c) = next() else {
        panic!()
    };
    assert_eq!(c.tag().unwrap(), "SELECT 1");
    assert!(matches!(next(), M::EmptyQueryResponse));
    let M::ErrorResponse(e) = next() else {
        panic!()
    };
    let fields = collect_fields(e.fields());
    assert_eq!(
        fields,
        vec![
            (b'S', "ERROR".to_owned()),
            (b'V', "ERROR".to_owned()),
            (b'C', "42601".to_owned()),
            (b'M', "syntax error at or near \"x\"".to_owned()),
            (b'H', "h".to_owned()),
            (b'P', "1".to_owned()),
        ]
    );
    let M::NoticeResponse(n) = next() else {
        panic!()
    };
    assert_eq!(collect_fields(n.fields())[4], (b'D', "d".to_owned()));
    assert!(matches!(next(), M::ParseComplete));
    assert!(matches!(next(), M::BindComplete));
    assert!(matches!(next(), M::CloseComplete));
    assert!(matches!(next(), M::NoData));
    let M::ParameterDescription(pd) = next() else {
        panic!()
    };
    assert_eq!(collect_oids(pd.parameters()), vec![23, 25]);
    assert!(matches!(next(), M::PortalSuspended));
    let M::ReadyForQuery(z) = next() else {
        panic!()
    };
    assert_eq!(z.status(), b'T');
    assert!(buf.is_empty());
}

#[test]
fn an_error_with_a_context_carries_it_as_the_w_field_after_the_position() {
    let mut out = MessageBuf::new();
    let mut f = ErrorFields::new(Severity::Error, "XX000", "m").with_position(3);
    f.context = Some("parallel worker".into());
    out.error_response(&f);
    let mut buf = BytesMut::from(out.as_bytes());
    let postgres_protocol::message::backend::Message::ErrorResponse(e) =
        backend::Message::parse(&mut buf).unwrap().unwrap()
    else {
        panic!("not an ErrorResponse")
    };
    let fields = fallible_iterator_shim::collect_fields(e.fields());
    assert_eq!(
        &fields[4..],
        &[(b'P', "3".to_owned()), (b'W', "parallel worker".to_owned())]
    );
}

/// Small adapters over `postgres-protocol`'s fallible iterators.
mod fallible_iterator_shim {
    use postgres_protocol::message::backend::{ErrorFields, Fields, Parameters};

    pub(super) fn first(mut f: Fields<'_>) -> (String, u32) {
        use fallible_iterator::FallibleIterator;
        let x = f.next().unwrap().unwrap();
        (x.name().to_owned(), x.type_oid())
    }
    pub(super) fn collect_fields(mut f: ErrorFields<'_>) -> Vec<(u8, String)> {
        use fallible_iterator::FallibleIterator;
        let mut v = Vec::new();
        while let Some(x) = f.next().unwrap() {
            v.push((
                x.type_(),
                String::from_utf8_lossy(x.value_bytes()).into_owned(),
            ));
        }
        v
    }
    pub(super) fn collect_oids(mut p: Parameters<'_>) -> Vec<u32> {
        use fallible_iterator::FallibleIterator;
        let mut v = Vec::new();
        while let Some(x) = p.next().unwrap() {
            v.push(x);
        }
        v
    }
}

#[test]
fn negotiate_protocol_version_bytes() {
    let mut out = MessageBuf::new();
    out.negotiate_protocol_version(ProtocolVersion::V3_2, &["_pq_.x".to_owned()]);
    assert_eq!(out.as_bytes(), b"v\0\0\0\x13\0\x03\0\x02\0\0\0\x01_pq_.x\0");
    let mut out = MessageBuf::new();
    out.backend_key_data(5, &[0xab; 32]);
    let mut want = b"K\0\0\0\x28\0\0\0\x05".to_vec();
    want.extend([0xab; 32]);
    assert_eq!(out.as_bytes(), &want[..]);
    let mut out = MessageBuf::new();
    out.ready_for_query(TransactionStatus::Idle);
    assert_eq!(out.as_bytes(), b"Z\0\0\0\x05I");
    // A NUL inside a string cannot split the message.
    let mut out = MessageBuf::new();
    out.command_complete("a\0b");
    assert_eq!(out.as_bytes(), b"C\0\0\0\x06a\0");
}

fn pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().unwrap()
}

const SOON: Duration = Duration::from_secs(5);

#[test]
fn conn_reads_startup_packets_and_messages() {
    let (server, mut client) = pair();
    let mut conn = Conn::new(server.as_fd(), PollWait).unwrap();
    // Everything at once, split in odd places by the client's writes.
    let mut bytes = packet(NEGOTIATE_SSL_CODE, b"");
    bytes.extend(packet(
        ProtocolVersion::V3_0.code(),
        &params(&[("user", "u")]),
    ));
    bytes.extend(b"Q\0\0\0\x0dSELECT 1\0");
    bytes.extend(b"X\0\0\0\x04");
    let writer = std::thread::spawn(move || {
        for chunk in bytes.chunks(3) {
            client.write_all(chunk).unwrap();
        }
        client
    });
    let d = Instant::now() + SOON;
    let p = conn.read_startup_packet(d).unwrap();
    assert_eq!(
        parse_startup_packet(&p, false, false).unwrap(),
        StartupRequest::Ssl
    );
    let p = conn.read_startup_packet(d).unwrap();
    assert!(matches!(
        parse_startup_packet(&p, true, false).unwrap(),
        StartupRequest::Startup(_)
    ));
    let (ty, body) = conn.read_message(Some(d)).unwrap();
    assert_eq!(
        (ty, parse_query(&body).unwrap().as_str()),
        (b'Q', "SELECT 1")
    );
    assert_eq!(conn.read_message(Some(d)).unwrap(), (b'X', Vec::new()));
    let mut client = writer.join().unwrap();
    conn.out().ready_for_query(TransactionStatus::Idle);
    conn.flush(Some(d)).unwrap();
    let mut got = [0u8; 6];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"Z\0\0\0\x05I");
    drop(client);
    assert!(matches!(conn.read_message(Some(d)), Err(ReadError::Eof)));
}

/// Each bad start: what the reader reports.
#[test]
fn conn_startup_errors() {
    let check = |bytes: &[u8], want: &str| {
        let (server, mut client) = pair();
        client.write_all(bytes).unwrap();
        drop(client);
        let mut conn = Conn::new(server.as_fd(), PollWait).unwrap();
        let e = conn.read_startup_packet(Instant::now() + SOON).unwrap_err();
        assert_eq!(format!("{e:?}"), want, "{bytes:?}");
    };
    check(b"", "NoData");
    check(b"\0\0", "Incomplete");
    check(b"\0\0\0\x03", "InvalidLength");
    check(b"\x7f\xff\xff\xff", "InvalidLength");
    check(b"\0\0\x27\x15", "InvalidLength"); // 10005
    check(b"\0\0\0\x10\0\x03\0\0user", "Incomplete");
    // Silence until the deadline.
    let (server, _client) = pair();
    let mut conn = Conn::new(server.as_fd(), PollWait).unwrap();
    let t = Instant::now();
    let e = conn
        .read_startup_packet(t + Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(e, StartupError::TimedOut));
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[test]
fn conn_message_errors() {
    let check = |bytes: &[u8], want: &str| {
        let (server, mut client) = pair();
        client.write_all(bytes).unwrap();
        drop(client);
        let mut conn = Conn::new(server.as_fd(), PollWait).unwrap();
        let e = conn.read_message(Some(Instant::now() + SOON)).unwrap_err();
        assert_eq!(e.to_string(), want, "{bytes:?}");
    };
    check(b"Z\0\0\0\x04", "invalid frontend message type 90");
    check(b"S\0\0\0\x03", "invalid message length");
    check(b"S\0\0\x27\x11", "invalid message length"); // 10001 > small limit
    check(b"Q\0\0", "incomplete message from client");
    check(b"Q\0\0\0\x10abc", "incomplete message from client");
}

#[test]
fn conn_large_query_and_backpressure() {
    let (server, mut client) = pair();
    let mut conn = Conn::new(server.as_fd(), PollWait).unwrap();
    let q = "x".repeat(200_000);
    let mut msg = vec![b'Q'];
    msg.extend(((q.len() + 5) as u32).to_be_bytes());
    msg.extend(q.as_bytes());
    msg.push(0);
    let reader = std::thread::spawn(move || {
        client.write_all(&msg).unwrap();
        let mut all = Vec::new();
        client.read_to_end(&mut all).unwrap();
        all.len()
    });
    let (_, body) = conn.read_message(None).unwrap();
    assert_eq!(body.len(), q.len() + 1);
    // More output than a socket buffer holds: flush waits for room.
    for _ in 0..1000 {
        conn.out().data_row(&[Some(&q.as_bytes()[..1000])]);
    }
    let n = conn.out().len();
    conn.flush(Some(Instant::now() + SOON)).unwrap();
    drop(conn);
    drop(server);
    assert_eq!(reader.join().unwrap(), n);
}

#[test]
fn listen_tcp_and_accept() {
    let fds = listen_tcp("127.0.0.1", 0).unwrap();
    assert_eq!(fds.len(), 1);
    let addr = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrIn>(
        std::os::fd::AsRawFd::as_raw_fd(&fds[0]),
    )
    .unwrap();
    assert_eq!(
        accept_nonblocking(fds[0].as_fd()).unwrap().map(|_| ()),
        None
    );
    let _c = std::net::TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
    let mut got = None;
    for _ in 0..100 {
        got = accept_nonblocking(fds[0].as_fd()).unwrap();
        if got.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(got.is_some());
    // The same port again: PostgreSQL's message and hint.
    let e = listen_tcp_addr(
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port())),
        DEFAULT_BACKLOG,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("could not bind IPv4 address \"127.0.0.1\": "),
        "{e}"
    );
    assert_eq!(
        e.hint().unwrap(),
        format!(
            "Is another postmaster already running on port {}? If not, wait a few seconds and retry.",
            addr.port()
        )
    );
    assert!(matches!(
        listen_tcp("127.0.0.1", addr.port()),
        Err(ListenError::NoTcpSockets)
    ));
    assert!(listen_tcp("", 1).unwrap().is_empty());
    // PostgreSQL's SplitGUCList refuses empty elements.
    assert!(matches!(
        listen_tcp("localhost,,", 1),
        Err(ListenError::ListSyntax("listen_addresses"))
    ));
    assert_eq!(
        ListenError::ListSyntax("listen_addresses").to_string(),
        "invalid list syntax in parameter \"listen_addresses\""
    );
}

#[test]
fn listen_star_binds_both_families() {
    // Port 0 in two binds would give two ports; take one free port from an IPv4 bind first.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let addrs = resolve_listen_address("*", port).unwrap();
    assert_eq!(addrs.len(), 2);
    match listen_tcp("*", port) {
        Ok(fds) => assert!(!fds.is_empty()),
        // Someone else took the port in between: nothing to assert.
        Err(ListenError::NoTcpSockets) => {}
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn unix_socket_with_lock_file() {
    let dir = std::env::temp_dir().join(format!("pgipc-libpq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = ListenConfig {
        listen_addresses: String::new(),
        port: 54329,
        unix_socket_directories: dir.display().to_string(),
        unix_socket_permissions: 0o700,
        data_dir: "/data".into(),
        backlog: 10,
    };
    let socks = ListenSockets::open(&cfg).unwrap();
    let sock = dir.join(".s.PGSQL.54329");
    let lock = dir.join(".s.PGSQL.54329.lock");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let text = std::fs::read_to_string(&lock).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0], std::process::id().to_string());
    assert_eq!(lines[1], "/data");
    assert_eq!(lines[3], "54329");
    assert_eq!(lines[4], dir.display().to_string());
    let _c = UnixStream::connect(&sock).unwrap();
    // Our own pid in the lock file counts as stale (a restart), so a second open succeeds
    // after the first is gone; a live foreign pid does not.
    std::fs::write(dir.join(".s.PGSQL.54330.lock"), "1\n/x\n0\n54330\n/d\n").unwrap();
    let e = listen_unix(&dir, &UnixSocketOptions::new(54330, "/data")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "lock file \"{}\" already exists",
            dir.join(".s.PGSQL.54330.lock").display()
        )
    );
    assert!(e
        .hint()
        .unwrap()
        .starts_with("Is another postmaster (PID 1) using socket file"));
    // A dead pid's lock file is replaced.
    std::fs::write(dir.join(".s.PGSQL.54330.lock"), "-2147483000\n").unwrap();
    let u = listen_unix(&dir, &UnixSocketOptions::new(54330, "/data")).unwrap();
    assert!(u.socket_path.exists());
    drop(socks);
    assert!(!sock.exists() && !lock.exists(), "files removed on drop");
    // An empty lock file (a server starting, or one that crashed while starting) and one
    // without a pid stop the start, as in PostgreSQL, and are left alone.
    let l31 = dir.join(".s.PGSQL.54331.lock");
    std::fs::write(&l31, "").unwrap();
    let e = listen_unix(&dir, &UnixSocketOptions::new(54331, "/data")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("lock file \"{}\" is empty", l31.display())
    );
    assert_eq!(
        e.hint().unwrap(),
        "Either another server is starting, or the lock file is the remnant of a previous \
         server startup crash."
    );
    assert_eq!(std::fs::read(&l31).unwrap(), b"");
    std::fs::write(&l31, "garbage\n").unwrap();
    let e = listen_unix(&dir, &UnixSocketOptions::new(54331, "/data")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("bogus data in lock file \"{}\": \"garbage\"", l31.display())
    );
    assert_eq!(std::fs::read_to_string(&l31).unwrap(), "garbage\n");
    // A lock file held by a live process in one of the directories fails the whole open
    // (FATAL in PostgreSQL), and the sockets already opened leave no file behind.
    let dir2 = dir.join("second");
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::write(&l31, "1\n").unwrap();
    let cfg2 = ListenConfig {
        port: 54331,
        unix_socket_directories: format!("{},{}", dir2.display(), dir.display()),
        ..cfg
    };
    assert!(matches!(
        ListenSockets::open(&cfg2),
        Err(ListenError::LockFileExists { pid: 1, .. })
    ));
    assert!(!dir2.join(".s.PGSQL.54331").exists());
    assert!(!dir2.join(".s.PGSQL.54331.lock").exists());
    std::fs::remove_file(&l31).unwrap();
    let long = dir.join("y".repeat(120));
    assert!(matches!(
        listen_unix(&long, &UnixSocketOptions::new(1, "/d")),
        Err(ListenError::PathTooLong { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fork_failure_report() {
    let (server, mut client) = pair();
    report_fork_failure(server.as_fd(), &std::io::Error::from_raw_os_error(11));
    drop(server);
    let mut got = String::new();
    client.read_to_string(&mut got).unwrap();
    assert!(
        got.starts_with("Ecould not fork new process for connection: "),
        "{got}"
    );
    assert!(got.ends_with('\n'));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn startup_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                   ssl in any::<bool>(), gss in any::<bool>()) {
        let _ = parse_startup_packet(&bytes, ssl, gss);
    }

    #[test]
    fn startup_parser_never_panics_on_v3(tail in proptest::collection::vec(
        prop_oneof![Just(0u8), any::<u8>()], 0..200)) {
        let mut p = ProtocolVersion::V3_0.code().to_be_bytes().to_vec();
        p.extend(tail);
        let _ = parse_startup_packet(&p, false, false);
        let mut c = CANCEL_REQUEST_CODE.to_be_bytes().to_vec();
        c.extend(&p);
        let _ = parse_startup_packet(&c, false, false);
    }

    #[test]
    fn message_parsers_never_panic(bytes in proptest::collection::vec(
        prop_oneof![Just(0u8), Just(0xffu8), any::<u8>()], 0..200)) {
        let _ = parse_query(&bytes);
        let _ = parse_parse(&bytes);
        let _ = parse_bind(&bytes);
        let _ = parse_target(b'D', &bytes);
        let _ = parse_target(b'C', &bytes);
        let _ = parse_execute(&bytes);
    }

    #[test]
    fn stream_readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (server, mut client) = pair();
        client.write_all(&bytes).unwrap();
        drop(client);
        let mut conn = Conn::new(server.as_fd(), PollWait).unwrap();
        let d = Instant::now() + SOON;
        let _ = conn.read_startup_packet(d);
        while conn.read_message(Some(d)).is_ok() {}
    }

    /// Whatever text goes in (NULs included), what we build decodes with the client library.
    #[test]
    fn built_messages_always_decode(name in "\\PC{0,20}", value in any::<String>(),
                                    cells in proptest::collection::vec(
                                        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)), 0..5)) {
        let mut out = MessageBuf::new();
        out.parameter_status(&name, &value);
        out.row_description(&[FieldDescription::computed(&name, 25, -1)]);
        let refs: Vec<Option<&[u8]>> = cells.iter().map(|c| c.as_deref()).collect();
        out.data_row(&refs);
        out.error_response(&ErrorFields::new(Severity::Error, "XX000", value.clone()).with_detail(name.clone()));
        out.command_complete(&value);
        let mut buf = BytesMut::from(out.as_bytes());
        let mut n = 0;
        while !buf.is_empty() {
            prop_assert!(backend::Message::parse(&mut buf).unwrap().is_some());
            n += 1;
        }
        prop_assert_eq!(n, 5);
    }

    #[test]
    fn startup_round_trip(user in "[a-z]{1,20}", app in "[ -~&&[^\0]]{0,30}") {
        let p = packet(ProtocolVersion::V3_0.code(), &params(&[("user", &user), ("application_name", &app)]));
        let StartupRequest::Startup(s) = check_startup(&p).unwrap() else { panic!() };
        prop_assert_eq!(&s.user, &user);
        prop_assert_eq!(s.param("application_name"), Some(app.as_str()));
    }
}
