//! PostgreSQL's test_dsm_registry functions as built-ins of the literal-argument SQL surface:
//! `set_val_in_shmem(int4) → void` and `get_val_in_shmem() → int4`, a thin adapter to
//! `pgipc_test_shm_mq`'s implementation over the DSM registry (the query layer registers the
//! same functions, and the `pg_dsm_registry_allocations` view, with
//! `pgipc_test_shm_mq::register_dsm_registry`).

use crate::test_shm_mq_fns::Leader;
use crate::{BackendContext, Datum, Report};
use pgipc_libpq::{ErrorFields, Severity};
use pgipc_proc::MyProc;

/// The result type of the function `name`, if it is one of these.
pub(crate) fn result_type(name: &str) -> Option<u32> {
    match name {
        "set_val_in_shmem" => Some(2278),
        "get_val_in_shmem" => Some(23),
        _ => None,
    }
}

fn error(code: &str, message: impl Into<String>) -> Report {
    Box::new(ErrorFields::new(Severity::Error, code, message))
}

/// Runs `name` if it is one of these; `None` otherwise.
pub(crate) fn call(
    ctx: &BackendContext,
    me: Option<&'static MyProc>,
    name: &str,
    args: &[String],
) -> Option<Result<Datum, Report>> {
    result_type(name)?;
    let env = Leader { ctx, me };
    let fail = |e: pgipc_test_shm_mq::DsmRegistryFnError| error(e.sqlstate(), e.to_string());
    Some(match (name, args) {
        ("set_val_in_shmem", [v]) => match v.trim().parse::<i32>() {
            Ok(v) => pgipc_test_shm_mq::set_val_in_shmem(&env, v)
                .map(|()| Datum::Void)
                .map_err(fail),
            Err(_) => Err(error(
                "22P02",
                format!("invalid input syntax for type integer: \"{v}\""),
            )),
        },
        ("get_val_in_shmem", []) => pgipc_test_shm_mq::get_val_in_shmem(&env)
            .map(Datum::Int4)
            .map_err(fail),
        _ => Err(error(
            "42883",
            format!(
                "function {name} with {} arguments does not exist",
                args.len()
            ),
        )),
    })
}
