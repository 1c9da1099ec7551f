//! What the backend supplies: the [`Session`] (settings, time zone, clock, notices), and the
//! [`Catalog`] of server functions and views it registers.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::datetime::{TimeZone, UNIX_TO_PG_USECS};
use crate::error::{QueryError, Result};
use crate::types::Type;
use crate::value::Datum;

/// The session a statement runs in. The backend implements it over its settings
/// ([`GucSession`] is one over `pgipc_guc::Settings`).
pub trait Session {
    /// `current_setting(name, missing_ok)` / `SHOW name`: the value as SHOW prints it;
    /// `Ok(None)` for an unknown name with `missing_ok`.
    fn current_setting(&mut self, name: &str, missing_ok: bool) -> Result<Option<String>>;
    /// `set_config(name, value, is_local)`: sets and returns the new value as SHOW prints it.
    fn set_config(&mut self, name: &str, value: &str, is_local: bool) -> Result<String>;
    /// The session's TimeZone, for timestamptz input and output.
    fn time_zone(&self) -> TimeZone;
    /// `transaction_timestamp()` (= `now()`, `current_timestamp`), PostgreSQL microseconds.
    fn transaction_timestamp(&self) -> i64;
    /// `statement_timestamp()`.
    fn statement_timestamp(&self) -> i64;
    /// `clock_timestamp()`: the real time now.
    fn clock_timestamp(&self) -> i64 {
        system_now()
    }
    /// A NOTICE or WARNING a function raises (severity `WARNING`, `NOTICE`...).
    fn notice(&mut self, severity: &'static str, notice: QueryError);
    /// Checks for a pending cancel/terminate between rows (PostgreSQL's
    /// `CHECK_FOR_INTERRUPTS`); an error ends the statement.
    fn check_for_interrupts(&mut self) -> Result<()> {
        Ok(())
    }
    /// The session's settings, for views such as `pg_settings` (None where there are none).
    fn settings(&self) -> Option<&pgipc_guc::Settings> {
        None
    }
}

/// The system clock in PostgreSQL microseconds since 2000-01-01 UTC.
pub fn system_now() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as i64 - UNIX_TO_PG_USECS
}

/// A function's volatility (`provolatile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    /// Same result for the same arguments, always.
    Immutable,
    /// Same result within a statement.
    Stable,
    /// May change at each call, or has side effects.
    Volatile,
}

/// A server function's body.
pub type ServerFn = Rc<dyn Fn(&mut dyn Session, &[Datum]) -> Result<Datum>>;

/// A function the backend registers (`pg_backend_pid`, `pg_cancel_backend`...).
#[derive(Clone)]
pub struct ServerFunction {
    /// Name, lower case.
    pub name: String,
    /// Argument types.
    pub args: Vec<Type>,
    /// Result type.
    pub result: Type,
    /// Volatility.
    pub volatility: Volatility,
    /// Strict: NULL in any argument gives NULL without calling.
    pub strict: bool,
    /// The body.
    pub call: ServerFn,
}

impl fmt::Debug for ServerFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerFunction")
            .field("name", &self.name)
            .field("args", &self.args)
            .field("result", &self.result)
            .field("volatility", &self.volatility)
            .field("strict", &self.strict)
            .finish_non_exhaustive()
    }
}

/// A set-returning function's body: its rows for the arguments (one datum per column).
pub type SetFn = Rc<dyn Fn(&mut dyn Session, &[Datum]) -> Result<RowIter>>;

/// A set-returning function (`proretset`), usable in FROM (`SELECT * FROM f(...)`) and, if it
/// has one column, as the whole target of a FROM-less SELECT (`SELECT f(...)`): built-in
/// ones such as `pg_snapshot_xip`, or the backend's such as `pg_stat_get_activity`.
#[derive(Clone)]
pub struct SetFunction {
    /// Name, lower case.
    pub name: String,
    /// Argument types.
    pub args: Vec<Type>,
    /// Result columns; a function with one column returns a scalar set, and the column is
    /// named after the function unless an alias says otherwise.
    pub columns: Vec<Column>,
    /// Strict: NULL in any argument gives no rows without calling.
    pub strict: bool,
    /// The body.
    pub call: SetFn,
}

impl fmt::Debug for SetFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetFunction")
            .field("name", &self.name)
            .field("args", &self.args)
            .field("columns", &self.columns)
            .field("strict", &self.strict)
            .finish_non_exhaustive()
    }
}

/// A result or view column: name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: Type,
}

impl Column {
    /// A column.
    pub fn new(name: impl Into<String>, ty: Type) -> Column {
        Column {
            name: name.into(),
            ty,
        }
    }
}

/// The rows of a view, pulled one at a time.
pub type RowIter = Box<dyn Iterator<Item = Result<Vec<Datum>>>>;

/// A view the backend provides (`pg_settings`, `pg_stat_activity`).
pub trait View {
    /// The columns, in order.
    fn columns(&self) -> Vec<Column>;
    /// The rows; each has one datum per column, of the column's type (or NULL).
    fn scan(&self, session: &mut dyn Session) -> Result<RowIter>;
}

/// The functions and views the backend adds to the built-in ones.
#[derive(Default, Clone)]
pub struct Catalog {
    functions: HashMap<String, Vec<Rc<ServerFunction>>>,
    set_functions: HashMap<String, Vec<Rc<SetFunction>>>,
    views: HashMap<String, Rc<dyn View>>,
    /// Entries registered on first look-up ([`Catalog::deferred`]); clones share them.
    deferred: Option<Rc<Deferred>>,
}

