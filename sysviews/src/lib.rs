//! Admin functions and system views: SQL over the server's own state, for the query layer's
//! [`Catalog`]. Mirrors PostgreSQL's `storage/ipc/signalfuncs.c` (`pg_cancel_backend`,
//! `pg_terminate_backend`, `pg_reload_conf`), the start/reload-time functions of
//! `utils/adt/timestamp.c` and `misc.c`, the views of `utils/misc/guc_funcs.c` (`pg_settings`,
//! `pg_file_settings`), `storage/ipc/shmem.c`'s `pg_shmem_allocations`, and the
//! `pg_stat_bgwriter` / `pg_stat_checkpointer` views over `utils/activity`'s fixed-numbered
//! statistics.
//!
//! ```text
//!  backend (tcop) ── SysContext (shmem, pids, start/reload times, role) ──► register(catalog)
//!                                                                             │
//!   functions ─ pg_cancel_backend(pid)       ─► ProcArray: is pid a backend? role rules ─► kill(-pid, SIGINT)
//!               pg_terminate_backend(pid, ms)─►   (same)                              ─► kill(-pid, SIGTERM),
//!                                                 then poll kill(pid, 0) with interrupt checks
//!               pg_reload_conf()             ─► kill(postmaster, SIGHUP)
//!               pg_postmaster_start_time(), pg_conf_load_time() ─► SysContext
//!   views     ─ pg_settings, pg_file_settings ─► the session's pgipc_guc::Settings
//!               pg_shmem_allocations          ─► the Shmem Index (pgipc_ipci::ShmemDescription)
//!               pg_stat_bgwriter, pg_stat_checkpointer, pgipc_stat_aux
//!                                             ─► "Shared Memory Stats" (pgipc_pgstat)
//!               pg_stat_activity              ─► "Backend Status Array" + PGPROC (xid, xmin,
//!                                                 wait event) (pgipc_backend_status)
//!               pg_wait_events                ─► pgipc_wait_event's table
//!   set-returning ─ pg_stat_get_activity(pid) ─► pg_stat_activity's rows, PostgreSQL's
//!                                                 column order, one pid or all (NULL)
//!               pg_stat_get_backend_idset(), pg_stat_get_backend_pid(n),
//!               pg_stat_get_backend_subxact(n) ─► the same entries by proc number, the
//!                                                 PGPROC subxid cache's count and overflow
//!   pgipc_stat_ipc, pgipc_stat_reset_ipc()    ─► "IPC Statistics" (pgipc_ipc_stats): each
//!                                                 live process's counters
//!   pgipc_sinval_roundtrip(n)                 ─► "shmInvalBuffer" (pgipc_sinval): join,
//!                                                 write n, read back, leave
//! ```
//!
//! Every view reads shared memory through its owner crate's API (the ProcArray's pid lookup
//! under ProcArrayLock, the Shmem Index under its lock, pgstat's atomics); nothing here knows
//! an offset. The functions take PostgreSQL 18's argument and result types, volatility,
//! messages, SQLSTATEs and permission rules (see [`SysContext`] for what the rules can see).
//!
//! # What this crate does not do
//! There is no catalog of roles: the session's role, its memberships and which roles are
//! superusers are what the backend puts in [`SysContext`] (tcop fills them from the role
//! catalog at connection start). Another backend's owner is the role it published in
//! `PGPROC.roleId` once authenticated; one that has not advertised a role (0: still starting,
//! or not a session) counts as superuser-owned, as in PostgreSQL. Views are
//! computed whole when scanned (they are small); nothing is cached between statements.
//! `pg_size_pretty` and `pg_size_bytes` need no server state and live in the query crate.
//!
//! Key items: [`SysContext`], [`register`], [`FUNCTIONS`], [`VIEWS`].

mod activity;
mod functions;
mod get_activity;
mod ipc_stats;
mod views;

pub use activity::{mask_activity_row, may_see_activity};
pub use functions::{FunctionDef, FUNCTIONS};
pub use views::{Access, BoundView, ViewDef, VIEWS};

use pgipc_proc::{Oid, ProcConfig};
use pgipc_procarray::ProcArray;
use pgipc_query::{sqlstate, Catalog, QueryError, Result};
use pgipc_shmem::Shmem;
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::rc::Rc;

/// The bootstrap superuser's role OID (`BOOTSTRAP_SUPERUSERID`).
pub const BOOTSTRAP_SUPERUSERID: Oid = 10;

