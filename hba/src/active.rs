//! The rules in force: PostgreSQL 18's postmaster loads pg_hba.conf and pg_ident.conf at start
//! and on SIGHUP, keeps the old rules when a file has an error, and its children use what it
//! accepted. Here the postmaster ([`activate`]) copies each file it accepted to
//! `global/pgipc_hba.active` / `global/pgipc_ident.active` (temporary file, fsync, rename) and
//! parses them once into [`ActiveRules`]; a forked backend inherits those and checks them with
//! one `stat` per file ([`ActiveRules::is_current`]), parsing the copies again ([`load_active`])
//! only when they changed or when it was exec'd. A fork and an exec'd child see the same rules,
//! and a bad edit never reaches a backend.

use crate::{
    load_hba, load_ident, parse_hba, parse_ident, HbaError, HbaFile, IdentFile, ParseOptions,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The accepted copy of pg_hba.conf, relative to the data directory.
pub const ACTIVE_HBA: &str = "global/pgipc_hba.active";
/// The accepted copy of pg_ident.conf, relative to the data directory.
pub const ACTIVE_IDENT: &str = "global/pgipc_ident.active";

/// Where the two files are: the `hba_file` / `ident_file` settings, or their defaults in the
/// data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaPaths {
    /// pg_hba.conf.
    pub hba: PathBuf,
    /// pg_ident.conf.
    pub ident: PathBuf,
}

impl HbaPaths {
    /// From the settings' values (empty: the default in `data_dir`).
    pub fn new(data_dir: &Path, hba_file: &str, ident_file: &str) -> HbaPaths {
        let pick = |v: &str, default: &str| {
            if v.is_empty() {
                data_dir.join(default)
            } else {
                PathBuf::from(v)
            }
        };
        HbaPaths {
            hba: pick(hba_file, "pg_hba.conf"),
            ident: pick(ident_file, "pg_ident.conf"),
        }
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), HbaError> {
    let err = |source| HbaError::Open {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

/// Parses both files and, when both are free of errors, makes them the rules in force.
/// On error nothing changes (the caller logs every line error, then PostgreSQL's "could not
/// load pg_hba.conf" at start or "pg_hba.conf was not reloaded" on SIGHUP).
pub fn activate(
    data_dir: &Path,
    paths: &HbaPaths,
    opts: ParseOptions,
) -> Result<HbaFile, HbaError> {
    let hba = load_hba(&paths.hba, opts)?;
    load_ident(&paths.ident)?;
    let read = |p: &Path| {
        std::fs::read_to_string(p).or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(String::new())
            } else {
                Err(HbaError::Open {
                    path: p.to_path_buf(),
                    source: e,
                })
            }
        })
    };
    let global = data_dir.join("global");
    std::fs::create_dir_all(&global).map_err(|source| HbaError::Open {
        path: global.clone(),
        source,
    })?;
    write_atomic(&data_dir.join(ACTIVE_IDENT), &read(&paths.ident)?)?;
    write_atomic(&data_dir.join(ACTIVE_HBA), &read(&paths.hba)?)?;
    Ok(hba)
}

/// The rules in force, for a backend: the accepted copies parsed (messages name the original
/// files). When no copy exists (a server that never activated one), the files themselves.
pub fn load_active(
    data_dir: &Path,
    paths: &HbaPaths,
    opts: ParseOptions,
) -> Result<(HbaFile, IdentFile), HbaError> {
    let active = data_dir.join(ACTIVE_HBA);
    let text = match std::fs::read_to_string(&active) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((load_hba(&paths.hba, opts)?, load_ident(&paths.ident)?));
        }
        Err(source) => {
            return Err(HbaError::Open {
                path: active,
                source,
            })
        }
    };
    let hba = parse_hba(&text, &paths.hba, opts);
    if !hba.errors.is_empty() {
        return Err(HbaError::Invalid {
            path: paths.hba.clone(),
            errors: hba.errors,
        });
    }
    let ident_text = std::fs::read_to_string(data_dir.join(ACTIVE_IDENT)).unwrap_or_default();
    let ident = parse_ident(&ident_text, &paths.ident);
    if !ident.errors.is_empty() {
        return Err(HbaError::Invalid {
            path: paths.ident.clone(),
            errors: ident.errors,
        });
    }
    Ok((hba, ident))
}

/// What identifies one version of a file: `activate` renames a new copy into place, so the
/// inode changes; size and mtime are checked too. `None`: the file does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp_of(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// The stamps of the files [`load_active`] reads: the accepted copies, or the files
/// themselves while no copy exists.
fn stamps_of(data_dir: &Path, paths: &HbaPaths) -> [Option<FileStamp>; 4] {
    let hba = stamp_of(&data_dir.join(ACTIVE_HBA));
    let ident = stamp_of(&data_dir.join(ACTIVE_IDENT));
    if hba.is_some() {
        [hba, ident, None, None]
    } else {
        [None, ident, stamp_of(&paths.hba), stamp_of(&paths.ident)]
    }
}

