//! The role file: load, crash-safe save, refresh when another process saved, and the role
//! commands applied to it (PostgreSQL's `commands/user.c` over `pg_authid`).

use crate::command::{RoleCommand, RoleOptions};
use crate::{AuthidError, Notice, RoleError};
use pgipc_libpq::{encrypt_password, get_password_type, PasswordType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The role file, relative to the data directory.
pub const AUTHID_FILE: &str = "global/pgipc_authid";
/// The lock serialising writers, relative to the data directory.
const AUTHID_LOCK: &str = "global/pgipc_authid.lock";
/// `BOOTSTRAP_SUPERUSERID`.
pub const BOOTSTRAP_SUPERUSERID: u32 = 10;
/// `FirstNormalObjectId`: the first OID a CREATE ROLE hands out.
const FIRST_NORMAL_OBJECT_ID: u32 = 16384;
const FORMAT: u32 = 1;

/// One role (a row of `pg_authid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// `oid`.
    pub oid: u32,
    /// `rolname`.
    pub name: String,
    /// `rolsuper`.
    pub superuser: bool,
    /// `rolinherit`.
    pub inherit: bool,
    /// `rolcreaterole`.
    pub createrole: bool,
    /// `rolcreatedb`.
    pub createdb: bool,
    /// `rolcanlogin`.
    pub login: bool,
    /// `rolreplication`.
    pub replication: bool,
    /// `rolbypassrls`.
    pub bypassrls: bool,
    /// `rolconnlimit` (-1: no limit).
    pub connection_limit: i32,
    /// `rolpassword`: a SCRAM or md5 secret (never a clear-text password).
    pub password: Option<String>,
    /// `rolvaliduntil`, microseconds since the Unix epoch (`i64::MAX`: infinity).
    pub valid_until: Option<i64>,
}

impl Role {
    /// The secret to authenticate against at `now_micros`, or PostgreSQL's log line saying why
    /// there is none (`get_role_password`).
    pub fn password_for_auth(&self, now_micros: i64) -> Result<&str, String> {
        let Some(p) = &self.password else {
            return Err(format!("User \"{}\" has no password assigned.", self.name));
        };
        if self.valid_until.is_some_and(|v| v < now_micros) {
            return Err(format!("User \"{}\" has an expired password.", self.name));
        }
        Ok(p)
    }

    /// `rolvaliduntil` as PostgreSQL prints a timestamptz in UTC (`2030-01-01 00:00:00+00`).
    pub fn valid_until_text(&self) -> Option<String> {
        self.valid_until.map(micros_text)
    }
}

fn micros_text(v: i64) -> String {
    match v {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        v => match jiff::Timestamp::from_microsecond(v) {
            Ok(t) => {
                let s = t.strftime("%Y-%m-%d %H:%M:%S%.f").to_string();
                format!("{s}+00")
            }
            Err(_) => v.to_string(),
        },
    }
}

/// A row of the `pg_roles` view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgRolesRow {
    /// `rolname`.
    pub rolname: String,
    /// `rolsuper`.
    pub rolsuper: bool,
    /// `rolinherit`.
    pub rolinherit: bool,
    /// `rolcreaterole`.
    pub rolcreaterole: bool,
    /// `rolcreatedb`.
    pub rolcreatedb: bool,
    /// `rolcanlogin`.
    pub rolcanlogin: bool,
    /// `rolreplication`.
    pub rolreplication: bool,
    /// `rolconnlimit`.
    pub rolconnlimit: i32,
    /// `rolpassword`: `********` when set, NULL otherwise.
    pub rolpassword: Option<String>,
    /// `rolvaliduntil` (UTC text).
    pub rolvaliduntil: Option<String>,
    /// `rolbypassrls`.
    pub rolbypassrls: bool,
    /// `oid`.
    pub oid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AuthidData {
    format: u32,
    /// Bumped by every save (for logs and tests; readers notice changes by the file's
    /// identity, see [`Authid::refresh`]).
    generation: u64,
    next_oid: u32,
    /// Hex of the per-cluster secret behind mock SCRAM salts (PostgreSQL keeps it in
    /// pg_control as `mock_authentication_nonce`).
    mock_nonce: String,
    roles: Vec<Role>,
}

