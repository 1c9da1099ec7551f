//! Typed views into a mapping: the `ShmemSafe` contract, `Shared<T>` handles and `RelPtr<T>`.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// Types that may live in memory shared between processes.
///
/// # Safety
/// An implementor promises that:
/// * it is `#[repr(C)]` (or `#[repr(transparent)]`/a primitive), so every process agrees on its
///   layout;
/// * the all-zero bit pattern is a valid value (fresh segments are zero-filled, and a structure
///   found by name in another process is used as it is);
/// * it holds no pointer, reference, `Box`, `Vec`, `String` or process-local lock, only plain data,
///   atomics and offsets/indexes, so it means the same wherever it is mapped;
/// * all mutation through `&Self` goes through atomics or the project's process-shared locks
///   (it is `Sync`).
pub unsafe trait ShmemSafe: Sync + 'static {}

macro_rules! shmem_safe {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: primitives and atomics: repr is fixed, zero is valid, no pointers, Sync.
        unsafe impl ShmemSafe for $t {}
    )* };
}
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
};
shmem_safe!(
    u8,
    u16,
    u32,
    u64,
    i8,
    i16,
    i32,
    i64,
    usize,
    AtomicBool,
    AtomicU8,
    AtomicU16,
    AtomicU32,
    AtomicU64,
    AtomicUsize,
    AtomicI32,
    AtomicI64,
);
shmem_safe!(
    pgipc_lwlock::SpinLock,
    pgipc_lwlock::PgSemaphore,
    pgipc_lwlock::LWLock,
    pgipc_lwlock::ProcWaitSlot,
);
// SAFETY: CachePadded is #[repr(C)] (crossbeam-utils >= 0.8.22) with the value at offset 0 and
// padding after it: the value's properties plus bytes nobody reads. (LWLockPadded and WaitSlot
// are this type.)
unsafe impl<T: ShmemSafe> ShmemSafe for pgipc_lwlock::CachePadded<T> {}
// SAFETY: an array of ShmemSafe elements is laid out contiguously and inherits every property.
unsafe impl<T: ShmemSafe, const N: usize> ShmemSafe for [T; N] {}

/// A handle on a `T` inside a mapped segment; dereferences to `&T`.
///
/// It keeps the mapping alive (an `Arc` on it), so the reference can never dangle, and it is
/// cheap to clone. Subsystems keep these in their process-local state.
pub struct Shared<T: ?Sized> {
    ptr: NonNull<T>,
    keep: Arc<dyn Any + Send + Sync>,
}

// SAFETY: `T: Sync` (ShmemSafe requires it) makes `&T` shareable across threads; the keep-alive is
// Send + Sync.
unsafe impl<T: ?Sized + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for Shared<T> {}

impl<T: ?Sized> Shared<T> {
    /// Wraps a pointer into a mapping that `keep` keeps alive.
    ///
    /// # Safety
    /// `ptr` must point to a valid, properly aligned `T` (for a slice: `len` valid elements) inside
    /// the mapping owned by `keep`, the memory must stay mapped as long as `keep` lives, and the
    /// pointee must only be mutated through interior mutability (atomics, shared locks).
    pub unsafe fn from_raw(ptr: NonNull<T>, keep: Arc<dyn Any + Send + Sync>) -> Self {
        Shared { ptr, keep }
    }

    /// The raw address (for offset computations and diagnostics).
    pub fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }

    /// The object that keeps the mapping alive (to build more views into the same mapping).
    pub fn keep_alive(&self) -> &Arc<dyn Any + Send + Sync> {
        &self.keep
    }

    /// A view of something inside this one (a field, an element), sharing the keep-alive.
    pub fn map<U: ?Sized>(&self, f: impl FnOnce(&T) -> &U) -> Shared<U> {
        let u = NonNull::from(f(self));
        Shared {
            ptr: u,
            keep: self.keep.clone(),
        }
    }
}

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            ptr: self.ptr,
            keep: self.keep.clone(),
        }
    }
}

impl<T: ?Sized> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: from_raw's contract: valid pointee, mapping kept alive by `keep`.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A position inside a segment, stored as an offset from the segment's start.
///
/// # Layout
/// `#[repr(transparent)]` over `u64`; 0 means "none" (offset 0 is always the segment header, so
/// no object can live there). Resolving needs the segment it belongs to, in the current process.
#[repr(transparent)]
pub struct RelPtr<T> {
    offset: u64,
    _t: PhantomData<fn() -> T>,
}

// SAFETY: a plain u64; zero is the valid "none" value; no pointer.
unsafe impl<T: 'static> ShmemSafe for RelPtr<T> {}

impl<T> RelPtr<T> {
    /// The "none" position.
    pub const NULL: RelPtr<T> = RelPtr {
        offset: 0,
        _t: PhantomData,
    };

    /// A position at `offset` bytes from the segment's start.
    pub const fn from_offset(offset: u64) -> Self {
        RelPtr {
            offset,
            _t: PhantomData,
        }
    }

    /// The stored offset.
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether this is the "none" position.
    pub const fn is_null(&self) -> bool {
        self.offset == 0
    }
}

impl<T> Clone for RelPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for RelPtr<T> {}
impl<T> PartialEq for RelPtr<T> {
    fn eq(&self, o: &Self) -> bool {
        self.offset == o.offset
    }
}
impl<T> Eq for RelPtr<T> {}
impl<T> fmt::Debug for RelPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelPtr({:#x})", self.offset)
    }
}
