//! The postmaster's life in this first cut: settings, data directory, lock file, shared memory,
//! then sleep until a signal says reload or stop (PostgreSQL's `PostmasterMain` up to the point
//! where it would open sockets and start children).

use crate::cli::Options;
use crate::datadir::{self, line, status, DataDirError, LockFile, LockFileInfo};
use crate::elog::{elog, Severity};
use crate::guc::{GucError, Settings, Source, Value};
use crate::signals::{self, PmSignal};
use pgipc_ipci::{DsmType, IpcConfig, IpciError};
use pgipc_shmem::{HugePages, HugePagesStatus, Interlock, SharedMemoryType, ShmemError};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the postmaster could not start (each printed as one FATAL line plus PostgreSQL's
/// DETAIL/HINT lines).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
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
    pub fn detail(&self) -> Option<String> {
        match self {
            StartupError::DataDir(e) => e.detail(),
            _ => None,
        }
    }

    /// The HINT line, if PostgreSQL has one for this error.
    pub fn hint(&self) -> Option<String> {
        match self {
            StartupError::Guc(e) => e.hint().map(str::to_owned),
            StartupError::DataDir(e) => e.hint(),
            StartupError::Ipci(IpciError::Shmem(e)) => e.hint(),
            _ => None,
        }
    }
}

/// Loads settings: defaults, then `postgresql.conf` in `data_dir`, then the command line.
pub fn load_settings(data_dir: &Path, opts: &Options) -> Result<Settings, StartupError> {
    let mut s = Settings::new();
    s.apply_file(&data_dir.join(datadir::CONFIG_FILE))?;
    for (name, value) in &opts.settings {
        s.set(name, value, Source::CommandLine)?;
    }
    s.set_computed(
        "data_directory",
        Value::Text(data_dir.display().to_string()),
    );
    Ok(s)
}

/// Turns settings into the numbers that size shared memory.
pub fn ipc_config(s: &Settings, data_dir: Option<&Path>) -> IpcConfig {
    let u32_of = |n: &str| u32::try_from(s.int(n)).unwrap_or(u32::MAX);
    IpcConfig {
        max_connections: u32_of("max_connections"),
        autovacuum_worker_slots: u32_of("autovacuum_worker_slots"),
        max_worker_processes: u32_of("max_worker_processes"),
        max_wal_senders: u32_of("max_wal_senders"),
        max_prepared_transactions: u32_of("max_prepared_transactions"),
        shared_memory_type: match s.text("shared_memory_type") {
            "memfd" => SharedMemoryType::Memfd,
            _ => SharedMemoryType::Mmap,
        },
        dynamic_shared_memory_type: match s.text("dynamic_shared_memory_type") {
            "sysv" => DsmType::Sysv,
            "mmap" => DsmType::Mmap,
            _ => DsmType::Posix,
        },
        huge_pages: match s.text("huge_pages") {
            "on" => HugePages::On,
            "off" => HugePages::Off,
            _ => HugePages::Try,
        },
        huge_page_size: (s.int("huge_page_size") as usize).saturating_mul(1024),
        min_dynamic_shared_memory: (s.int("min_dynamic_shared_memory") as usize)
            .saturating_mul(1024 * 1024),
        data_dir: data_dir.map(Path::to_path_buf),
    }
}

/// Computes the runtime settings (`shared_memory_size`, ...), PostgreSQL's
/// `InitializeShmemGUCs`.
pub fn compute_runtime_settings(s: &mut Settings, cfg: &IpcConfig) -> Result<(), StartupError> {
    let g = pgipc_ipci::shmem_gucs(cfg, &pgipc_ipci::Addins::new())?;
    s.set_computed(
        "shared_memory_size",
        Value::Int(g.shared_memory_size_mb as i64),
    );
    s.set_computed(
        "shared_memory_size_in_huge_pages",
        Value::Int(g.shared_memory_size_in_huge_pages),
    );
    s.set_computed(
        "num_os_semaphores",
        Value::Int(i64::from(g.num_os_semaphores)),
    );
    Ok(())
}

