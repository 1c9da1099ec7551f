//! Runs SQL through the query layer and prints the result as psql's aligned format does.
//!
//! ```text
//! cargo run -p pgipc-query --example sql -- "SELECT n, n ^ 0.5 AS root FROM generate_series(1, 3) n"
//!  n |        root
//! ---+--------------------
//!  1 | 1.0000000000000000
//!  ...
//! ```
//! Statements come from the arguments, or from standard input (one per line) without any.

use std::io::BufRead;

use pgipc_query::{parse, Catalog, GucSession, Session, Statement};

fn run(sql: &str, catalog: &Catalog, session: &mut GucSession) {
    let stmts = match parse(sql, &[], catalog) {
        Ok(s) => s,
        Err(e) => return report(sql, &e),
    };
    for st in stmts {
        match st {
            Statement::Query(p) => {
                let names: Vec<String> = p.columns().iter().map(|c| c.name.clone()).collect();
                let mut rows = p.execute(Vec::new(), &*session);
                let mut out: Vec<Vec<String>> = Vec::new();
                loop {
                    match rows.next_row(session) {
                        Ok(Some(r)) => {
                            let tz = rows.time_zone().clone();
                            out.push(
                                r.iter()
                                    .map(|d| d.to_text(&tz).unwrap_or_default())
                                    .collect(),
                            );
                        }
                        Ok(None) => break,
                        Err(e) => return report(sql, &e),
                    }
                }
                print_table(&names, &out);
            }
            Statement::Set { name, value, local } => {
                match session.set_config(&name, value.as_deref().unwrap_or("DEFAULT"), local) {
                    Ok(_) => println!("SET"),
                    Err(e) => report(sql, &e),
                }
            }
            other => println!("({other:?}: not run by this example)"),
        }
    }
}

fn report(sql: &str, e: &pgipc_query::QueryError) {
    println!("ERROR:  {}", e.message);
    if let Some(p) = e.position {
        let line: String = sql.chars().collect();
        println!("LINE 1: {line}");
        println!("{}^", " ".repeat(8 + p as usize - 1));
    }
    if let Some(d) = &e.detail {
        println!("DETAIL:  {d}");
    }
    if let Some(h) = &e.hint {
        println!("HINT:  {h}");
    }
}

fn print_table(names: &[String], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for r in rows {
        for (i, v) in r.iter().enumerate() {
            w[i] = w[i].max(v.chars().count());
        }
    }
    let head: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{n:^width$}", width = w[i]))
        .collect();
    println!(" {} ", head.join(" | "));
    println!(
        "{}",
        w.iter()
            .map(|n| "-".repeat(n + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{v:<width$}", width = w[i]))
            .collect();
        println!(" {} ", cells.join(" | "));
    }
    println!(
        "({} row{})",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
}

fn main() {
    let catalog = Catalog::new();
    let mut session = GucSession::new(pgipc_guc::Settings::new());
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if !line.trim().is_empty() {
                run(&line, &catalog, &mut session);
            }
        }
    } else {
        for a in &args {
            run(a, &catalog, &mut session);
        }
    }
}
