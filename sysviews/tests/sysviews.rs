//! The functions and views over a real segment made by ipci, through the query layer: SQL in,
//! rows (as psql would print each value) and errors out.
//!
//! Processes that play "backends" are spawned commands (`sleep`, `sh`) in process groups of
//! their own, registered in the segment's PGPROC array and ProcArray under their pids; nothing
//! forks the threaded test harness. Expected column lists and messages were taken from
//! PostgreSQL (15 for `\d pg_settings`, `\d pg_file_settings`, `\d pg_shmem_allocations` and
//! the signal functions' texts; 18's system_views.sql for the PostgreSQL 18 shapes of
//! `pg_stat_bgwriter` and `pg_stat_checkpointer`).

use pgipc_guc::{Settings, Source};
use pgipc_ipci::{Addins, IpcConfig, IpcState};
use pgipc_proc::{BackendType, ProcNumber};
use pgipc_query::{
    Catalog, GucSession, QueryError, Result as QResult, Session, Statement, TimeZone,
};
use pgipc_shmem::HugePages;
use pgipc_sysviews::{register, SysContext};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A segment with every subsystem, a context over it and a catalog with this crate's entries.
struct Server {
    state: Option<IpcState>,
    ctx: Rc<SysContext>,
    catalog: Catalog,
}

impl Server {
    fn new() -> Server {
        Server::with(|_| {})
    }

    /// A server whose context `adjust` edits before it is registered.
    fn with(adjust: impl FnOnce(&mut SysContext)) -> Server {
        let cfg = IpcConfig {
            huge_pages: HugePages::Off,
            ..IpcConfig::default()
        };
        let state = pgipc_ipci::create_shared_memory_and_semaphores(&cfg, &Addins::new())
            .expect("shared memory");
        let mut ctx = SysContext::new(state.shmem.clone(), cfg.proc_config());
        adjust(&mut ctx);
        let ctx = Rc::new(ctx);
        let mut catalog = Catalog::new();
        register(&mut catalog, ctx.clone());
        Server {
            state: Some(state),
            ctx,
            catalog,
        }
    }

    fn stats(&self) -> pgipc_shmem::Shared<pgipc_pgstat::PgStatShared> {
        pgipc_pgstat::shmem_init(&self.ctx.shmem).expect("stats")
    }

    /// Registers `pid` as a process of `kind` in PGPROC (and in the ProcArray unless it is an
    /// auxiliary process), advertising `role`.
    fn enrol(&self, pid: i32, kind: BackendType, role: u32) -> ProcNumber {
        let pa = self.ctx.procarray().expect("procarray");
        let procno = if kind.is_auxiliary() {
            pa.procs().alloc_aux_slot(kind, pid).expect("aux slot")
        } else {
            let n = pa.procs().alloc_slot(kind, pid).expect("slot");
            pa.add(n).expect("procarray add");
            n
        };
        pa.procs()
            .proc(procno)
            .expect("proc")
            .role_id
            .store(role, Ordering::Relaxed);
        procno
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.state.take() {
            let _ = s.shutdown();
        }
    }
}

fn session() -> GucSession {
    GucSession::new(Settings::new())
}

type Row = Vec<Option<String>>;

/// Runs one SELECT: its column names and rows (`None` for NULL).
fn query(
    srv: &Server,
    s: &mut dyn Session,
    sql: &str,
) -> Result<(Vec<String>, Vec<Row>), QueryError> {
    let mut stmts = pgipc_query::parse(sql, &[], &srv.catalog)?;
    let Some(Statement::Query(p)) = stmts.pop() else {
        panic!("not a query: {sql}");
    };
    let names = p.columns().iter().map(|c| c.name.clone()).collect();
    let mut rows = p.execute(Vec::new(), s);
    let tz = s.time_zone();
    let mut out = Vec::new();
    while let Some(r) = rows.next_row(s)? {
        out.push(r.iter().map(|d| d.to_text(&tz)).collect());
    }
    Ok((names, out))
}

/// The rows of `sql`, which must succeed.
fn rows(srv: &Server, s: &mut dyn Session, sql: &str) -> Vec<Row> {
    match query(srv, s, sql) {
        Ok((_, r)) => r,
        Err(e) => panic!("{sql}: {e:?}"),
    }
}

/// The single value of `sql`.
fn value(srv: &Server, s: &mut dyn Session, sql: &str) -> Option<String> {
    let r = rows(srv, s, sql);
    assert_eq!(r.len(), 1, "{sql}: {r:?}");
    r[0][0].clone()
}

