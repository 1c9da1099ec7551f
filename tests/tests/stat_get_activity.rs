//! `pg_stat_get_activity(pid)` as PostgreSQL has it: a set-returning function with one row
//! for a live pid, none for an unknown one, every process for NULL or -1; its OUT columns in
//! PostgreSQL's order (15's, which 18 extends with `gss_delegation`), and the same values
//! `pg_stat_activity` shows. Compared with PostgreSQL 15 running the same statements. (Not
//! compared: `SELECT pg_stat_get_activity(pid)`, a record in the target list, which the query
//! layer refuses with 0A000.)
//!
//! With them, the types PostgreSQL gives `pg_stat_activity`'s ids and addresses: `xid` for
//! `backend_xid`/`backend_xmin` and `inet` for `client_addr` (and `inet_client_addr()`,
//! `inet_server_addr()`), read over a TCP connection to 127.0.0.1 as well.
//!
//! A `harness = false` test: libtest-mimic runs the cases one after the other on one test
//! thread; a watchdog ends the binary if it hangs.

mod common;

use common::server::{scratch, watchdog, Builder, Postgres15};
use std::process::ExitCode;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(300);

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn rows(c: &mut postgres::Client, sql: &str) -> Vec<String> {
    ok(c.simple_query(sql))
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

/// An `xid` read in binary: its four bytes, big-endian.
struct Xid(u32);

impl<'a> postgres::types::FromSql<'a> for Xid {
    fn from_sql(
        _: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Xid, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Xid(u32::from_be_bytes(raw.try_into()?)))
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        ty.oid() == 28
    }
}

/// A client over TCP to 127.0.0.1 at `port`.
fn tcp_client(port: u16) -> postgres::Client {
    ok(postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(10))
        .connect(postgres::NoTls))
}

