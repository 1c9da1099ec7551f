//! PostgreSQL's `src/test/modules/test_dsm_registry` (`set_val_in_shmem(int4)`,
//! `get_val_in_shmem()`) and PostgreSQL 19's `pg_dsm_registry_allocations` view (name, type,
//! size), over the `pgipc_dsm_registry` crate, for any backend described by a [`LeaderEnv`].

use crate::setup::ensure_dsm;
use crate::{LeaderEnv, TestShmMqError};
use pgipc_dsm_registry::DsmRegistryError;
use pgipc_query::{Catalog, Column, Datum, QueryError, RowIter, ServerFunction, Session, Type};
use pgipc_query::{View, Volatility};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicI32, Ordering};

/// The segment's name (`test_dsm_registry`'s).
pub const TEST_DSM_REGISTRY_NAME: &str = "test_dsm_registry";

/// Errors of these functions: the registry's, or attaching DSM.
#[derive(Debug, thiserror::Error)]
pub enum DsmRegistryFnError {
    /// The registry refused.
    #[error(transparent)]
    Registry(#[from] DsmRegistryError),
    /// DSM could not be started in this process.
    #[error(transparent)]
    Dsm(#[from] TestShmMqError),
}

impl DsmRegistryFnError {
    /// The SQLSTATE.
    pub fn sqlstate(&self) -> &str {
        match self {
            DsmRegistryFnError::Registry(e) => e.sqlstate(),
            DsmRegistryFnError::Dsm(e) => e.sqlstate(),
        }
    }
}

/// The shared value (`TestDSMRegistryStruct.val`; an atomic stands in for its LWLock).
fn value(env: &dyn LeaderEnv) -> Result<&'static AtomicI32, DsmRegistryFnError> {
    ensure_dsm(env.shmem(), env.dsm_impl())?;
    let reg = pgipc_dsm_registry::shmem_init(env.shmem())?;
    let (addr, _found) = pgipc_dsm_registry::get_named_dsm_segment(
        &reg,
        TEST_DSM_REGISTRY_NAME,
        std::mem::size_of::<AtomicI32>(),
        &mut |p: NonNull<u8>| {
            // SAFETY: a fresh segment of at least 4 page-aligned bytes, ours until published.
            unsafe { (*(p.as_ptr() as *const AtomicI32)).store(0, Ordering::Relaxed) }
        },
    )?;
    // SAFETY: the registry keeps the mapping until process exit (pinned mapping), the segment
    // is pinned, and its first 4 bytes hold the AtomicI32 initialised above.
    Ok(unsafe { &*(addr.as_ptr() as *const AtomicI32) })
}

/// `set_val_in_shmem(val)`.
pub fn set_val_in_shmem(env: &dyn LeaderEnv, val: i32) -> Result<(), DsmRegistryFnError> {
    value(env)?.store(val, Ordering::SeqCst);
    Ok(())
}

/// `get_val_in_shmem()`.
pub fn get_val_in_shmem(env: &dyn LeaderEnv) -> Result<i32, DsmRegistryFnError> {
    Ok(value(env)?.load(Ordering::SeqCst))
}

/// The rows of `pg_dsm_registry_allocations`: name, type (`segment`), size.
pub fn dsm_registry_allocations(
    env: &dyn LeaderEnv,
) -> Result<Vec<(String, &'static str, i64)>, DsmRegistryFnError> {
    let reg = pgipc_dsm_registry::shmem_init(env.shmem())?;
    Ok(reg
        .allocations()
        .into_iter()
        .map(|(n, s)| (n, "segment", s as i64))
        .collect())
}

fn query_error(e: DsmRegistryFnError) -> QueryError {
    QueryError::new(e.sqlstate(), e.to_string())
}

struct Allocations(Rc<dyn LeaderEnv>);

impl View for Allocations {
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("name", Type::Text),
            Column::new("type", Type::Text),
            Column::new("size", Type::Int8),
        ]
    }

    fn scan(&self, _session: &mut dyn Session) -> pgipc_query::Result<RowIter> {
        let rows = dsm_registry_allocations(&*self.0).map_err(query_error)?;
        Ok(Box::new(rows.into_iter().map(|(n, t, s)| {
            Ok(vec![Datum::Text(n), Datum::Text(t.into()), Datum::Int8(s)])
        })))
    }
}

/// Registers `set_val_in_shmem(int4) → void`, `get_val_in_shmem() → int4` and the view
/// `pg_dsm_registry_allocations`.
pub fn register_dsm_registry(catalog: &mut Catalog, env: Rc<dyn LeaderEnv>) {
    let e = env.clone();
    catalog.add_function(ServerFunction {
        name: "set_val_in_shmem".into(),
        args: vec![Type::Int4],
        result: Type::Void,
        volatility: Volatility::Volatile,
        strict: true,
        call: Rc::new(move |_, a| {
            let v = match a.first() {
                Some(Datum::Int4(v)) => *v,
                _ => 0,
            };
            set_val_in_shmem(&*e, v)
                .map(|()| Datum::Void)
                .map_err(query_error)
        }),
    });
    let e = env.clone();
    catalog.add_function(ServerFunction {
        name: "get_val_in_shmem".into(),
        args: vec![],
        result: Type::Int4,
        volatility: Volatility::Volatile,
        strict: true,
        call: Rc::new(move |_, _| get_val_in_shmem(&*e).map(Datum::Int4).map_err(query_error)),
    });
    catalog.add_view("pg_dsm_registry_allocations", Rc::new(Allocations(env)));
}
