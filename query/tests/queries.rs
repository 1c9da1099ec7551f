//! Behaviour the differential corpus cannot show: refused constructs, the extension points
//! (server functions, views, the session), parameters, streaming, limits, statements.

use std::cell::Cell;
use std::rc::Rc;

use pgipc_query::{
    parse, prepare, query_text, Catalog, Column, Datum, GucSession, Prepared, QueryError, RowIter,
    ServerFunction, Session, Statement, StatementCache, Type, View, Volatility,
};

fn session() -> GucSession {
    let mut s = pgipc_guc::Settings::new();
    let _ = s.set("TimeZone", "UTC", pgipc_guc::Source::Client);
    let mut g = GucSession::new(s);
    g.fixed_clock = Some(849_482_101_213_456); // 2026-12-01 23:15:01.213456+00
    g
}

/// Runs `sql` and compares its rows (text, `NULL` for NULL, `|` between columns).
fn check(catalog: &Catalog, sql: &str, expected: &[&str]) {
    let mut s = session();
    let (_, rows) = query_text(sql, catalog, &mut s).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    assert_eq!(got, expected, "{sql}");
}

fn check_err(catalog: &Catalog, sql: &str, sqlstate: &str, message: &str) -> QueryError {
    let mut s = session();
    let e = query_text(sql, catalog, &mut s).expect_err(sql);
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        (sqlstate, message),
        "{sql}"
    );
    e
}

#[test]
fn joins_subqueries_and_ctes_are_refused_with_0a000() {
    let c = Catalog::new();
    for (sql, msg) in [
        (
            "SELECT * FROM generate_series(1,2) a JOIN generate_series(1,2) b ON true",
            "JOIN is not supported",
        ),
        (
            "SELECT * FROM generate_series(1,2) a, generate_series(1,2) b",
            "FROM with more than one item (an implicit join) is not supported",
        ),
        ("SELECT (SELECT 1)", "subqueries are not supported"),
        (
            "SELECT * FROM (SELECT 1) s",
            "subqueries in FROM are not supported",
        ),
        (
            "WITH t AS (SELECT 1) SELECT * FROM t",
            "WITH queries (CTEs) are not supported",
        ),
        ("SELECT 1 UNION SELECT 2", "UNION is not supported"),
        ("SELECT EXISTS (SELECT 1)", "subqueries are not supported"),
        ("SELECT 1 IN (SELECT 1)", "IN (subquery) is not supported"),
        (
            "SELECT count(*) OVER () FROM generate_series(1,2)",
            "window functions are not supported",
        ),
        (
            "SELECT DISTINCT ON (1) 1",
            "SELECT DISTINCT ON is not supported",
        ),
        ("SELECT 'x'::varchar", "type varchar is not supported"),
        ("SELECT now()::date", "type date is not supported"),
    ] {
        check_err(&c, sql, "0A000", msg);
    }
    let e = parse("CREATE TABLE t (a int)", &[], &c).expect_err("create");
    assert_eq!(e.sqlstate, "0A000");
    assert_eq!(
        e.message,
        "CREATE is not supported by pgipc: it has no tables"
    );
}

#[test]
fn errors_carry_hint_and_position() {
    let c = Catalog::new();
    let e = check_err(
        &c,
        "SELECT nosuch(1)",
        "42883",
        "function nosuch(integer) does not exist",
    );
    assert_eq!(e.hint.as_deref(), Some("No function matches the given name and argument types. You might need to add explicit type casts."));
    assert_eq!(e.position, Some(8));
    let e = check_err(&c, "SELECT 1 +", "42601", "syntax error at end of input");
    assert_eq!(e.position, Some(11));
    let e = check_err(
        &c,
        "SELECT\n  1 FORM x",
        "42601",
        "syntax error at or near \"x\"",
    );
    assert_eq!(e.position, Some(17));
    let e = check_err(
        &c,
        "SELECT 'abc'::int",
        "22P02",
        "invalid input syntax for type integer: \"abc\"",
    );
    assert_eq!(e.position, Some(8));
    check_err(
        &c,
        "SELECT x FROM generate_series(1,2)",
        "42703",
        "column \"x\" does not exist",
    );
    check_err(&c, "SELECT 2147483647 + 1", "22003", "integer out of range");
    check_err(&c, "SELECT 1/0", "22012", "division by zero");
}

