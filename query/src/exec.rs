//! The executor: a pull pipeline over rows (PostgreSQL's executor/ in miniature).
//!
//! ```text
//!   source (one row | generate_series | set-returning function | view) ─► WHERE ─► [aggregate ─► HAVING] ─► project
//!        ─► [DISTINCT] ─► [sort] ─► OFFSET/LIMIT ─► caller
//! ```
//! Without aggregation or sorting every step streams: a row is computed when the caller asks
//! for it, so `generate_series(1, 1000000)` never holds more than one row. Aggregation and
//! ORDER BY must see every input row first (as PostgreSQL's Agg and Sort nodes do).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::datetime::{self, Interval, TimeZone};
use crate::error::{sqlstate, QueryError, Result};
use crate::expr::{eval, AggCall, AggKind, EvalCx, Expr};
use crate::numeric::Numeric;
use crate::session::{Column, RowIter, Session, SetFunction, View};
use crate::types::Type;
use crate::value::{self, Datum, Key};

/// Kind of generate_series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SrfKind {
    Int,
    Numeric,
    Timestamp,
}

/// Where rows come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// One empty row (`SELECT 1`).
    One,
    /// `generate_series(start, stop [, step])`.
    Series {
        kind: SrfKind,
        ty: Type,
        args: Vec<Expr>,
    },
    /// Any other set-returning function (`pg_snapshot_xip`, the backend's).
    SetFn {
        func: Rc<SetFunction>,
        args: Vec<Expr>,
    },
    /// A backend view.
    View(Rc<dyn View>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::One => f.write_str("One"),
            Source::Series { kind, .. } => write!(f, "Series({kind:?})"),
            Source::SetFn { func, .. } => write!(f, "SetFn({})", func.name),
            Source::View(_) => f.write_str("View"),
        }
    }
}

/// One ORDER BY key: an output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub col: usize,
    pub desc: bool,
    pub nulls_first: bool,
}

/// A planned SELECT.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub source: Source,
    pub filter: Option<Expr>,
    pub aggregated: bool,
    pub groups: Vec<Expr>,
    pub aggs: Vec<AggCall>,
    pub having: Option<Expr>,
    /// Visible outputs, then hidden sort keys.
    pub outputs: Vec<Expr>,
    pub visible: usize,
    pub columns: Vec<Column>,
    pub distinct: bool,
    pub sort: Vec<SortKey>,
    pub limit: Option<Expr>,
    pub offset: Option<Expr>,
    pub params: Vec<Type>,
}

enum SourceIter {
    One(bool),
    Int {
        cur: i128,
        stop: i128,
        step: i128,
        ty: Type,
    },
    Num {
        cur: Numeric,
        stop: Numeric,
        step: Numeric,
    },
    Ts {
        cur: i64,
        stop: i64,
        step: Interval,
        forward: bool,
    },
    View(RowIter),
    Done,
}

impl SourceIter {
    fn next(&mut self, cx: &mut EvalCx<'_>) -> Result<Option<Vec<Datum>>> {
        match self {
            SourceIter::Done => Ok(None),
            SourceIter::One(done) => {
                if *done {
                    return Ok(None);
                }
                *done = true;
                Ok(Some(Vec::new()))
            }
            SourceIter::Int {
                cur,
                stop,
                step,
                ty,
            } => {
                if (*step > 0 && *cur > *stop) || (*step < 0 && *cur < *stop) {
                    *self = SourceIter::Done;
                    return Ok(None);
                }
                let v = *cur;
                *cur += *step;
                Ok(Some(vec![if *ty == Type::Int4 {
                    Datum::Int4(v as i32)
                } else {
                    Datum::Int8(v as i64)
                }]))
            }
            SourceIter::Num { cur, stop, step } => {
                let pos = step.cmp_num(&Numeric::zero()) == Ordering::Greater;
                let past = if pos {
                    cur.cmp_num(stop) == Ordering::Greater
                } else {
                    cur.cmp_num(stop) == Ordering::Less
                };
                if past {
                    *self = SourceIter::Done;
                    return Ok(None);
                }
                let v = cur.clone();
                *cur = cur.add(step)?;
                Ok(Some(vec![Datum::Numeric(v)]))
            }
            SourceIter::Ts {
                cur,
                stop,
                step,
                forward,
            } => {
                if (*forward && *cur > *stop) || (!*forward && *cur < *stop) {
                    *self = SourceIter::Done;
                    return Ok(None);
                }
                let v = *cur;
                match datetime::ts_plus_interval(v, step, &cx.tz) {
                    Ok(n) => *cur = n,
                    Err(_) => *self = SourceIter::Done,
                }
                Ok(Some(vec![Datum::Timestamptz(v)]))
            }
            SourceIter::View(it) => match it.next() {
                Some(r) => r.map(Some),
                None => Ok(None),
            },
        }
    }
}

