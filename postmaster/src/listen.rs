//! The postmaster's listen sockets (PostgreSQL's `ListenServerPort` and the socket-file
//! handling of pqcomm.c): TCP sockets for `listen_addresses` and `port`, and a Unix-domain
//! socket `.s.PGSQL.<port>` with its lock file `.s.PGSQL.<port>.lock` in every directory of
//! `unix_socket_directories`. The socket and lock files are removed when [`Listen`] is dropped.
//!
//! All descriptors are close-on-exec and non-blocking; children closes them right after fork.

use crate::elog::{elog, Severity};
use crate::guc::Settings;
use nix::sys::socket::{
    accept4, bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, UnixAddr,
};
use std::fs;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// PostgreSQL's listen backlog cap (`MaxConnections * 2`, at most `PG_SOMAXCONN`).
const PG_SOMAXCONN: i32 = 10_000;

/// The open listen sockets and the files that go with them.
#[derive(Debug)]
pub struct Listen {
    fds: Vec<OwnedFd>,
    files: Vec<PathBuf>,
}

impl Listen {
    /// The sockets' descriptor numbers (for children to close).
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.fds.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// The sockets.
    pub fn fds(&self) -> &[OwnedFd] {
        &self.fds
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        // Only the postmaster ever drops it (children leave through `proc_exit`).
        for f in &self.files {
            let _ = fs::remove_file(f);
        }
    }
}

fn backlog(settings: &Settings) -> Backlog {
    let n = (settings.int("max_connections") * 2).clamp(1, i64::from(PG_SOMAXCONN)) as i32;
    Backlog::new(n).unwrap_or(Backlog::MAXCONN)
}

/// Opens every listen socket the settings ask for (PostgreSQL's start-up step 10). Failures
/// for single addresses are WARNINGs; none at all where some were asked for is an error with
/// PostgreSQL's text.
pub fn open_listen_sockets(settings: &Settings) -> Result<Listen, String> {
    let mut l = Listen {
        fds: Vec::new(),
        files: Vec::new(),
    };
    let port = settings.int("port") as u16;
    let addrs = settings.text("listen_addresses").to_owned();
    let mut tcp_wanted = false;
    for host in addrs.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        tcp_wanted = true;
        let targets: Vec<SocketAddr> = if host == "*" {
            vec![
                SocketAddr::new(IpAddr::from([0u8; 4]), port),
                SocketAddr::new(IpAddr::from([0u16; 8]), port),
            ]
        } else {
            match (host, port).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => {
                    elog(
                        Severity::Warning,
                        &format_args!(
                            "could not translate host name \"{host}\", service \"{port}\" to address: {e}"
                        ),
                    );
                    continue;
                }
            }
        };
        let before = l.fds.len();
        for a in targets {
            match tcp_socket(a, backlog(settings)) {
                Ok(fd) => l.fds.push(fd),
                // "*" on a machine without IPv6: the IPv4 socket is enough.
                Err(_) if host == "*" && a.is_ipv6() && l.fds.len() > before => {}
                Err(e) => elog(Severity::Log, &e),
            }
        }
        if l.fds.len() == before {
            elog(
                Severity::Warning,
                &format_args!("could not create listen socket for \"{host}\""),
            );
        }
    }
    if tcp_wanted && l.fds.is_empty() {
        return Err("could not create any TCP/IP sockets".into());
    }
    let tcp = l.fds.len();
    let dirs = settings.text("unix_socket_directories").to_owned();
    let mut unix_wanted = false;
    let perms = settings.int("unix_socket_permissions") as u32;
    for dir in dirs.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        unix_wanted = true;
        match unix_socket(&PathBuf::from(dir), port, backlog(settings), perms) {
            Ok((fd, files)) => {
                l.fds.push(fd);
                l.files.extend(files);
            }
            Err(e) => {
                elog(Severity::Log, &e);
                elog(
                    Severity::Warning,
                    &format_args!("could not create Unix-domain socket in directory \"{dir}\""),
                );
            }
        }
    }
    if unix_wanted && l.fds.len() == tcp {
        return Err("could not create any Unix-domain sockets".into());
    }
    if l.fds.is_empty() {
        return Err("no socket created for listening".into());
    }
    Ok(l)
}

