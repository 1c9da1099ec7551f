//! Role commands from SQL text: CREATE ROLE/USER/GROUP, ALTER ROLE/USER, DROP ROLE/USER/GROUP
//! (PostgreSQL's gram.y productions `CreateRoleStmt`, `AlterRoleStmt`, `DropRoleStmt`), parsed
//! with sqlparser's PostgreSQL dialect.
//!
//! sqlparser reads `CREATE USER` and `ALTER USER` as Snowflake's statements and knows no
//! `ENCRYPTED PASSWORD`, so the token stream is adjusted first: `USER` after CREATE/ALTER
//! becomes `ROLE` (CREATE USER then defaults to LOGIN, as in PostgreSQL) and `ENCRYPTED`
//! before `PASSWORD` is dropped (a noise word since PostgreSQL 10).

use crate::RoleError;
use sqlparser::ast::{
    AlterRoleOperation, Expr, Ident, ObjectName, ObjectNamePart, ObjectType, Password, RoleOption,
    Statement, UnaryOperator, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Attributes a role command sets (`None`: not mentioned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleOptions {
    /// SUPERUSER / NOSUPERUSER.
    pub superuser: Option<bool>,
    /// LOGIN / NOLOGIN.
    pub login: Option<bool>,
    /// CREATEDB / NOCREATEDB.
    pub createdb: Option<bool>,
    /// CREATEROLE / NOCREATEROLE.
    pub createrole: Option<bool>,
    /// INHERIT / NOINHERIT.
    pub inherit: Option<bool>,
    /// REPLICATION / NOREPLICATION.
    pub replication: Option<bool>,
    /// BYPASSRLS / NOBYPASSRLS.
    pub bypassrls: Option<bool>,
    /// PASSWORD 'x' (`Some(Some)`) or PASSWORD NULL (`Some(None)`).
    pub password: Option<Option<String>>,
    /// CONNECTION LIMIT n.
    pub connection_limit: Option<i64>,
    /// VALID UNTIL 'timestamp'.
    pub valid_until: Option<String>,
}

/// One parsed role command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleCommand {
    /// CREATE ROLE / USER / GROUP.
    Create {
        /// The new role's name.
        name: String,
        /// Spelled CREATE USER (LOGIN by default).
        is_user: bool,
        /// Attributes.
        options: RoleOptions,
    },
    /// ALTER ROLE … `[WITH]` options.
    Alter {
        /// The role.
        name: String,
        /// Attributes to change.
        options: RoleOptions,
    },
    /// ALTER ROLE … RENAME TO.
    Rename {
        /// The role.
        name: String,
        /// Its new name.
        new_name: String,
    },
    /// DROP ROLE [IF EXISTS] names.
    Drop {
        /// The roles.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
}

/// An identifier as PostgreSQL folds it: unquoted ones to lower case.
fn ident_name(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

fn object_name(o: &ObjectName) -> Result<String, RoleError> {
    match o.0.as_slice() {
        // sqlparser reads a string literal where a name goes as a quoted identifier;
        // PostgreSQL's grammar has no such thing, only bare and double-quoted names.
        [ObjectNamePart::Identifier(i)] if matches!(i.quote_style, None | Some('"')) => {
            Ok(ident_name(i))
        }
        _ => Err(RoleError::syntax(format!(
            "syntax error at or near \"{o}\""
        ))),
    }
}

fn string_of(e: &Expr, what: &str) -> Result<String, RoleError> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Ok(s.clone()),
            other => Err(RoleError::syntax(format!(
                "syntax error at or near \"{other}\" ({what} must be a string constant)"
            ))),
        },
        other => Err(RoleError::syntax(format!(
            "syntax error at or near \"{other}\""
        ))),
    }
}

fn int_of(e: &Expr) -> Result<i64, RoleError> {
    let bad = || RoleError::syntax(format!("syntax error at or near \"{e}\""));
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().map_err(|_| bad()),
            _ => Err(bad()),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => int_of(expr).map(|n| -n),
        _ => Err(bad()),
    }
}

/// The word of a keyword token, upper-cased.
fn word(t: &Token) -> Option<Keyword> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    }
}

/// Whether `sql` is a role command, and if so its parse. `None`: not a role command (the
/// caller goes on with its own parser).
pub fn parse_role_command(sql: &str) -> Option<Result<RoleCommand, RoleError>> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize().ok()?;
    let significant: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t, Token::Whitespace(_)))
        .map(|(i, _)| i)
        .take(2)
        .collect();
    let (first, second) = match significant.as_slice() {
        [a, b] => (*a, *b),
        _ => return None,
    };
    let verb = word(&tokens[first])?;
    let object = word(&tokens[second])?;
    let is_role = matches!(object, Keyword::ROLE | Keyword::USER | Keyword::GROUP);
    if !is_role || !matches!(verb, Keyword::CREATE | Keyword::ALTER | Keyword::DROP) {
        return None;
    }
    if verb == Keyword::ALTER && object == Keyword::GROUP {
        // ALTER GROUP … ADD/DROP USER: membership, which this catalog does not keep.
        return Some(Err(RoleError::FeatureNotSupported(
            "ALTER GROUP is not supported".into(),
        )));
    }
    Some(parse_tokens(tokens, second, verb, object))
}

