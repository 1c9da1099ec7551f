//! `backend_main` against real clients: psql, pgbench, the `postgres` crate, and hand-written
//! packets over raw sockets, with the `mini_server` example as the server.
//!
//! A `harness = false` test: libtest-mimic runs the cases one after the other, on one test
//! thread. The server runs in a separate process (this binary re-executed with
//! `PGIPC_TCOP_MINI_SERVER` set, which never reaches the harness), which forks the backends; this
//! process only spawns, connects and watches. Most cases share one server, started by the first
//! of them and stopped by `stop_removes_files`. A watchdog thread kills the servers and fails the
//! run if it takes too long; servers a failed case left running are killed at the end.
//!
//! The `postgres` crate is a dev-dependency because it is a real client that uses the extended
//! protocol with binary results and sends CancelRequests on its own, so it checks the cancel
//! path end to end.

#[allow(dead_code)]
#[path = "../examples/mini_server.rs"]
mod mini_server;

use libtest_mimic::{Arguments, Trial};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const SERVER_ENV: &str = "PGIPC_TCOP_MINI_SERVER";
const WATCHDOG: Duration = Duration::from_secs(150);

/// Pids of running servers, for the watchdog.
static SERVERS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// The server most cases share, started by the first of them.
static MAIN: Mutex<Option<Server>> = Mutex::new(None);
/// The shared server's log, kept when it stops (stopping removes its directory).
static MAIN_LOG: Mutex<String> = Mutex::new(String::new());