/// The `--describe-shmem` table: one row per `pg_shmem_allocations` row.
pub fn describe_shmem(cfg: &IpcConfig) -> Result<String, StartupError> {
    let cfg = IpcConfig {
        data_dir: None,
        ..cfg.clone()
    };
    let state = pgipc_ipci::create_shared_memory_and_semaphores(&cfg, &pgipc_ipci::Addins::new())?;
    let rows = state.shmem.allocations().map_err(IpciError::from)?;
    let mut out = format!(
        "{:<40} {:>12} {:>12} {:>14}\n",
        "name", "off", "size", "allocated_size"
    );
    for r in rows {
        let off = r
            .off
            .map(|o| o.to_string())
            .unwrap_or_else(|| "NULL".into());
        out.push_str(&format!(
            "{:<40} {:>12} {:>12} {:>14}\n",
            r.name.to_string(),
            off,
            r.size,
            r.allocated_size
        ));
    }
    out.push_str(&format!("total size {} bytes\n", state.shmem.total_size()));
    state.shutdown()?;
    Ok(out)
}

/// Runs the server until a shutdown signal; returns the process exit code.
pub fn run(data_dir: &Path, mut settings: Settings) -> Result<i32, StartupError> {
    signals::install().map_err(StartupError::Signals)?;
    let cfg = ipc_config(&settings, Some(data_dir));
    compute_runtime_settings(&mut settings, &cfg)?;

    let start_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let socket_dir = settings
        .text("unix_socket_directories")
        .split(',')
        .next()
        .unwrap_or("")
        .trim();
    let listen = settings
        .text("listen_addresses")
        .split(',')
        .next()
        .unwrap_or("")
        .trim();
    let info = LockFileInfo {
        data_dir,
        start_time,
        port: settings.int("port"),
        socket_dir,
        listen_addr: listen,
    };
    let mut lock = LockFile::create(&info, |shmid| Interlock::is_in_use(data_dir, shmid))?;
    let lock_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StartupError::LockFileWrite { path, source }
    };

    elog(
        Severity::Log,
        &format_args!(
            "starting pgipc {}, compatible with PostgreSQL 18.6, on {}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        ),
    );
    let state =
        match pgipc_ipci::create_shared_memory_and_semaphores(&cfg, &pgipc_ipci::Addins::new()) {
            Ok(s) => s,
            Err(e) => {
                let _ = lock.remove();
                return Err(e.into());
            }
        };
    for note in &state.report.notes {
        elog(Severity::Log, note);
    }
    let hp = match state.shmem.huge_pages_status() {
        HugePagesStatus::On => "on",
        HugePagesStatus::Off => "off",
        HugePagesStatus::Unknown => "unknown",
    };
    settings.set_computed("huge_pages_status", Value::Text(hp.to_owned()));
    if let Some(i) = &state.interlock {
        if let Err(e) = lock.set_line(line::SHMEM_KEY, &i.lock_file_line()) {
            let path = lock.path().to_path_buf();
            let _ = state.shutdown();
            let _ = lock.remove();
            return Err(lock_err(&path)(e));
        }
    }
    let path = lock.path().to_path_buf();
    lock.set_line(line::PM_STATUS, status::READY)
        .map_err(lock_err(&path))?;
    elog(
        Severity::Log,
        &"database system is ready to accept connections",
    );

    let conf = data_dir.join(datadir::CONFIG_FILE);
    let mode = 'outer: loop {
        signals::wait();
        for sig in signals::take() {
            match sig {
                PmSignal::Reload => {
                    elog(
                        Severity::Log,
                        &"received SIGHUP, reloading configuration files",
                    );
                    match settings.reload(&conf) {
                        Ok(notes) => notes.iter().for_each(|n| elog(Severity::Log, n)),
                        Err(e) => elog(
                            Severity::Log,
                            &format_args!("configuration file \"{}\" contains errors; no changes were applied: {e}", conf.display()),
                        ),
                    }
                }
                other => break 'outer other,
            }
        }
    };
    let what = match mode {
        PmSignal::SmartShutdown => "smart",
        PmSignal::FastShutdown => "fast",
        _ => "immediate",
    };
    elog(
        Severity::Log,
        &format_args!("received {what} shutdown request"),
    );
    let _ = lock.set_line(line::PM_STATUS, status::STOPPING);
    if let Err(e) = state.shutdown() {
        elog(
            Severity::Log,
            &format_args!("could not remove shared memory: {e}"),
        );
    }
    if let Err(e) = lock.remove() {
        elog(
            Severity::Log,
            &format_args!("could not remove file \"{}\": {e}", path.display()),
        );
    }
    elog(Severity::Log, &"database system is shut down");
    Ok(0)
}

/// Whether an error is one of the shared-memory interlock refusals.
pub fn is_interlock_refusal(e: &StartupError) -> bool {
    matches!(
        e,
        StartupError::Ipci(IpciError::Shmem(ShmemError::InUse { .. }))
    )
}
