//! Settings: the table of known parameters, value parsing with units, `postgresql.conf` files,
//! and the command line's `-c name=value` (PostgreSQL's guc.c, guc-file.l, guc_tables.c, in
//! the small part a server of this project needs).
//!
//! Precedence follows PostgreSQL: built-in default < configuration file < command line.
//! Names are case-insensitive. Every error carries PostgreSQL's message text.
//!
//! The file parser reads through [`ConfigFiles`]: the file system ([`parse_config_file`]), or
//! another store ([`parse_config_file_from`]), as the fuzz target in `fuzz/` does with files
//! kept in memory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// When a setting may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Computed by the server; never set by the user.
    Internal,
    /// Only at server start.
    Postmaster,
    /// At start and on SIGHUP.
    Sighup,
}

/// A setting's base unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Kilobytes.
    Kb,
    /// Megabytes.
    Mb,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Kb => "kB",
            Unit::Mb => "MB",
            Unit::Ms => "ms",
            Unit::S => "s",
        }
    }

    fn is_memory(self) -> bool {
        matches!(self, Unit::Kb | Unit::Mb)
    }

    /// The base unit's size in bytes (memory) or microseconds (time).
    fn base(self) -> f64 {
        match self {
            Unit::Kb => 1024.0,
            Unit::Mb => 1024.0 * 1024.0,
            Unit::Ms => 1000.0,
            Unit::S => 1_000_000.0,
        }
    }
}

const MEMORY_UNITS: &[(&str, f64)] = &[
    ("B", 1.0),
    ("kB", 1024.0),
    ("MB", 1024.0 * 1024.0),
    ("GB", 1024.0 * 1024.0 * 1024.0),
    ("TB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
];
const TIME_UNITS: &[(&str, f64)] = &[
    ("us", 1.0),
    ("ms", 1000.0),
    ("s", 1_000_000.0),
    ("min", 60_000_000.0),
    ("h", 3_600_000_000.0),
    ("d", 86_400_000_000.0),
];

/// A setting's type and limits.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// on/off.
    Bool,
    /// An integer, optionally with a unit.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
        /// Base unit, if any.
        unit: Option<Unit>,
    },
    /// Free text.
    String,
    /// One of a fixed list of words.
    Enum(&'static [&'static str]),
}

/// One known setting.
#[derive(Debug)]
pub struct Def {
    /// Its name (lower case).
    pub name: &'static str,
    /// Type and limits.
    pub kind: Kind,
    /// Built-in default, as text.
    pub default: &'static str,
    /// When it may change.
    pub context: Context,
    /// One line of description (for the generated postgresql.conf).
    pub description: &'static str,
}

const INT_MAX: i64 = i32::MAX as i64;

