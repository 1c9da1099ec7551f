//! Client authentication (PostgreSQL's `libpq/auth.c` `ClientAuthentication` and the role
//! checks of `InitializeSessionUserId`): pg_hba.conf's first matching rule picks the method,
//! the method's exchange runs over the connection, then the role must exist and may log in.
//!
//! ```text
//!  data_directory unset ─► trust everyone as a superuser (a bare tcop server, e.g. in tests)
//!  hba::load_active ─► HbaFile::check(peer address, database, user)
//!     none   ─► FATAL 28000 no pg_hba.conf entry for host …
//!     reject ─► FATAL 28000 pg_hba.conf rejects connection for host …
//!     trust  ─► ok
//!     peer   ─► SO_PEERCRED uid ─► OS user name ─► = role, or pg_ident.conf map
//!     password ─► AuthenticationCleartextPassword ─► PasswordMessage ─► plain_crypt_verify
//!     md5    ─► role secret is md5 ? AuthenticationMD5Password : SCRAM (PostgreSQL 18)
//!     scram-sha-256 ─► AuthenticationSASL ─► SASLInitialResponse ─► SASLContinue ─►
//!                      SASLResponse ─► SASLFinal   (a mock exchange for unknown roles)
//!     cert   ─► (hostssl) like trust, then the certificate check below
//!  clientcert=verify-ca|full, cert: ssl_ca_file loaded (F0000), a verified certificate (28000);
//!     verify-full, cert: CN (or DN, clientname=DN) = role or pg_ident map, else the method's FATAL
//!  authid: role exists (28000), rolcanlogin (28000) ─► AuthenticationOk
//! ```
//!
//! Failed password checks are 28P01 `password authentication failed for user "x"` whatever
//! the reason (no such role, no password, expired, wrong password); the reason goes to the
//! server log only, with the matched pg_hba.conf line, as in PostgreSQL.

use crate::sys::{self, Pending};
use crate::wait::BackendWait;
use pgipc_authid::{now_micros, Authid, Role};
use pgipc_guc::Settings;
use pgipc_hba::{
    AuthMethod, Client, ClientAddr, HbaLine, HbaPaths, IdentFile, NoGroups, ParseOptions,
};
use pgipc_libpq::scram::{
    scram_mechanisms, scram_mock_secret, strong_random, SaslStep, ScramExchange, ScramSecret,
};
use pgipc_libpq::{
    auth_message_limit, get_password_type, md5_crypt_verify, parse_password_message,
    parse_sasl_initial_response, plain_crypt_verify, AuthRequest, Conn, ErrorFields, PasswordType,
    ReadError, Severity, StartupPacket,
};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

/// How authentication ended badly.
#[derive(Debug)]
pub(crate) enum AuthFailure {
    /// FATAL to the client (and the log).
    Report(Box<ErrorFields>),
    /// The connection ends without a word to the client (EOF, timeout, SIGTERM), after the
    /// given log line, if any.
    Silent(Option<String>),
}

/// Who the session belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    /// The role is a superuser.
    pub(crate) superuser: bool,
    /// The role's OID, which the backend publishes in its PGPROC (`roleId`).
    pub(crate) role_oid: u32,
    /// `rolconnlimit` (-1: no limit).
    pub(crate) connection_limit: i32,
    /// Every superuser role's OID, to judge other backends' owners.
    pub(crate) superuser_roles: Vec<u32>,
}

type BConn<'s> = Conn<'s, BackendWait<'s>>;

fn fatal(code: &str, message: impl Into<String>) -> AuthFailure {
    AuthFailure::Report(Box::new(ErrorFields::new(Severity::Fatal, code, message)))
}

/// Where the connection comes from, as PostgreSQL names it in messages.
#[derive(Debug, Clone, Copy)]
struct Peer {
    addr: ClientAddr,
}

impl Peer {
    fn host_text(&self) -> String {
        match self.addr {
            ClientAddr::Local => "[local]".into(),
            ClientAddr::Host { addr, .. } => match addr {
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map(|v4| v4.to_string())
                    .unwrap_or_else(|| v6.to_string()),
                v4 => v4.to_string(),
            },
        }
    }

    fn encryption_text(&self) -> &'static str {
        match self.addr {
            ClientAddr::Host { ssl: true, .. } => "SSL encryption",
            _ => "no encryption",
        }
    }
}

