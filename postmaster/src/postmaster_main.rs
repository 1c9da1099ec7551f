//! PostgreSQL's `PostmasterMain` (postmaster.c): settings, data directory, lock file, control
//! file, static background workers, shared memory, the death pipe and the listen sockets, then
//! the server loop (server.rs) until it says exit.

use crate::cli::Options;
use crate::controlfile::ControlFileError;
use crate::datadir::{self, line, DataDirError, LockFile, LockFileInfo};
use crate::elog::{elog, Severity};
use crate::listen::ListenError;
use crate::shmem_setup::{
    compute_runtime_settings, create_shared_state, ipc_config, ShmemSetupError,
};
use crate::signals;
use pgipc_guc::{split_guc_list, GucError, Settings, Source};
use pgipc_ipci::IpciError;
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_shmem::{HugePagesStatus, Interlock};
use pgipc_waiteventset::postmaster_death::PostmasterDeathPipe;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the postmaster could not start (each printed as one FATAL line plus PostgreSQL's
/// DETAIL/HINT lines).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartupError {
    /// A setting is wrong.
    #[error(transparent)]
    Guc(#[from] GucError),
    /// The data directory or lock file is wrong.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// Shared memory could not be set up.
    #[error(transparent)]
    Ipci(#[from] IpciError),
    /// Signal handlers could not be installed.
    #[error("could not set up signal handling: {0}")]
    Signals(nix::Error),
    /// A list setting does not parse.
    #[error("invalid list syntax in parameter \"{0}\"")]
    InvalidList(&'static str),
    /// The reserved connections leave no ordinary one.
    #[error("superuser_reserved_connections ({superuser}) plus reserved_connections ({reserved}) must be less than max_connections ({max})")]
    ReservedConnections {
        /// `superuser_reserved_connections`.
        superuser: i64,
        /// `reserved_connections`.
        reserved: i64,
        /// `max_connections`.
        max: i64,
    },
    /// The kernel's random source failed (cancel keys have no weaker fallback).
    #[error("could not generate random cancel key: the kernel's random source (getrandom) failed")]
    NoRandomSource,
    /// A `shared_preload_libraries` entry names no library this server has.
    #[error("could not access file \"{0}\": No such file or directory")]
    NoSuchLibrary(String),
    /// Shared memory could not be set up or sized.
    #[error(transparent)]
    ShmemSetup(#[from] ShmemSetupError),
    /// The postmaster's latch could not be made or owned.
    #[error(transparent)]
    Latch(#[from] pgipc_latch::LatchError),
    /// Wait-event support or the postmaster-death pipe could not be set up.
    #[error(transparent)]
    WaitEvent(#[from] pgipc_waiteventset::WaitEventSetError),
    /// `global/pg_control` could not be read or created.
    #[error(transparent)]
    ControlFile(#[from] ControlFileError),
    /// A listen socket could not be opened.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// pg_hba.conf, pg_ident.conf or the role file could not be loaded.
    #[error("{0}")]
    Auth(String),
    /// Writing the lock file failed.
    #[error("could not write lock file \"{}\": {source}", path.display())]
    LockFileWrite {
        /// The file.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
}

impl StartupError {
    /// The DETAIL line, if PostgreSQL has one for this error.
    pub(crate) fn detail(&self) -> Option<String> {
        match self {
            StartupError::DataDir(e) => e.detail(),
            _ => None,
        }
    }

    /// The HINT line, if PostgreSQL has one for this error.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            StartupError::Guc(e) => e.hint().map(str::to_owned),
            StartupError::DataDir(e) => e.hint(),
            StartupError::Ipci(IpciError::Shmem(e)) => e.hint(),
            StartupError::ShmemSetup(e) => e.hint(),
            _ => None,
        }
    }
}

/// Loads settings as PostgreSQL's `PostmasterMain` does: defaults < environment (`PGPORT`,
/// ...) < `postgresql.conf` in `data_dir` < the command line.
pub(crate) fn load_settings(data_dir: &Path, opts: &Options) -> Result<Settings, StartupError> {
    let mut s = Settings::new();
    s.apply_environment(|k| std::env::var(k).ok());
    let conf = data_dir.join(datadir::CONFIG_FILE);
    s.apply_file(&conf)?;
    for (name, value) in &opts.settings {
        s.set(name, value, Source::CommandLine)?;
    }
    s.set_override("data_directory", &data_dir.display().to_string())?;
    s.set_override("config_file", &conf.display().to_string())?;
    Ok(s)
}

/// A list setting's elements (PostgreSQL's `SplitGUCList`), or PostgreSQL's error for a
/// malformed list.
pub(crate) fn guc_list(s: &Settings, name: &'static str) -> Result<Vec<String>, StartupError> {
    split_guc_list(s.text(name)).ok_or(StartupError::InvalidList(name))
}

/// Records the command line in `postmaster.opts` (for `pgipc_ctl status` and `restart`).
fn write_opts_file(data_dir: &Path, opts: &Options) {
    let exe = std::env::current_exe().unwrap_or_else(|_| "postmaster".into());
    let mut line = format!("{} -D {}", exe.display(), data_dir.display());
    for (n, v) in &opts.settings {
        line.push_str(&format!(" --{n}={v}"));
    }
    line.push('\n');
    let _ = std::fs::write(data_dir.join(crate::ctl::OPTS_FILE), line);
}

/// Runs the server until it shuts down; returns the process exit code.
pub(crate) fn run(
    data_dir: &Path,
    mut settings: Settings,
    opts: &Options,
) -> Result<i32, StartupError> {
    // The postmaster's latch, set by its signal handlers.
    let latch: &'static Latch = Box::leak(Box::new(Latch::new()));
    let owned = OwnedLatch::own(latch)?;
    pgipc_latch::install_my_latch(latch);
    pgipc_waiteventset::initialize_wait_event_support()?;
    signals::install_postmaster().map_err(StartupError::Signals)?;

    let exec = settings.bool("exec_backend");
    if exec {
        // An exec'd child can only find an inherited memfd again.
        settings.set_override("shared_memory_type", "memfd")?;
    }
    let cfg = ipc_config(&settings, Some(data_dir));
    compute_runtime_settings(&mut settings, &cfg)?;

    let (su, res, maxc) = (
        settings.int("superuser_reserved_connections"),
        settings.int("reserved_connections"),
        settings.int("max_connections"),
    );
    if su + res >= maxc {
        return Err(StartupError::ReservedConnections {
            superuser: su,
            reserved: res,
            max: maxc,
        });
    }
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let start_time = started.as_secs();
    // PostgreSQL's PgStartTime, in its epoch (2000-01-01 UTC), for pg_postmaster_start_time().
    crate::child_env::set_pg_start_time(
        started.as_micros() as i64 - crate::child_env::UNIX_TO_PG_EPOCH_USECS,
    );
    let socket_dirs = guc_list(&settings, "unix_socket_directories")?;
    let listen = guc_list(&settings, "listen_addresses")?;
    let first_listen = listen.first().cloned().unwrap_or_default();
    let info = LockFileInfo {
        data_dir,
        start_time,
        port: settings.int("port"),
        socket_dir: socket_dirs.first().map_or("", String::as_str),
        listen_addr: &first_listen,
    };
    if !pgipc_tcop::random_source_works() {
        // Cancel keys have no weaker fallback; refuse to start rather than refuse every client.
        return Err(StartupError::NoRandomSource);
    }
    let lock = LockFile::create(&info, |shmid| Interlock::is_in_use(data_dir, shmid))?;
    // Only the lock holder reads or creates pg_control: postmasters started at the same instant
    // on a new directory would otherwise write it together.
    if let Err(e) = crate::controlfile::ControlFile::check_or_create(data_dir) {
        let _ = lock.remove();
        return Err(e.into());
    }
    write_opts_file(data_dir, opts);
    // pg_hba.conf, pg_ident.conf and the role file (first start: initdb's defaults).
    if let Err(e) = crate::hba_setup::start(data_dir, &settings) {
        let _ = lock.remove();
        return Err(StartupError::Auth(e));
    }
    // What each forked backend would otherwise compute again.
    pgipc_tcop::prewarm_for_backends(&settings);

    // Static background workers from shared_preload_libraries.
    let mut workers = crate::bgworker::BgWorkerList::new(cfg.max_worker_processes);
    let libraries = match guc_list(&settings, "shared_preload_libraries") {
        Ok(l) => l,
        Err(e) => {
            let _ = lock.remove();
            return Err(e);
        }
    };
    for lib in libraries {
        match crate::bgworker::PRELOAD_LIBRARIES
            .iter()
            .find(|(n, _)| *n == lib)
        {
            Some((_, init)) => {
                if let Err(e) = init(&mut workers) {
                    elog(Severity::Log, &e);
                }
            }
            None => {
                let _ = lock.remove();
                return Err(StartupError::NoSuchLibrary(lib));
            }
        }
    }

    let pools = crate::child::ChildPools::new(crate::server::Postmaster::pool_sizes(&cfg));
    let shmem = match create_shared_state(&cfg, |sh| workers.publish(sh)) {
        Ok(s) => s,
        Err(e) => {
            let _ = lock.remove();
            return Err(e.into());
        }
    };
    let mut lock = lock;
    let hp = match shmem.ipc().shmem.huge_pages_status() {
        HugePagesStatus::On => "on",
        HugePagesStatus::Off => "off",
        HugePagesStatus::Unknown => "unknown",
    };
    // The table lists every word huge_pages_status can take.
    let _ = settings.set_computed("huge_pages_status", hp);
    if let Some(i) = &shmem.ipc().interlock {
        if let Err(e) = lock.set_line(line::SHMEM_KEY, &i.lock_file_line()) {
            let path = lock.path().to_path_buf();
            let _ = shmem.shutdown();
            let _ = lock.remove();
            return Err(StartupError::LockFileWrite { path, source: e });
        }
    }
    let death_pipe = match PostmasterDeathPipe::create() {
        Ok(p) => p,
        Err(e) => {
            let _ = shmem.shutdown();
            let _ = lock.remove();
            return Err(e.into());
        }
    };
    elog(
        Severity::Log,
        &format_args!(
            "starting pgipc {} (compatible with PostgreSQL 18.6) on {}-linux, {} children",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            if exec { "fork+exec" } else { "fork" }
        ),
    );

    let sockets = match crate::listen::open_listen_sockets(&settings, data_dir) {
        Ok(s) => s,
        Err(e) => {
            let _ = shmem.shutdown();
            let _ = lock.remove();
            return Err(e.into());
        }
    };

    let mut args: Vec<std::ffi::OsString> = vec!["-D".into(), data_dir.as_os_str().to_owned()];
    for (n, v) in &opts.settings {
        args.push(format!("--{n}={v}").into());
    }
    let mut launcher = crate::launch::Launcher::new(exec, death_pipe, args);
    launcher.listen_fds = sockets.raw_fds();
    let mut pm = crate::server::Postmaster::new(
        data_dir.to_path_buf(),
        settings,
        shmem,
        cfg,
        lock,
        launcher,
        pools,
        workers,
    );
    pm.begin_startup();
    let code = pm.server_loop(&owned, sockets.fds());
    pm.cleanup_at_exit();
    drop(sockets);
    if code == 0 {
        elog(Severity::Log, &"database system is shut down");
    }
    Ok(code)
}
