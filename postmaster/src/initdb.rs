//! `pgipc_ctl init` (pg_ctl's initdb): a new data directory with chosen authentication methods
//! and a superuser, before the first start (PostgreSQL's `initdb -A/--auth-local/--auth-host
//! --pwfile -U`).
//!
//! ```text
//!  dir absent or empty ─► dir 0700 + postgresql.conf ─► pg_hba.conf (local / host methods)
//!    + pg_ident.conf ─► global/pgipc_authid: superuser (OID 10), password from --pwfile
//!  trust anywhere ─► initdb's warning and hint
//! ```
//! The default superuser is `postgres` (what the server's first start creates too).

use std::path::{Path, PathBuf};

/// initdb's options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct InitOptions {
    /// `-A` / `--auth`: both below unless given.
    pub(crate) auth: Option<String>,
    /// `--auth-local`.
    pub(crate) auth_local: Option<String>,
    /// `--auth-host`.
    pub(crate) auth_host: Option<String>,
    /// `--pwfile`.
    pub(crate) pwfile: Option<PathBuf>,
    /// `-U` / `--username`.
    pub(crate) username: Option<String>,
}

impl InitOptions {
    /// Takes one initdb option (`-A x`, `--auth=x`, …) from `arg` and, for the two-word
    /// forms, `next`; `Ok(false)` when `arg` is not one of them.
    pub(crate) fn take(
        &mut self,
        arg: &str,
        next: &mut dyn FnMut() -> Option<String>,
    ) -> Result<bool, String> {
        let mut value =
            |name: &str| next().ok_or_else(|| format!("option requires an argument -- '{name}'"));
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_owned())),
            _ => (arg, None),
        };
        let mut get = |name: &str| match &inline {
            Some(v) => Ok(v.clone()),
            None => value(name),
        };
        match key {
            "-A" | "--auth" => self.auth = Some(get("A")?),
            "--auth-local" => self.auth_local = Some(get("auth-local")?),
            "--auth-host" => self.auth_host = Some(get("auth-host")?),
            "--pwfile" => self.pwfile = Some(PathBuf::from(get("pwfile")?)),
            "-U" | "--username" => self.username = Some(get("U")?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

const LOCAL_METHODS: &[&str] = &[
    "trust",
    "reject",
    "scram-sha-256",
    "md5",
    "password",
    "peer",
    "ident",
];
const HOST_METHODS: &[&str] = &["trust", "reject", "scram-sha-256", "md5", "password"];
const PASSWORD_METHODS: &[&str] = &["scram-sha-256", "md5", "password"];

/// Runs initdb on `dir`; returns the exit code, printing initdb's messages.
pub(crate) fn init(dir: &Path, o: &InitOptions) -> i32 {
    let fail = |m: String| {
        eprintln!("initdb: error: {m}");
        1
    };
    let local = o
        .auth_local
        .clone()
        .or_else(|| o.auth.clone())
        .unwrap_or_else(|| "trust".into());
    let host = o
        .auth_host
        .clone()
        .or_else(|| o.auth.clone())
        .unwrap_or_else(|| "trust".into());
    if !LOCAL_METHODS.contains(&local.as_str()) {
        return fail(format!(
            "invalid authentication method \"{local}\" for \"local\" connections"
        ));
    }
    if !HOST_METHODS.contains(&host.as_str()) {
        return fail(format!(
            "invalid authentication method \"{host}\" for \"host\" connections"
        ));
    }
    let password = match &o.pwfile {
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => match t.lines().next() {
                Some(p) if !p.is_empty() => Some(p.to_owned()),
                _ => return fail(format!("password file \"{}\" is empty", f.display())),
            },
            Err(e) => {
                return fail(format!(
                    "could not open file \"{}\" for reading: {}",
                    f.display(),
                    pgipc_io_text(&e)
                ))
            }
        },
        None => None,
    };
    if password.is_none()
        && (PASSWORD_METHODS.contains(&local.as_str()) || PASSWORD_METHODS.contains(&host.as_str()))
    {
        return fail(
            "must specify a password for the superuser to enable password authentication".into(),
        );
    }
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        eprintln!(
            "initdb: error: directory \"{}\" exists but is not empty",
            dir.display()
        );
        eprintln!(
            "initdb: hint: If you want to create a new database system, either remove or empty the directory \"{}\" or run initdb with an argument other than \"{}\".",
            dir.display(),
            dir.display()
        );
        return 1;
    }
    let user = o
        .username
        .clone()
        .unwrap_or_else(|| crate::hba_setup::DEFAULT_SUPERUSER.into());
    if user.starts_with("pg_") {
        return fail(format!(
            "superuser name \"{user}\" is disallowed; role names cannot begin with \"pg_\""
        ));
    }
    println!(
        "The files belonging to this database system will be owned by user \"{}\".",
        os_user()
    );
    println!("The database superuser is \"{user}\".");
    let dir = match crate::datadir::prepare(dir, &pgipc_guc::sample_config_file()) {
        Ok((d, _)) => d,
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = crate::hba_setup::write_initdb_files(&dir, &local, &host) {
        return fail(format!("could not write pg_hba.conf: {e}"));
    }
    if let Err(e) = pgipc_authid::Authid::bootstrap(&dir, &user, password.as_deref()) {
        return fail(e.to_string());
    }
    if local == "trust" || host == "trust" {
        let [w, h] = crate::hba_setup::trust_warning();
        eprintln!("initdb: warning: {w}");
        eprintln!("initdb: hint: {h}");
    }
    println!();
    println!("Success. You can now start the database server using:");
    println!();
    println!("    pgipc_ctl -D {} -l logfile start", dir.display());
    0
}

fn os_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "?".into())
}

