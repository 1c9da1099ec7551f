//! From sqlparser's AST to a [`Plan`]: name resolution, type resolution and coercion
//! (PostgreSQL's parser/analyze.c, parse_expr.c, parse_func.c, parse_oper.c, parse_coerce.c,
//! parse_target.c's column names, parse_agg.c's grouping checks).

use std::rc::Rc;

use sqlparser::ast::{self, Spanned};

use crate::datetime::TimeZone;
use crate::error::{sqlstate, QueryError, Result};
use crate::exec::{Plan, SortKey, Source, SrfKind};
use crate::expr::{AggCall, AggKind, BinOp, CmpOp, Expr, FuncImpl, SrcPos, MAX_DEPTH};
use crate::func::{self, BUILTINS};
use crate::session::{Catalog, Column, SetFunction, View};
use crate::types::{known_unsupported_type, Category, Type};
use crate::value::{self, CastCtx, Datum};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan};

/// A typed expression being planned.
#[derive(Debug, Clone)]
struct Te {
    e: Expr,
    ty: Type,
    pos: Option<u32>,
}

impl Te {
    fn new(e: Expr, ty: Type, pos: Option<u32>) -> Te {
        Te { e, ty, pos }
    }
}

/// Where an expression stands, for aggregate placement errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Where,
    GroupBy,
    Target,
    Having,
    OrderBy,
    Limit,
    Offset,
    FuncArg,
    AggArg,
}

impl Clause {
    fn name(self) -> &'static str {
        match self {
            Clause::Where => "WHERE",
            Clause::GroupBy => "GROUP BY",
            Clause::Limit => "LIMIT",
            Clause::Offset => "OFFSET",
            Clause::FuncArg => "functions in FROM",
            _ => "this context",
        }
    }
}

/// The planner of one statement.
pub(crate) struct Planner<'a> {
    catalog: &'a Catalog,
    /// Character offset of each line start, for 1-based positions.
    line_starts: Vec<u32>,
    params: Vec<Option<Type>>,
    columns: Vec<Column>,
    rel_name: Option<String>,
    clause: Clause,
    depth: usize,
    /// The statement's tokens without whitespace, to find operator positions.
    tokens: Vec<TokenWithSpan>,
}

fn ident_name(id: &ast::Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

fn object_name_last(n: &ast::ObjectName) -> Option<(String, Option<String>)> {
    let parts: Vec<String> =
        n.0.iter()
            .filter_map(|p| match p {
                ast::ObjectNamePart::Identifier(i) => Some(ident_name(i)),
                _ => None,
            })
            .collect();
    match parts.len() {
        1 => Some((parts[0].clone(), None)),
        2 => Some((parts[1].clone(), Some(parts[0].clone()))),
        _ => None,
    }
}

fn not_unique_hint() -> &'static str {
    "Could not choose a best candidate function. You might need to add explicit type casts."
}

fn no_function_hint() -> &'static str {
    "No function matches the given name and argument types. You might need to add explicit type casts."
}

/// ORDER BY a type without a btree ordering (xid).
fn no_ordering(ty: Type) -> QueryError {
    QueryError::new(
        sqlstate::UNDEFINED_FUNCTION,
        format!(
            "could not identify an ordering operator for type {}",
            ty.sql_name()
        ),
    )
    .with_hint("Use an explicit ordering operator or modify the query.")
}

fn no_operator_hint() -> &'static str {
    "No operator matches the given name and argument types. You might need to add explicit type casts."
}

