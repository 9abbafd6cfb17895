//! SQL dialects the lexer knows, and the per-dialect lexical switches.
//!
//! A dialect changes only *lexing* (which quote is a string, which byte opens a
//! comment, which placeholder styles exist); the normalisation and fingerprint
//! rules are the same for all of them.

use std::fmt;
use std::str::FromStr;

/// The SQL dialect a statement is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    Postgresql,
    /// MySQL and MariaDB.
    Mysql,
    Sqlite,
    /// Anything else (SQL Server, Oracle, Snowflake, unknown). Lexes
    /// conservatively: when in doubt a construct is read so that more, not
    /// less, is redacted.
    Generic,
}

/// Returned by [`Dialect::from_str`] for a name that is not a known dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown SQL dialect {0:?}; expected one of: postgresql (postgres, pg), \
     mysql (mariadb), sqlite (sqlite3), generic"
)]
pub struct UnknownDialect(pub String);

impl Dialect {
    /// Every dialect, in a fixed order (handy for tests and fuzzing).
    pub const ALL: [Dialect; 4] = [
        Dialect::Postgresql,
        Dialect::Mysql,
        Dialect::Sqlite,
        Dialect::Generic,
    ];

    /// Canonical lower-case name, as stored in the record envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Postgresql => "postgresql",
            Dialect::Mysql => "mysql",
            Dialect::Sqlite => "sqlite",
            Dialect::Generic => "generic",
        }
    }

    /// Does a backslash escape the next character inside `'...'`?
    /// MySQL: yes by default. Generic: yes, because reading an escape where
    /// there is none only makes a string longer (over-redaction), while
    /// missing one would end a string early and leak its tail.
    pub(crate) fn backslash_escapes(self) -> bool {
        matches!(self, Dialect::Mysql | Dialect::Generic)
    }

    /// `"..."` is a string literal (MySQL without ANSI_QUOTES), not an identifier.
    pub(crate) fn double_quote_is_string(self) -> bool {
        matches!(self, Dialect::Mysql)
    }

    /// `$$...$$` / `$tag$...$tag$` strings (PostgreSQL; Snowflake and others via generic).
    pub(crate) fn dollar_quotes(self) -> bool {
        matches!(self, Dialect::Postgresql | Dialect::Generic)
    }

    /// `/* /* */ */` nests (PostgreSQL; generic, where nesting only redacts more).
    pub(crate) fn nested_comments(self) -> bool {
        matches!(self, Dialect::Postgresql | Dialect::Generic)
    }

    /// `[name]` is a quoted identifier (SQLite, SQL Server via generic).
    pub(crate) fn bracket_identifiers(self) -> bool {
        matches!(self, Dialect::Sqlite | Dialect::Generic)
    }

    /// `E'..'` (backslash-escaped) and `U&'..'` string prefixes.
    pub(crate) fn escape_string_prefix(self) -> bool {
        matches!(self, Dialect::Postgresql | Dialect::Generic)
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "postgresql" | "postgres" | "pg" => Ok(Dialect::Postgresql),
            "mysql" | "mariadb" => Ok(Dialect::Mysql),
            "sqlite" | "sqlite3" => Ok(Dialect::Sqlite),
            "generic" => Ok(Dialect::Generic),
            _ => Err(UnknownDialect(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aliases_case_insensitively() {
        for (s, d) in [
            ("postgresql", Dialect::Postgresql),
            ("Postgres", Dialect::Postgresql),
            ("PG", Dialect::Postgresql),
            ("mysql", Dialect::Mysql),
            ("MariaDB", Dialect::Mysql),
            ("sqlite", Dialect::Sqlite),
            ("SQLite3", Dialect::Sqlite),
            ("generic", Dialect::Generic),
        ] {
            assert_eq!(s.parse::<Dialect>(), Ok(d), "{s}");
        }
        for d in Dialect::ALL {
            assert_eq!(d.as_str().parse::<Dialect>(), Ok(d));
            assert_eq!(d.to_string(), d.as_str());
        }
    }

    #[test]
    fn unknown_dialect_names_value_and_allowed() {
        let e = "oracle".parse::<Dialect>().unwrap_err();
        assert_eq!(e, UnknownDialect("oracle".into()));
        assert_eq!(
            e.to_string(),
            "unknown SQL dialect \"oracle\"; expected one of: postgresql (postgres, pg), \
             mysql (mariadb), sqlite (sqlite3), generic"
        );
    }
}
