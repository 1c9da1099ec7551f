//! The leader's set-up (PostgreSQL's `setup.c`): the segment, its table of contents, the
//! header and the ring of queues, the workers, and the wait until they are all ready.

use crate::error_queue::{ErrorQueues, ERROR_QUEUE_SIZE};
use crate::{LeaderEnv, TestShmMqError, WORKER_FUNCTION, WORKER_TYPE};
use pgipc_bgworker::{
    BgWorkerHandle, BgWorkerShared, BgWorkerSpec, BgwHandleStatus, BgwStartTime, RestartPolicy,
};
use pgipc_dsm::{CreateFlags, DsmImpl, DsmSegment};
use pgipc_lwlock::SpinLock;
use pgipc_proc::{MyProc, ProcNumber};
use pgipc_shm_mq::{AttachOptions, DsmMq, MqHandle, PeerAlive, Side};
use pgipc_shm_toc::{ShmToc, ShmTocEstimator};
use pgipc_shmem::Shmem;
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

/// The table of contents' magic number (`PG_TEST_SHM_MQ_MAGIC`).
pub const PG_TEST_SHM_MQ_MAGIC: u64 = 0x79fb_2447;

/// The header at TOC key 0 (`test_shm_mq_header`).
///
/// Layout: `#[repr(C)]`, 20 bytes. The three counters are read and written only under
/// `mutex`; `workers_total` and `leader_procno` are written by the leader before any worker
/// is registered and never change.
#[repr(C)]
#[derive(Debug)]
pub struct TestShmMqHeader {
    mutex: SpinLock,
    workers_total: AtomicI32,
    workers_attached: AtomicI32,
    workers_ready: AtomicI32,
    /// pgipc's addition: whose latch a ready worker sets.
    leader_procno: AtomicU32,
}

impl TestShmMqHeader {
    /// Under the mutex: `workers_attached += 1`, returning the new value (the worker's number).
    pub(crate) fn attach_worker(&self) -> (i32, i32) {
        let _g = self.mutex.lock();
        let n = self.workers_attached.load(Ordering::Relaxed) + 1;
        self.workers_attached.store(n, Ordering::Relaxed);
        (n, self.workers_total.load(Ordering::Relaxed))
    }

    /// Under the mutex: `workers_ready += 1`.
    pub(crate) fn worker_ready(&self) {
        let _g = self.mutex.lock();
        let n = self.workers_ready.load(Ordering::Relaxed) + 1;
        self.workers_ready.store(n, Ordering::Relaxed);
    }

    /// Under the mutex: `workers_ready`.
    pub(crate) fn ready(&self) -> i32 {
        let _g = self.mutex.lock();
        self.workers_ready.load(Ordering::Relaxed)
    }

    pub(crate) fn leader(&self) -> ProcNumber {
        self.leader_procno.load(Ordering::Relaxed)
    }
}

thread_local! {
    static DSM_STARTED: Cell<bool> = const { Cell::new(false) };
}

/// How long a queue handle of a ring of `processes` processes (the leader and its workers)
/// watches its peer's counter before sleeping: shm_mq's adaptive default (`None`) while each
/// process of the ring can have a CPU of its own, else none, as PostgreSQL.
///
/// With more ring processes than CPUs a waiter's watch takes the CPU from a process of the
/// ring that is runnable, and the adaptive watch does not see it reliably (the process it
/// waits for may be queued on the other CPU, so a yield comes back at once and the watch
/// often ends in progress, which re-arms it). Measured on 2 CPUs (BENCHMARKS.md, 2026-12-08):
/// with the watch, 1 KiB messages through a 16 KiB queue went from 1.30-2.04x of PostgreSQL 15
/// to 1.94-4.51x with one worker (2 processes) but fell from 1.09-1.17x to 0.43-0.66x with
/// three (4 processes). (Until then the ring watched only with a CPU to spare, `processes <
/// CPUs`, because the fixed 100 us latch spin of that time also hurt with one worker.)
pub(crate) fn ring_spin(processes: i32) -> Option<Duration> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if usize::try_from(processes).is_ok_and(|p| p <= cpus) {
        None
    } else {
        Some(Duration::ZERO)
    }
}

