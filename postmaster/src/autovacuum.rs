//! The autovacuum launcher (PostgreSQL's autovacuum.c, for a server that has no storage): one round
//! per `autovacuum_naptime`, counted in `pgipc.autovacuum_rounds`; SIGTERM: exit 0, SIGINT ignored.

use crate::auxprocess::{periodic_main, wait_event};
use crate::child_env::ChildEnv;

/// Runs the process; returns its exit code.
pub(crate) fn autovac_launcher_main(env: &mut ChildEnv) -> i32 {
    periodic_main(
        env,
        "autovacuum_naptime",
        wait_event::AUTOVACUUM_MAIN,
        |c| &c.aux.autovacuum_rounds,
    )
}
