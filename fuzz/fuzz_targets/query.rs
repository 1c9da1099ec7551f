//! SQL text through the query layer (`pgipc_query::parse`, then up to 64 rows of each
//! SELECT with NULL parameters, each value printed).
//!
//! Beyond "no panic, no stack overflow" it checks that every error has a five-character
//! SQLSTATE and, when it has a position, one inside the text (1-based, at most one past the
//! end, as PostgreSQL's `P` field); that every row has one value per result column; and that
//! each printed value of a type with an input function reads back (through `::type`) as the
//! same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgipc_query::{parse, query_text, Catalog, Datum, GucSession, Statement, Type};
use std::cell::RefCell;

thread_local! {
    static SESSION: RefCell<GucSession> = RefCell::new({
        let mut s = GucSession::new(pgipc_guc::Settings::new());
        s.fixed_clock = Some(0);
        s
    });
}

fn check_error(sql: &str, e: &pgipc_query::QueryError) {
    assert_eq!(e.sqlstate.len(), 5, "{sql:?}: {e:?}");
    if let Some(p) = e.position {
        assert!(
            p >= 1 && p as usize <= sql.chars().count() + 1,
            "{sql:?}: position {p}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let catalog = Catalog::new();
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        let stmts = match parse(sql, &[], &catalog) {
            Ok(v) => v,
            Err(e) => return check_error(sql, &e),
        };
        for st in stmts {
            let Statement::Query(p) = st else { continue };
            let params = vec![Datum::Null; p.param_types().len()];
            let mut rows = p.execute(params, &*s);
            for _ in 0..64 {
                match rows.next_row(&mut *s) {
                    Ok(Some(r)) => {
                        assert_eq!(r.len(), p.columns().len());
                        let tz = rows.time_zone().clone();
                        for (d, c) in r.iter().zip(p.columns()) {
                            let Some(text) = d.to_text(&tz) else { continue };
                            if matches!(c.ty, Type::TextArray | Type::Void | Type::Unknown)
                                || text.len() > 200
                            {
                                continue;
                            }
                            let lit = format!(
                                "SELECT '{}'::{}",
                                text.replace('\'', "''"),
                                c.ty.typname()
                            );
                            match query_text(&lit, &catalog, &mut *s) {
                                Ok((_, back)) => {
                                    assert_eq!(back[0][0].as_deref(), Some(text.as_str()), "{lit}")
                                }
                                Err(e) => panic!("{lit}: {e:?}"),
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        check_error(sql, &e);
                        break;
                    }
                }
            }
        }
    });
});
