//! The `postmaster` server (PostgreSQL's postmaster/*.c, launch_backend.c, pmchild.c,
//! bgworker.c, backend_startup.c, miscinit.c) and `pgipc_ctl` (pg_ctl). Settings are the
//! `pgipc_guc` crate's.
//!
//! ```text
//!  main (entry::postmaster_main; pgipc_ctl: entry::ctl_main)
//!        ─► cli::parse ─► datadir::prepare ─► startup::load_settings (defaults < env < file < -c)
//!        ─► -C name / --describe-shmem: print, exit
//!        ─► --forkchild=<kind>:<slot>: an exec'd child (launch::exec_child_main)
//!        ─► startup::run: latch + signal handlers ─► postmaster.pid ─► control file
//!           ─► static bgworkers (shared_preload_libraries) ─► ipci (shared memory, DSM)
//!           ─► death pipe ─► listen sockets ─► server::Postmaster::begin_startup
//!           ─► ServerLoop (server.rs) until the state machine says exit
//!  children (launch.rs, fork or fork+exec):
//!     startup, checkpointer, bgwriter, walwriter, autovacuum launcher, io workers (aux.rs)
//!     client backends and dead-end backends (backend.rs: tcop's session with the server's hooks)
//!     background workers (bgworker.rs: the postmaster's list and the worker code; the shared
//!     slots and the backend's API are the pgipc_bgworker crate)
//! ```
//!
//! # Concurrency contract
//! The postmaster and every child are single-threaded. Signal handlers only OR a bit into a
//! static word and set the process latch (signals.rs); main loops sleep on that latch. The
//! postmaster reads shared memory only through atomics (PMSignal flags, background-worker
//! slots) and never takes an LWLock or spinlock, so a child that dies holding one cannot wedge
//! it; children take what they need through the subsystem crates.
//!
//! # What it does not do
//! There is no storage, WAL, SQL parser or catalog: backends answer tcop's small built-in
//! command set; the checkpointer's only durable state is `global/pg_control`; auxiliary
//! processes run their real loops and count their rounds (`SHOW pgipc.<counter>`). No SSL or
//! GSSAPI (both requests are answered "N"), trust authentication only, no walsenders,
//! archiver, syslogger or autovacuum workers. It does not refuse to run as root, unlike
//! PostgreSQL, because CI runs as root.

mod autovacuum;
mod auxprocess;
mod backend;
mod bgworker;
mod bgwriter;
mod checkpointer;
mod child;
mod child_env;
mod cli;
mod controlfile;
mod ctl;
mod datadir;
mod elog;
pub mod entry;
mod ioworker;
mod launch;
mod listen;
mod pmstate;
mod postmaster_main;
mod server;
mod shmem_setup;
mod signals;
mod startup;
mod walwriter;
