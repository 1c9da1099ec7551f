//! The data directory: creation on first run, ownership and permission checks, and the
//! `postmaster.pid` lock file (PostgreSQL's miscinit.c `checkDataDir` and `CreateLockFile`).

use pgipc_libpq::{DirLock, LOCK_FILE_EMPTY_HINT};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub(crate) const PID_FILE: &str = "postmaster.pid";
/// The configuration file's name inside the data directory.
pub(crate) const CONFIG_FILE: &str = "postgresql.conf";

/// Errors about the data directory and its lock file, with PostgreSQL's texts.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DataDirError {
    /// No `-D` and no `PGDATA`.
    #[error("no data directory specified: use -D or set PGDATA")]
    NotSpecified,
    /// Creating or reading failed.
    #[error("could not access directory \"{}\": {source}", dir.display())]
    Access {
        /// The directory.
        dir: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// Not a directory.
    #[error("specified data directory \"{}\" is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// Owned by someone else.
    #[error("data directory \"{}\" has wrong ownership", .0.display())]
    WrongOwner(PathBuf),
    /// Group or world can write, or world can read.
    #[error("data directory \"{}\" has invalid permissions", .0.display())]
    BadPermissions(PathBuf),
    /// A live postmaster holds the lock file.
    #[error("lock file \"{PID_FILE}\" already exists")]
    LockFileExists {
        /// The other postmaster's pid.
        pid: i32,
        /// The data directory.
        dir: PathBuf,
    },
    /// The lock file exists and its shared memory is still in use.
    #[error("pre-existing shared memory block (key {key}, ID {shmid}) is still in use")]
    ShmemInUse {
        /// Key from line 7.
        key: u64,
        /// Id from line 7.
        shmid: i32,
        /// The data directory.
        dir: PathBuf,
    },
    /// The lock file exists and is empty.
    #[error("lock file \"{PID_FILE}\" is empty")]
    LockFileEmpty,
    /// The lock file's first line is not a pid.
    #[error("bogus data in lock file \"{PID_FILE}\": \"{0}\"")]
    LockFileBogus(
        /// Its first line.
        String,
    ),
    /// Creating, writing or reading the lock file failed.
    #[error("could not create lock file \"{}\": {source}", path.display())]
    LockFile {
        /// The file.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
}

impl DataDirError {
    /// PostgreSQL's DETAIL line for this error.
    pub(crate) fn detail(&self) -> Option<String> {
        match self {
            DataDirError::BadPermissions(_) => {
                Some("Permissions should be u=rwx (0700) or u=rwx,g=rx (0750).".into())
            }
            _ => None,
        }
    }

    /// PostgreSQL's HINT line for this error.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            DataDirError::WrongOwner(_) => {
                Some("The server must be started by the user that owns the data directory.".into())
            }
            DataDirError::LockFileExists { pid, dir } => Some(format!(
                "Is another postmaster (PID {pid}) running in data directory \"{}\"?",
                dir.display()
            )),
            DataDirError::LockFileEmpty => Some(LOCK_FILE_EMPTY_HINT.to_owned()),
            DataDirError::ShmemInUse { dir, .. } => Some(format!(
                "Terminate any old server processes associated with data directory \"{}\".",
                dir.display()
            )),
            _ => None,
        }
    }
}

/// PostgreSQL's `PG_MODE_MASK_OWNER`: files 0600, directories 0700.
pub(crate) const MODE_MASK_OWNER: u32 = 0o077;
/// PostgreSQL's `PG_MODE_MASK_GROUP`: files 0640, directories 0750.
pub(crate) const MODE_MASK_GROUP: u32 = 0o027;

/// The file creation mask for a data directory of mode `dir_mode` (PostgreSQL's
/// `SetDataDirectoryCreatePerm`): group access only when the directory grants it (0750).
pub(crate) fn create_mode_mask(dir_mode: u32) -> u32 {
    if dir_mode & 0o750 == 0o750 {
        MODE_MASK_GROUP
    } else {
        MODE_MASK_OWNER
    }
}

/// Sets the process's file creation mask; inherited by every child and by what they create.
pub(crate) fn set_umask(mask: u32) {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        mask as libc::mode_t,
    ));
}

