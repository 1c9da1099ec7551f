//! Differential test: every statement of `tests/corpus/expressions.sql` runs through this
//! crate and through a private PostgreSQL 15 started here; the result column names, type
//! OIDs, type lengths and text values, or the SQLSTATE and message of the error, must be
//! identical, except for the few statements in [`ALLOWED`] (each with its reason).
//!
//! PostgreSQL 15 is started with `runuser -u postgres` from /usr/lib/postgresql/15/bin in a
//! temporary directory (C locale, UTC); the client is a minimal v3 simple-query client over
//! its Unix socket. Without PostgreSQL 15 the test is reported as ignored, and says why
//! (`PGIPC_PG15_BIN` points at another bin directory).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use pgipc_query::{Catalog, GucSession, Session, Statement};

/// Where PostgreSQL 15's programs are (`PGIPC_PG15_BIN` overrides it).
fn pg_bin() -> PathBuf {
    std::env::var_os("PGIPC_PG15_BIN").map_or_else(
        || PathBuf::from("/usr/lib/postgresql/15/bin"),
        PathBuf::from,
    )
}

/// Statements whose PostgreSQL 15 answer differs from PostgreSQL 18's (the reference this
/// crate follows), or that this crate answers differently by design.
const ALLOWED: &[(&str, &str)] = &[
    (
        "SELECT 'x'::xid",
        "PostgreSQL 16 checks xid input (uint32in_subr: 22P02); 15's xidin read it with an unchecked strtoul as 0",
    ),
    (
        "SELECT '4294967296'::xid",
        "PostgreSQL 16 checks xid input (uint32in_subr: 22003); 15's xidin truncated it to 32 bits",
    ),
    (
        "SELECT 'abc'::xid8",
        "PostgreSQL 16 checks xid8 input (uint64in_subr: 22P02); 15's xid8in read it with an unchecked strtou64 as 0",
    ),
    (
        "SELECT '0x1F'::int4, '0o17'::int8, '0b101'::int2",
        "PostgreSQL 16 added hexadecimal, octal and binary integer input; 15 rejects it (22P02)",
    ),
    (
        "SELECT '1_000'::int4, '1_000_000'::int8",
        "PostgreSQL 16 added underscores between digits in integer input; 15 rejects them (22P02)",
    ),
    (
        "SELECT 2::numeric ^ 10, 10::numeric ^ 20, (-2.5) ^ 3",
        "PostgreSQL 16 chooses an integer power's result scale from its estimated weight (16 significant digits: 1024.0000000000000); 15 always used 16 decimals",
    ),
];

/// One statement's outcome, in comparable text form.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Rows {
        columns: Vec<(String, u32, i16)>,
        rows: Vec<Vec<Option<String>>>,
    },
    Error {
        sqlstate: String,
        message: String,
        /// The `P` field (1-based character position), when the error has one.
        position: Option<u32>,
    },
    Command(String),
}

// ---------------------------------------------------------------- a tiny v3 client

struct Pg {
    s: UnixStream,
}

impl Pg {
    fn connect(sock: &Path, port: u16) -> std::io::Result<Pg> {
        let s = UnixStream::connect(sock.join(format!(".s.PGSQL.{port}")))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut pg = Pg { s };
        let mut body = Vec::new();
        body.extend_from_slice(&196608u32.to_be_bytes());
        for (k, v) in [
            ("user", "postgres"),
            ("database", "postgres"),
            ("TimeZone", "UTC"),
            ("client_encoding", "UTF8"),
        ] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        pg.s.write_all(&msg)?;
        loop {
            let (t, _) = pg.read_msg()?;
            if t == b'Z' {
                return Ok(pg);
            }
            if t == b'E' {
                return Err(std::io::Error::other("startup failed"));
            }
        }
    }

    fn read_msg(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        let mut h = [0u8; 5];
        self.s.read_exact(&mut h)?;
        let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
        let mut b = vec![0u8; len.saturating_sub(4)];
        self.s.read_exact(&mut b)?;
        Ok((h[0], b))
    }

