//! Background workers, the postmaster's half (PostgreSQL's bgworker.c minus what every
//! process shares, which is the `pgipc_bgworker` crate): the list of registered workers, when
//! to start and restart them, the compiled-in worker code, and a worker process's main.
//!
//! ```text
//!  static workers  ─► BgWorkerList::register_static (shared_preload_libraries, before shmem)
//!  new segment     ─► BgWorkerList::publish: every registered worker into slots 0.. of the
//!                     fresh "Background Worker Data" (start-up and every crash reset)
//!  PMSIGNAL_BACKGROUND_WORKER_CHANGE ─► BgWorkerList::state_change: new dynamic registrations
//!                     (a function not in ENTRY_POINTS is refused) and terminate requests
//!  ServerLoop      ─► due / started / report_exit: start policy, restart policy, pids and
//!                     SIGUSR1 to bgw_notify_pid written back into the slots
//! ```
//!
//! The list ([`BgWorkerList`]) is the postmaster's and outlives every generation of shared
//! memory; the array belongs to one generation (`shmem_setup::PmShmem`, ipci's view). The
//! postmaster reads and writes slots only through the crate's `postmaster_*` methods, never
//! taking BackgroundWorkerLock. A crash reset keeps every worker but the never-restart ones
//! (PostgreSQL's `ResetBackgroundWorkerCrashTimes`), and [`BgWorkerList::publish`] gives the
//! survivors slots in the new array.
//!
//! Worker code must be compiled into the binary: [`ENTRY_POINTS`] maps function names to
//! Rust functions (PostgreSQL loads `bgw_library_name` / `bgw_function_name` with dlopen).
//! `shared_preload_libraries` names compiled-in "libraries" ([`PRELOAD_LIBRARIES`]) whose
//! start-up registers static workers.

use crate::child::ChildList;
use crate::child_env::ChildEnv;
use crate::elog::{elog, Severity};
use crate::pmstate::PmState;
use crate::signals::{self, Pending};
use nix::sys::signal::Signal;
use pgipc_waiteventset::{wait_latch, WaitEvents};
use std::time::{Duration, Instant};

pub(crate) use pgipc_bgworker::{
    BgWorkerError, BgWorkerShared, BgWorkerSpec, BgwStartTime, RestartPolicy,
};

/// SIGUSR1 to a registrant waiting on its latch (`bgw_notify_pid`).
fn notify(pid: i32) {
    if pid > 0 {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGUSR1);
    }
}

/// The postmaster's checks of a registration: PostgreSQL's sanity checks, and that the
/// function is compiled in (PostgreSQL finds out when the worker starts).
fn check(spec: &BgWorkerSpec) -> Result<(), BgWorkerError> {
    spec.sanity_check()?;
    if entry_point(&spec.function).is_none() {
        return Err(BgWorkerError::UnknownFunction(spec.function.clone()));
    }
    Ok(())
}

// ---- the postmaster's list -------------------------------------------------------------------

/// One worker the postmaster knows (`RegisteredBgWorker`).
#[derive(Debug, Clone)]
pub(crate) struct RegisteredWorker {
    /// Its registration.
    pub(crate) spec: BgWorkerSpec,
    /// Running pid.
    pub(crate) pid: Option<i32>,
    /// When it last crashed or exited with 1 (`rw_crashed_at`).
    pub(crate) crashed_at: Option<Instant>,
    /// Its slot in the current generation's shared array (`rw_shmem_slot`): every worker
    /// has one once shared memory is published; `None` between a crash reset and the next
    /// publication.
    pub(crate) shared_slot: Option<usize>,
    /// Termination requested through the slot.
    pub(crate) terminate: bool,
}

/// The postmaster's `BackgroundWorkerList`: process-local, it outlives every generation of
/// shared memory. It keeps no view of the shared array: the methods that read or write slots
/// take the current generation's [`BgWorkerShared`] (from `shmem_setup::PmShmem`), so a view of a
/// discarded segment cannot be kept here by mistake.
#[derive(Debug, Default)]
pub(crate) struct BgWorkerList {
    workers: Vec<Option<RegisteredWorker>>,
    /// Set once shared memory was first published: static registration is over.
    published: bool,
    max_workers: u32,
}

impl BgWorkerList {
    /// An empty list for `max_worker_processes`.
    pub(crate) fn new(max_workers: u32) -> Self {
        BgWorkerList {
            workers: Vec::new(),
            published: false,
            max_workers,
        }
    }

