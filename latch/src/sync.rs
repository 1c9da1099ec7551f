//! The atomics the latch protocol uses, switched to loom's under `cfg(loom)` so that the model
//! test in `ci/loom.sh` explores every interleaving and every weak-memory outcome it allows.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicI32, AtomicU32, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicI32, AtomicU32, Ordering};
