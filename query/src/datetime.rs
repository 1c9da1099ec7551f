//! `timestamp with time zone` and `interval`: input, output and arithmetic as PostgreSQL's
//! datetime.c, timestamp.c and formatting of the "Postgres"/ISO date style.
//!
//! A timestamptz is microseconds since 2000-01-01 00:00:00 UTC (`i64::MIN`/`i64::MAX` are
//! `-infinity`/`infinity`); an interval keeps months, days and microseconds apart, as
//! PostgreSQL does. The calendar is the proleptic Gregorian one with year 0 = 1 BC.

use std::cmp::Ordering;

use crate::error::{sqlstate, QueryError, Result};

/// Microseconds per second.
pub const USECS_PER_SEC: i64 = 1_000_000;
/// Microseconds per minute.
pub const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
/// Microseconds per hour.
pub const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
/// Microseconds per day.
pub const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_DAYS: i64 = 10_957;
/// Microseconds from the Unix epoch to PostgreSQL's.
pub const UNIX_TO_PG_USECS: i64 = UNIX_TO_PG_DAYS * USECS_PER_DAY;
/// `-infinity`
pub const TS_NOBEGIN: i64 = i64::MIN;
/// `infinity`
pub const TS_NOEND: i64 = i64::MAX;
/// PostgreSQL's MIN_TIMESTAMP (4714-11-24 00:00:00 BC).
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
/// PostgreSQL's END_TIMESTAMP (294277-01-01 00:00:00).
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// A broken-down local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tm {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub usec: u32,
}

impl Tm {
    /// Local microseconds since 2000-01-01 00:00 (no zone).
    pub(crate) fn to_local_usecs(self) -> Option<i64> {
        let days = days_from_civil(self.year, self.month, self.day) - UNIX_TO_PG_DAYS;
        let time = self.hour as i64 * USECS_PER_HOUR
            + self.minute as i64 * USECS_PER_MINUTE
            + self.second as i64 * USECS_PER_SEC
            + self.usec as i64;
        days.checked_mul(USECS_PER_DAY)?.checked_add(time)
    }

    pub(crate) fn from_local_usecs(t: i64) -> Tm {
        let days = t.div_euclid(USECS_PER_DAY);
        let rem = t.rem_euclid(USECS_PER_DAY);
        let (year, month, day) = civil_from_days(days + UNIX_TO_PG_DAYS);
        Tm {
            year,
            month,
            day,
            hour: (rem / USECS_PER_HOUR) as u32,
            minute: (rem % USECS_PER_HOUR / USECS_PER_MINUTE) as u32,
            second: (rem % USECS_PER_MINUTE / USECS_PER_SEC) as u32,
            usec: (rem % USECS_PER_SEC) as u32,
        }
    }

    /// Day of the week, 0 = Sunday.
    pub(crate) fn dow(self) -> i64 {
        (days_from_civil(self.year, self.month, self.day) + 4).rem_euclid(7)
    }

    /// Day of the year, 1-based.
    pub(crate) fn doy(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) - days_from_civil(self.year, 1, 1) + 1
    }
}

/// The session's time zone: a fixed offset or a zone of the system tz database.
#[derive(Debug, Clone)]
pub enum TimeZone {
    /// A fixed offset, seconds east of Greenwich.
    Fixed {
        /// The name the setting had.
        name: String,
        /// Seconds east of UTC.
        offset: i32,
    },
    /// A zone with rules (daylight saving), read from the system tz database.
    Named {
        /// The name the setting had.
        name: String,
        /// The rules.
        tz: jiff::tz::TimeZone,
    },
}

impl TimeZone {
    /// UTC.
    pub fn utc() -> TimeZone {
        TimeZone::Fixed {
            name: "UTC".into(),
            offset: 0,
        }
    }

