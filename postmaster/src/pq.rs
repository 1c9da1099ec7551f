//! The server side of the v3 wire protocol for one connection (PostgreSQL's pqcomm.c and
//! pqformat.c): reading the startup packet and typed messages with length limits, and building
//! the backend's messages. Reads and writes wait on the process latch too, so a signal
//! (terminate, cancel, postmaster death) is noticed even while the client is silent or not
//! reading.
//!
//! ```text
//!  startup packet:  int32 len | int32 code | payload          (len includes itself)
//!  message:         byte type | int32 len | payload           (len includes itself)
//! ```
//!
//! Nothing a client sends can make this code panic: every length is checked before use, and
//! malformed input is an error value that makes the backend leave quietly.

use pgipc_latch::{Latch, OwnedLatch};
use pgipc_waiteventset::{WaitEvent, WaitEventSet, WaitEvents};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Longest startup packet accepted (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_PACKET_LENGTH: usize = 10_000;
/// Limit for messages that may carry large data (`PQ_LARGE_MESSAGE_LIMIT`).
pub const PQ_LARGE_MESSAGE_LIMIT: usize = 0x3fff_ffff - 1;
/// Limit for every other message (`PQ_SMALL_MESSAGE_LIMIT`).
pub const PQ_SMALL_MESSAGE_LIMIT: usize = 10_000;

/// `CANCEL_REQUEST_CODE` (1234.5678).
pub const CANCEL_REQUEST_CODE: u32 = (1234 << 16) | 5678;
/// `NEGOTIATE_SSL_CODE` (1234.5679).
pub const NEGOTIATE_SSL_CODE: u32 = (1234 << 16) | 5679;
/// `NEGOTIATE_GSS_CODE` (1234.5680).
pub const NEGOTIATE_GSS_CODE: u32 = (1234 << 16) | 5680;
/// Newest protocol version served (3.2).
pub const PG_PROTOCOL_LATEST: u32 = (3 << 16) | 2;
/// Longest cancel key a CancelRequest may carry (PostgreSQL 18).
pub const MAX_CANCEL_KEY_LENGTH: usize = 256;

/// Why reading from the client stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection.
    Eof,
    /// A socket error.
    Io(io::Error),
    /// The deadline passed.
    Timeout,
    /// The latch was set: the caller must look at its interrupt flags, then may retry.
    Interrupted,
    /// The client broke the protocol (the text is PostgreSQL's message).
    Protocol(String),
}

/// One client connection: a non-blocking socket, buffered both ways, waiting on the socket and
/// the process latch.
pub struct Conn<'l> {
    // Dropped in declaration order: the set (which refers to the socket) before the socket.
    set: WaitEventSet<'l>,
    sock: OwnedFd,
    inbuf: Vec<u8>,
    inpos: usize,
    out: Vec<u8>,
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("sock", &self.sock.as_raw_fd())
            .field("buffered_in", &(self.inbuf.len() - self.inpos))
            .field("buffered_out", &self.out.len())
            .finish()
    }
}

const SOCK: u64 = 1;
const LATCH: u64 = 2;
/// Positions in the set: latch, postmaster death, socket.
const LATCH_POS: usize = 0;
const SOCK_POS: usize = 2;

impl<'l> Conn<'l> {
    /// Wraps the accepted socket; `latch` is the process's latch.
    pub fn new(sock: OwnedFd, latch: &'l OwnedLatch<&'static Latch>) -> io::Result<Self> {
        let fd = sock.as_raw_fd();
        // SAFETY: fcntl on our own descriptor.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: as above.
        if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        // SAFETY: valid option buffer; harmless (and ignored) on a Unix socket.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let mut set = WaitEventSet::new(3).map_err(io::Error::other)?;
        set.add_latch(latch, LATCH).map_err(io::Error::other)?;
        set.add_postmaster_death(true, 0)
            .map_err(io::Error::other)?;
        let mut c = Conn {
            sock,
            set,
            inbuf: Vec::with_capacity(8192),
            inpos: 0,
            out: Vec::with_capacity(8192),
        };
        c.register_socket()?;
        Ok(c)
    }

    fn register_socket(&mut self) -> io::Result<()> {
        // SAFETY: the descriptor outlives its use by the set: both live in `self`, and the set
        // is dropped before the socket is closed (field order).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.sock.as_raw_fd()) };
        self.set
            .add_socket(WaitEvents::SOCKET_READABLE, fd, SOCK)
            .map(drop)
            .map_err(io::Error::other)
    }

