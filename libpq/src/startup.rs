//! The first packet of a connection (the packet half of PostgreSQL's backend_startup.c):
//! a length word, a 32-bit code (a protocol version or a special request) and a payload.
//!
//! ```text
//!  int32 len (includes itself, 8..=10000) | int32 code | payload
//!    code 1234.5679  SSLRequest      payload empty         → answer 'N', read again
//!    code 1234.5680  GSSENCRequest   payload empty         → answer 'N', read again
//!    code 1234.5678  CancelRequest   int32 pid | key (1..=256) → no answer
//!    code 3.x        StartupMessage  (name\0 value\0)* \0
//! ```

use crate::{StartupError, MAX_CANCEL_KEY_LENGTH, MAX_CANCEL_REQUEST_KEY_LENGTH};

/// Protocol version or request code of a startup packet: major in the high 16 bits, minor in
/// the low 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion(u32);

impl ProtocolVersion {
    /// Protocol 3.0.
    pub const V3_0: ProtocolVersion = ProtocolVersion::new(3, 0);
    /// Protocol 3.2 (PostgreSQL 18: long cancel keys).
    pub const V3_2: ProtocolVersion = ProtocolVersion::new(3, 2);
    /// The newest version this server speaks (`PG_PROTOCOL_LATEST`).
    pub const LATEST: ProtocolVersion = ProtocolVersion::V3_2;
    /// The oldest version this server speaks (`PG_PROTOCOL_EARLIEST`).
    pub const EARLIEST: ProtocolVersion = ProtocolVersion::V3_0;

    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        ProtocolVersion(((major as u32) << 16) | minor as u32)
    }

    /// From the 32-bit wire code.
    pub const fn from_code(code: u32) -> Self {
        ProtocolVersion(code)
    }

    /// The 32-bit wire code.
    pub const fn code(self) -> u32 {
        self.0
    }

    /// Major version.
    pub const fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// Minor version.
    pub const fn minor(self) -> u16 {
        (self.0 & 0xffff) as u16
    }

    /// Length of the cancel key this server hands out for the version (PostgreSQL 18:
    /// [`MAX_CANCEL_KEY_LENGTH`], 32 bytes, from 3.2 on, 4 before).
    pub fn cancel_key_len(self) -> usize {
        if self >= ProtocolVersion::V3_2 {
            MAX_CANCEL_KEY_LENGTH
        } else {
            4
        }
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major(), self.minor())
    }
}

/// Code of a CancelRequest (`CANCEL_REQUEST_CODE`, 1234.5678).
pub const CANCEL_REQUEST_CODE: u32 = (1234 << 16) | 5678;
/// Code of an SSLRequest (`NEGOTIATE_SSL_CODE`, 1234.5679).
pub const NEGOTIATE_SSL_CODE: u32 = (1234 << 16) | 5679;
/// Code of a GSSENCRequest (`NEGOTIATE_GSS_CODE`, 1234.5680).
pub const NEGOTIATE_GSS_CODE: u32 = (1234 << 16) | 5680;

/// The `replication` startup parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// Absent or false: a normal session.
    Off,
    /// True: a physical-replication walsender.
    Physical,
    /// `database`: a logical-replication walsender.
    Database,
}

/// A parsed StartupMessage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupPacket {
    /// The version the client asked for.
    pub requested: ProtocolVersion,
    /// `user` (never empty: an empty or missing user is an error).
    pub user: String,
    /// `database` (defaults to the user name).
    pub database: String,
    /// `options` (command-line switches for the backend), if given.
    pub options: Option<String>,
    /// `replication`.
    pub replication: Replication,
    /// Every other `name = value` pair, in packet order (`application_name`,
    /// `client_encoding`, GUCs…).
    pub params: Vec<(String, String)>,
    /// `_pq_.` options, none of which this server knows.
    pub unrecognized_protocol_options: Vec<String>,
}

impl StartupPacket {
    /// The version the session runs with: the requested one capped at [`ProtocolVersion::LATEST`].
    pub fn version(&self) -> ProtocolVersion {
        self.requested.min(ProtocolVersion::LATEST)
    }

    /// Whether the client must be told which version and options it got (NegotiateProtocolVersion).
    pub fn needs_negotiation(&self) -> bool {
        self.requested.minor() > ProtocolVersion::LATEST.minor()
            || !self.unrecognized_protocol_options.is_empty()
    }

    /// The value of a generic parameter, e.g. `application_name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the client's first packet asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupRequest {
    /// SSLRequest: answer `'N'` and read the next packet.
    Ssl,
    /// GSSENCRequest: answer `'N'` and read the next packet.
    Gss,
    /// CancelRequest for the backend `pid` with its secret `key`; nothing is answered.
    Cancel {
        /// The target backend's pid.
        pid: i32,
        /// The secret key (4 bytes from a 3.0 session, up to 256 in PostgreSQL 18).
        key: Vec<u8>,
    },
    /// A StartupMessage.
    Startup(StartupPacket),
}

