//! The `postgresql.conf` reader, following PostgreSQL's guc-file.l: tokens, `name [=] value`
//! lines, quoted strings with `''` and backslash escapes, and the three include directives.
//! Errors carry PostgreSQL's texts and are collected, not thrown, so that a reload can report
//! all of them and apply nothing.

use crate::GucError;
use std::path::{Path, PathBuf};

/// Deepest include nesting PostgreSQL allows (`CONF_FILE_MAX_DEPTH`).
pub const MAX_INCLUDE_DEPTH: usize = 10;
/// PostgreSQL gives up on a file after this many syntax errors.
const MAX_SYNTAX_ERRORS: usize = 100;

/// One `name = value` line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigItem {
    /// The setting's name as written.
    pub name: String,
    /// The value, unquoted.
    pub value: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Its 1-based line.
    pub line: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Id,
    QualifiedId,
    Str,
    Unquoted,
    Integer,
    Real,
    Equals,
    Error,
}

fn is_letter(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}
fn is_letter_or_digit(c: u8) -> bool {
    is_letter(c) || c.is_ascii_digit()
}

/// Length of an identifier at the start of `b`.
fn id_len(b: &[u8]) -> usize {
    if b.first().is_some_and(|&c| is_letter(c)) {
        1 + b[1..]
            .iter()
            .take_while(|&&c| is_letter_or_digit(c))
            .count()
    } else {
        0
    }
}

/// The next token of one line (the line has no newline); `None` at the end of the line.
fn next_token(b: &[u8], pos: &mut usize) -> Option<(Tok, String)> {
    while *pos < b.len() && matches!(b[*pos], b' ' | b'\t' | b'\r') {
        *pos += 1;
    }
    if *pos >= b.len() || b[*pos] == b'#' {
        *pos = b.len();
        return None;
    }
    let s = &b[*pos..];
    let text = |n: usize| String::from_utf8_lossy(&s[..n]).into_owned();
    let c = s[0];
    // Flex picks the longest match, and the earliest rule among equals.
    let mut best = (0usize, Tok::Error);
    let mut consider = |n: usize, t: Tok| {
        if n > best.0 {
            best = (n, t);
        }
    };
    let id = id_len(s);
    if id > 0 {
        consider(id, Tok::Id);
        if s.get(id) == Some(&b'.') {
            let second = id_len(&s[id + 1..]);
            if second > 0 {
                consider(id + 1 + second, Tok::QualifiedId);
            }
        }
    }
    if c == b'\'' {
        let mut k = 1;
        let mut closed = false;
        while k < s.len() {
            match s[k] {
                b'\\' if k + 1 < s.len() => k += 2,
                b'\\' => break,
                b'\'' if s.get(k + 1) == Some(&b'\'') => k += 2,
                b'\'' => {
                    closed = true;
                    k += 1;
                    break;
                }
                _ => k += 1,
            }
        }
        if closed {
            consider(k, Tok::Str);
        }
    }
    if is_letter(c) {
        let n = 1 + s[1..]
            .iter()
            .take_while(|&&c| {
                is_letter_or_digit(c) || matches!(c, b'-' | b'.' | b'_' | b':' | b'/')
            })
            .count();
        consider(n, Tok::Unquoted);
    }
    // INTEGER: sign? (digits | 0x hexdigits) unit-letters*
    {
        let mut k = usize::from(matches!(c, b'-' | b'+'));
        let start = k;
        if s.len() > k + 2
            && s[k] == b'0'
            && matches!(s[k + 1], b'x' | b'X')
            && s[k + 2].is_ascii_hexdigit()
        {
            k += 2;
            while k < s.len() && s[k].is_ascii_hexdigit() {
                k += 1;
            }
        } else {
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
        }
        if k > start {
            while k < s.len() && s[k].is_ascii_alphabetic() {
                k += 1;
            }
            consider(k, Tok::Integer);
        }
    }
    // REAL: sign? digit* "." digit* exponent?
    {
        let mut k = usize::from(matches!(c, b'-' | b'+'));
        while k < s.len() && s[k].is_ascii_digit() {
            k += 1;
        }
        if s.get(k) == Some(&b'.') {
            k += 1;
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
            if k < s.len() && matches!(s[k], b'e' | b'E') {
                let mut m = k + 1;
                if m < s.len() && matches!(s[m], b'-' | b'+') {
                    m += 1;
                }
                let e = m;
                while m < s.len() && s[m].is_ascii_digit() {
                    m += 1;
                }
                if m > e {
                    k = m;
                }
            }
            consider(k, Tok::Real);
        }
    }
    if c == b'=' {
        consider(1, Tok::Equals);
    }
    let (n, t) = if best.0 == 0 {
        // Flex's catch-all rule: one character (a whole UTF-8 character here).
        let n = std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.chars().next())
            .map_or(1, char::len_utf8);
        (n, Tok::Error)
    } else {
        best
    };
    *pos += n;
    Some((t, text(n)))
}

