//! Settings: PostgreSQL's Grand Unified Configuration (utils/misc/guc.c, guc_tables.c and
//! guc-file.l) as a crate that depends on no other pgipc crate.
//!
//! What is here:
//! - [`DEFS`], the table of every parameter PostgreSQL 18 has (so a `postgresql.conf` written
//!   for PostgreSQL 18 loads unchanged) plus pgipc's own (`exec_backend`). Settings pgipc does
//!   not act on are accepted and shown, and their descriptions say so ([`Def::has_effect`]).
//!   Names with a dot (`myext.setting`) are placeholders, as in PostgreSQL.
//! - [`Settings`], one process's values: each with its [`Source`] (file and line for the
//!   configuration file), PostgreSQL's source priorities, reset values, `SET` / `SET LOCAL` /
//!   `RESET` / `RESET ALL`, the transaction stack that undoes a `SET` of a rolled-back
//!   transaction (`AtEOXact_GUC`, with savepoint nest levels), `SHOW` with PostgreSQL's unit
//!   formatting, `SHOW ALL` and `pg_settings` rows, `ParameterStatus` tracking for `GUC_REPORT`
//!   settings, and the serde [`Snapshot`] an exec'd child starts from.
//! - [`conffile`], the `postgresql.conf` reader (quoting, `include`, `include_dir`,
//!   `include_if_exists`), and [`Settings::process_config_file`], PostgreSQL's reload.
//!
//! ```text
//!   boot value ──► reset value (default < env < file < command line < ... < override)
//!                       │  RESET / end of SET LOCAL
//!                       ▼
//!                  current value ◄── SET (session) ── stack per nest level ── ROLLBACK undoes
//! ```
//!
//! What is not here: check/assign/show hooks of PostgreSQL's subsystems (time zones, encodings,
//! locales are stored as given), `ALTER SYSTEM` and `postgresql.auto.conf`, per-database and
//! per-role settings, and privileges granted with `GRANT SET ON PARAMETER`. The process is
//! single-threaded: a [`Settings`] is plain process-local data, never in shared memory.
//!
//! Who uses it: the postmaster loads its [`Settings`] at start (defaults < environment <
//! `postgresql.conf` < command line), prints `-C` values with [`Settings::value_text`] (base
//! units) and reloads with [`Settings::process_config_file`] and [`Context::Sighup`]; fork
//! children inherit the value, exec'd children start from its [`Snapshot`]
//! ([`Settings::from_snapshot`]). Each backend session (the tcop crate) holds its own clone,
//! which shares the server's variables and copies only those it changes (so a connection
//! neither copies nor frees the table): startup-packet parameters with [`Settings::set_client`], SQL's `SET`/`RESET`/`SHOW`, a
//! [`Settings::start_transaction`] / [`Settings::end_transaction`] pair around each
//! transaction that changes a setting, and [`Settings::begin_reporting`] /
//! [`Settings::changed_reports`] for ParameterStatus. [`split_guc_list`] is the one splitter
//! of list values (libpq's listen sockets, the postmaster's preload libraries).

mod conffile_impl;
mod settings;
mod tables;
mod units;

pub use settings::{
    flatten_set_args, quote_identifier, sample_config_file, Action, FileSettingRow, PgSettingsRow,
    ReloadReport, SetArg, SetOptions, Settings, ShowAllRow, Snapshot, SnapshotEntry,
};
pub use tables::DEFS;

/// `postgresql.conf` reading (PostgreSQL's guc-file.l).
pub mod conffile {
    pub use crate::conffile_impl::{parse_config_file, parse_line, ConfigItem, MAX_INCLUDE_DEPTH};
}

use std::fmt;
use std::path::PathBuf;

