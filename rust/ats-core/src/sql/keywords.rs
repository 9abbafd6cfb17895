//! The fixed SQL word tables: keywords and the words the summary extractor
//! reacts to, looked up once per word and then compared as small integers.
//!
//! Keyword membership (flag `KW`) decides only three cosmetic/structural
//! things: a keyword is upper-cased in `text`; a keyword is not an operand
//! (so `- 5` after it is a sign); a keyword is never taken for a table name.
//! It does NOT affect `air_id`: words are hashed case-folded whether or not
//! they are keywords, so extending this list never changes a fingerprint.
//!
//! The keyword set holds words reserved in PostgreSQL, MySQL or SQLite plus
//! statement verbs. Non-reserved words that are common column names (`name`,
//! `type`, `key`, `value`, `status`, `date`, `time`, `year`, `user`, `count`,
//! `data`, ...) are deliberately absent so identifiers keep their spelling.

use std::sync::OnceLock;

/// Upper-cased and reserved-ish: rendered in upper case.
pub(crate) const KW: u8 = 1;
/// A keyword that can still end an operand (`NULL - 1`, `CURRENT_DATE - 7`).
pub(crate) const OPERAND: u8 = 2;
/// Can name a statement's operation when it leads the statement.
pub(crate) const STMT: u8 = 4;
/// A query operation (`SELECT`, `INSERT`, ...) that may start a parenthesised
/// subquery or follow `WITH`/`EXPLAIN`.
pub(crate) const QUERY: u8 = 8;
/// Skipped between a table-introducing keyword and the table name.
pub(crate) const SKIP: u8 = 16;

