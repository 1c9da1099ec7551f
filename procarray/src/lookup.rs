//! Finding procs by pid or xid, and counting backends (`BackendPidGetProc`, `BackendXidGetPid`,
//! `CountDBBackends`, ...). All scans hold ProcArrayLock shared and see only ProcArray members.

use crate::array::ProcArray;
use crate::transam::transaction_id_is_valid;
use pgipc_lwlock::LWLockMode;
use pgipc_proc::{Oid, PgProc, ProcNumber, TransactionId};
use std::sync::atomic::Ordering;

impl ProcArray {
    /// Runs `f` on each member with its dense position, under ProcArrayLock shared, until it
    /// returns `Some`.
    fn scan<T>(&self, mut f: impl FnMut(usize, ProcNumber, &PgProc) -> Option<T>) -> Option<T> {
        let me = self.procs.shmem().lwlock_proc();
        let _g = self.proc_array_lock().acquire(&me, LWLockMode::Shared);
        let n = self.hdr.num_procs.load(Ordering::Relaxed) as usize;
        let all = self.procs.all_procs();
        (0..n).find_map(|i| {
            let pn = self.pgprocnos[i].load(Ordering::Relaxed);
            f(i, pn, &all[pn as usize])
        })
    }

    /// The member whose pid is `pid` (PostgreSQL's `BackendPidGetProc`); pid 0 never matches,
    /// and auxiliary processes are not members (see `ProcGlobal::auxiliary_pid_get_proc`).
    #[doc(alias = "BackendPidGetProc")]
    pub fn backend_pid_get_proc(&self, pid: i32) -> Option<ProcNumber> {
        if pid == 0 {
            return None;
        }
        self.scan(|_, pn, p| (p.pid.load(Ordering::Relaxed) == pid).then_some(pn))
    }

    /// Whether `pid` is a member's pid (`IsBackendPid`).
    pub fn is_backend_pid(&self, pid: i32) -> bool {
        self.backend_pid_get_proc(pid).is_some()
    }

    /// The pid of the member running top-level transaction `xid` (`BackendXidGetPid`).
    pub fn backend_xid_get_pid(&self, xid: TransactionId) -> Option<i32> {
        if !transaction_id_is_valid(xid) {
            return None;
        }
        let xids = self.procs.xids();
        self.scan(|i, _, p| {
            (xids[i].load(Ordering::Relaxed) == xid).then(|| p.pid.load(Ordering::Relaxed))
        })
    }

    fn count(&self, keep: impl Fn(&PgProc) -> bool) -> usize {
        let mut n = 0;
        self.scan::<()>(|_, _, p| {
            if p.pid.load(Ordering::Relaxed) != 0 && keep(p) {
                n += 1;
            }
            None
        });
        n
    }

    /// Members connected to `database_id` (0 = any), prepared transactions excluded
    /// (`CountDBBackends`).
    #[doc(alias = "CountDBBackends")]
    pub fn count_db_backends(&self, database_id: Oid) -> usize {
        self.count(|p| database_id == 0 || p.database_id.load(Ordering::Relaxed) == database_id)
    }

    /// Like [`count_db_backends`](Self::count_db_backends) but only client backends
    /// (`CountDBConnections`).
    pub fn count_db_connections(&self, database_id: Oid) -> usize {
        self.count(|p| {
            p.is_regular_backend.load(Ordering::Relaxed)
                && (database_id == 0 || p.database_id.load(Ordering::Relaxed) == database_id)
        })
    }

    /// Client backends of role `role_id` (`CountUserBackends`).
    pub fn count_user_backends(&self, role_id: Oid) -> usize {
        self.count(|p| {
            p.is_regular_backend.load(Ordering::Relaxed)
                && p.role_id.load(Ordering::Relaxed) == role_id
        })
    }
}