/// The statements and their rows, on two sessions (`b` idle in a transaction block), then
/// the xid and inet columns on a third session `t` over TCP.
fn script(
    a: &mut postgres::Client,
    b: &mut postgres::Client,
    t: &mut postgres::Client,
) -> Vec<(String, Vec<String>)> {
    ok(b.simple_query("SET application_name = 'other'; BEGIN; SELECT 1"));
    let b_pid = rows(b, "SELECT pg_backend_pid()").remove(0);
    // B publishes ClientRead when it blocks reading, just after ReadyForQuery: wait for it
    // (on both servers alike) so the row below is B at rest.
    for _ in 0..200 {
        let w = rows(
            a,
            &format!("SELECT wait_event FROM pg_stat_get_activity({b_pid})"),
        );
        if w == ["ClientRead"] {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let statements = [
        "SELECT pid = pg_backend_pid(), state, query, backend_type, application_name, ssl, \
         sslversion, gss_auth, gss_princ, gss_enc, leader_pid, wait_event_type \
         FROM pg_stat_get_activity(pg_backend_pid())"
            .to_owned(),
        format!(
            "SELECT state, query, application_name, xact_start IS NOT NULL, wait_event_type, \
             wait_event FROM pg_stat_get_activity({b_pid})"
        ),
        "SELECT count(*) = count(*) FILTER (WHERE pid > 0), count(*) > 1 \
         FROM pg_stat_get_activity(-1)"
            .to_owned(),
        "SELECT count(*) FROM pg_stat_get_activity(0)".to_owned(),
        format!(
            "SELECT count(*) FILTER (WHERE pid = pg_backend_pid()), \
             count(*) FILTER (WHERE pid = {b_pid}), \
             count(*) FILTER (WHERE backend_type = 'checkpointer') \
             FROM pg_stat_get_activity(NULL)"
        ),
        "SELECT * FROM pg_stat_get_activity('x')".to_owned(),
        "SELECT pg_typeof(backend_xid), pg_typeof(backend_xmin), pg_typeof(client_addr), \
         client_addr IS NULL, inet_client_addr() IS NULL, pg_typeof(inet_server_addr()) \
         FROM pg_stat_activity WHERE pid = pg_backend_pid()"
            .to_owned(),
        "SELECT pg_typeof(backend_xid), pg_typeof(client_addr) \
         FROM pg_stat_get_activity(pg_backend_pid())"
            .to_owned(),
    ];
    let mut out = Vec::new();
    for sql in statements {
        let got = match a.simple_query(&sql) {
            Ok(_) => rows(a, &sql),
            Err(e) => vec![format!(
                "ERROR {}",
                e.as_db_error().map_or("?", |d| d.code().code())
            )],
        };
        out.push((sql.replace(&b_pid, "<B's pid>"), got));
    }
    // Over TCP: the address is 127.0.0.1 (a host: no /32 but in the text cast), and a
    // transaction's id shows as backend_xid once assigned.
    for sql in [
        "SELECT client_addr, client_addr::text, host(client_addr), masklen(client_addr), \
         family(client_addr), client_addr = inet_client_addr(), \
         inet_server_addr(), client_addr = '127.0.0.1' \
         FROM pg_stat_activity WHERE pid = pg_backend_pid()",
        "SELECT client_addr, pg_typeof(client_addr) FROM pg_stat_get_activity(pg_backend_pid())",
        "BEGIN; SELECT pg_current_xact_id() IS NOT NULL; \
         SELECT backend_xid = pg_current_xact_id()::xid, \
         backend_xid::text = pg_current_xact_id()::text, backend_xid <> '1' \
         FROM pg_stat_activity WHERE pid = pg_backend_pid(); COMMIT",
    ] {
        out.push((sql.to_owned(), rows(t, sql)));
    }
    // The binary formats (inet_send, xidsend) through the extended protocol: the client
    // decodes inet itself; xid's four bytes are read raw.
    let sql = "SELECT client_addr, inet_client_addr(), $1::inet, '::1/64'::inet, '7'::xid \
               FROM pg_stat_activity WHERE pid = pg_backend_pid()";
    let ip: std::net::IpAddr = "10.1.2.3".parse().unwrap();
    let r = ok(t.query_one(sql, &[&ip]));
    let xid: Xid = r.get(4);
    let binary: Vec<String> = (0..4)
        .map(|i| format!("{:?}", r.get::<_, Option<std::net::IpAddr>>(i)))
        .chain([format!("xid {}", xid.0)])
        .collect();
    out.push((sql.to_owned(), binary));
    // PostgreSQL 15's first 28 OUT columns; 16 added gss_delegation before leader_pid.
    let names: Vec<String> = ok(a.prepare("SELECT * FROM pg_stat_get_activity(NULL)"))
        .columns()
        .iter()
        .map(|c| format!("{}:{}", c.name(), c.type_().oid()))
        .filter(|n| !n.starts_with("gss_delegation:"))
        .collect();
    out.push(("OUT columns".into(), names));
    ok(b.simple_query("ROLLBACK"));
    out
}

fn pg_stat_get_activity_matches_postgresql_15() {
    let srv = ok(Builder::in_dir(scratch("pgipc-get-activity", "two"))
        .listen("127.0.0.1")
        .start());
    let ours = script(
        &mut ok(srv.client()),
        &mut ok(srv.client()),
        &mut tcp_client(srv.port()),
    );
    let pg = ok(Postgres15::start_with(
        "get-activity",
        &["-c", "listen_addresses=127.0.0.1"],
    ));
    let theirs = script(
        &mut ok(pg.client()),
        &mut ok(pg.client()),
        &mut tcp_client(pg.port()),
    );
    for ((q, a), (_, b)) in ours.iter().zip(&theirs) {
        println!("{q}\n  pgipc {a:?}\n  pg15  {b:?}");
    }
    assert_eq!(ours, theirs);
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("stat_get_activity", WATCHDOG);
    pgipc_tests::harness::run_cases(&[(
        "pg_stat_get_activity_matches_postgresql_15",
        pg_stat_get_activity_matches_postgresql_15,
    )])
}
