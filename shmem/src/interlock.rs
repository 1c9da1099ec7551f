//! The System V interlock that stops two postmasters from sharing a data directory
//! (PostgreSQL's `PGSharedMemoryCreate` key search and `PGSharedMemoryAttach`, sysv_shmem.c).
//!
//! The main segment is an anonymous mapping (or a memfd), which the kernel cannot count users
//! of. So, as PostgreSQL does, the postmaster also creates a tiny System V segment keyed from the
//! data directory's inode. Forked children inherit the attachment and exec'd children re-attach,
//! so the kernel's `shm_nattch` counts every live process of the server. A new postmaster that
//! finds the key in use with attachments refuses to start; one that finds it with none removes
//! the stale segment (after telling its caller the previous DSM control handle, so the leftover
//! dynamic segments can be cleaned up) and carries on.

use crate::segment::PG_SHMEM_MAGIC;
use crate::shared::ShmemSafe;
use crate::sys::{self, SysvAttach};
use crate::ShmemError;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Contents of the interlock segment (the part of PostgreSQL's `PGShmemHeader` a successor reads).
///
/// # Synchronisation
/// Written by the creating postmaster before it publishes the segment's id (in
/// `postmaster.pid`), except `dsm_control`, which its DSM start-up sets once before children
/// exist. The fields are private to this crate; readers (a successor postmaster, tests) use the
/// methods.
#[repr(C)]
#[derive(Debug, Default)]
pub struct InterlockHeader {
    /// [`PG_SHMEM_MAGIC`].
    pub(crate) magic: AtomicI32,
    /// Pid of the postmaster that created it.
    pub(crate) creator_pid: AtomicI32,
    /// Size of the main segment.
    pub(crate) totalsize: AtomicU64,
    /// DSM control segment handle, for crash clean-up by the next postmaster.
    pub(crate) dsm_control: AtomicU32,
    _pad: u32,
    /// `st_dev` of the data directory.
    pub(crate) device: AtomicU64,
    /// `st_ino` of the data directory.
    pub(crate) inode: AtomicU64,
}
// SAFETY: repr(C), atomics only; zero is valid.
unsafe impl ShmemSafe for InterlockHeader {}

impl InterlockHeader {
    /// [`PG_SHMEM_MAGIC`] if the segment is ours. Written once by the creator.
    pub fn magic(&self) -> i32 {
        self.magic.load(Ordering::Acquire)
    }

    /// Pid of the postmaster that created it. Written once by the creator.
    pub fn creator_pid(&self) -> i32 {
        self.creator_pid.load(Ordering::Acquire)
    }

    /// Size of the main segment. Written once by the creator.
    pub fn total_size(&self) -> u64 {
        self.totalsize.load(Ordering::Acquire)
    }

    /// The DSM control segment's handle (0 = none), for the next postmaster's crash clean-up.
    /// Set once by the creator's DSM start-up.
    pub fn dsm_control(&self) -> u32 {
        self.dsm_control.load(Ordering::Acquire)
    }

    /// `(st_dev, st_ino)` of the data directory. Written once by the creator.
    pub fn data_dir_id(&self) -> (u64, u64) {
        (
            self.device.load(Ordering::Acquire),
            self.inode.load(Ordering::Acquire),
        )
    }
}

const HEADER_SIZE: usize = std::mem::size_of::<InterlockHeader>();

/// What an existing segment at our key turned out to be (PostgreSQL's `IpcMemoryState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentState {
    /// It vanished while we looked.
    Enoent,
    /// Not ours (another program's, or another data directory's).
    Foreign,
    /// Ours, and some process still has it attached.
    Attached,
    /// Ours, and nobody has it attached: a dead server's leftover.
    Unattached,
    /// We could not tell; treated as in use.
    AnalysisFailure,
}

/// This postmaster's interlock segment; also the handle an exec'd child keeps attached.
#[derive(Debug)]
pub struct Interlock {
    key: i32,
    shmid: i32,
    attach: SysvAttach,
}

