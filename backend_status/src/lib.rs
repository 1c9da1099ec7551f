//! The Backend Status Array: what every process of the server is doing, for
//! `pg_stat_activity` (PostgreSQL's `utils/activity/backend_status.c`).
//!
//! ```text
//!  "Backend Status Array"            one PgBackendStatus per proc number
//!  ┌──────────────────────────────┐  (MaxBackends + NUM_AUXILIARY_PROCS = NumBackendStatSlots)
//!  │ changecount  (odd = writing) │
//!  │ pid, backend type, state     │  written only by the process that owns the proc number
//!  │ timestamps, db/user ids+names│
//!  │ client family/addr/port      │
//!  │ query_id                     │
//!  └──────────────────────────────┘
//!  "Backend Application Name Buffer"   NAMEDATALEN bytes per slot  ┐ slot i's text lives at
//!  "Backend Client Host Name Buffer"   NAMEDATALEN bytes per slot  │ i * width (offsets, never
//!  "Backend Activity Buffer"  track_activity_query_size per slot   ┘ pointers)
//!  "Backend SSL Status Buffer"  one PgBackendSslStatus per slot (ssl, bits, version,
//!                               cipher, client DN, serial, issuer DN; written at start)
//!
//!  writer: changecount += 1 (odd) ─ write fields ─ changecount += 1 (even)
//!  reader: c1 = changecount ─ copy ─ c2 = changecount; keep the copy iff c1 == c2 and even
//! ```
//!
//! # Concurrency contract
//! * Entry *i* and its text slots are written only by the process holding proc number *i*
//!   ([`StatusWriter`]), between [`PgBackendStatus::changecount`] going odd and going even
//!   again (PostgreSQL's `PGSTAT_BEGIN_WRITE_ACTIVITY` / `PGSTAT_END_WRITE_ACTIVITY`).
//! * Readers never lock: they copy the entry and retry until they saw the same even count
//!   before and after ([`BackendStatusArray::read_entry`]); every field is an atomic, so a
//!   torn copy is discarded rather than being undefined behaviour. The protocol is checked by
//!   the exhaustive model in `model.rs`.
//! * `xid`, `xmin` and the wait event are not here: readers take them from the PGPROC of the
//!   same proc number, as `pgstat_read_current_status` does.
//!
//! # What this crate does not do
//! No GSS status buffer (pgipc has no GSSAPI), no progress-reporting fields
//! (`st_progress_*`), no per-backend I/O statistics. Database and role names are kept as text
//! in the entry (there is no catalog to look ids up in). Activity text is clipped to
//! `track_activity_query_size - 1` bytes at a UTF-8 character boundary when written.
//!
//! Key items: [`shmem_init`], [`BackendStatusArray`], [`StatusWriter`], [`BackendState`],
//! [`BackendStatus`].

mod model;

use pgipc_proc::{BackendType, ProcGlobal, ProcNumber, INVALID_TRANSACTION_ID};
use pgipc_shmem::{InitKind, Shared, Shmem, ShmemError, ShmemSafe};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{fence, AtomicI32, AtomicI64, AtomicU32, AtomicU8, Ordering};

/// The array's name in the Shmem Index.
pub const BACKEND_STATUS_ARRAY_NAME: &str = "Backend Status Array";
/// The application names' region.
pub const APPNAME_BUFFER_NAME: &str = "Backend Application Name Buffer";
/// The client host names' region.
pub const CLIENT_HOSTNAME_BUFFER_NAME: &str = "Backend Client Host Name Buffer";
/// The activity (query text) region.
pub const ACTIVITY_BUFFER_NAME: &str = "Backend Activity Buffer";
/// Name of the SSL status region (`BackendSslStatusBuffer`).
pub const SSL_STATUS_BUFFER_NAME: &str = "Backend SSL Status Buffer";
/// PostgreSQL's `NAMEDATALEN`: room for a name and its terminating zero.
pub const NAMEDATALEN: usize = 64;
/// `track_activity_query_size`'s default.
pub const DEFAULT_TRACK_ACTIVITY_QUERY_SIZE: usize = 1024;

