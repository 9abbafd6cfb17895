//! The embedded SQLite store, read back with plain SQL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use ats_core::record::{
    AttrValue, Envelope, HistogramData, LogRecord, MetricKind, MetricPoint, Record, RewardRecord,
    Severity, SloClass, SpanRecord, Status,
};
use std::time::Duration;

use ats_core::sink::{
    PruneCounts, PruneCutoffs, SqliteStore, StoreError, StoreOptions, StoreStats, TraceSummary,
};
use rusqlite::types::Value;
use rusqlite::Connection;

const TS: u64 = 1_760_623_265_345_000_000; // 2025-10-16T14:01:05.345Z

fn env(ts_ns: u64) -> Envelope {
    Envelope {
        ts_ns,
        tenant: "acme".into(),
        workspace: "prod-eu".into(),
        region: "eu-west-2".into(),
        dialect: "mysql".into(),
        trace_id: 0x4a1b_0000_0000_0000_0000_0000_0000_9f3a,
        span_id: 0x9f3a_0000_0000_0001,
        parent_span_id: 0,
        air_id: Some(0x9f3a),
        plan_hash: None,
    }
}

fn span(ts_ns: u64) -> SpanRecord {
    SpanRecord {
        envelope: env(ts_ns),
        name: "driver.query".into(),
        component: "ats-sqlite3".into(),
        end_ns: ts_ns + 1_500_000,
        status: Status::Ok,
        attributes: vec![
            (
                "db.statement".into(),
                AttrValue::Str("SELECT name FROM users WHERE age > ?".into()),
            ),
            ("net.peer.port".into(), AttrValue::I64(5432)),
            ("ratio".into(), AttrValue::F64(2.0)),
            ("cached".into(), AttrValue::Bool(false)),
        ],
    }
}

fn log(ts_ns: u64) -> LogRecord {
    let mut e = env(ts_ns);
    e.trace_id = 0;
    e.span_id = 0;
    e.air_id = None;
    LogRecord {
        envelope: e,
        event: "policy.deny".into(),
        component: "ats-policy".into(),
        severity: Severity::WARN,
        body: "cross-region egress blocked by residency=eu".into(),
        attributes: vec![("obligation".into(), AttrValue::Str("mask:email".into()))],
    }
}

fn metric(ts_ns: u64, histogram: bool) -> MetricPoint {
    MetricPoint {
        envelope: env(ts_ns),
        name: if histogram {
            "sqlx_driver_latency_ms"
        } else {
            "sqlx_driver_errors_total"
        }
        .into(),
        unit: if histogram { "ms" } else { "1" }.into(),
        kind: if histogram {
            MetricKind::Histogram
        } else {
            MetricKind::Counter
        },
        start_ns: ts_ns - 60_000_000_000,
        labels: vec![
            ("dialect".into(), "mysql".into()),
            ("op".into(), "query".into()),
        ],
        value: if histogram { 6.5 } else { 3.0 },
        histogram: histogram.then(|| HistogramData {
            count: 3,
            sum: 6.5,
            min: 0.5,
            max: 4.0,
            bounds: vec![1.0, 5.0],
            counts: vec![1, 2, 0],
        }),
    }
}

fn reward(ts_ns: u64) -> RewardRecord {
    let mut e = env(ts_ns);
    e.plan_hash = Some(0xab12);
    RewardRecord {
        envelope: e,
        class: SloClass::L,
        latency_ms: 12.3,
        cpu_ms: 1.8,
        io_bytes: 4096,
        rows: 42,
        success: true,
        reward: -14.1,
        engine: "8.0.36".into(),
    }
}

