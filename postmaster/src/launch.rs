//! Starting a child process (PostgreSQL's launch_backend.c): by `fork()` (the default), or by
//! fork+exec of this same binary (`exec_backend = on`, PostgreSQL's `EXEC_BACKEND` build), in
//! which case the child finds everything again from its command line, its environment and the
//! inherited descriptors:
//!
//! ```text
//!  postmaster --forkchild=<kind>:<slot> -D <dir> <the postmaster's own -c options>
//!    PGIPC_SHMEM_FD    the main segment's memfd (exec mode forces shared_memory_type = memfd)
//!    PGIPC_SHMID       the SysV interlock id, re-attached so the kernel counts the child
//!    PGIPC_CLIENT_FD   the accepted client socket (backends)
//!    PGIPC_CAC         whether the connection may be served (dead-end children refuse it)
//!    PGIPC_BGWORKER    the background worker's registration (bgworkers)
//!    PGIPC_SETTINGS    the postmaster's current settings (they win over postgresql.conf,
//!                      which may have been edited since the last reload)
//!    PGIPC_POSTMASTER_DEATH_FD / PGIPC_POSTMASTER_PID   the postmaster-death pipe
//! ```
//!
//! In both modes the child, before running its main function, does what PostgreSQL's
//! `InitPostmasterChild` does: closes the postmaster's listen sockets and its end of the death
//! pipe, forgets the parent's exit callbacks and wait sets, resets the signal handlers (SIGQUIT
//! = immediate `_exit(2)`), starts its own session so that a signal to its group reaches
//! anything it starts, and arms postmaster-death detection.

use crate::child::{backend_type_desc, backend_type_from_word, backend_type_word, BackendType};
use crate::child_env::{
    cac_from_word, cac_word, ChildEnv, BGWORKER_ENV, CAC_ENV, CLIENT_FD_ENV, SETTINGS_ENV,
    SHMEM_FD_ENV, SHMID_ENV, START_TIME_ENV,
};
use crate::elog::{elog, Severity};
use crate::signals;
use pgipc_bgworker::BgWorkerSpec;
use pgipc_guc::{Settings, Snapshot};
use pgipc_tcop::CanAcceptConnections;
use pgipc_waiteventset::postmaster_death::{PostmasterDeathPipe, PostmasterDeathWatch};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::rc::Rc;

/// Launches children; owns what a child must close.
#[derive(Debug)]
pub(crate) struct Launcher {
    exec: bool,
    /// The listen sockets' numbers (closed in forked children).
    pub(crate) listen_fds: Vec<RawFd>,
    /// The idle spare backends (their channels are closed in forked children).
    pub(crate) spares: crate::spare::Spares,
    death_pipe: Option<PostmasterDeathPipe>,
    args: Vec<OsString>,
}

impl Launcher {
    /// A launcher; `args` are the postmaster's own arguments (exec mode repeats them).
    pub(crate) fn new(exec: bool, death_pipe: PostmasterDeathPipe, args: Vec<OsString>) -> Self {
        Launcher {
            exec,
            listen_fds: Vec::new(),
            spares: crate::spare::Spares::default(),
            death_pipe: Some(death_pipe),
            args,
        }
    }

    /// Whether children are forked (not fork+exec'd).
    pub(crate) fn forks(&self) -> bool {
        !self.exec
    }

    /// Starts a child with `env` (prepared by the postmaster; a forked child gets it as is,
    /// an exec'd one rebuilds it from its command line and environment); in the parent returns
    /// its pid. On failure returns the error and gives the client socket back (to tell the
    /// client). `interlock_shmid` is passed to exec'd children.
    pub(crate) fn launch(
        &mut self,
        env: ChildEnv,
        interlock_shmid: Option<i32>,
        client: Option<OwnedFd>,
        cac: CanAcceptConnections,
    ) -> Result<i32, (std::io::Error, Option<OwnedFd>)> {
        if self.exec {
            self.launch_exec(&env, interlock_shmid, client, cac)
        } else {
            self.launch_fork(env, client, cac)
        }
    }

    /// Forks a spare backend (`env.kind` is `Backend`, see [`crate::spare`]); in the parent
    /// returns its pid and the postmaster's end of its channel. Fork mode only.
    pub(crate) fn launch_spare(&mut self, env: ChildEnv) -> std::io::Result<(i32, OwnedFd)> {
        let (ours, theirs) = crate::spare::channel()?;
        let ours_raw = ours.as_raw_fd();
        let mut theirs = Some(theirs);
        let pid = self.fork_child(|watch| {
            // The postmaster's end must not stay open here too: the spare learns that it is
            // retired from end of file on its own end.
            // SAFETY: our copy of the postmaster's end, closed once (this child never returns
            // to the code that owns `ours`: it exits from fork_child).
            unsafe { libc::close(ours_raw) };
            match theirs.take() {
                Some(channel) => spare_start(env, watch, channel),
                None => 1,
            }
        })?;
        // The child's end stays open in the child only.
        drop(theirs);
        Ok((pid, ours))
    }