    /// Interprets a `TimeZone` setting: `UTC`/`GMT`, a zone name of the tz database
    /// (`Europe/Paris`), a bare offset (`+02` = two hours east, as PostgreSQL reads it), or
    /// a POSIX specification (`UTC+3` = three hours *west*, POSIX's sign).
    pub fn from_setting(name: &str) -> Result<TimeZone> {
        let bad = || {
            QueryError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("invalid value for parameter \"TimeZone\": \"{name}\""),
            )
        };
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "utc" | "gmt" | "z" | "zulu" | "etc/utc" | "etc/gmt" | "uct"
        ) {
            return Ok(TimeZone::Fixed {
                name: name.to_owned(),
                offset: 0,
            });
        }
        if let Some(off) = parse_numeric_offset(name) {
            return Ok(TimeZone::Fixed {
                name: name.to_owned(),
                offset: off,
            });
        }
        if name.is_empty() || name.len() > 255 || name.contains("..") {
            return Err(bad());
        }
        if let Ok(tz) = jiff::tz::TimeZone::get(name) {
            return Ok(TimeZone::Named {
                name: name.to_owned(),
                tz,
            });
        }
        if let Ok(tz) = jiff::tz::TimeZone::posix(name) {
            return Ok(TimeZone::Named {
                name: name.to_owned(),
                tz,
            });
        }
        Err(bad())
    }

    /// The setting's name.
    pub fn name(&self) -> &str {
        match self {
            TimeZone::Fixed { name, .. } | TimeZone::Named { name, .. } => name,
        }
    }

    /// Offset (seconds east) in force at a UTC instant (PostgreSQL microseconds).
    pub fn offset_at(&self, ts: i64) -> i32 {
        match self {
            TimeZone::Fixed { offset, .. } => *offset,
            TimeZone::Named { tz, .. } => {
                let secs = ts.div_euclid(USECS_PER_SEC) + UNIX_TO_PG_DAYS * 86_400;
                let t = jiff::Timestamp::from_second(secs).unwrap_or(if secs < 0 {
                    jiff::Timestamp::MIN
                } else {
                    jiff::Timestamp::MAX
                });
                tz.to_offset(t).seconds()
            }
        }
    }

    /// Offset for a local (wall clock) time; in a gap or a fold, the standard-time reading
    /// PostgreSQL's `DetermineTimeZoneOffset` chooses (the offset before the transition for a
    /// gap, after it for a fold).
    pub fn offset_for_local(&self, local: i64) -> i32 {
        match self {
            TimeZone::Fixed { offset, .. } => *offset,
            TimeZone::Named { tz, .. } => {
                let tm = Tm::from_local_usecs(local);
                let year = tm.year.clamp(-9998, 9998) as i16;
                let dt = jiff::civil::DateTime::new(
                    year,
                    tm.month as i8,
                    tm.day.min(28) as i8 + (tm.day as i8 - tm.day.min(28) as i8),
                    tm.hour as i8,
                    tm.minute as i8,
                    tm.second as i8,
                    0,
                );
                let dt = match dt {
                    Ok(dt) => dt,
                    Err(_) => return self.offset_at(local),
                };
                use jiff::tz::AmbiguousOffset as A;
                match tz.to_ambiguous_timestamp(dt).offset() {
                    A::Unambiguous { offset } => offset.seconds(),
                    A::Gap { before, .. } => before.seconds(),
                    A::Fold { after, .. } => after.seconds(),
                }
            }
        }
    }

    /// UTC instant of a local time.
    pub(crate) fn local_to_utc(&self, local: i64) -> Result<i64> {
        let off = self.offset_for_local(local) as i64 * USECS_PER_SEC;
        check_ts(local.checked_sub(off).ok_or_else(ts_out_of_range)?)
    }

    /// Local time of a UTC instant, and the offset used.
    pub(crate) fn utc_to_local(&self, ts: i64) -> (i64, i32) {
        let off = self.offset_at(ts);
        (ts.saturating_add(off as i64 * USECS_PER_SEC), off)
    }
}

