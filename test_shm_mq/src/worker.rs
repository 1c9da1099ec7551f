//! A worker of the ring (PostgreSQL's `worker.c`): attach, announce, copy messages.

use crate::setup::{ensure_dsm, ring_spin, TestShmMqHeader, PG_TEST_SHM_MQ_MAGIC};
use crate::TestShmMqError;
use pgipc_dsm::{DsmError, DsmImpl, DsmSegment};
use pgipc_proc::MyProc;
use pgipc_shm_mq::{
    AttachOptions, DsmMq, MqHandle, PeerAlive, ProcWaker, RecvResult, SendOptions, SendResult, Side,
};
use pgipc_shm_toc::ShmToc;
use pgipc_shmem::Shmem;
use std::fmt;
use std::time::Duration;

/// What a worker process has (the postmaster's child environment, reduced).
pub struct WorkerEnv<'a> {
    /// The worker's PGPROC (taken by the postmaster's worker wrapper).
    pub me: &'static MyProc,
    /// The main segment.
    pub shmem: &'a Shmem,
    /// The DSM implementation.
    pub dsm_impl: DsmImpl,
    /// Whether SIGTERM arrived (PostgreSQL's `die` handler: the worker must leave).
    pub terminate_pending: &'a dyn Fn() -> bool,
}

impl fmt::Debug for WorkerEnv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerEnv")
            .field("procno", &self.me.proc_number())
            .finish_non_exhaustive()
    }
}

/// The queue handles' check: a SIGTERM turns the worker's waits into a detached queue, so the
/// blocking calls return and the worker leaves.
struct NotTerminated<'a>(&'a dyn Fn() -> bool);

impl PeerAlive for NotTerminated<'_> {
    fn is_alive(&self) -> bool {
        !(self.0)()
    }
}

/// The worker's main (`test_shm_mq_main`), `main_arg` being the segment's handle. Returns
/// when either of its queues is detached (the caller then exits with code 1, as PostgreSQL's
/// worker does); an error is the worker's ERROR.
pub fn worker_main(env: &WorkerEnv<'_>, main_arg: i64) -> Result<(), TestShmMqError> {
    ensure_dsm(env.shmem, env.dsm_impl.clone())?;
    let handle = u32::try_from(main_arg).map_err(|_| TestShmMqError::NoSegment)?;
    let seg = match DsmSegment::attach(handle) {
        Ok(s) => s,
        Err(DsmError::NotFound { .. }) => return Err(TestShmMqError::NoSegment),
        Err(e) => return Err(e.into()),
    };
    let seg_ref = seg.reference();
    // SAFETY: the mapping is page aligned and lives while `seg` does; a TOC with our magic was
    // created there by the leader before it registered this worker.
    let toc = unsafe { ShmToc::attach(PG_TEST_SHM_MQ_MAGIC, seg_ref.address().as_ptr()) }
        .map_err(|_| TestShmMqError::BadMagic)?;
    let hdr_ptr = toc.lookup_required(0)?;
    // SAFETY: key 0 is the header the leader initialised before publishing it; it lives in
    // the segment, mapped while `seg` lives (longer than `hdr` is used).
    let hdr = unsafe { &*(hdr_ptr.as_ptr() as *const TestShmMqHeader) };
    let (n, total) = hdr.attach_worker();
    if n > total {
        return Err(TestShmMqError::TooManyWorkers);
    }
    let me = env.me;
    let waker = me.global();
    // The error queue first (PostgreSQL's worker redirects its protocol output to it before
    // anything else can fail): key total + 1 + n.
    let err_at = toc.lookup_required(total as u64 + 1 + n as u64)?;
    // SAFETY: keys total+2..=2*total+1 are error queues the leader created before
    // registering us.
    let errq = unsafe { DsmMq::from_raw(&seg_ref, err_at) }?;
    errq.queue()?.set_sender(me.proc_number(), waker)?;
    let mut errqh = MqHandle::attach_dsm(
        errq,
        Side::Sender,
        me.proc_number(),
        me.latch().as_owner(),
        waker,
        AttachOptions::default(),
    )?;
    let check = NotTerminated(env.terminate_pending);
    let (mut inqh, mut outqh) = (None, None);
    let r = ring(
        env, &seg_ref, &toc, hdr, n, total, &check, &mut inqh, &mut outqh,
    );
    let r = r.and_then(|()| {
        if (env.terminate_pending)() {
            Err(TestShmMqError::Terminated)
        } else {
            Ok(())
        }
    });
    if let Err(e) = &r {
        // Before the ring queues detach: the leader looks at the error queues when it finds
        // a ring queue detached.
        crate::error_queue::send(&mut errqh, e);
    }
    drop(inqh);
    drop(outqh);
    drop(errqh);
    seg.detach();
    r
}

/// Attaches this worker's two ring queues into `inqh` / `outqh` (left to the caller, which
/// drops them only after an error went to the error queue), announces it is ready, and copies.
#[allow(clippy::too_many_arguments)]
fn ring<'a>(
    env: &WorkerEnv<'_>,
    seg_ref: &pgipc_dsm::DsmSegmentRef,
    toc: &ShmToc<'_>,
    hdr: &TestShmMqHeader,
    n: i32,
    total: i32,
    check: &'a NotTerminated<'a>,
    inqh: &mut Option<MqHandle<'a>>,
    outqh: &mut Option<MqHandle<'a>>,
) -> Result<(), TestShmMqError> {
    let me = env.me;
    let waker = me.global();
    // attach_to_queues: receiver of queue n-1 (key n), sender of queue n (key n+1).
    let (in_at, out_at) = (
        toc.lookup_required(n as u64)?,
        toc.lookup_required(n as u64 + 1)?,
    );
    // SAFETY: keys 1..=total+1 are queues the leader created before registering us.
    let inq = unsafe { DsmMq::from_raw(seg_ref, in_at) }?;
    // SAFETY: as above.
    let outq = unsafe { DsmMq::from_raw(seg_ref, out_at) }?;
    inq.queue()?.set_receiver(me.proc_number(), waker)?;
    outq.queue()?.set_sender(me.proc_number(), waker)?;
    let opts = || AttachOptions {
        peer_alive: Some(check as &dyn PeerAlive),
        poll_interval: Duration::from_millis(500),
        spin: ring_spin(total + 1),
    };
    let inqh = inqh.insert(MqHandle::attach_dsm(
        inq,
        Side::Receiver,
        me.proc_number(),
        me.latch().as_owner(),
        waker,
        opts(),
    )?);
    let outqh = outqh.insert(MqHandle::attach_dsm(
        outq,
        Side::Sender,
        me.proc_number(),
        me.latch().as_owner(),
        waker,
        opts(),
    )?);
    hdr.worker_ready();
    waker.wake(hdr.leader());
    copy_messages(inqh, outqh)
}

/// Passes every message from `inqh` to `outqh` until either is detached.
fn copy_messages(inqh: &mut MqHandle<'_>, outqh: &mut MqHandle<'_>) -> Result<(), TestShmMqError> {
    loop {
        let msg = match inqh.receive(false)? {
            RecvResult::Received(m) => m,
            RecvResult::WouldBlock | RecvResult::Detached => return Ok(()),
        };
        // A test's way to make a worker fail mid-run (feature `injection_points`).
        pgipc_injection_point::injection_point!("test-shm-mq-worker-copy")?;
        match outqh.send(msg, SendOptions::FLUSH)? {
            SendResult::Sent => {}
            SendResult::WouldBlock | SendResult::Detached => return Ok(()),
        }
    }
}