fn type_list(tys: &[Type]) -> String {
    tys.iter()
        .map(|t| t.sql_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps a SQL type name (as sqlparser prints it) to a type and an optional numeric typmod.
pub(crate) fn resolve_type_name(dt: &ast::DataType) -> Result<(Type, Option<(u32, u32)>)> {
    let text = dt.to_string().to_lowercase();
    let (base, mods) = match text.find('(') {
        Some(i) => (
            text[..i].trim().to_owned(),
            Some(text[i + 1..].trim_end_matches(')').to_owned()),
        ),
        None => (text.trim().to_owned(), None),
    };
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let base = base.trim_start_matches("pg_catalog.").to_owned();
    if let Some(t) = Type::from_name(&base) {
        if t == Type::Numeric {
            if let Some(m) = mods {
                let nums: Vec<&str> = m.split(',').map(str::trim).collect();
                let p: u32 = nums[0].parse().map_err(|_| bad_typmod())?;
                let s: u32 = match nums.get(1) {
                    Some(s) => s.parse().map_err(|_| bad_typmod())?,
                    None => 0,
                };
                if !(1..=1000).contains(&p) {
                    return Err(QueryError::new(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        format!("NUMERIC precision {p} must be between 1 and 1000"),
                    ));
                }
                if s > p {
                    return Err(QueryError::new(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        format!("NUMERIC scale {s} must be between 0 and precision {p}"),
                    ));
                }
                return Ok((t, Some((p, s))));
            }
        }
        if base == "float" {
            if let Some(m) = &mods {
                if m.trim().parse::<u32>().is_ok_and(|p| p <= 24) {
                    return Err(QueryError::not_supported("type real is not supported"));
                }
            }
        }
        return Ok((t, None));
    }
    if known_unsupported_type(&base)
        || base.starts_with("timestamp")
        || base.starts_with("time ")
        || base.starts_with("character")
    {
        return Err(QueryError::not_supported(format!(
            "type {base} is not supported"
        )));
    }
    Err(QueryError::new(
        sqlstate::UNDEFINED_OBJECT,
        format!("type \"{}\" does not exist", base),
    ))
}

fn bad_typmod() -> QueryError {
    QueryError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        "invalid NUMERIC type modifier",
    )
}

/// PostgreSQL's FigureColname: the default name of a result column. Returns the name and
/// its strength (2 = a real name, 1 = a type name or "case", 0 = none).
pub(crate) fn figure_colname(e: &ast::Expr) -> (String, u8) {
    use ast::Expr as E;
    match e {
        E::Identifier(i) => (ident_name(i), 2),
        E::CompoundIdentifier(v) => (v.last().map(ident_name).unwrap_or_default(), 2),
        E::Nested(x) => figure_colname(x),
        E::Function(f) => (
            object_name_last(&f.name)
                .map(|p| p.0)
                .unwrap_or_else(|| "?column?".into()),
            2,
        ),
        E::Cast {
            expr, data_type, ..
        } => {
            let (n, s) = figure_colname(expr);
            if s > 1 {
                return (n, s);
            }
            match resolve_type_name(data_type) {
                Ok((t, _)) => (t.typname().to_owned(), 1),
                Err(_) => {
                    let t = data_type.to_string().to_lowercase();
                    (t.split('(').next().unwrap_or("").trim().to_owned(), 1)
                }
            }
        }
        E::TypedString(ts) => match resolve_type_name(&ts.data_type) {
            Ok((t, _)) => (t.typname().to_owned(), 1),
            Err(_) => ("?column?".into(), 0),
        },
        E::Interval(_) => ("interval".into(), 1),
        E::Case { else_result, .. } => {
            if let Some(x) = else_result {
                let (n, s) = figure_colname(x);
                if s > 1 {
                    return (n, s);
                }
            }
            ("case".into(), 1)
        }
        E::Extract { .. } => ("extract".into(), 2),
        E::Substring {
            shorthand: true, ..
        } => ("substr".into(), 2),
        E::Substring { .. } => ("substring".into(), 2),
        E::Position { .. } => ("position".into(), 2),
        E::Trim { trim_where, .. } => (
            match trim_where {
                Some(ast::TrimWhereField::Leading) => "ltrim",
                Some(ast::TrimWhereField::Trailing) => "rtrim",
                _ => "btrim",
            }
            .into(),
            2,
        ),
        E::Ceil { .. } => ("ceil".into(), 2),
        E::Floor { .. } => ("floor".into(), 2),
        _ => ("?column?".into(), 0),
    }
}

/// SRF signatures: (args, result, kind).
const SRF: &[(&[Type], Type, SrfKind)] = &[
    (&[Type::Int4, Type::Int4], Type::Int4, SrfKind::Int),
    (
        &[Type::Int4, Type::Int4, Type::Int4],
        Type::Int4,
        SrfKind::Int,
    ),
    (&[Type::Int8, Type::Int8], Type::Int8, SrfKind::Int),
    (
        &[Type::Int8, Type::Int8, Type::Int8],
        Type::Int8,
        SrfKind::Int,
    ),
    (
        &[Type::Numeric, Type::Numeric],
        Type::Numeric,
        SrfKind::Numeric,
    ),
    (
        &[Type::Numeric, Type::Numeric, Type::Numeric],
        Type::Numeric,
        SrfKind::Numeric,
    ),
    (
        &[Type::Timestamptz, Type::Timestamptz, Type::Interval],
        Type::Timestamptz,
        SrfKind::Timestamp,
    ),
];

/// The function call `e`, with its name, if it is one.
fn function_call(e: &ast::Expr) -> Option<(&ast::Function, String)> {
    match e {
        ast::Expr::Function(f) => object_name_last(&f.name).map(|(n, _)| (f, n)),
        _ => None,
    }
}

/// One way to produce a set-returning function's rows.
enum SrfImpl {
    /// generate_series, which streams its arithmetic in the executor.
    Series(SrfKind, Type),
    /// A function returning a row iterator (built in or the backend's).
    Fn(Rc<SetFunction>),
}

impl SrfImpl {
    fn args(&self, idx: usize) -> &[Type] {
        match self {
            SrfImpl::Series(..) => SRF[idx].0,
            SrfImpl::Fn(f) => &f.args,
        }
    }
}

impl<'a> Planner<'a> {
    pub(crate) fn new(
        catalog: &'a Catalog,
        sql: &str,
        tokens: &[TokenWithSpan],
        param_types: &[Option<Type>],
    ) -> Planner<'a> {
        let mut line_starts = vec![0u32];
        let mut n = 0u32;
        for c in sql.chars() {
            n += 1;
            if c == '\n' {
                line_starts.push(n);
            }
        }
        Planner {
            catalog,
            line_starts,
            params: param_types.to_vec(),
            columns: Vec::new(),
            rel_name: None,
            clause: Clause::Target,
            depth: 0,
            tokens: tokens
                .iter()
                .filter(|t| !matches!(t.token, Token::Whitespace(_)))
                .cloned()
                .collect(),
        }
    }

    /// 1-based character position of a location.
    pub(crate) fn pos_of(&self, loc: sqlparser::tokenizer::Location) -> Option<u32> {
        if loc.line == 0 {
            return None;
        }
        let start = *self.line_starts.get(loc.line as usize - 1)?;
        Some(start + loc.column as u32)
    }

    fn pos(&self, e: &impl Spanned) -> Option<u32> {
        self.pos_of(e.span().start)
    }

    /// The position of the token just before `e` (skipping opening parentheses): where an
    /// operator written before an operand stands.
    fn pos_before(&self, e: &impl Spanned) -> Option<u32> {
        let start = e.span().start;
        let i = self.tokens.iter().position(|t| t.span.start == start)?;
        let mut k = i;
        while k > 0 {
            k -= 1;
            if !matches!(self.tokens[k].token, Token::LParen) {
                return self.pos_of(self.tokens[k].span.start);
            }
        }
        None
    }

    /// The position of the token after the one starting at `loc`.
    fn pos_token_after(&self, loc: Location) -> Option<u32> {
        let i = self.tokens.iter().position(|t| t.span.start > loc)?;
        self.pos_of(self.tokens[i].span.start)
    }

    // ---- statements ----

    pub(crate) fn plan_query(&mut self, q: &ast::Query) -> Result<Plan> {
        if q.with.is_some() {
            return Err(QueryError::not_supported(
                "WITH queries (CTEs) are not supported",
            ));
        }
        if !q.locks.is_empty() {
            return Err(QueryError::not_supported(
                "SELECT ... FOR UPDATE/SHARE is not supported",
            ));
        }
        let select = match q.body.as_ref() {
            ast::SetExpr::Select(s) => s,
            ast::SetExpr::Query(_) => {
                return Err(QueryError::not_supported("subqueries are not supported"))
            }
            ast::SetExpr::SetOperation { op, .. } => {
                return Err(QueryError::not_supported(format!(
                    "{} is not supported",
                    op.to_string().to_uppercase()
                )))
            }
            ast::SetExpr::Values(_) => {
                return Err(QueryError::not_supported("VALUES lists are not supported"))
            }
            _ => {
                return Err(QueryError::not_supported(
                    "this kind of statement is not supported",
                ))
            }
        };
        self.plan_select(select, q)
    }

    fn plan_select(&mut self, s: &ast::Select, q: &ast::Query) -> Result<Plan> {
        if s.into.is_some() {
            return Err(QueryError::not_supported("SELECT INTO is not supported"));
        }
        if !s.named_window.is_empty() || s.qualify.is_some() {
            return Err(QueryError::not_supported(
                "window functions are not supported",
            ));
        }
        let distinct = match &s.distinct {
            None | Some(ast::Distinct::All) => false,
            Some(ast::Distinct::Distinct) => true,
            Some(ast::Distinct::On(_)) => {
                return Err(QueryError::not_supported(
                    "SELECT DISTINCT ON is not supported",
                ))
            }
        };
        // FROM
        let mut source = Source::One;
        let mut srf_target: Option<(usize, String)> = None;
        match s.from.len() {
            0 => {
                // A FROM-less SELECT whose target is a set-returning function (such as
                // generate_series(...)) runs it as the source.
                let srfs: Vec<usize> = s
                    .projection
                    .iter()
                    .enumerate()
                    .filter(|(_, it)| match it {
                        ast::SelectItem::UnnamedExpr(e)
                        | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                            function_call(e).is_some_and(|(_, n)| self.is_srf(&n))
                        }
                        _ => false,
                    })
                    .map(|(i, _)| i)
                    .collect();
                if srfs.len() > 1 {
                    return Err(QueryError::not_supported(
                        "more than one set-returning function in the select list is not supported",
                    ));
                }
                if let Some(&i) = srfs.first() {
                    let e = match &s.projection[i] {
                        ast::SelectItem::UnnamedExpr(e)
                        | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
                        _ => unreachable_select(),
                    };
                    let (f, fname) = function_call(e).ok_or_else(internal)?;
                    let args = self.function_args(f)?;
                    let pos = self.pos(&f.name);
                    let (src, cols) = self.plan_srf(&fname, &args, pos)?;
                    if cols.len() != 1 {
                        return Err(QueryError::not_supported(format!(
                            "{fname} returns a record: it is only supported in FROM"
                        ))
                        .at(pos));
                    }
                    source = src;
                    self.columns = vec![Column::new(fname.clone(), cols[0].ty)];
                    srf_target = Some((i, fname));
                }
            }
            1 => {
                let twj = &s.from[0];
                if !twj.joins.is_empty() {
                    return Err(QueryError::not_supported("JOIN is not supported"));
                }
                let (src, cols, name) = self.plan_from(&twj.relation)?;
                source = src;
                self.columns = cols;
                self.rel_name = Some(name);
            }
            _ => {
                return Err(QueryError::not_supported(
                    "FROM with more than one item (an implicit join) is not supported",
                ))
            }
        }
        // WHERE
        let filter = match &s.selection {
            Some(w) => {
                self.clause = Clause::Where;
                let te = self.expr(w)?;
                Some(self.bool_operand(te, "WHERE")?)
            }
            None => None,
        };
        // Targets
        self.clause = Clause::Target;
        let mut targets: Vec<Te> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (i, item) in s.projection.iter().enumerate() {
            if let Some((_, fname)) = srf_target.as_ref().filter(|t| t.0 == i) {
                let name = match item {
                    ast::SelectItem::ExprWithAlias { alias, .. } => ident_name(alias),
                    _ => fname.clone(),
                };
                targets.push(Te::new(
                    Expr::Col(0, SrcPos(None)),
                    self.columns[0].ty,
                    None,
                ));
                names.push(name);
                continue;
            }
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    targets.push(self.expr(e)?);
                    names.push(figure_colname(e).0);
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    targets.push(self.expr(expr)?);
                    names.push(ident_name(alias));
                }
                ast::SelectItem::Wildcard(_) => {
                    if self.rel_name.is_none() {
                        return Err(QueryError::syntax(
                            "SELECT * with no tables specified is not valid",
                        ));
                    }
                    for (k, c) in self.columns.iter().enumerate() {
                        targets.push(Te::new(Expr::Col(k, SrcPos(None)), c.ty, None));
                        names.push(c.name.clone());
                    }
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let q = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                            object_name_last(n).map(|p| p.0)
                        }
                        _ => None,
                    };
                    if q.is_none() || q != self.rel_name {
                        return Err(QueryError::new(
                            sqlstate::UNDEFINED_TABLE,
                            format!(
                                "missing FROM-clause entry for table \"{}\"",
                                q.unwrap_or_default()
                            ),
                        ));
                    }
                    for (k, c) in self.columns.iter().enumerate() {
                        targets.push(Te::new(Expr::Col(k, SrcPos(None)), c.ty, None));
                        names.push(c.name.clone());
                    }
                }
                ast::SelectItem::ExprWithAliases { .. } => {
                    return Err(QueryError::not_supported(
                        "multiple aliases are not supported",
                    ))
                }
            }
        }
        // Unknown-typed outputs become text.
        for t in targets.iter_mut() {
            if t.ty == Type::Unknown {
                let te =
                    std::mem::replace(t, Te::new(Expr::Const(Datum::Null), Type::Unknown, None));
                *t = Te::new(self.coerce(te, Type::Text)?, Type::Text, None);
            }
        }
        // GROUP BY
        self.clause = Clause::GroupBy;
        let mut groups: Vec<Expr> = Vec::new();
        match &s.group_by {
            ast::GroupByExpr::All(_) => {
                return Err(QueryError::not_supported("GROUP BY ALL is not supported"))
            }
            ast::GroupByExpr::Expressions(exprs, mods) => {
                if !mods.is_empty() {
                    return Err(QueryError::not_supported(
                        "GROUP BY modifiers are not supported",
                    ));
                }
                for g in exprs {
                    if let Some(n) = self.position_literal(g) {
                        let idx = usize::try_from(n)
                            .ok()
                            .filter(|&k| k >= 1 && k <= targets.len());
                        match idx {
                            Some(k) => {
                                if targets[k - 1].e.contains_agg() {
                                    return Err(QueryError::new(
                                        sqlstate::GROUPING_ERROR,
                                        "aggregate functions are not allowed in GROUP BY",
                                    )
                                    .at(self.pos(g)));
                                }
                                groups.push(targets[k - 1].e.clone())
                            }
                            None => {
                                return Err(QueryError::new(
                                    sqlstate::INVALID_COLUMN_REFERENCE,
                                    format!("GROUP BY position {n} is not in select list"),
                                )
                                .at(self.pos(g)))
                            }
                        }
                        continue;
                    }
                    if let ast::Expr::Identifier(id) = g {
                        let name = ident_name(id);
                        if !self.columns.iter().any(|c| c.name == name) {
                            if let Some(k) = names.iter().position(|n| *n == name) {
                                groups.push(targets[k].e.clone());
                                continue;
                            }
                        }
                    }
                    let te = self.expr(g)?;
                    groups.push(te.e);
                }
            }
        }
        // HAVING and ORDER BY are planned over the input; aggregation rewrites them below.
        let having = match &s.having {
            Some(h) => {
                self.clause = Clause::Having;
                let te = self.expr(h)?;
                Some(self.bool_operand(te, "HAVING")?)
            }
            None => None,
        };
        self.clause = Clause::OrderBy;
        let mut sort: Vec<SortKey> = Vec::new();
        let mut hidden: Vec<Expr> = Vec::new();
        if let Some(ob) = &q.order_by {
            let items = match &ob.kind {
                ast::OrderByKind::Expressions(v) => v,
                ast::OrderByKind::All(_) => {
                    return Err(QueryError::not_supported("ORDER BY ALL is not supported"))
                }
            };
            for it in items {
                let desc = match &it.options.sort {
                    Some(ast::OrderBySort::Desc) => true,
                    Some(ast::OrderBySort::Using(_)) => {
                        return Err(QueryError::not_supported("ORDER BY USING is not supported"))
                    }
                    _ => false,
                };
                let nulls_first = it.options.nulls_first.unwrap_or(desc);
                let col = if let Some(n) = self.position_literal(&it.expr) {
                    match usize::try_from(n)
                        .ok()
                        .filter(|&k| k >= 1 && k <= targets.len())
                    {
                        Some(k) => k - 1,
                        None => {
                            return Err(QueryError::new(
                                sqlstate::INVALID_COLUMN_REFERENCE,
                                format!("ORDER BY position {n} is not in select list"),
                            )
                            .at(self.pos(&it.expr)))
                        }
                    }
                } else if let Some(k) = self.output_name_ref(&it.expr, &names)? {
                    k
                } else {
                    let te = self.expr(&it.expr)?;
                    if te.ty == Type::TextArray || te.ty == Type::Void {
                        return Err(QueryError::not_supported(format!(
                            "ORDER BY an expression of type {} is not supported",
                            te.ty.sql_name()
                        )));
                    }
                    if te.ty == Type::Xid {
                        return Err(no_ordering(te.ty).at(te.pos));
                    }
                    match targets.iter().position(|t| t.e == te.e) {
                        Some(k) => k,
                        None => {
                            if distinct {
                                return Err(QueryError::new(
                                    sqlstate::INVALID_COLUMN_REFERENCE,
                                    "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                                )
                                .at(self.pos(&it.expr)));
                            }
                            hidden.push(self.coerce(te, Type::Unknown)?);
                            targets.len() + hidden.len() - 1
                        }
                    }
                };
                sort.push(SortKey {
                    col,
                    desc,
                    nulls_first,
                });
            }
        }
        // Aggregation.
        let visible = targets.len();
        let columns: Vec<Column> = names
            .iter()
            .zip(targets.iter())
            .map(|(n, t)| Column::new(n.clone(), t.ty))
            .collect();
        let mut outputs: Vec<Expr> = targets.into_iter().map(|t| t.e).collect();
        outputs.extend(hidden);
        let aggregated = !groups.is_empty()
            || outputs.iter().any(Expr::contains_agg)
            || having.as_ref().is_some_and(Expr::contains_agg);
        let mut aggs: Vec<AggCall> = Vec::new();
        let mut having = having;
        if aggregated {
            for o in outputs.iter_mut() {
                *o = self.group_rewrite(o.clone(), &groups, &mut aggs)?;
            }
            if let Some(h) = having.take() {
                having = Some(self.group_rewrite(h, &groups, &mut aggs)?);
            }
        } else if having.is_some() {
            // HAVING without aggregates or GROUP BY: a grouped query with one group.
        }
        let aggregated = aggregated || having.is_some();
        // LIMIT / OFFSET
        let (mut limit, mut offset) = (None, None);
        match &q.limit_clause {
            Some(ast::LimitClause::LimitOffset {
                limit: l,
                offset: o,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return Err(QueryError::not_supported("LIMIT BY is not supported"));
                }
                if let Some(l) = l {
                    self.clause = Clause::Limit;
                    limit = Some(self.count_expr(l, "LIMIT")?);
                }
                if let Some(o) = o {
                    self.clause = Clause::Offset;
                    offset = Some(self.count_expr(&o.value, "OFFSET")?);
                }
            }
            Some(ast::LimitClause::OffsetCommaLimit { .. }) => {
                return Err(QueryError::syntax("LIMIT #,# syntax is not supported")
                    .with_hint("Use separate LIMIT and OFFSET clauses."))
            }
            None => {}
        }
        if let Some(f) = &q.fetch {
            if f.with_ties || f.percent {
                return Err(QueryError::not_supported(
                    "FETCH ... WITH TIES / PERCENT is not supported",
                ));
            }
            self.clause = Clause::Limit;
            limit = Some(match &f.quantity {
                Some(e) => self.count_expr(e, "LIMIT")?,
                None => Expr::Const(Datum::Int8(1)),
            });
        }
        let mut params = Vec::with_capacity(self.params.len());
        for (i, p) in self.params.iter().enumerate() {
            match p {
                Some(t) => params.push(*t),
                None => {
                    return Err(QueryError::new(
                        sqlstate::INDETERMINATE_DATATYPE,
                        format!("could not determine data type of parameter ${}", i + 1),
                    ))
                }
            }
        }
        Ok(Plan {
            source,
            filter,
            aggregated,
            groups,
            aggs,
            having,
            outputs,
            visible,
            columns,
            distinct,
            sort,
            limit,
            offset,
            params,
        })
    }

    fn count_expr(&mut self, e: &ast::Expr, what: &str) -> Result<Expr> {
        if let ast::Expr::Value(v) = e {
            if matches!(v.value, ast::Value::Null) {
                return Ok(Expr::Const(Datum::Null));
            }
        }
        let te = self.expr(e)?;
        if te.e.contains_agg() {
            return Err(QueryError::new(
                sqlstate::GROUPING_ERROR,
                format!("aggregate functions are not allowed in {what}"),
            ));
        }
        if uses_columns(&te.e) {
            return Err(QueryError::new(
                sqlstate::INVALID_COLUMN_REFERENCE,
                format!("argument of {what} must not contain variables"),
            )
            .at(te.pos));
        }
        let ty = te.ty;
        if !(ty.implicitly_casts_to(Type::Int8)) {
            return Err(QueryError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!(
                    "argument of {what} must be type bigint, not type {}",
                    ty.sql_name()
                ),
            )
            .at(te.pos));
        }
        self.coerce(te, Type::Int8)
    }

    fn position_literal(&self, e: &ast::Expr) -> Option<i64> {
        if let ast::Expr::Value(v) = e {
            if let ast::Value::Number(s, _) = &v.value {
                if s.bytes().all(|c| c.is_ascii_digit()) {
                    return Some(s.parse().unwrap_or(i64::MAX));
                }
            }
        }
        None
    }

    /// ORDER BY name: an output column name takes precedence (PostgreSQL's SQL92 rule).
    fn output_name_ref(&self, e: &ast::Expr, names: &[String]) -> Result<Option<usize>> {
        if let ast::Expr::Identifier(id) = e {
            let name = ident_name(id);
            let hits: Vec<usize> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| **n == name)
                .map(|(i, _)| i)
                .collect();
            if hits.len() > 1 {
                return Err(
                    QueryError::new("42702", format!("ORDER BY \"{name}\" is ambiguous"))
                        .at(self.pos_of(id.span.start)),
                );
            }
            return Ok(hits.first().copied());
        }
        Ok(None)
    }

    #[recursive::recursive]
    fn group_rewrite(&self, e: Expr, groups: &[Expr], aggs: &mut Vec<AggCall>) -> Result<Expr> {
        if let Some(j) = groups.iter().position(|g| *g == e) {
            return Ok(Expr::Col(j, SrcPos(None)));
        }
        match e {
            Expr::Agg(a) => {
                let k = match aggs.iter().position(|x| *x == *a) {
                    Some(k) => k,
                    None => {
                        aggs.push(*a);
                        aggs.len() - 1
                    }
                };
                Ok(Expr::Col(groups.len() + k, SrcPos(None)))
            }
            Expr::Col(i, at) => Err(QueryError::new(
                sqlstate::GROUPING_ERROR,
                format!(
                    "column \"{}.{}\" must appear in the GROUP BY clause or be used in an aggregate function",
                    self.rel_name.clone().unwrap_or_default(),
                    self.columns.get(i).map(|c| c.name.clone()).unwrap_or_default()
                ),
            )
            .at(at.0)),
            mut other => {
                for c in other.children_mut() {
                    let taken = std::mem::replace(c, Expr::Const(Datum::Null));
                    *c = self.group_rewrite(taken, groups, aggs)?;
                }
                Ok(other)
            }
        }
    }

    fn plan_from(&mut self, t: &ast::TableFactor) -> Result<(Source, Vec<Column>, String)> {
        match t {
            ast::TableFactor::Table {
                name,
                alias,
                args,
                with_ordinality,
                ..
            } => {
                let (n, schema) = object_name_last(name).ok_or_else(|| {
                    QueryError::new(
                        sqlstate::UNDEFINED_TABLE,
                        format!("relation \"{name}\" does not exist"),
                    )
                })?;
                if *with_ordinality {
                    return Err(QueryError::not_supported(
                        "WITH ORDINALITY is not supported",
                    ));
                }
                if let Some(a) = args {
                    return self.plan_from_function(&n, &a.args, alias.as_ref(), self.pos(name));
                }
                if schema.as_deref().is_some_and(|s| s != "pg_catalog") {
                    return Err(QueryError::new(
                        sqlstate::UNDEFINED_TABLE,
                        format!("relation \"{name}\" does not exist"),
                    )
                    .at(self.pos(name)));
                }
                let view: Rc<dyn View> = self.catalog.view(&n).cloned().ok_or_else(|| {
                    QueryError::new(
                        sqlstate::UNDEFINED_TABLE,
                        format!(
                            "relation \"{}\" does not exist",
                            name.to_string().to_lowercase()
                        ),
                    )
                    .at(self.pos(name))
                })?;
                let mut cols = view.columns();
                let mut rel = n;
                if let Some(a) = alias {
                    rel = ident_name(&a.name);
                    if a.columns.len() > cols.len() {
                        return Err(QueryError::new(
                            "42P10",
                            format!(
                                "table \"{rel}\" has {} columns available but {} columns specified",
                                cols.len(),
                                a.columns.len()
                            ),
                        ));
                    }
                    for (c, ac) in cols.iter_mut().zip(a.columns.iter()) {
                        c.name = ident_name(&ac.name);
                    }
                }
                Ok((Source::View(view), cols, rel))
            }
            ast::TableFactor::Function {
                name,
                args,
                alias,
                with_ordinality,
                lateral,
            } => {
                if *with_ordinality || *lateral {
                    return Err(QueryError::not_supported(
                        "WITH ORDINALITY and LATERAL are not supported",
                    ));
                }
                let (n, _) = object_name_last(name).unwrap_or_default();
                self.plan_from_function(&n, args, alias.as_ref(), self.pos(name))
            }
            ast::TableFactor::Derived { .. } => Err(QueryError::not_supported(
                "subqueries in FROM are not supported",
            )),
            ast::TableFactor::NestedJoin { .. } => {
                Err(QueryError::not_supported("JOIN is not supported"))
            }
            _ => Err(QueryError::not_supported("this FROM item is not supported")),
        }
    }

    fn plan_from_function(
        &mut self,
        name: &str,
        args: &[ast::FunctionArg],
        alias: Option<&ast::TableAlias>,
        pos: Option<u32>,
    ) -> Result<(Source, Vec<Column>, String)> {
        let saved = self.clause;
        self.clause = Clause::FuncArg;
        let mut tes = Vec::new();
        for a in args {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => tes.push(self.expr(e)?),
                _ => {
                    return Err(QueryError::not_supported(
                        "this argument form is not supported here",
                    ))
                }
            }
        }
        self.clause = saved;
        if !self.is_srf(name) {
            // A scalar function in FROM: PostgreSQL allows it; here only set-returning ones are.
            let tys: Vec<Type> = tes.iter().map(|t| t.ty).collect();
            let exists =
                BUILTINS.iter().any(|b| b.name == name) || !self.catalog.functions(name).is_empty();
            if exists {
                return Err(QueryError::not_supported(format!(
                    "function {name}({}) in FROM is not supported (only set-returning functions are)",
                    type_list(&tys)
                )));
            }
            return Err(QueryError::new(
                sqlstate::UNDEFINED_FUNCTION,
                format!("function {name}({}) does not exist", type_list(&tys)),
            )
            .with_hint(no_function_hint())
            .at(pos));
        }
        let (src, mut cols) = self.plan_srf(name, &tes, pos)?;
        let mut rel = name.to_owned();
        if let Some(a) = alias {
            rel = ident_name(&a.name);
            if cols.len() == 1 {
                // A scalar set: the alias names the column too.
                cols[0].name = rel.clone();
            }
            if a.columns.len() > cols.len() {
                return Err(QueryError::new(
                    "42601",
                    format!("too many column aliases specified for function {name}"),
                ));
            }
            for (c, ac) in cols.iter_mut().zip(a.columns.iter()) {
                c.name = ident_name(&ac.name);
            }
        }
        Ok((src, cols, rel))
    }

    /// Whether `name` is a set-returning function (built in or the catalog's).
    fn is_srf(&self, name: &str) -> bool {
        name == "generate_series"
            || crate::xid8::is_set_function(name)
            || !self.catalog.set_functions(name).is_empty()
    }

    /// Resolves the set-returning function `name` for `args` (PostgreSQL's overload rules)
    /// and plans it as a row source; returns the source and its result columns.
    fn plan_srf(
        &mut self,
        name: &str,
        args: &[Te],
        pos: Option<u32>,
    ) -> Result<(Source, Vec<Column>)> {
        let cands: Vec<SrfImpl> = if name == "generate_series" {
            SRF.iter()
                .map(|&(_, ret, kind)| SrfImpl::Series(kind, ret))
                .collect()
        } else {
            crate::xid8::set_functions(name)
                .into_iter()
                .map(Rc::new)
                .chain(self.catalog.set_functions(name))
                .map(SrfImpl::Fn)
                .collect()
        };
        let tys: Vec<Type> = args.iter().map(|t| t.ty).collect();
        let decls: Vec<&[Type]> = cands.iter().enumerate().map(|(k, c)| c.args(k)).collect();
        let idx = match func::select_candidate(&tys, &decls) {
            Ok(Some(i)) => i,
            Ok(None) => {
                return Err(QueryError::new(
                    sqlstate::UNDEFINED_FUNCTION,
                    format!("function {name}({}) does not exist", type_list(&tys)),
                )
                .with_hint(no_function_hint())
                .at(pos))
            }
            Err(()) => {
                return Err(QueryError::new(
                    sqlstate::AMBIGUOUS_FUNCTION,
                    format!("function {name}({}) is not unique", type_list(&tys)),
                )
                .with_hint(not_unique_hint())
                .at(pos))
            }
        };
        let decl = decls[idx].to_vec();
        let mut exprs = Vec::new();
        for (te, d) in args.iter().cloned().zip(decl.iter()) {
            exprs.push(self.coerce(te, *d)?);
        }
        Ok(match &cands[idx] {
            SrfImpl::Series(kind, ret) => (
                Source::Series {
                    kind: *kind,
                    ty: *ret,
                    args: exprs,
                },
                vec![Column::new(name, *ret)],
            ),
            SrfImpl::Fn(f) => {
                let mut cols = f.columns.clone();
                if let [c] = cols.as_mut_slice() {
                    c.name = name.to_owned();
                }
                (
                    Source::SetFn {
                        func: f.clone(),
                        args: exprs,
                    },
                    cols,
                )
            }
        })
    }

    // ---- expressions ----

    fn bool_operand(&mut self, te: Te, what: &str) -> Result<Expr> {
        match te.ty {
            Type::Bool => Ok(te.e),
            Type::Unknown => self.coerce(te, Type::Bool),
            other => Err(QueryError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!(
                    "argument of {what} must be type boolean, not type {}",
                    other.sql_name()
                ),
            )
            .at(te.pos)),
        }
    }

    /// Coerces to `to` (`Unknown` as target: resolve an unknown to text, else leave).
    fn coerce(&mut self, te: Te, to: Type) -> Result<Expr> {
        let to = if to == Type::Unknown {
            if te.ty == Type::Unknown {
                Type::Text
            } else {
                return Ok(te.e);
            }
        } else {
            to
        };
        if te.ty == to {
            return Ok(te.e);
        }
        if te.ty == Type::Unknown {
            return match te.e {
                Expr::Const(Datum::Null) => Ok(Expr::Const(Datum::Null)),
                Expr::Const(Datum::Text(s)) if to == Type::Timestamptz => {
                    // Not folded (the value may depend on the clock or the session zone),
                    // but checked now so the error carries the literal's position.
                    let tz = TimeZone::utc();
                    value::from_text(&s, to, CastCtx { tz: &tz, now: 0 })
                        .map_err(|e| e.at(te.pos))?;
                    Ok(Expr::Cast(
                        Box::new(Expr::Const(Datum::Text(s))),
                        Type::Unknown,
                        to,
                    ))
                }
                Expr::Const(Datum::Text(s)) => {
                    let tz = TimeZone::utc();
                    let d = value::from_text(&s, to, CastCtx { tz: &tz, now: 0 })
                        .map_err(|e| e.at(te.pos))?;
                    Ok(Expr::Const(d))
                }
                Expr::Param(i) => {
                    if let Some(slot) = self.params.get_mut(i) {
                        if slot.is_none() {
                            *slot = Some(to);
                        }
                        let have = slot.unwrap_or(to);
                        if have != to {
                            return Ok(Expr::Cast(Box::new(Expr::Param(i)), have, to));
                        }
                    }
                    Ok(Expr::Param(i))
                }
                e => Ok(Expr::Cast(Box::new(e), Type::Unknown, to)),
            };
        }
        Ok(Expr::Cast(Box::new(te.e), te.ty, to))
    }

    fn explicit_cast(
        &mut self,
        te: Te,
        to: Type,
        typmod: Option<(u32, u32)>,
        pos: Option<u32>,
    ) -> Result<Te> {
        let from = te.ty;
        if !value::cast_exists(from, to) {
            return Err(value::cannot_cast(from, to).at(pos));
        }
        let mut e = if from == Type::Unknown {
            let p = te.pos;
            self.coerce(Te { pos: p, ..te }, to)?
        } else if from == to {
            te.e
        } else {
            Expr::Cast(Box::new(te.e), from, to)
        };
        if let Some((p, s)) = typmod {
            e = Expr::NumericTypmod(Box::new(e), p, s);
        }
        Ok(Te::new(e, to, pos))
    }

    #[recursive::recursive]
    fn expr(&mut self, e: &ast::Expr) -> Result<Te> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(QueryError::too_deep());
        }
        let r = self.expr_inner(e);
        self.depth -= 1;
        r
    }

    fn column_ref(&mut self, parts: &[ast::Ident], whole: &ast::Expr) -> Result<Te> {
        let pos = self.pos_of(start_of(whole));
        let (rel, name) = match parts {
            [c] => (None, ident_name(c)),
            [r, c] => (Some(ident_name(r)), ident_name(c)),
            _ => {
                return Err(QueryError::not_supported(format!(
                    "column reference \"{}\" is not supported",
                    parts
                        .iter()
                        .map(|p| p.value.clone())
                        .collect::<Vec<_>>()
                        .join(".")
                ))
                .at(pos))
            }
        };
        if let Some(r) = &rel {
            if self.rel_name.as_ref() != Some(r) {
                return Err(QueryError::new(
                    sqlstate::UNDEFINED_TABLE,
                    format!("missing FROM-clause entry for table \"{r}\""),
                )
                .at(pos));
            }
        }
        if let Some(k) = self.columns.iter().position(|c| c.name == name) {
            if self.clause == Clause::FuncArg {
                return Err(QueryError::not_supported(
                    "column references in FROM function arguments",
                )
                .at(pos));
            }
            return Ok(Te::new(Expr::Col(k, SrcPos(pos)), self.columns[k].ty, pos));
        }
        // Keyword functions written without parentheses.
        if rel.is_none() && parts[0].quote_style.is_none() {
            if let Some(te) = self.keyword_function(&name, pos)? {
                return Ok(te);
            }
        }
        let shown = match &rel {
            Some(r) => format!("{r}.{name}"),
            None => name,
        };
        Err(QueryError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{shown}\" does not exist"),
        )
        .at(pos))
    }

    fn keyword_function(&mut self, name: &str, pos: Option<u32>) -> Result<Option<Te>> {
        let target = match name {
            "current_timestamp" => "now",
            "current_user" | "session_user" | "user" | "current_role" | "current_catalog"
            | "current_schema" => name,
            "localtimestamp" | "localtime" | "current_date" | "current_time" => {
                return Err(QueryError::not_supported(format!(
                    "{} is not supported (its type is not carried)",
                    name.to_uppercase()
                ))
                .at(pos))
            }
            _ => return Ok(None),
        };
        let target = if name == "user" || name == "current_role" {
            "current_user"
        } else {
            target
        };
        self.call_function(target, Vec::new(), pos).map(Some)
    }

    fn literal(&mut self, v: &ast::ValueWithSpan) -> Result<Te> {
        let pos = self.pos_of(v.span.start);
        Ok(match &v.value {
            ast::Value::Number(s, _) => {
                Te::new(Expr::Const(number_literal(s)?), number_type(s), pos)
            }
            ast::Value::SingleQuotedString(s)
            | ast::Value::EscapedStringLiteral(s)
            | ast::Value::UnicodeStringLiteral(s)
            | ast::Value::NationalStringLiteral(s) => {
                Te::new(Expr::Const(Datum::Text(s.clone())), Type::Unknown, pos)
            }
            ast::Value::DollarQuotedString(d) => Te::new(
                Expr::Const(Datum::Text(d.value.clone())),
                Type::Unknown,
                pos,
            ),
            ast::Value::Boolean(b) => Te::new(Expr::Const(Datum::Bool(*b)), Type::Bool, pos),
            ast::Value::Null => Te::new(Expr::Const(Datum::Null), Type::Unknown, pos),
            ast::Value::Placeholder(p) => {
                let n: usize = p
                    .strip_prefix('$')
                    .and_then(|d| d.parse().ok())
                    .filter(|n: &usize| (1..=65535).contains(n))
                    .ok_or_else(|| {
                        QueryError::syntax(format!("syntax error at or near \"{p}\"")).at(pos)
                    })?;
                if self.params.len() < n {
                    self.params.resize(n, None);
                }
                let ty = self.params[n - 1].unwrap_or(Type::Unknown);
                Te::new(Expr::Param(n - 1), ty, pos)
            }
            ast::Value::HexStringLiteral(_) | ast::Value::SingleQuotedByteStringLiteral(_) => {
                return Err(
                    QueryError::not_supported("bit string literals are not supported").at(pos),
                )
            }
            _ => return Err(QueryError::not_supported("this literal is not supported").at(pos)),
        })
    }

    fn expr_inner(&mut self, e: &ast::Expr) -> Result<Te> {
        use ast::Expr as E;
        let pos = self.pos_of(start_of(e));
        match e {
            E::Identifier(id) => self.column_ref(std::slice::from_ref(id), e),
            E::CompoundIdentifier(ids) => self.column_ref(ids, e),
            E::Value(v) => self.literal(v),
            E::Nested(x) => self.expr(x),
            E::BinaryOp { left, op, right } => self.binary(left, op, right, e),
            E::UnaryOp { op, expr } => self.unary(op, expr, pos),
            E::IsNull(x) | E::IsNotNull(x) => {
                let te = self.expr(x)?;
                // IS NULL gives an unknown parameter no type (PostgreSQL then reports 42P18).
                let te_e = if matches!(te.e, Expr::Param(_)) {
                    te.e
                } else {
                    self.coerce(te, Type::Unknown)?
                };
                Ok(Te::new(
                    Expr::IsNull(Box::new(te_e), matches!(e, E::IsNotNull(_))),
                    Type::Bool,
                    pos,
                ))
            }
            E::IsTrue(x)
            | E::IsNotTrue(x)
            | E::IsFalse(x)
            | E::IsNotFalse(x)
            | E::IsUnknown(x)
            | E::IsNotUnknown(x) => {
                let (want, neg, what) = match e {
                    E::IsTrue(_) => (Some(true), false, "IS TRUE"),
                    E::IsNotTrue(_) => (Some(true), true, "IS NOT TRUE"),
                    E::IsFalse(_) => (Some(false), false, "IS FALSE"),
                    E::IsNotFalse(_) => (Some(false), true, "IS NOT FALSE"),
                    E::IsUnknown(_) => (None, false, "IS UNKNOWN"),
                    _ => (None, true, "IS NOT UNKNOWN"),
                };
                let te = self.expr(x)?;
                let b = self.bool_operand(te, what)?;
                Ok(Te::new(
                    Expr::IsBool(Box::new(b), want, neg),
                    Type::Bool,
                    pos,
                ))
            }
            E::IsDistinctFrom(a, b) | E::IsNotDistinctFrom(a, b) => {
                let (l, r) = self.comparison_operands(a, b, "=", e)?;
                Ok(Te::new(
                    Expr::IsDistinct(
                        Box::new(l),
                        Box::new(r),
                        matches!(e, E::IsNotDistinctFrom(..)),
                    ),
                    Type::Bool,
                    pos,
                ))
            }
            E::In {
                expr,
                target,
                negated,
                ..
            } => {
                let list = match target {
                    ast::InTarget::List(l) => l,
                    _ => {
                        return Err(
                            QueryError::not_supported("IN (subquery) is not supported").at(pos)
                        )
                    }
                };
                let in_pos = list.first().and_then(|f| self.pos_before(f)).or(pos);
                self.in_list(expr, list, *negated, in_pos)
            }
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (a1, lo) = self.comparison_operands(expr, low, ">=", e)?;
                let (a2, hi) = self.comparison_operands(expr, high, "<=", e)?;
                let both = Expr::And(vec![
                    Expr::Cmp(CmpOp::Ge, Box::new(a1), Box::new(lo)),
                    Expr::Cmp(CmpOp::Le, Box::new(a2), Box::new(hi)),
                ]);
                let r = if *negated {
                    Expr::Not(Box::new(both))
                } else {
                    both
                };
                Ok(Te::new(r, Type::Bool, pos))
            }
            E::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | E::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(QueryError::not_supported("LIKE ANY is not supported").at(pos));
                }
                let ci = matches!(e, E::ILike { .. });
                let l = self.expr(expr)?;
                let p = self.expr(pattern)?;
                let opname = match (ci, *negated) {
                    (false, false) => "~~",
                    (false, true) => "!~~",
                    (true, false) => "~~*",
                    (true, true) => "!~~*",
                };
                for t in [&l, &p] {
                    if !matches!(t.ty, Type::Text | Type::Name | Type::Unknown) {
                        return Err(QueryError::new(
                            sqlstate::UNDEFINED_FUNCTION,
                            format!(
                                "operator does not exist: {} {opname} {}",
                                l.ty.sql_name(),
                                p.ty.sql_name()
                            ),
                        )
                        .with_hint(no_operator_hint())
                        .at(self.pos_before(pattern.as_ref()).or(pos)));
                    }
                }
                let l = self.coerce(l, Type::Text)?;
                let p = self.coerce(p, Type::Text)?;
                let esc = match escape_char {
                    Some(x) => {
                        let te = self.expr(x)?;
                        Some(Box::new(self.coerce(te, Type::Text)?))
                    }
                    None => None,
                };
                Ok(Te::new(
                    Expr::Like {
                        expr: Box::new(l),
                        pattern: Box::new(p),
                        escape: esc,
                        ci,
                        negated: *negated,
                    },
                    Type::Bool,
                    pos,
                ))
            }
            E::SimilarTo { .. } | E::RLike { .. } => Err(QueryError::not_supported(
                "SIMILAR TO and regular expressions are not supported",
            )
            .at(pos)),
            E::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                if format.is_some()
                    || matches!(kind, ast::CastKind::TryCast | ast::CastKind::SafeCast)
                {
                    return Err(
                        QueryError::not_supported("this cast form is not supported").at(pos)
                    );
                }
                let cast_pos = match kind {
                    ast::CastKind::DoubleColon => self.pos_after(expr).or(pos),
                    _ => pos,
                };
                let type_pos = match kind {
                    ast::CastKind::DoubleColon => {
                        self.pos_token_after(expr.span().end).or(cast_pos)
                    }
                    _ => pos,
                };
                let (to, typmod) = resolve_type_name(data_type).map_err(|e| e.at(type_pos))?;
                let te = self.expr(expr)?;
                let start = te.pos.or(pos);
                let mut r = self.explicit_cast(te, to, typmod, cast_pos)?;
                r.pos = start;
                Ok(r)
            }
            E::TypedString(ts) => {
                let (to, typmod) = resolve_type_name(&ts.data_type).map_err(|e| e.at(pos))?;
                let lit = self.literal(&ts.value)?;
                let lit = Te { pos, ..lit };
                self.explicit_cast(lit, to, typmod, pos)
            }
            E::Interval(iv) => {
                let te = self.expr(&iv.value)?;
                if iv.last_field.is_some()
                    || iv.fractional_seconds_precision.is_some()
                    || iv.leading_precision.is_some()
                {
                    return Err(QueryError::not_supported(
                        "interval field qualifiers are not supported",
                    )
                    .at(pos));
                }
                let te = match (&iv.leading_field, &te.e) {
                    (Some(f), Expr::Const(Datum::Text(s))) if te.ty == Type::Unknown => {
                        let unit = f.to_string().to_lowercase();
                        let text = if s.trim().parse::<f64>().is_ok() {
                            format!("{s} {unit}")
                        } else {
                            s.clone()
                        };
                        Te::new(Expr::Const(Datum::Text(text)), Type::Unknown, pos)
                    }
                    (Some(_), _) => {
                        return Err(QueryError::not_supported(
                            "interval field qualifiers are not supported",
                        )
                        .at(pos))
                    }
                    _ => Te { pos, ..te },
                };
                self.explicit_cast(te, Type::Interval, None, pos)
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand.as_deref(), conditions, else_result.as_deref(), pos),
            E::Function(f) => self.function(f, e),
            E::Extract { field, expr, .. } => {
                let unit = match field {
                    ast::DateTimeField::Custom(id) => id.value.to_lowercase(),
                    other => other.to_string().to_lowercase(),
                };
                let te = self.expr(expr)?;
                let unit_te = Te::new(Expr::Const(Datum::Text(unit)), Type::Text, pos);
                self.call_function("extract", vec![unit_te, te], pos)
            }
            E::Ceil { expr, field } | E::Floor { expr, field } => {
                if !matches!(
                    field,
                    ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime)
                ) {
                    return Err(QueryError::not_supported(
                        "CEIL/FLOOR with a unit is not supported",
                    )
                    .at(pos));
                }
                let name = if matches!(e, E::Ceil { .. }) {
                    "ceil"
                } else {
                    "floor"
                };
                let te = self.expr(expr)?;
                self.call_function(name, vec![te], pos)
            }
            E::Position { expr, r#in } => {
                let a = self.expr(expr)?;
                let b = self.expr(r#in)?;
                self.call_function("position", vec![a, b], pos)
            }
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.expr(expr)?];
                match (substring_from, substring_for) {
                    (Some(f), Some(n)) => {
                        args.push(self.expr(f)?);
                        args.push(self.expr(n)?);
                    }
                    (Some(f), None) => args.push(self.expr(f)?),
                    (None, Some(n)) => {
                        args.push(Te::new(Expr::Const(Datum::Int4(1)), Type::Int4, pos));
                        args.push(self.expr(n)?);
                    }
                    (None, None) => {}
                }
                self.call_function("substring", args, pos)
            }
            E::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                if trim_characters.is_some() {
                    return Err(QueryError::not_supported(
                        "TRIM with a character list is not supported",
                    )
                    .at(pos));
                }
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                let mut args = vec![self.expr(expr)?];
                if let Some(w) = trim_what {
                    args.push(self.expr(w)?);
                }
                self.call_function(name, args, pos)
            }
            E::Subquery(_) | E::Exists { .. } => {
                Err(QueryError::not_supported("subqueries are not supported").at(pos))
            }
            E::AnyOp { .. } | E::AllOp { .. } => {
                Err(QueryError::not_supported("ANY/ALL are not supported").at(pos))
            }
            E::Array(_) => Err(QueryError::not_supported("arrays are not supported").at(pos)),
            E::Tuple(_) => {
                Err(QueryError::not_supported("row constructors are not supported").at(pos))
            }
            E::AtTimeZone { .. } => {
                Err(QueryError::not_supported("AT TIME ZONE is not supported").at(pos))
            }
            E::Collate { .. } => Err(QueryError::not_supported("COLLATE is not supported").at(pos)),
            E::Wildcard(_) | E::QualifiedWildcard(..) => {
                Err(QueryError::syntax("syntax error at or near \"*\"").at(pos))
            }
            _ => Err(
                QueryError::not_supported(format!("expression \"{e}\" is not supported")).at(pos),
            ),
        }
    }

    /// Position just past `e` (where a `::` cast's operator stands).
    fn pos_after(&self, e: &ast::Expr) -> Option<u32> {
        let end = e.span().end;
        self.pos_of(end)
    }

    fn unary(&mut self, op: &ast::UnaryOperator, x: &ast::Expr, pos: Option<u32>) -> Result<Te> {
        let pos = self.pos_before(x).or(pos);
        match op {
            ast::UnaryOperator::Not => {
                let te = self.expr(x)?;
                let b = self.bool_operand(te, "NOT")?;
                Ok(Te::new(Expr::Not(Box::new(b)), Type::Bool, pos))
            }
            ast::UnaryOperator::Minus | ast::UnaryOperator::Plus
                if matches!(
                    x,
                    ast::Expr::BinaryOp {
                        op: ast::BinaryOperator::PGExp,
                        ..
                    }
                ) =>
            {
                // PostgreSQL binds unary minus tighter than ^: -2 ^ 2 is (-2) ^ 2.
                let mut e = x.clone();
                let mut cur = &mut e;
                while let ast::Expr::BinaryOp {
                    op: ast::BinaryOperator::PGExp,
                    left,
                    ..
                } = cur
                {
                    cur = left.as_mut();
                }
                let inner = std::mem::replace(cur, ast::Expr::value(ast::Value::Null));
                *cur = ast::Expr::UnaryOp {
                    op: *op,
                    expr: Box::new(inner),
                };
                self.expr(&e)
            }
            ast::UnaryOperator::Minus => {
                if let ast::Expr::Value(v) = x {
                    if let ast::Value::Number(s, _) = &v.value {
                        let neg = format!("-{s}");
                        return Ok(Te::new(
                            Expr::Const(number_literal(&neg)?),
                            number_type(&neg),
                            pos,
                        ));
                    }
                }
                let te = self.expr(x)?;
                match te.ty {
                    Type::Int2 | Type::Int4 | Type::Int8 | Type::Numeric | Type::Float8 | Type::Interval => {
                        Ok(Te::new(Expr::Neg(Box::new(te.e)), te.ty, pos))
                    }
                    Type::Unknown => Err(QueryError::new(
                        sqlstate::AMBIGUOUS_FUNCTION,
                        "operator is not unique: - unknown",
                    )
                    .with_hint("Could not choose a best candidate operator. You might need to add explicit type casts.")
                    .at(pos)),
                    t => Err(QueryError::new(
                        sqlstate::UNDEFINED_FUNCTION,
                        format!("operator does not exist: - {}", t.sql_name()),
                    )
                    .with_hint(no_operator_hint())
                    .at(pos)),
                }
            }
            ast::UnaryOperator::Plus => {
                let te = self.expr(x)?;
                match te.ty {
                    Type::Int2 | Type::Int4 | Type::Int8 | Type::Numeric | Type::Float8 => Ok(te),
                    t => Err(QueryError::new(
                        sqlstate::UNDEFINED_FUNCTION,
                        format!("operator does not exist: + {}", t.sql_name()),
                    )
                    .with_hint(no_operator_hint())
                    .at(pos)),
                }
            }
            ast::UnaryOperator::PGSquareRoot => {
                let te = self.expr(x)?;
                self.call_function("sqrt", vec![te], pos)
            }
            ast::UnaryOperator::PGAbs => {
                let te = self.expr(x)?;
                self.call_function("abs", vec![te], pos)
            }
            other => {
                Err(QueryError::not_supported(format!("operator {other} is not supported")).at(pos))
            }
        }
    }

    fn binary(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        whole: &ast::Expr,
    ) -> Result<Te> {
        use ast::BinaryOperator as B;
        let pos = self.pos_of(start_of(whole));
        let cmp = match op {
            B::Eq => Some(CmpOp::Eq),
            B::NotEq => Some(CmpOp::Ne),
            B::Lt => Some(CmpOp::Lt),
            B::LtEq => Some(CmpOp::Le),
            B::Gt => Some(CmpOp::Gt),
            B::GtEq => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(c) = cmp {
            let (l, r) = self.comparison_operands(left, right, c.symbol(), whole)?;
            return Ok(Te::new(
                Expr::Cmp(c, Box::new(l), Box::new(r)),
                Type::Bool,
                pos,
            ));
        }
        match op {
            B::And | B::Or => {
                // Flatten chains iteratively so long AND/OR lists do not recurse.
                let mut items = Vec::new();
                let mut stack = vec![right, left];
                while let Some(x) = stack.pop() {
                    match x {
                        ast::Expr::BinaryOp {
                            left: l2,
                            op: o2,
                            right: r2,
                        } if o2 == op => {
                            stack.push(r2);
                            stack.push(l2);
                        }
                        other => {
                            let te = self.expr(other)?;
                            let what = if matches!(op, B::And) { "AND" } else { "OR" };
                            items.push(self.bool_operand(te, what)?);
                        }
                    }
                }
                let e = if matches!(op, B::And) {
                    Expr::And(items)
                } else {
                    Expr::Or(items)
                };
                Ok(Te::new(e, Type::Bool, pos))
            }
            B::Plus
            | B::Minus
            | B::Multiply
            | B::Divide
            | B::Modulo
            | B::PGExp
            | B::StringConcat => {
                let bop = match op {
                    B::Plus => BinOp::Add,
                    B::Minus => BinOp::Sub,
                    B::Multiply => BinOp::Mul,
                    B::Divide => BinOp::Div,
                    B::Modulo => BinOp::Mod,
                    B::PGExp => BinOp::Pow,
                    _ => BinOp::Concat,
                };
                let l = self.expr(left)?;
                let r = self.expr(right)?;
                let opos = self.pos_before(right).or(pos);
                self.arith(bop, l, r, opos)
            }
            B::PGLikeMatch | B::PGILikeMatch | B::PGNotLikeMatch | B::PGNotILikeMatch => {
                let (ci, negated) = match op {
                    B::PGLikeMatch => (false, false),
                    B::PGILikeMatch => (true, false),
                    B::PGNotLikeMatch => (false, true),
                    _ => (true, true),
                };
                let l = self.expr(left)?;
                let p = self.expr(right)?;
                let l = self.coerce(l, Type::Text)?;
                let p = self.coerce(p, Type::Text)?;
                Ok(Te::new(
                    Expr::Like {
                        expr: Box::new(l),
                        pattern: Box::new(p),
                        escape: None,
                        ci,
                        negated,
                    },
                    Type::Bool,
                    pos,
                ))
            }
            other => {
                Err(QueryError::not_supported(format!("operator {other} is not supported")).at(pos))
            }
        }
    }

    fn op_error(&self, sym: &str, l: Type, r: Type, pos: Option<u32>) -> QueryError {
        QueryError::new(
            sqlstate::UNDEFINED_FUNCTION,
            format!(
                "operator does not exist: {} {sym} {}",
                l.sql_name(),
                r.sql_name()
            ),
        )
        .with_hint(no_operator_hint())
        .at(pos)
    }

    fn arith(&mut self, op: BinOp, l: Te, r: Te, pos: Option<u32>) -> Result<Te> {
        use Type::*;
        let (lt, rt) = (l.ty, r.ty);
        if op == BinOp::Concat {
            let textish = |t: Type| matches!(t, Text | Name | Unknown);
            if !(textish(lt) || textish(rt)) || lt == TextArray || rt == TextArray {
                return Err(self.op_error("||", lt, rt, pos));
            }
            let le = self.text_operand(l)?;
            let re = self.text_operand(r)?;
            return Ok(Te::new(Expr::Op(op, Box::new(le), Box::new(re)), Text, pos));
        }
        if lt == Unknown && rt == Unknown {
            return Err(QueryError::new(
                sqlstate::AMBIGUOUS_FUNCTION,
                format!("operator is not unique: unknown {} unknown", op.symbol()),
            )
            .with_hint("Could not choose a best candidate operator. You might need to add explicit type casts.")
            .at(pos));
        }
        let lt2 = if lt == Unknown { rt } else { lt };
        let rt2 = if rt == Unknown { lt } else { rt };
        // Numbers.
        if let (Some(a), Some(b)) = (lt2.numeric_rank(), rt2.numeric_rank()) {
            let mut common = if a >= b { lt2 } else { rt2 };
            if op == BinOp::Pow && common != Numeric {
                common = Float8;
            }
            if op == BinOp::Mod && common == Float8 {
                return Err(self.op_error("%", lt2, rt2, pos));
            }
            let le = self.coerce(l, common)?;
            let re = self.coerce(r, common)?;
            return Ok(Te::new(
                Expr::Op(op, Box::new(le), Box::new(re)),
                common,
                pos,
            ));
        }
        let result = match (op, lt2, rt2) {
            (BinOp::Add, Timestamptz, Interval)
            | (BinOp::Add, Interval, Timestamptz)
            | (BinOp::Sub, Timestamptz, Interval) => Some((lt2, rt2, Timestamptz)),
            (BinOp::Sub, Timestamptz, Timestamptz) => Some((lt2, rt2, Interval)),
            (BinOp::Add | BinOp::Sub, Interval, Interval) => Some((Interval, Interval, Interval)),
            (BinOp::Mul | BinOp::Div, Interval, t) if t.numeric_rank().is_some() => {
                Some((Interval, Float8, Interval))
            }
            (BinOp::Mul, t, Interval) if t.numeric_rank().is_some() => {
                Some((Float8, Interval, Interval))
            }
            _ => None,
        };
        match result {
            Some((a, b, res)) => {
                let le = self.coerce(l, a)?;
                let re = self.coerce(r, b)?;
                Ok(Te::new(Expr::Op(op, Box::new(le), Box::new(re)), res, pos))
            }
            None => Err(self.op_error(op.symbol(), lt, rt, pos)),
        }
    }

    /// An operand of `||`: text as is, anything else through its output function.
    fn text_operand(&mut self, te: Te) -> Result<Expr> {
        match te.ty {
            Type::Text => Ok(te.e),
            Type::Unknown => self.coerce(te, Type::Text),
            t => Ok(Expr::Cast(Box::new(te.e), t, Type::Text)),
        }
    }

    fn comparison_operands(
        &mut self,
        a: &ast::Expr,
        b: &ast::Expr,
        sym: &str,
        whole: &ast::Expr,
    ) -> Result<(Expr, Expr)> {
        let l = self.expr(a)?;
        let r = self.expr(b)?;
        let pos = self.pos_before(b).or_else(|| self.pos(whole));
        let t = self
            .comparison_type(l.ty, r.ty)
            .filter(|&t| t != Type::Xid || matches!(sym, "=" | "<>"))
            .ok_or_else(|| self.op_error(sym, l.ty, r.ty, pos))?;
        Ok((self.coerce(l, t)?, self.coerce(r, t)?))
    }

    fn comparison_type(&self, lt: Type, rt: Type) -> Option<Type> {
        use Type::*;
        let (lt, rt) = match (lt, rt) {
            (Unknown, Unknown) => (Text, Text),
            (Unknown, t) | (t, Unknown) => (t, t),
            x => x,
        };
        if lt == rt {
            // pg_snapshot has no comparison operators.
            return (!matches!(lt, TextArray | Void | PgSnapshot | TxidSnapshot)).then_some(lt);
        }
        if let (Some(a), Some(b)) = (lt.numeric_rank(), rt.numeric_rank()) {
            return Some(if a >= b { lt } else { rt });
        }
        match (lt, rt) {
            (Text, Name) | (Name, Text) => Some(Text),
            (Oid, t) | (t, Oid) if t.is_integer() => Some(Int8),
            // xideqint4 / xidneqint4 (xid on the left only): the integer read as an xid.
            (Xid, Int4) => Some(Xid),
            _ => None,
        }
    }

    fn in_list(
        &mut self,
        x: &ast::Expr,
        list: &[ast::Expr],
        negated: bool,
        pos: Option<u32>,
    ) -> Result<Te> {
        let lhs = self.expr(x)?;
        let mut items = Vec::new();
        for i in list {
            items.push(self.expr(i)?);
        }
        let mut all = vec![lhs.clone()];
        all.extend(items.iter().cloned());
        if let Ok(t) = self.common_type(&all, "IN") {
            if self.comparison_type(t, t).is_some() {
                let l = self.coerce(lhs, t)?;
                let mut v = Vec::new();
                for it in items {
                    v.push(self.coerce(it, t)?);
                }
                return Ok(Te::new(
                    Expr::InList(Box::new(l), v, negated),
                    Type::Bool,
                    pos,
                ));
            }
        }
        // Pairwise comparisons (errors name the operator).
        let mut ors = Vec::new();
        for it in items {
            let t = self
                .comparison_type(lhs.ty, it.ty)
                .ok_or_else(|| self.op_error("=", lhs.ty, it.ty, pos))?;
            let l = self.coerce(lhs.clone(), t)?;
            let r = self.coerce(it, t)?;
            ors.push(Expr::Cmp(CmpOp::Eq, Box::new(l), Box::new(r)));
        }
        let e = Expr::Or(ors);
        Ok(Te::new(
            if negated { Expr::Not(Box::new(e)) } else { e },
            Type::Bool,
            pos,
        ))
    }

    /// PostgreSQL's select_common_type.
    fn common_type(&self, items: &[Te], ctx: &str) -> Result<Type> {
        let mut cur: Option<Type> = None;
        for it in items {
            if it.ty == Type::Unknown {
                continue;
            }
            match cur {
                None => cur = Some(it.ty),
                Some(p) if p == it.ty => {}
                Some(p) => {
                    let (pc, nc) = (p.category(), it.ty.category());
                    if pc != nc || pc == Category::Pseudo || pc == Category::Array {
                        return Err(QueryError::new(
                            sqlstate::DATATYPE_MISMATCH,
                            format!(
                                "{ctx} types {} and {} cannot be matched",
                                p.sql_name(),
                                it.ty.sql_name()
                            ),
                        )
                        .at(it.pos));
                    }
                    if !p.is_preferred()
                        && p.implicitly_casts_to(it.ty)
                        && !it.ty.implicitly_casts_to(p)
                    {
                        cur = Some(it.ty);
                    }
                }
            }
        }
        Ok(cur.unwrap_or(Type::Text))
    }

    fn coerce_all(&mut self, items: Vec<Te>, ctx: &str) -> Result<(Vec<Expr>, Type)> {
        let t = self.common_type(&items, ctx)?;
        let mut v = Vec::new();
        for it in items {
            let p = it.pos;
            let from = it.ty;
            if from != Type::Unknown && !from.implicitly_casts_to(t) {
                return Err(QueryError::new(
                    sqlstate::DATATYPE_MISMATCH,
                    format!(
                        "{ctx} could not convert type {} to {}",
                        from.sql_name(),
                        t.sql_name()
                    ),
                )
                .at(p));
            }
            v.push(self.coerce(it, t)?);
        }
        Ok((v, t))
    }

    fn case(
        &mut self,
        operand: Option<&ast::Expr>,
        conds: &[ast::CaseWhen],
        otherwise: Option<&ast::Expr>,
        pos: Option<u32>,
    ) -> Result<Te> {
        let mut results = Vec::new();
        let mut whens = Vec::new();
        let op = match operand {
            Some(o) => Some(self.expr(o)?),
            None => None,
        };
        let mut op_items: Vec<Te> = Vec::new();
        for c in conds {
            let w = self.expr(&c.condition)?;
            if op.is_some() {
                op_items.push(w);
            } else {
                whens.push(self.bool_operand(w, "CASE/WHEN")?);
            }
            results.push(self.expr(&c.result)?);
        }
        let else_te = match otherwise {
            Some(x) => self.expr(x)?,
            None => Te::new(Expr::Const(Datum::Null), Type::Unknown, None),
        };
        // PostgreSQL resolves the ELSE result first (its error messages name it first).
        results.insert(0, else_te);
        let (mut rs, ty) = self.coerce_all(results, "CASE")?;
        let otherwise = rs.remove(0);
        let operand = match op {
            Some(o) => {
                let mut all = vec![o.clone()];
                all.extend(op_items.iter().cloned());
                let t = self
                    .common_type(&all, "CASE")
                    .ok()
                    .and_then(|t| self.comparison_type(t, t));
                let t = match t {
                    Some(t) => t,
                    None => {
                        return Err(self.op_error(
                            "=",
                            o.ty,
                            op_items.first().map_or(Type::Unknown, |w| w.ty),
                            pos,
                        ))
                    }
                };
                for w in op_items {
                    whens.push(self.coerce(w, t)?);
                }
                Some(Box::new(self.coerce(o, t)?))
            }
            None => None,
        };
        Ok(Te::new(
            Expr::Case {
                operand,
                whens: whens.into_iter().zip(rs).collect(),
                otherwise: Box::new(otherwise),
            },
            ty,
            pos,
        ))
    }

    fn function_args(&mut self, f: &ast::Function) -> Result<Vec<Te>> {
        let pos = self.pos(&f.name);
        let list = match &f.args {
            ast::FunctionArguments::None => return Ok(Vec::new()),
            ast::FunctionArguments::Subquery(_) => {
                return Err(QueryError::not_supported("subqueries are not supported").at(pos))
            }
            ast::FunctionArguments::List(l) => l,
        };
        if !list.clauses.is_empty() || list.duplicate_treatment.is_some() {
            return Err(QueryError::not_supported(
                "DISTINCT and ORDER BY are only supported in aggregates",
            )
            .at(pos));
        }
        let mut v = Vec::new();
        for a in &list.args {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => v.push(self.expr(e)?),
                _ => {
                    return Err(
                        QueryError::not_supported("this argument form is not supported").at(pos),
                    )
                }
            }
        }
        Ok(v)
    }

    fn function(&mut self, f: &ast::Function, whole: &ast::Expr) -> Result<Te> {
        let pos = self.pos(&f.name);
        let (name, schema) = object_name_last(&f.name).ok_or_else(|| {
            QueryError::new(
                sqlstate::UNDEFINED_FUNCTION,
                format!("function {} does not exist", f.name),
            )
            .at(pos)
        })?;
        if schema.as_deref().is_some_and(|s| s != "pg_catalog") {
            return Err(QueryError::new(
                "3F000",
                format!("schema \"{}\" does not exist", schema.unwrap_or_default()),
            )
            .at(pos));
        }
        if f.over.is_some() {
            return Err(QueryError::not_supported("window functions are not supported").at(pos));
        }
        if !f.within_group.is_empty() {
            return Err(QueryError::not_supported("WITHIN GROUP is not supported").at(pos));
        }
        if let Some(kind) = agg_kind(&name) {
            return self.aggregate(kind, &name, f, pos);
        }
        if f.filter.is_some() {
            return Err(QueryError::new(
                sqlstate::WINDOWING_ERROR,
                format!("FILTER specified, but {name} is not an aggregate function"),
            )
            .at(pos));
        }
        if matches!(f.args, ast::FunctionArguments::None) {
            if let Some(te) = self.keyword_function(&name, pos)? {
                return Ok(te);
            }
        }
        if name == "make_interval" {
            return self.make_interval(f, pos);
        }
        if name == "pg_typeof" {
            // pg_typeof("any"): the argument's type, known when the statement is planned.
            let args = self.function_args(f)?;
            if let [a] = args.as_slice() {
                return Ok(Te::new(
                    Expr::Const(Datum::Regtype(a.ty.oid())),
                    Type::Regtype,
                    pos,
                ));
            }
            let tys: Vec<Type> = args.iter().map(|a| a.ty).collect();
            return Err(self.no_function(&name, &tys, pos));
        }
        if self.is_srf(&name) {
            return Err(QueryError::not_supported(format!(
                "{name} is only supported in FROM or as a whole target of a FROM-less SELECT"
            ))
            .at(pos));
        }
        let _ = whole;
        let args = self.function_args(f)?;
        self.call_function(&name, args, pos)
    }

    fn make_interval(&mut self, f: &ast::Function, pos: Option<u32>) -> Result<Te> {
        const NAMES: [&str; 7] = ["years", "months", "weeks", "days", "hours", "mins", "secs"];
        let mut slots: Vec<Option<Te>> = vec![None; 7];
        let list = match &f.args {
            ast::FunctionArguments::List(l) => l.args.clone(),
            _ => Vec::new(),
        };
        let mut positional = 0;
        for a in &list {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                    if positional >= 7 {
                        return Err(self.no_function("make_interval", &[], pos));
                    }
                    slots[positional] = Some(self.expr(e)?);
                    positional += 1;
                }
                ast::FunctionArg::Named {
                    name,
                    arg: ast::FunctionArgExpr::Expr(e),
                    ..
                }
                | ast::FunctionArg::ExprNamed {
                    name: ast::Expr::Identifier(name),
                    arg: ast::FunctionArgExpr::Expr(e),
                    ..
                } => {
                    let n = ident_name(name);
                    let k = NAMES
                        .iter()
                        .position(|x| *x == n)
                        .ok_or_else(|| self.no_function("make_interval", &[], pos))?;
                    slots[k] = Some(self.expr(e)?);
                }
                _ => {
                    return Err(
                        QueryError::not_supported("this argument form is not supported").at(pos),
                    )
                }
            }
        }
        let mut args = Vec::new();
        for (k, s) in slots.into_iter().enumerate() {
            let want = if k == 6 { Type::Float8 } else { Type::Int4 };
            let te = s.unwrap_or_else(|| {
                Te::new(
                    Expr::Const(if k == 6 {
                        Datum::Float8(0.0)
                    } else {
                        Datum::Int4(0)
                    }),
                    want,
                    pos,
                )
            });
            if !te.ty.implicitly_casts_to(want) {
                return Err(self.no_function("make_interval", &[te.ty], pos));
            }
            args.push(self.coerce(te, want)?);
        }
        Ok(Te::new(
            Expr::Call {
                f: FuncImpl::Builtin(func::make_interval),
                args,
                strict: true,
            },
            Type::Interval,
            pos,
        ))
    }

    fn no_function(&self, name: &str, tys: &[Type], pos: Option<u32>) -> QueryError {
        QueryError::new(
            sqlstate::UNDEFINED_FUNCTION,
            format!("function {name}({}) does not exist", type_list(tys)),
        )
        .with_hint(no_function_hint())
        .at(pos)
    }

    /// Resolves and plans a call of `name` over planned arguments.
    fn call_function(&mut self, name: &str, args: Vec<Te>, pos: Option<u32>) -> Result<Te> {
        let tys: Vec<Type> = args.iter().map(|t| t.ty).collect();
        match name {
            "coalesce" | "greatest" | "least" => {
                if args.is_empty() {
                    return Err(QueryError::syntax("syntax error at or near \")\"").at(pos));
                }
                let ctx = name.to_uppercase();
                let (v, t) = self.coerce_all(args, &ctx)?;
                if name != "coalesce" && t == Type::Xid {
                    // xid has equality but no btree order.
                    return Err(QueryError::new(
                        sqlstate::UNDEFINED_FUNCTION,
                        "could not identify a comparison function for type xid",
                    ));
                }
                if name != "coalesce" && self.comparison_type(t, t).is_none() {
                    return Err(self.no_function(name, &[t], pos));
                }
                let e = match name {
                    "coalesce" => Expr::Coalesce(v),
                    "greatest" => Expr::MinMax(v, true),
                    _ => Expr::MinMax(v, false),
                };
                return Ok(Te::new(e, t, pos));
            }
            "nullif" if args.len() == 2 => {
                let mut it = args.into_iter();
                let (a, b) = (
                    it.next().ok_or_else(internal)?,
                    it.next().ok_or_else(internal)?,
                );
                let t = self
                    .comparison_type(a.ty, b.ty)
                    .ok_or_else(|| self.op_error("=", a.ty, b.ty, pos))?;
                let ty = if a.ty == Type::Unknown {
                    Type::Text
                } else {
                    a.ty
                };
                let ae = self.coerce(a, t)?;
                let be = self.coerce(b, t)?;
                let ae = if t != ty {
                    Expr::Cast(Box::new(ae), t, ty)
                } else {
                    ae
                };
                let _ = ty;
                return Ok(Te::new(
                    Expr::NullIf(Box::new(ae), Box::new(be)),
                    if t == ty { t } else { ty },
                    pos,
                ));
            }
            "concat" | "concat_ws" => {
                if args.is_empty() {
                    return Err(self.no_function(name, &tys, pos));
                }
                let mut v = Vec::new();
                for a in args {
                    v.push(self.text_operand(a)?);
                }
                let f: crate::expr::Builtin = if name == "concat" { concat } else { concat_ws };
                return Ok(Te::new(
                    Expr::Call {
                        f: FuncImpl::Builtin(f),
                        args: v,
                        strict: false,
                    },
                    Type::Text,
                    pos,
                ));
            }
            "extract" => {
                let arg_t = tys.get(1).copied().unwrap_or(Type::Unknown);
                let mut it = args.into_iter();
                let unit = it.next().ok_or_else(internal)?;
                let val = it.next().ok_or_else(internal)?;
                let unit_e = self.coerce(unit, Type::Text)?;
                let (t, f): (Type, crate::expr::Builtin) = match arg_t {
                    Type::Timestamptz | Type::Unknown => (Type::Timestamptz, extract_ts_fn),
                    Type::Interval => (Type::Interval, extract_iv_fn),
                    other => return Err(self.no_function("extract", &[Type::Unknown, other], pos)),
                };
                let ve = self.coerce(val, t)?;
                return Ok(Te::new(
                    Expr::Call {
                        f: FuncImpl::Builtin(f),
                        args: vec![unit_e, ve],
                        strict: true,
                    },
                    Type::Numeric,
                    pos,
                ));
            }
            _ => {}
        }
        // Candidates: server functions, then built-ins with a signature no server one shadows.
        let servers = self.catalog.functions(name);
        let builtins: Vec<&crate::func::BuiltinDef> = BUILTINS
            .iter()
            .filter(|b| b.name == name && !servers.iter().any(|s| s.args == b.args))
            .collect();
        let mut cands: Vec<&[Type]> = servers.iter().map(|s| s.args.as_slice()).collect();
        cands.extend(builtins.iter().map(|b| b.args));
        let idx = match func::select_candidate(&tys, &cands) {
            Ok(Some(i)) => i,
            Ok(None) => return Err(self.no_function(name, &tys, pos)),
            Err(()) => {
                return Err(QueryError::new(
                    sqlstate::AMBIGUOUS_FUNCTION,
                    format!("function {name}({}) is not unique", type_list(&tys)),
                )
                .with_hint(not_unique_hint())
                .at(pos))
            }
        };
        let decl: Vec<Type> = cands[idx].to_vec();
        let mut exprs = Vec::new();
        for (a, d) in args.into_iter().zip(decl.iter()) {
            exprs.push(self.coerce(a, *d)?);
        }
        if idx < servers.len() {
            let s = servers[idx].clone();
            let ret = s.result;
            let strict = s.strict;
            Ok(Te::new(
                Expr::Call {
                    f: FuncImpl::Server(s),
                    args: exprs,
                    strict,
                },
                ret,
                pos,
            ))
        } else {
            let b = builtins[idx - servers.len()];
            Ok(Te::new(
                Expr::Call {
                    f: FuncImpl::Builtin(b.imp),
                    args: exprs,
                    strict: true,
                },
                b.ret,
                pos,
            ))
        }
    }

    fn aggregate(
        &mut self,
        kind: AggKind,
        name: &str,
        f: &ast::Function,
        pos: Option<u32>,
    ) -> Result<Te> {
        match self.clause {
            Clause::Target | Clause::Having | Clause::OrderBy => {}
            Clause::AggArg => {
                return Err(QueryError::new(
                    sqlstate::GROUPING_ERROR,
                    "aggregate function calls cannot be nested",
                )
                .at(pos))
            }
            c => {
                return Err(QueryError::new(
                    sqlstate::GROUPING_ERROR,
                    format!("aggregate functions are not allowed in {}", c.name()),
                )
                .at(pos))
            }
        }
        let list = match &f.args {
            ast::FunctionArguments::List(l) => l,
            _ => return Err(self.no_function(name, &[], pos)),
        };
        let distinct = matches!(
            list.duplicate_treatment,
            Some(ast::DuplicateTreatment::Distinct)
        );
        let mut order: Vec<(Expr, bool, bool)> = Vec::new();
        let saved = self.clause;
        self.clause = Clause::AggArg;
        let mut args = Vec::new();
        let mut star = false;
        for a in &list.args {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                    args.push(self.expr(e)?)
                }
                _ => {
                    self.clause = saved;
                    return Err(
                        QueryError::not_supported("this argument form is not supported").at(pos),
                    );
                }
            }
        }
        for c in &list.clauses {
            match c {
                ast::FunctionArgumentClause::OrderBy(items) => {
                    for it in items {
                        let desc = matches!(it.options.sort, Some(ast::OrderBySort::Desc));
                        let nf = it.options.nulls_first.unwrap_or(desc);
                        let te = self.expr(&it.expr)?;
                        let e = self.coerce(te, Type::Unknown)?;
                        order.push((e, desc, nf));
                    }
                }
                _ => {
                    self.clause = saved;
                    return Err(QueryError::not_supported(
                        "this aggregate clause is not supported",
                    )
                    .at(pos));
                }
            }
        }
        let filter = match &f.filter {
            Some(x) => {
                let te = self.expr(x)?;
                Some(Box::new(self.bool_operand(te, "FILTER")?))
            }
            None => None,
        };
        self.clause = saved;
        let tys: Vec<Type> = args.iter().map(|t| t.ty).collect();
        if star {
            if kind != AggKind::Count || !args.is_empty() {
                return Err(QueryError::new(
                    sqlstate::WINDOWING_ERROR,
                    format!("{name}(*) must be used to call a parameterless aggregate function"),
                )
                .at(pos));
            }
            let _ = order;
            return Ok(Te::new(
                Expr::Agg(Box::new(AggCall {
                    kind: AggKind::CountStar,
                    args: vec![],
                    distinct: false,
                    arg_type: Type::Int8,
                    filter,
                    order: vec![],
                })),
                Type::Int8,
                pos,
            ));
        }
        let (decl, ret): (Vec<Type>, Type) = match kind {
            AggKind::Count if args.len() == 1 => {
                let t = if tys[0] == Type::Unknown {
                    Type::Text
                } else {
                    tys[0]
                };
                (vec![t], Type::Int8)
            }
            AggKind::Sum | AggKind::Avg if args.len() == 1 => {
                let cands: &[&[Type]] = &[
                    &[Type::Int2],
                    &[Type::Int4],
                    &[Type::Int8],
                    &[Type::Numeric],
                    &[Type::Float8],
                    &[Type::Interval],
                ];
                let i = match func::select_candidate(&tys, cands) {
                    Ok(Some(i)) => i,
                    Ok(None) => return Err(self.no_function(name, &tys, pos)),
                    Err(()) => {
                        return Err(QueryError::new(
                            sqlstate::AMBIGUOUS_FUNCTION,
                            format!("function {name}({}) is not unique", type_list(&tys)),
                        )
                        .with_hint(not_unique_hint())
                        .at(pos))
                    }
                };
                let t = cands[i][0];
                let ret = match (kind, t) {
                    (AggKind::Sum, Type::Int2 | Type::Int4) => Type::Int8,
                    (AggKind::Sum, Type::Int8) => Type::Numeric,
                    (AggKind::Avg, Type::Int2 | Type::Int4 | Type::Int8) => Type::Numeric,
                    (_, t) => t,
                };
                (vec![t], ret)
            }
            AggKind::Min | AggKind::Max if args.len() == 1 => {
                let t = if tys[0] == Type::Unknown {
                    Type::Text
                } else {
                    tys[0]
                };
                if self.comparison_type(t, t).is_none() || matches!(t, Type::Bool | Type::Xid) {
                    return Err(self.no_function(name, &tys, pos));
                }
                (vec![t], t)
            }
            AggKind::StringAgg if args.len() == 2 => {
                for t in &tys {
                    if !matches!(t, Type::Text | Type::Name | Type::Unknown) {
                        return Err(self.no_function(name, &tys, pos));
                    }
                }
                (vec![Type::Text, Type::Text], Type::Text)
            }
            AggKind::BoolAnd | AggKind::BoolOr if args.len() == 1 => {
                if !matches!(tys[0], Type::Bool | Type::Unknown) {
                    return Err(self.no_function(name, &tys, pos));
                }
                (vec![Type::Bool], Type::Bool)
            }
            _ => return Err(self.no_function(name, &tys, pos)),
        };
        let mut exprs = Vec::new();
        for (a, d) in args.into_iter().zip(decl.iter()) {
            exprs.push(self.coerce(a, *d)?);
        }
        Ok(Te::new(
            Expr::Agg(Box::new(AggCall {
                kind,
                args: exprs,
                distinct,
                arg_type: decl[0],
                filter,
                order,
            })),
            ret,
            pos,
        ))
    }
}

