//! pg_hba.conf: one rule per line, the first matching rule decides (PostgreSQL's
//! `parse_hba_line`, `check_hba`, `fill_hba_view`).

use crate::tokenize::{tokenize_file, Token, TokenizedLine};
use crate::{ConfigError, HbaError};
use std::net::IpAddr;
use std::path::Path;

/// The first field of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnType {
    /// `local`: the Unix-domain socket.
    Local,
    /// `host`: TCP, with or without TLS.
    Host,
    /// `hostssl`: TCP under TLS.
    HostSsl,
    /// `hostnossl`: TCP without TLS.
    HostNoSsl,
    /// `hostgssenc`: TCP under GSSAPI encryption (never granted by this server).
    HostGssEnc,
    /// `hostnogssenc`: TCP without GSSAPI encryption (every TCP connection here).
    HostNoGssEnc,
}

impl ConnType {
    /// The keyword.
    pub fn name(self) -> &'static str {
        match self {
            ConnType::Local => "local",
            ConnType::Host => "host",
            ConnType::HostSsl => "hostssl",
            ConnType::HostNoSsl => "hostnossl",
            ConnType::HostGssEnc => "hostgssenc",
            ConnType::HostNoGssEnc => "hostnogssenc",
        }
    }
}

/// The address field of a `host*` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `all`.
    All,
    /// `samehost`: any of the server's own addresses.
    SameHost,
    /// `samenet`: any address in a subnet the server is directly on.
    SameNet,
    /// An address and a mask (from CIDR or from a separate mask field).
    Ip {
        /// The address as written.
        addr: IpAddr,
        /// The mask.
        mask: IpAddr,
    },
    /// A host name. Matching one needs reverse and forward DNS look-ups, which this server
    /// does not make: such a rule never matches (documented in the crate opening).
    Hostname(String),
}

/// An authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `trust`.
    Trust,
    /// `reject`.
    Reject,
    /// `peer` (also `ident` on a `local` line, as PostgreSQL reads it).
    Peer,
    /// `password`: the password in clear text.
    Password,
    /// `md5`: MD5 challenge, or SCRAM when the role's secret is a SCRAM verifier.
    Md5,
    /// `scram-sha-256`.
    ScramSha256,
    /// `cert`: a client certificate verified against `ssl_ca_file` whose CN (or DN, with
    /// `clientname=DN`) is the user name or maps to it (`map=`); `hostssl` lines only.
    Cert,
}

impl AuthMethod {
    /// The keyword, as `pg_hba_file_rules.auth_method` shows it.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Trust => "trust",
            AuthMethod::Reject => "reject",
            AuthMethod::Peer => "peer",
            AuthMethod::Password => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Cert => "cert",
        }
    }
}

/// `clientname` of a `hostssl` rule: which part of the client certificate names the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientName {
    /// `CN` (the default): the subject's common name.
    #[default]
    Cn,
    /// `DN`: the whole subject, in RFC 2253 form.
    Dn,
}

/// `clientcert` of a `hostssl` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCert {
    /// Not asked for.
    Off,
    /// `verify-ca`: a certificate signed by `ssl_ca_file`.
    VerifyCa,
    /// `verify-full`: that, and its CN is the user name.
    VerifyFull,
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaLine {
    /// Line of the file (first line of a continued line).
    pub line_number: usize,
    /// The line as written.
    pub raw: String,
    /// Connection type.
    pub conn_type: ConnType,
    /// Database field.
    pub databases: Vec<Token>,
    /// User field.
    pub roles: Vec<Token>,
    /// Address (`None` on `local` lines).
    pub address: Option<Address>,
    /// Method.
    pub method: AuthMethod,
    /// `map=` for `peer`: a pg_ident.conf map.
    pub usermap: Option<String>,
    /// `clientcert=` (`verify-full` on every `cert` line).
    pub clientcert: ClientCert,
    /// `clientname=`.
    pub clientname: ClientName,
    /// Options as PostgreSQL's `gethba_options` lists them (`map=`, then `clientcert=`), for
    /// `pg_hba_file_rules.options`.
    pub options: Vec<String>,
}

