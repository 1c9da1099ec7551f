//! Wait events: what a process is waiting for, as one `u32` in its PGPROC (PostgreSQL's
//! `utils/activity/wait_event.c`, the generated tables of `wait_event_names.txt`, and
//! `pg_wait_events`).
//!
//! ```text
//!  wait_event_info = class << 24 | id        (class: PG_WAIT_* below; 0 = not waiting)
//!  ┌──────────┬────────────────────────┐
//!  │ class u8 │ id u24 (event or tranche)│   Activity/Client/IPC/Timeout: index in the class's
//!  └──────────┴────────────────────────┘   list sorted by symbol; LWLock: the tranche id
//!
//!  process start ── set_wait_event_storage(&my PGPROC slot's wait_event_info)
//!  report_wait_start(info) ─► *storage = info      report_wait_end() ─► *storage = 0
//!  any reader ── decode(info) ─► ("Timeout", "PgSleep")
//! ```
//!
//! Until a process sets its storage (and after it resets it at exit), reports go to a
//! process-local word, as PostgreSQL's `local_my_wait_event_info`: reporting is always safe.
//!
//! # Concurrency contract
//! The word is written by its owning process only, with relaxed stores (PostgreSQL writes it
//! through a `volatile` pointer); readers load it relaxed and may see a wait that has just
//! ended. The storage pointer itself is process-local.
//!
//! # What this crate does not do
//! No custom (extension or injection point) wait events, no heavyweight Lock, BufferPin or IO
//! events (pgipc has none of those waits). LWLock rows of `pg_wait_events` list the
//! individual locks and the `LockFastPath` tranche with PostgreSQL 18's sentences; pgipc's
//! own `Test` tranche and add-in tranches have no row.
//!
//! Key items: [`WaitClass`], [`decode`], [`report_wait_start`], [`report_wait_end`],
//! [`set_wait_event_storage`], [`pg_wait_events`], and the `WAIT_EVENT_*` constants.

mod table;

use pgipc_lwlock::{tranche_name, MainLWLockId, TrancheId};
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::OnceLock;

/// Class of LWLock waits (`PG_WAIT_LWLOCK`); the id is the tranche.
pub const PG_WAIT_LWLOCK: u32 = 0x0100_0000;
/// Class of heavyweight lock waits (`PG_WAIT_LOCK`).
pub const PG_WAIT_LOCK: u32 = 0x0300_0000;
/// Class of buffer pin waits (`PG_WAIT_BUFFERPIN`).
pub const PG_WAIT_BUFFERPIN: u32 = 0x0400_0000;
/// Class of idle main loops (`PG_WAIT_ACTIVITY`).
pub const PG_WAIT_ACTIVITY: u32 = 0x0500_0000;
/// Class of client I/O waits (`PG_WAIT_CLIENT`).
pub const PG_WAIT_CLIENT: u32 = 0x0600_0000;
/// Class of extension waits (`PG_WAIT_EXTENSION`).
pub const PG_WAIT_EXTENSION: u32 = 0x0700_0000;
/// Class of waits for another process (`PG_WAIT_IPC`).
pub const PG_WAIT_IPC: u32 = 0x0800_0000;
/// Class of timed sleeps (`PG_WAIT_TIMEOUT`).
pub const PG_WAIT_TIMEOUT: u32 = 0x0900_0000;
/// Class of I/O waits (`PG_WAIT_IO`).
pub const PG_WAIT_IO: u32 = 0x0A00_0000;
/// Class of injection point waits (`PG_WAIT_INJECTIONPOINT`).
pub const PG_WAIT_INJECTIONPOINT: u32 = 0x0B00_0000;

/// A wait event class, as `wait_event_type` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitClass {
    /// `LWLock`.
    LWLock,
    /// `Lock`.
    Lock,
    /// `BufferPin`.
    BufferPin,
    /// `Activity`.
    Activity,
    /// `Client`.
    Client,
    /// `Extension`.
    Extension,
    /// `IPC`.
    Ipc,
    /// `Timeout`.
    Timeout,
    /// `IO`.
    Io,
    /// `InjectionPoint`.
    InjectionPoint,
}

impl WaitClass {
    /// The class's bits (`PG_WAIT_*`).
    pub const fn bits(self) -> u32 {
        match self {
            WaitClass::LWLock => PG_WAIT_LWLOCK,
            WaitClass::Lock => PG_WAIT_LOCK,
            WaitClass::BufferPin => PG_WAIT_BUFFERPIN,
            WaitClass::Activity => PG_WAIT_ACTIVITY,
            WaitClass::Client => PG_WAIT_CLIENT,
            WaitClass::Extension => PG_WAIT_EXTENSION,
            WaitClass::Ipc => PG_WAIT_IPC,
            WaitClass::Timeout => PG_WAIT_TIMEOUT,
            WaitClass::Io => PG_WAIT_IO,
            WaitClass::InjectionPoint => PG_WAIT_INJECTIONPOINT,
        }
    }

