//! The SQL types this crate knows, with PostgreSQL's OIDs, lengths, names and categories
//! (pg_type.dat, format_type.c, parse_coerce.c's type categories).

/// A PostgreSQL type the query layer can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `boolean` (16)
    Bool,
    /// `smallint` (21)
    Int2,
    /// `integer` (23)
    Int4,
    /// `bigint` (20)
    Int8,
    /// `numeric` (1700)
    Numeric,
    /// `double precision` (701)
    Float8,
    /// `text` (25)
    Text,
    /// `name` (19), 63-byte identifiers such as `current_user`.
    Name,
    /// `timestamp with time zone` (1184)
    Timestamptz,
    /// `interval` (1186)
    Interval,
    /// `text[]` (1009), for view columns such as `pg_settings.enumvals`.
    TextArray,
    /// `oid` (26)
    Oid,
    /// `void` (2278), what `pg_sleep` returns.
    Void,
    /// `unknown` (705): a quoted literal whose type is not yet decided.
    Unknown,
    /// `xid8` (5069): a full (64-bit, epoch-extended) transaction id, what
    /// `pg_current_xact_id()` returns.
    Xid8,
    /// `pg_snapshot` (5038): `xmin:xmax:xip,...` in full transaction ids.
    PgSnapshot,
    /// `txid_snapshot` (2970): the older name of the same value, what
    /// `txid_current_snapshot()` returns.
    TxidSnapshot,
    /// `xid` (28): a 32-bit transaction id (`pg_stat_activity.backend_xid`); only `=` and
    /// `<>` compare it.
    Xid,
    /// `inet` (869): an IPv4 or IPv6 address with its netmask (`client_addr`).
    Inet,
    /// `regtype` (2206): a type's OID printed as its name, what `pg_typeof` returns.
    Regtype,
}

/// PostgreSQL's type categories (`typcategory`), which drive implicit coercion choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Bool,
    Numeric,
    String,
    DateTime,
    Timespan,
    Array,
    Pseudo,
    /// `U`: user-defined and miscellaneous types (xid8, pg_snapshot, xid).
    User,
    /// `I`: network addresses (inet).
    Network,
    Unknown,
}

impl Type {
    /// The type's OID (`pg_type.oid`).
    pub fn oid(self) -> u32 {
        match self {
            Type::Bool => 16,
            Type::Int2 => 21,
            Type::Int4 => 23,
            Type::Int8 => 20,
            Type::Numeric => 1700,
            Type::Float8 => 701,
            Type::Text => 25,
            Type::Name => 19,
            Type::Timestamptz => 1184,
            Type::Interval => 1186,
            Type::TextArray => 1009,
            Type::Oid => 26,
            Type::Void => 2278,
            Type::Unknown => 705,
            Type::Xid8 => 5069,
            Type::PgSnapshot => 5038,
            Type::TxidSnapshot => 2970,
            Type::Xid => 28,
            Type::Inet => 869,
            Type::Regtype => 2206,
        }
    }

    /// The type with OID `oid`, if this crate carries it (a Parse message's parameter types).
    pub fn from_oid(oid: u32) -> Option<Type> {
        [
            Type::Bool,
            Type::Int2,
            Type::Int4,
            Type::Int8,
            Type::Numeric,
            Type::Float8,
            Type::Text,
            Type::Name,
            Type::Timestamptz,
            Type::Interval,
            Type::TextArray,
            Type::Oid,
            Type::Void,
            Type::Unknown,
            Type::Xid8,
            Type::PgSnapshot,
            Type::TxidSnapshot,
            Type::Xid,
            Type::Inet,
            Type::Regtype,
        ]
        .into_iter()
        .find(|t| t.oid() == oid)
    }

    /// The type's length (`pg_type.typlen`): -1 for varlena, -2 for C strings.
    pub fn typlen(self) -> i16 {
        match self {
            Type::Bool => 1,
            Type::Int2 => 2,
            Type::Int4 | Type::Oid | Type::Void | Type::Xid | Type::Regtype => 4,
            Type::Int8 | Type::Float8 | Type::Timestamptz | Type::Xid8 => 8,
            Type::Interval => 16,
            Type::Name => 64,
            Type::Unknown => -2,
            Type::Numeric
            | Type::Text
            | Type::TextArray
            | Type::PgSnapshot
            | Type::TxidSnapshot
            | Type::Inet => -1,
        }
    }

