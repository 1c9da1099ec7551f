//! The process-local handle: send, receive, detach, wait for attach, and the batching of
//! counter updates.

use crate::error::ShmMqError;
use crate::queue::{maxalign, MqRef, Side, MAXALIGN, MAX_MESSAGE_SIZE};
use crate::segment::DsmMq;
use crate::spin::{Spin, Watched};
use crate::{PeerAlive, ProcWaker};
use pgipc_dsm::DetachCallbackId;
use pgipc_latch::LatchOwner;
use pgipc_proc::ProcNumber;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Outcome of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendResult {
    /// The whole message is in the ring (maybe not yet published, see [`SendOptions`]).
    Sent,
    /// `nowait` and no room: retry later with the **same** message.
    WouldBlock,
    /// The receiver detached (or is gone); nothing more can be sent.
    Detached,
}

/// Outcome of a receive.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvResult<'m> {
    /// One whole message, borrowed from the ring when it was contiguous there, else from the
    /// handle's buffer; valid until the next call on the handle.
    Received(&'m [u8]),
    /// `nowait` and no whole message yet: call again.
    WouldBlock,
    /// The sender detached (or is gone) and everything it published has been received.
    Detached,
}

/// Outcome of [`MqHandle::wait_for_attach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachResult {
    /// The other side is recorded.
    Attached,
    /// The queue was detached (or the peer died) first.
    Detached,
}

/// Switches of a send (`shm_mq_sendv`'s `nowait` and `force_flush`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Return [`SendResult::WouldBlock`] instead of sleeping when the ring is full.
    pub nowait: bool,
    /// Publish the written bytes and wake the receiver at the end of this message even when
    /// less than a quarter of the ring is pending.
    pub force_flush: bool,
}

impl SendOptions {
    /// Blocking, batched (the common case).
    pub const BLOCKING: SendOptions = SendOptions {
        nowait: false,
        force_flush: false,
    };
    /// Blocking, flushed at the end of the message.
    pub const FLUSH: SendOptions = SendOptions {
        nowait: false,
        force_flush: true,
    };
    /// Non-blocking, batched.
    pub const NOWAIT: SendOptions = SendOptions {
        nowait: true,
        force_flush: false,
    };
}

/// Optional ties of a handle (`shm_mq_attach`'s bgworker handle; the segment tie is
/// [`MqHandle::attach_dsm`]).
pub struct AttachOptions<'a> {
    /// How to tell whether the peer process still lives. With it, every sleep is bounded by
    /// `poll_interval` and the check runs on each wake-up, so a peer that died without
    /// detaching (SIGKILL) is reported as [`SendResult::Detached`] / [`RecvResult::Detached`].
    pub peer_alive: Option<&'a dyn PeerAlive>,
    /// Longest sleep between peer-alive checks (only used with `peer_alive`).
    pub poll_interval: Duration,
    /// The longest watch of the peer's counter (busy, without a system call) before a
    /// blocking call sleeps; the watch is adaptive ([`Spin`](crate::Spin): skipped after
    /// fruitless watches and after a preemption). `None` chooses
    /// [`DEFAULT_SPIN`](crate::DEFAULT_SPIN) when the machine has more than one CPU online
    /// (the peer can make progress meanwhile, and a cross-CPU wake-up costs ~50 us on small
    /// VMs), else 0 (on one CPU spinning only delays the peer). `Some(Duration::ZERO)` never
    /// watches (PostgreSQL's behaviour).
    pub spin: Option<Duration>,
}

impl Default for AttachOptions<'_> {
    fn default() -> Self {
        AttachOptions {
            peer_alive: None,
            poll_interval: Duration::from_millis(50),
            spin: None,
        }
    }
}

impl fmt::Debug for AttachOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachOptions")
            .field("peer_alive", &self.peer_alive.is_some())
            .field("poll_interval", &self.poll_interval)
            .field("spin", &self.spin)
            .finish()
    }
}

/// A handle's tie to its DSM segment.
struct Tie {
    /// Holds the lease; dropped with the handle (after `Drop::drop` detached).
    q: DsmMq,
    key: DetachCallbackId,
}

/// Why a wait inside the handle stopped.
enum Blocked {
    WouldBlock,
    Detached,
}

