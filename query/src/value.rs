//! Datums: values of the [`Type`]s, their text input and output (each type's `_in`/`_out`),
//! casts and comparison.

use std::cmp::Ordering;

use crate::datetime::{self, Interval, TimeZone};
use crate::error::{sqlstate, QueryError, Result};
use crate::network::{self, Inet};
use crate::numeric::Numeric;
use crate::types::Type;
use crate::xid8::{self, PgSnapshot};

/// One value. Text, `name` and `unknown` share [`Datum::Text`]; the column's [`Type`] tells
/// them apart.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// boolean
    Bool(bool),
    /// smallint
    Int2(i16),
    /// integer
    Int4(i32),
    /// bigint
    Int8(i64),
    /// numeric
    Numeric(Numeric),
    /// double precision
    Float8(f64),
    /// text, name, unknown
    Text(String),
    /// timestamptz: microseconds since 2000-01-01 UTC
    Timestamptz(i64),
    /// interval
    Interval(Interval),
    /// text[] (NULL elements allowed)
    TextArray(Vec<Option<String>>),
    /// oid
    Oid(u32),
    /// void: what a function with no result returns (prints as empty text)
    Void,
    /// xid8: a full transaction id
    Xid8(u64),
    /// pg_snapshot and txid_snapshot (boxed: the type is rare and its list unbounded)
    Snapshot(Box<PgSnapshot>),
    /// xid: a 32-bit transaction id
    Xid(u32),
    /// inet: an address and its netmask
    Inet(Inet),
    /// regtype: a type OID, printed as the type's name
    Regtype(u32),
}

impl Datum {
    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    /// Text output (`typoutput`) as PostgreSQL prints it, or `None` for NULL.
    pub fn to_text(&self, tz: &TimeZone) -> Option<String> {
        Some(match self {
            Datum::Null => return None,
            Datum::Bool(b) => if *b { "t" } else { "f" }.to_owned(),
            Datum::Int2(v) => v.to_string(),
            Datum::Int4(v) => v.to_string(),
            Datum::Int8(v) => v.to_string(),
            Datum::Oid(v) => v.to_string(),
            Datum::Numeric(n) => n.to_string(),
            Datum::Float8(f) => format_float8(*f),
            Datum::Text(s) => s.clone(),
            Datum::Timestamptz(t) => datetime::format_timestamptz(*t, tz),
            Datum::Interval(iv) => datetime::format_interval(iv),
            Datum::TextArray(items) => format_text_array(items),
            Datum::Void => String::new(),
            Datum::Xid8(v) => v.to_string(),
            Datum::Snapshot(s) => s.to_text(),
            Datum::Xid(v) => v.to_string(),
            Datum::Inet(i) => i.to_text(),
            Datum::Regtype(oid) => {
                Type::from_oid(*oid).map_or_else(|| oid.to_string(), |t| t.sql_name().to_owned())
            }
        })
    }
}

fn format_text_array(items: &[Option<String>]) -> String {
    let mut out = String::from("{");
    for (k, it) in items.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        match it {
            None => out.push_str("NULL"),
            Some(s) => {
                let needs = s.is_empty()
                    || s.eq_ignore_ascii_case("null")
                    || s.chars().any(|c| {
                        matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace()
                    });
                if needs {
                    out.push('"');
                    for c in s.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                } else {
                    out.push_str(s);
                }
            }
        }
    }
    out.push('}');
    out
}

/// float8 output with PostgreSQL 12+'s shortest-exact digits (`extra_float_digits` = 1):
/// fixed notation for decimal exponents -4 to 14, else `1e+15` style.
pub fn format_float8(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-4..15).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

