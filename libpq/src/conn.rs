//! One client connection: a non-blocking socket with an input buffer and an output
//! [`MessageBuf`], and a [`SocketWait`] that decides how to sleep when the socket is not ready
//! (PostgreSQL's pqcomm.c `pq_getbyte`/`pq_getmessage`/`pq_flush` over `secure_read`/
//! `secure_write`, which wait on the process latch too).
//!
//! Reads never block past the caller's deadline and never return half a message: input is
//! kept until a whole packet is there, so an interrupted read can simply be retried.

use crate::format::MessageBuf;
use crate::frontend::frontend_message_limit;
use crate::startup::check_startup_length;
use crate::{ReadError, StartupError};
use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt, MsgFlags};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Instant;

/// What a [`SocketWait`] should wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Data to read (or EOF).
    Readable,
    /// Room in the send buffer.
    Writable,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The socket may be ready: try the operation again.
    Ready,
    /// Something else woke us (the latch, a signal): the caller must look at its interrupt
    /// flags before retrying.
    Interrupted,
    /// The deadline passed.
    TimedOut,
}

/// Sleeps until a socket is ready, the deadline passes, or something the owner cares about
/// happens. A backend implements it over its wait-event set (socket + latch + postmaster
/// death); [`PollWait`] is the plain `poll(2)` version.
pub trait SocketWait {
    /// Waits for `interest` on `sock` until `deadline` (`None`: no limit).
    fn wait(
        &mut self,
        sock: BorrowedFd<'_>,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> std::io::Result<Readiness>;
}

/// [`SocketWait`] by `poll(2)` on the socket alone; a signal that interrupts the poll is
/// reported as [`Readiness::Interrupted`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PollWait;

impl SocketWait for PollWait {
    fn wait(
        &mut self,
        sock: BorrowedFd<'_>,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> std::io::Result<Readiness> {
        use rustix::event::{poll, PollFd, PollFlags};
        let flags = match interest {
            Interest::Readable => PollFlags::IN,
            Interest::Writable => PollFlags::OUT,
        };
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Readiness::TimedOut);
                }
                Some(rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
        };
        let mut fds = [PollFd::new(&sock, flags)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => Ok(Readiness::TimedOut),
            Ok(_) => Ok(Readiness::Ready),
            Err(rustix::io::Errno::INTR) => Ok(Readiness::Interrupted),
            Err(e) => Err(e.into()),
        }
    }
}

/// Size of one read from the socket (PostgreSQL's `PQ_RECV_BUFFER_SIZE`).
const RECV_CHUNK: usize = 8192;

/// A client connection over a socket the caller keeps open.
#[derive(Debug)]
pub struct Conn<'s, W: SocketWait> {
    sock: BorrowedFd<'s>,
    waiter: W,
    input: Vec<u8>,
    pos: usize,
    out: MessageBuf,
    /// TLS, once started: every read and write then goes through it.
    tls: Option<Box<rustls::ServerConnection>>,
}

/// A TLS connection's row of `pg_stat_ssl` (`ssl` is true when this exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsStatus {
    /// `version`.
    pub version: &'static str,
    /// `cipher`, OpenSSL's name of the suite, e.g. `TLS_AES_256_GCM_SHA384` or
    /// `ECDHE-RSA-AES256-GCM-SHA384`.
    pub cipher: String,
    /// `bits`.
    pub bits: i32,
    /// The client's certificate, when it sent one (rustls verified it against `ssl_ca_file`).
    pub client: Option<crate::PeerCert>,
}

/// OpenSSL's name of a cipher suite (what PostgreSQL's `pg_stat_ssl.cipher` shows) for
/// rustls's name of it.
fn openssl_cipher_name(rustls_name: &str) -> String {
    if let Some(rest) = rustls_name.strip_prefix("TLS13_") {
        return format!("TLS_{rest}");
    }
    let Some(rest) = rustls_name.strip_prefix("TLS_") else {
        return rustls_name.to_owned();
    };
    let Some((kx, enc)) = rest.split_once("_WITH_") else {
        return rustls_name.to_owned();
    };
    let enc = match enc {
        "AES_128_GCM_SHA256" => "AES128-GCM-SHA256",
        "AES_256_GCM_SHA384" => "AES256-GCM-SHA384",
        "CHACHA20_POLY1305_SHA256" => "CHACHA20-POLY1305",
        other => return format!("{}-{}", kx.replace('_', "-"), other.replace('_', "-")),
    };
    format!("{}-{enc}", kx.replace('_', "-"))
}