/// Attaches this process to the DSM control segment the first time it is needed
/// (PostgreSQL's `dsm_create` / `dsm_attach` call `dsm_backend_startup` lazily the same way).
pub fn ensure_dsm(shmem: &Shmem, imp: DsmImpl) -> Result<(), TestShmMqError> {
    if DSM_STARTED.with(Cell::get) {
        return Ok(());
    }
    pgipc_dsm::dsm_backend_startup(shmem, imp)?;
    DSM_STARTED.with(|c| c.set(true));
    Ok(())
}

/// The workers the leader registered (`worker_state`). Until [`disarm`](Self::disarm), dropping
/// it terminates them all (`cleanup_background_workers`).
pub(crate) struct Workers<'e> {
    env: &'e dyn LeaderEnv,
    sh: Option<BgWorkerShared>,
    handles: Vec<BgWorkerHandle>,
    armed: Cell<bool>,
}

impl Workers<'_> {
    /// Whether every worker is starting or running (`check_worker_status`).
    pub(crate) fn all_alive(&self) -> bool {
        let Some(sh) = &self.sh else { return true };
        self.handles.iter().all(|h| {
            matches!(
                sh.status(*h),
                BgwHandleStatus::Started(_) | BgwHandleStatus::NotYetStarted
            )
        })
    }

    fn disarm(&self) {
        self.armed.set(false);
    }
}

impl Drop for Workers<'_> {
    fn drop(&mut self) {
        if !self.armed.get() {
            return;
        }
        if let (Some(sh), Some(pms)) = (&self.sh, self.env.pmsignal()) {
            for h in self.handles.drain(..).rev() {
                sh.terminate(h, pms);
            }
        }
    }
}

/// A set-up segment with its workers registered (PostgreSQL's `test_shm_mq_setup` state
/// between `setup_background_workers` and the attach). Fields drop in order: the workers are
/// terminated if still armed, then the queues' leases and the segment go.
pub(crate) struct Prepared<'e> {
    pub(crate) watch: LeaderWatch<'e>,
    me: &'static MyProc,
    outq: DsmMq,
    inq: DsmMq,
    /// Worker k's error queue at index k-1 (the leader is every one's receiver).
    errqs: Vec<DsmMq>,
    /// The header, inside `seg`.
    hdr: NonNull<TestShmMqHeader>,
    nworkers: i32,
    /// Kept mapped (and attached) until the leader is done; dropping it detaches.
    _seg: DsmSegment,
}

/// The worker-and-interrupt check the leader's queue handles run on every wake-up: false once
/// a worker stopped or an interrupt is pending (the handle then reports the queue detached,
/// and the caller looks at the interrupt first).
pub(crate) struct LeaderWatch<'e> {
    env: &'e dyn LeaderEnv,
    workers: Workers<'e>,
}

impl PeerAlive for LeaderWatch<'_> {
    fn is_alive(&self) -> bool {
        !self.env.interrupt_pending() && self.workers.all_alive()
    }
}

impl LeaderWatch<'_> {
    /// Whether every worker is starting or running.
    pub(crate) fn workers_alive(&self) -> bool {
        self.workers.all_alive()
    }
}