/// What identifies one version of the file: every save renames a new file into place, so
/// the inode changes; size and mtime are checked too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp_of(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// How new passwords are stored (`password_encryption`, `scram_iterations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordOptions {
    /// `password_encryption`: [`PasswordType::ScramSha256`] or [`PasswordType::Md5`].
    pub encryption: PasswordType,
    /// `scram_iterations`.
    pub scram_iterations: u32,
    /// `md5_password_warnings` (PostgreSQL 18).
    pub md5_warnings: bool,
}

impl Default for PasswordOptions {
    fn default() -> Self {
        PasswordOptions {
            encryption: PasswordType::ScramSha256,
            scram_iterations: pgipc_libpq::scram::SCRAM_DEFAULT_ITERATIONS,
            md5_warnings: true,
        }
    }
}

/// What a role command did: its command tag and the notices for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// `CREATE ROLE`, `ALTER ROLE` or `DROP ROLE`.
    pub tag: &'static str,
    /// NOTICEs and WARNINGs, in order.
    pub notices: Vec<Notice>,
}

/// The role catalog of one data directory, as this process last read it.
#[derive(Debug)]
pub struct Authid {
    dir: PathBuf,
    stamp: Stamp,
    data: AuthidData,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuthidError + '_ {
    move |source| AuthidError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Reads and checks the file: JSON body, then one line `sha256:<hex of the body>`.
fn read_file(path: &Path) -> Result<(AuthidData, Stamp), AuthidError> {
    let corrupt = |reason: &str| AuthidError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    // The stamp first: a save between the two would make us re-read later, never miss one.
    let stamp = stamp_of(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AuthidError::Missing(path.to_path_buf())
        } else {
            io_err(path)(e)
        }
    })?;
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("not valid UTF-8"))?;
    let body_end = text
        .trim_end_matches('\n')
        .rfind('\n')
        .ok_or_else(|| corrupt("no checksum line (truncated?)"))?;
    let (body, tail) = text.split_at(body_end + 1);
    let sum = tail
        .trim_end_matches('\n')
        .strip_prefix("sha256:")
        .ok_or_else(|| corrupt("no checksum line (truncated?)"))?;
    if hex(&Sha256::digest(body.as_bytes())) != sum {
        return Err(corrupt("checksum mismatch"));
    }
    let data: AuthidData =
        serde_json::from_str(body).map_err(|e| corrupt(&format!("unreadable: {e}")))?;
    if data.format != FORMAT {
        return Err(corrupt(&format!("unknown format {}", data.format)));
    }
    if data.roles.is_empty() {
        return Err(corrupt("no roles"));
    }
    Ok((data, stamp))
}

/// Writes the file crash-safely: a temporary file, fsync, rename over the old one, fsync the
/// directory. A crash at any point leaves the old file or the new one, never a mix.
fn write_file(path: &Path, data: &AuthidData) -> Result<(), AuthidError> {
    let mut body = serde_json::to_string_pretty(data).map_err(|e| AuthidError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    body.push('\n');
    let text = format!("{body}sha256:{}\n", hex(&Sha256::digest(body.as_bytes())));
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    // A crash here leaves the old file (and the new one as `.tmp`). `error` is refused: the
    // save is past the point where it could give up cleanly, so only a crash tests anything.
    let _ = pgipc_injection_point::injection_point!("authid-save-before-rename");
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    // Renamed but the directory not yet fsynced: a crash here leaves the new file (a power
    // loss could still bring back the old one, never a mix).
    let _ = pgipc_injection_point::injection_point!("authid-save-before-dir-fsync");
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(())
}

/// An exclusive flock on the lock file, held while a writer reads, changes and saves.
struct WriteLock(#[allow(dead_code)] nix::fcntl::Flock<File>);

fn lock(dir: &Path) -> Result<WriteLock, AuthidError> {
    let p = dir.join(AUTHID_LOCK);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io_err(&p))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map(WriteLock)
        .map_err(|(_, e)| io_err(&p)(e.into()))
}

/// Now, in microseconds since the Unix epoch (what `Role::password_for_auth` compares with).
pub fn now_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// Parses a VALID UNTIL literal as PostgreSQL's timestamptz input would, for the forms
/// people write: `infinity`, RFC 3339 / ISO 8601 with an offset, or a date or date-time
/// without one (then in the server's time zone).
pub fn parse_valid_until(s: &str) -> Result<i64, RoleError> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        _ => {}
    }
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Ok(ts.as_microsecond());
    }
    let tz = jiff::tz::TimeZone::system();
    if let Ok(dt) = t.parse::<jiff::civil::DateTime>() {
        if let Ok(z) = dt.to_zoned(tz.clone()) {
            return Ok(z.timestamp().as_microsecond());
        }
    }
    if let Ok(d) = t.parse::<jiff::civil::Date>() {
        if let Ok(z) = d.to_zoned(tz) {
            return Ok(z.timestamp().as_microsecond());
        }
    }
    Err(RoleError::InvalidDatetime(s.to_owned()))
}