fn peer_of(conn: &BConn<'_>) -> ClientAddr {
    let ssl = conn.is_tls();
    use nix::sys::socket::{getpeername, SockaddrLike, SockaddrStorage};
    use std::os::fd::AsRawFd;
    let Ok(sa) = getpeername::<SockaddrStorage>(conn.socket().as_raw_fd()) else {
        return ClientAddr::Local;
    };
    if let Some(v4) = sa.as_sockaddr_in() {
        return ClientAddr::Host {
            addr: IpAddr::V4(v4.ip()),
            ssl,
        };
    }
    if let Some(v6) = sa.as_sockaddr_in6() {
        return ClientAddr::Host {
            addr: IpAddr::V6(v6.ip()),
            ssl,
        };
    }
    let _ = sa.family();
    ClientAddr::Local
}

/// The server's interface addresses and netmasks (for `samehost` / `samenet`).
fn interface_addresses() -> Vec<(IpAddr, IpAddr)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in addrs {
        let (Some(addr), Some(mask)) = (a.address, a.netmask) else {
            continue;
        };
        if let (Some(x), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
            out.push((IpAddr::V4(x.ip()), IpAddr::V4(m.ip())));
        } else if let (Some(x), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
            out.push((IpAddr::V6(x.ip()), IpAddr::V6(m.ip())));
        }
    }
    out
}

/// Reads one authentication message (`p`), PostgreSQL-style: a wrong type is FATAL, EOF and
/// the timeout end the connection silently.
fn read_auth(
    conn: &mut BConn<'_>,
    deadline: Instant,
    expected: &str,
) -> Result<Vec<u8>, AuthFailure> {
    loop {
        let err = match conn.flush(Some(deadline)) {
            Ok(()) => match conn.read_message_with(Some(deadline), auth_message_limit) {
                Ok((_, body)) => return Ok(body),
                Err(e) => e,
            },
            Err(e) => e,
        };
        match err {
            ReadError::Interrupted => {
                if sys::peek(Pending::Die) || conn.waiter_mut().postmaster_died {
                    return Err(AuthFailure::Silent(None));
                }
            }
            ReadError::InvalidMessageType(ty) => {
                return Err(fatal(
                    "08P01",
                    format!("expected {expected} response, got message type {ty}"),
                ))
            }
            ReadError::TimedOut => {
                return Err(AuthFailure::Silent(Some(
                    "FATAL:  canceling authentication due to timeout".into(),
                )))
            }
            ReadError::InvalidLength => {
                return Err(AuthFailure::Silent(Some(
                    "LOG:  invalid message length".into(),
                )))
            }
            ReadError::Eof | ReadError::UnexpectedEof | ReadError::Io(_) => {
                return Err(AuthFailure::Silent(None))
            }
        }
    }
}

/// The settings-derived pieces authentication needs.
struct AuthSettings {
    data_dir: PathBuf,
    paths: HbaPaths,
    password_encryption: PasswordType,
    scram_iterations: u32,
}

fn auth_settings(settings: &Settings) -> Option<AuthSettings> {
    let data_dir = settings.show("data_directory").ok()?;
    if data_dir.is_empty() {
        return None;
    }
    let data_dir = PathBuf::from(data_dir);
    let get = |n: &str| settings.show(n).unwrap_or_default();
    let paths = HbaPaths::new(&data_dir, &get("hba_file"), &get("ident_file"));
    Some(AuthSettings {
        data_dir,
        paths,
        password_encryption: if get("password_encryption") == "md5" {
            PasswordType::Md5
        } else {
            PasswordType::ScramSha256
        },
        scram_iterations: settings
            .int("scram_iterations")
            .clamp(1, i64::from(u32::MAX)) as u32,
    })
}