    /// The name `format_type` prints (`integer`, `timestamp with time zone`), as in messages.
    pub fn sql_name(self) -> &'static str {
        match self {
            Type::Bool => "boolean",
            Type::Int2 => "smallint",
            Type::Int4 => "integer",
            Type::Int8 => "bigint",
            Type::Numeric => "numeric",
            Type::Float8 => "double precision",
            Type::Text => "text",
            Type::Name => "name",
            Type::Timestamptz => "timestamp with time zone",
            Type::Interval => "interval",
            Type::TextArray => "text[]",
            Type::Oid => "oid",
            Type::Void => "void",
            Type::Unknown => "unknown",
            Type::Xid8 => "xid8",
            Type::PgSnapshot => "pg_snapshot",
            Type::TxidSnapshot => "txid_snapshot",
            Type::Xid => "xid",
            Type::Inet => "inet",
            Type::Regtype => "regtype",
        }
    }

    /// The catalog name (`typname`: `int4`, `timestamptz`), which a cast's column is named after.
    pub fn typname(self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Int2 => "int2",
            Type::Int4 => "int4",
            Type::Int8 => "int8",
            Type::Numeric => "numeric",
            Type::Float8 => "float8",
            Type::Text => "text",
            Type::Name => "name",
            Type::Timestamptz => "timestamptz",
            Type::Interval => "interval",
            Type::TextArray => "_text",
            Type::Oid => "oid",
            Type::Void => "void",
            Type::Unknown => "unknown",
            Type::Xid8 => "xid8",
            Type::PgSnapshot => "pg_snapshot",
            Type::TxidSnapshot => "txid_snapshot",
            Type::Xid => "xid",
            Type::Inet => "inet",
            Type::Regtype => "regtype",
        }
    }

    pub(crate) fn category(self) -> Category {
        match self {
            Type::Bool => Category::Bool,
            Type::Int2
            | Type::Int4
            | Type::Int8
            | Type::Numeric
            | Type::Float8
            | Type::Oid
            | Type::Regtype => Category::Numeric,
            Type::Text | Type::Name => Category::String,
            Type::Timestamptz => Category::DateTime,
            Type::Interval => Category::Timespan,
            Type::TextArray => Category::Array,
            Type::Void => Category::Pseudo,
            Type::Unknown => Category::Unknown,
            Type::Xid8 | Type::PgSnapshot | Type::TxidSnapshot | Type::Xid => Category::User,
            Type::Inet => Category::Network,
        }
    }

    pub(crate) fn is_preferred(self) -> bool {
        matches!(
            self,
            Type::Bool
                | Type::Float8
                | Type::Text
                | Type::Timestamptz
                | Type::Interval
                | Type::Oid
                | Type::Inet
        )
    }

    /// Rank in the numeric promotion order int2 < int4 < int8 < numeric < float8.
    pub(crate) fn numeric_rank(self) -> Option<u8> {
        match self {
            Type::Int2 => Some(0),
            Type::Int4 => Some(1),
            Type::Int8 => Some(2),
            Type::Numeric => Some(3),
            Type::Float8 => Some(4),
            _ => None,
        }
    }

    pub(crate) fn is_integer(self) -> bool {
        matches!(self, Type::Int2 | Type::Int4 | Type::Int8)
    }

    /// Whether PostgreSQL has an implicit cast from `self` to `to` (pg_cast, castcontext 'i').
    pub(crate) fn implicitly_casts_to(self, to: Type) -> bool {
        if self == to || self == Type::Unknown {
            return true;
        }
        if let (Some(a), Some(b)) = (self.numeric_rank(), to.numeric_rank()) {
            return a < b;
        }
        matches!(
            (self, to),
            (Type::Name, Type::Text)
                | (Type::Text, Type::Name)
                | (Type::Int2 | Type::Int4 | Type::Int8, Type::Oid)
                | (Type::Oid, Type::Int8 | Type::Numeric | Type::Float8)
        )
    }

    /// Looks a type name up as the grammar and `typenameType` would, with its aliases
    /// (`int`, `integer`, `int4`; `float`, `double precision`; `timestamptz`; `varchar`...).
    /// Returns `None` for a name PostgreSQL has but this crate does not carry.
    pub(crate) fn from_name(name: &str) -> Option<Type> {
        Some(match name {
            "bool" | "boolean" => Type::Bool,
            "int2" | "smallint" => Type::Int2,
            "int" | "int4" | "integer" => Type::Int4,
            "int8" | "bigint" => Type::Int8,
            "numeric" | "decimal" => Type::Numeric,
            "float8" | "double precision" | "float" => Type::Float8,
            "text" => Type::Text,
            "name" => Type::Name,
            "timestamptz" | "timestamp with time zone" => Type::Timestamptz,
            "interval" => Type::Interval,
            "oid" => Type::Oid,
            "void" => Type::Void,
            "unknown" => Type::Unknown,
            "_text" | "text[]" => Type::TextArray,
            "xid8" => Type::Xid8,
            "pg_snapshot" => Type::PgSnapshot,
            "txid_snapshot" => Type::TxidSnapshot,
            "xid" => Type::Xid,
            "inet" => Type::Inet,
            "regtype" => Type::Regtype,
            _ => return None,
        })
    }
}

/// Whether `name` is a type PostgreSQL has that this crate does not (so the error can say
/// "not supported" rather than "does not exist").
pub(crate) fn known_unsupported_type(name: &str) -> bool {
    matches!(
        name,
        "real"
            | "float4"
            | "varchar"
            | "character varying"
            | "char"
            | "character"
            | "bpchar"
            | "date"
            | "time"
            | "timetz"
            | "timestamp"
            | "timestamp without time zone"
            | "time without time zone"
            | "time with time zone"
            | "bytea"
            | "json"
            | "jsonb"
            | "uuid"
            | "cidr"
            | "money"
            | "xml"
            | "regclass"
            | "regproc"
            | "bit"
            | "varbit"
            | "point"
            | "int2vector"
            | "oidvector"
            | "pg_lsn"
    )
}
