//! OTLP encoding throughput: a flusher batch of 8192 `driver.query` spans
//! with 8 attributes each, as the sqlite3 instrumentation records them, into
//! one `ExportTraceServiceRequest` (protobuf, and OTLP/JSON for comparison).
//! Budget (ARCHITECTURE): >= 500,000 spans/s for protobuf.

use ats_core::otlp::{OtlpEncoder, ResourceConfig, Temporality};
use ats_core::record::{AttrValue, Envelope, Record, SpanRecord, Status};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const BATCH: usize = 8192;

fn span(i: usize) -> Record {
    let s = |v: &str| AttrValue::Str(v.to_string());
    let tables = ["users", "orders", "items", "payments"];
    let table = tables[i % tables.len()];
    Record::Span(SpanRecord {
        envelope: Envelope {
            ts_ns: 1_760_623_577_441_000_000 + i as u64 * 1_000,
            tenant: "acme".into(),
            workspace: "prod-eu".into(),
            region: "eu-west-2".into(),
            dialect: "sqlite".into(),
            trace_id: 0x4a1b_2c3d_4e5f_6071_8293_a4b5_c6d7_e8f9 ^ (i as u128 / 8),
            span_id: 0x9f3a_0000_1111_2222 ^ i as u64,
            parent_span_id: 0x1234_5678_9abc_def0,
            air_id: Some(0x9f3a_9f3a_9f3a_9f3a ^ (i as u64 % 32)),
            plan_hash: None,
        },
        name: "driver.query".into(),
        component: "ats-sqlite3".into(),
        end_ns: 1_760_623_577_441_012_300 + i as u64 * 1_000,
        status: if i.is_multiple_of(50) {
            Status::Error
        } else {
            Status::Ok
        },
        attributes: vec![
            ("db.system.name".into(), s("sqlite")),
            (
                "db.query.text".into(),
                s(&format!(
                    "SELECT id, name, email FROM {table} WHERE id = ? AND status = ?"
                )),
            ),
            ("db.operation.name".into(), s("SELECT")),
            ("db.collection.name".into(), s(table)),
            ("db.query.summary".into(), s(&format!("SELECT {table}"))),
            ("db.namespace".into(), s("main")),
            (
                "db.response.returned_rows".into(),
                AttrValue::I64(i as i64 % 100),
            ),
            (
                "db.sqlx.air_id".into(),
                s(&format!(
                    "air:Q-{:016x}",
                    0x9f3a_9f3a_9f3a_9f3a_u64 ^ (i as u64 % 32)
                )),
            ),
        ],
    })
}

fn bench(c: &mut Criterion) {
    let batch: Vec<Record> = (0..BATCH).map(span).collect();
    let resource = ResourceConfig {
        service_name: "shop".into(),
        attributes: vec![("deployment.environment".into(), "prod".into())],
    };
    let mut enc = OtlpEncoder::new(resource, Temporality::Cumulative);
    let proto_len = enc.encode_proto(&batch).traces.map_or(0, |b| b.len());
    let json_len = enc.encode_json(&batch).traces.map_or(0, |b| b.len());
    let mut g = c.benchmark_group("otlp");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("encode_proto(8192 driver.query spans, 8 attrs)", |b| {
        b.iter(|| enc.encode_proto(black_box(&batch)))
    });
    g.bench_function("encode_json(8192 driver.query spans, 8 attrs)", |b| {
        b.iter(|| enc.encode_json(black_box(&batch)))
    });
    g.finish();
    eprintln!(
        "request size for {BATCH} spans: protobuf {proto_len} bytes ({} per span), JSON {json_len} bytes",
        proto_len / BATCH
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