/// What the parser needs to know about the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// `ssl` is on (a `hostssl` line is otherwise reported as unable to match).
    pub ssl_enabled: bool,
}

/// A parsed pg_hba.conf: the rules, and every error with its line.
#[derive(Debug, Clone, Default)]
pub struct HbaFile {
    /// Path it was read from (for messages).
    pub path: std::path::PathBuf,
    /// The rules that parsed, in file order.
    pub lines: Vec<HbaLine>,
    /// Errors; a file with any is not loaded ([`load_hba`] refuses it).
    pub errors: Vec<ConfigError>,
    /// Warnings about lines that parsed but cannot match (`hostssl` without `ssl`); shown in
    /// `pg_hba_file_rules.error` too.
    pub warnings: Vec<ConfigError>,
}

/// A hint that goes with an error, as PostgreSQL's `errhint`.
fn err(line: &TokenizedLine, path: &Path, message: String, hint: Option<&str>) -> ConfigError {
    ConfigError {
        path: path.to_path_buf(),
        line_number: line.line_number,
        message,
        hint: hint.map(str::to_owned),
    }
}

/// Parses pg_hba.conf text (`path` names it in messages and anchors `@file` includes).
pub fn parse_hba(text: &str, path: &Path, opts: ParseOptions) -> HbaFile {
    let mut file = HbaFile {
        path: path.to_path_buf(),
        ..HbaFile::default()
    };
    for tl in tokenize_file(text, path) {
        match parse_hba_line(&tl, path, opts) {
            Ok((line, warning)) => {
                if let Some(w) = warning {
                    file.warnings.push(w);
                }
                file.lines.push(line);
            }
            Err(e) => file.errors.push(e),
        }
    }
    file
}