fn some(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// `(column, type name)` of a view, as `\d` lists them.
fn describe(srv: &Server, view: &str) -> Vec<(String, String)> {
    let stmts =
        pgipc_query::parse(&format!("SELECT * FROM {view}"), &[], &srv.catalog).expect("parse");
    let Some(Statement::Query(p)) = stmts.into_iter().next() else {
        panic!("not a query");
    };
    p.columns()
        .iter()
        .map(|c| (c.name.clone(), c.ty.sql_name().to_owned()))
        .collect()
}

fn cols(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

// ---- the views' shapes ----------------------------------------------------------------------

#[test]
fn view_columns_are_postgresqls() {
    let srv = Server::new();
    // PostgreSQL 15's `\d pg_settings` (18 has the same columns).
    assert_eq!(
        describe(&srv, "pg_settings"),
        cols(&[
            ("name", "text"),
            ("setting", "text"),
            ("unit", "text"),
            ("category", "text"),
            ("short_desc", "text"),
            ("extra_desc", "text"),
            ("context", "text"),
            ("vartype", "text"),
            ("source", "text"),
            ("min_val", "text"),
            ("max_val", "text"),
            ("enumvals", "text[]"),
            ("boot_val", "text"),
            ("reset_val", "text"),
            ("sourcefile", "text"),
            ("sourceline", "integer"),
            ("pending_restart", "boolean"),
        ])
    );
    assert_eq!(
        describe(&srv, "pg_file_settings"),
        cols(&[
            ("sourcefile", "text"),
            ("sourceline", "integer"),
            ("seqno", "integer"),
            ("name", "text"),
            ("setting", "text"),
            ("applied", "boolean"),
            ("error", "text"),
        ])
    );
    assert_eq!(
        describe(&srv, "pg_shmem_allocations"),
        cols(&[
            ("name", "text"),
            ("off", "bigint"),
            ("size", "bigint"),
            ("allocated_size", "bigint"),
        ])
    );
    // PostgreSQL 18's system_views.sql.
    assert_eq!(
        describe(&srv, "pg_stat_bgwriter"),
        cols(&[
            ("buffers_clean", "bigint"),
            ("maxwritten_clean", "bigint"),
            ("buffers_alloc", "bigint"),
            ("stats_reset", "timestamp with time zone"),
        ])
    );
    assert_eq!(
        describe(&srv, "pg_stat_checkpointer"),
        cols(&[
            ("num_timed", "bigint"),
            ("num_requested", "bigint"),
            ("num_done", "bigint"),
            ("restartpoints_timed", "bigint"),
            ("restartpoints_req", "bigint"),
            ("restartpoints_done", "bigint"),
            ("write_time", "double precision"),
            ("sync_time", "double precision"),
            ("buffers_written", "bigint"),
            ("slru_written", "bigint"),
            ("stats_reset", "timestamp with time zone"),
        ])
    );
    assert_eq!(
        describe(&srv, "pgipc_stat_aux"),
        cols(&[("name", "text"), ("count", "bigint")])
    );
}

// ---- pg_settings, pg_file_settings ----------------------------------------------------------

#[test]
fn pg_settings_lists_the_sessions_settings() {
    let srv = Server::new();
    let mut s = session();
    let n = s.settings.pg_settings(true).len();
    assert_eq!(
        value(&srv, &mut s, "SELECT count(*) FROM pg_settings"),
        Some(n.to_string())
    );
    assert!(n > 200, "{n}");
    assert_eq!(
        rows(
            &srv,
            &mut s,
            "SELECT name, setting, unit, context, vartype, source, min_val, max_val, boot_val, \
             sourcefile, sourceline, pending_restart \
             FROM pg_settings WHERE name = 'work_mem'"
        ),
        vec![vec![
            some("work_mem"),
            some("4096"),
            some("kB"),
            some("user"),
            some("integer"),
            some("default"),
            some("64"),
            some("2147483647"),
            some("4096"),
            None,
            None,
            some("f"),
        ]]
    );
    assert_eq!(
        value(
            &srv,
            &mut s,
            "SELECT enumvals FROM pg_settings WHERE name = 'huge_pages'"
        ),
        some("{off,on,try}")
    );
    // A SET shows at once, with its source.
    s.set_config("work_mem", "8MB", false).expect("set");
    assert_eq!(
        rows(
            &srv,
            &mut s,
            "SELECT setting, source FROM pg_settings WHERE name = 'work_mem'"
        ),
        vec![vec![some("8192"), some("session")]]
    );
}

#[test]
fn pg_settings_hides_superuser_only_settings_from_others() {
    let srv = Server::with(|c| c.superuser = false);
    let mut s = session();
    let visible = value(&srv, &mut s, "SELECT count(*) FROM pg_settings");
    assert_eq!(
        visible,
        Some(s.settings.pg_settings(false).len().to_string())
    );
    assert_eq!(
        value(
            &srv,
            &mut s,
            "SELECT count(*) FROM pg_settings WHERE name = 'config_file'"
        ),
        some("0")
    );
}

/// A configuration file of its own for one test.
fn conf_file(tag: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pgipc-sysviews-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let p = dir.join("postgresql.conf");
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn pg_file_settings_reports_what_a_reload_would_do() {
    let srv = Server::new();
    let path = conf_file("file-settings", "work_mem = 4MB\n");
    let mut settings = Settings::new();
    settings
        .set(
            "config_file",
            &path.display().to_string(),
            Source::CommandLine,
        )
        .expect("config_file");
    settings.apply_file(&path).expect("start");
    let mut s = GucSession::new(settings);
    std::fs::write(
        &path,
        "# edited\nwork_mem = 8MB\nwork_mem = '16MB'\nmax_connections = 7\n",
    )
    .expect("edit");
    let file = path.display().to_string();
    assert_eq!(
        rows(
            &srv,
            &mut s,
            "SELECT sourcefile, sourceline, seqno, name, setting, applied, error \
             FROM pg_file_settings ORDER BY seqno"
        ),
        vec![
            vec![
                some(&file),
                some("2"),
                some("1"),
                some("work_mem"),
                some("8MB"),
                some("f"),
                None
            ],
            vec![
                some(&file),
                some("3"),
                some("2"),
                some("work_mem"),
                some("16MB"),
                some("t"),
                None
            ],
            vec![
                some(&file),
                some("4"),
                some("3"),
                some("max_connections"),
                some("7"),
                some("f"),
                some("setting could not be applied")
            ],
        ]
    );
    // Nothing was applied.
    assert_eq!(
        s.current_setting("work_mem", false).expect("show"),
        some("4MB")
    );
}

#[test]
fn pg_file_settings_is_for_superusers_and_pg_read_all_settings() {
    let srv = Server::with(|c| c.superuser = false);
    let e = query(&srv, &mut session(), "SELECT * FROM pg_file_settings").unwrap_err();
    assert_eq!(e.sqlstate, "42501");
    assert_eq!(e.message, "permission denied for view pg_file_settings");
    let srv = Server::with(|c| {
        c.superuser = false;
        c.pg_read_all_settings = true;
    });
    let path = conf_file("read-all", "work_mem = 4MB\n");
    let mut settings = Settings::new();
    settings
        .set(
            "config_file",
            &path.display().to_string(),
            Source::CommandLine,
        )
        .expect("config_file");
    let mut s = GucSession::new(settings);
    assert_eq!(
        value(&srv, &mut s, "SELECT count(*) FROM pg_file_settings"),
        some("1")
    );
}

// ---- pg_shmem_allocations -------------------------------------------------------------------

#[test]
fn pg_shmem_allocations_is_the_shmem_index() {
    let srv = Server::new();
    let mut s = session();
    let got = rows(
        &srv,
        &mut s,
        "SELECT name, off, size, allocated_size FROM pg_shmem_allocations",
    );
    let want: Vec<Row> = pgipc_ipci::ShmemDescription::of(&srv.ctx.shmem)
        .expect("describe")
        .allocations
        .into_iter()
        .map(|a| {
            vec![
                a.name,
                a.off.map(|o| o.to_string()),
                Some(a.size.to_string()),
                Some(a.allocated_size.to_string()),
            ]
        })
        .collect();
    assert_eq!(got, want);
    // PostgreSQL's names, the anonymous row without an offset, the free row without a name.
    assert_eq!(
        rows(
            &srv,
            &mut s,
            "SELECT name FROM pg_shmem_allocations WHERE name IN \
             ('ProcArray', 'Proc Array', 'ProcSignal', 'Shared Memory Stats') ORDER BY name"
        ),
        vec![
            vec![some("Proc Array")],
            vec![some("ProcSignal")],
            vec![some("Shared Memory Stats")],
        ]
    );
    assert_eq!(
        value(
            &srv,
            &mut s,
            "SELECT off IS NULL FROM pg_shmem_allocations WHERE name = '<anonymous>'"
        ),
        some("t")
    );
    assert_eq!(
        value(
            &srv,
            &mut s,
            "SELECT count(*) FROM pg_shmem_allocations WHERE name IS NULL AND off > 0"
        ),
        some("1")
    );
    // The allocated sizes and the free space cover the segment.
    assert_eq!(
        value(
            &srv,
            &mut s,
            "SELECT sum(allocated_size) FROM pg_shmem_allocations"
        ),
        Some(srv.ctx.shmem.total_size().to_string())
    );
}

#[test]
fn pg_shmem_allocations_is_for_superusers_and_pg_read_all_stats() {
    let srv = Server::with(|c| c.superuser = false);
    let e = query(&srv, &mut session(), "SELECT * FROM pg_shmem_allocations").unwrap_err();
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        ("42501", "permission denied for view pg_shmem_allocations")
    );
    let srv = Server::with(|c| {
        c.superuser = false;
        c.pg_read_all_stats = true;
    });
    assert!(rows(&srv, &mut session(), "SELECT * FROM pg_shmem_allocations").len() > 5);
}

// ---- statistics -----------------------------------------------------------------------------

#[test]
fn pg_stat_checkpointer_and_bgwriter_read_shared_memory_stats() {
    let srv = Server::new();
    let mut s = session();
    assert_eq!(
        rows(
            &srv,
            &mut s,
            "SELECT num_timed, num_requested, num_done, restartpoints_timed, \
             restartpoints_req, restartpoints_done, write_time, sync_time, buffers_written, \
             slru_written, stats_reset IS NOT NULL FROM pg_stat_checkpointer"
        ),
        vec![["0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "t"]
            .iter()
            .map(|v| some(v))
            .collect::<Row>()]
    );
    let st = srv.stats();
    st.checkpoint_started(true);
    st.checkpoint_done(2, 15);
    st.checkpoint_started(true);
    st.checkpoint_started(false);
    st.checkpoint_done(0, 1);
    st.bgwriter.buffers_alloc.fetch_add(42, Ordering::Relaxed);
    assert_eq!(
        rows(
            &srv,
            &mut s,
            "SELECT num_timed, num_requested, num_done, write_time, sync_time \
             FROM pg_stat_checkpointer"
        ),
        vec![vec![some("2"), some("1"), some("2"), some("2"), some("16")]]
    );
    assert_eq!(
        rows(
            &srv,
            &mut s,
            "SELECT buffers_clean, maxwritten_clean, buffers_alloc FROM pg_stat_bgwriter"
        ),
        vec![vec![some("0"), some("0"), some("42")]]
    );
    // stats_reset is when the region was made: not after now, not before the test began.
    let reset = value(
        &srv,
        &mut s,
        "SELECT stats_reset <= now() AND stats_reset > now() - interval '1 hour' \
         FROM pg_stat_bgwriter",
    );
    assert_eq!(reset, some("t"));
}

#[test]
fn pgipc_stat_aux_lists_every_round_counter() {
    let srv = Server::new();
    let st = srv.stats();
    st.aux.walwriter_rounds.fetch_add(3, Ordering::Relaxed);
    st.aux.io_worker_wakeups.fetch_add(1, Ordering::Relaxed);
    st.checkpoint_started(true);
    let got = rows(
        &srv,
        &mut session(),
        "SELECT name, count FROM pgipc_stat_aux",
    );
    let want: Vec<Row> = [
        ("checkpoints_timed", "1"),
        ("checkpoints_req", "0"),
        ("bgwriter_rounds", "0"),
        ("walwriter_rounds", "3"),
        ("autovacuum_rounds", "0"),
        ("io_worker_wakeups", "1"),
        ("startup_passes", "0"),
    ]
    .iter()
    .map(|(a, b)| vec![some(a), some(b)])
    .collect();
    assert_eq!(got, want);
}

// ---- activity -------------------------------------------------------------------------------

#[test]
fn pg_stat_activity_shows_each_status_entry_with_its_pgprocs_xid_and_wait_event() {
    use pgipc_backend_status::{BackendState, ClientAddr, StartInfo};
    let srv = Server::new();
    let procno = srv.enrol(4001, BackendType::Backend, 10);
    let aux = srv.enrol(4002, BackendType::Checkpointer, 0);
    let slots = IpcConfig::default().num_backend_stat_slots().unwrap() as usize;
    let status = pgipc_backend_status::attach(&srv.ctx.shmem, slots).expect("status array");
    let w = status.writer(procno, true).unwrap();
    w.report_start(
        4001,
        &StartInfo {
            backend_type: BackendType::Backend,
            state: BackendState::Starting,
            database_id: 5,
            datname: "postgres",
            user_id: 10,
            usename: "postgres",
            appname: "psql",
            client: Some(ClientAddr::Unix),
            client_hostname: "",
        },
    );
    w.report_activity(
        BackendState::IdleInTransaction,
        Some("SELECT pg_current_xact_id()"),
    );
    let c = status.writer(aux, true).unwrap();
    c.report_start(
        4002,
        &StartInfo {
            backend_type: BackendType::Checkpointer,
            state: BackendState::Undefined,
            database_id: 0,
            datname: "",
            user_id: 0,
            usename: "",
            appname: "",
            client: None,
            client_hostname: "",
        },
    );
    let pa = srv.ctx.procarray().unwrap();
    pa.procs()
        .proc(procno)
        .unwrap()
        .xid
        .store(795, Ordering::Relaxed);
    pa.procs()
        .wait_slot(procno)
        .unwrap()
        .wait_event_info
        .store(pgipc_wait_event::WAIT_EVENT_CLIENT_READ, Ordering::Relaxed);
    pa.procs().wait_slot(aux).unwrap().wait_event_info.store(
        pgipc_wait_event::WAIT_EVENT_CHECKPOINTER_MAIN,
        Ordering::Relaxed,
    );
    let got = rows(
        &srv,
        &mut session(),
        "SELECT pid, datid, datname, usesysid, usename, application_name, client_addr, client_port, \
         wait_event_type, wait_event, state, backend_xid, backend_xmin, query, backend_type, \
         backend_start IS NOT NULL, query_start IS NOT NULL FROM pg_stat_activity ORDER BY pid",
    );
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        got,
        vec![
            vec![
                s("4001"),
                s("5"),
                s("postgres"),
                s("10"),
                s("postgres"),
                s("psql"),
                None,
                s("-1"),
                s("Client"),
                s("ClientRead"),
                s("idle in transaction"),
                s("795"),
                None,
                s("SELECT pg_current_xact_id()"),
                s("client backend"),
                s("t"),
                s("t"),
            ],
            vec![
                s("4002"),
                None,
                None,
                None,
                None,
                s(""),
                None,
                None,
                s("Activity"),
                s("CheckpointerMain"),
                None,
                None,
                None,
                s(""),
                s("checkpointer"),
                s("t"),
                s("f"),
            ],
        ]
    );
    w.report_end();
    let left = rows(&srv, &mut session(), "SELECT pid FROM pg_stat_activity");
    assert_eq!(left, vec![vec![s("4002")]]);
}

#[test]
fn pg_wait_events_lists_postgresqls_events_with_descriptions() {
    let srv = Server::new();
    let got = rows(
        &srv,
        &mut session(),
        "SELECT type, name, description FROM pg_wait_events \
         WHERE name IN ('PgSleep', 'ClientRead', 'CheckpointerMain', 'MessageQueueSend')",
    );
    let r = |a: &str, b: &str, c: &str| vec![some(a), some(b), some(c)];
    assert_eq!(
        got,
        vec![
            r(
                "Activity",
                "CheckpointerMain",
                "Waiting in main loop of checkpointer process."
            ),
            r(
                "Client",
                "ClientRead",
                "Waiting to read data from the client."
            ),
            r(
                "IPC",
                "MessageQueueSend",
                "Waiting to send bytes to a shared message queue."
            ),
            r(
                "Timeout",
                "PgSleep",
                "Waiting due to a call to pg_sleep or a sibling function."
            ),
        ]
    );
}

// ---- times ----------------------------------------------------------------------------------

#[test]
fn start_and_reload_times_come_from_the_context() {
    // 2026-12-01 23:15:01.213456+00 in PostgreSQL microseconds.
    let start = 849_482_101_213_456;
    let srv = Server::with(|c| c.postmaster_start_time = start);
    let mut s = session();
    s.set_config("TimeZone", "UTC", false).expect("tz");
    assert_eq!(
        value(&srv, &mut s, "SELECT pg_postmaster_start_time()"),
        some("2026-12-01 23:15:01.213456+00")
    );
    srv.ctx.conf_load_time.set(start + 1_000_000);
    assert_eq!(
        value(&srv, &mut s, "SELECT pg_conf_load_time()"),
        some("2026-12-01 23:15:02.213456+00")
    );
    assert_eq!(
        value(
            &srv,
            &mut s,
            "SELECT pg_conf_load_time() - pg_postmaster_start_time()"
        ),
        some("00:00:01")
    );
}

// ---- signals --------------------------------------------------------------------------------

/// A process in a process group of its own (as every pgipc child is after `setsid`), reaped
/// by a thread so that it does not linger as a zombie once it dies.
struct Target {
    pid: i32,
    status: mpsc::Receiver<ExitStatus>,
}

impl Target {
    fn spawn(cmd: &mut Command) -> Target {
        let mut child: Child = cmd.process_group(0).spawn().expect("spawn");
        let pid = child.id() as i32;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(st) = child.wait() {
                let _ = tx.send(st);
            }
        });
        Target { pid, status: rx }
    }

    fn sleeper() -> Target {
        Target::spawn(Command::new("sleep").arg("30"))
    }

    /// How it ended, waiting up to 5 s.
    fn ended(&self) -> Option<ExitStatus> {
        self.status.recv_timeout(Duration::from_secs(5)).ok()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child's process group.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(-self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn warnings(s: &GucSession) -> Vec<String> {
    s.notices
        .iter()
        .map(|(sev, e)| format!("{sev} {} {}", e.sqlstate, e.message))
        .collect()
}

/// A pid that belongs to no process (the highest possible pid is far above what runs).
const NO_SUCH_PID: i32 = 4_194_000;

#[test]
fn a_pid_that_is_no_backend_gives_a_warning_and_false() {
    let srv = Server::new();
    let mut s = session();
    let aux = Target::sleeper();
    srv.enrol(aux.pid, BackendType::Checkpointer, 0);
    for (sql, pid) in [
        (
            format!("SELECT pg_cancel_backend({NO_SUCH_PID})"),
            NO_SUCH_PID,
        ),
        (
            format!("SELECT pg_terminate_backend({NO_SUCH_PID})"),
            NO_SUCH_PID,
        ),
        // An auxiliary process is no backend, as in PostgreSQL.
        (format!("SELECT pg_cancel_backend({})", aux.pid), aux.pid),
        (
            format!("SELECT pg_terminate_backend({}, 100)", aux.pid),
            aux.pid,
        ),
    ] {
        s.notices.clear();
        assert_eq!(value(&srv, &mut s, &sql), some("f"), "{sql}");
        assert_eq!(
            warnings(&s),
            [format!(
                "WARNING 01000 PID {pid} is not a PostgreSQL backend process"
            )],
            "{sql}"
        );
    }
    // The auxiliary process was left alone.
    assert!(aux.status.try_recv().is_err());
    // NULL in, NULL out (strict), no warning.
    s.notices.clear();
    assert_eq!(value(&srv, &mut s, "SELECT pg_cancel_backend(NULL)"), None);
    assert!(s.notices.is_empty());
}

#[test]
fn a_negative_timeout_is_an_error() {
    let srv = Server::new();
    let e = query(&srv, &mut session(), "SELECT pg_terminate_backend(1, -1)").unwrap_err();
    // PostgreSQL 15 and 18: ERROR 22003 "timeout" must not be negative.
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        ("22003", "\"timeout\" must not be negative")
    );
}

