//! shm_mq multi-process tests (filled in below).
fn main() {}
