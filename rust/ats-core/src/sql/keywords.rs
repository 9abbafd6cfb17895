//! The fixed SQL keyword set.
//!
//! Membership decides only three cosmetic/structural things: a keyword is
//! upper-cased in `text`; a keyword is not an operand (so `- 5` after it is a
//! sign); a keyword is never taken for a table name. It does NOT affect
//! `air_id`: words are hashed case-folded whether or not they are keywords, so
//! extending this list never changes a fingerprint.
//!
//! The list holds words that are reserved in PostgreSQL, MySQL or SQLite plus
//! statement verbs. Non-reserved words that are common column names (`name`,
//! `type`, `key`, `value`, `status`, `date`, `time`, `year`, `user`, `level`,
//! `data`, ...) are deliberately absent so identifiers keep the case they were
//! written in.

/// Sorted (for binary search), upper case.
static KEYWORDS: &[&str] = &[
    "ABORT",
    "ADD",
    "ALL",
    "ALTER",
    "ANALYZE",
    "AND",
    "ANY",
    "ARRAY",
    "AS",
    "ASC",
    "ATTACH",
    "AUTOINCREMENT",
    "BEGIN",
    "BETWEEN",
    "BIGINT",
    "BOOLEAN",
    "BOTH",
    "BY",
    "CALL",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "CLOSE",
    "COALESCE",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "COPY",
    "CREATE",
    "CROSS",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "CURSOR",
    "DEALLOCATE",
    "DECLARE",
    "DEFAULT",
    "DEFERRABLE",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DETACH",
    "DISTINCT",
    "DO",
    "DROP",
    "DUPLICATE",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXCLUSIVE",
    "EXEC",
    "EXECUTE",
    "EXISTS",
    "EXPLAIN",
    "EXTRACT",
    "FALSE",
    "FETCH",
    "FILTER",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "FUNCTION",
    "GLOB",
    "GRANT",
    "GROUP",
    "HAVING",
    "IF",
    "ILIKE",
    "IN",
    "INDEX",
    "INNER",
    "INSERT",
    "INTEGER",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "ISNULL",
    "JOIN",
    "LATERAL",
    "LEADING",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LISTEN",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "LOCK",
    "MATCHED",
    "MERGE",
    "NATURAL",
    "NOT",
    "NOTHING",
    "NOTIFY",
    "NOTNULL",
    "NOWAIT",
    "NULL",
    "NULLS",
    "OFFSET",
    "ON",
    "ONLY",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "PARTITION",
    "PRAGMA",
    "PREPARE",
    "PRIMARY",
    "PROCEDURE",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RETURNING",
    "REVOKE",
    "RIGHT",
    "ROLLBACK",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "SHOW",
    "SIMILAR",
    "SOME",
    "START",
    "TABLE",
    "TABLES",
    "TEMP",
    "TEMPORARY",
    "THEN",
    "TO",
    "TRAILING",
    "TRANSACTION",
    "TRIGGER",
    "TRUE",
    "TRUNCATE",
    "UNION",
    "UNIQUE",
    "UNLISTEN",
    "UPDATE",
    "UPSERT",
    "USE",
    "USING",
    "VACUUM",
    "VALUES",
    "VARCHAR",
    "VIEW",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
];

/// Keywords that can still end an operand (`NULL - 1`, `CURRENT_DATE - 7`).
pub(crate) fn is_operand_keyword(kw: &str) -> bool {
    matches!(
        kw,
        "NULL"
            | "TRUE"
            | "FALSE"
            | "CURRENT_DATE"
            | "CURRENT_TIME"
            | "CURRENT_TIMESTAMP"
            | "CURRENT_USER"
            | "LOCALTIME"
            | "LOCALTIMESTAMP"
            | "END"
    )
}

/// The canonical upper-case keyword for `word`, if it is one.
pub(crate) fn keyword(word: &str) -> Option<&'static str> {
    let w = word.as_bytes();
    if w.len() > 20 || w.len() < 2 {
        return None;
    }
    let mut buf = [0u8; 20];
    for (d, s) in buf.iter_mut().zip(w) {
        if *s >= 0x80 {
            return None;
        }
        *d = s.to_ascii_uppercase();
    }
    let up = std::str::from_utf8(&buf[..w.len()]).ok()?;
    KEYWORDS.binary_search(&up).ok().map(|i| KEYWORDS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_found() {
        assert!(
            KEYWORDS.windows(2).all(|w| w[0] < w[1]),
            "keyword list must be sorted and unique"
        );
        assert_eq!(keyword("select"), Some("SELECT"));
        assert_eq!(keyword("SeLeCt"), Some("SELECT"));
        assert_eq!(keyword("users"), None);
        assert_eq!(keyword("name"), None);
        assert_eq!(keyword("é"), None);
    }
}
