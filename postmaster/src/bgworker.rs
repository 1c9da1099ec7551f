//! Background workers (PostgreSQL's bgworker.c): processes the postmaster starts, restarts and
//! stops on behalf of the server's own code (static workers, registered before shared memory
//! exists) or of a backend (dynamic workers, registered at run time through shared slots).
//!
//! ```text
//!  "Background Worker Data" (main segment)
//!  ┌ header: total_slots, parallel_register_count, parallel_terminate_count ┐
//!  ├ slot 0: in_use, terminate, pid, generation, worker registration       ┤
//!  ├ …                                                                     ┤
//!  └ slot max_worker_processes-1                                           ┘
//!  backend: BackgroundWorkerLock X ─► pick a free slot, generation+1, fill, in_use = 1 (release)
//!           ─► PMSIGNAL_BACKGROUND_WORKER_CHANGE ─► postmaster copies it into its list
//!  postmaster: reads slots with acquire loads, never takes the lock; writes pid on start
//!              (0 once gone) and frees the slot (in_use = 0, release) when the worker is done
//!  new segment (start-up, crash reset): the postmaster publishes every registered worker,
//!              static or dynamic, into slots 0.. of the fresh array before any child runs
//! ```
//!
//! The list ([`BgWorkerList`]) is the postmaster's and outlives every generation of shared
//! memory; the array belongs to one generation (`startup::PmShmem`). A crash reset keeps
//! every worker but the never-restart ones (PostgreSQL's `ResetBackgroundWorkerCrashTimes`),
//! and [`BgWorkerList::publish`] gives the survivors slots in the new array.
//!
//! Worker code must be compiled into the binary: [`ENTRY_POINTS`] maps function names to
//! Rust functions (PostgreSQL loads `bgw_library_name` / `bgw_function_name` with dlopen).
//! `shared_preload_libraries` names compiled-in "libraries" ([`PRELOAD_LIBRARIES`]) whose
//! start-up registers static workers.

use crate::child::ChildList;
use crate::elog::{elog, Severity};
use crate::launch::ChildEnv;
use crate::server::PmState;
use crate::signals::{self, Pending};
use nix::sys::signal::Signal;
use pgipc_lwlock::{LWLockMode, MainLWLockId};
use pgipc_shmem::{Shared, Shmem, ShmemSafe};
use pgipc_waiteventset::{wait_latch, WaitEvents};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The shared array's name in the Shmem Index.
pub const BGWORKER_DATA_NAME: &str = "Background Worker Data";
/// Length of the name, type and function fields (`BGW_MAXLEN`).
pub const BGW_MAXLEN: usize = 96;
/// `BGW_NEVER_RESTART`.
pub const BGW_NEVER_RESTART: i32 = -1;
/// `BGW_DEFAULT_RESTART_INTERVAL` (seconds).
pub const BGW_DEFAULT_RESTART_INTERVAL: i32 = 60;
/// `BGWORKER_SHMEM_ACCESS`.
pub const BGWORKER_SHMEM_ACCESS: u32 = 0x0001;
/// `BGWORKER_BACKEND_DATABASE_CONNECTION`.
pub const BGWORKER_BACKEND_DATABASE_CONNECTION: u32 = 0x0002;
/// `BGWORKER_CLASS_PARALLEL`.
pub const BGWORKER_CLASS_PARALLEL: u32 = 0x0010;
/// A slot whose worker has not started yet (`InvalidPid`).
const INVALID_PID: i32 = -1;

/// When a worker may start (`BgWorkerStartTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BgwStartTime {
    /// With the postmaster, before start-up is over.
    PostmasterStart = 0,
    /// Once the database is consistent.
    ConsistentState = 1,
    /// Once recovery is finished (normal running).
    RecoveryFinished = 2,
}

/// What happens when a worker exits with code 1 (`bgw_restart_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// `BGW_NEVER_RESTART`: forgotten.
    Never,
    /// Restarted this many seconds after it exited.
    After(u32),
}

impl RestartPolicy {
    fn to_raw(self) -> i32 {
        match self {
            RestartPolicy::Never => BGW_NEVER_RESTART,
            RestartPolicy::After(s) => s as i32,
        }
    }
    fn from_raw(v: i32) -> Option<Self> {
        match v {
            BGW_NEVER_RESTART => Some(RestartPolicy::Never),
            s if (0..=86_400).contains(&s) => Some(RestartPolicy::After(s as u32)),
            _ => None,
        }
    }
}

