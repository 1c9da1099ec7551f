//! Built-in functions that need no server state (PostgreSQL's utils/adt: varlena.c,
//! oracle_compat.c, numeric.c, float.c, int.c, timestamp.c, dbsize.c), and the function
//! resolution rules of parse_func.c (`func_select_candidate`).

use std::cmp::Ordering;

use crate::datetime::{
    self, Interval, TimeZone, Tm, USECS_PER_DAY, USECS_PER_HOUR, USECS_PER_MINUTE, USECS_PER_SEC,
};
use crate::error::{sqlstate, QueryError, Result};
use crate::expr::{pow_f64, pow_numeric, Builtin, EvalCx};
use crate::numeric::Numeric;
use crate::session::Volatility;
use crate::types::{Category, Type};
use crate::value::{self, Datum};
use num_bigint::BigInt;

/// One built-in function: PostgreSQL's pg_proc row in miniature.
pub(crate) struct BuiltinDef {
    pub name: &'static str,
    pub args: &'static [Type],
    pub ret: Type,
    pub volatility: Volatility,
    pub imp: Builtin,
}

use Type::*;
use Volatility::*;

macro_rules! f {
    ($name:expr, [$($a:expr),*], $ret:expr, $vol:expr, $imp:expr) => {
        BuiltinDef { name: $name, args: &[$($a),*], ret: $ret, volatility: $vol, imp: $imp }
    };
}