/// PostgreSQL's `DeescapeQuotedString`: strip the quotes, undo `''` and backslash escapes.
fn deescape(quoted: &str) -> String {
    let inner = &quoted[1..quoted.len() - 1];
    let mut out = String::new();
    let mut cs = inner.chars().peekable();
    while let Some(c) = cs.next() {
        match c {
            '\\' => match cs.next() {
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(d @ '0'..='7') => {
                    let mut v = d.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match cs.peek().and_then(|c| c.to_digit(8)) {
                            Some(x) => {
                                v = v * 8 + x;
                                cs.next();
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(v).unwrap_or('?'));
                }
                Some(o) => out.push(o),
                None => {}
            },
            '\'' if cs.peek() == Some(&'\'') => {
                cs.next();
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out
}

/// Why one line did not parse: the token PostgreSQL names, or `None` for "near end of line".
type LineError = Option<String>;

/// Splits one line into `(name, value)`; `Ok(None)` for blank and comment lines.
pub fn parse_line(raw: &str) -> Result<Option<(String, String)>, LineError> {
    let b = raw.as_bytes();
    let mut pos = 0;
    let Some((t, name)) = next_token(b, &mut pos) else {
        return Ok(None);
    };
    if !matches!(t, Tok::Id | Tok::QualifiedId) {
        return Err(Some(name));
    }
    let mut tok = next_token(b, &mut pos);
    if matches!(tok, Some((Tok::Equals, _))) {
        tok = next_token(b, &mut pos);
    }
    let value = match tok {
        None => return Err(None),
        Some((Tok::Str, v)) => deescape(&v),
        Some((Tok::Id | Tok::Integer | Tok::Real | Tok::Unquoted, v)) => v,
        Some((_, v)) => return Err(Some(v)),
    };
    match next_token(b, &mut pos) {
        None => Ok(Some((name, value))),
        Some((_, v)) => Err(Some(v)),
    }
}

/// Reads a configuration file (and what it includes) into items, collecting every error.
/// Relative include paths are relative to the including file's directory.
pub fn parse_config_file(path: &Path) -> (Vec<ConfigItem>, Vec<GucError>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    parse_file(path, None, 0, true, &mut items, &mut errors);
    (items, errors)
}

fn absolute(path: &Path, calling: Option<&Path>) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match calling.and_then(Path::parent) {
        Some(dir) => dir.join(path),
        None => std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf()),
    }
}

fn parse_file(
    path: &Path,
    calling: Option<&Path>,
    depth: usize,
    strict: bool,
    items: &mut Vec<ConfigItem>,
    errors: &mut Vec<GucError>,
) {
    if depth > MAX_INCLUDE_DEPTH {
        errors.push(GucError::TooDeep(path.to_path_buf()));
        return;
    }
    let abs = absolute(path, calling);
    if calling == Some(abs.as_path()) {
        errors.push(GucError::Recursion(abs));
        return;
    }
    let bytes = match std::fs::read(&abs) {
        Ok(b) => b,
        Err(e) if !strict && e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            errors.push(GucError::Open {
                file: abs,
                reason: io_reason(&e),
            });
            return;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut syntax_errors = 0;
    for (k, raw) in text.split('\n').enumerate() {
        let line = k as u32 + 1;
        match parse_line(raw) {
            Ok(None) => {}
            Ok(Some((name, value))) => {
                let target = Path::new(&value);
                match name.to_ascii_lowercase().as_str() {
                    "include" => parse_file(target, Some(&abs), depth + 1, true, items, errors),
                    "include_if_exists" => {
                        parse_file(target, Some(&abs), depth + 1, false, items, errors)
                    }
                    "include_dir" => parse_dir(target, &abs, depth + 1, items, errors),
                    _ => items.push(ConfigItem {
                        name,
                        value,
                        file: abs.clone(),
                        line,
                    }),
                }
            }
            Err(token) => {
                errors.push(match token {
                    Some(token) => GucError::Syntax {
                        file: abs.clone(),
                        line,
                        token,
                    },
                    None => GucError::SyntaxEol {
                        file: abs.clone(),
                        line,
                    },
                });
                syntax_errors += 1;
                if syntax_errors >= MAX_SYNTAX_ERRORS {
                    errors.push(GucError::TooManyErrors(abs.clone()));
                    return;
                }
            }
        }
    }
}

fn parse_dir(
    dir: &Path,
    calling: &Path,
    depth: usize,
    items: &mut Vec<ConfigItem>,
    errors: &mut Vec<GucError>,
) {
    let dir = absolute(dir, Some(calling));
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(GucError::OpenDir {
                dir,
                reason: io_reason(&e),
            });
            return;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            !n.starts_with('.') && n.len() > 5 && n.ends_with(".conf")
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    for f in files {
        parse_file(&f, Some(calling), depth, true, items, errors);
    }
}

/// The system's reason as PostgreSQL's `%m` prints it ("No such file or directory").
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(k) => s[..k].to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let ok = |l: &str, n: &str, v: &str| {
            assert_eq!(parse_line(l), Ok(Some((n.to_owned(), v.to_owned()))), "{l}")
        };
        ok("port = 5433", "port", "5433");
        ok("port 5433", "port", "5433");
        ok("  port=5433   # the port", "port", "5433");
        ok("listen_addresses = '*'", "listen_addresses", "*");
        ok("x = 'it''s'", "x", "it's");
        ok(r"x = 'a\'b'", "x", "a'b");
        ok(r"x = 'tab\there\101'", "x", "tab\there\u{41}");
        ok("x = 'has # hash'", "x", "has # hash");
        ok("huge_page_size = 2MB", "huge_page_size", "2MB");
        ok("shared_buffers = 128MB", "shared_buffers", "128MB");
        ok(
            "log_line_prefix = '%m [%p] '",
            "log_line_prefix",
            "%m [%p] ",
        );
        ok("myext.setting = on", "myext.setting", "on");
        ok("x = var/run:pg-1.x", "x", "var/run:pg-1.x");
        ok("x = -1", "x", "-1");
        ok("x = 0.9", "x", "0.9");
        ok("x = .5", "x", ".5");
        ok("x = 0x1F", "x", "0x1F");
        ok("x = -1.5e-3", "x", "-1.5e-3");
        ok("x=''", "x", "");
        ok("x = 'a' # trailing", "x", "a");
        ok("DateStyle = 'iso, mdy'\r", "DateStyle", "iso, mdy");
        assert_eq!(parse_line("   # comment"), Ok(None));
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("port = 1 2"), Err(Some("2".into())));
        assert_eq!(parse_line("x = 'open"), Err(Some("'".into())));
        assert_eq!(parse_line("port ="), Err(None));
        assert_eq!(parse_line("port"), Err(None));
        assert_eq!(parse_line("= 3"), Err(Some("=".into())));
        assert_eq!(parse_line("a.b.c = 1"), Err(Some("a.b.c".into())));
        assert_eq!(parse_line("x = 0.5ms"), Err(Some("ms".into())));
        assert_eq!(parse_line("x = = 1"), Err(Some("=".into())));
        assert_eq!(parse_line("x = 1e5"), Err(Some("5".into())));
        // An unquoted value starts with a letter or digit: paths need quotes.
        assert_eq!(parse_line("x = /var/run/pg"), Err(Some("/".into())));
    }
}
