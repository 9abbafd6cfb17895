//! Schema of the embedded store and its forward-only migrations.
//!
//! The version lives in `meta(key, value)` as `schema_version`, next to
//! `ats_version` (the ATS schema the rows follow, `4.0.0`). [`MIGRATIONS`]`[i]`
//! takes a store from version `i` to `i + 1`; a brand-new file is version 0,
//! so creating a store and upgrading an old one run the same code. A store
//! whose version is newer than [`SCHEMA_VERSION`] is refused with
//! [`StoreError::SchemaTooNew`] rather than written with a layout we don't know.
//!
//! Schema v2 (what this build writes) is laid out for the flusher's write
//! rate; see the "Layout decisions" in [`super::sqlite_store`] for the numbers.
//! Column conventions (readers such as the CLI rely on them):
//! - ids are integers, not text: `span_id` / `parent_id` are the u64 bit-cast
//!   to `INTEGER` (i64), `air_id` / `plan_hash` likewise; a trace id is a
//!   16-byte big-endian `BLOB` (so `lower(hex(trace_id))` is its W3C form).
//!   An absent id (zero / `None`) is `NULL`.
//! - spans do not repeat the trace id: they carry `trace_key`, the local
//!   integer key of their row in `traces` (one row per trace: id, root span
//!   name, first start, last end, span and error counts). Keys are handed out
//!   in arrival order, so the `spans(trace_key)` index is appended to, not
//!   scattered; only the `traces` id index is random, one entry per trace.
//! - the views `spans_v`, `logs_v`, `rewards_v`, `traces_v` render ids the
//!   way the JSONL sink does (32 / 16 hex digits, `air:Q-{16 hex}`,
//!   `ph:{16 hex}`) with the column names of the v1 tables; humans and ad-hoc
//!   SQL use them. Programs look up through the integer columns (see the
//!   helpers in [`super::sqlite_store`]).
//! - times are Unix nanoseconds (`INTEGER`); values above `i64::MAX` (after the
//!   year 2262) are stored as `i64::MAX`. `io_bytes` / `rows` saturate the same way.
//! - `attributes` / `labels` / `histogram` are JSON text written by
//!   [`super::json`]: ints stay ints, floats stay floats (`2.0`), bools are bools.
//! - floats that are NaN or infinite are stored as `NULL`.
//! - indexes cover what the CLI filters on: trace (key / id), start time,
//!   span name / log event and air id. Spans have no time index: every span
//!   starts at or after its trace's `start_ns`, so time ranges and pruning go
//!   through `traces(start_ns)` and then `spans(trace_key)` (one index less
//!   per span row, measured ~15% of the write cost). The `air_id` / log `trace_id` indexes
//!   are partial (`IS NOT NULL`) so rows without them cost no index work;
//!   SQLite still uses them for `col = ?` lookups.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::error::StoreError;

/// Current schema version written by this build.
pub const SCHEMA_VERSION: u32 = 2;

/// The ATS schema version recorded in `meta.ats_version`.
pub const ATS_VERSION: &str = "4.0.0";

/// Tables shared by every layout: `meta`, `metric_points`, `drops`.
const COMMON: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

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

