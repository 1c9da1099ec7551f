//! `pgipc_ctl`: start, stop, restart, reload and status of a pgipc server (PostgreSQL's
//! pg_ctl). See `pgipc_postmaster::entry::ctl_main`.

fn main() -> std::process::ExitCode {
    // The server binary sits next to this one.
    let postmaster = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("postmaster")))
        .unwrap_or_else(|| "postmaster".into());
    pgipc_postmaster::entry::ctl_main(std::env::args().skip(1), &postmaster)
}
