//! The functions as the query layer's [`ServerFunction`]s (PostgreSQL's
//! `test_shm_mq--1.0.sql`: both STRICT, VOLATILE, returning void). The query crate has no
//! default arguments, so each default is an overload of its own arity.

use crate::{test_shm_mq, test_shm_mq_pipelined, LeaderEnv, TestShmMqError};
use pgipc_dsm::DsmImpl;
use pgipc_pmsignal::PMSignal;
use pgipc_proc::MyProc;
use pgipc_query::{Catalog, Datum, QueryError, ServerFunction, Session, Type, Volatility};
use pgipc_shmem::Shmem;
use std::cell::RefCell;
use std::rc::Rc;

/// The backend as a query-layer function sees it: `env` for everything but the interrupt
/// check, which is the statement's session's (`Session::check_for_interrupts`, which serves
/// whatever the backend serves at each check) after `env`'s own.
struct WithSession<'a, 's> {
    env: &'a dyn LeaderEnv,
    session: RefCell<&'a mut (dyn Session + 's)>,
}

impl LeaderEnv for WithSession<'_, '_> {
    fn my_proc(&self) -> Option<&'static MyProc> {
        self.env.my_proc()
    }
    fn shmem(&self) -> &Shmem {
        self.env.shmem()
    }
    fn pmsignal(&self) -> Option<&PMSignal> {
        self.env.pmsignal()
    }
    fn dsm_impl(&self) -> DsmImpl {
        self.env.dsm_impl()
    }
    fn max_worker_processes(&self) -> u32 {
        self.env.max_worker_processes()
    }
    fn max_parallel_workers(&self) -> u32 {
        self.env.max_parallel_workers()
    }
    fn interrupt_pending(&self) -> bool {
        self.env.interrupt_pending()
    }
    fn check_for_interrupts(&self) -> Result<(), TestShmMqError> {
        self.env.check_for_interrupts()?;
        self.session
            .borrow_mut()
            .check_for_interrupts()
            .map_err(|e| TestShmMqError::Interrupted {
                sqlstate: e.sqlstate,
                message: e.message,
            })
    }
}

fn query_error(e: TestShmMqError) -> QueryError {
    let mut q = QueryError::new(e.sqlstate(), e.to_string());
    if let Some(d) = e.detail() {
        q = q.with_detail(d);
    }
    if let Some(h) = e.hint() {
        q = q.with_hint(h);
    }
    if let Some(c) = e.context() {
        q = q.with_context(c);
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
/// running in the backend described by `env`. Their interrupt checks call `env`'s
/// [`check_for_interrupts`](LeaderEnv::check_for_interrupts) and then the statement's
/// `Session::check_for_interrupts`, so a backend whose session does the whole
/// `CHECK_FOR_INTERRUPTS` may give `env` one that returns `Ok(())`.
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
            call: Rc::new(move |s, a| {
                let env = WithSession {
                    env: &*env,
                    session: RefCell::new(s),
                };
                test_shm_mq(
                    &env,
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
            call: Rc::new(move |s, a| {
                let verify = !matches!(a.get(4), Some(Datum::Bool(false)));
                let env = WithSession {
                    env: &*env,
                    session: RefCell::new(s),
                };
                test_shm_mq_pipelined(
                    &env,
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