    /// Copies every registered worker into a freshly created array, one slot each in list
    /// order, and records the slot (PostgreSQL's `BackgroundWorkerShmemInit` in the
    /// postmaster, at start-up and after every crash reset). Nobody waits for a re-published
    /// worker any more: its notify pid is cleared. Called only while no worker runs (the
    /// list is compacted, which renumbers the workers).
    pub(crate) fn publish(&mut self, sh: &BgWorkerShared) {
        self.published = true;
        self.workers.retain(Option::is_some);
        let mut kept = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.drain(..).flatten().enumerate() {
            let mut w = w;
            w.spec.notify_pid = 0;
            if !sh.postmaster_publish(i, &w.spec) {
                elog(
                    Severity::Log,
                    &format_args!(
                        "no background worker slot left for \"{}\"; not restarting it",
                        w.spec.name
                    ),
                );
                continue;
            };
            w.shared_slot = Some(i);
            kept.push(Some(w));
        }
        self.workers = kept;
    }

    /// PostgreSQL's `RegisterBackgroundWorker` (static, before shared memory exists).
    pub(crate) fn register_static(&mut self, spec: BgWorkerSpec) -> Result<(), BgWorkerError> {
        if self.published {
            return Err(BgWorkerError::AfterShmemInit(spec.name));
        }
        check(&spec)?;
        let n = self.workers.iter().flatten().count() as u32;
        if n >= self.max_workers {
            return Err(BgWorkerError::TooMany {
                limit: self.max_workers,
            });
        }
        self.workers.push(Some(RegisteredWorker {
            spec,
            pid: None,
            crashed_at: None,
            shared_slot: None,
            terminate: false,
        }));
        Ok(())
    }

