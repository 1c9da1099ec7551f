//! Cost of the query layer per statement: parse + plan + execute + text output of
//! `SELECT 1` (and two view-free statements the server bench also runs), uncached and
//! through the StatementCache. Plain timing loop (`harness = false`), median of 5 runs,
//! printed as `BENCH query/<name> <ns> ns <ratio>x <name>_cached` lines (per statement,
//! parse + plan + execute + text output of every value).
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
    let cases = [
        ("select1", "SELECT 1"),
        ("select_now", "SELECT now()"),
        ("select_exprs", "SELECT 1 + 1 AS two, 'x' || 'y', 2.5 * 4"),
    ];
    for (name, sql) in cases {
        let mut ns = [0f64; 2];
        for (k, cached) in [true, false].into_iter().enumerate() {
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
            ns[k] = runs[2];
        }
        // The cached run is the baseline: what a repeated statement costs.
        println!(
            "BENCH query/{name}_cached {:.0} ns 1.00x {name}_cached",
            ns[0]
        );
        println!(
            "BENCH query/{name}_uncached {:.0} ns {:.2}x {name}_cached",
            ns[1],
            ns[1] / ns[0]
        );
    }
}