/// Locks `m`, also after a failed case panicked while holding it.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Server {
    child: Child,
    pid: i32,
    port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Server {
    fn start(name: &str, extra: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(format!("pgipc-tcop-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(SERVER_ENV, "1")
            .args(["--port", &port.to_string(), "--socket-dir"])
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("READY "), "server did not start: {line:?}");
        let pid = child.id() as i32;
        locked(&SERVERS).push(pid);
        Server {
            child,
            pid,
            port,
            dir,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join(format!(".s.PGSQL.{}", self.port))
    }

    fn psql(&self, sql: &str) -> std::process::Output {
        Command::new("psql")
            .args(["-X", "-A", "-t", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "tester",
                "-d",
                "db",
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap()
    }

    fn psql_ok(&self, sql: &str) -> String {
        let o = self.psql(sql);
        assert!(
            o.status.success(),
            "psql -c {sql:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn raw(&self) -> UnixStream {
        let s = UnixStream::connect(self.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    fn client(&self) -> postgres::Client {
        postgres::Config::new()
            .host_path(&self.dir)
            .port(self.port)
            .user("tester")
            .dbname("db")
            .connect_timeout(Duration::from_secs(10))
            .connect(postgres::NoTls)
            .unwrap()
    }

    /// SIGTERM, wait, and check that the socket files are gone.
    fn stop(mut self) {
        signal(self.pid, libc::SIGTERM);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "server exit: {status}");
        assert!(!self.socket().exists(), "socket file left behind");
        let mut lock = self.socket().into_os_string();
        lock.push(".lock");
        assert!(!Path::new(&lock).exists(), "lock file left behind");
        locked(&SERVERS).retain(|p| *p != self.pid);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill with a pid we spawned (or read from our own session) and a valid signal.
    unsafe { libc::kill(pid, sig) };
}

// ------------------------------------------------------------------ raw protocol helpers

fn startup_packet(version: (u16, u16), params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = (((version.0 as u32) << 16) | version.1 as u32)
        .to_be_bytes()
        .to_vec();
    for (n, v) in params {
        body.extend(n.as_bytes());
        body.push(0);
        body.extend(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    p.extend(body);
    p
}

fn message(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend(((body.len() + 4) as u32).to_be_bytes());
    m.extend(body);
    m
}

fn query(sql: &str) -> Vec<u8> {
    let mut b = sql.as_bytes().to_vec();
    b.push(0);
    message(b'Q', &b)
}

/// Reads one backend message; `None` at EOF.
fn read_msg(s: &mut UnixStream) -> Option<(u8, Vec<u8>)> {
    let mut hdr = [0u8; 5];
    s.read_exact(&mut hdr).ok()?;
    let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).ok()?;
    Some((hdr[0], body))
}

/// The `C` (SQLSTATE) and `M` fields of an ErrorResponse body.
fn error_code(body: &[u8]) -> (String, String) {
    let mut code = String::new();
    let mut msg = String::new();
    for f in body.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let v = String::from_utf8_lossy(&f[1..]).into_owned();
        match f[0] {
            b'C' => code = v,
            b'M' => msg = v,
            _ => {}
        }
    }
    (code, msg)
}

/// The types of the messages up to and including the next ReadyForQuery.
fn types_until_ready(s: &mut UnixStream) -> Vec<u8> {
    let mut types = Vec::new();
    loop {
        let (ty, _) = read_msg(s).expect("ReadyForQuery before EOF");
        types.push(ty);
        if ty == b'Z' {
            return types;
        }
    }
}

/// Skips messages up to the next ErrorResponse and returns its SQLSTATE and message.
fn next_error(s: &mut UnixStream) -> (String, String) {
    loop {
        match read_msg(s) {
            Some((b'E', body)) => return error_code(&body),
            Some(_) => {}
            None => panic!("connection closed before an ErrorResponse"),
        }
    }
}

/// A raw session up to ReadyForQuery; returns it with the backend's pid and cancel key.
fn raw_session(srv: &Server, version: (u16, u16)) -> (UnixStream, i32, Vec<u8>) {
    let mut s = srv.raw();
    s.write_all(&startup_packet(version, &[("user", "raw")]))
        .unwrap();
    let mut pid = 0;
    let mut key = Vec::new();
    loop {
        let (ty, body) = read_msg(&mut s).expect("startup answer");
        match ty {
            b'K' => {
                pid = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                key = body[4..].to_vec();
            }
            b'Z' => return (s, pid, key),
            b'E' => panic!("startup failed: {:?}", error_code(&body)),
            _ => {}
        }
    }
}

fn cancel_packet(pid: i32, key: &[u8]) -> Vec<u8> {
    let mut p = ((12 + key.len()) as u32).to_be_bytes().to_vec();
    p.extend(((1234u32 << 16) | 5678).to_be_bytes());
    p.extend(pid.to_be_bytes());
    p.extend(key);
    p
}

fn send_cancel(srv: &Server, pid: i32, key: &[u8]) {
    let mut c = srv.raw();
    c.write_all(&cancel_packet(pid, key)).unwrap();
    // The server answers nothing and closes.
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

/// Sends `bytes` on a fresh connection and returns everything the server answers until it
/// closes the connection.
fn exchange(srv: &Server, bytes: &[u8]) -> Vec<u8> {
    let mut s = srv.raw();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

// ------------------------------------------------------------------ cases

fn psql_basics(srv: &Server) {
    assert_eq!(srv.psql_ok("SELECT 1"), "1\n");
    assert_eq!(srv.psql_ok("SHOW max_connections"), "20\n");
    assert_eq!(srv.psql_ok("SHOW application_name"), "psql\n");
    assert!(srv.psql_ok("SHOW server_version_num").starts_with("180"));
    assert_eq!(
        srv.psql_ok("SET work_mem = '8MB'; SHOW work_mem"),
        "SET\n8MB\n"
    );
    let o = srv.psql("SHOW no_such_thing");
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("unrecognized configuration parameter \"no_such_thing\""));
    let pid: i32 = srv
        .psql_ok("SELECT pg_backend_pid()")
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0 && pid != srv.pid);
    let out = srv.psql_ok("BEGIN; SELECT 42; COMMIT");
    assert!(out.contains("42"), "{out}");
    let o = srv.psql("SELEC 1");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("syntax error at or near \"SELEC\""), "{err}");
    assert_eq!(srv.psql_ok("SELECT mini_add(40, 2)"), "42\n");
    let o = srv.psql("SELECT mini_add(1, 'x')");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("invalid input syntax for type bigint: \"x\""),
        "{err}"
    );
    // The background-worker functions are tcop's own (this server's hooks add only mini_add);
    // with no postmaster to start workers, registering one says so.
    let o = srv.psql("SELECT pgipc_start_worker('pgipc_worker_sleep')");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no postmaster to start background workers"),
        "{err}"
    );
    let o = srv.psql("SELECT pgipc_worker_pid(0)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no background worker handle 0 in this session"),
        "{err}"
    );
    let o = srv.psql("SELECT nope(1, 'x')");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("function nope(integer, unknown) does not exist"),
        "{err}"
    );
    let o = srv.psql("INSERT INTO t VALUES (1)");
    assert!(String::from_utf8_lossy(&o.stderr).contains("not supported"));
    // Over TCP too.
    let o = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &srv.port.to_string(),
        ])
        .args(["-U", "tester", "-d", "db", "-c", "SELECT 7"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "7\n");
}

/// The ParameterStatus (name, value) pairs and message types up to the next ReadyForQuery.
fn statuses_until_ready(s: &mut UnixStream) -> (Vec<(String, String)>, Vec<u8>) {
    let mut out = Vec::new();
    let mut types = Vec::new();
    loop {
        let (ty, body) = read_msg(s).expect("ReadyForQuery before EOF");
        types.push(ty);
        if ty == b'S' {
            let mut parts = body
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned());
            out.push((
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            ));
        }
        if ty == b'Z' {
            return (out, types);
        }
    }
}

