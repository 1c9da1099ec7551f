//! shm_mq benchmarks.
fn main() {}