/// PostgreSQL's `GUC_*` flags (those that matter here), and pgipc's own.
pub mod flags {
    /// Sent to the client in ParameterStatus when it changes.
    pub const REPORT: u32 = 1 << 0;
    /// Not in `SHOW ALL` nor `pg_settings`.
    pub const NO_SHOW_ALL: u32 = 1 << 1;
    /// `RESET` refuses it.
    pub const NO_RESET: u32 = 1 << 2;
    /// `RESET ALL` skips it.
    pub const NO_RESET_ALL: u32 = 1 << 3;
    /// Not in `postgresql.conf.sample`.
    pub const NOT_IN_SAMPLE: u32 = 1 << 4;
    /// Cannot be set in `postgresql.conf`.
    pub const DISALLOW_IN_FILE: u32 = 1 << 5;
    /// Takes a comma-separated list.
    pub const LIST_INPUT: u32 = 1 << 6;
    /// List elements are quoted as identifiers.
    pub const LIST_QUOTE: u32 = 1 << 7;
    /// Only superusers (or pg_read_all_settings) may see it.
    pub const SUPERUSER_ONLY: u32 = 1 << 8;
    /// Limited to NAMEDATALEN - 1 bytes.
    pub const IS_NAME: u32 = 1 << 9;
    /// Shown by `EXPLAIN (SETTINGS)`.
    pub const EXPLAIN: u32 = 1 << 10;
    /// Computed at server start (`postgres -C` computes it).
    pub const RUNTIME_COMPUTED: u32 = 1 << 11;
    /// May be set in a parallel worker.
    pub const ALLOW_IN_PARALLEL: u32 = 1 << 12;
    /// Cannot be set by `ALTER SYSTEM`.
    pub const DISALLOW_IN_AUTO_FILE: u32 = 1 << 13;
    /// Cannot be set inside a security-restricted operation.
    pub const NOT_WHILE_SEC_REST: u32 = 1 << 14;
    /// A placeholder for a setting an extension may define later (`myext.setting`).
    pub const CUSTOM_PLACEHOLDER: u32 = 1 << 15;
    /// pgipc: shown in octal (PostgreSQL's show hooks of the file-mode settings).
    pub const SHOW_OCTAL: u32 = 1 << 16;
    /// pgipc: only the boot value is accepted (`default_with_oids`).
    pub const ONLY_BOOT: u32 = 1 << 17;
    /// pgipc: a setting of pgipc's own, not PostgreSQL's.
    pub const PGIPC: u32 = 1 << 18;

    /// Base unit: bytes.
    pub const UNIT_BYTE: u32 = 1 << 24;
    /// Base unit: kilobytes.
    pub const UNIT_KB: u32 = 2 << 24;
    /// Base unit: megabytes.
    pub const UNIT_MB: u32 = 3 << 24;
    /// Base unit: 8kB disk blocks.
    pub const UNIT_BLOCKS: u32 = 4 << 24;
    /// Base unit: 8kB WAL blocks.
    pub const UNIT_XBLOCKS: u32 = 5 << 24;
    /// Base unit: milliseconds.
    pub const UNIT_MS: u32 = 6 << 24;
    /// Base unit: seconds.
    pub const UNIT_S: u32 = 7 << 24;
    /// Base unit: minutes.
    pub const UNIT_MIN: u32 = 8 << 24;
    /// The unit bits.
    pub const UNIT_MASK: u32 = 0xF << 24;
}

/// When a setting may change (PostgreSQL's `GucContext`), in PostgreSQL's order: a context
/// later in the list may do everything an earlier one may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Context {
    /// Computed by the server; never set by the user.
    Internal,
    /// Only at server start.
    Postmaster,
    /// At start and on SIGHUP (re-reading the configuration file).
    Sighup,
    /// At connection start, by superusers.
    SuBackend,
    /// At connection start.
    Backend,
    /// Any time, by superusers.
    Superuser,
    /// Any time, by anyone.
    User,
}

impl Context {
    /// PostgreSQL's name (`pg_settings.context`).
    pub fn name(self) -> &'static str {
        match self {
            Context::Internal => "internal",
            Context::Postmaster => "postmaster",
            Context::Sighup => "sighup",
            Context::SuBackend => "superuser-backend",
            Context::Backend => "backend",
            Context::Superuser => "superuser",
            Context::User => "user",
        }
    }
}