/// Where an expression starts, found without walking the whole tree (sqlparser's
/// `Spanned::span` visits every node, which is quadratic and deep on long operator chains).
fn start_of(mut e: &ast::Expr) -> Location {
    use ast::Expr as E;
    loop {
        e = match e {
            E::BinaryOp { left, .. } => left,
            E::Cast {
                kind: ast::CastKind::DoubleColon,
                expr,
                ..
            } => expr,
            E::IsNull(x)
            | E::IsNotNull(x)
            | E::IsTrue(x)
            | E::IsNotTrue(x)
            | E::IsFalse(x)
            | E::IsNotFalse(x) => x,
            E::IsUnknown(x)
            | E::IsNotUnknown(x)
            | E::IsDistinctFrom(x, _)
            | E::IsNotDistinctFrom(x, _) => x,
            E::Like { expr, .. }
            | E::ILike { expr, .. }
            | E::Between { expr, .. }
            | E::In { expr, .. } => expr,
            E::Identifier(i) => return i.span.start,
            E::Value(v) => return v.span.start,
            other => return other.span().start,
        };
    }
}

fn unreachable_select() -> &'static ast::Expr {
    static NULL: std::sync::OnceLock<ast::Expr> = std::sync::OnceLock::new();
    NULL.get_or_init(|| ast::Expr::value(ast::Value::Null))
}