#[test]
fn deep_nesting_is_a_clean_54001() {
    let c = Catalog::new();
    for sql in [
        format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)),
        format!("SELECT {}1", "- ".repeat(5000)),
        format!("SELECT {}true", "NOT ".repeat(5000)),
        format!("SELECT 1{}", " + 1".repeat(100_000)),
        format!("SELECT {}1{}", "abs(".repeat(3000), ")".repeat(3000)),
    ] {
        let e = parse(&sql, &[], &c).expect_err("too deep");
        assert_eq!(e.sqlstate, "54001", "{}", &sql[..40]);
        assert_eq!(e.message, "stack depth limit exceeded");
    }
    // Within the limits, nesting works.
    check(
        &c,
        &format!("SELECT {}1{}", "(".repeat(40), ")".repeat(40)),
        &["1"],
    );
    check(&c, &format!("SELECT 0{}", " + 1".repeat(2900)), &["2900"]);
    check(&c, &format!("SELECT {}true", "NOT ".repeat(400)), &["t"]);
    check(
        &c,
        &format!("SELECT {}1{}", "abs(".repeat(300), ")".repeat(300)),
        &["1"],
    );
    check(
        &c,
        &format!("SELECT true{}", " AND true".repeat(2000)),
        &["t"],
    );
}

#[test]
fn generate_series_streams() {
    // A trillion rows: only a pull pipeline can return the first ones.
    let c = Catalog::new();
    let p = prepare(
        "SELECT n FROM generate_series(1, 1000000000000) n WHERE n % 2 = 0",
        &[],
        &c,
    )
    .unwrap();
    let mut s = session();
    let mut rows = p.execute(Vec::new(), &s);
    let first: Vec<Datum> = (0..3)
        .map(|_| rows.next_row(&mut s).unwrap().unwrap()[0].clone())
        .collect();
    assert_eq!(first, vec![Datum::Int8(2), Datum::Int8(4), Datum::Int8(6)]);
    check(
        &c,
        "SELECT n FROM generate_series(1, 1000000000000) n LIMIT 2 OFFSET 5",
        &["6", "7"],
    );
    // A million rows counted without holding them.
    check(
        &c,
        "SELECT count(*), sum(n) FROM generate_series(1, 1000000) n",
        &["1000000|500000500000"],
    );
}

#[test]
fn parameters_are_typed_and_inferred() {
    let c = Catalog::new();
    let p = prepare(
        "SELECT $1 + 1, $2 || 'x', $3::int8",
        &[None, None, None],
        &c,
    )
    .unwrap();
    assert_eq!(p.param_types(), &[Type::Int4, Type::Text, Type::Int8]);
    let p2 = prepare("SELECT $1 + 1", &[Some(Type::Numeric)], &c).unwrap();
    assert_eq!(p2.param_types(), &[Type::Numeric]);
    assert_eq!(p2.columns()[0].ty, Type::Numeric);
    let mut s = session();
    let params = p
        .params_from_text(&[Some("41"), None, Some("7")], &s)
        .unwrap();
    let mut rows = p.execute(params, &s);
    let r = rows.next_row(&mut s).unwrap().unwrap();
    assert_eq!(r, vec![Datum::Int4(42), Datum::Null, Datum::Int8(7)]);
    assert!(rows.next_row(&mut s).unwrap().is_none());
    let e = p
        .params_from_text(&[Some("x"), None, None], &s)
        .unwrap_err();
    assert_eq!(e.message, "invalid input syntax for type integer: \"x\"");
    // An unknown parameter in the target list is text, as in PostgreSQL 10+ ...
    assert_eq!(
        prepare("SELECT $1", &[], &c).unwrap().param_types(),
        &[Type::Text]
    );
    // ... but one nothing constrains is an error.
    let e = prepare("SELECT $1 IS NULL", &[], &c).unwrap_err();
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        ("42P18", "could not determine data type of parameter $1")
    );
    // LIMIT from a parameter.
    let p = prepare("SELECT n FROM generate_series(1, 10) n LIMIT $1", &[], &c).unwrap();
    assert_eq!(p.param_types(), &[Type::Int8]);
    let mut rows = p.execute(vec![Datum::Int8(2)], &s);
    let mut n = 0;
    while rows.next_row(&mut s).unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
}