/// Why the array could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum BackendStatusError {
    /// A region could not be created or found.
    #[error(transparent)]
    Shmem(#[from] ShmemError),
    /// `track_activity_query_size` outside PostgreSQL's range (100 .. 1048576).
    #[error("invalid value for parameter \"track_activity_query_size\": {0}")]
    BadQuerySize(usize),
    /// The slot count overflows.
    #[error("too many backend status slots: {0}")]
    TooManySlots(usize),
    /// The postmaster created no Backend Status Array in this segment.
    #[error("the Backend Status Array does not exist")]
    NotCreated,
    /// A proc number outside the array.
    #[error("proc number {procno} has no backend status slot ({slots} slots)")]
    NoSlot {
        /// The proc number asked for.
        procno: ProcNumber,
        /// Slots in the array.
        slots: usize,
    },
}

/// What a process is doing (`BackendState`), as `pg_stat_activity.state` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BackendState {
    /// No state (auxiliary processes): `state` is NULL.
    Undefined = 0,
    /// Starting up (authentication).
    Starting,
    /// Waiting for a command.
    Idle,
    /// Running a command.
    Running,
    /// Idle inside a transaction block.
    IdleInTransaction,
    /// In a fast-path function call.
    Fastpath,
    /// Idle in a failed transaction block.
    IdleInTransactionAborted,
    /// `track_activities` is off for this session.
    Disabled,
}

impl BackendState {
    fn from_u8(v: u8) -> BackendState {
        use BackendState::*;
        [
            Undefined,
            Starting,
            Idle,
            Running,
            IdleInTransaction,
            Fastpath,
            IdleInTransactionAborted,
            Disabled,
        ]
        .get(usize::from(v))
        .copied()
        .unwrap_or(Undefined)
    }

    /// The `state` column's text, or `None` (NULL) for [`BackendState::Undefined`].
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            BackendState::Undefined => return None,
            BackendState::Starting => "starting",
            BackendState::Idle => "idle",
            BackendState::Running => "active",
            BackendState::IdleInTransaction => "idle in transaction",
            BackendState::Fastpath => "fastpath function call",
            BackendState::IdleInTransactionAborted => "idle in transaction (aborted)",
            BackendState::Disabled => "disabled",
        })
    }
}

/// PostgreSQL's description of a process kind (`GetBackendTypeDesc`), the `backend_type`
/// column.
pub fn backend_type_desc(t: BackendType) -> &'static str {
    use BackendType::*;
    match t {
        Invalid => "not initialized",
        Backend => "client backend",
        DeadEndBackend => "dead-end client backend",
        AutovacLauncher => "autovacuum launcher",
        AutovacWorker => "autovacuum worker",
        BgWorker => "background worker",
        WalSender => "walsender",
        SlotsyncWorker => "slotsync worker",
        StandaloneBackend => "standalone backend",
        Archiver => "archiver",
        BgWriter => "background writer",
        Checkpointer => "checkpointer",
        IoWorker => "io worker",
        Startup => "startup",
        WalReceiver => "walreceiver",
        WalSummarizer => "walsummarizer",
        WalWriter => "walwriter",
        Logger => "logger",
    }
}

/// Client address families stored in [`PgBackendStatus::client_family`].
const FAMILY_NONE: u8 = 0;
const FAMILY_UNIX: u8 = 1;
const FAMILY_INET: u8 = 4;
const FAMILY_INET6: u8 = 6;

