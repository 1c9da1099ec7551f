//! This process's segments: create, attach, detach, callbacks and pins.

use crate::control::{is_main_region_dsm_handle, ControlView};
use crate::pool::{Pool, FPM_PAGE_SIZE};
use crate::DsmError;
use pgipc_dsm_impl::{DsmHandle, DsmImpl, DsmImplError, Mapping, DSM_HANDLE_INVALID};
use pgipc_lwlock::{LWLockMode, MainLWLockId};
use pgipc_shmem::Shmem;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// What a process knows of the control segment: the main segment (for the lock), the
/// implementation, and its own mapping of the control segment.
pub(crate) struct Ctx {
    shmem: Shmem,
    imp: DsmImpl,
    control: Option<Mapping>,
    /// The main-region pool, when the server has one.
    pool: Option<Pool>,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("imp", &self.imp)
            .field("control", &self.control)
            .field("pool", &self.pool)
            .finish()
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if let Some(m) = self.control.take() {
            if let Err(e) = self.imp.detach(m) {
                tracing::warn!("{e}");
            }
        }
    }
}

impl Ctx {
    /// Runs `f` on the control table with `DynamicSharedMemoryControlLock` held exclusively.
    fn locked<R>(&self, f: impl FnOnce(ControlView<'_>) -> R) -> Result<R, DsmError> {
        let view = self
            .control
            .as_ref()
            .and_then(ControlView::sane)
            .ok_or(DsmError::ControlNotValid)?;
        let me = self.shmem.lwlock_proc();
        let lock = self
            .shmem
            .main_lwlock(MainLWLockId::DynamicSharedMemoryControl);
        let _guard = lock.acquire(&me, LWLockMode::Exclusive);
        Ok(f(view))
    }

    /// Drops one reference from `slot`; the process that takes it to 1 destroys the segment
    /// (without the lock, as PostgreSQL does) and then frees the slot.
    fn release_slot(&self, slot: u32, handle: DsmHandle) {
        let left = self.locked(|v| {
            let it = &v.items[slot as usize];
            let r = it.refcnt.load(Ordering::Relaxed).saturating_sub(1);
            it.refcnt.store(r, Ordering::Relaxed);
            r
        });
        match left {
            // Main-region pages go back to the pool; no system call.
            Ok(1) if is_main_region_dsm_handle(handle) => {
                let _ = self.locked(|v| {
                    let it = &v.items[slot as usize];
                    if let Some(pool) = &self.pool {
                        pool.put(
                            it.first_page.load(Ordering::Relaxed) as usize,
                            it.npages.load(Ordering::Relaxed) as usize,
                        );
                    }
                    it.refcnt.store(0, Ordering::Relaxed);
                });
            }
            Ok(1) => match self.imp.destroy(None, handle) {
                Ok(()) => {
                    pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::DsmDestroys);
                    let _ =
                        self.locked(|v| v.items[slot as usize].refcnt.store(0, Ordering::Relaxed));
                }
                // The slot stays at 1 (unusable) until the postmaster cleans up.
                Err(e) => tracing::warn!("{e}"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

type Callback = Box<dyn FnOnce()>;

/// A mapping of one segment in this process (PostgreSQL's `dsm_segment`).
///
/// States: mapped (`detached` false) → detached (callbacks run, no longer found by handle) →
/// unmapped and reference given back. The last step waits until no [`DsmLease`] is left
/// (`leases == 0`); at process exit ([`SegInner::detach_for_exit`]) the reference is given back
/// at once and a leased mapping only stays in the address space, marked not `usable`.
struct SegInner {
    ctx: Rc<Ctx>,
    handle: DsmHandle,
    /// Our slot in the control table while we hold a reference there.
    slot: Cell<Option<u32>>,
    mapping: RefCell<Option<Mapping>>,
    addr: NonNull<u8>,
    size: usize,
    callbacks: RefCell<Vec<(u64, Callback)>>,
    next_key: Cell<u64>,
    mapping_pinned: Cell<bool>,
    detached: Cell<bool>,
    /// Live [`DsmLease`]s: while non-zero the mapping is not unmapped.
    leases: Cell<u32>,
    /// False once the reference was given back while leases still exist (process exit): the
    /// memory is still mapped but no longer ours to use (the segment may be destroyed, or its
    /// main-region pages handed to another segment).
    usable: Cell<bool>,
}

impl SegInner {
    /// `dsm_detach`: callbacks newest first (each taken off before it runs), then unmap and
    /// drop the reference, unless a [`DsmLease`] still holds the mapping (then the last lease
    /// does it). Idempotent.
    fn detach(&self) {
        if self.detached.get() {
            return;
        }
        loop {
            let next = self.callbacks.borrow_mut().pop();
            match next {
                Some((_, cb)) => cb(),
                None => break,
            }
        }
        self.detached.set(true);
        if self.leases.get() == 0 {
            self.unmap_and_release();
        }
    }

    /// Unmaps, then gives back the reference and leaves this process's list.
    fn unmap_and_release(&self) {
        // Unmap before giving up the reference: whoever sees the count reach 1 knows no
        // process has it mapped any more.
        if let Some(m) = self.mapping.borrow_mut().take() {
            if let Err(e) = self.ctx.imp.detach(m) {
                tracing::warn!("{e}");
            }
        }
        if let Some(slot) = self.slot.take() {
            self.ctx.release_slot(slot, self.handle);
        }
        forget_segment(self);
    }

    /// Detach at process exit (or when the process gives up DSM altogether): as
    /// [`detach`](Self::detach), but a leased mapping does not keep the reference: it is given
    /// back now, so the segment is not leaked by a lease that will never be dropped (a handle
    /// on the stack of `proc_exit`'s caller, or one leaked). The mapping itself stays until the
    /// last lease goes or the process ends, so nothing that still holds a lease can touch
    /// unmapped memory; leases report [`DsmLease::is_usable`] false and their users refuse.
    fn detach_for_exit(&self) {
        self.detach();
        if self.leases.get() > 0 {
            self.usable.set(false);
            if let Some(slot) = self.slot.take() {
                self.ctx.release_slot(slot, self.handle);
            }
        }
        forget_segment(self);
    }
}

/// This process's state (PostgreSQL's `dsm_segment_list` and control-segment globals).
#[derive(Default)]
struct Local {
    ctx: Option<Rc<Ctx>>,
    /// Newest last.
    segments: Vec<Rc<SegInner>>,
}

impl Drop for Local {
    fn drop(&mut self) {
        // Thread (= process) teardown without proc_exit: still give the references back.
        while let Some(s) = self.segments.pop() {
            s.detach_for_exit();
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

fn ctx() -> Result<Rc<Ctx>, DsmError> {
    LOCAL
        .try_with(|l| l.borrow().ctx.clone())
        .ok()
        .flatten()
        .ok_or(DsmError::NotInitialized)
}

fn forget_segment(s: &SegInner) {
    // `try_borrow_mut`: during `Local`'s own teardown the list is already borrowed (and
    // being emptied).
    let _ = LOCAL.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.segments.retain(|x| !std::ptr::eq(Rc::as_ptr(x), s));
        }
    });
}

/// Attaches this process to the control segment recorded in `shmem`
/// (`shm.dsm_control()`), so it may create and attach segments (PostgreSQL's
/// `dsm_backend_startup`). Also installs the exit hooks: [`dsm_backend_shutdown`] runs in
/// `pgipc_ipc::shmem_exit` and [`reset_on_dsm_detach`] in `pgipc_ipc::on_exit_reset`.
///
/// Call it once per process (a forked child first calls `on_exit_reset`); calling it again
/// replaces the control mapping for segments made afterwards.
pub fn dsm_backend_startup(shmem: &Shmem, imp: DsmImpl) -> Result<(), DsmError> {
    let handle = shmem.dsm_control();
    if handle == DSM_HANDLE_INVALID {
        return Err(DsmError::NoControlSegment);
    }
    let m = imp.attach(handle)?;
    if ControlView::sane(&m).is_none() {
        let _ = imp.detach(m);
        return Err(DsmError::ControlNotValid);
    }
    let ctx = Rc::new(Ctx {
        shmem: shmem.clone(),
        imp,
        control: Some(m),
        pool: Pool::find(shmem),
    });
    LOCAL
        .try_with(|l| l.borrow_mut().ctx = Some(ctx))
        .map_err(|_| DsmError::NotInitialized)?;
    pgipc_ipc::set_dsm_hooks(pgipc_ipc::DsmHooks {
        backend_shutdown: dsm_backend_shutdown,
        reset_on_detach: reset_on_dsm_detach,
    });
    Ok(())
}

/// Detaches every segment of this process, newest first, running their callbacks
/// (PostgreSQL's `dsm_backend_shutdown`; the `pgipc_ipc` exit hook). Every reference is
/// given back, also those of mappings a [`DsmLease`] still holds: such a mapping stays in
/// the address space (so a holder never touches unmapped memory) but its leases report
/// [`DsmLease::is_usable`] false.
pub fn dsm_backend_shutdown() {
    loop {
        let newest = LOCAL
            .try_with(|l| l.borrow().segments.last().cloned())
            .ok()
            .flatten();
        match newest {
            Some(s) => s.detach_for_exit(),
            None => break,
        }
    }
}

/// [`dsm_backend_shutdown`], then unmaps the control segment too (PostgreSQL's
/// `dsm_detach_all`, for processes that give up shared memory altogether).
pub fn dsm_detach_all() {
    dsm_backend_shutdown();
    let ctx = LOCAL.try_with(|l| l.borrow_mut().ctx.take()).ok().flatten();
    drop(ctx);
}

/// Forgets every detach callback without running it and stops this process's mappings
/// from touching reference counts (PostgreSQL's `reset_on_dsm_detach`, for a freshly forked
/// child: the references belong to the parent). The callbacks are leaked, not dropped:
/// what they captured belongs to the parent too.
pub fn reset_on_dsm_detach() {
    let segs = LOCAL
        .try_with(|l| l.borrow().segments.clone())
        .unwrap_or_default();
    for s in segs {
        for (_, cb) in s.callbacks.borrow_mut().drain(..) {
            std::mem::forget(cb);
        }
        s.slot.set(None);
    }
}

/// This process's mapping of `handle`, if it has one (`dsm_find_mapping`).
pub fn dsm_find_mapping(handle: DsmHandle) -> Option<DsmSegmentRef> {
    LOCAL
        .try_with(|l| {
            l.borrow()
                .segments
                .iter()
                .find(|s| s.handle == handle && !s.detached.get())
                .map(|s| DsmSegmentRef { inner: s.clone() })
        })
        .ok()
        .flatten()
}

/// Handles of this process's mappings, newest last.
pub fn dsm_mapped_handles() -> Vec<DsmHandle> {
    LOCAL
        .try_with(|l| {
            l.borrow()
                .segments
                .iter()
                .filter(|s| !s.detached.get())
                .map(|s| s.handle)
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the pin of segment `handle` (`dsm_unpin_segment`); if nothing else refers to it,
/// it is destroyed now. The caller must not have it mapped in that case.
pub fn dsm_unpin_segment(handle: DsmHandle) -> Result<(), DsmError> {
    let ctx = ctx()?;
    let found = ctx.locked(|v| {
        let i = v
            .used()
            .iter()
            .position(|it| {
                it.handle.load(Ordering::Relaxed) == handle && it.refcnt.load(Ordering::Relaxed) > 1
            })
            .ok_or(DsmError::UnknownHandle { handle })?;
        let it = &v.items[i];
        if it.pinned.load(Ordering::Relaxed) == 0 {
            return Err(DsmError::NotPinned { handle });
        }
        it.pinned.store(0, Ordering::Relaxed);
        // Put back the reference the pin held, through the common path below.
        Ok(i as u32)
    })??;
    ctx.release_slot(found, handle);
    Ok(())
}

/// Options of [`DsmSegment::create`] (PostgreSQL's `flags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreateFlags {
    /// Return `Ok(None)` instead of [`DsmError::TooManySegments`] when every slot is taken
    /// (`DSM_CREATE_NULL_IF_MAXSEGMENTS`).
    pub null_if_maxsegments: bool,
}

impl CreateFlags {
    /// `DSM_CREATE_NULL_IF_MAXSEGMENTS`.
    pub const NULL_IF_MAXSEGMENTS: CreateFlags = CreateFlags {
        null_if_maxsegments: true,
    };
}

/// Identifies a callback registered with [`DsmSegmentRef::on_detach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DetachCallbackId(pub u64);

/// A shared, non-owning reference to one of this process's mappings: it can register
/// callbacks, read the address and detach explicitly, but dropping it does nothing.
#[derive(Clone)]
pub struct DsmSegmentRef {
    inner: Rc<SegInner>,
}

impl fmt::Debug for DsmSegmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsmSegmentRef")
            .field("handle", &self.inner.handle)
            .field("slot", &self.inner.slot.get())
            .field("size", &self.inner.size)
            .field("detached", &self.inner.detached.get())
            .finish()
    }
}

impl DsmSegmentRef {
    /// The segment's handle (`dsm_segment_handle`): pass it to other processes.
    pub fn handle(&self) -> DsmHandle {
        self.inner.handle
    }

    /// Start of the mapping in this process (`dsm_segment_address`). Page-aligned. Valid
    /// until the segment is detached in this process (with a [`DsmLease`], until the lease
    /// goes).
    pub fn address(&self) -> NonNull<u8> {
        self.inner.addr
    }

    /// Length of the mapping (`dsm_segment_map_length`).
    pub fn map_length(&self) -> usize {
        self.inner.size
    }

    /// Whether this process has detached it.
    pub fn is_detached(&self) -> bool {
        self.inner.detached.get()
    }

    /// Registers `cb` to run when this process detaches the segment, while it is still
    /// mapped (`on_dsm_detach`). Callbacks run newest first. Registering on a detached
    /// segment runs nothing and returns an id that cancels nothing.
    pub fn on_detach(&self, cb: impl FnOnce() + 'static) -> DetachCallbackId {
        let key = self.inner.next_key.get();
        self.inner.next_key.set(key + 1);
        if !self.inner.detached.get() {
            self.inner.callbacks.borrow_mut().push((key, Box::new(cb)));
        }
        DetachCallbackId(key)
    }

    /// Removes a callback without running it (`cancel_on_dsm_detach`); `false` if it is not
    /// registered (already run or cancelled).
    pub fn cancel_on_detach(&self, id: DetachCallbackId) -> bool {
        let mut cbs = self.inner.callbacks.borrow_mut();
        match cbs.iter().position(|(k, _)| *k == id.0) {
            Some(i) => {
                drop(cbs.remove(i));
                true
            }
            None => false,
        }
    }

    /// Detaches now (`dsm_detach`); idempotent. The detach callbacks run at once; the
    /// unmap and the release of the reference wait for the last [`DsmLease`], if any. If
    /// this was the last reference, the segment is destroyed.
    pub fn detach(&self) {
        self.inner.detach();
    }

    /// A lease on this mapping: while it lives the memory stays mapped in this process, even
    /// across [`detach`](Self::detach) or the drop of the [`DsmSegment`] (their callbacks
    /// still run at once). What is built on the segment's memory (a `shm_mq` queue) holds
    /// one, so no safe code can unmap memory it still uses. Fails with
    /// [`DsmError::Detached`] once the segment is detached.
    pub fn lease(&self) -> Result<DsmLease, DsmError> {
        if self.inner.detached.get() {
            return Err(DsmError::Detached {
                handle: self.inner.handle,
            });
        }
        self.inner.leases.set(self.inner.leases.get() + 1);
        Ok(DsmLease {
            inner: self.inner.clone(),
        })
    }

    /// Keeps the mapping when its [`DsmSegment`] owner is dropped: it then lasts until an
    /// explicit detach or process exit (`dsm_pin_mapping`).
    pub fn pin_mapping(&self) {
        self.inner.mapping_pinned.set(true);
    }

    /// Undoes [`pin_mapping`](Self::pin_mapping) (`dsm_unpin_mapping`).
    pub fn unpin_mapping(&self) {
        self.inner.mapping_pinned.set(false);
    }

    /// Keeps the segment alive with no process attached, until [`dsm_unpin_segment`] or
    /// server shutdown (`dsm_pin_segment`).
    pub fn pin_segment(&self) -> Result<(), DsmError> {
        let slot = match self.inner.slot.get() {
            Some(s) if !self.inner.detached.get() => s,
            _ => {
                return Err(DsmError::Detached {
                    handle: self.inner.handle,
                })
            }
        };
        let handle = self.inner.handle;
        self.inner.ctx.locked(|v| {
            let it = &v.items[slot as usize];
            if it.pinned.load(Ordering::Relaxed) != 0 {
                return Err(DsmError::AlreadyPinned { handle });
            }
            it.pinned.store(1, Ordering::Relaxed);
            it.refcnt
                .store(it.refcnt.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            Ok(())
        })?
    }
}

/// Keeps this process's mapping of a segment in place (see [`DsmSegmentRef::lease`]).
///
/// Cloning takes another lease. When the segment was detached and the last lease is dropped,
/// the mapping is unmapped and the reference given back (the segment is destroyed if that
/// was the last one). At process exit the reference is given back even while leases live
/// ([`dsm_backend_shutdown`]); the memory stays mapped, but [`is_usable`](Self::is_usable)
/// turns false and holders must stop using it.
pub struct DsmLease {
    inner: Rc<SegInner>,
}

impl fmt::Debug for DsmLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsmLease")
            .field("handle", &self.inner.handle)
            .field("leases", &self.inner.leases.get())
            .field("detached", &self.inner.detached.get())
            .field("usable", &self.inner.usable.get())
            .finish()
    }
}

impl Clone for DsmLease {
    fn clone(&self) -> Self {
        self.inner.leases.set(self.inner.leases.get() + 1);
        DsmLease {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for DsmLease {
    fn drop(&mut self) {
        let left = self.inner.leases.get() - 1;
        self.inner.leases.set(left);
        if left == 0 && self.inner.detached.get() {
            self.inner.unmap_and_release();
        }
    }
}

impl DsmLease {
    /// The segment's handle.
    pub fn handle(&self) -> DsmHandle {
        self.inner.handle
    }

    /// Start of the mapping; mapped for as long as this lease lives.
    pub fn address(&self) -> NonNull<u8> {
        self.inner.addr
    }

    /// Length of the mapping.
    pub fn map_length(&self) -> usize {
        self.inner.size
    }

    /// Whether the memory may still be used: true until process exit gave the reference
    /// back under this lease (then the segment may already be destroyed, or its main-region
    /// pages reused by another segment, and the memory must not be read or written).
    pub fn is_usable(&self) -> bool {
        self.inner.usable.get()
    }

    /// The segment (to register or cancel detach callbacks).
    pub fn segment(&self) -> DsmSegmentRef {
        DsmSegmentRef {
            inner: self.inner.clone(),
        }
    }
}

/// An owned mapping of a segment: detaches when dropped, unless its mapping is pinned.
/// Dereferences to [`DsmSegmentRef`] for everything else.
#[derive(Debug)]
pub struct DsmSegment {
    r: DsmSegmentRef,
}

impl std::ops::Deref for DsmSegment {
    type Target = DsmSegmentRef;
    fn deref(&self) -> &DsmSegmentRef {
        &self.r
    }
}

impl Drop for DsmSegment {
    fn drop(&mut self) {
        if !self.r.inner.mapping_pinned.get() {
            self.r.detach();
        }
    }
}

/// Where a new local segment's memory is: an OS mapping, or pages of the main-region pool.
enum Place {
    Os(Mapping),
    Main(NonNull<u8>, usize),
}

fn register(ctx: &Rc<Ctx>, handle: DsmHandle, slot: u32, place: Place) -> DsmSegment {
    let (addr, size, mapping) = match place {
        Place::Os(m) => (m.addr(), m.size(), Some(m)),
        Place::Main(a, n) => (a, n, None),
    };
    let inner = Rc::new(SegInner {
        ctx: ctx.clone(),
        handle,
        slot: Cell::new(Some(slot)),
        addr,
        size,
        mapping: RefCell::new(mapping),
        callbacks: RefCell::new(Vec::new()),
        next_key: Cell::new(0),
        mapping_pinned: Cell::new(false),
        detached: Cell::new(false),
        leases: Cell::new(0),
        usable: Cell::new(true),
    });
    let _ = LOCAL.try_with(|l| l.borrow_mut().segments.push(inner.clone()));
    DsmSegment {
        r: DsmSegmentRef { inner },
    }
}

impl DsmSegment {
    /// Creates a segment of at least `size` bytes and maps it (`dsm_create`). Its contents
    /// are zero (fresh OS memory). When every control slot is taken, nothing is created and
    /// the result is `Ok(None)` with [`CreateFlags::NULL_IF_MAXSEGMENTS`], else
    /// [`DsmError::TooManySegments`].
    ///
    /// Unlike PostgreSQL, the slot is reserved (count 1, the handle recorded) *before* the OS
    /// segment is created, so a process killed half-way leaves nothing the next postmaster's
    /// clean-up does not know about. The residual risk is the other way round: killed during
    /// the exclusive create of a handle another server happens to use, the clean-up would try
    /// to destroy that name (a 1 in 2^31 collision inside a system call).
    pub fn create(size: usize, flags: CreateFlags) -> Result<Option<DsmSegment>, DsmError> {
        let made = Self::create_uncounted(size, flags)?;
        if made.is_some() {
            pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::DsmCreates);
            pgipc_ipc_stats::add(pgipc_ipc_stats::Counter::DsmBytesCreated, size as u64);
        }
        Ok(made)
    }

    fn create_uncounted(size: usize, flags: CreateFlags) -> Result<Option<DsmSegment>, DsmError> {
        let ctx = ctx()?;
        if let Some(pool) = ctx.pool {
            match create_in_pool(&ctx, &pool, size)? {
                PoolCreate::Made(seg) => return Ok(Some(seg)),
                PoolCreate::NoSlot if flags.null_if_maxsegments => return Ok(None),
                PoolCreate::NoSlot => return Err(DsmError::TooManySegments),
                // No run of free pages big enough: an OS segment, as PostgreSQL falls back.
                PoolCreate::NoSpace => {}
            }
        }
        // Reserve the control slot first, under the handle we are about to use, and only then
        // create the OS segment: a process killed in between leaves a slot the next clean-up
        // destroys (it treats every non-free slot as present), never a segment nobody lists.
        // The reserved slot's count is 1, which attach treats as "not live".
        let Some(slot) = ctx.locked(|v| {
            let slot = take_slot(v)?;
            fill_slot(v, slot, DSM_HANDLE_INVALID, 0, 0);
            v.items[slot as usize].refcnt.store(1, Ordering::Relaxed);
            Some(slot)
        })?
        else {
            return if flags.null_if_maxsegments {
                Ok(None)
            } else {
                Err(DsmError::TooManySegments)
            };
        };
        let free_slot = || {
            let _ = ctx.locked(|v| {
                let it = &v.items[slot as usize];
                it.handle.store(DSM_HANDLE_INVALID, Ordering::Relaxed);
                it.refcnt.store(0, Ordering::Relaxed);
            });
        };
        let (handle, m) = loop {
            // OS-backed segments get even handles; odd ones belong to the main-region pool.
            let h = crate::sys::random_u32() << 1;
            if h == DSM_HANDLE_INVALID {
                continue;
            }
            if let Err(e) =
                ctx.locked(|v| v.items[slot as usize].handle.store(h, Ordering::Relaxed))
            {
                free_slot();
                return Err(e);
            }
            match ctx.imp.create(h, size) {
                Ok(m) => break (h, m),
                Err(DsmImplError::Exists { .. }) => continue,
                Err(e) => {
                    free_slot();
                    return Err(e.into());
                }
            }
        };
        // The window PostgreSQL leaves open (OS segment made, not yet live in the table): a
        // test kills a process waiting here and checks that the next start removes the segment.
        let live = pgipc_injection_point::injection_point!("dsm-create")
            .map_err(DsmError::from)
            .and_then(|()| ctx.locked(|v| fill_slot(v, slot, handle, 0, 0)));
        if let Err(e) = live {
            if let Err(d) = ctx.imp.destroy(Some(m), handle) {
                tracing::warn!("{d}");
            }
            free_slot();
            return Err(e);
        }
        Ok(Some(register(&ctx, handle, slot, Place::Os(m))))
    }

    /// Maps the live segment `handle` (`dsm_attach`). A handle that names no live segment
    /// is [`DsmError::NotFound`]; one this process already maps is
    /// [`DsmError::AlreadyAttached`] (use [`dsm_find_mapping`]).
    pub fn attach(handle: DsmHandle) -> Result<DsmSegment, DsmError> {
        let seg = Self::attach_uncounted(handle)?;
        pgipc_ipc_stats::count(pgipc_ipc_stats::Counter::DsmAttaches);
        Ok(seg)
    }

    fn attach_uncounted(handle: DsmHandle) -> Result<DsmSegment, DsmError> {
        let ctx = ctx()?;
        if dsm_find_mapping(handle).is_some() {
            return Err(DsmError::AlreadyAttached { handle });
        }
        let slot = ctx.locked(|v| {
            // Slots at 1 are being destroyed: skip them (the handle may live on in another).
            let i = v.used().iter().position(|it| {
                it.refcnt.load(Ordering::Relaxed) > 1 && it.handle.load(Ordering::Relaxed) == handle
            })?;
            let it = &v.items[i];
            it.refcnt
                .store(it.refcnt.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            Some(i as u32)
        })?;
        let slot = slot.ok_or(DsmError::NotFound { handle })?;
        if is_main_region_dsm_handle(handle) {
            let place = ctx.pool.and_then(|pool| {
                ctx.locked(|v| {
                    let it = &v.items[slot as usize];
                    let npages = it.npages.load(Ordering::Relaxed) as usize;
                    let first = it.first_page.load(Ordering::Relaxed) as usize;
                    pool.address(first, npages)
                        .map(|a| (a, npages * FPM_PAGE_SIZE))
                })
                .ok()
                .flatten()
            });
            return match place {
                Some((a, n)) => Ok(register(&ctx, handle, slot, Place::Main(a, n))),
                None => {
                    ctx.release_slot(slot, handle);
                    Err(DsmError::ControlNotValid)
                }
            };
        }
        match ctx.imp.attach(handle) {
            Ok(m) => Ok(register(&ctx, handle, slot, Place::Os(m))),
            Err(e) => {
                ctx.release_slot(slot, handle);
                Err(e.into())
            }
        }
    }

    /// A non-owning reference (for callbacks and `shm_mq`).
    pub fn reference(&self) -> DsmSegmentRef {
        self.r.clone()
    }

    /// Detaches now (same as dropping it, but also when the mapping is pinned).
    pub fn detach(self) {
        self.r.detach();
    }
}

enum PoolCreate {
    Made(DsmSegment),
    NoSlot,
    NoSpace,
}

/// A main-region handle: odd, the slot number above the low bit, random bits above the
/// slot (PostgreSQL 18's `make_main_region_dsm_handle`).
fn main_region_handle(slot: u32, maxitems: u32) -> DsmHandle {
    let shift = 32 - maxitems.leading_zeros();
    let random = crate::sys::random_u32().checked_shl(shift).unwrap_or(0);
    1 | (slot << 1) | random
}

/// Carves a segment from the main-region pool: pages and a slot under one lock hold.
fn create_in_pool(ctx: &Rc<Ctx>, pool: &Pool, size: usize) -> Result<PoolCreate, DsmError> {
    let npages = size.div_ceil(FPM_PAGE_SIZE).max(1);
    let made = ctx.locked(|v| {
        let Some(first) = pool.get(npages) else {
            return Err(PoolCreate::NoSpace);
        };
        let Some(slot) = take_slot(v) else {
            pool.put(first, npages);
            return Err(PoolCreate::NoSlot);
        };
        let handle = main_region_handle(slot, v.items.len() as u32);
        fill_slot(v, slot, handle, first, npages);
        Ok((handle, slot, first))
    })?;
    match made {
        Ok((handle, slot, first)) => match pool.address(first, npages) {
            Some(a) => Ok(PoolCreate::Made(register(
                ctx,
                handle,
                slot,
                Place::Main(a, npages * FPM_PAGE_SIZE),
            ))),
            None => {
                ctx.release_slot(slot, handle);
                Err(DsmError::ControlNotValid)
            }
        },
        Err(e) => Ok(e),
    }
}

/// A free slot, lowest first, else the next never-used one (raising `nitems`); `None` when
/// the table is full. Caller holds the control lock.
fn take_slot(v: ControlView<'_>) -> Option<u32> {
    let used = v.used();
    match used
        .iter()
        .position(|it| it.refcnt.load(Ordering::Relaxed) == 0)
    {
        Some(i) => Some(i as u32),
        None if used.len() < v.items.len() => {
            v.header
                .nitems
                .store(used.len() as u32 + 1, Ordering::Relaxed);
            Some(used.len() as u32)
        }
        None => None,
    }
}

/// Records a new segment in `slot` with the creator's reference. Caller holds the lock.
fn fill_slot(v: ControlView<'_>, slot: u32, handle: DsmHandle, first: usize, npages: usize) {
    let it = &v.items[slot as usize];
    it.handle.store(handle, Ordering::Relaxed);
    // The base reference plus the creator's.
    it.refcnt.store(2, Ordering::Relaxed);
    it.pinned.store(0, Ordering::Relaxed);
    it.first_page.store(first as u64, Ordering::Relaxed);
    it.npages.store(npages as u64, Ordering::Relaxed);
}