fn md5_warning() -> Notice {
    Notice::warning(
        "01000",
        "setting an MD5-encrypted password",
    )
    .with_detail("MD5 password support is deprecated and will be removed in a future release of PostgreSQL.")
    .with_hint("Refer to the PostgreSQL documentation for details about migrating to another password type.")
}

fn check_reserved(name: &str) -> Result<(), RoleError> {
    if name.starts_with("pg_") {
        return Err(RoleError::Reserved {
            name: name.to_owned(),
            detail: Some("Role names starting with \"pg_\" are reserved.".into()),
        });
    }
    if matches!(name, "public" | "none") {
        return Err(RoleError::Reserved {
            name: name.to_owned(),
            detail: None,
        });
    }
    Ok(())
}

impl Authid {
    /// The role file of `data_dir`.
    pub fn file_path(data_dir: &Path) -> PathBuf {
        data_dir.join(AUTHID_FILE)
    }

    /// Loads the role file; a missing, truncated or corrupt file is an error (the server
    /// must refuse to start rather than run with no roles).
    pub fn open(data_dir: &Path) -> Result<Authid, AuthidError> {
        let (data, stamp) = read_file(&Self::file_path(data_dir))?;
        Ok(Authid {
            dir: data_dir.to_path_buf(),
            stamp,
            data,
        })
    }

    /// Creates the role file with the bootstrap superuser (OID 10), `password` hashed with
    /// SCRAM-SHA-256 when given. Refuses if the file already exists.
    pub fn bootstrap(
        data_dir: &Path,
        superuser: &str,
        password: Option<&str>,
    ) -> Result<Authid, AuthidError> {
        let path = Self::file_path(data_dir);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let _guard = lock(data_dir)?;
        if path.exists() {
            return Err(AuthidError::Exists(path));
        }
        let nonce = pgipc_libpq::scram::strong_random(32).ok_or(AuthidError::NoRandom)?;
        let password = match password {
            Some(p) => Some(
                encrypt_password(
                    PasswordType::ScramSha256,
                    superuser,
                    p,
                    pgipc_libpq::scram::SCRAM_DEFAULT_ITERATIONS,
                )
                .map_err(|_| AuthidError::NoRandom)?,
            ),
            None => None,
        };
        let data = AuthidData {
            format: FORMAT,
            generation: 1,
            next_oid: FIRST_NORMAL_OBJECT_ID,
            mock_nonce: hex(&nonce),
            roles: vec![Role {
                oid: BOOTSTRAP_SUPERUSERID,
                name: superuser.to_owned(),
                superuser: true,
                inherit: true,
                createrole: true,
                createdb: true,
                login: true,
                replication: true,
                bypassrls: true,
                connection_limit: -1,
                password,
                valid_until: None,
            }],
        };
        write_file(&path, &data)?;
        Self::open(data_dir)
    }