fn internal() -> QueryError {
    QueryError::new(sqlstate::INTERNAL_ERROR, "planner invariant violated")
}

fn uses_columns(e: &Expr) -> bool {
    let mut e = e.clone();
    #[recursive::recursive]
    fn walk(e: &mut Expr) -> bool {
        if matches!(e, Expr::Col(..) | Expr::Agg(_)) {
            return true;
        }
        e.children_mut().into_iter().any(walk)
    }
    walk(&mut e)
}

fn agg_kind(name: &str) -> Option<AggKind> {
    Some(match name {
        "count" => AggKind::Count,
        "sum" => AggKind::Sum,
        "avg" => AggKind::Avg,
        "min" => AggKind::Min,
        "max" => AggKind::Max,
        "string_agg" => AggKind::StringAgg,
        "bool_and" | "every" => AggKind::BoolAnd,
        "bool_or" => AggKind::BoolOr,
        _ => return None,
    })
}

/// The type of a numeric literal: int4 if it fits, else int8, else numeric (scan.l).
fn number_type(s: &str) -> Type {
    if s.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
        if s.parse::<i32>().is_ok() {
            return Type::Int4;
        }
        if s.parse::<i64>().is_ok() {
            return Type::Int8;
        }
    }
    Type::Numeric
}

fn number_literal(s: &str) -> Result<Datum> {
    Ok(match number_type(s) {
        Type::Int4 => Datum::Int4(s.parse().unwrap_or(0)),
        Type::Int8 => Datum::Int8(s.parse().unwrap_or(0)),
        _ => Datum::Numeric(crate::numeric::Numeric::parse(s)?),
    })
}

