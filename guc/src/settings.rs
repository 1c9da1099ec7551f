//! One process's settings: values with sources, PostgreSQL's `set_config_option` rules, the
//! transaction stack, `SHOW`, reload, the exec snapshot and `ParameterStatus` tracking.

use crate::conffile_impl::parse_config_file;
use crate::flags::*;
use crate::units::{fmt_g, format_int, format_real, parse_int, parse_real};
use crate::{
    parse_bool, tables, valid_custom_name, Context, Def, GucError, Kind, Source, Value, Where,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod file_settings;
pub use file_settings::FileSettingRow;

/// What a `SET` does at transaction end (PostgreSQL's `GucAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `SET`: kept at commit, undone at rollback.
    Set,
    /// `SET LOCAL`: undone at the end of the transaction either way.
    Local,
    /// A function's `SET` clause: undone when the nest level pops.
    Save,
}

/// A setting's name or look-up key: borrowed from the table for its settings, so that
/// cloning a `Settings` (once per child process) copies no names.
type Name = std::borrow::Cow<'static, str>;

/// A configuration-file location.
type Loc = Option<(PathBuf, u32)>;

/// How [`Settings::set_config_option`] sets a value.
#[derive(Debug, Clone, Copy)]
pub struct SetOptions<'a> {
    /// Who is setting it: [`Context::User`] or [`Context::Superuser`] for SQL,
    /// [`Context::Postmaster`] at start, [`Context::Sighup`] on reload, [`Context::Internal`]
    /// for the server's own values.
    pub context: Context,
    /// Where the value comes from.
    pub source: Source,
    /// What happens to it at transaction end.
    pub action: Action,
    /// The configuration-file line, for [`Source::File`].
    pub location: Option<(&'a Path, u32)>,
}

/// One argument of `SET name TO a, b, ...` as the parser saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetArg<'a> {
    /// A quoted string literal or a bare identifier.
    Text(&'a str),
    /// A number.
    Number(&'a str),
}

/// Turns the arguments of `SET name TO ...` into the one value string (PostgreSQL's
/// `flatten_set_variable_args`): list settings join their elements with ", " (quoting text
/// elements as identifiers where the list quotes), other settings take exactly one argument.
pub fn flatten_set_args(name: &str, args: &[SetArg<'_>]) -> Result<String, GucError> {
    let flags = Def::find(name).map_or(0, |d| d.flags);
    if args.len() > 1 && flags & LIST_INPUT == 0 {
        return Err(GucError::TooManyArgs(name.to_owned()));
    }
    let parts: Vec<String> = args
        .iter()
        .map(|a| match a {
            SetArg::Number(n) => (*n).to_owned(),
            SetArg::Text(t) if flags & LIST_QUOTE != 0 => quote_identifier(t),
            SetArg::Text(t) => (*t).to_owned(),
        })
        .collect();
    Ok(parts.join(", "))
}

/// PostgreSQL's `quote_identifier`, without its keyword list: double quotes unless the name is
/// lower-case letters, digits and underscores not starting with a digit.
pub fn quote_identifier(ident: &str) -> String {
    let plain = ident
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        ident.to_owned()
    } else {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Saved {
    value: Value,
    source: Source,
    scontext: Context,
    loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackState {
    Save,
    Set,
    Local,
    SetLocal,
}

#[derive(Debug, Clone, PartialEq)]
struct StackEntry {
    nest_level: u32,
    state: StackState,
    prior: Saved,
    masked: Option<Saved>,
}

/// The placeholder row every custom setting (`myext.setting`) shares.
static PLACEHOLDER: Def = Def {
    name: "",
    context: Context::User,
    group: tables::CUSTOM_OPTIONS,
    short_desc: "GUC placeholder variable",
    long_desc: "",
    flags: NO_SHOW_ALL | NOT_IN_SAMPLE | CUSTOM_PLACEHOLDER,
    kind: Kind::String { boot: "" },
};

#[derive(Debug, Clone, PartialEq)]
struct Var {
    name: Name,
    def: &'static Def,
    cur: Saved,
    reset: Saved,
    stack: Vec<StackEntry>,
    pending_restart: bool,
}

/// Result of one `set_option`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    NotApplied,
    /// A postmaster-context value changed in the file at reload.
    PendingRestart,
}

/// One row of `SHOW ALL`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShowAllRow {
    /// The name.
    pub name: String,
    /// The value as `SHOW` prints it.
    pub setting: String,
    /// The short description (with pgipc's note for settings without effect).
    pub description: String,
}

/// One row of the `pg_settings` view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PgSettingsRow {
    /// `name`.
    pub name: String,
    /// `setting`: the value in the base unit, without unit.
    pub setting: String,
    /// `unit`.
    pub unit: Option<String>,
    /// `category`.
    pub category: String,
    /// `short_desc`.
    pub short_desc: String,
    /// `extra_desc`.
    pub extra_desc: Option<String>,
    /// `context`.
    pub context: String,
    /// `vartype`.
    pub vartype: String,
    /// `source`.
    pub source: String,
    /// `min_val`.
    pub min_val: Option<String>,
    /// `max_val`.
    pub max_val: Option<String>,
    /// `enumvals`.
    pub enumvals: Option<Vec<String>>,
    /// `boot_val`.
    pub boot_val: Option<String>,
    /// `reset_val`.
    pub reset_val: Option<String>,
    /// `sourcefile`.
    pub sourcefile: Option<String>,
    /// `sourceline`.
    pub sourceline: Option<u32>,
    /// `pending_restart`.
    pub pending_restart: bool,
}

/// What a reload did (PostgreSQL's `ProcessConfigFile`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReloadReport {
    /// Errors (with file and line); when any, nothing was applied.
    pub errors: Vec<GucError>,
    /// Lines to log: `parameter "x" changed to "y"`, `parameter "x" removed from configuration
    /// file, reset to default`.
    pub changes: Vec<String>,
    /// Postmaster-context settings changed (or removed) in the file: `parameter "x" cannot be
    /// changed without restarting the server`; they are marked `pending_restart`.
    pub restart_needed: Vec<String>,
}

impl ReloadReport {
    /// Whether the file's values were applied.
    pub fn applied(&self) -> bool {
        self.errors.is_empty()
    }

    /// The closing line PostgreSQL logs when something was wrong, if any.
    pub fn summary(&self, file: &Path) -> Option<String> {
        if !self.errors.is_empty() {
            Some(format!(
                "configuration file \"{}\" contains errors; no changes were applied",
                file.display()
            ))
        } else if !self.restart_needed.is_empty() {
            Some(format!(
                "configuration file \"{}\" contains errors; unaffected changes were applied",
                file.display()
            ))
        } else {
            None
        }
    }

    /// Every line to log, in PostgreSQL's order (errors, restart notes, changes, summary).
    pub fn log_lines(&self, file: &Path) -> Vec<String> {
        let mut out: Vec<String> = self.errors.iter().map(|e| e.to_string()).collect();
        out.extend(self.restart_needed.iter().cloned());
        out.extend(self.changes.iter().cloned());
        out.extend(self.summary(file));
        out
    }
}

/// One non-default value, as an exec'd child receives it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotEntry {
    /// The name.
    pub name: String,
    /// The value.
    pub value: Value,
    /// Its source.
    pub source: Source,
    /// The context it was set in.
    pub scontext: Context,
    /// The file and line, for file values.
    pub location: Option<(PathBuf, u32)>,
}

/// Every non-default value of a process (PostgreSQL's `write_nondefault_variables`), for an
/// exec'd child to start with exactly its parent's settings.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// The values.
    pub entries: Vec<SnapshotEntry>,
}

/// The variables by look-up key (lower case, current names).
type Table = BTreeMap<Name, Var>;

/// The settings of one process.
///
/// Cloning is cheap and so is dropping a clone, because a backend clones the postmaster's
/// settings at every connection: the variables sit in a `base` table that clones share, and a
/// clone that changes a variable while the base is shared copies that one variable into its
/// own `changed` table (copy-on-write per variable), which hides the base's row from then on.
/// A `Settings` that holds the only reference to its base (the postmaster's, or one never
/// cloned) changes the base in place. Values only ever move between the two tables of one
/// `Settings`: what one clone sets, resets or reloads is never seen by another. The
/// ParameterStatus state (`reported`) is the session's own and starts empty in the postmaster.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The shared variables: a clone starts with its original's, then reads through it.
    base: Arc<Table>,
    /// The variables this `Settings` changed while `base` was shared; they hide the base's.
    changed: Table,
    nest_level: u32,
    under_postmaster: bool,
    reported: BTreeMap<&'static str, String>,
    /// Bumped by every change to a variable ([`generation`](Self::generation)).
    generation: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

fn key(name: &str) -> String {
    let k = name.to_ascii_lowercase();
    match tables::OLD_NAMES.iter().find(|(old, _)| *old == k) {
        Some((_, new)) => new.to_ascii_lowercase(),
        None => k,
    }
}

fn boot_value(def: &Def) -> Value {
    match def.kind {
        Kind::Bool { boot } => Value::Bool(boot),
        Kind::Int { boot, .. } => Value::Int(boot),
        Kind::Real { boot, .. } => Value::Real(boot),
        Kind::String { boot } | Kind::Enum { boot, .. } => Value::Text(boot.to_owned()),
    }
}

/// The value as text: with units (`SHOW`) or in the base unit (`pg_settings.setting`, `-C`).
fn format_value(def: &Def, v: &Value, units: bool) -> String {
    match v {
        Value::Bool(b) => (if *b { "on" } else { "off" }).to_owned(),
        // Only SHOW uses the show hook; `-C` and `pg_settings.setting` print the number.
        Value::Int(i) if units && def.flags & SHOW_OCTAL != 0 => format!("{i:04o}"),
        Value::Int(i) if units => format_int(*i, def.flags),
        Value::Int(i) => i.to_string(),
        Value::Real(r) if units => format_real(*r, def.flags),
        Value::Real(r) => fmt_g(*r),
        Value::Text(t) => t.clone(),
    }
}

