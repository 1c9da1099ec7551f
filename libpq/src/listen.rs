//! Listen sockets (PostgreSQL's pqcomm.c `ListenServerPort`, miscinit.c
//! `CreateSocketLockFile`): TCP on each entry of `listen_addresses`, a Unix socket
//! `.s.PGSQL.<port>` with its lock file in each entry of `unix_socket_directories`, and a
//! non-blocking accept.
//!
//! Files are removed by [`ListenSockets::remove_files`] or when the value is dropped, but only
//! in the process that created them: a forked child that drops its copy leaves the
//! postmaster's socket in place.

use crate::dirlock::DirLock;
use crate::ListenError;
use nix::sys::socket::{
    accept4, bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, UnixAddr,
};
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Listen queue length used by [`listen_tcp`]: PostgreSQL uses twice `max_connections`
/// (default 100).
pub const DEFAULT_BACKLOG: i32 = 200;

/// Longest Unix socket path (`sizeof(sun_path) - 1`).
pub const MAX_UNIX_SOCKET_PATH: usize = 107;

/// A list setting's elements (`pgipc_guc::split_guc_list`), or the error PostgreSQL gives.
fn guc_list(name: &'static str, value: &str) -> Result<Vec<String>, ListenError> {
    pgipc_guc::split_guc_list(value).ok_or(ListenError::ListSyntax(name))
}

fn family_name(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// The addresses one `listen_addresses` entry stands for: `*` is every IPv4 and IPv6
/// address, anything else is a host name or numeric address.
pub fn resolve_listen_address(host: &str, port: u16) -> Result<Vec<SocketAddr>, ListenError> {
    if host == "*" {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        ]);
    }
    let mut out: Vec<SocketAddr> = Vec::new();
    let found = (host, port)
        .to_socket_addrs()
        .map_err(|source| ListenError::Resolve {
            host: host.to_owned(),
            port,
            source,
        })?;
    for a in found {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// Opens one TCP listen socket (non-blocking, close-on-exec, `SO_REUSEADDR`, `IPV6_V6ONLY`
/// for IPv6 so that `*` can bind both families on one port).
pub fn listen_tcp_addr(addr: SocketAddr, backlog: i32) -> Result<OwnedFd, ListenError> {
    let family = family_name(&addr);
    let desc = addr.ip().to_string();
    let af = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        af,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| ListenError::Socket {
        family,
        addr: desc.clone(),
        source: e.into(),
    })?;
    let opt_err = |option, e: nix::Error| ListenError::SetSockOpt {
        option,
        family,
        addr: desc.clone(),
        source: e.into(),
    };
    setsockopt(&fd, sockopt::ReuseAddr, &true)
        .map_err(|e| opt_err("setsockopt(SO_REUSEADDR)", e))?;
    let bound = match addr {
        SocketAddr::V4(a) => bind(fd.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &true)
                .map_err(|e| opt_err("setsockopt(IPV6_V6ONLY)", e))?;
            bind(fd.as_raw_fd(), &SockaddrIn6::from(a))
        }
    };
    bound.map_err(|e| ListenError::Bind {
        family,
        addr: desc.clone(),
        port: addr.port(),
        source: e.into(),
    })?;
    listen(&fd, backlog_of(backlog)).map_err(|e| ListenError::Listen {
        family,
        addr: desc.clone(),
        source: e.into(),
    })?;
    tracing::info!(
        "listening on {family} address \"{desc}\", port {}",
        addr.port()
    );
    Ok(fd)
}

fn backlog_of(n: i32) -> Backlog {
    Backlog::new(n.clamp(1, 4096)).unwrap_or(Backlog::MAXCONN)
}

/// Opens TCP listen sockets on every address of `listen_addresses` (PostgreSQL's loop in
/// `PostmasterMain`): failures of single addresses are logged and skipped; it is an error only
/// when the list is not empty and nothing could be opened. An empty list means no TCP at all.
pub fn listen_tcp(listen_addresses: &str, port: u16) -> Result<Vec<OwnedFd>, ListenError> {
    listen_tcp_with_backlog(listen_addresses, port, DEFAULT_BACKLOG)
}

