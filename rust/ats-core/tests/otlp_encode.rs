//! OTLP encoding checked against an independent implementation: the
//! `opentelemetry-proto` crate's generated prost types. Expected requests are
//! built by hand from those types; our bytes must decode to them and equal
//! prost's own encoding of them byte for byte; our OTLP/JSON must deserialise
//! (with the crate's serde support for the OTLP JSON mapping) to the same
//! message.

use ats_core::otlp::{logs_json, traces_json, Encoded, OtlpEncoder, ResourceConfig, Temporality};
use ats_core::record::{
    AttrValue, Envelope, HistogramData, LogRecord, MetricKind, MetricPoint, Record, RewardRecord,
    Severity, SloClass, SpanRecord, Status,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as PLog, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, ResourceSpans, ScopeSpans, Span, Status as PStatus,
};
use prost::Message;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const TRACE: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;

fn sv(v: &str) -> Value {
    Value::StringValue(v.into())
}

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn cfg() -> ResourceConfig {
    ResourceConfig {
        service_name: "shop".into(),
        attributes: vec![("deployment.environment".into(), "prod".into())],
    }
}

fn resource(tenant: &str, workspace: &str, region: &str) -> Option<Resource> {
    let mut attributes = vec![
        kv("service.name", sv("shop")),
        kv("telemetry.sdk.name", sv("ats")),
        kv("telemetry.sdk.language", sv("python")),
        kv("telemetry.sdk.version", sv(VERSION)),
        kv("deployment.environment", sv("prod")),
    ];
    for (k, v) in [
        ("sqlx.tenant", tenant),
        ("sqlx.workspace", workspace),
        ("cloud.region", region),
    ] {
        if !v.is_empty() {
            attributes.push(kv(k, sv(v)));
        }
    }
    Some(Resource {
        attributes,
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        version: VERSION.into(),
        ..Default::default()
    })
}

fn env(tenant: &str, trace_id: u128, span_id: u64, parent: u64, ts: u64) -> Envelope {
    Envelope {
        ts_ns: ts,
        tenant: tenant.into(),
        workspace: "prod-eu".into(),
        region: "eu-west-2".into(),
        dialect: "sqlite".into(),
        trace_id,
        span_id,
        parent_span_id: parent,
        air_id: Some(0x9f3a),
        plan_hash: None,
    }
}

fn attr(k: &str, v: AttrValue) -> (String, AttrValue) {
    (k.into(), v)
}

fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.into())
}

/// A `driver.query` span as the sqlite3 instrumentation records it.
fn query_span(tenant: &str, span_id: u64, parent: u64) -> SpanRecord {
    SpanRecord {
        envelope: env(tenant, TRACE, span_id, parent, 1_700_000_000_000_000_000),
        name: "driver.query".into(),
        component: "ats-sqlite3".into(),
        end_ns: 1_700_000_000_000_250_000,
        status: Status::Ok,
        attributes: vec![
            attr("db.system.name", s("sqlite")),
            attr("db.query.text", s("SELECT name FROM users WHERE age > ?")),
            attr("db.operation.name", s("SELECT")),
            attr("db.collection.name", s("users")),
            attr("db.query.summary", s("SELECT users")),
            attr("server.port", AttrValue::I64(5432)),
            attr("db.response.returned_rows", AttrValue::I64(-1)),
            attr("sampled", AttrValue::Bool(true)),
            attr("ratio", AttrValue::F64(0.25)),
        ],
    }
}

fn expected_query_span(span_id: u64, parent: u64) -> Span {
    Span {
        trace_id: TRACE.to_be_bytes().to_vec(),
        span_id: span_id.to_be_bytes().to_vec(),
        parent_span_id: if parent == 0 {
            vec![]
        } else {
            parent.to_be_bytes().to_vec()
        },
        name: "SELECT users".into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_000_250_000,
        attributes: vec![
            kv("db.system.name", sv("sqlite")),
            kv("db.query.text", sv("SELECT name FROM users WHERE age > ?")),
            kv("db.operation.name", sv("SELECT")),
            kv("db.collection.name", sv("users")),
            kv("db.query.summary", sv("SELECT users")),
            kv("server.port", Value::IntValue(5432)),
            kv("db.response.returned_rows", Value::IntValue(-1)),
            kv("sampled", Value::BoolValue(true)),
            kv("ratio", Value::DoubleValue(0.25)),
            kv("sqlx.event", sv("driver.query")),
            kv("db.sqlx.air_id", sv("air:Q-0000000000009f3a")),
        ],
        status: Some(PStatus {
            message: String::new(),
            code: 1,
        }),
        ..Default::default()
    }
}