/// Longest user and database names kept (`NAMEDATALEN - 1`); longer ones are truncated as
/// PostgreSQL truncates them.
pub const MAX_NAME_LEN: usize = 63;

/// Checks the length word of a startup packet (`len` counts itself).
pub fn check_startup_length(len: u32) -> Result<usize, StartupError> {
    let body = (len as usize).wrapping_sub(4);
    if len < 8 || body > crate::MAX_STARTUP_PACKET_LENGTH {
        return Err(StartupError::InvalidLength);
    }
    Ok(body)
}

fn truncate_name(s: &mut String) {
    if s.len() > MAX_NAME_LEN {
        let mut end = MAX_NAME_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Takes a startup packet apart. `packet` is everything after the length word (the code and
/// the payload), as read by [`crate::Conn::read_startup_packet`].
///
/// `ssl_done` / `gss_done` say whether that negotiation already happened on this connection:
/// a second SSLRequest (or GSSENCRequest) is then an ordinary, unsupported protocol code, as
/// in PostgreSQL.
pub fn parse_startup_packet(
    packet: &[u8],
    ssl_done: bool,
    gss_done: bool,
) -> Result<StartupRequest, StartupError> {
    if packet.len() < 4 {
        return Err(StartupError::InvalidLength);
    }
    let code = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
    let payload = &packet[4..];
    match code {
        CANCEL_REQUEST_CODE => {
            // PostgreSQL 18's ProcessCancelRequestPacket: first the pid must be there, then
            // the key must be 1 to 256 bytes. A process without a key of its own can then
            // never be named by an empty one.
            if payload.len() < 4 {
                return Err(StartupError::InvalidCancelLength);
            }
            let key_len = payload.len() - 4;
            if key_len == 0 || key_len > MAX_CANCEL_REQUEST_KEY_LENGTH {
                return Err(StartupError::InvalidCancelKeyLength);
            }
            let pid = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
            return Ok(StartupRequest::Cancel {
                pid,
                key: payload[4..].to_vec(),
            });
        }
        NEGOTIATE_SSL_CODE if !ssl_done => return Ok(StartupRequest::Ssl),
        NEGOTIATE_GSS_CODE if !gss_done => return Ok(StartupRequest::Gss),
        _ => {}
    }
    let requested = ProtocolVersion::from_code(code);
    if requested.major() != ProtocolVersion::LATEST.major() {
        return Err(StartupError::UnsupportedProtocol(requested));
    }

    let mut user = None;
    let mut database = None;
    let mut options = None;
    let mut replication = Replication::Off;
    let mut params = Vec::new();
    let mut unrecognized = Vec::new();
    // Name/value pairs, then one NUL that must be the last byte.
    let mut rest = payload;
    loop {
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return Err(StartupError::InvalidLayout);
        };
        if nul == 0 {
            if rest.len() != 1 {
                return Err(StartupError::InvalidLayout);
            }
            break;
        }
        let name = String::from_utf8_lossy(&rest[..nul]).into_owned();
        rest = &rest[nul + 1..];
        let Some(vnul) = rest.iter().position(|&b| b == 0) else {
            return Err(StartupError::InvalidLayout);
        };
        let value = String::from_utf8_lossy(&rest[..vnul]).into_owned();
        rest = &rest[vnul + 1..];
        match name.as_str() {
            "user" => user = Some(value),
            "database" => database = Some(value),
            "options" => options = Some(value),
            "replication" => {
                replication = if value == "database" {
                    Replication::Database
                } else {
                    // PostgreSQL's parse_bool, as the `replication` parameter uses it.
                    match pgipc_guc::parse_bool(&value) {
                        Some(true) => Replication::Physical,
                        Some(false) => Replication::Off,
                        None => return Err(StartupError::InvalidReplication(value)),
                    }
                }
            }
            n if n.starts_with("_pq_.") => unrecognized.push(name),
            _ => params.push((name, value)),
        }
    }
    let mut user = match user {
        Some(u) if !u.is_empty() => u,
        _ => return Err(StartupError::NoUser),
    };
    let mut database = match database {
        Some(d) if !d.is_empty() => d,
        _ => user.clone(),
    };
    truncate_name(&mut user);
    truncate_name(&mut database);
    Ok(StartupRequest::Startup(StartupPacket {
        requested,
        user,
        database,
        options,
        replication,
        params,
        unrecognized_protocol_options: unrecognized,
    }))
}