/// [`listen_tcp`] with an explicit listen queue length.
pub fn listen_tcp_with_backlog(
    listen_addresses: &str,
    port: u16,
    backlog: i32,
) -> Result<Vec<OwnedFd>, ListenError> {
    let hosts = guc_list("listen_addresses", listen_addresses)?;
    let mut fds = Vec::new();
    for host in &hosts {
        let addrs = match resolve_listen_address(host, port) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("{e}");
                continue;
            }
        };
        for addr in addrs {
            match listen_tcp_addr(addr, backlog) {
                Ok(fd) => fds.push(fd),
                Err(e) => match e.hint() {
                    Some(h) => tracing::warn!("{e}\nHINT:  {h}"),
                    None => tracing::warn!("{e}"),
                },
            }
        }
    }
    if !hosts.is_empty() && fds.is_empty() {
        return Err(ListenError::NoTcpSockets);
    }
    Ok(fds)
}

/// What a Unix socket's lock file records.
#[derive(Debug, Clone)]
pub struct UnixSocketOptions {
    /// The port, which names the socket.
    pub port: u16,
    /// `unix_socket_permissions` (default `0o777`).
    pub permissions: u32,
    /// The data directory, written into the lock file.
    pub data_dir: PathBuf,
    /// Listen queue length.
    pub backlog: i32,
}

impl UnixSocketOptions {
    /// Defaults for `port` and `data_dir`.
    pub fn new(port: u16, data_dir: impl Into<PathBuf>) -> Self {
        UnixSocketOptions {
            port,
            permissions: 0o777,
            data_dir: data_dir.into(),
            backlog: DEFAULT_BACKLOG,
        }
    }
}

/// Path of the socket for `port` in `dir`: `dir/.s.PGSQL.<port>`.
pub fn unix_socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

fn lock_path(socket: &Path) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Creates the lock file of a Unix socket (PostgreSQL's `CreateSocketLockFile`): lines pid,
/// data directory, start time, port, socket directory. A lock file left by a dead process
/// (or by us or our parent, as after a restart) is replaced; one held by a live process is an
/// error, and so are an empty file (a server starting, or one that crashed while starting) and
/// one that does not start with a pid, as in PostgreSQL. The check, the removal of a stale
/// file and the creation run under the directory's [`DirLock`], so that of servers starting at
/// the same instant each one sees either no file or a complete one, and a file is removed only
/// by a process that found that very file stale.
fn create_lock_file(
    socket: &Path,
    dir: &Path,
    opts: &UnixSocketOptions,
) -> Result<PathBuf, ListenError> {
    let path = lock_path(socket);
    let err = |source: io::Error| ListenError::LockFile {
        path: path.clone(),
        source,
    };
    let _guard = DirLock::acquire(dir).map_err(err)?;
    let me = std::process::id() as i32;
    let parent = nix::unistd::getppid().as_raw();
    for _ in 0..100 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                let started = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let text = format!(
                    "{me}\n{}\n{started}\n{}\n{}\n",
                    opts.data_dir.display(),
                    opts.port,
                    dir.display()
                );
                if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()) {
                    let _ = fs::remove_file(&path);
                    return Err(err(e));
                }
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let text = match fs::read_to_string(&path) {
                    Ok(t) => t,
                    // Removed meanwhile (by a process that does not take the directory lock):
                    // try again.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(err(e)),
                };
                if text.is_empty() {
                    return Err(ListenError::LockFileEmpty { path: path.clone() });
                }
                let pid = text
                    .lines()
                    .next()
                    .and_then(|l| l.trim().parse::<i32>().ok())
                    .map(i32::wrapping_abs)
                    .filter(|p| *p > 0)
                    .ok_or_else(|| ListenError::LockFileBogus {
                        path: path.clone(),
                        content: text.lines().next().unwrap_or("").to_owned(),
                    })?;
                if pid != me && pid != parent && pgipc_ipc::pid_alive(pid) {
                    return Err(ListenError::LockFileExists {
                        path: path.clone(),
                        pid,
                        socket: socket.to_owned(),
                    });
                }
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(err(e)),
                }
            }
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "lock file keeps reappearing",
    )))
}

