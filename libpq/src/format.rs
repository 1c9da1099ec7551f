//! Building backend messages and taking frontend messages apart (PostgreSQL's pqformat.c).
//!
//! [`MessageBuf`] is the outgoing byte stream: each builder method appends one complete message
//! (type byte, length word, body) and patches the length when the body is done, so nothing is
//! ever half-written. [`MessageReader`] walks the body of one received message; every getter
//! checks the remaining length first and reports PostgreSQL's texts on malformed input.

use crate::{FormatError, ProtocolVersion};

/// Transaction status carried by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `'I'`: not in a transaction block.
    Idle,
    /// `'T'`: inside a transaction block.
    InBlock,
    /// `'E'`: inside a failed transaction block (commands ignored until its end).
    Failed,
}

impl TransactionStatus {
    /// The byte sent on the wire.
    pub fn byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InBlock => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// Severity of an ErrorResponse or NoticeResponse, spelled as PostgreSQL spells it in the `S`
/// and `V` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `ERROR`: the statement failed, the session goes on.
    Error,
    /// `FATAL`: the session ends.
    Fatal,
    /// `PANIC`: the whole server restarts.
    Panic,
    /// `WARNING`.
    Warning,
    /// `NOTICE`.
    Notice,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `LOG`.
    Log,
}

impl Severity {
    /// PostgreSQL's name for the level.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Panic => "PANIC",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Log => "LOG",
        }
    }
}

/// The fields of an ErrorResponse / NoticeResponse. Optional fields are left out of the
/// message when `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    /// `S` and `V`.
    pub severity: Severity,
    /// `C`: the five-character SQLSTATE.
    pub code: String,
    /// `M`: the primary message.
    pub message: String,
    /// `D`: detail.
    pub detail: Option<String>,
    /// `H`: hint.
    pub hint: Option<String>,
    /// `P`: 1-based character position in the query string.
    pub position: Option<u32>,
    /// `W`: the context (PostgreSQL's CONTEXT lines, e.g. `parallel worker`).
    pub context: Option<String>,
    /// `R`: the routine that raised it.
    pub routine: Option<String>,
}

impl ErrorFields {
    /// A report with only severity, SQLSTATE and message.
    pub fn new(severity: Severity, code: &str, message: impl Into<String>) -> Self {
        ErrorFields {
            severity,
            code: code.to_owned(),
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
            context: None,
            routine: None,
        }
    }

    /// Adds a detail line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a hint line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a cursor position.
    pub fn with_position(mut self, position: u32) -> Self {
        self.position = Some(position);
        self
    }
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// Table OID (0: not a table column).
    pub table_oid: u32,
    /// Column attribute number (0: not a table column).
    pub column: i16,
    /// Data type OID.
    pub type_oid: u32,
    /// `pg_type.typlen` (negative: variable length).
    pub type_len: i16,
    /// Type modifier (-1: none).
    pub type_modifier: i32,
    /// 0 = text, 1 = binary.
    pub format: i16,
}

impl FieldDescription {
    /// A computed (non-table) column in text format.
    pub fn computed(name: &str, type_oid: u32, type_len: i16) -> Self {
        FieldDescription {
            name: name.to_owned(),
            table_oid: 0,
            column: 0,
            type_oid,
            type_len,
            type_modifier: -1,
            format: 0,
        }
    }
}

/// The outgoing byte stream of a connection: complete backend messages, appended in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MessageBuf {
    bytes: Vec<u8>,
}

/// A message under construction; finishing it patches the length word.
#[derive(Debug)]
pub struct MessageBuilder<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl MessageBuilder<'_> {
    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Appends a big-endian 16-bit integer.
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a big-endian 32-bit integer.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a big-endian unsigned 32-bit integer.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// Appends a NUL-terminated string. An embedded NUL would end the string early on the
    /// client's side, so the string is cut there.
    pub fn cstr(&mut self, s: &str) -> &mut Self {
        let b = s.as_bytes();
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        self.buf.extend_from_slice(&b[..end]);
        self.buf.push(0);
        self
    }
}

impl Drop for MessageBuilder<'_> {
    fn drop(&mut self) {
        // The length counts itself but not the type byte.
        let len = self.buf.len() - self.start - 1;
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.buf[self.start + 1..self.start + 5].copy_from_slice(&len.to_be_bytes());
    }
}

impl MessageBuf {
    /// An empty stream.
    pub fn new() -> Self {
        MessageBuf::default()
    }

    /// The bytes waiting to be sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Forgets the first `n` bytes (they were sent).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.bytes.len());
        self.bytes.drain(..n);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Appends a single byte outside any message (the answer to SSLRequest/GSSENCRequest).
    pub fn raw_byte(&mut self, b: u8) {
        self.bytes.push(b);
    }

