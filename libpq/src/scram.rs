//! SCRAM-SHA-256, server side (RFC 5802 and RFC 7677 as PostgreSQL's `libpq/auth-scram.c`
//! implements them): the secret ("verifier") text format, building a secret from a password,
//! and the exchange.
//!
//! ```text
//!  secret:  SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
//!
//!  client                                   server (ScramExchange)
//!  SASLInitialResponse  n,,n=,r=<cnonce>  ─►  parse gs2 header, nonce
//!                      ◄─ SASLContinue        r=<cnonce><snonce>,s=<salt>,i=<iter>
//!  SASLResponse c=<b64 gs2+cbind>,r=…,p=<proof> ─► check cbind, nonce, proof
//!                      ◄─ SASLFinal           v=<ServerSignature>        (or Failed)
//! ```
//!
//! For a role that does not exist or has no usable secret, the exchange runs on a mock secret
//! whose salt is derived from the user name and a per-cluster nonce, so the client cannot tell
//! from the salt or the timing; it fails at the proof, exactly like a wrong password.
//!
//! Channel binding `tls-server-end-point` (SCRAM-SHA-256-PLUS) hashes the server certificate
//! with SHA-256 whatever its signature algorithm (RFC 5929 says so for MD5 and SHA-1 signed
//! certificates; for SHA-384/512 ones PostgreSQL would use that hash instead: documented
//! difference).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// `SCRAM-SHA-256`.
pub const SCRAM_SHA_256_NAME: &str = "SCRAM-SHA-256";
/// `SCRAM-SHA-256-PLUS` (with channel binding, under TLS only).
pub const SCRAM_SHA_256_PLUS_NAME: &str = "SCRAM-SHA-256-PLUS";
/// PostgreSQL's default `scram_iterations`.
pub const SCRAM_DEFAULT_ITERATIONS: u32 = 4096;
/// Salt length of new secrets (`SCRAM_DEFAULT_SALT_LEN`).
pub const SCRAM_SALT_LEN: usize = 16;
/// Random bytes of the server nonce (`SCRAM_RAW_NONCE_LEN`).
const SCRAM_RAW_NONCE_LEN: usize = 18;
const KEY_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; KEY_LEN] {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    Sha256::digest(data).into()
}

/// `Hi()` of RFC 5802: PBKDF2-HMAC-SHA-256 with one output block. (A dozen lines here
/// rather than the `pbkdf2` crate: SCRAM needs exactly one block.)
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; KEY_LEN] {
    let mut u = hmac(password, &[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &[&u]);
        for (o, b) in out.iter_mut().zip(u) {
            *o ^= b;
        }
    }
    out
}

/// The password as SCRAM hashes it: SASLprep'd when that succeeds, as is otherwise (what
/// PostgreSQL's `pg_saslprep` fallback does for passwords that are not valid UTF-8 or use
/// prohibited characters).
fn normalize(password: &str) -> Vec<u8> {
    match stringprep::saslprep(password) {
        Ok(p) => p.into_owned().into_bytes(),
        Err(_) => password.as_bytes().to_vec(),
    }
}

/// A parsed SCRAM-SHA-256 secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    /// Iteration count.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: [u8; KEY_LEN],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; KEY_LEN],
}

