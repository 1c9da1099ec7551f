//! "Background Worker Data": the slot array in the main segment, and the handle every process
//! uses on it (`BackgroundWorkerShmemInit`, `RegisterDynamicBackgroundWorker`,
//! `GetBackgroundWorkerPid`, `WaitForBackgroundWorkerStartup` / `Shutdown`,
//! `TerminateBackgroundWorker`).

use crate::spec::{BgWorkerError, BgWorkerSpec, BgwStartTime, RestartPolicy, BGW_MAXLEN};
use crate::{
    BGWORKER_CLASS_PARALLEL, BGWORKER_DATA_NAME, WAIT_EVENT_BGWORKER_SHUTDOWN,
    WAIT_EVENT_BGWORKER_STARTUP,
};
use pgipc_latch::{Latch, OwnedLatch};
use pgipc_lwlock::{LWLockMode, MainLWLockId};
use pgipc_pmsignal::{PMSignal, PMSignalReason};
use pgipc_shmem::{add_size, mul_size, InitKind, Shared, Shmem, ShmemSafe, SizeError};
use pgipc_waiteventset::WaitEvents;
use std::mem::size_of;
use std::ops::Deref;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A slot whose worker has not started yet (`InvalidPid`).
const INVALID_PID: i32 = -1;

/// Longest sleep of a wait between two looks at the slot. The postmaster's SIGUSR1 to
/// `bgw_notify_pid` sets the caller's latch at once; this only bounds what a lost wake-up
/// (or a registrant the postmaster does not know, whose notify pid it cleared) can cost.
const RECHECK: Duration = Duration::from_secs(1);

/// A fixed-size text field (`char[BGW_MAXLEN]`), stored as words so that it is made of
/// atomics like the rest of the slot.
#[repr(C)]
#[derive(Debug)]
struct Name([AtomicU32; BGW_MAXLEN / 4]);

