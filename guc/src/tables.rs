//! The settings table: every parameter PostgreSQL 18 defines (guc_tables.c), plus pgipc's own,
//! as one data table in PostgreSQL's order (booleans, integers, reals, strings, enums).
//!
//! The descriptions are PostgreSQL's user-visible texts, so that `SHOW ALL` and `pg_settings`
//! read as they do on PostgreSQL. Compile-time-only parameters of PostgreSQL (`trace_locks`,
//! `wal_debug`, ...) are not in a default PostgreSQL build and are not here either.

use crate::flags::*;
use crate::{Context, Def, EnumOption, Kind};
use Context::{Backend, Internal, Postmaster, Sighup, SuBackend, Superuser, User};

// ---- categories (PostgreSQL's config_group_names) ------------------------------------------
const UNGROUPED: &str = "Ungrouped";
const FILE_LOCATIONS: &str = "File Locations";
const CONN_AUTH_SETTINGS: &str = "Connections and Authentication / Connection Settings";
const CONN_AUTH_TCP: &str = "Connections and Authentication / TCP Settings";
const CONN_AUTH_AUTH: &str = "Connections and Authentication / Authentication";
const CONN_AUTH_SSL: &str = "Connections and Authentication / SSL";
const RESOURCES_MEM: &str = "Resource Usage / Memory";
const RESOURCES_DISK: &str = "Resource Usage / Disk";
const RESOURCES_KERNEL: &str = "Resource Usage / Kernel Resources";
const RESOURCES_BGWRITER: &str = "Resource Usage / Background Writer";
const RESOURCES_IO: &str = "Resource Usage / I/O";
const RESOURCES_WORKER_PROCESSES: &str = "Resource Usage / Worker Processes";
const WAL_SETTINGS: &str = "Write-Ahead Log / Settings";
const WAL_CHECKPOINTS: &str = "Write-Ahead Log / Checkpoints";
const WAL_ARCHIVING: &str = "Write-Ahead Log / Archiving";
const WAL_RECOVERY: &str = "Write-Ahead Log / Recovery";
const WAL_ARCHIVE_RECOVERY: &str = "Write-Ahead Log / Archive Recovery";
const WAL_RECOVERY_TARGET: &str = "Write-Ahead Log / Recovery Target";
const WAL_SUMMARIZATION: &str = "Write-Ahead Log / Summarization";
const REPLICATION_SENDING: &str = "Replication / Sending Servers";
const REPLICATION_PRIMARY: &str = "Replication / Primary Server";
const REPLICATION_STANDBY: &str = "Replication / Standby Servers";
const REPLICATION_SUBSCRIBERS: &str = "Replication / Subscribers";
const QUERY_TUNING_METHOD: &str = "Query Tuning / Planner Method Configuration";
const QUERY_TUNING_COST: &str = "Query Tuning / Planner Cost Constants";
const QUERY_TUNING_GEQO: &str = "Query Tuning / Genetic Query Optimizer";
const QUERY_TUNING_OTHER: &str = "Query Tuning / Other Planner Options";
const LOGGING_WHERE: &str = "Reporting and Logging / Where to Log";
const LOGGING_WHEN: &str = "Reporting and Logging / When to Log";
const LOGGING_WHAT: &str = "Reporting and Logging / What to Log";
const PROCESS_TITLE: &str = "Reporting and Logging / Process Title";
const STATS_MONITORING: &str = "Statistics / Monitoring";
const STATS_CUMULATIVE: &str = "Statistics / Cumulative Query and Index Statistics";
const VACUUM_AUTOVACUUM: &str = "Vacuuming / Automatic Vacuuming";
const VACUUM_COST_DELAY: &str = "Vacuuming / Cost-Based Vacuum Delay";
const VACUUM_DEFAULT: &str = "Vacuuming / Default Behavior";
const VACUUM_FREEZING: &str = "Vacuuming / Freezing";
const CLIENT_CONN_STATEMENT: &str = "Client Connection Defaults / Statement Behavior";
const CLIENT_CONN_LOCALE: &str = "Client Connection Defaults / Locale and Formatting";
const CLIENT_CONN_PRELOAD: &str = "Client Connection Defaults / Shared Library Preloading";
const CLIENT_CONN_OTHER: &str = "Client Connection Defaults / Other Defaults";
const LOCK_MANAGEMENT: &str = "Lock Management";
const COMPAT_OPTIONS_PREVIOUS: &str =
    "Version and Platform Compatibility / Previous PostgreSQL Versions";
const COMPAT_OPTIONS_OTHER: &str =
    "Version and Platform Compatibility / Other Platforms and Clients";
const ERROR_HANDLING_OPTIONS: &str = "Error Handling";
const PRESET_OPTIONS: &str = "Preset Options";
/// The category of placeholder (custom) settings.
pub(crate) const CUSTOM_OPTIONS: &str = "Customized Options";
const DEVELOPER_OPTIONS: &str = "Developer Options";

// ---- limits used by several rows -----------------------------------------------------------
const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;
const MAX_BACKENDS: i64 = 0x3FFFF;
const MAX_KILOBYTES: i64 = INT_MAX;
const MAX_PARALLEL_WORKER_LIMIT: i64 = 1024;
/// PostgreSQL's BLCKSZ.
pub(crate) const BLCKSZ: i64 = 8192;
/// PostgreSQL's XLOG_BLCKSZ.
pub(crate) const XLOG_BLCKSZ: i64 = 8192;
const SLRU_MAX_ALLOWED_BUFFERS: i64 = (1024 * 1024 * 1024) / BLCKSZ;
const WRITEBACK_MAX_PENDING_FLUSHES: i64 = 256;
const MAX_IO_CONCURRENCY: i64 = 1000;
const MAX_IO_COMBINE_LIMIT: i64 = 128;
const DBL_MAX: f64 = f64::MAX;

const fn b(
    name: &'static str,
    context: Context,
    group: &'static str,
    short_desc: &'static str,
    long_desc: &'static str,
    flags: u32,
    boot: bool,
) -> Def {
    Def {
        name,
        context,
        group,
        short_desc,
        long_desc,
        flags,
        kind: Kind::Bool { boot },
    }
}

#[allow(clippy::too_many_arguments)]
const fn i(
    name: &'static str,
    context: Context,
    group: &'static str,
    short_desc: &'static str,
    long_desc: &'static str,
    flags: u32,
    boot: i64,
    min: i64,
    max: i64,
) -> Def {
    Def {
        name,
        context,
        group,
        short_desc,
        long_desc,
        flags,
        kind: Kind::Int { boot, min, max },
    }
}

#[allow(clippy::too_many_arguments)]
const fn r(
    name: &'static str,
    context: Context,
    group: &'static str,
    short_desc: &'static str,
    long_desc: &'static str,
    flags: u32,
    boot: f64,
    min: f64,
    max: f64,
) -> Def {
    Def {
        name,
        context,
        group,
        short_desc,
        long_desc,
        flags,
        kind: Kind::Real { boot, min, max },
    }
}

const fn s(
    name: &'static str,
    context: Context,
    group: &'static str,
    short_desc: &'static str,
    long_desc: &'static str,
    flags: u32,
    boot: &'static str,
) -> Def {
    Def {
        name,
        context,
        group,
        short_desc,
        long_desc,
        flags,
        kind: Kind::String { boot },
    }
}

#[allow(clippy::too_many_arguments)]
const fn e(
    name: &'static str,
    context: Context,
    group: &'static str,
    short_desc: &'static str,
    long_desc: &'static str,
    flags: u32,
    boot: &'static str,
    options: &'static [EnumOption],
) -> Def {
    Def {
        name,
        context,
        group,
        short_desc,
        long_desc,
        flags,
        kind: Kind::Enum { boot, options },
    }
}

const fn o(name: &'static str) -> EnumOption {
    EnumOption {
        name,
        hidden: false,
        shows_as: name,
    }
}
/// A hidden spelling of another value.
const fn h(name: &'static str, shows_as: &'static str) -> EnumOption {
    EnumOption {
        name,
        hidden: true,
        shows_as,
    }
}

// ---- enum option lists ---------------------------------------------------------------------
const BYTEA_OUTPUT: &[EnumOption] = &[o("escape"), o("hex")];
const CLIENT_MESSAGE_LEVELS: &[EnumOption] = &[
    o("debug5"),
    o("debug4"),
    o("debug3"),
    o("debug2"),
    o("debug1"),
    h("debug", "debug2"),
    o("log"),
    h("info", "info"),
    o("notice"),
    o("warning"),
    o("error"),
];
const SERVER_MESSAGE_LEVELS: &[EnumOption] = &[
    o("debug5"),
    o("debug4"),
    o("debug3"),
    o("debug2"),
    o("debug1"),
    h("debug", "debug2"),
    o("info"),
    o("notice"),
    o("warning"),
    o("error"),
    o("log"),
    o("fatal"),
    o("panic"),
];
const INTERVALSTYLE: &[EnumOption] = &[
    o("postgres"),
    o("postgres_verbose"),
    o("sql_standard"),
    o("iso_8601"),
];
const ICU_VALIDATION_LEVELS: &[EnumOption] = &[
    o("disabled"),
    o("debug5"),
    o("debug4"),
    o("debug3"),
    o("debug2"),
    o("debug1"),
    h("debug", "debug2"),
    o("log"),
    h("info", "info"),
    o("notice"),
    o("warning"),
    o("error"),
];
const LOG_ERROR_VERBOSITY: &[EnumOption] = &[o("terse"), o("default"), o("verbose")];
const LOG_STATEMENT: &[EnumOption] = &[o("none"), o("ddl"), o("mod"), o("all")];
const ISOLATION_LEVELS: &[EnumOption] = &[
    o("serializable"),
    o("repeatable read"),
    o("read committed"),
    o("read uncommitted"),
];
const SESSION_REPLICATION_ROLE: &[EnumOption] = &[o("origin"), o("replica"), o("local")];
const SYSLOG_FACILITY: &[EnumOption] = &[
    o("local0"),
    o("local1"),
    o("local2"),
    o("local3"),
    o("local4"),
    o("local5"),
    o("local6"),
    o("local7"),
];
const TRACK_FUNCTIONS: &[EnumOption] = &[o("none"), o("pl"), o("all")];
const STATS_FETCH_CONSISTENCY: &[EnumOption] = &[o("none"), o("cache"), o("snapshot")];
const XMLBINARY: &[EnumOption] = &[o("base64"), o("hex")];
const XMLOPTION: &[EnumOption] = &[o("content"), o("document")];
/// `on`/`off` spelled the other ways `parse_bool` accepts, hidden, after the listed values.
macro_rules! with_bool_variants {
    ($($x:expr),*) => {
        &[
            $($x,)*
            h("true", "on"),
            h("false", "off"),
            h("yes", "on"),
            h("no", "off"),
            h("1", "on"),
            h("0", "off"),
        ]
    };
}
const BACKSLASH_QUOTE: &[EnumOption] = with_bool_variants!(o("safe_encoding"), o("on"), o("off"));
const COMPUTE_QUERY_ID: &[EnumOption] =
    with_bool_variants!(o("auto"), o("regress"), o("on"), o("off"));
const CONSTRAINT_EXCLUSION: &[EnumOption] = with_bool_variants!(o("partition"), o("on"), o("off"));
const SYNCHRONOUS_COMMIT: &[EnumOption] = with_bool_variants!(
    o("local"),
    o("remote_write"),
    o("remote_apply"),
    o("on"),
    o("off")
);
const HUGE_PAGES: &[EnumOption] = with_bool_variants!(o("off"), o("on"), o("try"));
const HUGE_PAGES_STATUS: &[EnumOption] = &[o("off"), o("on"), o("unknown")];
const RECOVERY_PREFETCH: &[EnumOption] = with_bool_variants!(o("off"), o("on"), o("try"));
const DEBUG_PARALLEL_QUERY: &[EnumOption] = with_bool_variants!(o("off"), o("on"), o("regress"));
const PLAN_CACHE_MODE: &[EnumOption] =
    &[o("auto"), o("force_generic_plan"), o("force_custom_plan")];
const PASSWORD_ENCRYPTION: &[EnumOption] = &[o("md5"), o("scram-sha-256")];
const SSL_PROTOCOL_VERSIONS: &[EnumOption] =
    &[o(""), o("TLSv1"), o("TLSv1.1"), o("TLSv1.2"), o("TLSv1.3")];