/// The whole of client authentication; on success AuthenticationOk is queued.
pub(crate) fn client_authentication(
    conn: &mut BConn<'_>,
    settings: &Settings,
    packet: &StartupPacket,
    deadline: Instant,
) -> Result<Authenticated, AuthFailure> {
    let Some(cfg) = auth_settings(settings) else {
        // No data directory: the bare server of tcop's own tests trusts everyone.
        conn.out().auth_request(AuthRequest::Ok);
        return Ok(Authenticated {
            superuser: true,
            role_oid: pgipc_sysviews::BOOTSTRAP_SUPERUSERID,
            connection_limit: -1,
            superuser_roles: vec![pgipc_sysviews::BOOTSTRAP_SUPERUSERID],
        });
    };
    let opts = ParseOptions {
        ssl_enabled: settings.bool("ssl"),
    };
    // Preloaded by the postmaster and inherited when current, read now otherwise.
    let kept =
        crate::auth_load::rules_and_roles(&cfg.data_dir, &cfg.paths, opts).map_err(
            |e| match e {
                crate::auth_load::LoadError::Rules(e) => {
                    for l in e.line_errors() {
                        tracing::info!("LOG:  {l}");
                    }
                    fatal(
                        "XX000",
                        format!("could not load {}", cfg.paths.hba.display()),
                    )
                }
                crate::auth_load::LoadError::Roles(e) => {
                    fatal("XX000", format!("could not read the role catalog: {e}"))
                }
            },
        )?;
    let (hba, ident, authid) = kept
        .parts()
        .ok_or_else(|| fatal("XX000", "could not load the authentication rules"))?;
    let peer = Peer {
        addr: peer_of(conn),
    };
    let user = packet.user.as_str();
    let database = packet.database.as_str();
    let needs_ifaddrs = hba.lines.iter().any(|l| {
        matches!(
            l.address,
            Some(pgipc_hba::Address::SameHost | pgipc_hba::Address::SameNet)
        )
    });
    let local_addrs = if needs_ifaddrs {
        interface_addresses()
    } else {
        Vec::new()
    };
    let client = Client {
        addr: peer.addr,
        database,
        user,
        replication: false,
        local_addrs: &local_addrs,
    };
    let Some(line) = hba.check(&client, &NoGroups) else {
        return Err(fatal(
            "28000",
            format!(
                "no pg_hba.conf entry for host \"{}\", user \"{user}\", database \"{database}\", {}",
                peer.host_text(),
                peer.encryption_text()
            ),
        ));
    };
    let matched = || {
        format!(
            "Connection matched file \"{}\" line {}: \"{}\"",
            hba.path.display(),
            line.line_number,
            line.raw.trim()
        )
    };
    client_certificate_present(conn, settings, line)?;
    let role = authid.get(user);
    let password_failed = |reason: Option<String>| {
        let msg = format!("password authentication failed for user \"{user}\"");
        match reason {
            Some(r) => tracing::info!("FATAL:  {msg}\nDETAIL:  {r}\n{}", matched()),
            None => tracing::info!("FATAL:  {msg}\nDETAIL:  {}", matched()),
        }
        fatal("28P01", msg)
    };
    match line.method {
        // `cert` is `trust` plus the certificate check below (PostgreSQL's uaCert).
        AuthMethod::Trust | AuthMethod::Cert => {}
        AuthMethod::Reject => {
            return Err(fatal(
                "28000",
                format!(
                    "pg_hba.conf rejects connection for host \"{}\", user \"{user}\", database \"{database}\", {}",
                    peer.host_text(),
                    peer.encryption_text()
                ),
            ))
        }
        AuthMethod::Peer => peer_auth(conn, line, ident, user)?,
        AuthMethod::Password => {
            conn.out().auth_request(AuthRequest::CleartextPassword);
            let body = read_auth(conn, deadline, "password")?;
            let Some(pw) = parse_password_message(&body) else {
                return Err(fatal("08P01", "invalid password packet size"));
            };
            if pw.is_empty() {
                return Err(AuthFailure::Silent(Some(
                    "LOG:  empty password returned by client".into(),
                )));
            }
            let secret = shadow(role, user);
            match secret {
                Ok(s) if plain_crypt_verify(user, s, pw) => {}
                Ok(_) => return Err(password_failed(None)),
                Err(reason) => return Err(password_failed(Some(reason))),
            }
        }
        AuthMethod::Md5 | AuthMethod::ScramSha256 => {
            let secret = shadow(role, user);
            let kind = match &secret {
                Ok(s) => get_password_type(s),
                Err(_) => cfg.password_encryption,
            };
            let ok = if line.method == AuthMethod::Md5 && kind == PasswordType::Md5 {
                md5_auth(conn, deadline, secret.as_ref().ok().copied())?
            } else {
                let scram = secret
                    .as_ref()
                    .ok()
                    .and_then(|s| ScramSecret::parse(s));
                let reason = match (&secret, &scram) {
                    (Err(r), _) => Some(r.clone()),
                    (Ok(_), None) => Some(format!(
                        "User \"{user}\" does not have a valid SCRAM secret."
                    )),
                    _ => None,
                };
                let cbind = if conn.is_tls() {
                    crate::tls::current(settings).ok().map(|l| l.end_point.clone())
                } else {
                    None
                };
                let ok = sasl_auth(
                    conn,
                    deadline,
                    user,
                    scram,
                    authid,
                    cfg.scram_iterations,
                    cbind,
                )?;
                if !ok {
                    return Err(password_failed(reason));
                }
                true
            };
            if !ok {
                return Err(password_failed(secret.err()));
            }
        }
    }
    check_cert_auth(conn, line, ident, user)?;
    // InitializeSessionUserId.
    let Some(role) = role else {
        return Err(fatal("28000", format!("role \"{user}\" does not exist")));
    };
    if !role.login {
        return Err(fatal(
            "28000",
            format!("role \"{user}\" is not permitted to log in"),
        ));
    }
    conn.out().auth_request(AuthRequest::Ok);
    Ok(Authenticated {
        superuser: role.superuser,
        role_oid: role.oid,
        connection_limit: role.connection_limit,
        superuser_roles: authid
            .roles()
            .iter()
            .filter(|r| r.superuser)
            .map(|r| r.oid)
            .collect(),
    })
}

