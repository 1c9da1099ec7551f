//! The tokenizer shared by pg_hba.conf and pg_ident.conf (PostgreSQL's `tokenize_auth_file`,
//! `next_token`, `next_field_expand`).
//!
//! ```text
//!  line      := field (whitespace field)*  [# comment]   a trailing '\' joins the next line
//!  field     := token (',' token)*                        no whitespace needed around ','
//!  token     := ( plain-char | "quoted text" )+          "" inside quotes is one '"'
//!  @file     := an unquoted token starting with '@': the tokens of that file (relative to
//!               the including file), spliced into the field
//! ```

use std::path::{Path, PathBuf};

/// PostgreSQL's `MAX_TOKEN`: a longer token is an error.
pub const MAX_TOKEN: usize = 10240;
/// How deep `@file` inclusions may nest (PostgreSQL's `CONF_FILE_MAX_DEPTH`).
const MAX_INCLUDE_DEPTH: usize = 10;

/// One token of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The text, quotes removed.
    pub text: String,
    /// Some part of it was in double quotes: it is never a keyword (`"all"` is a role named
    /// all) and never a `+group` or `@file`.
    pub quoted: bool,
}

impl Token {
    /// An unquoted token.
    pub fn plain(text: &str) -> Token {
        Token {
            text: text.to_owned(),
            quoted: false,
        }
    }

    /// Whether this is the unquoted keyword `kw` (PostgreSQL's `token_is_keyword`).
    pub fn is_keyword(&self, kw: &str) -> bool {
        !self.quoted && self.text == kw
    }
}

/// One logical line: its fields, the number of its first physical line and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedLine {
    /// 1-based number of the line's first physical line.
    pub line_number: usize,
    /// The line as written (continuations joined, comment kept).
    pub raw: String,
    /// Fields, each a non-empty list of tokens.
    pub fields: Vec<Vec<Token>>,
    /// The line could not be tokenized (e.g. a token too long, an `@file` that cannot be read).
    pub error: Option<String>,
}

/// Splits a whole file into logical lines; blank and comment-only lines are left out.
/// `path` is used to find `@file` inclusions.
pub fn tokenize_file(text: &str, path: &Path) -> Vec<TokenizedLine> {
    tokenize_depth(text, path, 0)
}

fn tokenize_depth(text: &str, path: &Path, depth: usize) -> Vec<TokenizedLine> {
    let mut out = Vec::new();
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((i, first)) = lines.next() {
        let line_number = i + 1;
        let mut logical = first.strip_suffix('\r').unwrap_or(first).to_owned();
        // A backslash as the last character continues the line (PostgreSQL 16+).
        while logical.ends_with('\\') {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.strip_suffix('\r').unwrap_or(next)),
                None => break,
            }
        }
        let mut tl = TokenizedLine {
            line_number,
            raw: logical.clone(),
            fields: Vec::new(),
            error: None,
        };
        let mut rest: &str = &logical;
        loop {
            match next_field(&mut rest, path, depth) {
                Ok(Some(field)) => tl.fields.push(field),
                Ok(None) => break,
                Err(e) => {
                    tl.error = Some(e);
                    break;
                }
            }
        }
        if !tl.fields.is_empty() || tl.error.is_some() {
            out.push(tl);
        }
    }
    out
}

/// One raw token: its text, whether quotes were seen, whether a comma follows it, and whether
/// the rest of the line is a comment.
struct RawToken {
    text: String,
    quoted: bool,
    trailing_comma: bool,
}

/// PostgreSQL's `next_token`: `Ok(None)` at the end of the line (or at a comment).
fn next_token(rest: &mut &str) -> Result<Option<RawToken>, String> {
    let s = rest.trim_start_matches([' ', '\t', '\r', '\n']);
    *rest = s;
    if s.is_empty() || s.starts_with('#') {
        *rest = "";
        return Ok(None);
    }
    let mut text = String::new();
    let mut quoted = false;
    let mut in_quote = false;
    let mut trailing_comma = false;
    let bytes: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut consumed = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if !in_quote && (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            break;
        }
        if !in_quote && c == '#' {
            break;
        }
        if !in_quote && c == ',' {
            trailing_comma = true;
            consumed += c.len_utf8();
            break;
        }
        if c == '"' {
            if in_quote && bytes.get(i + 1) == Some(&'"') {
                text.push('"');
                consumed += 2;
                i += 2;
                continue;
            }
            in_quote = !in_quote;
            quoted = true;
        } else {
            text.push(c);
        }
        consumed += c.len_utf8();
        i += 1;
        if text.len() >= MAX_TOKEN {
            return Err(format!(
                "authentication file token too long, skipping: \"{text}\""
            ));
        }
    }
    *rest = &s[consumed..];
    if text.is_empty() && !quoted && !trailing_comma {
        // Only a comment follows.
        *rest = "";
        return Ok(None);
    }
    Ok(Some(RawToken {
        text,
        quoted,
        trailing_comma,
    }))
}

