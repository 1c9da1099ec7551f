//! Network addresses and 32-bit transaction ids as SQL values: PostgreSQL's `inet`
//! (utils/adt/network.c with its inet_net_pton.c / inet_net_ntop.c readers and printers)
//! and `xid` (utils/adt/xid.c).
//!
//! ```text
//!  inet   127.0.0.1        an IPv4 host (netmask 32: no suffix printed)
//!         10.1.2.3/8       an address with its netmask; the host bits are kept
//!         ::1, ::ffff:1.2.3.4, 2001:db8::/32
//!         text cast        always with the netmask (127.0.0.1/32): `text(inet)` is
//!                          network_show, not the output function
//!         order            common network bits, then netmask length, then the whole
//!                          address; every IPv4 value sorts before every IPv6 one
//!  xid    42               unsigned 32-bit, input as strtoul (decimal, 0x.., 0..; a
//!                          negative int32 wraps); only = and <> compare
//! ```
//!
//! Not here: `cidr` (the network-only flavour), the containment operators (`<<`, `>>=`,
//! `&&`), arithmetic on addresses, and `xid` ordering (PostgreSQL has none: xids wrap).

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{sqlstate, QueryError, Result};

/// An `inet` value: an IPv4 or IPv6 address and its netmask length (0..=32 or 0..=128).
/// The address keeps the bits right of the mask (`10.1.2.3/8` stays as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Inet {
    /// The address.
    pub addr: IpAddr,
    /// The netmask length; the family's full width for a host.
    pub bits: u8,
}

impl Inet {
    /// A host address (netmask /32 or /128), as `inet_client_addr()` returns.
    pub fn host(addr: IpAddr) -> Inet {
        Inet {
            addr,
            bits: max_bits(&addr),
        }
    }

    /// PostgreSQL's address family number (`PGSQL_AF_INET` 2, `PGSQL_AF_INET6` 3), the
    /// first byte of the binary format.
    pub fn pg_family(&self) -> u8 {
        match self.addr {
            IpAddr::V4(_) => 2,
            IpAddr::V6(_) => 3,
        }
    }