    /// The worker at `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&RegisteredWorker> {
        self.workers.get(i)?.as_ref()
    }

    fn forget(&mut self, i: usize, sh: Option<&BgWorkerShared>) {
        if let Some(Some(w)) = self.workers.get(i) {
            if let (Some(slot), Some(sh)) = (w.shared_slot, sh) {
                sh.postmaster_free_slot(slot);
            }
            notify(w.spec.notify_pid);
            self.workers[i] = None;
        }
    }

    /// PostgreSQL's `BackgroundWorkerStateChange`: picks up new registrations and termination
    /// requests from the shared slots of `sh`, the current generation's array.
    pub(crate) fn state_change(
        &mut self,
        allowed: bool,
        children: &ChildList,
        sh: Option<&BgWorkerShared>,
    ) {
        let Some(sh) = sh else {
            return;
        };
        for i in 0..sh.len() {
            if !sh.in_use(i) {
                continue;
            }
            let known = self
                .workers
                .iter()
                .position(|w| w.as_ref().is_some_and(|w| w.shared_slot == Some(i)));
            let terminate = sh.postmaster_terminate_requested(i);
            match known {
                Some(k) => {
                    if terminate {
                        if let Some(Some(w)) = self.workers.get_mut(k) {
                            if !w.terminate {
                                w.terminate = true;
                                match w.pid {
                                    Some(pid) if children.find(pid).is_some() => {
                                        let _ = nix::sys::signal::kill(
                                            nix::unistd::Pid::from_raw(pid),
                                            Signal::SIGTERM,
                                        );
                                    }
                                    _ => self.forget(k, Some(sh)),
                                }
                            }
                        }
                    }
                }
                None => {
                    let spec = sh.read_spec(i);
                    let refused = spec.as_ref().map(check).and_then(Result::err);
                    if let Some(e) = &refused {
                        elog(Severity::Log, e);
                    }
                    match spec {
                        Some(mut spec) if allowed && !terminate && refused.is_none() => {
                            // Notify only a process we know is ours: the registrant may have
                            // exited (and been reaped, its pid free for reuse) since it
                            // registered (PostgreSQL's PostmasterMarkPIDForWorkerNotify).
                            if spec.notify_pid != 0 && children.find(spec.notify_pid).is_none() {
                                spec.notify_pid = 0;
                                sh.postmaster_clear_notify_pid(i);
                            }
                            self.workers.push(Some(RegisteredWorker {
                                spec,
                                pid: None,
                                crashed_at: None,
                                shared_slot: Some(i),
                                terminate: false,
                            }));
                        }
                        other => {
                            // Only a registrant that is still our child is told.
                            let notify_pid = other
                                .map(|s| s.notify_pid)
                                .filter(|p| *p > 0 && children.find(*p).is_some())
                                .unwrap_or(0);
                            sh.postmaster_free_slot(i);
                            notify(notify_pid);
                        }
                    }
                }
            }
        }
    }

    fn may_start_in(state: PmState, t: BgwStartTime) -> bool {
        use PmState::*;
        match t {
            BgwStartTime::PostmasterStart => {
                matches!(state, Init | Startup | Recovery | HotStandby | Run)
            }
            BgwStartTime::ConsistentState => matches!(state, HotStandby | Run),
            BgwStartTime::RecoveryFinished => state == Run,
        }
    }

    fn wait_left(w: &RegisteredWorker) -> Duration {
        match (w.crashed_at, w.spec.restart) {
            (None, _) => Duration::ZERO,
            (Some(t), RestartPolicy::After(s)) => {
                Duration::from_secs(u64::from(s)).saturating_sub(t.elapsed())
            }
            (Some(_), RestartPolicy::Never) => Duration::MAX,
        }
    }

    /// Workers to start now, at most `max` (PostgreSQL's `maybe_start_bgworkers`).
    pub(crate) fn due(&mut self, state: PmState, max: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for i in 0..self.workers.len() {
            let Some(w) = &self.workers[i] else { continue };
            if w.pid.is_some() || w.terminate || !Self::may_start_in(state, w.spec.start_time) {
                continue;
            }
            if Self::wait_left(w) > Duration::ZERO {
                continue;
            }
            out.push(i);
            if out.len() >= max {
                break;
            }
        }
        out
    }

    /// Time until the next worker becomes due, if any is waiting.
    pub(crate) fn next_start_in(&self, state: PmState) -> Option<Duration> {
        self.workers
            .iter()
            .flatten()
            .filter(|w| {
                w.pid.is_none() && !w.terminate && Self::may_start_in(state, w.spec.start_time)
            })
            .map(Self::wait_left)
            .filter(|d| *d != Duration::MAX)
            .min()
    }

    /// Records a started worker and publishes its pid in `sh`.
    pub(crate) fn started(&mut self, i: usize, pid: i32, sh: Option<&BgWorkerShared>) {
        if let Some(Some(w)) = self.workers.get_mut(i) {
            w.pid = Some(pid);
            if let (Some(slot), Some(sh)) = (w.shared_slot, sh) {
                sh.postmaster_set_started(slot, pid);
            }
            notify(w.spec.notify_pid);
        }
    }

    /// A start that failed counts as a crash (retried after the restart interval).
    pub(crate) fn mark_crashed(&mut self, i: usize) {
        if let Some(Some(w)) = self.workers.get_mut(i) {
            w.crashed_at = Some(Instant::now());
        }
    }

    /// After a worker exited (PostgreSQL's `CleanupBackgroundWorker` + restart policy).
    pub(crate) fn report_exit(
        &mut self,
        i: usize,
        code: Option<i32>,
        crashed: bool,
        sh: Option<&BgWorkerShared>,
    ) {
        let Some(Some(w)) = self.workers.get_mut(i) else {
            return;
        };
        w.pid = None;
        let forget = match (code, crashed) {
            (Some(0), false) => true,
            _ => {
                w.crashed_at = Some(Instant::now());
                w.terminate || w.spec.restart == RestartPolicy::Never
            }
        };
        if let (Some(slot), Some(sh)) = (w.shared_slot, sh) {
            sh.postmaster_set_not_running(slot, forget);
        }
        if forget {
            self.forget(i, sh);
        } else {
            notify(w.spec.notify_pid);
        }
    }

    /// The process `pid` exited: no worker notifies it any more, since its pid may be reused
    /// by an unrelated process (PostgreSQL's `BackgroundWorkerStopNotifications`, which the
    /// postmaster runs when it reaps a child). The copies in `sh`'s slots (the current
    /// generation's array) are cleared too.
    pub(crate) fn stop_notifications(&mut self, pid: i32, sh: Option<&BgWorkerShared>) {
        if pid <= 0 {
            return;
        }
        for w in self.workers.iter_mut().flatten() {
            if w.spec.notify_pid == pid {
                w.spec.notify_pid = 0;
                if let (Some(slot), Some(sh)) = (w.shared_slot, sh) {
                    sh.postmaster_clear_notify_pid(slot);
                }
            }
        }
    }

    /// PM_STOP_BACKENDS: forget not-started workers whose registrant waits for them.
    pub(crate) fn forget_unstarted_with_notify(&mut self, sh: Option<&BgWorkerShared>) {
        let idx: Vec<usize> = self
            .workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let w = w.as_ref()?;
                (w.pid.is_none() && w.spec.notify_pid > 0).then_some(i)
            })
            .collect();
        for i in idx {
            self.forget(i, sh);
        }
    }

    /// Before shared memory is discarded after a crash (PostgreSQL's
    /// `ResetBackgroundWorkerCrashTimes`): never-restart workers are forgotten, static or
    /// dynamic; every other one, static or dynamic, is kept, restarts at once, and waits for
    /// [`publish`](Self::publish) to get a slot in the new array. Whoever waited for a worker
    /// died in the crash: no notify pid survives (signalling it could hit a reused pid). The
    /// old segment is not touched: it is about to be discarded as a whole.
    pub(crate) fn reset_after_crash(&mut self) {
        for slot in self.workers.iter_mut() {
            let Some(w) = slot else { continue };
            if w.spec.restart == RestartPolicy::Never {
                *slot = None;
            } else {
                w.crashed_at = None;
                w.pid = None;
                w.spec.notify_pid = 0;
                w.shared_slot = None;
            }
        }
    }
}