/// The built-in functions (all strict), in name order.
pub(crate) static BUILTINS: &[BuiltinDef] = &[
    f!("abs", [Int2], Int2, Immutable, |a, _| Ok(Datum::Int2(
        int(&a[0])
            .checked_abs()
            .and_then(|v| i16::try_from(v).ok())
            .ok_or_else(|| QueryError::out_of_range("smallint"))?
    ))),
    f!("abs", [Int4], Int4, Immutable, |a, _| Ok(Datum::Int4(
        i32::try_from(int(&a[0]).abs()).map_err(|_| QueryError::out_of_range("integer"))?
    ))),
    f!("abs", [Int8], Int8, Immutable, |a, _| Ok(Datum::Int8(
        int(&a[0])
            .checked_abs()
            .ok_or_else(|| QueryError::out_of_range("bigint"))?
    ))),
    f!("abs", [Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).abs())
    )),
    f!("abs", [Float8], Float8, Immutable, |a, _| Ok(
        Datum::Float8(flt(&a[0]).abs())
    )),
    f!("ascii", [Text], Int4, Immutable, |a, _| Ok(Datum::Int4(
        txt(&a[0]).chars().next().map_or(0, |c| c as i32)
    ))),
    f!("btrim", [Text], Text, Immutable, |a, _| Ok(Datum::Text(
        trim(txt(&a[0]), " ", true, true)
    ))),
    f!("btrim", [Text, Text], Text, Immutable, |a, _| Ok(
        Datum::Text(trim(txt(&a[0]), txt(&a[1]), true, true))
    )),
    f!("cbrt", [Float8], Float8, Immutable, |a, _| Ok(
        Datum::Float8(flt(&a[0]).cbrt())
    )),
    f!("ceil", [Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).ceil())
    )),
    f!("ceil", [Float8], Float8, Immutable, |a, _| Ok(
        Datum::Float8(flt(&a[0]).ceil())
    )),
    f!("ceiling", [Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).ceil())
    )),
    f!("ceiling", [Float8], Float8, Immutable, |a, _| Ok(
        Datum::Float8(flt(&a[0]).ceil())
    )),
    f!("char_length", [Text], Int4, Immutable, |a, _| Ok(
        Datum::Int4(txt(&a[0]).chars().count() as i32)
    )),
    f!("character_length", [Text], Int4, Immutable, |a, _| Ok(
        Datum::Int4(txt(&a[0]).chars().count() as i32)
    )),
    f!("chr", [Int4], Text, Immutable, chr),
    f!("clock_timestamp", [], Timestamptz, Volatile, |_, cx| Ok(
        Datum::Timestamptz(cx.session.clock_timestamp())
    )),
    f!("current_setting", [Text], Text, Stable, |a, cx| Ok(cx
        .session
        .current_setting(txt(&a[0]), false)?
        .map_or(Datum::Null, Datum::Text))),
    f!("current_setting", [Text, Bool], Text, Stable, |a, cx| Ok(
        cx.session
            .current_setting(txt(&a[0]), boolean(&a[1]))?
            .map_or(Datum::Null, Datum::Text)
    )),
    f!(
        "date_part",
        [Text, Timestamptz],
        Float8,
        Stable,
        |a, cx| Ok(Datum::Float8(
            extract_ts(txt(&a[0]), ts(&a[1]), &cx.tz)?.to_f64()
        ))
    ),
    f!("date_part", [Text, Interval], Float8, Immutable, |a, _| Ok(
        Datum::Float8(extract_iv(txt(&a[0]), &iv(&a[1]))?.to_f64())
    )),
    f!(
        "date_trunc",
        [Text, Timestamptz],
        Timestamptz,
        Stable,
        |a, cx| Ok(Datum::Timestamptz(date_trunc(
            txt(&a[0]),
            ts(&a[1]),
            &cx.tz.clone()
        )?))
    ),
    f!(
        "date_trunc",
        [Text, Timestamptz, Text],
        Timestamptz,
        Stable,
        |a, _| Ok(Datum::Timestamptz(date_trunc(
            txt(&a[0]),
            ts(&a[1]),
            &zone_arg(txt(&a[2]))?
        )?))
    ),
    f!(
        "date_trunc",
        [Text, Interval],
        Interval,
        Immutable,
        |a, _| Ok(Datum::Interval(date_trunc_iv(txt(&a[0]), &iv(&a[1]))?))
    ),
    f!("div", [Numeric, Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).int_div(num(&a[1]))?)
    )),
    f!("exp", [Float8], Float8, Immutable, |a, _| float_result(
        flt(&a[0]).exp(),
        flt(&a[0])
    )),
    f!("family", [Inet], Int4, Immutable, |a, _| Ok(Datum::Int4(
        if inet(&a[0])?.addr.is_ipv4() { 4 } else { 6 }
    ))),
    f!("floor", [Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).floor())
    )),
    f!("floor", [Float8], Float8, Immutable, |a, _| Ok(
        Datum::Float8(flt(&a[0]).floor())
    )),
    f!("host", [Inet], Text, Immutable, |a, _| Ok(Datum::Text(
        inet(&a[0])?.host_text()
    ))),
    f!("initcap", [Text], Text, Immutable, |a, _| Ok(Datum::Text(
        initcap(txt(&a[0]))
    ))),
    f!("justify_days", [Interval], Interval, Immutable, |a, _| Ok(
        Datum::Interval(justify_days(iv(&a[0]))?)
    )),
    f!("justify_hours", [Interval], Interval, Immutable, |a, _| Ok(
        Datum::Interval(justify_hours(iv(&a[0]))?)
    )),
    f!(
        "justify_interval",
        [Interval],
        Interval,
        Immutable,
        |a, _| Ok(Datum::Interval(justify_interval(iv(&a[0]))?))
    ),
    f!("left", [Text, Int4], Text, Immutable, |a, _| Ok(
        Datum::Text(left(txt(&a[0]), int(&a[1])))
    )),
    f!("length", [Text], Int4, Immutable, |a, _| Ok(Datum::Int4(
        txt(&a[0]).chars().count() as i32
    ))),
    f!("ln", [Float8], Float8, Immutable, |a, _| log_f(
        flt(&a[0]),
        f64::ln
    )),
    f!("log", [Float8], Float8, Immutable, |a, _| log_f(
        flt(&a[0]),
        f64::log10
    )),
    f!("log10", [Float8], Float8, Immutable, |a, _| log_f(
        flt(&a[0]),
        f64::log10
    )),
    f!("lower", [Text], Text, Immutable, |a, _| Ok(Datum::Text(
        txt(&a[0]).to_ascii_lowercase()
    ))),
    f!("lpad", [Text, Int4], Text, Immutable, |a, _| Ok(
        Datum::Text(pad(txt(&a[0]), int(&a[1]), " ", true))
    )),
    f!("lpad", [Text, Int4, Text], Text, Immutable, |a, _| Ok(
        Datum::Text(pad(txt(&a[0]), int(&a[1]), txt(&a[2]), true))
    )),
    f!("ltrim", [Text], Text, Immutable, |a, _| Ok(Datum::Text(
        trim(txt(&a[0]), " ", true, false)
    ))),
    f!("ltrim", [Text, Text], Text, Immutable, |a, _| Ok(
        Datum::Text(trim(txt(&a[0]), txt(&a[1]), true, false))
    )),
    f!("masklen", [Inet], Int4, Immutable, |a, _| Ok(Datum::Int4(
        i32::from(inet(&a[0])?.bits)
    ))),
    f!("mod", [Int2, Int2], Int2, Immutable, |a, cx| {
        crate::expr::binop(crate::expr::BinOp::Mod, a[0].clone(), a[1].clone(), cx)
    }),
    f!("mod", [Int4, Int4], Int4, Immutable, |a, cx| {
        crate::expr::binop(crate::expr::BinOp::Mod, a[0].clone(), a[1].clone(), cx)
    }),
    f!("mod", [Int8, Int8], Int8, Immutable, |a, cx| {
        crate::expr::binop(crate::expr::BinOp::Mod, a[0].clone(), a[1].clone(), cx)
    }),
    f!("mod", [Numeric, Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).rem(num(&a[1]))?)
    )),
    f!("now", [], Timestamptz, Stable, |_, cx| Ok(
        Datum::Timestamptz(cx.now)
    )),
    f!("octet_length", [Text], Int4, Immutable, |a, _| Ok(
        Datum::Int4(txt(&a[0]).len() as i32)
    )),
    f!("pg_size_bytes", [Text], Int8, Immutable, |a, _| Ok(
        Datum::Int8(size_bytes(txt(&a[0]))?)
    )),
    f!("pg_size_pretty", [Int8], Text, Immutable, |a, _| Ok(
        Datum::Text(size_pretty(&BigInt::from(int(&a[0]))))
    )),
    f!("pg_size_pretty", [Numeric], Text, Immutable, |a, _| {
        size_pretty_numeric(num(&a[0]))
    }),
    f!(
        "pg_snapshot_xmax",
        [PgSnapshot],
        Xid8,
        Immutable,
        |a, _| Ok(Datum::Xid8(snap(&a[0])?.xmax))
    ),
    f!(
        "pg_snapshot_xmin",
        [PgSnapshot],
        Xid8,
        Immutable,
        |a, _| Ok(Datum::Xid8(snap(&a[0])?.xmin))
    ),
    f!(
        "pg_visible_in_snapshot",
        [Xid8, PgSnapshot],
        Bool,
        Immutable,
        |a, _| {
            let Datum::Xid8(x) = a[0] else {
                return Err(QueryError::new(
                    sqlstate::INTERNAL_ERROR,
                    "xid8 argument expected",
                ));
            };
            Ok(Datum::Bool(snap(&a[1])?.visible(x)))
        }
    ),
    f!("pi", [], Float8, Immutable, |_, _| Ok(Datum::Float8(
        std::f64::consts::PI
    ))),
    f!("position", [Text, Text], Int4, Immutable, |a, _| Ok(
        Datum::Int4(strpos(txt(&a[1]), txt(&a[0])))
    )),
    f!("pow", [Float8, Float8], Float8, Immutable, |a, _| Ok(
        Datum::Float8(pow_f64(flt(&a[0]), flt(&a[1]))?)
    )),
    f!("pow", [Numeric, Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(pow_numeric(num(&a[0]), num(&a[1]))?)
    )),
    f!("power", [Float8, Float8], Float8, Immutable, |a, _| Ok(
        Datum::Float8(pow_f64(flt(&a[0]), flt(&a[1]))?)
    )),
    f!("power", [Numeric, Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(pow_numeric(num(&a[0]), num(&a[1]))?)
    )),
    f!("quote_ident", [Text], Text, Immutable, |a, _| Ok(
        Datum::Text(pgipc_guc::quote_identifier(txt(&a[0])))
    )),
    f!("quote_literal", [Text], Text, Immutable, |a, _| Ok(
        Datum::Text(quote_literal(txt(&a[0])))
    )),
    f!("repeat", [Text, Int4], Text, Immutable, repeat),
    f!("replace", [Text, Text, Text], Text, Immutable, |a, _| Ok(
        Datum::Text(replace(txt(&a[0]), txt(&a[1]), txt(&a[2])))
    )),
    f!("reverse", [Text], Text, Immutable, |a, _| Ok(Datum::Text(
        txt(&a[0]).chars().rev().collect()
    ))),
    f!("right", [Text, Int4], Text, Immutable, |a, _| Ok(
        Datum::Text(right(txt(&a[0]), int(&a[1])))
    )),
    f!("round", [Float8], Float8, Immutable, |a, _| Ok(
        Datum::Float8(flt(&a[0]).round_ties_even())
    )),
    f!("round", [Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).round(0))
    )),
    f!("round", [Numeric, Int4], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).round(int(&a[1]) as i32))
    )),
    f!("rpad", [Text, Int4], Text, Immutable, |a, _| Ok(
        Datum::Text(pad(txt(&a[0]), int(&a[1]), " ", false))
    )),
    f!("rpad", [Text, Int4, Text], Text, Immutable, |a, _| Ok(
        Datum::Text(pad(txt(&a[0]), int(&a[1]), txt(&a[2]), false))
    )),
    f!("rtrim", [Text], Text, Immutable, |a, _| Ok(Datum::Text(
        trim(txt(&a[0]), " ", false, true)
    ))),
    f!("rtrim", [Text, Text], Text, Immutable, |a, _| Ok(
        Datum::Text(trim(txt(&a[0]), txt(&a[1]), false, true))
    )),
    f!("set_config", [Text, Text, Bool], Text, Volatile, |a, cx| {
        let v = cx
            .session
            .set_config(txt(&a[0]), txt(&a[1]), boolean(&a[2]))?;
        cx.tz = cx.session.time_zone();
        Ok(Datum::Text(v))
    }),
    f!("sign", [Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(Numeric::from_i64(
            match num(&a[0]).cmp_num(&Numeric::zero()) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            }
        ))
    )),
    f!("sign", [Float8], Float8, Immutable, |a, _| {
        let x = flt(&a[0]);
        Ok(Datum::Float8(if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }))
    }),
    f!(
        "split_part",
        [Text, Text, Int4],
        Text,
        Immutable,
        split_part
    ),
    f!("sqrt", [Float8], Float8, Immutable, |a, _| {
        let x = flt(&a[0]);
        if x < 0.0 {
            return Err(QueryError::new(
                sqlstate::INVALID_ARGUMENT_FOR_POWER_FUNCTION,
                "cannot take square root of a negative number",
            ));
        }
        Ok(Datum::Float8(x.sqrt()))
    }),
    f!("sqrt", [Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).sqrt()?)
    )),
    f!("starts_with", [Text, Text], Bool, Immutable, |a, _| Ok(
        Datum::Bool(txt(&a[0]).starts_with(txt(&a[1])))
    )),
    f!("statement_timestamp", [], Timestamptz, Stable, |_, cx| Ok(
        Datum::Timestamptz(cx.session.statement_timestamp())
    )),
    f!("strpos", [Text, Text], Int4, Immutable, |a, _| Ok(
        Datum::Int4(strpos(txt(&a[0]), txt(&a[1])))
    )),
    f!("substr", [Text, Int4], Text, Immutable, |a, _| Ok(
        Datum::Text(substr(txt(&a[0]), int(&a[1]), None)?)
    )),
    f!("substr", [Text, Int4, Int4], Text, Immutable, |a, _| Ok(
        Datum::Text(substr(txt(&a[0]), int(&a[1]), Some(int(&a[2])))?)
    )),
    f!("substring", [Text, Int4], Text, Immutable, |a, _| Ok(
        Datum::Text(substr(txt(&a[0]), int(&a[1]), None)?)
    )),
    f!("substring", [Text, Int4, Int4], Text, Immutable, |a, _| Ok(
        Datum::Text(substr(txt(&a[0]), int(&a[1]), Some(int(&a[2])))?)
    )),
    f!(
        "to_timestamp",
        [Float8],
        Timestamptz,
        Immutable,
        to_timestamp
    ),
    f!(
        "transaction_timestamp",
        [],
        Timestamptz,
        Stable,
        |_, cx| Ok(Datum::Timestamptz(cx.now))
    ),
    f!("trunc", [Float8], Float8, Immutable, |a, _| Ok(
        Datum::Float8(flt(&a[0]).trunc())
    )),
    f!("trunc", [Numeric], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).trunc(0))
    )),
    f!("trunc", [Numeric, Int4], Numeric, Immutable, |a, _| Ok(
        Datum::Numeric(num(&a[0]).trunc(int(&a[1]) as i32))
    )),
    f!(
        "txid_snapshot_xmax",
        [TxidSnapshot],
        Int8,
        Immutable,
        |a, _| Ok(Datum::Int8(snap(&a[0])?.xmax as i64))
    ),
    f!(
        "txid_snapshot_xmin",
        [TxidSnapshot],
        Int8,
        Immutable,
        |a, _| Ok(Datum::Int8(snap(&a[0])?.xmin as i64))
    ),
    f!(
        "txid_visible_in_snapshot",
        [Int8, TxidSnapshot],
        Bool,
        Immutable,
        |a, _| Ok(Datum::Bool(snap(&a[1])?.visible(int(&a[0]) as u64)))
    ),
    f!("upper", [Text], Text, Immutable, |a, _| Ok(Datum::Text(
        txt(&a[0]).to_ascii_uppercase()
    ))),
];