/// Where a value came from (PostgreSQL's `GucSource`), lowest priority first: a value from a
/// source earlier in the list never replaces one from a later source.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Source {
    /// The built-in boot value.
    Default,
    /// Computed at start-up (`shared_memory_size`, ...).
    DynamicDefault,
    /// An environment variable (`PGPORT`, `PGDATESTYLE`, `PGCLIENTENCODING`).
    EnvVar,
    /// The configuration file (the line is kept beside the value).
    File,
    /// The postmaster's command line (`-c name=value`).
    CommandLine,
    /// Global (all databases) settings.
    Global,
    /// Per-database settings.
    Database,
    /// Per-user settings.
    User,
    /// Per-user-and-database settings.
    DatabaseUser,
    /// The client's startup packet.
    Client,
    /// Forced by the server.
    Override,
    /// Dividing line for error reporting (PostgreSQL's `PGC_S_INTERACTIVE`).
    Interactive,
    /// Test values.
    Test,
    /// `SET` in the session.
    Session,
}

impl Source {
    /// PostgreSQL's name (`pg_settings.source`).
    pub fn name(self) -> &'static str {
        match self {
            Source::Default | Source::DynamicDefault => "default",
            Source::EnvVar => "environment variable",
            Source::File => "configuration file",
            Source::CommandLine => "command line",
            Source::Global => "global",
            Source::Database => "database",
            Source::User => "user",
            Source::DatabaseUser => "database user",
            Source::Client => "client",
            Source::Override => "override",
            Source::Interactive => "interactive",
            Source::Test => "test",
            Source::Session => "session",
        }
    }
}

/// One value of an enum setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumOption {
    /// The word.
    pub name: &'static str,
    /// Accepted but not listed (e.g. `yes` for `on`).
    pub hidden: bool,
    /// The value it stands for, as `SHOW` prints it (PostgreSQL shows the first word with the
    /// same internal value: `yes` shows as `on`).
    pub shows_as: &'static str,
}

/// A setting's type, boot value and limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// on/off.
    Bool {
        /// Boot value.
        boot: bool,
    },
    /// A 32-bit integer in the base unit of its flags.
    Int {
        /// Boot value.
        boot: i64,
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A floating-point number.
    Real {
        /// Boot value.
        boot: f64,
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// Free text.
    String {
        /// Boot value.
        boot: &'static str,
    },
    /// One of a fixed list of words.
    Enum {
        /// Boot value.
        boot: &'static str,
        /// The words, hidden ones included.
        options: &'static [EnumOption],
    },
}

/// One row of the settings table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Def {
    /// Its name as PostgreSQL spells it (look-ups ignore case).
    pub name: &'static str,
    /// When it may change.
    pub context: Context,
    /// PostgreSQL's category (`pg_settings.category`).
    pub group: &'static str,
    /// PostgreSQL's one-line description.
    pub short_desc: &'static str,
    /// PostgreSQL's longer description, or empty.
    pub long_desc: &'static str,
    /// [`flags`] bits, unit included.
    pub flags: u32,
    /// Type, boot value, limits.
    pub kind: Kind,
}

/// What a description carries for a setting pgipc accepts but does not act on.
pub const NO_EFFECT_NOTE: &str = "Accepted for compatibility; has no effect in pgipc.";

impl Def {
    /// The setting of that name (case-insensitive; old names such as `sort_mem` map to the new).
    pub fn find(name: &str) -> Option<&'static Def> {
        let name = tables::OLD_NAMES
            .iter()
            .find(|(old, _)| old.eq_ignore_ascii_case(name))
            .map_or(name, |(_, new)| new);
        DEFS.iter().find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// Parses `text` as a value of this setting, with PostgreSQL's errors (for a placeholder the
    /// text itself).
    pub fn parse(&self, text: &str) -> Result<Value, GucError> {
        settings::parse_value(self, self.name, text, &Where::default())
    }

    /// Whether pgipc acts on this setting (internal settings state facts and count as such).
    pub fn has_effect(&self) -> bool {
        self.context == Context::Internal || tables::IN_EFFECT.contains(&self.name)
    }

