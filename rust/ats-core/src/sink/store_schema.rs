//! Schema of the embedded store and its forward-only migrations.
//!
//! The version lives in `meta(key, value)` as `schema_version`, next to
//! `ats_version` (the ATS schema the rows follow, `4.0.0`). [`MIGRATIONS`]`[i]`
//! takes a store from version `i` to `i + 1`; a brand-new file is version 0,
//! so creating a store and upgrading an old one run the same code. A store
//! whose version is newer than [`SCHEMA_VERSION`] is refused with
//! [`StoreError::SchemaTooNew`] rather than written with a layout we don't know.
//!
//! Column conventions (readers such as the CLI rely on them):
//! - ids are lower-case hex text: `trace_id` 32 digits, `span_id` / `parent_id`
//!   16 digits; a zero (absent) id is `NULL` except in `spans`, where ids are
//!   always present.
//! - `air_id` is `air:Q-{16 hex}`, `plan_hash` is `ph:{16 hex}`, `NULL` when absent.
//! - times are Unix nanoseconds (`INTEGER`); values above `i64::MAX` (after the
//!   year 2262) are stored as `i64::MAX`. `io_bytes` / `rows` saturate the same way.
//! - `attributes` / `labels` / `histogram` are JSON text written by
//!   [`super::json`]: ints stay ints, floats stay floats (`2.0`), bools are bools.
//! - floats that are NaN or infinite are stored as `NULL`.
//! - indexes cover what the CLI filters on: trace id, start time, name/event
//!   and air id. The `air_id` / log `trace_id` indexes are partial (`IS NOT NULL`)
//!   so rows without them cost no index work; SQLite still uses them for
//!   `col = ?` lookups.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::error::StoreError;

/// Current schema version written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// The ATS schema version recorded in `meta.ats_version`.
pub const ATS_VERSION: &str = "4.0.0";

const V1: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE spans (
    trace_id   TEXT NOT NULL,
    span_id    TEXT NOT NULL,
    parent_id  TEXT,
    name       TEXT NOT NULL,
    component  TEXT NOT NULL,
    start_ns   INTEGER NOT NULL,
    end_ns     INTEGER NOT NULL,
    status     TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    workspace  TEXT NOT NULL,
    region     TEXT NOT NULL,
    dialect    TEXT NOT NULL,
    air_id     TEXT,
    plan_hash  TEXT,
    attributes TEXT NOT NULL
);
CREATE INDEX spans_trace_id ON spans(trace_id);
CREATE INDEX spans_start_ns ON spans(start_ns);
CREATE INDEX spans_name     ON spans(name);
CREATE INDEX spans_air_id   ON spans(air_id) WHERE air_id IS NOT NULL;

CREATE TABLE logs (
    ts_ns      INTEGER NOT NULL,
    trace_id   TEXT,
    span_id    TEXT,
    event      TEXT NOT NULL,
    component  TEXT NOT NULL,
    severity   INTEGER NOT NULL,
    body       TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    workspace  TEXT NOT NULL,
    region     TEXT NOT NULL,
    dialect    TEXT NOT NULL,
    air_id     TEXT,
    plan_hash  TEXT,
    attributes TEXT NOT NULL
);
CREATE INDEX logs_trace_id ON logs(trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX logs_ts_ns    ON logs(ts_ns);
CREATE INDEX logs_event    ON logs(event);
CREATE INDEX logs_air_id   ON logs(air_id) WHERE air_id IS NOT NULL;

CREATE TABLE metric_points (
    ts_ns     INTEGER NOT NULL,
    start_ns  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    unit      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    tenant    TEXT NOT NULL,
    workspace TEXT NOT NULL,
    region    TEXT NOT NULL,
    dialect   TEXT NOT NULL,
    labels    TEXT NOT NULL,
    value     REAL,
    histogram TEXT
);
CREATE INDEX metric_points_ts_ns ON metric_points(ts_ns);
CREATE INDEX metric_points_name  ON metric_points(name);

CREATE TABLE rewards (
    ts_ns      INTEGER NOT NULL,
    trace_id   TEXT,
    span_id    TEXT,
    tenant     TEXT NOT NULL,
    workspace  TEXT NOT NULL,
    region     TEXT NOT NULL,
    dialect    TEXT NOT NULL,
    air_id     TEXT,
    plan_hash  TEXT,
    class      TEXT NOT NULL,
    latency_ms REAL,
    cpu_ms     REAL,
    io_bytes   INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    success    INTEGER NOT NULL,
    reward     REAL,
    engine     TEXT NOT NULL
);
CREATE INDEX rewards_ts_ns    ON rewards(ts_ns);
CREATE INDEX rewards_trace_id ON rewards(trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX rewards_air_id   ON rewards(air_id) WHERE air_id IS NOT NULL;

CREATE TABLE drops (
    reason TEXT PRIMARY KEY,
    count  INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// `MIGRATIONS[i]` upgrades a store from schema version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1];

/// Bring the schema to [`SCHEMA_VERSION`]; returns the version found before.
pub fn ensure_schema(conn: &mut Connection) -> Result<u32, StoreError> {
    apply_migrations(conn, MIGRATIONS)
}

/// Read `meta.schema_version` (0 when the store is new).
pub fn read_schema_version(conn: &Connection) -> Result<u32, StoreError> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(0);
    }
    let raw: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match raw {
        None => Err(StoreError::InvalidMeta("schema_version is missing".into())),
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| StoreError::InvalidMeta(format!("schema_version {v:?} is not a number"))),
    }
}