    /// Waits on `latch` from now on (the PGPROC's latch, once the backend has one).
    pub fn use_latch(&mut self, latch: pgipc_latch::LatchOwner<'l>) -> io::Result<()> {
        self.set
            .modify(LATCH_POS, WaitEvents::LATCH_SET, Some(latch))
            .map_err(io::Error::other)
    }

    /// The socket (for the cancel-request path that writes nothing).
    pub fn socket(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }

    fn wait(&mut self, events: WaitEvents, deadline: Option<Instant>) -> Result<(), ReadError> {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if timeout == Some(Duration::ZERO) {
            return Err(ReadError::Timeout);
        }
        self.set
            .modify(SOCK_POS, events, None)
            .map_err(|e| ReadError::Io(io::Error::other(e)))?;
        let mut ev = [WaitEvent::EMPTY; 3];
        let n = self
            .set
            .wait(timeout, &mut ev, 0x0600_0000)
            .map_err(|e| ReadError::Io(io::Error::other(e)))?;
        if n == 0 {
            return Err(ReadError::Timeout);
        }
        if ev[..n].iter().any(|e| e.user_data == LATCH) {
            return Err(ReadError::Interrupted);
        }
        Ok(())
    }

    /// Makes at least `n` unread bytes available.
    fn fill(&mut self, n: usize, deadline: Option<Instant>) -> Result<(), ReadError> {
        while self.inbuf.len() - self.inpos < n {
            if self.inpos > 0 && self.inpos == self.inbuf.len() {
                self.inbuf.clear();
                self.inpos = 0;
            }
            let mut buf = [0u8; 8192];
            // SAFETY: reading into a valid stack buffer of the given size.
            let r =
                unsafe { libc::read(self.sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r > 0 {
                self.inbuf.extend_from_slice(&buf[..r as usize]);
                continue;
            }
            if r == 0 {
                return Err(ReadError::Eof);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => self.wait(WaitEvents::SOCKET_READABLE, deadline)?,
                Some(libc::EINTR) => {}
                _ => return Err(ReadError::Io(e)),
            }
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let v = self.inbuf[self.inpos..self.inpos + n].to_vec();
        self.inpos += n;
        v
    }

    /// Whether unread input is buffered (the client pipelines).
    pub fn has_buffered_input(&self) -> bool {
        self.inpos < self.inbuf.len()
    }

    /// Reads one startup packet: its code and payload.
    pub fn read_startup_packet(&mut self, deadline: Instant) -> Result<(u32, Vec<u8>), ReadError> {
        loop {
            match self.fill(4, Some(deadline)) {
                Err(ReadError::Interrupted) => continue,
                r => r?,
            }
            break;
        }
        let len = be_u32(&self.inbuf[self.inpos..]) as usize;
        if !(8..=MAX_STARTUP_PACKET_LENGTH).contains(&len) {
            return Err(ReadError::Protocol(
                "invalid length of startup packet".into(),
            ));
        }
        loop {
            match self.fill(len, Some(deadline)) {
                Err(ReadError::Interrupted) => continue,
                Err(ReadError::Eof) => {
                    return Err(ReadError::Protocol("incomplete startup packet".into()))
                }
                r => r?,
            }
            break;
        }
        let pkt = self.take(len);
        Ok((be_u32(&pkt[4..]), pkt[8..].to_vec()))
    }

    /// Reads one typed message. `Interrupted` leaves the partial message buffered.
    pub fn read_message(&mut self) -> Result<(u8, Vec<u8>), ReadError> {
        self.fill(5, None)?;
        let ty = self.inbuf[self.inpos];
        let len = be_u32(&self.inbuf[self.inpos + 1..]) as usize;
        let limit = match ty {
            b'Q' | b'P' | b'B' | b'F' | b'd' => PQ_LARGE_MESSAGE_LIMIT,
            _ => PQ_SMALL_MESSAGE_LIMIT,
        };
        if len < 4 || len > limit {
            return Err(ReadError::Protocol("invalid message length".into()));
        }
        self.fill(1 + len, None)?;
        self.inpos += 5;
        Ok((ty, self.take(len - 4)))
    }

    /// Queues raw bytes.
    pub fn write_raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    /// Queues a message of type `ty`.
    pub fn send(&mut self, ty: u8, body: &[u8]) {
        self.out.push(ty);
        self.out
            .extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        self.out.extend_from_slice(body);
    }

    /// Writes everything queued. `Interrupted` (latch set while the client does not read)
    /// keeps the rest queued.
    pub fn flush(&mut self) -> Result<(), ReadError> {
        let mut done = 0;
        while done < self.out.len() {
            // SAFETY: writing from a valid buffer range.
            let r = unsafe {
                libc::write(
                    self.sock.as_raw_fd(),
                    self.out[done..].as_ptr().cast(),
                    self.out.len() - done,
                )
            };
            if r >= 0 {
                done += r as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => {
                    if let Err(e) = self.wait(WaitEvents::SOCKET_WRITEABLE, None) {
                        self.out.drain(..done);
                        return Err(e);
                    }
                }
                Some(libc::EINTR) => {}
                _ => {
                    self.out.clear();
                    return Err(ReadError::Io(e));
                }
            }
        }
        self.out.clear();
        Ok(())
    }
}

/// Big-endian u32 at the start of `b` (caller checked the length).
pub fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A cursor over a message body, PostgreSQL's `pq_getmsg*`: every read is checked.
#[derive(Debug)]
pub struct MsgReader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> MsgReader<'a> {
    /// Reads `b`.
    pub fn new(b: &'a [u8]) -> Self {
        MsgReader { b, pos: 0 }
    }

    fn bad() -> String {
        "invalid message format".into()
    }

    /// `pq_getmsgbyte`.
    pub fn byte(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.pos).ok_or_else(Self::bad)?;
        self.pos += 1;
        Ok(v)
    }

    /// `pq_getmsgint(2)`.
    pub fn i16(&mut self) -> Result<i16, String> {
        let s = self.b.get(self.pos..self.pos + 2).ok_or_else(Self::bad)?;
        self.pos += 2;
        Ok(i16::from_be_bytes([s[0], s[1]]))
    }

    /// `pq_getmsgint(4)`.
    pub fn i32(&mut self) -> Result<i32, String> {
        let s = self.b.get(self.pos..self.pos + 4).ok_or_else(Self::bad)?;
        self.pos += 4;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// `pq_getmsgbytes`.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.pos..self.pos.checked_add(n).ok_or_else(Self::bad)?)
            .ok_or_else(Self::bad)?;
        self.pos += n;
        Ok(s)
    }

    /// `pq_getmsgstring`: a NUL-terminated string.
    pub fn cstr(&mut self) -> Result<String, String> {
        let rest = self.b.get(self.pos..).ok_or_else(Self::bad)?;
        let end = rest
            .iter()
            .position(|c| *c == 0)
            .ok_or_else(|| "invalid string in message".to_owned())?;
        self.pos += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    /// `pq_getmsgend`.
    pub fn end(&self) -> Result<(), String> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err("invalid message format".into())
        }
    }
}

