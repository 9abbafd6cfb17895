//! The JSONL file sink: exact lines, rotation, caps, crash tolerance.

use std::io::Write as _;
use std::path::Path;

use ats_core::record::{
    AttrValue, Envelope, HistogramData, LogRecord, MetricKind, MetricPoint, Record, RewardRecord,
    Severity, SloClass, SpanRecord, Status,
};
use ats_core::sink::jsonl::{encode_record, list_files};
use ats_core::sink::{read_jsonl_lenient, JsonlConfig, JsonlError, JsonlSink, JsonlStats};

const TS: u64 = 1_760_623_265_345_000_000; // 2025-10-16T14:01:05.345Z
const DAY: u64 = 86_400_000_000_000;
/// 2025-10-16T23:59:59.999Z
const LAST_MS_OF_DAY: u64 = 1_760_659_199_999_000_000;

fn env(ts_ns: u64) -> Envelope {
    Envelope {
        ts_ns,
        tenant: "acme".into(),
        workspace: "prod-eu".into(),
        region: "eu-west-2".into(),
        dialect: "mysql".into(),
        trace_id: 0x4a1b_0000_0000_0000_0000_0000_0000_9f3a,
        span_id: 0x9f3a_0000_0000_0002,
        parent_span_id: 0x9f3a_0000_0000_0001,
        air_id: Some(0x9f3a),
        plan_hash: Some(0xab12),
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
            ("db.operation".into(), AttrValue::Str("SELECT".into())),
            ("net.peer.port".into(), AttrValue::I64(5432)),
            ("ratio".into(), AttrValue::F64(0.5)),
            ("cached".into(), AttrValue::Bool(true)),
        ],
    }
}

fn small(ts_ns: u64) -> Record {
    let mut s = span(ts_ns);
    s.attributes.clear();
    Record::Span(s)
}

fn line(rec: &Record) -> String {
    let mut out = String::new();
    encode_record(&mut out, rec);
    out
}

fn cfg(dir: &Path) -> JsonlConfig {
    JsonlConfig::new(dir)
}