fn tcp_socket(a: SocketAddr, backlog: Backlog) -> Result<OwnedFd, String> {
    let (family, kind) = if a.is_ipv6() {
        (AddressFamily::Inet6, "IPv6")
    } else {
        (AddressFamily::Inet, "IPv4")
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| {
        format!(
            "could not create {kind} socket for address \"{}\": {e}",
            a.ip()
        )
    })?;
    let _ = setsockopt(&fd, sockopt::ReuseAddr, &true);
    if a.is_ipv6() {
        let _ = setsockopt(&fd, sockopt::Ipv6V6Only, &true);
    }
    let r = match a {
        SocketAddr::V4(v4) => bind(fd.as_raw_fd(), &SockaddrIn::from(v4)),
        SocketAddr::V6(v6) => bind(fd.as_raw_fd(), &SockaddrIn6::from(v6)),
    };
    if let Err(e) = r {
        return Err(format!(
            "could not bind {kind} address \"{}\": {}\nHINT:  Is another postmaster already running on port {}?",
            a.ip(),
            e.desc(),
            a.port()
        ));
    }
    listen(&fd, backlog).map_err(|e| {
        format!(
            "could not listen on {kind} address \"{}\": {}",
            a.ip(),
            e.desc()
        )
    })?;
    Ok(fd)
}

/// The Unix socket and its lock file (PostgreSQL's `Lock_AF_UNIX` + `Setup_AF_UNIX`).
fn unix_socket(
    dir: &std::path::Path,
    port: u16,
    backlog: Backlog,
    perms: u32,
) -> Result<(OwnedFd, Vec<PathBuf>), String> {
    let path = dir.join(format!(".s.PGSQL.{port}"));
    let lock = dir.join(format!(".s.PGSQL.{port}.lock"));
    if path.as_os_str().len() >= 108 {
        return Err(format!(
            "Unix-domain socket path \"{}\" is too long (maximum 107 bytes)",
            path.display()
        ));
    }
    create_socket_lock_file(&lock)?;
    // The lock file is ours now: a leftover socket file is stale.
    let _ = fs::remove_file(&path);
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("could not create Unix socket: {e}"))?;
    let addr = UnixAddr::new(&path).map_err(|e| format!("invalid socket path: {e}"))?;
    if let Err(e) = bind(fd.as_raw_fd(), &addr) {
        let _ = fs::remove_file(&lock);
        return Err(format!(
            "could not bind Unix address \"{}\": {}\nHINT:  Is another postmaster already running on port {port}?",
            path.display(),
            e.desc()
        ));
    }
    let _ = fs::set_permissions(&path, fs::Permissions::from_mode(perms));
    listen(&fd, backlog).map_err(|e| {
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(&lock);
        format!(
            "could not listen on Unix address \"{}\": {}",
            path.display(),
            e.desc()
        )
    })?;
    Ok((fd, vec![path, lock]))
}

/// Creates the socket lock file exclusively, removing a stale one whose postmaster is gone
/// (PostgreSQL writes the same first lines as postmaster.pid).
fn create_socket_lock_file(lock: &std::path::Path) -> Result<(), String> {
    let me = std::process::id() as i32;
    for _ in 0..100 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(mut f) => {
                let dir = std::env::current_dir().unwrap_or_default();
                let _ = writeln!(f, "{me}\n{}", dir.display());
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let other: i32 = fs::read_to_string(lock)
                    .ok()
                    .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
                    .unwrap_or(0);
                // SAFETY: signal 0 only checks for existence.
                if other > 0 && other != me && unsafe { libc::kill(other, 0) } == 0 {
                    return Err(format!(
                        "lock file \"{}\" already exists\nHINT:  Is another postmaster (PID {other}) using socket file \"{}\"?",
                        lock.display(),
                        lock.with_extension("").display()
                    ));
                }
                let _ = fs::remove_file(lock);
            }
            Err(e) => {
                return Err(format!(
                    "could not create lock file \"{}\": {e}",
                    lock.display()
                ))
            }
        }
    }
    Err(format!("could not create lock file \"{}\"", lock.display()))
}

/// Accepts one connection (PostgreSQL's `AcceptConnection`); `Ok(None)` when there was none
/// after all (another wake-up took it, or the client gave up).
pub fn accept(listener: BorrowedFd<'_>) -> std::io::Result<Option<OwnedFd>> {
    match accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
        Ok(fd) => {
            // SAFETY: accept4 returned a new descriptor that nobody else owns.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            Ok(Some(fd))
        }
        Err(
            nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR | nix::errno::Errno::ECONNABORTED,
        ) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// After a failed fork: a best-effort ErrorResponse so the client hears why (PostgreSQL's
/// `report_fork_failure_to_client`).
pub fn report_fork_failure(client: OwnedFd, msg: &str) {
    let text = format!("could not fork new process for connection: {msg}");
    let mut body = Vec::new();
    body.push(b'S');
    body.extend_from_slice(b"FATAL\0");
    body.push(b'C');
    body.extend_from_slice(b"53000\0");
    body.push(b'M');
    body.extend_from_slice(text.as_bytes());
    body.push(0);
    body.push(0);
    let mut pkt = vec![b'E'];
    pkt.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    pkt.extend_from_slice(&body);
    let mut f = fs::File::from(client);
    let _ = f.write_all(&pkt);
}
