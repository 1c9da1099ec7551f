//! The `postmaster` binary's library: settings, data directory and lock file, signals, and the
//! start-up sequence (PostgreSQL's postmaster.c, miscinit.c, guc*.c, in their first-cut form).
//!
//! ```text
//!  main ─► cli::parse ─► datadir::prepare (create 0700 + postgresql.conf on first run; check
//!           ownership/permissions) ─► startup::load_settings (defaults < file < command line)
//!        ─► -C name? print, exit  ─► --describe-shmem? print allocation table, exit
//!        ─► startup::run: signals::install ─► LockFile::create (postmaster.pid lines 1–6)
//!           ─► ipci::create_shared_memory_and_semaphores (interlock, segment, subsystems)
//!           ─► pid line 7 = shmem key/id, line 8 = "ready" ─► sigsuspend loop
//!           ─► SIGHUP: reload │ SIGTERM/SIGINT/SIGQUIT: remove segments and pid file, exit 0
//! ```
//!
//! # Concurrency contract
//! The postmaster is single-threaded. Signal handlers only OR a bit into a static word; the main
//! loop sleeps in `sigsuspend` with those signals blocked everywhere else, so none is lost.
//!
//! # What this first cut does not do
//! No listen sockets, no child processes, no crash restart yet (the server issue adds them).
//! It does not refuse to run as root, unlike PostgreSQL, because CI runs as root.

pub mod cli;
pub mod datadir;
pub mod elog;
pub mod guc;
pub mod signals;
pub mod startup;