fn step_zero() -> QueryError {
    QueryError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        "step size cannot equal zero",
    )
}

fn open_source(plan: &Plan, cx: &mut EvalCx<'_>) -> Result<SourceIter> {
    Ok(match &plan.source {
        Source::One => SourceIter::One(false),
        Source::View(v) => SourceIter::View(v.scan(cx.session)?),
        Source::SetFn { func, args } => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, &[], cx)?);
            }
            if func.strict && vals.iter().any(Datum::is_null) {
                return Ok(SourceIter::Done);
            }
            SourceIter::View((func.call)(cx.session, &vals)?)
        }
        Source::Series { kind, ty, args } => {
            let mut vals = Vec::new();
            for a in args {
                let d = eval(a, &[], cx)?;
                if d.is_null() {
                    return Ok(SourceIter::Done);
                }
                vals.push(d);
            }
            match kind {
                SrfKind::Int => {
                    let g = |d: &Datum| match d {
                        Datum::Int4(v) => *v as i128,
                        Datum::Int8(v) => *v as i128,
                        _ => 0,
                    };
                    let step = vals.get(2).map_or(1, g);
                    if step == 0 {
                        return Err(step_zero());
                    }
                    SourceIter::Int {
                        cur: g(&vals[0]),
                        stop: g(&vals[1]),
                        step,
                        ty: *ty,
                    }
                }
                SrfKind::Numeric => {
                    let g = |d: &Datum| match d {
                        Datum::Numeric(n) => n.clone(),
                        _ => Numeric::NaN,
                    };
                    let step = vals.get(2).map_or(Numeric::from_i64(1), g);
                    for (k, n) in [g(&vals[0]), g(&vals[1]), step.clone()].iter().enumerate() {
                        let what = ["start", "stop", "step size"][k];
                        if n.is_nan() {
                            return Err(QueryError::new(
                                sqlstate::INVALID_PARAMETER_VALUE,
                                format!("{what} value cannot be NaN"),
                            ));
                        }
                        if !matches!(n, Numeric::Finite { .. }) {
                            return Err(QueryError::new(
                                sqlstate::INVALID_PARAMETER_VALUE,
                                format!("{what} value cannot be infinity"),
                            ));
                        }
                    }
                    if step.cmp_num(&Numeric::zero()) == Ordering::Equal {
                        return Err(step_zero());
                    }
                    SourceIter::Num {
                        cur: g(&vals[0]),
                        stop: g(&vals[1]),
                        step,
                    }
                }
                SrfKind::Timestamp => {
                    let (a, b) = match (&vals[0], &vals[1]) {
                        (Datum::Timestamptz(a), Datum::Timestamptz(b)) => (*a, *b),
                        _ => return Ok(SourceIter::Done),
                    };
                    let step = match &vals[2] {
                        Datum::Interval(i) => *i,
                        _ => return Ok(SourceIter::Done),
                    };
                    let k = step.cmp_key();
                    if k == 0 {
                        return Err(step_zero());
                    }
                    SourceIter::Ts {
                        cur: a,
                        stop: b,
                        step,
                        forward: k > 0,
                    }
                }
            }
        }
    })
}

/// An aggregate's running state.
#[derive(Debug, Clone)]
enum Acc {
    Count(i64),
    SumInt(i128, bool),
    SumNum(Option<Numeric>),
    SumFloat(f64, bool),
    SumIv(Option<Interval>),
    AvgInt(i128, i64),
    AvgNum(Option<Numeric>, i64),
    AvgFloat(f64, i64),
    AvgIv(Interval, i64),
    Best(Option<Datum>),
    Str(Option<String>),
    Bool(Option<bool>),
    /// Values kept for DISTINCT or ORDER BY inside the call: (sort keys, args).
    Kept(Vec<(Vec<Datum>, Vec<Datum>)>),
}

