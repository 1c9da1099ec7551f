//! Binary formats of the fixed-width types and text (PostgreSQL's `*send` / `*recv`
//! functions), for Bind parameters and results in format 1. numeric and text[] have no
//! binary format here: asking for one is 0A000.

use pgipc_query::{Datum, Inet, Interval, PgSnapshot, QueryError, Type};

fn not_supported(what: &str) -> QueryError {
    QueryError::not_supported(format!("binary format of type {what} is not supported"))
}

/// The binary form of `d` (`None` for NULL).
pub(crate) fn encode(d: &Datum) -> Result<Option<Vec<u8>>, QueryError> {
    Ok(Some(match d {
        Datum::Null => return Ok(None),
        Datum::Bool(b) => vec![u8::from(*b)],
        Datum::Int2(v) => v.to_be_bytes().to_vec(),
        Datum::Int4(v) => v.to_be_bytes().to_vec(),
        Datum::Int8(v) => v.to_be_bytes().to_vec(),
        Datum::Oid(v) => v.to_be_bytes().to_vec(),
        Datum::Float8(v) => v.to_bits().to_be_bytes().to_vec(),
        Datum::Text(s) => s.as_bytes().to_vec(),
        Datum::Timestamptz(t) => t.to_be_bytes().to_vec(),
        Datum::Interval(iv) => {
            let mut b = Vec::with_capacity(16);
            b.extend_from_slice(&iv.micros.to_be_bytes());
            b.extend_from_slice(&iv.days.to_be_bytes());
            b.extend_from_slice(&iv.months.to_be_bytes());
            b
        }
        Datum::Void => Vec::new(),
        Datum::Xid8(v) => v.to_be_bytes().to_vec(),
        Datum::Xid(v) | Datum::Regtype(v) => v.to_be_bytes().to_vec(),
        Datum::Inet(i) => i.to_binary(),
        Datum::Snapshot(s) => {
            // pg_snapshot_send: nxip, xmin, xmax, then each in-progress id.
            let mut b = Vec::with_capacity(20 + 8 * s.xip.len());
            b.extend_from_slice(&(s.xip.len() as i32).to_be_bytes());
            b.extend_from_slice(&s.xmin.to_be_bytes());
            b.extend_from_slice(&s.xmax.to_be_bytes());
            for x in &s.xip {
                b.extend_from_slice(&x.to_be_bytes());
            }
            b
        }
        Datum::Numeric(_) => return Err(not_supported("numeric")),
        Datum::TextArray(_) => return Err(not_supported("text[]")),
    }))
}

/// Bind parameter `n` (1-based) of type `ty` in binary format.
pub(crate) fn decode(b: &[u8], ty: Type, n: usize) -> Result<Datum, QueryError> {
    let bad = || {
        QueryError::new(
            "22P03",
            format!("incorrect binary data format in bind parameter {n}"),
        )
    };
    let fixed = |len: usize| -> Result<&[u8], QueryError> {
        if b.len() == len {
            Ok(b)
        } else {
            Err(bad())
        }
    };
    Ok(match ty {
        Type::Bool => Datum::Bool(fixed(1)?[0] != 0),
        Type::Int2 => Datum::Int2(i16::from_be_bytes(fixed(2)?.try_into().map_err(|_| bad())?)),
        Type::Int4 => Datum::Int4(i32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad())?)),
        Type::Int8 => Datum::Int8(i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad())?)),
        Type::Oid => Datum::Oid(u32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad())?)),
        Type::Float8 => Datum::Float8(f64::from_bits(u64::from_be_bytes(
            fixed(8)?.try_into().map_err(|_| bad())?,
        ))),
        Type::Timestamptz => {
            Datum::Timestamptz(i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad())?))
        }
        Type::Interval => {
            let b = fixed(16)?;
            let micros = i64::from_be_bytes(b[0..8].try_into().map_err(|_| bad())?);
            let days = i32::from_be_bytes(b[8..12].try_into().map_err(|_| bad())?);
            let months = i32::from_be_bytes(b[12..16].try_into().map_err(|_| bad())?);
            Datum::Interval(Interval {
                months,
                days,
                micros,
            })
        }
        Type::Text | Type::Name | Type::Unknown => {
            Datum::Text(String::from_utf8(b.to_vec()).map_err(|_| {
                QueryError::new("22021", "invalid byte sequence for encoding \"UTF8\"")
            })?)
        }
        Type::Void => Datum::Void,
        Type::Xid8 => Datum::Xid8(u64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad())?)),
        Type::PgSnapshot | Type::TxidSnapshot => Datum::Snapshot(Box::new(decode_snapshot(b)?)),
        Type::Xid => Datum::Xid(u32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad())?)),
        Type::Regtype => {
            Datum::Regtype(u32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad())?))
        }
        Type::Inet => Datum::Inet(Inet::from_binary(b)?),
        Type::Numeric => return Err(not_supported("numeric")),
        Type::TextArray => return Err(not_supported("text[]")),
    })
}