impl std::fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramSecret")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramSecret {
    /// Derives the secret of `password` with `salt` and `iterations`.
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> ScramSecret {
        let sp = salted_password(&normalize(password), salt, iterations.max(1));
        let client_key = hmac(&sp, &[b"Client Key"]);
        ScramSecret {
            iterations: iterations.max(1),
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac(&sp, &[b"Server Key"]),
        }
    }

    /// Parses PostgreSQL's text form; `None` when it is not a well-formed SCRAM-SHA-256
    /// secret (PostgreSQL's `parse_scram_secret`).
    pub fn parse(s: &str) -> Option<ScramSecret> {
        let rest = s.strip_prefix("SCRAM-SHA-256$")?;
        let (iter_salt, keys) = rest.split_once('$')?;
        let (iter, salt) = iter_salt.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        if iter.is_empty() || !iter.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let iterations: u32 = iter.parse().ok().filter(|&n| n > 0)?;
        let salt = B64.decode(salt).ok()?;
        let stored_key: [u8; KEY_LEN] = B64.decode(stored).ok()?.try_into().ok()?;
        let server_key: [u8; KEY_LEN] = B64.decode(server).ok()?.try_into().ok()?;
        Some(ScramSecret {
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }

    /// Whether `password` is the one this secret was made from (PostgreSQL's
    /// `scram_verify_plain_password`: the server keys are compared).
    pub fn verify_plain(&self, password: &str) -> bool {
        let sp = salted_password(&normalize(password), &self.salt, self.iterations);
        constant_time_eq(&hmac(&sp, &[b"Server Key"]), &self.server_key)
    }
}

impl std::fmt::Display for ScramSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// Bytes from the kernel's random source (`getrandom(2)`); `None` if it fails.
pub fn strong_random(len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(0) => return None,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    Some(buf)
}

/// A new secret for `password` with a random salt (PostgreSQL's `pg_be_scram_build_secret`);
/// `None` when the random source fails ("could not generate random salt").
pub fn scram_build_secret(password: &str, iterations: u32) -> Option<String> {
    let salt = strong_random(SCRAM_SALT_LEN)?;
    Some(ScramSecret::from_password(password, &salt, iterations).to_string())
}

/// The mock secret used for a role that does not exist or has no SCRAM secret: its salt is
/// `SHA-256(user ‖ mock_nonce)` cut to 16 bytes, stable for a user name (PostgreSQL's
/// `scram_mock_salt`), its keys never match.
pub fn scram_mock_secret(user: &str, mock_nonce: &[u8], iterations: u32) -> ScramSecret {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update(mock_nonce);
    let salt = h.finalize()[..SCRAM_SALT_LEN].to_vec();
    ScramSecret {
        iterations,
        salt,
        stored_key: [0; KEY_LEN],
        server_key: [0; KEY_LEN],
    }
}

/// Compares without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A SCRAM protocol error: the connection ends with it (FATAL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScramError {
    /// SQLSTATE.
    pub code: &'static str,
    /// PostgreSQL's message.
    pub message: String,
    /// PostgreSQL's detail.
    pub detail: Option<String>,
}

fn malformed(detail: impl Into<String>) -> ScramError {
    ScramError {
        code: "08P01",
        message: "malformed SCRAM message".into(),
        detail: Some(detail.into()),
    }
}

fn protocol(message: &str, detail: Option<&str>) -> ScramError {
    ScramError {
        code: "08P01",
        message: message.into(),
        detail: detail.map(str::to_owned),
    }
}

/// What the server answers to one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send AuthenticationSASLContinue with these bytes and read another response.
    Continue(Vec<u8>),
    /// Authenticated: send AuthenticationSASLFinal with these bytes, then AuthenticationOk.
    Success(Vec<u8>),
    /// The proof did not match (or the exchange ran on a mock secret): "password
    /// authentication failed".
    Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    SaltSent,
    Finished,
}

/// One server-side SCRAM exchange (PostgreSQL's `scram_state`).
pub struct ScramExchange {
    state: State,
    secret: ScramSecret,
    /// The secret is a mock (unknown role, no password, expired…): the exchange runs to the
    /// end and fails.
    doomed: bool,
    /// SCRAM-SHA-256-PLUS was chosen.
    plus: bool,
    /// `tls-server-end-point` data when the connection is under TLS.
    cbind_data: Option<Vec<u8>>,
    cbind_flag: u8,
    client_nonce: String,
    server_nonce: String,
    client_first_bare: String,
    server_first: String,
}

impl std::fmt::Debug for ScramExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramExchange")
            .field("state", &self.state)
            .field("plus", &self.plus)
            .finish_non_exhaustive()
    }
}

