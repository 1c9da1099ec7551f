//! Planned expressions and their evaluation (PostgreSQL's executor/execExprInterp.c, and the
//! operator bodies of utils/adt: int.c, int8.c, float.c, numeric.c, varlena.c, timestamp.c).

use std::cmp::Ordering;
use std::rc::Rc;

use crate::datetime::{self, TimeZone};
use crate::error::{sqlstate, QueryError, Result};
use crate::numeric::Numeric;
use crate::session::{ServerFunction, Session};
use crate::types::Type;
use crate::value::{self, CastCtx, Datum};

/// Arithmetic and string operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Concat,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Concat => "||",
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
    fn test(self, o: Ordering) -> bool {
        match self {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
        }
    }
}

/// A built-in function body.
pub(crate) type Builtin = fn(&[Datum], &mut EvalCx<'_>) -> Result<Datum>;

/// What a call runs.
#[derive(Clone)]
pub(crate) enum FuncImpl {
    Builtin(Builtin),
    Server(Rc<ServerFunction>),
}

impl std::fmt::Debug for FuncImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FuncImpl::Builtin(_) => f.write_str("Builtin"),
            FuncImpl::Server(s) => write!(f, "Server({})", s.name),
        }
    }
}

impl PartialEq for FuncImpl {
    fn eq(&self, o: &FuncImpl) -> bool {
        match (self, o) {
            (FuncImpl::Builtin(a), FuncImpl::Builtin(b)) => std::ptr::fn_addr_eq(*a, *b),
            (FuncImpl::Server(a), FuncImpl::Server(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggKind {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    StringAgg,
    BoolAnd,
    BoolOr,
}

/// An aggregate call, before it is moved into the aggregation step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AggCall {
    pub kind: AggKind,
    pub args: Vec<Expr>,
    pub distinct: bool,
    /// Argument type (for the result of sum/avg).
    pub arg_type: Type,
    pub filter: Option<Box<Expr>>,
    /// `ORDER BY` inside the call: (key, descending, nulls first).
    pub order: Vec<(Expr, bool, bool)>,
}

/// A source position that compares equal to any other, so that planned expressions compare
/// by meaning (GROUP BY matching) and not by where they were written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SrcPos(pub Option<u32>);

impl PartialEq for SrcPos {
    fn eq(&self, _: &SrcPos) -> bool {
        true
    }
}

/// A planned expression: operands are already coerced to the operator's types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Const(Datum),
    Param(usize),
    /// A column of the row being evaluated (with where it was written, for errors).
    Col(usize, SrcPos),
    /// An aggregate (only until the aggregation step replaces it with a `Col`).
    Agg(Box<AggCall>),
    Op(BinOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    IsNull(Box<Expr>, bool),
    /// `x IS [NOT] TRUE/FALSE/UNKNOWN` (`None` = UNKNOWN), negated.
    IsBool(Box<Expr>, Option<bool>, bool),
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Box<Expr>,
    },
    Coalesce(Vec<Expr>),
    NullIf(Box<Expr>, Box<Expr>),
    MinMax(Vec<Expr>, bool),
    Cast(Box<Expr>, Type, Type),
    /// Rounds a numeric to a typmod `numeric(p, s)`.
    NumericTypmod(Box<Expr>, u32, u32),
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<Box<Expr>>,
        ci: bool,
        negated: bool,
    },
    InList(Box<Expr>, Vec<Expr>, bool),
    Call {
        f: FuncImpl,
        args: Vec<Expr>,
        strict: bool,
    },
}

impl Expr {
    /// Visits the direct children.
    pub(crate) fn children_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Expr::Const(_) | Expr::Param(_) | Expr::Col(..) => vec![],
            Expr::Agg(a) => {
                let mut v: Vec<&mut Expr> = a.args.iter_mut().collect();
                if let Some(f) = a.filter.as_deref_mut() {
                    v.push(f);
                }
                v.extend(a.order.iter_mut().map(|o| &mut o.0));
                v
            }
            Expr::Op(_, a, b)
            | Expr::Cmp(_, a, b)
            | Expr::NullIf(a, b)
            | Expr::IsDistinct(a, b, _) => {
                vec![a, b]
            }
            Expr::Neg(a)
            | Expr::Not(a)
            | Expr::IsNull(a, _)
            | Expr::IsBool(a, _, _)
            | Expr::Cast(a, _, _)
            | Expr::NumericTypmod(a, _, _) => vec![a],
            Expr::And(v) | Expr::Or(v) | Expr::Coalesce(v) | Expr::MinMax(v, _) => {
                v.iter_mut().collect()
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let mut v: Vec<&mut Expr> = Vec::new();
                if let Some(o) = operand.as_deref_mut() {
                    v.push(o);
                }
                for (a, b) in whens.iter_mut() {
                    v.push(a);
                    v.push(b);
                }
                v.push(otherwise);
                v
            }
            Expr::Like {
                expr,
                pattern,
                escape,
                ..
            } => {
                let mut v: Vec<&mut Expr> = vec![expr, pattern];
                if let Some(e) = escape.as_deref_mut() {
                    v.push(e);
                }
                v
            }
            Expr::InList(e, list, _) => {
                let mut v: Vec<&mut Expr> = vec![e];
                v.extend(list.iter_mut());
                v
            }
            Expr::Call { args, .. } => args.iter_mut().collect(),
        }
    }