impl Name {
    /// Stores `s`, cut at `BGW_MAXLEN - 1` bytes (on a character boundary) and NUL-padded.
    fn store(&self, s: &str) {
        let mut n = s.len().min(BGW_MAXLEN - 1);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        let mut buf = [0u8; BGW_MAXLEN];
        buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        for (w, q) in self.0.iter().zip(buf.chunks_exact(4)) {
            w.store(
                u32::from_ne_bytes([q[0], q[1], q[2], q[3]]),
                Ordering::Relaxed,
            );
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

/// One slot (`BackgroundWorkerSlot`). Private: only this module's methods, which state who
/// may call them, touch the fields.
#[repr(C)]
#[derive(Debug)]
struct BgWorkerSlot {
    /// 1 while the slot holds a registration. Set (release) by a backend under
    /// BackgroundWorkerLock or by the postmaster before any child runs; cleared (release) by
    /// the postmaster only.
    in_use: AtomicU32,
    /// 1 once termination was asked for (backend, under BackgroundWorkerLock).
    terminate: AtomicU32,
    /// `INVALID_PID` until started, then the pid, 0 once gone (postmaster only).
    pid: AtomicI32,
    /// `bgw_notify_pid` (registrant; cleared by the postmaster).
    notify_pid: AtomicI32,
    /// Bumped each time the slot is taken (backend, under BackgroundWorkerLock).
    generation: AtomicU64,
    flags: AtomicU32,
    start_time: AtomicU32,
    restart: AtomicI32,
    _pad: u32,
    main_arg: AtomicU64,
    name: Name,
    type_name: Name,
    function: Name,
}

impl BgWorkerSlot {
    /// Writes a registration into a slot that is not in use; `in_use` is set afterwards by
    /// the caller, with release ordering, so a reader that sees it sees all of this.
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

/// The array's header (`BackgroundWorkerArray` without its slots).
#[repr(C)]
#[derive(Debug)]
struct BgWorkerArrayHdr {
    /// `max_worker_processes` (set at creation, never changed).
    total_slots: AtomicU32,
    /// Parallel workers registered (backend, under BackgroundWorkerLock).
    parallel_register_count: AtomicU32,
    /// Parallel workers whose slot was freed (postmaster only).
    parallel_terminate_count: AtomicU32,
    _pad: u32,
}

// SAFETY: repr(C), atomics and plain integers only, valid when all-zero, no pointers.
unsafe impl ShmemSafe for BgWorkerSlot {}
// SAFETY: as above.
unsafe impl ShmemSafe for BgWorkerArrayHdr {}

/// This process's view of "Background Worker Data". Cheap to clone; keeps the mapping alive.
#[derive(Debug, Clone)]
pub struct BgWorkerShared {
    hdr: Shared<BgWorkerArrayHdr>,
    slots: Shared<[BgWorkerSlot]>,
    shmem: Shmem,
}

/// Bytes the array needs for `max_worker_processes` slots (`BackgroundWorkerShmemSize`).
pub fn shmem_size(max_worker_processes: u32) -> Result<usize, SizeError> {
    add_size(
        size_of::<BgWorkerArrayHdr>(),
        mul_size(max_worker_processes as usize, size_of::<BgWorkerSlot>())?,
    )
}

/// Creates (postmaster: every slot free, no worker started) or finds (any other process) the
/// array (`BackgroundWorkerShmemInit`). `max_worker_processes` must be the same in every
/// process: the size is checked against the existing allocation.
pub fn shmem_init(
    shmem: &Shmem,
    max_worker_processes: u32,
) -> Result<BgWorkerShared, BgWorkerError> {
    let err = |e: &dyn std::fmt::Display| {
        BgWorkerError::Shmem(format!(
            "could not initialize \"{BGWORKER_DATA_NAME}\": {e}"
        ))
    };
    let size = shmem_size(max_worker_processes).map_err(|e| err(&e))?;
    let (off, kind) = shmem
        .init_raw(BGWORKER_DATA_NAME, size)
        .map_err(|e| err(&e))?;
    let hdr: Shared<BgWorkerArrayHdr> = shmem
        .view(off)
        .ok_or_else(|| err(&"header out of bounds"))?;
    let slots = shmem
        .view_slice::<BgWorkerSlot>(
            off + size_of::<BgWorkerArrayHdr>() as u64,
            max_worker_processes as usize,
        )
        .ok_or_else(|| err(&"slots out of bounds"))?;
    if kind == InitKind::Created {
        for s in slots.iter() {
            s.in_use.store(0, Ordering::Relaxed);
            s.pid.store(INVALID_PID, Ordering::Relaxed);
        }
        hdr.parallel_register_count.store(0, Ordering::Relaxed);
        hdr.parallel_terminate_count.store(0, Ordering::Relaxed);
        hdr.total_slots
            .store(max_worker_processes, Ordering::Release);
    }
    Ok(BgWorkerShared {
        hdr,
        slots,
        shmem: shmem.clone(),
    })
}

/// A dynamic worker as its registering backend follows it (`BackgroundWorkerHandle`): the
/// slot and the generation the slot had when registered, so that a reused slot is never
/// taken for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BgWorkerHandle {
    slot: usize,
    generation: u64,
}

impl BgWorkerHandle {
    /// The slot index.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The slot's generation at registration.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// `BgwHandleStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgwHandleStatus {
    /// Running, with this pid.
    Started(i32),
    /// Registered, not started yet.
    NotYetStarted,
    /// Exited (or its slot was freed or reused).
    Stopped,
    /// The postmaster died; what the worker does is unknown.
    PostmasterDied,
}

impl BgWorkerShared {
    /// Number of slots (`max_worker_processes`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the array has no slot (`max_worker_processes = 0`).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    // ---- any process ---------------------------------------------------------------------

    /// PostgreSQL's `RegisterDynamicBackgroundWorker`, in any process under a postmaster:
    /// checks `spec`, takes a free slot under BackgroundWorkerLock (exclusive) and signals
    /// the postmaster. `Ok(None)` when no slot is free, or when `spec` is a parallel worker
    /// and `max_parallel_workers` of them are registered already (PostgreSQL returns false).
    /// The function name is not looked up here: the postmaster refuses a name it does not
    /// have, and the waits then report [`BgwHandleStatus::Stopped`].
    ///
    /// Once the slot is taken the registration stands even if the signal cannot be sent
    /// (only a dead postmaster refuses it; the waits report that).
    pub fn register_dynamic(
        &self,
        spec: &BgWorkerSpec,
        max_parallel_workers: u32,
        pmsignal: &PMSignal,
    ) -> Result<Option<BgWorkerHandle>, BgWorkerError> {
        spec.sanity_check()?;
        if pmsignal.postmaster_pid() <= 0 {
            return Err(BgWorkerError::NoPostmaster(spec.name.clone()));
        }
        let parallel = spec.flags & BGWORKER_CLASS_PARALLEL != 0;
        let me = self.shmem.lwlock_proc();
        let lock = self.shmem.main_lwlock(MainLWLockId::BackgroundWorker);
        let handle = {
            let _g = lock.acquire(&me, LWLockMode::Exclusive);
            let reg = self.hdr.parallel_register_count.load(Ordering::Relaxed);
            let term = self.hdr.parallel_terminate_count.load(Ordering::Acquire);
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
            let generation = s.generation.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if parallel {
                self.hdr
                    .parallel_register_count
                    .fetch_add(1, Ordering::Relaxed);
            }
            // Publish: the postmaster reads the fields only after seeing in_use (acquire).
            s.in_use.store(1, Ordering::Release);
            BgWorkerHandle {
                slot: i,
                generation,
            }
        };
        // Only a vanished postmaster refuses the signal; the waits then report its death.
        let _ = pmsignal.send_postmaster_signal(PMSignalReason::BackgroundWorkerChange);
        Ok(Some(handle))
    }

    /// PostgreSQL's `GetBackgroundWorkerPid`, in any process: reads the slot under
    /// BackgroundWorkerLock (shared). A slot freed or taken again since registration reads as
    /// [`BgwHandleStatus::Stopped`]; a dead postmaster as [`BgwHandleStatus::PostmasterDied`].
    pub fn status(&self, h: BgWorkerHandle) -> BgwHandleStatus {
        if !pgipc_waiteventset::postmaster_is_alive() {
            return BgwHandleStatus::PostmasterDied;
        }
        let Some(s) = self.slots.get(h.slot) else {
            return BgwHandleStatus::Stopped;
        };
        let me = self.shmem.lwlock_proc();
        let lock = self.shmem.main_lwlock(MainLWLockId::BackgroundWorker);
        let _g = lock.acquire(&me, LWLockMode::Shared);
        if s.generation.load(Ordering::Relaxed) != h.generation
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

    /// PostgreSQL's `TerminateBackgroundWorker`, in any process: sets the slot's terminate
    /// flag under BackgroundWorkerLock (exclusive), if the slot still holds this worker, and
    /// signals the postmaster, which stops (or forgets) it.
    pub fn terminate(&self, h: BgWorkerHandle, pmsignal: &PMSignal) {
        let Some(s) = self.slots.get(h.slot) else {
            return;
        };
        let me = self.shmem.lwlock_proc();
        let lock = self.shmem.main_lwlock(MainLWLockId::BackgroundWorker);
        let signal = {
            let _g = lock.acquire(&me, LWLockMode::Exclusive);
            if s.generation.load(Ordering::Relaxed) == h.generation
                && s.in_use.load(Ordering::Acquire) != 0
            {
                s.terminate.store(1, Ordering::Release);
                true
            } else {
                false
            }
        };
        if signal {
            let _ = pmsignal.send_postmaster_signal(PMSignalReason::BackgroundWorkerChange);
        }
    }

    /// PostgreSQL's `WaitForBackgroundWorkerStartup`: sleeps on `latch` (the caller's own,
    /// which its SIGUSR1 handler sets: the registrant must have put its pid in
    /// `notify_pid`) until the worker started or can no longer start. Returns early with the
    /// status then current when `timeout` passes; with [`BgWorkerError::Interrupted`] as soon
    /// as `interrupted` says so (PostgreSQL's `CHECK_FOR_INTERRUPTS`); with
    /// [`BgwHandleStatus::PostmasterDied`] when the postmaster dies.
    pub fn wait_for_startup<L: Deref<Target = Latch>>(
        &self,
        h: BgWorkerHandle,
        latch: &OwnedLatch<L>,
        timeout: Duration,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<BgwHandleStatus, BgWorkerError> {
        self.wait_until(
            h,
            latch,
            timeout,
            interrupted,
            WAIT_EVENT_BGWORKER_STARTUP,
            |s| !matches!(s, BgwHandleStatus::NotYetStarted),
        )
    }

    /// PostgreSQL's `WaitForBackgroundWorkerShutdown`: as
    /// [`wait_for_startup`](Self::wait_for_startup), until the worker stopped.
    pub fn wait_for_shutdown<L: Deref<Target = Latch>>(
        &self,
        h: BgWorkerHandle,
        latch: &OwnedLatch<L>,
        timeout: Duration,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<BgwHandleStatus, BgWorkerError> {
        self.wait_until(
            h,
            latch,
            timeout,
            interrupted,
            WAIT_EVENT_BGWORKER_SHUTDOWN,
            |s| {
                matches!(
                    s,
                    BgwHandleStatus::Stopped | BgwHandleStatus::PostmasterDied
                )
            },
        )
    }

    fn wait_until<L: Deref<Target = Latch>>(
        &self,
        h: BgWorkerHandle,
        latch: &OwnedLatch<L>,
        timeout: Duration,
        interrupted: &mut dyn FnMut() -> bool,
        wait_event: u32,
        done: impl Fn(BgwHandleStatus) -> bool,
    ) -> Result<BgwHandleStatus, BgWorkerError> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.status(h);
            if done(st) {
                return Ok(st);
            }
            if interrupted() {
                return Err(BgWorkerError::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(st);
            }
            let ev = pgipc_waiteventset::wait_latch(
                Some(latch),
                WaitEvents::LATCH_SET | WaitEvents::POSTMASTER_DEATH,
                Some(left.min(RECHECK)),
                wait_event,
            )
            .map_err(|e| BgWorkerError::Shmem(format!("could not wait: {e}")))?;
            if ev.contains(WaitEvents::POSTMASTER_DEATH) {
                return Ok(BgwHandleStatus::PostmasterDied);
            }
            if ev.contains(WaitEvents::LATCH_SET) {
                latch.reset();
            }
        }
    }

    /// The registration in slot `i`, if the slot is in use and holds a valid one (any
    /// process; the postmaster reads it without the lock after seeing `in_use`).
    pub fn read_spec(&self, i: usize) -> Option<BgWorkerSpec> {
        let s = self.slots.get(i)?;
        if s.in_use.load(Ordering::Acquire) == 0 {
            return None;
        }
        Some(BgWorkerSpec {
            name: s.name.load(),
            type_name: s.type_name.load(),
            function: s.function.load(),
            flags: s.flags.load(Ordering::Relaxed),
            start_time: BgwStartTime::from_raw(s.start_time.load(Ordering::Relaxed))?,
            restart: RestartPolicy::from_raw(s.restart.load(Ordering::Relaxed))?,
            main_arg: s.main_arg.load(Ordering::Relaxed) as i64,
            notify_pid: s.notify_pid.load(Ordering::Relaxed),
        })
    }

    /// Whether slot `i` holds a registration (acquire: its fields may be read after `true`).
    pub fn in_use(&self, i: usize) -> bool {
        self.slots
            .get(i)
            .is_some_and(|s| s.in_use.load(Ordering::Acquire) != 0)
    }

    /// The pid recorded in slot `i`: `None` before the worker started, 0 once it is gone.
    pub fn pid(&self, i: usize) -> Option<i32> {
        match self.slots.get(i)?.pid.load(Ordering::Acquire) {
            INVALID_PID => None,
            p => Some(p),
        }
    }

    // ---- the postmaster only (never takes BackgroundWorkerLock) --------------------------

    /// Whether termination of slot `i`'s worker was asked for.
    pub fn postmaster_terminate_requested(&self, i: usize) -> bool {
        self.slots
            .get(i)
            .is_some_and(|s| s.terminate.load(Ordering::Acquire) != 0)
    }

    /// Publishes `spec` in the free slot `i` of a fresh array (start-up and crash reset,
    /// before any child runs, so no backend takes slots meanwhile). `false` when `i` is not
    /// a free slot.
    pub fn postmaster_publish(&self, i: usize, spec: &BgWorkerSpec) -> bool {
        let Some(s) = self.slots.get(i) else {
            return false;
        };
        if s.in_use.load(Ordering::Acquire) != 0 {
            return false;
        }
        s.fill(spec);
        // Publish: the slot is the postmaster's from here on.
        s.in_use.store(1, Ordering::Release);
        true
    }

    /// Records that slot `i`'s worker started as `pid`.
    pub fn postmaster_set_started(&self, i: usize, pid: i32) {
        if let Some(s) = self.slots.get(i) {
            s.pid.store(pid, Ordering::Release);
        }
    }

    /// Records that slot `i`'s worker is not running: gone for good (`forgotten`: pid 0) or
    /// waiting to be restarted (`InvalidPid`, "not yet started" again).
    pub fn postmaster_set_not_running(&self, i: usize, forgotten: bool) {
        if let Some(s) = self.slots.get(i) {
            let pid = if forgotten { 0 } else { INVALID_PID };
            s.pid.store(pid, Ordering::Release);
        }
    }

    /// Clears slot `i`'s notify pid (the registrant is gone or unknown: its pid may be
    /// reused).
    pub fn postmaster_clear_notify_pid(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            s.notify_pid.store(0, Ordering::Relaxed);
        }
    }

    /// Frees slot `i` (`ForgetBackgroundWorker`), counting a parallel worker as terminated.
    /// The release store of `in_use` makes the slot's last state visible before a backend
    /// can take it again.
    pub fn postmaster_free_slot(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            if s.flags.load(Ordering::Relaxed) & BGWORKER_CLASS_PARALLEL != 0 {
                self.hdr
                    .parallel_terminate_count
                    .fetch_add(1, Ordering::Release);
            }
            s.pid.store(0, Ordering::Release);
            s.in_use.store(0, Ordering::Release);
        }
    }
}