/// A worker's registration (PostgreSQL's `BackgroundWorker`), process-local form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgWorkerSpec {
    /// `bgw_name`: appears in log lines.
    pub name: String,
    /// `bgw_type`.
    pub type_name: String,
    /// `bgw_function_name`: a key of [`ENTRY_POINTS`].
    pub function: String,
    /// `bgw_flags`.
    pub flags: u32,
    /// `bgw_start_time`.
    pub start_time: BgwStartTime,
    /// `bgw_restart_time`.
    pub restart: RestartPolicy,
    /// `bgw_main_arg`.
    pub main_arg: i64,
    /// `bgw_notify_pid` (0: none).
    pub notify_pid: i32,
}

/// Errors of worker registration, with PostgreSQL's texts (SQLSTATE 22023 unless noted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BgWorkerError {
    /// No `BGWORKER_SHMEM_ACCESS`.
    #[error("background worker \"{0}\": background workers without shared memory access are not supported")]
    NoShmemAccess(String),
    /// Database access asked for at postmaster start.
    #[error(
        "background worker \"{0}\": cannot request database access if starting at postmaster start"
    )]
    DatabaseAtStart(String),
    /// A restart interval out of range.
    #[error("background worker \"{0}\": invalid restart interval")]
    BadRestart(String),
    /// A parallel worker that asks to be restarted.
    #[error("background worker \"{0}\": parallel workers may not be configured for restart")]
    ParallelRestart(String),
    /// Not compiled in.
    #[error("could not find function \"{0}\" in the server's built-in background workers")]
    UnknownFunction(String),
    /// Too many static workers (SQLSTATE 53400).
    #[error("too many background workers")]
    TooMany {
        /// `max_worker_processes`.
        limit: u32,
    },
    /// A static registration after shared memory was created.
    #[error("cannot register background worker \"{0}\" after shmem init")]
    AfterShmemInit(String),
    /// Shared memory not reachable.
    #[error("{0}")]
    Shmem(String),
}

impl BgWorkerError {
    /// The SQLSTATE.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            BgWorkerError::TooMany { .. } => "53400",
            BgWorkerError::UnknownFunction(_) => "42883",
            BgWorkerError::AfterShmemInit(_) | BgWorkerError::Shmem(_) => "XX000",
            _ => "22023",
        }
    }
}

impl BgWorkerSpec {
    /// A worker running `function` with PostgreSQL's defaults (shared memory access, start
    /// when recovery is finished, restart after 60 s).
    pub fn new(name: &str, function: &str) -> Self {
        BgWorkerSpec {
            name: name.to_owned(),
            type_name: name.to_owned(),
            function: function.to_owned(),
            flags: BGWORKER_SHMEM_ACCESS,
            start_time: BgwStartTime::RecoveryFinished,
            restart: RestartPolicy::After(BGW_DEFAULT_RESTART_INTERVAL as u32),
            main_arg: 0,
            notify_pid: 0,
        }
    }

    /// PostgreSQL's `SanityCheckBackgroundWorker`.
    pub fn sanity_check(&self) -> Result<(), BgWorkerError> {
        let n = || self.name.clone();
        if self.flags & BGWORKER_SHMEM_ACCESS == 0 {
            return Err(BgWorkerError::NoShmemAccess(n()));
        }
        if self.flags & BGWORKER_BACKEND_DATABASE_CONNECTION != 0
            && self.start_time == BgwStartTime::PostmasterStart
        {
            return Err(BgWorkerError::DatabaseAtStart(n()));
        }
        if let RestartPolicy::After(s) = self.restart {
            if s > 86_400 {
                return Err(BgWorkerError::BadRestart(n()));
            }
            if self.flags & BGWORKER_CLASS_PARALLEL != 0 {
                return Err(BgWorkerError::ParallelRestart(n()));
            }
        }
        if entry_point(&self.function).is_none() {
            return Err(BgWorkerError::UnknownFunction(self.function.clone()));
        }
        Ok(())
    }

    /// One-line encoding for the exec'd child's environment.
    pub fn encode(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('\u{1f}', "\\u");
        [
            esc(&self.name),
            esc(&self.type_name),
            esc(&self.function),
            self.flags.to_string(),
            (self.start_time as u32).to_string(),
            self.restart.to_raw().to_string(),
            self.main_arg.to_string(),
            self.notify_pid.to_string(),
        ]
        .join("\u{1f}")
    }