    /// The address bytes in network order (4 or 16).
    pub fn octets(&self) -> Vec<u8> {
        match self.addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    /// The binary format (`inet_send`): family, bits, is-cidr (0), address length, address.
    pub fn to_binary(&self) -> Vec<u8> {
        let o = self.octets();
        let mut b = vec![self.pg_family(), self.bits, 0, o.len() as u8];
        b.extend_from_slice(&o);
        b
    }

    /// Reads the binary format (`inet_recv`); the is-cidr byte is ignored, as PostgreSQL
    /// does for `inet`.
    pub fn from_binary(b: &[u8]) -> Result<Inet> {
        let bad = |what: &str| {
            QueryError::new(
                "22P03",
                format!("invalid {what} in external \"inet\" value"),
            )
        };
        let (&family, rest) = b.split_first().ok_or_else(|| bad("address family"))?;
        let (width, len) = match family {
            2 => (32, 4),
            3 => (128, 16),
            _ => return Err(bad("address family")),
        };
        let bits = *rest.first().ok_or_else(|| bad("bits"))?;
        if bits > width {
            return Err(bad("bits"));
        }
        let nb = rest.get(2).copied().ok_or_else(|| bad("length"))?;
        if usize::from(nb) != len || rest.len() != 3 + len {
            return Err(bad("length"));
        }
        let a = &rest[3..];
        let addr = if len == 4 {
            IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        } else {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            IpAddr::V6(Ipv6Addr::from(o))
        };
        Ok(Inet { addr, bits })
    }

    /// Text input (`inet_in`): IPv6 when the text has a colon, else IPv4; an optional
    /// `/bits`. An IPv4 address may be shortened when a netmask says how much is given
    /// (`10/8` is 10.0.0.0/8); without one all four octets are needed.
    pub fn parse(text: &str) -> Result<Inet> {
        let bad = || QueryError::invalid_input("inet", text);
        if text.contains(':') {
            let (a, bits) = match text.split_once('/') {
                Some((a, b)) => (a, Some(prefix_len(b, 128).ok_or_else(bad)?)),
                None => (text, None),
            };
            let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
            return Ok(Inet {
                addr: IpAddr::V6(addr),
                bits: bits.unwrap_or(128),
            });
        }
        parse_v4(text).ok_or_else(bad)
    }

    /// The output function's text (`inet_out`): the address, and `/bits` unless it is a host.
    pub fn to_text(&self) -> String {
        if self.bits == max_bits(&self.addr) {
            address_text(&self.addr)
        } else {
            format!("{}/{}", address_text(&self.addr), self.bits)
        }
    }

    /// The text cast's form (`text(inet)`, network_show): always with `/bits`.
    pub fn show(&self) -> String {
        format!("{}/{}", address_text(&self.addr), self.bits)
    }

    /// `host(inet)`: the address alone.
    pub fn host_text(&self) -> String {
        address_text(&self.addr)
    }

    /// PostgreSQL's inet order (`network_cmp`): the bits both netmasks cover, then the
    /// netmask length, then the whole address; IPv4 before IPv6.
    pub fn cmp_inet(&self, other: &Inet) -> Ordering {
        let (fa, fb) = (self.pg_family(), other.pg_family());
        if fa != fb {
            return fa.cmp(&fb);
        }
        let (a, b) = (self.octets(), other.octets());
        let common = self.bits.min(other.bits);
        bit_cmp(&a, &b, common)
            .then(self.bits.cmp(&other.bits))
            .then_with(|| a.cmp(&b))
    }
}

impl fmt::Display for Inet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn max_bits(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Compares the first `n` bits of two equally long byte strings.
fn bit_cmp(a: &[u8], b: &[u8], n: u8) -> Ordering {
    let whole = usize::from(n / 8);
    let ord = a[..whole].cmp(&b[..whole]);
    let rest = n % 8;
    if ord != Ordering::Equal || rest == 0 {
        return ord;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[whole] & mask).cmp(&(b[whole] & mask))
}

/// A netmask length: decimal digits, at most `max`.
fn prefix_len(s: &str, max: u8) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse::<u8>().ok().filter(|&b| b <= max)
}

/// IPv4 in `inet`'s reader: up to four decimal octets (each at most 255) separated by dots,
/// then an optional `/bits`; fewer than four octets only with a netmask that does not reach
/// past them.
fn parse_v4(text: &str) -> Option<Inet> {
    let (a, bits) = match text.split_once('/') {
        Some((a, b)) => {
            if b.is_empty() || !b.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            // Leading zeros are fine here (`/08`); the value is what counts.
            let v: u32 = b.parse().ok()?;
            (a, Some(u8::try_from(v).ok().filter(|&v| v <= 32)?))
        }
        None => (text, None),
    };
    let mut octets = [0u8; 4];
    let mut n = 0;
    for part in a.split('.') {
        if part.is_empty() || n == 4 || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v = part.bytes().try_fold(0u32, |v, d| {
            Some(v * 10 + u32::from(d - b'0')).filter(|&v| v <= 255)
        })?;
        octets[n] = v as u8;
        n += 1;
    }
    let bits = match bits {
        None if n == 4 => 32,
        None => return None,
        Some(b) if usize::from(b / 8) > n => return None,
        Some(b) => b,
    };
    Some(Inet {
        addr: IpAddr::V4(Ipv4Addr::from(octets)),
        bits,
    })
}

/// An address as PostgreSQL prints it: IPv4 dotted; IPv6 in lower-case hexadecimal with the
/// longest run of two or more zero groups (the first of equals) as `::`, and the last 32
/// bits dotted when the first 96 are zero but for the 16 ones of an IPv4-mapped address.
fn address_text(addr: &IpAddr) -> String {
    let a = match addr {
        IpAddr::V4(a) => return a.to_string(),
        IpAddr::V6(a) => a,
    };
    let w = a.segments();
    let (mut best, mut best_len) = (None, 0usize);
    let mut k = 0;
    while k < 8 {
        if w[k] == 0 {
            let start = k;
            while k < 8 && w[k] == 0 {
                k += 1;
            }
            if k - start > best_len {
                best = Some(start);
                best_len = k - start;
            }
        } else {
            k += 1;
        }
    }
    if best_len < 2 {
        best = None;
    }
    let mut out = String::new();
    let mut k = 0;
    while k < 8 {
        if best == Some(k) {
            if k == 0 {
                out.push(':');
            }
            out.push(':');
            k += best_len;
            continue;
        }
        if k == 6 && best == Some(0) && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            let o = a.octets();
            out.push_str(&Ipv4Addr::new(o[12], o[13], o[14], o[15]).to_string());
            break;
        }
        out.push_str(&format!("{:x}", w[k]));
        k += 1;
        if k < 8 {
            out.push(':');
        }
    }
    out
}

