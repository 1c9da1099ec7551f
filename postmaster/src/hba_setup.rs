//! Who may connect, the postmaster's part (PostgreSQL's initdb defaults and `load_hba` /
//! `load_ident` in `PostmasterMain` and `process_pm_reload_request`):
//!
//! ```text
//!  start:  pg_hba.conf missing ─► initdb's default (trust for the socket and loopback),
//!                                 pg_ident.conf, and initdb's warning in the log
//!          role file missing   ─► bootstrap superuser "postgres" (OID 10)
//!          role file corrupt   ─► FATAL, the server does not start
//!          ssl on, certificate or key unusable ─► FATAL (PostgreSQL's texts)
//!          pg_hba.conf / pg_ident.conf ─► hba::activate; an error ─► FATAL "could not load"
//!          ssl on ─► the TLS configuration built once here; children inherit it by fork
//!  SIGHUP: TLS configuration rebuilt (an error keeps the old one: "SSL configuration was
//!          not reloaded"); hba::activate; an error ─► every bad line logged, "pg_hba.conf was not reloaded",
//!          the rules in force stay
//! ```
//!
//! Backends read the activated copies at connection start (`tcop`'s authentication), so a
//! reload changes who may connect next without touching open sessions.

use crate::elog::{elog, Severity};
use pgipc_guc::Settings;
use pgipc_hba::{HbaError, HbaPaths, ParseOptions};
use std::path::Path;

/// The bootstrap superuser a first start creates (what `psql -U postgres` expects; pgipc_ctl
/// init -U chooses another).
pub(crate) const DEFAULT_SUPERUSER: &str = "postgres";

fn paths(data_dir: &Path, settings: &Settings) -> HbaPaths {
    HbaPaths::new(
        data_dir,
        settings.text("hba_file"),
        settings.text("ident_file"),
    )
}

fn opts(settings: &Settings) -> ParseOptions {
    ParseOptions {
        ssl_enabled: settings.bool("ssl"),
    }
}

/// Writes initdb's pg_hba.conf and pg_ident.conf when the data directory has none, with the
/// methods given; logs initdb's warning for `trust`.
pub(crate) fn write_initdb_files(
    data_dir: &Path,
    auth_local: &str,
    auth_host: &str,
) -> std::io::Result<bool> {
    let hba = data_dir.join("pg_hba.conf");
    if hba.exists() {
        return Ok(false);
    }
    std::fs::write(&hba, pgipc_hba::initdb_hba_conf(auth_local, auth_host))?;
    let ident = data_dir.join("pg_ident.conf");
    if !ident.exists() {
        std::fs::write(&ident, pgipc_hba::INITDB_IDENT_CONF)?;
    }
    Ok(true)
}

/// initdb's warning when it enables trust.
pub(crate) fn trust_warning() -> [String; 2] {
    [
        "enabling \"trust\" authentication for local connections".into(),
        "You can change this by editing pg_hba.conf or using the option -A, or --auth-local and \
         --auth-host, the next time you run initdb."
            .into(),
    ]
}

fn log_hba_error(e: &HbaError) {
    for l in e.line_errors() {
        elog(Severity::Log, l);
    }
    if let HbaError::Open { .. } = e {
        elog(Severity::Log, e);
    }
}

/// At start: first-start files, the role file, then the rules in force. An error stops the
/// start.
pub(crate) fn start(data_dir: &Path, settings: &Settings) -> Result<(), String> {
    match write_initdb_files(data_dir, "trust", "trust") {
        Ok(true) => {
            let [w, h] = trust_warning();
            elog(Severity::Warning, &w);
            elog(Severity::Hint, &h);
        }
        Ok(false) => {}
        Err(e) => return Err(format!("could not write pg_hba.conf: {e}")),
    }
    match pgipc_authid::Authid::open_or_bootstrap(data_dir, DEFAULT_SUPERUSER) {
        Ok((_, true)) => elog(
            Severity::Log,
            &format_args!("created the bootstrap superuser \"{DEFAULT_SUPERUSER}\""),
        ),
        Ok((_, false)) => {}
        Err(e) => return Err(e.to_string()),
    }
    if settings.bool("ssl") {
        pgipc_tcop::load_tls_config(settings)?;
    }
    let p = paths(data_dir, settings);
    pgipc_hba::activate(data_dir, &p, opts(settings)).map_err(|e| {
        log_hba_error(&e);
        match &e {
            HbaError::Invalid { path, .. } => format!("could not load {}", path.display()),
            HbaError::Open { path, .. } => format!("could not load {}", path.display()),
        }
    })?;
    // Parsed once here; forked backends inherit it (PostgreSQL's load_hba in PostmasterMain).
    pgipc_tcop::preload_auth(settings);
    Ok(())
}

/// On SIGHUP: the new rules, or the old ones and PostgreSQL's log lines; the TLS
/// configuration built anew (or the old one kept, with PostgreSQL's log line).
pub(crate) fn reload(data_dir: &Path, settings: &Settings) {
    if settings.bool("ssl") {
        if let Err(e) = pgipc_tcop::load_tls_config(settings) {
            elog(Severity::Log, &e);
            elog(Severity::Log, &"SSL configuration was not reloaded");
        }
    } else {
        pgipc_tcop::forget_tls_config();
    }
    let p = paths(data_dir, settings);
    if let Err(e) = pgipc_hba::activate(data_dir, &p, opts(settings)) {
        log_hba_error(&e);
        let which = match &e {
            HbaError::Invalid { path, .. } | HbaError::Open { path, .. } => path.clone(),
        };
        elog(
            Severity::Log,
            &format_args!("{} was not reloaded", which.display()),
        );
    }
    // The rules now in force and the current roles, for the next children.
    pgipc_tcop::preload_auth(settings);
}
