//! The default sink: an embedded SQLite store (`./.ats/ats.db` unless the
//! caller says otherwise) that `ats trace list|show|export|prune|stats` read.
//!
//! Write path: one transaction per batch, cached prepared statements bound
//! column by column (no per-row allocation: ids are rendered into stack
//! buffers, attribute JSON into one reused `String`). The database runs in
//! WAL mode with `synchronous=NORMAL`: a committed batch survives the process
//! being killed (the WAL is in the OS page cache), and readers never block
//! the writer. A process killed mid-batch loses exactly that batch — the
//! uncommitted tail of the WAL is ignored on the next open.
//!
//! Layout and column conventions: see [`super::store_schema`].

use std::path::{Path, PathBuf};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, OpenFlags, TransactionBehavior};

use super::error::StoreError;
use super::json::{
    air_id_bytes, metric_kind_str, plan_hash_bytes, slo_class_str, span_id_bytes, status_str,
    trace_id_bytes, write_attributes, write_histogram, write_labels,
};
use super::store_schema;
use crate::record::{Envelope, LogRecord, MetricPoint, Record, RewardRecord, SpanRecord};

/// Where the store lives when the configuration does not say.
pub const DEFAULT_STORE_PATH: &str = "./.ats/ats.db";

/// Page cache of the writer connection, in KiB. Larger than SQLite's 2 MiB
/// default so the interior pages of the random-order `trace_id` index stay
/// cached; memory stays bounded by this number.
const CACHE_KIB: i64 = 32 * 1024;

/// Pages appended to the WAL before SQLite checkpoints it (64 MiB at 4 KiB pages).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// Bytes the WAL file is truncated to after a checkpoint.
const JOURNAL_SIZE_LIMIT: u64 = 64 << 20;

const INSERT_SPAN: &str = "INSERT INTO spans(trace_id, span_id, parent_id, name, component, \
     start_ns, end_ns, status, tenant, workspace, region, dialect, air_id, plan_hash, attributes) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

const INSERT_LOG: &str = "INSERT INTO logs(ts_ns, trace_id, span_id, event, component, severity, \
     body, tenant, workspace, region, dialect, air_id, plan_hash, attributes) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

const INSERT_METRIC: &str = "INSERT INTO metric_points(ts_ns, start_ns, name, unit, kind, \
     tenant, workspace, region, dialect, labels, value, histogram) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

const INSERT_REWARD: &str = "INSERT INTO rewards(ts_ns, trace_id, span_id, tenant, workspace, \
     region, dialect, air_id, plan_hash, class, latency_ms, cpu_ms, io_bytes, rows, success, \
     reward, engine) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

/// Row counts and on-disk size, for `ats trace stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    pub spans: u64,
    pub logs: u64,
    pub metric_points: u64,
    pub rewards: u64,
    /// `page_count * page_size` of the main file plus the current WAL file size.
    pub bytes: u64,
}

/// Rows deleted per table by a prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneCounts {
    pub spans: u64,
    pub logs: u64,
    pub metric_points: u64,
    pub rewards: u64,
}

/// Per-table cutoffs (Unix ns): rows strictly older are deleted; `None`
/// keeps the table untouched. Lets the CLI apply seed 000 §8.4 defaults
/// (traces/logs 30 days, metrics 400 days, learning artifacts 90 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneCutoffs {
    pub spans_ns: Option<u64>,
    pub logs_ns: Option<u64>,
    pub metric_points_ns: Option<u64>,
    pub rewards_ns: Option<u64>,
}

/// The embedded SQLite store. Not `Sync`: one writer (the flusher thread);
/// readers open their own connections (WAL lets them run concurrently).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Option<Connection>,
    path: PathBuf,
    /// Reused buffer for JSON columns, so rows cost no allocation.
    scratch: String,
}

/// Unix ns / counters into SQLite's signed 64-bit integers, saturating.
#[inline]
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// NaN / ±inf are stored as NULL (SQLite would turn NaN into NULL anyway).
#[inline]
fn real(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

#[inline]
fn text(b: &[u8]) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Text(b))
}

/// Envelope ids rendered once per row into stack buffers.
struct Ids {
    trace: [u8; 32],
    span: [u8; 16],
    parent: [u8; 16],
    air: [u8; 22],
    plan: [u8; 19],
}

