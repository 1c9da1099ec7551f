//! The postmaster's children: their kinds, the per-kind slot pools and the list of live
//! children (PostgreSQL's pmchild.c).
//!
//! Every child except a dead-end backend holds a *child slot*: a number from 1 to
//! `MaxLivePostmasterChildren` (ipci's `max_live_postmaster_children`, the pools' total) that
//! indexes its flag in PMSignal's shared array. The numbers are split into one fixed pool per kind
//! at start-up, so a storm of connections can never take the slot the checkpointer needs. Dead-end
//! backends (connections refused for being too many, or arriving during start-up or shutdown) have
//! slot 0 and no limit: the postmaster keeps forking them so that every client hears why it was
//! refused.
//!
//! All of this is postmaster-local memory; children never see it.

pub(crate) use pgipc_proc::BackendType;

/// PostgreSQL's description of a process kind (`GetBackendTypeDesc`), used in log lines: the
/// same words as pg_stat_activity's `backend_type`, so one table serves both.
pub(crate) use pgipc_backend_status::backend_type_desc;

/// The command-line word for a kind in exec mode (`--forkchild=<word>`), and back.
pub(crate) fn backend_type_word(t: BackendType) -> &'static str {
    use BackendType::*;
    match t {
        Backend => "backend",
        DeadEndBackend => "dead-end",
        AutovacLauncher => "autovac-launcher",
        BgWorker => "bgworker",
        BgWriter => "bgwriter",
        Checkpointer => "checkpointer",
        IoWorker => "io-worker",
        Startup => "startup",
        WalWriter => "walwriter",
        _ => "unsupported",
    }
}

/// The kind named `word` (see [`backend_type_word`]).
pub(crate) fn backend_type_from_word(word: &str) -> Option<BackendType> {
    BackendType::ALL
        .into_iter()
        .find(|t| backend_type_word(*t) == word)
}

/// One live child, as the postmaster knows it (PostgreSQL's `PMChild`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PmChild {
    /// Its pid.
    pub(crate) pid: i32,
    /// Its child slot (1-based), or 0 for a dead-end backend.
    pub(crate) slot: u32,
    /// Its kind.
    pub(crate) kind: BackendType,
    /// For a background worker: its index in the postmaster's worker list.
    pub(crate) worker: Option<usize>,
}

/// The fixed pools of child slots, one per kind (PostgreSQL's `InitPostmasterChildSlots`).
#[derive(Debug, Clone)]
pub(crate) struct ChildPools {
    /// Free slot numbers per kind, indexed by `BackendType as usize`.
    free: Vec<Vec<u32>>,
    /// How many slots exist in all (checked against [`PoolSizes::total`] by the tests).
    #[cfg(test)]
    total: u32,
}

/// The sizes PostgreSQL 18 gives the pools.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSizes {
    /// `max_connections`.
    pub(crate) max_connections: u32,
    /// `max_wal_senders`.
    pub(crate) max_wal_senders: u32,
    /// `autovacuum_worker_slots`.
    pub(crate) autovacuum_worker_slots: u32,
    /// `max_worker_processes`.
    pub(crate) max_worker_processes: u32,
}

impl PoolSizes {
    /// Pool size of `kind`.
    pub(crate) fn pool_size(&self, kind: BackendType) -> u32 {
        use BackendType::*;
        match kind {
            // Walsenders start as regular backends and use this pool; twice the connection
            // limit so that exiting backends do not starve new ones while they clean up.
            Backend => 2 * (self.max_connections + self.max_wal_senders),
            AutovacWorker => self.autovacuum_worker_slots,
            BgWorker => self.max_worker_processes,
            // PostgreSQL's MAX_IO_WORKERS, defined where their PGPROCs are reserved.
            IoWorker => pgipc_proc::MAX_IO_WORKERS,
            AutovacLauncher | SlotsyncWorker | Archiver | BgWriter | Checkpointer | Startup
            | WalReceiver | WalSummarizer | WalWriter | Logger => 1,
            Invalid | DeadEndBackend | WalSender | StandaloneBackend => 0,
        }
    }

