//! Who may connect: pg_hba.conf rules and pg_ident.conf user-name maps.
//!
//! Mirrors PostgreSQL's `libpq/hba.c`: the tokenizer shared by both files (quotes, `#`
//! comments, `\` continuation lines, comma lists, `@file` inclusions), the parse of each rule
//! with PostgreSQL's error texts, the first-match rule (`check_hba`), user-name maps
//! (`check_usermap`) and the rows of the `pg_hba_file_rules` view.
//!
//! ```text
//!  pg_hba.conf ─► tokenize_file ─► parse_hba ─► HbaFile { lines, errors, warnings }
//!                                                  │ errors? → not applied (caller keeps the
//!                                                  │          old rules, logs every error)
//!  connection ─► Client { addr, database, user } ─► HbaFile::check ─► Some(&HbaLine) | None
//!                                                                      (None: implicit reject)
//!  peer + map=m ─► IdentFile::check_usermap(m, role, os_user)
//! ```
//!
//! Nothing here is shared between processes, and nothing here reads a socket or a role: the
//! caller passes what it knows about the connection and role membership ([`Membership`]).
//! The postmaster makes a file the rules in force with [`activate`] (at start and on SIGHUP;
//! a file with an error is not applied), a backend reads them with [`load_active`].
//!
//! # Errors as PostgreSQL logs them
//! Each bad line is one [`ConfigError`], whose `Display` is PostgreSQL's two lines
//! (`invalid connection type "hots"` then `CONTEXT:  line 3 of configuration file "…"`);
//! [`HbaError::Invalid`] carries them all.
//!
//! # What this crate does not do
//! * No regular expressions (`/^…$` tokens): this server has no regex engine; they are line
//!   errors in pg_ident.conf and plain names in pg_hba.conf.
//! * No host names in the address field: such a rule parses (and shows in
//!   `pg_hba_file_rules`) but never matches, as no DNS look-ups are made.
//! * No `include`, `include_if_exists`, `include_dir` directives (PostgreSQL 16): they are
//!   "invalid connection type" errors. `@file` inclusions in a field do work.
//! * Methods `ident` (on TCP), `gss`, `sspi`, `pam`, `bsd`, `ldap`, `radius` are
//!   refused as PostgreSQL refuses them in a build without their library ("not supported by
//!   this build").
//!
//! Key items: [`parse_hba`], [`load_hba`], [`HbaFile::check`], [`hba_file_rules`],
//! [`parse_ident`], [`IdentFile::check_usermap`], [`initdb_hba_conf`].

mod active;
mod hba;
mod ident;
mod tokenize;

pub use active::{activate, load_active, ActiveRules, HbaPaths, ACTIVE_HBA, ACTIVE_IDENT};
pub use hba::{
    hba_file_rules, load_hba, parse_hba, Address, AuthMethod, Client, ClientAddr, ClientCert,
    ClientName, ConnType, HbaFile, HbaLine, HbaRuleRow, Membership, NoGroups, ParseOptions,
};
pub use ident::{load_ident, parse_ident, IdentFile, IdentLine};
pub use tokenize::{tokenize_file, Token, TokenizedLine, MAX_TOKEN};

use std::fmt;
use std::path::PathBuf;

/// One bad line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// The line (first physical line of a continued one).
    pub line_number: usize,
    /// PostgreSQL's message (what `pg_hba_file_rules.error` shows).
    pub message: String,
    /// PostgreSQL's hint, when it gives one.
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    /// The message, then the context line, as the server log shows them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\nHINT:  {h}")?;
        }
        write!(
            f,
            "\nCONTEXT:  line {} of configuration file \"{}\"",
            self.line_number,
            self.path.display()
        )
    }
}

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HbaError {
    /// The file could not be read.
    #[error("could not open file \"{}\": {}", path.display(), io_text(source))]
    Open {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Some lines are wrong; the file is not applied.
    #[error("could not load {}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every bad line.
        errors: Vec<ConfigError>,
    },
}

impl HbaError {
    /// The per-line errors (empty for [`HbaError::Open`]), to be logged one by one before the
    /// summary line.
    pub fn line_errors(&self) -> &[ConfigError] {
        match self {
            HbaError::Invalid { errors, .. } => errors,
            HbaError::Open { .. } => &[],
        }
    }
}

/// An I/O error as PostgreSQL's `%m` prints it (`No such file or directory`), without Rust's
/// `(os error 2)` tail.
pub(crate) fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// The pg_hba.conf initdb writes: `auth_local` for the socket, `auth_host` for loopback TCP
/// (IPv4 and IPv6), replication lines alike (PostgreSQL's `pg_hba.conf.sample` with initdb's
/// substitutions, comments shortened).
pub fn initdb_hba_conf(auth_local: &str, auth_host: &str) -> String {
    format!(
        "# PostgreSQL Client Authentication Configuration File\n\
         # ===================================================\n\
         #\n\
         # TYPE  DATABASE        USER            ADDRESS                 METHOD\n\
         \n\
         # \"local\" is for Unix domain socket connections only\n\
         local   all             all                                     {auth_local}\n\
         # IPv4 local connections:\n\
         host    all             all             127.0.0.1/32            {auth_host}\n\
         # IPv6 local connections:\n\
         host    all             all             ::1/128                 {auth_host}\n\
         # Allow replication connections from localhost, by a user with the\n\
         # replication privilege.\n\
         local   replication     all                                     {auth_local}\n\
         host    replication     all             127.0.0.1/32            {auth_host}\n\
         host    replication     all             ::1/128                 {auth_host}\n"
    )
}

/// An empty pg_ident.conf with its header, as initdb writes it.
pub const INITDB_IDENT_CONF: &str = "# PostgreSQL User Name Maps\n\
# =========================\n\
#\n\
# MAPNAME       SYSTEM-USERNAME         PG-USERNAME\n";

#[cfg(test)]
mod tests;
