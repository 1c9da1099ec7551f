//! TLS for client connections (PostgreSQL's `be-secure-openssl.c`, on rustls): the server
//! configuration from `ssl_cert_file`, `ssl_key_file` and `ssl_min_protocol_version`, ALPN
//! `postgresql` for PostgreSQL 17's direct TLS, and the `tls-server-end-point` channel-binding
//! data of SCRAM-SHA-256-PLUS.
//!
//! Not done: `ssl_ca_file` client certificates (`clientcert=` rules cannot be satisfied),
//! `ssl_ciphers`, `ssl_crl_file`, `ssl_passphrase_command`.

use pgipc_guc::Settings;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

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

/// The server's TLS configuration, or PostgreSQL's message for what is wrong.
pub(crate) fn server_config(settings: &Settings) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = certificates(settings)?;
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
    let mut cfg = rustls::ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "could not load private key file \"{}\": {e}",
                key_path.display()
            )
        })?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(cfg))
}

/// `tls-server-end-point` (RFC 5929): SHA-256 of the server certificate.
pub(crate) fn server_end_point(settings: &Settings) -> Option<Vec<u8>> {
    use sha2::Digest;
    let certs = certificates(settings).ok()?;
    Some(sha2::Sha256::digest(certs[0].as_ref()).to_vec())
}
