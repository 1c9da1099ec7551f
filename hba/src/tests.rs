//! The rules of pg_hba.conf, one line at a time.

use super::*;
use std::net::IpAddr;
use std::path::Path;

const SSL_ON: ParseOptions = ParseOptions { ssl_enabled: true };

/// Parses one line; `expected` is the parsed rule in short form (`type db user addr/mask
/// method [options]`) or `ERR <message>`.
fn check(line: &str, expected: &str) {
    let f = parse_hba(line, Path::new("/d/pg_hba.conf"), SSL_ON);
    let got = if let Some(e) = f.errors.first() {
        assert_eq!(e.line_number, 1);
        format!("ERR {}", e.message)
    } else {
        let l = &f.lines[0];
        let toks = |ts: &[Token]| {
            ts.iter()
                .map(|t| {
                    if t.quoted {
                        format!("\"{}\"", t.text)
                    } else {
                        t.text.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let addr = match &l.address {
            None => String::new(),
            Some(Address::All) => " all".into(),
            Some(Address::SameHost) => " samehost".into(),
            Some(Address::SameNet) => " samenet".into(),
            Some(Address::Hostname(h)) => format!(" name:{h}"),
            Some(Address::Ip { addr, mask }) => format!(" {addr}/{mask}"),
        };
        let mut s = format!(
            "{} {} {}{} {}",
            l.conn_type.name(),
            toks(&l.databases),
            toks(&l.roles),
            addr,
            l.method.name()
        );
        for o in &l.options {
            s.push(' ');
            s.push_str(o);
        }
        s
    };
    assert_eq!(got, expected, "line {line:?}");
}

#[test]
fn lines_parse_as_postgresql_reads_them() {
    check("local all all trust", "local all all trust");
    check("local all all ident", "local all all peer");
    check(
        "local sameuser +admins peer map=m",
        "local sameuser +admins peer map=m",
    );
    check(
        "host all all 127.0.0.1/32 scram-sha-256",
        "host all all 127.0.0.1/255.255.255.255 scram-sha-256",
    );
    check(
        "host all all 10.0.0.0/8 md5",
        "host all all 10.0.0.0/255.0.0.0 md5",
    );
    check(
        "host all all 0.0.0.0/0 reject",
        "host all all 0.0.0.0/0.0.0.0 reject",
    );
    check(
        "host all all ::1/128 password",
        "host all all ::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff password",
    );
    check(
        "host all all 192.168.1.0 255.255.255.0 trust",
        "host all all 192.168.1.0/255.255.255.0 trust",
    );
    check(
        "hostssl db1,db2 \"all\",bob all scram-sha-256 clientcert=verify-full",
        "hostssl db1,db2 \"all\",bob all scram-sha-256 clientcert=verify-full",
    );
    check(
        "hostnossl all all samehost trust",
        "hostnossl all all samehost trust",
    );
    check("host all all samenet trust", "host all all samenet trust");
    check(
        "host all all db.example.com trust",
        "host all all name:db.example.com trust",
    );
}

#[test]
fn malformed_lines_get_postgresql_texts() {
    check("hots all all trust", "ERR invalid connection type \"hots\"");
    check(
        "local,host all all trust",
        "ERR multiple values specified for connection type",
    );
    check("local", "ERR end-of-line before database specification");
    check("local all", "ERR end-of-line before role specification");
    check(
        "local all all",
        "ERR end-of-line before authentication method",
    );
    check(
        "host all all",
        "ERR end-of-line before IP address specification",
    );
    check(
        "host all all 127.0.0.1/32",
        "ERR end-of-line before authentication method",
    );
    check(
        "host all all 127.0.0.1 trust",
        "ERR invalid IP mask \"trust\": Name or service not known",
    );
    check(
        "host all all 127.0.0.1",
        "ERR end-of-line before netmask specification",
    );
    check(
        "host all all 127.0.0.1/33 trust",
        "ERR invalid CIDR mask in address \"127.0.0.1/33\"",
    );
    check(
        "host all all 127.0.0.1/x trust",
        "ERR invalid CIDR mask in address \"127.0.0.1/x\"",
    );
    check(
        "host all all 10.0.0.300/8 trust",
        "ERR invalid IP address \"10.0.0.300\": Name or service not known",
    );
    check(
        "host all all example.com/8 trust",
        "ERR specifying both host name and CIDR mask is invalid: \"example.com/8\"",
    );
    check(
        "host all all 10.0.0.0 ffff:: trust",
        "ERR IP address and mask do not match",
    );
    check(
        "host all all 1.2.3.4/32,5.6.7.8/32 trust",
        "ERR multiple values specified for host address",
    );
    check(
        "local all all foo",
        "ERR invalid authentication method \"foo\"",
    );
    check(
        "local all all trust,md5",
        "ERR multiple values specified for authentication type",
    );
    check(
        "local all all ldap",
        "ERR invalid authentication method \"ldap\": not supported by this build",
    );
    check(
        "host all all all ident",
        "ERR invalid authentication method \"ident\": not supported by this build",
    );
    check(
        "host all all all peer",
        "ERR peer authentication is only supported on local sockets",
    );
    check(
        "local all all peer mapx",
        "ERR authentication option not in name=value format: mapx",
    );
    check(
        "local all all peer foo=1",
        "ERR unrecognized authentication option name: \"foo\"",
    );
    check("local all all trust map=m", "ERR authentication option \"map\" is only valid for authentication methods ident, peer, gssapi, sspi, and cert");
    check(
        "host all all all trust clientcert=verify-ca",
        "ERR clientcert can only be configured for \"hostssl\" rows",
    );
    check(
        "hostssl all all all trust clientcert=maybe",
        "ERR invalid value for clientcert: \"maybe\"",
    );
    check(
        "host all all all cert",
        "ERR cert authentication is only supported on hostssl connections",
    );
    check(
        "hostssl all all all cert clientcert=verify-ca",
        "ERR clientcert only accepts \"verify-full\" when using \"cert\" authentication",
    );
    check(
        "host all all all trust clientname=CN",
        "ERR clientname can only be configured for \"hostssl\" rows",
    );
    check(
        "hostssl all all all trust clientname=cn",
        "ERR invalid value for clientname: \"cn\"",
    );
    check(
        "include other.conf",
        "ERR invalid connection type \"include\"",
    );
}

#[test]
fn cert_lines_imply_verify_full_and_take_a_map_and_clientname() {
    let f = parse_hba(
        "hostssl all all all cert map=m clientname=DN\nhostssl all all all md5 clientcert=verify-ca\n",
        Path::new("/d/pg_hba.conf"),
        SSL_ON,
    );
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    let (a, b) = (&f.lines[0], &f.lines[1]);
    assert_eq!(
        (a.method, a.clientcert, a.clientname, a.usermap.as_deref()),
        (
            AuthMethod::Cert,
            ClientCert::VerifyFull,
            ClientName::Dn,
            Some("m")
        )
    );
    assert_eq!(
        (b.clientcert, b.clientname),
        (ClientCert::VerifyCa, ClientName::Cn)
    );
    // pg_hba_file_rules.options: map, then the clientcert a cert line implies.
    assert_eq!(a.options, ["map=m", "clientcert=verify-full"]);
    assert_eq!(b.options, ["clientcert=verify-ca"]);
}

#[test]
fn errors_display_as_the_log_shows_them() {
    let f = parse_hba(
        "local all all trust\n\nhots all all trust\n",
        Path::new("/d/pg_hba.conf"),
        SSL_ON,
    );
    assert_eq!(f.lines.len(), 1);
    assert_eq!(
        f.errors[0].to_string(),
        "invalid connection type \"hots\"\nCONTEXT:  line 3 of configuration file \"/d/pg_hba.conf\""
    );
    let f = parse_hba(
        "hostssl all all all trust\n",
        Path::new("/d/pg_hba.conf"),
        ParseOptions::default(),
    );
    assert!(f.errors.is_empty());
    assert_eq!(
        f.warnings[0].message,
        "hostssl record cannot match because SSL is disabled"
    );
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The line number of the first rule that admits the connection (`0`: none).
fn first_match(conf: &str, addr: ClientAddr, db: &str, user: &str) -> usize {
    let f = parse_hba(conf, Path::new("pg_hba.conf"), SSL_ON);
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    let local = [
        (ip("192.168.7.2"), ip("255.255.255.0")),
        (ip("127.0.0.1"), ip("255.0.0.0")),
    ];
    let c = Client {
        addr,
        database: db,
        user,
        replication: false,
        local_addrs: &local,
    };
    struct Groups;
    impl Membership for Groups {
        fn is_member(&self, role: &str, group: &str) -> bool {
            role == group || (group == "admins" && role == "ann")
        }
    }
    f.check(&c, &Groups).map_or(0, |l| l.line_number)
}

#[test]
fn the_first_matching_line_decides() {
    let conf = "\
local   sameuser  all                      peer
local   all       +admins                  trust
local   db1,db2   bob                      md5
host    all       all     10.1.0.0/16      reject
hostssl all       all     0.0.0.0/0        scram-sha-256
host    all       all     ::1/128          trust
host    all       all     samenet          password
hostnossl all     \"all\"   all              trust
";
    let unix = ClientAddr::Local;
    let tcp = |a: &str, ssl| ClientAddr::Host { addr: ip(a), ssl };
    assert_eq!(first_match(conf, unix, "bob", "bob"), 1);
    assert_eq!(first_match(conf, unix, "x", "ann"), 2);
    assert_eq!(first_match(conf, unix, "db2", "bob"), 3);
    assert_eq!(first_match(conf, unix, "db3", "bob"), 0);
    assert_eq!(first_match(conf, tcp("10.1.2.3", true), "d", "u"), 4);
    assert_eq!(first_match(conf, tcp("10.2.2.3", true), "d", "u"), 5);
    assert_eq!(first_match(conf, tcp("::1", false), "d", "u"), 6);
    assert_eq!(
        first_match(conf, tcp("::ffff:10.1.0.9", false), "d", "u"),
        4
    );
    assert_eq!(first_match(conf, tcp("192.168.7.99", false), "d", "u"), 7);
    assert_eq!(first_match(conf, tcp("8.8.8.8", false), "d", "all"), 8);
    assert_eq!(first_match(conf, tcp("8.8.8.8", false), "d", "u"), 0);
}

#[test]
fn replication_connections_match_only_the_keyword() {
    let f = parse_hba(
        "local all all trust\nlocal replication all peer\n",
        Path::new("x"),
        SSL_ON,
    );
    let c = Client {
        addr: ClientAddr::Local,
        database: "replication",
        user: "u",
        replication: true,
        local_addrs: &[],
    };
    assert_eq!(f.check(&c, &NoGroups).map(|l| l.line_number), Some(2));
    let c = Client {
        replication: false,
        ..c
    };
    assert_eq!(f.check(&c, &NoGroups).map(|l| l.line_number), Some(1));
}

#[test]
fn the_view_shows_rules_and_errors() {
    let dir = std::env::temp_dir().join(format!("pgipc-hba-view-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pg_hba.conf");
    std::fs::write(
        &path,
        "local all all trust\nhost all all 127.0.0.1/32 md5\nbogus\nlocal all all peer map=m\n",
    )
    .unwrap();
    let rows = hba_file_rules(&path, SSL_ON);
    let short: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.rule_number,
                r.line_number,
                r.conn_type.clone(),
                r.address.clone(),
                r.netmask.clone(),
                r.options.clone(),
                r.error.clone(),
            )
        })
        .collect();
    assert_eq!(
        short,
        [
            (Some(1), 1, Some("local".into()), None, None, None, None),
            (
                Some(2),
                2,
                Some("host".into()),
                Some("127.0.0.1".into()),
                Some("255.255.255.255".into()),
                None,
                None
            ),
            (
                None,
                3,
                None,
                None,
                None,
                None,
                Some("invalid connection type \"bogus\"".into())
            ),
            (
                Some(3),
                4,
                Some("local".into()),
                None,
                None,
                Some(vec!["map=m".into()]),
                None
            ),
        ]
    );
    assert!(
        matches!(load_hba(&path, SSL_ON), Err(HbaError::Invalid { ref errors, .. }) if errors.len() == 1)
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let rows = hba_file_rules(&path, SSL_ON);
    assert_eq!(rows[0].line_number, 0);
    assert!(
        rows[0]
            .error
            .as_deref()
            .unwrap()
            .ends_with("No such file or directory"),
        "{rows:?}"
    );
}

#[test]
fn initdb_default_parses_and_trusts_loopback_only() {
    let f = parse_hba(&initdb_hba_conf("trust", "trust"), Path::new("x"), SSL_ON);
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    assert_eq!(f.lines.len(), 6);
    let c = |addr| Client {
        addr,
        database: "d",
        user: "u",
        replication: false,
        local_addrs: &[],
    };
    assert!(f.check(&c(ClientAddr::Local), &NoGroups).is_some());
    assert!(f
        .check(
            &c(ClientAddr::Host {
                addr: ip("127.0.0.1"),
                ssl: false
            }),
            &NoGroups
        )
        .is_some());
    assert!(f
        .check(
            &c(ClientAddr::Host {
                addr: ip("10.0.0.1"),
                ssl: false
            }),
            &NoGroups
        )
        .is_none());
    assert!(parse_ident(INITDB_IDENT_CONF, Path::new("x"))
        .lines
        .is_empty());
}