/// One entry (`PgBackendStatus`).
///
/// Layout: `#[repr(C)]`, 8-byte aligned, atomics only (all-zero = a free entry, pid 0).
/// Synchronization: the crate's change-count protocol; written by the slot's owner only.
#[repr(C)]
#[derive(Debug)]
pub struct PgBackendStatus {
    /// Odd while the owner writes (`st_changecount`).
    pub changecount: AtomicU32,
    /// OS process id, 0 when the entry is unused (`st_procpid`).
    pub procpid: AtomicI32,
    /// [`BackendType`] as its `u8` (`st_backendType`).
    pub backend_type: AtomicU8,
    /// [`BackendState`] as its `u8` (`st_state`).
    pub state: AtomicU8,
    /// 0 none, 1 Unix socket, 4 IPv4, 6 IPv6.
    pub client_family: AtomicU8,
    _pad: AtomicU8,
    /// Client port (`-1` for a Unix socket).
    pub client_port: AtomicI32,
    /// Database OID (`st_databaseid`).
    pub database_id: AtomicU32,
    /// Role OID (`st_userid`).
    pub user_id: AtomicU32,
    _pad2: AtomicU32,
    /// Process start, PostgreSQL µs since 2000-01-01 (`st_proc_start_timestamp`).
    pub proc_start: AtomicI64,
    /// Transaction start, 0 = none (`st_xact_start_timestamp`).
    pub xact_start: AtomicI64,
    /// Current statement start, 0 = none (`st_activity_start_timestamp`).
    pub activity_start: AtomicI64,
    /// Last state change, 0 = none (`st_state_start_timestamp`).
    pub state_start: AtomicI64,
    /// Query identifier, 0 = none (`st_query_id`).
    pub query_id: AtomicI64,
    /// Client address bytes (4 used for IPv4).
    pub client_addr: [AtomicU8; 16],
    /// Database name (pgipc: no catalog to look the OID up in).
    pub datname: [AtomicU8; NAMEDATALEN],
    /// Role name.
    pub usename: [AtomicU8; NAMEDATALEN],
}

// SAFETY: repr(C), atomics only (valid when all-zero), no pointers; Sync because atomics are.
unsafe impl ShmemSafe for PgBackendStatus {}

/// One backend's TLS state (`PgBackendSSLStatus`, with PostgreSQL's `st_ssl` flag folded in),
/// in the "Backend SSL Status Buffer" at the entry's slot.
///
/// Layout: `#[repr(C)]`, atomics only (all-zero = no TLS). Synchronization: written by the
/// slot's owner under its entry's change count, like the entry.
#[repr(C)]
#[derive(Debug)]
pub struct PgBackendSslStatus {
    /// Key bits of the cipher (`ssl_bits`).
    pub bits: AtomicI32,
    /// 1 when the connection uses TLS (`st_ssl`).
    pub ssl: AtomicU8,
    _pad: [AtomicU8; 3],
    /// Protocol version, e.g. `TLSv1.3` (`ssl_version`).
    pub version: [AtomicU8; NAMEDATALEN],
    /// Cipher suite name (`ssl_cipher`).
    pub cipher: [AtomicU8; NAMEDATALEN],
    /// Client certificate subject, "" for none (`ssl_client_dn`).
    pub client_dn: [AtomicU8; NAMEDATALEN],
    /// Client certificate serial number in decimal, "" for none (`ssl_client_serial`).
    pub client_serial: [AtomicU8; NAMEDATALEN],
    /// Client certificate issuer, "" for none (`ssl_issuer_dn`).
    pub issuer_dn: [AtomicU8; NAMEDATALEN],
}

// SAFETY: repr(C), atomics only (valid when all-zero), no pointers; Sync because atomics are.
unsafe impl ShmemSafe for PgBackendSslStatus {}

/// A backend's TLS state as written and read (`pg_stat_ssl`'s columns after `pid`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SslStatus {
    /// `version`.
    pub version: String,
    /// `cipher`.
    pub cipher: String,
    /// `bits`.
    pub bits: i32,
    /// `client_dn` (clipped to `NAMEDATALEN - 1` bytes, as PostgreSQL does).
    pub client_dn: Option<String>,
    /// `client_serial`, decimal.
    pub client_serial: Option<String>,
    /// `issuer_dn`.
    pub issuer_dn: Option<String>,
}

fn store_text(dst: &[AtomicU8], s: &str) {
    let n = clip_len(s, dst.len().saturating_sub(1));
    for (d, b) in dst.iter().zip(s.as_bytes()[..n].iter()) {
        d.store(*b, Ordering::Relaxed);
    }
    if let Some(z) = dst.get(n) {
        z.store(0, Ordering::Relaxed);
    }
}