    /// The inverse of [`encode`](Self::encode).
    pub fn decode(s: &str) -> Option<Self> {
        let unesc = |s: &str| s.replace("\\u", "\u{1f}").replace("\\\\", "\\");
        let f: Vec<&str> = s.split('\u{1f}').collect();
        if f.len() != 8 {
            return None;
        }
        Some(BgWorkerSpec {
            name: unesc(f[0]),
            type_name: unesc(f[1]),
            function: unesc(f[2]),
            flags: f[3].parse().ok()?,
            start_time: start_time_from(f[4].parse().ok()?)?,
            restart: RestartPolicy::from_raw(f[5].parse().ok()?)?,
            main_arg: f[6].parse().ok()?,
            notify_pid: f[7].parse().ok()?,
        })
    }
}

fn start_time_from(v: u32) -> Option<BgwStartTime> {
    match v {
        0 => Some(BgwStartTime::PostmasterStart),
        1 => Some(BgwStartTime::ConsistentState),
        2 => Some(BgwStartTime::RecoveryFinished),
        _ => None,
    }
}

// ---- shared memory ---------------------------------------------------------------------------

/// A fixed-size text field.
#[repr(C)]
#[derive(Debug)]
pub struct Name([AtomicU32; BGW_MAXLEN / 4]);

impl Name {
    fn store(&self, s: &str) {
        let b = s.as_bytes();
        let n = b.len().min(BGW_MAXLEN - 1);
        let mut buf = [0u8; BGW_MAXLEN];
        buf[..n].copy_from_slice(&b[..n]);
        for (i, w) in self.0.iter().enumerate() {
            let mut q = [0u8; 4];
            q.copy_from_slice(&buf[i * 4..i * 4 + 4]);
            w.store(u32::from_ne_bytes(q), Ordering::Relaxed);
        }
    }
    fn load(&self) -> String {
        let mut buf = Vec::with_capacity(BGW_MAXLEN);
        for w in &self.0 {
            buf.extend_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
        }
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    }
}

/// One shared slot (`BackgroundWorkerSlot`).
#[repr(C)]
#[derive(Debug)]
pub struct BgWorkerSlot {
    in_use: AtomicU32,
    terminate: AtomicU32,
    pid: AtomicI32,
    flags: AtomicU32,
    generation: AtomicU64,
    start_time: AtomicU32,
    restart: AtomicI32,
    main_arg: AtomicU64,
    notify_pid: AtomicI32,
    _pad: u32,
    name: Name,
    type_name: Name,
    function: Name,
}

impl BgWorkerSlot {
    /// Writes a registration into a slot that is not in use (its writer holds
    /// BackgroundWorkerLock, or is the postmaster before any child runs); `in_use` is set
    /// afterwards by the caller, with release ordering.
    fn fill(&self, spec: &BgWorkerSpec) {
        self.name.store(&spec.name);
        self.type_name.store(&spec.type_name);
        self.function.store(&spec.function);
        self.flags.store(spec.flags, Ordering::Relaxed);
        self.start_time
            .store(spec.start_time as u32, Ordering::Relaxed);
        self.restart.store(spec.restart.to_raw(), Ordering::Relaxed);
        self.main_arg.store(spec.main_arg as u64, Ordering::Relaxed);
        self.notify_pid.store(spec.notify_pid, Ordering::Relaxed);
        self.pid.store(INVALID_PID, Ordering::Relaxed);
        self.terminate.store(0, Ordering::Relaxed);
    }
}

/// The array's header (`BackgroundWorkerArray`).
#[repr(C)]
#[derive(Debug)]
pub struct BgWorkerArrayHdr {
    total_slots: AtomicU32,
    parallel_register_count: AtomicU32,
    parallel_terminate_count: AtomicU32,
    _pad: u32,
}

// SAFETY: repr(C), atomics and plain integers only, valid when all-zero, no pointers.
unsafe impl ShmemSafe for BgWorkerSlot {}
// SAFETY: as above.
unsafe impl ShmemSafe for BgWorkerArrayHdr {}

/// Handle on the shared array.
#[derive(Debug, Clone)]
pub struct BgWorkerShared {
    hdr: Shared<BgWorkerArrayHdr>,
    slots: Shared<[BgWorkerSlot]>,
    shmem: Shmem,
}

