//! SQL normaliser benchmarks: first-sight normalisation of a typical
//! ~200-byte SELECT, a cached lookup through `StatementCache`, and a plan
//! fingerprint. Run: `cargo bench -p ats-core --bench sql -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use ats_core::sql::{normalize, plan_fingerprint, Dialect, StatementCache};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SELECT_200: &str = "SELECT u.id, u.email, o.total, o.created_at FROM users u \
    JOIN orders o ON o.user_id = u.id WHERE u.status = 'active' AND o.total > 100.50 \
    AND o.region IN ('eu', 'us', 'apac') ORDER BY o.created_at DESC LIMIT 50";

const PLAN: &str = r#"[{"Plan": {"Node Type": "Nested Loop", "Parallel Aware": false, "Join Type": "Inner",
 "Startup Cost": 0.29, "Total Cost": 34.1, "Plan Rows": 6, "Plan Width": 68, "Actual Total Time": 0.5,
 "Plans": [{"Node Type": "Index Scan", "Parent Relationship": "Outer", "Index Name": "users_pkey",
 "Relation Name": "users", "Alias": "u", "Startup Cost": 0.15, "Total Cost": 8.17, "Plan Rows": 1,
 "Index Cond": "(id = 42)"}, {"Node Type": "Seq Scan", "Parent Relationship": "Inner",
 "Relation Name": "orders", "Alias": "o", "Total Cost": 25.88, "Plan Rows": 6,
 "Filter": "((status)::text = 'paid'::text AND user_id = 42)"}]}, "Planning Time": 0.12,
 "Execution Time": 0.7}]"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sql");
    g.throughput(Throughput::Bytes(SELECT_200.len() as u64));
    g.bench_function("normalize_select_200b_first_sight", |b| {
        b.iter(|| normalize(black_box(SELECT_200), Dialect::Postgresql))
    });
    let cache = StatementCache::new(4096, 64 << 20);
    cache.get_or_normalize(SELECT_200, Dialect::Postgresql);
    g.bench_function("cache_hit_select_200b", |b| {
        b.iter(|| cache.get_or_normalize(black_box(SELECT_200), Dialect::Postgresql))
    });
    g.throughput(Throughput::Bytes(PLAN.len() as u64));
    g.bench_function("plan_fingerprint_pg_3_nodes", |b| {
        b.iter(|| plan_fingerprint(black_box(PLAN)))
    });
    g.finish();

    // Large input: the 10 MB bound from the spec, measured once per sample.
    let big = format!(
        "SELECT * FROM t WHERE a IN ({})",
        vec!["12345"; 1_700_000].join(", ")
    );
    let mut g = c.benchmark_group("sql_large");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("normalize_10mb_in_list", |b| {
        b.iter(|| normalize(black_box(&big), Dialect::Generic))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