/// Sorted by name, upper case.
static WORDS: &[(&str, u8)] = &[
    ("ABORT", KW | SKIP),
    ("ADD", KW),
    ("ALL", KW),
    ("ALTER", KW | STMT),
    ("ANALYZE", KW | STMT),
    ("AND", KW),
    ("ANY", KW),
    ("ARRAY", KW),
    ("AS", KW),
    ("ASC", KW),
    ("ATTACH", KW | STMT),
    ("AUTOINCREMENT", KW),
    ("BEGIN", KW | STMT),
    ("BETWEEN", KW),
    ("BIGINT", KW),
    ("BOOLEAN", KW),
    ("BOTH", KW),
    ("BY", KW),
    ("CALL", KW | STMT),
    ("CASCADE", KW),
    ("CASE", KW),
    ("CAST", KW),
    ("CHECK", KW),
    ("CHECKPOINT", STMT),
    ("CLOSE", KW | STMT),
    ("CLUSTER", STMT),
    ("COALESCE", KW),
    ("COLLATE", KW),
    ("COLUMN", KW),
    ("COMMENT", STMT),
    ("COMMIT", KW | STMT),
    ("CONFLICT", KW),
    ("CONSTRAINT", KW),
    ("COPY", KW | STMT),
    ("CREATE", KW | STMT),
    ("CROSS", KW),
    ("CURRENT_DATE", KW | OPERAND),
    ("CURRENT_TIME", KW | OPERAND),
    ("CURRENT_TIMESTAMP", KW | OPERAND),
    ("CURRENT_USER", KW | OPERAND),
    ("CURSOR", KW),
    ("DEALLOCATE", KW | STMT),
    ("DECLARE", KW | STMT),
    ("DEFAULT", KW),
    ("DEFERRABLE", KW),
    ("DELAYED", SKIP),
    ("DELETE", KW | STMT | QUERY),
    ("DESC", KW),
    ("DESCRIBE", KW | STMT),
    ("DETACH", KW | STMT),
    ("DISCARD", STMT),
    ("DISTINCT", KW),
    ("DO", KW | STMT),
    ("DROP", KW | STMT),
    ("DUPLICATE", KW),
    ("ELSE", KW),
    ("END", KW | OPERAND | STMT),
    ("ESCAPE", KW),
    ("EXCEPT", KW),
    ("EXCLUSIVE", KW),
    ("EXEC", KW | STMT),
    ("EXECUTE", KW | STMT),
    ("EXISTS", KW | SKIP),
    ("EXPLAIN", KW | STMT),
    ("EXTERNAL", 0),
    ("EXTRACT", KW),
    ("FAIL", SKIP),
    ("FALSE", KW | OPERAND),
    ("FETCH", KW | STMT),
    ("FILTER", KW),
    ("FOR", KW),
    ("FOREIGN", KW),
    ("FROM", KW),
    ("FULL", KW),
    ("FUNCTION", KW),
    ("GLOB", KW),
    ("GLOBAL", 0),
    ("GRANT", KW | STMT),
    ("GROUP", KW),
    ("HAVING", KW),
    ("HIGH_PRIORITY", SKIP),
    ("IF", KW | SKIP),
    ("IGNORE", SKIP),
    ("ILIKE", KW),
    ("IN", KW),
    ("INDEX", KW),
    ("INNER", KW),
    ("INSERT", KW | STMT | QUERY),
    ("INTEGER", KW),
    ("INTERSECT", KW),
    ("INTERVAL", KW),
    ("INTO", KW | SKIP),
    ("IS", KW),
    ("ISNULL", KW),
    ("JOIN", KW),
    ("LATERAL", KW | SKIP),
    ("LEADING", KW),
    ("LEFT", KW),
    ("LIKE", KW),
    ("LIMIT", KW),
    ("LISTEN", KW | STMT),
    ("LOAD", STMT),
    ("LOCAL", 0),
    ("LOCALTIME", KW | OPERAND),
    ("LOCALTIMESTAMP", KW | OPERAND),
    ("LOCK", KW | STMT),
    ("LOW_PRIORITY", SKIP),
    ("MATCHED", KW),
    ("MERGE", KW | STMT | QUERY),
    ("NATURAL", KW),
    ("NOT", KW | SKIP),
    ("NOTHING", KW),
    ("NOTIFY", KW | STMT),
    ("NOTNULL", KW),
    ("NOWAIT", KW),
    ("NULL", KW | OPERAND),
    ("NULLS", KW),
    ("OFFSET", KW),
    ("ON", KW),
    ("ONLY", KW | SKIP),
    ("OPTIMIZE", STMT),
    ("OR", KW | SKIP),
    ("ORDER", KW),
    ("OUTER", KW),
    ("OVER", KW),
    ("PARTITION", KW),
    ("PRAGMA", KW | STMT),
    ("PREPARE", KW | STMT),
    ("PRIMARY", KW),
    ("PROCEDURE", KW),
    ("QUICK", SKIP),
    ("RECURSIVE", KW),
    ("REFERENCES", KW),
    ("REFRESH", STMT),
    ("REGEXP", KW),
    ("REINDEX", STMT),
    ("RELEASE", KW | STMT),
    ("RENAME", KW | STMT),
    ("REPLACE", KW | STMT | QUERY | SKIP),
    ("RESET", STMT),
    ("RETURNING", KW),
    ("REVOKE", KW | STMT),
    ("RIGHT", KW),
    ("ROLLBACK", KW | STMT | SKIP),
    ("SAVEPOINT", KW | STMT),
    ("SELECT", KW | STMT | QUERY),
    ("SET", KW | STMT),
    ("SHOW", KW | STMT),
    ("SIMILAR", KW),
    ("SOME", KW),
    ("START", KW | STMT),
    ("STRAIGHT_JOIN", 0),
    ("TABLE", KW | STMT | QUERY | SKIP),
    ("TABLES", KW | SKIP),
    ("TEMP", KW | SKIP),
    ("TEMPORARY", KW | SKIP),
    ("THEN", KW),
    ("TO", KW),
    ("TRAILING", KW),
    ("TRANSACTION", KW),
    ("TRIGGER", KW),
    ("TRUE", KW | OPERAND),
    ("TRUNCATE", KW | STMT),
    ("UNION", KW),
    ("UNIQUE", KW),
    ("UNLISTEN", KW | STMT),
    ("UNLOCK", STMT),
    ("UNLOGGED", SKIP),
    ("UPDATE", KW | STMT | QUERY),
    ("UPSERT", KW | STMT | QUERY),
    ("USE", KW | STMT),
    ("USING", KW),
    ("VACUUM", KW | STMT),
    ("VALUES", KW | STMT | QUERY),
    ("VARCHAR", KW),
    ("VERBOSE", 0),
    ("VIEW", KW),
    ("VIRTUAL", 0),
    ("WHEN", KW),
    ("WHERE", KW),
    ("WINDOW", KW),
    ("WITH", KW | STMT),
];

/// A known word: an index into the table, compared as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Word(u8);

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl Word {
    /// Compile-time lookup (fails the build for an unknown name).
    pub(crate) const fn of(name: &str) -> Word {
        let mut i = 0;
        while i < WORDS.len() {
            if str_eq(WORDS[i].0, name) {
                return Word(i as u8);
            }
            i += 1;
        }
        panic!("word not in table");
    }

    pub(crate) fn name(self) -> &'static str {
        WORDS[self.0 as usize].0
    }

    #[inline]
    pub(crate) fn has(self, flag: u8) -> bool {
        WORDS[self.0 as usize].1 & flag != 0
    }

    #[inline]
    pub(crate) fn is_kw(self) -> bool {
        self.has(KW)
    }
}

