//! Ring and end-to-end pipeline throughput.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ats_core::flusher::{FlushConfig, Flusher, Sink, SinkError};
use ats_core::record::codec;
use ats_core::record::{AttrRef, EnvelopeRef, Record, SpanRef, Status};
use ats_core::ring::Ring;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const RECORD: [u8; 200] = [0x5a; 200];

/// Records per timed chunk: 100k slots of 208 bytes fit a 64 MiB ring, so
/// every timed push succeeds; the ring is drained, untimed, between chunks.
/// This measures the successful push path, not the (cheaper) drop path.
const CHUNK: u64 = 100_000;

fn drain_all(ring: &Ring) {
    while ring.drain(usize::MAX, |b| {
        black_box(b);
    }) > 0
    {}
}

fn timed_pushes(ring: &Arc<Ring>, iters: u64, producers: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        left -= n;
        let per = n.div_ceil(producers);
        let t = Instant::now();
        if producers == 1 {
            for _ in 0..n {
                let _ = black_box(ring.push(black_box(&RECORD)));
            }
        } else {
            std::thread::scope(|s| {
                for _ in 0..producers {
                    s.spawn(|| {
                        for _ in 0..per {
                            let _ = black_box(ring.push(black_box(&RECORD)));
                        }
                    });
                }
            });
        }
        total += t.elapsed();
        drain_all(ring);
    }
    total
}

fn ring_push(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(1));
    let ring = Arc::new(Ring::new(64 << 20));
    g.bench_function("push 200B, 1 producer", |b| {
        b.iter_custom(|iters| timed_pushes(&ring, iters, 1))
    });
    g.bench_function("push 200B, 2 producers (wall time per push)", |b| {
        b.iter_custom(|iters| timed_pushes(&ring, iters, 2))
    });
    g.finish();
    let s = ring.stats();
    eprintln!(
        "ring stats: pushed {} dropped_full {} high_water {} B",
        s.pushed, s.dropped_full, s.high_water_bytes
    );
    assert_eq!(s.dropped_full, 0);
}

struct NoopSink(u64);
impl Sink for NoopSink {
    fn name(&self) -> &str {
        "noop"
    }
    fn write_batch(&mut self, batch: &[Record]) -> Result<(), SinkError> {
        self.0 += batch.len() as u64;
        black_box(batch);
        Ok(())
    }
}

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

fn end_to_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    let ring = Arc::new(Ring::new(64 << 20));
    let flusher = Flusher::start(
        ring.clone(),
        vec![Box::new(NoopSink(0))],
        vec![],
        FlushConfig {
            interval: Duration::from_millis(20),
            batch_max_records: 8192,
            wake_fill_ratio: 0.25,
        },
    );
    g.bench_function("encode span in place + push + flush to no-op sink", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for i in 0..iters {
                let s = SpanRef {
                    envelope: EnvelopeRef {
                        ts_ns: i,
                        tenant: "acme",
                        workspace: "prod-eu",
                        dialect: "sqlite",
                        trace_id: u128::from(i) + 1,
                        span_id: i + 1,
                        air_id: Some(i),
                        ..EnvelopeRef::default()
                    },
                    name: "driver.query",
                    component: "ats-sqlite3",
                    end_ns: i + 100,
                    status: Status::Ok,
                    attributes: &ATTRS,
                };
                let n = codec::encoded_len_span(&s);
                while ring
                    .push_with(n, |buf| {
                        let _ = codec::encode_span(&s, buf);
                    })
                    .is_err()
                {
                    std::thread::yield_now(); // measure throughput, not drops
                }
            }
            assert!(flusher.flush(Duration::from_secs(60)));
            t.elapsed()
        })
    });
    g.finish();
    assert!(flusher.shutdown(Duration::from_secs(10)));
    let st = flusher.stats();
    eprintln!(
        "flusher: records {} batches {} decode_errors {}",
        st.sinks[0].records_written, st.batches, st.decode_errors
    );
}

criterion_group!(benches, ring_push, end_to_end);
criterion_main!(benches);