/// `+05`, `-03:30`, `+0530`, `+05:30:15`: seconds east. None if not of that shape.
fn parse_numeric_offset(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.is_empty() || (b[0] != b'+' && b[0] != b'-') {
        return None;
    }
    let neg = b[0] == b'-';
    let rest = &s[1..];
    let parts: Vec<&str> = rest.split(':').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let (h, m, sec) = match parts.len() {
        1 => {
            let p = parts[0];
            match p.len() {
                1 | 2 => (p.parse::<i32>().ok()?, 0, 0),
                4 => (p[..2].parse().ok()?, p[2..].parse().ok()?, 0),
                6 => (
                    p[..2].parse().ok()?,
                    p[2..4].parse().ok()?,
                    p[4..].parse().ok()?,
                ),
                _ => return None,
            }
        }
        2 => (parts[0].parse().ok()?, parts[1].parse().ok()?, 0),
        3 => (
            parts[0].parse().ok()?,
            parts[1].parse().ok()?,
            parts[2].parse().ok()?,
        ),
        _ => return None,
    };
    if h > 15 || m > 59 || sec > 59 {
        return None;
    }
    let v = h * 3600 + m * 60 + sec;
    Some(if neg { -v } else { v })
}

pub(crate) fn ts_out_of_range() -> QueryError {
    QueryError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "timestamp out of range")
}

pub(crate) fn check_ts(ts: i64) -> Result<i64> {
    if ts == TS_NOBEGIN || ts == TS_NOEND {
        return Ok(ts);
    }
    if !(MIN_TIMESTAMP..END_TIMESTAMP).contains(&ts) {
        return Err(ts_out_of_range());
    }
    Ok(ts)
}

fn fmt_offset(out: &mut String, off: i32) {
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
    out.push(sign);
    out.push_str(&format!("{h:02}"));
    if m != 0 || s != 0 {
        out.push_str(&format!(":{m:02}"));
    }
    if s != 0 {
        out.push_str(&format!(":{s:02}"));
    }
}

