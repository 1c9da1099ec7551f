//! `test_shm_mq(queue_size, message [, repeat_count [, num_workers]])` and
//! `test_shm_mq_pipelined(queue_size, message [, repeat_count [, num_workers [, verify]]])`
//! as built-in functions of the literal-argument SQL surface: a thin adapter from the
//! session to the `pgipc_test_shm_mq` crate, which does all the work (the query layer
//! registers the same functions with `pgipc_test_shm_mq::register`).

use crate::sys::{self, Pending};
use crate::{BackendContext, Datum, Report};
use pgipc_dsm::{DsmImpl, DsmImplType};
use pgipc_libpq::{ErrorFields, Severity};
use pgipc_pmsignal::PMSignal;
use pgipc_proc::MyProc;
use pgipc_shmem::Shmem;
use pgipc_test_shm_mq::{LeaderEnv, TestShmMqError};

/// `void`.
const VOIDOID: u32 = 2278;

/// The result type of the function `name`, if it is one of these.
pub(crate) fn result_type(name: &str) -> Option<u32> {
    matches!(name, "test_shm_mq" | "test_shm_mq_pipelined").then_some(VOIDOID)
}

/// The session as the leader sees it (also the backend of the DSM registry functions).
pub(crate) struct Leader<'a> {
    pub(crate) ctx: &'a BackendContext,
    pub(crate) me: Option<&'static MyProc>,
}

impl Leader<'_> {
    fn setting_u32(&self, name: &str, default: u32) -> u32 {
        self.ctx
            .setting(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }
}

impl LeaderEnv for Leader<'_> {
    fn my_proc(&self) -> Option<&'static MyProc> {
        self.me
    }

    fn shmem(&self) -> &Shmem {
        &self.ctx.shmem
    }

    fn pmsignal(&self) -> Option<&PMSignal> {
        self.ctx.pmsignal.as_ref()
    }

    fn dsm_impl(&self) -> DsmImpl {
        let kind = match self.ctx.setting("dynamic_shared_memory_type").as_deref() {
            Some("sysv") => DsmImplType::Sysv,
            Some("mmap") => DsmImplType::Mmap,
            _ => DsmImplType::Posix,
        };
        let dir = self
            .ctx
            .setting("data_directory")
            .map(std::path::PathBuf::from);
        DsmImpl::new(kind, dir.as_deref())
    }

    fn max_worker_processes(&self) -> u32 {
        self.ctx.proc_config.max_worker_processes
    }

    fn max_parallel_workers(&self) -> u32 {
        self.setting_u32("max_parallel_workers", 8)
    }

    fn interrupt_pending(&self) -> bool {
        sys::peek(Pending::Cancel) || sys::peek(Pending::Die)
    }

    fn check_for_interrupts(&self) -> Result<(), TestShmMqError> {
        self.ctx.hooks.process_interrupts();
        if sys::take(Pending::Cancel) {
            return Err(TestShmMqError::cancel());
        }
        if sys::peek(Pending::Die) {
            // Left pending: the session ends at its next interrupt check.
            return Err(TestShmMqError::terminate());
        }
        Ok(())
    }
}

fn report(e: TestShmMqError) -> Report {
    let mut f = ErrorFields::new(Severity::Error, e.sqlstate(), e.to_string());
    if let Some(d) = e.detail() {
        f = f.with_detail(d);
    }
    if let Some(h) = e.hint() {
        f = f.with_hint(h);
    }
    Box::new(f)
}

/// An integer argument (`bigint` / `integer` input), or its default when absent.
fn int_arg(args: &[String], i: usize, default: i64, ty: &str) -> Result<i64, Report> {
    let Some(a) = args.get(i) else {
        return Ok(default);
    };
    let v: i64 = a.trim().parse().map_err(|_| {
        Box::new(ErrorFields::new(
            Severity::Error,
            "22P02",
            format!("invalid input syntax for type {ty}: \"{a}\""),
        ))
    })?;
    if ty == "integer" && i32::try_from(v).is_err() {
        return Err(Box::new(ErrorFields::new(
            Severity::Error,
            "22003",
            format!("value \"{a}\" is out of range for type integer"),
        )));
    }
    Ok(v)
}

/// A boolean argument (PostgreSQL's `boolin` spellings), or its default when absent.
fn bool_arg(args: &[String], i: usize, default: bool) -> Result<bool, Report> {
    let Some(a) = args.get(i) else {
        return Ok(default);
    };
    match a.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Ok(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Ok(false),
        _ => Err(Box::new(ErrorFields::new(
            Severity::Error,
            "22P02",
            format!("invalid input syntax for type boolean: \"{a}\""),
        ))),
    }
}

/// Runs `name` if it is one of these; `None` otherwise.
pub(crate) fn call(
    ctx: &BackendContext,
    me: Option<&'static MyProc>,
    name: &str,
    args: &[String],
) -> Option<Result<Datum, Report>> {
    result_type(name)?;
    Some(run(ctx, me, name, args))
}

fn run(
    ctx: &BackendContext,
    me: Option<&'static MyProc>,
    name: &str,
    args: &[String],
) -> Result<Datum, Report> {
    let pipelined = name == "test_shm_mq_pipelined";
    let max = if pipelined { 5 } else { 4 };
    if args.len() < 2 || args.len() > max {
        return Err(Box::new(ErrorFields::new(
            Severity::Error,
            "42883",
            format!(
                "function {name} with {} arguments does not exist",
                args.len()
            ),
        )));
    }
    let queue_size = int_arg(args, 0, 0, "bigint")?;
    let message = args[1].as_bytes();
    let repeat_count = int_arg(args, 2, 1, "integer")? as i32;
    let num_workers = int_arg(args, 3, 1, "integer")? as i32;
    let env = Leader { ctx, me };
    let r = if pipelined {
        let verify = bool_arg(args, 4, true)?;
        pgipc_test_shm_mq::test_shm_mq_pipelined(
            &env,
            queue_size,
            message,
            repeat_count,
            num_workers,
            verify,
        )
    } else {
        pgipc_test_shm_mq::test_shm_mq(&env, queue_size, message, repeat_count, num_workers)
    };
    r.map(|()| Datum::Void).map_err(report)
}