fn concat(a: &[Datum], _: &mut crate::expr::EvalCx<'_>) -> Result<Datum> {
    let mut out = String::new();
    for d in a {
        if let Datum::Text(s) = d {
            out.push_str(s);
        }
    }
    Ok(Datum::Text(out))
}

fn concat_ws(a: &[Datum], _: &mut crate::expr::EvalCx<'_>) -> Result<Datum> {
    let sep = match a.first() {
        Some(Datum::Text(s)) => s.clone(),
        _ => return Ok(Datum::Null),
    };
    let parts: Vec<&str> = a[1..]
        .iter()
        .filter_map(|d| match d {
            Datum::Text(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    Ok(Datum::Text(parts.join(&sep)))
}

fn extract_ts_fn(a: &[Datum], cx: &mut crate::expr::EvalCx<'_>) -> Result<Datum> {
    match (&a[0], &a[1]) {
        (Datum::Text(u), Datum::Timestamptz(t)) => {
            func::extract_result(func::extract_ts(u, *t, &cx.tz))
        }
        _ => Ok(Datum::Null),
    }
}

fn extract_iv_fn(a: &[Datum], _: &mut crate::expr::EvalCx<'_>) -> Result<Datum> {
    match (&a[0], &a[1]) {
        (Datum::Text(u), Datum::Interval(v)) => Ok(Datum::Numeric(func::extract_iv(u, v)?)),
        _ => Ok(Datum::Null),
    }
}