const DEBUG_LOGICAL_REPLICATION_STREAMING: &[EnumOption] = &[o("buffered"), o("immediate")];
const RECOVERY_INIT_SYNC_METHOD: &[EnumOption] = &[o("fsync"), o("syncfs")];
/// PostgreSQL's `sysv` and `mmap`, and pgipc's `memfd` (what exec mode uses).
const SHARED_MEMORY_TYPES: &[EnumOption] = &[o("sysv"), o("mmap"), o("memfd")];
const DEFAULT_TOAST_COMPRESSION: &[EnumOption] = &[o("pglz"), o("lz4")];
const WAL_COMPRESSION: &[EnumOption] = &[
    o("pglz"),
    o("lz4"),
    o("zstd"),
    EnumOption {
        name: "on",
        hidden: false,
        shows_as: "pglz",
    },
    o("off"),
    h("true", "pglz"),
    h("false", "off"),
    h("yes", "pglz"),
    h("no", "off"),
    h("1", "pglz"),
    h("0", "off"),
];
const WAL_LEVELS: &[EnumOption] = &[
    o("minimal"),
    o("replica"),
    h("archive", "replica"),
    h("hot_standby", "replica"),
    o("logical"),
];
const ARCHIVE_MODES: &[EnumOption] = with_bool_variants!(o("always"), o("on"), o("off"));
const RECOVERY_TARGET_ACTIONS: &[EnumOption] = &[o("pause"), o("promote"), o("shutdown")];
const WAL_SYNC_METHODS: &[EnumOption] = &[
    o("fsync"),
    o("fdatasync"),
    o("open_sync"),
    o("open_datasync"),
];
const DYNAMIC_SHARED_MEMORY_TYPES: &[EnumOption] = &[o("posix"), o("sysv"), o("mmap")];
const IO_METHODS: &[EnumOption] = &[o("sync"), o("worker"), o("io_uring")];
const FILE_COPY_METHODS: &[EnumOption] = &[o("copy"), o("clone")];

/// Old names PostgreSQL still accepts for a renamed setting (guc.c's `map_old_guc_names`).
pub(crate) static OLD_NAMES: &[(&str, &str)] = &[
    ("sort_mem", "work_mem"),
    ("vacuum_mem", "maintenance_work_mem"),
    ("ssl_ecdh_curve", "ssl_groups"),
];

/// Settings pgipc acts on; every other row is accepted and shown but has no effect here (its
/// descriptions say so). Internal (preset) rows state facts and are not listed.
pub(crate) static IN_EFFECT: &[&str] = &[
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "unix_socket_permissions",
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",
    "max_worker_processes",
    "autovacuum_worker_slots",
    "autovacuum_max_workers",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_parallel_workers",
    "shared_memory_type",
    "dynamic_shared_memory_type",
    "huge_pages",
    "huge_page_size",
    "min_dynamic_shared_memory",
    "restart_after_crash",
    "io_workers",
    "authentication_timeout",
    "log_min_messages",
    "checkpoint_timeout",
    "bgwriter_delay",
    "wal_writer_delay",
    "autovacuum",
    "autovacuum_naptime",
    "send_abort_for_crash",
    "send_abort_for_kill",
    "shared_preload_libraries",
    "exec_backend",
    "spare_backends",
    "data_directory",
    "config_file",
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "standard_conforming_strings",
    "default_transaction_read_only",
    "search_path",
    "scram_iterations",
    "session_authorization",
];