/// What [`Interlock::create`] found on its way.
#[derive(Debug, Default)]
pub struct InterlockReport {
    /// DSM control handles of dead predecessors whose segments were removed: their dynamic
    /// segments should be cleaned up (PostgreSQL's `dsm_cleanup_using_control_segment`).
    pub stale_dsm_controls: Vec<u32>,
    /// Human-readable notes (`shared memory block ... deleted during startup`).
    pub notes: Vec<String>,
}

fn dir_id(data_dir: &Path) -> Result<(u64, u64), ShmemError> {
    let md = std::fs::metadata(data_dir).map_err(|e| ShmemError::StatDataDir {
        dir: data_dir.to_path_buf(),
        source: e,
    })?;
    Ok((md.dev(), md.ino()))
}

impl Interlock {
    /// Creates the interlock for `data_dir`, refusing if a live server uses the directory.
    pub fn create(
        data_dir: &Path,
        totalsize: u64,
    ) -> Result<(Interlock, InterlockReport), ShmemError> {
        let (dev, ino) = dir_id(data_dir)?;
        let mut report = InterlockReport::default();
        // PostgreSQL starts from the inode number; key_t is 32 bits, and 0 is IPC_PRIVATE.
        let mut key = (ino as u32 as i32).max(1);
        for _ in 0..10_000 {
            match sys::shmget(key, HEADER_SIZE, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) {
                Ok(shmid) => {
                    let attach = match sys::shmat(shmid) {
                        Ok(a) => a,
                        Err(e) => {
                            let _ = sys::shmrmid(shmid);
                            return Err(ShmemError::Interlock {
                                call: "shmat",
                                key,
                                source: e,
                            });
                        }
                    };
                    let me = Interlock { key, shmid, attach };
                    let h = me.header();
                    h.creator_pid
                        .store(std::process::id() as i32, Ordering::Relaxed);
                    h.totalsize.store(totalsize, Ordering::Relaxed);
                    h.dsm_control.store(0, Ordering::Relaxed);
                    h.device.store(dev, Ordering::Relaxed);
                    h.inode.store(ino, Ordering::Relaxed);
                    h.magic.store(PG_SHMEM_MAGIC, Ordering::Release);
                    return Ok((me, report));
                }
                Err(e) if is_collision(&e) => {}
                Err(e) => {
                    return Err(ShmemError::Interlock {
                        call: "shmget",
                        key,
                        source: e,
                    })
                }
            }
            // Somebody has this key: find out who.
            let shmid = match sys::shmget(key, 0, 0) {
                Ok(id) => id,
                Err(_) => {
                    key = next_key(key);
                    continue;
                }
            };
            let (state, dsm) = classify(shmid, dev, ino);
            match state {
                SegmentState::Attached | SegmentState::AnalysisFailure => {
                    return Err(ShmemError::InUse {
                        key,
                        shmid,
                        data_dir: data_dir.to_path_buf(),
                    })
                }
                SegmentState::Enoent => {
                    report.notes.push(format!(
                        "shared memory block (key {key}, ID {shmid}) deleted during startup"
                    ));
                }
                SegmentState::Foreign => key = next_key(key),
                SegmentState::Unattached => {
                    if dsm != 0 {
                        report.stale_dsm_controls.push(dsm);
                    }
                    if sys::shmrmid(shmid).is_err() {
                        key = next_key(key);
                    }
                }
            }
        }
        Err(ShmemError::Interlock {
            call: "shmget",
            key,
            source: io::Error::other("no free key found"),
        })
    }

    /// Attaches an existing interlock (an exec'd child's re-attach), so the kernel counts this
    /// process as a user of the server's shared memory.
    pub fn attach_existing(shmid: i32) -> Result<Interlock, ShmemError> {
        let key = sys::shmstat(shmid)
            .map_err(|e| ShmemError::Interlock {
                call: "shmctl(IPC_STAT)",
                key: 0,
                source: e,
            })?
            .key;
        let attach = sys::shmat(shmid).map_err(|e| ShmemError::Interlock {
            call: "shmat",
            key,
            source: e,
        })?;
        let me = Interlock { key, shmid, attach };
        if me.header().magic.load(Ordering::Acquire) != PG_SHMEM_MAGIC {
            return Err(ShmemError::Attach {
                reason: format!("interlock segment {shmid} is not ours"),
            });
        }
        Ok(me)
    }