// ---- argument accessors (arguments are already of the declared types) ----

fn int(d: &Datum) -> i64 {
    match d {
        Datum::Int2(v) => *v as i64,
        Datum::Int4(v) => *v as i64,
        Datum::Int8(v) => *v,
        Datum::Oid(v) => *v as i64,
        _ => 0,
    }
}
fn flt(d: &Datum) -> f64 {
    match d {
        Datum::Float8(f) => *f,
        _ => f64::NAN,
    }
}
/// An inet argument.
fn inet(d: &Datum) -> Result<&crate::network::Inet> {
    match d {
        Datum::Inet(i) => Ok(i),
        _ => Err(QueryError::new(
            sqlstate::INTERNAL_ERROR,
            "inet argument expected",
        )),
    }
}

/// A pg_snapshot / txid_snapshot argument.
fn snap(d: &Datum) -> Result<&crate::xid8::PgSnapshot> {
    match d {
        Datum::Snapshot(s) => Ok(s),
        _ => Err(QueryError::new(
            sqlstate::INTERNAL_ERROR,
            "pg_snapshot argument expected",
        )),
    }
}

fn txt(d: &Datum) -> &str {
    match d {
        Datum::Text(s) => s,
        _ => "",
    }
}
fn boolean(d: &Datum) -> bool {
    matches!(d, Datum::Bool(true))
}
static ZERO: Numeric = Numeric::NaN;
fn num(d: &Datum) -> &Numeric {
    match d {
        Datum::Numeric(n) => n,
        _ => &ZERO,
    }
}
fn ts(d: &Datum) -> i64 {
    match d {
        Datum::Timestamptz(t) => *t,
        _ => 0,
    }
}
fn iv(d: &Datum) -> Interval {
    match d {
        Datum::Interval(i) => *i,
        _ => Interval::default(),
    }
}

