//! Server side of the PostgreSQL v3 wire protocol.
//!
//! Mirrors PostgreSQL's `libpq/pqcomm.c` (listen sockets, the socket lock files, buffered
//! reads and writes with message length limits), `libpq/pqformat.c` (building and taking apart
//! message bodies) and the packet half of `tcop/backend_startup.c` (the startup packet,
//! SSL/GSS negotiation answers, CancelRequest, protocol version negotiation). The backend that
//! uses all this, with its command loop, is the `tcop` crate.
//!
//! ```text
//!   postmaster                              backend (one per connection)
//!   ListenSockets::open ─► fds ─► epoll     Conn<'s, W: SocketWait>
//!   accept_nonblocking ─► OwnedFd ─fork─►     read_startup_packet ─► parse_startup_packet
//!                                             read_message ─► parse_parse / parse_bind / …
//!                                             out(): MessageBuf ─► ready_for_query, data_row, …
//!                                             flush
//! ```
//!
//! Nothing here lives in shared memory and nothing is shared between processes except the
//! listen sockets the postmaster hands down (and the files they own, removed only by the
//! process that created them).
//!
//! # Contract
//! * No client input can make this code panic: every length and count is checked against what
//!   is actually there before use; malformed input is an error value ([`StartupError`],
//!   [`ReadError`], [`FormatError`]) carrying PostgreSQL's text and SQLSTATE. Property tests
//!   feed random bytes to every parser, and coverage-guided fuzz targets (`fuzz/` at the
//!   repository root, run by `ci/fuzz.sh`) the startup packet and message stream readers.
//! * A [`Conn`] never blocks past its deadline and never returns half a message: input stays
//!   buffered until complete, so an interrupted read is simply retried. How it sleeps is the
//!   caller's [`SocketWait`] (a backend wakes on its latch and on postmaster death too).
//! * Limits are PostgreSQL 18's: startup packets of 8 to 10000 bytes, cancel keys of 1 to 256
//!   bytes in a CancelRequest (an empty key is refused), `PQ_SMALL_MESSAGE_LIMIT` (10000) for messages without user data and
//!   `PQ_LARGE_MESSAGE_LIMIT` (1 GiB - 2) for Query, Parse, Bind, FunctionCall and CopyData.
//!
//! # What this crate does not do
//! * TLS is rustls over the same non-blocking socket ([`Conn::start_tls`], after the caller
//!   answered an SSLRequest with `'S'` or saw a direct-TLS record with
//!   [`Conn::peek_first_byte`]); the caller builds the configuration. A client certificate's
//!   names and serial are read with [`peer_cert`]. No GSSAPI: a
//!   GSSENCRequest is recognised so that the caller answers `'N'`.
//! * It does not decide who may connect: it builds the authentication requests
//!   ([`AuthRequest`]), hashes and checks password secrets (`crypt`: md5, SCRAM-SHA-256) and
//!   runs the server side of a SCRAM exchange ([`scram`]); the backend (`tcop`) applies
//!   pg_hba.conf (the `hba` crate) and the role catalog (`authid`).
//! * No COPY, no binary-format encoders of data types, no async I/O.
//! * It does not touch the socket lock files after creating them (PostgreSQL's
//!   `TouchSocketLockFiles`) nor manage `postmaster.pid` (the postmaster does, with the same
//!   [`DirLock`] that serialises the socket lock files' check-and-create).
//!
//! Key items: [`listen_tcp`], [`ListenSockets`], [`accept_nonblocking`], [`Conn`],
//! [`parse_startup_packet`], [`MessageBuf`], [`MessageReader`].

mod auth;
mod conn;
mod crypt;
mod dirlock;
mod error;
mod format;
mod frontend;
mod listen;
pub mod scram;
mod startup;
mod x509;

#[cfg(test)]
mod tests;

pub use auth::{
    auth_message_limit, parse_password_message, parse_sasl_initial_response, AuthRequest,
    PG_MAX_AUTH_TOKEN_LENGTH,
};
pub use conn::{Conn, Interest, PollWait, Readiness, SocketWait, TlsStatus};
pub use crypt::{
    encrypt_password, get_password_type, md5_crypt_verify, md5_encrypt, plain_crypt_verify,
    CryptError, PasswordType,
};
pub use dirlock::{DirLock, DIR_LOCK_TIMEOUT};
pub use error::{FormatError, ListenError, ReadError, StartupError, LOCK_FILE_EMPTY_HINT};
pub use format::{
    ErrorFields, FieldDescription, MessageBuf, MessageBuilder, MessageReader, Severity,
    TransactionStatus,
};
pub use frontend::{
    frontend_message_limit, is_extended_query_message, parse_bind, parse_execute, parse_parse,
    parse_query, parse_target, BindMsg, ExecuteMsg, ParseMsg, Target, TargetMsg,
};
pub use listen::{
    accept_nonblocking, listen_tcp, listen_tcp_addr, listen_tcp_with_backlog, listen_unix,
    report_fork_failure, resolve_listen_address, unix_socket_path, ListenConfig, ListenSockets,
    UnixListenSocket, UnixSocketOptions, DEFAULT_BACKLOG, MAX_UNIX_SOCKET_PATH,
};
pub use startup::{
    check_startup_length, parse_startup_packet, ProtocolVersion, Replication, StartupPacket,
    StartupRequest, CANCEL_REQUEST_CODE, MAX_NAME_LEN, NEGOTIATE_GSS_CODE, NEGOTIATE_SSL_CODE,
};
pub use x509::{peer_cert, PeerCert};

/// Longest startup packet accepted, length word excluded (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_PACKET_LENGTH: usize = 10_000;
/// The cancel-key limits, defined once in `pgipc-procsignal` (whose slots hold the keys):
/// `MAX_CANCEL_KEY_LENGTH` (32) is the length of the keys handed out to protocol 3.2 clients,
/// `MAX_CANCEL_REQUEST_KEY_LENGTH` (256) the longest key a CancelRequest may carry.
pub use pgipc_procsignal::{MAX_CANCEL_KEY_LENGTH, MAX_CANCEL_REQUEST_KEY_LENGTH};
/// Limit for messages without user data (`PQ_SMALL_MESSAGE_LIMIT`).
pub const PQ_SMALL_MESSAGE_LIMIT: usize = 10_000;
/// Limit for messages that may carry user data (`PQ_LARGE_MESSAGE_LIMIT`, `MaxAllocSize - 1`).
pub const PQ_LARGE_MESSAGE_LIMIT: usize = 0x3fff_ffff - 1;