    /// The first slot number of `kind`'s pool (pools are laid out one after the other in
    /// [`BackendType::ALL`]'s order, as [`ChildPools::new`] does).
    pub(crate) fn first_slot(&self, kind: BackendType) -> u32 {
        1 + BackendType::ALL
            .iter()
            .take_while(|k| **k != kind)
            .map(|k| self.pool_size(*k))
            .sum::<u32>()
    }

    /// The total over every kind (PostgreSQL's `MaxLivePostmasterChildren`; the postmaster
    /// sizes PMSignal from ipci's count, which the tests compare with this).
    #[cfg(test)]
    pub(crate) fn total(&self) -> u32 {
        BackendType::ALL
            .iter()
            .map(|k| self.pool_size(*k))
            .sum::<u32>()
    }
}

impl ChildPools {
    /// Pools with the PostgreSQL 18 sizes.
    pub(crate) fn new(sizes: PoolSizes) -> Self {
        let mut next = 1u32;
        let mut free = vec![Vec::new(); BackendType::ALL.len()];
        for k in BackendType::ALL {
            let n = sizes.pool_size(k);
            // Popped from the end: keep the lowest numbers on top.
            free[k as usize] = (next..next + n).rev().collect();
            next += n;
        }
        ChildPools {
            free,
            #[cfg(test)]
            total: next - 1,
        }
    }

    /// How many slots exist in all (the size of PMSignal's child-flag array).
    #[cfg(test)]
    pub(crate) fn max_live_children(&self) -> u32 {
        self.total
    }

    /// Takes a slot for `kind`, or `None` when its pool is empty.
    pub(crate) fn assign(&mut self, kind: BackendType) -> Option<u32> {
        self.free.get_mut(kind as usize)?.pop()
    }

    /// Gives `slot` back to `kind`'s pool.
    pub(crate) fn release(&mut self, kind: BackendType, slot: u32) {
        if slot != 0 {
            if let Some(pool) = self.free.get_mut(kind as usize) {
                pool.push(slot);
            }
        }
    }
}

/// The live children (PostgreSQL's `ActiveChildList`).
///
/// Every operation the server loop runs per event is O(1) in the number of children: a pid
/// index finds a child (a reaped child, a worker's notify pid), per-kind counts answer "is the
/// checkpointer running" and "how many I/O workers", and removal swaps the last entry in. Only
/// whole-list walks (signalling every child at shutdown) visit every entry. With 10,000 held
/// sessions a linear search per event cost the postmaster tens of microseconds per connection.
#[derive(Debug, Default)]
pub(crate) struct ChildList {
    children: Vec<PmChild>,
    /// pid → index in `children`.
    index: std::collections::HashMap<i32, usize>,
    /// Live children per kind, indexed by `BackendType as usize`.
    counts: [usize; BackendType::ALL.len()],
}

impl ChildList {
    /// Adds a child.
    pub(crate) fn push(&mut self, c: PmChild) {
        self.index.insert(c.pid, self.children.len());
        if let Some(n) = self.counts.get_mut(c.kind as usize) {
            *n += 1;
        }
        self.children.push(c);
    }

    /// Removes and returns the child with `pid`.
    pub(crate) fn take(&mut self, pid: i32) -> Option<PmChild> {
        let i = self.index.remove(&pid)?;
        let c = self.children.swap_remove(i);
        if let Some(moved) = self.children.get(i) {
            self.index.insert(moved.pid, i);
        }
        if let Some(n) = self.counts.get_mut(c.kind as usize) {
            *n = n.saturating_sub(1);
        }
        Some(c)
    }

    /// The child with `pid`.
    pub(crate) fn find(&self, pid: i32) -> Option<&PmChild> {
        self.index.get(&pid).and_then(|i| self.children.get(*i))
    }

