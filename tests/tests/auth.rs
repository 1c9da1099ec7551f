//! Who may connect, end to end with real clients: pg_hba.conf's methods (trust, reject, peer,
//! password, md5, scram-sha-256) through psql with PGPASSWORD and the `postgres` crate, the
//! texts and SQLSTATEs of refusals (compared with PostgreSQL 15 configured alike), a reload that
//! changes who may connect without touching open sessions, a bad pg_hba.conf that is not
//! applied, bad SASL messages and a client that stops mid-exchange, and a damaged role file
//! that stops the server from starting. Also: `<insufficient privilege>` in other roles'
//! pg_stat_activity rows, role commands over the extended protocol, and client certificates
//! (`ssl_ca_file`, `cert`, `clientcert=verify-full`) with every backend's `pg_stat_ssl` row,
//! each compared with PostgreSQL 15 where it can be.
//!
//! Roles are created through the role catalog's own API (`pgipc_authid`) on the server's data
//! directory while it runs: backends read the catalog anew at each connection start.
//!
//! A `harness = false` test: libtest-mimic runs the cases one after the other on one thread; a
//! watchdog ends the binary if it hangs.

mod common;

use common::server::{output_within, scratch, watchdog, Builder, Postgres15, TestServer};
use pgipc_authid::{parse_role_command, Authid, PasswordOptions};
use std::io::{Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const WATCHDOG: Duration = Duration::from_secs(300);

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn server(name: &str) -> TestServer {
    ok(Builder::in_dir(scratch("pgipc-auth", name))
        .listen("127.0.0.1")
        .start())
}

/// Runs role commands as the bootstrap superuser, straight on the catalog.
fn roles(s: &TestServer, sql: &[&str], opts: PasswordOptions) {
    let mut a = Authid::open(s.data_dir()).expect("role file");
    for q in sql {
        let cmd = parse_role_command(q)
            .expect("role command")
            .expect("parses");
        a.execute(&cmd, "postgres", &opts).expect(q);
    }
}

/// Writes pg_hba.conf (and pg_ident.conf) and reloads; returns when the server activated
/// them (or, for a bad file, when it said it did not).
fn set_hba(s: &TestServer, hba: &str, ident: &str) {
    let data = s.data_dir();
    std::fs::write(data.join("pg_ident.conf"), ident).unwrap();
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    let before = s.log_text().matches("received SIGHUP").count();
    // SAFETY: kill on the server's pid.
    unsafe { libc::kill(s.pid(), libc::SIGHUP) };
    ok(s.wait_for("the reload", Duration::from_secs(20), |s| {
        let log = s.log_text();
        log.matches("received SIGHUP").count() > before
            && (std::fs::read_to_string(data.join("global/pgipc_hba.active"))
                .ok()
                .as_deref()
                == Some(hba)
                || log.contains("was not reloaded"))
    }));
}

/// psql as `user` on the socket (or on 127.0.0.1 with `tcp`), with `password` in PGPASSWORD:
/// `Ok(output)` or `Err(stderr)`.
fn psql(s: &TestServer, user: &str, password: Option<&str>, tcp: bool) -> Result<String, String> {
    let mut c = Command::new("psql");
    c.args(["-X", "-A", "-t", "-w", "-h"]);
    if tcp {
        c.arg("127.0.0.1");
    } else {
        c.arg(s.sock_dir());
    }
    c.args([
        "-p",
        &s.port().to_string(),
        "-U",
        user,
        "-d",
        "postgres",
        "-c",
    ])
    .arg("SHOW is_superuser")
    .env("PGCONNECT_TIMEOUT", "10")
    .env_remove("PGPASSWORD")
    .stdin(Stdio::null());
    if let Some(p) = password {
        c.env("PGPASSWORD", p);
    }
    let o = output_within(&mut c, Duration::from_secs(30)).expect("psql");
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_owned())
    }
}

/// The FATAL line of a psql failure (after "FATAL:  "), e.g. for comparison.
fn fatal_text(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.split_once("FATAL:  ").map(|(_, m)| m.to_owned()))
        .unwrap_or_else(|| stderr.to_owned())
}

fn client(s: &TestServer, user: &str, password: &str) -> Result<postgres::Client, postgres::Error> {
    postgres::Config::new()
        .host_path(s.sock_dir())
        .port(s.port())
        .user(user)
        .password(password)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(10))
        .connect(postgres::NoTls)
}

const FAST: PasswordOptions = PasswordOptions {
    encryption: pgipc_libpq::PasswordType::ScramSha256,
    scram_iterations: 4096,
    md5_warnings: false,
};

