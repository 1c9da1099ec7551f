//! Numbers with units: PostgreSQL's `parse_int` / `parse_real`, its conversion tables, and the
//! output rule of `SHOW` (the largest unit that divides the value exactly).

use crate::flags::*;
use crate::tables::{BLCKSZ, XLOG_BLCKSZ};

const KB: f64 = 1024.0;
const MB: f64 = 1024.0 * 1024.0;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;
const TB: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;

/// `(unit, base unit, multiplier)`, largest unit first within each base unit.
static MEMORY_UNITS: &[(&str, u32, f64)] = &[
    ("TB", UNIT_BYTE, TB),
    ("GB", UNIT_BYTE, GB),
    ("MB", UNIT_BYTE, MB),
    ("kB", UNIT_BYTE, KB),
    ("B", UNIT_BYTE, 1.0),
    ("TB", UNIT_KB, TB / KB),
    ("GB", UNIT_KB, GB / KB),
    ("MB", UNIT_KB, MB / KB),
    ("kB", UNIT_KB, 1.0),
    ("B", UNIT_KB, 1.0 / KB),
    ("TB", UNIT_MB, TB / MB),
    ("GB", UNIT_MB, GB / MB),
    ("MB", UNIT_MB, 1.0),
    ("kB", UNIT_MB, KB / MB),
    ("B", UNIT_MB, 1.0 / MB),
    ("TB", UNIT_BLOCKS, TB / BLCKSZ as f64),
    ("GB", UNIT_BLOCKS, GB / BLCKSZ as f64),
    ("MB", UNIT_BLOCKS, MB / BLCKSZ as f64),
    ("kB", UNIT_BLOCKS, KB / BLCKSZ as f64),
    ("B", UNIT_BLOCKS, 1.0 / BLCKSZ as f64),
    ("TB", UNIT_XBLOCKS, TB / XLOG_BLCKSZ as f64),
    ("GB", UNIT_XBLOCKS, GB / XLOG_BLCKSZ as f64),
    ("MB", UNIT_XBLOCKS, MB / XLOG_BLCKSZ as f64),
    ("kB", UNIT_XBLOCKS, KB / XLOG_BLCKSZ as f64),
    ("B", UNIT_XBLOCKS, 1.0 / XLOG_BLCKSZ as f64),
];

static TIME_UNITS: &[(&str, u32, f64)] = &[
    ("d", UNIT_MS, 1000.0 * 60.0 * 60.0 * 24.0),
    ("h", UNIT_MS, 1000.0 * 60.0 * 60.0),
    ("min", UNIT_MS, 1000.0 * 60.0),
    ("s", UNIT_MS, 1000.0),
    ("ms", UNIT_MS, 1.0),
    ("us", UNIT_MS, 1.0 / 1000.0),
    ("d", UNIT_S, 60.0 * 60.0 * 24.0),
    ("h", UNIT_S, 60.0 * 60.0),
    ("min", UNIT_S, 60.0),
    ("s", UNIT_S, 1.0),
    ("ms", UNIT_S, 1.0 / 1000.0),
    ("us", UNIT_S, 1.0 / (1000.0 * 1000.0)),
    ("d", UNIT_MIN, 60.0 * 24.0),
    ("h", UNIT_MIN, 60.0),
    ("min", UNIT_MIN, 1.0),
    ("s", UNIT_MIN, 1.0 / 60.0),
    ("ms", UNIT_MIN, 1.0 / (1000.0 * 60.0)),
    ("us", UNIT_MIN, 1.0 / (1000.0 * 1000.0 * 60.0)),
];

pub(crate) const MEMORY_HINT: &str =
    "Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".";
pub(crate) const TIME_HINT: &str =
    "Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".";
pub(crate) const INT_RANGE_HINT: &str = "Value exceeds integer range.";

fn is_memory(unit: u32) -> bool {
    matches!(
        unit,
        UNIT_BYTE | UNIT_KB | UNIT_MB | UNIT_BLOCKS | UNIT_XBLOCKS
    )
}

