//! The query layer's error: PostgreSQL's `ereport(ERROR, ...)` fields.

use std::fmt;

/// SQLSTATE codes used by this crate (PostgreSQL's errcodes.txt).
pub mod sqlstate {
    /// 42601
    pub const SYNTAX_ERROR: &str = "42601";
    /// 42883
    pub const UNDEFINED_FUNCTION: &str = "42883";
    /// 42703
    pub const UNDEFINED_COLUMN: &str = "42703";
    /// 42P01
    pub const UNDEFINED_TABLE: &str = "42P01";
    /// 42704
    pub const UNDEFINED_OBJECT: &str = "42704";
    /// 42804
    pub const DATATYPE_MISMATCH: &str = "42804";
    /// 42725
    pub const AMBIGUOUS_FUNCTION: &str = "42725";
    /// 42846
    pub const CANNOT_COERCE: &str = "42846";
    /// 42803
    pub const GROUPING_ERROR: &str = "42803";
    /// 42P10
    pub const INVALID_COLUMN_REFERENCE: &str = "42P10";
    /// 42P02
    pub const UNDEFINED_PARAMETER: &str = "42P02";
    /// 42P18
    pub const INDETERMINATE_DATATYPE: &str = "42P18";
    /// 42P20
    pub const WINDOWING_ERROR: &str = "42P20";
    /// 0A000
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    /// 22P02
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    /// 22012
    pub const DIVISION_BY_ZERO: &str = "22012";
    /// 22003
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    /// 22007
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    /// 22008
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    /// 22023
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    /// 22001
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    /// 2201E
    pub const INVALID_ARGUMENT_FOR_LOG: &str = "2201E";
    /// 2201F
    pub const INVALID_ARGUMENT_FOR_POWER_FUNCTION: &str = "2201F";
    /// 22025
    pub const INVALID_ESCAPE_SEQUENCE: &str = "22025";
    /// 2201W
    pub const INVALID_ROW_COUNT_IN_LIMIT_CLAUSE: &str = "2201W";
    /// 2201X
    pub const INVALID_ROW_COUNT_IN_RESULT_OFFSET_CLAUSE: &str = "2201X";
    /// 22011
    pub const SUBSTRING_ERROR: &str = "22011";
    /// 54001
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    /// 54000
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    /// 08P01
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    /// 42501
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// XX000
    pub const INTERNAL_ERROR: &str = "XX000";
}

/// A five-character SQLSTATE held by value, so that a code known only at run time (an error
/// that arrived from another process, as a parallel worker's does) fits as well as the
/// constants of [`sqlstate`]. Reads as a `&str` (`Deref`), compares with one, and prints and
/// debug-prints as the five characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// `code` if it is five ASCII digits or upper-case letters (PostgreSQL's `MAKE_SQLSTATE`
    /// alphabet), else `XX000` (internal error), so that a malformed code never escapes.
    pub fn new(code: &str) -> SqlState {
        match <[u8; 5]>::try_from(code.as_bytes()) {
            Ok(b)
                if b.iter()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) =>
            {
                SqlState(b)
            }
            _ => SqlState(*b"XX000"),
        }
    }

    /// The five characters.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (`new` checks), so this never takes the fallback.
        std::str::from_utf8(&self.0).unwrap_or("XX000")
    }
}

impl std::ops::Deref for SqlState {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for SqlState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SqlState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<&str> for SqlState {
    fn from(code: &str) -> SqlState {
        SqlState::new(code)
    }
}

/// One PostgreSQL error report: what the backend sends as an ErrorResponse (or a notice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// Five-character SQLSTATE (`22012`).
    pub sqlstate: SqlState,
    /// The primary message (PostgreSQL's `M` field).
    pub message: String,
    /// The `D` field.
    pub detail: Option<String>,
    /// The `H` field.
    pub hint: Option<String>,
    /// 1-based character position in the statement text (PostgreSQL's `P` field).
    pub position: Option<u32>,
    /// The `W` field (PostgreSQL's CONTEXT: where the error arose, e.g. `parallel worker`).
    pub context: Option<String>,
}

impl QueryError {
    /// An error with only a code and a message.
    pub fn new(sqlstate: &str, message: impl Into<String>) -> QueryError {
        QueryError {
            sqlstate: SqlState::new(sqlstate),
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
            context: None,
        }
    }

    /// Adds a CONTEXT.
    pub fn with_context(mut self, context: impl Into<String>) -> QueryError {
        self.context = Some(context.into());
        self
    }

    /// Adds a HINT.
    pub fn with_hint(mut self, hint: impl Into<String>) -> QueryError {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a DETAIL.
    pub fn with_detail(mut self, detail: impl Into<String>) -> QueryError {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the position if none is set yet (the innermost position wins, as in PostgreSQL).
    pub fn at(mut self, position: Option<u32>) -> QueryError {
        if self.position.is_none() {
            self.position = position;
        }
        self
    }

    /// 0A000 with `message`.
    pub fn not_supported(message: impl Into<String>) -> QueryError {
        QueryError::new(sqlstate::FEATURE_NOT_SUPPORTED, message)
    }

    pub(crate) fn syntax(message: impl Into<String>) -> QueryError {
        QueryError::new(sqlstate::SYNTAX_ERROR, message)
    }

    pub(crate) fn division_by_zero() -> QueryError {
        QueryError::new(sqlstate::DIVISION_BY_ZERO, "division by zero")
    }

    pub(crate) fn out_of_range(what: &str) -> QueryError {
        QueryError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("{what} out of range"),
        )
    }

    pub(crate) fn invalid_input(type_name: &str, text: &str) -> QueryError {
        QueryError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {type_name}: \"{text}\""),
        )
    }

    pub(crate) fn too_deep() -> QueryError {
        QueryError::new(
            sqlstate::STATEMENT_TOO_COMPLEX,
            "stack depth limit exceeded",
        )
        .with_hint(
            "Increase the configuration parameter \"max_stack_depth\" (currently 2048kB), \
             after ensuring the platform's stack depth limit is adequate.",
        )
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.sqlstate, self.message)
    }
}

impl std::error::Error for QueryError {}

impl From<pgipc_guc::GucError> for QueryError {
    fn from(e: pgipc_guc::GucError) -> QueryError {
        QueryError {
            sqlstate: SqlState::new(e.sqlstate()),
            message: e.to_string(),
            detail: e.detail().map(str::to_owned),
            hint: e.hint().map(str::to_owned),
            position: None,
            context: None,
        }
    }
}

/// Result of this crate's operations.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

#[cfg(test)]
mod sqlstate_tests {
    use super::{QueryError, SqlState};

    #[test]
    fn a_sqlstate_known_only_at_run_time_reads_and_compares_as_its_five_characters() {
        let code = String::from("22P02");
        let e = QueryError::new(&code, "m").with_context("parallel worker");
        assert_eq!(e.sqlstate, "22P02");
        assert_eq!(e.sqlstate.as_str(), "22P02");
        assert_eq!(e.sqlstate.len(), 5);
        assert_eq!(
            format!("{} {:?}", e.sqlstate, e.sqlstate),
            "22P02 \"22P02\""
        );
        assert_eq!(e.context.as_deref(), Some("parallel worker"));
        // Anything but five digits or upper-case letters is an internal error, never passed on.
        for bad in ["", "2201", "220123", "22p02", "22 02", "ÄÖÜ"] {
            assert_eq!(SqlState::new(bad), "XX000", "{bad:?}");
        }
    }
}
