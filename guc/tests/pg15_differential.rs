//! Differential tests against a real PostgreSQL server: the installed PostgreSQL 15 (CI
//! installs it; see `.ci/run`). For settings whose rules did not change between 15 and 18,
//! `SET` + `SHOW` must print what PostgreSQL prints, and a bad `SET` must fail with the same
//! SQLSTATE, message and hint. When PostgreSQL 15 is not installed the test says so and checks
//! nothing else.
//!
//! The server runs as user `postgres` (`runuser`), on a Unix socket in a temporary directory,
//! and is stopped (immediate mode) when the test ends, pass or fail.

use pgipc_guc::Settings;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The installed server's bin directory: PostgreSQL 15 if present, else the newest installed.
fn bin() -> Option<(PathBuf, u32)> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let b = e.path().join("bin");
            b.join("postgres").exists().then_some((v, b))
        })
        .collect();
    found.sort();
    let pick = found
        .iter()
        .find(|(v, _)| *v == 15)
        .or(found.last())
        .cloned()?;
    Some((pick.1, pick.0))
}

struct Server {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    major: u32,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start() -> Option<Server> {
    let Some((bin, major)) = bin() else {
        println!("SKIPPED: no PostgreSQL server is installed (no /usr/lib/postgresql/*/bin/postgres); the differential checks did not run");
        return None;
    };
    println!(
        "differential checks against PostgreSQL {major} in {}",
        bin.display()
    );
    let port = 20000 + (std::process::id() % 20000) as u16;
    let dir = std::env::temp_dir().join(format!("pgipc-guc-pg15-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let owner = |p: &Path| {
        let st = Command::new("chown")
            .arg("postgres:postgres")
            .arg(p)
            .status();
        assert!(st.is_ok_and(|s| s.success()), "chown {}", p.display());
    };
    owner(&dir);
    let server = Server {
        dir: dir.clone(),
        port,
        bin: bin.clone(),
        major,
    };
    let as_pg = |prog: &str| {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(prog));
        c
    };
    let out = as_pg("initdb")
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "-D",
        ])
        .arg(dir.join("data"))
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = as_pg("pg_ctl")
        .args(["start", "-w", "-t", "60", "-l"])
        .arg(dir.join("log"))
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-o")
        .arg(format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -p {port}",
            dir.display()
        ))
        .stdout(Stdio::null())
        .status()
        .expect("run pg_ctl");
    assert!(
        st.success(),
        "pg_ctl start failed; log: {}",
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join(format!(".s.PGSQL.{port}")).exists() {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL 15 socket did not appear"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(server)
}

/// Runs `script` in one psql session as `user`: (stdout, the ERROR/HINT lines of stderr).
fn psql(server: &Server, user: &str, script: &str) -> (String, Vec<String>) {
    use std::io::Write;
    let mut child = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "VERBOSITY=verbose",
            "-d",
            "postgres",
            "-U",
            user,
            "-h",
        ])
        .arg(&server.dir)
        .args(["-p", &server.port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run psql");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let out = child.wait_with_output().expect("psql output");
    let err = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| {
            let l = l.split_once("ERROR:  ").map_or(l, |(_, r)| r);
            (!l.starts_with("LOCATION:")).then(|| l.to_owned())
        })
        .collect();
    (
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned(),
        err,
    )
}

/// Our answer in the same shape: SHOW output, or `CODE: message` and `HINT:  hint`.
fn ours(name: &str, value: &str, superuser: bool) -> (String, Vec<String>) {
    let mut s = Settings::new();
    s.start_transaction();
    match s.set_session(name, value, superuser, false) {
        Ok(()) => (s.show(name).unwrap_or_default(), Vec::new()),
        Err(e) => {
            let mut lines = vec![format!("{}: {e}", e.sqlstate())];
            if let Some(d) = e.detail() {
                lines.push(format!("DETAIL:  {d}"));
            }
            if let Some(h) = e.hint() {
                lines.push(format!("HINT:  {h}"));
            }
            (String::new(), lines)
        }
    }
}

