//! The postmaster's life in this first cut: settings, data directory, lock file, shared memory,
//! then sleep until a signal says reload or stop (PostgreSQL's `PostmasterMain` up to the point
//! where it would open sockets and start children).

use crate::cli::Options;
use crate::datadir::{self, line, DataDirError, LockFile, LockFileInfo};
use crate::elog::{elog, Severity};
use crate::signals;
use pgipc_guc::{split_guc_list, GucError, Settings, Source};
use pgipc_ipci::{DsmImplType, IpcConfig, IpciError};
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_shmem::{HugePages, HugePagesStatus, Interlock, SharedMemoryType, ShmemError};
use pgipc_waiteventset::postmaster_death::PostmasterDeathPipe;
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
    /// A start-up check failed (the message says which).
    #[error("{0}")]
    Sanity(String),
    /// Shared state could not be set up.
    #[error("{0}")]
    Shmem(String),
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

/// Loads settings as PostgreSQL's `PostmasterMain` does: defaults < environment (`PGPORT`,
/// ...) < `postgresql.conf` in `data_dir` < the command line.
pub fn load_settings(data_dir: &Path, opts: &Options) -> Result<Settings, StartupError> {
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

/// The configuration file the settings were read from (`config_file`).
pub fn config_file(s: &Settings) -> PathBuf {
    PathBuf::from(s.text("config_file"))
}

/// A list setting's elements (PostgreSQL's `SplitGUCList`), or PostgreSQL's error for a
/// malformed list.
pub fn guc_list(s: &Settings, name: &'static str) -> Result<Vec<String>, StartupError> {
    split_guc_list(s.text(name))
        .ok_or_else(|| StartupError::Sanity(format!("invalid list syntax in parameter \"{name}\"")))
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
            "sysv" => DsmImplType::Sysv,
            "mmap" => DsmImplType::Mmap,
            _ => DsmImplType::Posix,
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
    let g = pgipc_ipci::shmem_gucs(cfg, &addins_for(cfg))?;
    s.set_computed("shared_memory_size", &g.shared_memory_size_mb.to_string())?;
    s.set_computed(
        "shared_memory_size_in_huge_pages",
        &g.shared_memory_size_in_huge_pages.to_string(),
    )?;
    s.set_computed("num_os_semaphores", &g.num_os_semaphores.to_string())?;
    Ok(())
}

/// What `--describe-shmem` prints: the layout of a segment made for `cfg`, one row per
/// `pg_shmem_allocations` row (print it with `to_table` or `to_json`).
pub fn describe_shmem(cfg: &IpcConfig) -> Result<pgipc_ipci::ShmemDescription, StartupError> {
    let cfg = IpcConfig {
        data_dir: None,
        ..cfg.clone()
    };
    let state = pgipc_ipci::create_shared_memory_and_semaphores(&cfg, &addins_for(&cfg))?;
    let d = state.describe()?;
    state.shutdown()?;
    Ok(d)
}

/// The postmaster's own shared structures (the auxiliary processes' counters, which
/// PostgreSQL does not have), registered like an add-in so that they are created after the
/// core subsystems.
#[derive(Debug)]
pub struct PostmasterShmem;

impl pgipc_ipci::Addin for PostmasterShmem {
    fn name(&self) -> &str {
        "postmaster"
    }

    fn request_shmem(&self, requests: &mut pgipc_ipci::ShmemRequests) {
        requests.request_addin_shmem_space(std::mem::size_of::<crate::aux::AuxCounters>() + 256);
    }

    fn startup(
        &self,
        shmem: &pgipc_shmem::Shmem,
        _tranches: &pgipc_ipci::NamedTranches,
    ) -> Result<(), pgipc_ipci::BoxError> {
        crate::aux::aux_counters(shmem)?;
        Ok(())
    }
}

/// The add-ins of this server (the postmaster's own structures).
pub fn addins_for(_cfg: &IpcConfig) -> pgipc_ipci::Addins {
    let mut a = pgipc_ipci::Addins::new();
    a.register(Box::new(PostmasterShmem));
    a
}

/// How many child slots PMSignal tracks (PostgreSQL's `MaxLivePostmasterChildren`; the same
/// total as the postmaster's pools).
pub fn max_live_children(cfg: &IpcConfig) -> usize {
    cfg.max_live_postmaster_children().unwrap_or(0) as usize
}

/// ProcSignal's shared state.
pub fn procsignal(
    shmem: &pgipc_shmem::Shmem,
    cfg: &IpcConfig,
) -> Result<pgipc_procsignal::ProcSignal, String> {
    let n = cfg.num_proc_signal_slots().map_err(|e| e.to_string())? as usize;
    pgipc_procsignal::shmem_init(shmem, n).map_err(|e| e.to_string())
}

/// One generation of shared memory as the postmaster holds it: the segment (with its
/// interlock and DSM control segment) and every view the postmaster keeps into it.
///
/// The postmaster's other state is process-local (its latch, child list, slot pools, the
/// background-worker list) or lives only in the children (ProcSignal, PGPROC, auxiliary
/// counters, DSM mappings: each child attaches its own). So this struct is the only place
/// that refers to a segment: it is made as a whole by [`create_shared_state`] and discarded
/// as a whole by [`PmShmem::shutdown`], and the crash reset swaps one generation for the
/// next. The fields are private so no view can be copied out and outlive its generation.
#[derive(Debug)]
pub struct PmShmem {
    ipc: pgipc_ipci::IpcState,
    pmsignal: pgipc_pmsignal::PMSignal,
    bgworkers: crate::bgworker::BgWorkerShared,
}

impl PmShmem {
    /// The segment, its interlock and what creating it found.
    pub fn ipc(&self) -> &pgipc_ipci::IpcState {
        &self.ipc
    }

    /// "PMSignalState" in this generation.
    pub fn pmsignal(&self) -> &pgipc_pmsignal::PMSignal {
        &self.pmsignal
    }

    /// "Background Worker Data" in this generation (ipci's view).
    pub fn bgworkers(&self) -> &crate::bgworker::BgWorkerShared {
        &self.bgworkers
    }

    /// Discards this generation: the views first, then the segment and its DSM segments
    /// (unmapped once the last view is gone).
    pub fn shutdown(self) -> Result<(), IpciError> {
        let PmShmem {
            ipc,
            pmsignal,
            bgworkers,
        } = self;
        drop(pmsignal);
        drop(bgworkers);
        ipc.shutdown()
    }
}

/// Creates shared memory, finds the postmaster's views in it, records the postmaster's pid
/// in PMSignal and publishes every registered background worker into the new
/// "Background Worker Data" (start-up and every crash restart).
pub fn create_shared_state(
    cfg: &IpcConfig,
    workers: &mut crate::bgworker::BgWorkerList,
) -> Result<PmShmem, StartupError> {
    let state = pgipc_ipci::create_shared_memory_and_semaphores(cfg, &addins_for(cfg))?;
    for note in &state.report.notes {
        elog(Severity::Log, note);
    }
    let views = pgipc_pmsignal::shmem_init(&state.shmem, max_live_children(cfg))
        .map_err(|e| e.to_string())
        .and_then(|p| state.bgworkers().map(|b| (p, b)).map_err(|e| e.to_string()));
    let (pmsignal, bgworkers) = match views {
        Ok(v) => v,
        Err(e) => {
            let _ = state.shutdown();
            return Err(StartupError::Shmem(e));
        }
    };
    pmsignal.set_postmaster_pid(std::process::id() as i32);
    workers.publish(&bgworkers);
    Ok(PmShmem {
        ipc: state,
        pmsignal,
        bgworkers,
    })
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
pub fn run(data_dir: &Path, mut settings: Settings, opts: &Options) -> Result<i32, StartupError> {
    // The postmaster's latch, set by its signal handlers.
    let latch: &'static Latch = Box::leak(Box::new(Latch::new()));
    let owned = OwnedLatch::own(latch).map_err(|e| StartupError::Shmem(e.to_string()))?;
    pgipc_latch::install_my_latch(latch);
    pgipc_waiteventset::initialize_wait_event_support()
        .map_err(|e| StartupError::Shmem(e.to_string()))?;
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
        return Err(StartupError::Sanity(format!(
            "superuser_reserved_connections ({su}) plus reserved_connections ({res}) must be less than max_connections ({maxc})"
        )));
    }
    let start_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
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
        return Err(StartupError::Sanity(
            "could not generate random cancel key: the kernel's random source (getrandom) failed"
                .into(),
        ));
    }
    let lock = LockFile::create(&info, |shmid| Interlock::is_in_use(data_dir, shmid))?;
    // Only the lock holder reads or creates pg_control: postmasters started at the same instant
    // on a new directory would otherwise write it together.
    if let Err(e) = crate::controlfile::ControlFile::check_or_create(data_dir) {
        let _ = lock.remove();
        return Err(StartupError::Shmem(e.to_string()));
    }
    write_opts_file(data_dir, opts);

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
                return Err(StartupError::Sanity(format!(
                    "could not access file \"{lib}\": No such file or directory"
                )));
            }
        }
    }

    let pools = crate::child::ChildPools::new(crate::server::Postmaster::pool_sizes(&cfg));
    let shmem = match create_shared_state(&cfg, &mut workers) {
        Ok(s) => s,
        Err(e) => {
            let _ = lock.remove();
            return Err(e);
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
            return Err(StartupError::Shmem(e.to_string()));
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
            return Err(StartupError::Sanity(e));
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

/// Whether an error is one of the shared-memory interlock refusals.
pub fn is_interlock_refusal(e: &StartupError) -> bool {
    matches!(
        e,
        StartupError::Ipci(IpciError::Shmem(ShmemError::InUse { .. }))
    )
}