/// Makes `dir` (mode 0700) with a default configuration file if it does not exist, then checks
/// it as PostgreSQL's `checkDataDir` does and sets the umask from its mode (0077, or 0027 for
/// a 0750 directory). Returns the absolute path and whether it was created.
pub(crate) fn prepare(dir: &Path, default_config: &str) -> Result<(PathBuf, bool), DataDirError> {
    let access = |e| DataDirError::Access {
        dir: dir.to_path_buf(),
        source: e,
    };
    let created = if dir.exists() {
        false
    } else {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(access)?;
        true
    };
    let abs = fs::canonicalize(dir).map_err(access)?;
    let md = fs::metadata(&abs).map_err(access)?;
    if !md.is_dir() {
        return Err(DataDirError::NotADirectory(abs));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if md.uid() != euid {
        return Err(DataDirError::WrongOwner(abs));
    }
    // PostgreSQL accepts 0700 and 0750 (group read access); anything more is refused.
    if md.mode() & 0o027 != 0 {
        return Err(DataDirError::BadPermissions(abs));
    }
    // Everything the server creates from now on follows the directory's mode (PostgreSQL's
    // checkDataDir resets the umask the same way).
    set_umask(create_mode_mask(md.mode()));
    let conf = abs.join(CONFIG_FILE);
    if created || !conf.exists() {
        write_new_file_atomically(&conf, default_config.as_bytes()).map_err(access)?;
    }
    Ok((abs, created))
}

/// Creates `path` with `contents` unless it exists, so that nobody ever reads it half written:
/// the text goes to a private temporary file that is then hard-linked into place (which fails
/// if `path` exists: another process that started at the same moment made it, and that one is
/// kept).
fn write_new_file_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            // PostgreSQL's pg_file_create_mode: the umask set from the directory's mode
            // makes it 0600, or 0640 with group access.
            .mode(0o640)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()
    })();
    let linked = written.and_then(|()| match fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    });
    let _ = fs::remove_file(&tmp);
    linked
}

/// What `postmaster.pid` says (the lines PostgreSQL's `pg_ctl` reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PidFileContents {
    /// Line 1.
    pub(crate) pid: i32,
    /// Line 7, parsed: shared memory key and id.
    pub(crate) shmem: Option<(u64, i32)>,
}

/// Parses the text of a lock file.
pub(crate) fn parse_pid_file(text: &str) -> Option<PidFileContents> {
    let mut lines = text.lines();
    let pid: i32 = lines.next()?.trim().parse().ok()?;
    let shmem = text.lines().nth(6).and_then(|l| {
        let mut it = l.split_whitespace();
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    });
    Some(PidFileContents { pid, shmem })
}

/// The lock file; removed by [`LockFile::remove`] at shutdown.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
    lines: Vec<String>,
}

/// The fields of the first lines of `postmaster.pid`.
#[derive(Debug, Clone)]
pub(crate) struct LockFileInfo<'a> {
    /// Absolute data directory.
    pub(crate) data_dir: &'a Path,
    /// Start time, seconds since the epoch.
    pub(crate) start_time: u64,
    /// The port.
    pub(crate) port: i64,
    /// First Unix socket directory ("" when none).
    pub(crate) socket_dir: &'a str,
    /// First listen address ("" when none).
    pub(crate) listen_addr: &'a str,
}

/// Line numbers of PostgreSQL's lock file (1-based), for [`LockFile::set_line`].
pub(crate) mod line {
    /// `LOCK_FILE_LINE_SHMEM_KEY`.
    pub(crate) const SHMEM_KEY: usize = 7;
    /// `LOCK_FILE_LINE_PM_STATUS`.
    pub(crate) const PM_STATUS: usize = 8;
}

/// PostgreSQL's `PM_STATUS_*` values (padded to the same width, as PostgreSQL does).
pub(crate) mod status {
    /// Starting up.
    pub(crate) const STARTING: &str = "starting";
    /// Accepting connections.
    pub(crate) const READY: &str = "ready   ";
    /// Shutting down.
    pub(crate) const STOPPING: &str = "stopping";
}