#[test]
fn set_and_show_match_postgresql() {
    let Some(server) = start() else { return };
    let (_, err) = psql(&server, "postgres", "CREATE ROLE guc_plain LOGIN;");
    assert_eq!(err, Vec::<String>::new());
    // (user is superuser, name, value)
    let cases: &[(bool, &str, &str)] = &[
        (true, "work_mem", "64MB"),
        (true, "work_mem", "1024"),
        (true, "work_mem", "1536kB"),
        (true, "work_mem", "2.5MB"),
        (true, "work_mem", "100000"),
        (true, "work_mem", "1GB"),
        (true, "maintenance_work_mem", "1TB"),
        (true, "temp_buffers", "16MB"),
        (true, "temp_buffers", "1000"),
        (true, "effective_cache_size", "1000000"),
        (true, "backend_flush_after", "64"),
        (true, "gin_pending_list_limit", "8MB"),
        (true, "wal_skip_threshold", "4MB"),
        (true, "log_temp_files", "10MB"),
        (true, "statement_timeout", "300s"),
        (true, "statement_timeout", "1500"),
        (true, "statement_timeout", "90min"),
        (true, "statement_timeout", "1d"),
        (true, "statement_timeout", "1.5s"),
        (true, "statement_timeout", "0"),
        (true, "lock_timeout", "1min"),
        (true, "idle_session_timeout", "3600000"),
        (true, "log_min_duration_statement", "250ms"),
        (true, "vacuum_cost_delay", "0.5"),
        (true, "vacuum_cost_delay", "2ms"),
        (true, "vacuum_cost_delay", "1.5"),
        (true, "random_page_cost", "1.1"),
        (true, "seq_page_cost", "0.001"),
        (true, "cpu_tuple_cost", "1e-5"),
        (true, "jit_above_cost", "1e6"),
        (true, "cursor_tuple_fraction", "0.333333333"),
        (true, "geqo_selection_bias", "1.75"),
        (true, "enable_seqscan", "off"),
        (true, "enable_seqscan", "yes"),
        (true, "client_min_messages", "debug"),
        (true, "synchronous_commit", "true"),
        (true, "constraint_exclusion", "1"),
        (true, "default_transaction_isolation", "serializable"),
        (true, "bytea_output", "escape"),
        (true, "intervalstyle", "iso_8601"),
        (true, "application_name", "psql"),
        (true, "extra_float_digits", "3"),
        (true, "myext.anything", "v"),
        // Errors.
        (true, "work_mem", "x"),
        (true, "work_mem", "1 parsec"),
        (true, "work_mem", "10"),
        (true, "work_mem", "3000000000"),
        (true, "statement_timeout", "5 fortnights"),
        (true, "temp_buffers", "1"),
        (true, "vacuum_cost_delay", "200"),
        (true, "random_page_cost", "-1"),
        (true, "enable_seqscan", "maybe"),
        (true, "client_min_messages", "loud"),
        (true, "max_connections", "1"),
        (true, "no_such", "1"),
        (true, "autovacuum", "off"),
        (true, "server_version", "1"),
        (true, "ignore_system_indexes", "on"),
        (false, "log_min_messages", "info"),
        (false, "work_mem", "64MB"),
    ];
    let mut mismatches = Vec::new();
    for &(su, name, value) in cases {
        let user = if su { "postgres" } else { "guc_plain" };
        let set = format!("SET {name} = '{value}';\n");
        let (_, err) = psql(&server, user, &set);
        let theirs = if err.is_empty() {
            psql(&server, user, &format!("{set}SHOW {name};\n"))
        } else {
            (String::new(), err)
        };
        let mut mine = ours(name, value, su);
        // PostgreSQL 16 added the unit to the bounds of the range message ("(100 8kB .. 1073741823
        // 8kB)"); pgipc prints PostgreSQL 18's form, PostgreSQL 15 prints "(100 .. 1073741823)".
        let unit = pgipc_guc::Def::find(name).and_then(|d| d.unit_name());
        if let Some(unit) = unit.filter(|_| server.major < 16) {
            for line in &mut mine.1 {
                if let Some(k) = line.rfind(" (") {
                    if line.contains("is outside the valid range") {
                        let bounds = line[k..].replace(&format!(" {unit}"), "");
                        line.replace_range(k.., &bounds);
                    }
                }
            }
        }
        if theirs != mine {
            mismatches.push(format!(
                "SET {name} = '{value}':\n  PostgreSQL 15: {theirs:?}\n  pgipc:         {mine:?}"
            ));
        }
    }
    println!(
        "compared {} SET/SHOW cases with PostgreSQL 15, {} mismatches",
        cases.len(),
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The table against `postgres --describe-config` of the installed server: every setting it
/// has is here (unless PostgreSQL removed it by 18), with the same context, type and range
/// (unless PostgreSQL changed them by 18; each such change is listed).
#[test]
fn table_matches_describe_config() {
    let Some((bin, major)) = bin() else {
        println!("SKIPPED: no PostgreSQL server is installed; the table was not compared");
        return;
    };
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("postgres"))
        .arg("--describe-config")
        .output()
        .expect("run postgres --describe-config");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 8 {
            continue;
        }
        let (name, context, vartype, min, max) = (f[0], f[1], f[3], f[5], f[6]);
        let Some(d) = pgipc_guc::Def::find(name) else {
            if !removed_since(major).contains(&name) {
                mismatches.push(format!("{name}: in PostgreSQL {major}, missing here"));
            }
            continue;
        };
        compared += 1;
        if changed_since(major).contains(&name) {
            continue;
        }
        let ours_type = d.vartype().to_ascii_uppercase().replace("BOOL", "BOOLEAN");
        let (omin, omax) = match d.kind {
            pgipc_guc::Kind::Int { min, max, .. } => (min.to_string(), max.to_string()),
            pgipc_guc::Kind::Real { min, max, .. } => (fmt_like_c(min), fmt_like_c(max)),
            _ => (String::new(), String::new()),
        };
        let theirs = (context, vartype, min, max);
        let ours = (
            d.context.name(),
            ours_type.as_str(),
            omin.as_str(),
            omax.as_str(),
        );
        if theirs != ours {
            mismatches.push(format!(
                "{name}: PostgreSQL {major} {theirs:?}, here {ours:?}"
            ));
        }
    }
    println!(
        "compared {compared} settings with PostgreSQL {major}'s --describe-config, {} mismatches",
        mismatches.len()
    );
    assert!(compared > 300, "{compared}");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// `--describe-config` prints reals with `%g`; the bounds in the table are DBL_MAX or short
/// decimals, which Rust prints the same way.
fn fmt_like_c(v: f64) -> String {
    if v == f64::MAX {
        "1.79769e+308".into()
    } else if v.abs() >= 1e6 {
        let e = format!("{v:e}");
        match e.split_once('e') {
            Some((m, x)) => format!("{m}e+{:02}", x.parse::<i32>().unwrap_or(0)),
            None => e,
        }
    } else if v == v.trunc() {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Settings PostgreSQL removed between `major` and 18.
fn removed_since(major: u32) -> &'static [&'static str] {
    match major {
        15 => &[
            "force_parallel_mode",
            "promote_trigger_file",
            "vacuum_defer_cleanup_age",
            "lc_collate",
            "lc_ctype",
            "db_user_namespace",
            "old_snapshot_threshold",
            "trace_recovery_messages",
            // Debian's packaging patch, not a PostgreSQL setting.
            "extension_destdir",
        ],
        _ => &[],
    }
}

/// Settings whose context, type or range PostgreSQL changed between `major` and 18.
fn changed_since(major: u32) -> &'static [&'static str] {
    match major {
        15 => &[
            // Sighup since 18 (the slots are autovacuum_worker_slots).
            "autovacuum_max_workers",
            // A list of aspects since 18, a boolean before.
            "log_connections",
            // Maximum INT_MAX kB in 18, INT_MAX / 1024 in 15.
            "log_rotation_size",
            // Minimum 64 kB in 18, 1 MB in 15.
            "maintenance_work_mem",
        ],
        _ => &[],
    }
}
