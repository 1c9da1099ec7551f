//! The `postmaster` server (PostgreSQL's postmaster/*.c, launch_backend.c, pmchild.c,
//! bgworker.c, backend_startup.c, miscinit.c) and `pgipc_ctl` (pg_ctl). Settings are the
//! `pgipc_guc` crate's.
//!
//! ```text
//!  main (entry::postmaster_main; pgipc_ctl: entry::ctl_main)
//!        ─► cli::parse ─► datadir::prepare ─► postmaster_main::load_settings
//!           (defaults < env < file < -c)
//!        ─► -C name / --describe-shmem: print, exit
//!        ─► --forkchild=<kind>:<slot>: an exec'd child (launch::exec_child_main)
//!        ─► postmaster_main::run: latch + signal handlers ─► postmaster.pid ─► control file
//!           ─► static bgworkers (shared_preload_libraries) ─► shmem_setup (ipci, DSM)
//!           ─► death pipe ─► listen sockets ─► server::Postmaster::begin_startup
//!           ─► ServerLoop (server.rs) until the state machine says exit
//!  children (launch.rs, fork or fork+exec, each with a child_env::ChildEnv):
//!     auxiliary processes (auxprocess.rs, then startup.rs, checkpointer.rs, bgwriter.rs,
//!     walwriter.rs, autovacuum.rs, ioworker.rs)
//!     client backends and dead-end backends (backend.rs: tcop's session with the server's hooks),
//!     spare backends (spare.rs: forked ahead of a connection, then a client backend)
//!     background workers (bgworker.rs: the postmaster's list and the worker code; the shared
//!     slots and the backend's API are the pgipc_bgworker crate)
//! ```
//!
//! # Module map
//! Laid out like PostgreSQL's postmaster/ directory. Each module uses only modules on lines
//! above it (`tests/module_graph.rs` fails on any cycle):
//!
//! ```text
//!  elog, signals, cli, datadir, controlfile, child (pmchild.c), listen, pmstate (PMState),
//!    ctl (pg_ctl)                                    no module of this crate, or only those
//!  child_env      what a child has (ChildEnv), the PGIPC_* variables, PMSignal/ProcSignal views
//!  shmem_setup    sizing, --describe-shmem, the postmaster's add-in, one generation (PmShmem)
//!  auxprocess     the auxiliary processes' common part (auxprocess.c)
//!    startup, checkpointer, bgwriter, walwriter, autovacuum, ioworker   one module per kind
//!  backend        a client backend: tcop's session (backend_startup.c)
//!  spare          spare backends: forked ahead of their connection, handed its socket
//!  bgworker       the postmaster's half of bgworker.c
//!  launch         fork / fork+exec of a child and its common start (launch_backend.c)
//!  server         ServerLoop, the reaper, pmState transitions, crash reset (postmaster.c)
//!  postmaster_main  PostmasterMain
//!  entry          the two programs' bodies (the only public module)
//! ```
//!
//! # Process titles and the log
//! `entry::postmaster_main` saves the argument area first thing (`pgipc_ps_status`); every
//! child then titles itself as PostgreSQL's do (`postgres: checkpointer`, `postgres: io worker
//! 0`, a background worker by its `bgw_name`, backends through tcop) while the postmaster keeps
//! its own command line. Log lines go through `pgipc_elog`, configured from the settings at
//! start and at each reload (elog.rs keeps the short `elog(Severity, msg)` form).
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
mod hba_setup;
mod initdb;
mod ioworker;
mod launch;
mod listen;
mod pmstate;
mod postmaster_main;
mod server;
mod shmem_setup;
mod signals;
mod spare;
mod startup;
mod walwriter;