/// An open Unix listen socket and the files it owns.
#[derive(Debug)]
pub struct UnixListenSocket {
    /// The listening socket.
    pub fd: OwnedFd,
    /// `.s.PGSQL.<port>`.
    pub socket_path: PathBuf,
    /// `.s.PGSQL.<port>.lock`.
    pub lock_path: PathBuf,
}

/// Opens the Unix socket for `opts.port` in `dir` (PostgreSQL's `Lock_AF_UNIX` +
/// `Setup_AF_UNIX`): lock file, removal of a stale socket, bind, chmod, listen.
pub fn listen_unix(dir: &Path, opts: &UnixSocketOptions) -> Result<UnixListenSocket, ListenError> {
    let path = unix_socket_path(dir, opts.port);
    let desc = path.display().to_string();
    if path.as_os_str().len() > MAX_UNIX_SOCKET_PATH {
        return Err(ListenError::PathTooLong {
            path,
            max: MAX_UNIX_SOCKET_PATH,
        });
    }
    let lock = create_lock_file(&path, dir, opts)?;
    let cleanup = |e: ListenError| {
        let _ = fs::remove_file(&lock);
        e
    };
    // The lock is ours, so whatever socket file is there is stale.
    let _ = fs::remove_file(&path);
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| {
        cleanup(ListenError::Socket {
            family: "Unix",
            addr: desc.clone(),
            source: e.into(),
        })
    })?;
    let bind_err = |e: nix::Error| {
        cleanup(ListenError::Bind {
            family: "Unix",
            addr: desc.clone(),
            port: opts.port,
            source: e.into(),
        })
    };
    let addr = UnixAddr::new(&path).map_err(bind_err)?;
    bind(fd.as_raw_fd(), &addr).map_err(bind_err)?;
    let undo = |e: ListenError| {
        let _ = fs::remove_file(&path);
        cleanup(e)
    };
    fs::set_permissions(&path, fs::Permissions::from_mode(opts.permissions & 0o777)).map_err(
        |source| {
            undo(ListenError::Chmod {
                path: path.clone(),
                source,
            })
        },
    )?;
    listen(&fd, backlog_of(opts.backlog)).map_err(|e| {
        undo(ListenError::Listen {
            family: "Unix",
            addr: desc.clone(),
            source: e.into(),
        })
    })?;
    tracing::info!("listening on Unix socket \"{desc}\"");
    Ok(UnixListenSocket {
        fd,
        socket_path: path,
        lock_path: lock,
    })
}

/// Every listen socket of a server, and the files to remove when it stops.
#[derive(Debug)]
pub struct ListenSockets {
    fds: Vec<OwnedFd>,
    files: Vec<PathBuf>,
    owner_pid: u32,
}

/// The settings [`ListenSockets::open`] needs.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// `listen_addresses` (e.g. `localhost`, `*`, `127.0.0.1, ::1`; empty: no TCP).
    pub listen_addresses: String,
    /// `port`.
    pub port: u16,
    /// `unix_socket_directories` (comma list; empty: no Unix socket).
    pub unix_socket_directories: String,
    /// `unix_socket_permissions`.
    pub unix_socket_permissions: u32,
    /// The data directory (for the lock files).
    pub data_dir: PathBuf,
    /// Listen queue length.
    pub backlog: i32,
}