impl Ids {
    #[inline]
    fn new(e: &Envelope) -> Self {
        Ids {
            trace: trace_id_bytes(e.trace_id),
            span: span_id_bytes(e.span_id),
            parent: span_id_bytes(e.parent_span_id),
            air: air_id_bytes(e.air_id.unwrap_or(0)),
            plan: plan_hash_bytes(e.plan_hash.unwrap_or(0)),
        }
    }
}

/// A cached statement fetched on first use within one batch transaction.
#[inline]
fn stmt<'a, 'c>(
    slot: &'a mut Option<CachedStatement<'c>>,
    conn: &'c Connection,
    sql: &str,
) -> Result<&'a mut CachedStatement<'c>, StoreError> {
    // The connection's cache keeps the statement across batches; taking it
    // here is one hash lookup per batch and record kind, not per row.
    let st = match slot.take() {
        Some(st) => st,
        None => conn.prepare_cached(sql)?,
    };
    Ok(slot.insert(st))
}

impl SqliteStore {
    /// Open (creating file, parent directories and schema as needed) the
    /// store at `path`, in WAL mode.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags)?;
        // Wait for a concurrent migrating/checkpointing process instead of
        // failing the open with SQLITE_BUSY.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal(mode));
        }
        // synchronous=NORMAL: commits append to the WAL without fsync (a
        // killed process loses nothing committed; only power loss can cost
        // the last commits). Checkpoints do fsync, so they are spaced out:
        // every WAL_AUTOCHECKPOINT_PAGES pages instead of SQLite's 1000,
        // which measured ~1.7x faster for span batches; journal_size_limit
        // truncates the WAL back after each checkpoint.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; \
             PRAGMA cache_size = -{CACHE_KIB}; \
             PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}; \
             PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};"
        ))?;
        store_schema::ensure_schema(&mut conn)?;
        Ok(SqliteStore {
            conn: Some(conn),
            path,
            scratch: String::with_capacity(1024),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sink name used in drop counters and logs.
    pub fn name(&self) -> &str {
        "sqlite"
    }

    /// The writer connection, for read queries (the CLI opens its own
    /// store; tests read back through this).
    pub fn connection(&self) -> Result<&Connection, StoreError> {
        self.conn.as_ref().ok_or(StoreError::Closed)
    }

    /// Insert a batch in one transaction: either every record of the batch
    /// is stored or (on error) none is.
    pub fn write_batch(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        if batch.is_empty() {
            return Ok(());
        }
        let scratch = &mut self.scratch;
        // IMMEDIATE takes the write lock up front: a deferred transaction
        // that upgrades later can fail with SQLITE_BUSY mid-batch.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut spans = None;
            let mut logs = None;
            let mut metrics = None;
            let mut rewards = None;
            for rec in batch {
                match rec {
                    Record::Span(r) => {
                        insert_span(stmt(&mut spans, &tx, INSERT_SPAN)?, r, scratch)?
                    }
                    Record::Log(r) => insert_log(stmt(&mut logs, &tx, INSERT_LOG)?, r, scratch)?,
                    Record::Metric(r) => {
                        insert_metric(stmt(&mut metrics, &tx, INSERT_METRIC)?, r, scratch)?
                    }
                    Record::Reward(r) => insert_reward(stmt(&mut rewards, &tx, INSERT_REWARD)?, r)?,
                }
            }
        }
        tx.commit()?;
        if scratch.capacity() > 1 << 20 {
            // One huge attribute value must not pin its buffer forever.
            *scratch = String::with_capacity(1024);
        }
        Ok(())
    }

    /// Every batch is committed by `write_batch`, so there is nothing
    /// buffered in this process; the WAL is checkpointed by SQLite itself.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.conn.as_ref().ok_or(StoreError::Closed)?;
        Ok(())
    }

    /// Close the connection (SQLite checkpoints and removes the WAL when the
    /// last connection closes). Idempotent; later writes fail with `Closed`.
    pub fn close(&mut self) -> Result<(), StoreError> {
        match self.conn.take() {
            None => Ok(()),
            Some(conn) => conn.close().map_err(|(conn, e)| {
                // Keep the connection so a retry is possible.
                self.conn = Some(conn);
                StoreError::Sqlite(e)
            }),
        }
    }

    /// Delete rows older than `cutoff_ns` from every table.
    pub fn prune_older_than(&mut self, cutoff_ns: u64) -> Result<PruneCounts, StoreError> {
        self.prune(&PruneCutoffs {
            spans_ns: Some(cutoff_ns),
            logs_ns: Some(cutoff_ns),
            metric_points_ns: Some(cutoff_ns),
            rewards_ns: Some(cutoff_ns),
        })
    }

    /// Delete rows strictly older than each table's cutoff (spans by
    /// `start_ns`, the others by `ts_ns`), in one transaction.
    pub fn prune(&mut self, cutoffs: &PruneCutoffs) -> Result<PruneCounts, StoreError> {
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let del = |sql: &str, cutoff: Option<u64>| -> Result<u64, StoreError> {
            match cutoff {
                None => Ok(0),
                Some(c) => Ok(tx.execute(sql, [int(c)])? as u64),
            }
        };
        let counts = PruneCounts {
            spans: del("DELETE FROM spans WHERE start_ns < ?1", cutoffs.spans_ns)?,
            logs: del("DELETE FROM logs WHERE ts_ns < ?1", cutoffs.logs_ns)?,
            metric_points: del(
                "DELETE FROM metric_points WHERE ts_ns < ?1",
                cutoffs.metric_points_ns,
            )?,
            rewards: del("DELETE FROM rewards WHERE ts_ns < ?1", cutoffs.rewards_ns)?,
        };
        tx.commit()?;
        Ok(counts)
    }

    /// Row counts per table and bytes on disk (main file pages + WAL file).
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let conn = self.connection()?;
        let count = |table: &str| -> Result<u64, StoreError> {
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        };
        let page_count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal_bytes = match std::fs::metadata(&wal) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(StoreError::Stat {
                    path: wal.into(),
                    source,
                })
            }
        };
        Ok(StoreStats {
            spans: count("spans")?,
            logs: count("logs")?,
            metric_points: count("metric_points")?,
            rewards: count("rewards")?,
            bytes: (page_count.max(0) as u64).saturating_mul(page_size.max(0) as u64) + wal_bytes,
        })
    }

    /// Add drop counts (`ats_dropped_total{reason}`) to the `drops` table;
    /// each call adds to the running totals.
    pub fn record_drop_counts(&mut self, drops: &[(&str, u64)]) -> Result<(), StoreError> {
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO drops(reason, count) VALUES (?1, ?2)
                 ON CONFLICT(reason) DO UPDATE SET count = count + excluded.count",
            )?;
            for &(reason, n) in drops {
                if n > 0 {
                    st.execute(rusqlite::params![reason, int(n)])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// All drop counters, sorted by reason.
    pub fn drop_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.connection()?;
        let mut st = conn.prepare_cached("SELECT reason, count FROM drops ORDER BY reason")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (reason, n) = row?;
            out.push((reason, n.max(0) as u64));
        }
        Ok(out)
    }

    /// Copy the WAL into the main file and truncate it (after a big prune,
    /// or before handing the file to someone).
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        let conn = self.connection()?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; rusqlite closes quietly.
        let _ = self.close();
    }
}