    fn query(&mut self, sql: &str) -> std::io::Result<Outcome> {
        let mut msg = vec![b'Q'];
        msg.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
        msg.extend_from_slice(sql.as_bytes());
        msg.push(0);
        self.s.write_all(&msg)?;
        let mut out: Option<Outcome> = None;
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        loop {
            let (t, b) = self.read_msg()?;
            match t {
                b'T' => {
                    let n = u16::from_be_bytes([b[0], b[1]]) as usize;
                    let mut i = 2;
                    for _ in 0..n {
                        let end = i + b[i..].iter().position(|&c| c == 0).unwrap_or(0);
                        let name = String::from_utf8_lossy(&b[i..end]).into_owned();
                        i = end + 1;
                        let oid = u32::from_be_bytes([b[i + 6], b[i + 7], b[i + 8], b[i + 9]]);
                        let len = i16::from_be_bytes([b[i + 10], b[i + 11]]);
                        i += 18;
                        columns.push((name, oid, len));
                    }
                }
                b'D' => {
                    let n = u16::from_be_bytes([b[0], b[1]]) as usize;
                    let mut i = 2;
                    let mut row = Vec::new();
                    for _ in 0..n {
                        let l = i32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
                        i += 4;
                        if l < 0 {
                            row.push(None);
                        } else {
                            row.push(Some(
                                String::from_utf8_lossy(&b[i..i + l as usize]).into_owned(),
                            ));
                            i += l as usize;
                        }
                    }
                    rows.push(row);
                }
                b'C' => {
                    let tag = String::from_utf8_lossy(&b[..b.len().saturating_sub(1)]).into_owned();
                    out = Some(if columns.is_empty() && !tag.starts_with("SELECT") {
                        Outcome::Command(tag)
                    } else {
                        Outcome::Rows {
                            columns: std::mem::take(&mut columns),
                            rows: std::mem::take(&mut rows),
                        }
                    });
                }
                b'E' => {
                    let (mut code, mut m, mut p) = (String::new(), String::new(), None);
                    let mut i = 0;
                    while i < b.len() && b[i] != 0 {
                        let f = b[i];
                        let end = i + 1 + b[i + 1..].iter().position(|&c| c == 0).unwrap_or(0);
                        let v = String::from_utf8_lossy(&b[i + 1..end]).into_owned();
                        match f {
                            b'C' => code = v,
                            b'M' => m = v,
                            b'P' => p = v.parse().ok(),
                            _ => {}
                        }
                        i = end + 1;
                    }
                    out = Some(Outcome::Error {
                        sqlstate: code,
                        message: m,
                        position: p,
                    });
                }
                b'Z' => return Ok(out.unwrap_or(Outcome::Command(String::new()))),
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------- PostgreSQL 15

struct Server {
    dir: PathBuf,
    sock: PathBuf,
    port: u16,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        // runuser does not forward signals: signal the postmaster named in its pid file.
        let pid: i32 = std::fs::read_to_string(self.dir.join("pg-data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            .unwrap_or(0);
        if pid > 0 {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(pid.to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(54329)
}

fn start_pg15() -> Result<Server, String> {
    let bin = pg_bin();
    if !bin.join("postgres").exists() {
        return Err(format!(
            "PostgreSQL 15 is not installed ({}/postgres is missing)",
            bin.display()
        ));
    }
    let dir = std::env::temp_dir().join(format!("pgipc-query-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sock = dir.join("sock");
    std::fs::create_dir_all(&sock).map_err(|e| e.to_string())?;
    for p in [&dir, &sock] {
        let _ = Command::new("chmod").arg("777").arg(p).status();
    }
    let as_pg = |cmd: &str| {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(cmd));
        c
    };
    let st = as_pg("initdb")
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-locale",
            "-E",
            "UTF8",
            "-D",
        ])
        .arg(dir.join("pg-data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("initdb: {e}"))?;
    if !st.success() {
        return Err(format!("initdb failed: {st}"));
    }
    let port = free_port();
    let child = as_pg("postgres")
        .arg("-D")
        .arg(dir.join("pg-data"))
        .arg("-k")
        .arg(&sock)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=",
            "-c",
            "fsync=off",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("pg.log")).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("postgres: {e}"))?;
    let server = Server {
        dir,
        sock,
        port,
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = Pg::connect(&server.sock, server.port) {
            if c.query("SELECT 1").is_ok() {
                return Ok(server);
            }
        }
        if Instant::now() > deadline {
            return Err("PostgreSQL 15 did not start within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------- this crate

fn ours(sql: &str, catalog: &Catalog, session: &mut GucSession) -> Outcome {
    let err = |e: pgipc_query::QueryError| Outcome::Error {
        sqlstate: e.sqlstate.to_string(),
        message: e.message,
        position: e.position,
    };
    let stmts = match pgipc_query::parse(sql, &[], catalog) {
        Ok(s) => s,
        Err(e) => return err(e),
    };
    let mut last = Outcome::Command(String::new());
    for st in stmts {
        last = match st {
            Statement::Query(p) => {
                let columns = p
                    .columns()
                    .iter()
                    .map(|c| (c.name.clone(), c.ty.oid(), c.ty.typlen()))
                    .collect();
                let mut rows_out = Vec::new();
                let mut rows = p.execute(Vec::new(), &*session);
                loop {
                    match rows.next_row(session) {
                        Ok(Some(r)) => {
                            let tz = rows.time_zone().clone();
                            rows_out.push(r.iter().map(|d| d.to_text(&tz)).collect());
                        }
                        Ok(None) => break,
                        Err(e) => return err(e),
                    }
                }
                Outcome::Rows {
                    columns,
                    rows: rows_out,
                }
            }
            Statement::Set { name, value, local } => {
                match session.set_config(&name, value.as_deref().unwrap_or("DEFAULT"), local) {
                    Ok(_) => Outcome::Command("SET".into()),
                    Err(e) => return err(e),
                }
            }
            other => Outcome::Command(format!("{other:?}")),
        };
    }
    last
}

fn corpus() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/expressions.sql");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let statements = corpus();
    let server = match start_pg15() {
        Ok(s) => s,
        Err(why) => {
            eprintln!(
                "differential: SKIPPED, {why}: {} statements not compared",
                statements.len()
            );
            let trials = vec![Trial::test("differential_against_postgresql_15", || Ok(()))
                .with_ignored_flag(true)];
            libtest_mimic::run(&args, trials).exit();
        }
    };
    let mut pg = Pg::connect(&server.sock, server.port).expect("connect to PostgreSQL 15");
    let catalog = Catalog::new();
    let mut settings = pgipc_guc::Settings::new();
    let _ = settings.set("TimeZone", "UTC", pgipc_guc::Source::Client);
    let mut session = GucSession::new(settings);
    session.fixed_clock = Some(pgipc_query::system_now());

    // Each statement is its own trial, run in corpus order on one thread (they share the
    // two sessions: a set_config must come before what reads it).
    let mut results = Vec::new();
    for sql in &statements {
        let theirs = pg.query(sql).unwrap_or_else(|e| Outcome::Error {
            sqlstate: "client".into(),
            message: e.to_string(),
            position: None,
        });
        let mine = ours(sql, &catalog, &mut session);
        results.push((sql.clone(), theirs, mine));
    }
    drop(pg);
    drop(server);
    let mut same = 0usize;
    let mut allowed = 0usize;
    let mut differ = 0usize;
    let mut trials = Vec::new();
    for (sql, theirs, mine) in results {
        let allow = ALLOWED.iter().find(|(s, _)| *s == sql).map(|(_, why)| *why);
        if theirs == mine {
            same += 1;
        } else if allow.is_some() {
            allowed += 1;
        } else {
            differ += 1;
        }
        trials.push(Trial::test(sql.clone(), move || {
            if theirs == mine || allow.is_some() {
                Ok(())
            } else {
                Err(Failed::from(format!(
                    "\n  PostgreSQL 15: {theirs:?}\n  pgipc-query:   {mine:?}"
                )))
            }
        }));
    }
    println!(
        "differential: {} statements, {same} identical, {allowed} allowed differences, {differ} differing",
        same + allowed + differ
    );
    libtest_mimic::run(&args, trials).exit();
}