    /// [`open`](Self::open), or [`bootstrap`](Self::bootstrap) when the file does not exist
    /// yet; the flag says whether it was created.
    pub fn open_or_bootstrap(
        data_dir: &Path,
        superuser: &str,
    ) -> Result<(Authid, bool), AuthidError> {
        match Self::open(data_dir) {
            Err(AuthidError::Missing(_)) => match Self::bootstrap(data_dir, superuser, None) {
                Ok(a) => Ok((a, true)),
                // Another process created it in between.
                Err(AuthidError::Exists(_)) => Ok((Self::open(data_dir)?, false)),
                Err(e) => Err(e),
            },
            other => other.map(|a| (a, false)),
        }
    }

    /// Re-reads the file if another process saved it since this one read it (its inode,
    /// size or mtime changed); returns whether it did. A backend calls this before it looks
    /// at roles, so it sees every committed role command of other backends.
    pub fn refresh(&mut self) -> Result<bool, AuthidError> {
        let path = Self::file_path(&self.dir);
        if stamp_of(&path).map_err(io_err(&path))? == self.stamp {
            return Ok(false);
        }
        let (data, stamp) = read_file(&path)?;
        self.data = data;
        self.stamp = stamp;
        Ok(true)
    }

    /// The number of saves since the file was created.
    pub fn generation(&self) -> u64 {
        self.data.generation
    }

    /// A role by name.
    pub fn get(&self, name: &str) -> Option<&Role> {
        self.data.roles.iter().find(|r| r.name == name)
    }

    /// Every role, in OID order.
    pub fn roles(&self) -> &[Role] {
        &self.data.roles
    }

    /// The per-cluster secret for mock SCRAM salts.
    pub fn mock_nonce(&self) -> Vec<u8> {
        unhex(&self.data.mock_nonce).unwrap_or_default()
    }

    /// The rows of `pg_roles`.
    pub fn pg_roles(&self) -> Vec<PgRolesRow> {
        self.data
            .roles
            .iter()
            .map(|r| PgRolesRow {
                rolname: r.name.clone(),
                rolsuper: r.superuser,
                rolinherit: r.inherit,
                rolcreaterole: r.createrole,
                rolcreatedb: r.createdb,
                rolcanlogin: r.login,
                rolreplication: r.replication,
                rolconnlimit: r.connection_limit,
                rolpassword: r.password.as_ref().map(|_| "********".into()),
                rolvaliduntil: r.valid_until_text(),
                rolbypassrls: r.bypassrls,
                oid: r.oid,
            })
            .collect()
    }

    /// Runs a role command as role `actor` (the session's user): takes the writers' lock,
    /// re-reads the file, checks and applies the command with PostgreSQL's errors, saves.
    /// Nothing is saved when it fails.
    pub fn execute(
        &mut self,
        cmd: &RoleCommand,
        actor: &str,
        opts: &PasswordOptions,
    ) -> Result<Executed, RoleError> {
        let _guard = lock(&self.dir).map_err(RoleError::storage)?;
        self.refresh().map_err(RoleError::storage)?;
        let mut data = self.data.clone();
        let me = data
            .roles
            .iter()
            .find(|r| r.name == actor)
            .cloned()
            .ok_or_else(|| RoleError::DoesNotExist(actor.to_owned()))?;
        let executed = apply(&mut data, cmd, &me, opts)?;
        data.generation += 1;
        let path = Self::file_path(&self.dir);
        write_file(&path, &data).map_err(RoleError::storage)?;
        self.data = data;
        self.stamp = stamp_of(&path).map_err(|e| RoleError::storage(io_err(&path)(e)))?;
        Ok(executed)
    }
}

fn denied(message: &str, detail: String) -> RoleError {
    RoleError::PermissionDenied {
        message: message.to_owned(),
        detail: Some(detail),
    }
}

/// Sets a password option on `role`: empty clears it (NOTICE), plain text is hashed.
fn set_password(
    role: &mut Role,
    password: &Option<String>,
    opts: &PasswordOptions,
    notices: &mut Vec<Notice>,
) -> Result<(), RoleError> {
    match password {
        None => role.password = None,
        Some(p) if p.is_empty() => {
            notices.push(Notice::info(
                "00000",
                "empty string is not a valid password, clearing password",
            ));
            role.password = None;
        }
        Some(p) => {
            let secret = encrypt_password(opts.encryption, &role.name, p, opts.scram_iterations)
                .map_err(|e| RoleError::Storage(e.to_string()))?;
            if opts.md5_warnings && get_password_type(&secret) == PasswordType::Md5 {
                notices.push(md5_warning());
            }
            role.password = Some(secret);
        }
    }
    Ok(())
}