/// Every setting, in PostgreSQL's order.
pub static DEFS: &[Def] = &[
    // ---- booleans ----
    b("enable_seqscan", User, QUERY_TUNING_METHOD, "Enables the planner's use of sequential-scan plans.", "", EXPLAIN, true),
    b("enable_indexscan", User, QUERY_TUNING_METHOD, "Enables the planner's use of index-scan plans.", "", EXPLAIN, true),
    b("enable_indexonlyscan", User, QUERY_TUNING_METHOD, "Enables the planner's use of index-only-scan plans.", "", EXPLAIN, true),
    b("enable_bitmapscan", User, QUERY_TUNING_METHOD, "Enables the planner's use of bitmap-scan plans.", "", EXPLAIN, true),
    b("enable_tidscan", User, QUERY_TUNING_METHOD, "Enables the planner's use of TID scan plans.", "", EXPLAIN, true),
    b("enable_sort", User, QUERY_TUNING_METHOD, "Enables the planner's use of explicit sort steps.", "", EXPLAIN, true),
    b("enable_incremental_sort", User, QUERY_TUNING_METHOD, "Enables the planner's use of incremental sort steps.", "", EXPLAIN, true),
    b("enable_hashagg", User, QUERY_TUNING_METHOD, "Enables the planner's use of hashed aggregation plans.", "", EXPLAIN, true),
    b("enable_material", User, QUERY_TUNING_METHOD, "Enables the planner's use of materialization.", "", EXPLAIN, true),
    b("enable_memoize", User, QUERY_TUNING_METHOD, "Enables the planner's use of memoization.", "", EXPLAIN, true),
    b("enable_nestloop", User, QUERY_TUNING_METHOD, "Enables the planner's use of nested-loop join plans.", "", EXPLAIN, true),
    b("enable_mergejoin", User, QUERY_TUNING_METHOD, "Enables the planner's use of merge join plans.", "", EXPLAIN, true),
    b("enable_hashjoin", User, QUERY_TUNING_METHOD, "Enables the planner's use of hash join plans.", "", EXPLAIN, true),
    b("enable_gathermerge", User, QUERY_TUNING_METHOD, "Enables the planner's use of gather merge plans.", "", EXPLAIN, true),
    b("enable_partitionwise_join", User, QUERY_TUNING_METHOD, "Enables partitionwise join.", "", EXPLAIN, false),
    b("enable_partitionwise_aggregate", User, QUERY_TUNING_METHOD, "Enables partitionwise aggregation and grouping.", "", EXPLAIN, false),
    b("enable_parallel_append", User, QUERY_TUNING_METHOD, "Enables the planner's use of parallel append plans.", "", EXPLAIN, true),
    b("enable_parallel_hash", User, QUERY_TUNING_METHOD, "Enables the planner's use of parallel hash plans.", "", EXPLAIN, true),
    b("enable_partition_pruning", User, QUERY_TUNING_METHOD, "Enables plan-time and execution-time partition pruning.", "Allows the query planner and executor to compare partition bounds to conditions in the query to determine which partitions must be scanned.", EXPLAIN, true),
    b("enable_presorted_aggregate", User, QUERY_TUNING_METHOD, "Enables the planner's ability to produce plans that provide presorted input for ORDER BY / DISTINCT aggregate functions.", "Allows the query planner to build plans that provide presorted input for aggregate functions with an ORDER BY / DISTINCT clause.  When disabled, implicit sorts are always performed during execution.", EXPLAIN, true),
    b("enable_async_append", User, QUERY_TUNING_METHOD, "Enables the planner's use of async append plans.", "", EXPLAIN, true),
    b("enable_self_join_elimination", User, QUERY_TUNING_METHOD, "Enables removal of unique self-joins.", "", EXPLAIN | NOT_IN_SAMPLE, true),
    b("enable_group_by_reordering", User, QUERY_TUNING_METHOD, "Enables reordering of GROUP BY keys.", "", EXPLAIN, true),
    b("enable_distinct_reordering", User, QUERY_TUNING_METHOD, "Enables reordering of DISTINCT pathkeys.", "", EXPLAIN, true),
    b("geqo", User, QUERY_TUNING_GEQO, "Enables genetic query optimization.", "This algorithm attempts to do planning without exhaustive searching.", EXPLAIN, true),
    b("is_superuser", Internal, UNGROUPED, "Shows whether the current user is a superuser.", "", REPORT | NO_SHOW_ALL | NO_RESET_ALL | NOT_IN_SAMPLE | DISALLOW_IN_FILE | ALLOW_IN_PARALLEL, false),
    b("allow_alter_system", Sighup, COMPAT_OPTIONS_OTHER, "Allows running the ALTER SYSTEM command.", "Can be set to off for environments where global configuration changes should be made using a different method.", DISALLOW_IN_AUTO_FILE, true),
    b("bonjour", Postmaster, CONN_AUTH_SETTINGS, "Enables advertising the server via Bonjour.", "", 0, false),
    b("track_commit_timestamp", Postmaster, REPLICATION_SENDING, "Collects transaction commit time.", "", 0, false),
    b("ssl", Sighup, CONN_AUTH_SSL, "Enables SSL connections.", "", 0, false),
    b("ssl_passphrase_command_supports_reload", Sighup, CONN_AUTH_SSL, "Controls whether \"ssl_passphrase_command\" is called during server reload.", "", 0, false),
    b("ssl_prefer_server_ciphers", Sighup, CONN_AUTH_SSL, "Give priority to server ciphersuite order.", "", 0, true),
    b("fsync", Sighup, WAL_SETTINGS, "Forces synchronization of updates to disk.", "The server will use the fsync() system call in several places to make sure that updates are physically written to disk. This ensures that a database cluster will recover to a consistent state after an operating system or hardware crash.", 0, true),
    b("ignore_checksum_failure", Superuser, DEVELOPER_OPTIONS, "Continues processing after a checksum failure.", "Detection of a checksum failure normally causes PostgreSQL to report an error, aborting the current transaction. Setting ignore_checksum_failure to true causes the system to ignore the failure (but still report a warning), and continue processing. This behavior could cause crashes or other serious problems. Only has an effect if checksums are enabled.", NOT_IN_SAMPLE, false),
    b("zero_damaged_pages", Superuser, DEVELOPER_OPTIONS, "Continues processing past damaged page headers.", "Detection of a damaged page header normally causes PostgreSQL to report an error, aborting the current transaction. Setting \"zero_damaged_pages\" to true causes the system to instead report a warning, zero out the damaged page, and continue processing. This behavior will destroy data, namely all the rows on the damaged page.", NOT_IN_SAMPLE, false),
    b("ignore_invalid_pages", Postmaster, DEVELOPER_OPTIONS, "Continues recovery after an invalid pages failure.", "Detection of WAL records having references to invalid pages during recovery causes PostgreSQL to raise a PANIC-level error, aborting the recovery. Setting \"ignore_invalid_pages\" to true causes the system to ignore invalid page references in WAL records (but still report a warning), and continue recovery. This behavior may cause crashes, data loss, propagate or hide corruption, or other serious problems. Only has an effect during recovery or in standby mode.", NOT_IN_SAMPLE, false),
    b("full_page_writes", Sighup, WAL_SETTINGS, "Writes full pages to WAL when first modified after a checkpoint.", "A page write in process during an operating system crash might be only partially written to disk.  During recovery, the row changes stored in WAL are not enough to recover.  This option writes pages when first modified after a checkpoint to WAL so full recovery is possible.", 0, true),
    b("wal_log_hints", Postmaster, WAL_SETTINGS, "Writes full pages to WAL when first modified after a checkpoint, even for a non-critical modification.", "", 0, false),
    b("wal_init_zero", Superuser, WAL_SETTINGS, "Writes zeroes to new WAL files before first use.", "", 0, true),
    b("wal_recycle", Superuser, WAL_SETTINGS, "Recycles WAL files by renaming them.", "", 0, true),
    b("log_checkpoints", Sighup, LOGGING_WHAT, "Logs each checkpoint.", "", 0, true),
    b("trace_connection_negotiation", Postmaster, DEVELOPER_OPTIONS, "Logs details of pre-authentication connection handshake.", "", NOT_IN_SAMPLE, false),
    b("log_disconnections", SuBackend, LOGGING_WHAT, "Logs end of a session, including duration.", "", 0, false),
    b("log_replication_commands", Superuser, LOGGING_WHAT, "Logs each replication command.", "", 0, false),
    b("debug_assertions", Internal, PRESET_OPTIONS, "Shows whether the running server has assertion checks enabled.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE, false),
    b("exit_on_error", User, ERROR_HANDLING_OPTIONS, "Terminate session on any error.", "", 0, false),
    b("restart_after_crash", Sighup, ERROR_HANDLING_OPTIONS, "Reinitialize server after backend crash.", "", 0, true),
    b("remove_temp_files_after_crash", Sighup, DEVELOPER_OPTIONS, "Remove temporary files after backend crash.", "", NOT_IN_SAMPLE, true),
    b("send_abort_for_crash", Sighup, DEVELOPER_OPTIONS, "Send SIGABRT not SIGQUIT to child processes after backend crash.", "", NOT_IN_SAMPLE, false),
    b("send_abort_for_kill", Sighup, DEVELOPER_OPTIONS, "Send SIGABRT not SIGKILL to stuck child processes.", "", NOT_IN_SAMPLE, false),
    b("log_duration", Superuser, LOGGING_WHAT, "Logs the duration of each completed SQL statement.", "", 0, false),
    b("debug_print_parse", User, LOGGING_WHAT, "Logs each query's parse tree.", "", 0, false),
    b("debug_print_rewritten", User, LOGGING_WHAT, "Logs each query's rewritten parse tree.", "", 0, false),
    b("debug_print_plan", User, LOGGING_WHAT, "Logs each query's execution plan.", "", 0, false),
    b("debug_pretty_print", User, LOGGING_WHAT, "Indents parse and plan tree displays.", "", 0, true),
    b("log_parser_stats", Superuser, STATS_MONITORING, "Writes parser performance statistics to the server log.", "", 0, false),
    b("log_planner_stats", Superuser, STATS_MONITORING, "Writes planner performance statistics to the server log.", "", 0, false),
    b("log_executor_stats", Superuser, STATS_MONITORING, "Writes executor performance statistics to the server log.", "", 0, false),
    b("log_statement_stats", Superuser, STATS_MONITORING, "Writes cumulative performance statistics to the server log.", "", 0, false),
    b("track_activities", Superuser, STATS_CUMULATIVE, "Collects information about executing commands.", "Enables the collection of information on the currently executing command of each session, along with the time at which that command began execution.", 0, true),
    b("track_counts", Superuser, STATS_CUMULATIVE, "Collects statistics on database activity.", "", 0, true),
    b("track_cost_delay_timing", Superuser, STATS_CUMULATIVE, "Collects timing statistics for cost-based vacuum delay.", "", 0, false),
    b("track_io_timing", Superuser, STATS_CUMULATIVE, "Collects timing statistics for database I/O activity.", "", 0, false),
    b("track_wal_io_timing", Superuser, STATS_CUMULATIVE, "Collects timing statistics for WAL I/O activity.", "", 0, false),
    b("update_process_title", Superuser, PROCESS_TITLE, "Updates the process title to show the active SQL command.", "Enables updating of the process title every time a new SQL command is received by the server.", 0, true),
    b("autovacuum", Sighup, VACUUM_AUTOVACUUM, "Starts the autovacuum subprocess.", "", 0, true),
    b("trace_notify", User, DEVELOPER_OPTIONS, "Generates debugging output for LISTEN and NOTIFY.", "", NOT_IN_SAMPLE, false),
    b("log_lock_waits", Superuser, LOGGING_WHAT, "Logs long lock waits.", "", 0, false),
    b("log_lock_failures", Superuser, LOGGING_WHAT, "Logs lock failures.", "", 0, false),
    b("log_recovery_conflict_waits", Sighup, LOGGING_WHAT, "Logs standby recovery conflict waits.", "", 0, false),
    b("log_hostname", Sighup, LOGGING_WHAT, "Logs the host name in the connection logs.", "By default, connection logs only show the IP address of the connecting host. If you want them to show the host name you can turn this on, but depending on your host name resolution setup it might impose a non-negligible performance penalty.", 0, false),
    b("transform_null_equals", User, COMPAT_OPTIONS_OTHER, "Treats \"expr=NULL\" as \"expr IS NULL\".", "When turned on, expressions of the form expr = NULL (or NULL = expr) are treated as expr IS NULL, that is, they return true if expr evaluates to the null value, and false otherwise. The correct behavior of expr = NULL is to always return null (unknown).", 0, false),
    b("default_transaction_read_only", User, CLIENT_CONN_STATEMENT, "Sets the default read-only status of new transactions.", "", REPORT, false),
    b("transaction_read_only", User, CLIENT_CONN_STATEMENT, "Sets the current transaction's read-only status.", "", NO_RESET | NO_RESET_ALL | NOT_IN_SAMPLE | DISALLOW_IN_FILE, false),
    b("default_transaction_deferrable", User, CLIENT_CONN_STATEMENT, "Sets the default deferrable status of new transactions.", "", 0, false),
    b("transaction_deferrable", User, CLIENT_CONN_STATEMENT, "Whether to defer a read-only serializable transaction until it can be executed with no possible serialization failures.", "", NO_RESET | NO_RESET_ALL | NOT_IN_SAMPLE | DISALLOW_IN_FILE, false),
    b("row_security", User, CLIENT_CONN_STATEMENT, "Enables row security.", "When enabled, row security will be applied to all users.", 0, true),
    b("check_function_bodies", User, CLIENT_CONN_STATEMENT, "Check routine bodies during CREATE FUNCTION and CREATE PROCEDURE.", "", 0, true),
    b("array_nulls", User, COMPAT_OPTIONS_PREVIOUS, "Enables input of NULL elements in arrays.", "When turned on, unquoted NULL in an array input value means a null value; otherwise it is taken literally.", 0, true),
    b("default_with_oids", User, COMPAT_OPTIONS_PREVIOUS, "WITH OIDS is no longer supported; this can only be false.", "", NO_SHOW_ALL | NOT_IN_SAMPLE | ONLY_BOOT, false),
    b("logging_collector", Postmaster, LOGGING_WHERE, "Start a subprocess to capture stderr, csvlog and/or jsonlog into log files.", "", 0, false),
    b("log_truncate_on_rotation", Sighup, LOGGING_WHERE, "Truncate existing log files of same name during log rotation.", "", 0, false),
    b("trace_sort", User, DEVELOPER_OPTIONS, "Emit information about resource usage in sorting.", "", NOT_IN_SAMPLE, false),
    b("integer_datetimes", Internal, PRESET_OPTIONS, "Shows whether datetimes are integer based.", "", REPORT | NOT_IN_SAMPLE | DISALLOW_IN_FILE, true),
    b("krb_caseins_users", Sighup, CONN_AUTH_AUTH, "Sets whether Kerberos and GSSAPI user names should be treated as case-insensitive.", "", 0, false),
    b("gss_accept_delegation", Sighup, CONN_AUTH_AUTH, "Sets whether GSSAPI delegation should be accepted from the client.", "", 0, false),
    b("escape_string_warning", User, COMPAT_OPTIONS_PREVIOUS, "Warn about backslash escapes in ordinary string literals.", "", 0, true),
    b("standard_conforming_strings", User, COMPAT_OPTIONS_PREVIOUS, "Causes '...' strings to treat backslashes literally.", "", REPORT, true),
    b("synchronize_seqscans", User, COMPAT_OPTIONS_PREVIOUS, "Enables synchronized sequential scans.", "", 0, true),
    b("recovery_target_inclusive", Postmaster, WAL_RECOVERY_TARGET, "Sets whether to include or exclude transaction with recovery target.", "", 0, true),
    b("summarize_wal", Sighup, WAL_SUMMARIZATION, "Starts the WAL summarizer process to enable incremental backup.", "", 0, false),
    b("hot_standby", Postmaster, REPLICATION_STANDBY, "Allows connections and queries during recovery.", "", 0, true),
    b("hot_standby_feedback", Sighup, REPLICATION_STANDBY, "Allows feedback from a hot standby to the primary that will avoid query conflicts.", "", 0, false),
    b("in_hot_standby", Internal, PRESET_OPTIONS, "Shows whether hot standby is currently active.", "", REPORT | NOT_IN_SAMPLE | DISALLOW_IN_FILE, false),
    b("allow_system_table_mods", Superuser, DEVELOPER_OPTIONS, "Allows modifications of the structure of system tables.", "", NOT_IN_SAMPLE, false),
    b("ignore_system_indexes", Backend, DEVELOPER_OPTIONS, "Disables reading from system indexes.", "It does not prevent updating the indexes, so it is safe to use.  The worst consequence is slowness.", NOT_IN_SAMPLE, false),
    b("allow_in_place_tablespaces", Superuser, DEVELOPER_OPTIONS, "Allows tablespaces directly inside pg_tblspc, for testing.", "", NOT_IN_SAMPLE, false),
    b("lo_compat_privileges", Superuser, COMPAT_OPTIONS_PREVIOUS, "Enables backward compatibility mode for privilege checks on large objects.", "Skips privilege checks when reading or modifying large objects, for compatibility with PostgreSQL releases prior to 9.0.", 0, false),
    b("quote_all_identifiers", User, COMPAT_OPTIONS_PREVIOUS, "When generating SQL fragments, quote all identifiers.", "", 0, false),
    b("data_checksums", Internal, PRESET_OPTIONS, "Shows whether data checksums are turned on for this cluster.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE | RUNTIME_COMPUTED, false),
    b("syslog_sequence_numbers", Sighup, LOGGING_WHERE, "Add sequence number to syslog messages to avoid duplicate suppression.", "", 0, true),
    b("syslog_split_messages", Sighup, LOGGING_WHERE, "Split messages sent to syslog by lines and to fit into 1024 bytes.", "", 0, true),
    b("parallel_leader_participation", User, RESOURCES_WORKER_PROCESSES, "Controls whether Gather and Gather Merge also run subplans.", "Should gather nodes also run subplans or just gather tuples?", EXPLAIN, true),
    b("jit", User, QUERY_TUNING_OTHER, "Allow JIT compilation.", "", EXPLAIN, true),
    b("jit_debugging_support", SuBackend, DEVELOPER_OPTIONS, "Register JIT-compiled functions with debugger.", "", NOT_IN_SAMPLE, false),
    b("jit_dump_bitcode", Superuser, DEVELOPER_OPTIONS, "Write out LLVM bitcode to facilitate JIT debugging.", "", NOT_IN_SAMPLE, false),
    b("jit_expressions", User, DEVELOPER_OPTIONS, "Allow JIT compilation of expressions.", "", NOT_IN_SAMPLE, true),
    b("jit_profiling_support", SuBackend, DEVELOPER_OPTIONS, "Register JIT-compiled functions with perf profiler.", "", NOT_IN_SAMPLE, false),
    b("jit_tuple_deforming", User, DEVELOPER_OPTIONS, "Allow JIT compilation of tuple deforming.", "", NOT_IN_SAMPLE, true),
    b("data_sync_retry", Postmaster, ERROR_HANDLING_OPTIONS, "Whether to continue running after a failure to sync data files.", "", 0, false),
    b("wal_receiver_create_temp_slot", Sighup, REPLICATION_STANDBY, "Sets whether a WAL receiver should create a temporary replication slot if no permanent slot is configured.", "", 0, false),
    b("event_triggers", Superuser, CLIENT_CONN_STATEMENT, "Enables event triggers.", "When enabled, event triggers will fire for all applicable statements.", 0, true),
    b("sync_replication_slots", Sighup, REPLICATION_STANDBY, "Enables a physical standby to synchronize logical failover replication slots from the primary server.", "", 0, false),
    b("md5_password_warnings", User, CONN_AUTH_AUTH, "Enables deprecation warnings for MD5 passwords.", "", 0, true),
    b("vacuum_truncate", User, VACUUM_DEFAULT, "Enables vacuum to truncate empty pages at the end of the table.", "", 0, true),
    // pgipc's own.
    b("exec_backend", Postmaster, DEVELOPER_OPTIONS, "Starts children with fork+exec of the server binary (PostgreSQL's EXEC_BACKEND build).", "pgipc only. Forces shared_memory_type = memfd.", PGIPC, false),
    i("spare_backends", Sighup, CONN_AUTH_SETTINGS, "Sets the number of backends the postmaster starts ahead of connections.", "pgipc only. A new connection goes to a waiting spare backend instead of a fork at accept; 0 forks at accept, as PostgreSQL does. Not used with exec_backend.", PGIPC, 2, 0, 64),
    // ---- integers ----
    i("archive_timeout", Sighup, WAL_ARCHIVING, "Sets the amount of time to wait before forcing a switch to the next WAL file.", "0 disables the timeout.", UNIT_S, 0, 0, INT_MAX / 2),
    i("post_auth_delay", Backend, DEVELOPER_OPTIONS, "Sets the amount of time to wait after authentication on connection startup.", "This allows attaching a debugger to the process.", NOT_IN_SAMPLE | UNIT_S, 0, 0, INT_MAX / 1_000_000),
    i("default_statistics_target", User, QUERY_TUNING_OTHER, "Sets the default statistics target.", "This applies to table columns that have not had a column-specific target set via ALTER TABLE SET STATISTICS.", 0, 100, 1, 10000),
    i("from_collapse_limit", User, QUERY_TUNING_OTHER, "Sets the FROM-list size beyond which subqueries are not collapsed.", "The planner will merge subqueries into upper queries if the resulting FROM list would have no more than this many items.", EXPLAIN, 8, 1, INT_MAX),
    i("join_collapse_limit", User, QUERY_TUNING_OTHER, "Sets the FROM-list size beyond which JOIN constructs are not flattened.", "The planner will flatten explicit JOIN constructs into lists of FROM items whenever a list of no more than this many items would result.", EXPLAIN, 8, 1, INT_MAX),
    i("geqo_threshold", User, QUERY_TUNING_GEQO, "Sets the threshold of FROM items beyond which GEQO is used.", "", EXPLAIN, 12, 2, INT_MAX),
    i("geqo_effort", User, QUERY_TUNING_GEQO, "GEQO: effort is used to set the default for other GEQO parameters.", "", EXPLAIN, 5, 1, 10),
    i("geqo_pool_size", User, QUERY_TUNING_GEQO, "GEQO: number of individuals in the population.", "0 means use a suitable default value.", EXPLAIN, 0, 0, INT_MAX),
    i("geqo_generations", User, QUERY_TUNING_GEQO, "GEQO: number of iterations of the algorithm.", "0 means use a suitable default value.", EXPLAIN, 0, 0, INT_MAX),
    i("deadlock_timeout", Superuser, LOCK_MANAGEMENT, "Sets the time to wait on a lock before checking for deadlock.", "", UNIT_MS, 1000, 1, INT_MAX),
    i("max_standby_archive_delay", Sighup, REPLICATION_STANDBY, "Sets the maximum delay before canceling queries when a hot standby server is processing archived WAL data.", "-1 means wait forever.", UNIT_MS, 30_000, -1, INT_MAX),
    i("max_standby_streaming_delay", Sighup, REPLICATION_STANDBY, "Sets the maximum delay before canceling queries when a hot standby server is processing streamed WAL data.", "-1 means wait forever.", UNIT_MS, 30_000, -1, INT_MAX),
    i("recovery_min_apply_delay", Sighup, REPLICATION_STANDBY, "Sets the minimum delay for applying changes during recovery.", "", UNIT_MS, 0, 0, INT_MAX),
    i("wal_receiver_status_interval", Sighup, REPLICATION_STANDBY, "Sets the maximum interval between WAL receiver status reports to the sending server.", "", UNIT_S, 10, 0, INT_MAX / 1000),
    i("wal_receiver_timeout", Sighup, REPLICATION_STANDBY, "Sets the maximum wait time to receive data from the sending server.", "0 disables the timeout.", UNIT_MS, 60_000, 0, INT_MAX),
    i("max_connections", Postmaster, CONN_AUTH_SETTINGS, "Sets the maximum number of concurrent connections.", "", 0, 100, 1, MAX_BACKENDS),
    i("superuser_reserved_connections", Postmaster, CONN_AUTH_SETTINGS, "Sets the number of connection slots reserved for superusers.", "", 0, 3, 0, MAX_BACKENDS),
    i("reserved_connections", Postmaster, CONN_AUTH_SETTINGS, "Sets the number of connection slots reserved for roles with privileges of pg_use_reserved_connections.", "", 0, 0, 0, MAX_BACKENDS),
    i("min_dynamic_shared_memory", Postmaster, RESOURCES_MEM, "Amount of dynamic shared memory reserved at startup.", "", UNIT_MB, 0, 0, INT_MAX),
    i("shared_buffers", Postmaster, RESOURCES_MEM, "Sets the number of shared memory buffers used by the server.", "", UNIT_BLOCKS, 16384, 16, INT_MAX / 2),
    i("vacuum_buffer_usage_limit", User, RESOURCES_MEM, "Sets the buffer pool size for VACUUM, ANALYZE, and autovacuum.", "", UNIT_KB, 2048, 0, 16 * 1024 * 1024),
    i("shared_memory_size", Internal, PRESET_OPTIONS, "Shows the size of the server's main shared memory area (rounded up to the nearest MB).", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE | UNIT_MB | RUNTIME_COMPUTED, 0, 0, INT_MAX),
    i("shared_memory_size_in_huge_pages", Internal, PRESET_OPTIONS, "Shows the number of huge pages needed for the main shared memory area.", "-1 means huge pages are not supported.", NOT_IN_SAMPLE | DISALLOW_IN_FILE | RUNTIME_COMPUTED, -1, -1, INT_MAX),
    i("num_os_semaphores", Internal, PRESET_OPTIONS, "Shows the number of semaphores required for the server.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE | RUNTIME_COMPUTED, 0, 0, INT_MAX),
    i("commit_timestamp_buffers", Postmaster, RESOURCES_MEM, "Sets the size of the dedicated buffer pool used for the commit timestamp cache.", "0 means use a fraction of \"shared_buffers\".", UNIT_BLOCKS, 0, 0, SLRU_MAX_ALLOWED_BUFFERS),
    i("multixact_member_buffers", Postmaster, RESOURCES_MEM, "Sets the size of the dedicated buffer pool used for the MultiXact member cache.", "", UNIT_BLOCKS, 32, 16, SLRU_MAX_ALLOWED_BUFFERS),
    i("multixact_offset_buffers", Postmaster, RESOURCES_MEM, "Sets the size of the dedicated buffer pool used for the MultiXact offset cache.", "", UNIT_BLOCKS, 16, 16, SLRU_MAX_ALLOWED_BUFFERS),
    i("notify_buffers", Postmaster, RESOURCES_MEM, "Sets the size of the dedicated buffer pool used for the LISTEN/NOTIFY message cache.", "", UNIT_BLOCKS, 16, 16, SLRU_MAX_ALLOWED_BUFFERS),
    i("serializable_buffers", Postmaster, RESOURCES_MEM, "Sets the size of the dedicated buffer pool used for the serializable transaction cache.", "", UNIT_BLOCKS, 32, 16, SLRU_MAX_ALLOWED_BUFFERS),
    i("subtransaction_buffers", Postmaster, RESOURCES_MEM, "Sets the size of the dedicated buffer pool used for the subtransaction cache.", "0 means use a fraction of \"shared_buffers\".", UNIT_BLOCKS, 0, 0, SLRU_MAX_ALLOWED_BUFFERS),
    i("transaction_buffers", Postmaster, RESOURCES_MEM, "Sets the size of the dedicated buffer pool used for the transaction status cache.", "0 means use a fraction of \"shared_buffers\".", UNIT_BLOCKS, 0, 0, SLRU_MAX_ALLOWED_BUFFERS),
    i("temp_buffers", User, RESOURCES_MEM, "Sets the maximum number of temporary buffers used by each session.", "", UNIT_BLOCKS | EXPLAIN, 1024, 100, INT_MAX / 2),
    i("port", Postmaster, CONN_AUTH_SETTINGS, "Sets the TCP port the server listens on.", "", 0, 5432, 1, 65535),
    i("unix_socket_permissions", Postmaster, CONN_AUTH_SETTINGS, "Sets the access permissions of the Unix-domain socket.", "Unix-domain sockets use the usual Unix file system permission set. The parameter value is expected to be a numeric mode specification in the form accepted by the chmod and umask system calls. (To use the customary octal format the number must start with a 0 (zero).)", SHOW_OCTAL, 0o777, 0, 0o777),
    i("log_file_mode", Sighup, LOGGING_WHERE, "Sets the file permissions for log files.", "The parameter value is expected to be a numeric mode specification in the form accepted by the chmod and umask system calls. (To use the customary octal format the number must start with a 0 (zero).)", SHOW_OCTAL, 0o600, 0, 0o777),
    i("data_directory_mode", Internal, PRESET_OPTIONS, "Shows the mode of the data directory.", "The parameter value is a numeric mode specification in the form accepted by the chmod and umask system calls. (To use the customary octal format the number must start with a 0 (zero).)", NOT_IN_SAMPLE | DISALLOW_IN_FILE | RUNTIME_COMPUTED | SHOW_OCTAL, 0o700, 0, 0o777),
    i("work_mem", User, RESOURCES_MEM, "Sets the maximum memory to be used for query workspaces.", "This much memory can be used by each internal sort operation and hash table before switching to temporary disk files.", UNIT_KB | EXPLAIN, 4096, 64, MAX_KILOBYTES),
    i("maintenance_work_mem", User, RESOURCES_MEM, "Sets the maximum memory to be used for maintenance operations.", "This includes operations such as VACUUM and CREATE INDEX.", UNIT_KB, 65536, 64, MAX_KILOBYTES),
    i("logical_decoding_work_mem", User, RESOURCES_MEM, "Sets the maximum memory to be used for logical decoding.", "This much memory can be used by each internal reorder buffer before spilling to disk.", UNIT_KB, 65536, 64, MAX_KILOBYTES),
    i("max_stack_depth", Superuser, RESOURCES_MEM, "Sets the maximum stack depth, in kilobytes.", "", UNIT_KB, 100, 100, MAX_KILOBYTES),
    i("temp_file_limit", Superuser, RESOURCES_DISK, "Limits the total size of all temporary files used by each process.", "-1 means no limit.", UNIT_KB, -1, -1, INT_MAX),
    i("vacuum_cost_page_hit", User, VACUUM_COST_DELAY, "Vacuum cost for a page found in the buffer cache.", "", 0, 1, 0, 10000),
    i("vacuum_cost_page_miss", User, VACUUM_COST_DELAY, "Vacuum cost for a page not found in the buffer cache.", "", 0, 2, 0, 10000),
    i("vacuum_cost_page_dirty", User, VACUUM_COST_DELAY, "Vacuum cost for a page dirtied by vacuum.", "", 0, 20, 0, 10000),
    i("vacuum_cost_limit", User, VACUUM_COST_DELAY, "Vacuum cost amount available before napping.", "", 0, 200, 1, 10000),
    i("autovacuum_vacuum_cost_limit", Sighup, VACUUM_AUTOVACUUM, "Vacuum cost amount available before napping, for autovacuum.", "-1 means use \"vacuum_cost_limit\".", 0, -1, -1, 10000),
    i("max_files_per_process", Postmaster, RESOURCES_KERNEL, "Sets the maximum number of simultaneously open files for each server process.", "", 0, 1000, 64, INT_MAX),
    i("max_prepared_transactions", Postmaster, RESOURCES_MEM, "Sets the maximum number of simultaneously prepared transactions.", "", 0, 0, 0, MAX_BACKENDS),
    i("statement_timeout", User, CLIENT_CONN_STATEMENT, "Sets the maximum allowed duration of any statement.", "0 disables the timeout.", UNIT_MS, 0, 0, INT_MAX),
    i("lock_timeout", User, CLIENT_CONN_STATEMENT, "Sets the maximum allowed duration of any wait for a lock.", "0 disables the timeout.", UNIT_MS, 0, 0, INT_MAX),
    i("idle_in_transaction_session_timeout", User, CLIENT_CONN_STATEMENT, "Sets the maximum allowed idle time between queries, when in a transaction.", "0 disables the timeout.", UNIT_MS, 0, 0, INT_MAX),
    i("transaction_timeout", User, CLIENT_CONN_STATEMENT, "Sets the maximum allowed duration of any transaction within a session (not a prepared transaction).", "0 disables the timeout.", UNIT_MS, 0, 0, INT_MAX),
    i("idle_session_timeout", User, CLIENT_CONN_STATEMENT, "Sets the maximum allowed idle time between queries, when not in a transaction.", "0 disables the timeout.", UNIT_MS, 0, 0, INT_MAX),
    i("vacuum_freeze_min_age", User, VACUUM_FREEZING, "Minimum age at which VACUUM should freeze a table row.", "", 0, 50_000_000, 0, 1_000_000_000),
    i("vacuum_freeze_table_age", User, VACUUM_FREEZING, "Age at which VACUUM should scan whole table to freeze tuples.", "", 0, 150_000_000, 0, 2_000_000_000),
    i("vacuum_multixact_freeze_min_age", User, VACUUM_FREEZING, "Minimum age at which VACUUM should freeze a MultiXactId in a table row.", "", 0, 5_000_000, 0, 1_000_000_000),
    i("vacuum_multixact_freeze_table_age", User, VACUUM_FREEZING, "Multixact age at which VACUUM should scan whole table to freeze tuples.", "", 0, 150_000_000, 0, 2_000_000_000),
    i("vacuum_failsafe_age", User, VACUUM_FREEZING, "Age at which VACUUM should trigger failsafe to avoid a wraparound outage.", "", 0, 1_600_000_000, 0, 2_100_000_000),
    i("vacuum_multixact_failsafe_age", User, VACUUM_FREEZING, "Multixact age at which VACUUM should trigger failsafe to avoid a wraparound outage.", "", 0, 1_600_000_000, 0, 2_100_000_000),
    i("max_locks_per_transaction", Postmaster, LOCK_MANAGEMENT, "Sets the maximum number of locks per transaction.", "The shared lock table is sized on the assumption that at most \"max_locks_per_transaction\" objects per server process or prepared transaction will need to be locked at any one time.", 0, 64, 10, INT_MAX),
    i("max_pred_locks_per_transaction", Postmaster, LOCK_MANAGEMENT, "Sets the maximum number of predicate locks per transaction.", "The shared predicate lock table is sized on the assumption that at most \"max_pred_locks_per_transaction\" objects per server process or prepared transaction will need to be locked at any one time.", 0, 64, 10, INT_MAX),
    i("max_pred_locks_per_relation", Sighup, LOCK_MANAGEMENT, "Sets the maximum number of predicate-locked pages and tuples per relation.", "If more than this total of pages and tuples in the same relation are locked by a connection, those locks are replaced by a relation-level lock.", 0, -2, INT_MIN, INT_MAX),
    i("max_pred_locks_per_page", Sighup, LOCK_MANAGEMENT, "Sets the maximum number of predicate-locked tuples per page.", "If more than this number of tuples on the same page are locked by a connection, those locks are replaced by a page-level lock.", 0, 2, 0, INT_MAX),
    i("authentication_timeout", Sighup, CONN_AUTH_AUTH, "Sets the maximum allowed time to complete client authentication.", "", UNIT_S, 60, 1, 600),
    i("pre_auth_delay", Sighup, DEVELOPER_OPTIONS, "Sets the amount of time to wait before authentication on connection startup.", "This allows attaching a debugger to the process.", NOT_IN_SAMPLE | UNIT_S, 0, 0, 60),
    i("max_notify_queue_pages", Postmaster, RESOURCES_DISK, "Sets the maximum number of allocated pages for NOTIFY / LISTEN queue.", "", 0, 1_048_576, 64, INT_MAX),
    i("wal_decode_buffer_size", Postmaster, WAL_RECOVERY, "Buffer size for reading ahead in the WAL during recovery.", "Maximum distance to read ahead in the WAL to prefetch referenced data blocks.", UNIT_BYTE, 512 * 1024, 64 * 1024, 0x3fff_ffff),
    i("wal_keep_size", Sighup, REPLICATION_SENDING, "Sets the size of WAL files held for standby servers.", "", UNIT_MB, 0, 0, MAX_KILOBYTES),
    i("min_wal_size", Sighup, WAL_CHECKPOINTS, "Sets the minimum size to shrink the WAL to.", "", UNIT_MB, 80, 2, MAX_KILOBYTES),
    i("max_wal_size", Sighup, WAL_CHECKPOINTS, "Sets the WAL size that triggers a checkpoint.", "", UNIT_MB, 1024, 2, MAX_KILOBYTES),
    i("checkpoint_timeout", Sighup, WAL_CHECKPOINTS, "Sets the maximum time between automatic WAL checkpoints.", "", UNIT_S, 300, 30, 86400),
    i("checkpoint_warning", Sighup, WAL_CHECKPOINTS, "Sets the maximum time before warning if checkpoints triggered by WAL volume happen too frequently.", "Write a message to the server log if checkpoints caused by the filling of WAL segment files happen more frequently than this amount of time. 0 disables the warning.", UNIT_S, 30, 0, INT_MAX),
    i("checkpoint_flush_after", Sighup, WAL_CHECKPOINTS, "Number of pages after which previously performed writes are flushed to disk.", "0 disables forced writeback.", UNIT_BLOCKS, 32, 0, WRITEBACK_MAX_PENDING_FLUSHES),
    i("wal_buffers", Postmaster, WAL_SETTINGS, "Sets the number of disk-page buffers in shared memory for WAL.", "-1 means use a fraction of \"shared_buffers\".", UNIT_XBLOCKS, -1, -1, INT_MAX / XLOG_BLCKSZ),
    i("wal_writer_delay", Sighup, WAL_SETTINGS, "Time between WAL flushes performed in the WAL writer.", "", UNIT_MS, 200, 1, 10000),
    i("wal_writer_flush_after", Sighup, WAL_SETTINGS, "Amount of WAL written out by WAL writer that triggers a flush.", "", UNIT_XBLOCKS, (1024 * 1024) / XLOG_BLCKSZ, 0, INT_MAX),
    i("wal_skip_threshold", User, WAL_SETTINGS, "Minimum size of new file to fsync instead of writing WAL.", "", UNIT_KB, 2048, 0, MAX_KILOBYTES),
    i("max_wal_senders", Postmaster, REPLICATION_SENDING, "Sets the maximum number of simultaneously running WAL sender processes.", "", 0, 10, 0, MAX_BACKENDS),
    i("max_replication_slots", Postmaster, REPLICATION_SENDING, "Sets the maximum number of simultaneously defined replication slots.", "", 0, 10, 0, MAX_BACKENDS),
    i("max_slot_wal_keep_size", Sighup, REPLICATION_SENDING, "Sets the maximum WAL size that can be reserved by replication slots.", "Replication slots will be marked as failed, and segments released for deletion or recycling, if this much space is occupied by WAL on disk. -1 means no maximum.", UNIT_MB, -1, -1, MAX_KILOBYTES),
    i("wal_sender_timeout", User, REPLICATION_SENDING, "Sets the maximum time to wait for WAL replication.", "", UNIT_MS, 60_000, 0, INT_MAX),
    i("idle_replication_slot_timeout", Sighup, REPLICATION_SENDING, "Sets the duration a replication slot can remain idle before it is invalidated.", "", UNIT_S, 0, 0, INT_MAX),
    i("commit_delay", Superuser, WAL_SETTINGS, "Sets the delay in microseconds between transaction commit and flushing WAL to disk.", "", 0, 0, 0, 100_000),
    i("commit_siblings", User, WAL_SETTINGS, "Sets the minimum number of concurrent open transactions required before performing \"commit_delay\".", "", 0, 5, 0, 1000),
    i("extra_float_digits", User, CLIENT_CONN_LOCALE, "Sets the number of digits displayed for floating-point values.", "This affects real, double precision, and geometric data types. A zero or negative parameter value is added to the standard number of digits (FLT_DIG or DBL_DIG as appropriate). Any value greater than zero selects precise output mode.", 0, 1, -15, 3),
    i("log_min_duration_sample", Superuser, LOGGING_WHEN, "Sets the minimum execution time above which a sample of statements will be logged. Sampling is determined by \"log_statement_sample_rate\".", "-1 disables sampling. 0 means sample all statements.", UNIT_MS, -1, -1, INT_MAX),
    i("log_min_duration_statement", Superuser, LOGGING_WHEN, "Sets the minimum execution time above which all statements will be logged.", "-1 disables logging statement durations. 0 means log all statement durations.", UNIT_MS, -1, -1, INT_MAX),
    i("log_autovacuum_min_duration", Sighup, LOGGING_WHAT, "Sets the minimum execution time above which autovacuum actions will be logged.", "-1 disables logging autovacuum actions. 0 means log all autovacuum actions.", UNIT_MS, 600_000, -1, INT_MAX),
    i("log_parameter_max_length", Superuser, LOGGING_WHAT, "Sets the maximum length in bytes of data logged for bind parameter values when logging statements.", "-1 means log values in full.", UNIT_BYTE, -1, -1, INT_MAX / 2),
    i("log_parameter_max_length_on_error", User, LOGGING_WHAT, "Sets the maximum length in bytes of data logged for bind parameter values when logging statements, on error.", "-1 means log values in full.", UNIT_BYTE, 0, -1, INT_MAX / 2),
    i("bgwriter_delay", Sighup, RESOURCES_BGWRITER, "Background writer sleep time between rounds.", "", UNIT_MS, 200, 10, 10000),
    i("bgwriter_lru_maxpages", Sighup, RESOURCES_BGWRITER, "Background writer maximum number of LRU pages to flush per round.", "0 disables background writing.", 0, 100, 0, INT_MAX / 2),
    i("bgwriter_flush_after", Sighup, RESOURCES_BGWRITER, "Number of pages after which previously performed writes are flushed to disk.", "0 disables forced writeback.", UNIT_BLOCKS, 64, 0, WRITEBACK_MAX_PENDING_FLUSHES),
    i("effective_io_concurrency", User, RESOURCES_IO, "Number of simultaneous requests that can be handled efficiently by the disk subsystem.", "0 disables simultaneous requests.", EXPLAIN, 16, 0, MAX_IO_CONCURRENCY),
    i("maintenance_io_concurrency", User, RESOURCES_IO, "A variant of \"effective_io_concurrency\" that is used for maintenance work.", "0 disables simultaneous requests.", EXPLAIN, 16, 0, MAX_IO_CONCURRENCY),
    i("io_max_combine_limit", Postmaster, RESOURCES_IO, "Server-wide limit that clamps io_combine_limit.", "", UNIT_BLOCKS, 16, 1, MAX_IO_COMBINE_LIMIT),
    i("io_combine_limit", User, RESOURCES_IO, "Limit on the size of data reads and writes.", "", UNIT_BLOCKS, 16, 1, MAX_IO_COMBINE_LIMIT),
    i("io_max_concurrency", Postmaster, RESOURCES_IO, "Max number of IOs that one process can execute simultaneously.", "", 0, -1, -1, 1024),
    i("io_workers", Sighup, RESOURCES_IO, "Number of IO worker processes, for io_method=worker.", "", 0, 3, 1, 32),
    i("backend_flush_after", User, RESOURCES_IO, "Number of pages after which previously performed writes are flushed to disk.", "0 disables forced writeback.", UNIT_BLOCKS, 0, 0, WRITEBACK_MAX_PENDING_FLUSHES),
    i("max_worker_processes", Postmaster, RESOURCES_WORKER_PROCESSES, "Maximum number of concurrent worker processes.", "", 0, 8, 0, MAX_BACKENDS),
    i("max_logical_replication_workers", Postmaster, REPLICATION_SUBSCRIBERS, "Maximum number of logical replication worker processes.", "", 0, 4, 0, MAX_BACKENDS),
    i("max_sync_workers_per_subscription", Sighup, REPLICATION_SUBSCRIBERS, "Maximum number of table synchronization workers per subscription.", "", 0, 2, 0, MAX_BACKENDS),
    i("max_parallel_apply_workers_per_subscription", Sighup, REPLICATION_SUBSCRIBERS, "Maximum number of parallel apply workers per subscription.", "", 0, 2, 0, MAX_PARALLEL_WORKER_LIMIT),
    i("max_active_replication_origins", Postmaster, REPLICATION_SUBSCRIBERS, "Sets the maximum number of active replication origins.", "", 0, 10, 0, MAX_BACKENDS),
    i("log_rotation_age", Sighup, LOGGING_WHERE, "Sets the amount of time to wait before forcing log file rotation.", "0 disables time-based creation of new log files.", UNIT_MIN, 24 * 60, 0, INT_MAX / 60),
    i("log_rotation_size", Sighup, LOGGING_WHERE, "Sets the maximum size a log file can reach before being rotated.", "0 disables size-based creation of new log files.", UNIT_KB, 10 * 1024, 0, INT_MAX),
    i("max_function_args", Internal, PRESET_OPTIONS, "Shows the maximum number of function arguments.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE, 100, 100, 100),
    i("max_index_keys", Internal, PRESET_OPTIONS, "Shows the maximum number of index keys.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE, 32, 32, 32),
    i("max_identifier_length", Internal, PRESET_OPTIONS, "Shows the maximum identifier length.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE, 63, 63, 63),
    i("block_size", Internal, PRESET_OPTIONS, "Shows the size of a disk block.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE, BLCKSZ, BLCKSZ, BLCKSZ),
    i("segment_size", Internal, PRESET_OPTIONS, "Shows the number of pages per disk file.", "", UNIT_BLOCKS | NOT_IN_SAMPLE | DISALLOW_IN_FILE, 131_072, 131_072, 131_072),
    i("wal_block_size", Internal, PRESET_OPTIONS, "Shows the block size in the write ahead log.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE, XLOG_BLCKSZ, XLOG_BLCKSZ, XLOG_BLCKSZ),
    i("wal_retrieve_retry_interval", Sighup, REPLICATION_STANDBY, "Sets the time to wait before retrying to retrieve WAL after a failed attempt.", "", UNIT_MS, 5000, 1, INT_MAX),
    i("wal_segment_size", Internal, PRESET_OPTIONS, "Shows the size of write ahead log segments.", "", UNIT_BYTE | NOT_IN_SAMPLE | DISALLOW_IN_FILE | RUNTIME_COMPUTED, 16 * 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024),
    i("wal_summary_keep_time", Sighup, WAL_SUMMARIZATION, "Time for which WAL summary files should be kept.", "0 disables automatic summary file deletion.", UNIT_MIN, 10 * 24 * 60, 0, INT_MAX / 60),
    i("autovacuum_naptime", Sighup, VACUUM_AUTOVACUUM, "Time to sleep between autovacuum runs.", "", UNIT_S, 60, 1, INT_MAX / 1000),
    i("autovacuum_vacuum_threshold", Sighup, VACUUM_AUTOVACUUM, "Minimum number of tuple updates or deletes prior to vacuum.", "", 0, 50, 0, INT_MAX),
    i("autovacuum_vacuum_max_threshold", Sighup, VACUUM_AUTOVACUUM, "Maximum number of tuple updates or deletes prior to vacuum.", "-1 disables the maximum threshold.", 0, 100_000_000, -1, INT_MAX),
    i("autovacuum_vacuum_insert_threshold", Sighup, VACUUM_AUTOVACUUM, "Minimum number of tuple inserts prior to vacuum.", "-1 disables insert vacuums.", 0, 1000, -1, INT_MAX),
    i("autovacuum_analyze_threshold", Sighup, VACUUM_AUTOVACUUM, "Minimum number of tuple inserts, updates, or deletes prior to analyze.", "", 0, 50, 0, INT_MAX),
    i("autovacuum_freeze_max_age", Postmaster, VACUUM_AUTOVACUUM, "Age at which to autovacuum a table to prevent transaction ID wraparound.", "", 0, 200_000_000, 100_000, 2_000_000_000),
    i("autovacuum_multixact_freeze_max_age", Postmaster, VACUUM_AUTOVACUUM, "Multixact age at which to autovacuum a table to prevent multixact wraparound.", "", 0, 400_000_000, 10_000, 2_000_000_000),
    i("autovacuum_worker_slots", Postmaster, VACUUM_AUTOVACUUM, "Sets the number of backend slots to allocate for autovacuum workers.", "", 0, 16, 1, MAX_BACKENDS),
    i("autovacuum_max_workers", Sighup, VACUUM_AUTOVACUUM, "Sets the maximum number of simultaneously running autovacuum worker processes.", "", 0, 3, 1, MAX_BACKENDS),
    i("max_parallel_maintenance_workers", User, RESOURCES_WORKER_PROCESSES, "Sets the maximum number of parallel processes per maintenance operation.", "", 0, 2, 0, MAX_PARALLEL_WORKER_LIMIT),
    i("max_parallel_workers_per_gather", User, RESOURCES_WORKER_PROCESSES, "Sets the maximum number of parallel processes per executor node.", "", EXPLAIN, 2, 0, MAX_PARALLEL_WORKER_LIMIT),
    i("max_parallel_workers", User, RESOURCES_WORKER_PROCESSES, "Sets the maximum number of parallel workers that can be active at one time.", "", EXPLAIN, 8, 0, MAX_PARALLEL_WORKER_LIMIT),
    i("autovacuum_work_mem", Sighup, RESOURCES_MEM, "Sets the maximum memory to be used by each autovacuum worker process.", "-1 means use \"maintenance_work_mem\".", UNIT_KB, -1, -1, MAX_KILOBYTES),
    i("tcp_keepalives_idle", User, CONN_AUTH_TCP, "Time between issuing TCP keepalives.", "0 means use the system default.", UNIT_S, 0, 0, INT_MAX),
    i("tcp_keepalives_interval", User, CONN_AUTH_TCP, "Time between TCP keepalive retransmits.", "0 means use the system default.", UNIT_S, 0, 0, INT_MAX),
    i("ssl_renegotiation_limit", User, COMPAT_OPTIONS_PREVIOUS, "SSL renegotiation is no longer supported; this can only be 0.", "", NO_SHOW_ALL | NOT_IN_SAMPLE | DISALLOW_IN_FILE, 0, 0, 0),
    i("tcp_keepalives_count", User, CONN_AUTH_TCP, "Maximum number of TCP keepalive retransmits.", "Number of consecutive keepalive retransmits that can be lost before a connection is considered dead. 0 means use the system default.", 0, 0, 0, INT_MAX),
    i("gin_fuzzy_search_limit", User, CLIENT_CONN_OTHER, "Sets the maximum allowed result for exact search by GIN.", "0 means no limit.", 0, 0, 0, INT_MAX),
    i("effective_cache_size", User, QUERY_TUNING_COST, "Sets the planner's assumption about the total size of the data caches.", "That is, the total size of the caches (kernel cache and shared buffers) used for PostgreSQL data files. This is measured in disk pages, which are normally 8 kB each.", UNIT_BLOCKS | EXPLAIN, 524_288, 1, INT_MAX),
    i("min_parallel_table_scan_size", User, QUERY_TUNING_COST, "Sets the minimum amount of table data for a parallel scan.", "If the planner estimates that it will read a number of table pages too small to reach this limit, a parallel scan will not be considered.", UNIT_BLOCKS | EXPLAIN, (8 * 1024 * 1024) / BLCKSZ, 0, INT_MAX / 3),
    i("min_parallel_index_scan_size", User, QUERY_TUNING_COST, "Sets the minimum amount of index data for a parallel scan.", "If the planner estimates that it will read a number of index pages too small to reach this limit, a parallel scan will not be considered.", UNIT_BLOCKS | EXPLAIN, (512 * 1024) / BLCKSZ, 0, INT_MAX / 3),
    i("server_version_num", Internal, PRESET_OPTIONS, "Shows the server version as an integer.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE, 180_006, 180_006, 180_006),
    i("log_temp_files", Superuser, LOGGING_WHAT, "Log the use of temporary files larger than this number of kilobytes.", "-1 disables logging temporary files. 0 means log all temporary files.", UNIT_KB, -1, -1, INT_MAX),
    i("track_activity_query_size", Postmaster, STATS_CUMULATIVE, "Sets the size reserved for pg_stat_activity.query, in bytes.", "", UNIT_BYTE, 1024, 100, 1_048_576),
    i("gin_pending_list_limit", User, CLIENT_CONN_STATEMENT, "Sets the maximum size of the pending list for GIN index.", "", UNIT_KB, 4096, 64, MAX_KILOBYTES),
    i("tcp_user_timeout", User, CONN_AUTH_TCP, "TCP user timeout.", "0 means use the system default.", UNIT_MS, 0, 0, INT_MAX),
    i("huge_page_size", Postmaster, RESOURCES_MEM, "The size of huge page that should be requested.", "0 means use the system default.", UNIT_KB, 0, 0, INT_MAX),
    i("debug_discard_caches", Superuser, DEVELOPER_OPTIONS, "Aggressively flush system caches for debugging purposes.", "0 means use normal caching behavior.", NOT_IN_SAMPLE, 0, 0, 0),
    i("client_connection_check_interval", User, CONN_AUTH_TCP, "Sets the time interval between checks for disconnection while running queries.", "0 disables connection checks.", UNIT_MS, 0, 0, INT_MAX),
    i("log_startup_progress_interval", Sighup, LOGGING_WHEN, "Time between progress updates for long-running startup operations.", "0 disables progress updates.", UNIT_MS, 10000, 0, INT_MAX),
    i("scram_iterations", User, CONN_AUTH_AUTH, "Sets the iteration count for SCRAM secret generation.", "", REPORT, 4096, 1, INT_MAX),
    // ---- reals ----
    r("seq_page_cost", User, QUERY_TUNING_COST, "Sets the planner's estimate of the cost of a sequentially fetched disk page.", "", EXPLAIN, 1.0, 0.0, DBL_MAX),
    r("random_page_cost", User, QUERY_TUNING_COST, "Sets the planner's estimate of the cost of a nonsequentially fetched disk page.", "", EXPLAIN, 4.0, 0.0, DBL_MAX),
    r("cpu_tuple_cost", User, QUERY_TUNING_COST, "Sets the planner's estimate of the cost of processing each tuple (row).", "", EXPLAIN, 0.01, 0.0, DBL_MAX),
    r("cpu_index_tuple_cost", User, QUERY_TUNING_COST, "Sets the planner's estimate of the cost of processing each index entry during an index scan.", "", EXPLAIN, 0.005, 0.0, DBL_MAX),
    r("cpu_operator_cost", User, QUERY_TUNING_COST, "Sets the planner's estimate of the cost of processing each operator or function call.", "", EXPLAIN, 0.0025, 0.0, DBL_MAX),
    r("parallel_tuple_cost", User, QUERY_TUNING_COST, "Sets the planner's estimate of the cost of passing each tuple (row) from worker to leader backend.", "", EXPLAIN, 0.1, 0.0, DBL_MAX),
    r("parallel_setup_cost", User, QUERY_TUNING_COST, "Sets the planner's estimate of the cost of starting up worker processes for parallel query.", "", EXPLAIN, 1000.0, 0.0, DBL_MAX),
    r("jit_above_cost", User, QUERY_TUNING_COST, "Perform JIT compilation if query is more expensive.", "-1 disables JIT compilation.", EXPLAIN, 100_000.0, -1.0, DBL_MAX),
    r("jit_optimize_above_cost", User, QUERY_TUNING_COST, "Optimize JIT-compiled functions if query is more expensive.", "-1 disables optimization.", EXPLAIN, 500_000.0, -1.0, DBL_MAX),
    r("jit_inline_above_cost", User, QUERY_TUNING_COST, "Perform JIT inlining if query is more expensive.", "-1 disables inlining.", EXPLAIN, 500_000.0, -1.0, DBL_MAX),
    r("cursor_tuple_fraction", User, QUERY_TUNING_OTHER, "Sets the planner's estimate of the fraction of a cursor's rows that will be retrieved.", "", EXPLAIN, 0.1, 0.0, 1.0),
    r("recursive_worktable_factor", User, QUERY_TUNING_OTHER, "Sets the planner's estimate of the average size of a recursive query's working table.", "", EXPLAIN, 10.0, 0.001, 1_000_000.0),
    r("geqo_selection_bias", User, QUERY_TUNING_GEQO, "GEQO: selective pressure within the population.", "", EXPLAIN, 2.0, 1.5, 2.0),
    r("geqo_seed", User, QUERY_TUNING_GEQO, "GEQO: seed for random path selection.", "", EXPLAIN, 0.0, 0.0, 1.0),
    r("hash_mem_multiplier", User, RESOURCES_MEM, "Multiple of \"work_mem\" to use for hash tables.", "", EXPLAIN, 2.0, 1.0, 1000.0),
    r("bgwriter_lru_multiplier", Sighup, RESOURCES_BGWRITER, "Multiple of the average buffer usage to free per round.", "", 0, 2.0, 0.0, 10.0),
    r("seed", User, UNGROUPED, "Sets the seed for random-number generation.", "", NO_SHOW_ALL | NO_RESET | NO_RESET_ALL | NOT_IN_SAMPLE | DISALLOW_IN_FILE, 0.0, -1.0, 1.0),
    r("vacuum_cost_delay", User, VACUUM_COST_DELAY, "Vacuum cost delay in milliseconds.", "", UNIT_MS, 0.0, 0.0, 100.0),
    r("autovacuum_vacuum_cost_delay", Sighup, VACUUM_AUTOVACUUM, "Vacuum cost delay in milliseconds, for autovacuum.", "-1 means use \"vacuum_cost_delay\".", UNIT_MS, 2.0, -1.0, 100.0),
    r("autovacuum_vacuum_scale_factor", Sighup, VACUUM_AUTOVACUUM, "Number of tuple updates or deletes prior to vacuum as a fraction of reltuples.", "", 0, 0.2, 0.0, 100.0),
    r("autovacuum_vacuum_insert_scale_factor", Sighup, VACUUM_AUTOVACUUM, "Number of tuple inserts prior to vacuum as a fraction of reltuples.", "", 0, 0.2, 0.0, 100.0),
    r("autovacuum_analyze_scale_factor", Sighup, VACUUM_AUTOVACUUM, "Number of tuple inserts, updates, or deletes prior to analyze as a fraction of reltuples.", "", 0, 0.1, 0.0, 100.0),
    r("checkpoint_completion_target", Sighup, WAL_CHECKPOINTS, "Time spent flushing dirty buffers during checkpoint, as fraction of checkpoint interval.", "", 0, 0.9, 0.0, 1.0),
    r("log_statement_sample_rate", Superuser, LOGGING_WHEN, "Fraction of statements exceeding \"log_min_duration_sample\" to be logged.", "Use a value between 0.0 (never log) and 1.0 (always log).", 0, 1.0, 0.0, 1.0),
    r("log_transaction_sample_rate", Superuser, LOGGING_WHEN, "Sets the fraction of transactions from which to log all statements.", "Use a value between 0.0 (never log) and 1.0 (log all statements for all transactions).", 0, 0.0, 0.0, 1.0),
    r("vacuum_max_eager_freeze_failure_rate", User, VACUUM_FREEZING, "Fraction of pages in a relation vacuum can scan and fail to freeze before disabling eager scanning.", "A value of 0.0 disables eager scanning and a value of 1.0 will eagerly scan up to 100 percent of the all-visible pages in the relation. If vacuum successfully freezes these pages, the cap is lower than 100 percent, because the goal is to amortize page freezing across multiple vacuums.", 0, 0.03, 0.0, 1.0),
    // ---- strings ----
    s("archive_command", Sighup, WAL_ARCHIVING, "Sets the shell command that will be called to archive a WAL file.", "An empty string means use \"archive_library\".", 0, ""),
    s("archive_library", Sighup, WAL_ARCHIVING, "Sets the library that will be called to archive a WAL file.", "An empty string means use \"archive_command\".", 0, ""),
    s("restore_command", Sighup, WAL_ARCHIVE_RECOVERY, "Sets the shell command that will be called to retrieve an archived WAL file.", "", 0, ""),
    s("archive_cleanup_command", Sighup, WAL_ARCHIVE_RECOVERY, "Sets the shell command that will be executed at every restart point.", "", 0, ""),
    s("recovery_end_command", Sighup, WAL_ARCHIVE_RECOVERY, "Sets the shell command that will be executed once at the end of recovery.", "", 0, ""),
    s("recovery_target_timeline", Postmaster, WAL_RECOVERY_TARGET, "Specifies the timeline to recover into.", "", 0, "latest"),
    s("recovery_target", Postmaster, WAL_RECOVERY_TARGET, "Set to \"immediate\" to end recovery as soon as a consistent state is reached.", "", 0, ""),
    s("recovery_target_xid", Postmaster, WAL_RECOVERY_TARGET, "Sets the transaction ID up to which recovery will proceed.", "", 0, ""),
    s("recovery_target_time", Postmaster, WAL_RECOVERY_TARGET, "Sets the time stamp up to which recovery will proceed.", "", 0, ""),
    s("recovery_target_name", Postmaster, WAL_RECOVERY_TARGET, "Sets the named restore point up to which recovery will proceed.", "", 0, ""),
    s("recovery_target_lsn", Postmaster, WAL_RECOVERY_TARGET, "Sets the LSN of the write-ahead log location up to which recovery will proceed.", "", 0, ""),
    s("primary_conninfo", Sighup, REPLICATION_STANDBY, "Sets the connection string to be used to connect to the sending server.", "", SUPERUSER_ONLY, ""),
    s("primary_slot_name", Sighup, REPLICATION_STANDBY, "Sets the name of the replication slot to use on the sending server.", "", 0, ""),
    s("client_encoding", User, CLIENT_CONN_LOCALE, "Sets the client's character set encoding.", "", IS_NAME | REPORT, "SQL_ASCII"),
    s("log_line_prefix", Sighup, LOGGING_WHAT, "Controls information prefixed to each log line.", "An empty string means no prefix.", 0, "%m [%p] "),
    s("log_timezone", Sighup, LOGGING_WHAT, "Sets the time zone to use in log messages.", "", 0, "GMT"),
    s("DateStyle", User, CLIENT_CONN_LOCALE, "Sets the display format for date and time values.", "Also controls interpretation of ambiguous date inputs.", LIST_INPUT | REPORT, "ISO, MDY"),
    s("default_table_access_method", User, CLIENT_CONN_STATEMENT, "Sets the default table access method for new tables.", "", IS_NAME, "heap"),
    s("default_tablespace", User, CLIENT_CONN_STATEMENT, "Sets the default tablespace to create tables and indexes in.", "An empty string means use the database's default tablespace.", IS_NAME, ""),
    s("temp_tablespaces", User, CLIENT_CONN_STATEMENT, "Sets the tablespace(s) to use for temporary tables and sort files.", "An empty string means use the database's default tablespace.", LIST_INPUT | LIST_QUOTE, ""),
    s("createrole_self_grant", User, CLIENT_CONN_STATEMENT, "Sets whether a CREATEROLE user automatically grants the role to themselves, and with which options.", "An empty string disables automatic self grants.", LIST_INPUT, ""),
    s("dynamic_library_path", Superuser, CLIENT_CONN_OTHER, "Sets the path for dynamically loadable modules.", "If a dynamically loadable module needs to be opened and the specified name does not have a directory component (i.e., the name does not contain a slash), the system will search this path for the specified file.", SUPERUSER_ONLY, "$libdir"),
    s("extension_control_path", Superuser, CLIENT_CONN_OTHER, "Sets the path for extension control files.", "The remaining extension script and secondary control files are then loaded from the same directory where the primary control file was found.", SUPERUSER_ONLY, "$system"),
    s("krb_server_keyfile", Sighup, CONN_AUTH_AUTH, "Sets the location of the Kerberos server key file.", "", SUPERUSER_ONLY, ""),
    s("bonjour_name", Postmaster, CONN_AUTH_SETTINGS, "Sets the Bonjour service name.", "An empty string means use the computer name.", 0, ""),
    s("lc_messages", Superuser, CLIENT_CONN_LOCALE, "Sets the language in which messages are displayed.", "An empty string means use the operating system setting.", 0, ""),
    s("lc_monetary", User, CLIENT_CONN_LOCALE, "Sets the locale for formatting monetary amounts.", "An empty string means use the operating system setting.", 0, "C"),
    s("lc_numeric", User, CLIENT_CONN_LOCALE, "Sets the locale for formatting numbers.", "An empty string means use the operating system setting.", 0, "C"),
    s("lc_time", User, CLIENT_CONN_LOCALE, "Sets the locale for formatting date and time values.", "An empty string means use the operating system setting.", 0, "C"),
    s("session_preload_libraries", Superuser, CLIENT_CONN_PRELOAD, "Lists shared libraries to preload into each backend.", "", LIST_INPUT | LIST_QUOTE | SUPERUSER_ONLY, ""),
    s("shared_preload_libraries", Postmaster, CLIENT_CONN_PRELOAD, "Lists shared libraries to preload into server.", "In pgipc the names are those of compiled-in libraries (e.g. pgipc_demo).", LIST_INPUT | LIST_QUOTE | SUPERUSER_ONLY, ""),
    s("local_preload_libraries", User, CLIENT_CONN_PRELOAD, "Lists unprivileged shared libraries to preload into each backend.", "", LIST_INPUT | LIST_QUOTE, ""),
    // PostgreSQL 18.6 (CVE-2026-6471); no logical decoding here, so it only holds its value.
    s("output_plugin_libraries", Superuser, REPLICATION_SENDING, "Lists libraries that may be named as logical decoding output plugins.", "Users with REPLICATION privileges may only use plugins in this list when creating logical replication slots.", LIST_INPUT | LIST_QUOTE, "pgoutput, test_decoding"),
    s("search_path", User, CLIENT_CONN_STATEMENT, "Sets the schema search order for names that are not schema-qualified.", "", LIST_INPUT | LIST_QUOTE | EXPLAIN | REPORT, "\"$user\", public"),
    s("server_encoding", Internal, PRESET_OPTIONS, "Shows the server (database) character set encoding.", "", IS_NAME | REPORT | NOT_IN_SAMPLE | DISALLOW_IN_FILE, "SQL_ASCII"),
    s("server_version", Internal, PRESET_OPTIONS, "Shows the server version.", "", REPORT | NOT_IN_SAMPLE | DISALLOW_IN_FILE, "18.6 (pgipc)"),
    s("role", User, UNGROUPED, "Sets the current role.", "", IS_NAME | NO_SHOW_ALL | NO_RESET_ALL | NOT_IN_SAMPLE | DISALLOW_IN_FILE | NOT_WHILE_SEC_REST, "none"),
    s("session_authorization", User, UNGROUPED, "Sets the session user name.", "", IS_NAME | REPORT | NO_SHOW_ALL | NO_RESET_ALL | NOT_IN_SAMPLE | DISALLOW_IN_FILE | NOT_WHILE_SEC_REST, ""),
    s("log_destination", Sighup, LOGGING_WHERE, "Sets the destination for server log output.", "Valid values are combinations of \"stderr\", \"syslog\", \"csvlog\", \"jsonlog\", and \"eventlog\", depending on the platform.", LIST_INPUT, "stderr"),
    s("log_directory", Sighup, LOGGING_WHERE, "Sets the destination directory for log files.", "Can be specified as relative to the data directory or as absolute path.", SUPERUSER_ONLY, "log"),
    s("log_filename", Sighup, LOGGING_WHERE, "Sets the file name pattern for log files.", "", SUPERUSER_ONLY, "postgresql-%Y-%m-%d_%H%M%S.log"),
    s("syslog_ident", Sighup, LOGGING_WHERE, "Sets the program name used to identify PostgreSQL messages in syslog.", "", 0, "postgres"),
    s("event_source", Postmaster, LOGGING_WHERE, "Sets the application name used to identify PostgreSQL messages in the event log.", "", 0, "PostgreSQL"),
    s("TimeZone", User, CLIENT_CONN_LOCALE, "Sets the time zone for displaying and interpreting time stamps.", "", REPORT, "GMT"),
    s("timezone_abbreviations", User, CLIENT_CONN_LOCALE, "Selects a file of time zone abbreviations.", "", 0, "Default"),
    s("unix_socket_group", Postmaster, CONN_AUTH_SETTINGS, "Sets the owning group of the Unix-domain socket.", "The owning user of the socket is always the user that starts the server. An empty string means use the user's default group.", 0, ""),
    s("unix_socket_directories", Postmaster, CONN_AUTH_SETTINGS, "Sets the directories where Unix-domain sockets will be created.", "", LIST_INPUT | LIST_QUOTE | SUPERUSER_ONLY, "/tmp"),
    s("listen_addresses", Postmaster, CONN_AUTH_SETTINGS, "Sets the host name or IP address(es) to listen to.", "", LIST_INPUT, "localhost"),
    s("data_directory", Postmaster, FILE_LOCATIONS, "Sets the server's data directory.", "", SUPERUSER_ONLY | DISALLOW_IN_AUTO_FILE, ""),
    s("config_file", Postmaster, FILE_LOCATIONS, "Sets the server's main configuration file.", "", DISALLOW_IN_FILE | SUPERUSER_ONLY, ""),
    s("hba_file", Postmaster, FILE_LOCATIONS, "Sets the server's \"hba\" configuration file.", "", SUPERUSER_ONLY, ""),
    s("ident_file", Postmaster, FILE_LOCATIONS, "Sets the server's \"ident\" configuration file.", "", SUPERUSER_ONLY, ""),
    s("external_pid_file", Postmaster, FILE_LOCATIONS, "Writes the postmaster PID to the specified file.", "", SUPERUSER_ONLY, ""),
    s("ssl_library", Internal, PRESET_OPTIONS, "Shows the name of the SSL library.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE, ""),
    s("ssl_cert_file", Sighup, CONN_AUTH_SSL, "Location of the SSL server certificate file.", "", 0, "server.crt"),
    s("ssl_key_file", Sighup, CONN_AUTH_SSL, "Location of the SSL server private key file.", "", 0, "server.key"),
    s("ssl_ca_file", Sighup, CONN_AUTH_SSL, "Location of the SSL certificate authority file.", "", 0, ""),
    s("ssl_crl_file", Sighup, CONN_AUTH_SSL, "Location of the SSL certificate revocation list file.", "", 0, ""),
    s("ssl_crl_dir", Sighup, CONN_AUTH_SSL, "Location of the SSL certificate revocation list directory.", "", 0, ""),
    s("synchronous_standby_names", Sighup, REPLICATION_PRIMARY, "Number of synchronous standbys and list of names of potential synchronous ones.", "", LIST_INPUT, ""),
    s("default_text_search_config", User, CLIENT_CONN_LOCALE, "Sets default text search configuration.", "", 0, "pg_catalog.simple"),
    s("ssl_tls13_ciphers", Sighup, CONN_AUTH_SSL, "Sets the list of allowed TLSv1.3 cipher suites.", "An empty string means use the default cipher suites.", SUPERUSER_ONLY, ""),
    s("ssl_ciphers", Sighup, CONN_AUTH_SSL, "Sets the list of allowed TLSv1.2 (and lower) ciphers.", "", SUPERUSER_ONLY, "none"),
    s("ssl_groups", Sighup, CONN_AUTH_SSL, "Sets the group(s) to use for Diffie-Hellman key exchange.", "Multiple groups can be specified using colon-separated list.", SUPERUSER_ONLY, "none"),
    s("ssl_dh_params_file", Sighup, CONN_AUTH_SSL, "Location of the SSL DH parameters file.", "An empty string means use compiled-in default parameters.", SUPERUSER_ONLY, ""),
    s("ssl_passphrase_command", Sighup, CONN_AUTH_SSL, "Command to obtain passphrases for SSL.", "An empty string means use the built-in prompting mechanism.", SUPERUSER_ONLY, ""),
    s("application_name", User, LOGGING_WHAT, "Sets the application name to be reported in statistics and logs.", "", IS_NAME | REPORT | NOT_IN_SAMPLE, ""),
    s("cluster_name", Postmaster, PROCESS_TITLE, "Sets the name of the cluster, which is included in the process title.", "", IS_NAME, ""),
    s("wal_consistency_checking", Superuser, DEVELOPER_OPTIONS, "Sets the WAL resource managers for which WAL consistency checks are done.", "Full-page images will be logged for all data blocks and cross-checked against the results of WAL replay.", LIST_INPUT | NOT_IN_SAMPLE, ""),
    s("jit_provider", Postmaster, CLIENT_CONN_PRELOAD, "JIT provider to use.", "", SUPERUSER_ONLY, "llvmjit"),
    s("backtrace_functions", Superuser, DEVELOPER_OPTIONS, "Log backtrace for errors in these functions.", "", NOT_IN_SAMPLE, ""),
    s("debug_io_direct", Postmaster, DEVELOPER_OPTIONS, "Use direct I/O for file access.", "An empty string disables direct I/O.", LIST_INPUT | NOT_IN_SAMPLE, ""),
    s("synchronized_standby_slots", Sighup, REPLICATION_PRIMARY, "Lists streaming replication standby server replication slot names that logical WAL sender processes will wait for.", "Logical WAL sender processes will send decoded changes to output plugins only after the specified replication slots have confirmed receiving WAL.", LIST_INPUT, ""),
    s("restrict_nonsystem_relation_kind", User, CLIENT_CONN_STATEMENT, "Prohibits access to non-system relations of specified kinds.", "", LIST_INPUT | NOT_IN_SAMPLE, ""),
    s("oauth_validator_libraries", Sighup, CONN_AUTH_AUTH, "Lists libraries that may be called to validate OAuth v2 bearer tokens.", "", LIST_INPUT | LIST_QUOTE | SUPERUSER_ONLY, ""),
    s("log_connections", SuBackend, LOGGING_WHAT, "Logs specified aspects of connection establishment and setup.", "", LIST_INPUT, ""),
    // ---- enums ----
    e("backslash_quote", User, COMPAT_OPTIONS_PREVIOUS, "Sets whether \"\\'\" is allowed in string literals.", "", 0, "safe_encoding", BACKSLASH_QUOTE),
    e("bytea_output", User, CLIENT_CONN_STATEMENT, "Sets the output format for bytea.", "", 0, "hex", BYTEA_OUTPUT),
    e("client_min_messages", User, CLIENT_CONN_STATEMENT, "Sets the message levels that are sent to the client.", "Each level includes all the levels that follow it. The later the level, the fewer messages are sent.", 0, "notice", CLIENT_MESSAGE_LEVELS),
    e("compute_query_id", Superuser, STATS_MONITORING, "Enables in-core computation of query identifiers.", "", 0, "auto", COMPUTE_QUERY_ID),
    e("constraint_exclusion", User, QUERY_TUNING_OTHER, "Enables the planner to use constraints to optimize queries.", "Table scans will be skipped if their constraints guarantee that no rows match the query.", EXPLAIN, "partition", CONSTRAINT_EXCLUSION),
    e("default_toast_compression", User, CLIENT_CONN_STATEMENT, "Sets the default compression method for compressible values.", "", 0, "pglz", DEFAULT_TOAST_COMPRESSION),
    e("default_transaction_isolation", User, CLIENT_CONN_STATEMENT, "Sets the transaction isolation level of each new transaction.", "", 0, "read committed", ISOLATION_LEVELS),
    e("transaction_isolation", User, CLIENT_CONN_STATEMENT, "Sets the current transaction's isolation level.", "", NO_RESET | NO_RESET_ALL | NOT_IN_SAMPLE | DISALLOW_IN_FILE, "read committed", ISOLATION_LEVELS),
    e("IntervalStyle", User, CLIENT_CONN_LOCALE, "Sets the display format for interval values.", "", REPORT, "postgres", INTERVALSTYLE),
    e("icu_validation_level", User, CLIENT_CONN_LOCALE, "Log level for reporting invalid ICU locale strings.", "", 0, "warning", ICU_VALIDATION_LEVELS),
    e("log_error_verbosity", Superuser, LOGGING_WHAT, "Sets the verbosity of logged messages.", "", 0, "default", LOG_ERROR_VERBOSITY),
    e("log_min_messages", Superuser, LOGGING_WHEN, "Sets the message levels that are logged.", "Each level includes all the levels that follow it. The later the level, the fewer messages are sent.", 0, "warning", SERVER_MESSAGE_LEVELS),
    e("log_min_error_statement", Superuser, LOGGING_WHEN, "Causes all statements generating error at or above this level to be logged.", "Each level includes all the levels that follow it. The later the level, the fewer messages are sent.", 0, "error", SERVER_MESSAGE_LEVELS),
    e("log_statement", Superuser, LOGGING_WHAT, "Sets the type of statements logged.", "", 0, "none", LOG_STATEMENT),
    e("syslog_facility", Sighup, LOGGING_WHERE, "Sets the syslog \"facility\" to be used when syslog enabled.", "", 0, "local0", SYSLOG_FACILITY),
    e("session_replication_role", Superuser, CLIENT_CONN_STATEMENT, "Sets the session's behavior for triggers and rewrite rules.", "", 0, "origin", SESSION_REPLICATION_ROLE),
    e("synchronous_commit", User, WAL_SETTINGS, "Sets the current transaction's synchronization level.", "", 0, "on", SYNCHRONOUS_COMMIT),
    e("archive_mode", Postmaster, WAL_ARCHIVING, "Allows archiving of WAL files using \"archive_command\".", "", 0, "off", ARCHIVE_MODES),
    e("recovery_target_action", Postmaster, WAL_RECOVERY_TARGET, "Sets the action to perform upon reaching the recovery target.", "", 0, "pause", RECOVERY_TARGET_ACTIONS),
    e("track_functions", Superuser, STATS_CUMULATIVE, "Collects function-level statistics on database activity.", "", 0, "none", TRACK_FUNCTIONS),
    e("stats_fetch_consistency", User, STATS_CUMULATIVE, "Sets the consistency of accesses to statistics data.", "", 0, "cache", STATS_FETCH_CONSISTENCY),
    e("wal_compression", Superuser, WAL_SETTINGS, "Compresses full-page writes written in WAL file with specified method.", "", 0, "off", WAL_COMPRESSION),
    e("wal_level", Postmaster, WAL_SETTINGS, "Sets the level of information written to the WAL.", "", 0, "replica", WAL_LEVELS),
    e("dynamic_shared_memory_type", Postmaster, RESOURCES_MEM, "Selects the dynamic shared memory implementation used.", "", 0, "posix", DYNAMIC_SHARED_MEMORY_TYPES),
    e("shared_memory_type", Postmaster, RESOURCES_MEM, "Selects the shared memory implementation used for the main shared memory region.", "pgipc adds memfd, which exec mode uses; sysv is accepted and maps like mmap.", 0, "mmap", SHARED_MEMORY_TYPES),
    e("wal_sync_method", Sighup, WAL_SETTINGS, "Selects the method used for forcing WAL updates to disk.", "", 0, "fdatasync", WAL_SYNC_METHODS),
    e("xmlbinary", User, CLIENT_CONN_STATEMENT, "Sets how binary values are to be encoded in XML.", "", 0, "base64", XMLBINARY),
    e("xmloption", User, CLIENT_CONN_STATEMENT, "Sets whether XML data in implicit parsing and serialization operations is to be considered as documents or content fragments.", "", 0, "content", XMLOPTION),
    e("huge_pages", Postmaster, RESOURCES_MEM, "Use of huge pages on Linux or Windows.", "", 0, "try", HUGE_PAGES),
    e("huge_pages_status", Internal, PRESET_OPTIONS, "Indicates the status of huge pages.", "", NOT_IN_SAMPLE | DISALLOW_IN_FILE, "unknown", HUGE_PAGES_STATUS),
    e("recovery_prefetch", Sighup, WAL_RECOVERY, "Prefetch referenced blocks during recovery.", "Look ahead in the WAL to find references to uncached data.", 0, "try", RECOVERY_PREFETCH),
    e("debug_parallel_query", User, DEVELOPER_OPTIONS, "Forces the planner's use parallel query nodes.", "This can be useful for testing the parallel query infrastructure by forcing the planner to generate plans that contain nodes that perform tuple communication between workers and the main process.", NOT_IN_SAMPLE | EXPLAIN, "off", DEBUG_PARALLEL_QUERY),
    e("password_encryption", User, CONN_AUTH_AUTH, "Chooses the algorithm for encrypting passwords.", "", 0, "scram-sha-256", PASSWORD_ENCRYPTION),
    e("plan_cache_mode", User, QUERY_TUNING_OTHER, "Controls the planner's selection of custom or generic plan.", "Prepared statements can have custom and generic plans, and the planner will attempt to choose which is better.  This can be set to override the default behavior.", EXPLAIN, "auto", PLAN_CACHE_MODE),
    e("ssl_min_protocol_version", Sighup, CONN_AUTH_SSL, "Sets the minimum SSL/TLS protocol version to use.", "", SUPERUSER_ONLY, "TLSv1.2", SSL_PROTOCOL_VERSIONS.split_at(1).1),
    e("ssl_max_protocol_version", Sighup, CONN_AUTH_SSL, "Sets the maximum SSL/TLS protocol version to use.", "", SUPERUSER_ONLY, "", SSL_PROTOCOL_VERSIONS),
    e("recovery_init_sync_method", Sighup, ERROR_HANDLING_OPTIONS, "Sets the method for synchronizing the data directory before crash recovery.", "", 0, "fsync", RECOVERY_INIT_SYNC_METHOD),
    e("debug_logical_replication_streaming", User, DEVELOPER_OPTIONS, "Forces immediate streaming or serialization of changes in large transactions.", "On the publisher, it allows streaming or serializing each change in logical decoding. On the subscriber, it allows serialization of all changes to files and notifies the parallel apply workers to read and apply them at the end of the transaction.", NOT_IN_SAMPLE, "buffered", DEBUG_LOGICAL_REPLICATION_STREAMING),
    e("io_method", Postmaster, RESOURCES_IO, "Selects the method for executing asynchronous I/O.", "", 0, "worker", IO_METHODS),
    e("file_copy_method", User, RESOURCES_DISK, "Selects the file copy method.", "", 0, "copy", FILE_COPY_METHODS),
];
