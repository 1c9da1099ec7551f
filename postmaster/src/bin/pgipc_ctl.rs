//! `pgipc_ctl`: start, stop, restart, reload and status of a pgipc server (PostgreSQL's
//! pg_ctl). See `pgipc_postmaster::ctl`.

use pgipc_postmaster::ctl;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-?") {
        print!("{}", ctl::USAGE);
        return ExitCode::SUCCESS;
    }
    let a = match ctl::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pgipc_ctl: {e}");
            eprintln!("Try \"pgipc_ctl --help\" for more information.");
            return ExitCode::FAILURE;
        }
    };
    // The server binary sits next to this one.
    let postmaster = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("postmaster")))
        .unwrap_or_else(|| "postmaster".into());
    ExitCode::from(ctl::run(&a, &postmaster).clamp(0, 255) as u8)
}