/// Every setting this server knows, in the order the default `postgresql.conf` lists them.
pub static DEFS: &[Def] = &[
    Def {
        name: "listen_addresses",
        kind: Kind::String,
        default: "localhost",
        context: Context::Postmaster,
        description: "what IP address(es) to listen on",
    },
    Def {
        name: "port",
        kind: Kind::Int {
            min: 1,
            max: 65535,
            unit: None,
        },
        default: "5432",
        context: Context::Postmaster,
        description: "the TCP port the server listens on",
    },
    Def {
        name: "unix_socket_directories",
        kind: Kind::String,
        default: "/tmp",
        context: Context::Postmaster,
        description: "comma-separated list of directories for Unix-domain sockets",
    },
    Def {
        name: "max_connections",
        kind: Kind::Int {
            min: 1,
            max: 262_143,
            unit: None,
        },
        default: "100",
        context: Context::Postmaster,
        description: "maximum number of concurrent connections",
    },
    Def {
        name: "superuser_reserved_connections",
        kind: Kind::Int {
            min: 0,
            max: 262_143,
            unit: None,
        },
        default: "3",
        context: Context::Postmaster,
        description: "connection slots reserved for superusers",
    },
    Def {
        name: "reserved_connections",
        kind: Kind::Int {
            min: 0,
            max: 262_143,
            unit: None,
        },
        default: "0",
        context: Context::Postmaster,
        description: "connection slots reserved for roles with pg_use_reserved_connections",
    },
    Def {
        name: "max_worker_processes",
        kind: Kind::Int {
            min: 0,
            max: 262_143,
            unit: None,
        },
        default: "8",
        context: Context::Postmaster,
        description: "maximum number of background worker processes",
    },
    Def {
        name: "autovacuum_worker_slots",
        kind: Kind::Int {
            min: 1,
            max: 262_143,
            unit: None,
        },
        default: "16",
        context: Context::Postmaster,
        description: "autovacuum worker slots to allocate",
    },
    Def {
        name: "autovacuum_max_workers",
        kind: Kind::Int {
            min: 1,
            max: 262_143,
            unit: None,
        },
        default: "3",
        context: Context::Sighup,
        description: "maximum number of autovacuum workers running at once",
    },
    Def {
        name: "max_wal_senders",
        kind: Kind::Int {
            min: 0,
            max: 262_143,
            unit: None,
        },
        default: "10",
        context: Context::Postmaster,
        description: "maximum number of WAL sender processes",
    },
    Def {
        name: "max_prepared_transactions",
        kind: Kind::Int {
            min: 0,
            max: 262_143,
            unit: None,
        },
        default: "0",
        context: Context::Postmaster,
        description: "maximum number of prepared transactions",
    },
    Def {
        name: "shared_memory_type",
        kind: Kind::Enum(&["mmap", "memfd"]),
        default: "mmap",
        context: Context::Postmaster,
        description: "the type of shared memory for the main segment",
    },
    Def {
        name: "dynamic_shared_memory_type",
        kind: Kind::Enum(&["posix", "sysv", "mmap"]),
        default: "posix",
        context: Context::Postmaster,
        description: "the dynamic shared memory implementation",
    },
    Def {
        name: "huge_pages",
        kind: Kind::Enum(&["off", "on", "try"]),
        default: "try",
        context: Context::Postmaster,
        description: "use of huge pages for the main segment",
    },
    Def {
        name: "huge_page_size",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
            unit: Some(Unit::Kb),
        },
        default: "0",
        context: Context::Postmaster,
        description: "huge page size to request (0 = system default)",
    },
    Def {
        name: "min_dynamic_shared_memory",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
            unit: Some(Unit::Mb),
        },
        default: "0",
        context: Context::Postmaster,
        description: "dynamic shared memory reserved at startup",
    },
    Def {
        name: "restart_after_crash",
        kind: Kind::Bool,
        default: "on",
        context: Context::Sighup,
        description: "reinitialize the server after a backend crash",
    },
    Def {
        name: "io_workers",
        kind: Kind::Int {
            min: 1,
            max: 32,
            unit: None,
        },
        default: "3",
        context: Context::Sighup,
        description: "number of I/O worker processes",
    },
    Def {
        name: "authentication_timeout",
        kind: Kind::Int {
            min: 1,
            max: 600,
            unit: Some(Unit::S),
        },
        default: "60",
        context: Context::Sighup,
        description: "maximum time to complete client authentication",
    },
    Def {
        name: "log_min_messages",
        kind: Kind::Enum(&[
            "debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error",
            "log", "fatal", "panic",
        ]),
        default: "warning",
        context: Context::Sighup,
        description: "message levels that are logged",
    },
    Def {
        name: "unix_socket_permissions",
        kind: Kind::Int {
            min: 0,
            max: 0o777,
            unit: None,
        },
        default: "0777",
        context: Context::Postmaster,
        description: "access permissions of the Unix-domain sockets (octal)",
    },
    Def {
        name: "checkpoint_timeout",
        kind: Kind::Int {
            min: 30,
            max: 86_400,
            unit: Some(Unit::S),
        },
        default: "300",
        context: Context::Sighup,
        description: "maximum time between automatic checkpoints",
    },
    Def {
        name: "bgwriter_delay",
        kind: Kind::Int {
            min: 10,
            max: 10_000,
            unit: Some(Unit::Ms),
        },
        default: "200",
        context: Context::Sighup,
        description: "background writer sleep time between rounds",
    },
    Def {
        name: "wal_writer_delay",
        kind: Kind::Int {
            min: 1,
            max: 10_000,
            unit: Some(Unit::Ms),
        },
        default: "200",
        context: Context::Sighup,
        description: "time between WAL flushes performed in the WAL writer",
    },
    Def {
        name: "autovacuum",
        kind: Kind::Bool,
        default: "on",
        context: Context::Sighup,
        description: "enable the autovacuum launcher",
    },
    Def {
        name: "autovacuum_naptime",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX / 1000,
            unit: Some(Unit::S),
        },
        default: "60",
        context: Context::Sighup,
        description: "time to sleep between autovacuum runs",
    },
    Def {
        name: "max_parallel_workers",
        kind: Kind::Int {
            min: 0,
            max: 1024,
            unit: None,
        },
        default: "8",
        context: Context::Sighup,
        description: "maximum number of parallel workers that can be active at one time",
    },
    Def {
        name: "send_abort_for_crash",
        kind: Kind::Bool,
        default: "off",
        context: Context::Sighup,
        description: "send SIGABRT instead of SIGQUIT to children after a crash",
    },
    Def {
        name: "send_abort_for_kill",
        kind: Kind::Bool,
        default: "off",
        context: Context::Sighup,
        description: "send SIGABRT instead of SIGKILL to stuck children",
    },
    Def {
        name: "shared_preload_libraries",
        kind: Kind::String,
        default: "",
        context: Context::Postmaster,
        description: "compiled-in libraries to initialise at server start (e.g. pgipc_demo)",
    },
    Def {
        name: "exec_backend",
        kind: Kind::Bool,
        default: "off",
        context: Context::Postmaster,
        description: "start children with fork+exec of this binary (PostgreSQL's EXEC_BACKEND build); forces shared_memory_type = memfd",
    },
    Def {
        name: "shared_memory_size",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
            unit: Some(Unit::Mb),
        },
        default: "0",
        context: Context::Internal,
        description: "size of the main shared memory area, rounded up to the nearest megabyte",
    },
    Def {
        name: "shared_memory_size_in_huge_pages",
        kind: Kind::Int {
            min: -1,
            max: INT_MAX,
            unit: None,
        },
        default: "-1",
        context: Context::Internal,
        description: "number of huge pages needed for the main shared memory area",
    },
    Def {
        name: "num_os_semaphores",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
            unit: None,
        },
        default: "0",
        context: Context::Internal,
        description: "number of semaphores required for the server",
    },
    Def {
        name: "huge_pages_status",
        kind: Kind::Enum(&["off", "on", "unknown"]),
        default: "unknown",
        context: Context::Internal,
        description: "whether huge pages are in use",
    },
    Def {
        name: "data_directory",
        kind: Kind::String,
        default: "",
        context: Context::Internal,
        description: "the server's data directory",
    },
    Def {
        name: "server_version",
        kind: Kind::String,
        default: "18.6 (pgipc)",
        context: Context::Internal,
        description: "the server version",
    },
];

