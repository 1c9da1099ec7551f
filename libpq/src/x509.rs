//! What the server reads from a client certificate (PostgreSQL's `be_tls_get_peer_*` and the
//! `peer_cn` / `peer_dn` of `be_tls_open_server`): subject and issuer as `pg_stat_ssl` prints
//! them (`/CN=alice/O=Example`, PostgreSQL's `X509_NAME_to_cstring`), the subject in RFC 2253
//! form (`O=Example,CN=alice`, for `clientname=DN`), the first common name, and the serial
//! number in decimal.
//!
//! A small DER reader over the parts of `Certificate` ⊃ `TBSCertificate` that these need; the
//! certificate was already verified by rustls when this runs, and anything it cannot read
//! gives `None` rather than an error.

/// A client certificate's names, as the views and `cert` authentication use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// Subject as `/SN=value` pairs in certificate order (`ssl_client_dn`).
    pub subject: String,
    /// Subject in RFC 2253 form, last RDN first (`peer_dn`, `clientname=DN`).
    pub subject_rfc2253: String,
    /// The subject's first common name (`peer_cn`), if any.
    pub common_name: Option<String>,
    /// Issuer as `/SN=value` pairs (`ssl_issuer_dn`).
    pub issuer: String,
    /// Serial number in decimal (`ssl_client_serial`).
    pub serial: String,
}

/// One DER element: (tag, contents, what follows).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &x| (a << 8) | usize::from(x));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;

/// OpenSSL's short name of an attribute type, or its dotted form.
fn short_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 3] => "CN".into(),
        [0x55, 0x04, 4] => "SN".into(),
        [0x55, 0x04, 5] => "serialNumber".into(),
        [0x55, 0x04, 6] => "C".into(),
        [0x55, 0x04, 7] => "L".into(),
        [0x55, 0x04, 8] => "ST".into(),
        [0x55, 0x04, 9] => "street".into(),
        [0x55, 0x04, 10] => "O".into(),
        [0x55, 0x04, 11] => "OU".into(),
        [0x55, 0x04, 12] => "title".into(),
        [0x55, 0x04, 42] => "GN".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID".into(),
        _ => dotted(oid),
    }
}

fn dotted(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for &b in oid {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (v / 40).min(2);
                parts.push(first);
                parts.push(v - first * 40);
            } else {
                parts.push(v);
            }
            v = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A directory string's text (UTF-8, PrintableString, IA5String, BMPString, ...).
fn string_value(tag: u8, v: &[u8]) -> String {
    match tag {
        // BMPString: UTF-16BE.
        0x1e => {
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        // T61String: treat as Latin-1, as OpenSSL's conversion does.
        0x14 => v.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(v).into_owned(),
    }
}

/// The (short name, value) pairs of a `Name`, in certificate order.
fn name_entries(name: &[u8]) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rdns = name;
    while !rdns.is_empty() {
        let (tag, set, rest) = tlv(rdns)?;
        if tag != SET {
            return None;
        }
        rdns = rest;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (tag, atv, rest) = tlv(atvs)?;
            if tag != SEQUENCE {
                return None;
            }
            atvs = rest;
            let (tag, oid, rest) = tlv(atv)?;
            if tag != OID {
                return None;
            }
            let (vtag, value, _) = tlv(rest)?;
            out.push((short_name(oid), string_value(vtag, value)));
        }
    }
    Some(out)
}

fn slash_form(entries: &[(String, String)]) -> String {
    entries.iter().map(|(k, v)| format!("/{k}={v}")).collect()
}

fn rfc2253_form(entries: &[(String, String)]) -> String {
    entries
        .iter()
        .rev()
        .map(|(k, v)| {
            let mut s = String::with_capacity(v.len());
            let n = v.chars().count();
            for (i, c) in v.chars().enumerate() {
                let edge = (i == 0 && (c == '#' || c == ' ')) || (i + 1 == n && c == ' ');
                if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
                    s.push('\\');
                }
                s.push(c);
            }
            format!("{k}={s}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// An unsigned big-endian integer in decimal (`BN_bn2dec`).
fn decimal(bytes: &[u8]) -> String {
    let mut n: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
    if n.is_empty() {
        return "0".into();
    }
    let mut digits = Vec::new();
    while !n.is_empty() {
        let mut rem: u32 = 0;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
        let zeros = n.iter().take_while(|&&b| b == 0).count();
        n.drain(..zeros);
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Reads the names and serial of a DER certificate; `None` if it is not one this reader
/// understands.
pub fn peer_cert(der: &[u8]) -> Option<PeerCert> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (mut tag, mut field, mut rest) = tlv(tbs)?;
    if tag == 0xa0 {
        // [0] EXPLICIT version.
        (tag, field, rest) = tlv(rest)?;
    }
    if tag != INTEGER {
        return None;
    }
    let serial = decimal(field);
    let (_, _signature, rest) = tlv(rest)?;
    let (tag, issuer, rest) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _validity, rest) = tlv(rest)?;
    let (tag, subject, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let subject = name_entries(subject)?;
    let issuer = name_entries(issuer)?;
    Some(PeerCert {
        subject: slash_form(&subject),
        subject_rfc2253: rfc2253_form(&subject),
        common_name: subject
            .iter()
            .find(|(k, _)| k == "CN")
            .map(|(_, v)| v.clone()),
        issuer: slash_form(&issuer),
        serial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_print_in_decimal() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0, 0x01, 0x00]), "256");
        assert_eq!(
            decimal(&[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11]),
            "335812727670730321937"
        );
    }

    #[test]
    fn oids_without_a_short_name_print_dotted() {
        assert_eq!(short_name(&[0x55, 0x04, 3]), "CN");
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
    }

    #[test]
    fn rfc2253_reverses_and_escapes() {
        let e = vec![
            ("O".to_owned(), "A, B".to_owned()),
            ("CN".to_owned(), " x".to_owned()),
        ];
        assert_eq!(rfc2253_form(&e), "CN=\\ x,O=A\\, B");
        assert_eq!(slash_form(&e), "/O=A, B/CN= x");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(peer_cert(b""), None);
        assert_eq!(peer_cert(&[0x30, 0x82, 0xff]), None);
        assert_eq!(peer_cert(&[0x30, 0x03, 0x02, 0x01, 0x05]), None);
    }
}