/// Words compared against by name in the normaliser and summary extractor.
pub(crate) mod w {
    use super::Word;
    pub const ALTER: Word = Word::of("ALTER");
    pub const ANALYZE: Word = Word::of("ANALYZE");
    pub const ARRAY: Word = Word::of("ARRAY");
    pub const AS: Word = Word::of("AS");
    pub const COPY: Word = Word::of("COPY");
    pub const CREATE: Word = Word::of("CREATE");
    pub const DELETE: Word = Word::of("DELETE");
    pub const DISTINCT: Word = Word::of("DISTINCT");
    pub const DROP: Word = Word::of("DROP");
    pub const EXPLAIN: Word = Word::of("EXPLAIN");
    pub const EXTERNAL: Word = Word::of("EXTERNAL");
    pub const FALSE: Word = Word::of("FALSE");
    pub const FOREIGN: Word = Word::of("FOREIGN");
    pub const FROM: Word = Word::of("FROM");
    pub const GLOBAL: Word = Word::of("GLOBAL");
    pub const IN: Word = Word::of("IN");
    pub const INDEX: Word = Word::of("INDEX");
    pub const INSERT: Word = Word::of("INSERT");
    pub const INTO: Word = Word::of("INTO");
    pub const IS: Word = Word::of("IS");
    pub const JOIN: Word = Word::of("JOIN");
    pub const LOCAL: Word = Word::of("LOCAL");
    pub const LOCK: Word = Word::of("LOCK");
    pub const MERGE: Word = Word::of("MERGE");
    pub const NOT: Word = Word::of("NOT");
    pub const ON: Word = Word::of("ON");
    pub const RECURSIVE: Word = Word::of("RECURSIVE");
    pub const RENAME: Word = Word::of("RENAME");
    pub const REPLACE: Word = Word::of("REPLACE");
    pub const SELECT: Word = Word::of("SELECT");
    pub const STRAIGHT_JOIN: Word = Word::of("STRAIGHT_JOIN");
    pub const TABLE: Word = Word::of("TABLE");
    pub const TABLES: Word = Word::of("TABLES");
    pub const TEMP: Word = Word::of("TEMP");
    pub const TEMPORARY: Word = Word::of("TEMPORARY");
    pub const TRUE: Word = Word::of("TRUE");
    pub const TRUNCATE: Word = Word::of("TRUNCATE");
    pub const UNLOGGED: Word = Word::of("UNLOGGED");
    pub const UPDATE: Word = Word::of("UPDATE");
    pub const UPSERT: Word = Word::of("UPSERT");
    pub const USING: Word = Word::of("USING");
    pub const VALUES: Word = Word::of("VALUES");
    pub const VERBOSE: Word = Word::of("VERBOSE");
    pub const VIRTUAL: Word = Word::of("VIRTUAL");
    pub const WITH: Word = Word::of("WITH");
}

/// Longest word in the table (`CURRENT_TIMESTAMP`).
const MAX_LEN: usize = 24;

fn pack(up: &[u8]) -> (u128, u64) {
    let mut a = [0u8; 16];
    let mut b = [0u8; 8];
    let n = up.len().min(16);
    a[..n].copy_from_slice(&up[..n]);
    if up.len() > 16 {
        b[..up.len() - 16].copy_from_slice(&up[16..]);
    }
    (u128::from_le_bytes(a), u64::from_le_bytes(b))
}

/// (packed upper-case name, index), sorted by the packed key: binary search
/// on integers instead of string comparisons.
fn index() -> &'static [((u128, u64), u8)] {
    static INDEX: OnceLock<Vec<((u128, u64), u8)>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut v: Vec<_> = WORDS
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (pack(s.as_bytes()), i as u8))
            .collect();
        v.sort_unstable();
        v
    })
}

/// The table entry for `word` (any case), if any.
#[inline]
pub(crate) fn lookup(word: &str) -> Option<Word> {
    let b = word.as_bytes();
    if b.len() < 2 || b.len() > MAX_LEN {
        return None;
    }
    let mut buf = [0u8; MAX_LEN];
    for (d, s) in buf.iter_mut().zip(b) {
        if !s.is_ascii_alphabetic() && *s != b'_' {
            return None;
        }
        *d = s.to_ascii_uppercase();
    }
    let key = pack(&buf[..b.len()]);
    let idx = index();
    idx.binary_search_by(|(k, _)| k.cmp(&key))
        .ok()
        .map(|i| Word(idx[i].1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sorted_and_lookup_works() {
        assert!(
            WORDS.windows(2).all(|p| p[0].0 < p[1].0),
            "table must be sorted and unique"
        );
        assert!(WORDS.len() <= 256 && WORDS.iter().all(|(s, _)| s.len() <= MAX_LEN));
        for (i, (s, _)) in WORDS.iter().enumerate() {
            assert_eq!(lookup(s), Some(Word(i as u8)));
            assert_eq!(lookup(&s.to_lowercase()), Some(Word(i as u8)));
        }
        assert_eq!(lookup("SeLeCt"), Some(w::SELECT));
        assert!(w::SELECT.is_kw() && w::SELECT.has(STMT) && w::SELECT.has(QUERY));
        assert!(!lookup("comment").is_some_and(Word::is_kw));
        assert_eq!(lookup("users"), None);
        assert_eq!(lookup("name"), None);
        assert_eq!(lookup("count"), None);
        assert_eq!(lookup("é"), None);
        assert_eq!(lookup("select1"), None);
    }
}