#[test]
fn pg_cancel_backend_sends_sigint_to_a_backend() {
    let srv = Server::new();
    let mut s = session();
    let t = Target::sleeper();
    srv.enrol(t.pid, BackendType::Backend, 0);
    assert_eq!(
        value(
            &srv,
            &mut s,
            &format!("SELECT pg_cancel_backend({})", t.pid)
        ),
        some("t")
    );
    let st = t.ended().expect("the backend ended");
    assert_eq!(
        st.signal(),
        Some(libc_sig(nix::sys::signal::Signal::SIGINT))
    );
    assert!(s.notices.is_empty(), "{:?}", warnings(&s));
}

fn libc_sig(s: nix::sys::signal::Signal) -> i32 {
    s as i32
}

#[test]
fn pg_terminate_backend_with_a_timeout_waits_for_the_exit() {
    let srv = Server::new();
    let mut s = session();
    let t = Target::sleeper();
    srv.enrol(t.pid, BackendType::Backend, 0);
    let begun = Instant::now();
    assert_eq!(
        value(
            &srv,
            &mut s,
            &format!("SELECT pg_terminate_backend({}, 5000)", t.pid)
        ),
        some("t")
    );
    assert!(begun.elapsed() < Duration::from_secs(5));
    // It returned only once the process was gone: its status is already there.
    let st = t.status.try_recv().expect("already reaped");
    assert_eq!(
        st.signal(),
        Some(libc_sig(nix::sys::signal::Signal::SIGTERM))
    );
}