/// Builds a message body, PostgreSQL's `pq_send*`.
#[derive(Debug, Default)]
pub struct MsgBuf(pub Vec<u8>);

impl MsgBuf {
    /// `pq_sendint16`.
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// `pq_sendint32`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// `pq_sendstring`.
    pub fn cstr(&mut self, s: &str) -> &mut Self {
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }
    /// `pq_sendbytes`.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    /// A byte.
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }
}

/// An ErrorResponse / NoticeResponse body.
pub fn error_fields(
    severity: &str,
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
    position: Option<usize>,
) -> Vec<u8> {
    let mut b = MsgBuf::default();
    b.byte(b'S').cstr(severity);
    b.byte(b'V').cstr(severity);
    b.byte(b'C').cstr(sqlstate);
    b.byte(b'M').cstr(message);
    if let Some(d) = detail {
        b.byte(b'D').cstr(d);
    }
    if let Some(h) = hint {
        b.byte(b'H').cstr(h);
    }
    if let Some(p) = position {
        b.byte(b'P').cstr(&p.to_string());
    }
    b.byte(0);
    b.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut r = MsgReader::new(&[0, 1, b'a', 0, 9]);
        assert_eq!(r.i16(), Ok(1));
        assert_eq!(r.cstr().as_deref(), Ok("a"));
        assert!(r.i32().is_err());
        assert_eq!(r.byte(), Ok(9));
        assert!(r.byte().is_err());
        assert!(r.end().is_ok());
        let mut r = MsgReader::new(b"no terminator");
        assert!(r.cstr().is_err());
        let mut r = MsgReader::new(&[1, 2]);
        assert!(r.bytes(usize::MAX).is_err());
    }

    #[test]
    fn error_response_layout() {
        let b = error_fields("ERROR", "42601", "boom", None, Some("h"), Some(3));
        assert_eq!(b, b"SERROR\0VERROR\0C42601\0Mboom\0Hh\0P3\0\0".to_vec());
    }
}