impl Prepared<'_> {
    /// The ring's processes: the leader and its workers.
    pub(crate) fn processes(&self) -> i32 {
        self.nworkers + 1
    }

    fn hdr(&self) -> &TestShmMqHeader {
        // SAFETY: `hdr` points into `seg`, which `self` keeps mapped.
        unsafe { self.hdr.as_ref() }
    }

    /// Attaches the leader's two queue ends (`shm_mq_attach(outq, seg, handle[0])` and
    /// `shm_mq_attach(inq, seg, handle[n-1])`); the handles watch every worker.
    pub(crate) fn attach(&self) -> Result<(MqHandle<'_>, MqHandle<'_>), TestShmMqError> {
        let opts = || AttachOptions {
            peer_alive: Some(&self.watch as &dyn PeerAlive),
            poll_interval: Duration::from_millis(100),
            spin: ring_spin(self.nworkers + 1),
        };
        let me = self.me;
        let out = MqHandle::attach_dsm(
            self.outq.clone(),
            Side::Sender,
            me.proc_number(),
            me.latch().as_owner(),
            me.global(),
            opts(),
        )?;
        let inq = MqHandle::attach_dsm(
            self.inq.clone(),
            Side::Receiver,
            me.proc_number(),
            me.latch().as_owner(),
            me.global(),
            opts(),
        )?;
        Ok((out, inq))
    }

    /// Attaches the leader as the receiver of every worker's error queue
    /// (`pcxt->worker[i].error_mqh`).
    pub(crate) fn attach_error_queues(&self) -> Result<ErrorQueues<'_>, TestShmMqError> {
        let me = self.me;
        let mut handles = Vec::with_capacity(self.errqs.len());
        for q in &self.errqs {
            handles.push(MqHandle::attach_dsm(
                q.clone(),
                Side::Receiver,
                me.proc_number(),
                me.latch().as_owner(),
                me.global(),
                AttachOptions::default(),
            )?);
        }
        Ok(ErrorQueues { handles })
    }

    /// Waits on the latch until every worker announced itself ready; a stopped worker (or a
    /// dead postmaster) is [`TestShmMqError::FailedToStart`]. Once all are ready, an error no
    /// longer terminates them: they leave on their own when the leader's queues detach.
    /// A worker's error sent to its error queue meanwhile is raised instead.
    pub(crate) fn wait_for_workers_to_become_ready(
        &self,
        errs: &mut ErrorQueues<'_>,
    ) -> Result<(), TestShmMqError> {
        loop {
            errs.check()?;
            if self.hdr().ready() >= self.nworkers {
                self.watch.workers.disarm();
                return Ok(());
            }
            if !self.watch.workers.all_alive() {
                errs.check()?;
                return Err(TestShmMqError::FailedToStart);
            }
            self.me
                .latch()
                .wait(Some(Duration::from_secs(1)))
                .map_err(pgipc_shm_mq::ShmMqError::from)?;
            self.me.latch().reset();
            self.watch.env.check_for_interrupts()?;
        }
    }
}

/// Checks the queue size and computes the segment's size.
fn segment_size(queue_size: i64, nworkers: i32) -> Result<usize, TestShmMqError> {
    let min = pgipc_shm_mq::minimum_size();
    if queue_size < 0 || (queue_size as u64) < min as u64 {
        return Err(TestShmMqError::QueueTooSmall { min });
    }
    let q = usize::try_from(queue_size).map_err(|_| TestShmMqError::SizeOverflow)?;
    let overflow = |_| TestShmMqError::SizeOverflow;
    let mut e = ShmTocEstimator::new();
    e.estimate_chunk(std::mem::size_of::<TestShmMqHeader>())
        .map_err(overflow)?;
    for _ in 0..=nworkers {
        e.estimate_chunk(q).map_err(overflow)?;
    }
    for _ in 0..nworkers {
        e.estimate_chunk(ERROR_QUEUE_SIZE).map_err(overflow)?;
    }
    e.estimate_keys(2 + 2 * nworkers as usize)
        .map_err(overflow)?;
    e.estimate().map_err(overflow)
}