fn find_def(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// An integer in the setting's base unit.
    Int(i64),
    /// Text (strings and enums).
    Text(String),
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A configuration file, at a line.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// `-c name=value` or `--name=value`.
    CommandLine,
    /// Computed by the server.
    Computed,
}

/// Errors of settings handling, with PostgreSQL's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GucError {
    /// Unknown name (SQLSTATE 42704).
    #[error("unrecognized configuration parameter \"{0}\"{1}")]
    Unknown(String, Where),
    /// A value that does not parse (SQLSTATE 22023).
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
    /// A boolean that does not parse (SQLSTATE 22023).
    #[error("parameter \"{0}\" requires a Boolean value{1}")]
    NotBool(String, Where),
    /// An integer outside its range (SQLSTATE 22023).
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
    /// A computed setting given by the user (SQLSTATE 55P02).
    #[error("parameter \"{0}\" cannot be changed{1}")]
    ReadOnly(String, Where),
    /// A syntax error in a file (SQLSTATE 42601).
    #[error("syntax error in file \"{}\" line {line}, near token \"{token}\"", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The token.
        token: String,
    },
    /// A file that cannot be read (SQLSTATE 58P01).
    #[error("could not open configuration file \"{}\": {reason}", file.display())]
    Open {
        /// The file.
        file: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// Includes nested too deeply.
    #[error("could not open configuration file \"{}\": maximum nesting depth exceeded", .0.display())]
    TooDeep(PathBuf),
    /// `-c` without `=` (PostgreSQL: `-c %s requires a value`).
    #[error("-c {0} requires a value")]
    NeedsValue(String),
}

impl GucError {
    /// PostgreSQL's hint for this error.
    pub fn hint(&self) -> Option<&str> {
        match self {
            GucError::Invalid { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

/// Where a value was given, for error texts (empty for the command line).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Where(Option<Box<(PathBuf, usize)>>);

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_deref() {
            Some((p, l)) => write!(f, " in file \"{}\" line {l}", p.display()),
            None => Ok(()),
        }
    }
}

impl From<&Source> for Where {
    fn from(s: &Source) -> Self {
        match s {
            Source::File { path, line } => Where(Some(Box::new((path.clone(), *line)))),
            _ => Where(None),
        }
    }
}

/// Parses a boolean as PostgreSQL's `parse_bool`: on/off, true/false, yes/no, 1/0 and their
/// unambiguous prefixes, case-insensitively.
pub fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return None;
    }
    let starts = |w: &str| w.starts_with(&t);
    match t.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        "on" => Some(true),
        "of" | "off" => Some(false),
        _ if starts("true") => Some(true),
        _ if starts("false") => Some(false),
        _ if starts("yes") => Some(true),
        _ if starts("no") => Some(false),
        _ => None,
    }
}

