//! `pg_shmem_allocations` as data: what `postmaster --describe-shmem` prints, as a table for
//! people and as JSON (serde) for layout tests and tools that diff two layouts.

use pgipc_shmem::{AllocationName, Shmem, ShmemError};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One row of `pg_shmem_allocations`, with PostgreSQL's column names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmemAllocation {
    /// The Shmem Index name; `"<anonymous>"` for what was allocated without a name; `None`
    /// (JSON `null`) for the free space at the end, as PostgreSQL's NULL name.
    pub name: Option<String>,
    /// Offset from the segment's start; `None` for the anonymous row (PostgreSQL's NULL).
    pub off: Option<u64>,
    /// Bytes requested.
    pub size: u64,
    /// Bytes consumed (the request rounded up to a cache line).
    pub allocated_size: u64,
}

/// The main segment's layout: its size and every allocation, in the order PostgreSQL's view
/// lists them (by offset, then the anonymous and free rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmemDescription {
    /// Length of the whole segment in bytes.
    pub total_size: u64,
    /// The `pg_shmem_allocations` rows.
    pub allocations: Vec<ShmemAllocation>,
}

impl ShmemDescription {
    /// Reads the Shmem Index of `shmem` (under its lock, as the view does).
    pub fn of(shmem: &Shmem) -> Result<Self, ShmemError> {
        let allocations = shmem
            .allocations()?
            .into_iter()
            .map(|r| ShmemAllocation {
                name: match r.name {
                    AllocationName::Unused => None,
                    n => Some(n.to_string()),
                },
                off: r.off,
                size: r.size,
                allocated_size: r.allocated_size,
            })
            .collect();
        Ok(ShmemDescription {
            total_size: shmem.total_size() as u64,
            allocations,
        })
    }

    /// The table `--describe-shmem` prints: a header line, one line per row (`NULL` for a
    /// missing offset, `<unused>` for the free row), then the total size.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "{:<40} {:>12} {:>12} {:>14}\n",
            "name", "off", "size", "allocated_size"
        );
        for r in &self.allocations {
            let off = r.off.map_or_else(|| "NULL".into(), |o| o.to_string());
            let _ = writeln!(
                out,
                "{:<40} {:>12} {:>12} {:>14}",
                r.name.as_deref().unwrap_or("<unused>"),
                off,
                r.size,
                r.allocated_size
            );
        }
        let _ = writeln!(out, "total size {} bytes", self.total_size);
        out
    }

    /// The JSON `--describe-shmem=json` prints (pretty-printed, one field per line, so that two
    /// layouts diff line by line).
    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}