/// Creates the segment and the queues and registers the workers (the first half of
/// `test_shm_mq_setup`); [`Prepared::attach`] and
/// [`Prepared::wait_for_workers_to_become_ready`] are the rest.
pub(crate) fn prepare(
    env: &dyn LeaderEnv,
    queue_size: i64,
    nworkers: i32,
) -> Result<Prepared<'_>, TestShmMqError> {
    let segsize = segment_size(queue_size, nworkers)?;
    let me: &'static MyProc = env
        .my_proc()
        .ok_or(TestShmMqError::NoBackend("no PGPROC to wait on"))?;
    ensure_dsm(env.shmem(), env.dsm_impl())?;
    let seg = DsmSegment::create(segsize, CreateFlags::default())?
        .ok_or(pgipc_dsm::DsmError::TooManySegments)?;
    let seg_ref = seg.reference();
    // SAFETY: the segment was just created, is mapped (page aligned) for `segsize` bytes while
    // `seg` lives, and nobody else knows its handle yet.
    let toc = unsafe { ShmToc::create(PG_TEST_SHM_MQ_MAGIC, seg_ref.address().as_ptr(), segsize) }?;
    let hdr_ptr = toc.allocate(std::mem::size_of::<TestShmMqHeader>())?;
    // SAFETY: a fresh chunk of the TOC, 32-byte aligned and large enough; all fields are
    // atomics or a spinlock, valid for any bytes (the segment is zeroed or reused pool pages,
    // and every field is initialised below before the TOC publishes the chunk).
    let hdr = unsafe { &*(hdr_ptr.as_ptr() as *const TestShmMqHeader) };
    hdr.mutex.init();
    hdr.workers_total.store(nworkers, Ordering::Relaxed);
    hdr.workers_attached.store(0, Ordering::Relaxed);
    hdr.workers_ready.store(0, Ordering::Relaxed);
    hdr.leader_procno.store(me.proc_number(), Ordering::Relaxed);
    toc.insert(0, hdr_ptr)?;
    let q = queue_size as usize;
    let waker = me.global();
    let mut outq = None;
    let mut inq = None;
    for i in 0..=nworkers {
        let space: NonNull<u8> = toc.allocate(q)?;
        // SAFETY: a fresh TOC chunk of `q` bytes inside the segment, used only through shm_mq.
        let mq = unsafe { DsmMq::create(&seg_ref, space, q) }?;
        toc.insert(i as u64 + 1, space)?;
        if i == 0 {
            mq.queue()?.set_sender(me.proc_number(), waker)?;
            outq = Some(mq.clone());
        }
        if i == nworkers {
            mq.queue()?.set_receiver(me.proc_number(), waker)?;
            inq = Some(mq);
        }
    }
    // Worker k's error queue at key nworkers + 1 + k.
    let mut errqs = Vec::with_capacity(nworkers as usize);
    for k in 1..=nworkers {
        let space: NonNull<u8> = toc.allocate(ERROR_QUEUE_SIZE)?;
        // SAFETY: a fresh TOC chunk of ERROR_QUEUE_SIZE bytes, used only through shm_mq.
        let mq = unsafe { DsmMq::create(&seg_ref, space, ERROR_QUEUE_SIZE) }?;
        toc.insert((nworkers + 1 + k) as u64, space)?;
        mq.queue()?.set_receiver(me.proc_number(), waker)?;
        errqs.push(mq);
    }
    let (Some(outq), Some(inq)) = (outq, inq) else {
        return Err(TestShmMqError::NoBackend("no queue was created"));
    };

    let workers = setup_background_workers(env, nworkers, seg_ref.handle())?;
    Ok(Prepared {
        watch: LeaderWatch { env, workers },
        me,
        outq,
        inq,
        errqs,
        hdr: hdr_ptr.cast(),
        nworkers,
        _seg: seg,
    })
}

/// Registers `nworkers` workers on the segment `handle` (`setup_background_workers`).
fn setup_background_workers<'e>(
    env: &'e dyn LeaderEnv,
    nworkers: i32,
    handle: u32,
) -> Result<Workers<'e>, TestShmMqError> {
    let mut w = Workers {
        env,
        sh: None,
        handles: Vec::new(),
        armed: Cell::new(true),
    };
    if nworkers == 0 {
        return Ok(w);
    }
    let sh = pgipc_bgworker::shmem_init(env.shmem(), env.max_worker_processes())?;
    let pms = env.pmsignal().ok_or(TestShmMqError::NoBackend(
        "no postmaster to start background workers",
    ))?;
    let mut spec = BgWorkerSpec::new(&format!("{WORKER_TYPE} worker"), WORKER_FUNCTION);
    spec.type_name = WORKER_TYPE.to_owned();
    spec.start_time = BgwStartTime::ConsistentState;
    spec.restart = RestartPolicy::Never;
    spec.main_arg = i64::from(handle);
    spec.notify_pid = std::process::id() as i32;
    w.sh = Some(sh);
    for _ in 0..nworkers {
        let sh = w.sh.as_ref().ok_or(TestShmMqError::CouldNotRegister)?;
        match sh.register_dynamic(&spec, env.max_parallel_workers(), pms)? {
            Some(h) => w.handles.push(h),
            None => return Err(TestShmMqError::CouldNotRegister),
        }
    }
    Ok(w)
}

#[cfg(test)]
pub(crate) fn segment_size_for_tests(q: i64, n: i32) -> Result<usize, TestShmMqError> {
    segment_size(q, n)
}