/// Settings through the guc crate: startup parameters (source "client"), SET / RESET /
/// ROLLBACK, and ParameterStatus for GUC_REPORT settings only when they change.
fn settings_and_parameter_status(srv: &Server) {
    let mut s = srv.raw();
    s.write_all(&startup_packet(
        (3, 0),
        &[
            ("user", "raw"),
            ("application_name", "first"),
            ("options", "-c work_mem=2MB"),
        ],
    ))
    .unwrap();
    let (initial, _) = statuses_until_ready(&mut s);
    let names: Vec<&str> = initial.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "application_name",
        "client_encoding",
        "DateStyle",
        "is_superuser",
        "server_encoding",
        "server_version",
        "session_authorization",
        "standard_conforming_strings",
        "TimeZone",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(initial.contains(&("application_name".into(), "first".into())));
    assert!(initial.contains(&("session_authorization".into(), "raw".into())));
    assert!(initial.contains(&("client_encoding".into(), "UTF8".into())));
    s.write_all(&query("SHOW work_mem")).unwrap();
    assert_eq!(statuses_until_ready(&mut s).1, b"TDCZ");
    // Nothing changed: no ParameterStatus.
    s.write_all(&query("SELECT 1")).unwrap();
    assert_eq!(statuses_until_ready(&mut s).1, b"TDCZ");
    s.write_all(&query("SET application_name = 'second'"))
        .unwrap();
    let (st, _) = statuses_until_ready(&mut s);
    assert_eq!(st, vec![("application_name".into(), "second".into())]);
    // A rolled-back SET is undone and reported back.
    s.write_all(&query("BEGIN; SET application_name = 'third'"))
        .unwrap();
    let (st, _) = statuses_until_ready(&mut s);
    assert_eq!(st, vec![("application_name".into(), "third".into())]);
    s.write_all(&query("ROLLBACK")).unwrap();
    let (st, _) = statuses_until_ready(&mut s);
    assert_eq!(st, vec![("application_name".into(), "second".into())]);
    // An error in a multi-statement query undoes its earlier SET.
    s.write_all(&query("SET work_mem = '3MB'; SET no_such = 1"))
        .unwrap();
    assert_eq!(next_error(&mut s).0, "42704");
    types_until_ready(&mut s);
    s.write_all(&query("SHOW work_mem")).unwrap();
    let row = loop {
        match read_msg(&mut s) {
            Some((b'D', body)) => break String::from_utf8_lossy(&body[6..]).into_owned(),
            Some(_) => {}
            None => panic!("no DataRow"),
        }
    };
    assert_eq!(
        row, "2MB",
        "the startup packet's -c value, the failed query's SET undone"
    );
    types_until_ready(&mut s);
    // A startup parameter that is no setting is FATAL, as in PostgreSQL.
    let mut s = srv.raw();
    s.write_all(&startup_packet(
        (3, 0),
        &[("user", "raw"), ("no_such_setting", "1")],
    ))
    .unwrap();
    assert_eq!(
        next_error(&mut s),
        (
            "42704".into(),
            "unrecognized configuration parameter \"no_such_setting\"".into()
        )
    );
}