/// The mechanisms to offer: SCRAM-SHA-256-PLUS first when the connection is under TLS.
pub fn scram_mechanisms(tls: bool) -> &'static [&'static str] {
    if tls {
        &[SCRAM_SHA_256_PLUS_NAME, SCRAM_SHA_256_NAME]
    } else {
        &[SCRAM_SHA_256_NAME]
    }
}

/// Reads `x=value` at the start of `s` (PostgreSQL's `read_attr_value`); returns the value
/// and the rest after the comma (or the end).
fn read_attr<'a>(s: &mut &'a str, attr: char) -> Result<&'a str, ScramError> {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c == attr => {}
        other => {
            return Err(malformed(format!(
                "Expected attribute \"{attr}\" but found \"{}\".",
                other.map(|c| c.to_string()).unwrap_or_default()
            )))
        }
    }
    if chars.next() != Some('=') {
        return Err(malformed(format!(
            "Expected character \"=\" for attribute \"{attr}\"."
        )));
    }
    let body = &s[2..];
    let (v, rest) = match body.find(',') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, ""),
    };
    *s = rest;
    Ok(v)
}

/// Reads any `x=value` attribute (PostgreSQL's `read_any_attr`): returns the letter and value.
fn read_any_attr<'a>(s: &mut &'a str) -> Result<(char, &'a str), ScramError> {
    let Some(c) = s.chars().next() else {
        return Err(malformed("Attribute expected, but found end of string."));
    };
    if !c.is_ascii_alphabetic() {
        return Err(malformed(format!(
            "Attribute expected, but found invalid character \"{c}\"."
        )));
    }
    let v = read_attr(s, c)?;
    Ok((c, v))
}

fn sanitize_char(c: Option<char>) -> String {
    match c {
        None => "end of string".into(),
        Some(c) if c.is_ascii_graphic() => format!("character \"{c}\""),
        Some(c) => format!("invalid character \"0x{:02x}\"", c as u32),
    }
}

impl ScramExchange {
    /// Starts an exchange for `mechanism` (one of [`scram_mechanisms`]) against `secret`
    /// (`None`: a role without a usable SCRAM secret, which gets `mock`). `cbind_data` is
    /// the connection's `tls-server-end-point` hash under TLS.
    pub fn new(
        mechanism: &str,
        secret: Option<ScramSecret>,
        mock: ScramSecret,
        cbind_data: Option<Vec<u8>>,
    ) -> Result<ScramExchange, ScramError> {
        let plus = match mechanism {
            SCRAM_SHA_256_NAME => false,
            SCRAM_SHA_256_PLUS_NAME if cbind_data.is_some() => true,
            _ => {
                return Err(protocol(
                    "client selected an invalid SASL authentication mechanism",
                    None,
                ))
            }
        };
        let doomed = secret.is_none();
        Ok(ScramExchange {
            state: State::Init,
            secret: secret.unwrap_or(mock),
            doomed,
            plus,
            cbind_data,
            cbind_flag: b'n',
            client_nonce: String::new(),
            server_nonce: String::new(),
            client_first_bare: String::new(),
            server_first: String::new(),
        })
    }