/// Reads and parses `path`; a file with an error is refused whole (PostgreSQL's
/// `load_hba`: "could not load pg_hba.conf" at start, "pg_hba.conf was not reloaded" on
/// SIGHUP — the caller keeps the rules it had).
pub fn load_hba(path: &Path, opts: ParseOptions) -> Result<HbaFile, HbaError> {
    let text = std::fs::read_to_string(path).map_err(|e| HbaError::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    let file = parse_hba(&text, path, opts);
    if !file.errors.is_empty() {
        return Err(HbaError::Invalid {
            path: path.to_path_buf(),
            errors: file.errors,
        });
    }
    Ok(file)
}

const METHODS_NOT_BUILT: &[&str] = &["gss", "sspi", "pam", "bsd", "ldap", "radius"];

fn parse_hba_line(
    tl: &TokenizedLine,
    path: &Path,
    opts: ParseOptions,
) -> Result<(HbaLine, Option<ConfigError>), ConfigError> {
    let e = |m: String, h: Option<&str>| err(tl, path, m, h);
    if let Some(m) = &tl.error {
        return Err(e(m.clone(), None));
    }
    let mut fields = tl.fields.iter();
    // Connection type.
    let f = fields.next().expect("a tokenized line has a field");
    if f.len() > 1 {
        return Err(e(
            "multiple values specified for connection type".into(),
            Some("Specify exactly one connection type per line."),
        ));
    }
    let conn_type = match f[0].text.as_str() {
        "local" => ConnType::Local,
        "host" => ConnType::Host,
        "hostssl" => ConnType::HostSsl,
        "hostnossl" => ConnType::HostNoSsl,
        "hostgssenc" => ConnType::HostGssEnc,
        "hostnogssenc" => ConnType::HostNoGssEnc,
        other => return Err(e(format!("invalid connection type \"{other}\""), None)),
    };
    let mut warning = None;
    if conn_type == ConnType::HostSsl && !opts.ssl_enabled {
        warning = Some(e(
            "hostssl record cannot match because SSL is disabled".into(),
            Some("Set \"ssl = on\" in postgresql.conf."),
        ));
    }
    let databases = fields
        .next()
        .ok_or_else(|| e("end-of-line before database specification".into(), None))?
        .clone();
    let roles = fields
        .next()
        .ok_or_else(|| e("end-of-line before role specification".into(), None))?
        .clone();
    let mut address = None;
    if conn_type != ConnType::Local {
        let f = fields
            .next()
            .ok_or_else(|| e("end-of-line before IP address specification".into(), None))?;
        if f.len() > 1 {
            return Err(e(
                "multiple values specified for host address".into(),
                Some("Specify one address range per line."),
            ));
        }
        let t = &f[0];
        address = Some(if t.is_keyword("all") {
            Address::All
        } else if t.is_keyword("samehost") {
            Address::SameHost
        } else if t.is_keyword("samenet") {
            Address::SameNet
        } else {
            let (host, cidr) = match t.text.split_once('/') {
                Some((h, c)) => (h, Some(c)),
                None => (t.text.as_str(), None),
            };
            match host.parse::<IpAddr>() {
                Ok(addr) => {
                    let mask = match cidr {
                        Some(bits) => cidr_mask(addr, bits).ok_or_else(|| {
                            e(format!("invalid CIDR mask in address \"{}\"", t.text), None)
                        })?,
                        None => {
                            let mf = fields.next().ok_or_else(|| {
                                e(
                                    "end-of-line before netmask specification".into(),
                                    Some(
                                        "Specify an address range in CIDR notation, or provide \
                                         a separate netmask.",
                                    ),
                                )
                            })?;
                            if mf.len() > 1 {
                                return Err(e(
                                    "multiple values specified for netmask".into(),
                                    None,
                                ));
                            }
                            let mask: IpAddr = mf[0].text.parse().map_err(|_| {
                                e(
                                    format!(
                                        "invalid IP mask \"{}\": Name or service not known",
                                        mf[0].text
                                    ),
                                    None,
                                )
                            })?;
                            if mask.is_ipv4() != addr.is_ipv4() {
                                return Err(e("IP address and mask do not match".into(), None));
                            }
                            mask
                        }
                    };
                    Address::Ip { addr, mask }
                }
                Err(_) if cidr.is_some() => {
                    if looks_like_hostname(host) {
                        return Err(e(
                            format!(
                                "specifying both host name and CIDR mask is invalid: \"{}\"",
                                t.text
                            ),
                            None,
                        ));
                    }
                    return Err(e(
                        format!("invalid IP address \"{host}\": Name or service not known"),
                        None,
                    ));
                }
                Err(_) => Address::Hostname(host.to_owned()),
            }
        });
    }
    // Method.
    let f = fields
        .next()
        .ok_or_else(|| e("end-of-line before authentication method".into(), None))?;
    if f.len() > 1 {
        return Err(e(
            "multiple values specified for authentication type".into(),
            Some("Specify exactly one authentication type per line."),
        ));
    }
    let m = f[0].text.as_str();
    let method = match m {
        "trust" => AuthMethod::Trust,
        "reject" => AuthMethod::Reject,
        "peer" => AuthMethod::Peer,
        // PostgreSQL reads `ident` on a local line as `peer`.
        "ident" if conn_type == ConnType::Local => AuthMethod::Peer,
        "password" => AuthMethod::Password,
        "md5" => AuthMethod::Md5,
        "scram-sha-256" => AuthMethod::ScramSha256,
        "cert" => AuthMethod::Cert,
        "ident" => {
            return Err(e(
                "invalid authentication method \"ident\": not supported by this build".into(),
                None,
            ))
        }
        other if METHODS_NOT_BUILT.contains(&other) => {
            return Err(e(
                format!("invalid authentication method \"{other}\": not supported by this build"),
                None,
            ))
        }
        other => {
            return Err(e(
                format!("invalid authentication method \"{other}\""),
                None,
            ))
        }
    };
    if method == AuthMethod::Peer && conn_type != ConnType::Local {
        return Err(e(
            "peer authentication is only supported on local sockets".into(),
            None,
        ));
    }
    if method == AuthMethod::Cert && conn_type != ConnType::HostSsl {
        return Err(e(
            "cert authentication is only supported on hostssl connections".into(),
            None,
        ));
    }
    // Options.
    let mut line = HbaLine {
        line_number: tl.line_number,
        raw: tl.raw.clone(),
        conn_type,
        databases,
        roles,
        address,
        method,
        usermap: None,
        clientcert: if method == AuthMethod::Cert {
            ClientCert::VerifyFull
        } else {
            ClientCert::Off
        },
        clientname: ClientName::Cn,
        options: Vec::new(),
    };
    for f in fields {
        for t in f {
            let Some((name, value)) = t.text.split_once('=') else {
                return Err(e(
                    format!("authentication option not in name=value format: {}", t.text),
                    None,
                ));
            };
            match name {
                "map" => {
                    if !matches!(method, AuthMethod::Peer | AuthMethod::Cert) {
                        return Err(e(
                            format!(
                                "authentication option \"{name}\" is only valid for \
                                 authentication methods ident, peer, gssapi, sspi, and cert"
                            ),
                            None,
                        ));
                    }
                    line.usermap = Some(value.to_owned());
                }
                "clientcert" => {
                    if conn_type != ConnType::HostSsl {
                        return Err(e(
                            "clientcert can only be configured for \"hostssl\" rows".into(),
                            None,
                        ));
                    }
                    line.clientcert = match value {
                        "verify-ca" if method == AuthMethod::Cert => {
                            return Err(e(
                                "clientcert only accepts \"verify-full\" when using \"cert\" \
                                 authentication"
                                    .into(),
                                None,
                            ))
                        }
                        "verify-ca" => ClientCert::VerifyCa,
                        "verify-full" => ClientCert::VerifyFull,
                        _ => {
                            return Err(e(
                                format!("invalid value for clientcert: \"{value}\""),
                                None,
                            ))
                        }
                    };
                }
                "clientname" => {
                    if conn_type != ConnType::HostSsl {
                        return Err(e(
                            "clientname can only be configured for \"hostssl\" rows".into(),
                            None,
                        ));
                    }
                    line.clientname = match value {
                        "CN" => ClientName::Cn,
                        "DN" => ClientName::Dn,
                        _ => {
                            return Err(e(
                                format!("invalid value for clientname: \"{value}\""),
                                None,
                            ))
                        }
                    };
                }
                _ => {
                    return Err(e(
                        format!("unrecognized authentication option name: \"{name}\""),
                        None,
                    ))
                }
            }
        }
    }
    // As PostgreSQL's gethba_options shows them: map, then clientcert (implied on cert lines).
    if let Some(m) = &line.usermap {
        line.options.push(format!("map={m}"));
    }
    match line.clientcert {
        ClientCert::Off => {}
        ClientCert::VerifyCa => line.options.push("clientcert=verify-ca".into()),
        ClientCert::VerifyFull => line.options.push("clientcert=verify-full".into()),
    }
    Ok((line, warning))
}

fn looks_like_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && s.chars().any(|c| c.is_ascii_alphabetic())
}

