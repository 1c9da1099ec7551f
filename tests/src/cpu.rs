//! CPU pinning and small helpers for timing-sensitive tests and benches.

use std::time::Instant;

/// Pins the calling process (thread) to the given CPUs; CPUs the machine lacks are ignored,
/// and a failure leaves the affinity unchanged (pinning only steadies timings).
pub fn pin(cpus: &[usize]) {
    let mut set = rustix::thread::CpuSet::new();
    for &c in cpus
        .iter()
        .filter(|&&c| c < rustix::thread::CpuSet::MAX_CPU)
    {
        set.set(c);
    }
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// Number of online CPUs (not just those this process is pinned to).
pub fn ncpus() -> usize {
    // SAFETY: sysconf takes an integer name.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// A tiny deterministic random generator (xorshift) for delays.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next value. (An endless generator, not an `Iterator`: callers want a `u64`, not an
    /// `Option`; the name is the one the crates' tests already use.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Busy-waits about `ns` nanoseconds.
pub fn spin_ns(ns: u64) {
    let t = Instant::now();
    while (t.elapsed().as_nanos() as u64) < ns {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_to_cpu0_then_back() {
        let before = rustix::thread::sched_getaffinity(None).expect("getaffinity");
        pin(&[0]);
        let now = rustix::thread::sched_getaffinity(None).expect("getaffinity");
        rustix::thread::sched_setaffinity(None, &before).expect("restore affinity");
        assert_eq!(now.count(), 1);
        assert!(now.is_set(0));
        assert!(ncpus() >= 1);
    }

    #[test]
    fn rng_is_deterministic_and_moves() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        let xs: Vec<u64> = (0..4).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], xs[1]);
    }
}
