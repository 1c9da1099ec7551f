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

/// A configuration-file location.
type Loc = Option<(PathBuf, u32)>;

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
    name: String,
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

/// The settings of one process.
#[derive(Debug, Clone)]
pub struct Settings {
    vars: BTreeMap<String, Var>,
    nest_level: u32,
    under_postmaster: bool,
    reported: BTreeMap<&'static str, String>,
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
        Value::Int(i) if def.flags & SHOW_OCTAL != 0 => format!("{i:04o}"),
        Value::Int(i) if units => format_int(*i, def.flags),
        Value::Int(i) => i.to_string(),
        Value::Real(r) if units => format_real(*r, def.flags),
        Value::Real(r) => fmt_g(*r),
        Value::Text(t) => t.clone(),
    }
}

/// Parses `text` as a value of `def` (PostgreSQL's `parse_and_validate_value`).
pub(crate) fn parse_value(def: &Def, name: &str, text: &str, at: &Where) -> Result<Value, GucError> {
    let invalid = |hint: Option<String>| GucError::Invalid {
        name: name.to_owned(),
        value: text.to_owned(),
        hint,
        at: at.clone(),
    };
    let unit = def
        .unit_name()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    match def.kind {
        Kind::Bool { boot } => {
            let v = parse_bool(text).ok_or_else(|| GucError::NotBool(name.to_owned(), at.clone()))?;
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
            .map(|o| Value::Text(o.name.to_owned()))
            .ok_or_else(|| {
                let shown: Vec<&str> = options.iter().filter(|o| !o.hidden).map(|o| o.name).collect();
                invalid(Some(format!("Available values: {}.", shown.join(", "))))
            }),
    }
}

fn where_of(loc: &Loc) -> Where {
    Where(loc.clone())
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
            vars.insert(
                def.name.to_ascii_lowercase(),
                Var {
                    name: def.name.to_owned(),
                    def,
                    reset: cur.clone(),
                    cur,
                    stack: Vec::new(),
                    pending_restart: false,
                },
            );
        }
        let mut s = Settings {
            vars,
            nest_level: 0,
            under_postmaster: false,
            reported: BTreeMap::new(),
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
        self.vars.get(&key(name))
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
        if !self.vars.contains_key(&k) {
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
            self.vars.insert(
                k.clone(),
                Var {
                    name: name.to_owned(),
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
        let Some(var) = self.vars.get_mut(&k) else {
            return Err(GucError::Unknown(name.to_owned(), at));
        };
        let def = var.def;
        let vname = var.name.clone();
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
        let make_default =
            change_val && source <= Source::Override && (value.is_some() || source == Source::Default);
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
            if var.cur.value != new.value {
                var.pending_restart = true;
                return Ok(Outcome::PendingRestart);
            }
            var.pending_restart = false;
            return Ok(Outcome::NotApplied);
        }
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
        self.set_option(name, Some(value), context, Source::Session, action, None, true)
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
        self.set_option(name, Some(value), context, Source::Client, Action::Set, None, true)
            .map(|_| ())
    }

    /// SQL `RESET name` (and `SET name TO DEFAULT`).
    pub fn reset(&mut self, name: &str, superuser: bool) -> Result<(), GucError> {
        if let Some(v) = self.lookup(name) {
            if v.def.flags & NO_RESET != 0 {
                return Err(GucError::CannotReset(v.name.clone()));
            }
        }
        let context = if superuser {
            Context::Superuser
        } else {
            Context::User
        };
        self.set_option(name, None, context, Source::Session, Action::Set, None, true)
            .map(|_| ())
    }

    /// SQL `RESET ALL` (PostgreSQL's `ResetAllOptions`): every user/superuser setting the
    /// session changed goes back to its reset value, transactionally.
    pub fn reset_all(&mut self) {
        let level = self.nest_level;
        for var in self.vars.values_mut() {
            if !matches!(var.def.context, Context::User | Context::Superuser)
                || var.def.flags & NO_RESET_ALL != 0
                || var.cur.source <= Source::Override
            {
                continue;
            }
            push_old_value(var, Action::Set, level);
            var.cur = var.reset.clone();
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
        for var in self.vars.values_mut() {
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
                } else if prev_level.map_or(true, |p| p + 1 < level) {
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

    /// Transaction end: [`at_eoxact`](Self::at_eoxact) at level 1.
    pub fn end_transaction(&mut self, commit: bool) {
        self.at_eoxact(commit, 1);
    }

    // ---- reading -----------------------------------------------------------------------------

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
            return Err(GucError::NoShowPermission(v.name.clone()));
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
            .vars
            .values()
            .filter(move |v| {
                v.def.flags & NO_SHOW_ALL == 0
                    && (privileged || v.def.flags & SUPERUSER_ONLY == 0)
            })
            .collect();
        vars.sort_by_key(|v| v.name.to_ascii_lowercase());
        vars.into_iter()
    }

    /// `SHOW ALL`: (name, setting, description), sorted by name.
    pub fn show_all(&self, privileged: bool) -> Vec<ShowAllRow> {
        self.visible(privileged)
            .map(|v| ShowAllRow {
                name: v.name.clone(),
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
                    Kind::Bool { boot } => (None, None, None, Some(format_value(d, &Value::Bool(boot), false))),
                    Kind::Int { boot, min, max } => (
                        Some(min.to_string()),
                        Some(max.to_string()),
                        None,
                        Some(boot.to_string()),
                    ),
                    Kind::Real { boot, min, max } => (
                        Some(fmt_g(min)),
                        Some(fmt_g(max)),
                        None,
                        Some(fmt_g(boot)),
                    ),
                    Kind::String { boot } => (None, None, None, Some(boot.to_owned())),
                    Kind::Enum { boot, options } => (
                        None,
                        None,
                        Some(options.iter().filter(|o| !o.hidden).map(|o| o.name.to_owned()).collect()),
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
                    name: v.name.clone(),
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
            if !self.vars.contains_key(&key(&item.name)) && !valid_custom_name(&item.name) {
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
            .vars
            .iter()
            .filter(|(k, v)| v.reset.source == Source::File && !in_file.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in removed {
            let Some(var) = self.vars.get_mut(&k) else { continue };
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
            if let Ok(Outcome::Applied) =
                self.set_option(&name, None, context, Source::Default, Action::Set, None, true)
            {
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
                .vars
                .values()
                .filter(|v| v.cur.source != Source::Default)
                .map(|v| SnapshotEntry {
                    name: v.name.clone(),
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
            if !s.vars.contains_key(&k) && valid_custom_name(&e.name) {
                let _ = s.set_option(&e.name, Some(""), Context::User, Source::Default, Action::Set, None, true);
            }
            let Some(var) = s.vars.get_mut(&k) else {
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
            let Ok(now) = self.show(def.name) else { continue };
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
    let mut group = "";
    for d in crate::DEFS.iter().filter(|d| {
        d.context != Context::Internal && d.flags & (NOT_IN_SAMPLE | DISALLOW_IN_FILE) == 0
    }) {
        if d.group != group {
            group = d.group;
            s.push_str(&format!("\n# - {group} -\n\n"));
        }
        let boot = boot_value(d);
        let shown = match d.kind {
            Kind::String { .. } | Kind::Enum { .. } => {
                format!("'{}'", format_value(d, &boot, true).replace('\'', "''"))
            }
            _ => format_value(d, &boot, true),
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
        s.push_str(&format!("#{} = {shown}\t# {}{notes}\n", d.name, d.short_desc));
    }
    s
}
