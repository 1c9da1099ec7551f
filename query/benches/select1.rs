//! Cost of the query layer per statement: parse + plan + execute + text output of
//! `SELECT 1` (and two view-free statements the server bench also runs), uncached and
//! through the StatementCache. Plain timing loop (`harness = false`), median of 5 runs.
//!
//! `cargo bench -p pgipc-query --bench select1`

use std::hint::black_box;
use std::time::Instant;

use pgipc_query::{Catalog, GucSession, Statement, StatementCache};

fn run(
    sql: &str,
    cache: Option<&mut StatementCache>,
    catalog: &Catalog,
    session: &mut GucSession,
) -> usize {
    let stmts = match cache {
        Some(c) => c.parse(sql, &[], catalog),
        None => pgipc_query::parse(sql, &[], catalog),
    }
    .expect("plans");
    let mut bytes = 0;
    for s in stmts {
        if let Statement::Query(p) = s {
            let mut rows = p.execute(Vec::new(), &*session);
            while let Some(r) = rows.next_row(session).expect("runs") {
                let tz = rows.time_zone().clone();
                for d in &r {
                    bytes += d.to_text(&tz).map_or(0, |t| t.len());
                }
            }
        }
    }
    bytes
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let catalog = Catalog::new();
    let mut session = GucSession::new(pgipc_guc::Settings::new());
    let iters = 200_000u32;
    for sql in [
        "SELECT 1",
        "SELECT now()",
        "SELECT 1 + 1 AS two, 'x' || 'y', 2.5 * 4",
    ] {
        for cached in [false, true] {
            let mut cache = StatementCache::new();
            let mut runs = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..iters {
                    let c = if cached { Some(&mut cache) } else { None };
                    black_box(run(black_box(sql), c, &catalog, &mut session));
                }
                runs.push(t.elapsed().as_nanos() as f64 / iters as f64);
            }
            runs.sort_by(f64::total_cmp);
            let ns = runs[2];
            println!(
                "{sql:<45} {:<9} {:>8.0} ns/statement  ({:>9.0} statements/s on one core)",
                if cached { "cached" } else { "uncached" },
                ns,
                1e9 / ns
            );
        }
    }
}