/// A process-local handle on one end of a queue (PostgreSQL's `shm_mq_handle`).
///
/// Holds the resumable state of a partly sent or received message (so a `nowait` call can
/// be repeated), the bytes written or consumed locally but not yet published, and the
/// reassembly buffer for messages that wrap. Dropping it detaches.
///
/// Nothing borrowed from a handle outlives it: neither the queue reference of
/// [`queue`](Self::queue)
/// ```compile_fail,E0505
/// fn escape(tx: pgipc_shm_mq::MqHandle<'static>) {
///     let mq = tx.queue();
///     drop(tx); // a DSM queue's handle gives its lease up here
///     mq.is_detached(); // error: `tx` moved while borrowed
/// }
/// ```
/// nor a received message:
/// ```compile_fail,E0505
/// use pgipc_shm_mq::{MqHandle, RecvResult};
/// fn escape(mut rx: MqHandle<'static>) {
///     if let Ok(RecvResult::Received(m)) = rx.receive(false) {
///         drop(rx);
///         let _ = m[0]; // error: `rx` moved while borrowed
///     }
/// }
/// ```
/// (used before the handle goes, both compile:)
/// ```
/// use pgipc_shm_mq::{MqHandle, RecvResult};
/// fn fine(mut rx: MqHandle<'static>) -> Option<u8> {
///     let detached = rx.queue().is_detached();
///     let first = match rx.receive(false) {
///         Ok(RecvResult::Received(m)) => m.first().copied(),
///         _ => None,
///     };
///     drop(rx);
///     first.filter(|_| !detached)
/// }
/// ```
pub struct MqHandle<'a> {
    mq: MqRef<'a>,
    side: Side,
    my_latch: LatchOwner<'a>,
    waker: &'a dyn ProcWaker,
    peer_alive: Option<&'a dyn PeerAlive>,
    /// The DSM segment tie ([`MqHandle::attach_dsm`]): the lease that keeps `mq`'s memory
    /// mapped, and the segment's detach callback.
    tie: Option<Tie>,
    poll_interval: Duration,
    spin: Spin,
    /// Peer's proc number once known (then read without the mutex).
    peer: Option<ProcNumber>,
    /// Local copy of the counter this side owns (bytes_written or bytes_read).
    my_count: u64,
    /// Bytes written (sender) / consumed (receiver) but not yet published.
    pending: u64,
    /// Sender: bytes of the current message stream (length word + payload) already written.
    /// Receiver: payload bytes already copied into `buffer`.
    partial: usize,
    /// Receiver: the current message's length, once its length word is read.
    expected: Option<usize>,
    buffer: Vec<u8>,
    detached: bool,
}

impl fmt::Debug for MqHandle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqHandle")
            .field("mq", &self.mq)
            .field("side", &self.side)
            .field("pending", &self.pending)
            .field("partial", &self.partial)
            .field("expected", &self.expected)
            .finish()
    }
}

/// Copies `len` bytes starting at `offset` of the concatenation of `iov` to `dst`.
fn gather(iov: &[&[u8]], mut offset: usize, dst: *mut u8, len: usize) {
    let mut done = 0;
    for part in iov {
        if done == len {
            break;
        }
        if offset >= part.len() {
            offset -= part.len();
            continue;
        }
        let n = (part.len() - offset).min(len - done);
        // SAFETY: `dst..dst+len` is ring space owned by the sender (see `send_stream`), and
        // `part[offset..offset+n]` is in bounds.
        unsafe { std::ptr::copy_nonoverlapping(part.as_ptr().add(offset), dst.add(done), n) };
        done += n;
        offset = 0;
    }
}

