//! The crate's error types, with PostgreSQL's message texts.

use crate::ProtocolVersion;
use std::io;
use std::path::PathBuf;

/// A malformed message body (PostgreSQL's `pq_getmsg*` complaints); SQLSTATE 08P01.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A length or count ran past the end of the body.
    #[error("insufficient data left in message")]
    InsufficientData,
    /// A string without its terminating NUL.
    #[error("invalid string in message")]
    InvalidString,
    /// Bytes left over after the last field, or a negative count.
    #[error("invalid message format")]
    InvalidFormat,
    /// Describe or Close naming something other than `S` or `P`.
    #[error("invalid {message} message subtype {subtype}")]
    InvalidSubtype {
        /// `DESCRIBE` or `CLOSE`.
        message: &'static str,
        /// The byte received.
        subtype: u8,
    },
}

impl FormatError {
    /// SQLSTATE: protocol violation.
    pub fn sqlstate(&self) -> &'static str {
        "08P01"
    }
}

/// Why reading a typed message (or flushing output) stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client closed the connection between messages.
    #[error("unexpected EOF on client connection")]
    Eof,
    /// The client closed the connection in the middle of a message.
    #[error("incomplete message from client")]
    UnexpectedEof,
    /// A type byte no backend accepts.
    #[error("invalid frontend message type {0}")]
    InvalidMessageType(u8),
    /// A length word below 4 or above the type's limit.
    #[error("invalid message length")]
    InvalidLength,
    /// The waiter was woken by something other than the socket; retry after checking.
    #[error("interrupted")]
    Interrupted,
    /// The deadline passed.
    #[error("timed out")]
    TimedOut,
    /// A socket error.
    #[error("could not receive data from client: {0}")]
    Io(#[from] io::Error),
}

impl ReadError {
    /// SQLSTATE of the report, for the errors that are reports.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ReadError::Interrupted | ReadError::TimedOut => "57014",
            _ => "08P01",
        }
    }
}

/// Why the start-up packet exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The client closed the connection before sending anything (not logged by PostgreSQL:
    /// monitors and port scanners do that).
    #[error("connection closed before the startup packet")]
    NoData,
    /// EOF in the middle of the packet.
    #[error("incomplete startup packet")]
    Incomplete,
    /// Length word outside 8..=10000.
    #[error("invalid length of startup packet")]
    InvalidLength,
    /// A CancelRequest too short to hold a pid (PostgreSQL 18's text).
    #[error("invalid length of cancel request packet")]
    InvalidCancelLength,
    /// A CancelRequest whose key is empty or longer than 256 bytes (PostgreSQL 18's text):
    /// refused before any process is looked at, so an empty key can never match a process
    /// that has none.
    #[error("invalid length of cancel key in cancel request packet")]
    InvalidCancelKeyLength,
    /// Major version other than 3.
    #[error("unsupported frontend protocol {}.{}: server supports {}.0 to {}.{}", .0.major(), .0.minor(), ProtocolVersion::EARLIEST.major(), ProtocolVersion::LATEST.major(), ProtocolVersion::LATEST.minor())]
    UnsupportedProtocol(ProtocolVersion),
    /// Parameters not ending with a single NUL at the last byte.
    #[error("invalid startup packet layout: expected terminator as last byte")]
    InvalidLayout,
    /// No (or an empty) `user`.
    #[error("no PostgreSQL user name specified in startup packet")]
    NoUser,
    /// `replication` with a value that is neither a boolean nor `database`.
    #[error("invalid value for parameter \"replication\": \"{0}\"")]
    InvalidReplication(String),
    /// `authentication_timeout` passed.
    #[error("timeout while reading the startup packet")]
    TimedOut,
    /// The waiter was interrupted (a signal for the process): check the flags, then retry or
    /// leave.
    #[error("interrupted while reading the startup packet")]
    Interrupted,
    /// A socket error.
    #[error("could not receive data from client: {0}")]
    Io(io::Error),
}

impl From<ReadError> for StartupError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Interrupted => StartupError::Interrupted,
            ReadError::TimedOut => StartupError::TimedOut,
            ReadError::Io(e) => StartupError::Io(e),
            _ => StartupError::Incomplete,
        }
    }
}

impl From<io::Error> for StartupError {
    fn from(e: io::Error) -> Self {
        StartupError::Io(e)
    }
}