fn load_text(src: &[AtomicU8]) -> String {
    let mut v = Vec::with_capacity(32);
    for b in src {
        match b.load(Ordering::Relaxed) {
            0 => break,
            c => v.push(c),
        }
    }
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary
/// (`pg_mbcliplen`).
pub fn clip_len(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut n = max;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// The client of a backend, for [`StartInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAddr {
    /// A TCP client.
    Inet(IpAddr, u16),
    /// A Unix-socket client (`client_addr` NULL, `client_port` -1).
    Unix,
}

/// What a process publishes when it starts (`pgstat_bestart_initial` / `_final`).
#[derive(Debug, Clone)]
pub struct StartInfo<'a> {
    /// The process kind.
    pub backend_type: BackendType,
    /// The initial state: [`BackendState::Undefined`] for processes without sessions,
    /// [`BackendState::Starting`] for backends.
    pub state: BackendState,
    /// Database OID and name (0 / "" for none).
    pub database_id: u32,
    /// Database name.
    pub datname: &'a str,
    /// Role OID (0 for none).
    pub user_id: u32,
    /// Role name.
    pub usename: &'a str,
    /// `application_name`.
    pub appname: &'a str,
    /// The client, if any.
    pub client: Option<ClientAddr>,
    /// The client's host name (`log_hostname`), or "".
    pub client_hostname: &'a str,
}

/// The five regions, attached in this process.
#[derive(Debug, Clone)]
pub struct BackendStatusArray {
    entries: Shared<[PgBackendStatus]>,
    appnames: Shared<[AtomicU8]>,
    hostnames: Shared<[AtomicU8]>,
    activities: Shared<[AtomicU8]>,
    ssl: Shared<[PgBackendSslStatus]>,
    query_size: usize,
}

fn check_sizes(slots: usize, query_size: usize) -> Result<(), BackendStatusError> {
    if !(100..=1_048_576).contains(&query_size) {
        return Err(BackendStatusError::BadQuerySize(query_size));
    }
    slots
        .checked_mul(query_size)
        .and_then(|n| n.checked_mul(2))
        .ok_or(BackendStatusError::TooManySlots(slots))?;
    Ok(())
}

/// Bytes the five regions need (`BackendStatusShmemSize`) for `slots` entries
/// (`NumBackendStatSlots`) and `query_size` (`track_activity_query_size`).
pub fn shmem_size(slots: usize, query_size: usize) -> Result<usize, BackendStatusError> {
    check_sizes(slots, query_size)?;
    let entry = std::mem::size_of::<PgBackendStatus>();
    let sum = slots
        .checked_mul(entry)
        .and_then(|a| a.checked_add(slots.checked_mul(NAMEDATALEN * 2)?))
        .and_then(|a| a.checked_add(slots.checked_mul(query_size)?))
        .and_then(|a| a.checked_add(slots.checked_mul(std::mem::size_of::<PgBackendSslStatus>())?))
        .ok_or(BackendStatusError::TooManySlots(slots))?;
    Ok(sum)
}

/// Creates the five regions (zeroed: every entry free) or attaches to them
/// (`BackendStatusShmemInit`), in PostgreSQL's order.
pub fn shmem_init(
    shmem: &Shmem,
    slots: usize,
    query_size: usize,
) -> Result<BackendStatusArray, BackendStatusError> {
    check_sizes(slots, query_size)?;
    let (entries, _): (Shared<[PgBackendStatus]>, InitKind) =
        shmem.init_slice(BACKEND_STATUS_ARRAY_NAME, slots)?;
    let (appnames, _) = shmem.init_slice(APPNAME_BUFFER_NAME, slots * NAMEDATALEN)?;
    let (hostnames, _) = shmem.init_slice(CLIENT_HOSTNAME_BUFFER_NAME, slots * NAMEDATALEN)?;
    let (activities, _) = shmem.init_slice(ACTIVITY_BUFFER_NAME, slots * query_size)?;
    let (ssl, _) = shmem.init_slice(SSL_STATUS_BUFFER_NAME, slots)?;
    Ok(BackendStatusArray {
        entries,
        appnames,
        hostnames,
        activities,
        ssl,
        query_size,
    })
}

/// Attaches to the regions the postmaster created for `slots` entries, whatever
/// `track_activity_query_size` it used (read back from the Activity Buffer's size in the Shmem
/// Index): for readers that do not know the server's setting.
pub fn attach(shmem: &Shmem, slots: usize) -> Result<BackendStatusArray, BackendStatusError> {
    let size = shmem
        .allocations()?
        .into_iter()
        .find(|r| matches!(&r.name, pgipc_shmem::AllocationName::Named(n) if n == ACTIVITY_BUFFER_NAME))
        .map(|r| r.size as usize)
        .ok_or(BackendStatusError::NotCreated)?;
    if slots == 0 {
        return Err(BackendStatusError::TooManySlots(0));
    }
    shmem_init(shmem, slots, size / slots)
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
const UNIX_TO_PG_USECS: i64 = 946_684_800_000_000;

/// The system clock in PostgreSQL microseconds since 2000-01-01 UTC (`GetCurrentTimestamp`).
pub fn pg_now() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX) - UNIX_TO_PG_USECS
}

