//! WaitEventSet (work in progress).
