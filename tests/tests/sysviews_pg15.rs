//! The sysviews crate with PostgreSQL 15 as the oracle.
//!
//! * `pg_file_settings`: the same configuration file text is read by the installed
//!   PostgreSQL 15 (its own `postgresql.conf`, rewritten while it runs: the view parses the
//!   file at each scan) and by `pgipc_guc::Settings::file_settings` (what the sysviews
//!   crate's `pg_file_settings` shows), and the rows (line, seqno, name, setting, applied,
//!   error) must be equal: overridden duplicates, a placeholder, a restart-only change, a bad
//!   value, restart-only settings removed from the file, an unknown name, a syntax error.
//! * The admin functions' warnings and errors (message and SQLSTATE, as psql prints them with
//!   `VERBOSITY=verbose`) for a pid that is no process, an auxiliary process's pid and a
//!   negative timeout; the columns and types of the views PostgreSQL 15 shares with 18.
//!
//! A `harness = false` test: libtest-mimic runs the cases one after the other on one test
//! thread; a watchdog ends the binary if it hangs.

mod common;

use common::server::{output_within, watchdog, Postgres15};
use pgipc_guc::Settings;
use pgipc_ipci::{Addins, IpcConfig};
use pgipc_query::{Catalog, GucSession, Statement};
use pgipc_shmem::HugePages;
use pgipc_sysviews::{register, SysContext};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(300);

/// Configuration files to compare; each is the whole file.
const FILES: &[&str] = &[
    // Duplicates (only the last applies), a placeholder, a restart-only change, a bad value.
    "work_mem = '8MB'\nwork_mem = 16MB\nmy.custom = 'x'\nmax_connections = 50\n\
     statement_timeout = 'abc'\nlog_min_messages = warning\n",
    // Restart-only settings at their running values apply.
    "max_connections = 100\nshared_buffers = 128MB\n",
    // An unknown name: that entry says so, and nothing applies.
    "work_mem = 8MB\nbogus_param = 1\n",
    // A syntax error: a row without a name, and nothing applies.
    "work_mem = 8MB\nthis is = bad\n",
    // Comments, blank lines and include-less files with only comments.
    "# nothing\n\n   # at all\n",
];

type Row = (
    Option<i32>,
    i32,
    Option<String>,
    Option<String>,
    bool,
    Option<String>,
);

fn file_settings_match_postgresql_15() {
    let pg = Postgres15::start("file-settings").unwrap_or_else(|e| panic!("{e}"));
    let pg_conf = pg.data_dir().join("postgresql.conf");
    let mut client = pg.client().unwrap_or_else(|e| panic!("{e}"));
    let ours_dir = pgipc_tests::scratch("pgipc-file-settings", "ours");
    std::fs::create_dir_all(&ours_dir).expect("scratch dir");
    let ours_conf = ours_dir.join("postgresql.conf");
    // Started as PostgreSQL 15 was, as far as restart-only settings from the file go
    // (initdb's postgresql.conf sets these three).
    std::fs::write(
        &ours_conf,
        "max_connections = 100\nshared_buffers = 128MB\ndynamic_shared_memory_type = posix\n",
    )
    .expect("write ours");
    let mut settings = Settings::new();
    settings
        .apply_file(&ours_conf)
        .unwrap_or_else(|e| panic!("{e}"));
    for text in FILES {
        // Rewritten in place: the file keeps its owner and mode.
        std::fs::write(&pg_conf, text).expect("rewrite PostgreSQL's postgresql.conf");
        std::fs::write(&ours_conf, text).expect("write ours");
        let theirs: Vec<Row> = client
            .query(
                "SELECT sourceline, seqno, name, setting, applied, error \
                 FROM pg_file_settings ORDER BY seqno",
                &[],
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect();
        let ours: Vec<Row> = settings
            .file_settings(&ours_conf)
            .into_iter()
            .map(|r| {
                (
                    r.sourceline.map(|l| l as i32),
                    r.seqno as i32,
                    r.name,
                    r.setting,
                    r.applied,
                    r.error,
                )
            })
            .collect();
        assert_eq!(ours, theirs, "for the file:\n{text}");
    }
}

/// What psql prints on stderr for `sql` at VERBOSITY=verbose, without LOCATION lines.
fn pg15_messages(pg: &Postgres15, sql: &str) -> Vec<String> {
    let o = output_within(
        &mut pg.psql_command(&["-A", "-t", "-v", "VERBOSITY=verbose"], &[sql]),
        Duration::from_secs(30),
    )
    .expect("psql");
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.starts_with("LOCATION:"))
        .map(str::to_owned)
        .collect()
}