/// One entry as a reader copied it (a row of `pgstat_read_current_status`), plain Rust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStatus {
    /// The proc number (the slot).
    pub proc_number: ProcNumber,
    /// OS process id.
    pub pid: i32,
    /// The process kind.
    pub backend_type: BackendType,
    /// The state.
    pub state: BackendState,
    /// Process start (PostgreSQL µs).
    pub backend_start: Option<i64>,
    /// Transaction start.
    pub xact_start: Option<i64>,
    /// Statement start.
    pub query_start: Option<i64>,
    /// Last state change.
    pub state_change: Option<i64>,
    /// Database OID (0 = none).
    pub database_id: u32,
    /// Database name.
    pub datname: String,
    /// Role OID (0 = none).
    pub user_id: u32,
    /// Role name.
    pub usename: String,
    /// `application_name`.
    pub appname: String,
    /// `client_addr` as PostgreSQL prints an `inet` of a host (`127.0.0.1`, `::1`).
    pub client_addr: Option<String>,
    /// `client_hostname`.
    pub client_hostname: Option<String>,
    /// `client_port` (-1 for Unix sockets).
    pub client_port: Option<i32>,
    /// Activity text (`query`).
    pub activity: String,
    /// `query_id` (0 = none).
    pub query_id: i64,
    /// `backend_xid` from the PGPROC (0 = none).
    pub backend_xid: u32,
    /// `backend_xmin` from the PGPROC (0 = none).
    pub backend_xmin: u32,
    /// `wait_event_info` from the PGPROC (0 = not waiting).
    pub wait_event_info: u32,
    /// The TLS state (`None`: not TLS; `pg_stat_ssl.ssl` false).
    pub ssl: Option<SslStatus>,
    /// Cached subtransaction ids in the PGPROC (`backend_subxact_count`).
    pub subxact_count: u8,
    /// Whether the PGPROC's subxid cache overflowed (`backend_subxact_overflowed`).
    pub subxact_overflowed: bool,
}

fn nonzero(v: i64) -> Option<i64> {
    (v != 0).then_some(v)
}

impl BackendStatusArray {
    /// Entries (`NumBackendStatSlots`).
    pub fn slots(&self) -> usize {
        self.entries.len()
    }

    /// `track_activity_query_size`.
    pub fn query_size(&self) -> usize {
        self.query_size
    }

    /// Entry `i`.
    pub fn entry(&self, i: usize) -> Option<&PgBackendStatus> {
        self.entries.get(i)
    }

    fn text(buf: &[AtomicU8], i: usize, width: usize) -> &[AtomicU8] {
        &buf[i * width..(i + 1) * width]
    }

    /// Copies entry `i` with the change-count protocol (retrying while a write is under way
    /// or happened during the copy); `None` for a free entry. `procs` supplies the PGPROC
    /// fields (xid, xmin, wait event); without it they read 0.
    pub fn read_entry(&self, i: usize, procs: Option<&ProcGlobal>) -> Option<BackendStatus> {
        let e = self.entries.get(i)?;
        let mut spins = 0u32;
        let mut row = loop {
            let before = e.changecount.load(Ordering::Acquire);
            if before & 1 == 0 {
                let row = self.copy_entry(e, i);
                fence(Ordering::Acquire);
                let after = e.changecount.load(Ordering::Relaxed);
                if before == after {
                    break row;
                }
            }
            spins += 1;
            if spins % 64 == 0 {
                std::thread::yield_now();
            }
        }?;
        if let Some(g) = procs {
            let procno = row.proc_number;
            if let Ok(p) = g.proc(procno) {
                // A slot whose PGPROC was already handed on reads 0s, as PostgreSQL's
                // ProcNumberGetTransactionIds does for a changed pid.
                if p.pid.load(Ordering::Relaxed) == row.pid {
                    row.backend_xid = p.xid.load(Ordering::Relaxed);
                    row.backend_xmin = p.xmin.load(Ordering::Relaxed);
                    row.wait_event_info = g.wait_event_info(procno).unwrap_or(0);
                    row.subxact_count = p.subxid_status.count.load(Ordering::Relaxed);
                    row.subxact_overflowed = p.subxid_status.overflowed.load(Ordering::Relaxed);
                }
            }
        }
        Some(row)
    }