#[test]
fn pg_terminate_backend_warns_when_the_backend_outlives_the_timeout() {
    let srv = Server::new();
    let mut s = session();
    // Ignores SIGTERM (and so does its sleep, which inherits the ignored disposition).
    let t = Target::spawn(Command::new("sh").args(["-c", "trap '' TERM; sleep 30"]));
    std::thread::sleep(Duration::from_millis(100));
    srv.enrol(t.pid, BackendType::Backend, 0);
    let begun = Instant::now();
    assert_eq!(
        value(
            &srv,
            &mut s,
            &format!("SELECT pg_terminate_backend({}, 200)", t.pid)
        ),
        some("f")
    );
    assert!(begun.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        warnings(&s),
        [format!(
            "WARNING 01000 backend with PID {} did not terminate within 200 milliseconds",
            t.pid
        )]
    );
    s.notices.clear();
    assert_eq!(
        value(
            &srv,
            &mut s,
            &format!("SELECT pg_terminate_backend({}, 1)", t.pid)
        ),
        some("f")
    );
    assert_eq!(
        warnings(&s),
        [format!(
            "WARNING 01000 backend with PID {} did not terminate within 1 millisecond",
            t.pid
        )]
    );
}

/// A session whose interrupt check fails after `allow` calls (a cancel arriving mid-wait).
struct Interrupted {
    inner: GucSession,
    allow: usize,
}