fn fmt_frac(out: &mut String, usec: u32) {
    if usec != 0 {
        let f = format!("{usec:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
}

/// Text output of a timestamptz in `tz` (DateStyle ISO).
pub fn format_timestamptz(ts: i64, tz: &TimeZone) -> String {
    match ts {
        TS_NOBEGIN => return "-infinity".into(),
        TS_NOEND => return "infinity".into(),
        _ => {}
    }
    let (local, off) = tz.utc_to_local(ts);
    let tm = Tm::from_local_usecs(local);
    let (year, bc) = if tm.year <= 0 {
        (1 - tm.year, true)
    } else {
        (tm.year, false)
    };
    let mut out = format!(
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.month, tm.day, tm.hour, tm.minute, tm.second
    );
    fmt_frac(&mut out, tm.usec);
    fmt_offset(&mut out, off);
    if bc {
        out.push_str(" BC");
    }
    out
}

fn invalid_ts(text: &str) -> QueryError {
    QueryError::new(
        sqlstate::INVALID_DATETIME_FORMAT,
        format!("invalid input syntax for type timestamp with time zone: \"{text}\""),
    )
}

fn field_overflow(text: &str) -> QueryError {
    QueryError::new(
        sqlstate::DATETIME_FIELD_OVERFLOW,
        format!("date/time field value out of range: \"{text}\""),
    )
}

/// A small cursor over ASCII input.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn digits(&mut self) -> Option<(i64, usize)> {
        let start = self.i;
        let mut v: i64 = 0;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            v = v
                .checked_mul(10)?
                .checked_add((self.b[self.i] - b'0') as i64)?;
            self.i += 1;
        }
        (self.i > start).then_some((v, self.i - start))
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn spaces(&mut self) {
        while self.b.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn rest(&self) -> &str {
        std::str::from_utf8(&self.b[self.i..]).unwrap_or("")
    }
}

/// Parses timestamptz input (ISO forms, `T` or space between date and time, an optional zone:
/// `Z`, `+02`, `-05:30`, `UTC`, a tz database name; `BC`; `now`, `today`, `tomorrow`,
/// `yesterday`, `epoch`, `infinity`, `-infinity`). `now` is the transaction timestamp.
pub fn parse_timestamptz(text: &str, tz: &TimeZone, now: i64) -> Result<i64> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let midnight = |ts: i64, days: i64| -> Result<i64> {
        let (local, _) = tz.utc_to_local(ts);
        let day = local.div_euclid(USECS_PER_DAY) + days;
        tz.local_to_utc(day * USECS_PER_DAY)
    };
    match lower.as_str() {
        "now" => return Ok(now),
        "today" => return midnight(now, 0),
        "tomorrow" => return midnight(now, 1),
        "yesterday" => return midnight(now, -1),
        "epoch" => return Ok(-UNIX_TO_PG_USECS),
        "infinity" | "+infinity" => return Ok(TS_NOEND),
        "-infinity" => return Ok(TS_NOBEGIN),
        _ => {}
    }
    if !t.is_ascii() {
        return Err(invalid_ts(text));
    }
    let mut c = Cur {
        b: t.as_bytes(),
        i: 0,
    };
    let (year, ylen) = c.digits().ok_or_else(|| invalid_ts(text))?;
    if !c.eat(b'-') {
        return Err(invalid_ts(text));
    }
    let (month, _) = c.digits().ok_or_else(|| invalid_ts(text))?;
    if !c.eat(b'-') {
        return Err(invalid_ts(text));
    }
    let (day, _) = c.digits().ok_or_else(|| invalid_ts(text))?;
    if ylen > 6 {
        return Err(invalid_ts(text));
    }
    let (mut hour, mut minute, mut second, mut usec) = (0i64, 0i64, 0i64, 0i64);
    let save = c.i;
    if c.eat(b'T') || c.eat(b't') || c.eat(b' ') {
        c.spaces();
        if let Some((h, _)) = c.digits() {
            if !c.eat(b':') {
                return Err(invalid_ts(text));
            }
            let (m, _) = c.digits().ok_or_else(|| invalid_ts(text))?;
            hour = h;
            minute = m;
            if c.eat(b':') {
                let (s, _) = c.digits().ok_or_else(|| invalid_ts(text))?;
                second = s;
                if c.eat(b'.') {
                    let start = c.i;
                    let (f, n) = c.digits().unwrap_or((0, 0));
                    let _ = start;
                    // Round to microseconds.
                    let digits = &t[c.i - n..c.i];
                    let mut us: i64 = 0;
                    for (k, ch) in digits.bytes().take(7).enumerate() {
                        if k < 6 {
                            us = us * 10 + (ch - b'0') as i64;
                        } else if ch >= b'5' {
                            us += 1;
                        }
                    }
                    for _ in digits.len().min(6)..6 {
                        us *= 10;
                    }
                    let _ = f;
                    usec = us;
                }
            }
        } else {
            c.i = save;
        }
    }
    c.spaces();
    // Zone.
    let mut offset: Option<i32> = None;
    let mut named: Option<TimeZone> = None;
    let mut bc = false;
    let rest = c.rest().to_string();
    let mut rest = rest.trim();
    if let Some(r) = rest
        .strip_suffix(" BC")
        .or_else(|| rest.strip_suffix(" bc"))
        .or_else(|| (rest.eq_ignore_ascii_case("bc")).then_some(""))
    {
        bc = true;
        rest = r.trim();
    }
    if !rest.is_empty() {
        if rest.eq_ignore_ascii_case("z")
            || rest.eq_ignore_ascii_case("utc")
            || rest.eq_ignore_ascii_case("gmt")
        {
            offset = Some(0);
        } else if let Some(o) = parse_numeric_offset(rest) {
            offset = Some(o);
        } else if rest.bytes().next().is_some_and(|c| c.is_ascii_alphabetic()) && rest.contains('/')
        {
            named = Some(TimeZone::from_setting(rest).map_err(|_| {
                QueryError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("time zone \"{rest}\" not recognized"),
                )
            })?);
        } else {
            return Err(invalid_ts(text));
        }
    }
    let year = if bc { 1 - year } else { year };
    if year == 0 && !bc && ylen > 0 && !t.starts_with("0000") {
        return Err(field_overflow(text));
    }
    if !(1..=12).contains(&month) {
        return Err(field_overflow(text));
    }
    if day < 1 || day > days_in_month(year, month as u32) as i64 {
        return Err(field_overflow(text));
    }
    if hour > 24
        || minute > 59
        || second > 60
        || (hour == 24 && (minute > 0 || second > 0 || usec > 0))
    {
        return Err(field_overflow(text));
    }
    if year == 0 && !bc {
        return Err(field_overflow(text));
    }
    let tm = Tm {
        year,
        month: month as u32,
        day: day as u32,
        hour: 0,
        minute: 0,
        second: 0,
        usec: 0,
    };
    let local = tm
        .to_local_usecs()
        .and_then(|d| {
            d.checked_add(
                hour * USECS_PER_HOUR + minute * USECS_PER_MINUTE + second * USECS_PER_SEC + usec,
            )
        })
        .ok_or_else(|| {
            QueryError::new(
                sqlstate::DATETIME_FIELD_OVERFLOW,
                format!("timestamp out of range: \"{text}\""),
            )
        })?;
    let ts = match (offset, named) {
        (Some(o), _) => local
            .checked_sub(o as i64 * USECS_PER_SEC)
            .ok_or_else(ts_out_of_range)?,
        (None, Some(z)) => z.local_to_utc(local)?,
        (None, None) => tz.local_to_utc(local)?,
    };
    check_ts(ts).map_err(|_| {
        QueryError::new(
            sqlstate::DATETIME_FIELD_OVERFLOW,
            format!("timestamp out of range: \"{text}\""),
        )
    })
}