fn table(unit: u32) -> impl Iterator<Item = &'static (&'static str, u32, f64)> {
    let t = if is_memory(unit) {
        MEMORY_UNITS
    } else {
        TIME_UNITS
    };
    t.iter().filter(move |e| e.1 == unit)
}

/// The base unit's name as `pg_settings.unit` and range errors show it.
pub(crate) fn unit_name(flags: u32) -> Option<&'static str> {
    Some(match flags & UNIT_MASK {
        UNIT_BYTE => "B",
        UNIT_KB => "kB",
        UNIT_MB => "MB",
        UNIT_BLOCKS | UNIT_XBLOCKS => "8kB",
        UNIT_MS => "ms",
        UNIT_S => "s",
        UNIT_MIN => "min",
        _ => return None,
    })
}

/// PostgreSQL's `convert_to_base_unit`: `value` in `unit_text` to the base unit, rounding a
/// fraction to a whole number of the next smaller unit.
fn to_base_unit(value: f64, unit_text: &str, base: u32) -> Option<f64> {
    let unit_text = unit_text.trim_end();
    let rows: Vec<_> = table(base).collect();
    for (k, (name, _, mult)) in rows.iter().enumerate() {
        if *name == unit_text {
            let mut v = value * mult;
            if let Some((_, _, next)) = rows.get(k + 1) {
                v = (v / next).round_ties_even() * next;
            }
            return Some(v);
        }
    }
    None
}

/// The longest prefix of `s` that C's `strtod` would read (decimal forms), as (value, rest).
fn strtod(s: &str) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut k = 0;
    if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
        k += 1;
    }
    let lower = s[k..].to_ascii_lowercase();
    for word in ["infinity", "inf", "nan"] {
        if lower.starts_with(word) {
            let sign = if b.first() == Some(&b'-') { -1.0 } else { 1.0 };
            let v = if word == "nan" {
                f64::NAN
            } else {
                sign * f64::INFINITY
            };
            return Some((v, &s[k + word.len()..]));
        }
    }
    let digits_start = k;
    while k < b.len() && b[k].is_ascii_digit() {
        k += 1;
    }
    let mut any = k > digits_start;
    if k < b.len() && b[k] == b'.' {
        k += 1;
        let f = k;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        any |= k > f;
    }
    if !any {
        return None;
    }
    if k < b.len() && (b[k] == b'e' || b[k] == b'E') {
        let mut m = k + 1;
        if m < b.len() && (b[m] == b'+' || b[m] == b'-') {
            m += 1;
        }
        let e = m;
        while m < b.len() && b[m].is_ascii_digit() {
            m += 1;
        }
        if m > e {
            k = m;
        }
    }
    s[..k].parse::<f64>().ok().map(|v| (v, &s[k..]))
}

/// C's `strtol(s, &end, 0)`: optional sign, then hex (`0x`), octal (leading `0`) or decimal.
/// Returns (value, rest, overflowed).
fn strtol(s: &str) -> Option<(i128, &str, bool)> {
    let b = s.as_bytes();
    let mut k = 0;
    let neg = match b.first() {
        Some(b'-') => {
            k = 1;
            true
        }
        Some(b'+') => {
            k = 1;
            false
        }
        _ => false,
    };
    let (radix, start) = if b.len() > k + 2
        && b[k] == b'0'
        && (b[k + 1] == b'x' || b[k + 1] == b'X')
        && b[k + 2].is_ascii_hexdigit()
    {
        (16, k + 2)
    } else if b.len() > k && b[k] == b'0' {
        (8, k)
    } else {
        (10, k)
    };
    let mut m = start;
    while m < b.len() && (b[m] as char).is_digit(radix) {
        m += 1;
    }
    if m == start {
        return None;
    }
    let mut v: i128 = 0;
    let mut overflow = false;
    for &c in &b[start..m] {
        v = v * radix as i128 + (c as char).to_digit(radix).unwrap_or(0) as i128;
        if v > i64::MAX as i128 {
            overflow = true;
            v = i64::MAX as i128;
        }
    }
    Some((if neg { -v } else { v }, &s[m..], overflow))
}