impl Session for Interrupted {
    fn current_setting(&mut self, name: &str, missing_ok: bool) -> QResult<Option<String>> {
        self.inner.current_setting(name, missing_ok)
    }
    fn set_config(&mut self, name: &str, value: &str, is_local: bool) -> QResult<String> {
        self.inner.set_config(name, value, is_local)
    }
    fn time_zone(&self) -> TimeZone {
        self.inner.time_zone()
    }
    fn transaction_timestamp(&self) -> i64 {
        self.inner.transaction_timestamp()
    }
    fn statement_timestamp(&self) -> i64 {
        self.inner.statement_timestamp()
    }
    fn notice(&mut self, severity: &'static str, notice: QueryError) {
        self.inner.notice(severity, notice)
    }
    fn check_for_interrupts(&mut self) -> QResult<()> {
        if self.allow == 0 {
            return Err(QueryError::new(
                "57014",
                "canceling statement due to user request",
            ));
        }
        self.allow -= 1;
        Ok(())
    }
}

#[test]
fn the_wait_for_termination_answers_interrupts() {
    let srv = Server::new();
    let t = Target::spawn(Command::new("sh").args(["-c", "trap '' TERM; sleep 30"]));
    std::thread::sleep(Duration::from_millis(100));
    srv.enrol(t.pid, BackendType::Backend, 0);
    let mut s = Interrupted {
        inner: session(),
        allow: 3,
    };
    let begun = Instant::now();
    let e = query(
        &srv,
        &mut s,
        &format!("SELECT pg_terminate_backend({}, 60000)", t.pid),
    )
    .unwrap_err();
    assert_eq!(e.sqlstate, "57014");
    assert!(begun.elapsed() < Duration::from_secs(5));
}