    /// PostgreSQL's type name (`pg_settings.vartype`).
    pub fn vartype(&self) -> &'static str {
        match self.kind {
            Kind::Bool { .. } => "bool",
            Kind::Int { .. } => "integer",
            Kind::Real { .. } => "real",
            Kind::String { .. } => "string",
            Kind::Enum { .. } => "enum",
        }
    }

    /// The base unit's name as `pg_settings.unit` shows it (`8kB` for blocks).
    pub fn unit_name(&self) -> Option<&'static str> {
        units::unit_name(self.flags)
    }

    /// The extra description, with pgipc's note for settings without effect.
    pub fn extra_desc(&self) -> String {
        match (self.long_desc.is_empty(), self.has_effect()) {
            (_, true) => self.long_desc.to_owned(),
            (true, false) => NO_EFFECT_NOTE.to_owned(),
            (false, false) => format!("{} {NO_EFFECT_NOTE}", self.long_desc),
        }
    }
}

/// A value in its setting's base unit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// An integer in the base unit.
    Int(i64),
    /// A real in the base unit.
    Real(f64),
    /// Text (strings, and the canonical word of an enum).
    Text(String),
}

/// SQLSTATEs of settings errors.
pub mod sqlstate {
    /// `undefined_object`.
    pub const UNDEFINED_OBJECT: &str = "42704";
    /// `cant_change_runtime_param`.
    pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
    /// `invalid_parameter_value`.
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    /// `insufficient_privilege`.
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// `syntax_error`.
    pub const SYNTAX_ERROR: &str = "42601";
    /// `invalid_name`.
    pub const INVALID_NAME: &str = "42602";
    /// `feature_not_supported`.
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    /// `undefined_file`.
    pub const UNDEFINED_FILE: &str = "58P01";
    /// `program_limit_exceeded`.
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    /// `config_file_error`.
    pub const CONFIG_FILE_ERROR: &str = "F0000";
}

/// Where a value was given, for error texts: nothing for SQL and the command line,
/// ` in file "f" line n` for the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Where(Option<Box<(PathBuf, u32)>>);

impl Where {
    /// A configuration-file location.
    pub fn file(path: impl Into<PathBuf>, line: u32) -> Where {
        Where(Some(Box::new((path.into(), line))))
    }

    /// The file and line, if the value came from a file.
    pub fn location(&self) -> Option<(&std::path::Path, u32)> {
        self.0.as_deref().map(|(p, l)| (p.as_path(), *l))
    }
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_deref() {
            Some((p, l)) => write!(f, " in file \"{}\" line {l}", p.display()),
            None => Ok(()),
        }
    }
}

