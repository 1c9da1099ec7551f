//! sinval benchmarks (being written).

fn main() {}
