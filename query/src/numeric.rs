//! `numeric`: arbitrary precision decimals with PostgreSQL's display scale rules (numeric.c).
//!
//! A finite value is an integer mantissa and a display scale (digits after the point), so
//! `1.50` keeps its two digits as PostgreSQL does. The result scale of each operation follows
//! numeric.c: sums take the larger scale, products the sum of scales, quotients
//! `select_div_scale` (at least 16 significant digits, judged in PostgreSQL's base-10000
//! digits), and rounding is half away from zero.

use std::cmp::Ordering;
use std::fmt;

use num_bigint::{BigInt, Sign};
use num_traits::{One, Signed, ToPrimitive, Zero};

use crate::error::{sqlstate, QueryError, Result};

/// PostgreSQL's `NUMERIC_MAX_DISPLAY_SCALE`.
const MAX_DISPLAY_SCALE: i64 = 1000;
/// PostgreSQL's `NUMERIC_MIN_SIG_DIGITS`.
const MIN_SIG_DIGITS: i64 = 16;
/// Digits before the point PostgreSQL accepts (131072).
const MAX_WEIGHT_DIGITS: usize = 131_072;

/// A `numeric` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Numeric {
    /// `NaN`
    NaN,
    /// `Infinity`
    PosInf,
    /// `-Infinity`
    NegInf,
    /// `mantissa / 10^scale`.
    Finite {
        /// The digits as an integer.
        mantissa: BigInt,
        /// Display scale: digits after the decimal point.
        scale: u32,
    },
}

fn pow10(n: u32) -> BigInt {
    num_traits::pow(BigInt::from(10u8), n as usize)
}