impl<'a> MqHandle<'a> {
    /// Attaches to `mq` as `side` (`shm_mq_attach`). `me` must be the proc number recorded
    /// for that side ([`MqRef::set_sender`] / [`MqRef::set_receiver`] first); `my_latch` is
    /// this process's latch (the one `waker` sets for `me`); `waker` sets other processes'
    /// latches by proc number.
    pub fn attach(
        mq: MqRef<'a>,
        side: Side,
        me: ProcNumber,
        my_latch: LatchOwner<'a>,
        waker: &'a dyn ProcWaker,
        opts: AttachOptions<'a>,
    ) -> Result<MqHandle<'a>, ShmMqError> {
        let recorded = mq.get(side);
        if recorded != Some(me) {
            return Err(ShmMqError::NotParticipant {
                side: side.name(),
                me,
                recorded,
            });
        }
        let hdr = mq.header();
        let my_count = match side {
            Side::Sender => hdr.bytes_written.load(Ordering::Acquire),
            Side::Receiver => hdr.bytes_read.load(Ordering::Acquire),
        };
        Ok(MqHandle {
            mq,
            side,
            my_latch,
            waker,
            peer_alive: opts.peer_alive,
            tie: None,
            poll_interval: opts.poll_interval,
            spin: Spin::new(opts.spin.unwrap_or_else(Spin::default_budget)),
            peer: None,
            my_count,
            pending: 0,
            partial: 0,
            expected: None,
            buffer: Vec::new(),
            detached: false,
        })
    }

    /// Attaches to a queue in a DSM segment as `side` (`shm_mq_attach(mq, seg, handle)`),
    /// taking over `q` and with it a lease on the segment's mapping. Otherwise as
    /// [`attach`](Self::attach).
    ///
    /// The tie to the segment, in every way this process can leave it:
    /// * **detach** ([`DsmSegmentRef::detach`](pgipc_dsm::DsmSegmentRef::detach), dropping
    ///   or [`detach`](pgipc_dsm::DsmSegment::detach)ing the `DsmSegment`): the segment's
    ///   callback marks the queue detached and wakes the peer at once (the peer sees
    ///   `Detached`); this handle then reports `Detached` too, and the memory stays mapped
    ///   until the handle (the last lease) is dropped, which unmaps it and gives the segment's
    ///   reference back.
    /// * **process exit** (`pgipc_ipc::proc_exit`, `exit()`, returning from `main`; also
    ///   `dsm_backend_shutdown` / `dsm_detach_all` called directly): the DSM exit hook (or
    ///   dsm's thread-local teardown) runs the callback the same way, then gives the reference
    ///   back although the handle lives (a handle on the stack of `proc_exit`'s caller is
    ///   never dropped). The memory is left mapped; from then on every call on the handle
    ///   returns [`ShmMqError::SegmentDetached`], and dropping it (e.g. from a thread-local
    ///   destructor run by `exit()`) writes nothing.
    ///
    /// The waker is `'static` because the callback keeps it: it may run as late as process
    /// exit. (A plain [`attach`](Self::attach) of `q.queue()?` also works, but has no segment
    /// tie: the handle borrows `q`, gets no detach callback and no exit check.)
    pub fn attach_dsm(
        q: DsmMq,
        side: Side,
        me: ProcNumber,
        my_latch: LatchOwner<'a>,
        waker: &'static dyn ProcWaker,
        opts: AttachOptions<'a>,
    ) -> Result<MqHandle<'a>, ShmMqError> {
        q.queue()?;
        // SAFETY: the handle owns `q`, whose lease keeps the memory mapped for as long as the
        // handle lives, and `mq` never leaves the handle with the lifetime `'a` (`queue`
        // reborrows it); every use first checks that the lease is still usable.
        let mq: MqRef<'a> = unsafe { q.queue_unbounded() };
        let mut h = MqHandle::attach(mq, side, me, my_latch, waker, opts)?;
        // SAFETY: dsm runs detach callbacks only while the segment is still mapped (before
        // the unmap, and before the reference goes back at exit); a cancelled callback is
        // dropped without running.
        let cb_mq: MqRef<'static> = unsafe { q.queue_unbounded() };
        let key = q.segment().on_detach(move || cb_mq.detach_as(side, waker));
        h.tie = Some(Tie { q, key });
        Ok(h)
    }

    /// The queue, borrowed from the handle.
    pub fn queue(&self) -> MqRef<'_> {
        self.mq
    }

    /// Refuses (without touching the queue) once the DSM segment holding it went away under
    /// the handle at process exit.
    #[inline]
    fn check_mapped(&self) -> Result<(), ShmMqError> {
        match &self.tie {
            Some(t) if !t.q.is_usable() => Err(t.q.gone()),
            _ => Ok(()),
        }
    }

    /// Which end this handle is.
    pub fn side(&self) -> Side {
        self.side
    }

    fn other(&self) -> Side {
        match self.side {
            Side::Sender => Side::Receiver,
            Side::Receiver => Side::Sender,
        }
    }

    /// Is the peer known gone? (`shm_mq_counterparty_gone`; marks the queue detached when the
    /// peer-alive check says the peer died.)
    fn counterparty_gone(&self) -> bool {
        if self.mq.is_detached() {
            return true;
        }
        if let Some(check) = self.peer_alive {
            if !check.is_alive() {
                self.mq.mark_detached();
                return true;
            }
        }
        false
    }

    /// The peer's counter: `bytes_read` for a sender, `bytes_written` for a receiver.
    fn peer_counter(&self) -> &'a AtomicU64 {
        let hdr = self.mq.header();
        match self.side {
            Side::Sender => &hdr.bytes_read,
            Side::Receiver => &hdr.bytes_written,
        }
    }

    /// Blocks until the peer's counter has moved from `seen`, the queue is detached, or our
    /// latch is set (a spurious return is possible; callers look again): watch the counter
    /// adaptively ([`Spin`]), then sleep on the latch.
    fn wait_for_peer(&mut self, seen: u64, wait_event_info: u32) -> Result<(), ShmMqError> {
        let peer_counter = self.peer_counter();
        let mq = self.mq;
        let moved = || peer_counter.load(Ordering::Relaxed) != seen || mq.is_detached();
        if self.spin.watch(self.my_latch.latch(), moved) == Watched::Progress {
            return Ok(());
        }
        self.sleep(wait_event_info)
    }

    /// Sleeps on our latch (bounded when a peer-alive check exists), then resets it: the
    /// bottom of PostgreSQL's `WaitLatch; ResetLatch` loop.
    /// The wait publishes `wait_event_info` (IPC/MessageQueueSend, …Receive, …Internal).
    fn sleep(&self, wait_event_info: u32) -> Result<(), ShmMqError> {
        pgipc_ipc_stats::count(match self.side {
            Side::Sender => pgipc_ipc_stats::Counter::ShmMqSendSleeps,
            Side::Receiver => pgipc_ipc_stats::Counter::ShmMqReceiveSleeps,
        });
        let timeout = self.peer_alive.map(|_| self.poll_interval);
        pgipc_wait_event::report_wait_start(wait_event_info);
        let r = self.my_latch.wait(timeout);
        pgipc_wait_event::report_wait_end();
        r?;
        self.my_latch.reset();
        Ok(())
    }

    /// Waits until `side` is recorded (`shm_mq_wait_internal`): true when it is, false when
    /// the queue is detached or the peer died first.
    fn wait_for(&self, side: Side) -> Result<bool, ShmMqError> {
        loop {
            if self.mq.get(side).is_some() {
                return Ok(true);
            }
            if self.counterparty_gone() {
                return Ok(false);
            }
            self.sleep(pgipc_wait_event::WAIT_EVENT_MESSAGE_QUEUE_INTERNAL)?;
        }
    }

    /// Waits until the other side is recorded (`shm_mq_wait_for_attach`).
    pub fn wait_for_attach(&mut self) -> Result<AttachResult, ShmMqError> {
        self.check_mapped()?;
        if self.peer.is_some() {
            return Ok(AttachResult::Attached);
        }
        if self.wait_for(self.other())? {
            self.peer = self.mq.get(self.other());
            Ok(AttachResult::Attached)
        } else {
            Ok(AttachResult::Detached)
        }
    }

    fn wake_peer(&mut self) {
        if self.peer.is_none() {
            self.peer = self.mq.get(self.other());
        }
        if let Some(p) = self.peer {
            self.waker.wake(p);
        }
    }

    /// Stores `pending` into the counter this side owns (release: the ring bytes written or
    /// read before stay before it). Returns whether anything was published.
    fn publish_pending(&mut self) -> bool {
        if self.pending == 0 {
            return false;
        }
        self.my_count += self.pending;
        self.pending = 0;
        let hdr = self.mq.header();
        let counter = match self.side {
            Side::Sender => &hdr.bytes_written,
            Side::Receiver => &hdr.bytes_read,
        };
        counter.store(self.my_count, Ordering::Release);
        true
    }

    /// Publishes pending written (sender) or consumed (receiver) bytes and sets the peer's
    /// latch: always for a sender (PostgreSQL's `shm_mq_inc_bytes_written` + `SetLatch`), when
    /// anything was consumed for a receiver. `Latch::set` makes no system call when the latch
    /// is already set or its owner is awake.
    fn flush(&mut self) {
        if self.publish_pending() || self.side == Side::Sender {
            self.wake_peer();
        }
    }

    /// Sends one message (`shm_mq_send`).
    pub fn send(&mut self, data: &[u8], opts: SendOptions) -> Result<SendResult, ShmMqError> {
        self.sendv(&[data], opts)
    }

    /// Sends the concatenation of `iov` as one message (`shm_mq_sendv`).
    ///
    /// After [`SendResult::WouldBlock`] the caller must call again with the same bytes; the
    /// handle resumes where it stopped. A message longer than [`MAX_MESSAGE_SIZE`] is
    /// [`ShmMqError::MessageTooLarge`] and nothing is written.
    pub fn sendv(&mut self, iov: &[&[u8]], opts: SendOptions) -> Result<SendResult, ShmMqError> {
        if self.side != Side::Sender {
            return Err(ShmMqError::WrongSide {
                side: self.side.name(),
                op: "send",
            });
        }
        self.check_mapped()?;
        let mut nbytes = 0usize;
        for part in iov {
            nbytes = nbytes.saturating_add(part.len());
        }
        if nbytes > MAX_MESSAGE_SIZE {
            return Err(ShmMqError::MessageTooLarge { size: nbytes });
        }
        if self.detached {
            return Ok(SendResult::Detached);
        }
        let word = (nbytes as u64).to_ne_bytes();
        // The stream is the length word followed by the payload; only the last chunk of a
        // message may end off an 8-byte boundary, so the length word is never split.
        match self.send_stream(&word, iov, MAXALIGN + nbytes, opts.nowait)? {
            Ok(()) => {}
            Err(Blocked::WouldBlock) => return Ok(SendResult::WouldBlock),
            Err(Blocked::Detached) => {
                self.partial = 0;
                return Ok(SendResult::Detached);
            }
        }
        self.partial = 0;
        if self.mq.is_detached() {
            return Ok(SendResult::Detached);
        }
        if self.peer.is_none() {
            self.peer = self.mq.receiver();
        }
        if opts.force_flush || self.pending > (self.mq.ring_size() as u64 >> 2) {
            self.flush();
        }
        pgipc_ipc_stats::count_message(pgipc_ipc_stats::Counter::ShmMqSent, nbytes);
        Ok(SendResult::Sent)
    }

    /// `shm_mq_send_bytes` over the whole message stream.
    fn send_stream(
        &mut self,
        word: &[u8; MAXALIGN],
        iov: &[&[u8]],
        total: usize,
        nowait: bool,
    ) -> Result<Result<(), Blocked>, ShmMqError> {
        let ring = self.mq.ring_size();
        let hdr = self.mq.header();
        while self.partial < total {
            // Acquire: our ring writes below stay after this read of the receiver's progress.
            let rb = hdr.bytes_read.load(Ordering::Acquire);
            let wb = self.my_count + self.pending;
            let used = (wb - rb) as usize;
            debug_assert!(used <= ring);
            let available = ring - used;
            if self.mq.is_detached() {
                return Ok(Err(Blocked::Detached));
            }
            if available == 0 && self.peer.is_none() {
                if nowait {
                    if self.counterparty_gone() {
                        return Ok(Err(Blocked::Detached));
                    }
                    match self.mq.receiver() {
                        None => return Ok(Err(Blocked::WouldBlock)),
                        Some(p) => self.peer = Some(p),
                    }
                } else if self.wait_for(Side::Receiver)? {
                    self.peer = self.mq.receiver();
                } else {
                    self.mq.mark_detached();
                    return Ok(Err(Blocked::Detached));
                }
                continue;
            }
            if available == 0 {
                // Full from our view: publish what we have so the receiver can drain it.
                self.flush();
                if nowait {
                    return Ok(Err(Blocked::WouldBlock));
                }
                if self.counterparty_gone() {
                    return Ok(Err(Blocked::Detached));
                }
                self.wait_for_peer(rb, pgipc_wait_event::WAIT_EVENT_MESSAGE_QUEUE_SEND)?;
                continue;
            }
            let offset = (wb % ring as u64) as usize;
            let n = available.min(ring - offset).min(total - self.partial);
            let dst = self.mq.ring_ptr();
            let mut done = 0;
            if self.partial < MAXALIGN {
                // `partial` and `n` are multiples of 8 here (see above): the word goes whole.
                let w = (MAXALIGN - self.partial).min(n);
                // SAFETY: `offset..offset+n` is free ring space, which only the sender touches.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        word.as_ptr().add(self.partial),
                        dst.add(offset),
                        w,
                    )
                };
                done = w;
            }
            if done < n {
                let from = self.partial + done - MAXALIGN;
                // SAFETY: `offset+done..offset+n` lies in the ring (n <= ring - offset).
                gather(iov, from, unsafe { dst.add(offset + done) }, n - done);
            }
            self.partial += n;
            self.pending += maxalign(n) as u64;
            if self.partial < total && self.pending > (ring as u64 >> 2) {
                // A long message: hand over what is written so the receiver can work in
                // parallel instead of waiting for the ring to fill.
                self.flush();
            }
        }
        Ok(Ok(()))
    }

    /// `shm_mq_receive_bytes`: a contiguous run of unread bytes at the read position, at least
    /// `needed` long unless it reaches the end of the ring.
    fn receive_bytes(
        &mut self,
        needed: usize,
        nowait: bool,
    ) -> Result<Result<(usize, *const u8), Blocked>, ShmMqError> {
        let ring = self.mq.ring_size();
        let hdr = self.mq.header();
        loop {
            let written = hdr.bytes_written.load(Ordering::Acquire);
            let read = self.my_count + self.pending;
            let used = (written - read) as usize;
            debug_assert!(used <= ring);
            let offset = (read % ring as u64) as usize;
            if used >= needed || offset + used >= ring {
                let n = used.min(ring - offset);
                // SAFETY: in bounds of the ring.
                return Ok(Ok(
                    (n, unsafe { self.mq.ring_ptr().add(offset) } as *const u8)
                ));
            }
            if self.mq.is_detached() {
                // The sender may have published more just before detaching: drain it first.
                let again = hdr.bytes_written.load(Ordering::Acquire);
                if again != written {
                    continue;
                }
                return Ok(Err(Blocked::Detached));
            }
            // Nothing (enough) to read: free the space we consumed and wake the sender.
            self.flush();
            if nowait {
                return Ok(Err(Blocked::WouldBlock));
            }
            if let Some(check) = self.peer_alive {
                if !check.is_alive() {
                    // Loop once more: drain what it published, then report Detached.
                    self.mq.mark_detached();
                    continue;
                }
            }
            self.wait_for_peer(written, pgipc_wait_event::WAIT_EVENT_MESSAGE_QUEUE_RECEIVE)?;
        }
    }

    /// Receives one message (`shm_mq_receive`). A blocking receive returns a whole message or
    /// [`RecvResult::Detached`]; a `nowait` one may return [`RecvResult::WouldBlock`] and
    /// continues the same message on the next call.
    pub fn receive(&mut self, nowait: bool) -> Result<RecvResult<'_>, ShmMqError> {
        let r = self.receive_message(nowait)?;
        if let RecvResult::Received(m) = &r {
            pgipc_ipc_stats::count_message(pgipc_ipc_stats::Counter::ShmMqReceived, m.len());
        }
        Ok(r)
    }

    fn receive_message(&mut self, nowait: bool) -> Result<RecvResult<'_>, ShmMqError> {
        if self.side != Side::Receiver {
            return Err(ShmMqError::WrongSide {
                side: self.side.name(),
                op: "receive",
            });
        }
        self.check_mapped()?;
        if self.peer.is_none() {
            if nowait {
                let gone = self.counterparty_gone();
                match self.mq.sender() {
                    None if gone => return Ok(RecvResult::Detached),
                    None => return Ok(RecvResult::WouldBlock),
                    Some(p) => self.peer = Some(p),
                }
            } else if self.wait_for(Side::Sender)? {
                self.peer = self.mq.sender();
            } else {
                if self.mq.sender().is_none() {
                    self.mq.mark_detached();
                    return Ok(RecvResult::Detached);
                }
                self.peer = self.mq.sender();
            }
        }
        if self.pending > (self.mq.ring_size() as u64 >> 2) {
            self.flush();
        }
        let nbytes = match self.expected {
            Some(n) => n,
            None => {
                let (avail, ptr) = match self.receive_bytes(MAXALIGN, nowait)? {
                    Ok(x) => x,
                    Err(Blocked::WouldBlock) => return Ok(RecvResult::WouldBlock),
                    Err(Blocked::Detached) => return Ok(RecvResult::Detached),
                };
                let mut word = [0u8; MAXALIGN];
                // SAFETY: `avail >= 8` unread bytes at `ptr` (offsets are multiples of 8).
                unsafe { std::ptr::copy_nonoverlapping(ptr, word.as_mut_ptr(), MAXALIGN) };
                let n = u64::from_ne_bytes(word);
                if n > MAX_MESSAGE_SIZE as u64 {
                    return Err(ShmMqError::InvalidMessageSize { size: n });
                }
                let n = n as usize;
                self.pending += MAXALIGN as u64;
                if avail - MAXALIGN >= n {
                    // Fast path: the whole message is contiguous; lend it out.
                    self.pending += maxalign(n) as u64;
                    // SAFETY: unread bytes the sender will not touch until we publish them
                    // consumed, which happens no earlier than the next call on `&mut self`.
                    let msg = unsafe { std::slice::from_raw_parts(ptr.add(MAXALIGN), n) };
                    return Ok(RecvResult::Received(msg));
                }
                self.expected = Some(n);
                self.partial = 0;
                self.buffer.clear();
                self.buffer.reserve(n);
                n
            }
        };
        let ring = self.mq.ring_size();
        loop {
            let still = nbytes - self.partial;
            // Wait for the whole rest only while it could still be lent out of the ring in
            // one piece; otherwise copy whatever has arrived, so that a message longer than
            // the ring (or one that wraps) moves in the chunks the sender publishes while it
            // is still writing, instead of waiting for the ring's end each time.
            let offset = ((self.my_count + self.pending) % ring as u64) as usize;
            let needed = if self.partial == 0 && offset + nbytes <= ring {
                still
            } else {
                still.min(MAXALIGN)
            };
            let (avail, ptr) = match self.receive_bytes(needed, nowait)? {
                Ok(x) => x,
                Err(Blocked::WouldBlock) => return Ok(RecvResult::WouldBlock),
                Err(Blocked::Detached) => {
                    self.expected = None;
                    self.partial = 0;
                    return Ok(RecvResult::Detached);
                }
            };
            if self.partial == 0 && avail >= nbytes {
                self.expected = None;
                self.pending += maxalign(nbytes) as u64;
                // SAFETY: as in the fast path above.
                let msg = unsafe { std::slice::from_raw_parts(ptr, nbytes) };
                return Ok(RecvResult::Received(msg));
            }
            let n = avail.min(still);
            // SAFETY: `n` unread bytes at `ptr`.
            self.buffer
                .extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, n) });
            self.partial += n;
            self.pending += maxalign(n) as u64;
            if self.pending > (self.mq.ring_size() as u64 >> 2) {
                // The bytes are copied out: free them for the sender now.
                self.flush();
            }
            if self.partial == nbytes {
                self.expected = None;
                self.partial = 0;
                return Ok(RecvResult::Received(&self.buffer[..nbytes]));
            }
        }
    }

    /// Detaches (`shm_mq_detach`): publishes pending sent bytes, marks the queue detached,
    /// wakes the peer and cancels the segment callback. Idempotent; also done on drop. A
    /// handle whose segment went away at process exit only forgets its state (the queue was
    /// marked detached by the segment's callback then). The lease of a DSM queue is kept
    /// until the handle is dropped.
    pub fn detach(&mut self) {
        if self.detached {
            return;
        }
        self.detached = true;
        if self.check_mapped().is_err() {
            return;
        }
        if self.side == Side::Sender {
            self.publish_pending();
        }
        self.mq.detach_as(self.side, self.waker);
        if let Some(t) = &self.tie {
            t.q.segment().cancel_on_detach(t.key);
        }
    }
}

impl Drop for MqHandle<'_> {
    fn drop(&mut self) {
        self.detach();
    }
}
