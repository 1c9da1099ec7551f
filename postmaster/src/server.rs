//! The running postmaster: ServerLoop, the pmState machine, shutdown modes, the reaper and
//! crash restart (PostgreSQL's postmaster.c from `ServerLoop` on).
//!
//! ```text
//!            ┌───────────── SIGHUP/SIGTERM/SIGINT/SIGQUIT/SIGUSR1/SIGCHLD ─────────────┐
//!            │ handlers: set a pending bit + set the postmaster's latch                 │
//!            ▼                                                                          │
//!  ServerLoop: wait(latch, listen sockets, timeout) ─► reset latch ─► shutdown request ─►
//!     reload ─► reap children ─► pmsignals ─► accept: hand the socket to a spare backend, or
//!     fork a backend (or a dead-end one) ─► launch missing background processes ─► fork
//!     spare backends up to `spare_backends` ─► SIGKILL stragglers after 5 s ─► state machine
//!
//!  INIT ─► STARTUP ─(startup exits 0)─► RUN ─(shutdown / crash)─► STOP_BACKENDS ─► WAIT_BACKENDS
//!     ─► WAIT_XLOG_SHUTDOWN (checkpointer: shutdown checkpoint) ─► WAIT_XLOG_ARCHIVAL
//!     ─► WAIT_IO_WORKERS ─► WAIT_CHECKPOINTER ─► WAIT_DEAD_END ─► NO_CHILDREN ─► exit,
//!        or (after a crash) reinitialise shared memory and go back to STARTUP
//! ```
//!
//! The postmaster never takes a lock in shared memory: it reads PMSignal's flags and the
//! background-worker slots with atomics only, so a child that dies holding a lock cannot wedge
//! it.

use crate::bgworker::BgWorkerList;
use crate::child::{backend_type_desc, BackendType, ChildList, ChildPools, PmChild, PoolSizes};
use crate::datadir::{line, status, LockFile};
use crate::elog::{elog, Severity};
use crate::launch::Launcher;
use crate::pmstate::{PmState, Shutdown};
use crate::shmem_setup::{create_shared_state, PmShmem, ShmemSetupError};
use crate::signals::{self, Pending};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use pgipc_guc::{Context, Settings};
use pgipc_ipci::IpcConfig;
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_pmsignal::{PMSignal, PMSignalReason};
use pgipc_tcop::CanAcceptConnections;
use pgipc_waiteventset::{WaitEvent, WaitEventSet, WaitEvents};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// After this long, children that ignore SIGQUIT get SIGKILL (`SIGKILL_CHILDREN_AFTER_SECS`).
pub(crate) const SIGKILL_CHILDREN_AFTER: Duration = Duration::from_secs(5);

/// Why the crash reset could not make a new generation of shared memory (the postmaster then
/// exits).
#[derive(Debug, thiserror::Error)]
enum ResetError {
    /// The `postmaster-reset` injection point raised an error.
    #[error(transparent)]
    InjectionPoint(#[from] pgipc_injection_point::InjectionError),
    /// The old generation could not be removed.
    #[error(transparent)]
    Ipci(#[from] pgipc_ipci::IpciError),
    /// The new generation could not be made.
    #[error(transparent)]
    Setup(#[from] ShmemSetupError),
}

/// What the startup process is doing (PostgreSQL's `StartupStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartupStatus {
    NotRunning,
    Running,
    Signaled,
    Crashed,
}

/// The postmaster's state between loop iterations.
#[derive(Debug)]
pub(crate) struct Postmaster {
    /// The data directory (absolute).
    pub(crate) data_dir: PathBuf,
    /// Current settings (shared with the `ChildEnv` of each launch, so that a launch copies
    /// no settings; a reload writes its own copy if one is still shared).
    pub(crate) settings: Rc<Settings>,
    /// The current generation of shared memory and every view into it (`None` only while a
    /// crash reset swaps generations, and after exit clean-up).
    shmem: Option<PmShmem>,
    /// The configuration shared memory was made for.
    pub(crate) config: IpcConfig,
    /// `postmaster.pid`.
    pub(crate) lock: Option<LockFile>,
    /// Child launching (fork or exec) and what children must close.
    pub(crate) launcher: Launcher,
    /// Where it stands.
    pub(crate) state: PmState,
    shutdown: Shutdown,
    fatal_error: bool,
    conns_allowed: bool,
    abort_start: Option<Instant>,
    startup_status: StartupStatus,
    /// Live children.
    pub(crate) children: ChildList,
    /// Child slot pools.
    pub(crate) pools: ChildPools,
    /// Background workers known to the postmaster.
    pub(crate) workers: BgWorkerList,
    exit_code: Option<i32>,
    /// When postmaster.pid was last checked (PostgreSQL's `RecheckDataDirLockFile`, each minute).
    last_lock_check: Instant,
    /// Set when the process exits instead of restarting after a crash of the startup process.
    startup_crashed: bool,
}

/// What ServerLoop must watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepting {
    Yes,
    No,
}

impl Postmaster {
    /// A postmaster about to enter PM_STARTUP with `ipc` already created.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        data_dir: PathBuf,
        settings: Settings,
        shmem: PmShmem,
        config: IpcConfig,
        lock: LockFile,
        launcher: Launcher,
        pools: ChildPools,
        workers: BgWorkerList,
    ) -> Self {
        Postmaster {
            data_dir,
            settings: Rc::new(settings),
            shmem: Some(shmem),
            config,
            lock: Some(lock),
            launcher,
            state: PmState::Init,
            shutdown: Shutdown::No,
            fatal_error: false,
            conns_allowed: true,
            abort_start: None,
            startup_status: StartupStatus::NotRunning,
            children: ChildList::default(),
            pools,
            workers,
            exit_code: None,
            last_lock_check: Instant::now(),
            startup_crashed: false,
        }
    }