struct Backends;

impl View for Backends {
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("pid", Type::Int4),
            Column::new("state", Type::Text),
            Column::new("backend_start", Type::Timestamptz),
        ]
    }
    fn scan(&self, _: &mut dyn Session) -> pgipc_query::Result<RowIter> {
        let rows = vec![
            Ok(vec![
                Datum::Int4(101),
                Datum::Text("active".into()),
                Datum::Timestamptz(0),
            ]),
            Ok(vec![
                Datum::Int4(102),
                Datum::Text("idle".into()),
                Datum::Null,
            ]),
            Ok(vec![
                Datum::Int4(103),
                Datum::Text("idle".into()),
                Datum::Timestamptz(86_400_000_000),
            ]),
        ];
        Ok(Box::new(rows.into_iter()))
    }
}

fn catalog() -> (Catalog, Rc<Cell<i32>>) {
    let mut c = Catalog::new();
    c.add_view("pg_stat_activity", Rc::new(Backends));
    c.add_function(ServerFunction {
        name: "pg_backend_pid".into(),
        args: vec![],
        result: Type::Int4,
        volatility: Volatility::Stable,
        strict: true,
        call: Rc::new(|_, _| Ok(Datum::Int4(4242))),
    });
    let cancelled = Rc::new(Cell::new(0));
    let seen = cancelled.clone();
    c.add_function(ServerFunction {
        name: "pg_cancel_backend".into(),
        args: vec![Type::Int4],
        result: Type::Bool,
        volatility: Volatility::Volatile,
        strict: true,
        call: Rc::new(move |s, a| {
            let pid = match a[0] {
                Datum::Int4(p) => p,
                _ => 0,
            };
            if pid == 102 {
                seen.set(pid);
                return Ok(Datum::Bool(true));
            }
            s.notice(
                "WARNING",
                QueryError::new(
                    "01000",
                    format!("PID {pid} is not a PostgreSQL backend process"),
                ),
            );
            Ok(Datum::Bool(false))
        }),
    });
    c.add_function(ServerFunction {
        name: "current_user".into(),
        args: vec![],
        result: Type::Name,
        volatility: Volatility::Stable,
        strict: true,
        call: Rc::new(|_, _| Ok(Datum::Text("postgres".into()))),
    });
    (c, cancelled)
}

