//! The background writer (PostgreSQL's bgwriter.c, for a server that has no storage): one round per
//! `bgwriter_delay`, counted in `pgipc.bgwriter_rounds`; SIGTERM: exit 0, SIGINT ignored.

use crate::auxprocess::{periodic_main, wait_event};
use crate::child_env::ChildEnv;

/// Runs the process; returns its exit code.
pub(crate) fn bgwriter_main(env: &mut ChildEnv) -> i32 {
    periodic_main(env, "bgwriter_delay", wait_event::BGWRITER_MAIN, |c| {
        &c.aux.bgwriter_rounds
    })
}