    /// Takes one client message (`None`: a SASLInitialResponse without data, which gets an
    /// empty challenge). Errors end the connection.
    pub fn exchange(&mut self, input: Option<&[u8]>) -> Result<SaslStep, ScramError> {
        let Some(input) = input else {
            if self.state == State::Init {
                return Ok(SaslStep::Continue(Vec::new()));
            }
            return Err(malformed("The message is empty."));
        };
        if input.is_empty() {
            return Err(malformed("The message is empty."));
        }
        if input.contains(&0) {
            return Err(malformed("Message length does not match input length."));
        }
        let Ok(text) = std::str::from_utf8(input) else {
            return Err(malformed("Message is not valid UTF-8."));
        };
        match self.state {
            State::Init => {
                self.read_client_first(text)?;
                let nonce = strong_random(SCRAM_RAW_NONCE_LEN).ok_or_else(|| ScramError {
                    code: "XX000",
                    message: "could not generate random nonce".into(),
                    detail: None,
                })?;
                self.server_nonce = B64.encode(nonce);
                self.server_first = format!(
                    "r={}{},s={},i={}",
                    self.client_nonce,
                    self.server_nonce,
                    B64.encode(&self.secret.salt),
                    self.secret.iterations
                );
                self.state = State::SaltSent;
                Ok(SaslStep::Continue(self.server_first.clone().into_bytes()))
            }
            State::SaltSent => {
                self.state = State::Finished;
                self.read_client_final(text)
            }
            State::Finished => Err(protocol("invalid SCRAM exchange state", None)),
        }
    }