/// Parses an integer with an optional unit into `unit`'s base, rounding as PostgreSQL does.
fn parse_int(text: &str, unit: Option<Unit>) -> Result<i64, Option<String>> {
    let t = text.trim();
    let split = t
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || ((*c == '-' || *c == '+') && *i == 0)))
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let suffix = suffix.trim();
    // Like strtol with base 0: a leading 0x is hexadecimal, a leading 0 octal.
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).map_err(|_| None);
    }
    if suffix.is_empty() && num.len() > 1 && num.starts_with('0') && !num.contains('.') {
        return i64::from_str_radix(&num[1..], 8).map_err(|_| None);
    }
    let n: f64 = num.parse().map_err(|_| None)?;
    if suffix.is_empty() {
        if num.contains('.') {
            // PostgreSQL rounds a fractional integer setting.
            return Ok(n.round() as i64);
        }
        return num.parse::<i64>().map_err(|_| None);
    }
    let Some(unit) = unit else {
        return Err(None);
    };
    let table = if unit.is_memory() {
        MEMORY_UNITS
    } else {
        TIME_UNITS
    };
    let Some((_, mult)) = table.iter().find(|(name, _)| *name == suffix) else {
        let hint = if unit.is_memory() {
            "Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\"."
        } else {
            "Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\"."
        };
        return Err(Some(hint.to_owned()));
    };
    let v = (n * mult / unit.base()).round();
    if !v.is_finite() || v.abs() > 9.0e18 {
        return Err(None);
    }
    Ok(v as i64)
}

/// Parses `text` as a value of `def`.
pub fn parse_value(def: &Def, text: &str, at: Where) -> Result<Value, GucError> {
    match def.kind {
        Kind::Bool => parse_bool(text)
            .map(Value::Bool)
            .ok_or_else(|| GucError::NotBool(def.name.to_owned(), at)),
        Kind::Int { min, max, unit } => {
            let v = parse_int(text, unit).map_err(|hint| GucError::Invalid {
                name: def.name.to_owned(),
                value: text.to_owned(),
                hint,
                at: at.clone(),
            })?;
            if v < min || v > max {
                let u = unit.map(|u| format!(" {}", u.name())).unwrap_or_default();
                return Err(GucError::OutOfRange {
                    name: def.name.to_owned(),
                    value: format!("{v}{u}"),
                    min: format!("{min}{u}"),
                    max: format!("{max}{u}"),
                    at,
                });
            }
            Ok(Value::Int(v))
        }
        Kind::String => Ok(Value::Text(text.to_owned())),
        Kind::Enum(choices) => choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(text.trim()))
            .map(|c| Value::Text((*c).to_owned()))
            .ok_or_else(|| GucError::Invalid {
                name: def.name.to_owned(),
                value: text.to_owned(),
                hint: Some(format!("Available values: {}.", choices.join(", "))),
                at,
            }),
    }
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<&'static str, (Value, Source)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

impl Settings {
    /// Every setting at its built-in default.
    pub fn new() -> Self {
        let mut values = BTreeMap::new();
        for d in DEFS {
            // The defaults are ours and valid; a failure here is a table bug caught by tests.
            if let Ok(v) = parse_value(d, d.default, Where::default()) {
                values.insert(d.name, (v, Source::Default));
            }
        }
        Settings { values }
    }

    /// Sets `name` from text given by the user at `source`.
    pub fn set(&mut self, name: &str, text: &str, source: Source) -> Result<(), GucError> {
        let at = Where::from(&source);
        let def = find_def(name).ok_or_else(|| GucError::Unknown(name.to_owned(), at.clone()))?;
        if def.context == Context::Internal && source != Source::Computed {
            return Err(GucError::ReadOnly(def.name.to_owned(), at));
        }
        let v = parse_value(def, text, at)?;
        self.values.insert(def.name, (v, source));
        Ok(())
    }

    /// Records a value the server computed.
    pub fn set_computed(&mut self, name: &'static str, v: Value) {
        self.values.insert(name, (v, Source::Computed));
    }