// ---- compiled-in workers ---------------------------------------------------------------------

/// A worker's main function: gets the child's environment and `bgw_main_arg`, returns the
/// exit code.
pub(crate) type WorkerMain = fn(&mut ChildEnv, i64) -> i32;

/// The worker functions compiled into the server (what `bgw_function_name` may name).
pub(crate) static ENTRY_POINTS: &[(&str, WorkerMain)] = &[
    ("pgipc_worker_sleep", worker_sleep),
    ("pgipc_worker_exit", worker_exit),
    (pgipc_test_shm_mq::WORKER_FUNCTION, test_shm_mq_worker),
];

/// Looks a function up in [`ENTRY_POINTS`].
pub(crate) fn entry_point(name: &str) -> Option<WorkerMain> {
    ENTRY_POINTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// A compiled-in library's start-up (its `_PG_init`): registers static workers.
pub(crate) type LibraryInit = fn(&mut BgWorkerList) -> Result<(), BgWorkerError>;

/// Compiled-in "libraries" for `shared_preload_libraries`.
pub(crate) static PRELOAD_LIBRARIES: &[(&str, LibraryInit)] = &[("pgipc_demo", register_demo)];

fn register_demo(list: &mut BgWorkerList) -> Result<(), BgWorkerError> {
    let mut w = BgWorkerSpec::new("pgipc demo worker", "pgipc_worker_sleep");
    w.restart = RestartPolicy::After(1);
    list.register_static(w)
}

/// Sleeps on its latch, counting wake-ups, until SIGTERM.
fn worker_sleep(env: &mut ChildEnv, _arg: i64) -> i32 {
    let me = match env.init_my_proc() {
        Ok(m) => m,
        Err(e) => {
            elog(Severity::Fatal, &e);
            return 1;
        }
    };
    loop {
        if signals::take(Pending::Term) {
            let t = env
                .worker
                .as_ref()
                .map_or_else(String::new, |w| w.type_name.clone());
            elog(
                Severity::Fatal,
                &format_args!("terminating background worker \"{t}\" due to administrator command"),
            );
            return 1;
        }
        if signals::take(Pending::Hup) {
            env.reload_settings();
        }
        let _ = wait_latch(
            Some(me.latch()),
            WaitEvents::LATCH_SET | WaitEvents::EXIT_ON_PM_DEATH,
            Some(Duration::from_secs(10)),
            pgipc_wait_event::WAIT_EVENT_EXTENSION,
        );
        me.latch().reset();
    }
}

/// Exits at once with `arg` as its code (for restart-policy tests).
fn worker_exit(env: &mut ChildEnv, arg: i64) -> i32 {
    if let Err(e) = env.mark_active() {
        elog(Severity::Fatal, &e);
        return 1;
    }
    arg.clamp(0, 255) as i32
}

/// A worker of `test_shm_mq`'s ring (PostgreSQL's `test_shm_mq_main`): takes a PGPROC, then
/// runs the crate's worker with the segment handle `arg`. Exits with code 1 when its queues
/// detach, as PostgreSQL's does (a never-restart worker is then forgotten).
fn test_shm_mq_worker(env: &mut ChildEnv, arg: i64) -> i32 {
    let me = match env.init_my_proc() {
        Ok(m) => m,
        Err(e) => {
            elog(Severity::Fatal, &e);
            return 1;
        }
    };
    // The queue handles keep the PGPROC (latch, proc number) until process exit.
    let me: &'static pgipc_proc::MyProc = Box::leak(Box::new(me));
    let wenv = pgipc_test_shm_mq::WorkerEnv {
        me,
        shmem: &env.shmem,
        dsm_impl: pgipc_dsm::DsmImpl::new(
            env.config.dynamic_shared_memory_type,
            env.config.data_dir.as_deref(),
        ),
        terminate_pending: &|| signals::is_pending(Pending::Term),
    };
    match pgipc_test_shm_mq::worker_main(&wenv, arg) {
        Ok(()) => 1,
        Err(e @ pgipc_test_shm_mq::TestShmMqError::Terminated) => {
            elog(Severity::Fatal, &e);
            1
        }
        Err(e) => {
            elog(Severity::Error, &e);
            1
        }
    }
}

/// A background worker's process: signal set-up, then its entry point.
pub(crate) fn bgworker_main(env: &mut ChildEnv) -> i32 {
    let Some(spec) = env.worker.clone() else {
        elog(
            Severity::Fatal,
            &"background worker started without a registration",
        );
        return 1;
    };
    // PostgreSQL titles a worker with its bgw_name (bgw_type is pg_stat_activity's).
    env.init_ps_display(&spec.name);
    for s in [Signal::SIGTERM, Signal::SIGHUP] {
        let _ = signals::catch(s);
    }
    let _ = signals::ignore(Signal::SIGINT);
    if let Err(e) = signals::unblock_for_child() {
        elog(
            Severity::Fatal,
            &format_args!("could not unblock signals: {e}"),
        );
        return 1;
    }
    if let Err(e) = pgipc_injection_point::injection_point!("bgworker-start") {
        elog(Severity::Fatal, &e);
        return 1;
    }
    match entry_point(&spec.function) {
        Some(f) => f(env, spec.main_arg),
        None => {
            elog(
                Severity::Fatal,
                &BgWorkerError::UnknownFunction(spec.function.clone()),
            );
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgipc_bgworker::{shmem_init, BgWorkerHandle, BGWORKER_CLASS_PARALLEL};
    use pgipc_shmem::Shmem;

    /// Stands in for the postmaster's pid in PMSignal, so that dynamic registrations can be
    /// made here: the SIGUSR1 they send ends it, which is all they need (a signal to its
    /// zombie still succeeds). Killed and reaped on drop.
    struct FakePostmaster(std::process::Child);

    impl FakePostmaster {
        fn start(pms: &pgipc_pmsignal::PMSignal) -> Self {
            let child = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("spawn sleep");
            pms.set_postmaster_pid(child.id() as i32);
            FakePostmaster(child)
        }
    }

    impl Drop for FakePostmaster {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn the_postmaster_refuses_a_function_it_does_not_have() {
        let s = BgWorkerSpec::new("w", "nope");
        assert!(
            s.sanity_check().is_ok(),
            "the shared check does not look it up"
        );
        assert!(matches!(check(&s), Err(BgWorkerError::UnknownFunction(_))));
        let mut l = BgWorkerList::new(2);
        assert!(matches!(
            l.register_static(s),
            Err(BgWorkerError::UnknownFunction(_))
        ));
        let mut s = BgWorkerSpec::new("w", "pgipc_worker_sleep");
        s.flags |= BGWORKER_CLASS_PARALLEL;
        assert!(matches!(check(&s), Err(BgWorkerError::ParallelRestart(_))));

        // A backend's registration of an unknown function: the slot is freed, no worker.
        let shm = Shmem::create_for_tests(1 << 20).expect("segment");
        let sh = shmem_init(&shm, 2).expect("bgworker array");
        let pms = pgipc_pmsignal::shmem_init(&shm, 4).expect("pmsignal");
        let _pm = FakePostmaster::start(&pms);
        l.publish(&sh);
        let h = sh
            .register_dynamic(&BgWorkerSpec::new("x", "nope"), 8, &pms)
            .expect("registered")
            .expect("a free slot");
        assert!(sh.in_use(h.slot()));
        l.state_change(true, &ChildList::default(), Some(&sh));
        assert!(
            !sh.in_use(h.slot()),
            "refused registrations free their slot"
        );
        assert!(l.due(PmState::Run, 10).is_empty());
        assert_eq!(sh.status(h), pgipc_bgworker::BgwHandleStatus::Stopped);
    }

    #[test]
    fn notify_pid_is_cleared_when_the_registrant_exits_or_is_unknown() {
        use crate::child::{BackendType, PmChild};
        let shm = Shmem::create_for_tests(1 << 20).expect("segment");
        let sh = shmem_init(&shm, 4).expect("bgworker array");
        let pms = pgipc_pmsignal::shmem_init(&shm, 4).expect("pmsignal");
        let _pm = FakePostmaster::start(&pms);
        let mut list = BgWorkerList::new(4);
        list.publish(&sh);
        // Two dynamic registrations: one by a backend the postmaster knows (pid 4242), one by
        // a pid that is not (or no longer) its child (4343, e.g. exited and reaped already).
        let mut children = ChildList::default();
        children.push(PmChild {
            pid: 4242,
            slot: 1,
            kind: BackendType::Backend,
            worker: None,
        });
        for pid in [4242, 4343] {
            let mut spec = BgWorkerSpec::new(&format!("w{pid}"), "pgipc_worker_sleep");
            spec.restart = RestartPolicy::Never;
            spec.notify_pid = pid;
            sh.register_dynamic(&spec, 8, &pms)
                .expect("registered")
                .expect("a free slot");
        }
        list.state_change(true, &children, Some(&sh));
        let notify_of = |list: &BgWorkerList, name: &str| {
            (0..4)
                .filter_map(|i| list.get(i))
                .find(|w| w.spec.name == name)
                .map(|w| (w.spec.notify_pid, w.shared_slot.expect("dynamic")))
                .expect("registered")
        };
        let slot_notify = |i: usize| sh.read_spec(i).map(|s| s.notify_pid);
        let (known, known_slot) = notify_of(&list, "w4242");
        let (unknown, unknown_slot) = notify_of(&list, "w4343");
        assert_eq!(known, 4242);
        assert_eq!(unknown, 0, "an unknown registrant must not be notified");
        assert_eq!(slot_notify(unknown_slot), Some(0));
        // The registrant exits: the postmaster stops notifying its pid (which may be reused).
        list.stop_notifications(4242, Some(&sh));
        assert_eq!(notify_of(&list, "w4242").0, 0);
        assert_eq!(slot_notify(known_slot), Some(0));
    }

    #[test]
    fn static_registration_limits_and_restart_policy() {
        let mut l = BgWorkerList::new(1);
        l.register_static(BgWorkerSpec::new("a", "pgipc_worker_sleep"))
            .expect("first");
        assert!(matches!(
            l.register_static(BgWorkerSpec::new("b", "pgipc_worker_sleep")),
            Err(BgWorkerError::TooMany { limit: 1 })
        ));
        assert_eq!(l.due(PmState::Startup, 10), Vec::<usize>::new());
        assert_eq!(l.due(PmState::Run, 10), vec![0]);
        l.started(0, 1234, None);
        assert!(l.due(PmState::Run, 10).is_empty());
        // Exit code 1: restarted after the interval (60 s by default).
        l.report_exit(0, Some(1), false, None);
        assert!(l.due(PmState::Run, 10).is_empty());
        assert!(l.next_start_in(PmState::Run).expect("waiting") > Duration::from_secs(50));
        // Exit code 0: forgotten.
        l.reset_after_crash();
        l.started(0, 1235, None);
        l.report_exit(0, Some(0), false, None);
        assert!(l.get(0).is_none());
    }

    /// A backend's registration in `sh` (through the crate's API, as a backend makes it).
    fn register(
        sh: &BgWorkerShared,
        pms: &pgipc_pmsignal::PMSignal,
        spec: &BgWorkerSpec,
    ) -> BgWorkerHandle {
        sh.register_dynamic(spec, 8, pms)
            .expect("registered")
            .expect("a free slot")
    }

    fn in_use(sh: &BgWorkerShared) -> Vec<bool> {
        (0..sh.len()).map(|i| sh.in_use(i)).collect()
    }

    #[test]
    fn a_crash_reset_republishes_the_surviving_workers_into_the_new_generation() {
        let cfg = pgipc_ipci::IpcConfig {
            max_worker_processes: 4,
            huge_pages: pgipc_shmem::HugePages::Off,
            ..Default::default()
        };
        let children = ChildList::default();
        let mut l = BgWorkerList::new(cfg.max_worker_processes);
        l.register_static(BgWorkerSpec::new("static", "pgipc_worker_sleep"))
            .expect("static");
        let gen1 = crate::shmem_setup::create_shared_state(&cfg, |sh| l.publish(sh))
            .expect("generation 1");
        let fake1 = FakePostmaster::start(gen1.pmsignal());
        assert!(matches!(
            l.register_static(BgWorkerSpec::new("late", "pgipc_worker_sleep")),
            Err(BgWorkerError::AfterShmemInit(_))
        ));
        // Static workers get a slot too, as in PostgreSQL.
        assert_eq!(in_use(gen1.bgworkers()), [true, false, false, false]);
        assert_eq!(l.get(0).and_then(|w| w.shared_slot), Some(0));

        let mut keep = BgWorkerSpec::new("dynamic, restartable", "pgipc_worker_sleep");
        keep.restart = RestartPolicy::After(30);
        keep.notify_pid = 4242;
        let mut never = BgWorkerSpec::new("dynamic, never restarted", "pgipc_worker_sleep");
        never.restart = RestartPolicy::Never;
        assert_eq!(register(gen1.bgworkers(), gen1.pmsignal(), &keep).slot(), 1);
        assert_eq!(
            register(gen1.bgworkers(), gen1.pmsignal(), &never).slot(),
            2
        );
        l.state_change(true, &children, Some(gen1.bgworkers()));
        let due = l.due(PmState::Run, 10);
        assert_eq!(due.len(), 3);
        for (n, &i) in due.iter().enumerate() {
            l.started(i, 1000 + n as i32, Some(gen1.bgworkers()));
        }
        // The crash: every worker dies with the others.
        for &i in &due {
            l.report_exit(i, None, true, Some(gen1.bgworkers()));
        }
        assert!(l.due(PmState::Run, 10).is_empty(), "crashed workers wait");

        l.reset_after_crash();
        drop(fake1);
        gen1.shutdown().expect("discard generation 1");
        let gen2 = crate::shmem_setup::create_shared_state(&cfg, |sh| l.publish(sh))
            .expect("generation 2");
        let _fake2 = FakePostmaster::start(gen2.pmsignal());
        // The static and the restartable dynamic worker are in the new array, due at once,
        // and nobody waits for them; the never-restart one is gone.
        assert_eq!(in_use(gen2.bgworkers()), [true, true, false, false]);
        let names: Vec<String> = (0..2)
            .filter_map(|i| gen2.bgworkers().read_spec(i))
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["static", "dynamic, restartable"]);
        assert_eq!(gen2.bgworkers().read_spec(1).map(|s| s.notify_pid), Some(0));
        let due = l.due(PmState::Run, 10);
        assert_eq!(due.len(), 2);
        assert!(due
            .iter()
            .all(|&i| l.get(i).and_then(|w| w.shared_slot) == Some(i)));

        // A backend of the new generation registers a worker: the postmaster sees it and
        // reports its pid in the new array (the bug: it kept no view of the new array).
        let fresh = BgWorkerSpec::new("after the crash", "pgipc_worker_sleep");
        let h = register(gen2.bgworkers(), gen2.pmsignal(), &fresh);
        assert_eq!(h.slot(), 2);
        l.state_change(true, &children, Some(gen2.bgworkers()));
        let due = l.due(PmState::Run, 10);
        assert_eq!(due.len(), 3);
        let new = *due
            .iter()
            .find(|&&i| l.get(i).and_then(|w| w.shared_slot) == Some(2))
            .expect("the new registration");
        l.started(new, 2000, Some(gen2.bgworkers()));
        assert_eq!(gen2.bgworkers().pid(2), Some(2000));
        assert_eq!(
            gen2.bgworkers().status(h),
            pgipc_bgworker::BgwHandleStatus::Started(2000)
        );
        gen2.shutdown().expect("discard generation 2");
    }
}
