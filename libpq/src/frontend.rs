//! Frontend messages after start-up: their size limits and their bodies.
//!
//! ```text
//!  byte type | int32 len (includes itself, >= 4) | body
//!  Q query\0                          P name\0 query\0 int16 n | n × int32 oid
//!  B portal\0 stmt\0 int16 nf | nf × int16 fmt | int16 np | np × (int32 len | bytes)
//!    | int16 nr | nr × int16 fmt      D 'S'|'P' name\0      E portal\0 int32 maxrows
//!  C 'S'|'P' name\0    S    H    X    d data    c    f msg\0
//! ```

use crate::format::MessageReader;
use crate::{FormatError, PQ_LARGE_MESSAGE_LIMIT, PQ_SMALL_MESSAGE_LIMIT};

/// The largest body (plus length word) accepted for a message type, as PostgreSQL's
/// `SocketBackend` chooses it; `None` for a type a backend does not accept ("invalid frontend
/// message type").
pub fn frontend_message_limit(ty: u8) -> Option<usize> {
    match ty {
        // Query, FunctionCall, Bind, Parse and CopyData may carry user data of any size.
        b'Q' | b'F' | b'B' | b'P' | b'd' => Some(PQ_LARGE_MESSAGE_LIMIT),
        // Terminate, Close, Describe, Execute, Flush, Sync, CopyDone, CopyFail.
        b'X' | b'C' | b'D' | b'E' | b'H' | b'S' | b'c' | b'f' => Some(PQ_SMALL_MESSAGE_LIMIT),
        _ => None,
    }
}

/// Whether a message type belongs to the extended-query protocol (errors in these make the
/// backend skip messages until the next Sync).
pub fn is_extended_query_message(ty: u8) -> bool {
    matches!(ty, b'P' | b'B' | b'D' | b'E' | b'C' | b'H' | b'S')
}

/// Statement or portal, as named by Describe and Close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `'S'`: a prepared statement.
    Statement,
    /// `'P'`: a portal.
    Portal,
}

/// Parse (`P`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMsg {
    /// Statement name (empty: the unnamed statement).
    pub name: String,
    /// The query text.
    pub query: String,
    /// Parameter type OIDs given by the client (0: unspecified).
    pub param_types: Vec<u32>,
}

/// Bind (`B`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMsg {
    /// Portal name (empty: the unnamed portal).
    pub portal: String,
    /// Source statement name.
    pub statement: String,
    /// Parameter format codes (0 text, 1 binary; none = all text, one = applies to all).
    pub param_formats: Vec<i16>,
    /// Parameter values; `None` is NULL.
    pub params: Vec<Option<Vec<u8>>>,
    /// Result column format codes, same convention.
    pub result_formats: Vec<i16>,
}

/// Describe (`D`) or Close (`C`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetMsg {
    /// Statement or portal.
    pub target: Target,
    /// Its name.
    pub name: String,
}

/// Execute (`E`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteMsg {
    /// Portal name.
    pub portal: String,
    /// Row limit (0: no limit).
    pub max_rows: i32,
}

fn count(r: &mut MessageReader<'_>) -> Result<usize, FormatError> {
    let n = r.i16()?;
    usize::try_from(n).map_err(|_| FormatError::InvalidFormat)
}

/// Parses a Query body: the SQL text.
pub fn parse_query(body: &[u8]) -> Result<String, FormatError> {
    let mut r = MessageReader::new(body);
    let q = r.cstr()?;
    r.finish()?;
    Ok(q)
}

/// Parses a Parse body.
pub fn parse_parse(body: &[u8]) -> Result<ParseMsg, FormatError> {
    let mut r = MessageReader::new(body);
    let name = r.cstr()?;
    let query = r.cstr()?;
    let n = count(&mut r)?;
    let mut param_types = Vec::with_capacity(n.min(r.remaining() / 4));
    for _ in 0..n {
        param_types.push(r.i32()? as u32);
    }
    r.finish()?;
    Ok(ParseMsg {
        name,
        query,
        param_types,
    })
}

fn formats(r: &mut MessageReader<'_>) -> Result<Vec<i16>, FormatError> {
    let n = count(r)?;
    let mut v = Vec::with_capacity(n.min(r.remaining() / 2));
    for _ in 0..n {
        v.push(r.i16()?);
    }
    Ok(v)
}

/// Parses a Bind body.
pub fn parse_bind(body: &[u8]) -> Result<BindMsg, FormatError> {
    let mut r = MessageReader::new(body);
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    let param_formats = formats(&mut r)?;
    let n = count(&mut r)?;
    let mut params = Vec::with_capacity(n.min(r.remaining() / 4));
    for _ in 0..n {
        let len = r.i32()?;
        params.push(match len {
            -1 => None,
            l => {
                let l = usize::try_from(l).map_err(|_| FormatError::InsufficientData)?;
                Some(r.bytes(l)?.to_vec())
            }
        });
    }
    let result_formats = formats(&mut r)?;
    r.finish()?;
    Ok(BindMsg {
        portal,
        statement,
        param_formats,
        params,
        result_formats,
    })
}

/// Parses a Describe or Close body (`ty` is `b'D'` or `b'C'`, for the error text).
pub fn parse_target(ty: u8, body: &[u8]) -> Result<TargetMsg, FormatError> {
    let mut r = MessageReader::new(body);
    let kind = r.u8()?;
    let target = match kind {
        b'S' => Target::Statement,
        b'P' => Target::Portal,
        other => {
            return Err(FormatError::InvalidSubtype {
                message: if ty == b'C' { "CLOSE" } else { "DESCRIBE" },
                subtype: other,
            })
        }
    };
    let name = r.cstr()?;
    r.finish()?;
    Ok(TargetMsg { target, name })
}

/// Parses an Execute body.
pub fn parse_execute(body: &[u8]) -> Result<ExecuteMsg, FormatError> {
    let mut r = MessageReader::new(body);
    let portal = r.cstr()?;
    let max_rows = r.i32()?;
    r.finish()?;
    Ok(ExecuteMsg { portal, max_rows })
}