    /// The definition of `name`.
    pub fn def(name: &str) -> Option<&'static Def> {
        find_def(name)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let def = find_def(name)?;
        self.values.get(def.name).map(|(v, _)| v)
    }

    /// Where the value of `name` came from.
    pub fn source(&self, name: &str) -> Option<&Source> {
        let def = find_def(name)?;
        self.values.get(def.name).map(|(_, s)| s)
    }

    /// An integer setting (0 if unknown: callers use names from [`DEFS`]).
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Some(Value::Int(v)) => *v,
            _ => 0,
        }
    }

    /// A boolean setting.
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    /// A string or enum setting.
    pub fn text(&self, name: &str) -> &str {
        match self.get(name) {
            Some(Value::Text(t)) => t,
            _ => "",
        }
    }

    /// The value as `postgres -C` prints it: integers in their base unit without the unit.
    pub fn show(&self, name: &str) -> Result<String, GucError> {
        let v = self
            .get(name)
            .ok_or_else(|| GucError::Unknown(name.to_owned(), Where::default()))?;
        Ok(match v {
            Value::Bool(b) => (if *b { "on" } else { "off" }).to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Text(t) => t.clone(),
        })
    }

    /// Every changeable setting as text, for an exec'd child to start with exactly the
    /// postmaster's values (PostgreSQL's `write_nondefault_variables` for `EXEC_BACKEND`): one
    /// `c|f name=value` line each, `c` for command-line values (which a reload keeps).
    pub fn snapshot(&self) -> String {
        let mut out = String::new();
        for d in DEFS.iter().filter(|d| d.context != Context::Internal) {
            let Ok(v) = self.show(d.name) else { continue };
            if v.contains('\n') {
                continue;
            }
            let tag = match self.source(d.name) {
                Some(Source::CommandLine) => 'c',
                _ => 'f',
            };
            out.push_str(&format!("{tag} {}={v}\n", d.name));
        }
        out
    }

    /// Applies a [`snapshot`](Self::snapshot); `file` is the configuration file the values
    /// stand for. Lines that do not parse are skipped.
    pub fn apply_snapshot(&mut self, snapshot: &str, file: &Path) {
        for line in snapshot.lines() {
            let Some((tag, rest)) = line.split_once(' ') else {
                continue;
            };
            let Some((name, value)) = rest.split_once('=') else {
                continue;
            };
            let source = if tag == "c" {
                Source::CommandLine
            } else {
                Source::File {
                    path: file.to_path_buf(),
                    line: 0,
                }
            };
            let _ = self.set(name, value, source);
        }
    }

    /// Applies every item of `postgresql.conf` (and its includes).
    pub fn apply_file(&mut self, path: &Path) -> Result<(), GucError> {
        for item in parse_config_file(path)? {
            self.set(
                &item.name,
                &item.value,
                Source::File {
                    path: item.file,
                    line: item.line,
                },
            )?;
        }
        Ok(())
    }

    /// Re-reads the file on SIGHUP: applies changed `sighup` settings, skips (and reports) changed
    /// `postmaster` ones, and keeps command-line values. Returns log lines to print.
    pub fn reload(&mut self, path: &Path) -> Result<Vec<String>, GucError> {
        let mut fresh = Settings::new();
        fresh.apply_file(path)?;
        let mut notes = Vec::new();
        for d in DEFS.iter().filter(|d| d.context != Context::Internal) {
            if matches!(self.source(d.name), Some(Source::CommandLine)) {
                continue;
            }
            let (new, src) = fresh.values[d.name].clone();
            if self.values[d.name].0 == new {
                continue;
            }
            if d.context == Context::Sighup {
                notes.push(format!(
                    "parameter \"{}\" changed to \"{}\"",
                    d.name,
                    fresh.show(d.name)?
                ));
                self.values.insert(d.name, (new, src));
            } else {
                notes.push(format!(
                    "parameter \"{}\" cannot be changed without restarting the server",
                    d.name
                ));
            }
        }
        Ok(notes)
    }
}

/// One `name = value` line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigItem {
    /// The setting's name.
    pub name: String,
    /// The value, unquoted.
    pub value: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Its 1-based line.
    pub line: usize,
}

const MAX_INCLUDE_DEPTH: usize = 10;

/// Where the configuration parser reads files from: the file system ([`OsConfigFiles`]) or,
/// for tests and fuzzing, any other store that can hand out a file's text and a directory's
/// entries.
pub trait ConfigFiles {
    /// The text of the file at `path` (an error of kind `NotFound` when there is none).
    fn read(&mut self, path: &Path) -> std::io::Result<String>;
    /// The paths of the entries of the directory `path`, in any order.
    fn list_dir(&mut self, path: &Path) -> std::io::Result<Vec<PathBuf>>;
}

/// [`ConfigFiles`] over the real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsConfigFiles;

