//! Who may connect, end to end with real clients: pg_hba.conf's methods (trust, reject, peer,
//! password, md5, scram-sha-256) through psql with PGPASSWORD and the `postgres` crate, the
//! texts and SQLSTATEs of refusals (compared with PostgreSQL 15 configured alike), a reload that
//! changes who may connect without touching open sessions, a bad pg_hba.conf that is not
//! applied, bad SASL messages and a client that stops mid-exchange, and a damaged role file
//! that stops the server from starting.
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
    ])
}
