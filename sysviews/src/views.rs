//! The system views, as one table: name, PostgreSQL 18's columns (system_views.sql), who may
//! read it, and the function that makes its rows.

use crate::{internal, SysContext};
use pgipc_query::{sqlstate, Column, Datum, QueryError, Result, RowIter, Session, Type, View};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// Who may read a view (PostgreSQL's `REVOKE ALL ... FROM PUBLIC` plus its `GRANT SELECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everyone.
    Public,
    /// Superusers and members of `pg_read_all_settings`.
    ReadAllSettings,
    /// Superusers and members of `pg_read_all_stats`.
    ReadAllStats,
}

type Rows = fn(&SysContext, &mut dyn Session) -> Result<Vec<Vec<Datum>>>;

/// One view of the table.
#[derive(Debug)]
pub struct ViewDef {
    /// Name, as an unquoted SQL name.
    pub name: &'static str,
    /// Columns in order, with their types.
    pub columns: &'static [(&'static str, Type)],
    /// Who may read it.
    pub access: Access,
    pub(crate) rows: Rows,
}

impl ViewDef {
    /// The view bound to `ctx`, for [`pgipc_query::Catalog::add_view`].
    pub fn bind(&'static self, ctx: &Rc<SysContext>) -> BoundView {
        BoundView {
            def: self,
            ctx: ctx.clone(),
        }
    }
}

/// A [`ViewDef`] with its context: what the catalog holds.
#[derive(Debug)]
pub struct BoundView {
    def: &'static ViewDef,
    ctx: Rc<SysContext>,
}

impl View for BoundView {
    fn columns(&self) -> Vec<Column> {
        self.def
            .columns
            .iter()
            .map(|(n, t)| Column::new(*n, *t))
            .collect()
    }

    fn scan(&self, session: &mut dyn Session) -> Result<RowIter> {
        let ctx = &*self.ctx;
        let allowed = ctx.superuser
            || match self.def.access {
                Access::Public => true,
                Access::ReadAllSettings => ctx.pg_read_all_settings,
                Access::ReadAllStats => ctx.pg_read_all_stats,
            };
        if !allowed {
            return Err(QueryError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!("permission denied for view {}", self.def.name),
            ));
        }
        let rows = (self.def.rows)(ctx, session)?;
        Ok(Box::new(rows.into_iter().map(Ok)))
    }
}

use Type::{Bool, Float8, Inet, Int4, Int8, Name, Numeric, Oid, Text, TextArray, Timestamptz, Xid};

/// Every view this crate registers.
pub static VIEWS: &[ViewDef] = &[
    ViewDef {
        name: "pg_settings",
        columns: &[
            ("name", Text),
            ("setting", Text),
            ("unit", Text),
            ("category", Text),
            ("short_desc", Text),
            ("extra_desc", Text),
            ("context", Text),
            ("vartype", Text),
            ("source", Text),
            ("min_val", Text),
            ("max_val", Text),
            ("enumvals", TextArray),
            ("boot_val", Text),
            ("reset_val", Text),
            ("sourcefile", Text),
            ("sourceline", Int4),
            ("pending_restart", Bool),
        ],
        access: Access::Public,
        rows: pg_settings,
    },
    ViewDef {
        name: "pg_file_settings",
        columns: &[
            ("sourcefile", Text),
            ("sourceline", Int4),
            ("seqno", Int4),
            ("name", Text),
            ("setting", Text),
            ("applied", Bool),
            ("error", Text),
        ],
        access: Access::ReadAllSettings,
        rows: pg_file_settings,
    },
    ViewDef {
        name: "pg_shmem_allocations",
        columns: &[
            ("name", Text),
            ("off", Int8),
            ("size", Int8),
            ("allocated_size", Int8),
        ],
        access: Access::ReadAllStats,
        rows: pg_shmem_allocations,
    },
    ViewDef {
        name: "pg_stat_bgwriter",
        columns: &[
            ("buffers_clean", Int8),
            ("maxwritten_clean", Int8),
            ("buffers_alloc", Int8),
            ("stats_reset", Timestamptz),
        ],
        access: Access::Public,
        rows: pg_stat_bgwriter,
    },
    ViewDef {
        name: "pg_stat_checkpointer",
        columns: &[
            ("num_timed", Int8),
            ("num_requested", Int8),
            ("num_done", Int8),
            ("restartpoints_timed", Int8),
            ("restartpoints_req", Int8),
            ("restartpoints_done", Int8),
            ("write_time", Float8),
            ("sync_time", Float8),
            ("buffers_written", Int8),
            ("slru_written", Int8),
            ("stats_reset", Timestamptz),
        ],
        access: Access::Public,
        rows: pg_stat_checkpointer,
    },
    // PostgreSQL 18's pg_stat_activity.
    ViewDef {
        name: "pg_stat_activity",
        columns: &[
            ("datid", Oid),
            ("datname", Name),
            ("pid", Int4),
            ("leader_pid", Int4),
            ("usesysid", Oid),
            ("usename", Name),
            ("application_name", Text),
            ("client_addr", Inet),
            ("client_hostname", Text),
            ("client_port", Int4),
            ("backend_start", Timestamptz),
            ("xact_start", Timestamptz),
            ("query_start", Timestamptz),
            ("state_change", Timestamptz),
            ("wait_event_type", Text),
            ("wait_event", Text),
            ("state", Text),
            ("backend_xid", Xid),
            ("backend_xmin", Xid),
            ("query_id", Int8),
            ("query", Text),
            ("backend_type", Text),
        ],
        access: Access::Public,
        rows: crate::activity::pg_stat_activity,
    },
    // PostgreSQL's pg_stat_ssl.
    ViewDef {
        name: "pg_stat_ssl",
        columns: &[
            ("pid", Int4),
            ("ssl", Bool),
            ("version", Text),
            ("cipher", Text),
            ("bits", Int4),
            ("client_dn", Text),
            ("client_serial", Numeric),
            ("issuer_dn", Text),
        ],
        access: Access::Public,
        rows: crate::activity::pg_stat_ssl,
    },
    // PostgreSQL 17's pg_wait_events.
    ViewDef {
        name: "pg_wait_events",
        columns: &[("type", Text), ("name", Text), ("description", Text)],
        access: Access::Public,
        rows: crate::activity::pg_wait_events,
    },
    // pgipc's own: the rounds of the auxiliary processes that PostgreSQL has no view for.
    ViewDef {
        name: "pgipc_stat_aux",
        columns: &[("name", Text), ("count", Int8)],
        access: Access::Public,
        rows: pgipc_stat_aux,
    },
];