/// PostgreSQL's `next_field_expand`: tokens joined by commas, `@file` expanded.
fn next_field(rest: &mut &str, path: &Path, depth: usize) -> Result<Option<Vec<Token>>, String> {
    let mut field = Vec::new();
    while let Some(t) = next_token(rest)? {
        if !t.quoted && t.text.starts_with('@') && t.text.len() > 1 {
            field.extend(expand_file(&t.text[1..], path, depth)?);
        } else if !t.text.is_empty() || t.quoted {
            field.push(Token {
                text: t.text,
                quoted: t.quoted,
            });
        }
        if !t.trailing_comma {
            break;
        }
    }
    Ok(if field.is_empty() { None } else { Some(field) })
}

/// The tokens of an `@file`: every token of every line, in order.
fn expand_file(name: &str, including: &Path, depth: usize) -> Result<Vec<Token>, String> {
    let target: PathBuf = if Path::new(name).is_absolute() {
        PathBuf::from(name)
    } else {
        including.parent().unwrap_or(Path::new(".")).join(name)
    };
    if depth + 1 > MAX_INCLUDE_DEPTH {
        return Err(format!(
            "could not open file \"{}\": maximum nesting depth exceeded",
            target.display()
        ));
    }
    let text = std::fs::read_to_string(&target).map_err(|e| {
        format!(
            "could not open file \"{}\": {}",
            target.display(),
            crate::io_text(&e)
        )
    })?;
    let mut tokens = Vec::new();
    for line in tokenize_depth(&text, &target, depth + 1) {
        if let Some(e) = line.error {
            return Err(e);
        }
        tokens.extend(line.fields.into_iter().flatten());
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Vec<Vec<(String, bool)>> {
        let lines = tokenize_file(line, Path::new("/nonexistent/pg_hba.conf"));
        assert!(lines.len() <= 1, "{lines:?}");
        lines
            .into_iter()
            .flat_map(|l| l.fields)
            .map(|f| f.into_iter().map(|t| (t.text, t.quoted)).collect())
            .collect()
    }

    fn check(line: &str, expected: &[&[&str]]) {
        let got: Vec<Vec<String>> = fields(line)
            .into_iter()
            .map(|f| {
                f.into_iter()
                    .map(|(t, q)| if q { format!("\"{t}\"") } else { t })
                    .collect()
            })
            .collect();
        let want: Vec<Vec<String>> = expected
            .iter()
            .map(|f| f.iter().map(|s| s.to_string()).collect())
            .collect();
        assert_eq!(got, want, "line {line:?}");
    }

    #[test]
    fn tokens_fields_quotes_and_comments() {
        check("", &[]);
        check("   # only a comment", &[]);
        check(
            "local all all trust",
            &[&["local"], &["all"], &["all"], &["trust"]],
        );
        check(
            "host\tdb1,db2 u1, u2 127.0.0.1/32 md5 # tail",
            &[
                &["host"],
                &["db1", "db2"],
                &["u1", "u2"],
                &["127.0.0.1/32"],
                &["md5"],
            ],
        );
        check("host \"all\" x", &[&["host"], &["\"all\""], &["x"]]);
        check("a \"b c\" d", &[&["a"], &["\"b c\""], &["d"]]);
        check(
            "a \"say \"\"hi\"\"\" d",
            &[&["a"], &["\"say \"hi\"\""], &["d"]],
        );
        check(
            "a \"#not comment\"#comment",
            &[&["a"], &["\"#not comment\""]],
        );
        check("a b#c", &[&["a"], &["b"]]);
        check("a \"\" b", &[&["a"], &["\"\""], &["b"]]);
    }

    #[test]
    fn continuation_joins_lines_and_keeps_the_first_number() {
        let lines = tokenize_file(
            "# c\nhost all \\\n  all 10.0.0.0/8 trust\nlocal all all peer\n",
            Path::new("x"),
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line_number, 2);
        assert_eq!(lines[0].fields.len(), 5);
        assert_eq!(lines[1].line_number, 4);
    }

    #[test]
    fn at_file_expands_into_the_field() {
        let dir = std::env::temp_dir().join(format!("pgipc-hba-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("users"), "alice bob\n# c\ncarol,dave\n").unwrap();
        let lines = tokenize_file("local all @users trust\n", &dir.join("pg_hba.conf"));
        let users: Vec<_> = lines[0].fields[2].iter().map(|t| t.text.as_str()).collect();
        assert_eq!(users, ["alice", "bob", "carol", "dave"]);
        let lines = tokenize_file("local all @missing trust\n", &dir.join("pg_hba.conf"));
        assert!(lines[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("could not open file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn too_long_tokens_are_errors() {
        let line = format!("local {} all trust", "x".repeat(MAX_TOKEN + 5));
        let lines = tokenize_file(&line, Path::new("x"));
        assert!(lines[0]
            .error
            .as_deref()
            .unwrap()
            .contains("token too long"));
    }
}