    pub(crate) fn contains_agg(&self) -> bool {
        let mut e = self.clone();
        #[recursive::recursive]
        fn walk(e: &mut Expr) -> bool {
            if matches!(e, Expr::Agg(_)) {
                return true;
            }
            e.children_mut().into_iter().any(walk)
        }
        walk(&mut e)
    }
}

/// What evaluation needs besides the row.
pub(crate) struct EvalCx<'a> {
    pub session: &'a mut dyn Session,
    pub params: &'a [Datum],
    pub tz: TimeZone,
    pub now: i64,
}

impl EvalCx<'_> {
    pub(crate) fn cast_cx(&self) -> CastCtx<'_> {
        CastCtx {
            tz: &self.tz,
            now: self.now,
        }
    }
}

fn int2_range() -> QueryError {
    QueryError::out_of_range("smallint")
}
fn int4_range() -> QueryError {
    QueryError::out_of_range("integer")
}
fn int8_range() -> QueryError {
    QueryError::out_of_range("bigint")
}

fn float_check(r: f64, a: f64, b: f64, zero_ok: bool) -> Result<f64> {
    if r.is_infinite() && !a.is_infinite() && !b.is_infinite() {
        return Err(QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: overflow",
        ));
    }
    if r == 0.0 && !zero_ok {
        return Err(QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: underflow",
        ));
    }
    Ok(r)
}

macro_rules! int_arith {
    ($op:expr, $a:expr, $b:expr, $t:ty, $wrap:path, $err:expr) => {{
        let (a, b): ($t, $t) = ($a, $b);
        let r = match $op {
            BinOp::Add => a.checked_add(b).ok_or_else($err)?,
            BinOp::Sub => a.checked_sub(b).ok_or_else($err)?,
            BinOp::Mul => a.checked_mul(b).ok_or_else($err)?,
            BinOp::Div => {
                if b == 0 {
                    return Err(QueryError::division_by_zero());
                }
                a.checked_div(b).ok_or_else($err)?
            }
            BinOp::Mod => {
                if b == 0 {
                    return Err(QueryError::division_by_zero());
                }
                if b == -1 {
                    0
                } else {
                    a % b
                }
            }
            _ => {
                return Err(QueryError::new(
                    sqlstate::INTERNAL_ERROR,
                    "bad integer operator",
                ))
            }
        };
        Ok($wrap(r))
    }};
}

