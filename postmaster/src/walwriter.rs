//! The WAL writer (PostgreSQL's walwriter.c, for a server that has no storage): one round per
//! `wal_writer_delay`, counted in `pgipc.walwriter_rounds`; SIGTERM: exit 0, SIGINT ignored.

use crate::auxprocess::{periodic_main, wait_event};
use crate::child_env::ChildEnv;

/// Runs the process; returns its exit code.
pub(crate) fn walwriter_main(env: &mut ChildEnv) -> i32 {
    periodic_main(env, "wal_writer_delay", wait_event::WAL_WRITER_MAIN, |c| {
        &c.aux.walwriter_rounds
    })
}