fn float_result(r: f64, a: f64) -> Result<Datum> {
    if r.is_infinite() && !a.is_infinite() {
        return Err(QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: overflow",
        ));
    }
    if r == 0.0 && a.is_finite() && a > -745.2 {
        // exp underflow only for very negative arguments
    }
    Ok(Datum::Float8(r))
}

fn log_f(x: f64, f: fn(f64) -> f64) -> Result<Datum> {
    if x == 0.0 {
        return Err(QueryError::new(
            sqlstate::INVALID_ARGUMENT_FOR_LOG,
            "cannot take logarithm of zero",
        ));
    }
    if x < 0.0 {
        return Err(QueryError::new(
            sqlstate::INVALID_ARGUMENT_FOR_LOG,
            "cannot take logarithm of a negative number",
        ));
    }
    Ok(Datum::Float8(f(x)))
}

/// Largest text a function builds (PostgreSQL's 1 GB varlena limit).
const MAX_TEXT: usize = (1 << 30) - 1;

fn too_long() -> QueryError {
    QueryError::new(
        sqlstate::PROGRAM_LIMIT_EXCEEDED,
        "requested length too large",
    )
}

fn chr(a: &[Datum], _: &mut EvalCx<'_>) -> Result<Datum> {
    let v = int(&a[0]);
    if v == 0 {
        return Err(QueryError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            "null character not permitted",
        ));
    }
    match u32::try_from(v).ok().and_then(char::from_u32) {
        Some(c) => Ok(Datum::Text(c.to_string())),
        None => Err(QueryError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            "requested character too large for encoding: ".to_owned() + &v.to_string(),
        )),
    }
}

fn repeat(a: &[Datum], _: &mut EvalCx<'_>) -> Result<Datum> {
    let s = txt(&a[0]);
    let n = int(&a[1]).max(0) as usize;
    if s.len().checked_mul(n).is_none_or(|l| l > MAX_TEXT) {
        return Err(too_long());
    }
    Ok(Datum::Text(s.repeat(n)))
}

fn trim(s: &str, chars: &str, leading: bool, trailing: bool) -> String {
    let set: Vec<char> = chars.chars().collect();
    let mut r = s;
    if leading {
        r = r.trim_start_matches(|c| set.contains(&c));
    }
    if trailing {
        r = r.trim_end_matches(|c| set.contains(&c));
    }
    r.to_owned()
}

fn left(s: &str, n: i64) -> String {
    let len = s.chars().count() as i64;
    let take = if n >= 0 { n.min(len) } else { (len + n).max(0) };
    s.chars().take(take as usize).collect()
}

fn right(s: &str, n: i64) -> String {
    let len = s.chars().count() as i64;
    let take = if n >= 0 { n.min(len) } else { (len + n).max(0) };
    s.chars().skip((len - take) as usize).collect()
}

fn pad(s: &str, len: i64, fill: &str, leading: bool) -> String {
    let len = len.clamp(0, MAX_TEXT as i64 / 4) as usize;
    let chars: Vec<char> = s.chars().collect();
    if chars.len() >= len {
        return chars[..len].iter().collect();
    }
    let fillc: Vec<char> = fill.chars().collect();
    if fillc.is_empty() {
        return s.to_owned();
    }
    let padding: String = fillc.iter().cycle().take(len - chars.len()).collect();
    if leading {
        padding + s
    } else {
        s.to_owned() + &padding
    }
}

fn strpos(s: &str, sub: &str) -> i32 {
    match s.find(sub) {
        Some(b) => s[..b].chars().count() as i32 + 1,
        None => 0,
    }
}

fn substr(s: &str, start: i64, count: Option<i64>) -> Result<String> {
    let (from, to) = match count {
        Some(c) if c < 0 => {
            return Err(QueryError::new(
                sqlstate::SUBSTRING_ERROR,
                "negative substring length not allowed",
            ))
        }
        Some(c) => (start, start.saturating_add(c)),
        None => (start, i64::MAX),
    };
    let from = from.max(1);
    if to <= from {
        return Ok(String::new());
    }
    Ok(s.chars()
        .skip((from - 1) as usize)
        .take(usize::try_from(to - from).unwrap_or(usize::MAX))
        .collect())
}

fn replace(s: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        s.to_owned()
    } else {
        s.replace(from, to)
    }
}

fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if word {
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c.to_ascii_uppercase());
            }
            word = true;
        } else {
            out.push(c);
            word = false;
        }
    }
    out
}