// Every column is bound on every row: `raw_execute` keeps previous bindings,
// so skipping one would leak a value from the previous row.

fn insert_span(
    st: &mut CachedStatement<'_>,
    r: &SpanRecord,
    scratch: &mut String,
) -> Result<(), StoreError> {
    let e = &r.envelope;
    let ids = Ids::new(e);
    scratch.clear();
    write_attributes(scratch, &r.attributes);
    st.raw_bind_parameter(1, text(&ids.trace))?;
    st.raw_bind_parameter(2, text(&ids.span))?;
    st.raw_bind_parameter(3, (e.parent_span_id != 0).then(|| text(&ids.parent)))?;
    st.raw_bind_parameter(4, r.name.as_str())?;
    st.raw_bind_parameter(5, r.component.as_str())?;
    st.raw_bind_parameter(6, int(e.ts_ns))?;
    st.raw_bind_parameter(7, int(r.end_ns))?;
    st.raw_bind_parameter(8, status_str(r.status))?;
    bind_scope(st, 9, e)?;
    st.raw_bind_parameter(13, e.air_id.map(|_| text(&ids.air)))?;
    st.raw_bind_parameter(14, e.plan_hash.map(|_| text(&ids.plan)))?;
    st.raw_bind_parameter(15, scratch.as_str())?;
    st.raw_execute()?;
    Ok(())
}