    fn launch_fork(
        &mut self,
        env: ChildEnv,
        mut client: Option<OwnedFd>,
        cac: CanAcceptConnections,
    ) -> Result<i32, (std::io::Error, Option<OwnedFd>)> {
        match self.fork_child(|watch| child_start(env, watch, client.take(), cac)) {
            // The child has its own copy of the client socket; ours closes on drop.
            Ok(pid) => Ok(pid),
            Err(e) => Err((e, client)),
        }
    }

    /// Forks with every signal blocked (the parent restores its mask; the child unblocks once
    /// its handlers exist). The child closes its copies of the listen sockets, takes the
    /// death pipe's child end, runs `body` and exits with the code it returns; the parent gets
    /// the child's pid.
    fn fork_child(
        &mut self,
        body: impl FnOnce(Option<PostmasterDeathWatch>) -> i32,
    ) -> std::io::Result<i32> {
        let old_mask = signals::block_all()?;
        // SAFETY: the postmaster is single-threaded (it never starts threads), so the child
        // is a complete copy and may use the heap and any library freely.
        let forked = unsafe { nix::unistd::fork() };
        if !matches!(forked, Ok(nix::unistd::ForkResult::Child)) {
            let _ = signals::restore_mask(&old_mask);
        }
        match forked? {
            nix::unistd::ForkResult::Parent { child } => Ok(child.as_raw()),
            nix::unistd::ForkResult::Child => {
                for fd in self
                    .listen_fds
                    .iter()
                    .copied()
                    .chain(self.spares.channel_fds())
                {
                    // SAFETY: closing our copies of the listen sockets and of the idle spares'
                    // channels (a copy here would keep a retired spare from seeing end of
                    // file); nothing in the child uses them, the parent's stay open, and the
                    // child never returns to the code that owns them (it exits below).
                    unsafe { libc::close(fd) };
                }
                let watch = self
                    .death_pipe
                    .take()
                    .map(PostmasterDeathPipe::into_child_watch);
                pgipc_ipc::proc_exit(body(watch))
            }
        }
    }