impl StartupError {
    /// SQLSTATE of the report.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            StartupError::UnsupportedProtocol(_) => "0A000",
            StartupError::NoUser => "28000",
            StartupError::InvalidReplication(_) => "22023",
            StartupError::Io(_) => "08006",
            _ => "08P01",
        }
    }

    /// Whether PostgreSQL reports this one to the client as FATAL (the others only go to the
    /// log, or nowhere, and the connection is simply closed).
    pub fn is_reported_to_client(&self) -> bool {
        matches!(
            self,
            StartupError::UnsupportedProtocol(_)
                | StartupError::InvalidLayout
                | StartupError::NoUser
                | StartupError::InvalidReplication(_)
        )
    }

    /// Whether PostgreSQL writes a log line for it (silent: no data at all, a timeout).
    pub fn is_logged(&self) -> bool {
        !matches!(
            self,
            StartupError::NoData | StartupError::TimedOut | StartupError::Interrupted
        )
    }

    /// The hint PostgreSQL attaches, if any.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StartupError::InvalidReplication(_) => {
                Some("Valid values are: \"false\", 0, \"true\", 1, \"database\".")
            }
            _ => None,
        }
    }
}

/// Errors opening listen sockets.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Host name lookup failed.
    #[error("could not translate host name \"{host}\", service \"{port}\" to address: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// The port.
        port: u16,
        /// The resolver's error.
        source: io::Error,
    },
    /// `socket()` failed.
    #[error("could not create {family} socket for address \"{addr}\": {source}")]
    Socket {
        /// `IPv4`, `IPv6` or `Unix`.
        family: &'static str,
        /// The address.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// A socket option could not be set.
    #[error("{option} failed for {family} address \"{addr}\": {source}")]
    SetSockOpt {
        /// e.g. `setsockopt(SO_REUSEADDR)`.
        option: &'static str,
        /// `IPv4`, `IPv6` or `Unix`.
        family: &'static str,
        /// The address.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// `bind()` failed; see [`ListenError::hint`].
    #[error("could not bind {family} address \"{addr}\": {source}")]
    Bind {
        /// `IPv4`, `IPv6` or `Unix`.
        family: &'static str,
        /// The address (or socket path).
        addr: String,
        /// The port, for the hint.
        port: u16,
        /// The error.
        source: io::Error,
    },
    /// `listen()` failed.
    #[error("could not listen on {family} address \"{addr}\": {source}")]
    Listen {
        /// `IPv4`, `IPv6` or `Unix`.
        family: &'static str,
        /// The address.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// Every address in `listen_addresses` failed.
    #[error("could not create any TCP/IP sockets")]
    NoTcpSockets,
    /// A list setting (`listen_addresses`, `unix_socket_directories`) does not parse.
    #[error("invalid list syntax in parameter \"{0}\"")]
    ListSyntax(&'static str),
    /// Every directory in `unix_socket_directories` failed.
    #[error("could not create any Unix-domain sockets")]
    NoUnixSockets,
    /// The socket path does not fit in `sun_path`.
    #[error("Unix-domain socket path \"{path}\" is too long (maximum {max} bytes)")]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// The longest allowed.
        max: usize,
    },
    /// A live process holds the socket's lock file.
    #[error("lock file \"{}\" already exists", path.display())]
    LockFileExists {
        /// The lock file.
        path: PathBuf,
        /// The pid in it.
        pid: i32,
        /// The socket it guards.
        socket: PathBuf,
    },
    /// The lock file exists but is empty (PostgreSQL's `CreateLockFile` refuses it).
    #[error("lock file \"{}\" is empty", path.display())]
    LockFileEmpty {
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file's first line is not a pid.
    #[error("bogus data in lock file \"{}\": \"{content}\"", path.display())]
    LockFileBogus {
        /// The lock file.
        path: PathBuf,
        /// Its first line.
        content: String,
    },
    /// The lock file could not be created, read or written.
    #[error("could not create lock file \"{}\": {source}", path.display())]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `chmod` of the socket file failed.
    #[error("could not set permissions of file \"{}\": {source}", path.display())]
    Chmod {
        /// The socket file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl ListenError {
    /// The hint line PostgreSQL logs after the message, if any.
    pub fn hint(&self) -> Option<String> {
        match self {
            ListenError::Bind {
                family,
                port,
                source,
                ..
            } if source.raw_os_error() == Some(libc_eaddrinuse()) => Some(if *family == "Unix" {
                format!("Is another postmaster already running on port {port}?")
            } else {
                format!(
                    "Is another postmaster already running on port {port}? \
                     If not, wait a few seconds and retry."
                )
            }),
            ListenError::LockFileExists { pid, socket, .. } => Some(format!(
                "Is another postmaster (PID {pid}) using socket file \"{}\"?",
                socket.display()
            )),
            ListenError::LockFileEmpty { .. } => Some(LOCK_FILE_EMPTY_HINT.to_owned()),
            _ => None,
        }
    }
}

/// PostgreSQL's hint for an empty lock file (data directory or socket).
pub const LOCK_FILE_EMPTY_HINT: &str = "Either another server is starting, or the lock file is \
     the remnant of a previous server startup crash.";

fn libc_eaddrinuse() -> i32 {
    nix::errno::Errno::EADDRINUSE as i32
}