/// Parses `text` as a value of `def` (PostgreSQL's `parse_and_validate_value`).
pub(crate) fn parse_value(
    def: &Def,
    name: &str,
    text: &str,
    at: &Where,
) -> Result<Value, GucError> {
    let invalid = |hint: Option<String>| GucError::Invalid {
        name: name.to_owned(),
        value: text.to_owned(),
        hint,
        at: at.clone(),
    };
    let unit = def.unit_name().map(|u| format!(" {u}")).unwrap_or_default();
    match def.kind {
        Kind::Bool { boot } => {
            let v =
                parse_bool(text).ok_or_else(|| GucError::NotBool(name.to_owned(), at.clone()))?;
            if def.flags & ONLY_BOOT != 0 && v != boot {
                return Err(GucError::NotSupported(
                    "tables declared WITH OIDS are not supported".into(),
                ));
            }
            Ok(Value::Bool(v))
        }
        Kind::Int { min, max, .. } => {
            let v = parse_int(text, def.flags).map_err(|h| invalid(h.map(str::to_owned)))?;
            if v < min || v > max {
                return Err(GucError::OutOfRange {
                    name: name.to_owned(),
                    value: format!("{v}{unit}"),
                    min: format!("{min}{unit}"),
                    max: format!("{max}{unit}"),
                    at: at.clone(),
                });
            }
            Ok(Value::Int(v))
        }
        Kind::Real { min, max, .. } => {
            let v = parse_real(text, def.flags).map_err(|h| invalid(h.map(str::to_owned)))?;
            if v < min || v > max {
                return Err(GucError::OutOfRange {
                    name: name.to_owned(),
                    value: format!("{}{unit}", fmt_g(v)),
                    min: format!("{}{unit}", fmt_g(min)),
                    max: format!("{}{unit}", fmt_g(max)),
                    at: at.clone(),
                });
            }
            Ok(Value::Real(v))
        }
        Kind::String { .. } => {
            let mut t = text.to_owned();
            if def.flags & IS_NAME != 0 && t.len() > 63 {
                let mut n = 63;
                while !t.is_char_boundary(n) {
                    n -= 1;
                }
                t.truncate(n);
            }
            Ok(Value::Text(t))
        }
        Kind::Enum { options, .. } => options
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(text))
            .map(|o| Value::Text(o.shows_as.to_owned()))
            .ok_or_else(|| {
                let shown: Vec<&str> = options
                    .iter()
                    .filter(|o| !o.hidden)
                    .map(|o| o.name)
                    .collect();
                invalid(Some(format!("Available values: {}.", shown.join(", "))))
            }),
    }
}

fn where_of(loc: &Loc) -> Where {
    match loc {
        Some((p, l)) => Where::file(p, *l),
        None => Where::default(),
    }
}

impl Settings {
    /// Every setting at its boot value (PostgreSQL's `InitializeGUCOptions`), as the postmaster
    /// starts.
    pub fn new() -> Self {
        let mut vars = BTreeMap::new();
        for def in crate::DEFS {
            let cur = Saved {
                value: boot_value(def),
                source: Source::Default,
                scontext: Context::Internal,
                loc: None,
            };
            let key = if def.name.bytes().any(|b| b.is_ascii_uppercase()) {
                Name::Owned(def.name.to_ascii_lowercase())
            } else {
                Name::Borrowed(def.name)
            };
            vars.insert(
                key,
                Var {
                    name: Name::Borrowed(def.name),
                    def,
                    reset: cur.clone(),
                    cur,
                    stack: Vec::new(),
                    pending_restart: false,
                },
            );
        }
        let mut s = Settings {
            base: Arc::new(vars),
            changed: Table::new(),
            nest_level: 0,
            under_postmaster: false,
            reported: BTreeMap::new(),
            generation: 0,
        };
        // PostgreSQL raises max_stack_depth from its boot value to what the stack limit allows
        // (2MB on a default Linux stack of 8MB).
        let _ = s.set_computed("max_stack_depth", "2048");
        s
    }

    /// Marks these settings as a child's (PostgreSQL's `IsUnderPostmaster`): on reload, a
    /// changed backend-context value is left for new sessions.
    pub fn set_under_postmaster(&mut self, yes: bool) {
        self.under_postmaster = yes;
    }

    fn lookup(&self, name: &str) -> Option<&Var> {
        // Callers mostly pass the canonical lower-case name: find it without building a key.
        // A lower-case old name (`sort_mem`) is not in the table and takes the slow path.
        if !name.bytes().any(|b| b.is_ascii_uppercase()) {
            if let Some(v) = self.var(name) {
                return Some(v);
            }
        }
        self.var(key(name).as_str())
    }

    /// The variable under look-up key `k`: this `Settings`' own copy if it changed it, else
    /// the shared base's.
    fn var(&self, k: &str) -> Option<&Var> {
        self.changed.get(k).or_else(|| self.base.get(k))
    }

    /// The variable under `k`, to change: in the base if this `Settings` is its only holder
    /// (folding its own copies back first), else this `Settings`' own copy, made on first
    /// change.
    fn var_mut(&mut self, k: &str) -> Option<&mut Var> {
        self.generation += 1;
        if Arc::get_mut(&mut self.base).is_none() {
            if !self.changed.contains_key(k) {
                let (name, var) = self.base.get_key_value(k)?;
                self.changed.insert(name.clone(), var.clone());
            }
            return self.changed.get_mut(k);
        }
        // Sole holder: make_mut does not copy.
        let base = Arc::make_mut(&mut self.base);
        base.append(&mut self.changed);
        base.get_mut(k)
    }

    /// Adds a variable (a placeholder) where [`var_mut`](Self::var_mut) would change it.
    fn insert_var(&mut self, k: Name, var: Var) {
        self.generation += 1;
        match Arc::get_mut(&mut self.base) {
            Some(base) => {
                base.append(&mut self.changed);
                base.insert(k, var);
            }
            None => {
                self.changed.insert(k, var);
            }
        }
    }

    /// Every variable with its key, in key order: own copies in place of the base's rows.
    fn vars(&self) -> impl Iterator<Item = (&Name, &Var)> {
        let mut base = self.base.iter().peekable();
        let mut own = self.changed.iter().peekable();
        std::iter::from_fn(move || match (base.peek(), own.peek()) {
            (Some((bk, _)), Some((ok, _))) => match bk.cmp(ok) {
                std::cmp::Ordering::Less => base.next(),
                std::cmp::Ordering::Greater => own.next(),
                std::cmp::Ordering::Equal => {
                    base.next();
                    own.next()
                }
            },
            (Some(_), None) => base.next(),
            (None, Some(_)) => own.next(),
            (None, None) => None,
        })
    }