/// Run `migrations[found..]` in one IMMEDIATE transaction (so two processes
/// opening a new store at once cannot both create it), then record the new
/// version. Generic over the list so tests can exercise a multi-step upgrade.
pub(crate) fn apply_migrations(
    conn: &mut Connection,
    migrations: &[&str],
) -> Result<u32, StoreError> {
    let target = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    // Fast path without a write lock: the usual case is an up-to-date store.
    let found = read_schema_version(conn)?;
    if found == target {
        return Ok(found);
    }
    if found > target {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: target,
        });
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Re-read under the lock: another process may have migrated meanwhile.
    let found = read_schema_version(&tx)?;
    if found > target {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: target,
        });
    }
    for step in migrations.iter().skip(found as usize) {
        tx.execute_batch(step)?;
    }
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('schema_version', ?1), ('ats_version', ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        rusqlite::params![target.to_string(), ATS_VERSION],
    )?;
    tx.commit()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(conn: &Connection, key: &str) -> Option<String> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .expect("query meta")
    }

    #[test]
    fn fresh_store_gets_current_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(ensure_schema(&mut conn).expect("create"), 0);
        assert_eq!(meta(&conn, "schema_version").as_deref(), Some("1"));
        assert_eq!(meta(&conn, "ats_version").as_deref(), Some("4.0.0"));
        // Re-opening is a no-op.
        assert_eq!(ensure_schema(&mut conn).expect("reopen"), 1);
    }

    #[test]
    fn older_store_is_migrated_step_by_step() {
        let mut conn = Connection::open_in_memory().expect("open");
        apply_migrations(&mut conn, &[V1]).expect("v1");
        conn.execute(
            "INSERT INTO spans(trace_id, span_id, name, component, start_ns, end_ns, status,
                               tenant, workspace, region, dialect, attributes)
             VALUES ('t', 's', 'n', 'c', 1, 2, 'ok', '', '', '', '', '{}')",
            [],
        )
        .expect("row");
        let v2 = "ALTER TABLE spans ADD COLUMN note TEXT; UPDATE spans SET note = 'migrated';";
        assert_eq!(apply_migrations(&mut conn, &[V1, v2]).expect("to v2"), 1);
        assert_eq!(meta(&conn, "schema_version").as_deref(), Some("2"));
        let note: String = conn
            .query_row("SELECT note FROM spans", [], |r| r.get(0))
            .expect("note");
        assert_eq!(note, "migrated");
    }

    #[test]
    fn failed_migration_leaves_old_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        apply_migrations(&mut conn, &[V1]).expect("v1");
        let bad = "ALTER TABLE spans ADD COLUMN x TEXT; SELECT * FROM no_such_table;";
        assert!(matches!(
            apply_migrations(&mut conn, &[V1, bad]),
            Err(StoreError::Sqlite(_))
        ));
        assert_eq!(meta(&conn, "schema_version").as_deref(), Some("1"));
        // The partial step was rolled back with the transaction.
        let cols: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('spans') WHERE name = 'x'",
                [],
                |r| r.get(0),
            )
            .expect("cols");
        assert_eq!(cols, 0);
    }

    #[test]
    fn newer_and_invalid_versions_are_refused() {
        let mut conn = Connection::open_in_memory().expect("open");
        ensure_schema(&mut conn).expect("create");
        conn.execute(
            "UPDATE meta SET value = '7' WHERE key = 'schema_version'",
            [],
        )
        .expect("bump");
        assert!(matches!(
            ensure_schema(&mut conn),
            Err(StoreError::SchemaTooNew {
                found: 7,
                supported: 1
            })
        ));
        conn.execute(
            "UPDATE meta SET value = 'x' WHERE key = 'schema_version'",
            [],
        )
        .expect("garble");
        assert!(matches!(
            ensure_schema(&mut conn),
            Err(StoreError::InvalidMeta(_))
        ));
        conn.execute("DELETE FROM meta", []).expect("delete");
        assert!(matches!(
            ensure_schema(&mut conn),
            Err(StoreError::InvalidMeta(_))
        ));
    }
}
