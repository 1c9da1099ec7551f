//! Roles: the `pg_authid` catalog of a data directory and the commands that change it.
//!
//! Mirrors what PostgreSQL keeps in `catalog/pg_authid` and does in `commands/user.c`
//! (CREATE ROLE / USER, ALTER ROLE, DROP ROLE), with its SQLSTATEs and texts. pgipc has no
//! heap tables, so the catalog is one file:
//!
//! ```text
//!  $PGDATA/global/pgipc_authid        { format, generation, next_oid, mock_nonce, roles[] }
//!                                     sha256:<hex of the JSON body>      ← truncation shows
//!  $PGDATA/global/pgipc_authid.lock   flock(2) held by a writer from re-read to rename
//!
//!  writer (a backend running ALTER ROLE):  lock ─► refresh ─► check + apply on a copy
//!      ─► write pgipc_authid.tmp ─► fsync ─► rename over pgipc_authid ─► fsync global/ ─► unlock
//!  reader (every backend):  Authid::refresh() = stat(); inode/size/mtime changed ─► re-read
//! ```
//!
//! # How backends see each other's changes
//! Every save renames a new file into place, so the file's inode changes with every committed
//! command. [`Authid::refresh`] compares the inode, size and mtime it read with a fresh
//! `stat(2)` and re-reads on any difference: one system call per look. A backend calls it at
//! connection start (authentication) and before each role command or `pg_roles` read, which is
//! when PostgreSQL's catalog caches would have processed the invalidation. No shared memory is
//! involved, so nothing here can be left inconsistent by a crashed process.
//!
//! # Crash safety
//! A crash before the rename leaves the old file (and a stray `.tmp`, overwritten next time);
//! after it, the new one. A file that is truncated, has a wrong checksum or no roles is
//! [`AuthidError::Corrupt`]: the server refuses to start rather than run with no roles.
//!
//! # What this crate does not do
//! * No role membership (GRANT role, IN ROLE, `+group`), no per-role settings (ALTER ROLE …
//!   SET), no ADMIN option: a CREATEROLE role may alter and drop every non-superuser role.
//! * It does not count connections: `rolconnlimit` is stored and shown; enforcing it needs the
//!   ProcArray (the backend's business).
//! * It does not authenticate: it stores secrets (hashed by `pgipc_libpq::encrypt_password`);
//!   the backend checks them.
//!
//! Key items: [`Authid`], [`parse_role_command`], [`RoleCommand`], [`RoleError`].

mod command;
mod store;

pub use command::{parse_role_command, RoleCommand, RoleOptions};
pub use store::{
    now_micros, parse_valid_until, Authid, Executed, PasswordOptions, PgRolesRow, Role,
    AUTHID_FILE, BOOTSTRAP_SUPERUSERID,
};

use std::path::PathBuf;

/// The role file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthidError {
    /// The file does not exist.
    #[error("role file \"{}\" does not exist", .0.display())]
    Missing(PathBuf),
    /// The file exists (bootstrap refused).
    #[error("role file \"{}\" already exists", .0.display())]
    Exists(PathBuf),
    /// The file is truncated or damaged.
    #[error("role file \"{}\" is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A system call failed.
    #[error("could not access file \"{}\": {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The kernel's random source failed.
    #[error("could not generate random bytes")]
    NoRandom,
}

/// A role command failed, with PostgreSQL's SQLSTATE and text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// 42601.
    #[error("{0}")]
    Syntax(String),
    /// 0A000.
    #[error("{0}")]
    FeatureNotSupported(String),
    /// 42710.
    #[error("role \"{0}\" already exists")]
    AlreadyExists(String),
    /// 42704.
    #[error("role \"{0}\" does not exist")]
    DoesNotExist(String),
    /// 42501.
    #[error("{message}")]
    PermissionDenied {
        /// Message.
        message: String,
        /// Detail.
        detail: Option<String>,
    },
    /// 42939.
    #[error("role name \"{name}\" is reserved")]
    Reserved {
        /// The name.
        name: String,
        /// Detail.
        detail: Option<String>,
    },
    /// 22023.
    #[error("{0}")]
    InvalidParameter(String),
    /// 22007.
    #[error("invalid input syntax for type timestamp with time zone: \"{0}\"")]
    InvalidDatetime(String),
    /// 55006.
    #[error("{0}")]
    ObjectInUse(String),
    /// 2BP01.
    #[error("{0}")]
    DependentObjects(String),
    /// 58030: the role file could not be read or written.
    #[error("{0}")]
    Storage(String),
}

impl RoleError {
    pub(crate) fn syntax(m: String) -> RoleError {
        RoleError::Syntax(m)
    }

    pub(crate) fn storage(e: AuthidError) -> RoleError {
        RoleError::Storage(e.to_string())
    }

    /// SQLSTATE.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            RoleError::Syntax(_) => "42601",
            RoleError::FeatureNotSupported(_) => "0A000",
            RoleError::AlreadyExists(_) => "42710",
            RoleError::DoesNotExist(_) => "42704",
            RoleError::PermissionDenied { .. } => "42501",
            RoleError::Reserved { .. } => "42939",
            RoleError::InvalidParameter(_) => "22023",
            RoleError::InvalidDatetime(_) => "22007",
            RoleError::ObjectInUse(_) => "55006",
            RoleError::DependentObjects(_) => "2BP01",
            RoleError::Storage(_) => "58030",
        }
    }

    /// DETAIL, if PostgreSQL gives one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            RoleError::PermissionDenied { detail, .. } | RoleError::Reserved { detail, .. } => {
                detail.as_deref()
            }
            _ => None,
        }
    }
}

/// Severity of a [`Notice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    /// NOTICE.
    Notice,
    /// WARNING.
    Warning,
}

/// A NOTICE or WARNING a role command sends the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Severity.
    pub level: NoticeLevel,
    /// SQLSTATE.
    pub code: &'static str,
    /// Message.
    pub message: String,
    /// Detail.
    pub detail: Option<String>,
    /// Hint.
    pub hint: Option<String>,
}

impl Notice {
    pub(crate) fn info(code: &'static str, message: impl Into<String>) -> Notice {
        Notice {
            level: NoticeLevel::Notice,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub(crate) fn warning(code: &'static str, message: impl Into<String>) -> Notice {
        Notice {
            level: NoticeLevel::Warning,
            ..Notice::info(code, message)
        }
    }

    pub(crate) fn with_detail(mut self, d: &str) -> Notice {
        self.detail = Some(d.into());
        self
    }

    pub(crate) fn with_hint(mut self, h: &str) -> Notice {
        self.hint = Some(h.into());
        self
    }
}

#[cfg(test)]
mod tests;