#[test]
fn views_and_server_functions_come_from_the_catalog() {
    let (c, cancelled) = catalog();
    check(&c, "SELECT pg_backend_pid()", &["4242"]);
    check(&c, "SELECT current_user, user", &["postgres|postgres"]);
    check_err(
        &c,
        "SELECT session_user",
        "42883",
        "function session_user() does not exist",
    );
    check(
        &c,
        "SELECT * FROM pg_stat_activity ORDER BY pid DESC LIMIT 1",
        &["103|idle|2000-01-02 00:00:00+00"],
    );
    check(
        &c,
        "SELECT state, count(*) FROM pg_stat_activity GROUP BY state ORDER BY 2 DESC",
        &["idle|2", "active|1"],
    );
    check(
        &c,
        "SELECT a.pid FROM pg_catalog.pg_stat_activity a WHERE a.backend_start IS NULL",
        &["102"],
    );
    check(
        &c,
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE state = 'idle' AND pid < 103",
        &["t"],
    );
    assert_eq!(cancelled.get(), 102);
    let mut s = session();
    let (_, rows) = query_text("SELECT pg_cancel_backend(7)", &c, &mut s).unwrap();
    assert_eq!(rows, vec![vec![Some("f".to_owned())]]);
    assert_eq!(s.notices.len(), 1);
    assert_eq!(
        s.notices[0].1.message,
        "PID 7 is not a PostgreSQL backend process"
    );
    let p = prepare("SELECT * FROM pg_stat_activity", &[], &c).unwrap();
    let cols: Vec<(String, u32)> = p
        .columns()
        .iter()
        .map(|c| (c.name.clone(), c.ty.oid()))
        .collect();
    assert_eq!(
        cols,
        vec![
            ("pid".into(), 23),
            ("state".into(), 25),
            ("backend_start".into(), 1184)
        ]
    );
    check_err(
        &c,
        "SELECT * FROM pg_nosuch",
        "42P01",
        "relation \"pg_nosuch\" does not exist",
    );
    check_err(
        &c,
        "SELECT pg_cancel_backend('x')",
        "22P02",
        "invalid input syntax for type integer: \"x\"",
    );
    check_err(&c, "SELECT state FROM pg_stat_activity GROUP BY pid", "42803",
        "column \"pg_stat_activity.state\" must appear in the GROUP BY clause or be used in an aggregate function");
}

#[test]
fn session_settings_and_clock() {
    let c = Catalog::new();
    check(
        &c,
        "SELECT now(), current_timestamp = statement_timestamp()",
        &["2026-12-01 23:15:01.213456+00|t"],
    );
    check(
        &c,
        "SELECT current_setting('TimeZone'), set_config('TimeZone', 'Asia/Tokyo', false), now()",
        &["UTC|Asia/Tokyo|2026-12-02 08:15:01.213456+09"],
    );
    check(
        &c,
        "SELECT set_config('TimeZone', '+02', false), '2026-12-01 12:00+00'::timestamptz",
        &["+02|2026-12-01 14:00:00+02"],
    );
    let mut s = session();
    query_text("SELECT set_config('work_mem', '64MB', false)", &c, &mut s).unwrap();
    assert_eq!(
        s.current_setting("work_mem", false).unwrap().as_deref(),
        Some("64MB")
    );
    check_err(
        &c,
        "SELECT set_config('port', '1', false)",
        "55P02",
        "parameter \"port\" cannot be changed without restarting the server",
    );
}