/// Text input of `xid` (`xidin`, PostgreSQL 16+'s `uint32in_subr`): what `strtoul` with base
/// 0 reads, with white space around; a value that fits only as a negative int32 wraps.
pub(crate) fn parse_xid(text: &str) -> Result<u32> {
    let v = crate::xid8::parse_unsigned(text, "xid")?;
    u32::try_from(v)
        .ok()
        .or_else(|| (v >= 0xffff_ffff_8000_0000).then_some(v as u32))
        .ok_or_else(|| {
            QueryError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                format!("value \"{text}\" is out of range for type xid"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, out: &str, show: &str) {
        let v = Inet::parse(input).unwrap_or_else(|e| panic!("{input}: {}", e.message));
        assert_eq!(
            (v.to_text().as_str(), v.show().as_str()),
            (out, show),
            "{input}"
        );
        assert_eq!(Inet::from_binary(&v.to_binary()).unwrap(), v, "{input}");
    }

    #[test]
    fn inet_text_forms_are_postgresql_s() {
        check("127.0.0.1", "127.0.0.1", "127.0.0.1/32");
        check("10.1.2.3/8", "10.1.2.3/8", "10.1.2.3/8");
        check("10/8", "10.0.0.0/8", "10.0.0.0/8");
        check("192.168.1/24", "192.168.1.0/24", "192.168.1.0/24");
        check("::1", "::1", "::1/128");
        check("::", "::", "::/128");
        check("::ffff:1.2.3.4", "::ffff:1.2.3.4", "::ffff:1.2.3.4/128");
        check("::1.2.3.4", "::1.2.3.4", "::1.2.3.4/128");
        check("2001:DB8::/32", "2001:db8::/32", "2001:db8::/32");
        check("1:0:0:2:0:0:0:3", "1:0:0:2::3", "1:0:0:2::3/128");
        check("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7/128");
        for bad in [
            "x",
            "",
            "1.2.3",
            "1.2.3.256",
            "1.2.3.4/33",
            "10.1/24",
            "1.2.3.4.5",
            " 1.2.3.4",
            "::1/129",
            "::g",
            "1.2.3.4/",
            "::1/01",
        ] {
            let e = Inet::parse(bad).unwrap_err();
            assert_eq!(
                (&*e.sqlstate, e.message.as_str()),
                (
                    "22P02",
                    format!("invalid input syntax for type inet: \"{bad}\"").as_str()
                )
            );
        }
    }

    #[test]
    fn inet_orders_by_network_then_mask_then_address() {
        let p = |s: &str| Inet::parse(s).unwrap();
        let mut v = [
            p("::1"),
            p("10.1.2.3/8"),
            p("10.0.0.0/8"),
            p("10.1.2.3"),
            p("9.255.255.255"),
        ];
        v.sort_by(Inet::cmp_inet);
        let got: Vec<String> = v.iter().map(Inet::to_text).collect();
        assert_eq!(
            got,
            [
                "9.255.255.255",
                "10.0.0.0/8",
                "10.1.2.3/8",
                "10.1.2.3",
                "::1"
            ]
        );
    }

    #[test]
    fn inet_binary_input_is_checked() {
        for (b, what) in [
            (&[4u8, 32, 0, 4, 1, 2, 3, 4][..], "address family"),
            (&[2, 33, 0, 4, 1, 2, 3, 4], "bits"),
            (&[2, 32, 0, 16, 1, 2, 3, 4], "length"),
            (&[2, 32, 0, 4, 1, 2, 3], "length"),
        ] {
            assert_eq!(
                Inet::from_binary(b).unwrap_err().message,
                format!("invalid {what} in external \"inet\" value")
            );
        }
    }

    #[test]
    fn xid_input_is_strtoul_with_checks() {
        assert_eq!(parse_xid(" 42 ").unwrap(), 42);
        assert_eq!(parse_xid("0x10").unwrap(), 16);
        assert_eq!(parse_xid("010").unwrap(), 8);
        assert_eq!(parse_xid("-1").unwrap(), u32::MAX);
        assert_eq!(parse_xid("4294967295").unwrap(), u32::MAX);
        assert_eq!(parse_xid("4294967296").unwrap_err().sqlstate, "22003");
        assert_eq!(parse_xid("-4294967295").unwrap_err().sqlstate, "22003");
        let e = parse_xid("x").unwrap_err();
        assert_eq!(
            (&*e.sqlstate, e.message.as_str()),
            ("22P02", "invalid input syntax for type xid: \"x\"")
        );
        assert_eq!(parse_xid("42x").unwrap_err().sqlstate, "22P02");
    }
}