/// Bytes the array needs (`BackgroundWorkerShmemSize`).
pub fn shmem_size(max_worker_processes: u32) -> usize {
    std::mem::size_of::<BgWorkerArrayHdr>()
        + max_worker_processes as usize * std::mem::size_of::<BgWorkerSlot>()
        + 2 * 128
}

/// Creates or finds the array (`BackgroundWorkerShmemInit`).
pub fn shmem_init(shmem: &Shmem, max_worker_processes: u32) -> Result<BgWorkerShared, String> {
    let (hdr, kind) = shmem
        .init_struct::<BgWorkerArrayHdr>(BGWORKER_DATA_NAME)
        .map_err(|e| e.to_string())?;
    let (slots, _) = shmem
        .init_slice::<BgWorkerSlot>("Background Worker Slots", max_worker_processes as usize)
        .map_err(|e| e.to_string())?;
    if kind == pgipc_shmem::InitKind::Created {
        hdr.total_slots
            .store(max_worker_processes, Ordering::Relaxed);
        for s in slots.iter() {
            s.pid.store(INVALID_PID, Ordering::Relaxed);
        }
    }
    Ok(BgWorkerShared {
        hdr,
        slots,
        shmem: shmem.clone(),
    })
}

/// A dynamic worker as its registering backend sees it (`BackgroundWorkerHandle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BgWorkerHandle {
    /// Slot index.
    pub slot: usize,
    /// The slot's generation when registered.
    pub generation: u64,
}

/// `BgwHandleStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgwHandleStatus {
    /// Running, with this pid.
    Started(i32),
    /// Registered, not started yet.
    NotYetStarted,
    /// Exited (or its slot was reused).
    Stopped,
    /// The postmaster died.
    PostmasterDied,
}

impl BgWorkerShared {
    /// PostgreSQL's `RegisterDynamicBackgroundWorker`: `Ok(None)` when no slot is free (or the
    /// parallel-worker limit is reached); then signals the postmaster.
    pub fn register_dynamic(
        &self,
        spec: &BgWorkerSpec,
        max_parallel_workers: u32,
        pmsignal: &pgipc_pmsignal::PMSignal,
    ) -> Result<Option<BgWorkerHandle>, BgWorkerError> {
        spec.sanity_check()?;
        let parallel = spec.flags & BGWORKER_CLASS_PARALLEL != 0;
        let me = self.shmem.lwlock_proc();
        let lock = self.shmem.main_lwlock(MainLWLockId::BackgroundWorker);
        let handle = {
            let _g = lock.acquire(&me, LWLockMode::Exclusive);
            let reg = self.hdr.parallel_register_count.load(Ordering::Relaxed);
            let term = self.hdr.parallel_terminate_count.load(Ordering::Relaxed);
            if parallel && reg.wrapping_sub(term) >= max_parallel_workers {
                return Ok(None);
            }
            let Some((i, s)) = self
                .slots
                .iter()
                .enumerate()
                .find(|(_, s)| s.in_use.load(Ordering::Acquire) == 0)
            else {
                return Ok(None);
            };
            s.fill(spec);
            let generation = s.generation.fetch_add(1, Ordering::Relaxed) + 1;
            if parallel {
                self.hdr
                    .parallel_register_count
                    .fetch_add(1, Ordering::Relaxed);
            }
            // Publish: the postmaster reads the fields only after seeing in_use with acquire.
            s.in_use.store(1, Ordering::Release);
            BgWorkerHandle {
                slot: i,
                generation,
            }
        };
        pmsignal
            .send_postmaster_signal(pgipc_pmsignal::PMSignalReason::BackgroundWorkerChange)
            .map_err(|e| BgWorkerError::Shmem(e.to_string()))?;
        Ok(Some(handle))
    }

    /// PostgreSQL's `GetBackgroundWorkerPid`.
    pub fn status(&self, h: BgWorkerHandle) -> BgwHandleStatus {
        if !pgipc_waiteventset::postmaster_death::postmaster_is_alive() {
            return BgwHandleStatus::PostmasterDied;
        }
        let Some(s) = self.slots.get(h.slot) else {
            return BgwHandleStatus::Stopped;
        };
        if s.generation.load(Ordering::Acquire) != h.generation
            || s.in_use.load(Ordering::Acquire) == 0
        {
            return BgwHandleStatus::Stopped;
        }
        match s.pid.load(Ordering::Acquire) {
            INVALID_PID => BgwHandleStatus::NotYetStarted,
            0 => BgwHandleStatus::Stopped,
            pid => BgwHandleStatus::Started(pid),
        }
    }