fn pgbench(srv: &Server) {
    let script = srv.dir.join("select1.sql");
    std::fs::write(&script, "SELECT 1;\n").unwrap();
    for mode in ["simple", "extended", "prepared"] {
        for reconnect in [false, true] {
            let mut cmd = Command::new("pgbench");
            cmd.args(["-n", "-h"])
                .arg(&srv.dir)
                .args(["-p", &srv.port.to_string(), "-U", "tester", "-f"])
                .arg(&script)
                .args(["-t", "50", "-c", "2", "-M", mode]);
            if reconnect {
                cmd.arg("-C");
            }
            let o = cmd.arg("db").output().unwrap();
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success()
                    && out.contains("number of transactions actually processed: 100/100"),
                "pgbench -M {mode} {}: {out}\n{}",
                if reconnect { "-C" } else { "" },
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

fn rust_client(srv: &Server) {
    let mut c = srv.client();
    let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
    let big: i64 = c.query_one("SELECT 5000000000", &[]).unwrap().get(0);
    assert_eq!(big, 5_000_000_000);
    let sum: i64 = c
        .query_one("SELECT mini_add(40, -2, 4)", &[])
        .unwrap()
        .get(0);
    assert_eq!(sum, 42);
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert!(pid > 0);
    let st = c.prepare("SELECT 3").unwrap();
    for _ in 0..3 {
        let v: i32 = c.query_one(&st, &[]).unwrap().get(0);
        assert_eq!(v, 3);
    }
    let show: String = c.query_one("SHOW port", &[]).unwrap().get(0);
    assert_eq!(show, srv.port.to_string());
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SELECT 1").unwrap();
    tx.commit().unwrap();
    let e = c.query("SELEC 1", &[]).unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42601");
    // A failed transaction block: 25P02 until ROLLBACK.
    c.batch_execute("BEGIN").unwrap();
    assert!(c.batch_execute("bogus").is_err());
    let e = c.query_one("SELECT 1", &[]).unwrap_err();
    assert_eq!(e.code().unwrap().code(), "25P02");
    c.batch_execute("ROLLBACK").unwrap();
    let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
    // Cancel from another connection (the crate sends a CancelRequest).
    let token = c.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        token.cancel_query(postgres::NoTls).unwrap();
    });
    let t = Instant::now();
    let e = c.simple_query("SELECT pg_sleep(30)").unwrap_err();
    canceller.join().unwrap();
    assert_eq!(e.code().unwrap().code(), "57014", "{e}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1, "the session survives a cancel");
}

/// SQL through the query layer over the extended protocol, as the `postgres` crate speaks
/// it: typed `$n` parameters in binary, binary results of each fixed-width type, a portal
/// read a few rows at a time (Execute with a row limit, PortalSuspended), utility statements
/// through Parse/Bind/Execute, errors with positions, and a long result that streams.
fn extended_protocol_sql(srv: &Server) {
    let mut c = srv.client();
    let r = c
        .query_one(
            "SELECT $1::int8 + 1, $2::text || '!', $3::float8 * 2, $4::bool, $5::int4 - 1, $6::int2",
            &[&41i64, &"hi", &1.25f64, &true, &8i32, &7i16],
        )
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 42);
    assert_eq!(r.get::<_, String>(1), "hi!");
    assert_eq!(r.get::<_, f64>(2), 2.5);
    assert!(r.get::<_, bool>(3));
    assert_eq!(r.get::<_, i32>(4), 7);
    assert_eq!(r.get::<_, i16>(5), 7);
    // Inferred parameter types (int4 from the comparison).
    let st = c
        .prepare("SELECT g FROM generate_series(1, 10) g WHERE g > $1")
        .unwrap();
    assert_eq!(st.params(), &[postgres::types::Type::INT4]);
    assert_eq!(st.columns()[0].name(), "g");
    assert_eq!(c.query(&st, &[&7i32]).unwrap().len(), 3);
    // A portal read three rows at a time.
    let mut tx = c.transaction().unwrap();
    let portal = tx
        .bind("SELECT g FROM generate_series(1, 8) g", &[])
        .unwrap();
    let mut got = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 3).unwrap();
        if rows.is_empty() {
            break;
        }
        got.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(got, (1..=8).collect::<Vec<i32>>());
    tx.commit().unwrap();
    // Utility statements through the extended protocol.
    c.execute("SET application_name = 'ext'", &[]).unwrap();
    let v: String = c.query_one("SHOW application_name", &[]).unwrap().get(0);
    assert_eq!(v, "ext");
    let e = c.query_one("SELECT 1 +", &[]).unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42601");
    assert!(db.position().is_some(), "{db:?}");
    let e = c.query_one("SELECT 1 / $1", &[&0i32]).unwrap_err();
    assert_eq!(e.code().unwrap().code(), "22012");
    let ts: std::time::SystemTime = c.query_one("SELECT now()", &[]).unwrap().get(0);
    assert!(ts.elapsed().unwrap_or_default() < Duration::from_secs(60));
    let n: i64 = c
        .query_one("SELECT count(*) FROM generate_series(1, 200000)", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 200_000);
    let rows = c
        .query(
            "SELECT g, 'row ' || g FROM generate_series(1, 50000) g",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 50_000);
    assert_eq!(rows[49_999].get::<_, String>(1), "row 50000");
}