fn new_acc(a: &AggCall) -> Acc {
    if a.distinct || !a.order.is_empty() {
        return Acc::Kept(Vec::new());
    }
    base_acc(a)
}

fn base_acc(a: &AggCall) -> Acc {
    match (a.kind, a.arg_type) {
        (AggKind::CountStar | AggKind::Count, _) => Acc::Count(0),
        (AggKind::Sum, Type::Int2 | Type::Int4 | Type::Int8) => Acc::SumInt(0, false),
        (AggKind::Sum, Type::Numeric) => Acc::SumNum(None),
        (AggKind::Sum, Type::Float8) => Acc::SumFloat(0.0, false),
        (AggKind::Sum, _) => Acc::SumIv(None),
        (AggKind::Avg, Type::Int2 | Type::Int4 | Type::Int8) => Acc::AvgInt(0, 0),
        (AggKind::Avg, Type::Numeric) => Acc::AvgNum(None, 0),
        (AggKind::Avg, Type::Float8) => Acc::AvgFloat(0.0, 0),
        (AggKind::Avg, _) => Acc::AvgIv(Interval::default(), 0),
        (AggKind::Min | AggKind::Max, _) => Acc::Best(None),
        (AggKind::StringAgg, _) => Acc::Str(None),
        (AggKind::BoolAnd | AggKind::BoolOr, _) => Acc::Bool(None),
    }
}

fn overflow() -> QueryError {
    QueryError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        "value out of range: overflow",
    )
}

fn accumulate(acc: &mut Acc, a: &AggCall, args: &[Datum]) -> Result<()> {
    if a.kind == AggKind::CountStar {
        if let Acc::Count(n) = acc {
            *n += 1;
        }
        return Ok(());
    }
    // Strict transition: NULL input is skipped (string_agg skips a NULL value only).
    if args.first().is_none_or(Datum::is_null) {
        return Ok(());
    }
    let v = &args[0];
    match acc {
        Acc::Count(n) => *n += 1,
        Acc::SumInt(s, any) => {
            *s += match v {
                Datum::Int2(x) => *x as i128,
                Datum::Int4(x) => *x as i128,
                Datum::Int8(x) => *x as i128,
                _ => 0,
            };
            *any = true;
        }
        Acc::SumNum(s) => {
            if let Datum::Numeric(n) = v {
                *s = Some(match s.take() {
                    None => n.clone(),
                    Some(t) => t.add(n)?,
                });
            }
        }
        Acc::SumFloat(s, any) => {
            if let Datum::Float8(f) = v {
                let r = *s + f;
                if r.is_infinite() && !s.is_infinite() && !f.is_infinite() {
                    return Err(overflow());
                }
                *s = r;
                *any = true;
            }
        }
        Acc::SumIv(s) => {
            if let Datum::Interval(i) = v {
                *s = Some(match s.take() {
                    None => *i,
                    Some(t) => t.add(i)?,
                });
            }
        }
        Acc::AvgInt(s, c) => {
            *s += match v {
                Datum::Int2(x) => *x as i128,
                Datum::Int4(x) => *x as i128,
                Datum::Int8(x) => *x as i128,
                _ => 0,
            };
            *c += 1;
        }
        Acc::AvgNum(s, c) => {
            if let Datum::Numeric(n) = v {
                *s = Some(match s.take() {
                    None => n.clone(),
                    Some(t) => t.add(n)?,
                });
                *c += 1;
            }
        }
        Acc::AvgFloat(s, c) => {
            if let Datum::Float8(f) = v {
                let r = *s + f;
                if r.is_infinite() && !s.is_infinite() && !f.is_infinite() {
                    return Err(overflow());
                }
                *s = r;
                *c += 1;
            }
        }
        Acc::AvgIv(s, c) => {
            if let Datum::Interval(i) = v {
                *s = s.add(i)?;
                *c += 1;
            }
        }
        Acc::Best(b) => {
            let better = match b {
                None => true,
                Some(cur) => {
                    let o = value::compare(v, cur);
                    if a.kind == AggKind::Max {
                        o == Ordering::Greater
                    } else {
                        o == Ordering::Less
                    }
                }
            };
            if better {
                *b = Some(v.clone());
            }
        }
        Acc::Str(s) => {
            if let Datum::Text(t) = v {
                match s {
                    None => *s = Some(t.clone()),
                    Some(cur) => {
                        if let Some(Datum::Text(d)) = args.get(1) {
                            cur.push_str(d);
                        }
                        cur.push_str(t);
                    }
                }
                if s.as_ref().is_some_and(|x| x.len() > (1 << 30)) {
                    return Err(
                        QueryError::new(sqlstate::PROGRAM_LIMIT_EXCEEDED, "out of memory")
                            .with_detail("String too long."),
                    );
                }
            }
        }
        Acc::Bool(b) => {
            if let Datum::Bool(x) = v {
                *b = Some(match (a.kind, *b) {
                    (_, None) => *x,
                    (AggKind::BoolAnd, Some(c)) => c && *x,
                    (_, Some(c)) => c || *x,
                });
            }
        }
        Acc::Kept(_) => {}
    }
    Ok(())
}