/// The socket as `io::Read` / `io::Write` for rustls: EAGAIN is `WouldBlock`.
struct Raw<'a>(BorrowedFd<'a>);

impl std::io::Read for Raw<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        rustix::io::read(self.0, buf).map_err(std::io::Error::from)
    }
}

impl std::io::Write for Raw<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        nix::sys::socket::send(self.0.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL)
            .map_err(std::io::Error::from)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn tls_error(e: rustls::Error) -> ReadError {
    ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

impl<'s, W: SocketWait> Conn<'s, W> {
    /// Wraps an accepted socket: makes it non-blocking and, for TCP, turns Nagle off.
    pub fn new(sock: BorrowedFd<'s>, waiter: W) -> std::io::Result<Self> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let fl = fcntl(sock.as_raw_fd(), FcntlArg::F_GETFL)?;
        fcntl(
            sock.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK),
        )?;
        // Fails harmlessly (EOPNOTSUPP) on a Unix socket.
        let _ = setsockopt(&sock, sockopt::TcpNoDelay, &true);
        Ok(Conn {
            sock,
            waiter,
            input: Vec::with_capacity(RECV_CHUNK),
            pos: 0,
            out: MessageBuf::new(),
            tls: None,
        })
    }

    /// Whether TLS is up.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The TLS session, once started (for `pg_stat_ssl`: version, cipher suite; for channel
    /// binding).
    pub fn tls(&self) -> Option<&rustls::ServerConnection> {
        self.tls.as_deref()
    }

    /// What `pg_stat_ssl` shows for this connection: `None` without TLS, else the protocol
    /// version (`TLSv1.3`), the cipher suite's name and its key bits.
    pub fn tls_status(&self) -> Option<TlsStatus> {
        let tls = self.tls.as_deref()?;
        let version = match tls.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "unknown",
        };
        let suite = tls.negotiated_cipher_suite()?;
        let name = format!("{:?}", suite.suite());
        let bits = if name.contains("AES_128") { 128 } else { 256 };
        let client = tls
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| crate::peer_cert(c.as_ref()));
        Some(TlsStatus {
            version,
            cipher: openssl_cipher_name(&name),
            bits,
            client,
        })
    }

    /// Waits for the first byte from the client and returns it without consuming it (`None`
    /// on EOF): PostgreSQL 17's direct TLS starts with a TLS record (0x16) where a startup
    /// packet's length word would be.
    pub fn peek_first_byte(&mut self, deadline: Instant) -> Result<Option<u8>, ReadError> {
        if !self.want(1, Some(deadline))? {
            return Ok(None);
        }
        Ok(Some(self.buffered()[0]))
    }

    /// Runs a TLS handshake with `config` over the socket, then reads and writes through it.
    /// Bytes already buffered (a direct-TLS ClientHello) are fed to TLS first. When a wait is
    /// interrupted, `stop` decides: `true` gives up with [`ReadError::Interrupted`], `false`
    /// goes on. On error the connection is unusable.
    pub fn start_tls(
        &mut self,
        config: std::sync::Arc<rustls::ServerConfig>,
        deadline: Instant,
        mut stop: impl FnMut(&mut W) -> bool,
    ) -> Result<(), ReadError> {
        let mut tls = Box::new(rustls::ServerConnection::new(config).map_err(tls_error)?);
        // Whatever was read ahead belongs to the TLS stream.
        let mut ahead = &self.input[self.pos..];
        while !ahead.is_empty() {
            let n = tls.read_tls(&mut ahead).map_err(ReadError::Io)?;
            if n == 0 {
                break;
            }
        }
        self.input.clear();
        self.pos = 0;
        let d = Some(deadline);
        let mut wait = |conn: &mut Self, interest| match conn.wait_for(interest, d) {
            Err(ReadError::Interrupted) if !stop(&mut conn.waiter) => Ok(()),
            other => other,
        };
        while tls.is_handshaking() {
            if let Err(e) = tls.process_new_packets() {
                // Send the alert before giving up.
                let _ = tls.write_tls(&mut Raw(self.sock));
                return Err(tls_error(e));
            }
            if tls.wants_write() {
                match tls.write_tls(&mut Raw(self.sock)) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        wait(self, Interest::Writable)?;
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ReadError::Io(e)),
                }
            }
            if !tls.is_handshaking() {
                break;
            }
            match tls.read_tls(&mut Raw(self.sock)) {
                Ok(0) => return Err(ReadError::UnexpectedEof),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    wait(self, Interest::Readable)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        self.tls = Some(tls);
        // Application data that came with the last handshake flight.
        Ok(())
    }

    fn wait_for(&mut self, interest: Interest, deadline: Option<Instant>) -> Result<(), ReadError> {
        match self.waiter.wait(self.sock, interest, deadline)? {
            Readiness::Ready => Ok(()),
            Readiness::Interrupted => Err(ReadError::Interrupted),
            Readiness::TimedOut => Err(ReadError::TimedOut),
        }
    }

    /// [`fill`](Self::fill) through TLS.
    fn fill_tls(&mut self, deadline: Option<Instant>) -> Result<bool, ReadError> {
        loop {
            let tls = self.tls.as_mut().expect("TLS started");
            let old = self.input.len();
            self.input.resize(old + RECV_CHUNK, 0);
            match std::io::Read::read(&mut tls.reader(), &mut self.input[old..]) {
                Ok(0) => {
                    self.input.truncate(old);
                    return Ok(false);
                }
                Ok(n) => {
                    self.input.truncate(old + n);
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.input.truncate(old);
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.input.truncate(old);
                    return Ok(false);
                }
                Err(e) => {
                    self.input.truncate(old);
                    return Err(ReadError::Io(e));
                }
            }
            // No plaintext yet: more records from the socket.
            match tls.read_tls(&mut Raw(self.sock)) {
                Ok(0) => return Ok(false),
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        let _ = tls.write_tls(&mut Raw(self.sock));
                        return Err(tls_error(e));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.wait_for(Interest::Readable, deadline)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// The socket.
    pub fn socket(&self) -> BorrowedFd<'s> {
        self.sock
    }

    /// The waiter (e.g. to switch it to another latch).
    pub fn waiter_mut(&mut self) -> &mut W {
        &mut self.waiter
    }

    /// The outgoing messages; [`flush`](Self::flush) sends them.
    pub fn out(&mut self) -> &mut MessageBuf {
        &mut self.out
    }

    /// Whether received bytes are waiting to be parsed (the client sent more than one message
    /// at once, or sent data before it should have).
    pub fn has_buffered_input(&self) -> bool {
        self.pos < self.input.len()
    }

    fn buffered(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    /// Reads more bytes into the input buffer; `Ok(false)` on EOF.
    fn fill(&mut self, deadline: Option<Instant>) -> Result<bool, ReadError> {
        if self.pos > 0 && self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > RECV_CHUNK {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        if self.tls.is_some() {
            return self.fill_tls(deadline);
        }
        // Read into the spare capacity: no zeroing of a chunk per read.
        self.input.reserve(RECV_CHUNK);
        loop {
            match rustix::io::read(self.sock, rustix::buffer::spare_capacity(&mut self.input)) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => {
                    match self.waiter.wait(self.sock, Interest::Readable, deadline)? {
                        Readiness::Ready => {}
                        Readiness::Interrupted => return Err(ReadError::Interrupted),
                        Readiness::TimedOut => return Err(ReadError::TimedOut),
                    }
                }
                Err(e) => return Err(ReadError::Io(e.into())),
            }
        }
    }

    /// Makes sure `n` bytes are buffered; `Ok(false)` when EOF came first.
    fn want(&mut self, n: usize, deadline: Option<Instant>) -> Result<bool, ReadError> {
        while self.buffered().len() < n {
            if !self.fill(deadline)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads one startup packet and returns what follows its length word (code and payload),
    /// to be given to [`crate::parse_startup_packet`]. Errors follow PostgreSQL: EOF before
    /// any byte is [`StartupError::NoData`] (no log line), a partial packet is
    /// [`StartupError::Incomplete`], a bad length is [`StartupError::InvalidLength`].
    pub fn read_startup_packet(&mut self, deadline: Instant) -> Result<Vec<u8>, StartupError> {
        let d = Some(deadline);
        if !self.want(1, d)? {
            return Err(StartupError::NoData);
        }
        if !self.want(4, d)? {
            return Err(StartupError::Incomplete);
        }
        let b = self.buffered();
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let body = check_startup_length(len)?;
        if !self.want(4 + body, d)? {
            return Err(StartupError::Incomplete);
        }
        let packet = self.input[self.pos + 4..self.pos + 4 + body].to_vec();
        self.pos += 4 + body;
        Ok(packet)
    }

    /// Reads one typed message; returns its type and body. Unknown types and bodies over the
    /// type's limit are errors ([`frontend_message_limit`]). With `deadline` `None` the wait
    /// has no time limit (an idle session). EOF at a message boundary is [`ReadError::Eof`];
    /// in the middle of a message it is [`ReadError::UnexpectedEof`].
    pub fn read_message(&mut self, deadline: Option<Instant>) -> Result<(u8, Vec<u8>), ReadError> {
        self.read_message_with(deadline, frontend_message_limit)
    }

    /// [`read_message`](Self::read_message) with another table of types and limits, e.g.
    /// [`crate::auth_message_limit`] while authenticating.
    pub fn read_message_with(
        &mut self,
        deadline: Option<Instant>,
        frontend_message_limit: fn(u8) -> Option<usize>,
    ) -> Result<(u8, Vec<u8>), ReadError> {
        if !self.want(1, deadline)? {
            return Err(ReadError::Eof);
        }
        let ty = self.buffered()[0];
        let Some(limit) = frontend_message_limit(ty) else {
            return Err(ReadError::InvalidMessageType(ty));
        };
        if !self.want(5, deadline)? {
            return Err(ReadError::UnexpectedEof);
        }
        let b = self.buffered();
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        if len < 4 || len > limit {
            return Err(ReadError::InvalidLength);
        }
        if !self.want(1 + len, deadline)? {
            return Err(ReadError::UnexpectedEof);
        }
        let body = self.input[self.pos + 5..self.pos + 1 + len].to_vec();
        self.pos += 1 + len;
        Ok((ty, body))
    }

    /// Sends everything in [`out`](Self::out). On [`ReadError::Interrupted`] or
    /// [`ReadError::TimedOut`] the unsent rest stays buffered and a later call continues.
    pub fn flush(&mut self, deadline: Option<Instant>) -> Result<(), ReadError> {
        if let Some(tls) = self.tls.as_mut() {
            if !self.out.is_empty() {
                std::io::Write::write_all(&mut tls.writer(), self.out.as_bytes())
                    .map_err(ReadError::Io)?;
                self.out.clear();
            }
            while self.tls.as_ref().is_some_and(|t| t.wants_write()) {
                let tls = self.tls.as_mut().expect("TLS started");
                match tls.write_tls(&mut Raw(self.sock)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        self.wait_for(Interest::Writable, deadline)?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // The client is gone (TLS stays on: nothing may ever go out in clear).
                    Err(e) => return Err(ReadError::Io(e)),
                }
            }
            return Ok(());
        }
        while !self.out.is_empty() {
            match nix::sys::socket::send(
                self.sock.as_raw_fd(),
                self.out.as_bytes(),
                MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => self.out.consume(n),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    match self
                        .waiter
                        .wait(self.sock.as_fd(), Interest::Writable, deadline)?
                    {
                        Readiness::Ready => {}
                        Readiness::Interrupted => return Err(ReadError::Interrupted),
                        Readiness::TimedOut => return Err(ReadError::TimedOut),
                    }
                }
                Err(e) => {
                    // The client is gone: what is left can never be delivered.
                    self.out.clear();
                    return Err(ReadError::Io(e.into()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod cipher_names {
    use super::openssl_cipher_name;

    #[test]
    fn rustls_suite_names_print_as_openssl_names() {
        for (rustls, openssl) in [
            ("TLS13_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
            (
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_CHACHA20_POLY1305_SHA256",
            ),
            (
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384",
            ),
            (
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
            ),
            (
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                "ECDHE-RSA-CHACHA20-POLY1305",
            ),
            ("Unknown(0x1234)", "Unknown(0x1234)"),
        ] {
            assert_eq!(openssl_cipher_name(rustls), openssl);
        }
    }
}