    /// The copy inside one attempt (fields may be torn; the caller checks the count).
    fn copy_entry(&self, e: &PgBackendStatus, i: usize) -> Option<BackendStatus> {
        let pid = e.procpid.load(Ordering::Relaxed);
        if pid == 0 {
            return None;
        }
        let family = e.client_family.load(Ordering::Relaxed);
        let port = e.client_port.load(Ordering::Relaxed);
        let mut addr = [0u8; 16];
        for (a, s) in addr.iter_mut().zip(e.client_addr.iter()) {
            *a = s.load(Ordering::Relaxed);
        }
        let (client_addr, client_port, hostname) = match family {
            FAMILY_INET => {
                let ip = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
                (Some(ip.to_string()), Some(port), true)
            }
            FAMILY_INET6 => (Some(Ipv6Addr::from(addr).to_string()), Some(port), true),
            FAMILY_UNIX => (None, Some(-1), false),
            _ => (None, None, false),
        };
        let host = load_text(Self::text(&self.hostnames, i, NAMEDATALEN));
        let ssl = self.ssl.get(i).and_then(|t| {
            let opt = |b: &[AtomicU8]| Some(load_text(b)).filter(|s| !s.is_empty());
            (t.ssl.load(Ordering::Relaxed) != 0).then(|| SslStatus {
                version: load_text(&t.version),
                cipher: load_text(&t.cipher),
                bits: t.bits.load(Ordering::Relaxed),
                client_dn: opt(&t.client_dn),
                client_serial: opt(&t.client_serial),
                issuer_dn: opt(&t.issuer_dn),
            })
        });
        Some(BackendStatus {
            proc_number: i as ProcNumber,
            pid,
            backend_type: BackendType::from_u8(e.backend_type.load(Ordering::Relaxed))
                .unwrap_or(BackendType::Invalid),
            state: BackendState::from_u8(e.state.load(Ordering::Relaxed)),
            backend_start: nonzero(e.proc_start.load(Ordering::Relaxed)),
            xact_start: nonzero(e.xact_start.load(Ordering::Relaxed)),
            query_start: nonzero(e.activity_start.load(Ordering::Relaxed)),
            state_change: nonzero(e.state_start.load(Ordering::Relaxed)),
            database_id: e.database_id.load(Ordering::Relaxed),
            datname: load_text(&e.datname),
            user_id: e.user_id.load(Ordering::Relaxed),
            usename: load_text(&e.usename),
            appname: load_text(Self::text(&self.appnames, i, NAMEDATALEN)),
            client_addr,
            client_hostname: (hostname && !host.is_empty()).then_some(host),
            client_port,
            activity: load_text(Self::text(&self.activities, i, self.query_size)),
            query_id: e.query_id.load(Ordering::Relaxed),
            backend_xid: INVALID_TRANSACTION_ID,
            backend_xmin: INVALID_TRANSACTION_ID,
            wait_event_info: 0,
            ssl,
            subxact_count: 0,
            subxact_overflowed: false,
        })
    }

    /// Every used entry, in proc-number order (`pgstat_read_current_status`).
    pub fn read_current_status(&self, procs: Option<&ProcGlobal>) -> Vec<BackendStatus> {
        (0..self.slots())
            .filter_map(|i| self.read_entry(i, procs))
            .collect()
    }

    /// The writer for proc number `procno` (`MyBEEntry`); the caller must own that proc
    /// number.
    pub fn writer(
        &self,
        procno: ProcNumber,
        track_activities: bool,
    ) -> Result<StatusWriter, BackendStatusError> {
        if procno as usize >= self.slots() {
            return Err(BackendStatusError::NoSlot {
                procno,
                slots: self.slots(),
            });
        }
        Ok(StatusWriter {
            array: self.clone(),
            slot: procno as usize,
            track_activities,
        })
    }
}