#[test]
fn statements_other_than_select() {
    let c = Catalog::new();
    let names = |sql: &str| -> Vec<String> {
        parse(sql, &[], &c)
            .unwrap()
            .into_iter()
            .map(|s| match s {
                Statement::Query(p) => format!("query {}", p.columns()[0].name),
                Statement::Set { name, value, local } => {
                    format!("set {name}={value:?} local={local}")
                }
                Statement::Reset(n) => format!("reset {n:?}"),
                Statement::ShowAll => "show all".into(),
                Statement::Transaction(t) => t.into(),
                Statement::Begin { start, modes } => format!("begin start={start} {modes:?}"),
                Statement::SetTransaction { session, modes } => {
                    format!("set transaction session={session} {modes:?}")
                }
                Statement::Savepoint(n) => format!("savepoint {n}"),
                Statement::Release(n) => format!("release {n}"),
                Statement::RollbackTo(n) => format!("rollback to {n}"),
                Statement::Empty => "empty".into(),
            })
            .collect()
    };
    assert_eq!(names("SHOW work_mem"), ["query work_mem"]);
    assert_eq!(names("SHOW ALL"), ["show all"]);
    assert_eq!(
        names("SET work_mem = '8MB'; SET LOCAL search_path TO a, b"),
        [
            "set work_mem=Some(\"8MB\") local=false",
            "set search_path=Some(\"a, b\") local=true"
        ]
    );
    assert_eq!(
        names("SET work_mem TO DEFAULT"),
        ["set work_mem=None local=false"]
    );
    assert_eq!(
        names("BEGIN; COMMIT; ROLLBACK"),
        ["begin start=false []", "COMMIT", "ROLLBACK"]
    );
    assert_eq!(
        names(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             START TRANSACTION READ WRITE; \
             SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; \
             SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
        ),
        [
            "begin start=false [(\"transaction_isolation\", \"repeatable read\"), \
             (\"transaction_read_only\", \"on\")]",
            "begin start=true [(\"transaction_read_only\", \"off\")]",
            "set transaction session=false \
             [(\"transaction_isolation\", \"serializable\")]",
            "set transaction session=true \
             [(\"default_transaction_read_only\", \"on\")]",
        ]
    );
    assert_eq!(
        names("SAVEPOINT a; RELEASE SAVEPOINT \"B\"; RELEASE c; ROLLBACK TO SAVEPOINT D"),
        ["savepoint a", "release B", "release c", "rollback to d"]
    );
    assert_eq!(
        names("RESET work_mem; RESET ALL"),
        ["reset Some(\"work_mem\")", "reset None"]
    );
    assert_eq!(names("  -- nothing\n"), ["empty"]);
    // List settings quote identifiers as PostgreSQL's flatten_set_variable_args does; a
    // dotted name stays dotted; SHOW names its column as the setting is spelled.
    assert_eq!(
        names("SET search_path = a, \"B c\"; SET TIME ZONE LOCAL"),
        [
            "set search_path=Some(\"a, \\\"B c\\\"\") local=false",
            "set timezone=None local=false"
        ]
    );
    assert_eq!(names("SHOW timezone"), ["query TimeZone"]);
    assert_eq!(names("SHOW myext.some_thing"), ["query myext.some_thing"]);
    match parse("SHOW work_mem; SELECT 1", &[], &c)
        .unwrap()
        .as_slice()
    {
        [Statement::Query(show), Statement::Query(select)] => {
            assert!(show.is_show() && !select.is_show());
        }
        other => panic!("{other:?}"),
    }
    check(&c, "SHOW work_mem", &["4MB"]);
    check_err(
        &c,
        "SHOW nosuch",
        "42704",
        "unrecognized configuration parameter \"nosuch\"",
    );
}

#[test]
fn parse_each_plans_statements_apart() {
    let c = Catalog::new();
    // A statement that does not plan is its own error; the others are planned.
    let v = pgipc_query::parse_each(
        "SELECT 1; SELECT nocol; SET work_mem TO 1, 2; SHOW ALL",
        &[],
        &c,
    )
    .unwrap();
    assert_eq!(v.len(), 4);
    assert!(matches!(v[0], Ok(Statement::Query(_))));
    assert_eq!(v[1].as_ref().unwrap_err().sqlstate, "42703");
    assert_eq!(v[2].as_ref().unwrap_err().sqlstate, "22023");
    assert!(matches!(v[3], Ok(Statement::ShowAll)));
    // A syntax error anywhere: nothing is planned.
    let e = pgipc_query::parse_each("SELECT 1; SELEC 2", &[], &c).unwrap_err();
    assert_eq!((e.sqlstate.as_str(), e.position), ("42601", Some(11)));
    // Through the cache: one SELECT is planned once.
    let mut cache = StatementCache::new();
    for _ in 0..2 {
        let v = cache.parse_each("SELECT 2", &[], &c).unwrap();
        assert!(matches!(v.as_slice(), [Ok(Statement::Query(_))]));
    }
}

#[test]
fn statement_cache_reuses_plans() {
    let c = Catalog::new();
    let mut cache = StatementCache::new();
    let a = cache.parse("SELECT 1", &[], &c).unwrap();
    let b = cache.parse("SELECT 1", &[], &c).unwrap();
    let plan = |v: &[Statement]| match &v[0] {
        Statement::Query(p) => p.clone(),
        _ => panic!("not a query"),
    };
    let (pa, pb): (Prepared, Prepared) = (plan(&a), plan(&b));
    assert_eq!(pa.columns(), pb.columns());
    let mut s = session();
    let mut rows = pb.execute(Vec::new(), &s);
    assert_eq!(rows.next_row(&mut s).unwrap(), Some(vec![Datum::Int4(1)]));
    assert!(cache.parse("SELEC 1", &[], &c).is_err());
}