fn failed_span() -> SpanRecord {
    SpanRecord {
        envelope: Envelope {
            plan_hash: Some(0xab12),
            dialect: String::new(),
            ..env("acme", TRACE, 7, 0, 5_000)
        },
        name: "kernel.exec".into(),
        component: "ats-kernel".into(),
        end_ns: 9_000,
        status: Status::Error,
        attributes: vec![
            attr("span.kind", s("server")),
            attr("error.type", s("TimeoutError")),
            attr("exception.type", s("asyncio.TimeoutError")),
            attr("exception.message", s("deadline exceeded")),
        ],
    }
}

fn expected_failed_span() -> Span {
    Span {
        trace_id: TRACE.to_be_bytes().to_vec(),
        span_id: 7u64.to_be_bytes().to_vec(),
        name: "kernel.exec".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 5_000,
        end_time_unix_nano: 9_000,
        attributes: vec![
            kv("error.type", sv("TimeoutError")),
            kv("exception.type", sv("asyncio.TimeoutError")),
            kv("exception.message", sv("deadline exceeded")),
            kv("sqlx.event", sv("kernel.exec")),
            kv("db.sqlx.air_id", sv("air:Q-0000000000009f3a")),
            kv("db.sqlx.plan_hash", sv("ph:000000000000ab12")),
        ],
        events: vec![span::Event {
            time_unix_nano: 9_000,
            name: "exception".into(),
            attributes: vec![
                kv("exception.type", sv("asyncio.TimeoutError")),
                kv("exception.message", sv("deadline exceeded")),
            ],
            ..Default::default()
        }],
        status: Some(PStatus {
            message: "deadline exceeded".into(),
            code: 2,
        }),
        ..Default::default()
    }
}

fn reward() -> Record {
    Record::Reward(RewardRecord {
        envelope: env("acme", TRACE, 1, 0, 1),
        class: SloClass::L,
        latency_ms: 12.3,
        cpu_ms: 1.8,
        io_bytes: 4096,
        rows: 42,
        success: true,
        reward: -14.1,
        engine: "8.0.36".into(),
    })
}

fn encoder() -> OtlpEncoder {
    OtlpEncoder::new(cfg(), Temporality::Cumulative)
}

/// Decodes `bytes`, compares with `expected`, and requires byte equality
/// with prost's encoding of `expected`.
fn assert_proto<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8], expected: &M) {
    let decoded = M::decode(bytes).expect("our bytes decode");
    assert_eq!(&decoded, expected);
    assert_eq!(
        bytes,
        expected.encode_to_vec().as_slice(),
        "bytes differ from prost's encoding"
    );
}

/// The encoder lives on the flusher thread.
#[test]
fn encoder_is_send() {
    fn send<T: Send>(_: &T) {}
    send(&encoder());
}