fn finish(acc: Acc, a: &AggCall) -> Result<Datum> {
    Ok(match acc {
        Acc::Count(n) => Datum::Int8(n),
        Acc::SumInt(s, any) => {
            if !any {
                Datum::Null
            } else if a.arg_type == Type::Int8 {
                Datum::Numeric(Numeric::from_i128(s))
            } else {
                Datum::Int8(i64::try_from(s).map_err(|_| QueryError::out_of_range("bigint"))?)
            }
        }
        Acc::SumNum(s) => s.map_or(Datum::Null, Datum::Numeric),
        Acc::SumFloat(s, any) => {
            if any {
                Datum::Float8(s)
            } else {
                Datum::Null
            }
        }
        Acc::SumIv(s) => s.map_or(Datum::Null, Datum::Interval),
        Acc::AvgInt(s, c) => {
            if c == 0 {
                Datum::Null
            } else {
                Datum::Numeric(Numeric::from_i128(s).div(&Numeric::from_i64(c))?)
            }
        }
        Acc::AvgNum(s, c) => match s {
            None => Datum::Null,
            Some(s) => Datum::Numeric(s.div(&Numeric::from_i64(c))?),
        },
        Acc::AvgFloat(s, c) => {
            if c == 0 {
                Datum::Null
            } else {
                Datum::Float8(s / c as f64)
            }
        }
        Acc::AvgIv(s, c) => {
            if c == 0 {
                Datum::Null
            } else {
                Datum::Interval(s.div_f64(c as f64)?)
            }
        }
        Acc::Best(b) => b.unwrap_or(Datum::Null),
        Acc::Str(s) => s.map_or(Datum::Null, Datum::Text),
        Acc::Bool(b) => b.map_or(Datum::Null, Datum::Bool),
        Acc::Kept(mut items) => {
            if !a.order.is_empty() {
                let keys: Vec<(bool, bool)> = a.order.iter().map(|o| (o.1, o.2)).collect();
                items.sort_by(|x, y| cmp_rows(&x.0, &y.0, &keys));
            }
            let mut base = base_acc(a);
            let mut seen: HashSet<Vec<Key>> = HashSet::new();
            for (_, args) in items {
                if a.distinct {
                    if args.first().is_none_or(Datum::is_null) {
                        continue;
                    }
                    let k: Vec<Key> = args.iter().take(1).map(Key::of).collect();
                    if !seen.insert(k) {
                        continue;
                    }
                }
                accumulate(&mut base, a, &args)?;
            }
            finish(
                base,
                &AggCall {
                    distinct: false,
                    order: vec![],
                    ..a.clone()
                },
            )?
        }
    })
}

fn cmp_datum(a: &Datum, b: &Datum, desc: bool, nulls_first: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => {
            let o = value::compare(a, b);
            if desc {
                o.reverse()
            } else {
                o
            }
        }
    }
}