fn quote_literal(s: &str) -> String {
    let mut out = String::new();
    if s.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn split_part(a: &[Datum], _: &mut EvalCx<'_>) -> Result<Datum> {
    let (s, d, n) = (txt(&a[0]), txt(&a[1]), int(&a[2]));
    if n == 0 {
        return Err(QueryError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            "field position must not be zero",
        ));
    }
    let parts: Vec<&str> = if d.is_empty() {
        vec![s]
    } else {
        s.split(d).collect()
    };
    let idx = if n > 0 { n - 1 } else { parts.len() as i64 + n };
    Ok(Datum::Text(
        usize::try_from(idx)
            .ok()
            .and_then(|i| parts.get(i))
            .map_or("", |p| p)
            .to_owned(),
    ))
}

fn to_timestamp(a: &[Datum], _: &mut EvalCx<'_>) -> Result<Datum> {
    let f = flt(&a[0]);
    if f.is_nan() {
        return Err(QueryError::new(
            sqlstate::DATETIME_FIELD_OVERFLOW,
            "timestamp cannot be NaN",
        ));
    }
    if f.is_infinite() {
        return Ok(Datum::Timestamptz(if f > 0.0 {
            datetime::TS_NOEND
        } else {
            datetime::TS_NOBEGIN
        }));
    }
    let us = (f * 1e6).round_ties_even() - datetime::UNIX_TO_PG_USECS as f64;
    if !(-2.1e17..9.2e18).contains(&us) {
        return Err(QueryError::new(
            sqlstate::DATETIME_FIELD_OVERFLOW,
            format!("timestamp out of range: \"{}\"", value::format_float8(f)),
        ));
    }
    Ok(Datum::Timestamptz(datetime::check_ts(us as i64)?))
}

// ---- sizes (dbsize.c) ----

/// `pg_size_pretty`: below 10240 in bytes, then each unit while the value (kept in half
/// units, PostgreSQL's trick for rounding) is below 20479 half units. `floor` shifts as the
/// bigint version's `>>` does; the numeric version truncates.
fn size_pretty_with(bytes: &BigInt, floor: bool) -> String {
    use num_integer_shim::div_floor;
    use num_traits::Signed;
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes.abs() < BigInt::from(10 * 1024) {
        return format!("{bytes} bytes");
    }
    let div = |x: &BigInt, d: i64| if floor { div_floor(x, d) } else { x / d };
    let mut half = div(bytes, 512);
    for (i, u) in UNITS.iter().enumerate() {
        if half.abs() < BigInt::from(20 * 1024 - 1) || i == UNITS.len() - 1 {
            let adj = if half.is_negative() { -1 } else { 1 };
            return format!("{} {u}", (half + adj) / 2);
        }
        half = div(&half, 1024);
    }
    unreachable_text()
}

fn unreachable_text() -> String {
    String::new()
}

mod num_integer_shim {
    use num_bigint::BigInt;
    use num_traits::Signed;
    pub(super) fn div_floor(x: &BigInt, d: i64) -> BigInt {
        let q = x / d;
        if x.is_negative() && (&q * d) != *x {
            q - 1
        } else {
            q
        }
    }
}

fn size_pretty(bytes: &BigInt) -> String {
    size_pretty_with(bytes, true)
}

fn size_pretty_numeric(n: &Numeric) -> Result<Datum> {
    match n {
        Numeric::Finite { .. } => {
            let whole = n.trunc(0).to_bigint().unwrap_or_default();
            if num_traits::Signed::abs(&whole) < BigInt::from(10 * 1024) {
                return Ok(Datum::Text(format!("{n} bytes")));
            }
            Ok(Datum::Text(size_pretty_with(&whole, false)))
        }
        _ => Ok(Datum::Text(format!("{n} bytes"))),
    }
}

fn size_bytes(text: &str) -> Result<i64> {
    let t = text.trim();
    let num_end = t
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || ((*c == '-' || *c == '+') && *i == 0)))
        .map_or(t.len(), |(i, _)| i);
    let (numpart, rest) = t.split_at(num_end);
    let mut numpart = numpart.to_owned();
    let mut rest = rest;
    // exponent
    if let Some(r) = rest.strip_prefix(['e', 'E']) {
        let e_end = r
            .char_indices()
            .find(|(i, c)| !(c.is_ascii_digit() || ((*c == '-' || *c == '+') && *i == 0)))
            .map_or(r.len(), |(i, _)| i);
        if e_end > 0 {
            numpart = format!("{numpart}e{}", &r[..e_end]);
            rest = &r[e_end..];
        }
    }
    let n = Numeric::parse(&numpart).map_err(|_| {
        QueryError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("invalid size: \"{text}\""),
        )
    })?;
    let unit = rest.trim();
    let mult: i64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        "tb" => 1 << 40,
        "pb" => 1 << 50,
        _ => {
            return Err(QueryError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("invalid size: \"{text}\""),
            )
            .with_detail(format!("Invalid size unit: \"{unit}\"."))
            .with_hint(
                "Valid units are \"bytes\", \"B\", \"kB\", \"MB\", \"GB\", \"TB\", and \"PB\".",
            ))
        }
    };
    let v = n.mul(&Numeric::from_i64(mult))?;
    v.trunc(0)
        .to_i64_round()
        .ok_or_else(|| QueryError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range"))
}

// ---- date/time (timestamp.c) ----

fn zone_arg(name: &str) -> Result<TimeZone> {
    TimeZone::from_setting(name).map_err(|_| {
        QueryError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("time zone \"{name}\" not recognized"),
        )
    })
}

fn unit_unrecognized(kind: &str, unit: &str) -> QueryError {
    QueryError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        format!("unit \"{unit}\" not recognized for type {kind}"),
    )
}

fn unit_unsupported(kind: &str, unit: &str) -> QueryError {
    QueryError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("unit \"{unit}\" not supported for type {kind}"),
    )
}