/// An `interval`: months, days and microseconds, each kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interval {
    /// Months.
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

pub(crate) fn interval_out_of_range() -> QueryError {
    QueryError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "interval out of range")
}

impl Interval {
    /// The span PostgreSQL compares by (a month is 30 days, a day 24 hours).
    pub fn cmp_key(&self) -> i128 {
        self.micros as i128
            + self.days as i128 * USECS_PER_DAY as i128
            + self.months as i128 * 30 * USECS_PER_DAY as i128
    }

    /// Comparison.
    pub fn cmp_iv(&self, o: &Interval) -> Ordering {
        self.cmp_key().cmp(&o.cmp_key())
    }

    /// Field-wise sum.
    pub fn add(&self, o: &Interval) -> Result<Interval> {
        Ok(Interval {
            months: self
                .months
                .checked_add(o.months)
                .ok_or_else(interval_out_of_range)?,
            days: self
                .days
                .checked_add(o.days)
                .ok_or_else(interval_out_of_range)?,
            micros: self
                .micros
                .checked_add(o.micros)
                .ok_or_else(interval_out_of_range)?,
        })
    }

    /// Negation.
    pub fn neg(&self) -> Result<Interval> {
        Ok(Interval {
            months: self
                .months
                .checked_neg()
                .ok_or_else(interval_out_of_range)?,
            days: self.days.checked_neg().ok_or_else(interval_out_of_range)?,
            micros: self
                .micros
                .checked_neg()
                .ok_or_else(interval_out_of_range)?,
        })
    }