    /// The class of a `wait_event_info`, if it names one.
    pub fn of(info: u32) -> Option<WaitClass> {
        Some(match info & 0xFF00_0000 {
            PG_WAIT_LWLOCK => WaitClass::LWLock,
            PG_WAIT_LOCK => WaitClass::Lock,
            PG_WAIT_BUFFERPIN => WaitClass::BufferPin,
            PG_WAIT_ACTIVITY => WaitClass::Activity,
            PG_WAIT_CLIENT => WaitClass::Client,
            PG_WAIT_EXTENSION => WaitClass::Extension,
            PG_WAIT_IPC => WaitClass::Ipc,
            PG_WAIT_TIMEOUT => WaitClass::Timeout,
            PG_WAIT_IO => WaitClass::Io,
            PG_WAIT_INJECTIONPOINT => WaitClass::InjectionPoint,
            _ => return None,
        })
    }

    /// The name `wait_event_type` shows (`pgstat_get_wait_event_type`).
    pub const fn name(self) -> &'static str {
        match self {
            WaitClass::LWLock => "LWLock",
            WaitClass::Lock => "Lock",
            WaitClass::BufferPin => "BufferPin",
            WaitClass::Activity => "Activity",
            WaitClass::Client => "Client",
            WaitClass::Extension => "Extension",
            WaitClass::Ipc => "IPC",
            WaitClass::Timeout => "Timeout",
            WaitClass::Io => "IO",
            WaitClass::InjectionPoint => "InjectionPoint",
        }
    }

    /// The class's event list (symbol, documentation sentence), empty for classes pgipc does
    /// not list.
    fn list(self) -> &'static [(&'static str, &'static str)] {
        match self {
            WaitClass::Activity => table::ACTIVITY,
            WaitClass::Client => table::CLIENT,
            WaitClass::Ipc => table::IPC,
            WaitClass::Timeout => table::TIMEOUT,
            _ => &[],
        }
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The `wait_event_info` of event `symbol` (the upper-case `wait_event_names.txt` symbol) of
/// `class`; a symbol not in the list fails to compile when used in a constant.
pub const fn event(class: WaitClass, symbol: &str) -> u32 {
    let list = match class {
        WaitClass::Activity => table::ACTIVITY,
        WaitClass::Client => table::CLIENT,
        WaitClass::Ipc => table::IPC,
        WaitClass::Timeout => table::TIMEOUT,
        _ => panic!("class has no event list"),
    };
    let mut i = 0;
    while i < list.len() {
        if str_eq(list[i].0, symbol) {
            return class.bits() | i as u32;
        }
        i += 1;
    }
    panic!("unknown wait event")
}