/// The mask of `bits` leading ones in `addr`'s family (`None`: not a number in range).
fn cidr_mask(addr: IpAddr, bits: &str) -> Option<IpAddr> {
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let n: u32 = bits.parse().ok()?;
    Some(match addr {
        IpAddr::V4(_) if n <= 32 => {
            let m = if n == 0 { 0 } else { u32::MAX << (32 - n) };
            IpAddr::V4(m.into())
        }
        IpAddr::V6(_) if n <= 128 => {
            let m = if n == 0 { 0 } else { u128::MAX << (128 - n) };
            IpAddr::V6(m.into())
        }
        _ => return None,
    })
}

/// Where a connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAddr {
    /// The Unix-domain socket.
    Local,
    /// TCP from `addr`; `ssl` when TLS is up.
    Host {
        /// The peer's address.
        addr: IpAddr,
        /// The connection is under TLS.
        ssl: bool,
    },
}

/// A connection asking for a rule.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// Where it comes from.
    pub addr: ClientAddr,
    /// Requested database.
    pub database: &'a str,
    /// Requested role.
    pub user: &'a str,
    /// A replication connection (only the `replication` keyword matches it).
    pub replication: bool,
    /// The server's own interface addresses with their netmasks (`samehost`, `samenet`).
    pub local_addrs: &'a [(IpAddr, IpAddr)],
}