    /// `interval * float8` with timestamp.c's cascade of fractional months and days.
    pub fn mul_f64(&self, factor: f64) -> Result<Interval> {
        if factor.is_nan() {
            return Err(interval_out_of_range());
        }
        let tsround = |x: f64| (x * 1e6).round_ties_even() / 1e6;
        let m = self.months as f64 * factor;
        let d = self.days as f64 * factor;
        if !(i32::MIN as f64..=i32::MAX as f64).contains(&m)
            || !(i32::MIN as f64..=i32::MAX as f64).contains(&d)
        {
            return Err(interval_out_of_range());
        }
        let months = m.trunc() as i32;
        let mut days = d.trunc() as i32;
        let month_rem_days = tsround((m - months as f64) * 30.0);
        let mut sec_rem =
            tsround((d - days as f64 + month_rem_days - month_rem_days.trunc()) * 86_400.0);
        if sec_rem.abs() >= 86_400.0 {
            let whole = (sec_rem / 86_400.0).trunc();
            days = days
                .checked_add(whole as i32)
                .ok_or_else(interval_out_of_range)?;
            sec_rem -= whole * 86_400.0;
        }
        days = days
            .checked_add(month_rem_days.trunc() as i32)
            .ok_or_else(interval_out_of_range)?;
        let micros = (self.micros as f64 * factor + sec_rem * 1e6).round_ties_even();
        if !(-9.2e18..9.2e18).contains(&micros) {
            return Err(interval_out_of_range());
        }
        Ok(Interval {
            months,
            days,
            micros: micros as i64,
        })
    }

    /// `interval / float8`.
    pub fn div_f64(&self, divisor: f64) -> Result<Interval> {
        if divisor == 0.0 {
            return Err(QueryError::division_by_zero());
        }
        self.mul_f64(1.0 / divisor)
            .map_err(|_| interval_out_of_range())
    }
}

/// Text output of an interval (IntervalStyle postgres).
pub fn format_interval(iv: &Interval) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |out: &mut String, value: i64, unit: &str| {
        if value == 0 {
            return;
        }
        if !is_zero {
            out.push(' ');
        }
        if is_before && value > 0 {
            out.push('+');
        }
        out.push_str(&format!(
            "{value} {unit}{}",
            if value != 1 { "s" } else { "" }
        ));
        is_before = value < 0;
        is_zero = false;
    };
    part(&mut out, (iv.months / 12) as i64, "year");
    part(&mut out, (iv.months % 12) as i64, "mon");
    part(&mut out, iv.days as i64, "day");
    let t = iv.micros;
    let hour = t / USECS_PER_HOUR;
    let min = (t % USECS_PER_HOUR) / USECS_PER_MINUTE;
    let sec = (t % USECS_PER_MINUTE) / USECS_PER_SEC;
    let fsec = t % USECS_PER_SEC;
    if is_zero || t != 0 {
        let minus = t < 0;
        if !is_zero {
            out.push(' ');
        }
        out.push_str(if minus {
            "-"
        } else if is_before {
            "+"
        } else {
            ""
        });
        out.push_str(&format!(
            "{:02}:{:02}:{:02}",
            hour.unsigned_abs(),
            min.unsigned_abs(),
            sec.unsigned_abs()
        ));
        fmt_frac(&mut out, fsec.unsigned_abs() as u32);
    }
    out
}

fn invalid_iv(text: &str) -> QueryError {
    QueryError::new(
        sqlstate::INVALID_DATETIME_FORMAT,
        format!("invalid input syntax for type interval: \"{text}\""),
    )
}

fn iv_field_overflow(text: &str) -> QueryError {
    QueryError::new(
        sqlstate::DATETIME_FIELD_OVERFLOW,
        format!("interval field value out of range: \"{text}\""),
    )
}

/// Accumulates interval fields with PostgreSQL's cascade of fractions.
#[derive(Default)]
struct IvAcc {
    months: f64,
    days: f64,
    micros: f64,
}

impl IvAcc {
    fn add_months(&mut self, v: f64) {
        let whole = v.trunc();
        self.months += whole;
        self.add_days((v - whole) * 30.0);
    }
    fn add_days(&mut self, v: f64) {
        let whole = v.trunc();
        self.days += whole;
        self.micros += ((v - whole) * USECS_PER_DAY as f64).round_ties_even();
    }
}