fn text(s: Option<String>) -> Datum {
    s.map_or(Datum::Null, Datum::Text)
}

fn int8(v: u64) -> Datum {
    Datum::Int8(i64::try_from(v).unwrap_or(i64::MAX))
}

fn no_settings(view: &str) -> QueryError {
    QueryError::not_supported(format!("{view} needs the session's settings"))
}

fn pg_settings(ctx: &SysContext, session: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    let s = session
        .settings()
        .ok_or_else(|| no_settings("pg_settings"))?;
    let privileged = ctx.superuser || ctx.pg_read_all_settings;
    Ok(s.pg_settings(privileged)
        .into_iter()
        .map(|r| {
            vec![
                Datum::Text(r.name),
                Datum::Text(r.setting),
                text(r.unit),
                Datum::Text(r.category),
                Datum::Text(r.short_desc),
                text(r.extra_desc),
                Datum::Text(r.context),
                Datum::Text(r.vartype),
                Datum::Text(r.source),
                text(r.min_val),
                text(r.max_val),
                r.enumvals.map_or(Datum::Null, |v| {
                    Datum::TextArray(v.into_iter().map(Some).collect())
                }),
                text(r.boot_val),
                text(r.reset_val),
                text(r.sourcefile),
                r.sourceline
                    .map_or(Datum::Null, |l| Datum::Int4(l.min(i32::MAX as u32) as i32)),
                Datum::Bool(r.pending_restart),
            ]
        })
        .collect())
}

fn pg_file_settings(_: &SysContext, session: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    let s = session
        .settings()
        .ok_or_else(|| no_settings("pg_file_settings"))?;
    let path = PathBuf::from(s.text("config_file"));
    let int4 = |v: u32| Datum::Int4(v.min(i32::MAX as u32) as i32);
    Ok(s.file_settings(&path)
        .into_iter()
        .map(|r| {
            vec![
                text(r.sourcefile),
                r.sourceline.map_or(Datum::Null, int4),
                int4(r.seqno),
                text(r.name),
                text(r.setting),
                Datum::Bool(r.applied),
                text(r.error),
            ]
        })
        .collect())
}

fn pg_shmem_allocations(ctx: &SysContext, _: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    let d = pgipc_ipci::ShmemDescription::of(&ctx.shmem)
        .map_err(|e| internal(format!("could not read the Shmem Index: {e}")))?;
    Ok(d.allocations
        .into_iter()
        .map(|a| {
            vec![
                text(a.name),
                a.off.map_or(Datum::Null, int8),
                int8(a.size),
                int8(a.allocated_size),
            ]
        })
        .collect())
}

fn stats(ctx: &SysContext) -> Result<pgipc_shmem::Shared<pgipc_pgstat::PgStatShared>> {
    pgipc_pgstat::shmem_init(&ctx.shmem)
        .map_err(|e| internal(format!("could not attach to the statistics: {e}")))
}

fn pg_stat_bgwriter(ctx: &SysContext, _: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    let s = stats(ctx)?;
    let b = &s.bgwriter;
    let ld = |c: &std::sync::atomic::AtomicU64| int8(c.load(Ordering::Relaxed));
    Ok(vec![vec![
        ld(&b.buffers_clean),
        ld(&b.maxwritten_clean),
        ld(&b.buffers_alloc),
        Datum::Timestamptz(b.stat_reset_timestamp.load(Ordering::Relaxed)),
    ]])
}

fn pg_stat_checkpointer(ctx: &SysContext, _: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    let s = stats(ctx)?;
    let c = &s.checkpointer;
    let ld = |c: &std::sync::atomic::AtomicU64| int8(c.load(Ordering::Relaxed));
    let ms = |c: &std::sync::atomic::AtomicU64| Datum::Float8(c.load(Ordering::Relaxed) as f64);
    Ok(vec![vec![
        ld(&c.num_timed),
        ld(&c.num_requested),
        ld(&c.num_performed),
        ld(&c.restartpoints_timed),
        ld(&c.restartpoints_requested),
        ld(&c.restartpoints_performed),
        ms(&c.write_time),
        ms(&c.sync_time),
        ld(&c.buffers_written),
        ld(&c.slru_written),
        Datum::Timestamptz(c.stat_reset_timestamp.load(Ordering::Relaxed)),
    ]])
}

fn pgipc_stat_aux(ctx: &SysContext, _: &mut dyn Session) -> Result<Vec<Vec<Datum>>> {
    let s = stats(ctx)?;
    Ok(pgipc_pgstat::COUNTER_NAMES
        .iter()
        .map(|n| {
            vec![
                Datum::Text((*n).to_owned()),
                s.counter(n).map_or(Datum::Null, int8),
            ]
        })
        .collect())
}
