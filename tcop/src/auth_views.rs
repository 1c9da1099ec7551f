//! The views of who may connect, for the session's catalog: `pg_hba_file_rules` (the
//! pg_hba.conf on disk as the server would parse it, PostgreSQL's `fill_hba_view`) and
//! `pg_roles` (the role catalog, passwords masked). `pg_stat_ssl` is sysviews' (every
//! backend's TLS state, from the Backend SSL Status Buffer).

use pgipc_hba::{HbaPaths, ParseOptions};
use pgipc_query::datetime::{parse_timestamptz, TimeZone};
use pgipc_query::{sqlstate, Column, Datum, QueryError, Result, RowIter, Session, Type, View};
use std::path::PathBuf;
use std::rc::Rc;

/// What the views read: the data directory, and whether the session may see them.
#[derive(Debug, Clone)]
pub(crate) struct AuthViewsContext {
    /// `data_directory` (the role file and, by default, pg_hba.conf).
    pub(crate) data_dir: PathBuf,
    /// `hba_file` as set (empty: the data directory's).
    pub(crate) hba_file: String,
    /// `ssl` is on (a `hostssl` line can match).
    pub(crate) ssl_enabled: bool,
    /// The session user is a superuser (pg_hba_file_rules is superuser-only by default).
    pub(crate) superuser: bool,
}

/// Registers the two views.
pub(crate) fn register(catalog: &mut pgipc_query::Catalog, ctx: Rc<AuthViewsContext>) {
    catalog.add_view("pg_hba_file_rules", Rc::new(HbaFileRules(ctx.clone())));
    catalog.add_view("pg_roles", Rc::new(Roles(ctx)));
}

fn text(s: Option<String>) -> Datum {
    s.map_or(Datum::Null, Datum::Text)
}

fn list(v: Option<Vec<String>>) -> Datum {
    v.map_or(Datum::Null, |v| {
        Datum::TextArray(v.into_iter().map(Some).collect())
    })
}

fn rows(v: Vec<Vec<Datum>>) -> RowIter {
    Box::new(v.into_iter().map(Ok))
}

struct HbaFileRules(Rc<AuthViewsContext>);

impl View for HbaFileRules {
    fn columns(&self) -> Vec<Column> {
        use Type::{Int4, Text, TextArray};
        vec![
            Column::new("rule_number", Int4),
            Column::new("file_name", Text),
            Column::new("line_number", Int4),
            Column::new("type", Text),
            Column::new("database", TextArray),
            Column::new("user_name", TextArray),
            Column::new("address", Text),
            Column::new("netmask", Text),
            Column::new("auth_method", Text),
            Column::new("options", TextArray),
            Column::new("error", Text),
        ]
    }

    fn scan(&self, _session: &mut dyn Session) -> Result<RowIter> {
        let ctx = &*self.0;
        if !ctx.superuser {
            return Err(QueryError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "permission denied for view pg_hba_file_rules",
            ));
        }
        let paths = HbaPaths::new(&ctx.data_dir, &ctx.hba_file, "");
        let opts = ParseOptions {
            ssl_enabled: ctx.ssl_enabled,
        };
        Ok(rows(
            pgipc_hba::hba_file_rules(&paths.hba, opts)
                .into_iter()
                .map(|r| {
                    vec![
                        r.rule_number.map_or(Datum::Null, Datum::Int4),
                        Datum::Text(r.file_name),
                        Datum::Int4(r.line_number),
                        text(r.conn_type),
                        list(r.database),
                        list(r.user_name),
                        text(r.address),
                        text(r.netmask),
                        text(r.auth_method),
                        list(r.options),
                        text(r.error),
                    ]
                })
                .collect(),
        ))
    }
}

struct Roles(Rc<AuthViewsContext>);

impl View for Roles {
    fn columns(&self) -> Vec<Column> {
        use Type::{Bool, Int4, Name, Oid, Text, TextArray, Timestamptz};
        vec![
            Column::new("rolname", Name),
            Column::new("rolsuper", Bool),
            Column::new("rolinherit", Bool),
            Column::new("rolcreaterole", Bool),
            Column::new("rolcreatedb", Bool),
            Column::new("rolcanlogin", Bool),
            Column::new("rolreplication", Bool),
            Column::new("rolconnlimit", Int4),
            Column::new("rolpassword", Text),
            Column::new("rolvaliduntil", Timestamptz),
            Column::new("rolbypassrls", Bool),
            Column::new("rolconfig", TextArray),
            Column::new("oid", Oid),
        ]
    }

    fn scan(&self, _session: &mut dyn Session) -> Result<RowIter> {
        let authid = pgipc_authid::Authid::open(&self.0.data_dir).map_err(|e| {
            QueryError::new(
                sqlstate::INTERNAL_ERROR,
                format!("could not read roles: {e}"),
            )
        })?;
        let utc = TimeZone::utc();
        let mut out = Vec::new();
        for r in authid.pg_roles() {
            let valid = match r.rolvaliduntil {
                None => Datum::Null,
                Some(t) => Datum::Timestamptz(parse_timestamptz(&t, &utc, 0)?),
            };
            out.push(vec![
                Datum::Text(r.rolname),
                Datum::Bool(r.rolsuper),
                Datum::Bool(r.rolinherit),
                Datum::Bool(r.rolcreaterole),
                Datum::Bool(r.rolcreatedb),
                Datum::Bool(r.rolcanlogin),
                Datum::Bool(r.rolreplication),
                Datum::Int4(r.rolconnlimit),
                text(r.rolpassword),
                valid,
                Datum::Bool(r.rolbypassrls),
                Datum::Null,
                Datum::Oid(r.oid),
            ]);
        }
        Ok(rows(out))
    }
}