    /// Every live child.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &PmChild> {
        self.children.iter()
    }

    /// Live children of `kind`.
    pub(crate) fn count(&self, kind: BackendType) -> usize {
        self.counts.get(kind as usize).copied().unwrap_or(0)
    }

    /// The first live child of `kind` (none without a walk when there is none).
    pub(crate) fn first(&self, kind: BackendType) -> Option<&PmChild> {
        if self.count(kind) == 0 {
            return None;
        }
        self.children.iter().find(|c| c.kind == kind)
    }

    /// Whether no child is alive.
    pub(crate) fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_slots_are_where_the_pools_hand_out_their_lowest() {
        let mut pools = ChildPools::new(sizes());
        for kind in [
            BackendType::Backend,
            BackendType::IoWorker,
            BackendType::Checkpointer,
        ] {
            assert_eq!(
                pools.assign(kind),
                Some(sizes().first_slot(kind)),
                "{kind:?}"
            );
        }
    }

    fn sizes() -> PoolSizes {
        PoolSizes {
            max_connections: 3,
            max_wal_senders: 1,
            autovacuum_worker_slots: 2,
            max_worker_processes: 4,
        }
    }

    #[test]
    fn pools_partition_the_slot_numbers() {
        let s = sizes();
        // 2*(3+1) + 2 + 4 + 32 + 10 singletons.
        assert_eq!(s.total(), 8 + 2 + 4 + 32 + 10);
        let mut p = ChildPools::new(s);
        let mut seen = std::collections::BTreeSet::new();
        for k in BackendType::ALL {
            while let Some(slot) = p.assign(k) {
                assert!(slot >= 1 && slot <= p.max_live_children());
                assert!(seen.insert(slot), "slot {slot} handed out twice");
            }
        }
        assert_eq!(seen.len() as u32, p.max_live_children());
    }

    #[test]
    fn exhausted_pool_returns_none_and_refills() {
        let mut p = ChildPools::new(sizes());
        let a = p.assign(BackendType::Checkpointer).expect("one");
        assert_eq!(p.assign(BackendType::Checkpointer), None);
        p.release(BackendType::Checkpointer, a);
        assert_eq!(p.assign(BackendType::Checkpointer), Some(a));
        assert_eq!(p.assign(BackendType::DeadEndBackend), None);
    }

    #[test]
    fn child_list_finds_counts_and_removes_by_pid() {
        let child = |pid, kind| PmChild {
            pid,
            slot: pid as u32,
            kind,
            worker: None,
        };
        let mut l = ChildList::default();
        for pid in 1..=5 {
            l.push(child(pid, BackendType::Backend));
        }
        l.push(child(6, BackendType::Checkpointer));
        assert_eq!(l.count(BackendType::Backend), 5);
        assert_eq!(l.count(BackendType::Checkpointer), 1);
        assert_eq!(l.first(BackendType::Checkpointer).map(|c| c.pid), Some(6));
        assert!(l.first(BackendType::BgWriter).is_none());
        // Removing from the middle swaps the checkpointer in; the index follows it.
        assert_eq!(l.take(2).map(|c| c.pid), Some(2));
        assert!(l.take(2).is_none());
        assert_eq!(l.find(6).map(|c| c.kind), Some(BackendType::Checkpointer));
        assert_eq!(l.count(BackendType::Backend), 4);
        for pid in [1, 3, 4, 5, 6] {
            assert_eq!(l.find(pid).map(|c| c.pid), Some(pid), "pid {pid}");
            assert!(l.take(pid).is_some());
        }
        assert!(l.is_empty());
        assert_eq!(l.count(BackendType::Checkpointer), 0);
    }

    #[test]
    fn words_round_trip() {
        for k in BackendType::ALL {
            let w = backend_type_word(k);
            if w != "unsupported" {
                assert_eq!(backend_type_from_word(w), Some(k));
            }
        }
    }
}