    /// The pool sizes for `cfg` (PostgreSQL 18's `InitPostmasterChildSlots`).
    pub(crate) fn pool_sizes(cfg: &IpcConfig) -> PoolSizes {
        PoolSizes {
            max_connections: cfg.max_connections,
            max_wal_senders: cfg.max_wal_senders,
            autovacuum_worker_slots: cfg.autovacuum_worker_slots,
            max_worker_processes: cfg.max_worker_processes,
        }
    }

    /// PMSignal in the current generation.
    fn pmsignal(&self) -> Option<&PMSignal> {
        self.shmem.as_ref().map(PmShmem::pmsignal)
    }

    fn set_state(&mut self, s: PmState) {
        if self.state != s {
            tracing::debug!(
                "updating PMState from {} to {}",
                self.state.name(),
                s.name()
            );
            self.state = s;
        }
    }

    /// Whether postmaster.pid still names this process.
    fn lock_file_is_ours(&self) -> bool {
        match std::fs::read_to_string(self.data_dir.join(crate::datadir::PID_FILE)) {
            Ok(t) => crate::datadir::parse_pid_file(&t)
                .is_some_and(|c| c.pid == std::process::id() as i32),
            // Gone, or the directory is: not ours any more.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => false,
            // Could not look (out of descriptors, say): PostgreSQL's RecheckDataDirLockFile
            // gives the benefit of the doubt rather than shut a healthy server down.
            Err(_) => true,
        }
    }

    fn set_pid_status(&mut self, text: &str) {
        if !self.lock_file_is_ours() {
            return;
        }
        if let Some(l) = self.lock.as_mut() {
            if let Err(e) = l.set_line(line::PM_STATUS, text) {
                elog(
                    Severity::Log,
                    &format_args!("could not write lock file \"{}\": {e}", l.path().display()),
                );
            }
        }
    }

    /// Enters PM_STARTUP: starts the I/O workers, checkpointer, background writer and the
    /// startup process, then the workers that start with the postmaster.
    pub(crate) fn begin_startup(&mut self) {
        self.set_pid_status(status::STARTING);
        self.set_state(PmState::Startup);
        self.start_io_workers();
        self.start_child_if_missing(BackendType::Checkpointer);
        self.start_child_if_missing(BackendType::BgWriter);
        if self.start_child(BackendType::Startup).is_none() {
            // PostgreSQL exits when it cannot fork the startup process.
            self.exit_code = Some(1);
            return;
        }
        self.startup_status = StartupStatus::Running;
        self.maybe_start_bgworkers();
    }

    /// Runs ServerLoop until the postmaster must exit; returns the exit code.
    pub(crate) fn server_loop(
        &mut self,
        latch: &OwnedLatch<&'static Latch>,
        sockets: &[OwnedFd],
    ) -> i32 {
        const LATCH: u64 = u64::MAX;
        let mut events = vec![WaitEvent::EMPTY; sockets.len() + 1];
        loop {
            if let Some(code) = self.exit_code {
                return code;
            }
            let accepting = self.accepting();
            let set = (|| {
                let mut set = WaitEventSet::new(sockets.len() + 1)?;
                set.add_latch(latch, LATCH)?;
                if accepting == Accepting::Yes {
                    for (i, s) in sockets.iter().enumerate() {
                        set.add_socket(WaitEvents::SOCKET_ACCEPT, s.as_fd(), i as u64)?;
                    }
                }
                Ok::<_, pgipc_waiteventset::WaitEventSetError>(set)
            })();
            let mut set = match set {
                Ok(s) => s,
                Err(e) => {
                    elog(
                        Severity::Fatal,
                        &format_args!("could not create the postmaster's wait set: {e}"),
                    );
                    return 1;
                }
            };
            while self.accepting() == accepting && self.exit_code.is_none() {
                let timeout = self.determine_sleep_time();
                let n = match set.wait(Some(timeout), &mut events, 0) {
                    Ok(n) => n,
                    Err(e) => {
                        elog(Severity::Log, &format_args!("could not wait: {e}"));
                        std::thread::sleep(Duration::from_millis(100));
                        0
                    }
                };
                for ev in &events[..n] {
                    if ev.user_data == LATCH {
                        latch.reset();
                        self.process_pending();
                    } else if ev.events.intersects(WaitEvents::SOCKET_ACCEPT) {
                        if let Some(s) = sockets.get(ev.user_data as usize) {
                            // While spares wait, take every connection already queued before
                            // forking their replacements (a burst is not served one fork
                            // apart).
                            while self.accept_connection(s) && !self.launcher.spares.is_empty() {}
                        }
                    }
                }
                // A signal may have arrived between two waits without the latch being seen.
                self.process_pending();
                self.launch_missing_background_processes();
                self.maintain_spares();
                self.kill_stragglers();
                self.recheck_lock_file();
                self.state_machine();
            }
        }
    }