fn connection_limit(n: i64) -> Result<i32, RoleError> {
    if !(-1..=i64::from(i32::MAX)).contains(&n) {
        return Err(RoleError::InvalidParameter(format!(
            "invalid connection limit: {n}"
        )));
    }
    Ok(n as i32)
}

fn apply_options(
    role: &mut Role,
    o: &RoleOptions,
    opts: &PasswordOptions,
    notices: &mut Vec<Notice>,
) -> Result<(), RoleError> {
    if let Some(v) = o.superuser {
        role.superuser = v;
    }
    if let Some(v) = o.login {
        role.login = v;
    }
    if let Some(v) = o.createdb {
        role.createdb = v;
    }
    if let Some(v) = o.createrole {
        role.createrole = v;
    }
    if let Some(v) = o.inherit {
        role.inherit = v;
    }
    if let Some(v) = o.replication {
        role.replication = v;
    }
    if let Some(v) = o.bypassrls {
        role.bypassrls = v;
    }
    if let Some(n) = o.connection_limit {
        role.connection_limit = connection_limit(n)?;
    }
    if let Some(v) = &o.valid_until {
        role.valid_until = Some(parse_valid_until(v)?);
    }
    if let Some(p) = &o.password {
        set_password(role, p, opts, notices)?;
    }
    Ok(())
}