/// `Activity/ArchiverMain`.
pub const WAIT_EVENT_ARCHIVER_MAIN: u32 = event(WaitClass::Activity, "ARCHIVER_MAIN");
/// `Activity/AutovacuumMain`.
pub const WAIT_EVENT_AUTOVACUUM_MAIN: u32 = event(WaitClass::Activity, "AUTOVACUUM_MAIN");
/// `Activity/BgwriterHibernate`.
pub const WAIT_EVENT_BGWRITER_HIBERNATE: u32 = event(WaitClass::Activity, "BGWRITER_HIBERNATE");
/// `Activity/BgwriterMain`.
pub const WAIT_EVENT_BGWRITER_MAIN: u32 = event(WaitClass::Activity, "BGWRITER_MAIN");
/// `Activity/CheckpointerMain`.
pub const WAIT_EVENT_CHECKPOINTER_MAIN: u32 = event(WaitClass::Activity, "CHECKPOINTER_MAIN");
/// `Activity/IoWorkerMain`.
pub const WAIT_EVENT_IO_WORKER_MAIN: u32 = event(WaitClass::Activity, "IO_WORKER_MAIN");
/// `Activity/WalWriterMain`.
pub const WAIT_EVENT_WAL_WRITER_MAIN: u32 = event(WaitClass::Activity, "WAL_WRITER_MAIN");
/// `Activity/SysloggerMain`.
pub const WAIT_EVENT_SYSLOGGER_MAIN: u32 = event(WaitClass::Activity, "SYSLOGGER_MAIN");
/// `Client/ClientRead`.
pub const WAIT_EVENT_CLIENT_READ: u32 = event(WaitClass::Client, "CLIENT_READ");
/// `Client/ClientWrite`.
pub const WAIT_EVENT_CLIENT_WRITE: u32 = event(WaitClass::Client, "CLIENT_WRITE");
/// `IPC/BgworkerStartup`.
pub const WAIT_EVENT_BGWORKER_STARTUP: u32 = event(WaitClass::Ipc, "BGWORKER_STARTUP");
/// `IPC/BgworkerShutdown`.
pub const WAIT_EVENT_BGWORKER_SHUTDOWN: u32 = event(WaitClass::Ipc, "BGWORKER_SHUTDOWN");
/// `IPC/MessageQueueInternal`.
pub const WAIT_EVENT_MESSAGE_QUEUE_INTERNAL: u32 = event(WaitClass::Ipc, "MESSAGE_QUEUE_INTERNAL");
/// `IPC/MessageQueueReceive`.
pub const WAIT_EVENT_MESSAGE_QUEUE_RECEIVE: u32 = event(WaitClass::Ipc, "MESSAGE_QUEUE_RECEIVE");
/// `IPC/MessageQueueSend`.
pub const WAIT_EVENT_MESSAGE_QUEUE_SEND: u32 = event(WaitClass::Ipc, "MESSAGE_QUEUE_SEND");
/// `IPC/ProcarrayGroupUpdate`.
pub const WAIT_EVENT_PROCARRAY_GROUP_UPDATE: u32 = event(WaitClass::Ipc, "PROCARRAY_GROUP_UPDATE");
/// `IPC/ProcSignalBarrier`.
pub const WAIT_EVENT_PROC_SIGNAL_BARRIER: u32 = event(WaitClass::Ipc, "PROC_SIGNAL_BARRIER");
/// `IPC/BackendTermination`.
pub const WAIT_EVENT_BACKEND_TERMINATION: u32 = event(WaitClass::Ipc, "BACKEND_TERMINATION");
/// `IPC/CheckpointDone`.
pub const WAIT_EVENT_CHECKPOINT_DONE: u32 = event(WaitClass::Ipc, "CHECKPOINT_DONE");
/// `IPC/CheckpointStart`.
pub const WAIT_EVENT_CHECKPOINT_START: u32 = event(WaitClass::Ipc, "CHECKPOINT_START");
/// `Extension/Extension`: an extension's wait without a custom name (`WAIT_EVENT_EXTENSION`).
pub const WAIT_EVENT_EXTENSION: u32 = PG_WAIT_EXTENSION;
/// `Timeout/PgSleep`.
pub const WAIT_EVENT_PG_SLEEP: u32 = event(WaitClass::Timeout, "PG_SLEEP");
/// `Timeout/SpinDelay`.
pub const WAIT_EVENT_SPIN_DELAY: u32 = event(WaitClass::Timeout, "SPIN_DELAY");

/// The `wait_event_info` of a wait for an LWLock of `tranche`.
pub const fn lwlock_event(tranche: TrancheId) -> u32 {
    PG_WAIT_LWLOCK | tranche.0 as u32
}

/// One event as `pg_wait_events` lists it and `pg_stat_activity` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitEventRow {
    /// `type`.
    pub class: WaitClass,
    /// `name`, in PostgreSQL's generated camel case (`CHECKPOINTER_MAIN` → `CheckpointerMain`).
    pub name: String,
    /// `description`, with the documentation markup removed as PostgreSQL's generator does.
    pub description: String,
    /// The event's `wait_event_info`.
    pub info: u32,
}

/// PostgreSQL 18's documentation sentence for the LWLock tranche `name` (with its markup).
fn lwlock_description(name: &str) -> Option<&'static str> {
    table::LWLOCK
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
}

/// `ARCHIVE_CLEANUP_COMMAND` → `ArchiveCleanupCommand`.
fn camel(symbol: &str) -> String {
    let mut out = String::with_capacity(symbol.len());
    for part in symbol.split('_') {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            out.push(c);
            out.extend(chars.flat_map(char::to_lowercase));
        }
    }
    out
}