fn rows(conn: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut st = conn.prepare(sql).expect("prepare");
    let n = st.column_count();
    st.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn t(s: &str) -> Value {
    Value::Text(s.into())
}
fn i(v: i64) -> Value {
    Value::Integer(v)
}
fn r(v: f64) -> Value {
    Value::Real(v)
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

#[test]
fn every_record_kind_round_trips_column_by_column() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("nested/dirs/ats.db");
    let mut store = SqliteStore::open(&path).expect("open creates parent dirs");
    assert_eq!(store.name(), "sqlite");

    let mut child = span(TS + 1_000);
    child.envelope.span_id = 0x9f3a_0000_0000_0002;
    child.envelope.parent_span_id = 0x9f3a_0000_0000_0001;
    child.envelope.air_id = None;
    child.envelope.plan_hash = Some(0xab12);
    child.status = Status::Error;
    child.name = "kernel.exec".into();
    child.attributes = vec![];
    let mut unset = span(TS + 2_000);
    unset.status = Status::Unset;
    unset.attributes = vec![
        ("nan".into(), AttrValue::F64(f64::NAN)),
        ("neg".into(), AttrValue::I64(-7)),
    ];
    let mut traced_log = log(TS + 3_000);
    traced_log.envelope = env(TS + 3_000);
    traced_log.envelope.plan_hash = Some(0xab12);
    traced_log.severity = Severity::ERROR;
    traced_log.body = String::new();
    traced_log.attributes = vec![];

    let batch = vec![
        Record::Span(span(TS)),
        Record::Span(child),
        Record::Span(unset),
        Record::Log(log(TS + 500)),
        Record::Log(traced_log),
        Record::Metric(metric(TS, false)),
        Record::Metric(metric(TS + 10, true)),
        Record::Reward(reward(TS)),
    ];
    store.write_batch(&batch).expect("write");
    store.flush().expect("flush");

    let conn = Connection::open(&path).expect("reader");
    let trace = "4a1b0000000000000000000000009f3a";
    assert_eq!(
        rows(&conn, "SELECT * FROM spans_v ORDER BY start_ns"),
        vec![
            vec![
                t(trace),
                t("9f3a000000000001"),
                Value::Null,
                t("driver.query"),
                t("ats-sqlite3"),
                i(TS as i64),
                i(TS as i64 + 1_500_000),
                t("ok"),
                t("acme"),
                t("prod-eu"),
                t("eu-west-2"),
                t("mysql"),
                t("air:Q-0000000000009f3a"),
                Value::Null,
                t(
                    r#"{"db.statement":"SELECT name FROM users WHERE age > ?","net.peer.port":5432,"ratio":2.0,"cached":false}"#
                ),
            ],
            vec![
                t(trace),
                t("9f3a000000000002"),
                t("9f3a000000000001"),
                t("kernel.exec"),
                t("ats-sqlite3"),
                i(TS as i64 + 1_000),
                i(TS as i64 + 1_501_000),
                t("error"),
                t("acme"),
                t("prod-eu"),
                t("eu-west-2"),
                t("mysql"),
                Value::Null,
                t("ph:000000000000ab12"),
                t("{}"),
            ],
            vec![
                t(trace),
                t("9f3a000000000001"),
                Value::Null,
                t("driver.query"),
                t("ats-sqlite3"),
                i(TS as i64 + 2_000),
                i(TS as i64 + 1_502_000),
                t("unset"),
                t("acme"),
                t("prod-eu"),
                t("eu-west-2"),
                t("mysql"),
                t("air:Q-0000000000009f3a"),
                Value::Null,
                t(r#"{"nan":null,"neg":-7}"#),
            ],
        ]
    );
    assert_eq!(
        rows(&conn, "SELECT * FROM logs_v ORDER BY ts_ns"),
        vec![
            vec![
                i(TS as i64 + 500),
                Value::Null,
                Value::Null,
                t("policy.deny"),
                t("ats-policy"),
                i(13),
                t("cross-region egress blocked by residency=eu"),
                t("acme"),
                t("prod-eu"),
                t("eu-west-2"),
                t("mysql"),
                Value::Null,
                Value::Null,
                t(r#"{"obligation":"mask:email"}"#),
            ],
            vec![
                i(TS as i64 + 3_000),
                t(trace),
                t("9f3a000000000001"),
                t("policy.deny"),
                t("ats-policy"),
                i(17),
                t(""),
                t("acme"),
                t("prod-eu"),
                t("eu-west-2"),
                t("mysql"),
                t("air:Q-0000000000009f3a"),
                t("ph:000000000000ab12"),
                t("{}"),
            ],
        ]
    );
    assert_eq!(
        rows(&conn, "SELECT * FROM metric_points ORDER BY rowid"),
        vec![
            vec![
                i(TS as i64),
                i(TS as i64 - 60_000_000_000),
                t("sqlx_driver_errors_total"),
                t("1"),
                t("counter"),
                t("acme"),
                t("prod-eu"),
                t("eu-west-2"),
                t("mysql"),
                t(r#"{"dialect":"mysql","op":"query"}"#),
                r(3.0),
                Value::Null,
            ],
            vec![
                i(TS as i64 + 10),
                i(TS as i64 + 10 - 60_000_000_000),
                t("sqlx_driver_latency_ms"),
                t("ms"),
                t("histogram"),
                t("acme"),
                t("prod-eu"),
                t("eu-west-2"),
                t("mysql"),
                t(r#"{"dialect":"mysql","op":"query"}"#),
                r(6.5),
                t(
                    r#"{"count":3,"sum":6.5,"min":0.5,"max":4.0,"bounds":[1.0,5.0],"counts":[1,2,0]}"#
                ),
            ],
        ]
    );
    assert_eq!(
        rows(&conn, "SELECT * FROM rewards_v"),
        vec![vec![
            i(TS as i64),
            t(trace),
            t("9f3a000000000001"),
            t("acme"),
            t("prod-eu"),
            t("eu-west-2"),
            t("mysql"),
            t("air:Q-0000000000009f3a"),
            t("ph:000000000000ab12"),
            t("L"),
            r(12.3),
            r(1.8),
            i(4096),
            i(42),
            i(1),
            r(-14.1),
            t("8.0.36"),
        ]]
    );
    // The JSON columns are real JSON with types preserved.
    let (port_type, ratio_type): (String, String) = conn
        .query_row(
            "SELECT json_type(attributes, '$.\"net.peer.port\"'), json_type(attributes, '$.ratio')
             FROM spans WHERE rowid = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("json_type");
    assert_eq!(
        (port_type.as_str(), ratio_type.as_str()),
        ("integer", "real")
    );
    store.close().expect("close");
}

#[test]
fn out_of_range_values_saturate_or_become_null() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = SqliteStore::open(dir.path().join("ats.db")).expect("open");
    let mut s = span(TS);
    s.envelope.ts_ns = u64::MAX - 10;
    s.end_ns = u64::MAX;
    let mut rw = reward(TS);
    rw.io_bytes = u64::MAX;
    rw.latency_ms = f64::INFINITY;
    rw.reward = f64::NAN;
    let mut m = metric(TS, false);
    m.value = f64::NAN;
    store
        .write_batch(&[Record::Span(s), Record::Reward(rw), Record::Metric(m)])
        .expect("write");
    let conn = store.connection().expect("conn");
    assert_eq!(
        rows(conn, "SELECT start_ns, end_ns FROM spans"),
        vec![vec![i(i64::MAX), i(i64::MAX)]]
    );
    assert_eq!(
        rows(conn, "SELECT io_bytes, latency_ms, reward FROM rewards"),
        vec![vec![i(i64::MAX), Value::Null, Value::Null]]
    );
    assert_eq!(
        rows(conn, "SELECT value FROM metric_points"),
        vec![vec![Value::Null]]
    );
}

#[test]
fn schema_indexes_wal_and_meta() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ats.db");
    let store = SqliteStore::open(&path).expect("open");
    let conn = Connection::open(&path).expect("reader");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .connection()
        .expect("conn")
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("sync");
    assert_eq!(sync, 1, "synchronous = NORMAL");
    assert_eq!(
        rows(&conn, "SELECT key, value FROM meta ORDER BY key"),
        vec![
            vec![t("ats_version"), t("4.0.0")],
            vec![t("schema_version"), t("2")]
        ]
    );
    let idx = rows(
        &conn,
        "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
         ORDER BY tbl_name, name",
    );
    let expected: Vec<Vec<Value>> = [
        ("logs", "logs_air_id"),
        ("logs", "logs_event"),
        ("logs", "logs_trace_id"),
        ("logs", "logs_ts_ns"),
        ("metric_points", "metric_points_name"),
        ("metric_points", "metric_points_ts_ns"),
        ("rewards", "rewards_air_id"),
        ("rewards", "rewards_trace_id"),
        ("rewards", "rewards_ts_ns"),
        ("spans", "spans_air_id"),
        ("spans", "spans_name"),
        ("spans", "spans_trace_key"),
        ("traces", "traces_start_ns"),
        ("traces", "traces_trace_id"),
    ]
    .iter()
    .map(|(tb, n)| vec![t(tb), t(n)])
    .collect();
    assert_eq!(idx, expected);
    // The lookups the CLI makes use them (partial indexes included).
    for (sql, index) in [
        ("SELECT * FROM spans WHERE trace_key = 7", "spans_trace_key"),
        (
            "SELECT * FROM traces WHERE trace_id = x'00'",
            "traces_trace_id",
        ),
        (
            "SELECT * FROM traces WHERE start_ns >= 5 ORDER BY start_ns DESC LIMIT 10",
            "traces_start_ns",
        ),
        ("SELECT * FROM spans WHERE air_id = 17", "spans_air_id"),
        (
            "SELECT * FROM spans WHERE name = 'driver.query'",
            "spans_name",
        ),
        (
            "SELECT * FROM spans WHERE start_ns < 5 AND trace_key IN \
             (SELECT trace_key FROM traces WHERE start_ns < 5)",
            "traces_start_ns",
        ),
        (
            "SELECT * FROM spans WHERE start_ns < 5 AND trace_key IN \
             (SELECT trace_key FROM traces WHERE start_ns < 5)",
            "spans_trace_key",
        ),
        ("SELECT * FROM logs WHERE trace_id = x'00'", "logs_trace_id"),
    ] {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan")
            .query_map([], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(plan.iter().any(|p| p.contains(index)), "{sql}: {plan:?}");
    }
}

#[test]
fn prune_removes_exactly_the_older_rows() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = SqliteStore::open(dir.path().join("ats.db")).expect("open");
    let mut batch = Vec::new();
    for k in 0..10u64 {
        let ts = 1_000 + k * 100; // 1000, 1100, … 1900
        batch.push(Record::Span(span(ts)));
        batch.push(Record::Log(log(ts)));
        batch.push(Record::Metric(metric(ts + 60_000_000_000, false)));
        batch.push(Record::Reward(reward(ts)));
    }
    store.write_batch(&batch).expect("write");
    // Strictly older than 1500: 1000..=1400 go, 1500 stays.
    assert_eq!(
        store.prune_older_than(1_500).expect("prune"),
        PruneCounts {
            spans: 5,
            logs: 5,
            metric_points: 0,
            rewards: 5
        }
    );
    let conn = store.connection().expect("conn");
    assert_eq!(
        rows(conn, "SELECT start_ns FROM spans ORDER BY start_ns"),
        (15..20).map(|k| vec![i(k * 100)]).collect::<Vec<_>>()
    );
    assert_eq!(
        rows(conn, "SELECT min(ts_ns), count(*) FROM logs"),
        vec![vec![i(1_500), i(5)]]
    );
    // Per-table cutoffs; None leaves the table alone.
    let counts = store
        .prune(&PruneCutoffs {
            spans_ns: Some(1_700),
            logs_ns: None,
            metric_points_ns: Some(60_000_001_200),
            rewards_ns: Some(0),
        })
        .expect("prune");
    assert_eq!(
        counts,
        PruneCounts {
            spans: 2,
            logs: 0,
            metric_points: 2,
            rewards: 0
        }
    );
    let s = store.stats().expect("stats");
    assert_eq!((s.spans, s.logs, s.metric_points, s.rewards), (3, 5, 8, 5));
}

#[test]
fn stats_are_exact() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ats.db");
    let mut store = SqliteStore::open(&path).expect("open");
    let empty = store.stats().expect("stats");
    assert_eq!(
        (empty.spans, empty.logs, empty.metric_points, empty.rewards),
        (0, 0, 0, 0)
    );
    let batch: Vec<Record> = (0..7)
        .map(|k| Record::Span(span(TS + k)))
        .chain((0..3).map(|k| Record::Log(log(TS + k))))
        .chain((0..2).map(|k| Record::Metric(metric(TS + k, k == 1))))
        .chain((0..4).map(|k| Record::Reward(reward(TS + k))))
        .collect();
    store.write_batch(&batch).expect("write");
    let pending = store.stats().expect("stats in the open group");
    assert_eq!(
        (
            pending.traces,
            pending.spans,
            pending.logs,
            pending.metric_points,
            pending.rewards
        ),
        (1, 7, 3, 2, 4),
        "the writer sees its own open group"
    );
    store.flush().expect("commit the group");
    let s = store.stats().expect("stats");
    let conn = store.connection().expect("conn");
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("pages");
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("size");
    let wal = std::fs::metadata(dir.path().join("ats.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(wal > 0, "the batch sits in the WAL until a checkpoint");
    assert_eq!(
        s,
        StoreStats {
            traces: 1,
            spans: 7,
            logs: 3,
            metric_points: 2,
            rewards: 4,
            bytes: (pages * page_size) as u64 + wal,
        }
    );
    store.checkpoint().expect("checkpoint");
    let after = store.stats().expect("stats");
    let pages: i64 = store
        .connection()
        .expect("conn")
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("pages");
    assert_eq!(
        after.bytes,
        (pages * page_size) as u64,
        "WAL truncated to 0 bytes"
    );
}

#[test]
fn drop_counts_upsert_add_and_persist() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ats.db");
    let mut store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.drop_counts().expect("read"), vec![]);
    store
        .record_drop_counts(&[("ring_full", 3), ("sampler_budget", 0)])
        .expect("first");
    store
        .record_drop_counts(&[("ring_full", 2), ("sink_error", 1)])
        .expect("second");
    let expected = vec![("ring_full".to_string(), 5), ("sink_error".to_string(), 1)];
    assert_eq!(store.drop_counts().expect("read"), expected);
    store.close().expect("close");
    let mut reopened = SqliteStore::open(&path).expect("reopen");
    assert_eq!(reopened.drop_counts().expect("read"), expected);
    reopened
        .record_drop_counts(&[("sink_error", 10)])
        .expect("third");
    assert_eq!(
        rows(
            reopened.connection().expect("conn"),
            "SELECT reason, count FROM drops ORDER BY reason"
        ),
        vec![vec![t("ring_full"), i(5)], vec![t("sink_error"), i(11)]]
    );
}

#[test]
fn newer_schema_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ats.db");
    SqliteStore::open(&path)
        .expect("create")
        .close()
        .expect("close");
    Connection::open(&path)
        .expect("raw")
        .execute(
            "UPDATE meta SET value = '3' WHERE key = 'schema_version'",
            [],
        )
        .expect("bump");
    match SqliteStore::open(&path) {
        Err(StoreError::SchemaTooNew {
            found: 3,
            supported: 2,
        }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    // Something that is not an ATS store at all.
    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .expect("raw")
        .execute_batch("CREATE TABLE meta (key TEXT, value TEXT);")
        .expect("foreign");
    assert!(matches!(
        SqliteStore::open(&foreign),
        Err(StoreError::InvalidMeta(_))
    ));
}

#[test]
fn a_failed_batch_commits_nothing_and_closed_store_refuses_writes() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ats.db");
    let mut store = SqliteStore::open(&path).expect("open");
    store
        .write_batch(&[Record::Log(log(TS))])
        .expect("first batch");
    // Commit the group so the outside connection can take the write lock.
    store.flush().expect("flush");
    // Sabotage the spans table from outside: the log inserted before the
    // failing span must be rolled back with it.
    Connection::open(&path)
        .expect("raw")
        .execute_batch("DROP TABLE spans;")
        .expect("drop");
    let err = store.write_batch(&[Record::Log(log(TS + 1)), Record::Span(span(TS))]);
    assert!(matches!(err, Err(StoreError::Sqlite(_))), "{err:?}");
    assert_eq!(count(store.connection().expect("conn"), "logs"), 1);
    store.write_batch(&[]).expect("empty batch is a no-op");
    store.close().expect("close");
    store.close().expect("close is idempotent");
    assert!(matches!(
        store.write_batch(&[Record::Log(log(TS))]),
        Err(StoreError::Closed)
    ));
    assert!(matches!(store.flush(), Err(StoreError::Closed)));
    assert!(matches!(store.stats(), Err(StoreError::Closed)));
}

// ---- crash safety: a child process writes batches until it is SIGKILLed ----

const CHILD_ENV: &str = "ATS_SINK_STORE_KILL_CHILD";
const SPANS_PER_BATCH: u64 = 2_000;
const LOGS_PER_BATCH: u64 = 200;
/// Batches per committed group in the child.
const GROUP: u64 = 3;

fn crash_batch(b: u64) -> Vec<Record> {
    let mut out = Vec::with_capacity((SPANS_PER_BATCH + LOGS_PER_BATCH) as usize);
    for k in 0..SPANS_PER_BATCH {
        let mut s = span(TS + k);
        s.envelope.trace_id = u128::from(b) + 1;
        s.envelope.span_id = k + 1;
        out.push(Record::Span(s));
        if k % (SPANS_PER_BATCH / LOGS_PER_BATCH) == 0 {
            let mut l = log(TS + k);
            l.envelope.trace_id = u128::from(b) + 1;
            out.push(Record::Log(l));
        }
    }
    out
}

/// Child entry point: a no-op unless the parent test set `CHILD_ENV`.
#[test]
fn kill_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    // Groups commit only on flush, every GROUP batches: a kill between
    // flushes must lose the whole open group and nothing else.
    let opts = StoreOptions {
        group_max_records: usize::MAX,
        group_max_age: Duration::from_secs(3600),
    };
    let mut store = SqliteStore::open_with(&path, opts).expect("child open");
    for b in 0.. {
        store.write_batch(&crash_batch(b)).expect("child write");
        if (b + 1) % GROUP == 0 {
            store.flush().expect("child flush");
            println!("committed {b}");
        }
    }
}

fn wait_for_commits(stdout: impl std::io::Read, n: u64) -> u64 {
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child stdout");
        if let Some(b) = line.strip_prefix("committed ") {
            let b: u64 = b.trim().parse().expect("batch number");
            if b >= n {
                return b;
            }
        }
    }
    panic!("child exited before committing {n} batches");
}

#[cfg(unix)]
#[test]
fn sigkill_mid_write_loses_at_most_the_batch_in_flight() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ats.db");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "kill_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let seen = wait_for_commits(stdout, 15);
    child.kill().expect("SIGKILL"); // std sends SIGKILL on Unix
    let status = child.wait().expect("wait");
    assert!(!status.success());
    check_after_crash(&path, seen);
}

