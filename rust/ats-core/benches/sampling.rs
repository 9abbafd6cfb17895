//! Hot-path costs of sampling and metric aggregation (ns/op).
//!
//! cargo bench -p ats-core --bench sampling -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use ats_core::metrics::MetricsRegistry;
use ats_core::sampling::{
    FamilyRule, FamilyRules, PolicyConfig, RateLimitConfig, Sampler, SamplingInput, SamplingPolicy,
    TailConfig, TailSampler, TailSpan, TenantRateLimiter, TraceIdRatio,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

fn ids() -> Vec<u128> {
    (0..1024u64)
        .map(|i| u128::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) << 1 | 1)
        .collect()
}

fn input(trace_id: u128, event_name: &str, is_error: bool) -> SamplingInput<'_> {
    SamplingInput {
        trace_id,
        parent: None,
        event_name,
        is_error,
        tenant: "acme",
        now_ns: 0,
    }
}

fn samplers(c: &mut Criterion) {
    let ids = ids();
    let ratio = TraceIdRatio::new(0.1).unwrap();
    let mut i = 0usize;
    c.bench_function("ratio_decision", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(ratio.should_sample(&input(black_box(ids[i]), "driver.query", false)))
        })
    });

    let rules = FamilyRules::new(
        vec![
            FamilyRule::new("driver.", 0.1, 1.0),
            FamilyRule::new("driver.query", 0.5, 1.0),
            FamilyRule::new("mcp.", 0.2, 1.0),
            FamilyRule::new("mcp.tool.call", 0.05, 1.0),
            FamilyRule::new("agent.", 1.0, 1.0),
            FamilyRule::new("policy.", 0.01, 1.0),
            FamilyRule::new("ai.reward", 1.0, 1.0),
            FamilyRule::new("kernel.exec", 0.3, 1.0),
        ],
        1.0,
    )
    .unwrap();
    let names = [
        "driver.query",
        "driver.handshake",
        "mcp.tool.call",
        "agent.run",
        "unmatched.event",
    ];
    c.bench_function("family_rules_decision", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            let name = names[i % names.len()];
            black_box(rules.should_sample(&input(black_box(ids[i]), black_box(name), i & 7 == 0)))
        })
    });

    let policy = SamplingPolicy::new(PolicyConfig {
        base_ratio: 0.5,
        rules: vec![FamilyRule::new("driver.", 0.1, 1.0)],
        rate_limit: Some(RateLimitConfig {
            per_second: Some(1e9),
            burst: 1_000_000,
            daily_cap: None,
            max_tenants: 64,
        }),
        errors_override_parent: true,
    })
    .unwrap();
    let mut now = 0u64;
    c.bench_function("policy_decision", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            now += 1_000;
            let ctx = SamplingInput {
                now_ns: now,
                ..input(ids[i], "driver.query", i & 3 == 0)
            };
            black_box(policy.decide(black_box(&ctx)))
        })
    });

    let limiter = TenantRateLimiter::new(RateLimitConfig {
        per_second: Some(1e6),
        burst: 1000,
        daily_cap: Some(u64::MAX / 2),
        max_tenants: 1024,
    })
    .unwrap();
    let tenants: Vec<String> = (0..100).map(|t| format!("tenant-{t}")).collect();
    c.bench_function("rate_limiter_acquire", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            now += 1_000;
            black_box(limiter.try_acquire(black_box(&tenants[i % 100]), now))
        })
    });

    c.bench_function("tail_offer_10_span_trace", |b| {
        let cfg = TailConfig {
            base_ratio: 0.1,
            ..TailConfig::default()
        };
        let mut tail = TailSampler::new(cfg).unwrap();
        let mut trace = 1u128;
        b.iter(|| {
            trace += 1;
            let mut kept = 0;
            for s in 0..10u64 {
                let parent = if s == 9 { 0 } else { 1 };
                let span = TailSpan {
                    trace_id: trace,
                    span_id: s + 1,
                    parent_span_id: parent,
                    is_error: false,
                    duration_ns: 1_000,
                    size_bytes: 200,
                    item: s,
                };
                kept += tail.offer(span, 0).keep.len();
            }
            black_box(kept)
        })
    });
}

fn metrics(c: &mut Criterion) {
    let r = MetricsRegistry::new(0);
    let counter = r.counter("sqlx_driver_errors_total", "1").unwrap();
    let labels = [("dialect", "sqlite"), ("class", "io")];
    counter.add(&labels, 1);
    c.bench_function("counter_add_labels", |b| {
        b.iter(|| counter.add(black_box(&labels), 1))
    });
    let bound = counter.bind(&labels);
    c.bench_function("counter_add_bound", |b| {
        b.iter(|| counter.add_to(black_box(&bound), 1))
    });

    let hist = r.histogram("sqlx_driver_latency_ms", "ms").unwrap();
    let hl = [("dialect", "sqlite"), ("op", "query")];
    let hbound = hist.bind(&hl);
    let mut v = 0.0f64;
    c.bench_function("histogram_record_labels", |b| {
        b.iter(|| {
            v = if v > 5000.0 { 0.013 } else { v * 1.37 + 0.01 };
            hist.record(black_box(&hl), v)
        })
    });
    c.bench_function("histogram_record_bound", |b| {
        b.iter(|| {
            v = if v > 5000.0 { 0.013 } else { v * 1.37 + 0.01 };
            hist.record_to(black_box(&hbound), v)
        })
    });

    // Snapshot of 1,000 series: counters, and separately histograms.
    let r1 = MetricsRegistry::new(0);
    let many = r1.counter("ats_events_total", "1").unwrap();
    let keys: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
    for k in &keys {
        many.add(&[("k", k), ("tenant", "acme")], 3);
    }
    c.bench_function("snapshot_1000_counter_series", |b| {
        b.iter(|| black_box(r1.snapshot(1).len()))
    });
    c.bench_function("snapshot_delta_1000_counter_series", |b| {
        b.iter_batched(
            || {
                for k in keys.iter().step_by(10) {
                    many.add(&[("k", k), ("tenant", "acme")], 1);
                }
            },
            |()| black_box(r1.snapshot_delta(2).len()),
            BatchSize::SmallInput,
        )
    });
    let r2 = MetricsRegistry::new(0);
    let hs = r2.histogram("lat_ms", "ms").unwrap();
    for (n, k) in keys.iter().enumerate() {
        hs.record(&[("k", k)], n as f64);
    }
    c.bench_function("snapshot_1000_histogram_series", |b| {
        b.iter(|| black_box(r2.snapshot(1).len()))
    });
}

criterion_group!(benches, samplers, metrics);
criterion_main!(benches);