/// Parses interval input: `1 day 02:00:00`, `5 minutes`, `1.5 hours`, `-1 year 2 mons`,
/// `@ 1 day ago`, `10` (seconds), `P1Y2M3DT4H5M6S` is not taken.
pub fn parse_interval(text: &str) -> Result<Interval> {
    let t = text.trim();
    if t.is_empty() || !t.is_ascii() {
        return Err(invalid_iv(text));
    }
    let lower = t.to_ascii_lowercase();
    let mut tokens: Vec<&str> = lower.split_ascii_whitespace().collect();
    let mut ago = false;
    if tokens.first() == Some(&"@") {
        tokens.remove(0);
    }
    if tokens.last() == Some(&"ago") {
        ago = true;
        tokens.pop();
    }
    if tokens.is_empty() {
        return Err(invalid_iv(text));
    }
    let mut acc = IvAcc::default();
    let mut i = 0;
    let mut seen_any = false;
    while i < tokens.len() {
        let tok = tokens[i];
        if tok.contains(':') {
            let neg = tok.starts_with('-');
            let body = tok.trim_start_matches(['-', '+']);
            let parts: Vec<&str> = body.split(':').collect();
            if parts.len() < 2 || parts.len() > 3 {
                return Err(invalid_iv(text));
            }
            let h: f64 = parse_unsigned(parts[0]).ok_or_else(|| invalid_iv(text))?;
            let m: f64 = parse_unsigned(parts[1]).ok_or_else(|| invalid_iv(text))?;
            let s: f64 = if parts.len() == 3 {
                parse_unsigned(parts[2]).ok_or_else(|| invalid_iv(text))?
            } else {
                0.0
            };
            if m >= 60.0 || s >= 60.0 {
                return Err(iv_field_overflow(text));
            }
            let us = ((h * 3600.0 + m * 60.0 + s) * 1e6).round_ties_even();
            acc.micros += if neg { -us } else { us };
            i += 1;
            seen_any = true;
            continue;
        }
        // number [unit] or number+unit glued ("5min").
        let split = tok
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(tok.len());
        let (num, glued) = tok.split_at(split);
        if num.is_empty() {
            return Err(invalid_iv(text));
        }
        let v: f64 = parse_signed(num).ok_or_else(|| invalid_iv(text))?;
        let unit = if !glued.is_empty() {
            glued
        } else if i + 1 < tokens.len()
            && tokens[i + 1].starts_with(|c: char| c.is_ascii_alphabetic())
        {
            i += 1;
            tokens[i]
        } else {
            "second"
        };
        match unit {
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => {
                acc.micros += v.round_ties_even()
            }
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => {
                acc.micros += (v * 1e3).round_ties_even()
            }
            "second" | "seconds" | "s" | "sec" | "secs" => {
                acc.micros += (v * 1e6).round_ties_even()
            }
            "minute" | "minutes" | "m" | "min" | "mins" => {
                acc.micros += (v * 60e6).round_ties_even()
            }
            "hour" | "hours" | "h" | "hr" | "hrs" => acc.micros += (v * 3600e6).round_ties_even(),
            "day" | "days" | "d" => acc.add_days(v),
            "week" | "weeks" | "w" => acc.add_days(v * 7.0),
            "month" | "months" | "mon" | "mons" => acc.add_months(v),
            "year" | "years" | "y" | "yr" | "yrs" => acc.add_months(v * 12.0),
            "decade" | "decades" => acc.add_months(v * 120.0),
            "century" | "centuries" => acc.add_months(v * 1200.0),
            "millennium" | "millennia" | "millenniums" => acc.add_months(v * 12000.0),
            _ => return Err(invalid_iv(text)),
        }
        seen_any = true;
        i += 1;
    }
    if !seen_any {
        return Err(invalid_iv(text));
    }
    let fits32 = |x: f64| (i32::MIN as f64..=i32::MAX as f64).contains(&x);
    if !fits32(acc.months) || !fits32(acc.days) || !(-9.2e18..9.2e18).contains(&acc.micros) {
        return Err(iv_field_overflow(text));
    }
    let mut iv = Interval {
        months: acc.months as i32,
        days: acc.days as i32,
        micros: acc.micros as i64,
    };
    if ago {
        iv = iv.neg().map_err(|_| iv_field_overflow(text))?;
    }
    Ok(iv)
}