#[test]
fn result_columns_carry_oids_and_lengths() {
    let c = Catalog::new();
    let p = prepare(
        "SELECT 1::int2, 1, 1::int8, 1.5, 1.5::float8, 'a'::text, true, now(), interval '1 day', 'a', NULL, current_setting('port')::name",
        &[],
        &c,
    )
    .unwrap();
    let got: Vec<(u32, i16)> = p
        .columns()
        .iter()
        .map(|c| (c.ty.oid(), c.ty.typlen()))
        .collect();
    assert_eq!(
        got,
        vec![
            (21, 2),
            (23, 4),
            (20, 8),
            (1700, -1),
            (701, 8),
            (25, -1),
            (16, 1),
            (1184, 8),
            (1186, 16),
            (25, -1),
            (25, -1),
            (19, 64)
        ]
    );
}

#[test]
fn pathological_values_end_quickly_with_an_answer_or_an_error() {
    let c = Catalog::new();
    for sql in [
        "SELECT 1.0000001 ^ 2000000000",
        "SELECT (-1.0000001) ^ 2000000001",
        "SELECT 0.000000000000000000000000000000000000000000000001 ^ 0.5",
        "SELECT 1e-300::numeric ^ 0.5",
        "SELECT 9e300::numeric ^ 0.5",
        "SELECT 2::numeric ^ 1000000",
        "SELECT 0.5 ^ 100000",
        "SELECT 1e-400 ^ 3, 1e-400 ^ 0, 1e-400 ^ 0.5, 1e-400 ^ -2, 1e400 ^ 2, 1e400 ^ -2",
        "SELECT 12000000000000 ^ 0 ^ 0 = .000080000000100000000000000 ^ 0401000000000 ^ 0 ^ 040 ^ 21",
        "SELECT now() + interval '2000000000 days'",
        "SELECT '294276-12-31 23:59:59+00'::timestamptz + interval '1 day'",
        "SELECT '2000-01-01 00:00+15:59'::timestamptz - '294276-01-01+00'::timestamptz",
        "SELECT round(1.5, 2147483647), round(1.5, -2147483648)",
        "SELECT repeat('x', 2147483647)",
        "SELECT lpad('x', 100000) IS NOT NULL",
        "SELECT sqrt(1e131071::numeric) > 0",
        "SELECT 1e131071::numeric * 1e131071::numeric",
        "SELECT interval '178000000 years' * 100",
        "SELECT make_interval(years => 2147483647)",
        "SELECT -9223372036854775808::int8 / -1",
    ] {
        let t = std::time::Instant::now();
        let mut s = session();
        match query_text(sql, &c, &mut s) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.sqlstate.len(), 5, "{sql}: {e:?}"),
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{sql} took {:?}",
            t.elapsed()
        );
    }
    check(&c, "SELECT 1.5 ^ 2", &["2.2500000000000000"]);
    check(&c, "SELECT (-2.0) ^ 3", &["-8.0000000000000000"]);
}

#[test]
fn a_deferred_catalog_is_built_by_the_first_look_up_and_not_before() {
    let built = Rc::new(Cell::new(0));
    let count = built.clone();
    let mut c = Catalog::deferred(move |c| {
        count.set(count.get() + 1);
        c.add_view("pg_stat_activity", Rc::new(Backends));
        c.add_function(ServerFunction {
            name: "answer".into(),
            args: vec![],
            result: Type::Int4,
            volatility: Volatility::Stable,
            strict: true,
            call: Rc::new(|_, _| Ok(Datum::Int4(42))),
        });
    });
    // Added directly: counts as registered after the deferred entries.
    c.add_function(ServerFunction {
        name: "answer".into(),
        args: vec![Type::Int4],
        result: Type::Int4,
        volatility: Volatility::Stable,
        strict: true,
        call: Rc::new(|_, a| Ok(a[0].clone())),
    });
    check(&c, "SELECT 1, 'a' || 'b', 2 + 3", &["1|ab|5"]);
    assert_eq!(built.get(), 0, "no function or view was looked up");
    assert!(!c.is_built());
    check(&c, "SELECT answer(), answer(7)", &["42|7"]);
    assert_eq!(built.get(), 1);
    check(&c, "SELECT count(*) > 0 FROM pg_stat_activity", &["t"]);
    let clone = c.clone();
    check(&clone, "SELECT answer()", &["42"]);
    assert_eq!(built.get(), 1, "built once, shared by clones");
    assert!(clone.is_built());
}

