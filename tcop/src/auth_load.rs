//! What client authentication reads, loaded once (PostgreSQL's postmaster runs `load_hba` and
//! `load_ident` at start and on SIGHUP, and its forked children use the parsed lists they
//! inherit):
//!
//! ```text
//!  postmaster: start, SIGHUP ─► preload_auth: the rules in force (hba::ActiveRules) and
//!                               the role file (authid::Authid), kept in this process
//!  fork ─► the backend inherits both (copy-on-write)
//!  backend: rules_and_roles ─► rules current (one stat per file)? keep : parse again
//!                              roles: Authid::refresh (one stat; re-read if a role command
//!                              of another backend saved the file since)
//!  exec'd child, or a process that never preloaded ─► parse both
//! ```
//!
//! Invariant: a backend never authenticates against rules or roles older than the files on
//! disk at the moment it checks (the stamps are compared every time, so a CREATE ROLE that
//! committed before the login began is seen).

use pgipc_authid::{Authid, AuthidError};
use pgipc_guc::Settings;
use pgipc_hba::{ActiveRules, HbaError, HbaFile, HbaPaths, IdentFile, ParseOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What [`preload_auth`] loaded, for the data directory it names.
struct Loaded {
    data_dir: PathBuf,
    rules: Option<ActiveRules>,
    roles: Option<Authid>,
}

/// The process's preloaded copy (a postmaster and its forked children are single-threaded;
/// the lock is for tests that run sessions on threads).
static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

/// Why the rules or the roles could not be loaded.
pub(crate) enum LoadError {
    Rules(HbaError),
    Roles(AuthidError),
}

/// The data directory, hba paths and parse options of `settings`; `None` without a data
/// directory (a bare server).
pub(crate) fn auth_paths(settings: &Settings) -> Option<(PathBuf, HbaPaths, ParseOptions)> {
    let data_dir = settings.show("data_directory").ok()?;
    if data_dir.is_empty() {
        return None;
    }
    let data_dir = PathBuf::from(data_dir);
    let get = |n: &str| settings.show(n).unwrap_or_default();
    let paths = HbaPaths::new(&data_dir, &get("hba_file"), &get("ident_file"));
    let opts = ParseOptions {
        ssl_enabled: settings.bool("ssl"),
    };
    Some((data_dir, paths, opts))
}

/// Loads the rules in force and the role file into this process, for the children it forks
/// (the postmaster at start and after each reload). What cannot be loaded is left out: a
/// backend then loads it itself and reports the error to its client.
pub fn preload_auth(settings: &Settings) {
    let Some((data_dir, paths, opts)) = auth_paths(settings) else {
        return;
    };
    let rules = ActiveRules::load(&data_dir, &paths, opts).ok();
    let roles = Authid::open(&data_dir).ok();
    let mut slot = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    *slot = Some(Loaded {
        data_dir,
        rules,
        roles,
    });
}

/// The rules in force and the roles of one authentication; dropping it keeps them in the
/// process for the next one (a forked backend thus never frees, and so never writes to, the
/// heap pages it shares with the postmaster).
pub(crate) struct Kept {
    data_dir: PathBuf,
    rules: Option<ActiveRules>,
    roles: Option<Authid>,
}

impl Kept {
    /// pg_hba.conf's rules, pg_ident.conf's maps and the role file.
    pub(crate) fn parts(&self) -> Option<(&HbaFile, &IdentFile, &Authid)> {
        let (rules, roles) = (self.rules.as_ref()?, self.roles.as_ref()?);
        Some((&rules.hba, &rules.ident, roles))
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let mut slot = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(Loaded {
            data_dir: std::mem::take(&mut self.data_dir),
            rules: self.rules.take(),
            roles: self.roles.take(),
        });
    }
}

/// The rules in force and the roles, for one authentication: the preloaded copies when they
/// are current, otherwise read now.
pub(crate) fn rules_and_roles(
    data_dir: &Path,
    paths: &HbaPaths,
    opts: ParseOptions,
) -> Result<Kept, LoadError> {
    let (rules, roles) = {
        let mut slot = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_mut() {
            Some(l) if l.data_dir == data_dir => (l.rules.take(), l.roles.take()),
            _ => (None, None),
        }
    };
    let rules = match rules {
        Some(r) if r.is_current(data_dir, paths, opts) => r,
        _ => ActiveRules::load(data_dir, paths, opts).map_err(LoadError::Rules)?,
    };
    let roles = match roles {
        Some(mut a) => {
            a.refresh().map_err(LoadError::Roles)?;
            a
        }
        None => Authid::open(data_dir).map_err(LoadError::Roles)?,
    };
    Ok(Kept {
        data_dir: data_dir.to_path_buf(),
        rules: Some(rules),
        roles: Some(roles),
    })
}