fn pgipc_io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<InitOptions, String> {
        let mut o = InitOptions::default();
        let mut it = args.iter().map(|s| s.to_string());
        while let Some(a) = it.next() {
            if !o.take(&a, &mut || it.next())? {
                return Err(format!("not an initdb option: {a}"));
            }
        }
        Ok(o)
    }

    #[test]
    fn options_take_both_spellings() {
        let o = parse(&[
            "-A",
            "md5",
            "--auth-host=scram-sha-256",
            "--pwfile",
            "/p",
            "-U",
            "boss",
        ])
        .unwrap();
        assert_eq!(o.auth.as_deref(), Some("md5"));
        assert_eq!(o.auth_host.as_deref(), Some("scram-sha-256"));
        assert_eq!(o.pwfile, Some(PathBuf::from("/p")));
        assert_eq!(o.username.as_deref(), Some("boss"));
        assert_eq!(
            parse(&["--auth-local"]).unwrap_err(),
            "option requires an argument -- 'auth-local'"
        );
    }

    #[test]
    fn init_refuses_what_initdb_refuses() {
        let base = std::env::temp_dir().join(format!("pgipc-initdb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let o = |args: &[&str]| parse(args).unwrap();
        assert_eq!(init(&base, &o(&["-A", "bogus"])), 1);
        assert_eq!(init(&base, &o(&["--auth-host", "peer"])), 1);
        assert_eq!(init(&base, &o(&["-A", "scram-sha-256"])), 1, "no password");
        assert!(!base.exists());
        std::fs::create_dir_all(&base).unwrap();
        let pw = base.with_extension("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let data = base.join("data");
        let pwarg = pw.display().to_string();
        assert_eq!(
            init(
                &data,
                &o(&[
                    "--auth-local",
                    "peer",
                    "--auth-host",
                    "scram-sha-256",
                    "--pwfile",
                    &pwarg,
                    "-U",
                    "boss"
                ])
            ),
            0
        );
        let hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
        assert!(
            hba.contains("local   all             all                                     peer")
        );
        assert!(hba.contains("127.0.0.1/32            scram-sha-256"));
        let a = pgipc_authid::Authid::open(&data).unwrap();
        let boss = a.get("boss").unwrap();
        assert!(boss.superuser);
        assert!(pgipc_libpq::plain_crypt_verify(
            "boss",
            boss.password.as_deref().unwrap(),
            "s3cret"
        ));
        assert_eq!(init(&data, &o(&[])), 1, "not empty");
        std::fs::remove_dir_all(&base).unwrap();
        let _ = std::fs::remove_file(&pw);
    }
}