#[test]
fn traces_exact_bytes_and_fields() {
    let batch = vec![
        Record::Span(query_span("acme", 2, 1)),
        Record::Span(failed_span()),
        Record::Span(query_span("acme", 3, 0)),
    ];
    let enc = encoder().encode_proto(&batch);
    let expected = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("acme", "prod-eu", "eu-west-2"),
            scope_spans: vec![
                ScopeSpans {
                    scope: scope("ats-sqlite3"),
                    spans: vec![expected_query_span(2, 1), expected_query_span(3, 0)],
                    ..Default::default()
                },
                ScopeSpans {
                    scope: scope("ats-kernel"),
                    spans: vec![expected_failed_span()],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
    };
    assert_proto(enc.traces.as_deref().expect("traces"), &expected);
    assert_eq!(
        (enc.spans, enc.metrics, enc.logs, enc.invalid_spans),
        (3, None, None, 0)
    );
}

#[test]
fn grouping_invalid_spans_and_rewards() {
    let mut no_trace = query_span("acme", 9, 0);
    no_trace.envelope.trace_id = 0;
    let mut no_span = query_span("acme", 0, 0);
    no_span.component = String::new();
    let mut other = query_span("globex", 4, 0);
    other.component = String::new();
    other.envelope.region = String::new();
    let batch = vec![
        Record::Span(query_span("acme", 2, 0)),
        Record::Span(no_trace),
        Record::Span(other),
        reward(),
        Record::Span(no_span),
        Record::Span(query_span("acme", 3, 0)),
    ];
    let enc = encoder().encode_proto(&batch);
    assert_eq!(
        (enc.spans, enc.invalid_spans, enc.rewards_skipped),
        (3, 2, 1)
    );
    let req =
        ExportTraceServiceRequest::decode(enc.traces.as_deref().expect("traces")).expect("decode");
    type Shape = Vec<(Option<Resource>, Vec<(String, Vec<Vec<u8>>)>)>;
    let shape: Shape = req
        .resource_spans
        .into_iter()
        .map(|rs| {
            let scopes = rs
                .scope_spans
                .into_iter()
                .map(|ss| {
                    (
                        ss.scope.expect("scope").name,
                        ss.spans.into_iter().map(|s| s.span_id).collect(),
                    )
                })
                .collect();
            (rs.resource, scopes)
        })
        .collect();
    let id = |n: u64| n.to_be_bytes().to_vec();
    assert_eq!(
        shape,
        vec![
            (
                resource("acme", "prod-eu", "eu-west-2"),
                vec![("ats-sqlite3".to_string(), vec![id(2), id(3)])]
            ),
            (
                resource("globex", "prod-eu", ""),
                vec![("ats".to_string(), vec![id(4)])]
            ),
        ]
    );
}

#[test]
fn nothing_to_export_gives_no_bodies() {
    let mut bad = query_span("acme", 1, 0);
    bad.envelope.trace_id = 0;
    let enc = encoder().encode_proto(&[Record::Span(bad), reward()]);
    assert_eq!(
        enc,
        Encoded {
            invalid_spans: 1,
            rewards_skipped: 1,
            ..Encoded::default()
        },
    );
    assert_eq!(encoder().encode_json(&[]), Encoded::default());
}

fn point(
    name: &str,
    kind: MetricKind,
    ts: u64,
    value: f64,
    labels: &[(&str, &str)],
) -> MetricPoint {
    MetricPoint {
        envelope: Envelope {
            ts_ns: ts,
            tenant: "acme".into(),
            ..Envelope::default()
        },
        name: name.into(),
        unit: if kind == MetricKind::Histogram {
            "ms".into()
        } else {
            "1".into()
        },
        kind,
        start_ns: 1_000,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value,
        histogram: None,
    }
}

fn hist_point(ts: u64, counts: Vec<u64>, sum: f64) -> MetricPoint {
    let count = counts.iter().sum();
    MetricPoint {
        histogram: Some(HistogramData {
            count,
            sum,
            min: 0.5,
            max: 30.0,
            bounds: vec![1.0, 10.0],
            counts,
        }),
        ..point(
            "sqlx_driver_latency_ms",
            MetricKind::Histogram,
            ts,
            sum,
            &[("dialect", "sqlite"), ("op", "query")],
        )
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, sv(v))).collect()
}

