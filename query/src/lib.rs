//! The query layer: SQL text in, typed rows out — PostgreSQL's parser/, executor/ and
//! utils/adt/ in miniature, over in-memory rows only. No tables, no storage, no transactions:
//! this is what lets an operator look at a pgipc server with SQL (`SELECT now()`,
//! `SELECT * FROM pg_settings WHERE ...`, `SELECT pg_cancel_backend(123)`).
//!
//! ```text
//!  SQL text ──► sqlparser (PostgreSQL dialect, token spans) ──► AST
//!       │ 42601 with the 1-based position of the token, 54001 for runaway nesting
//!       ▼
//!  analyze::Planner: names, PostgreSQL's type resolution and coercion, default column
//!       │ names, grouping checks  (42703, 42883 + HINT, 42804, 42725, 42803, 22P02 ...)
//!       ▼
//!  Prepared (a Plan: result columns with type OIDs, inferred $n parameter types)
//!       │ execute(params, &dyn Session), then next_row(&mut dyn Session) per row
//!       ▼
//!  Rows: a pull pipeline  source ─► WHERE ─► [GROUP BY/aggregates ─► HAVING] ─► targets
//!        ─► [DISTINCT] ─► [ORDER BY] ─► OFFSET/LIMIT; rows are Datums, printed by
//!        Datum::to_text exactly as PostgreSQL's output functions print them.
//! ```
//!
//! What is here:
//! - Types ([`Type`]): bool, int2/int4/int8, numeric (arbitrary precision with PostgreSQL's
//!   display scales, [`numeric::Numeric`]), float8 (shortest-exact output), text, name,
//!   timestamptz, interval, oid, text\[\] (view columns), void, and xid8, pg_snapshot and
//!   txid_snapshot (full transaction ids and snapshots, [`PgSnapshot`]), xid (32-bit ids,
//!   `=` and `<>` only), inet (addresses, [`Inet`]) and regtype (what `pg_typeof`
//!   returns); their input, output,
//!   casts and operators with overflow checks (22003), division by zero (22012) and
//!   NULL logic.
//! - SELECT with one FROM item (a backend [`View`] or a set-returning function: the built-in
//!   `generate_series` and `pg_snapshot_xip`, or a backend [`SetFunction`] such as
//!   `pg_stat_get_activity`; a one-column one may also be a FROM-less SELECT's whole
//!   target), WHERE, GROUP BY
//!   with count/sum/avg/min/max/string_agg/bool_and/bool_or (DISTINCT, FILTER, ORDER BY
//!   inside), HAVING, ORDER BY (position, alias, expression; NULLS FIRST/LAST),
//!   DISTINCT, LIMIT/OFFSET, `$n` parameters; `SHOW name`; SET/RESET/SHOW ALL and
//!   transaction commands are recognised and handed back as [`Statement`]s.
//! - Functions that need no server state (string, math, date/time, `pg_size_pretty`...),
//!   and the extension points the backend fills: [`Session`] (settings through
//!   `current_setting`/`set_config`, TimeZone, clock, notices, interrupts), [`Catalog`]
//!   ([`ServerFunction`]s such as `pg_backend_pid`, [`View`]s such as `pg_settings`).
//!   [`GucSession`] is a [`Session`] over `pgipc_guc::Settings`.
//!
//! Untrusted text cannot crash the process: every recursion either grows its stack on
//! demand (sqlparser's `recursive-protection`, `#[recursive]` in the planner and evaluator)
//! or runs on a segment sized by the statement's length; past 3000 operators, 500 levels
//! of parser nesting or 3500 of expression depth the answer is 54001. Arithmetic is checked
//! everywhere (22003, 22012); `tests/no_panic.rs` and the `query` fuzz target hold that up.
//!
//! What is not: joins, subqueries, CTEs, set operations, window functions (all 0A000 with
//! a message saying so), tables, DML, other types (date, timestamp without time zone,
//! real, varchar, json... are refused as not supported), collations other than C (text
//! compares bytewise; upper/lower/ILIKE fold ASCII only, as PostgreSQL's C locale does),
//! `to_char`, regular expressions. Nothing here touches shared memory or blocks.
//!
//! Wired in by tcop: the backend implements [`Session`] over its `pgipc_guc::Settings`,
//! registers `version()`, `pg_backend_pid()`, `pg_sleep()`... as [`ServerFunction`]s (and the
//! host's views) in one [`Catalog`], answers a Query with [`parse_each`] (through
//! [`StatementCache`]), Parse likewise (reporting [`Prepared::param_types`] and
//! [`Prepared::columns`] in ParameterDescription/RowDescription), Bind with
//! [`Prepared::params_from_text`], and applies the [`Statement::Set`]/[`Statement::Reset`]/
//! [`Statement::ShowAll`]/[`Statement::Transaction`] it gets back itself.
//!
//! Entry points: [`parse`] and [`parse_each`] (text to [`Statement`]s), [`Prepared::execute`],
//! [`Rows::next_row`], and [`StatementCache`] so a repeated `SELECT 1` skips parsing.