/// Canonical unit name of a `date_trunc`/`extract` field (datetime.c's deltatktbl/datetktbl).
fn canon_unit(u: &str) -> Option<&'static str> {
    Some(match u.to_ascii_lowercase().trim() {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => "microseconds",
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => "milliseconds",
        "second" | "seconds" | "s" | "sec" | "secs" => "second",
        "minute" | "minutes" | "m" | "min" | "mins" => "minute",
        "hour" | "hours" | "h" | "hr" | "hrs" => "hour",
        "day" | "days" | "d" => "day",
        "week" | "weeks" | "w" => "week",
        "month" | "months" | "mon" | "mons" => "month",
        "quarter" | "qtr" => "quarter",
        "year" | "years" | "y" | "yr" | "yrs" => "year",
        "decade" | "decades" | "dec" => "decade",
        "century" | "centuries" | "c" | "cent" => "century",
        "millennium" | "millennia" | "mil" | "mils" | "millenniums" => "millennium",
        "epoch" => "epoch",
        "dow" => "dow",
        "isodow" => "isodow",
        "doy" => "doy",
        "isoyear" => "isoyear",
        "timezone" => "timezone",
        "timezone_hour" => "timezone_hour",
        "timezone_minute" => "timezone_minute",
        "julian" | "j" => "julian",
        _ => return None,
    })
}

pub(crate) fn date_trunc(unit: &str, t: i64, tz: &TimeZone) -> Result<i64> {
    let u = canon_unit(unit).ok_or_else(|| unit_unrecognized("timestamp with time zone", unit))?;
    if t == datetime::TS_NOBEGIN || t == datetime::TS_NOEND {
        return Ok(t);
    }
    let (local, _) = tz.utc_to_local(t);
    let mut tm = Tm::from_local_usecs(local);
    match u {
        "microseconds" => return Ok(t),
        "milliseconds" => tm.usec = tm.usec / 1000 * 1000,
        "second" => tm.usec = 0,
        "minute" => (tm.second, tm.usec) = (0, 0),
        "hour" => (tm.minute, tm.second, tm.usec) = (0, 0, 0),
        "day" | "week" | "month" | "quarter" | "year" | "decade" | "century" | "millennium" => {
            (tm.hour, tm.minute, tm.second, tm.usec) = (0, 0, 0, 0);
            match u {
                "week" => {
                    let back = (tm.dow() + 6) % 7;
                    let l = tm.to_local_usecs().ok_or_else(datetime::ts_out_of_range)?
                        - back * USECS_PER_DAY;
                    return tz.local_to_utc(l);
                }
                "month" => tm.day = 1,
                "quarter" => (tm.month, tm.day) = ((tm.month - 1) / 3 * 3 + 1, 1),
                "year" => (tm.month, tm.day) = (1, 1),
                "decade" => {
                    tm.year = if tm.year > 0 {
                        tm.year / 10 * 10
                    } else {
                        -((8 - (tm.year - 1)) / 10) * 10
                    };
                    (tm.month, tm.day) = (1, 1);
                }
                "century" => {
                    tm.year = if tm.year > 0 {
                        (tm.year + 99) / 100 * 100 - 99
                    } else {
                        -((99 - (tm.year - 1)) / 100) * 100 + 1
                    };
                    (tm.month, tm.day) = (1, 1);
                }
                "millennium" => {
                    tm.year = if tm.year > 0 {
                        (tm.year + 999) / 1000 * 1000 - 999
                    } else {
                        -((999 - (tm.year - 1)) / 1000) * 1000 + 1
                    };
                    (tm.month, tm.day) = (1, 1);
                }
                _ => {}
            }
        }
        _ => return Err(unit_unsupported("timestamp with time zone", unit)),
    }
    let l = tm.to_local_usecs().ok_or_else(datetime::ts_out_of_range)?;
    tz.local_to_utc(l)
}

fn date_trunc_iv(unit: &str, v: &Interval) -> Result<Interval> {
    let u = canon_unit(unit).ok_or_else(|| unit_unrecognized("interval", unit))?;
    let mut r = *v;
    let t = v.micros;
    match u {
        "microseconds" => {}
        "milliseconds" => r.micros = t / 1000 * 1000,
        "second" => r.micros = t / USECS_PER_SEC * USECS_PER_SEC,
        "minute" => r.micros = t / USECS_PER_MINUTE * USECS_PER_MINUTE,
        "hour" => r.micros = t / USECS_PER_HOUR * USECS_PER_HOUR,
        "day" => r.micros = 0,
        "month" => (r.days, r.micros) = (0, 0),
        "quarter" => (r.months, r.days, r.micros) = (v.months / 3 * 3, 0, 0),
        "year" => (r.months, r.days, r.micros) = (v.months / 12 * 12, 0, 0),
        "decade" => (r.months, r.days, r.micros) = (v.months / 120 * 120, 0, 0),
        "century" => (r.months, r.days, r.micros) = (v.months / 1200 * 1200, 0, 0),
        "millennium" => (r.months, r.days, r.micros) = (v.months / 12000 * 12000, 0, 0),
        "week" => {
            return Err(QueryError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!("unit \"{unit}\" not supported for type interval"),
            )
            .with_detail("Months usually have fractional weeks."))
        }
        _ => return Err(unit_unsupported("interval", unit)),
    }
    Ok(r)
}

fn nscaled(v: i128, scale: u32) -> Numeric {
    Numeric::new(BigInt::from(v), scale)
}

fn iso_week(tm: Tm) -> (i64, i64) {
    // ISO 8601: week 1 contains the year's first Thursday.
    let days = datetime::days_from_civil(tm.year, tm.month, tm.day);
    let isodow = (days + 3).rem_euclid(7) + 1; // 1 = Monday
    let thursday = days - isodow + 4;
    let (ty, _, _) = datetime::civil_from_days(thursday);
    let jan1 = datetime::days_from_civil(ty, 1, 1);
    (ty, (thursday - jan1) / 7 + 1)
}