    /// Once a minute: if postmaster.pid is gone or names another process, someone removed
    /// the data directory or started a second server on it; stop at once (PostgreSQL's
    /// `RecheckDataDirLockFile` + SIGQUIT to itself).
    fn recheck_lock_file(&mut self) {
        if self.last_lock_check.elapsed() < Duration::from_secs(60) {
            return;
        }
        self.last_lock_check = Instant::now();
        if !self.lock_file_is_ours() && self.shutdown < Shutdown::Immediate {
            elog(
                Severity::Log,
                &"performing immediate shutdown because data directory lock file is invalid",
            );
            self.handle_shutdown_request(Shutdown::Immediate);
        }
    }

    fn accepting(&self) -> Accepting {
        match self.state {
            PmState::WaitDeadEnd | PmState::NoChildren => Accepting::No,
            _ if self.shutdown >= Shutdown::Immediate => Accepting::No,
            _ => Accepting::Yes,
        }
    }

    /// PostgreSQL's `DetermineSleepTime`.
    fn determine_sleep_time(&self) -> Duration {
        let long = Duration::from_secs(60);
        if self.shutdown > Shutdown::Smart || self.fatal_error {
            if let Some(t) = self.abort_start {
                return SIGKILL_CHILDREN_AFTER
                    .saturating_sub(t.elapsed())
                    .max(Duration::from_millis(10));
            }
            return long;
        }
        match self.workers.next_start_in(self.state) {
            Some(d) => d.min(long),
            None => long,
        }
    }

    fn process_pending(&mut self) {
        let bits = signals::take_all();
        let has = |p: Pending| bits & (p as u32) != 0;
        if has(Pending::Quit) {
            self.handle_shutdown_request(Shutdown::Immediate);
        } else if has(Pending::Int) {
            self.handle_shutdown_request(Shutdown::Fast);
        } else if has(Pending::Term) {
            self.handle_shutdown_request(Shutdown::Smart);
        }
        if has(Pending::Hup) {
            self.handle_reload();
        }
        if has(Pending::Chld) {
            self.reap_children();
        }
        if has(Pending::Usr1) {
            self.handle_pmsignals();
        }
    }

    // ---- shutdown requests -----------------------------------------------------------------

    fn handle_shutdown_request(&mut self, mode: Shutdown) {
        if mode <= self.shutdown {
            return; // only escalation counts
        }
        self.shutdown = mode;
        self.launcher.spares.retire_all();
        self.set_pid_status(status::STOPPING);
        match mode {
            Shutdown::Smart => {
                elog(Severity::Log, &"received smart shutdown request");
                match self.state {
                    PmState::Run | PmState::HotStandby => self.conns_allowed = false,
                    PmState::Startup | PmState::Recovery | PmState::Init => {
                        self.set_state(PmState::StopBackends)
                    }
                    _ => {}
                }
            }
            Shutdown::Fast => {
                elog(Severity::Log, &"received fast shutdown request");
                if matches!(self.state, PmState::Run | PmState::HotStandby) {
                    elog(Severity::Log, &"aborting any active transactions");
                }
                if self.state <= PmState::StopBackends {
                    self.set_state(PmState::StopBackends);
                }
            }
            Shutdown::Immediate => {
                elog(Severity::Log, &"received immediate shutdown request");
                if let Some(p) = self.pmsignal() {
                    p.set_quit_signal_reason(pgipc_pmsignal::QuitSignalReason::ForStop);
                }
                self.terminate_children(Signal::SIGQUIT);
                self.set_state(PmState::WaitBackends);
                self.abort_start = Some(Instant::now());
            }
            Shutdown::No => {}
        }
        self.state_machine();
    }

    fn handle_reload(&mut self) {
        if self.shutdown > Shutdown::Smart {
            return;
        }
        elog(
            Severity::Log,
            &"received SIGHUP, reloading configuration files",
        );
        // PostgreSQL's ProcessConfigFile: all or nothing, errors with file and line; values
        // from the command line outrank the file and stay.
        let conf = crate::child_env::config_file(&self.settings);
        let report = Rc::make_mut(&mut self.settings).process_config_file(&conf, Context::Sighup);
        pgipc_elog::configure(&self.settings);
        for line in report.log_lines(&conf) {
            elog(Severity::Log, &line);
        }
        crate::hba_setup::reload(&self.data_dir, &self.settings);
        // Spares were forked under the old settings (and TLS configuration): they go, and
        // ServerLoop forks new ones.
        self.launcher.spares.retire_all();
        self.signal_children(Signal::SIGHUP, |c| c.kind != BackendType::DeadEndBackend);
    }

    // ---- signalling children --------------------------------------------------------------

    /// PostgreSQL's `signal_child`: to the pid and, for the stopping signals, its process group.
    fn signal_child(pid: i32, sig: Signal) {
        let _ = kill(Pid::from_raw(pid), sig);
        if matches!(
            sig,
            Signal::SIGINT | Signal::SIGTERM | Signal::SIGQUIT | Signal::SIGKILL | Signal::SIGABRT
        ) {
            let _ = kill(Pid::from_raw(-pid), sig);
        }
    }

    fn signal_children(&self, sig: Signal, pred: impl Fn(&PmChild) -> bool) -> usize {
        let mut n = 0;
        for c in self.children.iter().filter(|c| pred(c)) {
            Self::signal_child(c.pid, sig);
            n += 1;
        }
        n
    }

