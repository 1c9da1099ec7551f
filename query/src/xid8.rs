//! Full transaction ids and snapshots as SQL values (PostgreSQL's `xid8` and `pg_snapshot`,
//! utils/adt/xid.c and xid8funcs.c): their text input and output, and the functions that
//! need no server state — `pg_snapshot_xmin/xmax/xip`, `pg_visible_in_snapshot` and their
//! `txid_*` forms over bigint and `txid_snapshot`.
//!
//! ```text
//!  xid8          795                     unsigned 64-bit: epoch << 32 | xid
//!  pg_snapshot   795:798:795,796         xmin : xmax : xip (ascending, no duplicates)
//!                                        every xip in [xmin, xmax); xmin > 0
//!  visible(x, s) x < xmin  → true        (committed or aborted before the snapshot)
//!                x >= xmax → false       (not yet started when it was taken)
//!                otherwise → x ∉ xip
//! ```

use std::rc::Rc;

use crate::error::{sqlstate, QueryError, Result};
use crate::session::{Column, SetFunction};
use crate::types::Type;
use crate::value::Datum;

/// A `pg_snapshot` (or `txid_snapshot`) value: PostgreSQL's `pg_snapshot` struct, with the
/// in-progress ids sorted and deduplicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSnapshot {
    /// The oldest id still running when the snapshot was taken.
    pub xmin: u64,
    /// The first id not yet assigned then.
    pub xmax: u64,
    /// The ids in `[xmin, xmax)` that were running, ascending.
    pub xip: Vec<u64>,
}

impl PgSnapshot {
    /// A snapshot from its parts: `xip` is sorted and deduplicated (as `pg_current_snapshot`
    /// does with the ProcArray's unordered list).
    pub fn new(xmin: u64, xmax: u64, mut xip: Vec<u64>) -> PgSnapshot {
        xip.sort_unstable();
        xip.dedup();
        PgSnapshot { xmin, xmax, xip }
    }

    /// `pg_visible_in_snapshot` (`is_visible_fxid`): whether `xid` had finished for this
    /// snapshot.
    pub fn visible(&self, xid: u64) -> bool {
        if xid < self.xmin {
            true
        } else if xid >= self.xmax {
            false
        } else {
            self.xip.binary_search(&xid).is_err()
        }
    }

    /// Text output (`pg_snapshot_out`): `xmin:xmax:xip,...`.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}:{}:", self.xmin, self.xmax);
        for (k, x) in self.xip.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push_str(&x.to_string());
        }
        out
    }

    /// Text input (`pg_snapshot_in`): a positive xmin, xmax not before it, then in-progress
    /// ids in ascending order within `[xmin, xmax)` (duplicates are dropped).
    pub fn parse(text: &str) -> Result<PgSnapshot> {
        let bad = || {
            QueryError::new(
                sqlstate::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type pg_snapshot: \"{text}\""),
            )
        };
        let (xmin, rest) = strtou64(text);
        let rest = rest.strip_prefix(':').ok_or_else(bad)?;
        let (xmax, rest) = strtou64(rest);
        let mut rest = rest.strip_prefix(':').ok_or_else(bad)?;
        if xmin == 0 || xmax == 0 || xmax < xmin {
            return Err(bad());
        }
        let mut xip = Vec::new();
        let mut last = 0u64;
        while !rest.is_empty() {
            let (v, after) = strtou64(rest);
            if v < xmin || v >= xmax || v < last {
                return Err(bad());
            }
            if v != last {
                xip.push(v);
            }
            last = v;
            rest = match after.strip_prefix(',') {
                Some(r) => r,
                None if after.is_empty() => after,
                None => return Err(bad()),
            };
        }
        Ok(PgSnapshot { xmin, xmax, xip })
    }
}