/// The rules in force as [`load_active`] parsed them, with what identifies the files they came
/// from, so that a process can keep them and reuse them while they are current (one `stat`
/// per file instead of a read and a parse). PostgreSQL's postmaster parses pg_hba.conf at
/// start and on SIGHUP and its children inherit the lists through fork; here the postmaster
/// loads an `ActiveRules` and a forked backend checks [`is_current`](Self::is_current) before
/// it uses the inherited copy (an exec'd child has none and loads its own).
#[derive(Debug, Clone)]
pub struct ActiveRules {
    /// The parsed pg_hba.conf in force.
    pub hba: HbaFile,
    /// The parsed pg_ident.conf in force.
    pub ident: IdentFile,
    data_dir: PathBuf,
    paths: HbaPaths,
    ssl_enabled: bool,
    stamps: [Option<FileStamp>; 4],
}

impl ActiveRules {
    /// [`load_active`], remembering the files' stamps (taken first: a change between the stat
    /// and the read makes the copy look stale later, never current when it is not).
    pub fn load(
        data_dir: &Path,
        paths: &HbaPaths,
        opts: ParseOptions,
    ) -> Result<ActiveRules, HbaError> {
        let stamps = stamps_of(data_dir, paths);
        let (hba, ident) = load_active(data_dir, paths, opts)?;
        Ok(ActiveRules {
            hba,
            ident,
            data_dir: data_dir.to_path_buf(),
            paths: paths.clone(),
            ssl_enabled: opts.ssl_enabled,
            stamps,
        })
    }

    /// Whether [`load_active`] with these arguments would parse the same files now.
    pub fn is_current(&self, data_dir: &Path, paths: &HbaPaths, opts: ParseOptions) -> bool {
        self.data_dir == data_dir
            && self.paths == *paths
            && self.ssl_enabled == opts.ssl_enabled
            && self.stamps == stamps_of(data_dir, paths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_edit_never_replaces_the_rules_in_force() {
        let d = std::env::temp_dir().join(format!("pgipc-hba-active-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let paths = HbaPaths::new(&d, "", "");
        let opts = ParseOptions::default();
        std::fs::write(&paths.hba, "local all all trust\n").unwrap();
        activate(&d, &paths, opts).unwrap();
        std::fs::write(&paths.hba, "local all all reject\nbogus\n").unwrap();
        let e = activate(&d, &paths, opts).unwrap_err();
        assert_eq!(e.line_errors()[0].line_number, 2);
        let (hba, _) = load_active(&d, &paths, opts).unwrap();
        assert_eq!(hba.lines[0].method, crate::AuthMethod::Trust);
        std::fs::write(&paths.hba, "local all all reject\n").unwrap();
        activate(&d, &paths, opts).unwrap();
        let (hba, ident) = load_active(&d, &paths, opts).unwrap();
        assert_eq!(hba.lines[0].method, crate::AuthMethod::Reject);
        assert!(ident.lines.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
    #[test]
    fn kept_rules_are_current_until_the_next_activation() {
        let d = std::env::temp_dir().join(format!("pgipc-hba-rules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let paths = HbaPaths::new(&d, "", "");
        let opts = ParseOptions::default();
        std::fs::write(&paths.hba, "local all all trust\n").unwrap();
        // No accepted copy yet: the files themselves are what counts.
        let before = ActiveRules::load(&d, &paths, opts).unwrap();
        assert!(before.is_current(&d, &paths, opts));
        activate(&d, &paths, opts).unwrap();
        assert!(!before.is_current(&d, &paths, opts));
        let kept = ActiveRules::load(&d, &paths, opts).unwrap();
        assert!(kept.is_current(&d, &paths, opts));
        // An edit that is not activated changes nothing in force.
        std::fs::write(&paths.hba, "local all all reject\n").unwrap();
        assert!(kept.is_current(&d, &paths, opts));
        assert!(!kept.is_current(&d, &paths, ParseOptions { ssl_enabled: true }));
        activate(&d, &paths, opts).unwrap();
        assert!(!kept.is_current(&d, &paths, opts));
        let now = ActiveRules::load(&d, &paths, opts).unwrap();
        assert_eq!(now.hba.lines[0].method, crate::AuthMethod::Reject);
        assert_eq!(kept.hba.lines[0].method, crate::AuthMethod::Trust);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