/// Divides rounding half away from zero.
fn div_round(n: &BigInt, d: &BigInt) -> BigInt {
    let q = n / d;
    let r = n - &q * d;
    if (r.abs() * 2u8) >= d.abs() {
        if (n.sign() == Sign::Minus) != (d.sign() == Sign::Minus) {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

impl Numeric {
    /// A finite value.
    pub fn new(mantissa: BigInt, scale: u32) -> Numeric {
        Numeric::Finite { mantissa, scale }
    }

    /// Zero with scale 0.
    pub fn zero() -> Numeric {
        Numeric::new(BigInt::zero(), 0)
    }

    /// From an integer.
    pub fn from_i64(v: i64) -> Numeric {
        Numeric::new(BigInt::from(v), 0)
    }

    /// From a 128-bit integer.
    pub fn from_i128(v: i128) -> Numeric {
        Numeric::new(BigInt::from(v), 0)
    }

    /// Whether this is NaN.
    pub fn is_nan(&self) -> bool {
        matches!(self, Numeric::NaN)
    }

    pub(crate) fn parts(&self) -> Option<(&BigInt, u32)> {
        match self {
            Numeric::Finite { mantissa, scale } => Some((mantissa, *scale)),
            _ => None,
        }
    }

    /// Display scale of a finite value (0 for the special values).
    pub fn scale(&self) -> u32 {
        self.parts().map_or(0, |p| p.1)
    }

    fn rescaled(&self, to: u32) -> BigInt {
        let (m, s) = self.parts().expect("finite");
        if to >= s {
            m * pow10(to - s)
        } else {
            div_round(m, &pow10(s - to))
        }
    }

    /// Parses PostgreSQL's `numeric_in` syntax (`' -1.5e3 '`, `NaN`, `Infinity`).
    pub fn parse(text: &str) -> Result<Numeric> {
        let bad = || QueryError::invalid_input("numeric", text);
        let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "nan" => return Ok(Numeric::NaN),
            "infinity" | "+infinity" | "inf" | "+inf" => return Ok(Numeric::PosInf),
            "-infinity" | "-inf" => return Ok(Numeric::NegInf),
            _ => {}
        }
        let b = t.as_bytes();
        let mut i = 0;
        let mut neg = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            neg = b[i] == b'-';
            i += 1;
        }
        let mut digits = String::new();
        let mut frac = 0i64;
        let mut seen_digit = false;
        let mut seen_point = false;
        while i < b.len() {
            match b[i] {
                c @ b'0'..=b'9' => {
                    digits.push(c as char);
                    seen_digit = true;
                    if seen_point {
                        frac += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if !seen_digit {
            return Err(bad());
        }
        let mut exp = 0i64;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut eneg = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                eneg = b[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp = exp.saturating_mul(10).saturating_add((b[i] - b'0') as i64);
                i += 1;
            }
            if i == start {
                return Err(bad());
            }
            if exp > 2 * MAX_WEIGHT_DIGITS as i64 {
                return Err(bad());
            }
            if eneg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return Err(bad());
        }
        let mut m: BigInt = digits.parse().map_err(|_| bad())?;
        if neg {
            m = -m;
        }
        let scale = frac - exp;
        let n = if scale >= 0 {
            if scale > 16383 {
                return Err(QueryError::new(
                    sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                    "value overflows numeric format",
                ));
            }
            Numeric::new(m, scale as u32)
        } else {
            Numeric::new(m * pow10((-scale) as u32), 0)
        };
        n.check_size()
    }

    fn check_size(self) -> Result<Numeric> {
        if let Some((m, s)) = self.parts() {
            let intdigits = m.magnitude().bits() as f64 * std::f64::consts::LOG10_2;
            if intdigits - s as f64 > MAX_WEIGHT_DIGITS as f64 + 1.0 {
                return Err(QueryError::new(
                    sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                    "value overflows numeric format",
                ));
            }
        }
        Ok(self)
    }

    /// PostgreSQL's base-10000 weight and first digit (what `select_div_scale` looks at).
    fn weight_first(&self) -> (i64, i64) {
        let (m, s) = match self.parts() {
            Some(p) => p,
            None => return (0, 0),
        };
        if m.is_zero() {
            return (0, 0);
        }
        let digits = m.magnitude().to_string();
        let e = digits.len() as i64 - 1 - s as i64;
        let weight = e.div_euclid(4);
        let count = (e - 4 * weight + 1) as usize;
        let mut first = 0i64;
        for k in 0..count {
            let d = digits.as_bytes().get(k).map_or(0, |c| (c - b'0') as i64);
            first = first * 10 + d;
        }
        (weight, first)
    }

    /// Negation.
    pub fn neg(&self) -> Numeric {
        match self {
            Numeric::NaN => Numeric::NaN,
            Numeric::PosInf => Numeric::NegInf,
            Numeric::NegInf => Numeric::PosInf,
            Numeric::Finite { mantissa, scale } => Numeric::new(-mantissa, *scale),
        }
    }

    /// Absolute value.
    pub fn abs(&self) -> Numeric {
        match self {
            Numeric::NegInf => Numeric::PosInf,
            Numeric::Finite { mantissa, scale } => Numeric::new(mantissa.abs(), *scale),
            other => other.clone(),
        }
    }

    fn sign_special(&self) -> i8 {
        match self {
            Numeric::PosInf => 1,
            Numeric::NegInf => -1,
            Numeric::Finite { mantissa, .. } => match mantissa.sign() {
                Sign::Minus => -1,
                Sign::NoSign => 0,
                Sign::Plus => 1,
            },
            Numeric::NaN => 0,
        }
    }

    /// Sum.
    pub fn add(&self, other: &Numeric) -> Result<Numeric> {
        match (self, other) {
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            (Numeric::PosInf, Numeric::NegInf) | (Numeric::NegInf, Numeric::PosInf) => {
                Ok(Numeric::NaN)
            }
            (Numeric::PosInf | Numeric::NegInf, _) => Ok(self.clone()),
            (_, Numeric::PosInf | Numeric::NegInf) => Ok(other.clone()),
            (Numeric::Finite { scale: a, .. }, Numeric::Finite { scale: b, .. }) => {
                let s = (*a).max(*b);
                Numeric::new(self.rescaled(s) + other.rescaled(s), s).check_size()
            }
        }
    }

    /// Difference.
    pub fn sub(&self, other: &Numeric) -> Result<Numeric> {
        self.add(&other.neg())
    }

    /// Product.
    pub fn mul(&self, other: &Numeric) -> Result<Numeric> {
        match (self.parts(), other.parts()) {
            (Some((a, sa)), Some((b, sb))) => {
                let s = sa + sb;
                if s > 16383 {
                    return Err(QueryError::new(
                        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                        "value overflows numeric format",
                    ));
                }
                Numeric::new(a * b, s).check_size()
            }
            _ => {
                if self.is_nan() || other.is_nan() {
                    return Ok(Numeric::NaN);
                }
                let sign = self.sign_special() * other.sign_special();
                Ok(match sign {
                    0 => Numeric::NaN,
                    1 => Numeric::PosInf,
                    _ => Numeric::NegInf,
                })
            }
        }
    }

    fn div_scale(&self, other: &Numeric) -> u32 {
        let (w1, f1) = self.weight_first();
        let (w2, f2) = other.weight_first();
        let mut qweight = w1 - w2;
        if f1 <= f2 {
            qweight -= 1;
        }
        let rscale = (MIN_SIG_DIGITS - qweight * 4)
            .max(self.scale() as i64)
            .max(other.scale() as i64)
            .clamp(0, MAX_DISPLAY_SCALE);
        rscale as u32
    }

    /// Quotient with PostgreSQL's result scale.
    pub fn div(&self, other: &Numeric) -> Result<Numeric> {
        if let (Some(_), Some((b, _))) = (self.parts(), other.parts()) {
            if b.is_zero() {
                return Err(QueryError::division_by_zero());
            }
            let rscale = self.div_scale(other);
            return self.div_to_scale(other, rscale);
        }
        self.div_special(other)
    }

    fn div_special(&self, other: &Numeric) -> Result<Numeric> {
        if self.is_nan() || other.is_nan() {
            return Ok(Numeric::NaN);
        }
        match (self, other) {
            (Numeric::Finite { .. }, _) => {
                // finite / ±Infinity
                Ok(Numeric::zero())
            }
            (_, Numeric::Finite { mantissa, .. }) => {
                if mantissa.is_zero() {
                    return Err(QueryError::division_by_zero());
                }
                Ok(
                    if self.sign_special() * if mantissa.is_negative() { -1 } else { 1 } > 0 {
                        Numeric::PosInf
                    } else {
                        Numeric::NegInf
                    },
                )
            }
            _ => Ok(Numeric::NaN),
        }
    }

    /// Quotient rounded to `rscale` digits.
    pub fn div_to_scale(&self, other: &Numeric, rscale: u32) -> Result<Numeric> {
        let ((a, sa), (b, sb)) = match (self.parts(), other.parts()) {
            (Some(x), Some(y)) => (x, y),
            _ => return self.div_special(other),
        };
        if b.is_zero() {
            return Err(QueryError::division_by_zero());
        }
        // a/10^sa / (b/10^sb) * 10^rscale = a * 10^(rscale + sb) / (b * 10^sa)
        let n = a * pow10(rscale + sb);
        let d = b * pow10(sa);
        Numeric::new(div_round(&n, &d), rscale).check_size()
    }

    /// Truncated quotient (for `div` and `mod`).
    fn trunc_div(&self, other: &Numeric) -> Result<BigInt> {
        let ((a, sa), (b, sb)) = (
            self.parts().expect("finite"),
            other.parts().expect("finite"),
        );
        if b.is_zero() {
            return Err(QueryError::division_by_zero());
        }
        let s = sa.max(sb);
        let _ = (a, b);
        Ok(self.rescaled(s) / other.rescaled(s))
    }

    /// Remainder with the dividend's sign, scale of the wider operand.
    pub fn rem(&self, other: &Numeric) -> Result<Numeric> {
        match (self.parts(), other.parts()) {
            (Some((_, sa)), Some((b, sb))) => {
                if b.is_zero() {
                    return Err(QueryError::division_by_zero());
                }
                let s = sa.max(sb);
                Ok(Numeric::new(self.rescaled(s) % other.rescaled(s), s))
            }
            _ => {
                if self.is_nan() || other.is_nan() {
                    return Ok(Numeric::NaN);
                }
                match (self, other) {
                    (Numeric::Finite { .. }, _) => Ok(self.clone()),
                    (_, Numeric::Finite { mantissa, .. }) if mantissa.is_zero() => {
                        Err(QueryError::division_by_zero())
                    }
                    _ => Ok(Numeric::NaN),
                }
            }
        }
    }

    /// `div(a, b)`: truncated integer quotient.
    pub fn int_div(&self, other: &Numeric) -> Result<Numeric> {
        if self.parts().is_none() || other.parts().is_none() {
            return self.div_special(other).map(|n| n.trunc(0));
        }
        Ok(Numeric::new(self.trunc_div(other)?, 0))
    }

    /// `round(x, s)`: half away from zero; negative `s` rounds left of the point.
    pub fn round(&self, s: i32) -> Numeric {
        self.round_with(s, div_round)
    }

    /// `trunc(x, s)`.
    pub fn trunc(&self, s: i32) -> Numeric {
        self.round_with(s, |n, d| n / d)
    }

    fn round_with(&self, s: i32, f: impl Fn(&BigInt, &BigInt) -> BigInt) -> Numeric {
        let (m, sc) = match self.parts() {
            Some(p) => p,
            None => return self.clone(),
        };
        let s = s.clamp(-(MAX_WEIGHT_DIGITS as i32) - 10, MAX_DISPLAY_SCALE as i32);
        let out_scale = s.max(0) as u32;
        if s >= sc as i32 {
            return Numeric::new(m * pow10(out_scale - sc), out_scale);
        }
        // Drop (sc - s) digits.
        let drop = (sc as i64 - s as i64) as u32;
        let q = f(m, &pow10(drop));
        if s >= 0 {
            Numeric::new(q, out_scale)
        } else {
            Numeric::new(q * pow10((-s) as u32), 0)
        }
    }

    /// `ceil`
    pub fn ceil(&self) -> Numeric {
        let t = self.trunc(0);
        if let (Some((m, _)), Some((tm, _))) = (self.parts(), t.parts()) {
            if m.is_positive() && self.cmp_num(&t) != Ordering::Equal {
                return Numeric::new(tm + 1, 0);
            }
        }
        t
    }

    /// `floor`
    pub fn floor(&self) -> Numeric {
        let t = self.trunc(0);
        if let (Some((m, _)), Some((tm, _))) = (self.parts(), t.parts()) {
            if m.is_negative() && self.cmp_num(&t) != Ordering::Equal {
                return Numeric::new(tm - 1, 0);
            }
        }
        t
    }

    /// `sqrt` with numeric.c's result scale.
    pub fn sqrt(&self) -> Result<Numeric> {
        let (m, s) = match self {
            Numeric::NaN | Numeric::PosInf => return Ok(self.clone()),
            Numeric::NegInf => return Err(sqrt_negative()),
            Numeric::Finite { mantissa, scale } => (mantissa, *scale),
        };
        if m.is_negative() {
            return Err(sqrt_negative());
        }
        let (w, _) = self.weight_first();
        let sweight = (w + 1) * 4 / 2 - 1;
        let rscale = (MIN_SIG_DIGITS - sweight)
            .max(s as i64)
            .clamp(0, MAX_DISPLAY_SCALE) as u32;
        if m.is_zero() {
            return Ok(Numeric::new(BigInt::zero(), rscale));
        }
        let k = rscale + 1;
        let n = m * pow10(2 * k - s);
        let r = n.sqrt();
        Ok(Numeric::new(div_round(&r, &BigInt::from(10u8)), rscale))
    }

    /// Comparison with NaN above everything, as PostgreSQL sorts it.
    pub fn cmp_num(&self, other: &Numeric) -> Ordering {
        fn rank(n: &Numeric) -> i8 {
            match n {
                Numeric::NegInf => -1,
                Numeric::Finite { .. } => 0,
                Numeric::PosInf => 1,
                Numeric::NaN => 2,
            }
        }
        match (self, other) {
            (Numeric::Finite { scale: a, .. }, Numeric::Finite { scale: b, .. }) => {
                let s = (*a).max(*b);
                self.rescaled(s).cmp(&other.rescaled(s))
            }
            _ => rank(self).cmp(&rank(other)),
        }
    }

    /// A canonical key (trailing zeros dropped) for grouping and DISTINCT.
    pub(crate) fn canonical(&self) -> String {
        match self.parts() {
            Some((m, s)) => {
                let mut m = m.clone();
                let mut s = s;
                let ten = BigInt::from(10u8);
                while s > 0 && (&m % &ten).is_zero() {
                    m /= &ten;
                    s -= 1;
                }
                format!("{m}e-{s}")
            }
            None => self.to_string(),
        }
    }

    /// To a 64-bit integer, rounding half away from zero (`numeric_int8`).
    pub fn to_i64_round(&self) -> Option<i64> {
        self.parts()?;
        self.round(0).parts()?.0.to_i64()
    }

    /// To a double (`numeric_float8`).
    pub fn to_f64(&self) -> f64 {
        match self {
            Numeric::NaN => f64::NAN,
            Numeric::PosInf => f64::INFINITY,
            Numeric::NegInf => f64::NEG_INFINITY,
            Numeric::Finite { .. } => self.to_string().parse().unwrap_or(f64::NAN),
        }
    }

    /// From a double as `float8_numeric` does: 15 significant digits.
    pub fn from_f64(v: f64) -> Numeric {
        if v.is_nan() {
            return Numeric::NaN;
        }
        if v.is_infinite() {
            return if v > 0.0 {
                Numeric::PosInf
            } else {
                Numeric::NegInf
            };
        }
        let text = format!("{:.*e}", 14, v);
        // `d.dddddddddddddde±x`: strip the trailing zeros of the mantissa as %g does.
        let (mant, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i64 = exp.parse().unwrap_or(0);
        let mant = if mant.contains('.') {
            mant.trim_end_matches('0').trim_end_matches('.')
        } else {
            mant
        };
        Numeric::parse(&format!("{mant}e{exp}")).unwrap_or(Numeric::NaN)
    }

    /// Whether the value is an integer (no fractional digits that are not zero).
    pub(crate) fn is_integral(&self) -> bool {
        match self.parts() {
            Some((m, s)) => (m % pow10(s)).is_zero(),
            None => false,
        }
    }

    /// The mantissa of a finite value as an integer when the scale is 0.
    pub(crate) fn to_bigint(&self) -> Option<BigInt> {
        let r = self.trunc(0);
        r.parts().map(|p| p.0.clone())
    }

    /// log10 |x| of a finite nonzero value, from its digits (no f64 underflow or overflow
    /// for values beyond f64's range).
    fn log10_abs(&self) -> f64 {
        let (m, s) = match self.parts() {
            Some(p) => p,
            None => return f64::NAN,
        };
        let digits = m.magnitude().to_string();
        let lead: f64 = digits[..digits.len().min(17)].parse().unwrap_or(1.0);
        lead.log10() + (digits.len() as f64 - digits.len().min(17) as f64) - s as f64
    }

    /// `x ^ y` with numeric.c's result scale (PostgreSQL 16+: at least 16 significant
    /// digits judged by the estimated result weight, and no fewer than either input's
    /// scale). Integral exponents are computed exactly; others as exp(y ln x) in fixed point
    /// with guard digits, then rounded half away from zero.
    pub fn pow(&self, y: &Numeric) -> Result<Numeric> {
        if self.is_nan() || y.is_nan() {
            let one = Numeric::from_i64(1);
            if self.cmp_num(&one) == Ordering::Equal
                || y.cmp_num(&Numeric::zero()) == Ordering::Equal
            {
                return Ok(one);
            }
            return Ok(Numeric::NaN);
        }
        let ((m, s), (ym, ys)) = match (self.parts(), y.parts()) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                return Err(QueryError::not_supported(
                    "power() of an infinite numeric is not supported",
                ))
            }
        };
        if m.is_zero() {
            if ym.is_negative() {
                return Err(QueryError::new(
                    sqlstate::INVALID_ARGUMENT_FOR_POWER_FUNCTION,
                    "zero raised to a negative power is undefined",
                ));
            }
            if ym.is_zero() {
                return Ok(Numeric::new(BigInt::one(), MIN_SIG_DIGITS as u32));
            }
            return Ok(Numeric::new(BigInt::zero(), MIN_SIG_DIGITS as u32));
        }
        let integral = y.is_integral();
        if m.is_negative() && !integral {
            return Err(QueryError::new(
                sqlstate::INVALID_ARGUMENT_FOR_POWER_FUNCTION,
                "a negative number raised to a non-integer power yields a complex result",
            ));
        }
        let log10_abs = self.log10_abs();
        let yf = y.to_f64();
        let overflow = || {
            QueryError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                "value overflows numeric format",
            )
        };
        if integral {
            if let Some(e) = y.to_bigint().and_then(|b| b.to_i32()) {
                // |x| may be below f64's range (log10 = -inf): keep the estimate finite.
                let f = e as f64 * log10_abs;
                let f = if f.is_nan() { 0.0 } else { f.clamp(-1e9, 1e9) };
                if f > MAX_WEIGHT_DIGITS as f64 {
                    return Err(overflow());
                }
                let rscale = (MIN_SIG_DIGITS - f as i64)
                    .max(s as i64)
                    .max(ys as i64)
                    .clamp(0, MAX_DISPLAY_SCALE) as u32;
                if f < -(MAX_DISPLAY_SCALE as f64) - 10.0 {
                    return Ok(Numeric::new(BigInt::zero(), rscale));
                }
                let ue = e.unsigned_abs() as usize;
                let digits = m.magnitude().bits() as usize / 3 + 1;
                if digits.saturating_mul(ue) > 20_000 {
                    // Too long to compute exactly: the general method below, to rscale.
                    return self.pow_general(y, rscale);
                }
                let p = Numeric::new(num_traits::pow(m.clone(), ue), s.saturating_mul(ue as u32));
                return if e >= 0 {
                    Ok(Numeric::new(p.rescaled(rscale), rscale))
                } else {
                    Numeric::new(BigInt::one(), 0).div_to_scale(&p, rscale)
                };
            }
        }
        let val = yf * log10_abs * std::f64::consts::LN_10;
        if !val.is_finite() || val.abs() > MAX_DISPLAY_SCALE as f64 * 3.01 {
            if val < 0.0 {
                return Ok(Numeric::new(BigInt::zero(), MAX_DISPLAY_SCALE as u32));
            }
            return Err(overflow());
        }
        let dweight = val * std::f64::consts::LOG10_E;
        let rscale = (MIN_SIG_DIGITS - dweight as i64)
            .max(s as i64)
            .max(ys as i64)
            .clamp(0, MAX_DISPLAY_SCALE) as u32;
        self.pow_general(y, rscale)
    }

    /// `x ^ y` as exp(y ln |x|) in fixed point, rounded to `rscale` (finite, nonzero x).
    fn pow_general(&self, y: &Numeric, rscale: u32) -> Result<Numeric> {
        let m = match self.parts() {
            Some((m, _)) => m.clone(),
            None => return Ok(Numeric::NaN),
        };
        let val = y.to_f64() * self.log10_abs() * std::f64::consts::LN_10;
        if !val.is_finite() || val.abs() > MAX_DISPLAY_SCALE as f64 * 3.01 {
            if val < 0.0 {
                return Ok(Numeric::new(BigInt::zero(), rscale));
            }
            return Err(QueryError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                "value overflows numeric format",
            ));
        }
        let dweight = val * std::f64::consts::LOG10_E;
        // Fixed point with p digits after the point: rscale, the result's integer digits, the
        // digits below the point of a small |x|, and guard digits.
        let small_x = (-self.log10_abs()).clamp(0.0, 200_000.0) as u32;
        let p = rscale + dweight.max(0.0) as u32 + small_x + 30;
        let x = self.abs().rescaled(p);
        if !x.is_positive() {
            return Ok(Numeric::new(BigInt::zero(), rscale));
        }
        let ln = ln_fixed(&x, p);
        let prod = &ln * y.rescaled(p) / pow10(p);
        let mut r = exp_fixed(&prod, p);
        if m.is_negative() && y.to_bigint().is_some_and(|b| b.bit(0)) {
            r = -r;
        }
        Ok(Numeric::new(div_round(&r, &pow10(p - rscale)), rscale))
    }
}

/// ln of a positive fixed-point value (`x / 10^p`), in the same fixed point.
fn ln_fixed(x: &BigInt, p: u32) -> BigInt {
    let one = pow10(p);
    let near = pow10(p.saturating_sub(2)); // 0.01
    let mut x = x.clone();
    let mut k = 0u32;
    // Square roots bring x near 1; each halves the logarithm.
    while (&x - &one).abs() > near && k < 2000 {
        x = (&x * &one).sqrt();
        k += 1;
    }
    // ln x = 2 atanh(t), t = (x - 1) / (x + 1)
    let t = (&x - &one) * &one / (&x + &one);
    let t2 = &t * &t / &one;
    let mut term = t.clone();
    let mut sum = BigInt::zero();
    let mut n = 1u32;
    while !term.is_zero() && n < 1_000_000 {
        sum += &term / n;
        term = &term * &t2 / &one;
        n += 2;
    }
    sum * 2u8 * (BigInt::one() << k)
}

/// exp of a fixed-point value (`y / 10^p`), in the same fixed point.
fn exp_fixed(y: &BigInt, p: u32) -> BigInt {
    let one = pow10(p);
    let small = pow10(p.saturating_sub(2));
    let mut k = 0u32;
    let mut z = y.clone();
    while z.abs() > small && k < 4000 {
        z /= 2u8;
        k += 1;
    }
    let mut sum = one.clone();
    let mut term = one.clone();
    let mut n = 1u32;
    loop {
        term = &term * &z / &one / n;
        if term.is_zero() || n > 1_000_000 {
            break;
        }
        sum += &term;
        n += 1;
    }
    for _ in 0..k {
        sum = &sum * &sum / &one;
    }
    sum
}

fn sqrt_negative() -> QueryError {
    QueryError::new(
        sqlstate::INVALID_ARGUMENT_FOR_POWER_FUNCTION,
        "cannot take square root of a negative number",
    )
}

impl fmt::Display for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Numeric::NaN => f.write_str("NaN"),
            Numeric::PosInf => f.write_str("Infinity"),
            Numeric::NegInf => f.write_str("-Infinity"),
            Numeric::Finite { mantissa, scale } => {
                let digits = mantissa.magnitude().to_string();
                if mantissa.is_negative() {
                    f.write_str("-")?;
                }
                let s = *scale as usize;
                if s == 0 {
                    return f.write_str(&digits);
                }
                if digits.len() > s {
                    let (i, fr) = digits.split_at(digits.len() - s);
                    write!(f, "{i}.{fr}")
                } else {
                    write!(f, "0.{}{}", "0".repeat(s - digits.len()), digits)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Numeric {
        Numeric::parse(s).unwrap()
    }

    #[test]
    fn scales_follow_numeric_c() {
        assert_eq!(
            n("1").div(&n("3")).unwrap().to_string(),
            "0.33333333333333333333"
        );
        assert_eq!(
            n("10").div(&n("4")).unwrap().to_string(),
            "2.5000000000000000"
        );
        assert_eq!(n("1.50").add(&n("2.5")).unwrap().to_string(), "4.00");
        assert_eq!(n("1.5").mul(&n("2.25")).unwrap().to_string(), "3.375");
        assert_eq!(n("2").sqrt().unwrap().to_string(), "1.414213562373095");
        assert_eq!(n("2.5").round(0).to_string(), "3");
        assert_eq!(n("-2.5").round(0).to_string(), "-3");
        assert_eq!(n("1234.5678").round(-2).to_string(), "1200");
        assert_eq!(n("1e3").to_string(), "1000");
        assert_eq!(n("1.5e-3").to_string(), "0.0015");
        assert_eq!(n("-7.5").rem(&n("2")).unwrap().to_string(), "-1.5");
        assert_eq!(Numeric::from_f64(0.1).to_string(), "0.1");
        assert_eq!(n("-1.5").floor().to_string(), "-2");
        assert_eq!(
            n("2").pow(&n("0.5")).unwrap().to_string(),
            "1.4142135623730950"
        );
        assert_eq!(
            n("2.0").pow(&n("3")).unwrap().to_string(),
            "8.0000000000000000"
        );
        assert_eq!(
            n("2").pow(&n("-2")).unwrap().to_string(),
            "0.2500000000000000"
        );
        assert_eq!(n("1.2").ceil().to_string(), "2");
    }

    #[test]
    fn bad_input_is_22p02() {
        for s in ["", "abc", "1.2.3", "1e", "--1"] {
            assert_eq!(Numeric::parse(s).unwrap_err().sqlstate, "22P02", "{s}");
        }
        assert_eq!(n("1").div(&n("0")).unwrap_err().sqlstate, "22012");
    }
}