/// Applies a binary operator to non-NULL operands.
pub(crate) fn binop(op: BinOp, a: Datum, b: Datum, cx: &EvalCx<'_>) -> Result<Datum> {
    use Datum::*;
    match (a, b) {
        (Int2(x), Int2(y)) => int_arith!(op, x, y, i16, Int2, int2_range),
        (Int4(x), Int4(y)) => int_arith!(op, x, y, i32, Int4, int4_range),
        (Int8(x), Int8(y)) => int_arith!(op, x, y, i64, Int8, int8_range),
        (Float8(x), Float8(y)) => Ok(Float8(match op {
            BinOp::Add => float_check(x + y, x, y, true)?,
            BinOp::Sub => float_check(x - y, x, y, true)?,
            BinOp::Mul => float_check(x * y, x, y, x == 0.0 || y == 0.0)?,
            BinOp::Div => {
                if y == 0.0 {
                    return Err(QueryError::division_by_zero());
                }
                float_check(x / y, x, y, x == 0.0 || y.is_infinite())?
            }
            BinOp::Pow => pow_f64(x, y)?,
            _ => {
                return Err(QueryError::new(
                    sqlstate::INTERNAL_ERROR,
                    "bad float operator",
                ))
            }
        })),
        (Numeric(x), Numeric(y)) => Ok(Numeric(match op {
            BinOp::Add => x.add(&y)?,
            BinOp::Sub => x.sub(&y)?,
            BinOp::Mul => x.mul(&y)?,
            BinOp::Div => x.div(&y)?,
            BinOp::Mod => x.rem(&y)?,
            BinOp::Pow => pow_numeric(&x, &y)?,
            _ => {
                return Err(QueryError::new(
                    sqlstate::INTERNAL_ERROR,
                    "bad numeric operator",
                ))
            }
        })),
        (Text(x), Text(y)) if op == BinOp::Concat => Ok(Text(x + &y)),
        (Timestamptz(t), Interval(iv)) | (Interval(iv), Timestamptz(t)) if op == BinOp::Add => {
            Ok(Timestamptz(datetime::ts_plus_interval(t, &iv, &cx.tz)?))
        }
        (Timestamptz(t), Interval(iv)) if op == BinOp::Sub => Ok(Timestamptz(
            datetime::ts_plus_interval(t, &iv.neg()?, &cx.tz)?,
        )),
        (Timestamptz(x), Timestamptz(y)) if op == BinOp::Sub => {
            Ok(Interval(datetime::ts_minus_ts(x, y)?))
        }
        (Interval(x), Interval(y)) => match op {
            BinOp::Add => Ok(Interval(x.add(&y)?)),
            BinOp::Sub => Ok(Interval(x.add(&y.neg()?)?)),
            _ => Err(QueryError::new(
                sqlstate::INTERNAL_ERROR,
                "bad interval operator",
            )),
        },
        (Interval(x), Float8(f)) | (Float8(f), Interval(x)) if op == BinOp::Mul => {
            Ok(Interval(x.mul_f64(f)?))
        }
        (Interval(x), Float8(f)) if op == BinOp::Div => Ok(Interval(x.div_f64(f)?)),
        (a, b) => Err(QueryError::new(
            sqlstate::INTERNAL_ERROR,
            format!("operator {} has no body for {a:?} and {b:?}", op.symbol()),
        )),
    }
}