/// `float8in`.
pub(crate) fn parse_float8(text: &str) -> Result<f64> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let bad = || QueryError::invalid_input("double precision", text);
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        if lower.starts_with(['+', '-']) && body == "nan" {
            return Err(bad());
        }
        return t.parse::<f64>().map_err(|_| bad());
    }
    if t.is_empty()
        || !t
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(bad());
    }
    let v: f64 = t.parse().map_err(|_| bad())?;
    let mantissa_nonzero = t
        .split(['e', 'E'])
        .next()
        .is_some_and(|m| m.bytes().any(|c| (b'1'..=b'9').contains(&c)));
    if v.is_infinite() || (v == 0.0 && mantissa_nonzero) {
        return Err(QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{t}\" is out of range for type double precision"),
        ));
    }
    Ok(v)
}

fn parse_int(text: &str, ty: Type) -> Result<i64> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let bad = || QueryError::invalid_input(ty.sql_name(), text);
    let b = t.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    // PostgreSQL 16+: 0x/0o/0b prefixes, and underscores between digits.
    let (radix, body) = match digits.get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("0x") => (16, &digits[2..]),
        Some("0o") => (8, &digits[2..]),
        Some("0b") => (2, &digits[2..]),
        _ => (10, digits),
    };
    if body.is_empty()
        || body.starts_with('_')
        || body.ends_with('_')
        || body.contains("__")
        || !body.chars().all(|c| c == '_' || c.is_digit(radix))
    {
        return Err(bad());
    }
    let range = || {
        QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!(
                "value \"{text}\" is out of range for type {}",
                ty.sql_name()
            ),
        )
    };
    let mut v: i128 = 0;
    for c in body.chars().filter(|c| *c != '_') {
        v = v * radix as i128 + c.to_digit(radix).unwrap_or(0) as i128;
        if v > i64::MAX as i128 + 1 {
            return Err(range());
        }
    }
    let v = if neg { -v } else { v };
    let (lo, hi) = match ty {
        Type::Int2 => (i16::MIN as i128, i16::MAX as i128),
        Type::Int4 => (i32::MIN as i128, i32::MAX as i128),
        _ => (i64::MIN as i128, i64::MAX as i128),
    };
    if v < lo || v > hi {
        return Err(range());
    }
    Ok(v as i64)
}

/// `boolin`.
pub(crate) fn parse_bool(text: &str) -> Result<bool> {
    let t = text.trim().to_ascii_lowercase();
    let ok = |w: &str, min: usize| t.len() >= min && w.starts_with(t.as_str());
    if ok("true", 1) || ok("yes", 1) || ok("on", 2) || t == "1" {
        Ok(true)
    } else if ok("false", 1) || ok("no", 1) || ok("off", 2) || t == "0" {
        Ok(false)
    } else {
        Err(QueryError::invalid_input("boolean", text))
    }
}

/// Context a cast may need: the zone and the transaction time (for `'now'`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CastCtx<'a> {
    /// Session TimeZone.
    pub tz: &'a TimeZone,
    /// Transaction timestamp.
    pub now: i64,
}

/// Text input (`typinput`) of `ty`.
pub(crate) fn from_text(text: &str, ty: Type, cx: CastCtx<'_>) -> Result<Datum> {
    Ok(match ty {
        Type::Bool => Datum::Bool(parse_bool(text)?),
        Type::Int2 => Datum::Int2(parse_int(text, ty)? as i16),
        Type::Int4 => Datum::Int4(parse_int(text, ty)? as i32),
        Type::Int8 => Datum::Int8(parse_int(text, ty)?),
        Type::Oid => {
            let v =
                parse_int(text, Type::Int8).map_err(|_| QueryError::invalid_input("oid", text))?;
            if v < -(u32::MAX as i64) || v > u32::MAX as i64 {
                return Err(QueryError::new(
                    sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("value \"{text}\" is out of range for type oid"),
                ));
            }
            Datum::Oid(v as u32)
        }
        Type::Numeric => Datum::Numeric(Numeric::parse(text)?),
        Type::Float8 => Datum::Float8(parse_float8(text)?),
        Type::Text | Type::Unknown => Datum::Text(text.to_owned()),
        Type::Name => Datum::Text(truncate_name(text)),
        Type::Timestamptz => Datum::Timestamptz(datetime::parse_timestamptz(text, cx.tz, cx.now)?),
        Type::Interval => Datum::Interval(datetime::parse_interval(text)?),
        Type::TextArray => {
            return Err(QueryError::not_supported(
                "input of type text[] is not supported",
            ))
        }
        Type::Void => Datum::Void,
        Type::Xid8 => Datum::Xid8(xid8::parse_xid8(text)?),
        Type::PgSnapshot | Type::TxidSnapshot => {
            Datum::Snapshot(Box::new(PgSnapshot::parse(text)?))
        }
        Type::Xid => Datum::Xid(network::parse_xid(text)?),
        Type::Inet => Datum::Inet(Inet::parse(text)?),
        Type::Regtype => Datum::Regtype(
            Type::from_name(text.trim())
                .map(Type::oid)
                .or_else(|| text.trim().parse::<u32>().ok())
                .ok_or_else(|| {
                    QueryError::new(
                        sqlstate::UNDEFINED_OBJECT,
                        format!("type \"{}\" does not exist", text.trim()),
                    )
                })?,
        ),
    })
}