fn scram_admits_the_right_password_and_refuses_a_wrong_one() {
    let s = server("scram");
    roles(&s, &["CREATE ROLE alice LOGIN PASSWORD 'secret'"], FAST);
    set_hba(
        &s,
        "local all postgres trust\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
        "",
    );
    assert_eq!(psql(&s, "alice", Some("secret"), false), Ok("off".into()));
    assert_eq!(psql(&s, "alice", Some("secret"), true), Ok("off".into()));
    assert_eq!(psql(&s, "postgres", None, false), Ok("on".into()));
    let wrong = psql(&s, "alice", Some("nope"), false).unwrap_err();
    assert_eq!(
        fatal_text(&wrong),
        "password authentication failed for user \"alice\""
    );
    // No hint whether the role exists: the same text after the same exchange.
    let ghost = psql(&s, "ghost", Some("nope"), true).unwrap_err();
    assert_eq!(
        fatal_text(&ghost),
        "password authentication failed for user \"ghost\""
    );
    // The postgres crate (tokio-postgres's SCRAM client).
    let mut c = client(&s, "alice", "secret").expect("scram login");
    assert_eq!(c.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    let Err(e) = client(&s, "alice", "nope") else {
        panic!("a wrong password logged in")
    };
    assert_eq!(common::server::sqlstate(&e), "28P01", "{e}");
    // The server log names the line that matched and why.
    let log = s.log_text();
    assert!(log.contains("Role \"ghost\" does not exist."), "{log}");
    assert!(log.contains("Connection matched file"), "{log}");
}

fn md5_and_password_lines() {
    let s = server("md5");
    roles(&s, &["CREATE ROLE scrammy LOGIN PASSWORD 'pw1'"], FAST);
    let md5 = PasswordOptions {
        encryption: pgipc_libpq::PasswordType::Md5,
        ..FAST
    };
    roles(&s, &["CREATE ROLE md5er LOGIN PASSWORD 'pw2'"], md5);
    set_hba(
        &s,
        "local all postgres trust\nlocal all all md5\nhost all all 127.0.0.1/32 password\n",
        "",
    );
    // PostgreSQL 18: an md5 line does SCRAM for a SCRAM secret, MD5 for an md5 one.
    assert_eq!(psql(&s, "scrammy", Some("pw1"), false), Ok("off".into()));
    assert_eq!(psql(&s, "md5er", Some("pw2"), false), Ok("off".into()));
    assert!(psql(&s, "md5er", Some("bad"), false)
        .unwrap_err()
        .contains("password authentication failed for user \"md5er\""));
    // password: the clear text against either kind of secret.
    assert_eq!(psql(&s, "scrammy", Some("pw1"), true), Ok("off".into()));
    assert_eq!(psql(&s, "md5er", Some("pw2"), true), Ok("off".into()));
    assert!(psql(&s, "md5er", Some("pw1"), true).is_err());
}

/// The OS user running the tests.
fn os_user() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid).unwrap().unwrap().name
}

fn peer_admits_the_os_user_and_refuses_a_mismatch() {
    let s = server("peer");
    let me = os_user();
    if me != "postgres" {
        roles(&s, &[&format!("CREATE ROLE \"{me}\" LOGIN")], FAST);
    }
    roles(&s, &["CREATE ROLE mapped LOGIN"], FAST);
    set_hba(
        &s,
        "local all mapped peer map=m\nlocal all all peer\n",
        &format!("m {me} mapped\n"),
    );
    assert!(psql(&s, &me, None, false).is_ok());
    assert!(psql(&s, "mapped", None, false).is_ok());
    if me != "postgres" {
        let e = psql(&s, "postgres", None, false).unwrap_err();
        assert_eq!(
            fatal_text(&e),
            "Peer authentication failed for user \"postgres\""
        );
        assert!(s.log_text().contains(&format!(
            "provided user name (postgres) and authenticated user name ({me}) do not match"
        )));
    }
}

/// Refusals, compared with PostgreSQL 15 given the same pg_hba.conf.
const REFUSALS_HBA: &str = "local all postgres trust\nlocal all nologin trust\nlocal all rejected reject\nhost all all 127.0.0.1/32 reject\n";

fn refusals(s: &TestServer) -> Vec<String> {
    vec![
        fatal_text(&psql(s, "rejected", None, false).unwrap_err()),
        fatal_text(&psql(s, "stranger", None, false).unwrap_err()),
        fatal_text(&psql(s, "nologin", None, false).unwrap_err()),
    ]
}