fn check_after_crash(path: &Path, seen: u64) {
    // Reopen through the store (recovers the WAL), then verify with raw SQL.
    let store = SqliteStore::open(path).expect("reopen after kill");
    let conn = store.connection().expect("conn");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("ic");
    assert_eq!(integrity, "ok");
    let per_batch = |table: &str| -> Vec<(i64, i64)> {
        conn.prepare(&format!(
            "SELECT trace_id, count(*) FROM {table}_v GROUP BY trace_id ORDER BY trace_id"
        ))
        .expect("prepare")
        .query_map([], |r| {
            let hex: String = r.get(0)?;
            Ok((i64::from_str_radix(&hex, 16).unwrap_or(-1), r.get(1)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    };
    let spans = per_batch("spans");
    let logs = per_batch("logs");
    let committed = spans.len() as u64;
    assert!(
        committed > seen,
        "every batch reported committed is there ({committed} > {seen})"
    );
    assert_eq!(committed % GROUP, 0, "only whole groups are committed");
    // Batches 0..committed are all present and complete; nothing partial.
    for (b, (trace, n)) in spans.iter().enumerate() {
        assert_eq!(
            (*trace, *n),
            (b as i64 + 1, SPANS_PER_BATCH as i64),
            "spans of batch {b}"
        );
    }
    assert_eq!(logs.len() as u64, committed);
    for (b, (trace, n)) in logs.iter().enumerate() {
        assert_eq!(
            (*trace, *n),
            (b as i64 + 1, LOGS_PER_BATCH as i64),
            "logs of batch {b}"
        );
    }
}

#[test]
fn a_10_mb_value_of_control_characters_round_trips() {
    let junk: String = (0..10 << 20).map(|k| char::from((k % 128) as u8)).collect();
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = SqliteStore::open(dir.path().join("ats.db")).expect("open");
    let mut s = span(TS);
    s.name = junk.clone();
    s.attributes = vec![("junk".into(), AttrValue::Str(junk.clone()))];
    store.write_batch(&[Record::Span(s)]).expect("write");
    let (name, attrs): (String, String) = store
        .connection()
        .expect("conn")
        .query_row("SELECT name, attributes FROM spans", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("row");
    assert_eq!(name, junk);
    let v: serde_json::Value = serde_json::from_str(&attrs).expect("attributes are JSON");
    assert_eq!(v["junk"], junk);
}

// ---- v2: traces table, read helpers, grouping ----

/// A span of trace `trace` with explicit ids and times.
fn tspan(trace: u128, id: u64, parent: u64, start: u64, name: &str, status: Status) -> SpanRecord {
    let mut s = span(start);
    s.envelope.trace_id = trace;
    s.envelope.span_id = id;
    s.envelope.parent_span_id = parent;
    s.name = name.into();
    s.status = status;
    s
}

const T1: u128 = 0xffee_0000_0000_0000_0000_0000_0000_0001;
const T2: u128 = 0x0000_0000_0000_0000_0000_0000_0000_0002;

#[test]
fn read_helpers_return_exact_summaries_and_typed_spans() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ats.db");
    let mut store = SqliteStore::open(&path).expect("open");
    // T1: children first, root last (as spans end), across two batches;
    // ids at and above 2^63 must survive the i64 bit-cast.
    let child = tspan(
        T1,
        u64::MAX,
        0x8000_0000_0000_0000,
        TS + 100,
        "db.query",
        Status::Error,
    );
    let mut root = tspan(T1, 0x8000_0000_0000_0000, 0, TS, "http.request", Status::Ok);
    root.end_ns = TS + 9_000_000;
    root.envelope.air_id = Some(u64::MAX);
    root.envelope.plan_hash = Some(0x8000_0000_0000_0001);
    root.attributes = vec![
        ("z".into(), AttrValue::Str("first key stays first".into())),
        ("a".into(), AttrValue::I64(i64::MIN)),
        ("f".into(), AttrValue::F64(-0.5)),
        ("whole".into(), AttrValue::F64(3.0)),
        ("b".into(), AttrValue::Bool(true)),
    ];
    let other = tspan(T2, 7, 0, TS + 50, "job.run", Status::Unset);
    store
        .write_batch(&[Record::Span(child.clone()), Record::Span(other.clone())])
        .expect("batch 1");
    store.flush().expect("flush 1");
    store
        .write_batch(&[Record::Span(root.clone())])
        .expect("batch 2");
    store.flush().expect("flush 2");

    let reader = SqliteStore::open_readonly(&path).expect("read-only");
    let s1 = TraceSummary {
        trace_id: T1,
        root_name: Some("http.request".into()),
        start_ns: TS,
        end_ns: TS + 9_000_000,
        span_count: 2,
        error_count: 1,
    };
    let s2 = TraceSummary {
        trace_id: T2,
        root_name: Some("job.run".into()),
        start_ns: TS + 50,
        end_ns: TS + 50 + 1_500_000,
        span_count: 1,
        error_count: 0,
    };
    // Newest first; `from` inclusive, `to` exclusive; limit.
    assert_eq!(
        reader.list_traces(None, None, 10).expect("all"),
        vec![s2.clone(), s1.clone()]
    );
    assert_eq!(
        reader.list_traces(None, None, 1).expect("limit"),
        vec![s2.clone()]
    );
    assert_eq!(
        reader
            .list_traces(Some(TS), Some(TS + 50), 10)
            .expect("range"),
        vec![s1.clone()]
    );
    assert_eq!(
        reader.list_traces(Some(TS + 50), None, 10).expect("from"),
        vec![s2.clone()]
    );
    assert_eq!(
        reader.list_traces(Some(TS + 51), None, 10).expect("none"),
        vec![]
    );
    assert_eq!(reader.list_traces(None, None, 0).expect("zero"), vec![]);
    assert_eq!(reader.trace_summary(T1).expect("one"), Some(s1));
    assert_eq!(reader.trace_summary(3).expect("unknown"), None);

    // Spans come back exactly as written, ordered by start.
    assert_eq!(
        reader.trace_spans(T1).expect("spans"),
        vec![root.clone(), child.clone()]
    );
    assert_eq!(reader.trace_spans(T2).expect("spans"), vec![other.clone()]);
    assert_eq!(reader.trace_spans(0x99).expect("unknown"), vec![]);
    assert_eq!(
        reader.spans_by_name("db.query", 10).expect("name"),
        vec![child.clone()]
    );
    assert_eq!(
        reader.spans_by_air_id(u64::MAX, 10).expect("air"),
        vec![root.clone()]
    );
    assert_eq!(
        reader.spans_by_air_id(0x9f3a, 10).expect("air"),
        vec![other, child],
        "newest written first"
    );
    assert_eq!(reader.spans_by_air_id(0x9f3a, 1).expect("air").len(), 1);
    // Newest-first filters walk the index backwards: no sort of all matches.
    for sql in [
        "SELECT * FROM spans WHERE name = 'x' ORDER BY rowid DESC LIMIT 5",
        "SELECT * FROM spans WHERE air_id = 1 ORDER BY rowid DESC LIMIT 5",
    ] {
        let plan: Vec<String> = reader
            .connection()
            .expect("conn")
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan")
            .query_map([], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(
            plan.iter().all(|p| !p.contains("TEMP B-TREE")),
            "{sql}: {plan:?}"
        );
        assert!(
            plan.iter().any(|p| p.contains("USING INDEX")),
            "{sql}: {plan:?}"
        );
    }

    // The views render big ids like the JSONL sink does.
    assert_eq!(
        rows(
            reader.connection().expect("conn"),
            "SELECT trace_id, span_id, parent_id, air_id, plan_hash FROM spans_v ORDER BY start_ns LIMIT 2"
        ),
        vec![
            vec![
                t("ffee0000000000000000000000000001"),
                t("8000000000000000"),
                Value::Null,
                t("air:Q-ffffffffffffffff"),
                t("ph:8000000000000001"),
            ],
            vec![
                t("00000000000000000000000000000002"),
                t("0000000000000007"),
                Value::Null,
                t("air:Q-0000000000009f3a"),
                Value::Null,
            ],
        ]
    );
    assert_eq!(
        rows(
            reader.connection().expect("conn"),
            "SELECT * FROM traces_v ORDER BY start_ns"
        ),
        vec![
            vec![
                t("ffee0000000000000000000000000001"),
                t("http.request"),
                i(TS as i64),
                i(TS as i64 + 9_000_000),
                i(2),
                i(1)
            ],
            vec![
                t("00000000000000000000000000000002"),
                t("job.run"),
                i(TS as i64 + 50),
                i(TS as i64 + 1_500_050),
                i(1),
                i(0)
            ],
        ]
    );
    // A read-only store refuses writes.
    let mut reader = reader;
    assert!(matches!(
        reader.write_batch(&[Record::Span(root)]),
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(
        reader.prune_older_than(u64::MAX),
        Err(StoreError::ReadOnly)
    ));
    store.close().expect("close");
    // Missing files are not created by a reader.
    assert!(SqliteStore::open_readonly(dir.path().join("missing.db")).is_err());
    assert!(!dir.path().join("missing.db").exists());
}

#[test]
fn groups_commit_by_record_count_and_age() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ats.db");
    let opts = StoreOptions {
        group_max_records: 10,
        group_max_age: Duration::from_secs(3600),
    };
    let mut store = SqliteStore::open_with(&path, opts).expect("open");
    let outside = Connection::open(&path).expect("reader");
    let committed = || count(&outside, "spans");
    let four = |k: u64| -> Vec<Record> {
        (0..4)
            .map(|j| Record::Span(tspan(T2, k * 4 + j + 1, 0, TS + k * 4 + j, "s", Status::Ok)))
            .collect()
    };
    store.write_batch(&four(0)).expect("b0");
    store.write_batch(&four(1)).expect("b1");
    assert_eq!((committed(), store.pending_records()), (0, 8));
    store.write_batch(&four(2)).expect("b2"); // 12 >= 10: committed
    assert_eq!((committed(), store.pending_records()), (12, 0));
    store.write_batch(&four(3)).expect("b3");
    assert_eq!(committed(), 12);
    store.flush().expect("flush");
    assert_eq!((committed(), store.pending_records()), (16, 0));
    // The summary was written once per group, with the group's totals.
    assert_eq!(
        store.trace_summary(T2).expect("sum").map(|s| s.span_count),
        Some(16)
    );
    store.close().expect("close");

    // group_max_age = 0: every batch is committed as it is written.
    let mut store = SqliteStore::open_with(
        &path,
        StoreOptions {
            group_max_records: usize::MAX,
            group_max_age: Duration::ZERO,
        },
    )
    .expect("reopen");
    store.write_batch(&four(4)).expect("b4");
    assert_eq!((committed(), store.pending_records()), (20, 0));
    // Close commits an open group too.
    let mut store = SqliteStore::open_with(
        &path,
        StoreOptions {
            group_max_records: usize::MAX,
            group_max_age: Duration::from_secs(3600),
        },
    )
    .expect("reopen");
    store.write_batch(&four(5)).expect("b5");
    assert_eq!(committed(), 20);
    store.close().expect("close");
    assert_eq!(committed(), 24);
}

#[test]
fn a_failed_batch_keeps_earlier_batches_of_its_group() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = SqliteStore::open(dir.path().join("ats.db")).expect("open");
    store
        .write_batch(&[Record::Span(tspan(T1, 1, 0, TS, "a", Status::Ok))])
        .expect("first");
    // A second batch fails after its first row (a view cannot be written).
    store
        .connection()
        .expect("conn")
        .execute_batch("DROP TABLE rewards; CREATE VIEW rewards AS SELECT 1 AS x;")
        .expect("sabotage");
    let bad = [
        Record::Span(tspan(T2, 2, 0, TS + 1, "b", Status::Error)),
        Record::Reward(reward(TS)),
    ];
    assert!(matches!(
        store.write_batch(&bad),
        Err(StoreError::Sqlite(_))
    ));
    store
        .write_batch(&[Record::Span(tspan(T1, 3, 1, TS + 2, "c", Status::Ok))])
        .expect("third");
    store.flush().expect("flush");
    let conn = store.connection().expect("conn");
    assert_eq!(
        rows(
            conn,
            "SELECT trace_id, span_id, name FROM spans_v ORDER BY start_ns"
        ),
        vec![
            vec![
                t("ffee0000000000000000000000000001"),
                t("0000000000000001"),
                t("a")
            ],
            vec![
                t("ffee0000000000000000000000000001"),
                t("0000000000000003"),
                t("c")
            ],
        ]
    );
    // T2's trace row went with its batch; T1's summary counts both batches.
    assert_eq!(
        rows(
            conn,
            "SELECT trace_id, span_count, error_count FROM traces_v"
        ),
        vec![vec![t("ffee0000000000000000000000000001"), i(2), i(0)]]
    );
}

#[test]
fn prune_keeps_trace_summaries_exact() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = SqliteStore::open(dir.path().join("ats.db")).expect("open");
    store
        .write_batch(&[
            Record::Span(tspan(T1, 1, 0, 1_000, "root", Status::Ok)),
            Record::Span(tspan(T1, 2, 1, 2_000, "kid", Status::Error)),
            Record::Span(tspan(T1, 3, 1, 3_000, "kid", Status::Ok)),
            Record::Span(tspan(T2, 4, 0, 1_500, "gone", Status::Error)),
        ])
        .expect("write");
    let counts = store.prune_older_than(2_000).expect("prune");
    assert_eq!(counts.spans, 2);
    assert_eq!(
        store.list_traces(None, None, 10).expect("list"),
        vec![TraceSummary {
            trace_id: T1,
            root_name: Some("root".into()),
            start_ns: 2_000,
            end_ns: 3_000 + 1_500_000,
            span_count: 2,
            error_count: 1,
        }]
    );
    assert_eq!(store.stats().expect("stats").traces, 1);
    // The writer's cached trace keys were dropped with the rows: new spans
    // of a pruned trace get a fresh traces row.
    store
        .write_batch(&[Record::Span(tspan(T2, 5, 0, 9_000, "back", Status::Ok))])
        .expect("w");
    store.flush().expect("flush");
    assert_eq!(
        store
            .trace_summary(T2)
            .expect("t2")
            .map(|s| (s.span_count, s.root_name)),
        Some((1, Some("back".to_string())))
    );
}

#[test]
fn id_parsers_accept_rendered_and_bare_forms() {
    use ats_core::sink::{parse_air_id, parse_plan_hash, parse_span_id, parse_trace_id};
    assert_eq!(parse_trace_id("ffee0000000000000000000000000001"), Some(T1));
    assert_eq!(parse_trace_id("FFEE0000000000000000000000000001"), Some(T1));
    assert_eq!(parse_trace_id("2"), Some(2));
    assert_eq!(
        parse_trace_id("ffee00000000000000000000000000011"),
        None,
        "33 digits"
    );
    assert_eq!(parse_trace_id(""), None);
    assert_eq!(parse_trace_id("+1"), None);
    assert_eq!(parse_span_id("ffffffffffffffff"), Some(u64::MAX));
    assert_eq!(parse_span_id("1ffffffffffffffff"), None);
    assert_eq!(parse_air_id("air:Q-0000000000009f3a"), Some(0x9f3a));
    assert_eq!(parse_air_id("9f3a"), Some(0x9f3a));
    assert_eq!(parse_air_id("air:Q-"), None);
    assert_eq!(parse_plan_hash("ph:000000000000ab12"), Some(0xab12));
    assert_eq!(parse_plan_hash("ph:zz"), None);
}