    /// Starts a message of type `ty`; the builder finishes it when dropped.
    pub fn begin(&mut self, ty: u8) -> MessageBuilder<'_> {
        let start = self.bytes.len();
        self.bytes.push(ty);
        self.bytes.extend_from_slice(&[0; 4]);
        MessageBuilder {
            buf: &mut self.bytes,
            start,
        }
    }

    /// AuthenticationOk (`R`, code 0).
    pub fn authentication_ok(&mut self) {
        self.begin(b'R').i32(0);
    }

    /// ParameterStatus (`S`).
    pub fn parameter_status(&mut self, name: &str, value: &str) {
        self.begin(b'S').cstr(name).cstr(value);
    }

    /// BackendKeyData (`K`): the pid and the cancel key (4 bytes for protocol 3.0/3.1, up to
    /// 256 for 3.2).
    pub fn backend_key_data(&mut self, pid: i32, key: &[u8]) {
        self.begin(b'K').i32(pid).bytes(key);
    }

    /// ReadyForQuery (`Z`).
    pub fn ready_for_query(&mut self, status: TransactionStatus) {
        self.begin(b'Z').u8(status.byte());
    }

    /// RowDescription (`T`).
    pub fn row_description(&mut self, fields: &[FieldDescription]) {
        let mut m = self.begin(b'T');
        m.i16(i16::try_from(fields.len()).unwrap_or(i16::MAX));
        for f in fields {
            m.cstr(&f.name)
                .u32(f.table_oid)
                .i16(f.column)
                .u32(f.type_oid)
                .i16(f.type_len)
                .i32(f.type_modifier)
                .i16(f.format);
        }
    }

    /// DataRow (`D`); `None` is SQL NULL.
    pub fn data_row(&mut self, values: &[Option<&[u8]>]) {
        let mut m = self.begin(b'D');
        m.i16(i16::try_from(values.len()).unwrap_or(i16::MAX));
        for v in values {
            match v {
                Some(b) => {
                    m.i32(i32::try_from(b.len()).unwrap_or(i32::MAX)).bytes(b);
                }
                None => {
                    m.i32(-1);
                }
            }
        }
    }

    /// CommandComplete (`C`) with its tag, e.g. `SELECT 1`.
    pub fn command_complete(&mut self, tag: &str) {
        self.begin(b'C').cstr(tag);
    }

    /// EmptyQueryResponse (`I`).
    pub fn empty_query_response(&mut self) {
        self.begin(b'I');
    }

    fn report(&mut self, ty: u8, f: &ErrorFields) {
        let mut m = self.begin(ty);
        m.u8(b'S').cstr(f.severity.name());
        m.u8(b'V').cstr(f.severity.name());
        m.u8(b'C').cstr(&f.code);
        m.u8(b'M').cstr(&f.message);
        if let Some(d) = &f.detail {
            m.u8(b'D').cstr(d);
        }
        if let Some(h) = &f.hint {
            m.u8(b'H').cstr(h);
        }
        if let Some(p) = f.position {
            m.u8(b'P').cstr(&p.to_string());
        }
        if let Some(w) = &f.context {
            m.u8(b'W').cstr(w);
        }
        if let Some(r) = &f.routine {
            m.u8(b'R').cstr(r);
        }
        m.u8(0);
    }

    /// ErrorResponse (`E`).
    pub fn error_response(&mut self, f: &ErrorFields) {
        self.report(b'E', f);
    }

    /// NoticeResponse (`N`).
    pub fn notice_response(&mut self, f: &ErrorFields) {
        self.report(b'N', f);
    }

    /// ParseComplete (`1`).
    pub fn parse_complete(&mut self) {
        self.begin(b'1');
    }

    /// BindComplete (`2`).
    pub fn bind_complete(&mut self) {
        self.begin(b'2');
    }

    /// CloseComplete (`3`).
    pub fn close_complete(&mut self) {
        self.begin(b'3');
    }

    /// NoData (`n`).
    pub fn no_data(&mut self) {
        self.begin(b'n');
    }

    /// ParameterDescription (`t`) with the parameters' type OIDs.
    pub fn parameter_description(&mut self, type_oids: &[u32]) {
        let mut m = self.begin(b't');
        m.i16(i16::try_from(type_oids.len()).unwrap_or(i16::MAX));
        for &t in type_oids {
            m.u32(t);
        }
    }

    /// PortalSuspended (`s`).
    pub fn portal_suspended(&mut self) {
        self.begin(b's');
    }

    /// NegotiateProtocolVersion (`v`): the newest version served and the protocol options
    /// that were not recognised.
    pub fn negotiate_protocol_version(
        &mut self,
        version: ProtocolVersion,
        unrecognized: &[String],
    ) {
        let mut m = self.begin(b'v');
        m.u32(version.code())
            .i32(i32::try_from(unrecognized.len()).unwrap_or(i32::MAX));
        for o in unrecognized {
            m.cstr(o);
        }
    }
}

/// A cursor over the body of one received message (PostgreSQL's `pq_getmsg*`).
#[derive(Debug, Clone)]
pub struct MessageReader<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> MessageReader<'a> {
    /// Starts at the beginning of `body`.
    pub fn new(body: &'a [u8]) -> Self {
        MessageReader { body, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if n > self.remaining() {
            return Err(FormatError::InsufficientData);
        }
        let s = &self.body[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.bytes(1)?[0])
    }

    /// A big-endian 16-bit integer.
    pub fn i16(&mut self) -> Result<i16, FormatError> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian 32-bit integer.
    pub fn i32(&mut self) -> Result<i32, FormatError> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated string (bytes that are not UTF-8 are replaced, as the server encoding
    /// is UTF8 and nothing here needs them exact).
    pub fn cstr(&mut self) -> Result<String, FormatError> {
        let rest = &self.body[self.pos..];
        let Some(end) = rest.iter().position(|&c| c == 0) else {
            return Err(FormatError::InvalidString);
        };
        self.pos += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    /// Checks that the whole body was read (PostgreSQL's `pq_getmsgend`).
    pub fn finish(&self) -> Result<(), FormatError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(FormatError::InvalidFormat)
        }
    }
}