/// tenant, workspace, region, dialect at `first..first+4`.
#[inline]
fn bind_scope(st: &mut CachedStatement<'_>, first: usize, e: &Envelope) -> Result<(), StoreError> {
    st.raw_bind_parameter(first, e.tenant.as_str())?;
    st.raw_bind_parameter(first + 1, e.workspace.as_str())?;
    st.raw_bind_parameter(first + 2, e.region.as_str())?;
    st.raw_bind_parameter(first + 3, e.dialect.as_str())?;
    Ok(())
}

fn insert_log(
    st: &mut CachedStatement<'_>,
    r: &LogRecord,
    scratch: &mut String,
) -> Result<(), StoreError> {
    let e = &r.envelope;
    let ids = Ids::new(e);
    scratch.clear();
    write_attributes(scratch, &r.attributes);
    st.raw_bind_parameter(1, int(e.ts_ns))?;
    st.raw_bind_parameter(2, (e.trace_id != 0).then(|| text(&ids.trace)))?;
    st.raw_bind_parameter(3, (e.span_id != 0).then(|| text(&ids.span)))?;
    st.raw_bind_parameter(4, r.event.as_str())?;
    st.raw_bind_parameter(5, r.component.as_str())?;
    st.raw_bind_parameter(6, i64::from(r.severity.0))?;
    st.raw_bind_parameter(7, r.body.as_str())?;
    bind_scope(st, 8, e)?;
    st.raw_bind_parameter(12, e.air_id.map(|_| text(&ids.air)))?;
    st.raw_bind_parameter(13, e.plan_hash.map(|_| text(&ids.plan)))?;
    st.raw_bind_parameter(14, scratch.as_str())?;
    st.raw_execute()?;
    Ok(())
}

fn insert_metric(
    st: &mut CachedStatement<'_>,
    r: &MetricPoint,
    scratch: &mut String,
) -> Result<(), StoreError> {
    let e = &r.envelope;
    st.raw_bind_parameter(1, int(e.ts_ns))?;
    st.raw_bind_parameter(2, int(r.start_ns))?;
    st.raw_bind_parameter(3, r.name.as_str())?;
    st.raw_bind_parameter(4, r.unit.as_str())?;
    st.raw_bind_parameter(5, metric_kind_str(r.kind))?;
    bind_scope(st, 6, e)?;
    scratch.clear();
    write_labels(scratch, &r.labels);
    st.raw_bind_parameter(10, scratch.as_str())?;
    st.raw_bind_parameter(11, real(r.value))?;
    match &r.histogram {
        Some(h) => {
            scratch.clear();
            write_histogram(scratch, h);
            st.raw_bind_parameter(12, scratch.as_str())?;
        }
        None => st.raw_bind_parameter(12, rusqlite::types::Null)?,
    }
    st.raw_execute()?;
    Ok(())
}

fn insert_reward(st: &mut CachedStatement<'_>, r: &RewardRecord) -> Result<(), StoreError> {
    let e = &r.envelope;
    let ids = Ids::new(e);
    st.raw_bind_parameter(1, int(e.ts_ns))?;
    st.raw_bind_parameter(2, (e.trace_id != 0).then(|| text(&ids.trace)))?;
    st.raw_bind_parameter(3, (e.span_id != 0).then(|| text(&ids.span)))?;
    bind_scope(st, 4, e)?;
    st.raw_bind_parameter(8, e.air_id.map(|_| text(&ids.air)))?;
    st.raw_bind_parameter(9, e.plan_hash.map(|_| text(&ids.plan)))?;
    st.raw_bind_parameter(10, slo_class_str(r.class))?;
    st.raw_bind_parameter(11, real(r.latency_ms))?;
    st.raw_bind_parameter(12, real(r.cpu_ms))?;
    st.raw_bind_parameter(13, int(r.io_bytes))?;
    st.raw_bind_parameter(14, int(r.rows))?;
    st.raw_bind_parameter(15, r.success)?;
    st.raw_bind_parameter(16, real(r.reward))?;
    st.raw_bind_parameter(17, r.engine.as_str())?;
    st.raw_execute()?;
    Ok(())
}
