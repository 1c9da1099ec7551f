//! SQL text through the query layer (`pgipc_query::parse`, then up to 64 rows of each
//! SELECT with NULL parameters, each value printed).
//!
//! Beyond "no panic, no stack overflow" it checks that every error has a five-character
//! SQLSTATE and, when it has a position, one inside the text (1-based, at most one past the
//! end, as PostgreSQL's `P` field); that every row has one value per result column; and that
//! each printed value of a type with an input function reads back (through `::type`) as the
//! same text. A statement gets a budget of pulled rows (its `check_for_interrupts` cancels
//! it after about 200 000, as a statement_timeout would), since `ORDER BY` over a huge
//! generate_series is legitimately endless work.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgipc_query::{
    parse, query_text, Catalog, Datum, GucSession, QueryError, Session, Statement, TimeZone, Type,
};
use std::cell::RefCell;

/// A session whose statements are cancelled after a budget of interrupt checks.
struct Budgeted {
    inner: GucSession,
    checks_left: u32,
}

impl Session for Budgeted {
    fn current_setting(
        &mut self,
        name: &str,
        missing_ok: bool,
    ) -> pgipc_query::Result<Option<String>> {
        self.inner.current_setting(name, missing_ok)
    }
    fn set_config(
        &mut self,
        name: &str,
        value: &str,
        is_local: bool,
    ) -> pgipc_query::Result<String> {
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
    fn check_for_interrupts(&mut self) -> pgipc_query::Result<()> {
        if self.checks_left == 0 {
            return Err(QueryError::new(
                "57014",
                "canceling statement due to statement timeout",
            ));
        }
        self.checks_left -= 1;
        Ok(())
    }
}

thread_local! {
    static SESSION: RefCell<Budgeted> = RefCell::new({
        let mut s = GucSession::new(pgipc_guc::Settings::new());
        s.fixed_clock = Some(0);
        Budgeted { inner: s, checks_left: 0 }
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
        s.inner.notices.clear();
        let stmts = match parse(sql, &[], &catalog) {
            Ok(v) => v,
            Err(e) => return check_error(sql, &e),
        };
        for st in stmts {
            let Statement::Query(p) = st else { continue };
            let params = vec![Datum::Null; p.param_types().len()];
            s.checks_left = 200;
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