#[test]
fn a_deferred_catalog_builds_for_its_set_returning_functions() {
    use pgipc_query::SetFunction;
    let c = Catalog::deferred(|c| {
        c.add_set_function(SetFunction {
            name: "three".into(),
            args: vec![],
            columns: vec![Column::new("n", Type::Int4)],
            strict: true,
            call: Rc::new(
                |_, _| Ok(Box::new((1..=3).map(|n| Ok(vec![Datum::Int4(n)]))) as RowIter),
            ),
        });
    });
    assert!(!c.is_built());
    check(&c, "SELECT * FROM three()", &["1", "2", "3"]);
    check(&c, "SELECT three()", &["1", "2", "3"]);
    assert!(c.is_built());
}

#[test]
fn catalog_set_functions_are_row_sources_in_from_and_as_a_lone_target() {
    use pgipc_query::SetFunction;
    let mut c = Catalog::new();
    // A two-column, non-strict function: NULL means "all", as pg_stat_get_activity's pid.
    c.add_set_function(SetFunction {
        name: "pairs".into(),
        args: vec![Type::Int4],
        columns: vec![Column::new("n", Type::Int4), Column::new("sq", Type::Int8)],
        strict: false,
        call: Rc::new(|_, a| {
            let only = match a[0] {
                Datum::Int4(v) => Some(v),
                _ => None,
            };
            let rows: Vec<_> = (1..=3)
                .filter(move |n| only.is_none_or(|o| o == *n))
                .map(|n| Ok(vec![Datum::Int4(n), Datum::Int8(i64::from(n * n))]))
                .collect();
            Ok(Box::new(rows.into_iter()) as RowIter)
        }),
    });
    c.add_set_function(SetFunction {
        name: "ones".into(),
        args: vec![Type::Int4],
        columns: vec![Column::new("ignored", Type::Int4)],
        strict: true,
        call: Rc::new(|_, a| {
            let n = match a[0] {
                Datum::Int4(v) => v,
                _ => 0,
            };
            Ok(Box::new((0..n).map(|_| Ok(vec![Datum::Int4(1)]))) as RowIter)
        }),
    });
    check(&c, "SELECT * FROM pairs(NULL)", &["1|1", "2|4", "3|9"]);
    check(&c, "SELECT sq FROM pairs(2)", &["4"]);
    check(
        &c,
        "SELECT p.x, y FROM pairs(NULL) AS p(x, y) WHERE y > 1",
        &["2|4", "3|9"],
    );
    check(&c, "SELECT ones(2)", &["1", "1"]);
    check(&c, "SELECT ones FROM ones(1)", &["1"]);
    check(&c, "SELECT count(*) FROM ones(NULL)", &["0"]);
    let mut s = session();
    let (cols, _) = query_text("SELECT * FROM ones(1) o", &c, &mut s).unwrap();
    assert_eq!(cols, vec![Column::new("o", Type::Int4)]);
    check_err(
        &c,
        "SELECT pairs(1)",
        "0A000",
        "pairs returns a record: it is only supported in FROM",
    );
    check_err(
        &c,
        "SELECT 1 + ones(1)",
        "0A000",
        "ones is only supported in FROM or as a whole target of a FROM-less SELECT",
    );
    check_err(
        &c,
        "SELECT * FROM pairs('x')",
        "22P02",
        "invalid input syntax for type integer: \"x\"",
    );
    check_err(
        &c,
        "SELECT * FROM pairs(1) AS p(a, b, c)",
        "42601",
        "too many column aliases specified for function pairs",
    );
}
