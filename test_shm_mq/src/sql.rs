//! The functions as the query layer's [`ServerFunction`]s (PostgreSQL's
//! `test_shm_mq--1.0.sql`: both STRICT, VOLATILE, returning void). The query crate has no
//! default arguments, so each default is an overload of its own arity.

use crate::{test_shm_mq, test_shm_mq_pipelined, LeaderEnv, TestShmMqError};
use pgipc_query::{Catalog, Datum, QueryError, ServerFunction, Type, Volatility};
use std::rc::Rc;

fn query_error(e: TestShmMqError) -> QueryError {
    let mut q = QueryError::new(e.sqlstate(), e.to_string());
    if let Some(d) = e.detail() {
        q = q.with_detail(d);
    }
    if let Some(h) = e.hint() {
        q = q.with_hint(h);
    }
    q
}

fn int(d: Option<&Datum>, default: i64) -> i64 {
    match d {
        Some(Datum::Int8(v)) => *v,
        Some(Datum::Int4(v)) => i64::from(*v),
        Some(Datum::Int2(v)) => i64::from(*v),
        _ => default,
    }
}

fn int4(d: Option<&Datum>, default: i32) -> i32 {
    int(d, i64::from(default)).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn text(d: Option<&Datum>) -> &[u8] {
    match d {
        Some(Datum::Text(s)) => s.as_bytes(),
        _ => &[],
    }
}

/// Registers `test_shm_mq(int8, text [, int4 [, int4]])` and
/// `test_shm_mq_pipelined(int8, text [, int4 [, int4 [, bool]]])` (defaults 1, 1, true),
/// running in the backend described by `env`.
pub fn register(catalog: &mut Catalog, env: Rc<dyn LeaderEnv>) {
    let head = [Type::Int8, Type::Text];
    for extra in 0..=2 {
        let env = env.clone();
        let mut args = head.to_vec();
        args.extend(std::iter::repeat_n(Type::Int4, extra));
        catalog.add_function(ServerFunction {
            name: "test_shm_mq".into(),
            args,
            result: Type::Void,
            volatility: Volatility::Volatile,
            strict: true,
            call: Rc::new(move |_s, a| {
                test_shm_mq(
                    &*env,
                    int(a.first(), 0),
                    text(a.get(1)),
                    int4(a.get(2), 1),
                    int4(a.get(3), 1),
                )
                .map(|()| Datum::Void)
                .map_err(query_error)
            }),
        });
    }
    for extra in 0..=3 {
        let env = env.clone();
        let mut args = head.to_vec();
        args.extend(std::iter::repeat_n(Type::Int4, extra.min(2)));
        if extra == 3 {
            args.push(Type::Bool);
        }
        catalog.add_function(ServerFunction {
            name: "test_shm_mq_pipelined".into(),
            args,
            result: Type::Void,
            volatility: Volatility::Volatile,
            strict: true,
            call: Rc::new(move |_s, a| {
                let verify = !matches!(a.get(4), Some(Datum::Bool(false)));
                test_shm_mq_pipelined(
                    &*env,
                    int(a.first(), 0),
                    text(a.get(1)),
                    int4(a.get(2), 1),
                    int4(a.get(3), 1),
                    verify,
                )
                .map(|()| Datum::Void)
                .map_err(query_error)
            }),
        });
    }
}