    /// PostgreSQL's `TerminateBackgroundWorker`.
    pub fn terminate(&self, h: BgWorkerHandle, pmsignal: &pgipc_pmsignal::PMSignal) {
        let Some(s) = self.slots.get(h.slot) else {
            return;
        };
        let me = self.shmem.lwlock_proc();
        let lock = self.shmem.main_lwlock(MainLWLockId::BackgroundWorker);
        let signal = {
            let _g = lock.acquire(&me, LWLockMode::Exclusive);
            if s.generation.load(Ordering::Relaxed) == h.generation
                && s.in_use.load(Ordering::Relaxed) != 0
            {
                s.terminate.store(1, Ordering::Release);
                true
            } else {
                false
            }
        };
        if signal {
            let _ = pmsignal
                .send_postmaster_signal(pgipc_pmsignal::PMSignalReason::BackgroundWorkerChange);
        }
    }

    /// Waits until the worker started or can no longer start, at most `timeout`
    /// (`WaitForBackgroundWorkerStartup`).
    pub fn wait_for_startup(&self, h: BgWorkerHandle, timeout: Duration) -> BgwHandleStatus {
        self.wait_until(h, timeout, |s| !matches!(s, BgwHandleStatus::NotYetStarted))
    }

    /// Waits until the worker stopped, at most `timeout` (`WaitForBackgroundWorkerShutdown`).
    pub fn wait_for_shutdown(&self, h: BgWorkerHandle, timeout: Duration) -> BgwHandleStatus {
        self.wait_until(h, timeout, |s| {
            matches!(
                s,
                BgwHandleStatus::Stopped | BgwHandleStatus::PostmasterDied
            )
        })
    }

    /// Checks the slot every 5 ms until `done` holds or `timeout` passes. (PostgreSQL sleeps on
    /// the latch that the postmaster's SIGUSR1 to `bgw_notify_pid` sets; a short poll needs no
    /// latch from the caller and reacts as fast at these rates.)
    fn wait_until(
        &self,
        h: BgWorkerHandle,
        timeout: Duration,
        done: impl Fn(BgwHandleStatus) -> bool,
    ) -> BgwHandleStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status(h);
            if done(s) || Instant::now() >= deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn read_spec(&self, i: usize) -> Option<BgWorkerSpec> {
        let s = self.slots.get(i)?;
        Some(BgWorkerSpec {
            name: s.name.load(),
            type_name: s.type_name.load(),
            function: s.function.load(),
            flags: s.flags.load(Ordering::Relaxed),
            start_time: start_time_from(s.start_time.load(Ordering::Relaxed))?,
            restart: RestartPolicy::from_raw(s.restart.load(Ordering::Relaxed))?,
            main_arg: s.main_arg.load(Ordering::Relaxed) as i64,
            notify_pid: s.notify_pid.load(Ordering::Relaxed),
        })
    }

    /// Frees a slot (postmaster), counting a parallel worker as terminated.
    fn free_slot(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            if s.flags.load(Ordering::Relaxed) & BGWORKER_CLASS_PARALLEL != 0 {
                self.hdr
                    .parallel_terminate_count
                    .fetch_add(1, Ordering::Relaxed);
            }
            s.pid.store(0, Ordering::Release);
            s.in_use.store(0, Ordering::Release);
        }
    }
}

// ---- the postmaster's list -------------------------------------------------------------------

/// One worker the postmaster knows (`RegisteredBgWorker`).
#[derive(Debug, Clone)]
pub struct RegisteredWorker {
    /// Its registration.
    pub spec: BgWorkerSpec,
    /// Running pid.
    pub pid: Option<i32>,
    /// When it last crashed or exited with 1 (`rw_crashed_at`).
    pub crashed_at: Option<Instant>,
    /// Its slot in the current generation's shared array (`rw_shmem_slot`): every worker
    /// has one once shared memory is published; `None` between a crash reset and the next
    /// publication.
    pub shared_slot: Option<usize>,
    /// Termination requested through the slot.
    pub terminate: bool,
}