/// Why a number did not parse: `Some(hint)` when PostgreSQL gives one.
pub(crate) type ParseFail = Option<&'static str>;

/// PostgreSQL's `parse_int`: a number (decimal, `0x` hex, `0` octal, or with a fraction or
/// exponent) and an optional unit, converted to the base unit of `flags` and rounded.
pub(crate) fn parse_int(text: &str, flags: u32) -> Result<i64, ParseFail> {
    let t = text.trim_start();
    let (mut val, mut rest) = match strtol(t) {
        Some((v, rest, overflow)) => {
            if overflow || rest.starts_with(['.', 'e', 'E']) {
                let (d, r) = strtod(t).ok_or(None)?;
                (d, r)
            } else {
                (v as f64, rest)
            }
        }
        None => strtod(t).ok_or(None)?,
    };
    rest = rest.trim_start();
    if !rest.is_empty() {
        let unit = flags & UNIT_MASK;
        if unit == 0 {
            return Err(None);
        }
        val = to_base_unit(val, rest, unit).ok_or(Some(if is_memory(unit) {
            MEMORY_HINT
        } else {
            TIME_HINT
        }))?;
    }
    let val = val.round_ties_even();
    if val.is_nan() || val > i32::MAX as f64 || val < i32::MIN as f64 {
        return Err(Some(INT_RANGE_HINT));
    }
    Ok(val as i64)
}

/// PostgreSQL's `parse_real`.
pub(crate) fn parse_real(text: &str, flags: u32) -> Result<f64, ParseFail> {
    let t = text.trim_start();
    let (mut val, rest) = strtod(t).ok_or(None)?;
    if val.is_nan() {
        return Err(None);
    }
    let rest = rest.trim_start();
    if !rest.is_empty() {
        let unit = flags & UNIT_MASK;
        if unit == 0 {
            return Err(None);
        }
        val = to_base_unit(val, rest, unit).ok_or(Some(if is_memory(unit) {
            MEMORY_HINT
        } else {
            TIME_HINT
        }))?;
    }
    Ok(val)
}

/// `SHOW`'s form of an integer: in the largest unit that divides it exactly (only for positive
/// values of settings with a unit).
pub(crate) fn format_int(v: i64, flags: u32) -> String {
    let unit = flags & UNIT_MASK;
    if v <= 0 || unit == 0 {
        return v.to_string();
    }
    for (name, _, mult) in table(unit) {
        if *mult <= 1.0 || v % (*mult as i64) == 0 {
            return format!("{}{name}", (v as f64 / mult).round_ties_even() as i64);
        }
    }
    v.to_string()
}

/// `SHOW`'s form of a real: the first unit in which it is (to 1e-8) a whole number, else the
/// smallest unit.
pub(crate) fn format_real(v: f64, flags: u32) -> String {
    let unit = flags & UNIT_MASK;
    if v <= 0.0 || unit == 0 {
        return fmt_g(v);
    }
    let mut out = (v, "");
    for (name, _, mult) in table(unit) {
        let x = v / mult;
        out = (x, name);
        if x > 0.0 && ((x.round_ties_even() / x) - 1.0).abs() <= 1e-8 {
            break;
        }
    }
    format!("{}{}", fmt_g(out.0), out.1)
}