impl ConfigFiles for OsConfigFiles {
    fn read(&mut self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn list_dir(&mut self, path: &Path) -> std::io::Result<Vec<PathBuf>> {
        // Entries that cannot be read are skipped.
        Ok(std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect())
    }
}

/// Reads a configuration file in PostgreSQL's format, following `include`, `include_if_exists`
/// and `include_dir`.
pub fn parse_config_file(path: &Path) -> Result<Vec<ConfigItem>, GucError> {
    parse_config_file_from(path, &mut OsConfigFiles)
}

/// [`parse_config_file`] with the file and its includes read from `files`.
pub fn parse_config_file_from(
    path: &Path,
    files: &mut dyn ConfigFiles,
) -> Result<Vec<ConfigItem>, GucError> {
    let mut out = Vec::new();
    parse_file_into(path, 0, true, files, &mut out)?;
    Ok(out)
}

fn parse_file_into(
    path: &Path,
    depth: usize,
    required: bool,
    files: &mut dyn ConfigFiles,
    out: &mut Vec<ConfigItem>,
) -> Result<(), GucError> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(GucError::TooDeep(path.to_path_buf()));
    }
    let text = match files.read(path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(GucError::Open {
                file: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some((name, value)) = parse_line(raw).map_err(|token| GucError::Syntax {
            file: path.to_path_buf(),
            line,
            token,
        })?
        else {
            continue;
        };
        let resolve = |v: &str| {
            let p = Path::new(v);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            }
        };
        match name.to_ascii_lowercase().as_str() {
            "include" => parse_file_into(&resolve(&value), depth + 1, true, files, out)?,
            "include_if_exists" => parse_file_into(&resolve(&value), depth + 1, false, files, out)?,
            "include_dir" => {
                let d = resolve(&value);
                let mut entries: Vec<PathBuf> = files
                    .list_dir(&d)
                    .map_err(|e| GucError::Open {
                        file: d.clone(),
                        reason: e.to_string(),
                    })?
                    .into_iter()
                    .filter(|p| {
                        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        n.ends_with(".conf") && !n.starts_with('.')
                    })
                    .collect();
                entries.sort();
                for f in entries {
                    parse_file_into(&f, depth + 1, true, files, out)?;
                }
            }
            _ => out.push(ConfigItem {
                name,
                value,
                file: path.to_path_buf(),
                line,
            }),
        }
    }
    Ok(())
}

/// Splits one line into `(name, value)`; `Ok(None)` for blank and comment lines; `Err(token)`
/// naming the token where the syntax broke.
fn parse_line(raw: &str) -> Result<Option<(String, String)>, String> {
    let mut chars = raw.chars().peekable();
    let skip_ws = |c: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while c.peek().is_some_and(|ch| ch.is_whitespace()) {
            c.next();
        }
    };
    skip_ws(&mut chars);
    match chars.peek() {
        None | Some('#') => return Ok(None),
        _ => {}
    }
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' {
            name.push(c);
            chars.next();
        } else {
            break;
        }
    }
    if name.is_empty() || !name.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        return Err(chars
            .collect::<String>()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned());
    }
    skip_ws(&mut chars);
    if chars.peek() == Some(&'=') {
        chars.next();
        skip_ws(&mut chars);
    }
    let value = match chars.peek() {
        None | Some('#') => return Err(name),
        Some('\'') => {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("'{v}")),
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        v.push('\'');
                    }
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some('r') => v.push('\r'),
                        Some('b') => v.push('\u{8}'),
                        Some('f') => v.push('\u{c}'),
                        Some(c) => v.push(c),
                        None => return Err(format!("'{v}")),
                    },
                    Some(c) => v.push(c),
                }
            }
            v
        }
        Some(_) => {
            let mut v = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '#' {
                    break;
                }
                v.push(c);
                chars.next();
            }
            v
        }
    };
    skip_ws(&mut chars);
    match chars.peek() {
        None | Some('#') => Ok(Some((name, value))),
        Some(_) => Err(chars
            .collect::<String>()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned()),
    }
}