pub(crate) fn pow_f64(x: f64, y: f64) -> Result<f64> {
    if x == 0.0 && y < 0.0 {
        return Err(QueryError::new(
            sqlstate::INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "zero raised to a negative power is undefined",
        ));
    }
    if x < 0.0 && y.fract() != 0.0 && y.is_finite() {
        return Err(QueryError::new(
            sqlstate::INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    let r = x.powf(y);
    if r.is_infinite() && x.is_finite() && y.is_finite() {
        return Err(QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: overflow",
        ));
    }
    if r == 0.0 && x != 0.0 && y.is_finite() && x.is_finite() {
        return Err(QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: underflow",
        ));
    }
    Ok(r)
}

pub(crate) fn pow_numeric(x: &Numeric, y: &Numeric) -> Result<Numeric> {
    x.pow(y)
}

pub(crate) fn negate(d: Datum) -> Result<Datum> {
    Ok(match d {
        Datum::Int2(v) => Datum::Int2(v.checked_neg().ok_or_else(int2_range)?),
        Datum::Int4(v) => Datum::Int4(v.checked_neg().ok_or_else(int4_range)?),
        Datum::Int8(v) => Datum::Int8(v.checked_neg().ok_or_else(int8_range)?),
        Datum::Float8(f) => Datum::Float8(-f),
        Datum::Numeric(n) => Datum::Numeric(n.neg()),
        Datum::Interval(iv) => Datum::Interval(iv.neg()?),
        other => other,
    })
}

/// Maximum expression nesting evaluated (and planned).
pub(crate) const MAX_DEPTH: usize = 3500;

/// Evaluates `e` over `row`.
#[recursive::recursive]
pub(crate) fn eval(e: &Expr, row: &[Datum], cx: &mut EvalCx<'_>) -> Result<Datum> {
    Ok(match e {
        Expr::Const(d) => d.clone(),
        Expr::Param(i) => cx.params.get(*i).cloned().unwrap_or(Datum::Null),
        Expr::Col(i, _) => row.get(*i).cloned().unwrap_or(Datum::Null),
        Expr::Agg(_) => {
            return Err(QueryError::new(
                sqlstate::INTERNAL_ERROR,
                "aggregate evaluated outside its aggregation step",
            ))
        }
        Expr::Op(op, a, b) => {
            let a = eval(a, row, cx)?;
            if a.is_null() {
                return Ok(Datum::Null);
            }
            let b = eval(b, row, cx)?;
            if b.is_null() {
                return Ok(Datum::Null);
            }
            binop(*op, a, b, cx)?
        }
        Expr::Neg(a) => {
            let a = eval(a, row, cx)?;
            if a.is_null() {
                return Ok(Datum::Null);
            }
            negate(a)?
        }
        Expr::Cmp(op, a, b) => {
            let a = eval(a, row, cx)?;
            let b = eval(b, row, cx)?;
            if a.is_null() || b.is_null() {
                return Ok(Datum::Null);
            }
            Datum::Bool(op.test(value::compare(&a, &b)))
        }
        Expr::And(v) => {
            let mut null = false;
            for x in v {
                match eval(x, row, cx)? {
                    Datum::Bool(false) => return Ok(Datum::Bool(false)),
                    Datum::Null => null = true,
                    _ => {}
                }
            }
            if null {
                Datum::Null
            } else {
                Datum::Bool(true)
            }
        }
        Expr::Or(v) => {
            let mut null = false;
            for x in v {
                match eval(x, row, cx)? {
                    Datum::Bool(true) => return Ok(Datum::Bool(true)),
                    Datum::Null => null = true,
                    _ => {}
                }
            }
            if null {
                Datum::Null
            } else {
                Datum::Bool(false)
            }
        }
        Expr::Not(a) => match eval(a, row, cx)? {
            Datum::Bool(b) => Datum::Bool(!b),
            _ => Datum::Null,
        },
        Expr::IsNull(a, neg) => Datum::Bool(eval(a, row, cx)?.is_null() != *neg),
        Expr::IsBool(a, want, neg) => {
            let v = eval(a, row, cx)?;
            let r = match (want, &v) {
                (None, Datum::Null) => true,
                (Some(w), Datum::Bool(b)) => w == b,
                _ => false,
            };
            Datum::Bool(r != *neg)
        }
        Expr::IsDistinct(a, b, neg) => {
            let a = eval(a, row, cx)?;
            let b = eval(b, row, cx)?;
            let distinct = match (a.is_null(), b.is_null()) {
                (true, true) => false,
                (true, false) | (false, true) => true,
                _ => value::compare(&a, &b) != Ordering::Equal,
            };
            Datum::Bool(distinct != *neg)
        }
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => {
            let op = match operand {
                Some(o) => Some(eval(o, row, cx)?),
                None => None,
            };
            for (w, t) in whens {
                let hit = match &op {
                    Some(o) => {
                        let wv = eval(w, row, cx)?;
                        !o.is_null() && !wv.is_null() && value::compare(o, &wv) == Ordering::Equal
                    }
                    None => matches!(eval(w, row, cx)?, Datum::Bool(true)),
                };
                if hit {
                    return eval(t, row, cx);
                }
            }
            eval(otherwise, row, cx)?
        }
        Expr::Coalesce(v) => {
            for x in v {
                let d = eval(x, row, cx)?;
                if !d.is_null() {
                    return Ok(d);
                }
            }
            Datum::Null
        }
        Expr::NullIf(a, b) => {
            let a = eval(a, row, cx)?;
            let b = eval(b, row, cx)?;
            if !a.is_null() && !b.is_null() && value::compare(&a, &b) == Ordering::Equal {
                Datum::Null
            } else {
                a
            }
        }
        Expr::MinMax(v, greatest) => {
            let mut best = Datum::Null;
            for x in v {
                let d = eval(x, row, cx)?;
                if d.is_null() {
                    continue;
                }
                let better = best.is_null() || {
                    let o = value::compare(&d, &best);
                    if *greatest {
                        o == Ordering::Greater
                    } else {
                        o == Ordering::Less
                    }
                };
                if better {
                    best = d;
                }
            }
            best
        }
        Expr::Cast(a, from, to) => {
            let d = eval(a, row, cx)?;
            value::cast(d, *from, *to, cx.cast_cx())?
        }
        Expr::NumericTypmod(a, p, s) => match eval(a, row, cx)? {
            Datum::Numeric(n) => Datum::Numeric(apply_typmod(&n, *p, *s)?),
            other => other,
        },
        Expr::Like {
            expr,
            pattern,
            escape,
            ci,
            negated,
        } => {
            let s = eval(expr, row, cx)?;
            let p = eval(pattern, row, cx)?;
            let esc = match escape {
                Some(e) => Some(eval(e, row, cx)?),
                None => None,
            };
            match (s, p, esc) {
                (Datum::Text(s), Datum::Text(p), esc) => {
                    let esc = match esc {
                        None => Some('\\'),
                        Some(Datum::Null) => return Ok(Datum::Null),
                        Some(Datum::Text(e)) => {
                            let mut it = e.chars();
                            match (it.next(), it.next()) {
                                (None, _) => None,
                                (Some(c), None) => Some(c),
                                _ => {
                                    return Err(QueryError::new(
                                        sqlstate::INVALID_ESCAPE_SEQUENCE,
                                        "invalid escape string",
                                    )
                                    .with_hint("Escape string must be empty or one character."))
                                }
                            }
                        }
                        Some(_) => Some('\\'),
                    };
                    let m = like(&s, &p, esc, *ci)?;
                    Datum::Bool(m != *negated)
                }
                _ => Datum::Null,
            }
        }
        Expr::InList(a, list, neg) => {
            let a = eval(a, row, cx)?;
            if a.is_null() {
                return Ok(Datum::Null);
            }
            let mut null = false;
            for x in list {
                let d = eval(x, row, cx)?;
                if d.is_null() {
                    null = true;
                } else if value::compare(&a, &d) == Ordering::Equal {
                    return Ok(Datum::Bool(!*neg));
                }
            }
            if null {
                Datum::Null
            } else {
                Datum::Bool(*neg)
            }
        }
        Expr::Call { f, args, strict } => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                let d = eval(a, row, cx)?;
                if *strict && d.is_null() {
                    return Ok(Datum::Null);
                }
                vals.push(d);
            }
            match f {
                FuncImpl::Builtin(b) => b(&vals, cx)?,
                FuncImpl::Server(s) => (s.call)(cx.session, &vals)?,
            }
        }
    })
}