fn parse_unsigned(s: &str) -> Option<f64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    s.parse().ok()
}

fn parse_signed(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let v = parse_unsigned(body)?;
    Some(if s.starts_with('-') { -v } else { v })
}

/// timestamptz + interval in `tz` (months and days move the wall clock, as PostgreSQL).
pub fn ts_plus_interval(ts: i64, iv: &Interval, tz: &TimeZone) -> Result<i64> {
    if ts == TS_NOBEGIN || ts == TS_NOEND {
        return Ok(ts);
    }
    let mut ts = ts;
    if iv.months != 0 {
        let (local, _) = tz.utc_to_local(ts);
        let mut tm = Tm::from_local_usecs(local);
        let total = tm.year * 12 + (tm.month as i64 - 1) + iv.months as i64;
        tm.year = total.div_euclid(12);
        tm.month = (total.rem_euclid(12) + 1) as u32;
        tm.day = tm.day.min(days_in_month(tm.year, tm.month));
        if !(-4713..=294_276).contains(&tm.year) {
            return Err(ts_out_of_range());
        }
        let local = tm.to_local_usecs().ok_or_else(ts_out_of_range)?;
        ts = tz.local_to_utc(local)?;
    }
    if iv.days != 0 {
        let (local, _) = tz.utc_to_local(ts);
        let local = (iv.days as i64)
            .checked_mul(USECS_PER_DAY)
            .and_then(|d| local.checked_add(d))
            .ok_or_else(ts_out_of_range)?;
        ts = tz.local_to_utc(check_ts(local)?)?;
    }
    let ts = ts.checked_add(iv.micros).ok_or_else(ts_out_of_range)?;
    check_ts(ts)
}

/// timestamptz - timestamptz: an interval of days and time (`justify_hours`).
pub fn ts_minus_ts(a: i64, b: i64) -> Result<Interval> {
    if [a, b].iter().any(|t| *t == TS_NOBEGIN || *t == TS_NOEND) {
        return Err(QueryError::new(
            sqlstate::DATETIME_FIELD_OVERFLOW,
            "cannot subtract infinite timestamps",
        ));
    }
    let d = a.checked_sub(b).ok_or_else(interval_out_of_range)?;
    Ok(Interval {
        months: 0,
        days: (d / USECS_PER_DAY) as i32,
        micros: d % USECS_PER_DAY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trip() {
        let utc = TimeZone::utc();
        let ts = parse_timestamptz("2026-12-01 23:15:01.213456+00", &utc, 0).unwrap();
        assert_eq!(
            format_timestamptz(ts, &utc),
            "2026-12-01 23:15:01.213456+00"
        );
        let ts = parse_timestamptz("2000-01-01", &utc, 0).unwrap();
        assert_eq!(ts, 0);
        let kolkata = TimeZone::Fixed {
            name: "x".into(),
            offset: 19800,
        };
        assert_eq!(format_timestamptz(0, &kolkata), "2000-01-01 05:30:00+05:30");
        assert_eq!(
            parse_timestamptz("2026-02-30", &utc, 0)
                .unwrap_err()
                .sqlstate,
            "22008"
        );
        assert_eq!(
            parse_timestamptz("bogus", &utc, 0).unwrap_err().sqlstate,
            "22007"
        );
    }

    #[test]
    fn interval_text() {
        let check =
            |i: &str, o: &str| assert_eq!(format_interval(&parse_interval(i).unwrap()), o, "{i}");
        check("5 minutes", "00:05:00");
        check("1 day 02:00:00", "1 day 02:00:00");
        check("1.5 days", "1 day 12:00:00");
        check("-1 day", "-1 days");
        check("1 year 2 months", "1 year 2 mons");
        check("1 day ago", "-1 days");
        check("0", "00:00:00");
        check("1 day -01:00", "1 day -01:00:00");
        check("-1 day +01:00", "-1 days +01:00:00");
    }
}