    /// The keys of the variables `pred` picks, for a pass that changes them.
    fn keys_where(&self, pred: impl Fn(&Var) -> bool) -> Vec<Name> {
        self.vars()
            .filter(|(_, v)| pred(v))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The general entry point (PostgreSQL's `set_config_option`): sets `name` to `value` (or
    /// to its reset value for `None`) as `context` may, from `source`.
    #[allow(clippy::too_many_arguments)]
    fn set_option(
        &mut self,
        name: &str,
        value: Option<&str>,
        context: Context,
        source: Source,
        action: Action,
        loc: Loc,
        mut change_val: bool,
    ) -> Result<Outcome, GucError> {
        let at = where_of(&loc);
        let k = key(name);
        if self.var(k.as_str()).is_none() {
            if !name.contains('.') {
                return Err(GucError::Unknown(name.to_owned(), at));
            }
            if !valid_custom_name(name) {
                return Err(GucError::InvalidName(name.to_owned()));
            }
            let cur = Saved {
                value: Value::Text(String::new()),
                source: Source::Default,
                scontext: Context::Internal,
                loc: None,
            };
            self.insert_var(
                Name::Owned(k.clone()),
                Var {
                    name: Name::Owned(name.to_owned()),
                    def: &PLACEHOLDER,
                    reset: cur.clone(),
                    cur,
                    stack: Vec::new(),
                    pending_restart: false,
                },
            );
        }
        let under_postmaster = self.under_postmaster;
        let nest_level = self.nest_level;
        // Checks read the variable; only a change takes it for writing (a copy of its own once
        // the base is shared).
        let Some(var) = self.var(k.as_str()) else {
            return Err(GucError::Unknown(name.to_owned(), at));
        };
        let def = var.def;
        let vname = var.name.to_string();
        let mut prohibit_change = false;
        match def.context {
            Context::Internal => {
                if context != Context::Internal {
                    return Err(GucError::ReadOnly(vname, at));
                }
            }
            Context::Postmaster => {
                if context == Context::Sighup {
                    prohibit_change = true;
                } else if context != Context::Postmaster {
                    return Err(GucError::NeedsRestart(vname, at));
                }
            }
            Context::Sighup => {
                if context != Context::Sighup && context != Context::Postmaster {
                    return Err(GucError::NotNow(vname));
                }
            }
            Context::SuBackend | Context::Backend => {
                if def.context == Context::SuBackend && context == Context::Backend {
                    return Err(GucError::PermissionDenied(vname));
                }
                if context == Context::Sighup {
                    if under_postmaster {
                        return Ok(Outcome::NotApplied);
                    }
                } else if !matches!(
                    context,
                    Context::Postmaster | Context::Backend | Context::SuBackend
                ) && source != Source::Client
                {
                    return Err(GucError::AfterConnectionStart(vname));
                }
            }
            Context::Superuser => {
                if matches!(context, Context::User | Context::Backend) {
                    return Err(GucError::PermissionDenied(vname));
                }
            }
            Context::User => {}
        }
        if source == Source::File && def.flags & DISALLOW_IN_FILE != 0 {
            return Err(GucError::ReadOnly(vname, at));
        }
        let make_default = change_val
            && source <= Source::Override
            && (value.is_some() || source == Source::Default);
        if var.cur.source > source {
            if change_val && !make_default {
                return Ok(Outcome::NotApplied);
            }
            change_val = false;
        }
        let new = match value {
            Some(text) => Saved {
                value: parse_value(def, &vname, text, &at)?,
                source,
                scontext: context,
                loc,
            },
            None if source == Source::Default => Saved {
                value: boot_value(def),
                source,
                scontext: context,
                loc: None,
            },
            None => var.reset.clone(),
        };
        if prohibit_change {
            let differs = var.cur.value != new.value;
            if differs || var.pending_restart {
                if let Some(var) = self.var_mut(k.as_str()) {
                    var.pending_restart = differs;
                }
            }
            return Ok(if differs {
                Outcome::PendingRestart
            } else {
                Outcome::NotApplied
            });
        }
        if !change_val && !make_default {
            return Ok(Outcome::NotApplied);
        }
        let Some(var) = self.var_mut(k.as_str()) else {
            return Err(GucError::Unknown(name.to_owned(), at));
        };
        if change_val {
            if !make_default {
                push_old_value(var, action, nest_level);
            }
            var.cur = new.clone();
        }
        if make_default {
            if var.reset.source <= new.source {
                var.reset = new.clone();
            }
            for e in var.stack.iter_mut() {
                if e.prior.source <= new.source {
                    e.prior = new.clone();
                }
            }
        }
        Ok(if change_val {
            Outcome::Applied
        } else {
            Outcome::NotApplied
        })
    }

    /// PostgreSQL's `set_config_option` for callers that need its full form: `value` `None`
    /// means the reset value (or the boot value with [`Source::Default`]). Returns whether the
    /// current value changed (`false`: a higher-priority source holds it, or a child ignored a
    /// backend-context value on reload).
    pub fn set_config_option(
        &mut self,
        name: &str,
        value: Option<&str>,
        opts: SetOptions<'_>,
    ) -> Result<bool, GucError> {
        let loc = opts.location.map(|(p, l)| (p.to_path_buf(), l));
        match self.set_option(
            name,
            value,
            opts.context,
            opts.source,
            opts.action,
            loc,
            true,
        )? {
            Outcome::Applied => Ok(true),
            Outcome::NotApplied => Ok(false),
            Outcome::PendingRestart => {
                Err(GucError::NeedsRestart(name.to_owned(), Where::default()))
            }
        }
    }

    /// Sets `name` at server start from `source` (command line, file, environment): PostgreSQL's
    /// `SetConfigOption(name, value, PGC_POSTMASTER, source)`. A value from a lower-priority
    /// source than the current one is ignored, as in PostgreSQL.
    pub fn set(&mut self, name: &str, value: &str, source: Source) -> Result<(), GucError> {
        self.set_option(
            name,
            Some(value),
            Context::Postmaster,
            source,
            Action::Set,
            None,
            true,
        )
        .map(|_| ())
    }

    /// Sets a value the server computed (`shared_memory_size`, `server_encoding`, ...): source
    /// "default", as PostgreSQL's `PGC_S_DYNAMIC_DEFAULT`.
    pub fn set_computed(&mut self, name: &str, value: &str) -> Result<(), GucError> {
        self.set_forced(name, value, Source::DynamicDefault)
    }

    /// Forces a value over any file or command-line one (PostgreSQL's `PGC_S_OVERRIDE`, e.g.
    /// `data_directory`, or `shared_memory_type = memfd` in exec mode).
    pub fn set_override(&mut self, name: &str, value: &str) -> Result<(), GucError> {
        self.set_forced(name, value, Source::Override)
    }

    fn set_forced(&mut self, name: &str, value: &str, source: Source) -> Result<(), GucError> {
        let context = match self.lookup(name).map(|v| v.def.context) {
            Some(Context::Internal) => Context::Internal,
            _ => Context::Postmaster,
        };
        self.set_option(name, Some(value), context, source, Action::Set, None, true)
            .map(|_| ())
    }

    /// SQL `SET name = value` (or `SET LOCAL` with `local`), by a superuser or not.
    pub fn set_session(
        &mut self,
        name: &str,
        value: &str,
        superuser: bool,
        local: bool,
    ) -> Result<(), GucError> {
        let context = if superuser {
            Context::Superuser
        } else {
            Context::User
        };
        let action = if local { Action::Local } else { Action::Set };
        self.set_option(
            name,
            Some(value),
            context,
            Source::Session,
            action,
            None,
            true,
        )
        .map(|_| ())
    }

    /// A setting from the client's startup packet (source "client", context backend or
    /// superuser-backend).
    pub fn set_client(&mut self, name: &str, value: &str, superuser: bool) -> Result<(), GucError> {
        let context = if superuser {
            Context::SuBackend
        } else {
            Context::Backend
        };
        self.set_option(
            name,
            Some(value),
            context,
            Source::Client,
            Action::Set,
            None,
            true,
        )
        .map(|_| ())
    }

    /// SQL `RESET name` (and `SET name TO DEFAULT`).
    pub fn reset(&mut self, name: &str, superuser: bool) -> Result<(), GucError> {
        if let Some(v) = self.lookup(name) {
            if v.def.flags & NO_RESET != 0 {
                return Err(GucError::CannotReset(v.name.to_string()));
            }
        }
        let context = if superuser {
            Context::Superuser
        } else {
            Context::User
        };
        self.set_option(
            name,
            None,
            context,
            Source::Session,
            Action::Set,
            None,
            true,
        )
        .map(|_| ())
    }

    /// SQL `RESET ALL` (PostgreSQL's `ResetAllOptions`): every user/superuser setting the
    /// session changed goes back to its reset value, transactionally.
    pub fn reset_all(&mut self) {
        let level = self.nest_level;
        let keys = self.keys_where(|var| {
            matches!(var.def.context, Context::User | Context::Superuser)
                && var.def.flags & NO_RESET_ALL == 0
                && var.cur.source > Source::Override
        });
        for k in keys {
            if let Some(var) = self.var_mut(&k) {
                push_old_value(var, Action::Set, level);
                var.cur = var.reset.clone();
            }
        }
    }

    // ---- transactions ------------------------------------------------------------------------

    /// Transaction start (PostgreSQL's `AtStart_GUC`): nest level 1.
    pub fn start_transaction(&mut self) {
        self.nest_level = 1;
    }

    /// A new nest level (a savepoint, or a function with `SET` clauses); returns it for
    /// [`at_eoxact`](Self::at_eoxact).
    pub fn new_nest_level(&mut self) -> u32 {
        self.nest_level += 1;
        self.nest_level
    }

    /// The current nest level (0 outside a transaction).
    pub fn nest_level(&self) -> u32 {
        self.nest_level
    }

    /// End of the nest level `level` (PostgreSQL's `AtEOXact_GUC`): at commit `SET`s stay and
    /// `SET LOCAL`s end; at abort everything set at this level or above is undone.
    pub fn at_eoxact(&mut self, commit: bool, level: u32) {
        let level = level.max(1);
        let keys = self.keys_where(|var| var.stack.last().is_some_and(|t| t.nest_level >= level));
        for k in keys {
            let Some(var) = self.var_mut(&k) else {
                continue;
            };
            while let Some(top) = var.stack.last() {
                if top.nest_level < level {
                    break;
                }
                let Some(entry) = var.stack.pop() else { break };
                let prev_level = var.stack.last().map(|p| p.nest_level);
                let mut restore: Option<Saved> = None;
                if !commit || entry.state == StackState::Save {
                    restore = Some(entry.prior);
                } else if entry.nest_level == 1 {
                    match entry.state {
                        StackState::SetLocal => restore = entry.masked,
                        StackState::Set => {}
                        StackState::Local | StackState::Save => restore = Some(entry.prior),
                    }
                } else if prev_level.is_none_or(|p| p + 1 < level) {
                    // Commit of a subtransaction with nothing below to merge into: the entry
                    // moves down a level.
                    let mut e = entry;
                    e.nest_level = level - 1;
                    var.stack.push(e);
                    break;
                } else if let Some(prev) = var.stack.last_mut() {
                    match entry.state {
                        StackState::Save => {}
                        StackState::Set => {
                            prev.masked = None;
                            prev.state = StackState::Set;
                        }
                        StackState::Local => {
                            if prev.state == StackState::Set {
                                prev.masked = Some(entry.prior);
                                prev.state = StackState::SetLocal;
                            }
                        }
                        StackState::SetLocal => {
                            prev.masked = entry.masked;
                            prev.state = StackState::SetLocal;
                        }
                    }
                }
                if let Some(v) = restore {
                    var.cur = v;
                }
            }
        }
        self.nest_level = level - 1;
    }

    /// Gives `name` the current value of `from` directly, outside the `SET` machinery: no
    /// stack entry, source unchanged (PostgreSQL's `StartTransaction` assigning
    /// `XactIsoLevel = DefaultXactIsoLevel` and `XactReadOnly = DefaultXactReadOnly`).
    /// Nothing happens if either is unknown or the two already agree.
    pub fn assign_from(&mut self, name: &str, from: &str) {
        let (Some(v), Some(cur)) = (self.get(from), self.get(name)) else {
            return;
        };
        if cur == v {
            return;
        }
        let v = v.clone();
        if let Some(var) = self.var_mut(&key(name)) {
            var.cur.value = v;
        }
    }

    /// Transaction end: [`at_eoxact`](Self::at_eoxact) at level 1.
    pub fn end_transaction(&mut self, commit: bool) {
        self.at_eoxact(commit, 1);
    }

    // ---- reading -----------------------------------------------------------------------------

    /// A number that changes whenever any variable may have changed (every write bumps it),
    /// so that a caller can keep what it derived from the settings until it moves.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.lookup(name).map(|v| &v.cur.value)
    }

    /// Where the value of `name` came from.
    pub fn source(&self, name: &str) -> Option<Source> {
        self.lookup(name).map(|v| v.cur.source)
    }

    /// The file and line of a value from the configuration file.
    pub fn location(&self, name: &str) -> Option<(&Path, u32)> {
        self.lookup(name)
            .and_then(|v| v.cur.loc.as_ref().map(|(p, l)| (p.as_path(), *l)))
    }

    /// An integer setting (0 if unknown: callers use names from [`DEFS`](crate::DEFS)).
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Some(Value::Int(v)) => *v,
            _ => 0,
        }
    }

    /// A real setting (0.0 if unknown).
    pub fn real(&self, name: &str) -> f64 {
        match self.get(name) {
            Some(Value::Real(v)) => *v,
            _ => 0.0,
        }
    }

    /// A boolean setting (false if unknown).
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    /// A string or enum setting ("" if unknown).
    pub fn text(&self, name: &str) -> &str {
        match self.get(name) {
            Some(Value::Text(t)) => t,
            _ => "",
        }
    }

    /// Whether a changed postmaster-context value waits for a restart.
    pub fn pending_restart(&self, name: &str) -> bool {
        self.lookup(name).is_some_and(|v| v.pending_restart)
    }

    /// `SHOW name` / `current_setting(name)`: the value with PostgreSQL's unit formatting
    /// (`128MB`, `5min`), with no privilege check (the postmaster's view).
    pub fn show(&self, name: &str) -> Result<String, GucError> {
        self.show_as(name, true)
    }

    /// `SHOW name` as a session sees it: superuser-only settings need `privileged`.
    pub fn show_as(&self, name: &str, privileged: bool) -> Result<String, GucError> {
        let v = self
            .lookup(name)
            .ok_or_else(|| GucError::Unknown(name.to_owned(), Where::default()))?;
        if v.def.flags & SUPERUSER_ONLY != 0 && !privileged {
            return Err(GucError::NoShowPermission(v.name.to_string()));
        }
        Ok(format_value(v.def, &v.cur.value, true))
    }

    /// The value without units, in the base unit (`postgres -C name`, `pg_settings.setting`).
    pub fn value_text(&self, name: &str) -> Result<String, GucError> {
        let v = self
            .lookup(name)
            .ok_or_else(|| GucError::Unknown(name.to_owned(), Where::default()))?;
        Ok(format_value(v.def, &v.cur.value, false))
    }

    fn visible(&self, privileged: bool) -> impl Iterator<Item = &Var> {
        let mut vars: Vec<&Var> = self
            .vars()
            .map(|(_, v)| v)
            .filter(move |v| {
                v.def.flags & NO_SHOW_ALL == 0 && (privileged || v.def.flags & SUPERUSER_ONLY == 0)
            })
            .collect();
        vars.sort_by_key(|v| v.name.to_ascii_lowercase());
        vars.into_iter()
    }

    /// `SHOW ALL`: (name, setting, description), sorted by name.
    pub fn show_all(&self, privileged: bool) -> Vec<ShowAllRow> {
        self.visible(privileged)
            .map(|v| ShowAllRow {
                name: v.name.to_string(),
                setting: format_value(v.def, &v.cur.value, true),
                description: if v.def.has_effect() || v.def.flags & CUSTOM_PLACEHOLDER != 0 {
                    v.def.short_desc.to_owned()
                } else {
                    format!("{} ({})", v.def.short_desc, "no effect in pgipc")
                },
            })
            .collect()
    }

    /// The rows of `pg_settings`, sorted by name.
    pub fn pg_settings(&self, privileged: bool) -> Vec<PgSettingsRow> {
        self.visible(privileged)
            .map(|v| {
                let d = v.def;
                let (min, max, enumvals, boot) = match d.kind {
                    Kind::Bool { boot } => (
                        None,
                        None,
                        None,
                        Some(format_value(d, &Value::Bool(boot), false)),
                    ),
                    Kind::Int { boot, min, max } => (
                        Some(min.to_string()),
                        Some(max.to_string()),
                        None,
                        Some(boot.to_string()),
                    ),
                    Kind::Real { boot, min, max } => {
                        (Some(fmt_g(min)), Some(fmt_g(max)), None, Some(fmt_g(boot)))
                    }
                    Kind::String { boot } => (None, None, None, Some(boot.to_owned())),
                    Kind::Enum { boot, options } => (
                        None,
                        None,
                        Some(
                            options
                                .iter()
                                .filter(|o| !o.hidden)
                                .map(|o| o.name.to_owned())
                                .collect(),
                        ),
                        Some(boot.to_owned()),
                    ),
                };
                let extra = if d.flags & CUSTOM_PLACEHOLDER != 0 {
                    String::new()
                } else {
                    d.extra_desc()
                };
                let file = if privileged && v.cur.source == Source::File {
                    v.cur.loc.clone()
                } else {
                    None
                };
                PgSettingsRow {
                    name: v.name.to_string(),
                    setting: format_value(d, &v.cur.value, false),
                    unit: d.unit_name().map(str::to_owned),
                    category: d.group.to_owned(),
                    short_desc: d.short_desc.to_owned(),
                    extra_desc: (!extra.is_empty()).then_some(extra),
                    context: d.context.name().to_owned(),
                    vartype: d.vartype().to_owned(),
                    source: v.cur.source.name().to_owned(),
                    min_val: min,
                    max_val: max,
                    enumvals,
                    boot_val: boot,
                    reset_val: Some(format_value(d, &v.reset.value, false)),
                    sourcefile: file.as_ref().map(|(p, _)| p.display().to_string()),
                    sourceline: file.as_ref().map(|(_, l)| *l),
                    pending_restart: v.pending_restart,
                }
            })
            .collect()
    }

    // ---- configuration file ------------------------------------------------------------------

    /// Reads `postgresql.conf` at server start; the first error, if any (PostgreSQL stops
    /// with `configuration file "..." contains errors`).
    pub fn apply_file(&mut self, path: &Path) -> Result<(), GucError> {
        let report = self.process_config_file(path, Context::Postmaster);
        match report.errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reads the configuration file and applies it as `context` may (PostgreSQL's
    /// `ProcessConfigFile`: [`Context::Postmaster`] at start, [`Context::Sighup`] on reload).
    ///
    /// The whole file set is parsed and every value checked first; if anything is wrong
    /// (syntax, unknown name, bad value) nothing is applied and the errors come back with file
    /// and line. (PostgreSQL applies the valid values of a file whose only errors are bad
    /// values; pgipc applies nothing, so that a reload is all or nothing.) Otherwise changed
    /// values are applied and listed; changed postmaster-context values are refused with
    /// "cannot be changed without restarting the server" and marked `pending_restart`; settings
    /// removed from the file go back to their defaults.
    pub fn process_config_file(&mut self, path: &Path, context: Context) -> ReloadReport {
        let mut report = ReloadReport::default();
        let (items, mut errors) = parse_config_file(path);
        // Unknown names are errors; placeholder names are accepted.
        for item in &items {
            if self.var(key(&item.name).as_str()).is_none() && !valid_custom_name(&item.name) {
                errors.push(GucError::Unknown(
                    item.name.clone(),
                    Where::file(&item.file, item.line),
                ));
            }
        }
        // The last assignment of a name wins.
        let mut last: BTreeMap<String, usize> = BTreeMap::new();
        for (k, item) in items.iter().enumerate() {
            last.insert(key(&item.name), k);
        }
        let effective: Vec<&crate::conffile::ConfigItem> = items
            .iter()
            .enumerate()
            .filter(|(k, it)| last.get(&key(&it.name)) == Some(k))
            .map(|(_, it)| it)
            .collect();
        if errors.is_empty() {
            // Dry run on a copy: every value must be acceptable.
            let mut trial = self.clone();
            for item in &effective {
                if let Err(e) = trial.set_option(
                    &item.name,
                    Some(&item.value),
                    context,
                    Source::File,
                    Action::Set,
                    Some((item.file.clone(), item.line)),
                    true,
                ) {
                    errors.push(e);
                }
            }
        }
        if !errors.is_empty() {
            report.errors = errors;
            return report;
        }
        // Settings removed from the file go back to their defaults.
        let in_file: std::collections::BTreeSet<String> =
            effective.iter().map(|it| key(&it.name)).collect();
        let removed: Vec<String> = self
            .vars()
            .filter(|(k, v)| v.reset.source == Source::File && !in_file.contains(k.as_ref()))
            .map(|(k, _)| k.to_string())
            .collect();
        for k in removed {
            let Some(var) = self.var_mut(k.as_str()) else {
                continue;
            };
            if var.def.context < Context::Sighup {
                var.pending_restart = true;
                report.restart_needed.push(format!(
                    "parameter \"{}\" cannot be changed without restarting the server",
                    var.name
                ));
                continue;
            }
            let name = var.name.clone();
            var.reset.source = Source::Default;
            var.reset.loc = None;
            if var.cur.source == Source::File {
                var.cur.source = Source::Default;
                var.cur.loc = None;
            }
            for e in var.stack.iter_mut() {
                if e.prior.source == Source::File {
                    e.prior.source = Source::Default;
                }
            }
            let before = self.show(&name).ok();
            if let Ok(Outcome::Applied) = self.set_option(
                &name,
                None,
                context,
                Source::Default,
                Action::Set,
                None,
                true,
            ) {
                if context == Context::Sighup && before != self.show(&name).ok() {
                    report.changes.push(format!(
                        "parameter \"{name}\" removed from configuration file, reset to default"
                    ));
                }
            }
        }
        for item in effective {
            let before = self.show(&item.name).ok();
            match self.set_option(
                &item.name,
                Some(&item.value),
                context,
                Source::File,
                Action::Set,
                Some((item.file.clone(), item.line)),
                true,
            ) {
                Ok(Outcome::Applied) => {
                    if context == Context::Sighup && before != self.show(&item.name).ok() {
                        report.changes.push(format!(
                            "parameter \"{}\" changed to \"{}\"",
                            item.name, item.value
                        ));
                    }
                }
                Ok(Outcome::PendingRestart) => report.restart_needed.push(format!(
                    "parameter \"{}\" cannot be changed without restarting the server",
                    item.name
                )),
                Ok(Outcome::NotApplied) => {}
                // The dry run accepted every value; a failure here would be a bug, reported
                // rather than hidden.
                Err(e) => report.errors.push(e),
            }
        }
        report
    }

    /// Reads the environment variables PostgreSQL reads (`PGPORT`, `PGDATESTYLE`,
    /// `PGCLIENTENCODING`) from `get` (e.g. `|k| std::env::var(k).ok()`).
    pub fn apply_environment(&mut self, get: impl Fn(&str) -> Option<String>) {
        for (var, name) in [
            ("PGPORT", "port"),
            ("PGDATESTYLE", "DateStyle"),
            ("PGCLIENTENCODING", "client_encoding"),
        ] {
            if let Some(v) = get(var) {
                // A bad value is ignored, as PostgreSQL does (it only logs it).
                let _ = self.set(name, &v, Source::EnvVar);
            }
        }
    }

    // ---- exec'd children ---------------------------------------------------------------------

    /// Every non-default value, for an exec'd child.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            entries: self
                .vars()
                .map(|(_, v)| v)
                .filter(|v| v.cur.source != Source::Default)
                .map(|v| SnapshotEntry {
                    name: v.name.to_string(),
                    value: v.cur.value.clone(),
                    source: v.cur.source,
                    scontext: v.cur.scontext,
                    location: v.cur.loc.clone(),
                })
                .collect(),
        }
    }

    /// A child's settings from its parent's [`snapshot`](Self::snapshot) (PostgreSQL's
    /// `read_nondefault_variables`); marked as under the postmaster. Entries whose name or type
    /// does not match this table are skipped and returned.
    pub fn from_snapshot(snapshot: &Snapshot) -> (Settings, Vec<String>) {
        let mut s = Settings::new();
        s.under_postmaster = true;
        let mut skipped = Vec::new();
        for e in &snapshot.entries {
            let k = key(&e.name);
            if s.var(k.as_str()).is_none() && valid_custom_name(&e.name) {
                let _ = s.set_option(
                    &e.name,
                    Some(""),
                    Context::User,
                    Source::Default,
                    Action::Set,
                    None,
                    true,
                );
            }
            let Some(var) = s.var(k.as_str()) else {
                skipped.push(e.name.clone());
                continue;
            };
            let fits = matches!(
                (&var.def.kind, &e.value),
                (Kind::Bool { .. }, Value::Bool(_))
                    | (Kind::Int { .. }, Value::Int(_))
                    | (Kind::Real { .. }, Value::Real(_))
                    | (Kind::String { .. } | Kind::Enum { .. }, Value::Text(_))
            );
            if !fits {
                skipped.push(e.name.clone());
                continue;
            }
            let saved = Saved {
                value: e.value.clone(),
                source: e.source,
                scontext: e.scontext,
                loc: e.location.clone(),
            };
            let Some(var) = s.var_mut(k.as_str()) else {
                skipped.push(e.name.clone());
                continue;
            };
            if e.source <= Source::Override {
                var.reset = saved.clone();
            }
            var.cur = saved;
        }
        (s, skipped)
    }

    // ---- ParameterStatus -----------------------------------------------------------------------

    /// Every `GUC_REPORT` setting and its value, for the ParameterStatus messages after
    /// authentication (PostgreSQL's `BeginReportingGUCOptions`); later changes are found by
    /// [`changed_reports`](Self::changed_reports).
    pub fn begin_reporting(&mut self) -> Vec<(String, String)> {
        self.reported.clear();
        self.changed_reports()
    }

    /// The `GUC_REPORT` settings whose value changed since they were last reported, to send
    /// before ReadyForQuery (PostgreSQL's `ReportChangedGUCOptions`).
    pub fn changed_reports(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for def in crate::DEFS.iter().filter(|d| d.flags & REPORT != 0) {
            let Ok(now) = self.show(def.name) else {
                continue;
            };
            if self.reported.get(def.name) != Some(&now) {
                self.reported.insert(def.name, now.clone());
                out.push((def.name.to_owned(), now));
            }
        }
        out
    }
}