/// `clientcert=` (and every `cert` line): the server must have loaded `ssl_ca_file`, and the
/// client must have sent a certificate, which the handshake verified against it (PostgreSQL's
/// checks at the top of `ClientAuthentication`).
fn client_certificate_present(
    conn: &BConn<'_>,
    settings: &Settings,
    line: &HbaLine,
) -> Result<(), AuthFailure> {
    if line.clientcert == pgipc_hba::ClientCert::Off {
        return Ok(());
    }
    let ca_loaded = crate::tls::current(settings).is_ok_and(|l| l.ca_loaded);
    if !ca_loaded {
        return Err(fatal(
            "F0000",
            "client certificates can only be checked if a root certificate store is available",
        ));
    }
    if conn.tls().and_then(|t| t.peer_certificates()).is_none() {
        return Err(fatal(
            "28000",
            "connection requires a valid client certificate",
        ));
    }
    Ok(())
}

/// PostgreSQL's `auth_failed` report for a method whose check failed after the exchange.
fn method_failed(method: AuthMethod, user: &str) -> AuthFailure {
    match method {
        AuthMethod::Password | AuthMethod::Md5 | AuthMethod::ScramSha256 => fatal(
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        ),
        AuthMethod::Cert => fatal(
            "28000",
            format!("certificate authentication failed for user \"{user}\""),
        ),
        AuthMethod::Trust => fatal(
            "28000",
            format!("\"trust\" authentication failed for user \"{user}\""),
        ),
        AuthMethod::Peer => fatal(
            "28000",
            format!("Peer authentication failed for user \"{user}\""),
        ),
        AuthMethod::Reject => fatal(
            "28000",
            format!("authentication failed for user \"{user}\": host rejected"),
        ),
    }
}

/// `cert`, and `clientcert=verify-full` after any method (PostgreSQL's `CheckCertAuth`): the
/// certificate's CN (or RFC 2253 DN with `clientname=DN`) must be the user name, or be mapped
/// to it by the line's pg_ident.conf map.
fn check_cert_auth(
    conn: &BConn<'_>,
    line: &HbaLine,
    ident: &IdentFile,
    user: &str,
) -> Result<(), AuthFailure> {
    if line.clientcert != pgipc_hba::ClientCert::VerifyFull && line.method != AuthMethod::Cert {
        return Ok(());
    }
    let cert = conn.tls_status().and_then(|t| t.client);
    let name = cert.and_then(|c| match line.clientname {
        pgipc_hba::ClientName::Cn => c.common_name,
        pgipc_hba::ClientName::Dn => Some(c.subject_rfc2253),
    });
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        tracing::info!(
            "LOG:  certificate authentication failed for user \"{user}\": client certificate contains no user name"
        );
        return Err(method_failed(line.method, user));
    };
    let ok = match &line.usermap {
        None => {
            if name != user {
                tracing::info!(
                    "LOG:  provided user name ({user}) and authenticated user name ({name}) do not match"
                );
            }
            name == user
        }
        Some(map) => {
            let ok = ident.check_usermap(map, user, &name, &NoGroups);
            if !ok {
                tracing::info!(
                    "LOG:  no match in usermap \"{map}\" for user \"{user}\" authenticated as \"{name}\""
                );
            }
            ok
        }
    };
    if ok {
        return Ok(());
    }
    if line.method != AuthMethod::Cert {
        let what = match line.clientname {
            pgipc_hba::ClientName::Cn => "CN",
            pgipc_hba::ClientName::Dn => "DN",
        };
        tracing::info!(
            "LOG:  certificate validation (clientcert=verify-full) failed for user \"{user}\": {what} mismatch"
        );
    }
    Err(method_failed(line.method, user))
}