fn names(dir: &Path) -> Vec<String> {
    list_files(dir)
        .expect("list")
        .iter()
        .map(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn lines_in(path: &Path) -> usize {
    let read = read_jsonl_lenient(path).expect("read");
    assert!(!read.partial_tail && read.invalid_lines == 0);
    read.records.len()
}

#[test]
fn exact_span_line() {
    assert_eq!(
        line(&Record::Span(span(TS))),
        concat!(
            r#"{"ts":"2025-10-16T14:01:05.345Z","tenant":"acme","workspace":"prod-eu","#,
            r#""trace_id":"4a1b0000000000000000000000009f3a","span_id":"9f3a000000000002","#,
            r#""parent_span_id":"9f3a000000000001","air_id":"air:Q-0000000000009f3a","#,
            r#""plan_hash":"ph:000000000000ab12","dialect":"mysql","region":"eu-west-2","#,
            r#""kind":"span","evt":"driver.query.ok","component":"ats-sqlite3","status":"ok","#,
            r#""start_ns":1760623265345000000,"end_ns":1760623265346500000,"duration_ms":1.5,"#,
            r#""attributes":{"db.operation":"SELECT","net.peer.port":5432,"ratio":0.5,"cached":true}}"#,
            "\n"
        )
    );
    // Unset status: bare name; error: `.error`; absent ids and hashes are omitted.
    let mut s = span(TS);
    s.status = Status::Unset;
    s.envelope.parent_span_id = 0;
    s.envelope.air_id = None;
    s.envelope.plan_hash = None;
    s.end_ns = TS - 5; // clock went backwards: duration clamps to 0
    s.attributes.clear();
    assert_eq!(
        line(&Record::Span(s.clone())),
        concat!(
            r#"{"ts":"2025-10-16T14:01:05.345Z","tenant":"acme","workspace":"prod-eu","#,
            r#""trace_id":"4a1b0000000000000000000000009f3a","span_id":"9f3a000000000002","#,
            r#""dialect":"mysql","region":"eu-west-2","kind":"span","evt":"driver.query","#,
            r#""component":"ats-sqlite3","status":"unset","start_ns":1760623265345000000,"#,
            r#""end_ns":1760623265344999995,"duration_ms":0.0,"attributes":{}}"#,
            "\n"
        )
    );
    s.status = Status::Error;
    assert!(line(&Record::Span(s)).contains(r#""evt":"driver.query.error","#));
}

#[test]
fn exact_log_line() {
    let mut e = env(TS);
    e.trace_id = 0;
    e.span_id = 0;
    e.parent_span_id = 0;
    e.plan_hash = None;
    let rec = Record::Log(LogRecord {
        envelope: e,
        event: "policy.deny".into(),
        component: "ats-policy".into(),
        severity: Severity::WARN,
        body: "cross-region egress blocked by residency=eu".into(),
        attributes: vec![("obligations".into(), AttrValue::Str("mask:email".into()))],
    });
    assert_eq!(
        line(&rec),
        concat!(
            r#"{"ts":"2025-10-16T14:01:05.345Z","tenant":"acme","workspace":"prod-eu","#,
            r#""air_id":"air:Q-0000000000009f3a","dialect":"mysql","region":"eu-west-2","#,
            r#""kind":"log","evt":"policy.deny","component":"ats-policy","severity":13,"#,
            r#""body":"cross-region egress blocked by residency=eu","#,
            r#""attributes":{"obligations":"mask:email"}}"#,
            "\n"
        )
    );
}

#[test]
fn exact_metric_lines() {
    let mut e = env(TS);
    e.trace_id = 0;
    e.span_id = 0;
    e.parent_span_id = 0;
    e.air_id = None;
    e.plan_hash = None;
    let counter = MetricPoint {
        envelope: e.clone(),
        name: "sqlx_driver_errors_total".into(),
        unit: "1".into(),
        kind: MetricKind::Counter,
        start_ns: 1_000,
        labels: vec![
            ("dialect".into(), "mysql".into()),
            ("class".into(), "timeout".into()),
        ],
        value: 3.0,
        histogram: None,
    };
    assert_eq!(
        line(&Record::Metric(counter)),
        concat!(
            r#"{"ts":"2025-10-16T14:01:05.345Z","tenant":"acme","workspace":"prod-eu","#,
            r#""dialect":"mysql","region":"eu-west-2","kind":"metric","#,
            r#""name":"sqlx_driver_errors_total","unit":"1","metric_kind":"counter","#,
            r#""start_ns":1000,"labels":{"dialect":"mysql","class":"timeout"},"value":3.0}"#,
            "\n"
        )
    );
    let hist = MetricPoint {
        envelope: e,
        name: "sqlx_exec_latency_ms".into(),
        unit: "ms".into(),
        kind: MetricKind::Histogram,
        start_ns: 1_000,
        labels: vec![("class".into(), "L".into())],
        value: 6.5,
        histogram: Some(HistogramData {
            count: 3,
            sum: 6.5,
            min: 0.5,
            max: 4.0,
            bounds: vec![1.0, 5.0],
            counts: vec![1, 2, 0],
        }),
    };
    assert_eq!(
        line(&Record::Metric(hist)),
        concat!(
            r#"{"ts":"2025-10-16T14:01:05.345Z","tenant":"acme","workspace":"prod-eu","#,
            r#""dialect":"mysql","region":"eu-west-2","kind":"metric","#,
            r#""name":"sqlx_exec_latency_ms","unit":"ms","metric_kind":"histogram","#,
            r#""start_ns":1000,"labels":{"class":"L"},"value":6.5,"#,
            r#""histogram":{"count":3,"sum":6.5,"min":0.5,"max":4.0,"bounds":[1.0,5.0],"counts":[1,2,0]}}"#,
            "\n"
        )
    );
}

#[test]
fn exact_reward_line_follows_seed_7_1() {
    let mut e = env(1_760_623_577_441_000_000); // 2025-10-16T14:06:17.441Z
    e.trace_id = 0;
    e.span_id = 0;
    e.parent_span_id = 0;
    let rec = Record::Reward(RewardRecord {
        envelope: e,
        class: SloClass::L,
        latency_ms: 12.3,
        cpu_ms: 1.8,
        io_bytes: 4096,
        rows: 42,
        success: true,
        reward: -14.1,
        engine: "8.0.36".into(),
    });
    assert_eq!(
        line(&rec),
        concat!(
            r#"{"ts":"2025-10-16T14:06:17.441Z","tenant":"acme","workspace":"prod-eu","#,
            r#""air_id":"air:Q-0000000000009f3a","plan_hash":"ph:000000000000ab12","#,
            r#""dialect":"mysql","region":"eu-west-2","kind":"reward","class":"L","#,
            r#""latency_ms":12.3,"cpu_ms":1.8,"io_bytes":4096,"rows":42,"success":true,"#,
            r#""reward":-14.1,"context":{"dialect":"mysql","region":"eu-west-2","engine":"8.0.36"}}"#,
            "\n"
        )
    );
}

#[test]
fn nasty_strings_round_trip_through_serde_json() {
    let nasty = [
        "quote \" and backslash \\",
        "new\nline\r\ttab",
        "nul \u{0} bell \u{7} esc \u{1b} us \u{1f} del \u{7f}",
        "emoji 😀 family 👩‍👩‍👧 CJK 漢字 RTL \u{202e} LS \u{2028}",
        "{\"json\":\"inside\"}",
        "",
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = JsonlSink::open(cfg(dir.path())).expect("open");
    let batch: Vec<Record> = nasty
        .iter()
        .map(|s| {
            let mut e = env(TS);
            e.tenant = (*s).to_string();
            Record::Log(LogRecord {
                envelope: e,
                event: format!("evt.{s}"),
                component: (*s).to_string(),
                severity: Severity::INFO,
                body: (*s).to_string(),
                attributes: vec![((*s).to_string(), AttrValue::Str((*s).to_string()))],
            })
        })
        .collect();
    sink.write_batch(&batch).expect("write");
    sink.close().expect("close");
    let read = read_jsonl_lenient(dir.path().join("ats-2025-10-16.jsonl")).expect("read");
    assert_eq!(read.records.len(), nasty.len());
    assert!(!read.partial_tail && read.invalid_lines == 0);
    for (v, s) in read.records.iter().zip(nasty) {
        assert_eq!(v["tenant"], *s);
        assert_eq!(v["evt"], format!("evt.{s}"));
        assert_eq!(v["component"], *s);
        assert_eq!(v["body"], *s);
        assert_eq!(v["attributes"][s], *s);
    }
}

#[test]
fn rotates_on_the_utc_day_of_each_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = JsonlSink::open(cfg(dir.path())).expect("open");
    sink.write_batch(&[
        small(LAST_MS_OF_DAY - 1_000_000),
        small(LAST_MS_OF_DAY),
        small(LAST_MS_OF_DAY + 1_000_000), // 2025-10-17T00:00:00.000Z
        small(LAST_MS_OF_DAY + 2_000_000),
    ])
    .expect("write");
    // A late record for the previous day goes back to that day's file.
    sink.write_batch(&[
        small(LAST_MS_OF_DAY - DAY / 2),
        small(LAST_MS_OF_DAY + 1_000_000 + DAY),
    ])
    .expect("write");
    sink.close().expect("close");
    assert_eq!(
        names(dir.path()),
        [
            "ats-2025-10-16.jsonl",
            "ats-2025-10-17.jsonl",
            "ats-2025-10-18.jsonl"
        ]
    );
    let day16 = read_jsonl_lenient(dir.path().join("ats-2025-10-16.jsonl")).expect("read");
    let ts: Vec<&str> = day16
        .records
        .iter()
        .map(|v| v["ts"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        ts,
        [
            "2025-10-16T23:59:59.998Z",
            "2025-10-16T23:59:59.999Z",
            "2025-10-16T11:59:59.999Z"
        ]
    );
    assert_eq!(lines_in(&dir.path().join("ats-2025-10-17.jsonl")), 2);
    assert_eq!(lines_in(&dir.path().join("ats-2025-10-18.jsonl")), 1);
    let st = sink.stats();
    assert_eq!((st.lines_written, st.files_deleted), (6, 0));
}

#[test]
fn size_cap_continues_in_numbered_files() {
    let len = line(&small(TS)).len() as u64;
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = cfg(dir.path());
    c.max_file_bytes = Some(len * 5 / 2); // two lines fit, the third does not
    let mut sink = JsonlSink::open(c.clone()).expect("open");
    let batch: Vec<Record> = (0..5).map(|k| small(TS + k)).collect();
    sink.write_batch(&batch).expect("write");
    sink.close().expect("close");
    assert_eq!(
        names(dir.path()),
        [
            "ats-2025-10-16.jsonl",
            "ats-2025-10-16.1.jsonl",
            "ats-2025-10-16.2.jsonl"
        ]
    );
    let sizes: Vec<u64> = list_files(dir.path())
        .expect("list")
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .collect();
    assert_eq!(sizes, [2 * len, 2 * len, len]);
    // A new sink continues in the newest file of the day, then rolls on.
    let mut sink = JsonlSink::open(c).expect("reopen");
    sink.write_batch(&[small(TS + 10), small(TS + 11)])
        .expect("write");
    sink.close().expect("close");
    assert_eq!(
        names(dir.path()),
        [
            "ats-2025-10-16.jsonl",
            "ats-2025-10-16.1.jsonl",
            "ats-2025-10-16.2.jsonl",
            "ats-2025-10-16.3.jsonl"
        ]
    );
    assert_eq!(lines_in(&dir.path().join("ats-2025-10-16.2.jsonl")), 2);
    assert_eq!(lines_in(&dir.path().join("ats-2025-10-16.3.jsonl")), 1);
    // A single line larger than the cap gets a file of its own.
    let mut c = cfg(dir.path());
    c.max_file_bytes = Some(10);
    let mut sink = JsonlSink::open(c).expect("tiny cap");
    sink.write_batch(&[small(TS + 20)]).expect("write");
    sink.close().expect("close");
    assert_eq!(lines_in(&dir.path().join("ats-2025-10-16.4.jsonl")), 1);
}

#[test]
fn total_cap_deletes_oldest_files_and_counts_them() {
    let len = line(&small(TS)).len() as u64;
    let dir = tempfile::tempdir().expect("tmp");
    // Not ours: must be neither counted nor deleted.
    std::fs::write(dir.path().join("notes.txt"), vec![b'x'; 10_000]).expect("foreign file");
    let mut c = cfg(dir.path());
    c.max_total_bytes = Some(len * 5); // room for five lines
    let mut sink = JsonlSink::open(c).expect("open");
    // Five days, two lines each: 10 lines, only five fit.
    for d in 0..5u64 {
        sink.write_batch(&[small(TS + d * DAY), small(TS + d * DAY + 1)])
            .expect("write");
    }
    sink.close().expect("close");
    assert_eq!(
        names(dir.path()),
        ["ats-2025-10-19.jsonl", "ats-2025-10-20.jsonl"]
    );
    assert_eq!(
        sink.stats(),
        JsonlStats {
            lines_written: 10,
            bytes_written: 10 * len,
            files_opened: 5,
            files_deleted: 3,
            bytes_deleted: 6 * len,
        }
    );
    assert!(dir.path().join("notes.txt").exists());
}

#[test]
fn lenient_reader_skips_a_partial_last_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = JsonlSink::open(cfg(dir.path())).expect("open");
    sink.write_batch(&[small(TS), small(TS + 1), small(TS + 2)])
        .expect("write");
    sink.flush().expect("flush");
    let path = dir.path().join("ats-2025-10-16.jsonl");
    // What a writer killed mid-line leaves behind.
    let full = line(&small(TS + 3));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&full.as_bytes()[..full.len() / 2]))
        .expect("append partial");
    let read = read_jsonl_lenient(&path).expect("read");
    assert_eq!(read.records.len(), 3);
    assert!(read.partial_tail);
    assert_eq!(read.invalid_lines, 0);
    assert_eq!(read.records[2]["start_ns"], TS + 2);
    // A damaged complete line is counted and skipped, blank lines ignored.
    std::fs::write(&path, format!("{full}not json\n\n{full}")).expect("rewrite");
    let read = read_jsonl_lenient(&path).expect("read");
    assert_eq!(
        (read.records.len(), read.partial_tail, read.invalid_lines),
        (2, false, 1)
    );
    assert!(matches!(
        read_jsonl_lenient(dir.path().join("missing.jsonl")),
        Err(JsonlError::Read { .. })
    ));
}

#[test]
fn buffered_until_flush_and_closed_refuses_writes() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ats-2025-10-16.jsonl");
    let mut sink = JsonlSink::open(cfg(dir.path())).expect("open");
    assert_eq!(sink.name(), "jsonl");
    sink.write_batch(&[small(TS), small(TS + 1)])
        .expect("write");
    assert_eq!(
        std::fs::metadata(&path).expect("created").len(),
        0,
        "still buffered"
    );
    sink.flush().expect("flush");
    let len = line(&small(TS)).len() as u64;
    assert_eq!(std::fs::metadata(&path).expect("flushed").len(), 2 * len);
    // A small buffer hands lines to the OS as it fills, whole lines only.
    let mut c = cfg(dir.path());
    c.buffer_bytes = 1;
    let mut eager = JsonlSink::open(c).expect("open");
    eager.write_batch(&[small(TS + 2)]).expect("write");
    assert_eq!(std::fs::metadata(&path).expect("eager").len(), 3 * len);
    eager.close().expect("close");
    sink.close().expect("close");
    sink.close().expect("close is idempotent");
    assert!(matches!(
        sink.write_batch(&[small(TS)]),
        Err(JsonlError::Closed)
    ));
    assert!(matches!(sink.flush(), Err(JsonlError::Closed)));
    assert_eq!(lines_in(&path), 3);
    let mut bad = cfg(dir.path());
    bad.buffer_bytes = 0;
    assert!(matches!(JsonlSink::open(bad), Err(JsonlError::Config(_))));
}

#[test]
fn a_10_mb_value_of_control_characters_is_written_whole() {
    let junk: String = (0..10 << 20).map(|k| char::from((k % 128) as u8)).collect();
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = JsonlSink::open(cfg(dir.path())).expect("open");
    let mut s = span(TS);
    s.attributes = vec![("junk".into(), AttrValue::Str(junk.clone()))];
    sink.write_batch(&[Record::Span(s), small(TS + 1)])
        .expect("write");
    sink.close().expect("close");
    let read = read_jsonl_lenient(dir.path().join("ats-2025-10-16.jsonl")).expect("read");
    assert_eq!(
        (read.records.len(), read.partial_tail, read.invalid_lines),
        (2, false, 0)
    );
    assert_eq!(read.records[0]["attributes"]["junk"], junk);
}