fn truncate_name(s: &str) -> String {
    if s.len() <= 63 {
        return s.to_owned();
    }
    let mut end = 63;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Whether an explicit cast from `from` to `to` exists (pg_cast, or the I/O conversion casts
/// to and from the string types).
pub(crate) fn cast_exists(from: Type, to: Type) -> bool {
    use Type::*;
    if from == to || from == Unknown {
        return true;
    }
    if matches!(to, Text | Name) {
        return true;
    }
    if matches!(from, Text | Name) {
        return !matches!(to, Void);
    }
    match (from, to) {
        (a, b) if a.numeric_rank().is_some() && b.numeric_rank().is_some() => true,
        (Int4 | Int8 | Int2, Oid) | (Oid, Int4 | Int8 | Numeric | Float8) => true,
        (Bool, Int4) | (Int4, Bool) => true,
        (PgSnapshot, TxidSnapshot) | (TxidSnapshot, PgSnapshot) => true,
        (Xid8, Xid) | (Regtype, Oid) | (Oid, Regtype) => true,
        _ => false,
    }
}

/// Converts `d` (of type `from`) to `to`, with PostgreSQL's rounding and range errors.
pub(crate) fn cast(d: Datum, from: Type, to: Type, cx: CastCtx<'_>) -> Result<Datum> {
    if d.is_null() || from == to {
        return Ok(d);
    }
    if let (Datum::Bool(b), Type::Text | Type::Name | Type::Unknown) = (&d, to) {
        // booltext: the cast spells the word out, unlike boolout's t/f.
        return Ok(Datum::Text(if *b { "true" } else { "false" }.into()));
    }
    if let (Datum::Inet(i), Type::Text | Type::Name) = (&d, to) {
        // text(inet): network_show, which always prints the netmask.
        return Ok(Datum::Text(i.show()));
    }
    if matches!(to, Type::Text | Type::Unknown) {
        return Ok(Datum::Text(d.to_text(cx.tz).unwrap_or_default()));
    }
    if to == Type::Name {
        return Ok(Datum::Text(truncate_name(
            &d.to_text(cx.tz).unwrap_or_default(),
        )));
    }
    if let Datum::Text(s) = &d {
        return from_text(s, to, cx);
    }
    if matches!(to, Type::PgSnapshot | Type::TxidSnapshot) {
        if let Datum::Snapshot(_) = d {
            return Ok(d);
        }
    }
    match (&d, to) {
        (Datum::Regtype(v), Type::Oid) => return Ok(Datum::Oid(*v)),
        (Datum::Oid(v), Type::Regtype) => return Ok(Datum::Regtype(*v)),
        // Only reached through `xid = int4` (there is no cast from integer to xid).
        (Datum::Int4(v), Type::Xid) => return Ok(Datum::Xid(*v as u32)),
        _ => {}
    }
    if let (Datum::Xid8(v), Type::Xid) = (&d, to) {
        // xid(xid8): the low 32 bits, the epoch dropped.
        return Ok(Datum::Xid(*v as u32));
    }
    let int_range = |v: i128, to: Type| -> Result<Datum> {
        Ok(match to {
            Type::Int2 => {
                Datum::Int2(i16::try_from(v).map_err(|_| QueryError::out_of_range("smallint"))?)
            }
            Type::Int4 => {
                Datum::Int4(i32::try_from(v).map_err(|_| QueryError::out_of_range("integer"))?)
            }
            Type::Int8 => {
                Datum::Int8(i64::try_from(v).map_err(|_| QueryError::out_of_range("bigint"))?)
            }
            Type::Numeric => Datum::Numeric(Numeric::from_i128(v)),
            Type::Float8 => Datum::Float8(v as f64),
            Type::Oid => Datum::Oid(
                u32::try_from(v)
                    .or_else(|_| i32::try_from(v).map(|x| x as u32))
                    .map_err(|_| QueryError::out_of_range("OID"))?,
            ),
            Type::Bool => Datum::Bool(v != 0),
            _ => return Err(cannot_cast(from, to)),
        })
    };
    match d {
        Datum::Int2(v) => int_range(v as i128, to),
        Datum::Int4(v) => int_range(v as i128, to),
        Datum::Int8(v) => int_range(v as i128, to),
        Datum::Oid(v) => int_range(v as i128, to),
        Datum::Bool(b) if to == Type::Int4 => Ok(Datum::Int4(b as i32)),
        Datum::Numeric(n) => match to {
            Type::Float8 => Ok(Datum::Float8(n.to_f64())),
            Type::Int2 | Type::Int4 | Type::Int8 | Type::Oid => {
                let what = match to {
                    Type::Int2 => "smallint",
                    Type::Int4 => "integer",
                    Type::Int8 => "bigint",
                    _ => "OID",
                };
                match &n {
                    Numeric::NaN => {
                        return Err(QueryError::not_supported(format!(
                            "cannot convert NaN to {what}"
                        )))
                    }
                    Numeric::PosInf | Numeric::NegInf => {
                        return Err(QueryError::not_supported(format!(
                            "cannot convert infinity to {what}"
                        )))
                    }
                    _ => {}
                }
                let v = n
                    .to_i64_round()
                    .ok_or_else(|| QueryError::out_of_range(what))?;
                int_range(v as i128, to)
            }
            _ => Err(cannot_cast(from, to)),
        },
        Datum::Float8(f) => match to {
            Type::Numeric => Ok(Datum::Numeric(Numeric::from_f64(f))),
            Type::Int2 | Type::Int4 | Type::Int8 => {
                let what = match to {
                    Type::Int2 => "smallint",
                    Type::Int4 => "integer",
                    _ => "bigint",
                };
                let r = f.round_ties_even();
                if r.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r)
                {
                    return Err(QueryError::out_of_range(what));
                }
                int_range(r as i64 as i128, to)
            }
            _ => Err(cannot_cast(from, to)),
        },
        _ => Err(cannot_cast(from, to)),
    }
}

pub(crate) fn cannot_cast(from: Type, to: Type) -> QueryError {
    QueryError::new(
        sqlstate::CANNOT_COERCE,
        format!("cannot cast type {} to {}", from.sql_name(), to.sql_name()),
    )
}

/// Compares two non-NULL datums of the same type (PostgreSQL's btree order: NaN is above
/// every number, text compares bytewise as in the C collation).
pub(crate) fn compare(a: &Datum, b: &Datum) -> Ordering {
    use Datum::*;
    match (a, b) {
        (Bool(x), Bool(y)) => x.cmp(y),
        (Int2(x), Int2(y)) => x.cmp(y),
        (Int4(x), Int4(y)) => x.cmp(y),
        (Int8(x), Int8(y)) => x.cmp(y),
        (Oid(x), Oid(y)) => x.cmp(y),
        (Xid8(x), Xid8(y)) => x.cmp(y),
        (Xid(x), Xid(y)) | (Regtype(x), Regtype(y)) => x.cmp(y),
        (Inet(x), Inet(y)) => x.cmp_inet(y),
        (Numeric(x), Numeric(y)) => x.cmp_num(y),
        (Float8(x), Float8(y)) => cmp_f64(*x, *y),
        (Text(x), Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Timestamptz(x), Timestamptz(y)) => x.cmp(y),
        (Interval(x), Interval(y)) => x.cmp_iv(y),
        (TextArray(x), TextArray(y)) => x.cmp(y),
        (Null, Null) => Ordering::Equal,
        (Null, _) => Ordering::Greater,
        (_, Null) => Ordering::Less,
        _ => Ordering::Equal,
    }
}

/// float8 order: NaN equals NaN and is above everything, -0 equals 0.
pub(crate) fn cmp_f64(x: f64, y: f64) -> Ordering {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// A hashable key equal for datums that compare equal (GROUP BY, DISTINCT).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Null,
    Int(i128),
    Float(u64),
    Str(String),
    Arr(Vec<Option<String>>),
}

impl Key {
    pub(crate) fn of(d: &Datum) -> Key {
        match d {
            Datum::Null => Key::Null,
            Datum::Bool(b) => Key::Int(*b as i128),
            Datum::Int2(v) => Key::Int(*v as i128),
            Datum::Int4(v) => Key::Int(*v as i128),
            Datum::Int8(v) => Key::Int(*v as i128),
            Datum::Oid(v) => Key::Int(*v as i128),
            Datum::Xid8(v) => Key::Int(*v as i128),
            Datum::Snapshot(s) => Key::Str(s.to_text()),
            Datum::Xid(v) | Datum::Regtype(v) => Key::Int(*v as i128),
            Datum::Inet(i) => Key::Str(i.show()),
            Datum::Timestamptz(v) => Key::Int(*v as i128),
            Datum::Interval(iv) => Key::Int(iv.cmp_key()),
            Datum::Float8(f) => {
                let f = if *f == 0.0 { 0.0 } else { *f };
                Key::Float(if f.is_nan() { u64::MAX } else { f.to_bits() })
            }
            Datum::Numeric(n) => Key::Str(n.canonical()),
            Datum::Text(s) => Key::Str(s.clone()),
            Datum::TextArray(a) => Key::Arr(a.clone()),
            Datum::Void => Key::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float8_output_is_shortest_exact() {
        let check = |f: f64, s: &str| assert_eq!(format_float8(f), s);
        check(0.1, "0.1");
        check(1.0 / 3.0, "0.3333333333333333");
        check(1e15, "1e+15");
        check(1e14, "100000000000000");
        check(0.0001, "0.0001");
        check(0.00001, "1e-05");
        check(-1.5e300, "-1.5e+300");
        check(f64::INFINITY, "Infinity");
        check(f64::NAN, "NaN");
        check(123456.789, "123456.789");
    }

    #[test]
    fn int_input() {
        assert_eq!(parse_int(" 42 ", Type::Int4).unwrap(), 42);
        assert_eq!(parse_int("0x1F", Type::Int4).unwrap(), 31);
        assert_eq!(parse_int("-0b101", Type::Int4).unwrap(), -5);
        assert_eq!(parse_int("1_000", Type::Int4).unwrap(), 1000);
        for bad in ["1__0", "_1", "1_", "0x", "0xG"] {
            assert_eq!(
                parse_int(bad, Type::Int4).unwrap_err().sqlstate,
                "22P02",
                "{bad}"
            );
        }
        assert_eq!(
            parse_int("x", Type::Int4).unwrap_err().message,
            "invalid input syntax for type integer: \"x\""
        );
        assert_eq!(
            parse_int("99999", Type::Int2).unwrap_err().message,
            "value \"99999\" is out of range for type smallint"
        );
    }
}