/// SIGINT to a backend in `pg_sleep(30)` (what `pg_cancel_backend` sends): 57014 within
/// 100 ms, and the session goes on; `pg_sleep_for` and `pg_sleep_until` sleep on the same
/// latch.
fn sigint_cancels_sleep_quickly(srv: &Server) {
    let mut c = srv.client();
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    for sql in [
        "SELECT pg_sleep(30)",
        "SELECT pg_sleep_for('30 seconds')",
        "SELECT pg_sleep_until(now() + '30 s'::interval)",
    ] {
        let sent = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let at = Instant::now();
            signal(pid, libc::SIGINT);
            at
        });
        let e = c.simple_query(sql).unwrap_err();
        let answered = Instant::now();
        let sent = sent.join().unwrap();
        assert_eq!(e.code().unwrap().code(), "57014", "{sql}: {e}");
        let took = answered.saturating_duration_since(sent);
        assert!(
            took < Duration::from_millis(100),
            "{sql}: canceled after {took:?}"
        );
        let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
    }
}

/// Cancel with protocol 3.2 (32-byte key) and 3.0 (4-byte key); a wrong key does nothing.
fn raw_cancel(srv: &Server) {
    for version in [(3, 2), (3, 0)] {
        let (mut s, pid, key) = raw_session(srv, version);
        assert_eq!(key.len(), if version.1 == 2 { 32 } else { 4 });
        s.write_all(&query("SELECT pg_sleep(1)")).unwrap();
        let mut wrong = key.clone();
        wrong[0] ^= 1;
        std::thread::sleep(Duration::from_millis(100));
        send_cancel(srv, pid, &wrong);
        // The sleep completes normally.
        assert_eq!(
            types_until_ready(&mut s),
            b"TDCZ",
            "wrong key must not cancel"
        );
        s.write_all(&query("SELECT pg_sleep(30)")).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        send_cancel(srv, pid, &key);
        assert_eq!(
            next_error(&mut s),
            (
                "57014".into(),
                "canceling statement due to user request".into()
            )
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(read_msg(&mut s).unwrap(), (b'Z', b"I".to_vec()));
        s.write_all(&message(b'X', &[])).unwrap();
    }
}

fn terminate(srv: &Server) {
    let (mut s, pid, _) = raw_session(srv, (3, 0));
    s.write_all(&query("SELECT pg_sleep(30)")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    signal(pid, libc::SIGTERM);
    assert_eq!(
        next_error(&mut s),
        (
            "57P01".into(),
            "terminating connection due to administrator command".into()
        )
    );
    assert!(read_msg(&mut s).is_none(), "connection closed after FATAL");
}

fn quickdie(srv: &Server) {
    let (mut s, pid, _) = raw_session(srv, (3, 0));
    signal(pid, libc::SIGQUIT);
    let (ty, body) = read_msg(&mut s).expect("a warning before EOF");
    assert_eq!(ty, b'N');
    assert_eq!(
        error_code(&body),
        (
            "57P01".into(),
            "terminating connection due to unexpected SIGQUIT signal".into()
        )
    );
    assert!(read_msg(&mut s).is_none());
}

fn extended_protocol_errors(srv: &Server) {
    let (mut s, _, _) = raw_session(srv, (3, 0));
    // Parse of bad SQL, then messages that must be skipped until Sync.
    let mut batch = message(b'P', b"\0SELEC 1\0\0\0");
    batch.extend(message(b'B', b"\0\0\0\0\0\0\0\0"));
    batch.extend(message(b'E', b"\0\0\0\0\0"));
    batch.extend(message(b'S', b""));
    batch.extend(message(b'P', b"s1\0SELECT 5\0\0\0"));
    batch.extend(message(b'B', b"p1\0s1\0\0\0\0\0\0\0"));
    batch.extend(message(b'D', b"Pp1\0"));
    batch.extend(message(b'E', b"p1\0\0\0\0\0"));
    batch.extend(message(b'C', b"Ss1\0"));
    batch.extend(message(b'S', b""));
    s.write_all(&batch).unwrap();
    let mut types = Vec::new();
    let mut zs = 0;
    while zs < 2 {
        let (ty, body) = read_msg(&mut s).unwrap();
        if ty == b'E' {
            assert_eq!(error_code(&body).0, "42601");
        }
        if ty == b'D' {
            assert_eq!(&body[6..], b"5");
        }
        zs += usize::from(ty == b'Z');
        types.push(ty);
    }
    assert_eq!(types, b"EZ12TDC3Z");
    // An unknown message type is FATAL 08P01.
    s.write_all(&message(b'Z', b"")).unwrap();
    let (ty, body) = read_msg(&mut s).unwrap();
    assert_eq!(ty, b'E');
    assert_eq!(
        error_code(&body),
        ("08P01".into(), "invalid frontend message type 90".into())
    );
    assert!(read_msg(&mut s).is_none());
}

fn bad_startup_packets(srv: &Server) {
    // Garbage, truncated, oversized, too short: closed without an answer.
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(exchange(srv, &garbage).is_empty());
    assert!(exchange(srv, b"\0\0\0\x64\0\x03\0\0user\0").is_empty());
    assert!(exchange(srv, &[0, 0, 0x4e, 0x20, 0, 3, 0, 0]).is_empty());
    assert!(exchange(srv, &[0, 0, 0, 4]).is_empty());
    assert!(exchange(srv, &[0, 0]).is_empty());
    assert!(exchange(srv, b"").is_empty());
    // A cancel packet with a 300-byte key, and one for a pid that does not exist.
    assert!(exchange(srv, &cancel_packet(1, &[0; 300])).is_empty());
    assert!(exchange(srv, &cancel_packet(999_999, &[1, 2, 3, 4])).is_empty());
    // Wrong protocol version: FATAL 0A000.
    let out = exchange(srv, &startup_packet((2, 0), &[("user", "u")]));
    assert_eq!(out[0], b'E');
    assert_eq!(
        error_code(&out[5..]),
        (
            "0A000".into(),
            "unsupported frontend protocol 2.0: server supports 3.0 to 3.2".into()
        )
    );
    // Replication connections are refused; a bad replication value is 22023.
    let out = exchange(
        srv,
        &startup_packet((3, 0), &[("user", "u"), ("replication", "on")]),
    );
    assert_eq!(error_code(&out[5..]).0, "0A000");
    let out = exchange(
        srv,
        &startup_packet((3, 0), &[("user", "u"), ("replication", "x")]),
    );
    assert_eq!(
        error_code(&out[5..]),
        (
            "22023".into(),
            "invalid value for parameter \"replication\": \"x\"".into()
        )
    );
    // No user: FATAL 28000. Bad layout: FATAL 08P01.
    let out = exchange(srv, &startup_packet((3, 0), &[("database", "d")]));
    assert_eq!(error_code(&out[5..]).0, "28000");
    let out = exchange(srv, b"\0\0\0\x0d\0\x03\0\0user\0");
    assert_eq!(error_code(&out[5..]).0, "08P01");
    // SSLRequest and GSSENCRequest: 'N', then a normal start-up.
    let mut s = srv.raw();
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).unwrap();
    let mut n = [0u8; 1];
    s.read_exact(&mut n).unwrap();
    assert_eq!(&n, b"N");
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]).unwrap();
    s.read_exact(&mut n).unwrap();
    assert_eq!(&n, b"N");
    s.write_all(&startup_packet((3, 0), &[("user", "u")]))
        .unwrap();
    assert_eq!(read_msg(&mut s).unwrap().0, b'R');
    // A newer minor version and an unknown protocol option: NegotiateProtocolVersion first.
    let out = exchange(
        srv,
        &startup_packet((3, 7), &[("user", "u"), ("_pq_.magic", "1")]),
    );
    assert_eq!(out[0], b'v');
    assert_eq!(&out[5..13], &[0, 3, 0, 2, 0, 0, 0, 1]);
    assert_eq!(&out[13..24], b"_pq_.magic\0");
    // The server is still fine.
    assert_eq!(srv.psql_ok("SELECT 1"), "1\n");
}