/// Role membership, as the role catalog knows it: `is_member(role, group)`.
pub trait Membership {
    /// Whether `role` is a member of `group` (directly or not; a role is a member of itself).
    fn is_member(&self, role: &str, group: &str) -> bool;
}

/// Membership where every role is only a member of itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGroups;

impl Membership for NoGroups {
    fn is_member(&self, role: &str, group: &str) -> bool {
        role == group
    }
}

/// Normalises an IPv4-mapped IPv6 address to IPv4, so `::ffff:127.0.0.1` meets a 127/8 rule.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
        v4 => v4,
    }
}

fn masked_eq(a: IpAddr, b: IpAddr, mask: IpAddr) -> bool {
    match (canonical(a), b, mask) {
        (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(m)) => {
            u32::from(a) & u32::from(m) == u32::from(b) & u32::from(m)
        }
        (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(m)) => {
            u128::from(a) & u128::from(m) == u128::from(b) & u128::from(m)
        }
        _ => false,
    }
}

fn check_db(tokens: &[Token], c: &Client<'_>, groups: &dyn Membership) -> bool {
    tokens.iter().any(|t| {
        if c.replication {
            // A replication connection matches only the keyword.
            return t.is_keyword("replication");
        }
        if t.is_keyword("all") {
            true
        } else if t.is_keyword("sameuser") {
            c.database == c.user
        } else if t.is_keyword("samerole") || t.is_keyword("samegroup") {
            groups.is_member(c.user, c.database)
        } else if t.is_keyword("replication") {
            false
        } else {
            t.text == c.database
        }
    })
}

fn check_role(tokens: &[Token], user: &str, groups: &dyn Membership) -> bool {
    tokens.iter().any(|t| {
        if t.is_keyword("all") {
            true
        } else if !t.quoted && t.text.starts_with('+') {
            groups.is_member(user, &t.text[1..])
        } else {
            t.text == user
        }
    })
}

fn check_address(a: &Address, peer: IpAddr, local: &[(IpAddr, IpAddr)]) -> bool {
    match a {
        Address::All => true,
        Address::Ip { addr, mask } => masked_eq(peer, *addr, *mask),
        Address::SameHost => local.iter().any(|(l, _)| canonical(*l) == canonical(peer)),
        Address::SameNet => local
            .iter()
            .any(|(l, m)| masked_eq(peer, canonical(*l), *m)),
        Address::Hostname(_) => false,
    }
}

impl HbaFile {
    /// The first rule that matches `c` (PostgreSQL's `check_hba`); `None` means PostgreSQL's
    /// implicit reject: "no pg_hba.conf entry for …".
    pub fn check(&self, c: &Client<'_>, groups: &dyn Membership) -> Option<&HbaLine> {
        self.lines.iter().find(|l| {
            let conn_ok = match (l.conn_type, c.addr) {
                (ConnType::Local, ClientAddr::Local) => true,
                (ConnType::Local, _) | (_, ClientAddr::Local) => false,
                (ConnType::Host | ConnType::HostNoGssEnc, _) => true,
                (ConnType::HostSsl, ClientAddr::Host { ssl, .. }) => ssl,
                (ConnType::HostNoSsl, ClientAddr::Host { ssl, .. }) => !ssl,
                (ConnType::HostGssEnc, _) => false,
            };
            if !conn_ok {
                return false;
            }
            if let (Some(a), ClientAddr::Host { addr, .. }) = (&l.address, c.addr) {
                if !check_address(a, addr, c.local_addrs) {
                    return false;
                }
            }
            check_db(&l.databases, c, groups) && check_role(&l.roles, c.user, groups)
        })
    }
}

