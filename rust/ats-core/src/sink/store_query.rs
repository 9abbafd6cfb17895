//! Ad-hoc read queries on a store, through the writer's own SQLite.
//!
//! Python's `sqlite3` module links a different copy of SQLite than the
//! bundled one the store sink writes with. Two copies on one WAL database in
//! one process do not share POSIX lock bookkeeping: one copy closing its file
//! drops the other's locks, and the next opener believes it is alone and
//! truncates the `-shm` file the writer has mapped (SIGBUS; sqlite.org
//! "How To Corrupt", §2.2.1). A process whose pipeline has the store open
//! reads it through here instead.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params_from_iter, OpenFlags};

use super::error::StoreError;

/// One SQLite value of a result row (or a bound parameter).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<ValueRef<'_>> for StoreValue {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => StoreValue::Null,
            ValueRef::Integer(i) => StoreValue::Integer(i),
            ValueRef::Real(f) => StoreValue::Real(f),
            // Text the store did not write may be invalid UTF-8: a defined result, not an error.
            ValueRef::Text(t) => StoreValue::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => StoreValue::Blob(b.to_vec()),
        }
    }
}

impl From<StoreValue> for Value {
    fn from(v: StoreValue) -> Self {
        match v {
            StoreValue::Null => Value::Null,
            StoreValue::Integer(i) => Value::Integer(i),
            StoreValue::Real(f) => Value::Real(f),
            StoreValue::Text(s) => Value::Text(s),
            StoreValue::Blob(b) => Value::Blob(b),
        }
    }
}

/// Runs one read-only statement on the database at `path` (a file path or a
/// `file:` URI) and returns every row. Writes fail: the connection is opened
/// read-only.
pub fn query(path: &Path, sql: &str, params: Vec<StoreValue>) -> Result<Vec<Vec<StoreValue>>, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = rusqlite::Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut stmt = conn.prepare(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query(params_from_iter(params.into_iter().map(Value::from)))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push((0..columns).map(|i| row.get_ref(i).map(StoreValue::from)).collect::<Result<Vec<_>, _>>()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_of_every_type_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (a, b, c, d, e); \
                         INSERT INTO t VALUES (1, 2.5, 'x', x'00ff', NULL), (2, 0.0, CAST(x'ff41' AS TEXT), x'', 7);")
            .unwrap();
        let rows = query(&path, "SELECT a, b, c, d, e FROM t WHERE a >= ? ORDER BY a", vec![StoreValue::Integer(1)])
            .unwrap();
        assert_eq!(rows, vec![
            vec![StoreValue::Integer(1), StoreValue::Real(2.5), StoreValue::Text("x".into()),
                 StoreValue::Blob(vec![0, 255]), StoreValue::Null],
            vec![StoreValue::Integer(2), StoreValue::Real(0.0), StoreValue::Text("\u{fffd}A".into()),
                 StoreValue::Blob(vec![]), StoreValue::Integer(7)],
        ]);
        // Read while the writer keeps its connection open (the in-process case).
        c.execute("INSERT INTO t (a) VALUES (3)", []).unwrap();
        assert_eq!(query(&path, "SELECT count(*) FROM t", vec![]).unwrap(), vec![vec![StoreValue::Integer(3)]]);
        assert!(matches!(query(&path, "DELETE FROM t", vec![]), Err(StoreError::Sqlite(_))));
        assert!(matches!(query(&dir.path().join("none.db"), "SELECT 1", vec![]), Err(StoreError::Sqlite(_))));
    }
}