/// `extract(field from timestamptz)` as numeric (PostgreSQL 14+).
pub(crate) fn extract_ts(unit: &str, t: i64, tz: &TimeZone) -> Result<Numeric> {
    let u = canon_unit(unit).ok_or_else(|| unit_unrecognized("timestamp with time zone", unit))?;
    if t == datetime::TS_NOBEGIN || t == datetime::TS_NOEND {
        let pos = t == datetime::TS_NOEND;
        return match u {
            "epoch" | "year" | "decade" | "century" | "millennium" | "julian" | "isoyear" => {
                Ok(if pos {
                    Numeric::PosInf
                } else {
                    Numeric::NegInf
                })
            }
            _ => Err(null_marker()),
        };
    }
    let (local, off) = tz.utc_to_local(t);
    let tm = Tm::from_local_usecs(local);
    let sec_us = tm.second as i128 * 1_000_000 + tm.usec as i128;
    Ok(match u {
        "microseconds" => nscaled(sec_us, 0),
        "milliseconds" => nscaled(sec_us, 3),
        "second" => nscaled(sec_us, 6),
        "minute" => nscaled(tm.minute as i128, 0),
        "hour" => nscaled(tm.hour as i128, 0),
        "day" => nscaled(tm.day as i128, 0),
        "month" => nscaled(tm.month as i128, 0),
        "quarter" => nscaled(((tm.month - 1) / 3 + 1) as i128, 0),
        "year" => nscaled(if tm.year > 0 { tm.year } else { tm.year - 1 } as i128, 0),
        "decade" => nscaled(
            if tm.year >= 0 {
                tm.year / 10
            } else {
                -((8 - (tm.year - 1)) / 10)
            } as i128,
            0,
        ),
        "century" => nscaled(
            if tm.year > 0 {
                (tm.year + 99) / 100
            } else {
                -((99 - (tm.year - 1)) / 100)
            } as i128,
            0,
        ),
        "millennium" => nscaled(
            if tm.year > 0 {
                (tm.year + 999) / 1000
            } else {
                -((999 - (tm.year - 1)) / 1000)
            } as i128,
            0,
        ),
        "dow" => nscaled(tm.dow() as i128, 0),
        "isodow" => nscaled(if tm.dow() == 0 { 7 } else { tm.dow() } as i128, 0),
        "doy" => nscaled(tm.doy() as i128, 0),
        "week" => nscaled(iso_week(tm).1 as i128, 0),
        "isoyear" => {
            let y = iso_week(tm).0;
            nscaled(if y > 0 { y } else { y - 1 } as i128, 0)
        }
        "epoch" => nscaled(t as i128 + datetime::UNIX_TO_PG_USECS as i128, 6),
        "timezone" => nscaled(off as i128, 0),
        "timezone_hour" => nscaled((off / 3600) as i128, 0),
        "timezone_minute" => nscaled((off / 60 % 60) as i128, 0),
        "julian" => {
            let jd = datetime::days_from_civil(tm.year, tm.month, tm.day) + 2_440_588;
            let frac = (local.rem_euclid(USECS_PER_DAY)) as i128;
            // julian = jd + time/86400 with numeric division
            let n = nscaled(jd as i128, 0);
            if frac == 0 {
                n
            } else {
                n.add(&nscaled(frac, 6).div(&nscaled(86_400, 0))?)?
            }
        }
        _ => return Err(unit_unsupported("timestamp with time zone", unit)),
    })
}

/// Marker for an infinite timestamp's field that is NULL in PostgreSQL.
fn null_marker() -> QueryError {
    QueryError::new("00000", "null")
}

pub(crate) fn extract_iv(unit: &str, v: &Interval) -> Result<Numeric> {
    let u = canon_unit(unit).ok_or_else(|| unit_unrecognized("interval", unit))?;
    let t = v.micros as i128;
    Ok(match u {
        "microseconds" => nscaled(t % 60_000_000, 0),
        "milliseconds" => nscaled(t % 60_000_000, 3),
        "second" => nscaled(t % 60_000_000, 6),
        "minute" => nscaled(t / 60_000_000 % 60, 0),
        "hour" => nscaled(t / 3_600_000_000, 0),
        "day" => nscaled(v.days as i128, 0),
        "month" => nscaled((v.months % 12) as i128, 0),
        "quarter" => nscaled(((v.months % 12) / 3 + 1) as i128, 0),
        "year" => nscaled((v.months / 12) as i128, 0),
        "decade" => nscaled((v.months / 120) as i128, 0),
        "century" => nscaled((v.months / 1200) as i128, 0),
        "millennium" => nscaled((v.months / 12000) as i128, 0),
        "epoch" => {
            let secs = 31_557_600i128 * (v.months / 12) as i128
                + 2_592_000i128 * (v.months % 12) as i128
                + 86_400i128 * v.days as i128;
            nscaled(secs * 1_000_000 + t, 6)
        }
        _ => return Err(unit_unsupported("interval", unit)),
    })
}

/// Maps the marker of [`extract_ts`] for an infinite timestamp to NULL.
pub(crate) fn extract_result(r: Result<Numeric>) -> Result<Datum> {
    match r {
        Ok(n) => Ok(Datum::Numeric(n)),
        Err(e) if e.sqlstate == "00000" => Ok(Datum::Null),
        Err(e) => Err(e),
    }
}

fn justify_hours(v: Interval) -> Result<Interval> {
    let mut r = v;
    let extra = v.micros / USECS_PER_DAY;
    r.micros = v.micros % USECS_PER_DAY;
    r.days = v
        .days
        .checked_add(i32::try_from(extra).map_err(|_| datetime::interval_out_of_range())?)
        .ok_or_else(datetime::interval_out_of_range)?;
    if r.days > 0 && r.micros < 0 {
        r.micros += USECS_PER_DAY;
        r.days -= 1;
    } else if r.days < 0 && r.micros > 0 {
        r.micros -= USECS_PER_DAY;
        r.days += 1;
    }
    Ok(r)
}