/// The postmaster's `BackgroundWorkerList`: process-local, it outlives every generation of
/// shared memory. It keeps no view of the shared array: the methods that read or write slots
/// take the current generation's [`BgWorkerShared`] (from `startup::PmShmem`), so a view of a
/// discarded segment cannot be kept here by mistake.
#[derive(Debug, Default)]
pub struct BgWorkerList {
    workers: Vec<Option<RegisteredWorker>>,
    /// Set once shared memory was first published: static registration is over.
    published: bool,
    max_workers: u32,
}

impl BgWorkerList {
    /// An empty list for `max_worker_processes`.
    pub fn new(max_workers: u32) -> Self {
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
    pub fn publish(&mut self, sh: &BgWorkerShared) {
        self.published = true;
        self.workers.retain(Option::is_some);
        let mut kept = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.drain(..).flatten().enumerate() {
            let Some(s) = sh.slots.get(i) else {
                elog(
                    Severity::Log,
                    &format_args!(
                        "no background worker slot left for \"{}\"; not restarting it",
                        w.spec.name
                    ),
                );
                continue;
            };
            let mut w = w;
            w.spec.notify_pid = 0;
            w.shared_slot = Some(i);
            s.fill(&w.spec);
            s.generation.store(0, Ordering::Relaxed);
            // Publish: the slot is the postmaster's from here on.
            s.in_use.store(1, Ordering::Release);
            kept.push(Some(w));
        }
        self.workers = kept;
    }

    /// PostgreSQL's `RegisterBackgroundWorker` (static, before shared memory exists).
    pub fn register_static(&mut self, spec: BgWorkerSpec) -> Result<(), BgWorkerError> {
        if self.published {
            return Err(BgWorkerError::AfterShmemInit(spec.name));
        }
        spec.sanity_check()?;
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
    pub fn get(&self, i: usize) -> Option<&RegisteredWorker> {
        self.workers.get(i)?.as_ref()
    }

    fn forget(&mut self, i: usize, sh: Option<&BgWorkerShared>) {
        if let Some(Some(w)) = self.workers.get(i) {
            if let (Some(slot), Some(sh)) = (w.shared_slot, sh) {
                sh.free_slot(slot);
            }
            if w.spec.notify_pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(w.spec.notify_pid),
                    Signal::SIGUSR1,
                );
            }
            self.workers[i] = None;
        }
    }