fn cmp_rows(a: &[Datum], b: &[Datum], keys: &[(bool, bool)]) -> Ordering {
    for (i, (desc, nf)) in keys.iter().enumerate() {
        let o = cmp_datum(&a[i], &b[i], *desc, *nf);
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Rows of an executing SELECT, pulled with [`Rows::next_row`].
pub struct Rows {
    plan: Rc<Plan>,
    params: Vec<Datum>,
    tz: TimeZone,
    now: i64,
    src: Option<SourceIter>,
    buffered: Option<std::vec::IntoIter<Vec<Datum>>>,
    seen: HashSet<Vec<Key>>,
    skip: u64,
    left: Option<u64>,
    started: bool,
    pulled: u64,
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("columns", &self.plan.columns)
            .finish_non_exhaustive()
    }
}

impl Rows {
    pub(crate) fn new(plan: Rc<Plan>, params: Vec<Datum>, session: &dyn Session) -> Rows {
        Rows {
            plan,
            params,
            tz: session.time_zone(),
            now: session.transaction_timestamp(),
            src: None,
            buffered: None,
            seen: HashSet::new(),
            skip: 0,
            left: None,
            started: false,
            pulled: 0,
        }
    }

    /// The result columns.
    pub fn columns(&self) -> &[Column] {
        &self.plan.columns
    }

    /// The session time zone rows are formatted in (as it was when the statement started,
    /// or after a `set_config` in it).
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The next row, `Ok(None)` at the end. After an error the statement is over.
    pub fn next_row(&mut self, session: &mut dyn Session) -> Result<Option<Vec<Datum>>> {
        let plan = self.plan.clone();
        let params = std::mem::take(&mut self.params);
        let tz = self.tz.clone();
        let mut cx = EvalCx {
            session,
            params: &params,
            tz,
            now: self.now,
        };
        let r = self.next_inner(&plan, &mut cx);
        self.tz = cx.tz;
        self.params = params;
        if r.is_err() {
            self.src = Some(SourceIter::Done);
            self.buffered = Some(Vec::new().into_iter());
            self.left = Some(0);
        }
        r
    }

    fn next_inner(&mut self, plan: &Plan, cx: &mut EvalCx<'_>) -> Result<Option<Vec<Datum>>> {
        if !self.started {
            self.started = true;
            let count = |e: &Option<Expr>,
                         cx: &mut EvalCx<'_>,
                         what: &str,
                         code: &'static str|
             -> Result<Option<u64>> {
                match e {
                    None => Ok(None),
                    Some(e) => match eval(e, &[], cx)? {
                        Datum::Int8(n) if n < 0 => Err(QueryError::new(
                            code,
                            format!("{what} must not be negative"),
                        )),
                        Datum::Int8(n) => Ok(Some(n as u64)),
                        _ => Ok(None),
                    },
                }
            };
            self.left = count(
                &plan.limit,
                cx,
                "LIMIT",
                sqlstate::INVALID_ROW_COUNT_IN_LIMIT_CLAUSE,
            )?;
            self.skip = count(
                &plan.offset,
                cx,
                "OFFSET",
                sqlstate::INVALID_ROW_COUNT_IN_RESULT_OFFSET_CLAUSE,
            )?
            .unwrap_or(0);
            if self.left == Some(0) {
                return Ok(None);
            }
            self.src = Some(open_source(plan, cx)?);
            if plan.aggregated || !plan.sort.is_empty() {
                let rows = self.materialize(plan, cx)?;
                self.buffered = Some(rows.into_iter());
            }
        }
        loop {
            if self.left == Some(0) {
                return Ok(None);
            }
            let row = match self.buffered.as_mut() {
                Some(b) => match b.next() {
                    Some(r) => r,
                    None => return Ok(None),
                },
                None => match self.next_projected(plan, cx)? {
                    Some(r) => r,
                    None => return Ok(None),
                },
            };
            if self.skip > 0 {
                self.skip -= 1;
                continue;
            }
            if let Some(l) = self.left.as_mut() {
                *l -= 1;
            }
            let mut row = row;
            row.truncate(plan.visible);
            return Ok(Some(row));
        }
    }

    fn next_input(&mut self, plan: &Plan, cx: &mut EvalCx<'_>) -> Result<Option<Vec<Datum>>> {
        loop {
            self.pulled += 1;
            if self.pulled % 1024 == 0 {
                cx.session.check_for_interrupts()?;
            }
            let src = match self.src.as_mut() {
                Some(s) => s,
                None => return Ok(None),
            };
            let row = match src.next(cx)? {
                Some(r) => r,
                None => return Ok(None),
            };
            if let Some(f) = &plan.filter {
                if !matches!(eval(f, &row, cx)?, Datum::Bool(true)) {
                    continue;
                }
            }
            return Ok(Some(row));
        }
    }

    fn project(
        &mut self,
        plan: &Plan,
        row: &[Datum],
        cx: &mut EvalCx<'_>,
    ) -> Result<Option<Vec<Datum>>> {
        let mut out = Vec::with_capacity(plan.outputs.len());
        for o in &plan.outputs {
            out.push(eval(o, row, cx)?);
        }
        if plan.distinct {
            let k: Vec<Key> = out[..plan.visible].iter().map(Key::of).collect();
            if !self.seen.insert(k) {
                return Ok(None);
            }
        }
        Ok(Some(out))
    }

    fn next_projected(&mut self, plan: &Plan, cx: &mut EvalCx<'_>) -> Result<Option<Vec<Datum>>> {
        while let Some(row) = self.next_input(plan, cx)? {
            if let Some(out) = self.project(plan, &row, cx)? {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }

    fn materialize(&mut self, plan: &Plan, cx: &mut EvalCx<'_>) -> Result<Vec<Vec<Datum>>> {
        let mut rows: Vec<Vec<Datum>> = Vec::new();
        if plan.aggregated {
            let mut index: HashMap<Vec<Key>, usize> = HashMap::new();
            let mut groups: Vec<(Vec<Datum>, Vec<Acc>)> = Vec::new();
            while let Some(row) = self.next_input(plan, cx)? {
                let mut gv = Vec::with_capacity(plan.groups.len());
                for g in &plan.groups {
                    gv.push(eval(g, &row, cx)?);
                }
                let key: Vec<Key> = gv.iter().map(Key::of).collect();
                let gi = match index.get(&key) {
                    Some(&i) => i,
                    None => {
                        groups.push((gv, plan.aggs.iter().map(new_acc).collect()));
                        index.insert(key, groups.len() - 1);
                        groups.len() - 1
                    }
                };
                for (k, a) in plan.aggs.iter().enumerate() {
                    if let Some(f) = &a.filter {
                        if !matches!(eval(f, &row, cx)?, Datum::Bool(true)) {
                            continue;
                        }
                    }
                    let mut args = Vec::with_capacity(a.args.len());
                    for e in &a.args {
                        args.push(eval(e, &row, cx)?);
                    }
                    let acc = &mut groups[gi].1[k];
                    if let Acc::Kept(items) = acc {
                        let mut keys = Vec::new();
                        for o in &a.order {
                            keys.push(eval(&o.0, &row, cx)?);
                        }
                        items.push((keys, args));
                    } else {
                        accumulate(acc, a, &args)?;
                    }
                }
            }
            // No GROUP BY: one group even over no rows.
            if groups.is_empty() && plan.groups.is_empty() {
                groups.push((Vec::new(), plan.aggs.iter().map(new_acc).collect()));
            }
            for (gv, accs) in groups {
                let mut row = gv;
                for (acc, a) in accs.into_iter().zip(plan.aggs.iter()) {
                    row.push(finish(acc, a)?);
                }
                if let Some(h) = &plan.having {
                    if !matches!(eval(h, &row, cx)?, Datum::Bool(true)) {
                        continue;
                    }
                }
                if let Some(out) = self.project(plan, &row, cx)? {
                    rows.push(out);
                }
            }
        } else {
            while let Some(out) = self.next_projected(plan, cx)? {
                rows.push(out);
            }
        }
        if !plan.sort.is_empty() {
            let keys = &plan.sort;
            rows.sort_by(|a, b| {
                for k in keys {
                    let o = cmp_datum(&a[k.col], &b[k.col], k.desc, k.nulls_first);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
        }
        Ok(rows)
    }
}