/// C's `strtoull(s, &end, 10)` as `parse_snapshot` uses it: leading white space, an optional
/// sign (a minus negates modulo 2^64), digits; an overflow saturates. Returns the value and
/// the unread rest (all of `s` when there are no digits, with the value 0).
fn strtou64(s: &str) -> (u64, &str) {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = body.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return (0, s);
    }
    let v = body[..n]
        .bytes()
        .try_fold(0u64, |v, d| {
            v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(u64::MAX);
    (if neg { v.wrapping_neg() } else { v }, &body[n..])
}

/// Text input of `xid8` (`xid8in`, PostgreSQL 16+'s `uint64in_subr` with base 0): white
/// space around, an optional sign, decimal, `0x` hexadecimal or `0` octal digits.
pub(crate) fn parse_xid8(text: &str) -> Result<u64> {
    parse_unsigned(text, "xid8")
}

/// What `strtoul`/`strtou64` with base 0 reads as a whole input of type `typname`: white
/// space around, an optional sign (a minus negates modulo 2^64), decimal, `0x` hexadecimal
/// or `0` octal digits; 22P02 without digits or with anything after them, 22003 past 64 bits.
pub(crate) fn parse_unsigned(text: &str, typname: &str) -> Result<u64> {
    let bad = || QueryError::invalid_input(typname, text);
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) =
        if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, h)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    let v = u64::from_str_radix(digits, radix).map_err(|_| {
        QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("value \"{text}\" is out of range for type {typname}"),
        )
    })?;
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// Whether `name` is one of this module's set-returning functions.
pub(crate) fn is_set_function(name: &str) -> bool {
    matches!(name, "pg_snapshot_xip" | "txid_snapshot_xip")
}

/// The set-returning functions named `name`: `pg_snapshot_xip(pg_snapshot)` (setof xid8)
/// and `txid_snapshot_xip(txid_snapshot)` (setof bigint), the in-progress ids in order.
pub(crate) fn set_functions(name: &str) -> Vec<SetFunction> {
    let (arg, ty) = match name {
        "pg_snapshot_xip" => (Type::PgSnapshot, Type::Xid8),
        "txid_snapshot_xip" => (Type::TxidSnapshot, Type::Int8),
        _ => return Vec::new(),
    };
    vec![SetFunction {
        name: name.to_owned(),
        args: vec![arg],
        columns: vec![Column::new(name, ty)],
        strict: true,
        call: Rc::new(move |_, a| {
            let xip = match a.first() {
                Some(Datum::Snapshot(s)) => s.xip.clone(),
                _ => Vec::new(),
            };
            Ok(Box::new(xip.into_iter().map(move |x| {
                Ok(vec![if ty == Type::Xid8 {
                    Datum::Xid8(x)
                } else {
                    Datum::Int8(x as i64)
                }])
            })))
        }),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_text_round_trips() {
        let s = PgSnapshot::parse("795:798:795,796").unwrap();
        assert_eq!(s.xmin, 795);
        assert_eq!(s.xmax, 798);
        assert_eq!(s.xip, vec![795, 796]);
        assert_eq!(s.to_text(), "795:798:795,796");
        assert_eq!(PgSnapshot::parse("12:13:").unwrap().to_text(), "12:13:");
        // Duplicates are dropped; a trailing comma is accepted, as in PostgreSQL.
        assert_eq!(
            PgSnapshot::parse("10:20:11,11,12,").unwrap().to_text(),
            "10:20:11,12"
        );
    }

    #[test]
    fn snapshot_input_is_checked() {
        for bad in [
            "",
            "1",
            "1:2",
            "0:2:",
            "3:2:",
            "1:0:",
            "10:20:9",
            "10:20:20",
            "10:20:12,11",
            "10:20:x",
            "10:20:11;12",
            "a:2:",
            "1:2: ",
        ] {
            let e = PgSnapshot::parse(bad).unwrap_err();
            assert_eq!(e.sqlstate, "22P02", "{bad}");
            assert_eq!(
                e.message,
                format!("invalid input syntax for type pg_snapshot: \"{bad}\"")
            );
        }
    }

    #[test]
    fn visibility_follows_xmin_xmax_and_xip() {
        let s = PgSnapshot::parse("795:798:795,796").unwrap();
        assert!(s.visible(794));
        assert!(!s.visible(795));
        assert!(!s.visible(796));
        assert!(s.visible(797));
        assert!(!s.visible(798));
        assert!(!s.visible(10_000));
    }

    #[test]
    fn xid8_input() {
        assert_eq!(parse_xid8(" 42 ").unwrap(), 42);
        assert_eq!(parse_xid8("0x10").unwrap(), 16);
        assert_eq!(parse_xid8("010").unwrap(), 8);
        assert_eq!(parse_xid8("-1").unwrap(), u64::MAX);
        assert_eq!(parse_xid8("18446744073709551615").unwrap(), u64::MAX);
        assert_eq!(
            parse_xid8("18446744073709551616").unwrap_err().sqlstate,
            "22003"
        );
        for bad in ["", "x", "1x", "0x", "09"] {
            assert_eq!(parse_xid8(bad).unwrap_err().sqlstate, "22P02", "{bad}");
        }
    }
}