/// Random bytes after a valid start-up: each backend answers with errors or hangs up, never
/// crashes in a way that hurts the server or the other sessions.
fn garbage_messages(srv: &Server) {
    let (mut witness, _, _) = raw_session(srv, (3, 0));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..40 {
        let (mut s, _, _) = raw_session(srv, (3, 0));
        let mut bytes = Vec::new();
        for _ in 0..(rnd() % 6 + 1) {
            // A plausible type byte most of the time, then a small or wild length and junk.
            let types = b"QPBDECSHFdcfXZ\0";
            bytes.push(types[(rnd() % types.len() as u64) as usize]);
            let len = match rnd() % 4 {
                0 => rnd() as u32,
                _ => (rnd() % 40) as u32,
            };
            bytes.extend(len.to_be_bytes());
            for _ in 0..(rnd() % 40) {
                bytes.push(if rnd() % 4 == 0 { 0 } else { rnd() as u8 });
            }
        }
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let r = s.read_to_end(&mut out);
        assert!(r.is_ok(), "round {round}: backend did not hang up: {r:?}");
    }
    witness.write_all(&query("SELECT 5")).unwrap();
    assert_eq!(types_until_ready(&mut witness), b"TDCZ");
    assert_eq!(srv.psql_ok("SELECT 1"), "1\n");
}