fn number(start: u64, ts: u64, v: f64, attrs: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: labels(attrs),
        start_time_unix_nano: start,
        time_unix_nano: ts,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn metrics_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("acme", "", ""),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("ats"),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

#[test]
fn metrics_cumulative_exact_bytes_and_fields() {
    let errors = "sqlx_driver_errors_total";
    let batch = vec![
        Record::Metric(point(
            errors,
            MetricKind::Counter,
            2_000,
            3.0,
            &[("dialect", "sqlite"), ("class", "L")],
        )),
        Record::Metric(point(
            "sqlx_pool_active",
            MetricKind::Gauge,
            2_000,
            4.0,
            &[("id", "p1")],
        )),
        Record::Metric(hist_point(2_000, vec![1, 2, 0], 12.5)),
        Record::Metric(point(
            errors,
            MetricKind::Counter,
            2_000,
            1.0,
            &[("dialect", "sqlite"), ("class", "B")],
        )),
    ];
    let enc = encoder().encode_proto(&batch);
    let expected = metrics_request(vec![
        metric(
            errors,
            "1",
            Data::Sum(Sum {
                data_points: vec![
                    number(1_000, 2_000, 3.0, &[("dialect", "sqlite"), ("class", "L")]),
                    number(1_000, 2_000, 1.0, &[("dialect", "sqlite"), ("class", "B")]),
                ],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "sqlx_pool_active",
            "1",
            Data::Gauge(Gauge {
                data_points: vec![number(1_000, 2_000, 4.0, &[("id", "p1")])],
            }),
        ),
        metric(
            "sqlx_driver_latency_ms",
            "ms",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: labels(&[("dialect", "sqlite"), ("op", "query")]),
                    start_time_unix_nano: 1_000,
                    time_unix_nano: 2_000,
                    count: 3,
                    sum: Some(12.5),
                    bucket_counts: vec![1, 2, 0],
                    explicit_bounds: vec![1.0, 10.0],
                    min: Some(0.5),
                    max: Some(30.0),
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            }),
        ),
    ]);
    assert_proto(enc.metrics.as_deref().expect("metrics"), &expected);
    assert_eq!(
        (enc.points, enc.malformed_points, enc.stale_points),
        (4, 0, 0)
    );
}

#[test]
fn metrics_delta_between_batches() {
    let mut e = OtlpEncoder::new(cfg(), Temporality::Delta);
    let c = |ts, v| {
        Record::Metric(point(
            "sqlx_cache_events_total",
            MetricKind::Counter,
            ts,
            v,
            &[("type", "hit")],
        ))
    };
    let first = e.encode_proto(&[
        c(2_000, 5.0),
        Record::Metric(hist_point(2_000, vec![1, 1, 0], 5.0)),
    ]);
    let second = e.encode_proto(&[
        c(3_000, 8.0),
        c(3_000, 8.0), // same timestamp again: stale
        Record::Metric(hist_point(3_000, vec![1, 4, 1], 60.0)),
    ]);
    assert_eq!(
        (first.points, second.points, second.stale_points),
        (2, 2, 1)
    );
    assert_eq!(e.delta_series(), 2);
    let hist = |start, ts, counts: Vec<u64>, sum, minmax: Option<(f64, f64)>| HistogramDataPoint {
        attributes: labels(&[("dialect", "sqlite"), ("op", "query")]),
        start_time_unix_nano: start,
        time_unix_nano: ts,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts,
        explicit_bounds: vec![1.0, 10.0],
        min: minmax.map(|m| m.0),
        max: minmax.map(|m| m.1),
        ..Default::default()
    };
    let request = |start, ts, v, h| {
        metrics_request(vec![
            metric(
                "sqlx_cache_events_total",
                "1",
                Data::Sum(Sum {
                    data_points: vec![number(start, ts, v, &[("type", "hit")])],
                    aggregation_temporality: 1,
                    is_monotonic: true,
                }),
            ),
            metric(
                "sqlx_driver_latency_ms",
                "ms",
                Data::Histogram(Histogram {
                    data_points: vec![h],
                    aggregation_temporality: 1,
                }),
            ),
        ])
    };
    assert_proto(
        first.metrics.as_deref().expect("first"),
        &request(
            1_000,
            2_000,
            5.0,
            hist(1_000, 2_000, vec![1, 1, 0], 5.0, Some((0.5, 30.0))),
        ),
    );
    assert_proto(
        second.metrics.as_deref().expect("second"),
        &request(
            2_000,
            3_000,
            3.0,
            hist(2_000, 3_000, vec![0, 3, 1], 55.0, None),
        ),
    );
}

#[test]
fn malformed_histogram_is_counted_not_sent() {
    let mut bad = hist_point(2_000, vec![1, 2, 0], 3.0);
    bad.histogram.as_mut().expect("h").bounds.pop();
    let enc = encoder().encode_proto(&[Record::Metric(bad)]);
    assert_eq!(
        (enc.metrics, enc.points, enc.malformed_points),
        (None, 0, 1)
    );
}

fn log_record(trace_id: u128, span_id: u64) -> LogRecord {
    LogRecord {
        envelope: Envelope {
            plan_hash: Some(0xab12),
            ..env("acme", trace_id, span_id, 0, 3_000)
        },
        event: "policy.deny".into(),
        component: "ats-policy".into(),
        severity: Severity::WARN,
        body: "cross-region egress blocked by residency=eu".into(),
        attributes: vec![
            attr("actor", s("user:analyst-42")),
            attr("obligations", AttrValue::I64(1)),
        ],
    }
}

#[test]
fn logs_exact_bytes_and_fields() {
    let mut bare = log_record(0, 0);
    bare.body = String::new();
    bare.severity = Severity(0);
    bare.envelope.air_id = None;
    bare.envelope.plan_hash = None;
    let enc = encoder().encode_proto(&[Record::Log(log_record(TRACE, 0x00ef)), Record::Log(bare)]);
    let full = PLog {
        time_unix_nano: 3_000,
        observed_time_unix_nano: 3_000,
        severity_number: 13,
        severity_text: "WARN".into(),
        body: Some(AnyValue {
            value: Some(sv("cross-region egress blocked by residency=eu")),
        }),
        attributes: vec![
            kv("actor", sv("user:analyst-42")),
            kv("obligations", Value::IntValue(1)),
            kv("event.name", sv("policy.deny")),
            kv("db.sqlx.air_id", sv("air:Q-0000000000009f3a")),
            kv("db.sqlx.plan_hash", sv("ph:000000000000ab12")),
        ],
        trace_id: TRACE.to_be_bytes().to_vec(),
        span_id: 0x00efu64.to_be_bytes().to_vec(),
        event_name: "policy.deny".into(),
        ..Default::default()
    };
    let bare = PLog {
        time_unix_nano: 3_000,
        observed_time_unix_nano: 3_000,
        attributes: vec![
            kv("actor", sv("user:analyst-42")),
            kv("obligations", Value::IntValue(1)),
            kv("event.name", sv("policy.deny")),
        ],
        event_name: "policy.deny".into(),
        ..Default::default()
    };
    let expected = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("acme", "prod-eu", "eu-west-2"),
            scope_logs: vec![ScopeLogs {
                scope: scope("ats-policy"),
                log_records: vec![full, bare],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_proto(enc.logs.as_deref().expect("logs"), &expected);
    assert_eq!(enc.logs_count, 2);
}

fn mixed_batch() -> Vec<Record> {
    vec![
        Record::Span(query_span("acme", 2, 1)),
        Record::Span(failed_span()),
        Record::Log(log_record(TRACE, 2)),
        Record::Metric(point(
            "sqlx_driver_errors_total",
            MetricKind::Counter,
            2_000,
            3.0,
            &[("class", "L")],
        )),
        Record::Metric(point("sqlx_pool_idle", MetricKind::Gauge, 2_000, 4.0, &[])),
        Record::Metric(hist_point(2_000, vec![1, 2, 0], 12.5)),
        reward(),
    ]
}

/// The JSON body deserialises (OTLP JSON mapping) to exactly what the
/// protobuf body decodes to.
#[test]
fn json_matches_protobuf() {
    let batch = mixed_batch();
    let p = encoder().encode_proto(&batch);
    let j = encoder().encode_json(&batch);
    let counts = |e: &Encoded| (e.spans, e.points, e.logs_count, e.rewards_skipped);
    assert_eq!(counts(&p), counts(&j));
    let t: ExportTraceServiceRequest =
        serde_json::from_slice(j.traces.as_deref().expect("t")).expect("traces json");
    assert_eq!(
        t,
        ExportTraceServiceRequest::decode(p.traces.as_deref().expect("t")).expect("decode")
    );
    let m: ExportMetricsServiceRequest =
        serde_json::from_slice(j.metrics.as_deref().expect("m")).expect("metrics json");
    assert_eq!(
        m,
        ExportMetricsServiceRequest::decode(p.metrics.as_deref().expect("m")).expect("decode")
    );
    let l: ExportLogsServiceRequest =
        serde_json::from_slice(j.logs.as_deref().expect("l")).expect("logs json");
    assert_eq!(
        l,
        ExportLogsServiceRequest::decode(p.logs.as_deref().expect("l")).expect("decode")
    );
}

/// The OTLP JSON spellings, checked on the raw text.
#[test]
fn json_follows_the_otlp_mapping() {
    let j = encoder().encode_json(&mixed_batch());
    let t: serde_json::Value =
        serde_json::from_slice(j.traces.as_deref().expect("t")).expect("json");
    let span = &t["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span["spanId"], "0000000000000002");
    assert_eq!(span["parentSpanId"], "0000000000000001");
    assert_eq!(span["kind"], 3);
    assert_eq!(span["startTimeUnixNano"], "1700000000000000000");
    assert_eq!(span["status"], serde_json::json!({"code": 1}));
    assert_eq!(
        span["attributes"][5],
        serde_json::json!({"key": "server.port", "value": {"intValue": "5432"}})
    );
    assert_eq!(
        span["attributes"][7],
        serde_json::json!({"key": "sampled", "value": {"boolValue": true}})
    );
    assert_eq!(
        span["attributes"][8],
        serde_json::json!({"key": "ratio", "value": {"doubleValue": 0.25}})
    );
    let failed = &t["resourceSpans"][0]["scopeSpans"][1]["spans"][0];
    assert_eq!(
        failed["status"],
        serde_json::json!({"message": "deadline exceeded", "code": 2})
    );
    assert!(failed.get("parentSpanId").is_none());
    assert_eq!(failed["events"][0]["timeUnixNano"], "9000");
    let m: serde_json::Value =
        serde_json::from_slice(j.metrics.as_deref().expect("m")).expect("json");
    let metrics = &m["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
    assert_eq!(metrics[0]["sum"]["aggregationTemporality"], 2);
    assert_eq!(metrics[0]["sum"]["isMonotonic"], true);
    assert_eq!(metrics[0]["sum"]["dataPoints"][0]["asDouble"], 3.0);
    assert!(metrics[1]["gauge"]["dataPoints"][0]
        .get("attributes")
        .is_none());
    let h = &metrics[2]["histogram"]["dataPoints"][0];
    // Numbers, not decimal strings: see write_histogram_point (rotel drops string counts).
    assert_eq!(h["count"], 3);
    assert_eq!(h["bucketCounts"], serde_json::json!([1, 2, 0]));
    assert_eq!(h["explicitBounds"], serde_json::json!([1.0, 10.0]));
    let l: serde_json::Value = serde_json::from_slice(j.logs.as_deref().expect("l")).expect("json");
    let rec = &l["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(rec["severityNumber"], 13);
    assert_eq!(
        rec["body"],
        serde_json::json!({"stringValue": "cross-region egress blocked by residency=eu"})
    );
    assert_eq!(rec["eventName"], "policy.deny");
}

#[test]
fn json_non_finite_doubles_use_proto3_spellings() {
    let mut sp = query_span("acme", 2, 0);
    sp.attributes = vec![
        attr("a", AttrValue::F64(f64::NAN)),
        attr("b", AttrValue::F64(f64::INFINITY)),
        attr("c", AttrValue::F64(f64::NEG_INFINITY)),
        attr("d\"\n", s("q\"\u{1}é")),
    ];
    let text = traces_json(&cfg(), &[Record::Span(sp)]).expect("json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let attrs = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"];
    assert_eq!(attrs[0]["value"]["doubleValue"], "NaN");
    assert_eq!(attrs[1]["value"]["doubleValue"], "Infinity");
    assert_eq!(attrs[2]["value"]["doubleValue"], "-Infinity");
    assert_eq!(
        attrs[3],
        serde_json::json!({"key": "d\"\n", "value": {"stringValue": "q\"\u{1}é"}})
    );
}

#[test]
fn stateless_json_functions_match_the_encoder() {
    let batch = mixed_batch();
    let j = encoder().encode_json(&batch);
    assert_eq!(
        traces_json(&cfg(), &batch).map(String::into_bytes),
        j.traces
    );
    assert_eq!(logs_json(&cfg(), &batch).map(String::into_bytes), j.logs);
    assert_eq!(traces_json(&cfg(), &[reward()]), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn attr_value() -> impl Strategy<Value = AttrValue> {
        prop_oneof![
            ".{0,40}".prop_map(AttrValue::Str),
            any::<i64>().prop_map(AttrValue::I64),
            (-1e12f64..1e12).prop_map(AttrValue::F64),
            any::<bool>().prop_map(AttrValue::Bool),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("db.query.summary".to_string()),
            Just("db.operation.name".to_string()),
            Just("db.collection.name".to_string()),
            Just("span.kind".to_string()),
            Just("error.type".to_string()),
            Just("exception.message".to_string()),
            Just("db.sqlx.air_id".to_string()),
            "[a-z.]{1,12}",
        ]
    }

    fn envelope() -> impl Strategy<Value = Envelope> {
        (
            any::<u64>(),
            prop_oneof![Just(""), Just("acme"), Just("globex")],
            prop_oneof![Just(""), Just("eu-west-2")],
            prop_oneof![Just(""), Just("sqlite"), Just("generic")],
            prop_oneof![Just(0u128), any::<u128>()],
            prop_oneof![Just(0u64), any::<u64>()],
            prop_oneof![Just(0u64), any::<u64>()],
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(
                |(ts, tenant, region, dialect, trace_id, span_id, parent, air, plan)| Envelope {
                    ts_ns: ts,
                    tenant: tenant.into(),
                    workspace: "w".into(),
                    region: region.into(),
                    dialect: dialect.into(),
                    trace_id,
                    span_id,
                    parent_span_id: parent,
                    air_id: air,
                    plan_hash: plan,
                },
            )
    }

    fn attrs() -> impl Strategy<Value = Vec<(String, AttrValue)>> {
        proptest::collection::vec((key(), attr_value()), 0..8)
    }

    fn record() -> impl Strategy<Value = Record> {
        let span = (
            envelope(),
            prop_oneof![
                Just("driver.query"),
                Just("kernel.exec"),
                Just("driver.prepare")
            ],
            prop_oneof![Just(""), Just("ats-sqlite3"), Just("ats-mcp")],
            any::<u64>(),
            prop_oneof![Just(Status::Unset), Just(Status::Ok), Just(Status::Error)],
            attrs(),
        )
            .prop_map(|(envelope, name, component, end_ns, status, attributes)| {
                Record::Span(SpanRecord {
                    envelope,
                    name: name.into(),
                    component: component.into(),
                    end_ns,
                    status,
                    attributes,
                })
            });
        let log = (envelope(), "[a-z.]{0,12}", 0u8..30, ".{0,30}", attrs()).prop_map(
            |(envelope, event, sev, body, attributes)| {
                Record::Log(LogRecord {
                    envelope,
                    event,
                    component: "ats-policy".into(),
                    severity: Severity(sev),
                    body,
                    attributes,
                })
            },
        );
        let metric = (
            envelope(),
            prop_oneof![Just("a_total"), Just("b_ms"), Just("c")],
            prop_oneof![
                Just(MetricKind::Counter),
                Just(MetricKind::Gauge),
                Just(MetricKind::Histogram)
            ],
            0u64..1_000,
            proptest::collection::vec(0u64..100, 0..5),
            (0.0f64..1e6),
            proptest::collection::vec(("[a-z]{1,5}", "[a-z]{0,5}"), 0..3),
        )
            .prop_map(|(envelope, name, kind, start_ns, counts, value, labels)| {
                let histogram =
                    (kind == MetricKind::Histogram && !counts.is_empty()).then(|| HistogramData {
                        count: counts.iter().sum(),
                        sum: value,
                        min: 0.0,
                        max: value,
                        bounds: (1..counts.len()).map(|b| b as f64).collect(),
                        counts,
                    });
                Record::Metric(MetricPoint {
                    envelope,
                    name: name.into(),
                    unit: "1".into(),
                    kind,
                    start_ns,
                    labels,
                    value,
                    histogram,
                })
            });
        prop_oneof![4 => span, 2 => log, 2 => metric, 1 => Just(reward())]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever the batch: every body decodes, re-encodes to the same
        /// bytes, holds exactly the counted items, and the JSON body says the
        /// same thing; every record is either exported or counted.
        #[test]
        fn arbitrary_batches_decode(batch in proptest::collection::vec(record(), 0..40), delta in any::<bool>()) {
            let t = if delta { Temporality::Delta } else { Temporality::Cumulative };
            let p = OtlpEncoder::new(cfg(), t).encode_proto(&batch);
            let j = OtlpEncoder::new(cfg(), t).encode_json(&batch);
            let counts = |e: &Encoded| (e.spans, e.points, e.logs_count, e.invalid_spans, e.malformed_points, e.stale_points, e.rewards_skipped);
            prop_assert_eq!(counts(&p), counts(&j));
            prop_assert_eq!(
                p.spans + p.points + p.logs_count + p.invalid_spans + p.malformed_points + p.stale_points + p.rewards_skipped,
                batch.len()
            );

            let spans = p.traces.as_deref().map(|b| ExportTraceServiceRequest::decode(b).expect("traces decode"));
            let n: usize = spans.iter().flat_map(|r| &r.resource_spans).flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
            prop_assert_eq!(n, p.spans);
            for s in spans.iter().flat_map(|r| &r.resource_spans).flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                prop_assert_eq!(s.trace_id.len(), 16);
                prop_assert_eq!(s.span_id.len(), 8);
                prop_assert!(s.parent_span_id.is_empty() || s.parent_span_id.len() == 8);
                prop_assert!(s.attributes.iter().all(|a| a.key != "span.kind" || !matches!(
                    a.value.as_ref().and_then(|v| v.value.as_ref()),
                    Some(Value::StringValue(k)) if ["client", "server", "producer", "consumer", "internal"].contains(&k.to_ascii_lowercase().as_str())
                )));
            }
            if let (Some(req), Some(bytes), Some(json)) = (&spans, &p.traces, &j.traces) {
                prop_assert_eq!(&req.encode_to_vec(), bytes);
                let from_json: ExportTraceServiceRequest = serde_json::from_slice(json).expect("traces json");
                prop_assert_eq!(&from_json, req);
            }

            let metrics = p.metrics.as_deref().map(|b| ExportMetricsServiceRequest::decode(b).expect("metrics decode"));
            let n: usize = metrics.iter().flat_map(|r| &r.resource_metrics).flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| match m.data.as_ref().expect("data") {
                    Data::Gauge(g) => g.data_points.len(),
                    Data::Sum(s) => s.data_points.len(),
                    Data::Histogram(h) => h.data_points.len(),
                    other => panic!("unexpected {other:?}"),
                })
                .sum();
            prop_assert_eq!(n, p.points);
            if let (Some(req), Some(bytes), Some(json)) = (&metrics, &p.metrics, &j.metrics) {
                prop_assert_eq!(&req.encode_to_vec(), bytes);
                let from_json: ExportMetricsServiceRequest = serde_json::from_slice(json).expect("metrics json");
                prop_assert_eq!(&from_json, req);
            }

            let logs = p.logs.as_deref().map(|b| ExportLogsServiceRequest::decode(b).expect("logs decode"));
            let n: usize = logs.iter().flat_map(|r| &r.resource_logs).flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum();
            prop_assert_eq!(n, p.logs_count);
            if let (Some(req), Some(bytes), Some(json)) = (&logs, &p.logs, &j.logs) {
                prop_assert_eq!(&req.encode_to_vec(), bytes);
                let from_json: ExportLogsServiceRequest = serde_json::from_slice(json).expect("logs json");
                prop_assert_eq!(&from_json, req);
            }
        }
    }
}