/// Errors of settings handling, with PostgreSQL's texts; [`GucError::sqlstate`] gives the code
/// and [`GucError::hint`] the HINT line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GucError {
    /// Unknown name (42704).
    #[error("unrecognized configuration parameter \"{0}\"{1}")]
    Unknown(String, Where),
    /// A dotted name that is not two or more identifiers (42602).
    #[error("invalid configuration parameter name \"{0}\"")]
    InvalidName(String),
    /// A value that does not parse (22023).
    #[error("invalid value for parameter \"{name}\": \"{value}\"{at}")]
    Invalid {
        /// The setting.
        name: String,
        /// The value given.
        value: String,
        /// PostgreSQL's hint, if any.
        hint: Option<String>,
        /// Where it was given.
        at: Where,
    },
    /// A boolean that does not parse (22023).
    #[error("parameter \"{0}\" requires a Boolean value{1}")]
    NotBool(String, Where),
    /// A number outside its range (22023).
    #[error("{value} is outside the valid range for parameter \"{name}\" ({min} .. {max}){at}")]
    OutOfRange {
        /// The setting.
        name: String,
        /// The value, with unit.
        value: String,
        /// Lower bound, with unit.
        min: String,
        /// Upper bound, with unit.
        max: String,
        /// Where it was given.
        at: Where,
    },
    /// An internal setting, or one the file may not set (55P02).
    #[error("parameter \"{0}\" cannot be changed{1}")]
    ReadOnly(String, Where),
    /// A postmaster-context setting after start (55P02).
    #[error("parameter \"{0}\" cannot be changed without restarting the server{1}")]
    NeedsRestart(String, Where),
    /// A sighup-context setting from SQL (55P02).
    #[error("parameter \"{0}\" cannot be changed now")]
    NotNow(String),
    /// A backend-context setting after connection start (55P02).
    #[error("parameter \"{0}\" cannot be set after connection start")]
    AfterConnectionStart(String),
    /// A superuser setting set by an ordinary user (42501).
    #[error("permission denied to set parameter \"{0}\"")]
    PermissionDenied(String),
    /// A superuser-only setting shown to an ordinary user (42501).
    #[error("must be superuser or have privileges of pg_read_all_settings to examine \"{0}\"")]
    NoShowPermission(String),
    /// `RESET` of a setting that refuses it (0A000).
    #[error("parameter \"{0}\" cannot be reset")]
    CannotReset(String),
    /// A value only the boot value may have (0A000).
    #[error("{0}")]
    NotSupported(String),
    /// A syntax error in a file (42601).
    #[error("syntax error in file \"{}\" line {line}, near token \"{token}\"", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: u32,
        /// The token.
        token: String,
    },
    /// A syntax error at the end of a line (42601).
    #[error("syntax error in file \"{}\" line {line}, near end of line", file.display())]
    SyntaxEol {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: u32,
    },
    /// A file that cannot be read (58P01).
    #[error("could not open configuration file \"{}\": {reason}", file.display())]
    Open {
        /// The file.
        file: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// A directory of `include_dir` that cannot be read (58P01).
    #[error("could not open configuration directory \"{}\": {reason}", dir.display())]
    OpenDir {
        /// The directory.
        dir: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// Includes nested too deeply (54000).
    #[error("could not open configuration file \"{}\": maximum nesting depth exceeded", .0.display())]
    TooDeep(PathBuf),
    /// A file including itself (22023).
    #[error("configuration file recursion in \"{}\"", .0.display())]
    Recursion(PathBuf),
    /// Too many syntax errors in one file (54000).
    #[error("too many syntax errors found, abandoning file \"{}\"", .0.display())]
    TooManyErrors(PathBuf),
    /// `SET x TO a, b` for a setting that is not a list (22023).
    #[error("SET {0} takes only one argument")]
    TooManyArgs(String),
    /// `-c` without `=` (PostgreSQL: `-c %s requires a value`).
    #[error("-c {0} requires a value")]
    NeedsValue(String),
}

impl GucError {
    /// PostgreSQL's SQLSTATE for this error.
    pub fn sqlstate(&self) -> &'static str {
        use sqlstate::*;
        match self {
            GucError::Unknown(..) => UNDEFINED_OBJECT,
            GucError::InvalidName(_) => INVALID_NAME,
            GucError::Invalid { .. }
            | GucError::NotBool(..)
            | GucError::OutOfRange { .. }
            | GucError::TooManyArgs(_) => INVALID_PARAMETER_VALUE,
            GucError::ReadOnly(..)
            | GucError::NeedsRestart(..)
            | GucError::NotNow(_)
            | GucError::AfterConnectionStart(_) => CANT_CHANGE_RUNTIME_PARAM,
            GucError::PermissionDenied(_) | GucError::NoShowPermission(_) => INSUFFICIENT_PRIVILEGE,
            GucError::CannotReset(_) | GucError::NotSupported(_) => FEATURE_NOT_SUPPORTED,
            GucError::Syntax { .. } | GucError::SyntaxEol { .. } => SYNTAX_ERROR,
            GucError::Open { .. } | GucError::OpenDir { .. } => UNDEFINED_FILE,
            GucError::TooDeep(_) | GucError::TooManyErrors(_) => PROGRAM_LIMIT_EXCEEDED,
            GucError::Recursion(_) => INVALID_PARAMETER_VALUE,
            GucError::NeedsValue(_) => SYNTAX_ERROR,
        }
    }

    /// PostgreSQL's HINT line, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            GucError::Invalid { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }

    /// PostgreSQL's DETAIL line, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            GucError::InvalidName(_) => Some(
                "Custom parameter names must be two or more simple identifiers separated by dots.",
            ),
            _ => None,
        }
    }
}