    /// Sends `sig` to every child (no logger in this server), noting that the startup process
    /// was signalled.
    fn terminate_children(&mut self, sig: Signal) {
        self.signal_children(sig, |_| true);
        if self.startup_status == StartupStatus::Running
            && self.children.first(BackendType::Startup).is_some()
            && matches!(sig, Signal::SIGQUIT | Signal::SIGKILL | Signal::SIGABRT)
        {
            self.startup_status = StartupStatus::Signaled;
        }
    }

    fn kill_stragglers(&mut self) {
        if let Some(t) = self.abort_start {
            if (self.shutdown == Shutdown::Immediate || self.fatal_error)
                && t.elapsed() >= SIGKILL_CHILDREN_AFTER
            {
                let abort = self.settings.bool("send_abort_for_kill");
                let (sig, name) = if abort {
                    (Signal::SIGABRT, "SIGABRT")
                } else {
                    (Signal::SIGKILL, "SIGKILL")
                };
                elog(
                    Severity::Log,
                    &format_args!("issuing {name} to recalcitrant children"),
                );
                self.terminate_children(sig);
                // Only once; the children will go now.
                self.abort_start = None;
            }
        }
    }

    // ---- child exit ------------------------------------------------------------------------

    fn reap_children(&mut self) {
        loop {
            let st = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(s) => s,
            };
            let (pid, code, signal) = match st {
                WaitStatus::Exited(p, c) => (p.as_raw(), Some(c), None),
                WaitStatus::Signaled(p, s, _) => (p.as_raw(), None, Some(s)),
                _ => continue,
            };
            let exit = ChildExit { code, signal };
            self.child_exited(pid, exit);
        }
        self.state_machine();
    }

    fn child_exited(&mut self, pid: i32, exit: ChildExit) {
        // Whatever it was, its pid may be reused from now on: no worker notifies it any more.
        self.workers
            .stop_notifications(pid, self.shmem.as_ref().map(PmShmem::bgworkers));
        let Some(child) = self.children.take(pid) else {
            if exit.is_0_or_1() {
                log_child_exit(Severity::Log, "untracked child process", pid, exit);
            } else {
                self.handle_child_crash(pid, exit, "untracked child process");
            }
            return;
        };
        let clean_slot = self.release_slot(&child);
        if child.kind == BackendType::Backend {
            self.launcher.spares.forget(pid);
        }
        let desc = self.child_desc(&child);
        match child.kind {
            BackendType::Startup => {
                if self.shutdown > Shutdown::No && exit.is_0_or_1() {
                    self.startup_status = StartupStatus::NotRunning;
                    if self.state == PmState::Startup {
                        self.set_state(PmState::WaitBackends);
                    }
                    return;
                }
                if !exit.is_0() {
                    if self.startup_status == StartupStatus::Signaled {
                        self.startup_status = StartupStatus::NotRunning;
                        if self.state == PmState::Startup {
                            self.set_state(PmState::WaitBackends);
                        }
                    } else {
                        self.startup_status = StartupStatus::Crashed;
                    }
                    self.handle_child_crash(pid, exit, &desc);
                    return;
                }
                // Start-up succeeded.
                self.startup_status = StartupStatus::NotRunning;
                self.fatal_error = false;
                self.abort_start = None;
                self.conns_allowed = true;
                if let Some(p) = self.pmsignal() {
                    p.set_quit_signal_reason(pgipc_pmsignal::QuitSignalReason::NotSent);
                }
                self.set_state(PmState::Run);
                elog(
                    Severity::Log,
                    &"database system is ready to accept connections",
                );
                self.set_pid_status(status::READY);
                self.maybe_start_bgworkers();
            }
            BackendType::Checkpointer => {
                if exit.is_0() && self.state == PmState::WaitCheckpointer {
                    self.set_state(PmState::WaitDeadEnd);
                    self.signal_children(Signal::SIGTERM, |_| true);
                } else {
                    self.handle_child_crash(pid, exit, &desc);
                }
            }
            BackendType::BgWriter | BackendType::WalWriter | BackendType::AutovacLauncher => {
                if !exit.is_0() {
                    self.handle_child_crash(pid, exit, &desc);
                }
            }
            BackendType::IoWorker => {
                if !exit.is_0_or_1() {
                    self.handle_child_crash(pid, exit, &desc);
                }
            }
            BackendType::BgWorker => {
                let crashed = !exit.is_0_or_1() || !clean_slot;
                if let Some(w) = child.worker {
                    self.workers.report_exit(
                        w,
                        exit.code,
                        crashed,
                        self.shmem.as_ref().map(PmShmem::bgworkers),
                    );
                }
                if crashed {
                    self.handle_child_crash(pid, exit, &desc);
                } else if !exit.is_0() {
                    log_child_exit(Severity::Log, &desc, pid, exit);
                }
            }
            _ => {
                // Client backends and dead-end backends (PostgreSQL's CleanupBackend).
                if !exit.is_0_or_1() || !clean_slot {
                    self.handle_child_crash(pid, exit, &desc);
                }
            }
        }
    }

    /// A child slot of `kind`'s pool for a child about to be launched, marked assigned in
    /// PMSignal; `None` when the pool is empty.
    fn take_slot(&mut self, kind: BackendType) -> Option<u32> {
        let slot = self.pools.assign(kind)?;
        if let Some(p) = self.pmsignal() {
            let _ = p.mark_child_slot_assigned(slot);
        }
        Some(slot)
    }

    /// Gives back a slot [`take_slot`](Self::take_slot) took for a child that was not
    /// launched.
    fn give_back_slot(&mut self, kind: BackendType, slot: u32) {
        self.pools.release(kind, slot);
        if let Some(p) = self.pmsignal() {
            p.mark_child_slot_unassigned(slot);
        }
    }

    /// Gives the child's slot back; false when PMSignal says the child did not exit cleanly.
    fn release_slot(&mut self, child: &PmChild) -> bool {
        if child.slot == 0 {
            return true;
        }
        self.pools.release(child.kind, child.slot);
        match self.pmsignal() {
            Some(p) => p.mark_child_slot_unassigned(child.slot),
            None => true,
        }
    }

    fn child_desc(&self, child: &PmChild) -> String {
        match child.worker.and_then(|w| self.workers.get(w)) {
            Some(w) => format!("background worker \"{}\"", w.spec.name),
            None => backend_type_desc(child.kind).to_owned(),
        }
    }

    /// PostgreSQL's `HandleChildCrash` + `HandleFatalError`.
    fn handle_child_crash(&mut self, pid: i32, exit: ChildExit, desc: &str) {
        if self.fatal_error || self.shutdown == Shutdown::Immediate {
            return;
        }
        log_child_exit(Severity::Log, desc, pid, exit);
        elog(
            Severity::Log,
            &"terminating any other active server processes",
        );
        self.launcher.spares.retire_all();
        if let Some(p) = self.pmsignal() {
            p.set_quit_signal_reason(pgipc_pmsignal::QuitSignalReason::ForCrash);
        }
        let sig = if self.settings.bool("send_abort_for_crash") {
            Signal::SIGABRT
        } else {
            Signal::SIGQUIT
        };
        self.terminate_children(sig);
        self.fatal_error = true;
        use PmState::*;
        match self.state {
            Init | Startup | Recovery | HotStandby | Run | StopBackends => {
                self.set_state(WaitBackends)
            }
            WaitBackends => {}
            WaitXlogShutdown | WaitXlogArchival | WaitIoWorkers | WaitCheckpointer => {
                self.set_state(WaitDeadEnd)
            }
            WaitDeadEnd | NoChildren => {}
        }
        if self.abort_start.is_none() {
            self.abort_start = Some(Instant::now());
        }
    }

    // ---- pmsignals -------------------------------------------------------------------------

    /// Tests and clears one PMSignal flag of the current generation (no copy of the view is
    /// held across the handlers, which may end up swapping generations).
    fn take_pmsignal(&self, reason: PMSignalReason) -> bool {
        self.pmsignal()
            .is_some_and(|p| p.check_postmaster_signal(reason))
    }

    fn handle_pmsignals(&mut self) {
        if self.take_pmsignal(PMSignalReason::BackgroundWorkerChange) {
            self.workers.state_change(
                self.state < PmState::StopBackends,
                &self.children,
                self.shmem.as_ref().map(PmShmem::bgworkers),
            );
            self.maybe_start_bgworkers();
        }
        if self.take_pmsignal(PMSignalReason::XlogIsShutdown) {
            if self.state == PmState::WaitXlogShutdown {
                self.set_state(PmState::WaitXlogArchival);
            } else if !self.fatal_error && self.shutdown != Shutdown::Immediate {
                elog(Severity::Log, &"WAL was shut down unexpectedly");
                self.handle_child_crash(0, ChildExit::code(0), "checkpointer");
            }
        }
        if self.take_pmsignal(PMSignalReason::AdvanceStateMachine) {
            // Nothing to do but run the state machine below.
        }
    }

    // ---- connections -----------------------------------------------------------------------

    /// PostgreSQL's `canAcceptConnections` for a client backend.
    fn can_accept_connections(&self) -> CanAcceptConnections {
        use PmState::*;
        if !matches!(self.state, Run | HotStandby) {
            if self.shutdown > Shutdown::No {
                return CanAcceptConnections::Shutdown;
            }
            if !self.fatal_error {
                if self.state == Startup {
                    return CanAcceptConnections::Startup;
                }
                if self.state == Recovery {
                    return CanAcceptConnections::NotHotStandby { hot_standby: false };
                }
            }
            return CanAcceptConnections::Recovery;
        }
        if !self.conns_allowed {
            return CanAcceptConnections::Shutdown;
        }
        CanAcceptConnections::Ok
    }

    /// Accepts one connection, if one is queued, and gives it a backend: a spare, else a fork
    /// (a dead-end one when the server cannot accept it). True when a spare took it.
    fn accept_connection(&mut self, listener: &OwnedFd) -> bool {
        let client = match crate::listen::accept(listener.as_fd()) {
            Ok(Some(c)) => c,
            Ok(None) => return false,
            Err(e) => {
                elog(
                    Severity::Log,
                    &format_args!("could not accept new connection: {e}"),
                );
                // The listen socket stays readable, so the next wait returns at once: pause
                // as PostgreSQL's AcceptConnection does (most likely out of descriptors; all
                // one can do is hope some are freed) instead of spinning on the CPU.
                std::thread::sleep(crate::listen::ACCEPT_RETRY_DELAY);
                return false;
            }
        };
        let mut cac = self.can_accept_connections();
        let mut client = client;
        if cac == CanAcceptConnections::Ok {
            while let Some(spare) = self.launcher.spares.take() {
                match spare.hand_over(client) {
                    Ok(_) => return true,
                    // The spare is gone or wedged: the next one, or a fork. Its channel is
                    // closed; the reaper collects it.
                    Err((e, c)) => {
                        elog(
                            Severity::Log,
                            &format_args!("could not hand a connection to a spare backend: {e}"),
                        );
                        client = c;
                    }
                }
            }
        }
        let mut slot = 0;
        let mut kind = BackendType::DeadEndBackend;
        if cac == CanAcceptConnections::Ok {
            match self.take_slot(BackendType::Backend) {
                Some(s) => {
                    slot = s;
                    kind = BackendType::Backend;
                }
                None => cac = CanAcceptConnections::TooMany,
            }
        }
        match self.launch(kind, slot, None, Some(client), cac) {
            Ok(pid) => self.children.push(PmChild {
                pid,
                slot,
                kind,
                worker: None,
            }),
            Err((e, client)) => {
                elog(
                    Severity::Log,
                    &format_args!("could not fork new process for connection: {e}"),
                );
                if let Some(c) = client {
                    crate::listen::report_fork_failure(c, &e);
                }
                if slot != 0 {
                    self.give_back_slot(kind, slot);
                }
            }
        }
        false
    }

    /// What a new child of `kind` in `slot` starts with.
    fn child_env(
        &self,
        kind: BackendType,
        slot: u32,
        worker: Option<crate::bgworker::BgWorkerSpec>,
    ) -> Result<crate::child_env::ChildEnv, std::io::Error> {
        let ipc = self
            .shmem
            .as_ref()
            .map(PmShmem::ipc)
            .ok_or_else(|| std::io::Error::other("no shared memory"))?;
        Ok(crate::child_env::ChildEnv {
            kind,
            slot,
            data_dir: self.data_dir.clone(),
            settings: self.settings.clone(),
            config: self.config.clone(),
            shmem: ipc.shmem.clone(),
            ipc: None,
            worker,
        })
    }

    /// Launches a child (see [`crate::launch::Launcher::launch`]).
    fn launch(
        &mut self,
        kind: BackendType,
        slot: u32,
        worker: Option<crate::bgworker::BgWorkerSpec>,
        client: Option<OwnedFd>,
        cac: CanAcceptConnections,
    ) -> Result<i32, (std::io::Error, Option<OwnedFd>)> {
        let env = match self.child_env(kind, slot, worker) {
            Ok(e) => e,
            Err(e) => return Err((e, client)),
        };
        let shmid = self
            .shmem
            .as_ref()
            .and_then(|s| s.ipc().interlock.as_ref().map(|l| l.shmid()));
        self.launcher.launch(env, shmid, client, cac)
    }

    /// Keeps `spare_backends` spares waiting while connections are accepted (PM_RUN, no
    /// shutdown, no crash being handled; fork mode); retires them otherwise.
    fn maintain_spares(&mut self) {
        let want = if self.launcher.forks()
            && self.state == PmState::Run
            && self.conns_allowed
            && self.shutdown == Shutdown::No
            && !self.fatal_error
        {
            self.settings.int("spare_backends").max(0) as usize
        } else {
            0
        };
        if want == 0 {
            self.launcher.spares.retire_all();
            return;
        }
        while self.launcher.spares.len() < want {
            let Some(slot) = self.take_slot(BackendType::Backend) else {
                return;
            };
            let launched = self
                .child_env(BackendType::Backend, slot, None)
                .and_then(|env| self.launcher.launch_spare(env));
            match launched {
                Ok((pid, channel)) => {
                    self.children.push(PmChild {
                        pid,
                        slot,
                        kind: BackendType::Backend,
                        worker: None,
                    });
                    self.launcher.spares.push(pid, channel);
                }
                Err(e) => {
                    elog(
                        Severity::Log,
                        &format_args!("could not fork spare backend process: {e}"),
                    );
                    self.give_back_slot(BackendType::Backend, slot);
                    return;
                }
            }
        }
    }

    // ---- background processes --------------------------------------------------------------

    /// Starts an auxiliary-style child of `kind`; its pid, or `None` on failure (logged).
    fn start_child(&mut self, kind: BackendType) -> Option<i32> {
        let Some(slot) = self.take_slot(kind) else {
            elog(
                Severity::Log,
                &format_args!("no free child slot for {} process", backend_type_desc(kind)),
            );
            return None;
        };
        match self.launch(kind, slot, None, None, CanAcceptConnections::Ok) {
            Ok(pid) => {
                self.children.push(PmChild {
                    pid,
                    slot,
                    kind,
                    worker: None,
                });
                Some(pid)
            }
            Err((e, _)) => {
                elog(
                    Severity::Log,
                    &format_args!(
                        "could not fork \"{}\" process: {e}",
                        backend_type_desc(kind)
                    ),
                );
                self.give_back_slot(kind, slot);
                None
            }
        }
    }

    fn start_child_if_missing(&mut self, kind: BackendType) {
        if self.children.count(kind) == 0 {
            self.start_child(kind);
        }
    }

    fn start_io_workers(&mut self) {
        let want = self.settings.int("io_workers").clamp(0, 32) as usize;
        let have = self.children.count(BackendType::IoWorker);
        for _ in have..want {
            if self.start_child(BackendType::IoWorker).is_none() {
                break;
            }
        }
        // Fewer wanted after a reload: the newest extra ones are told to stop.
        let extra = have.saturating_sub(want);
        if extra > 0 {
            let pids: Vec<i32> = self
                .children
                .iter()
                .filter(|c| c.kind == BackendType::IoWorker)
                .map(|c| c.pid)
                .take(extra)
                .collect();
            for pid in pids {
                Self::signal_child(pid, Signal::SIGUSR2);
            }
        }
    }

    /// PostgreSQL's `LaunchMissingBackgroundProcesses`.
    fn launch_missing_background_processes(&mut self) {
        if self.fatal_error {
            return;
        }
        use PmState::*;
        if matches!(self.state, Run | Recovery | HotStandby | Startup) {
            self.start_child_if_missing(BackendType::Checkpointer);
            self.start_child_if_missing(BackendType::BgWriter);
        }
        if self.state == Run {
            self.start_child_if_missing(BackendType::WalWriter);
            if self.settings.bool("autovacuum") && self.shutdown == Shutdown::No {
                self.start_child_if_missing(BackendType::AutovacLauncher);
            }
        }
        if matches!(self.state, Run | Recovery | HotStandby | Startup) {
            self.start_io_workers();
        }
        self.maybe_start_bgworkers();
    }

    /// PostgreSQL's `maybe_start_bgworkers`.
    fn maybe_start_bgworkers(&mut self) {
        if self.fatal_error || self.shutdown > Shutdown::No && self.state >= PmState::StopBackends {
            return;
        }
        let due = self.workers.due(self.state, 100);
        for w in due {
            let Some(slot) = self.take_slot(BackendType::BgWorker) else {
                self.workers.mark_crashed(w);
                continue;
            };
            let spec = self.workers.get(w).map(|r| r.spec.clone());
            match self.launch(
                BackendType::BgWorker,
                slot,
                spec,
                None,
                CanAcceptConnections::Ok,
            ) {
                Ok(pid) => {
                    self.workers
                        .started(w, pid, self.shmem.as_ref().map(PmShmem::bgworkers));
                    self.children.push(PmChild {
                        pid,
                        slot,
                        kind: BackendType::BgWorker,
                        worker: Some(w),
                    });
                }
                Err((e, _)) => {
                    elog(
                        Severity::Log,
                        &format_args!("could not fork background worker process: {e}"),
                    );
                    self.give_back_slot(BackendType::BgWorker, slot);
                    self.workers.mark_crashed(w);
                }
            }
        }
    }

    // ---- the state machine -----------------------------------------------------------------

    fn count_children(&self, pred: impl Fn(&PmChild) -> bool) -> usize {
        self.children.iter().filter(|c| pred(c)).count()
    }

    /// PostgreSQL's `PostmasterStateMachine`, run after every event.
    fn state_machine(&mut self) {
        use PmState::*;
        if matches!(self.state, Run | HotStandby)
            && !self.conns_allowed
            && self.count_children(|c| c.kind == BackendType::Backend) == 0
        {
            self.set_state(StopBackends);
        }

        if self.state == StopBackends {
            self.workers
                .forget_unstarted_with_notify(self.shmem.as_ref().map(PmShmem::bgworkers));
            let hard = self.fatal_error || self.shutdown == Shutdown::Immediate;
            self.signal_children(Signal::SIGTERM, |c| stop_target(c.kind, hard));
            self.set_state(WaitBackends);
        }

        if self.state == WaitBackends {
            let hard = self.fatal_error || self.shutdown == Shutdown::Immediate;
            if self.count_children(|c| stop_target(c.kind, hard)) == 0 {
                if hard {
                    self.set_state(WaitDeadEnd);
                    self.signal_children(Signal::SIGQUIT, |c| {
                        c.kind == BackendType::DeadEndBackend
                    });
                } else {
                    // Shutdown checkpoint.
                    if self.children.first(BackendType::Checkpointer).is_none() {
                        self.start_child(BackendType::Checkpointer);
                    }
                    match self.children.first(BackendType::Checkpointer) {
                        Some(c) => {
                            Self::signal_child(c.pid, Signal::SIGINT);
                            self.set_state(WaitXlogShutdown);
                        }
                        None => {
                            // Cannot write the shutdown checkpoint: treat as a crash.
                            self.fatal_error = true;
                            self.set_state(WaitDeadEnd);
                            self.terminate_children(Signal::SIGQUIT);
                        }
                    }
                }
            }
        }

        if self.state == WaitXlogArchival {
            // No archiver or walsenders here: everything but the checkpointer, I/O workers
            // and dead-end children is already gone.
            let others = self.count_children(|c| {
                !matches!(
                    c.kind,
                    BackendType::Checkpointer | BackendType::IoWorker | BackendType::DeadEndBackend
                )
            });
            if others == 0 {
                self.set_state(WaitIoWorkers);
                self.signal_children(Signal::SIGUSR2, |c| c.kind == BackendType::IoWorker);
            }
        }

        if self.state == WaitIoWorkers && self.children.count(BackendType::IoWorker) == 0 {
            self.set_state(WaitCheckpointer);
            match self.children.first(BackendType::Checkpointer) {
                Some(c) => Self::signal_child(c.pid, Signal::SIGUSR2),
                None => self.set_state(WaitDeadEnd),
            }
        }

        if self.state == WaitDeadEnd && self.children.is_empty() {
            self.set_state(NoChildren);
        }

        if self.state == NoChildren {
            self.no_children();
        }
    }

    fn no_children(&mut self) {
        if self.shutdown > Shutdown::No {
            if self.fatal_error {
                elog(Severity::Log, &"abnormal database system shutdown");
                self.exit_code = Some(1);
            } else {
                self.exit_code = Some(0);
            }
            return;
        }
        if self.startup_status == StartupStatus::Crashed {
            elog(
                Severity::Log,
                &"shutting down due to startup process failure",
            );
            self.startup_crashed = true;
            self.exit_code = Some(1);
            return;
        }
        if !self.settings.bool("restart_after_crash") {
            elog(
                Severity::Log,
                &"shutting down because \"restart_after_crash\" is off",
            );
            self.exit_code = Some(1);
            return;
        }
        if !self.fatal_error {
            // Nothing crashed and no shutdown: cannot happen; stay put.
            return;
        }
        elog(
            Severity::Log,
            &"all server processes terminated; reinitializing",
        );
        // PostgreSQL's order: the workers' crash state first, then the new shared memory
        // (which re-publishes the surviving workers).
        self.workers.reset_after_crash();
        if let Err(e) = self.reinitialize_shared_memory() {
            elog(Severity::Fatal, &e);
            self.exit_code = Some(1);
            return;
        }
        self.fatal_error = false;
        self.abort_start = None;
        self.begin_startup();
    }

    /// Swaps the generation of shared memory: the old one goes as a whole (every view the
    /// postmaster had, the segment, its DSM segments), a new one is made and the surviving
    /// background workers are published into it.
    fn reinitialize_shared_memory(&mut self) -> Result<(), ResetError> {
        // Attached through the environment only: the postmaster never reads the shared table.
        pgipc_injection_point::injection_point!("postmaster-reset")?;
        if let Some(old) = self.shmem.take() {
            old.shutdown()?;
        }
        let workers = &mut self.workers;
        let new = create_shared_state(&self.config, |sh| workers.publish(sh))?;
        if let (Some(l), Some(i)) = (self.lock.as_mut(), new.ipc().interlock.as_ref()) {
            let _ = l.set_line(line::SHMEM_KEY, &i.lock_file_line());
        }
        self.shmem = Some(new);
        Ok(())
    }

    /// Removes shared memory, the lock file and socket files at exit.
    pub(crate) fn cleanup_at_exit(&mut self) {
        if let Some(shmem) = self.shmem.take() {
            if let Err(e) = shmem.shutdown() {
                elog(
                    Severity::Log,
                    &format_args!("could not remove shared memory: {e}"),
                );
            }
        }
        // Never touch a lock file that names another process (see recheck_lock_file).
        let ours = self.lock_file_is_ours();
        if let Some(l) = self.lock.take() {
            let path = l.path().to_path_buf();
            if !ours {
                return;
            }
            if let Err(e) = l.remove() {
                elog(
                    Severity::Log,
                    &format_args!("could not remove file \"{}\": {e}", path.display()),
                );
            }
        }
    }
}