    /// The segment's key (PostgreSQL's first number in postmaster.pid line 7).
    pub fn key(&self) -> i32 {
        self.key
    }

    /// The segment's id (the second number in postmaster.pid line 7).
    pub fn shmid(&self) -> i32 {
        self.shmid
    }

    /// The postmaster.pid line 7 text: key and id, each `%9lu`.
    pub fn lock_file_line(&self) -> String {
        format!("{:9} {:9}", self.key as u32, self.shmid as u32)
    }

    /// The shared header.
    pub fn header(&self) -> &InterlockHeader {
        // SAFETY: the attachment is at least HEADER_SIZE bytes, page aligned, atomics only, and
        // lives as long as `self`.
        unsafe { &*self.attach.addr.as_ptr().cast::<InterlockHeader>() }
    }

    /// Records the DSM control handle, for crash clean-up by a successor.
    pub fn set_dsm_control(&self, handle: u32) {
        self.header().dsm_control.store(handle, Ordering::Release);
    }

    /// Marks the segment for removal and detaches (the postmaster's shutdown; the kernel frees it
    /// once the last attached child is gone).
    pub fn remove(self) -> Result<(), ShmemError> {
        let (key, r) = (self.key, sys::shmrmid(self.shmid));
        drop(self);
        r.map_err(|e| ShmemError::Interlock {
            call: "shmctl(IPC_RMID)",
            key,
            source: e,
        })
    }

    /// Whether the segment recorded in a stale postmaster.pid is still used by a live server
    /// for `data_dir` (PostgreSQL's `PGSharedMemoryIsInUse`).
    pub fn is_in_use(data_dir: &Path, shmid: i32) -> bool {
        match dir_id(data_dir) {
            Ok((dev, ino)) => {
                matches!(
                    classify(shmid, dev, ino).0,
                    SegmentState::Attached | SegmentState::AnalysisFailure
                )
            }
            Err(_) => true,
        }
    }

    /// The data directory identity used for keys and headers.
    pub fn data_dir_id(data_dir: &Path) -> Result<(u64, u64), ShmemError> {
        dir_id(data_dir)
    }
}

fn is_collision(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EEXIST) | Some(libc::EACCES) | Some(libc::EIDRM)
    )
}

fn next_key(key: i32) -> i32 {
    key.wrapping_add(1).max(1)
}

/// Classifies segment `shmid` for data directory `(dev, ino)`; also returns its DSM handle.
fn classify(shmid: i32, dev: u64, ino: u64) -> (SegmentState, u32) {
    let nattch = match sys::shmstat(shmid) {
        Ok(st) => st.nattch,
        Err(e) => {
            return match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::EIDRM) => (SegmentState::Enoent, 0),
                Some(libc::EACCES) => (SegmentState::Foreign, 0),
                _ => (SegmentState::AnalysisFailure, 0),
            }
        }
    };
    let attach = match sys::shmat(shmid) {
        Ok(a) => a,
        Err(e) => {
            return match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::EIDRM) => (SegmentState::Enoent, 0),
                Some(libc::EACCES) => (SegmentState::Foreign, 0),
                _ => (SegmentState::AnalysisFailure, 0),
            }
        }
    };
    // SAFETY: the attachment is at least one page; InterlockHeader is atomics only and any bytes
    // are a valid value; the header is read while `attach` is alive.
    let h = unsafe { &*attach.addr.as_ptr().cast::<InterlockHeader>() };
    if h.magic.load(Ordering::Acquire) != PG_SHMEM_MAGIC
        || h.device.load(Ordering::Relaxed) != dev
        || h.inode.load(Ordering::Relaxed) != ino
    {
        return (SegmentState::Foreign, 0);
    }
    let dsm = h.dsm_control.load(Ordering::Acquire);
    drop(attach);
    // nattch was read before our own attach.
    if nattch == 0 {
        (SegmentState::Unattached, dsm)
    } else {
        (SegmentState::Attached, dsm)
    }
}
