//! The shared memory one server owns, found exactly rather than guessed from what appeared in
//! /dev/shm while it started (other tests and servers on the machine create and remove
//! `PostgreSQL.*` segments at the same moments).
//!
//! A running server names its System V interlock on line 7 of postmaster.pid (key and id); the
//! interlock's header records the postmaster's pid and the DSM control segment's handle; the
//! control segment (`/dev/shm/PostgreSQL.<handle>`) lists in its slots every dynamic segment
//! the server has alive. [`Owned::of_running`] reads all three; [`Owned::left`] and
//! [`Owned::missing`] then say which of those objects are still there.
//!
//! [`server`] starts and stops one real postmaster for a test ([`server::TestServer`]).
//!
//! Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub(crate) mod server;

use pgipc_dsm::{control_items_from_bytes, is_main_region_dsm_handle, DSM_HANDLE_INVALID};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A server's System V interlock segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Sysv {
    key: i32,
    shmid: i32,
    /// The postmaster that created it (the interlock header's `creator_pid`).
    creator: i32,
}

/// Shared memory objects of one server (of one data directory), gathered while it ran.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owned {
    sysv: BTreeSet<Sysv>,
    /// DSM control segment handles (recorded in the interlocks).
    controls: BTreeSet<u32>,
    /// Every POSIX DSM segment: the control segments and what their slots listed.
    dsm: BTreeSet<u32>,
}

impl Owned {
    /// What the ready server `pid` on `data_dir` owns right now: its interlock (postmaster.pid
    /// line 7, checked against the creator pid in the interlock's header), the DSM control
    /// segment whose handle the interlock records, and the segments listed in its used slots.
    /// An error if any of them is missing, or not visible to [`Owned::left`].
    pub(crate) fn of_running(data_dir: &Path, pid: u32) -> Result<Owned, String> {
        let text = std::fs::read_to_string(data_dir.join("postmaster.pid"))
            .map_err(|e| format!("postmaster.pid: {e}"))?;
        let lines: Vec<&str> = text.lines().collect();
        if lines.first() != Some(&pid.to_string().as_str()) {
            return Err(format!("postmaster.pid is not pid {pid}'s: {lines:?}"));
        }
        let mut f = lines
            .get(6)
            .map(|l| l.split_whitespace())
            .into_iter()
            .flatten();
        let (Some(key), Some(shmid)) = (
            f.next().and_then(|k| k.parse::<u32>().ok()),
            f.next().and_then(|i| i.parse::<i32>().ok()),
        ) else {
            return Err(format!("no interlock on postmaster.pid line 7: {lines:?}"));
        };
        // Attached only for the two reads: an extra attachment would keep the segment alive.
        let il = pgipc_shmem::Interlock::attach_existing(shmid)
            .map_err(|e| format!("interlock {shmid}: {e}"))?;
        let creator = il.header().creator_pid();
        let control = il.header().dsm_control();
        drop(il);
        if creator != pid as i32 {
            return Err(format!(
                "interlock {shmid} was created by pid {creator}, not {pid}"
            ));
        }
        if control == DSM_HANDLE_INVALID {
            return Err(format!("interlock {shmid} records no DSM control segment"));
        }
        let mut own = Owned::default();
        own.sysv.insert(Sysv {
            key: key as i32,
            shmid,
            creator,
        });
        own.controls.insert(control);
        own.dsm.insert(control);
        own.dsm.extend(listed(control)?);
        // What `left` will look for after the stop must be visible now, or `left` proves nothing.
        let unseen = own.missing();
        if !unseen.is_empty() {
            return Err(format!("recorded but not visible: {unseen:?}"));
        }
        Ok(own)
    }

    /// Adds what `other` found (the same server later, or after a restart).
    pub(crate) fn add(&mut self, other: Owned) {
        self.sysv.extend(other.sysv);
        self.controls.extend(other.controls);
        self.dsm.extend(other.dsm);
    }

    /// The recorded objects still present: `/dev/shm` files and System V segments (the
    /// recorded id, or the recorded key still held by a segment the same postmaster created).
    pub(crate) fn left(&self) -> Vec<String> {
        self.describe(true)
    }

    /// The recorded objects no longer present.
    pub(crate) fn missing(&self) -> Vec<String> {
        self.describe(false)
    }

    fn describe(&self, present: bool) -> Vec<String> {
        let rows = sysv_rows();
        let mut out: Vec<String> = self
            .dsm
            .iter()
            .filter(|&&h| dsm_file(h).exists() == present)
            .map(|&h| {
                let what = if self.controls.contains(&h) {
                    "DSM control segment"
                } else {
                    "DSM segment"
                };
                format!("{} ({what})", dsm_file(h).display())
            })
            .collect();
        out.extend(
            self.sysv
                .iter()
                .filter(|s| {
                    rows.iter()
                        .any(|r| r.shmid == s.shmid || (r.key == s.key && r.creator == s.creator))
                        == present
                })
                .map(|s| {
                    format!(
                        "SysV segment key {} id {} (postmaster {})",
                        s.key as u32, s.shmid, s.creator
                    )
                }),
        );
        out
    }
}

/// `/dev/shm` file of POSIX DSM segment `h`.
fn dsm_file(h: u32) -> PathBuf {
    PathBuf::from(format!("/dev/shm/PostgreSQL.{h}"))
}

/// Handles of the POSIX segments control segment `control` lists in its used slots (even
/// handles with a non-zero reference count; odd ones live in the main region).
fn listed(control: u32) -> Result<Vec<u32>, String> {
    let path = dsm_file(control);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let items = control_items_from_bytes(&bytes)
        .ok_or_else(|| format!("{}: not a control segment", path.display()))?;
    let out = items
        .into_iter()
        .filter(|&(handle, refcnt)| {
            refcnt != 0 && handle != DSM_HANDLE_INVALID && !is_main_region_dsm_handle(handle)
        })
        .map(|(handle, _)| handle)
        .collect();
    Ok(out)
}

/// One line of /proc/sysvipc/shm.
struct Row {
    key: i32,
    shmid: i32,
    creator: i32,
}

/// Every System V segment on the machine (key, id and creator pid from /proc/sysvipc/shm).
fn sysv_rows() -> Vec<Row> {
    let text = std::fs::read_to_string("/proc/sysvipc/shm").expect("/proc/sysvipc/shm");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(Row {
                key: f.first()?.parse::<i64>().ok()? as i32,
                shmid: f.get(1)?.parse().ok()?,
                creator: f.get(4)?.parse().ok()?,
            })
        })
        .collect()
}