#[test]
fn permission_rules_follow_postgresql() {
    const ALICE: u32 = 16384;
    const BOB: u32 = 16385;
    let t = Target::sleeper();
    let not_super = |c: &mut SysContext| {
        c.superuser = false;
        c.role_id = BOB;
        c.role_name = "bob".into();
    };
    // A backend without a role counts as a superuser's.
    let srv = Server::with(not_super);
    srv.enrol(t.pid, BackendType::Backend, 0);
    let e = query(
        &srv,
        &mut session(),
        &format!("SELECT pg_cancel_backend({})", t.pid),
    )
    .unwrap_err();
    assert_eq!(
        (
            e.sqlstate.as_str(),
            e.message.as_str(),
            e.detail.as_deref().unwrap_or("")
        ),
        (
            "42501",
            "permission denied to cancel query",
            "Only roles with the SUPERUSER attribute may cancel queries of roles with the \
             SUPERUSER attribute."
        )
    );
    let e = query(
        &srv,
        &mut session(),
        &format!("SELECT pg_terminate_backend({})", t.pid),
    )
    .unwrap_err();
    assert_eq!(
        (e.message.as_str(), e.detail.as_deref().unwrap_or("")),
        (
            "permission denied to terminate process",
            "Only roles with the SUPERUSER attribute may terminate processes of roles with the \
             SUPERUSER attribute."
        )
    );
    drop(srv);

    // Another role's backend.
    let srv = Server::with(not_super);
    srv.enrol(t.pid, BackendType::Backend, ALICE);
    let e = query(
        &srv,
        &mut session(),
        &format!("SELECT pg_cancel_backend({})", t.pid),
    )
    .unwrap_err();
    assert_eq!(
        e.detail.as_deref(),
        Some(
            "Only roles with privileges of the role whose query is being canceled or with \
             privileges of the \"pg_signal_backend\" role may cancel this query."
        )
    );
    let e = query(
        &srv,
        &mut session(),
        &format!("SELECT pg_terminate_backend({})", t.pid),
    )
    .unwrap_err();
    assert_eq!(
        e.detail.as_deref(),
        Some(
            "Only roles with privileges of the role whose process is being terminated or with \
             privileges of the \"pg_signal_backend\" role may terminate this process."
        )
    );
    drop(srv);

    // An autovacuum worker.
    let srv = Server::with(not_super);
    srv.enrol(t.pid, BackendType::AutovacWorker, 0);
    let e = query(
        &srv,
        &mut session(),
        &format!("SELECT pg_cancel_backend({})", t.pid),
    )
    .unwrap_err();
    assert_eq!(
        e.detail.as_deref(),
        Some(
            "Only roles with privileges of the \"pg_signal_autovacuum_worker\" role may cancel \
             autovacuum workers."
        )
    );
    drop(srv);
    // None of it signalled the process.
    assert!(t.status.try_recv().is_err());

    // Membership in the role, or in pg_signal_backend, allows it.
    let srv = Server::with(|c| {
        not_super(c);
        c.member_of = vec![ALICE];
    });
    srv.enrol(t.pid, BackendType::Backend, ALICE);
    assert_eq!(
        value(
            &srv,
            &mut session(),
            &format!("SELECT pg_cancel_backend({})", t.pid)
        ),
        some("t")
    );
    let st = t.ended().expect("cancelled");
    assert_eq!(
        st.signal(),
        Some(libc_sig(nix::sys::signal::Signal::SIGINT))
    );

    let t = Target::sleeper();
    let srv = Server::with(|c| {
        not_super(c);
        c.pg_signal_backend = true;
    });
    srv.enrol(t.pid, BackendType::Backend, ALICE);
    assert_eq!(
        value(
            &srv,
            &mut session(),
            &format!("SELECT pg_terminate_backend({})", t.pid)
        ),
        some("t")
    );
    assert_eq!(
        t.ended().and_then(|s| s.signal()),
        Some(libc_sig(nix::sys::signal::Signal::SIGTERM))
    );
}

