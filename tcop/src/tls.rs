//! TLS for client connections (PostgreSQL's `be-secure-openssl.c`, on rustls): the server
//! configuration from `ssl_cert_file`, `ssl_key_file`, `ssl_ca_file` and
//! `ssl_min_protocol_version`, ALPN `postgresql` for PostgreSQL 17's direct TLS, and the
//! `tls-server-end-point` channel-binding data of SCRAM-SHA-256-PLUS.
//!
//! ```text
//!  postmaster start / SIGHUP ─► load_config: build ─► LOADED (this process)
//!        │ fork                                          │ (SIGHUP: a failed build keeps
//!        ▼                                               │  the old one, as be_tls_init)
//!  backend: current() ─► LOADED inherited ◄──────────────┘
//!  exec'd backend: nothing inherited ─► current() builds it once from the settings
//! ```
//!
//! With `ssl_ca_file` set, the server asks for a client certificate and verifies one that is
//! sent against those roots (rustls's `WebPkiClientVerifier`); a client without one is let
//! through the handshake, and pg_hba.conf's `clientcert=` / `cert` decide (`auth.rs`).
//!
//! Not done: `ssl_ciphers`, `ssl_crl_file`, `ssl_passphrase_command`.

use pgipc_guc::Settings;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A built configuration and what goes with it.
pub(crate) struct Loaded {
    /// The rustls configuration every handshake uses.
    pub(crate) config: Arc<rustls::ServerConfig>,
    /// `tls-server-end-point` data: SHA-256 of the server certificate.
    pub(crate) end_point: Vec<u8>,
    /// `ssl_ca_file` was loaded (PostgreSQL's `secure_loaded_verify_locations`).
    pub(crate) ca_loaded: bool,
}

/// The configuration this process built or inherited (the postmaster's `SSL_context`).
/// Processes here are single-threaded; the lock only satisfies `static`.
static LOADED: Mutex<Option<Arc<Loaded>>> = Mutex::new(None);

fn stored() -> std::sync::MutexGuard<'static, Option<Arc<Loaded>>> {
    LOADED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds the configuration the settings name and keeps it for this process and the
/// children it forks from now on (`be_tls_init`); an error keeps what was there.
pub(crate) fn load_config(settings: &Settings) -> Result<(), String> {
    let l = build(settings)?;
    *stored() = Some(Arc::new(l));
    Ok(())
}

/// Drops the kept configuration (`ssl` turned off by a reload: `secure_destroy`).
pub(crate) fn forget_config() {
    *stored() = None;
}

/// The configuration to use: the one kept (inherited from the postmaster), or, in a process
/// that has none (an exec'd backend), one built now and kept.
pub(crate) fn current(settings: &Settings) -> Result<Arc<Loaded>, String> {
    if let Some(l) = stored().clone() {
        return Ok(l);
    }
    let l = Arc::new(build(settings)?);
    *stored() = Some(l.clone());
    Ok(l)
}

/// ALPN protocol name of PostgreSQL 17's direct TLS.
pub(crate) const ALPN: &[u8] = b"postgresql";

fn file(settings: &Settings, name: &str) -> PathBuf {
    let v = settings.show(name).unwrap_or_default();
    let p = PathBuf::from(&v);
    if p.is_absolute() {
        return p;
    }
    let dir = settings.show("data_directory").unwrap_or_default();
    PathBuf::from(dir).join(p)
}

fn io_text(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_owned()
}

/// The certificate chain, as DER.
fn certificates(settings: &Settings) -> Result<Vec<CertificateDer<'static>>, String> {
    let path = file(settings, "ssl_cert_file");
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(&path)
        .map_err(|e| {
            format!(
                "could not load server certificate file \"{}\": {}",
                path.display(),
                io_text(&e)
            )
        })?
        .collect();
    let certs = certs.map_err(|e| {
        format!(
            "could not load server certificate file \"{}\": {}",
            path.display(),
            io_text(&e)
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "could not load server certificate file \"{}\": no certificate found",
            path.display()
        ));
    }
    Ok(certs)
}

/// The root certificates of `ssl_ca_file`.
fn client_roots(settings: &Settings) -> Result<rustls::RootCertStore, String> {
    let path = file(settings, "ssl_ca_file");
    let fail = |e: &dyn std::fmt::Display| {
        format!(
            "could not load root certificate file \"{}\": {}",
            path.display(),
            io_text(e)
        )
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&path).map_err(|e| fail(&e))? {
        roots.add(c.map_err(|e| fail(&e))?).map_err(|e| fail(&e))?;
    }
    if roots.is_empty() {
        return Err(fail(&"no certificate found"));
    }
    Ok(roots)
}

/// The server's TLS configuration, or PostgreSQL's message for what is wrong.
fn build(settings: &Settings) -> Result<Loaded, String> {
    use sha2::Digest;
    let certs = certificates(settings)?;
    let end_point = sha2::Sha256::digest(certs[0].as_ref()).to_vec();
    let key_path = file(settings, "ssl_key_file");
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        format!(
            "could not load private key file \"{}\": {}",
            key_path.display(),
            io_text(&e)
        )
    })?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = match settings
        .show("ssl_min_protocol_version")
        .unwrap_or_default()
        .as_str()
    {
        "TLSv1.3" => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = rustls::ServerConfig::builder_with_protocol_versions(versions);
    let ca_loaded = !settings.show("ssl_ca_file").unwrap_or_default().is_empty();
    let builder = if ca_loaded {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder(Arc::new(client_roots(settings)?))
                .allow_unauthenticated()
                .build()
                .map_err(|e| {
                    format!(
                        "could not load root certificate file \"{}\": {e}",
                        file(settings, "ssl_ca_file").display()
                    )
                })?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "could not load private key file \"{}\": {e}",
            key_path.display()
        )
    })?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Loaded {
        config: Arc::new(cfg),
        end_point,
        ca_loaded,
    })
}