CREATE TABLE drops (
    reason TEXT PRIMARY KEY,
    count  INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// The v1 spans / logs / rewards (hex TEXT ids). Only ever created on the
/// way to v2 when a test replays history; kept to document what v1 was.
const V1_TABLES: &str = r#"
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

"#;

/// v1 → v2: ids become integers / blobs, spans point at a `traces` row.
/// The v1 tables of a (pre-release) v1 store are kept, renamed `v1_*`
/// without their indexes, rather than converted: nothing is deleted.
const V1_TO_V2: &str = r#"
DROP INDEX spans_trace_id; DROP INDEX spans_start_ns; DROP INDEX spans_name; DROP INDEX spans_air_id;
DROP INDEX logs_trace_id; DROP INDEX logs_ts_ns; DROP INDEX logs_event; DROP INDEX logs_air_id;
DROP INDEX rewards_ts_ns; DROP INDEX rewards_trace_id; DROP INDEX rewards_air_id;
ALTER TABLE spans RENAME TO v1_spans;
ALTER TABLE logs RENAME TO v1_logs;
ALTER TABLE rewards RENAME TO v1_rewards;
"#;

/// The v2 tables, indexes and views (after [`V1_TO_V2`] or on a new store).
const V2_TABLES: &str = r#"
CREATE TABLE traces (
    trace_key   INTEGER PRIMARY KEY,
    trace_id    BLOB NOT NULL,
    root_name   TEXT,
    start_ns    INTEGER NOT NULL,
    end_ns      INTEGER NOT NULL,
    span_count  INTEGER NOT NULL,
    error_count INTEGER NOT NULL
);
CREATE UNIQUE INDEX traces_trace_id ON traces(trace_id);
CREATE INDEX traces_start_ns ON traces(start_ns);

CREATE TABLE spans (
    trace_key  INTEGER NOT NULL,
    span_id    INTEGER NOT NULL,
    parent_id  INTEGER,
    name       TEXT NOT NULL,
    component  TEXT NOT NULL,
    start_ns   INTEGER NOT NULL,
    end_ns     INTEGER NOT NULL,
    status     TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    workspace  TEXT NOT NULL,
    region     TEXT NOT NULL,
    dialect    TEXT NOT NULL,
    air_id     INTEGER,
    plan_hash  INTEGER,
    attributes TEXT NOT NULL
);
CREATE INDEX spans_trace_key ON spans(trace_key);
CREATE INDEX spans_name      ON spans(name);
CREATE INDEX spans_air_id    ON spans(air_id) WHERE air_id IS NOT NULL;

CREATE TABLE logs (
    ts_ns      INTEGER NOT NULL,
    trace_id   BLOB,
    span_id    INTEGER,
    event      TEXT NOT NULL,
    component  TEXT NOT NULL,
    severity   INTEGER NOT NULL,
    body       TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    workspace  TEXT NOT NULL,
    region     TEXT NOT NULL,
    dialect    TEXT NOT NULL,
    air_id     INTEGER,
    plan_hash  INTEGER,
    attributes TEXT NOT NULL
);
CREATE INDEX logs_trace_id ON logs(trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX logs_ts_ns    ON logs(ts_ns);
CREATE INDEX logs_event    ON logs(event);
CREATE INDEX logs_air_id   ON logs(air_id) WHERE air_id IS NOT NULL;

CREATE TABLE rewards (
    ts_ns      INTEGER NOT NULL,
    trace_id   BLOB,
    span_id    INTEGER,
    tenant     TEXT NOT NULL,
    workspace  TEXT NOT NULL,
    region     TEXT NOT NULL,
    dialect    TEXT NOT NULL,
    air_id     INTEGER,
    plan_hash  INTEGER,
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

CREATE VIEW traces_v AS
SELECT lower(hex(trace_id)) AS trace_id, root_name, start_ns, end_ns, span_count, error_count
FROM traces;

CREATE VIEW spans_v AS
SELECT lower(hex(t.trace_id)) AS trace_id,
       printf('%016x', s.span_id) AS span_id,
       CASE WHEN s.parent_id IS NULL THEN NULL ELSE printf('%016x', s.parent_id) END AS parent_id,
       s.name, s.component, s.start_ns, s.end_ns, s.status,
       s.tenant, s.workspace, s.region, s.dialect,
       CASE WHEN s.air_id IS NULL THEN NULL ELSE printf('air:Q-%016x', s.air_id) END AS air_id,
       CASE WHEN s.plan_hash IS NULL THEN NULL ELSE printf('ph:%016x', s.plan_hash) END AS plan_hash,
       s.attributes
FROM spans s JOIN traces t ON t.trace_key = s.trace_key;

CREATE VIEW logs_v AS
SELECT ts_ns,
       CASE WHEN trace_id IS NULL THEN NULL ELSE lower(hex(trace_id)) END AS trace_id,
       CASE WHEN span_id IS NULL THEN NULL ELSE printf('%016x', span_id) END AS span_id,
       event, component, severity, body, tenant, workspace, region, dialect,
       CASE WHEN air_id IS NULL THEN NULL ELSE printf('air:Q-%016x', air_id) END AS air_id,
       CASE WHEN plan_hash IS NULL THEN NULL ELSE printf('ph:%016x', plan_hash) END AS plan_hash,
       attributes
FROM logs;

CREATE VIEW rewards_v AS
SELECT ts_ns,
       CASE WHEN trace_id IS NULL THEN NULL ELSE lower(hex(trace_id)) END AS trace_id,
       CASE WHEN span_id IS NULL THEN NULL ELSE printf('%016x', span_id) END AS span_id,
       tenant, workspace, region, dialect,
       CASE WHEN air_id IS NULL THEN NULL ELSE printf('air:Q-%016x', air_id) END AS air_id,
       CASE WHEN plan_hash IS NULL THEN NULL ELSE printf('ph:%016x', plan_hash) END AS plan_hash,
       class, latency_ms, cpu_ms, io_bytes, rows, success, reward, engine
FROM rewards;
"#;

/// One migration: SQL scripts run in order inside one transaction.
pub type Migration = &'static [&'static str];

/// `MIGRATIONS[i]` upgrades a store from schema version `i` to `i + 1`.
pub const MIGRATIONS: &[Migration] = &[&[COMMON, V1_TABLES], &[V1_TO_V2, V2_TABLES]];

/// A brand-new store is created at the current version directly, so it does
/// not carry the renamed, empty `v1_*` tables of the upgrade path.
pub const FRESH: Migration = &[COMMON, V2_TABLES];

/// Bring the schema to [`SCHEMA_VERSION`]; returns the version found before.
pub fn ensure_schema(conn: &mut Connection) -> Result<u32, StoreError> {
    apply_migrations(conn, MIGRATIONS, FRESH)
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
    migrations: &[Migration],
    fresh: Migration,
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
    if found == 0 {
        for sql in fresh {
            tx.execute_batch(sql)?;
        }
    } else {
        for step in migrations.iter().skip(found as usize) {
            for sql in step.iter() {
                tx.execute_batch(sql)?;
            }
        }
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

    const V1: Migration = &[COMMON, V1_TABLES];

    fn tables(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn fresh_store_gets_current_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(ensure_schema(&mut conn).expect("create"), 0);
        assert_eq!(meta(&conn, "schema_version").as_deref(), Some("2"));
        assert_eq!(meta(&conn, "ats_version").as_deref(), Some("4.0.0"));
        // Created at v2 directly: no renamed v1 tables.
        assert_eq!(
            tables(&conn),
            [
                "drops",
                "logs",
                "logs_v",
                "meta",
                "metric_points",
                "rewards",
                "rewards_v",
                "spans",
                "spans_v",
                "traces",
                "traces_v"
            ]
        );
        // Re-opening is a no-op.
        assert_eq!(ensure_schema(&mut conn).expect("reopen"), 2);
    }

    #[test]
    fn v1_store_is_upgraded_keeping_its_rows() {
        let mut conn = Connection::open_in_memory().expect("open");
        apply_migrations(&mut conn, &[V1], V1).expect("v1");
        assert_eq!(meta(&conn, "schema_version").as_deref(), Some("1"));
        conn.execute(
            "INSERT INTO spans(trace_id, span_id, name, component, start_ns, end_ns, status,
                               tenant, workspace, region, dialect, attributes)
             VALUES ('t', 's', 'n', 'c', 1, 2, 'ok', '', '', '', '', '{}')",
            [],
        )
        .expect("row");
        assert_eq!(ensure_schema(&mut conn).expect("to v2"), 1);
        assert_eq!(meta(&conn, "schema_version").as_deref(), Some("2"));
        let old: (String, String) = conn
            .query_row("SELECT trace_id, span_id FROM v1_spans", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("kept row");
        assert_eq!(old, ("t".to_string(), "s".to_string()));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM spans_v", [], |r| r.get(0))
            .expect("v2 spans");
        assert_eq!(n, 0);
        assert!(tables(&conn).contains(&"v1_logs".to_string()));
    }

    #[test]
    fn older_store_is_migrated_step_by_step() {
        let mut conn = Connection::open_in_memory().expect("open");
        apply_migrations(&mut conn, &[V1], V1).expect("v1");
        conn.execute(
            "INSERT INTO spans(trace_id, span_id, name, component, start_ns, end_ns, status,
                               tenant, workspace, region, dialect, attributes)
             VALUES ('t', 's', 'n', 'c', 1, 2, 'ok', '', '', '', '', '{}')",
            [],
        )
        .expect("row");
        let v2: Migration = &[
            "ALTER TABLE spans ADD COLUMN note TEXT;",
            "UPDATE spans SET note = 'migrated';",
        ];
        assert_eq!(
            apply_migrations(&mut conn, &[V1, v2], V1).expect("to v2"),
            1
        );
        assert_eq!(meta(&conn, "schema_version").as_deref(), Some("2"));
        let note: String = conn
            .query_row("SELECT note FROM spans", [], |r| r.get(0))
            .expect("note");
        assert_eq!(note, "migrated");
    }

    #[test]
    fn failed_migration_leaves_old_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        apply_migrations(&mut conn, &[V1], V1).expect("v1");
        let bad: Migration = &["ALTER TABLE spans ADD COLUMN x TEXT; SELECT * FROM no_such_table;"];
        assert!(matches!(
            apply_migrations(&mut conn, &[V1, bad], V1),
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
                supported: 2
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