fn justify_interval(v: Interval) -> Result<Interval> {
    let oor = datetime::interval_out_of_range;
    let (mut month, mut day, mut time) = (v.months, v.days, v.micros);
    let wholeday = time / USECS_PER_DAY;
    time -= wholeday * USECS_PER_DAY;
    day = day
        .checked_add(i32::try_from(wholeday).map_err(|_| oor())?)
        .ok_or_else(oor)?;
    let wholemonth = day / 30;
    day -= wholemonth * 30;
    month = month.checked_add(wholemonth).ok_or_else(oor)?;
    if month > 0 && (day < 0 || (day == 0 && time < 0)) {
        day += 30;
        month -= 1;
    } else if month < 0 && (day > 0 || (day == 0 && time > 0)) {
        day -= 30;
        month += 1;
    }
    if day > 0 && time < 0 {
        time += USECS_PER_DAY;
        day -= 1;
    } else if day < 0 && time > 0 {
        time -= USECS_PER_DAY;
        day += 1;
    }
    Ok(Interval {
        months: month,
        days: day,
        micros: time,
    })
}

fn justify_days(v: Interval) -> Result<Interval> {
    let mut r = v;
    r.months = v
        .months
        .checked_add(v.days / 30)
        .ok_or_else(datetime::interval_out_of_range)?;
    r.days = v.days % 30;
    if r.months > 0 && r.days < 0 {
        r.days += 30;
        r.months -= 1;
    } else if r.months < 0 && r.days > 0 {
        r.days -= 30;
        r.months += 1;
    }
    Ok(r)
}

/// `make_interval(years, months, weeks, days, hours, mins, secs)`.
pub(crate) fn make_interval(a: &[Datum], _: &mut EvalCx<'_>) -> Result<Datum> {
    let g = |i: usize| int(&a[i]);
    let secs = flt(&a[6]);
    if secs.is_infinite() || secs.is_nan() {
        return Err(datetime::interval_out_of_range());
    }
    let months = g(0).checked_mul(12).and_then(|y| y.checked_add(g(1)));
    let days = g(2).checked_mul(7).and_then(|w| w.checked_add(g(3)));
    let micros = g(4)
        .checked_mul(USECS_PER_HOUR)
        .and_then(|h| h.checked_add(g(5).checked_mul(USECS_PER_MINUTE)?));
    let sec_us = (secs * 1e6).round_ties_even();
    match (
        months.and_then(|m| i32::try_from(m).ok()),
        days.and_then(|d| i32::try_from(d).ok()),
        micros,
    ) {
        (Some(m), Some(d), Some(us)) if (-9.2e18..9.2e18).contains(&sec_us) => {
            Ok(Datum::Interval(Interval {
                months: m,
                days: d,
                micros: us
                    .checked_add(sec_us as i64)
                    .ok_or_else(datetime::interval_out_of_range)?,
            }))
        }
        _ => Err(datetime::interval_out_of_range()),
    }
}

// ---- resolution (parse_func.c) ----

/// Picks the candidate PostgreSQL's `func_select_candidate` would: `Ok(None)` if none
/// accepts the arguments, `Err(())` if several remain.
pub(crate) fn select_candidate(
    actual: &[Type],
    cands: &[&[Type]],
) -> std::result::Result<Option<usize>, ()> {
    let mut live: Vec<usize> = (0..cands.len())
        .filter(|&i| {
            cands[i].len() == actual.len()
                && actual
                    .iter()
                    .zip(cands[i].iter())
                    .all(|(a, d)| a.implicitly_casts_to(*d))
        })
        .collect();
    if live.len() <= 1 {
        return Ok(live.first().copied());
    }
    // Most exact matches.
    let exact = |i: usize| {
        actual
            .iter()
            .zip(cands[i].iter())
            .filter(|(a, d)| a == d)
            .count()
    };
    let best = live.iter().map(|&i| exact(i)).max().unwrap_or(0);
    live.retain(|&i| exact(i) == best);
    if live.len() == 1 {
        return Ok(Some(live[0]));
    }
    // Most preferred types where a conversion is needed.
    let pref = |i: usize| {
        actual
            .iter()
            .zip(cands[i].iter())
            .filter(|(a, d)| **a != Type::Unknown && a != d && d.is_preferred())
            .count()
    };
    let best = live.iter().map(|&i| pref(i)).max().unwrap_or(0);
    live.retain(|&i| pref(i) == best);
    if live.len() == 1 {
        return Ok(Some(live[0]));
    }
    // Unknown arguments: string category wins, then preferred types.
    for (pos, a) in actual.iter().enumerate() {
        if *a != Type::Unknown {
            continue;
        }
        let cats: Vec<Category> = live.iter().map(|&i| cands[i][pos].category()).collect();
        let cat = if cats.contains(&Category::String) {
            Category::String
        } else if cats.windows(2).all(|w| w[0] == w[1]) {
            cats[0]
        } else {
            return Err(());
        };
        live.retain(|&i| cands[i][pos].category() == cat);
        if live.iter().any(|&i| cands[i][pos].is_preferred()) {
            live.retain(|&i| cands[i][pos].is_preferred());
        }
    }
    match live.len() {
        0 => Ok(None),
        1 => Ok(Some(live[0])),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_pretty_matches_dbsize_c() {
        let c = |b: i64, s: &str| assert_eq!(size_pretty(&BigInt::from(b)), s, "{b}");
        c(0, "0 bytes");
        c(10239, "10239 bytes");
        c(10240, "10 kB");
        c(1_048_576, "1024 kB");
        c(10_485_760, "10 MB");
        c(-10240, "-10 kB");
        c(1_000_000_000_000, "931 GB");
        assert_eq!(size_bytes("1 kB").unwrap(), 1024);
        assert_eq!(size_bytes("1.5MB").unwrap(), 1_572_864);
    }

    #[test]
    fn candidates() {
        let c: &[&[Type]] = &[&[Float8], &[Numeric]];
        assert_eq!(select_candidate(&[Int4], c), Ok(Some(0)));
        assert_eq!(select_candidate(&[Numeric], c), Ok(Some(1)));
        let s: &[&[Type]] = &[&[Text, Int4], &[Text, Int4, Int4]];
        assert_eq!(select_candidate(&[Unknown, Int4], s), Ok(Some(0)));
        assert_eq!(select_candidate(&[Int4], &[&[Text]]), Ok(None));
    }
}
