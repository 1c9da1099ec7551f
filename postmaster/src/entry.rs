//! The programs' entry points: [`postmaster_main()`] (the `postmaster` binary) and
//! [`ctl_main()`] (`pgipc_ctl`). The binaries are thin wrappers around them; whole-server tests
//! call them from their own test binary re-executed as the server (tests/, package
//! pgipc-tests), so the programs under test are these functions, not a binary found by name.

use crate::cli::ShmemFormat;
use crate::elog::{self, elog, Severity};
use crate::shmem_setup::{compute_runtime_settings, describe_shmem, ipc_config};
use crate::{cli, ctl, datadir, postmaster_main};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn fatal(msg: &dyn std::fmt::Display, detail: Option<String>, hint: Option<String>) -> ExitCode {
    elog(Severity::Fatal, msg);
    if let Some(d) = detail {
        elog(Severity::Detail, &d);
    }
    if let Some(h) = hint {
        elog(Severity::Hint, &h);
    }
    ExitCode::FAILURE
}

/// The `postmaster` program: `args` is its command line without the program name. Sets up
/// logging and the panic hook, then answers `--help`, `--version`, `-C name` and
/// `--describe-shmem`, runs an exec'd child (`--forkchild`, which never returns), or runs the
/// server until it shuts down. Call it on the main thread of a process with no other threads
/// (the server forks).
pub fn postmaster_main(args: impl IntoIterator<Item = String>) -> ExitCode {
    // Before anything else (and before any thread): children retitle themselves in the
    // argument area (PostgreSQL's save_ps_display_args in main). Without it they keep the
    // postmaster's command line, which is all that is lost.
    let _ = pgipc_ps_status::save_ps_display_args();
    elog::init(false);
    elog::install_panic_hook();
    let opts = match cli::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("postmaster: {e}");
            eprintln!("Try \"postmaster --help\" for more information.");
            return ExitCode::FAILURE;
        }
    };
    // Nothing is created before the data directory is checked, but should anything be, it is
    // owner-only (PostgreSQL's PostmasterMain); `datadir::prepare` then sets the final mask.
    datadir::set_umask(datadir::MODE_MASK_OWNER);
    if let Some(spec) = &opts.forkchild {
        // An exec'd child of a postmaster (exec_backend = on).
        let code = crate::launch::exec_child_main(spec, &opts);
        pgipc_ipc::proc_exit(code);
    }
    if opts.help {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if opts.version {
        println!("postmaster (pgipc) {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let Some(dir) = opts
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("PGDATA").map(PathBuf::from))
    else {
        return fatal(&datadir::DataDirError::NotSpecified, None, None);
    };
    let (dir, created) = match datadir::prepare(&dir, &pgipc_guc::sample_config_file()) {
        Ok(d) => d,
        Err(e) => return fatal(&e, e.detail(), e.hint()),
    };
    if created {
        elog(
            Severity::Log,
            &format_args!("created data directory \"{}\"", dir.display()),
        );
    }
    let mut settings = match postmaster_main::load_settings(&dir, &opts) {
        Ok(s) => s,
        Err(e) => return fatal(&e, e.detail(), e.hint()),
    };
    pgipc_elog::configure(&settings);
    if let Some(name) = &opts.show {
        let cfg = ipc_config(&settings, None);
        if let Err(e) = compute_runtime_settings(&mut settings, &cfg) {
            return fatal(&e, None, e.hint());
        }
        // PostgreSQL's `-C`: the value in its base unit, without the unit.
        return match settings.value_text(name) {
            Ok(v) => {
                println!("{v}");
                ExitCode::SUCCESS
            }
            Err(e) => fatal(&e, None, None),
        };
    }
    if let Some(format) = opts.describe_shmem {
        let cfg = ipc_config(&settings, None);
        return match describe_shmem(&cfg) {
            Ok(d) => {
                match format {
                    ShmemFormat::Table => print!("{}", d.to_table()),
                    ShmemFormat::Json => print!("{}", d.to_json()),
                }
                ExitCode::SUCCESS
            }
            Err(e) => fatal(&e, None, e.hint()),
        };
    }
    match postmaster_main::run(&dir, settings, &opts) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => fatal(&e, e.detail(), e.hint()),
    }
}

/// The `pgipc_ctl` program: `args` is its command line without the program name; `postmaster`
/// is the server program it starts (`start`, `restart`).
pub fn ctl_main(args: impl IntoIterator<Item = String>, postmaster: &Path) -> ExitCode {
    let args: Vec<String> = args.into_iter().collect();
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
    ExitCode::from(ctl::run(&a, postmaster).clamp(0, 255) as u8)
}
