//! pg_ident.conf: user-name maps for `peer` (PostgreSQL's `parse_ident_line`,
//! `check_usermap`).
//!
//! ```text
//!  MAPNAME   SYSTEM-USERNAME   PG-USERNAME
//!  omicron   bryanh            bryanh
//!  omicron   ann               +admins      (any member of admins)
//!  omicron   robert            all          (any role; PostgreSQL 16+)
//! ```
//! System user names written as regular expressions (`/^(.*)@x$`) are refused with a line
//! error: this server has no regular-expression engine.

use crate::tokenize::{tokenize_file, Token, TokenizedLine};
use crate::{ConfigError, HbaError, Membership};
use std::path::Path;

/// One map line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentLine {
    /// Line of the file.
    pub line_number: usize,
    /// Map name.
    pub usermap: String,
    /// The operating-system user name.
    pub system_user: String,
    /// The role (or `all`, or `+group`).
    pub pg_user: Token,
}

/// A parsed pg_ident.conf.
#[derive(Debug, Clone, Default)]
pub struct IdentFile {
    /// Lines that parsed.
    pub lines: Vec<IdentLine>,
    /// Errors (a file with any is not loaded by [`load_ident`]).
    pub errors: Vec<ConfigError>,
}

fn parse_ident_line(tl: &TokenizedLine, path: &Path) -> Result<IdentLine, ConfigError> {
    let e = |m: &str| ConfigError {
        path: path.to_path_buf(),
        line_number: tl.line_number,
        message: m.to_owned(),
        hint: None,
    };
    if let Some(m) = &tl.error {
        return Err(e(m));
    }
    let one = |i: usize| -> Result<Token, ConfigError> {
        let f = tl
            .fields
            .get(i)
            .ok_or_else(|| e("missing entry at end of line"))?;
        if f.len() > 1 {
            return Err(e("multiple values in ident field"));
        }
        Ok(f[0].clone())
    };
    let usermap = one(0)?.text;
    let system = one(1)?;
    let pg_user = one(2)?;
    if !system.quoted && system.text.starts_with('/') {
        return Err(e(
            "regular expressions in pg_ident.conf are not supported by this server",
        ));
    }
    Ok(IdentLine {
        line_number: tl.line_number,
        usermap,
        system_user: system.text,
        pg_user,
    })
}

/// Parses pg_ident.conf text.
pub fn parse_ident(text: &str, path: &Path) -> IdentFile {
    let mut f = IdentFile::default();
    for tl in tokenize_file(text, path) {
        match parse_ident_line(&tl, path) {
            Ok(l) => f.lines.push(l),
            Err(e) => f.errors.push(e),
        }
    }
    f
}

/// Reads and parses `path`; a missing file is an empty map set (PostgreSQL only warns), a
/// file with an error is refused.
pub fn load_ident(path: &Path) -> Result<IdentFile, HbaError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(HbaError::Open {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let f = parse_ident(&text, path);
    if !f.errors.is_empty() {
        return Err(HbaError::Invalid {
            path: path.to_path_buf(),
            errors: f.errors,
        });
    }
    Ok(f)
}

impl IdentFile {
    /// Whether map `usermap` lets the operating-system user `system_user` connect as
    /// `pg_user` (PostgreSQL's `check_usermap` without a map name: the names must be equal;
    /// that case is the caller's).
    pub fn check_usermap(
        &self,
        usermap: &str,
        pg_user: &str,
        system_user: &str,
        groups: &dyn Membership,
    ) -> bool {
        self.lines.iter().any(|l| {
            l.usermap == usermap
                && l.system_user == system_user
                && (l.pg_user.is_keyword("all")
                    || (!l.pg_user.quoted
                        && l.pg_user.text.starts_with('+')
                        && groups.is_member(pg_user, &l.pg_user.text[1..]))
                    || l.pg_user.text == pg_user)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoGroups;

    fn check(text: &str, map: &str, pg: &str, sys: &str, expected: bool) {
        let f = parse_ident(text, Path::new("pg_ident.conf"));
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.check_usermap(map, pg, sys, &NoGroups), expected, "{text}");
    }

    #[test]
    fn maps_match_by_name_system_user_and_role() {
        check("m alice bob\n", "m", "bob", "alice", true);
        check("m alice bob\n", "m", "carol", "alice", false);
        check("m alice bob\n", "other", "bob", "alice", false);
        check("m alice all\n", "m", "anyone", "alice", true);
        check("m alice \"all\"\n", "m", "anyone", "alice", false);
        check("m alice +bob\n", "m", "bob", "alice", true);
        check("", "m", "bob", "alice", false);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let f = parse_ident("m alice\nm a,b c\nm /^x$ c\n", Path::new("pg_ident.conf"));
        let got: Vec<_> = f
            .errors
            .iter()
            .map(|e| (e.line_number, e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "missing entry at end of line"),
                (2, "multiple values in ident field"),
                (
                    3,
                    "regular expressions in pg_ident.conf are not supported by this server"
                ),
            ]
        );
    }
}
