//! Stored password secrets (PostgreSQL's `libpq/crypt.c`): which kind a secret is, hashing
//! a new password as `password_encryption` says, and checking what a client sent.

use crate::scram::{constant_time_eq, scram_build_secret, ScramSecret};
use md5::{Digest, Md5};

/// The kind of a stored secret (PostgreSQL's `PasswordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordType {
    /// Neither form below: taken as the password itself (PostgreSQL no longer stores these,
    /// but still understands them).
    Plaintext,
    /// `md5` followed by 32 hex digits: `md5(password ‖ role name)`.
    Md5,
    /// A SCRAM-SHA-256 secret.
    ScramSha256,
}

/// Which kind `secret` is (PostgreSQL's `get_password_type`).
pub fn get_password_type(secret: &str) -> PasswordType {
    if secret.len() == 35
        && secret.starts_with("md5")
        && secret[3..].bytes().all(|b| b.is_ascii_hexdigit())
    {
        PasswordType::Md5
    } else if ScramSecret::parse(secret).is_some() {
        PasswordType::ScramSha256
    } else {
        PasswordType::Plaintext
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `"md5" + hex(md5(password ‖ salt))` (PostgreSQL's `pg_md5_encrypt`).
pub fn md5_encrypt(password: &[u8], salt: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(password);
    h.update(salt);
    format!("md5{}", hex(&h.finalize()))
}

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// The random source failed.
    #[error("could not generate random salt")]
    NoRandom,
}

/// The secret to store for `password` given by CREATE/ALTER ROLE (PostgreSQL's
/// `encrypt_password`): an already hashed secret (md5 or SCRAM, as psql's `\password` sends)
/// is kept as is; a plain one is hashed to `target` (`password_encryption`).
pub fn encrypt_password(
    target: PasswordType,
    role: &str,
    password: &str,
    scram_iterations: u32,
) -> Result<String, CryptError> {
    if get_password_type(password) != PasswordType::Plaintext {
        return Ok(password.to_owned());
    }
    match target {
        PasswordType::Md5 => Ok(md5_encrypt(password.as_bytes(), role.as_bytes())),
        _ => scram_build_secret(password, scram_iterations).ok_or(CryptError::NoRandom),
    }
}

/// Checks a clear-text password against a stored secret (PostgreSQL's `plain_crypt_verify`).
pub fn plain_crypt_verify(role: &str, secret: &str, client_pass: &str) -> bool {
    match get_password_type(secret) {
        PasswordType::ScramSha256 => {
            ScramSecret::parse(secret).is_some_and(|s| s.verify_plain(client_pass))
        }
        PasswordType::Md5 => constant_time_eq(
            md5_encrypt(client_pass.as_bytes(), role.as_bytes()).as_bytes(),
            secret.as_bytes(),
        ),
        PasswordType::Plaintext => constant_time_eq(client_pass.as_bytes(), secret.as_bytes()),
    }
}

/// Checks an MD5 challenge response (`"md5" + md5(md5secret-hex ‖ salt)`) against an md5
/// secret (PostgreSQL's `md5_crypt_verify`); other kinds of secret never match.
pub fn md5_crypt_verify(secret: &str, client_response: &str, salt: &[u8; 4]) -> bool {
    if get_password_type(secret) != PasswordType::Md5 {
        return false;
    }
    let expected = md5_encrypt(&secret.as_bytes()[3..], salt);
    constant_time_eq(expected.as_bytes(), client_response.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_hashes_and_checks() {
        // PostgreSQL: SELECT 'md5' || md5('secret' || 'alice').
        let md5 = md5_encrypt(b"secret", b"alice");
        assert_eq!(md5, "md54a0a68b43b6cd5cf266fa02f196e2371");
        assert_eq!(get_password_type(&md5), PasswordType::Md5);
        assert_eq!(get_password_type("md5xyz"), PasswordType::Plaintext);
        let scram = encrypt_password(PasswordType::ScramSha256, "alice", "secret", 16).unwrap();
        assert_eq!(get_password_type(&scram), PasswordType::ScramSha256);
        assert_eq!(
            encrypt_password(PasswordType::ScramSha256, "alice", &md5, 16).unwrap(),
            md5
        );
        assert_eq!(
            encrypt_password(PasswordType::Md5, "alice", "secret", 16).unwrap(),
            md5
        );
        for s in [&md5, &scram] {
            assert!(plain_crypt_verify("alice", s, "secret"));
            assert!(!plain_crypt_verify("alice", s, "Secret"));
        }
        let salt = [1, 2, 3, 4];
        let resp = md5_encrypt(&md5.as_bytes()[3..], &salt);
        assert!(md5_crypt_verify(&md5, &resp, &salt));
        assert!(!md5_crypt_verify(&md5, &resp, &[0; 4]));
        assert!(!md5_crypt_verify(&scram, &resp, &salt));
    }

    #[test]
    fn md5_matches_a_known_value() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(md5_encrypt(b"", b""), "md5d41d8cd98f00b204e9800998ecf8427e");
    }
}