fn refusals() {
    let srv = Server::start("refuse", &["--cac", "shutdown"]);
    let mut s = srv.raw();
    // Dead-end children still answer the SSL negotiation.
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).unwrap();
    let mut n = [0u8; 1];
    s.read_exact(&mut n).unwrap();
    assert_eq!(&n, b"N");
    s.write_all(&startup_packet((3, 0), &[("user", "u")]))
        .unwrap();
    let (ty, body) = read_msg(&mut s).unwrap();
    assert_eq!(ty, b'E');
    assert_eq!(
        error_code(&body),
        (
            "57P03".into(),
            "the database system is shutting down".into()
        )
    );
    srv.stop();

    let srv = Server::start("full", &["--max-connections", "1"]);
    let (_held, _, _) = raw_session(&srv, (3, 0));
    let o = srv.psql("SELECT 1");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sorry, too many clients already"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    srv.stop();
}

fn startup_timeout() {
    let srv = Server::start("timeout", &["--auth-timeout-ms", "300"]);
    let mut s = srv.raw();
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
    srv.stop();
}

fn postmaster_death() {
    let srv = Server::start("pmdeath", &[]);
    let (mut s, pid, _) = raw_session(&srv, (3, 0));
    s.write_all(&query("SELECT pg_sleep(30)")).unwrap();
    let (_idle, idle_pid, _) = raw_session(&srv, (3, 0));
    std::thread::sleep(Duration::from_millis(200));
    signal(srv.pid, libc::SIGKILL);
    let mut child = srv.child;
    let _ = child.wait();
    locked(&SERVERS).retain(|p| *p != srv.pid);
    // The killed server cannot remove its DSM control segment: do what the next postmaster
    // would.
    let control: u32 = std::fs::read_to_string(srv.dir.join("dsm_control"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .expect("the server recorded its DSM control handle");
    pgipc_dsm::dsm_cleanup_using_control_segment(
        &pgipc_dsm::DsmImpl::new(pgipc_dsm::DsmImplType::Posix, None),
        control,
    )
    .expect("clean-up");
    assert!(!std::path::Path::new(&format!("/dev/shm/PostgreSQL.{control}")).exists());
    // Both backends (sleeping and idle) notice and leave.
    let gone = |p: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        stat.is_empty() || stat.split(' ').nth(2) == Some("Z")
    };
    let t = Instant::now();
    while !(gone(pid) && gone(idle_pid)) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "backends outlived the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&srv.dir);
}

/// A case run against the shared server.
type OnMain = (&'static str, fn(&Server));

/// Runs `case` against the shared server, starting it on first use.
fn with_main(case: fn(&Server)) {
    let mut main = locked(&MAIN);
    let srv = main.get_or_insert_with(|| Server::start("main", &[]));
    case(srv);
}

/// The shared server's log so far (or as it was when the server stopped).
fn main_log() -> String {
    match locked(&MAIN).as_ref() {
        Some(srv) => std::fs::read_to_string(srv.dir.join("server.log")).unwrap_or_default(),
        None => locked(&MAIN_LOG).clone(),
    }
}

fn stop_removes_files() {
    let srv = locked(&MAIN)
        .take()
        .unwrap_or_else(|| Server::start("main", &[]));
    *locked(&MAIN_LOG) = std::fs::read_to_string(srv.dir.join("server.log")).unwrap_or_default();
    srv.stop();
}

fn main() -> ExitCode {
    if std::env::var_os(SERVER_ENV).is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        std::process::exit(mini_server::run(&args));
    }
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("watchdog: the tests took longer than {WATCHDOG:?}; killing the servers");
        for p in locked(&SERVERS).iter() {
            signal(*p, libc::SIGKILL);
        }
        std::process::exit(1);
    });
    let on_main: [OnMain; 12] = [
        ("psql_basics", psql_basics),
        (
            "settings_and_parameter_status",
            settings_and_parameter_status,
        ),
        ("pgbench", pgbench),
        ("rust_client", rust_client),
        ("extended_protocol_sql", extended_protocol_sql),
        ("sigint_cancels_sleep_quickly", sigint_cancels_sleep_quickly),
        ("raw_cancel", raw_cancel),
        ("terminate", terminate),
        ("quickdie", quickdie),
        ("extended_protocol_errors", extended_protocol_errors),
        ("bad_startup_packets", bad_startup_packets),
        ("garbage_messages", garbage_messages),
    ];
    let on_their_own: [(&str, fn()); 4] = [
        ("refusals", refusals),
        ("startup_timeout", startup_timeout),
        ("postmaster_death", postmaster_death),
        ("no_panics_in_server_log", || {
            let log = main_log();
            assert!(!log.contains("panicked"), "a process panicked:\n{log}");
        }),
    ];
    let mut trials: Vec<Trial> = on_main
        .into_iter()
        .map(|(name, case)| {
            Trial::test(name, move || {
                with_main(case);
                Ok(())
            })
        })
        .collect();
    trials.extend(
        on_their_own
            .into_iter()
            .chain([("stop_removes_files", stop_removes_files as fn())])
            .map(|(name, case)| {
                Trial::test(name, move || {
                    case();
                    Ok(())
                })
            }),
    );
    let mut args = Arguments::from_args();
    // One test thread: the cases run one after the other, in this order.
    args.test_threads = Some(1);
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.has_failed() {
        eprintln!("--- server log ---\n{}", main_log());
    }
    // Servers a failed case left running.
    for p in locked(&SERVERS).drain(..) {
        signal(p, libc::SIGKILL);
    }
    if let Some(mut srv) = locked(&MAIN).take() {
        let _ = srv.child.wait();
        let _ = std::fs::remove_dir_all(&srv.dir);
    }
    conclusion.exit_code()
}