/// `pg_snapshot_recv`: the fields in order, checked as the text input checks them.
fn decode_snapshot(b: &[u8]) -> Result<PgSnapshot, QueryError> {
    let bad = || QueryError::new("22P03", "invalid external pg_snapshot data");
    let u64_at = |k: usize| -> Result<u64, QueryError> {
        b.get(k..k + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(bad)
    };
    let nxip = b
        .get(0..4)
        .and_then(|s| s.try_into().ok())
        .map(i32::from_be_bytes)
        .ok_or_else(bad)?;
    let nxip = usize::try_from(nxip).map_err(|_| bad())?;
    if b.len() != 20 + nxip.checked_mul(8).ok_or_else(bad)? {
        return Err(bad());
    }
    let (xmin, xmax) = (u64_at(4)?, u64_at(12)?);
    if xmin == 0 || xmax == 0 || xmax < xmin {
        return Err(bad());
    }
    let mut xip: Vec<u64> = Vec::with_capacity(nxip);
    for k in 0..nxip {
        let x = u64_at(20 + 8 * k)?;
        if x < xmin || x >= xmax || xip.last().is_some_and(|&l| x < l) {
            return Err(bad());
        }
        if xip.last() != Some(&x) {
            xip.push(x);
        }
    }
    Ok(PgSnapshot { xmin, xmax, xip })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_values_round_trip() {
        let cases = [
            (Datum::Bool(true), Type::Bool),
            (Datum::Int2(-3), Type::Int2),
            (Datum::Int4(i32::MIN), Type::Int4),
            (Datum::Int8(1 << 40), Type::Int8),
            (Datum::Oid(4_000_000_000), Type::Oid),
            (Datum::Float8(-0.5), Type::Float8),
            (Datum::Timestamptz(123_456_789), Type::Timestamptz),
            (
                Datum::Interval(Interval {
                    months: 1,
                    days: -2,
                    micros: 3,
                }),
                Type::Interval,
            ),
            (Datum::Text("héllo".into()), Type::Text),
            (Datum::Xid8(u64::MAX), Type::Xid8),
            (Datum::Xid(u32::MAX), Type::Xid),
            (Datum::Regtype(869), Type::Regtype),
            (Datum::Inet(Inet::host([127, 0, 0, 1].into())), Type::Inet),
            (
                Datum::Inet(Inet::host(std::net::Ipv6Addr::LOCALHOST.into())),
                Type::Inet,
            ),
            (
                Datum::Snapshot(Box::new(PgSnapshot::new(795, 798, vec![796, 795]))),
                Type::PgSnapshot,
            ),
        ];
        for (d, ty) in cases {
            let b = encode(&d).unwrap().unwrap();
            assert_eq!(decode(&b, ty, 1).unwrap(), d, "{ty:?}");
        }
        assert_eq!(encode(&Datum::Null).unwrap(), None);
        assert_eq!(encode(&Datum::Int4(1)).unwrap().unwrap(), vec![0, 0, 0, 1]);
    }

    #[test]
    fn wrong_lengths_and_unsupported_types_are_errors() {
        assert_eq!(
            decode(&[0, 1], Type::Int4, 2).unwrap_err().sqlstate,
            "22P03"
        );
        assert_eq!(decode(&[], Type::Numeric, 1).unwrap_err().sqlstate, "0A000");
        assert_eq!(
            decode(&[0xff], Type::Text, 1).unwrap_err().sqlstate,
            "22021"
        );
    }
}