/// The role's secret, or the server-log reason there is none (PostgreSQL's
/// `get_role_password`).
fn shadow<'r>(role: Option<&'r Role>, user: &str) -> Result<&'r str, String> {
    match role {
        None => Err(format!("Role \"{user}\" does not exist.")),
        Some(r) => r.password_for_auth(now_micros()),
    }
}

/// `peer`: the OS user at the other end of the Unix socket must be the role, or be mapped to
/// it by pg_ident.conf.
fn peer_auth(
    conn: &BConn<'_>,
    line: &HbaLine,
    ident: &IdentFile,
    user: &str,
) -> Result<(), AuthFailure> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let failed = || {
        fatal(
            "28000",
            format!("Peer authentication failed for user \"{user}\""),
        )
    };
    let creds = match getsockopt(&conn.socket(), PeerCredentials) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!("LOG:  could not get peer credentials: {e}");
            return Err(failed());
        }
    };
    let uid = nix::unistd::Uid::from_raw(creds.uid());
    let system_user = match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => {
            tracing::info!(
                "LOG:  could not look up local user ID {}: user does not exist",
                creds.uid()
            );
            return Err(failed());
        }
    };
    let ok = match &line.usermap {
        None => {
            if system_user != user {
                tracing::info!(
                    "LOG:  provided user name ({user}) and authenticated user name ({system_user}) do not match"
                );
            }
            system_user == user
        }
        Some(map) => {
            let ok = ident.check_usermap(map, user, &system_user, &NoGroups);
            if !ok {
                tracing::info!(
                    "LOG:  no match in usermap \"{map}\" for user \"{user}\" authenticated as \"{system_user}\""
                );
            }
            ok
        }
    };
    if ok {
        Ok(())
    } else {
        Err(failed())
    }
}

/// The MD5 challenge; `secret` `None` runs it against nothing (it fails).
fn md5_auth(
    conn: &mut BConn<'_>,
    deadline: Instant,
    secret: Option<&str>,
) -> Result<bool, AuthFailure> {
    let Some(salt) = strong_random(4) else {
        return Err(fatal("XX000", "could not generate random MD5 salt"));
    };
    let salt: [u8; 4] = [salt[0], salt[1], salt[2], salt[3]];
    conn.out().auth_request(AuthRequest::Md5Password(salt));
    let body = read_auth(conn, deadline, "password")?;
    let Some(resp) = parse_password_message(&body) else {
        return Err(fatal("08P01", "invalid password packet size"));
    };
    if resp.is_empty() {
        return Err(AuthFailure::Silent(Some(
            "LOG:  empty password returned by client".into(),
        )));
    }
    Ok(secret.is_some_and(|s| md5_crypt_verify(s, resp, &salt)))
}

/// The SASL (SCRAM-SHA-256) exchange; `Ok(false)`: the password was wrong (or the exchange
/// ran on a mock secret).
fn sasl_auth(
    conn: &mut BConn<'_>,
    deadline: Instant,
    user: &str,
    secret: Option<ScramSecret>,
    authid: &Authid,
    iterations: u32,
    cbind: Option<Vec<u8>>,
) -> Result<bool, AuthFailure> {
    let tls = cbind.is_some();
    conn.out()
        .auth_request(AuthRequest::Sasl(scram_mechanisms(tls)));
    let scram_err = |e: pgipc_libpq::scram::ScramError| {
        let mut f = ErrorFields::new(Severity::Fatal, e.code, e.message);
        if let Some(d) = e.detail {
            f = f.with_detail(d);
        }
        AuthFailure::Report(Box::new(f))
    };
    let body = read_auth(conn, deadline, "SASL")?;
    let (mech, data) =
        parse_sasl_initial_response(&body).map_err(|e| fatal(e.sqlstate(), e.to_string()))?;
    let mock = scram_mock_secret(user, &authid.mock_nonce(), iterations);
    let mut ex = ScramExchange::new(&mech, secret, mock, cbind).map_err(scram_err)?;
    let mut step = ex.exchange(data).map_err(scram_err)?;
    loop {
        match step {
            SaslStep::Continue(data) => {
                conn.out().auth_request(AuthRequest::SaslContinue(&data));
                let body = read_auth(conn, deadline, "SASL")?;
                step = ex.exchange(Some(&body)).map_err(scram_err)?;
            }
            SaslStep::Success(data) => {
                conn.out().auth_request(AuthRequest::SaslFinal(&data));
                return Ok(true);
            }
            SaslStep::Failure => return Ok(false),
        }
    }
}