/// Whether `kind` is stopped with SIGTERM in PM_STOP_BACKENDS and waited for in
/// PM_WAIT_BACKENDS (`hard`: after a crash or in an immediate shutdown, everyone but dead-end
/// children).
fn stop_target(kind: BackendType, hard: bool) -> bool {
    use BackendType::*;
    match kind {
        Backend | AutovacLauncher | AutovacWorker | BgWorker | WalWriter | BgWriter
        | SlotsyncWorker | WalSummarizer | Startup | WalReceiver => true,
        Checkpointer | Archiver | IoWorker | WalSender => hard,
        DeadEndBackend | Logger | Invalid | StandaloneBackend => false,
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChildExit {
    /// Exit code, if it exited.
    pub(crate) code: Option<i32>,
    /// Signal, if it was killed.
    pub(crate) signal: Option<Signal>,
}

impl ChildExit {
    fn code(c: i32) -> Self {
        ChildExit {
            code: Some(c),
            signal: None,
        }
    }
    fn is_0(self) -> bool {
        self.code == Some(0)
    }
    fn is_0_or_1(self) -> bool {
        matches!(self.code, Some(0) | Some(1))
    }
}

/// PostgreSQL's `LogChildExit`.
fn log_child_exit(sev: Severity, desc: &str, pid: i32, exit: ChildExit) {
    match (exit.code, exit.signal) {
        (Some(c), _) => elog(
            sev,
            &format_args!("{desc} (PID {pid}) exited with exit code {c}"),
        ),
        (None, Some(s)) => elog(
            sev,
            &format_args!(
                "{desc} (PID {pid}) was terminated by signal {}: {}",
                s as i32,
                signal_description(s)
            ),
        ),
        (None, None) => elog(
            sev,
            &format_args!("{desc} (PID {pid}) exited with unrecognized status"),
        ),
    }
}

fn signal_description(s: Signal) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string, read at once.
    let p = unsafe { libc::strsignal(s as i32) };
    if p.is_null() {
        return format!("signal {}", s as i32);
    }
    // SAFETY: non-null pointer to a NUL-terminated string owned by libc.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}