/// The same for our functions: the statement run through the query layer with this crate's
/// catalog; notices first, then the error if any, as psql would print them.
fn our_messages(catalog: &Catalog, sql: &str) -> Vec<String> {
    let mut s = GucSession::new(Settings::new());
    let mut out = Vec::new();
    let result = pgipc_query::parse(sql, &[], catalog).and_then(|mut stmts| {
        let Some(Statement::Query(p)) = stmts.pop() else {
            panic!("not a query: {sql}");
        };
        let mut rows = p.execute(Vec::new(), &s);
        while rows.next_row(&mut s)?.is_some() {}
        Ok(())
    });
    for (sev, n) in &s.notices {
        out.push(format!("{sev}:  {}: {}", n.sqlstate, n.message));
    }
    if let Err(e) = result {
        out.push(format!("ERROR:  {}: {}", e.sqlstate, e.message));
    }
    out
}

fn functions_and_views_match_postgresql_15() {
    let pg = Postgres15::start("sysviews").unwrap_or_else(|e| panic!("{e}"));
    let cfg = IpcConfig {
        huge_pages: HugePages::Off,
        ..IpcConfig::default()
    };
    let state = pgipc_ipci::create_shared_memory_and_semaphores(&cfg, &Addins::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let ctx = Rc::new(SysContext::new(state.shmem.clone(), cfg.proc_config()));
    let mut catalog = Catalog::new();
    register(&mut catalog, ctx.clone());

    // A pid no process has, and an auxiliary process's pid (PostgreSQL 15's checkpointer;
    // ours registered in PGPROC under the same pid).
    let mut client = pg.client().unwrap_or_else(|e| panic!("{e}"));
    let ckpt: i32 = client
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    let procs = ctx.procarray().unwrap_or_else(|e| panic!("{e}")).procs();
    procs
        .alloc_aux_slot(pgipc_proc::BackendType::Checkpointer, ckpt)
        .unwrap_or_else(|e| panic!("{e}"));
    for sql in [
        "SELECT pg_cancel_backend(4194000)".to_owned(),
        "SELECT pg_terminate_backend(4194000)".to_owned(),
        "SELECT pg_terminate_backend(4194000, 10)".to_owned(),
        "SELECT pg_terminate_backend(1, -1)".to_owned(),
        "SELECT pg_cancel_backend(NULL)".to_owned(),
        format!("SELECT pg_cancel_backend({ckpt})"),
        format!("SELECT pg_terminate_backend({ckpt}, 100)"),
    ] {
        let theirs = pg15_messages(&pg, &sql);
        // Every statement but the NULL one makes PostgreSQL say something.
        assert_eq!(theirs.is_empty(), sql.contains("NULL"), "{sql}: {theirs:?}");
        assert_eq!(our_messages(&catalog, &sql), theirs, "{sql}");
    }

    // The columns of the views the two releases share.
    for view in ["pg_settings", "pg_file_settings", "pg_shmem_allocations"] {
        let theirs: Vec<(String, String)> = client
            .query(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = $1::text::regclass AND attnum > 0 ORDER BY attnum",
                &[&view],
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let stmts = pgipc_query::parse(&format!("SELECT * FROM {view}"), &[], &catalog)
            .unwrap_or_else(|e| panic!("{e}"));
        let Some(Statement::Query(p)) = stmts.into_iter().next() else {
            panic!("not a query");
        };
        let ours: Vec<(String, String)> = p
            .columns()
            .iter()
            .map(|c| (c.name.clone(), c.ty.sql_name().to_owned()))
            .collect();
        assert_eq!(ours, theirs, "{view}");
    }
    drop(catalog);
    drop(ctx);
    let _ = state.shutdown();
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("sysviews_pg15", WATCHDOG);
    pgipc_tests::harness::run_cases(&[
        (
            "file_settings_match_postgresql_15",
            file_settings_match_postgresql_15,
        ),
        (
            "functions_and_views_match_postgresql_15",
            functions_and_views_match_postgresql_15,
        ),
    ])
}