/// Parses a boolean as PostgreSQL's `parse_bool`: on/off, true/false, yes/no, 1/0 and the
/// unambiguous prefixes of the words, case-insensitively.
pub fn parse_bool(text: &str) -> Option<bool> {
    let t = text.to_ascii_lowercase();
    if t.is_empty() {
        return None;
    }
    let prefix_of = |w: &str| w.starts_with(t.as_str());
    match t.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        "on" => Some(true),
        "of" | "off" => Some(false),
        _ if prefix_of("true") => Some(true),
        _ if prefix_of("false") => Some(false),
        _ if prefix_of("yes") => Some(true),
        _ if prefix_of("no") => Some(false),
        _ => None,
    }
}

/// Splits a list setting's value as PostgreSQL's `SplitIdentifierString` /
/// `SplitGUCList`: comma-separated, whitespace trimmed, double quotes kept together (and
/// removed, `""` standing for one quote). `None` for a malformed list.
pub fn split_guc_list(value: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return if out.is_empty() { Some(out) } else { None };
        }
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return None,
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        item.push('"');
                    }
                    Some('"') => break,
                    Some(c) => item.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            let trimmed = item.trim_end().to_owned();
            if trimmed.is_empty() {
                return None;
            }
            item = trimmed;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        out.push(item);
        match chars.next() {
            None => return Some(out),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

/// Whether `name` is a valid placeholder name: two or more identifiers separated by dots
/// (PostgreSQL's `valid_custom_variable_name`).
pub fn valid_custom_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            let mut cs = p.chars();
            cs.next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii())
                && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools() {
        let check = |t: &str, e: Option<bool>| assert_eq!(parse_bool(t), e, "{t}");
        for t in ["on", "ON", "t", "tr", "true", "y", "yes", "1"] {
            check(t, Some(true));
        }
        for t in ["off", "of", "f", "false", "n", "no", "0"] {
            check(t, Some(false));
        }
        for t in ["", "o", "tru e", "2", " on", "yess"] {
            check(t, None);
        }
    }

    #[test]
    fn lists() {
        let check = |t: &str, e: Option<&[&str]>| {
            assert_eq!(
                split_guc_list(t),
                e.map(|v| v.iter().map(|s| s.to_string()).collect()),
                "{t}"
            )
        };
        check("", Some(&[]));
        check("a, b ,c", Some(&["a", "b", "c"]));
        check("\"$user\", public", Some(&["$user", "public"]));
        check("\"a,\"\"b\"", Some(&["a,\"b"]));
        check("a,,b", None);
        check("\"open", None);
        check("a,", None);
    }

    #[test]
    fn custom_names() {
        for (n, ok) in [
            ("myext.setting", true),
            ("a.b.c", true),
            ("_x.y$1", true),
            ("noext", false),
            ("a.", false),
            (".a", false),
            ("a.1b", false),
            ("a-b.c", false),
        ] {
            assert_eq!(valid_custom_name(n), ok, "{n}");
        }
    }

    #[test]
    fn table_is_sane() {
        use std::collections::HashSet;
        let mut seen = HashSet::new();
        for d in DEFS {
            assert!(
                seen.insert(d.name.to_ascii_lowercase()),
                "duplicate {}",
                d.name
            );
            match d.kind {
                Kind::Int { boot, min, max } => {
                    assert!(min <= boot && boot <= max, "{}", d.name);
                    assert!(
                        min >= i32::MIN as i64 && max <= i32::MAX as i64,
                        "{}",
                        d.name
                    );
                }
                Kind::Real { boot, min, max } => assert!(min <= boot && boot <= max, "{}", d.name),
                Kind::Enum { boot, options } => {
                    assert!(options.iter().any(|o| o.name == boot), "{}", d.name)
                }
                Kind::Bool { .. } | Kind::String { .. } => {}
            }
            assert!(!d.short_desc.is_empty(), "{}", d.name);
        }
        for n in tables::IN_EFFECT {
            assert!(Def::find(n).is_some(), "{n}");
        }
        // PostgreSQL 18's default build has well over 350 settings.
        assert!(DEFS.len() > 350, "{}", DEFS.len());
    }
}