    fn launch_exec(
        &mut self,
        env: &ChildEnv,
        interlock_shmid: Option<i32>,
        client: Option<OwnedFd>,
        cac: CanAcceptConnections,
    ) -> Result<i32, (std::io::Error, Option<OwnedFd>)> {
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => return Err((e, client)),
        };
        let mut cmd = Command::new(exe);
        cmd.arg(format!(
            "--forkchild={}:{}",
            backend_type_word(env.kind),
            env.slot
        ))
        .args(&self.args)
        .env(CAC_ENV, cac_word(cac))
        .env(SETTINGS_ENV, snapshot_text(&env.settings))
        .env(
            START_TIME_ENV,
            crate::child_env::pg_start_time().to_string(),
        );
        let mut inherit: Vec<RawFd> = Vec::new();
        if let Some(fd) = env.shmem.memfd() {
            let raw = fd.as_raw_fd();
            cmd.env(SHMEM_FD_ENV, raw.to_string());
            inherit.push(raw);
        }
        if let Some(id) = interlock_shmid {
            cmd.env(SHMID_ENV, id.to_string());
        }
        if let Some(c) = &client {
            let raw = c.as_raw_fd();
            cmd.env(CLIENT_FD_ENV, raw.to_string());
            inherit.push(raw);
        }
        if let Some(w) = &env.worker {
            cmd.env(BGWORKER_ENV, w.encode());
        }
        if let Some(p) = &self.death_pipe {
            p.configure_child(&mut cmd);
        }
        // SAFETY: only fcntl and sigprocmask (async-signal-safe) run between fork and exec;
        // no allocation. The exec'd child starts with every signal blocked (std resets the
        // mask before running this) and unblocks once its handlers exist.
        unsafe {
            cmd.pre_exec(move || {
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut all);
                libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
                for fd in &inherit {
                    let flags = libc::fcntl(*fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(*fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        match cmd.spawn() {
            // The std Child handle is dropped without waiting: the reaper collects the exit.
            Ok(child) => Ok(child.id() as i32),
            Err(e) => Err((e, client)),
        }
    }
}

/// The settings as an exec'd child receives them in [`SETTINGS_ENV`].
fn snapshot_text(settings: &Settings) -> String {
    // A Snapshot holds strings, numbers and enums only: serialising it cannot fail.
    serde_json::to_string(&settings.snapshot()).unwrap_or_default()
}

/// The common start of every child, then its main function; returns the exit code.
fn child_start(
    mut env: ChildEnv,
    watch: Option<PostmasterDeathWatch>,
    client: Option<OwnedFd>,
    cac: CanAcceptConnections,
) -> i32 {
    if let Err(code) = common_start(&env, watch) {
        return code;
    }
    match env.kind {
        BackendType::Backend | BackendType::DeadEndBackend => match client {
            Some(c) => crate::backend::backend_main(&mut env, c, cac),
            None => 1,
        },
        BackendType::BgWorker => crate::bgworker::bgworker_main(&mut env),
        BackendType::Startup => crate::startup::startup_main(&mut env),
        BackendType::Checkpointer => crate::checkpointer::checkpointer_main(&mut env),
        BackendType::BgWriter => crate::bgwriter::bgwriter_main(&mut env),
        BackendType::WalWriter => crate::walwriter::walwriter_main(&mut env),
        BackendType::AutovacLauncher => crate::autovacuum::autovac_launcher_main(&mut env),
        BackendType::IoWorker => crate::ioworker::io_worker_main(&mut env),
        other => {
            elog(
                Severity::Fatal,
                &format_args!("{} is not an auxiliary process", backend_type_desc(other)),
            );
            1
        }
    }
}

/// A spare backend: the common start, then a wait for the client socket the postmaster
/// hands over, then the session (see [`crate::spare`]). Returns the exit code.
fn spare_start(mut env: ChildEnv, watch: Option<PostmasterDeathWatch>, channel: OwnedFd) -> i32 {
    if let Err(code) = common_start(&env, watch) {
        return code;
    }
    env.init_ps_display("spare backend");
    // While no client waits: run the statement parser once, so that its code pages are
    // mapped and the heap pages it writes are this process's own before the first statement
    // (the postmaster did the same at start, but a fork does not carry code mappings over).
    pgipc_tcop::prewarm_for_backends(&env.settings);
    match crate::spare::wait_for_client(channel) {
        Ok(client) => crate::backend::backend_main(&mut env, client, CanAcceptConnections::Ok),
        Err(e) => crate::spare::report_end(&e),
    }
}

/// What every child does first (PostgreSQL's `InitPostmasterChild`); `Err` holds the exit
/// code of a child that cannot go on.
fn common_start(env: &ChildEnv, watch: Option<PostmasterDeathWatch>) -> Result<(), i32> {
    pgipc_ipc::on_exit_reset();
    pgipc_waiteventset::forget_wait_sets_after_fork();
    // Children see the points attached in shared memory (the postmaster never does).
    pgipc_injection_point::attach_shared(&env.shmem);
    if let Err(e) = signals::reset_for_child() {
        elog(
            Severity::Fatal,
            &format_args!("could not set up signal handling: {e}"),
        );
        return Err(1);
    }
    // Our own session: signals the postmaster sends to the group reach what we start.
    let _ = nix::unistd::setsid();
    if let Some(w) = watch {
        if w.install().is_err() {
            elog(
                Severity::Fatal,
                &"could not install the postmaster-death watch",
            );
            return Err(1);
        }
    }
    if let Err(e) = pgipc_waiteventset::initialize_wait_event_support() {
        elog(Severity::Fatal, &format_args!("{e}"));
        return Err(1);
    }
    set_process_name(env.kind);
    pgipc_elog::set_backend_type(backend_type_desc(env.kind));
    // A process-local latch until the child has a PGPROC.
    let latch: &'static pgipc_latch::Latch = Box::leak(Box::new(pgipc_latch::Latch::new()));
    if let Ok(owned) = pgipc_latch::OwnedLatch::own(latch) {
        std::mem::forget(owned);
        pgipc_latch::install_my_latch(latch);
    }
    Ok(())
}

/// Names the thread after the child's kind (what `ps -o comm` and `top` show), PostgreSQL's
/// process title in the 15 bytes Linux keeps.
fn set_process_name(kind: BackendType) {
    let name: &[u8] = match kind {
        BackendType::Backend => b"pgipc: backend\0",
        BackendType::DeadEndBackend => b"pgipc: dead-end\0",
        BackendType::Checkpointer => b"pgipc: ckpt\0",
        BackendType::BgWriter => b"pgipc: bgwriter\0",
        BackendType::WalWriter => b"pgipc: walwrite\0",
        BackendType::AutovacLauncher => b"pgipc: autovac\0",
        BackendType::IoWorker => b"pgipc: io\0",
        BackendType::Startup => b"pgipc: startup\0",
        BackendType::BgWorker => b"pgipc: bgworker\0",
        _ => b"pgipc: child\0",
    };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes, which `name` is.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Why an exec'd child has no settings snapshot.
#[derive(Debug, thiserror::Error)]
enum SnapshotEnvError {
    /// [`SETTINGS_ENV`] is not set (or not text).
    #[error(transparent)]
    Missing(#[from] std::env::VarError),
    /// It does not parse.
    #[error(transparent)]
    Parse(#[from] serde_json::Error),
}

/// The exec'd child's entry: `args` is everything after `--forkchild=<kind>:<slot>`.
/// Returns the exit code.
pub(crate) fn exec_child_main(spec: &str, opts: &crate::cli::Options) -> i32 {
    let Some((word, slot)) = spec.split_once(':') else {
        eprintln!("postmaster: invalid --forkchild argument \"{spec}\"");
        return 1;
    };
    let (Some(kind), Ok(slot)) = (backend_type_from_word(word), slot.parse::<u32>()) else {
        eprintln!("postmaster: invalid --forkchild argument \"{spec}\"");
        return 1;
    };
    let Some(dir) = opts.data_dir.clone() else {
        eprintln!("postmaster: --forkchild needs -D");
        return 1;
    };
    // The postmaster's values exactly (PostgreSQL's read_nondefault_variables): the file may
    // have been edited since the last reload, and postmaster-context settings must match the
    // shared memory's layout.
    let settings = match std::env::var(SETTINGS_ENV)
        .map_err(SnapshotEnvError::from)
        .and_then(|t| Ok(serde_json::from_str::<Snapshot>(&t)?))
    {
        Ok(snap) => {
            let (settings, skipped) = Settings::from_snapshot(&snap);
            for name in skipped {
                elog(
                    Severity::Log,
                    &format_args!("setting \"{name}\" of the postmaster's snapshot was skipped"),
                );
            }
            pgipc_elog::configure(&settings);
            settings
        }
        Err(e) => {
            elog(
                Severity::Fatal,
                &format_args!("exec'd child started without the postmaster's settings: {e}"),
            );
            return 1;
        }
    };
    let config = crate::shmem_setup::ipc_config(&settings, Some(&dir));
    let env_fd = |name: &str| -> Option<RawFd> { std::env::var(name).ok()?.parse().ok() };
    let Some(memfd) = env_fd(SHMEM_FD_ENV) else {
        elog(
            Severity::Fatal,
            &"exec'd child started without the shared memory descriptor",
        );
        return 1;
    };
    // SAFETY: the postmaster passed this descriptor number for us to own; nothing else in
    // this fresh process refers to it.
    let memfd = unsafe { OwnedFd::from_raw_fd(memfd) };
    let shmid = env_fd(SHMID_ENV);
    let addins = crate::shmem_setup::addins_for(&config);
    let ipc = match pgipc_ipci::attach(&config, &addins, memfd, shmid) {
        Ok(s) => s,
        Err(e) => {
            elog(
                Severity::Fatal,
                &format_args!("could not re-attach to shared memory: {e}"),
            );
            return 1;
        }
    };
    let client = env_fd(CLIENT_FD_ENV).map(|fd| {
        // SAFETY: as for the memfd: passed to us to own.
        unsafe { OwnedFd::from_raw_fd(fd) }
    });
    if let Some(t) = std::env::var(START_TIME_ENV)
        .ok()
        .and_then(|t| t.parse().ok())
    {
        crate::child_env::set_pg_start_time(t);
    }
    let cac = std::env::var(CAC_ENV)
        .ok()
        .and_then(|w| cac_from_word(&w))
        .unwrap_or(CanAcceptConnections::Ok);
    let worker = std::env::var(BGWORKER_ENV)
        .ok()
        .and_then(|s| BgWorkerSpec::decode(&s));
    let watch = match PostmasterDeathWatch::from_env() {
        Ok(w) => w,
        Err(e) => {
            elog(Severity::Fatal, &format_args!("{e}"));
            return 1;
        }
    };
    let env = ChildEnv {
        kind,
        slot,
        data_dir: dir,
        settings: Rc::new(settings),
        config,
        shmem: ipc.shmem.clone(),
        ipc: Some(ipc),
        worker,
    };
    child_start(env, watch, client, cac)
}