/// The text of a default `postgresql.conf`: every user setting commented out at its default.
pub fn default_config_file() -> String {
    let mut s = String::from(
        "# pgipc server configuration, in PostgreSQL's postgresql.conf format.\n\
         # Lines are \"name = value\"; '#' starts a comment; units such as kB, MB, s, min work.\n\
         # Settings marked (restart) need a server restart; the others are re-read on SIGHUP.\n\n",
    );
    for d in DEFS.iter().filter(|d| d.context != Context::Internal) {
        let shown = match d.kind {
            Kind::String | Kind::Enum(_) => format!("'{}'", d.default),
            Kind::Int { unit: Some(u), .. } if d.default != "0" => {
                format!("{}{}", d.default, u.name())
            }
            _ => d.default.to_owned(),
        };
        let restart = if d.context == Context::Postmaster {
            " (restart)"
        } else {
            ""
        };
        s.push_str(&format!(
            "#{} = {}\t# {}{}\n",
            d.name, shown, d.description, restart
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, input: &str, expected: Result<&str, &str>) {
        let mut s = Settings::new();
        let got = s
            .set(name, input, Source::CommandLine)
            .map(|_| s.show(name).unwrap());
        match (got, expected) {
            (Ok(v), Ok(e)) => assert_eq!(v, e, "{name} = {input}"),
            (Err(err), Err(e)) => assert_eq!(err.to_string(), e, "{name} = {input}"),
            (got, e) => panic!("{name} = {input}: got {got:?}, expected {e:?}"),
        }
    }

    #[test]
    fn snapshot_round_trips_values_and_sources() {
        let mut a = Settings::new();
        a.set("max_connections", "7", Source::CommandLine).unwrap();
        a.set(
            "bgwriter_delay",
            "300ms",
            Source::File {
                path: "x".into(),
                line: 1,
            },
        )
        .unwrap();
        let mut b = Settings::new();
        b.apply_snapshot(&a.snapshot(), Path::new("postgresql.conf"));
        assert_eq!(b.int("max_connections"), 7);
        assert_eq!(b.int("bgwriter_delay"), 300);
        assert_eq!(b.source("max_connections"), Some(&Source::CommandLine));
        assert!(matches!(
            b.source("bgwriter_delay"),
            Some(Source::File { .. })
        ));
        // Garbage lines are skipped.
        b.apply_snapshot("nonsense\nc nosuch=1\nf port=notanumber\n", Path::new("p"));
        assert_eq!(b.int("port"), 5432);
    }

    #[test]
    fn values() {
        check("max_connections", "50", Ok("50"));
        check("MAX_Connections", " 7 ", Ok("7"));
        check(
            "max_connections",
            "100000000",
            Err("100000000 is outside the valid range for parameter \"max_connections\" (1 .. 262143)"),
        );
        check(
            "max_connections",
            "ten",
            Err("invalid value for parameter \"max_connections\": \"ten\""),
        );
        check("port", "5433", Ok("5433"));
        check("huge_page_size", "2MB", Ok("2048"));
        check("huge_page_size", "1GB", Ok("1048576"));
        check("huge_page_size", "2048", Ok("2048"));
        check(
            "huge_page_size",
            "3 parsecs",
            Err("invalid value for parameter \"huge_page_size\": \"3 parsecs\""),
        );
        check(
            "huge_page_size",
            "-1",
            Err("-1 kB is outside the valid range for parameter \"huge_page_size\" (0 kB .. 2147483647 kB)"),
        );
        check("min_dynamic_shared_memory", "1GB", Ok("1024"));
        check("authentication_timeout", "1min", Ok("60"));
        check("authentication_timeout", "1500ms", Ok("2"));
        check("huge_pages", "TRY", Ok("try"));
        check(
            "huge_pages",
            "maybe",
            Err("invalid value for parameter \"huge_pages\": \"maybe\""),
        );
        check("restart_after_crash", "off", Ok("off"));
        check("restart_after_crash", "y", Ok("on"));
        check("restart_after_crash", "0", Ok("off"));
        check(
            "restart_after_crash",
            "o",
            Err("parameter \"restart_after_crash\" requires a Boolean value"),
        );
        check(
            "no_such_thing",
            "1",
            Err("unrecognized configuration parameter \"no_such_thing\""),
        );
        check(
            "shared_memory_size",
            "1",
            Err("parameter \"shared_memory_size\" cannot be changed"),
        );
        check("listen_addresses", "*", Ok("*"));
    }

    #[test]
    fn hints() {
        let mut s = Settings::new();
        let e = s
            .set("huge_pages", "sometimes", Source::CommandLine)
            .unwrap_err();
        assert_eq!(e.hint(), Some("Available values: off, on, try."));
        let e = s
            .set("huge_page_size", "4 XB", Source::CommandLine)
            .unwrap_err();
        assert_eq!(
            e.hint(),
            Some("Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".")
        );
    }

    #[test]
    fn lines() {
        let ok = |l: &str, n: &str, v: &str| {
            assert_eq!(parse_line(l), Ok(Some((n.to_owned(), v.to_owned()))), "{l}")
        };
        ok("port = 5433", "port", "5433");
        ok("port 5433", "port", "5433");
        ok("  port=5433   # the port", "port", "5433");
        ok("listen_addresses = '*'", "listen_addresses", "*");
        ok("x = 'it''s'", "x", "it's");
        ok(r"x = 'a\'b'", "x", "a'b");
        ok("x = 'has # hash'", "x", "has # hash");
        ok("huge_page_size = 2MB", "huge_page_size", "2MB");
        assert_eq!(parse_line("   # comment"), Ok(None));
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("port = 1 2"), Err("2".into()));
        assert_eq!(parse_line("x = 'open"), Err("'open".into()));
        assert_eq!(parse_line("port ="), Err("port".into()));
        assert_eq!(parse_line("= 3"), Err("=".into()));
    }

    #[test]
    fn files_with_includes_and_errors() {
        let dir = std::env::temp_dir().join(format!("pgipc-guc-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::write(
            dir.join("postgresql.conf"),
            "port = 6000\ninclude 'extra.conf'\ninclude_if_exists 'missing.conf'\ninclude_dir 'conf.d'\n",
        )
        .unwrap();
        std::fs::write(dir.join("extra.conf"), "max_connections = 20\n").unwrap();
        std::fs::write(dir.join("conf.d/01.conf"), "port = 6001\n").unwrap();
        let mut s = Settings::new();
        s.apply_file(&dir.join("postgresql.conf")).unwrap();
        assert_eq!((s.int("port"), s.int("max_connections")), (6001, 20));
        assert!(matches!(
            s.source("port"),
            Some(Source::File { line: 1, .. })
        ));

        std::fs::write(dir.join("bad.conf"), "port = 1\nbogus_setting = 3\n").unwrap();
        let e = Settings::new()
            .apply_file(&dir.join("bad.conf"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "unrecognized configuration parameter \"bogus_setting\" in file \"{}\" line 2",
                dir.join("bad.conf").display()
            )
        );
        std::fs::write(dir.join("syntax.conf"), "port = = 1\n").unwrap();
        let e = Settings::new()
            .apply_file(&dir.join("syntax.conf"))
            .unwrap_err();
        assert!(e.to_string().starts_with("syntax error in file"), "{e}");

        // Reload: a sighup setting changes, a postmaster one is reported and kept.
        std::fs::write(
            dir.join("r.conf"),
            "restart_after_crash = on\nport = 7000\n",
        )
        .unwrap();
        let mut s = Settings::new();
        s.apply_file(&dir.join("r.conf")).unwrap();
        std::fs::write(
            dir.join("r.conf"),
            "restart_after_crash = off\nport = 7001\n",
        )
        .unwrap();
        let notes = s.reload(&dir.join("r.conf")).unwrap();
        assert!(!s.bool("restart_after_crash"));
        assert_eq!(s.int("port"), 7000);
        assert!(notes
            .iter()
            .any(|n| n.contains("\"port\" cannot be changed without restarting")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Files kept in memory, for [`parse_config_file_from`].
    struct MemFiles(Vec<(&'static str, &'static str)>);

    impl ConfigFiles for MemFiles {
        fn read(&mut self, path: &Path) -> std::io::Result<String> {
            self.0
                .iter()
                .find(|(p, _)| Path::new(p) == path)
                .map(|(_, t)| (*t).to_owned())
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        }

        fn list_dir(&mut self, path: &Path) -> std::io::Result<Vec<PathBuf>> {
            Ok(self
                .0
                .iter()
                .map(|(p, _)| PathBuf::from(p))
                .filter(|p| p.parent() == Some(path))
                .collect())
        }
    }

    #[test]
    fn files_from_another_store() {
        let mut files = MemFiles(vec![
            (
                "/d/postgresql.conf",
                "port = 1\ninclude_dir 'conf.d'\ninclude_if_exists 'none.conf'\nport = 4\n",
            ),
            ("/d/conf.d/b.conf", "port = 3\n"),
            ("/d/conf.d/a.conf", "port = 2\ninclude '/d/x.conf'\n"),
            ("/d/conf.d/.c.conf", "port = 9\n"),
            ("/d/conf.d/d.txt", "port = 9\n"),
            ("/d/x.conf", "max_connections = 5\n"),
        ]);
        let items = parse_config_file_from(Path::new("/d/postgresql.conf"), &mut files).unwrap();
        let got: Vec<(&str, &str, usize)> = items
            .iter()
            .map(|i| (i.file.to_str().unwrap(), i.value.as_str(), i.line))
            .collect();
        // include_dir sorts the listing and skips hidden and non-.conf files; an absolute
        // include is taken as it is.
        assert_eq!(
            got,
            [
                ("/d/postgresql.conf", "1", 1),
                ("/d/conf.d/a.conf", "2", 1),
                ("/d/x.conf", "5", 1),
                ("/d/conf.d/b.conf", "3", 1),
                ("/d/postgresql.conf", "4", 4),
            ]
        );
        // A cycle ends at the nesting limit.
        let mut cycle = MemFiles(vec![("/c/a.conf", "include 'a.conf'\n")]);
        assert!(matches!(
            parse_config_file_from(Path::new("/c/a.conf"), &mut cycle),
            Err(GucError::TooDeep(_))
        ));
    }

    #[test]
    fn default_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("pgipc-guc-def-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("postgresql.conf");
        // Uncomment every line: each default must parse back to itself.
        let text: String = default_config_file()
            .lines()
            .filter_map(|l| {
                l.strip_prefix('#')
                    .filter(|r| r.starts_with(|c: char| c.is_ascii_lowercase()))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&p, text).unwrap();
        let mut s = Settings::new();
        s.apply_file(&p).unwrap();
        for d in DEFS.iter().filter(|d| d.context != Context::Internal) {
            assert_eq!(s.get(d.name), Settings::new().get(d.name), "{}", d.name);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