/// Applies `numeric(p, s)`.
pub(crate) fn apply_typmod(n: &Numeric, p: u32, s: u32) -> Result<Numeric> {
    if !matches!(n, Numeric::Finite { .. }) {
        if n.is_nan() {
            return Ok(n.clone());
        }
        return Err(QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "numeric field overflow",
        )
        .with_detail(format!(
            "A field with precision {p}, scale {s} cannot hold an infinite value."
        )));
    }
    let r = n.round(s as i32);
    let text = r.abs().to_string();
    let int_digits = text
        .split('.')
        .next()
        .unwrap_or("")
        .trim_start_matches('0')
        .len();
    if int_digits as i64 > p as i64 - s as i64 {
        let msg = if p == s {
            format!("A field with precision {p}, scale {s} must round to an absolute value less than 1.")
        } else {
            format!(
                "A field with precision {p}, scale {s} must round to an absolute value less than 10^{}.",
                p - s
            )
        };
        return Err(QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "numeric field overflow",
        )
        .with_detail(msg));
    }
    Ok(r)
}

/// SQL LIKE with `%` and `_`, an escape character, optionally case-insensitive.
pub(crate) fn like(s: &str, p: &str, esc: Option<char>, ci: bool) -> Result<bool> {
    let fold = |x: &str| -> Vec<char> {
        if ci {
            x.to_ascii_lowercase().chars().collect()
        } else {
            x.chars().collect()
        }
    };
    let s = fold(s);
    let praw = fold(p);
    // Tokenize the pattern.
    #[derive(Clone, Copy, PartialEq)]
    enum T {
        Lit(char),
        One,
        Any,
    }
    let mut toks = Vec::new();
    let mut i = 0;
    while i < praw.len() {
        let c = praw[i];
        if Some(c) == esc {
            i += 1;
            match praw.get(i) {
                Some(&n) => toks.push(T::Lit(n)),
                None => {
                    return Err(QueryError::new(
                        sqlstate::INVALID_ESCAPE_SEQUENCE,
                        "LIKE pattern must not end with escape character",
                    ))
                }
            }
        } else if c == '%' {
            if toks.last() != Some(&T::Any) {
                toks.push(T::Any);
            }
        } else if c == '_' {
            toks.push(T::One);
        } else {
            toks.push(T::Lit(c));
        }
        i += 1;
    }
    // Iterative matcher with backtracking to the last '%'.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match toks.get(pi) {
            Some(T::Lit(c)) if *c == s[si] => {
                si += 1;
                pi += 1;
            }
            Some(T::One) => {
                si += 1;
                pi += 1;
            }
            Some(T::Any) => {
                star = Some((pi, si));
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return Ok(false),
            },
        }
    }
    while toks.get(pi) == Some(&T::Any) {
        pi += 1;
    }
    Ok(pi == toks.len())
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_patterns() {
        assert!(like("hello", "h%o", Some('\\'), false).unwrap());
        assert!(like("hello", "h_llo", Some('\\'), false).unwrap());
        assert!(!like("hello", "H%", Some('\\'), false).unwrap());
        assert!(like("hello", "H%", Some('\\'), true).unwrap());
        assert!(like("a%b", "a\\%b", Some('\\'), false).unwrap());
        assert!(!like("axb", "a\\%b", Some('\\'), false).unwrap());
        assert!(like("", "%", Some('\\'), false).unwrap());
        assert!(like("abcabc", "%bc", Some('\\'), false).unwrap());
        assert!(like("mississippi", "%iss%pi", Some('\\'), false).unwrap());
    }
}