/// The part of a catalog built when a query first looks a function or view up.
struct Deferred {
    built: std::cell::OnceCell<Catalog>,
    build: std::cell::Cell<Option<DeferredBuild>>,
}

type DeferredBuild = Box<dyn FnOnce(&mut Catalog)>;

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.views.keys().collect();
        names.sort();
        f.debug_struct("Catalog")
            .field("functions", &self.functions.len())
            .field("views", &names)
            .field(
                "deferred",
                &self.deferred.as_ref().map(|d| d.built.get().is_some()),
            )
            .finish()
    }
}

impl Catalog {
    /// An empty catalog: only the built-in functions.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Registers a function; overloads with other argument types may coexist. A server
    /// function shadows a built-in one with the same argument types.
    pub fn add_function(&mut self, f: ServerFunction) {
        let name = f.name.to_ascii_lowercase();
        self.functions.entry(name).or_default().push(Rc::new(f));
    }

    /// Registers a set-returning function; overloads may coexist.
    pub fn add_set_function(&mut self, f: SetFunction) {
        let name = f.name.to_ascii_lowercase();
        self.set_functions.entry(name).or_default().push(Rc::new(f));
    }

    /// Registers a view under `name` (lower case, as an unquoted name is folded).
    pub fn add_view(&mut self, name: &str, view: Rc<dyn View>) {
        self.views.insert(name.to_ascii_lowercase(), view);
    }

    /// A catalog whose entries `build` registers the first time a query looks up a function
    /// (set-returning ones included) or a view (a statement with neither, such as `SELECT 1`, never builds them). Entries
    /// added directly count as registered after `build`'s: a view added directly hides a
    /// deferred one of the same name, and functions keep that order.
    pub fn deferred(build: impl FnOnce(&mut Catalog) + 'static) -> Catalog {
        Catalog {
            deferred: Some(Rc::new(Deferred {
                built: std::cell::OnceCell::new(),
                build: std::cell::Cell::new(Some(Box::new(build))),
            })),
            ..Catalog::default()
        }
    }

    /// Whether the deferred entries have been built (always true without any).
    pub fn is_built(&self) -> bool {
        self.deferred
            .as_ref()
            .is_none_or(|d| d.built.get().is_some())
    }

    fn deferred_part(&self) -> Option<&Catalog> {
        let d = self.deferred.as_ref()?;
        Some(d.built.get_or_init(|| {
            let mut c = Catalog::new();
            if let Some(build) = d.build.take() {
                build(&mut c);
            }
            c
        }))
    }

    pub(crate) fn functions(&self, name: &str) -> Vec<Rc<ServerFunction>> {
        let mut all = self
            .deferred_part()
            .map_or_else(Vec::new, |d| d.functions(name));
        if let Some(own) = self.functions.get(name) {
            all.extend(own.iter().cloned());
        }
        all
    }

    pub(crate) fn set_functions(&self, name: &str) -> Vec<Rc<SetFunction>> {
        let mut all = self
            .deferred_part()
            .map_or_else(Vec::new, |d| d.set_functions(name));
        if let Some(own) = self.set_functions.get(name) {
            all.extend(own.iter().cloned());
        }
        all
    }

    pub(crate) fn view(&self, name: &str) -> Option<&Rc<dyn View>> {
        self.views
            .get(name)
            .or_else(|| self.deferred_part()?.view(name))
    }
}

/// A [`Session`] over `pgipc_guc::Settings`: `current_setting` is `Settings::show`,
/// `set_config` is `SET` (or `SET LOCAL`); the clock is fixed or the system's.
#[derive(Debug)]
pub struct GucSession {
    /// The settings.
    pub settings: pgipc_guc::Settings,
    /// Whether the session is a superuser's.
    pub superuser: bool,
    /// Transaction and statement timestamps; `None` reads the system clock.
    pub fixed_clock: Option<i64>,
    /// Notices raised, oldest first.
    pub notices: Vec<(&'static str, QueryError)>,
    tz: TimeZone,
}

impl GucSession {
    /// A superuser session over `settings`, TimeZone taken from them.
    pub fn new(settings: pgipc_guc::Settings) -> GucSession {
        let tz = settings
            .show("TimeZone")
            .ok()
            .and_then(|n| TimeZone::from_setting(&n).ok())
            .unwrap_or_else(TimeZone::utc);
        GucSession {
            settings,
            superuser: true,
            fixed_clock: None,
            notices: Vec::new(),
            tz,
        }
    }
}

impl Session for GucSession {
    fn current_setting(&mut self, name: &str, missing_ok: bool) -> Result<Option<String>> {
        match self.settings.show_as(name, self.superuser) {
            Ok(v) => Ok(Some(v)),
            Err(pgipc_guc::GucError::Unknown(..)) if missing_ok => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn set_config(&mut self, name: &str, value: &str, is_local: bool) -> Result<String> {
        if name.eq_ignore_ascii_case("timezone") {
            self.tz = TimeZone::from_setting(value)?;
        }
        self.settings
            .set_session(name, value, self.superuser, is_local)?;
        Ok(self.settings.show(name)?)
    }

    fn time_zone(&self) -> TimeZone {
        self.tz.clone()
    }

    fn transaction_timestamp(&self) -> i64 {
        self.fixed_clock.unwrap_or_else(system_now)
    }

    fn statement_timestamp(&self) -> i64 {
        self.fixed_clock.unwrap_or_else(system_now)
    }

    fn notice(&mut self, severity: &'static str, notice: QueryError) {
        self.notices.push((severity, notice));
    }

    fn settings(&self) -> Option<&pgipc_guc::Settings> {
        Some(&self.settings)
    }
}