/// What the backend supplies to the functions and views: handles into shared memory, the
/// server's pids and times, and the session's role for the permission rules.
///
/// Build it with [`SysContext::new`], set the public fields the backend knows, then hand it
/// to [`register`] in an `Rc` (the session keeps it for its lifetime).
pub struct SysContext {
    /// The main segment (ProcArray, PGPROC, the Shmem Index, "Shared Memory Stats").
    pub shmem: Shmem,
    /// The sizes of the PGPROC array, to attach the ProcArray (`IpcConfig::proc_config`).
    pub proc_config: ProcConfig,
    /// This backend's pid (`MyProcPid`). Default: this process's id.
    pub my_pid: i32,
    /// The postmaster's pid (`PostmasterPid`; PMSignal's `postmaster_pid()` has it), whom
    /// `pg_reload_conf` sends SIGHUP. Default: 0, which makes `pg_reload_conf` warn and
    /// return false (as any value ≤ 0 does) rather than signal a process group — the backend
    /// must supply it.
    pub postmaster_pid: i32,
    /// When the postmaster started (`PgStartTime`), PostgreSQL microseconds since
    /// 2000-01-01 UTC, for `pg_postmaster_start_time()`. Default: 0 (the epoch) — the backend
    /// must supply it.
    pub postmaster_start_time: i64,
    /// When this process last loaded the configuration file (`PgReloadTime`), PostgreSQL
    /// microseconds, for `pg_conf_load_time()`. The backend sets it at start and after each
    /// SIGHUP reload. Default: the time [`SysContext::new`] ran.
    pub conf_load_time: Cell<i64>,
    /// Whether the session's role is a superuser (`superuser()`). Default: true.
    pub superuser: bool,
    /// The session's role (`GetUserId()`); 0 if none. Default: [`BOOTSTRAP_SUPERUSERID`].
    pub role_id: Oid,
    /// The session's role name (`current_user`). Default: `postgres`. No function here
    /// prints it yet; it is kept beside `role_id` so that views which name the session's
    /// role read it from one place.
    pub role_name: String,
    /// Roles whose privileges the session's role has besides its own
    /// (`has_privs_of_role`). Default: none.
    pub member_of: Vec<Oid>,
    /// Roles that are superusers (`superuser_arg`), to judge the owner of another backend.
    /// Default: `[BOOTSTRAP_SUPERUSERID]`.
    pub superuser_roles: Vec<Oid>,
    /// Membership in `pg_signal_backend`: may signal other roles' (non-superuser) backends.
    pub pg_signal_backend: bool,
    /// Membership in `pg_signal_autovacuum_worker`: may signal autovacuum workers.
    pub pg_signal_autovacuum_worker: bool,
    /// Membership in `pg_read_all_settings`: sees `GUC_SUPERUSER_ONLY` settings in
    /// `pg_settings`, and may read `pg_file_settings`.
    pub pg_read_all_settings: bool,
    /// Membership in `pg_read_all_stats`: may read `pg_shmem_allocations`.
    pub pg_read_all_stats: bool,
    /// Whether a signal goes to the target's process group (`kill(-pid)`, PostgreSQL's
    /// `HAVE_SETSID` path: every pgipc child runs in a session of its own) or to the pid
    /// alone. Default: true.
    pub signal_process_group: bool,
    procarray: OnceCell<ProcArray>,
}

impl fmt::Debug for SysContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SysContext")
            .field("my_pid", &self.my_pid)
            .field("postmaster_pid", &self.postmaster_pid)
            .field("postmaster_start_time", &self.postmaster_start_time)
            .field("conf_load_time", &self.conf_load_time.get())
            .field("superuser", &self.superuser)
            .field("role_id", &self.role_id)
            .field("role_name", &self.role_name)
            .finish_non_exhaustive()
    }
}

impl SysContext {
    /// A context over `shmem` with the defaults each field documents (a superuser session
    /// of this process; no postmaster pid or start time yet).
    pub fn new(shmem: Shmem, proc_config: ProcConfig) -> SysContext {
        SysContext {
            shmem,
            proc_config,
            my_pid: std::process::id() as i32,
            postmaster_pid: 0,
            postmaster_start_time: 0,
            conf_load_time: Cell::new(pgipc_query::system_now()),
            superuser: true,
            role_id: BOOTSTRAP_SUPERUSERID,
            role_name: "postgres".to_owned(),
            member_of: Vec::new(),
            superuser_roles: vec![BOOTSTRAP_SUPERUSERID],
            pg_signal_backend: false,
            pg_signal_autovacuum_worker: false,
            pg_read_all_settings: false,
            pg_read_all_stats: false,
            signal_process_group: true,
            procarray: OnceCell::new(),
        }
    }

    /// The ProcArray, attached on first use.
    pub fn procarray(&self) -> Result<&ProcArray> {
        if let Some(p) = self.procarray.get() {
            return Ok(p);
        }
        let p = pgipc_procarray::shmem_init(&self.shmem, &self.proc_config)
            .map_err(|e| internal(format!("could not attach to the ProcArray: {e}")))?;
        Ok(self.procarray.get_or_init(|| p))
    }

    /// `has_privs_of_role(GetUserId(), role)`.
    pub fn has_privs_of_role(&self, role: Oid) -> bool {
        self.superuser || role == self.role_id || self.member_of.contains(&role)
    }

    /// `superuser_arg(role)`.
    pub fn role_is_superuser(&self, role: Oid) -> bool {
        self.superuser_roles.contains(&role)
    }
}

/// Adds this crate's functions ([`FUNCTIONS`]) and views ([`VIEWS`]) to `catalog`; they
/// share `ctx`.
pub fn register(catalog: &mut Catalog, ctx: Rc<SysContext>) {
    for f in FUNCTIONS {
        catalog.add_function(f.server_function(&ctx));
    }
    for v in VIEWS {
        catalog.add_view(v.name, Rc::new(v.bind(&ctx)));
    }
    catalog.add_set_function(get_activity::pg_stat_get_activity(&ctx));
    catalog.add_set_function(get_activity::pg_stat_get_backend_idset(&ctx));
    catalog.add_set_function(get_activity::pg_stat_get_backend_subxact(&ctx));
    catalog.add_function(get_activity::pg_stat_get_backend_pid(&ctx));
    catalog.add_view(
        ipc_stats::PGIPC_STAT_IPC.name,
        Rc::new(ipc_stats::PGIPC_STAT_IPC.bind(&ctx)),
    );
    catalog.add_function(ipc_stats::pgipc_stat_reset_ipc(&ctx));
    catalog.add_function(ipc_stats::pgipc_sinval_roundtrip(&ctx));
}

/// An internal error (XX000) with `message`.
fn internal(message: String) -> QueryError {
    QueryError::new(sqlstate::INTERNAL_ERROR, message)
}

/// SQLSTATE 01000, a plain WARNING's code.
const WARNING: &str = "01000";