/// PostgreSQL's `push_old_value`: remember the value a `SET` at `level` replaces.
fn push_old_value(var: &mut Var, action: Action, level: u32) {
    if level == 0 {
        return;
    }
    if let Some(top) = var.stack.last_mut() {
        if top.nest_level == level {
            match action {
                Action::Set => {
                    top.masked = None;
                    top.state = StackState::Set;
                }
                Action::Local => {
                    if top.state == StackState::Set {
                        top.masked = Some(var.cur.clone());
                        top.state = StackState::SetLocal;
                    }
                }
                Action::Save => {}
            }
            return;
        }
    }
    var.stack.push(StackEntry {
        nest_level: level,
        state: match action {
            Action::Set => StackState::Set,
            Action::Local => StackState::Local,
            Action::Save => StackState::Save,
        },
        prior: var.cur.clone(),
        masked: None,
    });
}

/// A `postgresql.conf` in the shape of PostgreSQL's `postgresql.conf.sample`: every setting a
/// file may set, commented out at its boot value, by category.
pub fn sample_config_file() -> String {
    let mut s = String::from(
        "# -----------------------------\n\
         # PostgreSQL configuration file (pgipc)\n\
         # -----------------------------\n\
         #\n\
         # Lines are \"name = value\"; '#' starts a comment. Memory units: B, kB, MB, GB, TB;\n\
         # time units: us, ms, s, min, h, d. Settings marked (change requires restart) are read\n\
         # at server start only; the others are re-read on SIGHUP. Settings marked (no effect)\n\
         # are accepted for compatibility with PostgreSQL 18.\n",
    );
    let defaults = Settings::new();
    let mut group = "";
    for d in crate::DEFS.iter().filter(|d| {
        d.context != Context::Internal && d.flags & (NOT_IN_SAMPLE | DISALLOW_IN_FILE) == 0
    }) {
        if d.group != group {
            group = d.group;
            s.push_str(&format!("\n# - {group} -\n\n"));
        }
        let value = defaults.show(d.name).unwrap_or_default();
        let shown = match d.kind {
            Kind::String { .. } | Kind::Enum { .. } => format!("'{}'", value.replace('\'', "''")),
            _ => value,
        };
        let mut notes = Vec::new();
        if d.context == Context::Postmaster {
            notes.push("change requires restart");
        }
        if !d.has_effect() {
            notes.push("no effect");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        s.push_str(&format!(
            "#{} = {shown}\t# {}{notes}\n",
            d.name, d.short_desc
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SET`-style check at server start (command line): the shown value or the error text.
    fn check(name: &str, input: &str, expected: Result<&str, &str>) {
        let mut s = Settings::new();
        let got = s
            .set(name, input, Source::CommandLine)
            .and_then(|_| s.value_text(name));
        match (got, expected) {
            (Ok(v), Ok(e)) => assert_eq!(v, e, "{name} = {input}"),
            (Err(err), Err(e)) => assert_eq!(err.to_string(), e, "{name} = {input}"),
            (got, e) => panic!("{name} = {input}: got {got:?}, expected {e:?}"),
        }
    }

    /// A session `SET` by a non-superuser: (SQLSTATE, message, hint) of the error, or the
    /// `SHOW` output.
    fn check_sql(name: &str, input: &str, expected: Result<&str, (&str, &str, Option<&str>)>) {
        let mut s = Settings::new();
        s.start_transaction();
        let got = s
            .set_session(name, input, false, false)
            .and_then(|_| s.show_as(name, false));
        match (got, expected) {
            (Ok(v), Ok(e)) => assert_eq!(v, e, "{name} = {input}"),
            (Err(err), Err((code, msg, hint))) => {
                assert_eq!(
                    (err.sqlstate(), err.to_string().as_str(), err.hint()),
                    (code, msg, hint),
                    "{name} = {input}"
                )
            }
            (got, e) => panic!("{name} = {input}: got {got:?}, expected {e:?}"),
        }
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
        check("huge_pages", "yes", Ok("on"));
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
        check(
            "shared_buffers",
            "8",
            Err("8 8kB is outside the valid range for parameter \"shared_buffers\" (16 8kB .. 1073741823 8kB)"),
        );
        check("shared_buffers", "1GB", Ok("131072"));
        // `-C` prints the number in decimal, as PostgreSQL does (SHOW prints 0770).
        check("unix_socket_permissions", "0770", Ok("504"));
        check("vacuum_cost_delay", "1.5", Ok("1.5"));
        check(
            "vacuum_cost_delay",
            "200",
            Err("200 ms is outside the valid range for parameter \"vacuum_cost_delay\" (0 ms .. 100 ms)"),
        );
        check("sort_mem", "8MB", Ok("8192"));
        check(
            "default_with_oids",
            "on",
            Err("tables declared WITH OIDS are not supported"),
        );
        check("default_with_oids", "off", Ok("off"));
        check("exec_backend", "on", Ok("on"));
    }

    #[test]
    fn set_arguments_and_full_form() {
        use SetArg::*;
        let check = |name: &str, args: &[SetArg<'_>], e: Result<&str, &str>| {
            assert_eq!(
                flatten_set_args(name, args)
                    .map_err(|e| e.to_string())
                    .as_deref(),
                e.map_err(str::to_owned).as_deref(),
                "{name}"
            )
        };
        check(
            "search_path",
            &[Text("$user"), Text("public"), Text("My Schema")],
            Ok("\"$user\", public, \"My Schema\""),
        );
        check("DateStyle", &[Text("ISO"), Text("MDY")], Ok("ISO, MDY"));
        check("work_mem", &[Number("64")], Ok("64"));
        check(
            "work_mem",
            &[Text("64MB"), Text("1")],
            Err("SET work_mem takes only one argument"),
        );
        let mut s = Settings::new();
        s.start_transaction();
        let sp = s.new_nest_level();
        let opts = SetOptions {
            context: Context::User,
            source: Source::Session,
            action: Action::Save,
            location: None,
        };
        assert_eq!(s.set_config_option("work_mem", Some("2MB"), opts), Ok(true));
        // A function's SET clause is undone when its level ends, even at commit.
        s.at_eoxact(true, sp);
        assert_eq!(s.show("work_mem").unwrap(), "4MB");
        s.end_transaction(true);
        // A lower-priority source does not replace the command line's value.
        s.set("port", "6000", Source::CommandLine).unwrap();
        let file = PathBuf::from("postgresql.conf");
        let opts = SetOptions {
            context: Context::Postmaster,
            source: Source::File,
            action: Action::Set,
            location: Some((file.as_path(), 3)),
        };
        assert_eq!(s.set_config_option("port", Some("1"), opts), Ok(false));
        assert_eq!(s.int("port"), 6000);
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
        let e = s
            .set("port", "99999999999", Source::CommandLine)
            .unwrap_err();
        assert_eq!(e.hint(), Some("Value exceeds integer range."));
        let e = s.set_session("bad..x", "1", false, false).unwrap_err();
        assert_eq!(
            e.detail(),
            Some(
                "Custom parameter names must be two or more simple identifiers separated by dots."
            )
        );
        let d = Def::find("work_mem").unwrap();
        assert_eq!(d.parse("2MB"), Ok(Value::Int(2048)));
        assert_eq!(d.parse("x").map_err(|e| e.sqlstate()), Err("22023"));
    }

    #[test]
    fn sql_set_errors() {
        check_sql(
            "max_connections",
            "1",
            Err((
                "55P02",
                "parameter \"max_connections\" cannot be changed without restarting the server",
                None,
            )),
        );
        check_sql(
            "no_such",
            "1",
            Err((
                "42704",
                "unrecognized configuration parameter \"no_such\"",
                None,
            )),
        );
        check_sql(
            "work_mem",
            "x",
            Err((
                "22023",
                "invalid value for parameter \"work_mem\": \"x\"",
                None,
            )),
        );
        check_sql(
            "work_mem",
            "1 parsec",
            Err((
                "22023",
                "invalid value for parameter \"work_mem\": \"1 parsec\"",
                Some(
                    "Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".",
                ),
            )),
        );
        check_sql(
            "statement_timeout",
            "5 fortnights",
            Err(("22023", "invalid value for parameter \"statement_timeout\": \"5 fortnights\"", Some("Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\"."))),
        );
        check_sql(
            "work_mem",
            "1",
            Err(("22023", "1 kB is outside the valid range for parameter \"work_mem\" (64 kB .. 2147483647 kB)", None)),
        );
        check_sql(
            "client_min_messages",
            "loud",
            Err(("22023", "invalid value for parameter \"client_min_messages\": \"loud\"", Some("Available values: debug5, debug4, debug3, debug2, debug1, log, notice, warning, error."))),
        );
        check_sql(
            "log_min_messages",
            "info",
            Err((
                "42501",
                "permission denied to set parameter \"log_min_messages\"",
                None,
            )),
        );
        check_sql(
            "autovacuum",
            "off",
            Err((
                "55P02",
                "parameter \"autovacuum\" cannot be changed now",
                None,
            )),
        );
        check_sql(
            "ignore_system_indexes",
            "on",
            Err((
                "55P02",
                "parameter \"ignore_system_indexes\" cannot be set after connection start",
                None,
            )),
        );
        check_sql(
            "server_version",
            "1",
            Err((
                "55P02",
                "parameter \"server_version\" cannot be changed",
                None,
            )),
        );
        check_sql(
            "bad..name",
            "1",
            Err((
                "42602",
                "invalid configuration parameter name \"bad..name\"",
                None,
            )),
        );
        check_sql("myext.anything", "v", Ok("v"));
        check_sql("work_mem", "64MB", Ok("64MB"));
        check_sql("work_mem", "1024", Ok("1MB"));
        check_sql("statement_timeout", "300s", Ok("5min"));
        check_sql("statement_timeout", "1500", Ok("1500ms"));
        check_sql("DATESTYLE", "ISO, DMY", Ok("ISO, DMY"));
        check_sql("application_name", "psql", Ok("psql"));
        check_sql("random_page_cost", "1.1", Ok("1.1"));
        check_sql("search_path", "a, \"B\"", Ok("a, \"B\""));
        let mut s = Settings::new();
        assert_eq!(
            s.set_session("log_min_messages", "info", true, false),
            Ok(())
        );
        assert_eq!(
            s.show_as("primary_conninfo", false).map_err(|e| (e.sqlstate(), e.to_string())),
            Err(("42501", "must be superuser or have privileges of pg_read_all_settings to examine \"primary_conninfo\"".to_owned()))
        );
        assert_eq!(
            s.show("myext.unset").map_err(|e| e.sqlstate()),
            Err("42704")
        );
        assert_eq!(
            s.reset("transaction_isolation", false)
                .map_err(|e| e.to_string()),
            Err("parameter \"transaction_isolation\" cannot be reset".to_owned())
        );
    }

    #[test]
    fn show_formatting() {
        let s = Settings::new();
        for (name, shown) in [
            ("shared_buffers", "128MB"),
            ("work_mem", "4MB"),
            ("maintenance_work_mem", "64MB"),
            ("checkpoint_timeout", "5min"),
            ("authentication_timeout", "1min"),
            ("bgwriter_delay", "200ms"),
            ("deadlock_timeout", "1s"),
            ("log_rotation_age", "1d"),
            ("max_wal_size", "1GB"),
            ("min_wal_size", "80MB"),
            ("wal_segment_size", "16MB"),
            ("effective_cache_size", "4GB"),
            ("temp_buffers", "8MB"),
            ("wal_buffers", "-1"),
            ("autovacuum_vacuum_cost_delay", "2ms"),
            ("checkpoint_completion_target", "0.9"),
            ("seq_page_cost", "1"),
            ("cpu_operator_cost", "0.0025"),
            ("unix_socket_permissions", "0777"),
            ("log_file_mode", "0600"),
            ("max_stack_depth", "2MB"),
            ("DateStyle", "ISO, MDY"),
            ("search_path", "\"$user\", public"),
            ("log_line_prefix", "%m [%p] "),
            ("transaction_isolation", "read committed"),
            ("wal_writer_flush_after", "1MB"),
            ("block_size", "8192"),
            ("segment_size", "1GB"),
            ("server_version_num", "180006"),
        ] {
            assert_eq!(s.show(name).as_deref(), Ok(shown), "{name}");
        }
        let mut s = Settings::new();
        s.set_computed("shared_memory_size", "1").unwrap();
        assert_eq!(s.show("shared_memory_size").as_deref(), Ok("1MB"));
        // `postgres -C` prints file modes in decimal (no show hook), SHOW in octal.
        assert_eq!(
            s.value_text("unix_socket_permissions").as_deref(),
            Ok("511")
        );
        assert_eq!(s.value_text("shared_memory_size").as_deref(), Ok("1"));
        assert_eq!(s.source("shared_memory_size"), Some(Source::DynamicDefault));
        assert_eq!(s.value_text("shared_buffers").as_deref(), Ok("16384"));
    }

    #[test]
    fn transactions_undo_and_local() {
        let mut s = Settings::new();
        let app = |s: &Settings| s.show("application_name").unwrap();
        // BEGIN; SET; ROLLBACK → old value.
        s.start_transaction();
        s.set_session("application_name", "a", false, false)
            .unwrap();
        assert_eq!(app(&s), "a");
        s.end_transaction(false);
        assert_eq!(app(&s), "");
        assert_eq!(s.source("application_name"), Some(Source::Default));
        // BEGIN; SET; COMMIT → kept.
        s.start_transaction();
        s.set_session("application_name", "b", false, false)
            .unwrap();
        s.end_transaction(true);
        assert_eq!(app(&s), "b");
        assert_eq!(s.source("application_name"), Some(Source::Session));
        // SET LOCAL ends at commit.
        s.start_transaction();
        s.set_session("application_name", "c", false, true).unwrap();
        assert_eq!(app(&s), "c");
        s.end_transaction(true);
        assert_eq!(app(&s), "b");
        // SET then SET LOCAL: the SET value comes back at commit.
        s.start_transaction();
        s.set_session("application_name", "d", false, false)
            .unwrap();
        s.set_session("application_name", "e", false, true).unwrap();
        s.end_transaction(true);
        assert_eq!(app(&s), "d");
        // Savepoints: SET in a rolled-back subtransaction is undone; in a released one kept.
        s.start_transaction();
        s.set_session("application_name", "f", false, false)
            .unwrap();
        let sp = s.new_nest_level();
        s.set_session("application_name", "g", false, false)
            .unwrap();
        s.at_eoxact(false, sp);
        assert_eq!(app(&s), "f");
        let sp = s.new_nest_level();
        s.set_session("application_name", "h", false, false)
            .unwrap();
        s.at_eoxact(true, sp);
        assert_eq!(app(&s), "h");
        let sp = s.new_nest_level();
        s.set_session("application_name", "i", false, true).unwrap();
        s.at_eoxact(true, sp);
        assert_eq!(app(&s), "i");
        s.end_transaction(true);
        assert_eq!(app(&s), "h");
        // A released savepoint's SET is still undone by the outer rollback.
        s.start_transaction();
        let sp = s.new_nest_level();
        s.set_session("application_name", "j", false, false)
            .unwrap();
        s.at_eoxact(true, sp);
        s.end_transaction(false);
        assert_eq!(app(&s), "h");
        assert_eq!(s.nest_level(), 0);
        // RESET goes back to the reset value; RESET ALL too, and rolls back.
        s.start_transaction();
        s.set_session("work_mem", "1GB", false, false).unwrap();
        s.end_transaction(true);
        s.start_transaction();
        s.reset_all();
        assert_eq!(s.show("work_mem").unwrap(), "4MB");
        assert_eq!(app(&s), "");
        s.end_transaction(false);
        assert_eq!(s.show("work_mem").unwrap(), "1GB");
        s.start_transaction();
        s.reset("work_mem", false).unwrap();
        s.end_transaction(true);
        assert_eq!(s.show("work_mem").unwrap(), "4MB");
    }

    #[test]
    fn source_priority() {
        let mut s = Settings::new();
        let dir = tempdir("prio");
        let conf = dir.join("postgresql.conf");
        std::fs::write(&conf, "port = 6000\nwork_mem = 8MB\n").unwrap();
        s.set("port", "7000", Source::CommandLine).unwrap();
        s.apply_file(&conf).unwrap();
        // The command line beats the file.
        assert_eq!(
            (s.int("port"), s.source("port")),
            (7000, Some(Source::CommandLine))
        );
        assert_eq!(s.show("work_mem").unwrap(), "8MB");
        assert_eq!(s.location("work_mem"), Some((conf.as_path(), 2)));
        // A session SET beats a reloaded file value, and RESET then takes the file's new value.
        s.set_under_postmaster(true);
        s.start_transaction();
        s.set_session("work_mem", "1MB", false, false).unwrap();
        s.end_transaction(true);
        std::fs::write(&conf, "port = 6000\nwork_mem = 16MB\n").unwrap();
        let r = s.process_config_file(&conf, Context::Sighup);
        assert!(r.applied(), "{r:?}");
        assert_eq!(s.show("work_mem").unwrap(), "1MB");
        s.reset("work_mem", false).unwrap();
        assert_eq!(s.show("work_mem").unwrap(), "16MB");
        assert_eq!(s.source("work_mem"), Some(Source::File));
        // Environment is below the file.
        let mut s = Settings::new();
        s.apply_environment(|k| (k == "PGPORT").then(|| "5999".to_owned()));
        assert_eq!(
            (s.int("port"), s.source("port")),
            (5999, Some(Source::EnvVar))
        );
        s.apply_file(&conf).unwrap();
        assert_eq!(s.int("port"), 6000);
        // Override beats everything.
        s.set_override("shared_memory_type", "memfd").unwrap();
        s.set("shared_memory_type", "mmap", Source::CommandLine)
            .unwrap();
        assert_eq!(s.text("shared_memory_type"), "memfd");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pgipc-guc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn files_with_includes_and_errors() {
        let dir = tempdir("inc");
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::write(
            dir.join("postgresql.conf"),
            "port = 6000\ninclude 'extra.conf'\ninclude_if_exists 'missing.conf'\ninclude_dir 'conf.d'\n",
        )
        .unwrap();
        std::fs::write(dir.join("extra.conf"), "max_connections = 20\n").unwrap();
        std::fs::write(dir.join("conf.d/01.conf"), "port = 6001\n").unwrap();
        std::fs::write(dir.join("conf.d/02.conf"), "max_connections = 21\n").unwrap();
        std::fs::write(dir.join("conf.d/.hidden.conf"), "port = 1\n").unwrap();
        std::fs::write(dir.join("conf.d/notes.txt"), "port = 2\n").unwrap();
        let mut s = Settings::new();
        s.apply_file(&dir.join("postgresql.conf")).unwrap();
        assert_eq!((s.int("port"), s.int("max_connections")), (6001, 21));
        assert_eq!(
            s.location("port"),
            Some((dir.join("conf.d/01.conf").as_path(), 1))
        );

        let e = |text: &str| {
            std::fs::write(dir.join("bad.conf"), text).unwrap();
            Settings::new()
                .process_config_file(&dir.join("bad.conf"), Context::Postmaster)
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        };
        let f = dir.join("bad.conf").display().to_string();
        assert_eq!(
            e("port = 1\nbogus_setting = 3\n"),
            [format!(
                "unrecognized configuration parameter \"bogus_setting\" in file \"{f}\" line 2"
            )]
        );
        assert_eq!(
            e("port = = 1\n"),
            [format!(
                "syntax error in file \"{f}\" line 1, near token \"=\""
            )]
        );
        assert_eq!(
            e("\nport =\n"),
            [format!(
                "syntax error in file \"{f}\" line 2, near end of line"
            )]
        );
        assert_eq!(
            e("port = 'x'\n"),
            [format!(
                "invalid value for parameter \"port\": \"x\" in file \"{f}\" line 1"
            )]
        );
        assert_eq!(
            e("server_version = '1'\n"),
            [format!(
                "parameter \"server_version\" cannot be changed in file \"{f}\" line 1"
            )]
        );
        assert_eq!(
            e("include 'nope.conf'\n"),
            [format!(
                "could not open configuration file \"{}\": No such file or directory",
                dir.join("nope.conf").display()
            )]
        );
        assert_eq!(
            e("include 'bad.conf'\n"),
            [format!("configuration file recursion in \"{f}\"")]
        );
        assert_eq!(
            e("include_dir 'nodir'\n"),
            [format!(
                "could not open configuration directory \"{}\": No such file or directory",
                dir.join("nodir").display()
            )]
        );
        // A chain of includes deeper than PostgreSQL allows.
        for k in 0..12 {
            std::fs::write(
                dir.join(format!("d{k}.conf")),
                format!("include 'd{}.conf'\n", k + 1),
            )
            .unwrap();
        }
        std::fs::write(dir.join("d12.conf"), "port = 1\n").unwrap();
        let errs = Settings::new()
            .process_config_file(&dir.join("d0.conf"), Context::Postmaster)
            .errors;
        assert!(
            matches!(errs.as_slice(), [GucError::TooDeep(_)]),
            "{errs:?}"
        );
        assert!(errs[0]
            .to_string()
            .ends_with("maximum nesting depth exceeded"));
        // Placeholders are accepted.
        assert_eq!(e("myext.setting = 'x'\n"), Vec::<String>::new());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reload() {
        let dir = tempdir("reload");
        let conf = dir.join("postgresql.conf");
        std::fs::write(
            &conf,
            "restart_after_crash = on\nport = 7000\nwork_mem = 8MB\nlog_line_prefix = '%m '\n",
        )
        .unwrap();
        let mut s = Settings::new();
        s.apply_file(&conf).unwrap();
        // A sighup setting changes, a postmaster one is reported and kept, a removed one
        // reverts to default.
        std::fs::write(
            &conf,
            "restart_after_crash = off\nport = 7001\nwork_mem = 8MB\n",
        )
        .unwrap();
        let r = s.process_config_file(&conf, Context::Sighup);
        assert_eq!(r.errors, []);
        assert_eq!(
            r.changes,
            [
                "parameter \"log_line_prefix\" removed from configuration file, reset to default",
                "parameter \"restart_after_crash\" changed to \"off\"",
            ]
        );
        assert_eq!(
            r.restart_needed,
            ["parameter \"port\" cannot be changed without restarting the server"]
        );
        assert_eq!(
            r.summary(&conf),
            Some(format!(
                "configuration file \"{}\" contains errors; unaffected changes were applied",
                conf.display()
            ))
        );
        assert!(!s.bool("restart_after_crash"));
        assert_eq!(s.int("port"), 7000);
        assert!(s.pending_restart("port"));
        assert_eq!(s.show("log_line_prefix").unwrap(), "%m [%p] ");
        let row = s
            .pg_settings(true)
            .into_iter()
            .find(|r| r.name == "port")
            .unwrap();
        assert!(row.pending_restart);
        // A file with a bad line: nothing applied, the error names file and line.
        std::fs::write(
            &conf,
            "restart_after_crash = on\nport = 7000\nwork_mem = lots\nmyext.x = 1\n",
        )
        .unwrap();
        let r = s.process_config_file(&conf, Context::Sighup);
        assert_eq!(
            r.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            [format!(
                "invalid value for parameter \"work_mem\": \"lots\" in file \"{}\" line 3",
                conf.display()
            )]
        );
        assert_eq!(
            r.summary(&conf),
            Some(format!(
                "configuration file \"{}\" contains errors; no changes were applied",
                conf.display()
            ))
        );
        assert!(!s.bool("restart_after_crash"));
        // Fixed: applied; the placeholder line is accepted; port back to its start value.
        std::fs::write(
            &conf,
            "restart_after_crash = on\nport = 7000\nwork_mem = 8MB\nmyext.x = 1\n",
        )
        .unwrap();
        let r = s.process_config_file(&conf, Context::Sighup);
        assert!(r.applied() && r.restart_needed.is_empty(), "{r:?}");
        assert!(s.bool("restart_after_crash"));
        assert!(!s.pending_restart("port"));
        assert_eq!(s.show("myext.x").unwrap(), "1");
        // Backend-context changes are for new sessions: a child ignores them.
        std::fs::write(&conf, "ignore_system_indexes = on\n").unwrap();
        let mut child = s.clone();
        child.set_under_postmaster(true);
        child.process_config_file(&conf, Context::Sighup);
        assert!(!child.bool("ignore_system_indexes"));
        s.process_config_file(&conf, Context::Sighup);
        assert!(s.bool("ignore_system_indexes"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn snapshot_round_trips_values_and_sources() {
        let dir = tempdir("snap");
        let conf = dir.join("postgresql.conf");
        std::fs::write(
            &conf,
            "bgwriter_delay = 300ms\nmyext.flag = on\nrandom_page_cost = 1.1\n",
        )
        .unwrap();
        let mut a = Settings::new();
        a.set("max_connections", "7", Source::CommandLine).unwrap();
        a.apply_file(&conf).unwrap();
        a.set_computed("shared_memory_size", "143").unwrap();
        // Through a real serde format, as the postmaster hands it to an exec'd child.
        let json = serde_json::to_string(&a.snapshot()).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a.snapshot());
        let (b, skipped) = Settings::from_snapshot(&back);
        assert_eq!(skipped, Vec::<String>::new());
        assert_eq!(b.snapshot(), a.snapshot());
        assert_eq!(b.int("max_connections"), 7);
        assert_eq!(b.int("bgwriter_delay"), 300);
        assert_eq!(b.real("random_page_cost"), 1.1);
        assert_eq!(b.show("myext.flag").unwrap(), "on");
        assert_eq!(b.show("shared_memory_size").unwrap(), "143MB");
        assert_eq!(b.source("max_connections"), Some(Source::CommandLine));
        assert_eq!(b.location("bgwriter_delay"), Some((conf.as_path(), 1)));
        // A child reloading the same file keeps the command-line value.
        let mut b = b;
        assert!(b.process_config_file(&conf, Context::Sighup).applied());
        assert_eq!(b.int("max_connections"), 7);
        // Entries that do not fit this table are skipped, not applied.
        let bad = Snapshot {
            entries: vec![
                SnapshotEntry {
                    name: "port".into(),
                    value: Value::Text("x".into()),
                    source: Source::File,
                    scontext: Context::Postmaster,
                    location: None,
                },
                SnapshotEntry {
                    name: "nosuch".into(),
                    value: Value::Int(1),
                    source: Source::File,
                    scontext: Context::Postmaster,
                    location: None,
                },
            ],
        };
        let (c, skipped) = Settings::from_snapshot(&bad);
        assert_eq!(skipped, ["port", "nosuch"]);
        assert_eq!(c.int("port"), 5432);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parameter_status() {
        let mut s = Settings::new();
        let first = s.begin_reporting();
        let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
        for n in [
            "application_name",
            "client_encoding",
            "DateStyle",
            "default_transaction_read_only",
            "in_hot_standby",
            "integer_datetimes",
            "IntervalStyle",
            "is_superuser",
            "scram_iterations",
            "search_path",
            "server_encoding",
            "server_version",
            "session_authorization",
            "standard_conforming_strings",
            "TimeZone",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert_eq!(first.len(), 15);
        assert_eq!(s.changed_reports(), []);
        s.start_transaction();
        s.set_session("application_name", "x", false, false)
            .unwrap();
        s.set_session("work_mem", "1MB", false, false).unwrap();
        assert_eq!(
            s.changed_reports(),
            [("application_name".to_owned(), "x".to_owned())]
        );
        s.end_transaction(false);
        assert_eq!(
            s.changed_reports(),
            [("application_name".to_owned(), String::new())]
        );
        s.set_computed("server_encoding", "UTF8").unwrap();
        assert_eq!(
            s.changed_reports(),
            [("server_encoding".to_owned(), "UTF8".to_owned())]
        );
    }

    #[test]
    fn show_all_and_pg_settings_rows() {
        let s = Settings::new();
        let all = s.show_all(true);
        assert!(all
            .windows(2)
            .all(|w| w[0].name.to_ascii_lowercase() < w[1].name.to_ascii_lowercase()));
        assert!(!all
            .iter()
            .any(|r| r.name == "is_superuser" || r.name == "seed"));
        let sb = all.iter().find(|r| r.name == "shared_buffers").unwrap();
        assert_eq!(sb.setting, "128MB");
        assert_eq!(
            sb.description,
            "Sets the number of shared memory buffers used by the server. (no effect in pgipc)"
        );
        let port = all.iter().find(|r| r.name == "port").unwrap();
        assert_eq!(port.description, "Sets the TCP port the server listens on.");
        assert!(s.show_all(false).len() < all.len());
        let rows = s.pg_settings(true);
        let sb = rows.iter().find(|r| r.name == "shared_buffers").unwrap();
        assert_eq!(
            (
                sb.setting.as_str(),
                sb.unit.as_deref(),
                sb.context.as_str(),
                sb.vartype.as_str(),
                sb.source.as_str()
            ),
            ("16384", Some("8kB"), "postmaster", "integer", "default")
        );
        assert_eq!(
            (sb.min_val.as_deref(), sb.max_val.as_deref()),
            (Some("16"), Some("1073741823"))
        );
        assert_eq!(sb.category, "Resource Usage / Memory");
        assert_eq!(sb.extra_desc.as_deref(), Some(crate::NO_EFFECT_NOTE));
        let hp = rows.iter().find(|r| r.name == "huge_pages").unwrap();
        assert_eq!(
            hp.enumvals.as_deref(),
            Some(&["off".to_owned(), "on".into(), "try".into()][..])
        );
        let rpc = rows.iter().find(|r| r.name == "random_page_cost").unwrap();
        assert_eq!(
            (rpc.setting.as_str(), rpc.max_val.as_deref()),
            ("4", Some("1.79769e+308"))
        );
    }

    #[test]
    fn sample_file_round_trips() {
        let dir = tempdir("sample");
        let p = dir.join("postgresql.conf");
        // Uncomment every setting line: each boot value must parse back to itself.
        let text: String = sample_config_file()
            .lines()
            .filter_map(|l| {
                l.strip_prefix('#')
                    .filter(|r| r.starts_with(|c: char| c.is_ascii_alphabetic()))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let lines = text.lines().count();
        assert!(lines > 250, "{lines}");
        std::fs::write(&p, text).unwrap();
        let mut s = Settings::new();
        let r = s.process_config_file(&p, Context::Postmaster);
        assert_eq!(r.errors, []);
        let fresh = Settings::new();
        for d in crate::DEFS
            .iter()
            .filter(|d| d.context != Context::Internal)
        {
            assert_eq!(s.get(d.name), fresh.get(d.name), "{}", d.name);
        }
        assert_eq!(s.source("shared_buffers"), Some(Source::File));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A postgresql.conf as people write them for PostgreSQL 18.
    #[test]
    fn hand_written_pg18_file_loads() {
        let dir = tempdir("pg18");
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        let conf = dir.join("postgresql.conf");
        std::fs::write(
            &conf,
            r#"# -----------------------------
# PostgreSQL configuration file
# -----------------------------
#data_directory = 'ConfigDir'		# use data in another directory
listen_addresses = '*'		# what IP address(es) to listen on;
port = 5433				# (change requires restart)
max_connections = 100			# (change requires restart)
unix_socket_directories = '/var/run/postgresql'	# comma-separated list of directories
#ssl = off
ssl_cert_file = '/etc/ssl/certs/ssl-cert-snakeoil.pem'
shared_buffers = 128MB			# min 128kB
#huge_pages = try			# on, off, or try
work_mem = 4MB
maintenance_work_mem = 64MB
dynamic_shared_memory_type = posix	# the default is usually the first option
io_method = worker
max_wal_size = 1GB
min_wal_size = 80MB
checkpoint_completion_target = 0.9
random_page_cost = 1.1
effective_cache_size = 4GB
vacuum_cost_delay = 0			# 0-100 milliseconds (0 disables)
autovacuum_vacuum_cost_delay = 2ms
log_line_prefix = '%m [%p] '		# special values:
log_timezone = 'Etc/UTC'
log_min_duration_statement = 250ms
log_connections = 'receipt,authentication'
log_lock_failures = on
cluster_name = '18/main'			# added to the process title
datestyle = 'iso, mdy'
timezone = 'Etc/UTC'
lc_messages = 'C.UTF-8'
default_text_search_config = 'pg_catalog.english'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.max = 10000
pg_stat_statements.track = all
idle_replication_slot_timeout = 1d
ssl_ecdh_curve = 'prime256v1'
file_copy_method = clone
syslog_facility = 'LOCAL0'
wal_summary_keep_time = '10d'
log_autovacuum_min_duration = 10min
wal_sync_method = fdatasync
#include = '...'
include_dir 'conf.d'			# include files ending in '.conf' from
include_if_exists = 'missing.conf'
include_dir = 'conf.d'
"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("conf.d/10-tuning.conf"),
            "work_mem = '16MB'\njit = off\n",
        )
        .unwrap();
        let mut s = Settings::new();
        let r = s.process_config_file(&conf, Context::Postmaster);
        assert_eq!(r.errors, []);
        for (name, shown) in [
            ("port", "5433"),
            ("listen_addresses", "*"),
            ("shared_buffers", "128MB"),
            ("work_mem", "16MB"),
            ("jit", "off"),
            ("log_line_prefix", "%m [%p] "),
            ("log_min_duration_statement", "250ms"),
            ("effective_cache_size", "4GB"),
            ("DateStyle", "iso, mdy"),
            ("TimeZone", "Etc/UTC"),
            ("pg_stat_statements.max", "10000"),
            ("idle_replication_slot_timeout", "1d"),
            ("ssl_groups", "prime256v1"),
            ("vacuum_cost_delay", "0"),
            ("syslog_facility", "local0"),
            ("wal_summary_keep_time", "10d"),
            ("log_autovacuum_min_duration", "10min"),
        ] {
            assert_eq!(s.show(name).as_deref(), Ok(shown), "{name}");
        }
        assert_eq!(
            s.location("work_mem"),
            Some((dir.join("conf.d/10-tuning.conf").as_path(), 1))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // ---- clones share their variables ---------------------------------------------------------

    /// Everything a caller can observe of a `Settings`, one line per row, for comparing two
    /// of them (file names in `from` shown as in `to`).
    fn observed(s: &Settings, (from, to): (&Path, &Path)) -> Vec<String> {
        let mut rows: Vec<String> = s
            .pg_settings(true)
            .iter()
            .map(|r| format!("{r:?}"))
            .collect();
        rows.extend(s.show_all(false).iter().map(|r| format!("{r:?}")));
        rows.extend(s.snapshot().entries.iter().map(|e| format!("{e:?}")));
        rows.push(format!("nest level {}", s.nest_level()));
        let (from, to) = (from.to_str().unwrap(), to.to_str().unwrap());
        rows.iter().map(|r| r.replace(from, to)).collect()
    }

    /// The first row where two observations differ, if any.
    fn first_difference(a: &[String], b: &[String]) -> Option<(String, String)> {
        if a.len() != b.len() {
            return Some((format!("{} rows", a.len()), format!("{} rows", b.len())));
        }
        a.iter()
            .zip(b)
            .find(|(x, y)| x != y)
            .map(|(x, y)| (x.clone(), y.clone()))
    }

    /// A postmaster's settings: a file, the command line, computed values.
    fn postmaster_settings(conf: &Path) -> Settings {
        std::fs::write(
            conf,
            "work_mem = 8MB\nrestart_after_crash = off\nlog_line_prefix = '%m '\nmyext.a = 1\n",
        )
        .unwrap();
        let mut s = Settings::new();
        s.apply_file(conf).unwrap();
        s.set("port", "5433", Source::CommandLine).unwrap();
        s.set_computed("shared_memory_size", "143").unwrap();
        s
    }

    /// One step of a session: what it returned, shown.
    type Step = fn(&mut Settings, &Path) -> String;

    /// A session's life: startup packet, SET / SET LOCAL / RESET / RESET ALL in committed and
    /// rolled-back transactions and savepoints, placeholders, ParameterStatus, a reload.
    const SESSION: &[Step] = &[
        |s, _| format!("{:?}", s.set_client("application_name", "psql", false)),
        |s, _| format!("{:?}", s.set_client("DateStyle", "ISO, DMY", false)),
        |s, _| format!("{:?}", s.begin_reporting()),
        |s, _| {
            s.start_transaction();
            format!("{:?}", s.set_session("work_mem", "1GB", false, false))
        },
        |s, _| format!("{:?}", s.set_session("application_name", "x", false, true)),
        |s, _| {
            s.end_transaction(true);
            format!("{:?}", s.changed_reports())
        },
        |s, _| {
            s.start_transaction();
            let a = s.set_session("search_path", "a, b", false, false);
            let sp = s.new_nest_level();
            let b = s.set_session("work_mem", "2MB", false, false);
            let c = s.set_session("myext.b", "on", false, false);
            s.at_eoxact(false, sp);
            let sp = s.new_nest_level();
            let d = s.set_session("statement_timeout", "5s", false, true);
            s.at_eoxact(true, sp);
            format!("{a:?} {b:?} {c:?} {d:?}")
        },
        |s, _| {
            s.end_transaction(false);
            format!("{:?}", s.changed_reports())
        },
        |s, _| format!("{:?}", s.set_session("max_connections", "1", true, false)),
        |s, _| format!("{:?}", s.set_session("work_mem", "lots", false, false)),
        |s, _| format!("{:?}", s.set_session("myext.c", "v", false, false)),
        |s, _| {
            s.start_transaction();
            s.reset_all();
            let shown = s.show("work_mem");
            s.end_transaction(false);
            format!("{shown:?}")
        },
        |s, _| {
            s.start_transaction();
            s.reset_all();
            s.end_transaction(true);
            format!("{:?}", s.changed_reports())
        },
        |s, _| format!("{:?}", s.reset("work_mem", false)),
        |s, conf| {
            std::fs::write(
                conf,
                "work_mem = 16MB\nrestart_after_crash = on\nport = 7000\nignore_system_indexes = on\n",
            )
            .unwrap();
            format!("{:?}", s.process_config_file(conf, Context::Sighup))
        },
        |s, _| format!("{:?}", s.set_session("work_mem", "3MB", false, false)),
        |s, _| {
            let r = s.set_config_option(
                "work_mem",
                None,
                SetOptions {
                    context: Context::Sighup,
                    source: Source::Default,
                    action: Action::Set,
                    location: None,
                },
            );
            format!("{r:?} {:?}", s.reset("work_mem", false))
        },
    ];

    #[test]
    fn a_clone_behaves_as_a_private_copy() {
        let dir = tempdir("clone-private");
        let (conf_a, conf_b) = (dir.join("a.conf"), dir.join("b.conf"));
        // `alone` holds its variables alone; `shared` is a clone of a postmaster that lives on.
        // The two files differ only in name, which pg_settings and errors show.
        let same = (conf_b.as_path(), conf_a.as_path());
        let mut alone = postmaster_settings(&conf_a);
        alone.set_under_postmaster(true);
        let postmaster = postmaster_settings(&conf_b);
        let before = observed(&postmaster, same);
        let mut shared = postmaster.clone();
        shared.set_under_postmaster(true);
        assert!(Arc::ptr_eq(&postmaster.base, &shared.base));
        assert_eq!(
            first_difference(&observed(&alone, same), &observed(&shared, same)),
            None
        );
        for (i, step) in SESSION.iter().enumerate() {
            let (a, b) = (step(&mut alone, &conf_a), step(&mut shared, &conf_b));
            let b = b.replace(conf_b.to_str().unwrap(), conf_a.to_str().unwrap());
            assert_eq!(a, b, "step {i}: result");
            assert_eq!(
                first_difference(&observed(&alone, same), &observed(&shared, same)),
                None,
                "step {i}: state"
            );
            assert_eq!(
                first_difference(&observed(&postmaster, same), &before),
                None,
                "step {i}: the original changed"
            );
        }
        // The shared clone copied only what it changed; the original copied nothing.
        assert!(Arc::ptr_eq(&postmaster.base, &shared.base));
        assert!(alone.changed.is_empty());
        assert!(postmaster.changed.is_empty());
        assert!(
            !shared.changed.is_empty() && shared.changed.len() < 20,
            "{} own copies",
            shared.changed.len()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_set_copies_one_variable_and_is_invisible_in_the_other_copy() {
        let mut server = Settings::new();
        server.set("work_mem", "8MB", Source::CommandLine).unwrap();
        let mut a = server.clone();
        let mut b = server.clone();
        a.start_transaction();
        a.set_session("work_mem", "1GB", false, false).unwrap();
        a.end_transaction(true);
        assert_eq!(a.changed.keys().collect::<Vec<_>>(), ["work_mem"]);
        assert!(b.changed.is_empty() && server.changed.is_empty());
        assert_eq!(
            (
                a.show("work_mem"),
                b.show("work_mem"),
                server.show("work_mem")
            ),
            (Ok("1GB".into()), Ok("8MB".into()), Ok("8MB".into()))
        );
        // The other way round, with a placeholder only `b` knows.
        b.set_session("myext.x", "on", false, false).unwrap();
        assert_eq!(b.show("myext.x"), Ok("on".into()));
        for s in [&a, &server] {
            assert!(matches!(s.show("myext.x"), Err(GucError::Unknown(..))));
        }
        // RESET goes back to the shared reset value.
        a.reset("work_mem", false).unwrap();
        assert_eq!(a.show("work_mem"), Ok("8MB".into()));
        assert_eq!(a.source("work_mem"), Some(Source::CommandLine));
        // A clone of a clone starts with its changes and shares the same base.
        a.set_session("application_name", "a", false, false)
            .unwrap();
        let c = a.clone();
        assert!(Arc::ptr_eq(&c.base, &server.base));
        assert_eq!(c.show("application_name"), Ok("a".into()));
        assert_eq!(server.show("application_name"), Ok("".into()));
    }

    #[test]
    fn a_rolled_back_set_in_a_clone_restores_the_shared_value() {
        let server = Settings::new();
        let mut s = server.clone();
        s.start_transaction();
        s.set_session("application_name", "a", false, false)
            .unwrap();
        let sp = s.new_nest_level();
        s.set_session("application_name", "b", false, true).unwrap();
        s.at_eoxact(true, sp);
        assert_eq!(s.show("application_name"), Ok("b".into()));
        assert_eq!(server.show("application_name"), Ok("".into()));
        s.end_transaction(false);
        assert_eq!(s.show("application_name"), Ok("".into()));
        assert_eq!(s.source("application_name"), Some(Source::Default));
        assert_eq!(s.nest_level(), 0);
        // Nothing is left on the stack of the copy.
        assert!(s.changed.values().all(|v| v.stack.is_empty()));
    }

    #[test]
    fn the_postmaster_reloads_after_children_cloned_and_each_side_keeps_its_own() {
        let dir = tempdir("clone-reload");
        let conf = dir.join("postgresql.conf");
        std::fs::write(&conf, "work_mem = 8MB\nrestart_after_crash = on\n").unwrap();
        let mut postmaster = Settings::new();
        postmaster.apply_file(&conf).unwrap();
        let mut child = postmaster.clone();
        child.set_under_postmaster(true);
        child
            .set_session("statement_timeout", "1s", false, false)
            .unwrap();
        // The postmaster reloads an edited file while the child lives: it copies what the
        // reload changes (the base is shared) and the child sees none of it.
        std::fs::write(&conf, "work_mem = 16MB\nrestart_after_crash = off\n").unwrap();
        let r = postmaster.process_config_file(&conf, Context::Sighup);
        assert!(r.applied(), "{r:?}");
        assert_eq!(
            r.changes,
            [
                "parameter \"work_mem\" changed to \"16MB\"",
                "parameter \"restart_after_crash\" changed to \"off\"",
            ]
        );
        assert_eq!(postmaster.show("work_mem"), Ok("16MB".into()));
        assert!(!postmaster.bool("restart_after_crash"));
        assert_eq!(postmaster.show("statement_timeout"), Ok("0".into()));
        assert_eq!(child.show("work_mem"), Ok("8MB".into()));
        assert!(child.bool("restart_after_crash"));
        // A child cloned now starts from the reloaded values.
        let late = postmaster.clone();
        assert_eq!(late.show("work_mem"), Ok("16MB".into()));
        // The first child reloads on its SIGHUP and keeps its session's SET.
        let r = child.process_config_file(&conf, Context::Sighup);
        assert!(r.applied(), "{r:?}");
        assert_eq!(child.show("work_mem"), Ok("16MB".into()));
        assert!(!child.bool("restart_after_crash"));
        assert_eq!(child.show("statement_timeout"), Ok("1s".into()));
        // Once the children are gone the postmaster's variables are its own again: a change
        // goes into them in place and folds its earlier copies back.
        drop((child, late));
        postmaster.set("port", "5444", Source::CommandLine).unwrap();
        assert!(postmaster.changed.is_empty());
        assert_eq!(postmaster.show("work_mem"), Ok("16MB".into()));
        assert_eq!(postmaster.int("port"), 5444);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