    fn read_client_first(&mut self, text: &str) -> Result<(), ScramError> {
        let mut s = text;
        let mut chars = s.chars();
        let flag = chars.next();
        match flag {
            Some('n') | Some('y') => {
                if self.plus {
                    return Err(malformed(
                        "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does \
                         not include channel binding data.",
                    ));
                }
                if flag == Some('y') && self.cbind_data.is_some() {
                    return Err(protocol(
                        "SCRAM channel binding negotiation error",
                        Some(
                            "The client supports SCRAM channel binding but thinks the server \
                             does not.  However, this server does support channel binding.",
                        ),
                    ));
                }
                self.cbind_flag = flag.map(|c| c as u8).unwrap_or(b'n');
                s = &s[1..];
                if !s.starts_with(',') {
                    return Err(malformed(format!(
                        "Comma expected, but found {}.",
                        sanitize_char(s.chars().next())
                    )));
                }
                s = &s[1..];
            }
            Some('p') => {
                if !self.plus {
                    return Err(malformed(
                        "The client selected SCRAM-SHA-256 without channel binding, but the \
                         SCRAM message includes channel binding data.",
                    ));
                }
                let ty = read_attr(&mut s, 'p')?;
                if ty != "tls-server-end-point" {
                    return Err(protocol(
                        &format!("unsupported SCRAM channel-binding type \"{ty}\""),
                        None,
                    ));
                }
                self.cbind_flag = b'p';
            }
            other => {
                return Err(malformed(format!(
                    "Unexpected channel-binding flag {}.",
                    sanitize_char(other)
                )))
            }
        }
        // Authorization identity.
        if s.starts_with('a') {
            return Err(ScramError {
                code: "0A000",
                message: "client uses authorization identity, but it is not supported".into(),
                detail: None,
            });
        }
        if !s.starts_with(',') {
            return Err(malformed(format!(
                "Unexpected attribute \"0x{:02x}\" in client-first-message.",
                s.chars().next().map(|c| c as u32).unwrap_or(0)
            )));
        }
        s = &s[1..];
        self.client_first_bare = s.to_owned();
        if s.starts_with('m') {
            return Err(ScramError {
                code: "0A000",
                message: "client requires an unsupported SCRAM extension".into(),
                detail: None,
            });
        }
        // The user name is ignored: the startup packet's counts (as in PostgreSQL).
        read_attr(&mut s, 'n')?;
        let nonce = read_attr(&mut s, 'r')?;
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(malformed("non-printable characters in SCRAM nonce"));
        }
        self.client_nonce = nonce.to_owned();
        // Extensions are ignored.
        while !s.is_empty() {
            read_any_attr(&mut s)?;
        }
        Ok(())
    }

    fn read_client_final(&mut self, text: &str) -> Result<SaslStep, ScramError> {
        let mut s = text;
        let cbind = read_attr(&mut s, 'c')?;
        let decoded = B64
            .decode(cbind)
            .map_err(|_| malformed("Malformed channel-binding data in client-final-message."))?;
        let expected: Vec<u8> = match self.cbind_flag {
            b'p' => {
                let mut v = b"p=tls-server-end-point,,".to_vec();
                v.extend_from_slice(self.cbind_data.as_deref().unwrap_or_default());
                v
            }
            b'y' => b"y,,".to_vec(),
            _ => b"n,,".to_vec(),
        };
        if self.cbind_flag == b'p' {
            if !constant_time_eq(&decoded, &expected) {
                return Err(protocol("SCRAM channel binding check failed", None));
            }
        } else if decoded != expected {
            return Err(protocol(
                "unexpected SCRAM channel-binding attribute in client-final-message",
                None,
            ));
        }
        let nonce = read_attr(&mut s, 'r')?;
        let without_proof_len = text.len() - s.len();
        // Extensions before the proof are skipped.
        let mut proof_b64 = None;
        while !s.is_empty() {
            let (c, v) = read_any_attr(&mut s)?;
            if c == 'p' {
                proof_b64 = Some(v);
                break;
            }
        }
        let Some(proof_b64) = proof_b64 else {
            return Err(malformed("Malformed proof in client-final-message."));
        };
        if !s.is_empty() {
            return Err(malformed(
                "Garbage found at the end of client-final-message.",
            ));
        }
        let proof: [u8; KEY_LEN] = B64
            .decode(proof_b64)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| malformed("Malformed proof in client-final-message."))?;
        let expected_nonce = format!("{}{}", self.client_nonce, self.server_nonce);
        if !constant_time_eq(nonce.as_bytes(), expected_nonce.as_bytes()) {
            return Err(protocol(
                "invalid SCRAM response",
                Some("Nonce does not match."),
            ));
        }
        // The final message without ",p=…".
        let without_proof = text[..without_proof_len].trim_end_matches(',');
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = hmac(&self.secret.stored_key, &[auth_message.as_bytes()]);
        let mut client_key = [0u8; KEY_LEN];
        for i in 0..KEY_LEN {
            client_key[i] = proof[i] ^ client_signature[i];
        }
        let ok = constant_time_eq(&sha256(&client_key), &self.secret.stored_key);
        if !ok || self.doomed {
            return Ok(SaslStep::Failure);
        }
        let server_signature = hmac(&self.secret.server_key, &[auth_message.as_bytes()]);
        Ok(SaslStep::Success(
            format!("v={}", B64.encode(server_signature)).into_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example: user "user", password "pencil".
    #[test]
    fn rfc7677_example_exchange() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let secret = ScramSecret::from_password("pencil", &salt, 4096);
        let mut ex = ScramExchange::new(
            SCRAM_SHA_256_NAME,
            Some(secret.clone()),
            scram_mock_secret("user", b"n", 4096),
            None,
        )
        .unwrap();
        let first = ex
            .exchange(Some(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
            .unwrap();
        let SaslStep::Continue(server_first) = first else {
            panic!("{first:?}")
        };
        let server_first = String::from_utf8(server_first).unwrap();
        assert!(server_first.starts_with("r=rOprNGfwEbeRWgbNEkqO"));
        assert!(server_first.ends_with(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
        // Force RFC's server nonce to reuse its published proof.
        ex.server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        ex.server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                .into();
        let fin = ex
            .exchange(Some(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            ))
            .unwrap();
        assert_eq!(
            fin,
            SaslStep::Success(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec())
        );
    }

    #[test]
    fn secrets_round_trip_and_verify_plain_passwords() {
        let s = scram_build_secret("secret", 4096).unwrap();
        let p = ScramSecret::parse(&s).unwrap();
        assert_eq!(p.to_string(), s);
        assert!(p.verify_plain("secret"));
        assert!(!p.verify_plain("Secret"));
        for bad in [
            "",
            "md5abc",
            "SCRAM-SHA-256$0:AAAA$AAAA:AAAA",
            "SCRAM-SHA-256$x:AAAA$AAAA:AAAA",
            "SCRAM-SHA-256$4096:AAAA$AAAA",
            "SCRAM-SHA-256$4096:!!$AAAA:AAAA",
        ] {
            assert!(ScramSecret::parse(bad).is_none(), "{bad}");
        }
    }

    fn start() -> ScramExchange {
        let secret = ScramSecret::from_password("pw", b"0123456789abcdef", 16);
        ScramExchange::new(
            SCRAM_SHA_256_NAME,
            Some(secret),
            scram_mock_secret("u", b"n", 16),
            None,
        )
        .unwrap()
    }

    fn check_first(msg: &[u8], expected: &str) {
        let got = match start().exchange(Some(msg)) {
            Ok(SaslStep::Continue(_)) => "continue".to_owned(),
            Ok(other) => format!("{other:?}"),
            Err(e) => format!(
                "{}: {}{}",
                e.code,
                e.message,
                e.detail.map(|d| format!(" / {d}")).unwrap_or_default()
            ),
        };
        assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(msg));
    }

    #[test]
    fn client_first_messages_get_postgresql_errors() {
        check_first(b"n,,n=,r=abc", "continue");
        check_first(b"y,,n=x,r=abc,x=ext", "continue");
        check_first(
            b"",
            "08P01: malformed SCRAM message / The message is empty.",
        );
        check_first(
            b"n,,n=,r=a\0b",
            "08P01: malformed SCRAM message / Message length does not match input length.",
        );
        check_first(
            b"q,,n=,r=abc",
            "08P01: malformed SCRAM message / Unexpected channel-binding flag character \"q\".",
        );
        check_first(
            b"n;,n=,r=abc",
            "08P01: malformed SCRAM message / Comma expected, but found character \";\".",
        );
        check_first(b"p=tls-server-end-point,,n=,r=abc", "08P01: malformed SCRAM message / The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.");
        check_first(
            b"n,a=x,n=,r=abc",
            "0A000: client uses authorization identity, but it is not supported",
        );
        check_first(
            b"n,,m=x,n=,r=abc",
            "0A000: client requires an unsupported SCRAM extension",
        );
        check_first(
            b"n,,r=abc",
            "08P01: malformed SCRAM message / Expected attribute \"n\" but found \"r\".",
        );
        check_first(
            b"n,,n=,r=",
            "08P01: malformed SCRAM message / non-printable characters in SCRAM nonce",
        );
        check_first(
            b"n,,n=,rabc",
            "08P01: malformed SCRAM message / Expected character \"=\" for attribute \"r\".",
        );
    }

    /// A client that knows the password, written from RFC 5802 alone.
    fn client_final(
        ex: &mut ScramExchange,
        password: &str,
        tamper: impl Fn(String) -> String,
    ) -> Result<SaslStep, ScramError> {
        let first_bare = "n=,r=clientnonce";
        let SaslStep::Continue(sf) = ex.exchange(Some(format!("n,,{first_bare}").as_bytes()))?
        else {
            panic!()
        };
        let sf = String::from_utf8(sf).unwrap();
        let mut parts = sf.split(',');
        let r = parts.next().unwrap().strip_prefix("r=").unwrap().to_owned();
        let salt = B64
            .decode(parts.next().unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let iters: u32 = parts
            .next()
            .unwrap()
            .strip_prefix("i=")
            .unwrap()
            .parse()
            .unwrap();
        let sp = salted_password(password.as_bytes(), &salt, iters);
        let ck = hmac(&sp, &[b"Client Key"]);
        let without = format!("c=biws,r={r}");
        let am = format!("{first_bare},{sf},{without}");
        let sig = hmac(&sha256(&ck), &[am.as_bytes()]);
        let proof: Vec<u8> = ck.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        let msg = tamper(format!("{without},p={}", B64.encode(proof)));
        ex.exchange(Some(msg.as_bytes()))
    }

    #[test]
    fn right_and_wrong_passwords_and_tampered_finals() {
        assert!(matches!(
            client_final(&mut start(), "pw", |m| m),
            Ok(SaslStep::Success(_))
        ));
        assert_eq!(
            client_final(&mut start(), "wrong", |m| m),
            Ok(SaslStep::Failure)
        );
        let e = client_final(&mut start(), "pw", |m| {
            m.replace("r=clientnonce", "r=othernonce")
        })
        .unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.detail.as_deref()),
            ("invalid SCRAM response", Some("Nonce does not match."))
        );
        let e = client_final(&mut start(), "pw", |m| m.replace("c=biws", "c=eSws")).unwrap_err();
        assert_eq!(
            e.message,
            "unexpected SCRAM channel-binding attribute in client-final-message"
        );
        let e = client_final(&mut start(), "pw", |m| format!("{m},x=1")).unwrap_err();
        assert_eq!(
            e.detail.as_deref(),
            Some("Garbage found at the end of client-final-message.")
        );
        let e = client_final(&mut start(), "pw", |m| m[..m.len() - 4].to_owned()).unwrap_err();
        assert_eq!(
            e.detail.as_deref(),
            Some("Malformed proof in client-final-message.")
        );
        // A mock exchange fails even with the "right" password of nobody.
        let mut mock = ScramExchange::new(
            SCRAM_SHA_256_NAME,
            None,
            scram_mock_secret("u", b"n", 16),
            None,
        )
        .unwrap();
        assert_eq!(client_final(&mut mock, "pw", |m| m), Ok(SaslStep::Failure));
        // A replayed final message after the end.
        let mut ex = start();
        let _ = client_final(&mut ex, "pw", |m| m);
        assert!(ex.exchange(Some(b"c=biws,r=x,p=AAAA")).is_err());
    }

    /// postgres-protocol's client (what tokio-postgres logs in with) against this server.
    #[test]
    fn a_real_client_logs_in_and_verifies_the_server() {
        use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
        for (password, expect_ok) in [("pw", true), ("nope", false)] {
            let mut client = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
            let secret = ScramSecret::from_password("pw", b"0123456789abcdef", 4096);
            let mock = scram_mock_secret("u", b"n", 4096);
            let mut ex = ScramExchange::new(SCRAM_SHA_256_NAME, Some(secret), mock, None).unwrap();
            let Ok(SaslStep::Continue(sf)) = ex.exchange(Some(client.message())) else {
                panic!("no server-first")
            };
            client.update(&sf).unwrap();
            match ex.exchange(Some(client.message())).unwrap() {
                SaslStep::Success(fin) => {
                    assert!(expect_ok);
                    client.finish(&fin).unwrap();
                }
                SaslStep::Failure => assert!(!expect_ok),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn mock_salts_are_stable_per_user() {
        let a = scram_mock_secret("alice", b"nonce", 4096);
        assert_eq!(a.salt, scram_mock_secret("alice", b"nonce", 4096).salt);
        assert_ne!(a.salt, scram_mock_secret("bob", b"nonce", 4096).salt);
        assert_eq!(a.salt.len(), SCRAM_SALT_LEN);
    }

    #[test]
    fn plus_requires_channel_binding_data() {
        let mock = || scram_mock_secret("u", b"n", 16);
        assert!(ScramExchange::new(SCRAM_SHA_256_PLUS_NAME, None, mock(), None).is_err());
        assert!(ScramExchange::new("PLAIN", None, mock(), None).is_err());
        let mut ex =
            ScramExchange::new(SCRAM_SHA_256_PLUS_NAME, None, mock(), Some(vec![1; 32])).unwrap();
        let e = ex.exchange(Some(b"n,,n=,r=abc")).unwrap_err();
        assert!(e
            .detail
            .unwrap()
            .contains("does not include channel binding data"));
        let mut ex =
            ScramExchange::new(SCRAM_SHA_256_NAME, None, mock(), Some(vec![1; 32])).unwrap();
        let e = ex.exchange(Some(b"y,,n=,r=abc")).unwrap_err();
        assert_eq!(e.message, "SCRAM channel binding negotiation error");
    }
}
