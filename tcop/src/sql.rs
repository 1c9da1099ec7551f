//! The built-in command set: splitting a query string into statements and recognising each
//! one. This is not a SQL parser; it knows a handful of statement shapes and says precisely
//! why it refuses the rest.

use crate::Report;
use pgipc_libpq::{ErrorFields, Severity};

/// A recognised statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    /// Nothing but blanks and comments.
    Empty,
    /// `SELECT <integer>`; the literal's text is kept for values beyond 64 bits.
    SelectInt(IntLit),
    /// `SELECT pg_backend_pid()`.
    BackendPid,
    /// `SELECT pg_sleep(<seconds>)`.
    Sleep(f64),
    /// `SHOW <name>`.
    Show(String),
    /// `SHOW ALL`: name, setting, description of every setting.
    ShowAll,
    /// `SET [SESSION|LOCAL] <name> {=|TO} {<value>, … | DEFAULT}`.
    Set {
        /// The setting's name (lower-cased unless quoted).
        name: String,
        /// The values, or `None` for `DEFAULT`.
        value: Option<Vec<SetValue>>,
        /// `SET LOCAL`.
        local: bool,
    },
    /// `RESET <name>`.
    Reset(String),
    /// `RESET ALL`.
    ResetAll,
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK` / `ABORT`.
    Rollback,
    /// `SELECT name(literal, …)` of a function the hooks may provide.
    Call {
        /// Function name, lower-cased.
        name: String,
        /// Arguments as text (quotes removed).
        args: Vec<String>,
        /// Their SQL types as PostgreSQL would name them (`integer`, `unknown`, …), for the
        /// "function does not exist" message.
        arg_types: Vec<&'static str>,
    },
}

/// One value of a `SET` as the parser saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetValue {
    /// A string literal or an identifier (unquoted identifiers lower-cased).
    Text(String),
    /// A numeric literal.
    Number(String),
}

impl SetValue {
    /// The guc crate's view of it.
    pub(crate) fn as_arg(&self) -> pgipc_guc::SetArg<'_> {
        match self {
            SetValue::Text(t) => pgipc_guc::SetArg::Text(t),
            SetValue::Number(n) => pgipc_guc::SetArg::Number(n),
        }
    }
}

/// An integer literal of a `SELECT`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IntLit {
    /// Fits `int4`.
    Int4(i32),
    /// Fits `int8`.
    Int8(i64),
    /// Larger: `numeric`, kept as text.
    Numeric(String),
}

/// Type OIDs of result columns.
pub(crate) const INT4OID: u32 = 23;
pub(crate) const INT8OID: u32 = 20;
pub(crate) const NUMERICOID: u32 = 1700;
pub(crate) const TEXTOID: u32 = 25;
pub(crate) const VOIDOID: u32 = 2278;

impl Stmt {
    /// The command tag's name (PostgreSQL's `CreateCommandTag`), as the process title shows
    /// while the statement runs.
    pub(crate) fn command_tag(&self) -> &'static str {
        match self {
            Stmt::Empty => "",
            Stmt::SelectInt(_) | Stmt::BackendPid | Stmt::Sleep(_) | Stmt::Call { .. } => "SELECT",
            Stmt::Show(_) | Stmt::ShowAll => "SHOW",
            Stmt::Set { .. } => "SET",
            Stmt::Reset(_) | Stmt::ResetAll => "RESET",
            Stmt::Begin => "BEGIN",
            Stmt::Commit => "COMMIT",
            Stmt::Rollback => "ROLLBACK",
        }
    }

    /// Whether it ends or starts a transaction block (allowed in a failed block: only the
    /// ending ones).
    pub(crate) fn is_transaction_end(&self) -> bool {
        matches!(self, Stmt::Commit | Stmt::Rollback)
    }

    /// The result column (name, type OID, type length), if the statement returns rows.
    /// `call_type` gives the result type of a [`Stmt::Call`].
    pub(crate) fn column(
        &self,
        call_type: impl Fn(&str) -> Option<u32>,
    ) -> Option<(String, u32, i16)> {
        Some(match self {
            Stmt::Call { name, .. } => {
                let oid = call_type(name)?;
                (name.clone(), oid, type_len(oid))
            }
            Stmt::SelectInt(IntLit::Int4(_)) => ("?column?".into(), INT4OID, 4),
            Stmt::SelectInt(IntLit::Int8(_)) => ("?column?".into(), INT8OID, 8),
            Stmt::SelectInt(IntLit::Numeric(_)) => ("?column?".into(), NUMERICOID, -1),
            Stmt::BackendPid => ("pg_backend_pid".into(), INT4OID, 4),
            Stmt::Sleep(_) => ("pg_sleep".into(), VOIDOID, 4),
            Stmt::Show(n) => (n.to_ascii_lowercase(), TEXTOID, -1),
            // The first of three text columns (name, setting, description).
            Stmt::ShowAll => ("name".into(), TEXTOID, -1),
            _ => return None,
        })
    }
}

/// `pg_type.typlen` of the types results may have.
pub(crate) fn type_len(oid: u32) -> i16 {
    match oid {
        INT4OID | VOIDOID => 4,
        INT8OID => 8,
        BOOLOID => 1,
        _ => -1,
    }
}

/// `bool`.
pub(crate) const BOOLOID: u32 = 16;

/// A token with its byte offset in the statement text.
#[derive(Debug, Clone, PartialEq)]
struct Tok<'a> {
    text: &'a str,
    at: usize,
}

/// Splits a simple Query string at top-level semicolons (outside quotes and comments).
/// Each piece comes with its byte offset in `q`. Pieces that are only blanks are kept out,
/// except that an all-blank query gives one empty piece (an EmptyQueryResponse).
pub(crate) fn split_statements(q: &str) -> Vec<(usize, &str)> {
    // Comments are blanked byte for byte, so offsets in `clean` are offsets in `q`.
    let clean = strip_comments(q);
    let b = clean.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote: Option<u8> = None;
    for (i, &c) in b.iter().enumerate() {
        match (quote, c) {
            (Some(qc), _) if c == qc => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b';') => {
                out.push((start, &q[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < q.len() {
        out.push((start, &q[start..]));
    }
    out.retain(|(off, s)| !clean[*off..*off + s.len()].trim().is_empty());
    out
}

/// The text with `--` and `/* */` comments replaced by blanks (offsets are kept).
fn strip_comments(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let quote = b[i];
                i += 1;
                while i < b.len() && b[i] != quote {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let from = i;
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                let to = (i + 2).min(b.len());
                for c in &mut out[from..to] {
                    *c = b' ';
                }
                i = to;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // Only ASCII bytes were replaced by ASCII blanks, and only whole comments.
    String::from_utf8(out).unwrap_or_default()
}

fn tokenize(s: &str) -> Vec<Tok<'_>> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.' || b[i] >= 0x80)
            {
                i += 1;
            }
        } else {
            i += 1;
        }
        // Token boundaries fall on ASCII bytes or the end, so they are char boundaries.
        if let Some(text) = s.get(start..i) {
            toks.push(Tok { text, at: start });
        }
    }
    toks
}

/// Why a statement was refused.
pub(crate) fn syntax_error(near: &str, at: usize) -> Report {
    Box::new(
        ErrorFields::new(
            Severity::Error,
            "42601",
            format!("syntax error at or near \"{near}\""),
        )
        .with_position(u32::try_from(at + 1).unwrap_or(u32::MAX)),
    )
}

fn not_supported(what: &str) -> Report {
    Box::new(
        ErrorFields::new(
            Severity::Error,
            "0A000",
            format!("{what} is not supported by this server"),
        )
        .with_hint(
            "It runs SELECT <integer>, SELECT pg_backend_pid(), SELECT pg_sleep(<seconds>), \
         SHOW, SET, RESET, BEGIN, COMMIT and ROLLBACK.",
        ),
    )
}

/// First words of SQL statements PostgreSQL has and this server does not run.
const KNOWN_COMMANDS: &[&str] = &[
    "abort",
    "alter",
    "analyze",
    "call",
    "checkpoint",
    "close",
    "cluster",
    "comment",
    "copy",
    "create",
    "deallocate",
    "declare",
    "delete",
    "discard",
    "do",
    "drop",
    "execute",
    "explain",
    "fetch",
    "grant",
    "import",
    "insert",
    "listen",
    "load",
    "lock",
    "merge",
    "move",
    "notify",
    "prepare",
    "reassign",
    "refresh",
    "reindex",
    "release",
    "revoke",
    "savepoint",
    "security",
    "select",
    "set",
    "show",
    "table",
    "truncate",
    "unlisten",
    "update",
    "vacuum",
    "values",
    "with",
];

fn eq(t: Option<&Tok<'_>>, word: &str) -> bool {
    t.is_some_and(|t| t.text.eq_ignore_ascii_case(word))
}

/// `offset` is where `text` starts in the whole query (for error positions).
pub(crate) fn parse_statement(text: &str, offset: usize) -> Result<Stmt, Report> {
    let clean = strip_comments(text);
    let toks = tokenize(&clean);
    let Some(first) = toks.first() else {
        return Ok(Stmt::Empty);
    };
    let at = |t: &Tok<'_>| offset + t.at;
    let word = first.text.to_ascii_lowercase();
    let end_or_err = |i: usize| match toks.get(i) {
        None => Ok(()),
        Some(t) => Err(syntax_error(t.text, at(t))),
    };
    match word.as_str() {
        "begin" => {
            // BEGIN [WORK | TRANSACTION] [modes]: modes are accepted and ignored.
            Ok(Stmt::Begin)
        }
        "start" if eq(toks.get(1), "transaction") => Ok(Stmt::Begin),
        "commit" | "end" => {
            let i = if eq(toks.get(1), "work") || eq(toks.get(1), "transaction") {
                2
            } else {
                1
            };
            end_or_err(i)?;
            Ok(Stmt::Commit)
        }
        "rollback" | "abort" => {
            let i = if eq(toks.get(1), "work") || eq(toks.get(1), "transaction") {
                2
            } else {
                1
            };
            if toks.get(i).is_some() {
                return Err(not_supported("ROLLBACK with options"));
            }
            Ok(Stmt::Rollback)
        }
        "show" => match toks.get(1) {
            None => Err(syntax_error(
                "end of input",
                offset + clean.trim_end().len(),
            )),
            Some(n) if n.text.eq_ignore_ascii_case("all") => {
                end_or_err(2)?;
                Ok(Stmt::ShowAll)
            }
            Some(n) if n.text.eq_ignore_ascii_case("time") && eq(toks.get(2), "zone") => {
                end_or_err(3)?;
                Ok(Stmt::Show("TimeZone".into()))
            }
            Some(n) => {
                end_or_err(2)?;
                Ok(Stmt::Show(var_name(n.text)))
            }
        },
        "reset" => match toks.get(1) {
            None => Err(syntax_error(
                "end of input",
                offset + clean.trim_end().len(),
            )),
            Some(n) if n.text.eq_ignore_ascii_case("all") => {
                end_or_err(2)?;
                Ok(Stmt::ResetAll)
            }
            Some(n) if n.text.eq_ignore_ascii_case("time") && eq(toks.get(2), "zone") => {
                end_or_err(3)?;
                Ok(Stmt::Reset("timezone".into()))
            }
            Some(n) => {
                end_or_err(2)?;
                Ok(Stmt::Reset(var_name(n.text)))
            }
        },
        "set" => parse_set(&toks, offset),
        "select" => parse_select(&toks),
        _ if KNOWN_COMMANDS.contains(&word.as_str()) => {
            Err(not_supported(&word.to_ascii_uppercase()))
        }
        _ => Err(syntax_error(first.text, at(first))),
    }
}

/// A setting's name as written: quotes removed, lower-cased unless quoted (PostgreSQL
/// down-cases unquoted identifiers).
fn var_name(text: &str) -> String {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(q) => q.to_owned(),
        None => text.to_ascii_lowercase(),
    }
}

fn parse_set(toks: &[Tok<'_>], offset: usize) -> Result<Stmt, Report> {
    let mut i = 1;
    let mut local = false;
    if eq(toks.get(i), "session") || eq(toks.get(i), "local") {
        local = eq(toks.get(i), "local");
        i += 1;
    }
    let Some(name) = toks.get(i) else {
        return Err(syntax_error("end of input", offset));
    };
    if eq(Some(name), "transaction")
        || eq(Some(name), "role")
        || eq(Some(name), "authorization")
        || eq(Some(name), "characteristics")
    {
        return Err(not_supported(&format!(
            "SET {}",
            name.text.to_ascii_uppercase()
        )));
    }
    // SET TIME ZONE value | LOCAL | DEFAULT
    if eq(Some(name), "time") && eq(toks.get(i + 1), "zone") {
        let rest = &toks[i + 2..];
        let value = match rest {
            [] => return Err(syntax_error("end of input", offset + name.at)),
            [t] if t.text.eq_ignore_ascii_case("local")
                || t.text.eq_ignore_ascii_case("default") =>
            {
                None
            }
            _ => Some(set_values(rest, offset)?),
        };
        return Ok(Stmt::Set {
            name: "timezone".into(),
            value,
            local,
        });
    }
    let sep = toks.get(i + 1);
    if !(eq(sep, "=") || eq(sep, "to")) {
        return Err(match sep {
            Some(t) => syntax_error(t.text, offset + t.at),
            None => syntax_error("end of input", offset + name.at + name.text.len()),
        });
    }
    let rest = &toks[i + 2..];
    if rest.is_empty() {
        return Err(syntax_error("end of input", offset + name.at));
    }
    let value = match rest {
        [t] if t.text.eq_ignore_ascii_case("default") => None,
        _ => Some(set_values(rest, offset)?),
    };
    Ok(Stmt::Set {
        name: var_name(name.text),
        value,
        local,
    })
}

/// The comma-separated values of a `SET`: string literals, identifiers, signed numbers.
fn set_values(toks: &[Tok<'_>], offset: usize) -> Result<Vec<SetValue>, Report> {
    let mut out = Vec::new();
    for part in toks.split(|t| t.text == ",") {
        let value = match part {
            [t] if t.text.starts_with('\'') => {
                let inner = t.text.strip_prefix('\'').unwrap_or(t.text);
                match inner.strip_suffix('\'') {
                    Some(v) => SetValue::Text(v.to_owned()),
                    None => return Err(unterminated(t.text, offset + t.at)),
                }
            }
            [t] if t.text.starts_with('"') => SetValue::Text(var_name(t.text)),
            [t] if t.text.as_bytes()[0].is_ascii_digit() => SetValue::Number(t.text.to_owned()),
            [sign, t]
                if (sign.text == "-" || sign.text == "+")
                    && t.text.as_bytes()[0].is_ascii_digit() =>
            {
                SetValue::Number(format!("{}{}", sign.text.trim_start_matches('+'), t.text))
            }
            [t] => SetValue::Text(t.text.to_ascii_lowercase()),
            [] => {
                let at = toks.first().map_or(offset, |t| offset + t.at);
                return Err(syntax_error(",", at));
            }
            [_, t, ..] => return Err(syntax_error(t.text, offset + t.at)),
        };
        out.push(value);
    }
    Ok(out)
}

fn unterminated(near: &str, at: usize) -> Report {
    Box::new(
        ErrorFields::new(
            Severity::Error,
            "42601",
            format!("unterminated quoted string at or near \"{near}\""),
        )
        .with_position(u32::try_from(at + 1).unwrap_or(u32::MAX)),
    )
}

/// `SELECT <int>`, `SELECT pg_backend_pid()`, `SELECT pg_sleep(<number>)`.
fn parse_select(toks: &[Tok<'_>]) -> Result<Stmt, Report> {
    let rest: Vec<&str> = toks[1..].iter().map(|t| t.text).collect();
    match rest.as_slice() {
        [] => Err(not_supported("SELECT without a target list")),
        [n] | ["+", n] if n.bytes().all(|c| c.is_ascii_digit()) => {
            Ok(Stmt::SelectInt(int_lit(n, false)))
        }
        ["-", n] if n.bytes().all(|c| c.is_ascii_digit()) => Ok(Stmt::SelectInt(int_lit(n, true))),
        [f, "(", ")"] if f.eq_ignore_ascii_case("pg_backend_pid") => Ok(Stmt::BackendPid),
        [f, "(", arg @ .., ")"] if f.eq_ignore_ascii_case("pg_sleep") => {
            let text: String = arg.concat();
            let text = text.trim_matches('\'');
            match text.parse::<f64>() {
                Ok(s) if s.is_finite() => Ok(Stmt::Sleep(s)),
                _ => Err(Box::new(ErrorFields::new(
                    Severity::Error,
                    "22P02",
                    format!("invalid input syntax for type double precision: \"{text}\""),
                ))),
            }
        }
        [f, "(", args @ .., ")"] if is_identifier(f) => parse_call(f, args),
        // A well-formed query maybe, but not one this server evaluates.
        _ => Err(not_supported("this SELECT")),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `name(arg, …)` with literal arguments.
fn parse_call(name: &str, args: &[&str]) -> Result<Stmt, Report> {
    let mut values = Vec::new();
    let mut types = Vec::new();
    if !args.is_empty() {
        for arg in args.split(|t| *t == ",") {
            let text: String = arg.concat();
            let (value, ty) =
                if let Some(q) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
                    (q.to_owned(), "unknown")
                } else if text.parse::<i32>().is_ok() {
                    (text.clone(), "integer")
                } else if text.parse::<i64>().is_ok() {
                    (text.clone(), "bigint")
                } else if !text.is_empty() && text.parse::<f64>().is_ok() {
                    (text.clone(), "numeric")
                } else {
                    return Err(Box::new(ErrorFields::new(
                        Severity::Error,
                        if is_identifier(&text) {
                            "42703"
                        } else {
                            "42601"
                        },
                        if is_identifier(&text) {
                            format!("column \"{text}\" does not exist")
                        } else {
                            format!("syntax error at or near \"{text}\"")
                        },
                    )));
                };
            values.push(value);
            types.push(ty);
        }
    }
    Ok(Stmt::Call {
        name: name.to_ascii_lowercase(),
        args: values,
        arg_types: types,
    })
}

fn int_lit(digits: &str, negative: bool) -> IntLit {
    let text = if negative {
        format!("-{digits}")
    } else {
        digits.to_owned()
    };
    match text.parse::<i64>() {
        Ok(v) => match i32::try_from(v) {
            Ok(v) => IntLit::Int4(v),
            Err(_) => IntLit::Int8(v),
        },
        Err(_) => IntLit::Numeric(text.trim_start_matches('+').to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `input` parses to `want`: a statement, or `Err((sqlstate, message))`.
    fn check(input: &str, want: Result<Stmt, (&str, &str)>) {
        let got = parse_statement(input, 0).map_err(|e| (e.code.clone(), e.message.clone()));
        let want = want.map_err(|(c, m)| (c.to_owned(), m.to_owned()));
        assert_eq!(got, want, "{input:?}");
    }

    #[test]
    fn statements() {
        check("SELECT 1", Ok(Stmt::SelectInt(IntLit::Int4(1))));
        check("  select   -42 ", Ok(Stmt::SelectInt(IntLit::Int4(-42))));
        check(
            "SELECT 3000000000",
            Ok(Stmt::SelectInt(IntLit::Int8(3_000_000_000))),
        );
        check(
            "SELECT 99999999999999999999",
            Ok(Stmt::SelectInt(IntLit::Numeric(
                "99999999999999999999".into(),
            ))),
        );
        check("SELECT pg_backend_pid()", Ok(Stmt::BackendPid));
        check("select PG_SLEEP(0.5)", Ok(Stmt::Sleep(0.5)));
        check("SELECT pg_sleep('2')", Ok(Stmt::Sleep(2.0)));
        check(
            "SHOW max_connections",
            Ok(Stmt::Show("max_connections".into())),
        );
        check("show \"TimeZone\"", Ok(Stmt::Show("TimeZone".into())));
        let set = |name: &str, v: Option<Vec<SetValue>>, local| Stmt::Set {
            name: name.into(),
            value: v,
            local,
        };
        let text = |t: &str| SetValue::Text(t.into());
        check(
            "SET application_name = 'x y'",
            Ok(set("application_name", Some(vec![text("x y")]), false)),
        );
        check(
            "set search_path to a, \"B\"",
            Ok(set("search_path", Some(vec![text("a"), text("B")]), false)),
        );
        check(
            "SET LOCAL work_mem TO -1",
            Ok(set(
                "work_mem",
                Some(vec![SetValue::Number("-1".into())]),
                true,
            )),
        );
        check(
            "set session Foo.Bar to default",
            Ok(set("foo.bar", None, false)),
        );
        check("SET TIME ZONE LOCAL", Ok(set("timezone", None, false)));
        check("RESET ALL", Ok(Stmt::ResetAll));
        check("reset Work_Mem", Ok(Stmt::Reset("work_mem".into())));
        check("SHOW ALL", Ok(Stmt::ShowAll));
        check("BEGIN", Ok(Stmt::Begin));
        check("begin isolation level serializable", Ok(Stmt::Begin));
        check("START TRANSACTION", Ok(Stmt::Begin));
        check("COMMIT", Ok(Stmt::Commit));
        check("end work", Ok(Stmt::Commit));
        check("ROLLBACK", Ok(Stmt::Rollback));
        check("abort", Ok(Stmt::Rollback));
        check("-- nothing\n /* at all */ ", Ok(Stmt::Empty));
        check(
            "SELECT f(1, 'a b', -3, 2.5, 9000000000)",
            Ok(Stmt::Call {
                name: "f".into(),
                args: vec![
                    "1".into(),
                    "a b".into(),
                    "-3".into(),
                    "2.5".into(),
                    "9000000000".into(),
                ],
                arg_types: vec!["integer", "unknown", "integer", "numeric", "bigint"],
            }),
        );
        check(
            "select Now()",
            Ok(Stmt::Call {
                name: "now".into(),
                args: vec![],
                arg_types: vec![],
            }),
        );
        check(
            "SELECT /* c */ 1 -- one",
            Ok(Stmt::SelectInt(IntLit::Int4(1))),
        );
    }

    #[test]
    fn refusals() {
        check(
            "SELEC 1",
            Err(("42601", "syntax error at or near \"SELEC\"")),
        );
        check(
            "  xyzzy",
            Err(("42601", "syntax error at or near \"xyzzy\"")),
        );
        check(
            "COMMIT now",
            Err(("42601", "syntax error at or near \"now\"")),
        );
        check(
            "SELECT pg_sleep(x)",
            Err((
                "22P02",
                "invalid input syntax for type double precision: \"x\"",
            )),
        );
        check(
            "SHOW",
            Err(("42601", "syntax error at or near \"end of input\"")),
        );
        let e = parse_statement("SELECT * FROM t", 0).unwrap_err();
        assert_eq!(e.code, "0A000");
        let e = parse_statement("INSERT INTO t VALUES (1)", 0).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("0A000", "INSERT is not supported by this server")
        );
        let e = parse_statement("  bogus", 10).unwrap_err();
        assert_eq!(e.position, Some(13), "1-based position in the whole query");
    }

    #[test]
    fn splitting() {
        let pieces = |q| {
            split_statements(q)
                .into_iter()
                .map(|(_, s)| s.trim())
                .collect::<Vec<_>>()
        };
        assert_eq!(pieces("SELECT 1; SELECT 2;"), vec!["SELECT 1", "SELECT 2"]);
        assert_eq!(pieces("SELECT ';'; SHOW x"), vec!["SELECT ';'", "SHOW x"]);
        assert_eq!(
            pieces("SELECT 1 -- ;\n; /* ; */ SELECT 2"),
            vec!["SELECT 1 -- ;", "/* ; */ SELECT 2"]
        );
        assert!(pieces(" ; ;; ").is_empty());
        assert!(pieces("").is_empty());
        assert_eq!(split_statements("a;b")[1].0, 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        #[test]
        fn never_panics(q in "[ -~\\n\u{e9}\u{4e2d}]{0,60}") {
            for (off, s) in split_statements(&q) {
                let _ = parse_statement(s, off);
            }
        }
    }
}