mod analyze;
pub mod datetime;
mod error;
mod exec;
mod expr;
mod func;
mod network;
pub mod numeric;
mod session;
mod types;
mod value;
mod xid8;

use std::collections::HashMap;
use std::rc::Rc;

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

pub use crate::datetime::{Interval, TimeZone};
pub use crate::error::{sqlstate, QueryError, Result, SqlState};
pub use crate::exec::Rows;
pub use crate::network::Inet;
pub use crate::session::{
    system_now, Catalog, Column, GucSession, RowIter, ServerFn, ServerFunction, Session, SetFn,
    SetFunction, View, Volatility,
};
pub use crate::types::Type;
pub use crate::value::{format_float8, Datum};
pub use crate::xid8::PgSnapshot;

/// How deep the parser may recurse (parentheses, unary operators, nested calls).
const MAX_PARSE_DEPTH: usize = 500;
/// How many operator tokens one statement may hold (a left-deep `1+1+...` chain builds a
/// tree as deep as it is long).
const MAX_OPERATORS: usize = 3000;

/// A parsed statement.
#[derive(Debug)]
pub enum Statement {
    /// A SELECT (or `SHOW name`), ready to execute.
    Query(Prepared),
    /// `SET [LOCAL] name TO value` (`value` None for `DEFAULT`); list values are joined
    /// with ", " as PostgreSQL's `flatten_set_args` does for unquoted items.
    Set {
        /// Setting name, lower case unless quoted.
        name: String,
        /// The value, None for `DEFAULT`.
        value: Option<String>,
        /// `SET LOCAL`.
        local: bool,
    },
    /// `RESET name` (None: `RESET ALL`).
    Reset(Option<String>),
    /// `SHOW ALL`.
    ShowAll,
    /// COMMIT / END / ROLLBACK / ABORT: the command tag.
    Transaction(&'static str),
    /// `BEGIN` / `START TRANSACTION` with its modes: (setting, value) pairs such as
    /// `("transaction_isolation", "repeatable read")` or `("transaction_read_only", "on")`.
    Begin {
        /// Spelled `START TRANSACTION` (its command tag), not `BEGIN`.
        start: bool,
        /// (setting, value) pairs.
        modes: Vec<(&'static str, String)>,
    },
    /// `SET TRANSACTION modes` (`session` false) or `SET SESSION CHARACTERISTICS AS
    /// TRANSACTION modes` (`session` true; the settings are the `default_transaction_*` ones).
    SetTransaction {
        /// `SESSION CHARACTERISTICS AS`.
        session: bool,
        /// (setting, value) pairs.
        modes: Vec<(&'static str, String)>,
    },
    /// `SAVEPOINT name`.
    Savepoint(String),
    /// `RELEASE [SAVEPOINT] name`.
    Release(String),
    /// `ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] name`.
    RollbackTo(String),
    /// Only whitespace and comments.
    Empty,
}

/// A planned SELECT: its result columns and parameter types; execute it any number of
/// times.
#[derive(Debug, Clone)]
pub struct Prepared {
    plan: Rc<exec::Plan>,
    show: bool,
}

impl Prepared {
    /// Whether this is `SHOW name` (command tag `SHOW`) rather than a SELECT (`SELECT n`).
    pub fn is_show(&self) -> bool {
        self.show
    }

    /// The result columns: names (PostgreSQL's defaults: `?column?`, the function or cast
    /// type name) and types.
    pub fn columns(&self) -> &[Column] {
        &self.plan.columns
    }

    /// The types of `$1..$n` (given by the caller or inferred from their use).
    pub fn param_types(&self) -> &[Type] {
        &self.plan.params
    }

    /// Converts text parameter values (NULL = None) with each parameter type's input function.
    pub fn params_from_text(
        &self,
        values: &[Option<&str>],
        session: &dyn Session,
    ) -> Result<Vec<Datum>> {
        if values.len() != self.plan.params.len() {
            return Err(QueryError::new(
                sqlstate::PROTOCOL_VIOLATION,
                format!(
                    "bind message supplies {} parameters, but prepared statement \"\" requires {}",
                    values.len(),
                    self.plan.params.len()
                ),
            ));
        }
        let tz = session.time_zone();
        let cx = value::CastCtx {
            tz: &tz,
            now: session.transaction_timestamp(),
        };
        values
            .iter()
            .zip(self.plan.params.iter())
            .map(|(v, t)| match v {
                None => Ok(Datum::Null),
                Some(s) => value::from_text(s, *t, cx),
            })
            .collect()
    }

    /// Starts executing; rows come from [`Rows::next_row`].
    pub fn execute(&self, params: Vec<Datum>, session: &dyn Session) -> Rows {
        Rows::new(self.plan.clone(), params, session)
    }
}

/// Whether an error carries a token for `at or near`.
fn token_text(
    sql: &str,
    tokens: &[TokenWithSpan],
    loc: Location,
    starts: &[usize],
) -> Option<(String, u32)> {
    let t = tokens
        .iter()
        .find(|t| t.span.start == loc && !matches!(t.token, Token::Whitespace(_)))?;
    let off = |l: Location| -> Option<usize> {
        Some(*starts.get(l.line as usize - 1)? + l.column as usize - 1)
    };
    let a = off(t.span.start)?;
    let b = off(t.span.end).unwrap_or(a + 1).max(a + 1);
    let text: String = sql.chars().skip(a).take(b - a).collect();
    Some((text, a as u32 + 1))
}

fn line_starts(sql: &str) -> Vec<usize> {
    let mut v = vec![0];
    for (i, c) in sql.chars().enumerate() {
        if c == '\n' {
            v.push(i + 1);
        }
    }
    v
}

fn syntax_error_from(msg: &str, sql: &str, tokens: &[TokenWithSpan]) -> QueryError {
    let starts = line_starts(sql);
    let end = || {
        QueryError::syntax("syntax error at end of input").at(Some(sql.chars().count() as u32 + 1))
    };
    // "... at Line: L, Column: C"
    let loc = msg.rfind(" at Line: ").and_then(|i| {
        let rest = &msg[i + " at Line: ".len()..];
        let (l, c) = rest.split_once(", Column: ")?;
        Some(Location {
            line: l.trim().parse().ok()?,
            column: c.trim().parse().ok()?,
        })
    });
    if msg.contains("found: EOF") {
        return end();
    }
    // sqlparser takes `SELECT * FORM x` as `*` with an alias; PostgreSQL allows no alias
    // there and stops at the word after the star.
    let loc = loc.map(|l| {
        let i = match tokens.iter().position(|t| t.span.start == l) {
            Some(i) => i,
            None => return l,
        };
        let prev = |mut k: usize| -> Option<usize> {
            while k > 0 {
                k -= 1;
                if !matches!(tokens[k].token, Token::Whitespace(_)) {
                    return Some(k);
                }
            }
            None
        };
        if let Some(w) = prev(i) {
            if matches!(tokens[w].token, Token::Word(_)) {
                if let Some(st) = prev(w) {
                    if matches!(tokens[st].token, Token::Mul) {
                        return tokens[w].span.start;
                    }
                }
            }
        }
        l
    });
    match loc {
        Some(l) => match token_text(sql, tokens, l, &starts) {
            Some((t, p)) => {
                QueryError::syntax(format!("syntax error at or near \"{t}\"")).at(Some(p))
            }
            None => end(),
        },
        None => end(),
    }
}

/// Tokenizes and parses `sql` into sqlparser statements, with PostgreSQL's syntax errors.
fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>> {
    let dialect = PostgreSqlDialect {};
    match Tokenizer::new(&dialect, sql).tokenize_with_location() {
        Ok(t) => Ok(t),
        Err(e) => {
            let starts = line_starts(sql);
            let pos = starts
                .get((e.location.line as usize).saturating_sub(1))
                .map(|s| (*s + e.location.column as usize) as u32);
            let rest: String = pos
                .map(|p| sql.chars().skip(p as usize - 1).collect())
                .unwrap_or_default();
            let m = if e.message.to_lowercase().contains("unterminated") {
                if rest.starts_with('"') {
                    format!("unterminated quoted identifier at or near \"{rest}\"")
                } else if rest.starts_with("/*") {
                    format!("unterminated /* comment at or near \"{rest}\"")
                } else if rest.starts_with('$') {
                    format!("unterminated dollar-quoted string at or near \"{rest}\"")
                } else {
                    format!("unterminated quoted string at or near \"{rest}\"")
                }
            } else {
                format!(
                    "syntax error at or near \"{}\"",
                    rest.chars().next().map(String::from).unwrap_or_default()
                )
            };
            Err(QueryError::syntax(m).at(pos))
        }
    }
}

fn parse_ast(
    sql: &str,
    tokens: Vec<TokenWithSpan>,
) -> Result<(Vec<ast::Statement>, Vec<TokenWithSpan>)> {
    let dialect = PostgreSqlDialect {};
    let ops = tokens
        .iter()
        .filter(|t| {
            !matches!(
                t.token,
                Token::Whitespace(_)
                    | Token::Word(_)
                    | Token::Number(..)
                    | Token::SingleQuotedString(_)
                    | Token::Comma
            )
        })
        .count();
    if ops > MAX_OPERATORS {
        return Err(QueryError::too_deep());
    }
    let kept = tokens.clone();
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(MAX_PARSE_DEPTH)
        .with_tokens_with_locations(tokens);
    match parser.parse_statements() {
        Ok(s) => Ok((s, kept)),
        Err(ParserError::RecursionLimitExceeded) => Err(QueryError::too_deep()),
        Err(ParserError::ParserError(m)) | Err(ParserError::TokenizerError(m)) => {
            // sqlparser sometimes reports its depth limit as a syntax error (when it hits
            // it while trying an alternative): judge by the nesting the tokens show.
            if nesting_estimate(&kept) >= MAX_PARSE_DEPTH {
                return Err(QueryError::too_deep());
            }
            Err(syntax_error_from(&m, sql, &kept))
        }
    }
}

/// Deepest nesting the tokens can build: open parentheses plus a run of prefix operators.
fn nesting_estimate(tokens: &[TokenWithSpan]) -> usize {
    let (mut depth, mut run, mut max) = (0usize, 0usize, 0usize);
    for t in tokens {
        match &t.token {
            Token::Whitespace(_) => continue,
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Minus | Token::Plus => run += 1,
            Token::Word(w) if w.value.eq_ignore_ascii_case("not") => run += 1,
            _ => run = 0,
        }
        max = max.max(depth + run);
    }
    max
}

fn flatten_set_value(v: &ast::Expr) -> String {
    match v {
        ast::Expr::Value(x) => match &x.value {
            ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => s.clone(),
            ast::Value::Number(n, _) => n.clone(),
            ast::Value::Boolean(b) => if *b { "true" } else { "false" }.into(),
            other => other.to_string(),
        },
        ast::Expr::Identifier(i) => i.value.to_lowercase(),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => format!("-{}", flatten_set_value(expr)),
        other => other.to_string(),
    }
}

/// Parses and plans `sql` (one or more statements separated by `;`). `param_types` gives
/// the types of `$1..` the client declared (None: infer from use). Errors carry PostgreSQL's
/// SQLSTATE, message, hint and 1-based position.
pub fn parse(sql: &str, param_types: &[Option<Type>], catalog: &Catalog) -> Result<Vec<Statement>> {
    let tokens = tokenize(sql)?;
    // Nesting is bounded by the number of tokens. Parsing and planning recurse over the
    // tree, and not every recursion (sqlparser's span and drop code) can check the stack:
    // a long statement runs on a stack segment sized for its length (mapped lazily, so
    // only the pages used cost memory).
    let n = tokens.len();
    if n > SMALL_STATEMENT_TOKENS {
        let size = n.saturating_mul(STACK_PER_TOKEN).min(MAX_STATEMENT_STACK);
        stacker::grow(size, || parse_tokens(sql, tokens, param_types, catalog))
    } else {
        parse_tokens(sql, tokens, param_types, catalog)
    }
}

/// Parses `sql` and plans each statement on its own, as PostgreSQL's simple Query does: a
/// syntax error anywhere is the outer error (nothing runs); a statement that does not plan
/// (an unknown column, a bad literal) is its own inner error, reported when its turn comes.
pub fn parse_each(
    sql: &str,
    param_types: &[Option<Type>],
    catalog: &Catalog,
) -> Result<Vec<Result<Statement>>> {
    let tokens = tokenize(sql)?;
    let n = tokens.len();
    let go = move || -> Result<Vec<Result<Statement>>> {
        let (stmts, tokens) = parse_ast(sql, tokens)?;
        if stmts.is_empty() {
            return Ok(vec![Ok(Statement::Empty)]);
        }
        Ok(stmts
            .iter()
            .map(|s| plan_statement(s, sql, &tokens, param_types, catalog))
            .collect())
    };
    if n > SMALL_STATEMENT_TOKENS {
        let size = n.saturating_mul(STACK_PER_TOKEN).min(MAX_STATEMENT_STACK);
        stacker::grow(size, go)
    } else {
        go()
    }
}

/// Statements with at most this many tokens run on the caller's stack.
const SMALL_STATEMENT_TOKENS: usize = 48;
/// Stack reserved per token of a longer statement (a debug build's parser frames are large).
const STACK_PER_TOKEN: usize = 64 * 1024;
/// The largest stack segment a statement gets.
const MAX_STATEMENT_STACK: usize = 1 << 30;

fn parse_tokens(
    sql: &str,
    tokens: Vec<TokenWithSpan>,
    param_types: &[Option<Type>],
    catalog: &Catalog,
) -> Result<Vec<Statement>> {
    let (stmts, tokens) = parse_ast(sql, tokens)?;
    if stmts.is_empty() {
        return Ok(vec![Statement::Empty]);
    }
    let mut out = Vec::with_capacity(stmts.len());
    for s in stmts {
        out.push(plan_statement(&s, sql, &tokens, param_types, catalog)?);
    }
    Ok(out)
}

/// Parses and plans exactly one SELECT (the extended protocol's Parse message).
pub fn prepare(sql: &str, param_types: &[Option<Type>], catalog: &Catalog) -> Result<Prepared> {
    let mut v = parse(sql, param_types, catalog)?;
    if v.len() != 1 {
        return Err(QueryError::syntax(
            "cannot insert multiple commands into a prepared statement",
        ));
    }
    match v.pop() {
        Some(Statement::Query(p)) => Ok(p),
        _ => Err(QueryError::not_supported(
            "only SELECT and SHOW can be prepared here",
        )),
    }
}

fn plan_statement(
    s: &ast::Statement,
    sql: &str,
    tokens: &[TokenWithSpan],
    param_types: &[Option<Type>],
    catalog: &Catalog,
) -> Result<Statement> {
    use ast::Statement as S;
    match s {
        S::Query(q) => {
            let mut p = analyze::Planner::new(catalog, sql, tokens, param_types);
            let plan = p.plan_query(q)?;
            Ok(Statement::Query(Prepared {
                plan: Rc::new(plan),
                show: false,
            }))
        }
        S::ShowVariable { variable } => {
            let names: Vec<String> = variable.iter().map(|i| i.value.to_lowercase()).collect();
            let name = names.join(" ");
            if name == "all" {
                return Ok(Statement::ShowAll);
            }
            // The grammar's multi-word names; otherwise the parts are a dotted name
            // (`SHOW myext.setting`).
            let name = match name.as_str() {
                "time zone" => "timezone".to_owned(),
                "transaction isolation level" => "transaction_isolation".to_owned(),
                "session authorization" => "session_authorization".to_owned(),
                _ => names.join("."),
            };
            let quoted = name.replace('\'', "''");
            // The column is named as the setting is spelled (`SHOW timezone` gives `TimeZone`).
            let column = pgipc_guc::Def::find(&name)
                .map(|d| d.name)
                .filter(|n| !n.is_empty())
                .unwrap_or(&name);
            let select = format!(
                "SELECT current_setting('{quoted}') AS \"{}\"",
                column.replace('"', "\"\"")
            );
            match parse(&select, &[], catalog)?.pop() {
                Some(Statement::Query(mut p)) => {
                    p.show = true;
                    Ok(Statement::Query(p))
                }
                _ => Err(QueryError::new(
                    sqlstate::INTERNAL_ERROR,
                    "SHOW did not plan",
                )),
            }
        }
        S::Set(ast::Set::SetTransaction {
            modes,
            snapshot: None,
            session,
        }) => Ok(Statement::SetTransaction {
            session: *session,
            modes: transaction_modes(modes, *session)?,
        }),
        S::Set(set) => plan_set(set),
        S::Reset(r) => match &r.reset {
            ast::Reset::ALL => Ok(Statement::Reset(None)),
            ast::Reset::SessionAuthorization => {
                Ok(Statement::Reset(Some("session_authorization".into())))
            }
            ast::Reset::ConfigurationParameter(n) => Ok(Statement::Reset(Some(
                n.to_string().trim_matches('"').to_lowercase(),
            ))),
        },
        S::StartTransaction { modes, begin, .. } => Ok(Statement::Begin {
            start: !*begin,
            modes: transaction_modes(modes, false)?,
        }),
        S::Savepoint { name } => Ok(Statement::Savepoint(ident_name(name))),
        S::ReleaseSavepoint { name } => Ok(Statement::Release(ident_name(name))),
        S::Commit { .. } => Ok(Statement::Transaction("COMMIT")),
        S::Rollback {
            savepoint: Some(name),
            ..
        } => Ok(Statement::RollbackTo(ident_name(name))),
        S::Rollback { .. } => Ok(Statement::Transaction("ROLLBACK")),
        other => {
            let kw = other.to_string();
            let kw = kw.split_whitespace().next().unwrap_or("").to_uppercase();
            Err(QueryError::not_supported(format!(
                "{kw} is not supported by pgipc: it has no tables"
            )))
        }
    }
}

/// An identifier as PostgreSQL folds it: lower case unless quoted.
fn ident_name(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// A transaction's modes as the settings they set (PostgreSQL's `transaction_mode_list`):
/// `transaction_isolation` / `transaction_read_only`, or their `default_` forms for
/// `SET SESSION CHARACTERISTICS`.
fn transaction_modes(
    modes: &[ast::TransactionMode],
    session: bool,
) -> Result<Vec<(&'static str, String)>> {
    use ast::{TransactionAccessMode as A, TransactionIsolationLevel as L, TransactionMode as M};
    modes
        .iter()
        .map(|m| {
            let (name, default, value) = match m {
                M::IsolationLevel(l) => (
                    "transaction_isolation",
                    "default_transaction_isolation",
                    match l {
                        L::ReadUncommitted => "read uncommitted",
                        L::ReadCommitted => "read committed",
                        L::RepeatableRead => "repeatable read",
                        L::Serializable => "serializable",
                        L::Snapshot => {
                            return Err(QueryError::new(
                                sqlstate::SYNTAX_ERROR,
                                "syntax error at or near \"SNAPSHOT\"",
                            ))
                        }
                    },
                ),
                M::AccessMode(a) => (
                    "transaction_read_only",
                    "default_transaction_read_only",
                    match a {
                        A::ReadOnly => "on",
                        A::ReadWrite => "off",
                    },
                ),
            };
            Ok((if session { default } else { name }, value.to_owned()))
        })
        .collect()
}

/// One argument of `SET name TO ...` as the grammar's `var_value` sees it.
fn set_arg(v: &ast::Expr) -> (bool, String) {
    match v {
        ast::Expr::Value(x) => match &x.value {
            ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
                (false, s.clone())
            }
            ast::Value::Number(n, _) => (true, n.clone()),
            ast::Value::Boolean(b) => (false, if *b { "true" } else { "false" }.into()),
            other => (false, other.to_string()),
        },
        ast::Expr::Identifier(i) if i.quote_style.is_some() => (false, i.value.clone()),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => {
            let (num, inner) = set_arg(expr);
            (num, format!("-{inner}"))
        }
        _ => (false, flatten_set_value(v)),
    }
}

/// The value of `SET name TO args` (PostgreSQL's `flatten_set_variable_args`: list settings
/// join their items, quoting identifiers where the list quotes; others take one argument).
fn set_value(name: &str, values: &[ast::Expr]) -> Result<String> {
    let args: Vec<(bool, String)> = values.iter().map(set_arg).collect();
    let args: Vec<pgipc_guc::SetArg<'_>> = args
        .iter()
        .map(|(num, t)| {
            if *num {
                pgipc_guc::SetArg::Number(t)
            } else {
                pgipc_guc::SetArg::Text(t)
            }
        })
        .collect();
    Ok(pgipc_guc::flatten_set_args(name, &args)?)
}

fn plan_set(set: &ast::Set) -> Result<Statement> {
    match set {
        ast::Set::SingleAssignment {
            scope,
            hivevar: _,
            variable,
            values,
        } => {
            let local = matches!(scope, Some(ast::ContextModifier::Local));
            let name = match variable.0.as_slice() {
                [ast::ObjectNamePart::Identifier(i)] if i.quote_style.is_some() => i.value.clone(),
                _ => variable.to_string().to_lowercase(),
            };
            let name = name.trim_matches('"').to_owned();
            if values.len() == 1 {
                if let ast::Expr::Identifier(i) = &values[0] {
                    if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") {
                        return Ok(Statement::Set {
                            name,
                            value: None,
                            local,
                        });
                    }
                }
            }
            let value = set_value(&name, values)?;
            Ok(Statement::Set {
                name,
                value: Some(value),
                local,
            })
        }
        ast::Set::SetTimeZone { local, value } => {
            // SET TIME ZONE LOCAL / DEFAULT: back to the default.
            if let ast::Expr::Identifier(i) = value {
                if i.quote_style.is_none()
                    && (i.value.eq_ignore_ascii_case("local")
                        || i.value.eq_ignore_ascii_case("default"))
                {
                    return Ok(Statement::Set {
                        name: "timezone".into(),
                        value: None,
                        local: *local,
                    });
                }
            }
            Ok(Statement::Set {
                name: "timezone".into(),
                value: Some(set_value("timezone", std::slice::from_ref(value))?),
                local: *local,
            })
        }
        _ => Err(QueryError::not_supported(
            "this form of SET is not supported",
        )),
    }
}

/// A cache of planned statements keyed by text and declared parameter types, so that a
/// repeated statement (`SELECT 1` under pgbench) is parsed once. Single-threaded, bounded.
#[derive(Debug, Default)]
pub struct StatementCache {
    map: HashMap<(String, Vec<Option<Type>>), Prepared>,
}

impl StatementCache {
    /// Most statements kept; the cache is emptied when full (simple and bounded).
    pub const CAPACITY: usize = 256;

    /// An empty cache.
    pub fn new() -> StatementCache {
        StatementCache::default()
    }

    /// The plan of `sql` if it is one SELECT, from the cache or freshly planned. Anything
    /// else (SET, several statements) is planned each time and not cached.
    pub fn parse(
        &mut self,
        sql: &str,
        param_types: &[Option<Type>],
        catalog: &Catalog,
    ) -> Result<Vec<Statement>> {
        let key = (sql.to_owned(), param_types.to_vec());
        if let Some(p) = self.map.get(&key) {
            return Ok(vec![Statement::Query(p.clone())]);
        }
        let v = parse(sql, param_types, catalog)?;
        if let [Statement::Query(p)] = v.as_slice() {
            if self.map.len() >= Self::CAPACITY {
                self.map.clear();
            }
            self.map.insert(key, p.clone());
        }
        Ok(v)
    }

    /// [`parse_each`] through the cache: a string that is one SELECT is planned once.
    pub fn parse_each(
        &mut self,
        sql: &str,
        param_types: &[Option<Type>],
        catalog: &Catalog,
    ) -> Result<Vec<Result<Statement>>> {
        let key = (sql.to_owned(), param_types.to_vec());
        if let Some(p) = self.map.get(&key) {
            return Ok(vec![Ok(Statement::Query(p.clone()))]);
        }
        let v = parse_each(sql, param_types, catalog)?;
        if let [Ok(Statement::Query(p))] = v.as_slice() {
            if self.map.len() >= Self::CAPACITY {
                self.map.clear();
            }
            self.map.insert(key, p.clone());
        }
        Ok(v)
    }

    /// Forgets every plan (call after registering functions or views).
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// A row in text form (None = NULL).
pub type TextRow = Vec<Option<String>>;

/// Runs one SELECT and returns its rows as text (NULL = None): a convenience for tests and
/// tools.
pub fn query_text(
    sql: &str,
    catalog: &Catalog,
    session: &mut dyn Session,
) -> Result<(Vec<Column>, Vec<TextRow>)> {
    let p = prepare(sql, &[], catalog)?;
    let mut rows = p.execute(Vec::new(), session);
    let mut out = Vec::new();
    while let Some(r) = rows.next_row(session)? {
        let tz = rows.time_zone().clone();
        out.push(r.iter().map(|d| d.to_text(&tz)).collect());
    }
    Ok((p.columns().to_vec(), out))
}

/// The built-in functions: name, argument types, result type and volatility (a `pg_proc`
/// listing; special forms such as `coalesce`, `concat`, `extract` and the aggregates are
/// resolved by the planner and not listed).
pub fn builtin_functions() -> impl Iterator<Item = (&'static str, &'static [Type], Type, Volatility)>
{
    func::BUILTINS
        .iter()
        .map(|b| (b.name, b.args, b.ret, b.volatility))
}
