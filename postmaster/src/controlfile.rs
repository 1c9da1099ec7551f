//! `global/pg_control`: the cluster's state between runs (PostgreSQL's `ControlFileData`, cut
//! down to what a server without storage has: the state word, the time of the last checkpoint
//! and the time of the last change).
//!
//! The startup process reads it to tell a clean shutdown from a crash, and marks the cluster
//! "in production"; the checkpointer writes it on every checkpoint and, last of all, as "shut
//! down" in the shutdown checkpoint. The file is written to a temporary name, flushed and
//! renamed, so a crash leaves the old or the new contents, never a mix; a CRC-32C over the
//! contents catches anything else.
//!
//! Layout (little-endian, 32 bytes): magic `u32`, format version `u32`, state `u32`, pad `u32`,
//! checkpoint time `i64` (Unix seconds), change time `i64`... followed by the CRC `u32` over
//! everything before it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file, relative to the data directory.
pub(crate) const CONTROL_FILE: &str = "global/pg_control";

const MAGIC: u32 = 0x7067_6970; // "pgip"
const VERSION: u32 = 1;
const BODY: usize = 32;

/// PostgreSQL's `DBState`, with its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum DbState {
    /// `DB_STARTUP`.
    Startup = 0,
    /// `DB_SHUTDOWNED`: shut down cleanly.
    Shutdowned = 1,
    /// `DB_SHUTDOWNED_IN_RECOVERY`.
    ShutdownedInRecovery = 2,
    /// `DB_SHUTDOWNING`: the shutdown checkpoint was under way.
    Shutdowning = 3,
    /// `DB_IN_CRASH_RECOVERY`.
    InCrashRecovery = 4,
    /// `DB_IN_ARCHIVE_RECOVERY`.
    InArchiveRecovery = 5,
    /// `DB_IN_PRODUCTION`: running (a crash leaves this behind).
    InProduction = 6,
}

impl DbState {
    fn from_u32(v: u32) -> Option<DbState> {
        use DbState::*;
        [
            Startup,
            Shutdowned,
            ShutdownedInRecovery,
            Shutdowning,
            InCrashRecovery,
            InArchiveRecovery,
            InProduction,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }
}

/// The contents of the control file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ControlFile {
    /// The cluster state.
    pub(crate) state: DbState,
    /// When the last checkpoint finished (Unix seconds).
    pub(crate) checkpoint_time: i64,
    /// When the file was last written (Unix seconds).
    pub(crate) time: i64,
}

/// Errors reading or writing the control file, with PostgreSQL's texts.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlFileError {
    /// Reading or writing failed.
    #[error("could not {what} file \"{}\": {source}", path.display())]
    Io {
        /// "open", "read", "write", "fsync" or "rename".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// Wrong size, magic or CRC.
    #[error("incorrect checksum in control file")]
    Corrupt,
}

/// Now, in Unix seconds.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// CRC-32C (Castagnoli), bitwise: the file is tiny and written rarely.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

impl ControlFile {
    fn encode(&self) -> [u8; BODY + 4] {
        let mut b = [0u8; BODY + 4];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&(self.state as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.checkpoint_time.to_le_bytes());
        b[24..32].copy_from_slice(&self.time.to_le_bytes());
        let crc = crc32c(&b[..BODY]);
        b[BODY..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<ControlFile, ControlFileError> {
        if b.len() != BODY + 4 {
            return Err(ControlFileError::Corrupt);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let i64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            i64::from_le_bytes(a)
        };
        if u32_at(0) != MAGIC || u32_at(4) != VERSION || u32_at(BODY) != crc32c(&b[..BODY]) {
            return Err(ControlFileError::Corrupt);
        }
        Ok(ControlFile {
            state: DbState::from_u32(u32_at(8)).ok_or(ControlFileError::Corrupt)?,
            checkpoint_time: i64_at(16),
            time: i64_at(24),
        })
    }

    /// Reads the file of `data_dir`; `Ok(None)` when it does not exist yet.
    pub(crate) fn read(data_dir: &Path) -> Result<Option<ControlFile>, ControlFileError> {
        let path = data_dir.join(CONTROL_FILE);
        match fs::read(&path) {
            Ok(b) => Self::decode(&b).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ControlFileError::Io {
                what: "read",
                path,
                source,
            }),
        }
    }

    /// Writes it durably (temporary file, fsync, rename, fsync of the directory), stamping
    /// `time`.
    pub(crate) fn write(&mut self, data_dir: &Path) -> Result<(), ControlFileError> {
        self.time = now_secs();
        let path = data_dir.join(CONTROL_FILE);
        let dir = path.parent().unwrap_or(data_dir).to_path_buf();
        let io_err = |what: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| ControlFileError::Io {
                what,
                path: p,
                source,
            }
        };
        fs::create_dir_all(&dir).map_err(io_err("open", &dir))?;
        let tmp = dir.join("pg_control.tmp");
        let mut f = fs::File::create(&tmp).map_err(io_err("open", &tmp))?;
        f.write_all(&self.encode()).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The postmaster's `checkControlFile`: creates a fresh "shut down" file on the first
    /// start of a new data directory, or checks that the existing one is readable.
    pub(crate) fn check_or_create(data_dir: &Path) -> Result<ControlFile, ControlFileError> {
        match Self::read(data_dir)? {
            Some(c) => Ok(c),
            None => {
                let now = now_secs();
                let mut c = ControlFile {
                    state: DbState::Shutdowned,
                    checkpoint_time: now,
                    time: now,
                };
                c.write(data_dir)?;
                Ok(c)
            }
        }
    }
}

/// A Unix time as PostgreSQL prints it in these messages (`%Y-%m-%d %H:%M:%S %Z`).
pub(crate) fn format_time(secs: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let s = crate::elog::timestamp(t);
    // "2026-11-22 10:00:00.123 UTC" -> drop the milliseconds.
    match (s.find('.'), s.rfind(' ')) {
        (Some(dot), Some(sp)) if dot < sp => format!("{}{}", &s[..dot], &s[sp..]),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("pgipc-ctl-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let c = ControlFile::check_or_create(&dir).expect("create");
        assert_eq!(c.state, DbState::Shutdowned);
        let mut c2 = c;
        c2.state = DbState::InProduction;
        c2.write(&dir).expect("write");
        assert_eq!(
            ControlFile::read(&dir).expect("read").map(|c| c.state),
            Some(DbState::InProduction)
        );
        let p = dir.join(CONTROL_FILE);
        let mut b = fs::read(&p).expect("bytes");
        b[8] ^= 1;
        fs::write(&p, &b).expect("corrupt");
        assert!(matches!(
            ControlFile::read(&dir),
            Err(ControlFileError::Corrupt)
        ));
        fs::write(&p, b"short").expect("short");
        assert!(ControlFile::read(&dir).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn crc32c_known_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn time_format_has_no_milliseconds() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
    }
}