/// One row of the `pg_hba_file_rules` view. Error rows have only `file_name`, `line_number`
/// and `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaRuleRow {
    /// `rule_number`: position among the rules that parsed (NULL for an error row).
    pub rule_number: Option<i32>,
    /// `file_name`.
    pub file_name: String,
    /// `line_number`.
    pub line_number: i32,
    /// `type`.
    pub conn_type: Option<String>,
    /// `database` (text[]).
    pub database: Option<Vec<String>>,
    /// `user_name` (text[]).
    pub user_name: Option<Vec<String>>,
    /// `address`.
    pub address: Option<String>,
    /// `netmask`.
    pub netmask: Option<String>,
    /// `auth_method`.
    pub auth_method: Option<String>,
    /// `options` (text[]).
    pub options: Option<Vec<String>>,
    /// `error`.
    pub error: Option<String>,
}

/// The rows of `pg_hba_file_rules` for the file at `path` as it is on disk now (PostgreSQL
/// reads the file anew for the view too, so it shows errors a reload would refuse). A file
/// that cannot be read is one error row at line 0.
pub fn hba_file_rules(path: &Path, opts: ParseOptions) -> Vec<HbaRuleRow> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return vec![HbaRuleRow {
                rule_number: None,
                file_name: path.display().to_string(),
                line_number: 0,
                conn_type: None,
                database: None,
                user_name: None,
                address: None,
                netmask: None,
                auth_method: None,
                options: None,
                error: Some(format!(
                    "could not open file \"{}\": {}",
                    path.display(),
                    crate::io_text(&e)
                )),
            }]
        }
    };
    let file_name = path.display().to_string();
    let mut rows = Vec::new();
    let mut rule = 0;
    for tl in tokenize_file(&text, path) {
        match parse_hba_line(&tl, path, opts) {
            Ok((l, warning)) => {
                rule += 1;
                let (address, netmask) = match &l.address {
                    None => (None, None),
                    Some(Address::All) => (Some("all".into()), None),
                    Some(Address::SameHost) => (Some("samehost".into()), None),
                    Some(Address::SameNet) => (Some("samenet".into()), None),
                    Some(Address::Hostname(h)) => (Some(h.clone()), None),
                    Some(Address::Ip { addr, mask }) => {
                        (Some(addr.to_string()), Some(mask.to_string()))
                    }
                };
                let texts = |ts: &[Token]| ts.iter().map(|t| t.text.clone()).collect();
                rows.push(HbaRuleRow {
                    rule_number: Some(rule),
                    file_name: file_name.clone(),
                    line_number: l.line_number as i32,
                    conn_type: Some(l.conn_type.name().into()),
                    database: Some(texts(&l.databases)),
                    user_name: Some(texts(&l.roles)),
                    address,
                    netmask,
                    auth_method: Some(l.method.name().into()),
                    options: if l.options.is_empty() {
                        None
                    } else {
                        Some(l.options.clone())
                    },
                    error: warning.map(|w| w.message),
                });
            }
            Err(e) => rows.push(HbaRuleRow {
                rule_number: None,
                file_name: file_name.clone(),
                line_number: e.line_number as i32,
                conn_type: None,
                database: None,
                user_name: None,
                address: None,
                netmask: None,
                auth_method: None,
                options: None,
                error: Some(e.message),
            }),
        }
    }
    rows
}