fn reject_missing_entry_and_nologin_match_postgresql() {
    let s = server("reject");
    roles(
        &s,
        &["CREATE ROLE nologin", "CREATE ROLE rejected LOGIN"],
        FAST,
    );
    set_hba(&s, REFUSALS_HBA, "");
    let ours = refusals(&s);
    assert_eq!(
        ours,
        [
            "pg_hba.conf rejects connection for host \"[local]\", user \"rejected\", database \"postgres\", no encryption",
            "no pg_hba.conf entry for host \"[local]\", user \"stranger\", database \"postgres\", no encryption",
            "role \"nologin\" is not permitted to log in",
        ]
    );
    let tcp = fatal_text(&psql(&s, "postgres", None, true).unwrap_err());
    assert_eq!(tcp, "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"postgres\", database \"postgres\", no encryption");
    // PostgreSQL 15 with the same file and roles.
    let pg = match Postgres15::start("auth-refusals") {
        Ok(pg) => pg,
        Err(e) => panic!("PostgreSQL 15 is needed for the comparison: {e}"),
    };
    let pgdata = pg.data_dir().to_path_buf();
    let run_pg = |sql: &str| {
        let o = output_within(
            Postgres15::as_postgres("psql")
                .args(["-X", "-h"])
                .arg(pg.sock_dir())
                .args([
                    "-p",
                    &pg.port().to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    sql,
                ])
                .stdin(Stdio::null()),
            Duration::from_secs(30),
        )
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run_pg("CREATE ROLE nologin");
    run_pg("CREATE ROLE rejected LOGIN");
    std::fs::write(pgdata.join("pg_hba.conf"), REFUSALS_HBA).unwrap();
    run_pg("SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));
    let theirs: Vec<String> = ["rejected", "stranger", "nologin"]
        .iter()
        .map(|u| {
            let o = output_within(
                Command::new("psql")
                    .args(["-X", "-w", "-h"])
                    .arg(pg.sock_dir())
                    .args([
                        "-p",
                        &pg.port().to_string(),
                        "-U",
                        u,
                        "-d",
                        "postgres",
                        "-c",
                        "SELECT 1",
                    ])
                    .stdin(Stdio::null()),
                Duration::from_secs(30),
            )
            .unwrap();
            fatal_text(&String::from_utf8_lossy(&o.stderr))
        })
        .collect();
    assert_eq!(ours, theirs);
}

fn reload_changes_who_may_connect_without_touching_open_sessions() {
    let s = server("reload");
    let mut open = s.client().expect("trust at first");
    set_hba(
        &s,
        "local all all reject\nhost all all 127.0.0.1/32 reject\n",
        "",
    );
    assert!(psql(&s, "postgres", None, false)
        .unwrap_err()
        .contains("rejects connection"));
    assert_eq!(open.query_one("SELECT 2", &[]).unwrap().get::<_, i32>(0), 2);
    // A file with an error is not applied: the rules in force stay.
    set_hba(&s, "local all all trust\nlocal all all bogus\n", "");
    assert!(psql(&s, "postgres", None, false)
        .unwrap_err()
        .contains("rejects connection"));
    let log = s.log_text();
    assert!(
        log.contains("invalid authentication method \"bogus\""),
        "{log}"
    );
    assert!(log.contains("line 2 of configuration file"), "{log}");
    assert!(log.contains("pg_hba.conf was not reloaded"), "{log}");
    set_hba(&s, "local all all trust\n", "");
    assert_eq!(psql(&s, "postgres", None, false), Ok("on".into()));
}

/// A startup packet for `user`.
fn startup(user: &str) -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for x in ["user", user, "database", "postgres"] {
        body.extend_from_slice(x.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    p.extend(body);
    p
}

fn message(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn sasl_initial(mech: &str, data: &[u8]) -> Vec<u8> {
    let mut b = mech.as_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(&(data.len() as i32).to_be_bytes());
    b.extend_from_slice(data);
    message(b'p', &b)
}

/// Everything the server sends until it closes (or 10 s pass).
fn read_all(sock: &mut std::os::unix::net::UnixStream) -> Vec<u8> {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let _ = sock.read_to_end(&mut out);
    out
}

/// The `M` and `C` fields of the first ErrorResponse in `bytes`.
fn error_of(bytes: &[u8]) -> Option<(String, String)> {
    let mut i = 0;
    while i + 5 <= bytes.len() {
        let ty = bytes[i];
        let len = u32::from_be_bytes(bytes[i + 1..i + 5].try_into().unwrap()) as usize;
        let body = bytes.get(i + 5..i + 1 + len)?;
        if ty == b'E' {
            let (mut code, mut msg) = (String::new(), String::new());
            for f in body.split(|&b| b == 0) {
                match f.first() {
                    Some(b'C') => code = String::from_utf8_lossy(&f[1..]).into(),
                    Some(b'M') => msg = String::from_utf8_lossy(&f[1..]).into(),
                    _ => {}
                }
            }
            return Some((code, msg));
        }
        i += 1 + len;
    }
    None
}

/// A name, the bytes sent after the startup packet, the ErrorResponse expected (SQLSTATE,
/// message) or `None` for a connection closed without one.
type SaslCase = (&'static str, Vec<u8>, Option<(&'static str, &'static str)>);

fn bad_sasl_messages_end_the_connection() {
    let s = ok(Builder::in_dir(scratch("pgipc-auth", "sasl"))
        .set("authentication_timeout=2")
        .start());
    roles(&s, &["CREATE ROLE alice LOGIN PASSWORD 'secret'"], FAST);
    set_hba(&s, "local all all scram-sha-256\n", "");
    let cases: &[SaslCase] = &[
        (
            "garbage",
            sasl_initial("SCRAM-SHA-256", b"garbage"),
            Some(("08P01", "malformed SCRAM message")),
        ),
        (
            "bad mechanism",
            sasl_initial("PLAIN", b"n,,n=,r=abc"),
            Some((
                "08P01",
                "client selected an invalid SASL authentication mechanism",
            )),
        ),
        (
            "wrong type",
            message(b'Q', b"SELECT 1\0"),
            Some(("08P01", "expected SASL response, got message type 81")),
        ),
        (
            "truncated",
            sasl_initial("SCRAM-SHA-256", b"n,,n=,r=abc")[..10].to_vec(),
            None,
        ),
        (
            "oversized",
            {
                let mut m = vec![b'p'];
                m.extend_from_slice(&100_000u32.to_be_bytes());
                m
            },
            None,
        ),
    ];
    for (name, msg, want) in cases {
        let mut sock = s.connect_raw().unwrap();
        sock.write_all(&startup("alice")).unwrap();
        sock.write_all(msg).unwrap();
        if *name == "truncated" {
            sock.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let got = read_all(&mut sock);
        let err = error_of(&got);
        match want {
            Some((code, text)) => {
                assert_eq!(err, Some((code.to_string(), text.to_string())), "{name}")
            }
            None => assert_eq!(err, None, "{name}"),
        }
    }
    // A client that stops after the first message: authentication_timeout ends it.
    let mut sock = s.connect_raw().unwrap();
    sock.write_all(&startup("alice")).unwrap();
    sock.write_all(&sasl_initial("SCRAM-SHA-256", b"n,,n=,r=abcdef"))
        .unwrap();
    let t = Instant::now();
    let got = read_all(&mut sock);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert_eq!(error_of(&got), None);
    ok(s.wait_log(
        "canceling authentication due to timeout",
        Duration::from_secs(10),
    ));
}

fn a_damaged_role_file_stops_the_start() {
    let mut s = server("corrupt");
    ok(s.stop_ok());
    let path = Authid::file_path(s.data_dir());
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let r = s.start();
    assert!(r.is_err(), "started with a truncated role file");
    let log = s.log_text();
    assert!(log.contains("FATAL:  role file"), "{log}");
    assert!(log.contains("is corrupt"), "{log}");
    std::fs::write(&path, &text).unwrap();
    ok(s.start());
    assert_eq!(psql(&s, "postgres", None, false), Ok("on".into()));
}

fn pgipc_ctl_init_chooses_methods_and_the_superuser_password() {
    let base = scratch("pgipc-auth", "initdb");
    std::fs::create_dir_all(&base).unwrap();
    let data = base.join("data");
    let pw = base.join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let o = output_within(
        common::server::pgipc_ctl()
            .arg("init")
            .arg("-D")
            .arg(&data)
            .args([
                "--auth-local=scram-sha-256",
                "--auth-host",
                "reject",
                "--pwfile",
            ])
            .arg(&pw),
        Duration::from_secs(60),
    )
    .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("The database superuser is \"postgres\"."),
        "{out}"
    );
    let s = ok(
        Builder::with_paths(data.clone(), base.join("sock"), base.join("log"))
            .remove_on_drop(base.clone())
            .listen("127.0.0.1")
            .start(),
    );
    assert_eq!(psql(&s, "postgres", Some("s3cret"), false), Ok("on".into()));
    let e = psql(&s, "postgres", Some("wrong"), false).unwrap_err();
    assert_eq!(
        fatal_text(&e),
        "password authentication failed for user \"postgres\""
    );
    assert!(psql(&s, "postgres", Some("s3cret"), true)
        .unwrap_err()
        .contains("rejects connection"));
    // A second init on the same directory is refused.
    let again = output_within(
        common::server::pgipc_ctl().arg("init").arg("-D").arg(&data),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists but is not empty"));
}

/// psql with a connection string; `Ok(output)` or `Err(stderr)`.
fn psql_conninfo(conninfo: &str, password: &str) -> Result<String, String> {
    let o = output_within(
        Command::new("psql")
            .args(["-X", "-A", "-t", "-w", "-c", "SELECT 1", conninfo])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null()),
        Duration::from_secs(30),
    )
    .unwrap();
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_owned())
    }
}

fn tls_require_verify_full_hostssl_and_channel_binding() {
    // ssl on without a certificate: the server does not start.
    let mut bad = Builder::in_dir(scratch("pgipc-auth", "tls-nocert"))
        .set("ssl=on")
        .build();
    assert!(
        bad.start().is_err(),
        "started with ssl on and no certificate"
    );
    let log = bad.log_text();
    assert!(
        log.contains("FATAL:  could not load server certificate file"),
        "{log}"
    );
    // A certificate, then ssl = on by a reload (set_hba reloads).
    let s = server("tls");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let data = s.data_dir();
    std::fs::write(data.join("server.crt"), ck.cert.pem()).unwrap();
    std::fs::write(data.join("server.key"), ck.key_pair.serialize_pem()).unwrap();
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nssl = on\n");
    std::fs::write(&conf, text).unwrap();
    roles(&s, &["CREATE ROLE alice LOGIN PASSWORD 'secret'"], FAST);
    set_hba(
        &s,
        "local all all trust\nhostssl all alice 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n",
        "",
    );
    let base = format!(
        "host=127.0.0.1 port={} user=alice dbname=postgres",
        s.port()
    );
    assert_eq!(
        psql_conninfo(&format!("{base} sslmode=require"), "secret"),
        Ok("1".into())
    );
    // SCRAM-SHA-256-PLUS with tls-server-end-point.
    assert_eq!(
        psql_conninfo(
            &format!("{base} sslmode=require channel_binding=require"),
            "secret"
        ),
        Ok("1".into())
    );
    let root = data.join("server.crt").display().to_string();
    assert_eq!(
        psql_conninfo(
            &format!("{base} sslmode=verify-full sslrootcert={root}"),
            "secret"
        ),
        Ok("1".into())
    );
    let e = psql_conninfo(&format!("{base} sslmode=require"), "wrong").unwrap_err();
    assert_eq!(
        fatal_text(&e),
        "password authentication failed for user \"alice\""
    );
    // hostssl refuses a plain connection (hostnossl rejects it).
    let e = psql_conninfo(&format!("{base} sslmode=disable"), "secret").unwrap_err();
    assert_eq!(
        fatal_text(&e),
        "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"alice\", database \"postgres\", no encryption"
    );
    // A server with ssl off says 'N'.
    let plain = server("tls-off");
    let e = psql_conninfo(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require",
            plain.port()
        ),
        "",
    )
    .unwrap_err();
    assert!(
        e.contains("server does not support SSL, but SSL was required"),
        "{e}"
    );
}

/// psql on a pseudo-terminal (`script`), as a person at a keyboard: `steps` are (what to wait
/// for in psql's output, what to type then). psql's prompts flush pending input, so each line
/// is typed only once its prompt is there. Returns the whole output.
fn psql_on_a_tty(s: &TestServer, steps: &[(&str, &str)]) -> String {
    let cmdline = format!(
        "psql -X -h {} -p {} -U postgres -d postgres",
        s.sock_dir().display(),
        s.port()
    );
    let mut child = Command::new("script")
        .args(["-qefc", &cmdline, "/dev/null"])
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1)");
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let out = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = 0;
    for (wait, typed) in steps {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = out.lock().unwrap().clone();
            if let Some(at) = text[seen..].find(wait) {
                seen += at + wait.len();
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("psql never printed {wait:?}; output so far:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stdin.write_all(typed.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    drop(stdin);
    let status = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("psql did not end: {}", out.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    reader.join().unwrap();
    let text = out.lock().unwrap().clone();
    assert!(status.success(), "psql on a tty: {status:?}\n{text}");
    text
}

fn stored_secret(s: &TestServer, role: &str) -> String {
    let a = Authid::open(s.data_dir()).expect("role file");
    a.get(role)
        .and_then(|r| r.password.clone())
        .unwrap_or_else(|| panic!("{role} has no password"))
}

/// Backends inherit the postmaster's copy of the role file and check it with one stat: a role
/// created by one session can log in from the next connection, at once, every time.
fn a_role_created_in_one_session_logs_in_from_the_next() {
    let s = server("fresh-role");
    let mut su = client(&s, "postgres", "").expect("superuser");
    for i in 0..20 {
        su.batch_execute(&format!("CREATE ROLE fresh{i} LOGIN"))
            .expect("CREATE ROLE");
        let mut c = client(&s, &format!("fresh{i}"), "").expect("the new role logs in");
        let who: String = c
            .query_one("SELECT current_user::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(who, format!("fresh{i}"));
        su.batch_execute(&format!("ALTER ROLE fresh{i} NOLOGIN"))
            .expect("ALTER ROLE");
        let Err(e) = client(&s, &format!("fresh{i}"), "") else {
            panic!("fresh{i} logged in after ALTER ROLE NOLOGIN");
        };
        assert_eq!(
            db_error(&e).1,
            format!("role \"fresh{i}\" is not permitted to log in")
        );
    }
}

fn password_command_then_a_fresh_login() {
    let s = server("password");
    roles(&s, &["CREATE ROLE alice LOGIN PASSWORD 'old'"], FAST);
    set_hba(
        &s,
        "local all postgres trust\nlocal all all scram-sha-256\n",
        "",
    );
    assert_eq!(psql(&s, "alice", Some("old"), false), Ok("off".into()));
    // psql's \password: it hashes on the client (SCRAM-SHA-256, 4096 iterations, as
    // password_encryption says) and sends ALTER USER ... PASSWORD '<verifier>'.
    let before = stored_secret(&s, "alice");
    let out = psql_on_a_tty(
        &s,
        &[
            ("postgres=#", "\\password alice\n"),
            ("Enter new password", "n3w-pass\n"),
            ("Enter it again", "n3w-pass\n"),
            ("postgres=#", "\\q\n"),
        ],
    );
    assert!(!out.contains("ERROR"), "{out}");
    let after = stored_secret(&s, "alice");
    assert_ne!(after, before);
    assert!(after.starts_with("SCRAM-SHA-256$4096:"), "{after}");
    assert_eq!(psql(&s, "alice", Some("n3w-pass"), false), Ok("off".into()));
    let old = psql(&s, "alice", Some("old"), false).unwrap_err();
    assert_eq!(
        fatal_text(&old),
        "password authentication failed for user \"alice\""
    );
    // The same through the postgres crate (a simple Query, as psql's PQexec sends): an
    // already-hashed verifier is stored as is, byte for byte.
    let verifier = pgipc_libpq::scram::scram_build_secret("third", 4096).unwrap();
    let mut su = client(&s, "postgres", "").expect("superuser");
    su.batch_execute(&format!("ALTER USER alice PASSWORD '{verifier}'"))
        .expect("ALTER USER with a verifier");
    assert_eq!(stored_secret(&s, "alice"), verifier);
    let mut c = client(&s, "alice", "third").expect("a fresh login");
    assert_eq!(c.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    assert!(client(&s, "alice", "n3w-pass").is_err());
}

fn db_error(e: &postgres::Error) -> (String, String, Option<String>) {
    let d = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e}"));
    (
        d.code().code().to_owned(),
        d.message().to_owned(),
        d.detail().map(str::to_owned),
    )
}

fn connect_at(
    sock: &std::path::Path,
    port: u16,
    user: &str,
) -> Result<postgres::Client, postgres::Error> {
    postgres::Config::new()
        .host_path(sock)
        .port(port)
        .user(user)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(10))
        .connect(postgres::NoTls)
}

/// What a non-superuser gets from pg_terminate_backend / pg_cancel_backend on a superuser's
/// backend: (SQLSTATE, message, detail) of each.
fn signal_refusals(sock: &std::path::Path, port: u16) -> Vec<(String, String, Option<String>)> {
    let mut su = connect_at(sock, port, "postgres").expect("superuser");
    let pid: i32 = su.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut bob = connect_at(sock, port, "bob").expect("bob logs in");
    let mut out = Vec::new();
    for f in ["pg_terminate_backend", "pg_cancel_backend"] {
        let e = bob
            .batch_execute(&format!("SELECT {f}({pid})"))
            .expect_err("a non-superuser signalled a superuser");
        out.push(db_error(&e));
    }
    // The superuser's session is untouched.
    assert_eq!(su.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    // bob may signal his own other session.
    let mut bob2 = connect_at(sock, port, "bob").expect("bob again");
    let pid2: i32 = bob2
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let ok: bool = bob
        .query_one(&format!("SELECT pg_terminate_backend({pid2})"), &[])
        .unwrap()
        .get(0);
    assert!(ok);
    out
}

fn non_superusers_may_not_signal_superusers() {
    let s = server("signal");
    roles(&s, &["CREATE ROLE bob LOGIN"], FAST);
    let ours = signal_refusals(s.sock_dir(), s.port());
    assert_eq!(
        ours,
        [
            (
                "42501".to_owned(),
                "permission denied to terminate process".to_owned(),
                Some("Only roles with the SUPERUSER attribute may terminate processes of roles with the SUPERUSER attribute.".to_owned()),
            ),
            (
                "42501".to_owned(),
                "permission denied to cancel query".to_owned(),
                Some("Only roles with the SUPERUSER attribute may cancel queries of roles with the SUPERUSER attribute.".to_owned()),
            ),
        ]
    );
    // PostgreSQL 15 refuses with the same SQLSTATE; its texts are older (PostgreSQL 16
    // introduced the message + DETAIL pair that 18, the reference, prints).
    let pg = Postgres15::start("auth-signal").expect("PostgreSQL 15 is needed for the comparison");
    let mut su = connect_at(pg.sock_dir(), pg.port(), "postgres").expect("pg15");
    su.batch_execute("CREATE ROLE bob LOGIN").unwrap();
    drop(su);
    let theirs = signal_refusals(pg.sock_dir(), pg.port());
    assert_eq!(
        theirs,
        [
            (
                "42501".to_owned(),
                "must be a superuser to terminate superuser process".to_owned(),
                None,
            ),
            (
                "42501".to_owned(),
                "must be a superuser to cancel superuser query".to_owned(),
                None,
            ),
        ]
    );
    let codes =
        |v: &[(String, String, Option<String>)]| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    assert_eq!(codes(&ours), codes(&theirs));
}

fn connection_limit_is_enforced_at_connection_start() {
    let s = server("connlimit");
    roles(
        &s,
        &[
            "CREATE ROLE carol LOGIN CONNECTION LIMIT 2",
            "CREATE ROLE zero LOGIN CONNECTION LIMIT 0",
            "ALTER ROLE postgres CONNECTION LIMIT 0",
        ],
        FAST,
    );
    let a = connect_at(s.sock_dir(), s.port(), "carol").expect("first");
    let b = connect_at(s.sock_dir(), s.port(), "carol").expect("second");
    let Err(e) = connect_at(s.sock_dir(), s.port(), "carol") else {
        panic!("a third session over the limit")
    };
    assert_eq!(
        db_error(&e),
        (
            "53300".to_owned(),
            "too many connections for role \"carol\"".to_owned(),
            None
        )
    );
    let Err(e) = connect_at(s.sock_dir(), s.port(), "zero") else {
        panic!("a session under limit 0")
    };
    assert_eq!(db_error(&e).1, "too many connections for role \"zero\"");
    // psql shows PostgreSQL's FATAL.
    assert_eq!(
        fatal_text(&psql(&s, "carol", None, false).unwrap_err()),
        "too many connections for role \"carol\""
    );
    // Superusers are exempt, as in PostgreSQL.
    assert_eq!(psql(&s, "postgres", None, false), Ok("on".into()));
    // A session that ends frees its slot.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        match connect_at(s.sock_dir(), s.port(), "carol") {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline && db_error(&e).0 == "53300" => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("carol after a slot was freed: {e}"),
        }
    };
    drop((b, c));
}

/// What `reader` sees of `target`'s pg_stat_activity row: query, usename, and which of the
/// hidden columns are NULL.
fn activity_seen_by(reader: &mut postgres::Client, target: i32) -> (String, String, String) {
    let r = reader
        .query_one(
            "SELECT query, usename::text, \
             (state IS NULL)::text || (backend_type IS NULL)::text || (backend_start IS NULL)::text \
             || (client_port IS NULL)::text || (xact_start IS NULL)::text \
             || (datname IS NULL)::text || (pid IS NULL)::text \
             FROM pg_stat_activity WHERE pid = $1",
            &[&target],
        )
        .expect("pg_stat_activity");
    (r.get(0), r.get(1), r.get(2))
}

/// A superuser's and a non-superuser's sessions, each reading the other's row.
fn activity_views(sock: &std::path::Path, port: u16) -> Vec<(String, String, String)> {
    let mut su = connect_at(sock, port, "postgres").expect("superuser");
    let mut bob = connect_at(sock, port, "bob").expect("bob");
    su.batch_execute("SELECT 'su is here'").unwrap();
    bob.batch_execute("SELECT 'bob is here'").unwrap();
    let su_pid: i32 = su.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let bob_pid: i32 = bob
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut seen = vec![
        activity_seen_by(&mut bob, su_pid),
        activity_seen_by(&mut su, bob_pid),
    ];
    // bob's own row is his to see.
    let own = activity_seen_by(&mut bob, bob_pid);
    seen.push((own.0.starts_with("SELECT").to_string(), own.1, own.2));
    seen
}

fn non_superusers_see_insufficient_privilege_in_others_rows() {
    let s = server("activity");
    roles(&s, &["CREATE ROLE bob LOGIN"], FAST);
    let ours = activity_views(s.sock_dir(), s.port());
    assert_eq!(
        ours[0],
        (
            "<insufficient privilege>".to_owned(),
            "postgres".to_owned(),
            "truetruetruetruetruefalsefalse".to_owned()
        )
    );
    // The superuser sees bob's query (the last one bob ran: his own look at su's row).
    assert!(ours[1].0.contains("FROM pg_stat_activity"), "{ours:?}");
    assert_eq!(ours[1].1, "bob");
    let pg =
        Postgres15::start("auth-activity").expect("PostgreSQL 15 is needed for the comparison");
    let mut su = connect_at(pg.sock_dir(), pg.port(), "postgres").expect("pg15");
    su.batch_execute("CREATE ROLE bob LOGIN").unwrap();
    drop(su);
    assert_eq!(ours, activity_views(pg.sock_dir(), pg.port()));
}

fn role_commands_over_the_extended_protocol() {
    let s = server("extended");
    set_hba(
        &s,
        "local all postgres trust\nlocal all all scram-sha-256\n",
        "",
    );
    let mut su = connect_at(s.sock_dir(), s.port(), "postgres").expect("superuser");
    // client.execute sends Parse/Bind/Describe/Execute/Sync.
    assert_eq!(
        su.execute("CREATE ROLE dave LOGIN PASSWORD 'pw1'", &[])
            .unwrap(),
        0
    );
    assert!(client(&s, "dave", "pw1").is_ok());
    su.execute("ALTER ROLE dave PASSWORD 'pw2'", &[]).unwrap();
    assert!(client(&s, "dave", "pw1").is_err());
    assert!(client(&s, "dave", "pw2").is_ok());
    // A prepared role command runs at each execution; errors come back as PostgreSQL's.
    let e = su.execute("CREATE ROLE dave", &[]).unwrap_err();
    assert_eq!(db_error(&e).0, "42710");
    let e = su
        .execute("CREATE ROLE frank NOSUCHOPTION", &[])
        .unwrap_err();
    assert_eq!(db_error(&e).0, "42601");
    let mut dave = client(&s, "dave", "pw2").unwrap();
    let e = dave.execute("CREATE ROLE eve", &[]).unwrap_err();
    assert_eq!(db_error(&e).0, "42501");
    su.execute("DROP ROLE dave", &[]).unwrap();
    assert!(su
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = 'dave'", &[])
        .unwrap()
        .is_none());
}

/// A test CA, a server certificate and client certificates it signed, as PEM files in `dir`
/// (keys 0600, as libpq and PostgreSQL want them): root.crt, server.crt/.key, and
/// `<cn>.crt`/`.key` for each client common name.
fn write_certificates(dir: &std::path::Path, clients: &[&str]) {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, SerialNumber,
    };
    use std::os::unix::fs::PermissionsExt;
    let named = |cn: &str, sans: Vec<String>| {
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = named("pgipc test CA", vec![]);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("root.crt"), ca.pem()).unwrap();
    let write = |name: &str, p: CertificateParams| {
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&k, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write(
        "server",
        named("localhost", vec!["localhost".into(), "127.0.0.1".into()]),
    );
    for cn in clients {
        let mut p = named(cn, vec![]);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(SerialNumber::from(vec![0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]));
        write(cn, p);
    }
}

const SSL_ROW: &str =
    "SELECT ssl, version, cipher, bits, client_dn, client_serial, issuer_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// psql over TLS with a client certificate (`cert` None: without one); runs `sql`.
fn psql_cert(
    port: u16,
    user: &str,
    dir: &std::path::Path,
    cert: Option<&str>,
    sql: &str,
) -> Result<String, String> {
    let mut conninfo =
        format!("host=127.0.0.1 port={port} user={user} dbname=postgres sslmode=require");
    match cert {
        Some(c) => conninfo.push_str(&format!(
            " sslcert={} sslkey={}",
            dir.join(format!("{c}.crt")).display(),
            dir.join(format!("{c}.key")).display()
        )),
        None => conninfo.push_str(" sslcert=/nonexistent sslkey=/nonexistent"),
    }
    let o = output_within(
        Command::new("psql")
            .args(["-X", "-A", "-t", "-w", "-c", sql, &conninfo])
            .env("PGPASSWORD", "secret")
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null()),
        Duration::from_secs(30),
    )
    .unwrap();
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_owned())
    }
}

fn client_certificates_cert_method_and_pg_stat_ssl() {
    let s = server("certs");
    let data = s.data_dir().to_path_buf();
    write_certificates(&data, &["alice", "mallory"]);
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nssl = on\nssl_ca_file = 'root.crt'\n");
    std::fs::write(&conf, text).unwrap();
    roles(
        &s,
        &[
            "CREATE ROLE alice LOGIN",
            "CREATE ROLE bob LOGIN PASSWORD 'secret'",
        ],
        FAST,
    );
    set_hba(
        &s,
        "local all all trust\n\
         hostssl all alice 127.0.0.1/32 cert\n\
         hostssl all bob 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n",
        "",
    );
    let port = s.port();
    let ours =
        psql_cert(port, "alice", &data, Some("alice"), SSL_ROW).expect("alice by certificate");
    assert_eq!(
        ours,
        "t|TLSv1.3|TLS_AES_256_GCM_SHA384|256|/CN=alice|20015998343868|/CN=pgipc test CA"
    );
    let fatal = |r: Result<String, String>| fatal_text(&r.unwrap_err());
    assert_eq!(
        fatal(psql_cert(port, "alice", &data, None, "SELECT 1")),
        "connection requires a valid client certificate"
    );
    assert_eq!(
        fatal(psql_cert(port, "alice", &data, Some("mallory"), "SELECT 1")),
        "certificate authentication failed for user \"alice\""
    );
    // clientcert=verify-full after scram: a CN that is not the user fails as the method does.
    assert_eq!(
        fatal(psql_cert(port, "bob", &data, Some("alice"), "SELECT 1")),
        "password authentication failed for user \"bob\""
    );
    assert_eq!(
        fatal(psql_cert(port, "bob", &data, None, "SELECT 1")),
        "connection requires a valid client certificate"
    );
    // Every backend's row: a superuser on the socket sees alice's TLS session.
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-w", "-c", "SELECT pg_sleep(5)"])
        .arg(format!(
            "host=127.0.0.1 port={port} user=alice dbname=postgres sslmode=require sslcert={} sslkey={}",
            data.join("alice.crt").display(),
            data.join("alice.key").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut su = connect_at(s.sock_dir(), port, "postgres").expect("superuser");
    let deadline = Instant::now() + Duration::from_secs(5);
    let rows = loop {
        let rows: Vec<(bool, Option<String>)> = su
            .query("SELECT ssl, client_dn FROM pg_stat_ssl ORDER BY ssl", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if rows.len() == 2 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.wait();
    assert_eq!(rows, [(false, None), (true, Some("/CN=alice".to_owned()))]);
    // The postmaster built the TLS configuration; backends inherit it. A reload with a broken
    // key keeps the old one (PostgreSQL's be_tls_init), so TLS logins go on working.
    let key = std::fs::read(data.join("server.key")).unwrap();
    std::fs::write(data.join("server.key"), "not a key").unwrap();
    // SAFETY: kill on the server's pid.
    unsafe { libc::kill(s.pid(), libc::SIGHUP) };
    ok(
        s.wait_for("the failed TLS reload", Duration::from_secs(20), |s| {
            s.log_text().contains("SSL configuration was not reloaded")
        }),
    );
    assert!(psql_cert(port, "alice", &data, Some("alice"), "SELECT 1").is_ok());
    std::fs::write(data.join("server.key"), key).unwrap();
    // PostgreSQL 15 with the same certificates shows the same row.
    let pg = Postgres15::start_with("auth-certs", &["-c", "listen_addresses=127.0.0.1"])
        .expect("PostgreSQL 15 is needed for the comparison");
    let pgdata = pg.data_dir();
    let owner = std::fs::metadata(pgdata).unwrap();
    use std::os::unix::fs::MetadataExt;
    for f in ["root.crt", "server.crt", "server.key"] {
        std::fs::copy(data.join(f), pgdata.join(f)).unwrap();
        std::os::unix::fs::chown(pgdata.join(f), Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    let mut c = connect_at(pg.sock_dir(), pg.port(), "postgres").expect("pg15");
    for q in [
        "CREATE ROLE alice LOGIN",
        "ALTER SYSTEM SET ssl = on",
        "ALTER SYSTEM SET ssl_ca_file = 'root.crt'",
        "SELECT pg_reload_conf()",
    ] {
        c.batch_execute(q).unwrap();
    }
    let theirs = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            psql_cert(pg.port(), "alice", &data, Some("alice"), SSL_ROW).ok()
        })
        .unwrap_or_else(|| pg.log_text());
    assert_eq!(ours, theirs);
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("auth", WATCHDOG);
    pgipc_tests::harness::run_cases(&[
        (
            "scram_admits_the_right_password_and_refuses_a_wrong_one",
            scram_admits_the_right_password_and_refuses_a_wrong_one,
        ),
        ("md5_and_password_lines", md5_and_password_lines),
        (
            "peer_admits_the_os_user_and_refuses_a_mismatch",
            peer_admits_the_os_user_and_refuses_a_mismatch,
        ),
        (
            "reject_missing_entry_and_nologin_match_postgresql",
            reject_missing_entry_and_nologin_match_postgresql,
        ),
        (
            "reload_changes_who_may_connect_without_touching_open_sessions",
            reload_changes_who_may_connect_without_touching_open_sessions,
        ),
        (
            "bad_sasl_messages_end_the_connection",
            bad_sasl_messages_end_the_connection,
        ),
        (
            "a_damaged_role_file_stops_the_start",
            a_damaged_role_file_stops_the_start,
        ),
        (
            "pgipc_ctl_init_chooses_methods_and_the_superuser_password",
            pgipc_ctl_init_chooses_methods_and_the_superuser_password,
        ),
        (
            "tls_require_verify_full_hostssl_and_channel_binding",
            tls_require_verify_full_hostssl_and_channel_binding,
        ),
        (
            "password_command_then_a_fresh_login",
            password_command_then_a_fresh_login,
        ),
        (
            "a_role_created_in_one_session_logs_in_from_the_next",
            a_role_created_in_one_session_logs_in_from_the_next,
        ),
        (
            "non_superusers_may_not_signal_superusers",
            non_superusers_may_not_signal_superusers,
        ),
        (
            "connection_limit_is_enforced_at_connection_start",
            connection_limit_is_enforced_at_connection_start,
        ),
        (
            "non_superusers_see_insufficient_privilege_in_others_rows",
            non_superusers_see_insufficient_privilege_in_others_rows,
        ),
        (
            "role_commands_over_the_extended_protocol",
            role_commands_over_the_extended_protocol,
        ),
        (
            "client_certificates_cert_method_and_pg_stat_ssl",
            client_certificates_cert_method_and_pg_stat_ssl,
        ),
    ])
}
