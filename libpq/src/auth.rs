//! Authentication requests the server sends (PostgreSQL's `sendAuthRequest` in
//! `libpq/auth.c`) and the limits on what the client answers.

use crate::MessageBuf;

/// Longest password or SASL message accepted (`PG_MAX_AUTH_TOKEN_LENGTH`).
pub const PG_MAX_AUTH_TOKEN_LENGTH: usize = 65535;

/// One `R` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    /// AuthenticationOk (0).
    Ok,
    /// AuthenticationCleartextPassword (3).
    CleartextPassword,
    /// AuthenticationMD5Password (5) with its salt.
    Md5Password([u8; 4]),
    /// AuthenticationSASL (10) with the mechanisms offered.
    Sasl(&'a [&'a str]),
    /// AuthenticationSASLContinue (11).
    SaslContinue(&'a [u8]),
    /// AuthenticationSASLFinal (12).
    SaslFinal(&'a [u8]),
}

impl MessageBuf {
    /// Appends an authentication request.
    pub fn auth_request(&mut self, req: AuthRequest<'_>) {
        match req {
            AuthRequest::Ok => {
                self.begin(b'R').i32(0);
            }
            AuthRequest::CleartextPassword => {
                self.begin(b'R').i32(3);
            }
            AuthRequest::Md5Password(salt) => {
                self.begin(b'R').i32(5).bytes(&salt);
            }
            AuthRequest::Sasl(mechs) => {
                let mut b = self.begin(b'R');
                b.i32(10);
                for m in mechs {
                    b.cstr(m);
                }
                b.u8(0);
            }
            AuthRequest::SaslContinue(data) => {
                self.begin(b'R').i32(11).bytes(data);
            }
            AuthRequest::SaslFinal(data) => {
                self.begin(b'R').i32(12).bytes(data);
            }
        }
    }
}

/// The limit of an authentication-phase message: only `p` (PasswordMessage,
/// SASLInitialResponse, SASLResponse) is expected.
pub fn auth_message_limit(ty: u8) -> Option<usize> {
    (ty == b'p').then_some(PG_MAX_AUTH_TOKEN_LENGTH)
}

/// A SASLInitialResponse: the mechanism and the data (`None` when the length is -1).
pub fn parse_sasl_initial_response(
    body: &[u8],
) -> Result<(String, Option<&[u8]>), crate::FormatError> {
    let mut r = crate::MessageReader::new(body);
    let mech = r.cstr()?;
    let len = r.i32()?;
    let data = if len == -1 {
        None
    } else if len < 0 {
        return Err(crate::FormatError::InvalidFormat);
    } else {
        Some(r.bytes(len as usize)?)
    };
    r.finish()?;
    Ok((mech, data))
}

/// A PasswordMessage: the NUL-terminated password, which must fill the body exactly
/// (PostgreSQL's "invalid password packet size").
pub fn parse_password_message(body: &[u8]) -> Option<&str> {
    let (last, s) = body.split_last()?;
    if *last != 0 || s.contains(&0) {
        return None;
    }
    std::str::from_utf8(s).ok()
}