#[test]
fn pg_reload_conf_sends_sighup_to_the_postmaster() {
    let pm = Target::sleeper();
    let srv = Server::with(|c| c.postmaster_pid = pm.pid);
    let mut s = session();
    assert_eq!(value(&srv, &mut s, "SELECT pg_reload_conf()"), some("t"));
    assert_eq!(
        pm.ended().and_then(|s| s.signal()),
        Some(libc_sig(nix::sys::signal::Signal::SIGHUP))
    );
    // No postmaster to signal: a warning and false.
    let srv = Server::with(|c| c.postmaster_pid = NO_SUCH_PID);
    assert_eq!(value(&srv, &mut s, "SELECT pg_reload_conf()"), some("f"));
    assert_eq!(
        warnings(&s),
        ["WARNING 01000 failed to send signal to postmaster: No such process"]
    );
}

#[test]
fn the_functions_have_postgresqls_signatures() {
    let srv = Server::new();
    let mut s = session();
    // Result column names and types as PostgreSQL reports them.
    let (names, _) = query(
        &srv,
        &mut s,
        "SELECT pg_cancel_backend(NULL), pg_postmaster_start_time(), pg_conf_load_time()",
    )
    .expect("query");
    assert_eq!(
        names,
        [
            "pg_cancel_backend",
            "pg_postmaster_start_time",
            "pg_conf_load_time"
        ]
    );
    // An unknown argument type is refused as PostgreSQL does.
    let e = query(&srv, &mut s, "SELECT pg_cancel_backend('abc')").unwrap_err();
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        ("22P02", "invalid input syntax for type integer: \"abc\"")
    );
    let e = query(&srv, &mut s, "SELECT pg_cancel_backend(1, 2)").unwrap_err();
    assert_eq!(e.sqlstate, "42883");
    // Without a postmaster pid, pg_reload_conf signals nobody.
    s.notices.clear();
    assert_eq!(value(&srv, &mut s, "SELECT pg_reload_conf()"), some("f"));
    assert_eq!(
        warnings(&s),
        ["WARNING 01000 failed to send signal to postmaster: No such process"]
    );
}