/// This process's entry (`MyBEEntry`): the only writer of its slot.
#[derive(Debug, Clone)]
pub struct StatusWriter {
    array: BackendStatusArray,
    slot: usize,
    track_activities: bool,
}

impl StatusWriter {
    fn entry(&self) -> &PgBackendStatus {
        &self.array.entries[self.slot]
    }

    /// Runs `f` between the odd and the even change count.
    fn write(&self, f: impl FnOnce(&PgBackendStatus)) {
        let e = self.entry();
        let c = e.changecount.load(Ordering::Relaxed);
        e.changecount.store(c.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        f(e);
        e.changecount.store(c.wrapping_add(2), Ordering::Release);
    }

    /// The slot (proc number).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// `track_activities` changed (a reload or `SET`).
    pub fn set_track_activities(&mut self, on: bool) {
        self.track_activities = on;
    }

    /// Fills the entry for a starting process (`pgstat_bestart`): everything of a previous
    /// owner is overwritten, the process start time is now.
    pub fn report_start(&self, pid: i32, info: &StartInfo<'_>) {
        let now = pg_now();
        let a = &self.array;
        self.write(|e| {
            e.procpid.store(pid, Ordering::Relaxed);
            e.backend_type
                .store(info.backend_type as u8, Ordering::Relaxed);
            e.state.store(info.state as u8, Ordering::Relaxed);
            e.proc_start.store(now, Ordering::Relaxed);
            e.xact_start.store(0, Ordering::Relaxed);
            e.activity_start.store(0, Ordering::Relaxed);
            e.state_start.store(0, Ordering::Relaxed);
            e.query_id.store(0, Ordering::Relaxed);
            e.database_id.store(info.database_id, Ordering::Relaxed);
            e.user_id.store(info.user_id, Ordering::Relaxed);
            store_text(&e.datname, info.datname);
            store_text(&e.usename, info.usename);
            let (family, port, bytes) = match &info.client {
                None => (FAMILY_NONE, 0, [0u8; 16]),
                Some(ClientAddr::Unix) => (FAMILY_UNIX, -1, [0u8; 16]),
                Some(ClientAddr::Inet(IpAddr::V4(ip), port)) => {
                    let mut b = [0u8; 16];
                    b[..4].copy_from_slice(&ip.octets());
                    (FAMILY_INET, i32::from(*port), b)
                }
                Some(ClientAddr::Inet(IpAddr::V6(ip), port)) => {
                    (FAMILY_INET6, i32::from(*port), ip.octets())
                }
            };
            e.client_family.store(family, Ordering::Relaxed);
            e.client_port.store(port, Ordering::Relaxed);
            for (d, b) in e.client_addr.iter().zip(bytes) {
                d.store(b, Ordering::Relaxed);
            }
            store_text(
                BackendStatusArray::text(&a.appnames, self.slot, NAMEDATALEN),
                info.appname,
            );
            store_text(
                BackendStatusArray::text(&a.hostnames, self.slot, NAMEDATALEN),
                info.client_hostname,
            );
            store_text(
                BackendStatusArray::text(&a.activities, self.slot, a.query_size),
                "",
            );
            if let Some(t) = a.ssl.get(self.slot) {
                t.ssl.store(0, Ordering::Relaxed);
            }
        });
    }

    /// Publishes the connection's TLS state (`pgstat_bestart`'s SSL part; `None`: not TLS).
    /// Texts are clipped to `NAMEDATALEN - 1` bytes, as PostgreSQL's `strlcpy` into the
    /// buffer clips them.
    pub fn report_ssl(&self, ssl: Option<&SslStatus>) {
        let Some(t) = self.array.ssl.get(self.slot) else {
            return;
        };
        self.write(|_| match ssl {
            None => t.ssl.store(0, Ordering::Relaxed),
            Some(s) => {
                t.bits.store(s.bits, Ordering::Relaxed);
                store_text(&t.version, &s.version);
                store_text(&t.cipher, &s.cipher);
                store_text(&t.client_dn, s.client_dn.as_deref().unwrap_or(""));
                store_text(&t.client_serial, s.client_serial.as_deref().unwrap_or(""));
                store_text(&t.issuer_dn, s.issuer_dn.as_deref().unwrap_or(""));
                t.ssl.store(1, Ordering::Relaxed);
            }
        });
    }

    /// Publishes the session's state and, with `query`, the statement text and its start
    /// (`pgstat_report_activity`). With `track_activities` off the entry shows
    /// [`BackendState::Disabled`] and no text or timestamps, written once.
    pub fn report_activity(&self, state: BackendState, query: Option<&str>) {
        let a = &self.array;
        if !self.track_activities {
            if BackendState::from_u8(self.entry().state.load(Ordering::Relaxed))
                == BackendState::Disabled
            {
                return;
            }
            self.write(|e| {
                e.state
                    .store(BackendState::Disabled as u8, Ordering::Relaxed);
                e.activity_start.store(0, Ordering::Relaxed);
                e.state_start.store(0, Ordering::Relaxed);
                e.query_id.store(0, Ordering::Relaxed);
                store_text(
                    BackendStatusArray::text(&a.activities, self.slot, a.query_size),
                    "",
                );
            });
            return;
        }
        let now = pg_now();
        self.write(|e| {
            e.state.store(state as u8, Ordering::Relaxed);
            e.state_start.store(now, Ordering::Relaxed);
            if let Some(q) = query {
                e.activity_start.store(now, Ordering::Relaxed);
                store_text(
                    BackendStatusArray::text(&a.activities, self.slot, a.query_size),
                    q,
                );
            }
            if state == BackendState::Running && query.is_some() {
                e.query_id.store(0, Ordering::Relaxed);
            }
        });
    }

    /// Publishes the transaction's start, 0 when it ended (`pgstat_report_xact_timestamp`).
    pub fn report_xact_timestamp(&self, ts: i64) {
        if !self.track_activities {
            return;
        }
        self.write(|e| e.xact_start.store(ts, Ordering::Relaxed));
    }

    /// Publishes the statement's query identifier (`pgstat_report_query_id`).
    pub fn report_query_id(&self, id: i64) {
        self.write(|e| e.query_id.store(id, Ordering::Relaxed));
    }

    /// Publishes a new `application_name` (`pgstat_report_appname`).
    pub fn report_appname(&self, name: &str) {
        let a = &self.array;
        self.write(|_| {
            store_text(
                BackendStatusArray::text(&a.appnames, self.slot, NAMEDATALEN),
                name,
            )
        });
    }

    /// Marks the entry free at process exit (`pgstat_beshutdown_hook`).
    pub fn report_end(&self) {
        self.write(|e| e.procpid.store(0, Ordering::Relaxed));
    }
}

/// This process's entry (`MyBEEntry`); server processes are single-threaded, so the lock is
/// never contended.
static MY_BE_ENTRY: std::sync::Mutex<Option<StatusWriter>> = std::sync::Mutex::new(None);

/// Makes `w` this process's entry, for the `report_*` functions below (after
/// [`StatusWriter::report_start`]).
pub fn set_my_be_entry(w: StatusWriter) {
    *MY_BE_ENTRY.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
}

/// Runs `f` on this process's entry, if it has one.
pub fn with_my_be_entry<R>(f: impl FnOnce(&mut StatusWriter) -> R) -> Option<R> {
    MY_BE_ENTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .map(f)
}

/// [`StatusWriter::report_activity`] on this process's entry; nothing without one
/// (`pgstat_report_activity`).
pub fn report_activity(state: BackendState, query: Option<&str>) {
    with_my_be_entry(|w| w.report_activity(state, query));
}

/// [`StatusWriter::report_xact_timestamp`] on this process's entry.
pub fn report_xact_timestamp(ts: i64) {
    with_my_be_entry(|w| w.report_xact_timestamp(ts));
}

/// [`StatusWriter::report_appname`] on this process's entry.
pub fn report_appname(name: &str) {
    with_my_be_entry(|w| w.report_appname(name));
}

/// Frees this process's entry and forgets it (the exit hook, `pgstat_beshutdown_hook`).
pub fn report_end_mine() {
    if let Some(w) = MY_BE_ENTRY.lock().unwrap_or_else(|e| e.into_inner()).take() {
        w.report_end();
    }
}

#[cfg(test)]
mod tests;