fn apply(
    data: &mut AuthidData,
    cmd: &RoleCommand,
    me: &Role,
    opts: &PasswordOptions,
) -> Result<Executed, RoleError> {
    let mut notices = Vec::new();
    match cmd {
        RoleCommand::Create {
            name,
            is_user,
            options: o,
        } => {
            if !me.superuser {
                if !me.createrole {
                    return Err(denied(
                        "permission denied to create role",
                        "Only roles with the CREATEROLE attribute may create roles.".into(),
                    ));
                }
                for (set, attr, mine) in [
                    (o.superuser, "SUPERUSER", false),
                    (o.createdb, "CREATEDB", me.createdb),
                    (o.replication, "REPLICATION", me.replication),
                    (o.bypassrls, "BYPASSRLS", me.bypassrls),
                ] {
                    if set == Some(true) && !mine {
                        return Err(denied(
                            "permission denied to create role",
                            format!(
                                "Only roles with the {attr} attribute may create roles with \
                                 the {attr} attribute."
                            ),
                        ));
                    }
                }
            }
            check_reserved(name)?;
            if data.roles.iter().any(|r| &r.name == name) {
                return Err(RoleError::AlreadyExists(name.clone()));
            }
            let mut role = Role {
                oid: data.next_oid,
                name: name.clone(),
                superuser: false,
                inherit: true,
                createrole: false,
                createdb: false,
                login: *is_user,
                replication: false,
                bypassrls: false,
                connection_limit: -1,
                password: None,
                valid_until: None,
            };
            apply_options(&mut role, o, opts, &mut notices)?;
            data.next_oid = data
                .next_oid
                .checked_add(1)
                .ok_or_else(|| RoleError::Storage("out of role OIDs".into()))?;
            data.roles.push(role);
            Ok(Executed {
                tag: "CREATE ROLE",
                notices,
            })
        }
        RoleCommand::Alter { name, options: o } => {
            let Some(idx) = data.roles.iter().position(|r| &r.name == name) else {
                return Err(RoleError::DoesNotExist(name.clone()));
            };
            let target = data.roles[idx].clone();
            if !me.superuser {
                if target.superuser {
                    return Err(denied(
                        "permission denied to alter role",
                        "Only roles with the SUPERUSER attribute may alter roles with the \
                         SUPERUSER attribute."
                            .into(),
                    ));
                }
                if o.superuser.is_some() {
                    return Err(denied(
                        "permission denied to alter role",
                        "Only roles with the SUPERUSER attribute may change the SUPERUSER \
                         attribute."
                            .into(),
                    ));
                }
                let only_password = RoleOptions {
                    password: None,
                    ..o.clone()
                } == RoleOptions::default();
                let own_password = target.oid == me.oid && only_password;
                if !me.createrole && !own_password {
                    return Err(denied(
                        "permission denied to alter role",
                        format!(
                            "Only roles with the CREATEROLE attribute and the ADMIN option on \
                             role \"{name}\" may alter this role."
                        ),
                    ));
                }
            }
            if target.oid == BOOTSTRAP_SUPERUSERID && o.superuser == Some(false) {
                return Err(denied(
                    "permission denied to alter role",
                    "The bootstrap user must have the SUPERUSER attribute.".into(),
                ));
            }
            let mut role = target;
            apply_options(&mut role, o, opts, &mut notices)?;
            data.roles[idx] = role;
            Ok(Executed {
                tag: "ALTER ROLE",
                notices,
            })
        }
        RoleCommand::Rename { name, new_name } => {
            let Some(idx) = data.roles.iter().position(|r| &r.name == name) else {
                return Err(RoleError::DoesNotExist(name.clone()));
            };
            if data.roles[idx].oid == me.oid {
                return Err(RoleError::FeatureNotSupported(
                    "session user cannot be renamed".into(),
                ));
            }
            if data.roles.iter().any(|r| &r.name == new_name) {
                return Err(RoleError::AlreadyExists(new_name.clone()));
            }
            check_reserved(new_name)?;
            let target = &data.roles[idx];
            if !me.superuser {
                if target.superuser {
                    return Err(denied(
                        "permission denied to rename role",
                        "Only roles with the SUPERUSER attribute may rename roles with the \
                         SUPERUSER attribute."
                            .into(),
                    ));
                }
                if !me.createrole {
                    return Err(denied(
                        "permission denied to rename role",
                        format!(
                            "Only roles with the CREATEROLE attribute and the ADMIN option on \
                             role \"{name}\" may rename this role."
                        ),
                    ));
                }
            }
            let role = &mut data.roles[idx];
            role.name = new_name.clone();
            // An md5 secret hashes the name in: it no longer matches.
            if role
                .password
                .as_deref()
                .is_some_and(|p| get_password_type(p) == PasswordType::Md5)
            {
                role.password = None;
                notices.push(Notice::info(
                    "00000",
                    "MD5 password cleared because of role rename",
                ));
            }
            Ok(Executed {
                tag: "ALTER ROLE",
                notices,
            })
        }
        RoleCommand::Drop { names, if_exists } => {
            if !me.superuser && !me.createrole {
                return Err(denied(
                    "permission denied to drop role",
                    "Only roles with the CREATEROLE attribute and the ADMIN option on the \
                     target roles may drop roles."
                        .into(),
                ));
            }
            let mut victims = Vec::new();
            for name in names {
                let Some(r) = data.roles.iter().find(|r| &r.name == name) else {
                    if *if_exists {
                        notices.push(Notice::info(
                            "00000",
                            format!("role \"{name}\" does not exist, skipping"),
                        ));
                        continue;
                    }
                    return Err(RoleError::DoesNotExist(name.clone()));
                };
                if r.oid == me.oid {
                    return Err(RoleError::ObjectInUse(
                        "current user cannot be dropped".into(),
                    ));
                }
                if r.oid == BOOTSTRAP_SUPERUSERID {
                    return Err(RoleError::DependentObjects(format!(
                        "cannot drop role {name} because it is required by the database system"
                    )));
                }
                if r.superuser && !me.superuser {
                    return Err(denied(
                        "permission denied to drop role",
                        "Only roles with the SUPERUSER attribute may drop roles with the \
                         SUPERUSER attribute."
                            .into(),
                    ));
                }
                victims.push(r.oid);
            }
            data.roles.retain(|r| !victims.contains(&r.oid));
            Ok(Executed {
                tag: "DROP ROLE",
                notices,
            })
        }
    }
}