impl ListenSockets {
    /// Opens the TCP and Unix sockets PostgreSQL's `PostmasterMain` would. As there, failures
    /// of single entries are logged and skipped, a socket lock file held by a live process (or
    /// empty, or bogus) is an error, and a non-empty list that yields nothing is an error. On
    /// error nothing is left behind.
    pub fn open(cfg: &ListenConfig) -> Result<ListenSockets, ListenError> {
        let mut me = ListenSockets {
            fds: listen_tcp_with_backlog(&cfg.listen_addresses, cfg.port, cfg.backlog)?,
            files: Vec::new(),
            owner_pid: std::process::id(),
        };
        let dirs = guc_list("unix_socket_directories", &cfg.unix_socket_directories)?;
        let opts = UnixSocketOptions {
            port: cfg.port,
            permissions: cfg.unix_socket_permissions,
            data_dir: cfg.data_dir.clone(),
            backlog: cfg.backlog,
        };
        let mut unix_ok = 0;
        for d in &dirs {
            match listen_unix(Path::new(d), &opts) {
                Ok(u) => {
                    me.fds.push(u.fd);
                    me.files.push(u.socket_path);
                    me.files.push(u.lock_path);
                    unix_ok += 1;
                }
                // Another server's (or a crashed start's) lock file is FATAL in PostgreSQL,
                // not a directory to skip: the sockets already opened are closed and their
                // files removed when `me` is dropped.
                Err(
                    e @ (ListenError::LockFileExists { .. }
                    | ListenError::LockFileEmpty { .. }
                    | ListenError::LockFileBogus { .. }),
                ) => return Err(e),
                Err(e) => match e.hint() {
                    Some(h) => tracing::warn!("{e}\nHINT:  {h}"),
                    None => tracing::warn!("{e}"),
                },
            }
        }
        if !dirs.is_empty() && unix_ok == 0 {
            return Err(ListenError::NoUnixSockets);
        }
        Ok(me)
    }

    /// Adds a socket opened elsewhere; `files` are removed with the others.
    pub fn push(&mut self, fd: OwnedFd, files: Vec<PathBuf>) {
        self.fds.push(fd);
        self.files.extend(files);
    }

    /// An empty set, owned by the calling process.
    pub fn new() -> Self {
        ListenSockets {
            fds: Vec::new(),
            files: Vec::new(),
            owner_pid: std::process::id(),
        }
    }

    /// The listening sockets.
    pub fn fds(&self) -> &[OwnedFd] {
        &self.fds
    }

    /// The socket and lock files created.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Closes the sockets (e.g. in a freshly forked child) without touching the files.
    pub fn close_in_child(mut self) {
        self.files.clear();
        self.fds.clear();
    }

    /// Removes the socket and lock files (PostgreSQL's `RemoveSocketFiles` and the lock
    /// files' exit callbacks). Does nothing in any process but the creator.
    pub fn remove_files(&mut self) {
        if std::process::id() != self.owner_pid {
            self.files.clear();
            return;
        }
        for f in self.files.drain(..) {
            let _ = fs::remove_file(&f);
        }
    }
}

impl Default for ListenSockets {
    fn default() -> Self {
        ListenSockets::new()
    }
}

impl Drop for ListenSockets {
    fn drop(&mut self) {
        self.remove_files();
    }
}

/// Accepts one connection if one is waiting (the listen socket is non-blocking). The new
/// socket is close-on-exec and blocking. `Ok(None)`: nothing to accept now (including a
/// client that gave up before we got to it).
pub fn accept_nonblocking(listener: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    use nix::errno::Errno;
    loop {
        match accept4(listener.as_fd().as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            // SAFETY: accept4 just returned this descriptor; nothing else owns it.
            Ok(fd) => return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN | Errno::ECONNABORTED) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Tells a client whose backend could not be forked why, as well as can be done before the
/// client has said anything (PostgreSQL's `report_fork_failure_to_client`): one unframed
/// `E` + text + newline, which libpq shows as the error. Best effort: a full socket buffer or
/// a vanished client is ignored, and nothing waits.
pub fn report_fork_failure(client: BorrowedFd<'_>, err: &io::Error) {
    use nix::sys::socket::{send, MsgFlags};
    let text = format!("Ecould not fork new process for connection: {err}\n");
    let _ = send(
        client.as_raw_fd(),
        text.as_bytes(),
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
    );
}