/// A documentation sentence without its markup: `<xref linkend="guc-x-y"/>` → `x_y`, any
/// `<tag>text</tag>` → `text`, and a trailing "; see …" dropped.
fn plain(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = &rest[start..start + len + 1];
        if let Some(guc) = tag
            .strip_prefix("<xref linkend=\"guc-")
            .and_then(|t| t.strip_suffix("\"/>"))
        {
            out.push_str(&guc.replace('-', "_"));
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    if let Some(i) = out.find("; see") {
        out.truncate(i);
    }
    out
}

fn rows() -> &'static [WaitEventRow] {
    static ROWS: OnceLock<Vec<WaitEventRow>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let mut rows = Vec::new();
        for class in [
            WaitClass::Activity,
            WaitClass::Client,
            WaitClass::Ipc,
            WaitClass::Timeout,
        ] {
            for (i, (symbol, doc)) in class.list().iter().enumerate() {
                rows.push(WaitEventRow {
                    class,
                    name: camel(symbol),
                    description: plain(doc),
                    info: class.bits() | i as u32,
                });
            }
        }
        let tranches = MainLWLockId::ALL
            .iter()
            .map(|l| l.tranche())
            .chain([pgipc_lwlock::tranche::builtin::LOCK_FASTPATH]);
        for tranche in tranches {
            let name = tranche_name(tranche);
            rows.push(WaitEventRow {
                class: WaitClass::LWLock,
                name: name.to_owned(),
                description: lwlock_description(name)
                    .map_or_else(|| format!("Waiting for the {name} lock."), plain),
                info: lwlock_event(tranche),
            });
        }
        rows.sort_by(|a, b| {
            a.class
                .name()
                .to_uppercase()
                .cmp(&b.class.name().to_uppercase())
                .then_with(|| a.info.cmp(&b.info))
        });
        rows
    })
}

/// The rows of `pg_wait_events` (PostgreSQL 17): classes in case-insensitive name order, each
/// class's events in id order.
pub fn pg_wait_events() -> &'static [WaitEventRow] {
    rows()
}

/// The (`wait_event_type`, `wait_event`) a `wait_event_info` shows in `pg_stat_activity`
/// (`pgstat_get_wait_event_type` / `pgstat_get_wait_event`): `None` for 0 (not waiting),
/// `"unknown wait event"` for an id the class does not list, the tranche name for LWLocks.
pub fn decode(info: u32) -> Option<(&'static str, &'static str)> {
    if info == 0 {
        return None;
    }
    let Some(class) = WaitClass::of(info) else {
        return Some(("???", "unknown wait event"));
    };
    let id = info & 0x00FF_FFFF;
    let name = match class {
        WaitClass::LWLock => match u16::try_from(id) {
            Ok(t) => tranche_name(TrancheId(t)),
            Err(_) => "unknown wait event",
        },
        WaitClass::Activity | WaitClass::Client | WaitClass::Ipc | WaitClass::Timeout => rows()
            .iter()
            .find(|r| r.info == info)
            .map_or("unknown wait event", |r| r.name.as_str()),
        WaitClass::Extension if id == 0 => "Extension",
        _ => "unknown wait event",
    };
    Some((class.name(), name))
}

/// Where reports go before a process has a PGPROC (`local_my_wait_event_info`).
static LOCAL_WAIT_EVENT_INFO: AtomicU32 = AtomicU32::new(0);
/// The process's report target (`my_wait_event_info`).
static MY_WAIT_EVENT_INFO: AtomicPtr<AtomicU32> =
    AtomicPtr::new(&LOCAL_WAIT_EVENT_INFO as *const AtomicU32 as *mut AtomicU32);

/// Points this process's wait reports at `storage`, normally its PGPROC's `wait_event_info`
/// (`pgstat_set_wait_event_storage`).
///
/// # Safety
/// `storage` must stay valid (mapped) until [`reset_wait_event_storage`] is called; the
/// caller resets it before unmapping (an exit callback).
pub unsafe fn set_wait_event_storage(storage: *const AtomicU32) {
    MY_WAIT_EVENT_INFO.store(storage.cast_mut(), Ordering::Relaxed);
}

/// Points wait reports back at the process-local word (`pgstat_reset_wait_event_storage`).
pub fn reset_wait_event_storage() {
    MY_WAIT_EVENT_INFO.store(
        &LOCAL_WAIT_EVENT_INFO as *const AtomicU32 as *mut AtomicU32,
        Ordering::Relaxed,
    );
}

fn storage() -> &'static AtomicU32 {
    let p = MY_WAIT_EVENT_INFO.load(Ordering::Relaxed);
    // SAFETY: either the static local word or a pointer `set_wait_event_storage`'s caller
    // promised valid until it resets it (server processes are single-threaded, so no reset
    // races this use).
    unsafe { &*p }
}

/// Publishes that this process starts waiting for `info` (`pgstat_report_wait_start`).
#[inline]
pub fn report_wait_start(info: u32) {
    storage().store(info, Ordering::Relaxed);
}

/// Publishes that the wait ended (`pgstat_report_wait_end`).
#[inline]
pub fn report_wait_end() {
    storage().store(0, Ordering::Relaxed);
}

/// What this process reports right now (0 = not waiting).
pub fn my_wait_event_info() -> u32 {
    storage().load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests;
