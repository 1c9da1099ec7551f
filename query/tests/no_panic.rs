//! No input panics the query layer: random SQL-ish text, random token soup, and random
//! expressions over the supported grammar are parsed, planned and run; each ends in rows or
//! in an error with a five-character SQLSTATE.

use pgipc_query::{parse, Catalog, GucSession, Statement};
use proptest::prelude::*;

fn run(sql: &str) {
    let c = Catalog::new();
    let mut s = GucSession::new(pgipc_guc::Settings::new());
    s.fixed_clock = Some(0);
    match parse(sql, &[], &c) {
        Err(e) => assert_eq!(e.sqlstate.len(), 5, "{sql}: {e:?}"),
        Ok(stmts) => {
            for st in stmts {
                if let Statement::Query(p) = st {
                    let params = vec![pgipc_query::Datum::Null; p.param_types().len()];
                    let mut rows = p.execute(params, &s);
                    // At most a few rows: a random generate_series may be long.
                    for _ in 0..50 {
                        match rows.next_row(&mut s) {
                            Ok(Some(r)) => {
                                let tz = rows.time_zone().clone();
                                for d in r {
                                    let _ = d.to_text(&tz);
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                assert_eq!(e.sqlstate.len(), 5, "{sql}: {e:?}");
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
}

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "DISTINCT",
    "AS",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
    "ILIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "::",
    "int",
    "int2",
    "int8",
    "numeric",
    "float8",
    "text",
    "bool",
    "timestamptz",
    "interval",
    "(",
    ")",
    ",",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "||",
    "=",
    "<",
    ">",
    "<=",
    ">=",
    "<>",
    "1",
    "0",
    "-1",
    "2147483647",
    "9223372036854775807",
    "1.5",
    "1e308",
    "'x'",
    "'1'",
    "'2026-12-01'",
    "'1 day'",
    "''",
    "'NaN'",
    "'Infinity'",
    "$1",
    "generate_series(1,3)",
    "count(*)",
    "sum",
    "avg",
    "min",
    "max",
    "string_agg",
    "coalesce",
    "nullif",
    "greatest",
    "substr",
    "repeat",
    "lpad",
    "date_trunc",
    "extract",
    "pg_size_pretty",
    "now()",
    "n",
    "g",
    "true",
    "false",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    ";",
];

const EXPRS: &[&str] = &[
    "1",
    "-2147483648",
    "9223372036854775807",
    "0",
    "1.5",
    "'3'",
    "NULL",
    "true",
    "0.0001",
    "'x'",
    "1e300::float8",
    "'2026-12-01 10:00+00'::timestamptz",
    "interval '1 mon 2 days'",
    "$1",
];

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(EXPRS).prop_map(str::to_owned);
    leaf.prop_recursive(6, 64, 4, |inner| {
        let bin =
            prop::sample::select(&["+", "-", "*", "/", "%", "^", "||", "=", "<", "AND", "OR"][..]);
        let func = prop::sample::select(
            &[
                "abs",
                "round",
                "length",
                "upper",
                "sqrt",
                "pg_size_pretty",
                "coalesce",
                "greatest",
                "mod",
                "power",
                "repeat",
                "lpad",
            ][..],
        );
        let ty = prop::sample::select(
            &[
                "int2",
                "int4",
                "int8",
                "numeric",
                "float8",
                "text",
                "bool",
                "interval",
                "timestamptz",
            ][..],
        );
        prop_oneof![
            (inner.clone(), bin, inner.clone()).prop_map(|(a, o, b)| format!("({a} {o} {b})")),
            (func, prop::collection::vec(inner.clone(), 1..3))
                .prop_map(|(f, a)| format!("{f}({})", a.join(", "))),
            (inner.clone(), ty).prop_map(|(a, t)| format!("({a})::{t}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("CASE WHEN {a} IS NULL THEN {b} ELSE {a} END")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,80}") {
        run(&s);
        run(&format!("SELECT {s}"));
    }

    #[test]
    fn random_tokens_never_panic(t in prop::collection::vec(prop::sample::select(TOKENS), 0..30)) {
        run(&t.join(" "));
        run(&format!("SELECT {}", t.join(" ")));
    }

    #[test]
    fn random_expressions_never_panic(e in expr(), f in expr()) {
        run(&format!("SELECT {e}, {f}"));
        run(&format!("SELECT {e} FROM generate_series(1, 3) n WHERE {f} IS NOT NULL ORDER BY 1"));
        run(&format!("SELECT count(*), min({e}) FROM generate_series(1, 3) n GROUP BY {f}"));
    }
}