fn parse_tokens(
    mut tokens: Vec<Token>,
    object_at: usize,
    verb: Keyword,
    object: Keyword,
) -> Result<RoleCommand, RoleError> {
    let is_user = verb == Keyword::CREATE && object == Keyword::USER;
    if matches!(verb, Keyword::CREATE | Keyword::ALTER) {
        tokens[object_at] = Token::make_keyword("ROLE");
    }
    // ENCRYPTED PASSWORD → PASSWORD; UNENCRYPTED PASSWORD is PostgreSQL's error.
    let mut cleaned = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if let Token::Word(w) = t {
            let up = w.value.to_ascii_uppercase();
            if w.quote_style.is_none() && (up == "ENCRYPTED" || up == "UNENCRYPTED") {
                let next_is_password = tokens[i + 1..]
                    .iter()
                    .find(|t| !matches!(t, Token::Whitespace(_)))
                    .and_then(word)
                    == Some(Keyword::PASSWORD);
                if next_is_password {
                    if up == "UNENCRYPTED" {
                        return Err(RoleError::FeatureNotSupported(
                            "UNENCRYPTED PASSWORD is no longer supported".into(),
                        ));
                    }
                    i += 1;
                    continue;
                }
            }
        }
        cleaned.push(t.clone());
        i += 1;
    }
    let dialect = PostgreSqlDialect {};
    let stmts = Parser::new(&dialect)
        .with_tokens(cleaned)
        .parse_statements()
        .map_err(|e| RoleError::syntax(parser_message(&e)))?;
    let [stmt] = stmts.as_slice() else {
        return Err(RoleError::syntax(
            "a role command must be a statement of its own".into(),
        ));
    };
    match stmt {
        Statement::CreateRole(cr) => {
            if cr.names.len() != 1 {
                return Err(RoleError::syntax("syntax error at or near \",\"".into()));
            }
            if cr.if_not_exists {
                return Err(RoleError::syntax("syntax error at or near \"NOT\"".into()));
            }
            if !(cr.in_role.is_empty()
                && cr.in_group.is_empty()
                && cr.role.is_empty()
                && cr.user.is_empty()
                && cr.admin.is_empty())
            {
                return Err(RoleError::FeatureNotSupported(
                    "role membership (IN ROLE, ROLE, ADMIN, USER) is not supported".into(),
                ));
            }
            let mut o = RoleOptions {
                superuser: cr.superuser,
                login: cr.login,
                createdb: cr.create_db,
                createrole: cr.create_role,
                inherit: cr.inherit,
                replication: cr.replication,
                bypassrls: cr.bypassrls,
                ..RoleOptions::default()
            };
            if let Some(p) = &cr.password {
                o.password = Some(match p {
                    Password::NullPassword => None,
                    Password::Password(e) => Some(string_of(e, "password")?),
                });
            }
            if let Some(e) = &cr.connection_limit {
                o.connection_limit = Some(int_of(e)?);
            }
            if let Some(e) = &cr.valid_until {
                o.valid_until = Some(string_of(e, "VALID UNTIL")?);
            }
            Ok(RoleCommand::Create {
                name: object_name(&cr.names[0])?,
                is_user,
                options: o,
            })
        }
        Statement::AlterRole { name, operation } => match operation {
            AlterRoleOperation::RenameRole { role_name } => Ok(RoleCommand::Rename {
                name: ident_name(name),
                new_name: ident_name(role_name),
            }),
            AlterRoleOperation::WithOptions { options } => {
                let mut o = RoleOptions::default();
                for opt in options {
                    let dup = match opt {
                        RoleOption::BypassRLS(b) => o.bypassrls.replace(*b).is_some(),
                        RoleOption::CreateDB(b) => o.createdb.replace(*b).is_some(),
                        RoleOption::CreateRole(b) => o.createrole.replace(*b).is_some(),
                        RoleOption::Inherit(b) => o.inherit.replace(*b).is_some(),
                        RoleOption::Login(b) => o.login.replace(*b).is_some(),
                        RoleOption::Replication(b) => o.replication.replace(*b).is_some(),
                        RoleOption::SuperUser(b) => o.superuser.replace(*b).is_some(),
                        RoleOption::ConnectionLimit(e) => {
                            o.connection_limit.replace(int_of(e)?).is_some()
                        }
                        RoleOption::ValidUntil(e) => o
                            .valid_until
                            .replace(string_of(e, "VALID UNTIL")?)
                            .is_some(),
                        RoleOption::Password(p) => o
                            .password
                            .replace(match p {
                                Password::NullPassword => None,
                                Password::Password(e) => Some(string_of(e, "password")?),
                            })
                            .is_some(),
                    };
                    if dup {
                        return Err(RoleError::syntax("conflicting or redundant options".into()));
                    }
                }
                Ok(RoleCommand::Alter {
                    name: ident_name(name),
                    options: o,
                })
            }
            _ => Err(RoleError::FeatureNotSupported(
                "ALTER ROLE … SET/RESET and membership changes are not supported".into(),
            )),
        },
        Statement::Drop {
            object_type: ObjectType::Role | ObjectType::User,
            if_exists,
            names,
            ..
        } => Ok(RoleCommand::Drop {
            names: names.iter().map(object_name).collect::<Result<_, _>>()?,
            if_exists: *if_exists,
        }),
        Statement::Drop {
            object_type: ObjectType::Group,
            if_exists,
            names,
            ..
        } => Ok(RoleCommand::Drop {
            names: names.iter().map(object_name).collect::<Result<_, _>>()?,
            if_exists: *if_exists,
        }),
        _ => Err(RoleError::syntax("syntax error".into())),
    }
}