    /// PostgreSQL's `BackgroundWorkerStateChange`: picks up new registrations and termination
    /// requests from the shared slots of `sh`, the current generation's array.
    pub fn state_change(
        &mut self,
        allowed: bool,
        children: &ChildList,
        sh: Option<&BgWorkerShared>,
    ) {
        let Some(sh) = sh else {
            return;
        };
        for i in 0..sh.slots.len() {
            let s = &sh.slots[i];
            if s.in_use.load(Ordering::Acquire) == 0 {
                continue;
            }
            let known = self
                .workers
                .iter()
                .position(|w| w.as_ref().is_some_and(|w| w.shared_slot == Some(i)));
            let terminate = s.terminate.load(Ordering::Acquire) != 0;
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
                    match spec {
                        Some(mut spec) if allowed && !terminate && spec.sanity_check().is_ok() => {
                            // Notify only a process we know is ours: the registrant may have
                            // exited (and been reaped, its pid free for reuse) since it
                            // registered (PostgreSQL's PostmasterMarkPIDForWorkerNotify).
                            if spec.notify_pid != 0 && children.find(spec.notify_pid).is_none() {
                                spec.notify_pid = 0;
                                s.notify_pid.store(0, Ordering::Relaxed);
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
                            let notify = other
                                .map(|s| s.notify_pid)
                                .filter(|p| *p > 0 && children.find(*p).is_some())
                                .unwrap_or(0);
                            sh.free_slot(i);
                            if notify > 0 {
                                let _ = nix::sys::signal::kill(
                                    nix::unistd::Pid::from_raw(notify),
                                    Signal::SIGUSR1,
                                );
                            }
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
    pub fn due(&mut self, state: PmState, max: usize) -> Vec<usize> {
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
    pub fn next_start_in(&self, state: PmState) -> Option<Duration> {
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
    pub fn started(&mut self, i: usize, pid: i32, sh: Option<&BgWorkerShared>) {
        if let Some(Some(w)) = self.workers.get_mut(i) {
            w.pid = Some(pid);
            if let (Some(slot), Some(sh)) = (w.shared_slot, sh) {
                if let Some(s) = sh.slots.get(slot) {
                    s.pid.store(pid, Ordering::Release);
                }
            }
            if w.spec.notify_pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(w.spec.notify_pid),
                    Signal::SIGUSR1,
                );
            }
        }
    }

    /// A start that failed counts as a crash (retried after the restart interval).
    pub fn mark_crashed(&mut self, i: usize) {
        if let Some(Some(w)) = self.workers.get_mut(i) {
            w.crashed_at = Some(Instant::now());
        }
    }

    /// After a worker exited (PostgreSQL's `CleanupBackgroundWorker` + restart policy).
    pub fn report_exit(
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
            if let Some(s) = sh.slots.get(slot) {
                s.pid
                    .store(if forget { 0 } else { INVALID_PID }, Ordering::Release);
            }
        }
        if forget {
            self.forget(i, sh);
        } else if w.spec.notify_pid > 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(w.spec.notify_pid),
                Signal::SIGUSR1,
            );
        }
    }

    /// The process `pid` exited: no worker notifies it any more, since its pid may be reused
    /// by an unrelated process (PostgreSQL's `BackgroundWorkerStopNotifications`, which the
    /// postmaster runs when it reaps a child). The copies in `sh`'s slots (the current
    /// generation's array) are cleared too.
    pub fn stop_notifications(&mut self, pid: i32, sh: Option<&BgWorkerShared>) {
        if pid <= 0 {
            return;
        }
        for w in self.workers.iter_mut().flatten() {
            if w.spec.notify_pid == pid {
                w.spec.notify_pid = 0;
                if let (Some(slot), Some(sh)) = (w.shared_slot, sh) {
                    if let Some(s) = sh.slots.get(slot) {
                        s.notify_pid.store(0, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// PM_STOP_BACKENDS: forget not-started workers whose registrant waits for them.
    pub fn forget_unstarted_with_notify(&mut self, sh: Option<&BgWorkerShared>) {
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
    pub fn reset_after_crash(&mut self) {
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
pub type WorkerMain = fn(&mut ChildEnv, i64) -> i32;

/// The worker functions compiled into the server (what `bgw_function_name` may name).
pub static ENTRY_POINTS: &[(&str, WorkerMain)] = &[
    ("pgipc_worker_sleep", worker_sleep),
    ("pgipc_worker_exit", worker_exit),
];

/// Looks a function up in [`ENTRY_POINTS`].
pub fn entry_point(name: &str) -> Option<WorkerMain> {
    ENTRY_POINTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// A compiled-in library's start-up (its `_PG_init`): registers static workers.
pub type LibraryInit = fn(&mut BgWorkerList) -> Result<(), BgWorkerError>;

/// Compiled-in "libraries" for `shared_preload_libraries`.
pub static PRELOAD_LIBRARIES: &[(&str, LibraryInit)] = &[("pgipc_demo", register_demo)];

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
            0x0900_0000,
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

/// A background worker's process: signal set-up, then its entry point.
pub fn bgworker_main(env: &mut ChildEnv) -> i32 {
    let Some(spec) = env.worker.clone() else {
        elog(
            Severity::Fatal,
            &"background worker started without a registration",
        );
        return 1;
    };
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

    #[test]
    fn spec_round_trips_through_the_environment_encoding() {
        let mut s = BgWorkerSpec::new("we\u{1f}ird\\name", "pgipc_worker_exit");
        s.main_arg = -5;
        s.notify_pid = 42;
        s.restart = RestartPolicy::Never;
        assert_eq!(BgWorkerSpec::decode(&s.encode()), Some(s));
        assert_eq!(BgWorkerSpec::decode("garbage"), None);
    }

    #[test]
    fn sanity_checks_use_postgres_texts() {
        let mut s = BgWorkerSpec::new("w", "pgipc_worker_sleep");
        s.flags = 0;
        assert_eq!(
            s.sanity_check().unwrap_err().to_string(),
            "background worker \"w\": background workers without shared memory access are not supported"
        );
        let mut s = BgWorkerSpec::new("w", "pgipc_worker_sleep");
        s.flags |= BGWORKER_CLASS_PARALLEL;
        assert!(matches!(
            s.sanity_check(),
            Err(BgWorkerError::ParallelRestart(_))
        ));
        let s = BgWorkerSpec::new("w", "nope");
        assert!(matches!(
            s.sanity_check(),
            Err(BgWorkerError::UnknownFunction(_))
        ));
    }

    #[test]
    fn notify_pid_is_cleared_when_the_registrant_exits_or_is_unknown() {
        use crate::child::{BackendType, PmChild};
        let shm = Shmem::create_for_tests(1 << 20).expect("segment");
        let sh = shmem_init(&shm, 4).expect("bgworker array");
        let pms = pgipc_pmsignal::shmem_init(&shm, 4).expect("pmsignal");
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
            // The slot is published before the postmaster is signalled; there is no
            // postmaster here, so only that last step fails.
            assert!(matches!(
                sh.register_dynamic(&spec, 8, &pms),
                Err(BgWorkerError::Shmem(_))
            ));
        }
        list.state_change(true, &children, Some(&sh));
        let notify_of = |list: &BgWorkerList, name: &str| {
            (0..4)
                .filter_map(|i| list.get(i))
                .find(|w| w.spec.name == name)
                .map(|w| (w.spec.notify_pid, w.shared_slot.expect("dynamic")))
                .expect("registered")
        };
        let (known, known_slot) = notify_of(&list, "w4242");
        let (unknown, unknown_slot) = notify_of(&list, "w4343");
        assert_eq!(known, 4242);
        assert_eq!(unknown, 0, "an unknown registrant must not be notified");
        assert_eq!(sh.slots[unknown_slot].notify_pid.load(Ordering::Relaxed), 0);
        // The registrant exits: the postmaster stops notifying its pid (which may be reused).
        list.stop_notifications(4242, Some(&sh));
        assert_eq!(notify_of(&list, "w4242").0, 0);
        assert_eq!(sh.slots[known_slot].notify_pid.load(Ordering::Relaxed), 0);
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

    /// What a backend's `register_dynamic` leaves in slot `i` (written directly: no other
    /// process exists here, so BackgroundWorkerLock is not needed).
    fn register_in_slot(sh: &BgWorkerShared, i: usize, spec: &BgWorkerSpec) {
        let s = &sh.slots[i];
        assert_eq!(s.in_use.load(Ordering::Acquire), 0, "slot {i} is free");
        s.fill(spec);
        s.generation.fetch_add(1, Ordering::Relaxed);
        s.in_use.store(1, Ordering::Release);
    }

    fn in_use(sh: &BgWorkerShared) -> Vec<u32> {
        sh.slots
            .iter()
            .map(|s| s.in_use.load(Ordering::Acquire))
            .collect()
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
        let gen1 = crate::startup::create_shared_state(&cfg, &mut l).expect("generation 1");
        assert!(matches!(
            l.register_static(BgWorkerSpec::new("late", "pgipc_worker_sleep")),
            Err(BgWorkerError::AfterShmemInit(_))
        ));
        // Static workers get a slot too, as in PostgreSQL.
        assert_eq!(in_use(gen1.bgworkers()), [1, 0, 0, 0]);
        assert_eq!(l.get(0).and_then(|w| w.shared_slot), Some(0));

        let mut keep = BgWorkerSpec::new("dynamic, restartable", "pgipc_worker_sleep");
        keep.restart = RestartPolicy::After(30);
        keep.notify_pid = 4242;
        let mut never = BgWorkerSpec::new("dynamic, never restarted", "pgipc_worker_sleep");
        never.restart = RestartPolicy::Never;
        register_in_slot(gen1.bgworkers(), 1, &keep);
        register_in_slot(gen1.bgworkers(), 2, &never);
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
        gen1.shutdown().expect("discard generation 1");
        let gen2 = crate::startup::create_shared_state(&cfg, &mut l).expect("generation 2");
        // The static and the restartable dynamic worker are in the new array, due at once,
        // and nobody waits for them; the never-restart one is gone.
        assert_eq!(in_use(gen2.bgworkers()), [1, 1, 0, 0]);
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
        register_in_slot(gen2.bgworkers(), 2, &fresh);
        l.state_change(true, &children, Some(gen2.bgworkers()));
        let due = l.due(PmState::Run, 10);
        assert_eq!(due.len(), 3);
        let new = *due
            .iter()
            .find(|&&i| l.get(i).and_then(|w| w.shared_slot) == Some(2))
            .expect("the new registration");
        l.started(new, 2000, Some(gen2.bgworkers()));
        assert_eq!(gen2.bgworkers().slots[2].pid.load(Ordering::Acquire), 2000);
        gen2.shutdown().expect("discard generation 2");
    }
}