impl LockFile {
    /// Creates `postmaster.pid` exclusively (PostgreSQL's `CreateLockFile`: `O_CREAT|O_EXCL`,
    /// retried up to 100 times), removing a stale one whose postmaster is gone and whose shared
    /// memory nobody uses. `in_use(shmid)` answers whether a recorded segment still has users.
    /// An empty file or one whose first line is no pid stops the start and is left alone, as
    /// in PostgreSQL. Check, removal and creation run under the data directory's
    /// [`DirLock`], so two postmasters started at the same instant can neither both win nor
    /// remove each other's file.
    pub(crate) fn create(
        info: &LockFileInfo<'_>,
        in_use: impl Fn(i32) -> bool,
    ) -> Result<LockFile, DataDirError> {
        let path = info.data_dir.join(PID_FILE);
        let mypid = std::process::id() as i32;
        let lf_err = |e| DataDirError::LockFile {
            path: path.clone(),
            source: e,
        };
        // Held until the file is written (see `pgipc_libpq::DirLock`): postmasters started at
        // the same instant check and create one after the other.
        let _guard = DirLock::acquire(info.data_dir).map_err(lf_err)?;
        for _ in 0..100 {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                // PostgreSQL's pg_file_create_mode: the umask set from the directory's mode
                // makes it 0600, or 0640 with group access.
                .mode(0o640)
                .open(&path)
            {
                Ok(mut f) => {
                    let lines = vec![
                        mypid.to_string(),
                        info.data_dir.display().to_string(),
                        info.start_time.to_string(),
                        info.port.to_string(),
                        info.socket_dir.to_owned(),
                        info.listen_addr.to_owned(),
                    ];
                    let mut me = LockFile {
                        path: path.clone(),
                        lines,
                    };
                    f.write_all(me.text().as_bytes()).map_err(lf_err)?;
                    f.sync_all().map_err(lf_err)?;
                    me.lines.truncate(6);
                    return Ok(me);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(lf_err(e)),
            }
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                // Removed meanwhile by something that does not take the directory lock.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(lf_err(e)),
            };
            if text.is_empty() {
                // A server between creating and writing it (not one of ours: they hold the
                // directory lock across both), or one that crashed there. Left alone.
                return Err(DataDirError::LockFileEmpty);
            }
            // A negative pid marks a single-user `postgres`, as in PostgreSQL.
            let Some(old) = parse_pid_file(&text).filter(|o| o.pid != 0 && o.pid != i32::MIN)
            else {
                return Err(DataDirError::LockFileBogus(
                    text.lines().next().unwrap_or("").to_owned(),
                ));
            };
            let other = old.pid.abs();
            // SAFETY: getppid has no preconditions.
            let ppid = unsafe { libc::getppid() };
            if other != mypid && other != ppid && pgipc_ipc::pid_alive(other) {
                return Err(DataDirError::LockFileExists {
                    pid: other,
                    dir: info.data_dir.to_path_buf(),
                });
            }
            if let Some((key, shmid)) = old.shmem {
                if in_use(shmid) {
                    return Err(DataDirError::ShmemInUse {
                        key,
                        shmid,
                        dir: info.data_dir.to_path_buf(),
                    });
                }
            }
            // Verified stale, and nobody of ours can replace it while we hold the directory
            // lock: remove it and try again.
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(lf_err(e)),
            }
        }
        Err(lf_err(io::Error::other(
            "could not create it after 100 attempts",
        )))
    }

    fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }

    /// Sets line `n` (1-based; see [`mod@line`]) and rewrites the file (PostgreSQL's
    /// `AddToDataDirLockFile`).
    pub(crate) fn set_line(&mut self, n: usize, text: &str) -> io::Result<()> {
        while self.lines.len() < n {
            self.lines.push(String::new());
        }
        self.lines[n - 1] = text.to_owned();
        let text = self.text();
        // Overwritten in place, never truncated first: a postmaster starting meanwhile must
        // never find an empty file (it would refuse to start with "is empty" rather than say
        // that we run). The lines only grow or keep their width, so the final `set_len` rarely
        // has anything to cut.
        let mut f = OpenOptions::new().write(true).open(&self.path)?;
        f.write_all(text.as_bytes())?;
        f.set_len(text.len() as u64)?;
        f.sync_all()
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the file (shutdown).
    pub(crate) fn remove(self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("pgipc-dd-{name}-{}", std::process::id()))
    }

    #[test]
    fn creates_checks_and_refuses_loose_permissions() {
        let d = tmp("perm");
        let _ = fs::remove_dir_all(&d);
        let (abs, created) = prepare(&d, "# conf\n").unwrap();
        assert!(created);
        assert_eq!(fs::metadata(&abs).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            fs::read_to_string(abs.join(CONFIG_FILE)).unwrap(),
            "# conf\n"
        );
        assert!(!prepare(&d, "").unwrap().1);
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut fs::metadata(&d).unwrap().permissions(),
            0,
        );
        fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
        assert!(prepare(&d, "").is_ok(), "0750 is allowed, as in PostgreSQL");
        fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let e = prepare(&d, "").unwrap_err();
        assert!(matches!(e, DataDirError::BadPermissions(_)));
        assert_eq!(
            e.detail().unwrap(),
            "Permissions should be u=rwx (0700) or u=rwx,g=rx (0750)."
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lock_file_layout_and_stale_handling() {
        let d = tmp("lock");
        let _ = fs::remove_dir_all(&d);
        let (abs, _) = prepare(&d, "").unwrap();
        let info = LockFileInfo {
            data_dir: &abs,
            start_time: 1_700_000_000,
            port: 5433,
            socket_dir: "/tmp",
            listen_addr: "localhost",
        };
        let mut lf = LockFile::create(&info, |_| false).unwrap();
        lf.set_line(line::SHMEM_KEY, "   123456     98765").unwrap();
        lf.set_line(line::PM_STATUS, status::READY).unwrap();
        let text = fs::read_to_string(abs.join(PID_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[0], std::process::id().to_string());
        assert_eq!(lines[1], abs.display().to_string());
        assert_eq!(lines[2..6], ["1700000000", "5433", "/tmp", "localhost"]);
        assert_eq!(lines[7], "ready   ");
        assert_eq!(parse_pid_file(&text).unwrap().shmem, Some((123456, 98765)));
        lf.remove().unwrap();

        // A lock file of a live process (pid 1) is refused with PostgreSQL's hint.
        fs::write(abs.join(PID_FILE), "1\n").unwrap();
        let e = LockFile::create(&info, |_| false).unwrap_err();
        assert_eq!(e.to_string(), "lock file \"postmaster.pid\" already exists");
        assert!(e
            .hint()
            .unwrap()
            .starts_with("Is another postmaster (PID 1) running"));
        // A dead pid whose segment is still in use is refused too; garbage is stale.
        fs::write(abs.join(PID_FILE), "999999999\nx\n\n\n\n\n  1  2\n").unwrap();
        assert!(matches!(
            LockFile::create(&info, |id| id == 2),
            Err(DataDirError::ShmemInUse {
                key: 1,
                shmid: 2,
                ..
            })
        ));
        // An empty file and one without a pid stop the start and stay (PostgreSQL).
        fs::write(abs.join(PID_FILE), "").unwrap();
        let e = LockFile::create(&info, |_| false).unwrap_err();
        assert_eq!(e.to_string(), "lock file \"postmaster.pid\" is empty");
        assert_eq!(
            e.hint().unwrap(),
            "Either another server is starting, or the lock file is the remnant of a previous \
             server startup crash."
        );
        assert_eq!(fs::read(abs.join(PID_FILE)).unwrap(), b"");
        fs::write(abs.join(PID_FILE), "garbage").unwrap();
        let e = LockFile::create(&info, |_| false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bogus data in lock file \"postmaster.pid\": \"garbage\""
        );
        assert_eq!(fs::read_to_string(abs.join(PID_FILE)).unwrap(), "garbage");
        // A dead single-user postgres (negative pid) is stale.
        fs::write(abs.join(PID_FILE), "-999999999\n").unwrap();
        LockFile::create(&info, |_| false)
            .unwrap()
            .remove()
            .unwrap();
        fs::remove_dir_all(&d).unwrap();
    }
}