/// PostgreSQL's wording of a sqlparser error: `syntax error at end of input`, or `syntax
/// error at or near "<token>"` for the token sqlparser says it found.
fn parser_message(e: &sqlparser::parser::ParserError) -> String {
    let s = e.to_string();
    let found = s
        .rsplit_once("found: ")
        .map(|(_, f)| f.split(" at Line: ").next().unwrap_or(f).trim().to_owned());
    match found.as_deref() {
        None | Some("EOF") => "syntax error at end of input".to_owned(),
        Some(tok) => format!("syntax error at or near \"{}\"", tok.trim_matches('\'')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str, expected: &str) {
        let got = match parse_role_command(sql) {
            None => "not a role command".to_owned(),
            Some(Ok(c)) => format!("{c:?}"),
            Some(Err(e)) => format!("{}: {e}", e.sqlstate()),
        };
        assert_eq!(got, expected, "{sql}");
    }

    #[test]
    fn role_commands_parse() {
        check("SELECT 1", "not a role command");
        check("CREATE TABLE t (a int)", "not a role command");
        check(
            "CREATE ROLE Alice LOGIN PASSWORD 'pw' VALID UNTIL '2030-01-01' CONNECTION LIMIT 3",
            "Create { name: \"alice\", is_user: false, options: RoleOptions { superuser: None, login: Some(true), createdb: None, createrole: None, inherit: None, replication: None, bypassrls: None, password: Some(Some(\"pw\")), connection_limit: Some(3), valid_until: Some(\"2030-01-01\") } }",
        );
        check(
            "create user \"Bob\" with encrypted password 'x' superuser",
            "Create { name: \"Bob\", is_user: true, options: RoleOptions { superuser: Some(true), login: None, createdb: None, createrole: None, inherit: None, replication: None, bypassrls: None, password: Some(Some(\"x\")), connection_limit: None, valid_until: None } }",
        );
        check(
            "ALTER ROLE bob WITH NOLOGIN PASSWORD NULL CONNECTION LIMIT -1",
            "Alter { name: \"bob\", options: RoleOptions { superuser: None, login: Some(false), createdb: None, createrole: None, inherit: None, replication: None, bypassrls: None, password: Some(None), connection_limit: Some(-1), valid_until: None } }",
        );
        check(
            "ALTER USER bob PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB'",
            "Alter { name: \"bob\", options: RoleOptions { superuser: None, login: None, createdb: None, createrole: None, inherit: None, replication: None, bypassrls: None, password: Some(Some(\"SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB\")), connection_limit: None, valid_until: None } }",
        );
        check(
            "ALTER ROLE bob RENAME TO carol",
            "Rename { name: \"bob\", new_name: \"carol\" }",
        );
        check(
            "DROP ROLE IF EXISTS a, \"B\"",
            "Drop { names: [\"a\", \"B\"], if_exists: true }",
        );
        check("drop user a", "Drop { names: [\"a\"], if_exists: false }");
        check(
            "ALTER ROLE bob LOGIN NOLOGIN",
            "42601: conflicting or redundant options",
        );
        check(
            "CREATE ROLE x UNENCRYPTED PASSWORD 'a'",
            "0A000: UNENCRYPTED PASSWORD is no longer supported",
        );
        assert!(matches!(parse_role_command("CREATE ROLE"), Some(Err(_))));
        assert!(matches!(
            parse_role_command("CREATE ROLE x BOGUS"),
            Some(Err(_))
        ));
    }
}
