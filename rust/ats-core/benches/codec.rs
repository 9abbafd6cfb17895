//! Codec throughput: a span with a full envelope and 6 attributes, the shape
//! of one instrumented `execute`.

use ats_core::record::codec;
use ats_core::record::{AttrRef, EnvelopeRef, SpanRef, Status};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const ATTRS: [(&str, AttrRef<'static>); 6] = [
    ("db.system", AttrRef::Str("sqlite")),
    (
        "db.statement",
        AttrRef::Str("SELECT name FROM users WHERE age > ?"),
    ),
    ("db.operation", AttrRef::Str("SELECT")),
    ("net.peer.port", AttrRef::I64(5432)),
    ("db.rows", AttrRef::I64(42)),
    ("cached", AttrRef::Bool(true)),
];

fn span() -> SpanRef<'static> {
    SpanRef {
        envelope: EnvelopeRef {
            ts_ns: 1_760_623_577_441_000_000,
            tenant: "acme",
            workspace: "prod-eu",
            region: "eu-west-2",
            dialect: "sqlite",
            trace_id: 0x4a1b_2c3d_4e5f_6071_8293_a4b5_c6d7_e8f9,
            span_id: 0x9f3a_0000_1111_2222,
            parent_span_id: 0x1234_5678_9abc_def0,
            air_id: Some(0x9f3a_9f3a_9f3a_9f3a),
            plan_hash: None,
        },
        name: "driver.query",
        component: "ats-sqlite3",
        end_ns: 1_760_623_577_441_012_300,
        status: Status::Ok,
        attributes: &ATTRS,
    }
}

fn bench(c: &mut Criterion) {
    let s = span();
    let len = codec::encoded_len_span(&s);
    let mut buf = vec![0u8; len];
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encoded_len_span", |b| {
        b.iter(|| codec::encoded_len_span(black_box(&s)))
    });
    g.bench_function("encode_span(len+encode, 6 attrs)", |b| {
        b.iter(|| {
            let s = black_box(&s);
            let n = codec::encoded_len_span(s);
            codec::encode_span(s, &mut buf[..n]).unwrap()
        })
    });
    codec::encode_span(&s, &mut buf).unwrap();
    g.bench_function("decode_span(6 attrs)", |b| {
        b.iter(|| codec::decode(black_box(&buf)).unwrap())
    });
    let mut slot = codec::decode(&buf).unwrap();
    g.bench_function("decode_into reused record (6 attrs)", |b| {
        b.iter(|| codec::decode_into(black_box(&buf), &mut slot).unwrap())
    });
    g.finish();
    eprintln!("encoded span size: {len} bytes");
}

criterion_group!(benches, bench);
criterion_main!(benches);