/// C's `%g`: six significant digits, scientific notation outside 1e-4 .. 1e6, trailing zeros
/// removed.
pub(crate) fn fmt_g(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{v:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mant), exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        strip(&format!("{v:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        let check = |t: &str, flags: u32, e: Result<i64, ParseFail>| {
            assert_eq!(parse_int(t, flags), e, "{t}")
        };
        check("128MB", UNIT_BLOCKS, Ok(16384));
        check("8kB", UNIT_BLOCKS, Ok(1));
        check("1GB", UNIT_KB, Ok(1_048_576));
        check("1.5GB", UNIT_MB, Ok(1536));
        check("30.1GB", UNIT_MB, Ok(30822));
        check(" 7 ", 0, Ok(7));
        check("0x1F", 0, Ok(31));
        check("0777", 0, Ok(511));
        check("-1", UNIT_KB, Ok(-1));
        check("1e3", 0, Ok(1000));
        check("2.5", 0, Ok(2));
        check("3.5", 0, Ok(4));
        check("1min", UNIT_S, Ok(60));
        check("1500ms", UNIT_S, Ok(2));
        check("1h", UNIT_MIN, Ok(60));
        check("100us", UNIT_MS, Ok(0));
        check("1 d", UNIT_MS, Ok(86_400_000));
        check("5 min ", UNIT_MS, Ok(300_000));
        check("1s", 0, Err(None));
        check("ten", 0, Err(None));
        check("", 0, Err(None));
        check("3 parsecs", UNIT_KB, Err(Some(MEMORY_HINT)));
        check("5 mins", UNIT_S, Err(Some(TIME_HINT)));
        check("1mb", UNIT_KB, Err(Some(MEMORY_HINT)));
        check("3000000000", 0, Err(Some(INT_RANGE_HINT)));
        check("10TB", UNIT_KB, Err(Some(INT_RANGE_HINT)));
    }

    #[test]
    fn reals() {
        let check = |t: &str, flags: u32, e: Result<f64, ParseFail>| {
            assert_eq!(parse_real(t, flags), e, "{t}")
        };
        check("0.5", 0, Ok(0.5));
        check("2ms", UNIT_MS, Ok(2.0));
        check("1s", UNIT_MS, Ok(1000.0));
        check("1e-3", 0, Ok(0.001));
        check("nan", 0, Err(None));
        check("x", 0, Err(None));
        check("1 fortnight", UNIT_MS, Err(Some(TIME_HINT)));
    }

    #[test]
    fn show_forms() {
        let check = |v: i64, flags: u32, e: &str| assert_eq!(format_int(v, flags), e, "{v}");
        check(16384, UNIT_BLOCKS, "128MB");
        check(1, UNIT_BLOCKS, "8kB");
        check(4096, UNIT_KB, "4MB");
        check(65536, UNIT_KB, "64MB");
        check(1, UNIT_MB, "1MB");
        check(1024, UNIT_MB, "1GB");
        check(300, UNIT_S, "5min");
        check(60, UNIT_S, "1min");
        check(86_400, UNIT_S, "1d");
        check(200, UNIT_MS, "200ms");
        check(1000, UNIT_MS, "1s");
        check(1440, UNIT_MIN, "1d");
        check(16 * 1024 * 1024, UNIT_BYTE, "16MB");
        check(0, UNIT_KB, "0");
        check(-1, UNIT_KB, "-1");
        check(100, 0, "100");
        check(128, UNIT_XBLOCKS, "1MB");
        let g = |v: f64, e: &str| assert_eq!(fmt_g(v), e, "{v}");
        g(0.9, "0.9");
        g(1.0, "1");
        g(0.0025, "0.0025");
        g(1000.0, "1000");
        g(100_000.0, "100000");
        g(1_000_000.0, "1e+06");
        g(f64::MAX, "1.79769e+308");
        g(0.00001, "1e-05");
        g(-1.0, "-1");
        g(0.123456789, "0.123457");
        assert_eq!(format_real(2.0, UNIT_MS), "2ms");
        assert_eq!(format_real(1000.0, UNIT_MS), "1s");
        assert_eq!(format_real(0.5, UNIT_MS), "500us");
        assert_eq!(format_real(0.0, UNIT_MS), "0");
    }
}
