//! `pg_file_settings` with PostgreSQL as the oracle: the same configuration file text is read
//! by the installed PostgreSQL 15 (its own `postgresql.conf`, rewritten while it runs: the
//! view parses the file at each scan) and by `pgipc_guc::Settings::file_settings` (what the
//! sysviews crate's `pg_file_settings` shows), and the rows (line, seqno, name, setting,
//! applied, error) must be equal: overridden duplicates, a placeholder, a restart-only change,
//! a bad value, restart-only settings removed from the file, an unknown name, a syntax error.
//!
//! A `harness = false` test: libtest-mimic runs the cases one after the other on one test
//! thread; a watchdog ends the binary if it hangs.

mod common;

use common::server::{watchdog, Postgres15};
use pgipc_guc::Settings;
use std::process::ExitCode;
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

fn matches_postgresql_15() {
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

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("file_settings", WATCHDOG);
    pgipc_tests::harness::run_cases(&[("matches_postgresql_15", matches_postgresql_15)])
}
