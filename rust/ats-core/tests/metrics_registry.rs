//! Registry: exact concurrent sums, cardinality overflow, snapshot and delta
//! semantics, registration errors.

use std::sync::Arc;

use ats_core::metrics::{
    HistogramOptions, MetricOptions, MetricStats, MetricsError, MetricsRegistry, RegistryConfig,
    DEFAULT_BOUNDS_MS,
};
use ats_core::record::model::{Envelope, HistogramData, MetricKind, MetricPoint};

fn labels(p: &MetricPoint) -> Vec<(&str, &str)> {
    p.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn concurrent_adds_sum_exactly() {
    let r = MetricsRegistry::new(0);
    let c = r.counter("sqlx_driver_errors_total", "1").unwrap();
    let bound = c.bind(&[("dialect", "sqlite"), ("class", "io")]);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (c, bound) = (c.clone(), bound.clone());
            std::thread::spawn(move || {
                for i in 0..100_000u64 {
                    if (i + t) % 2 == 0 {
                        c.add(&[("class", "io"), ("dialect", "sqlite")], 1);
                    } else {
                        c.add_to(&bound, 1);
                    }
                    c.add(&[("dialect", "pg")], 2);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        c.value(&[("dialect", "sqlite"), ("class", "io")]),
        Some(800_000)
    );
    assert_eq!(c.value(&[("dialect", "pg")]), Some(1_600_000));
    let points = r.snapshot(10);
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].value, 800_000.0);
    assert_eq!(
        labels(&points[0]),
        vec![("class", "io"), ("dialect", "sqlite")]
    );
    assert_eq!(points[1].value, 1_600_000.0);
}

#[test]
fn concurrent_histogram_records_and_deltas_lose_nothing() {
    let r = MetricsRegistry::new(0);
    let h = r.histogram("sqlx_exec_latency_ms", "ms").unwrap();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..50_000u64 {
                    h.record(&[("class", "L")], (i % 100) as f64);
                }
            })
        })
        .collect();
    // Take deltas while writers run: together they must hold every value.
    let mut delta_count = 0u64;
    let mut delta_sum = 0.0;
    let mut t = 1;
    while writers.iter().any(|w| !w.is_finished()) {
        for p in r.snapshot_delta(t) {
            let d = p.histogram.unwrap();
            delta_count += d.count;
            delta_sum += d.sum;
        }
        t += 1;
    }
    for w in writers {
        w.join().unwrap();
    }
    for p in r.snapshot_delta(t) {
        let d = p.histogram.unwrap();
        delta_count += d.count;
        delta_sum += d.sum;
    }
    assert_eq!(delta_count, 200_000);
    assert_eq!(delta_sum, 4.0 * 50_000.0 * 49.5);
    let cum = r.snapshot(t + 1).pop().unwrap().histogram.unwrap();
    assert_eq!(
        (cum.count, cum.sum, cum.min, cum.max),
        (200_000, delta_sum, 0.0, 99.0)
    );
}

#[test]
fn cardinality_overflow_is_exact() {
    let r = MetricsRegistry::with_config(RegistryConfig {
        start_ns: 0,
        cardinality_limit: 3,
    })
    .unwrap();
    let c = r.counter("ats_events_total", "1").unwrap();
    for i in 0..10u64 {
        let v = i.to_string();
        c.add(&[("k", v.as_str())], 1);
        c.add(&[("k", v.as_str())], 1);
    }
    // A set bound past the cap records into the overflow series too.
    let late = c.bind(&[("k", "late")]);
    assert!(late.is_overflow());
    c.add_to(&late, 5);
    let points = r.snapshot(1);
    let got: Vec<(Vec<(&str, &str)>, f64)> = points.iter().map(|p| (labels(p), p.value)).collect();
    assert_eq!(
        got,
        vec![
            (vec![("k", "0")], 2.0),
            (vec![("k", "1")], 2.0),
            (vec![("k", "2")], 2.0),
            (vec![("otel.metric.overflow", "true")], 19.0),
        ]
    );
    assert_eq!(
        r.stats(),
        vec![MetricStats {
            name: "ats_events_total".into(),
            kind: MetricKind::Counter,
            series: 3,
            overflowed: 15,
            rejected: 0
        }]
    );
    // Existing series still resolve after the cap is reached.
    c.add(&[("k", "1")], 1);
    assert_eq!(c.value(&[("k", "1")]), Some(3));
}

#[test]
fn per_metric_limit_and_oversized_label_sets() {
    let r = MetricsRegistry::new(0);
    let o = MetricOptions {
        cardinality_limit: Some(1),
        ..Default::default()
    };
    let g = r
        .gauge_with("sqlx_pool_active", "{connection}", &o)
        .unwrap();
    g.set(&[("dialect", "pg")], 3.0);
    g.set(&[("dialect", "mysql")], 4.0);
    g.set(&[("dialect", "sqlite")], 5.0);
    let points = r.snapshot(1);
    assert_eq!(points.len(), 2);
    assert_eq!(
        (labels(&points[1]), points[1].value),
        (vec![("otel.metric.overflow", "true")], 5.0)
    );

    let c = r.counter("wide_total", "1").unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let wide: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    c.add(&wide, 1);
    assert_eq!(r.stats()[1].overflowed, 1);
    assert_eq!(r.stats()[1].series, 0);
}

#[test]
fn label_order_duplicates_and_clipping() {
    let r = MetricsRegistry::new(0);
    let c = r.counter("c_total", "1").unwrap();
    c.add(&[("b", "2"), ("a", "1")], 1);
    c.add(&[("a", "1"), ("b", "2")], 1);
    c.add(&[("a", "x"), ("b", "2"), ("a", "1")], 1); // last value wins
    c.add(&[], 7);
    let long = "v".repeat(10 << 20);
    c.add(&[("a", long.as_str())], 1);
    c.add(&[("a", &long[..300])], 1); // same after clipping to 256 bytes
    let points = r.snapshot(1);
    assert_eq!(points.len(), 3);
    assert_eq!(
        (labels(&points[0]), points[0].value),
        (vec![("a", "1"), ("b", "2")], 3.0)
    );
    assert_eq!((points[1].labels.len(), points[1].value), (0, 7.0));
    assert_eq!(points[2].labels[0].1.len(), 256);
    assert_eq!(points[2].value, 2.0);
}

#[test]
fn cumulative_and_delta_snapshots_are_exact() {
    let r = MetricsRegistry::new(1_000);
    let c = r.counter("sqlx_cache_events_total", "1").unwrap();
    let g = r.gauge("sqlx_cache_size", "By").unwrap();
    let h = r.histogram("sqlx_policy_eval_ms", "ms").unwrap();

    c.add(&[("type", "hit")], 3);
    c.add(&[("type", "miss")], 1);
    g.set(&[("kind", "stmt")], 10.0);
    h.record(&[], 4.0);
    h.record(&[], 6.0);

    let d1 = r.snapshot_delta(2_000);
    type Row = (String, Vec<(String, String)>, f64, u64);
    let summary = |ps: &[MetricPoint]| -> Vec<Row> {
        ps.iter()
            .map(|p| (p.name.clone(), p.labels.clone(), p.value, p.start_ns))
            .collect()
    };
    let l = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    assert_eq!(
        summary(&d1),
        vec![
            (
                "sqlx_cache_events_total".into(),
                l("type", "hit"),
                3.0,
                1_000
            ),
            (
                "sqlx_cache_events_total".into(),
                l("type", "miss"),
                1.0,
                1_000
            ),
            ("sqlx_cache_size".into(), l("kind", "stmt"), 10.0, 1_000),
            ("sqlx_policy_eval_ms".into(), vec![], 10.0, 1_000),
        ]
    );
    assert!(d1.iter().all(|p| p.envelope
        == Envelope {
            ts_ns: 2_000,
            ..Envelope::default()
        }));

    // Second interval: only what changed.
    c.add(&[("type", "hit")], 2);
    h.record(&[], 100.0);
    let d2 = r.snapshot_delta(3_000);
    assert_eq!(
        summary(&d2),
        vec![
            (
                "sqlx_cache_events_total".into(),
                l("type", "hit"),
                2.0,
                2_000
            ),
            ("sqlx_policy_eval_ms".into(), vec![], 100.0, 2_000),
        ]
    );
    let hd = d2[1].histogram.clone().unwrap();
    assert_eq!((hd.count, hd.sum, hd.min, hd.max), (1, 100.0, 100.0, 100.0));
    // Nothing changed: an empty delta.
    assert!(r.snapshot_delta(4_000).is_empty());

    // Cumulative is unaffected by the deltas taken in between.
    let cum = r.snapshot(5_000);
    assert_eq!(
        summary(&cum),
        vec![
            (
                "sqlx_cache_events_total".into(),
                l("type", "hit"),
                5.0,
                1_000
            ),
            (
                "sqlx_cache_events_total".into(),
                l("type", "miss"),
                1.0,
                1_000
            ),
            ("sqlx_cache_size".into(), l("kind", "stmt"), 10.0, 1_000),
            ("sqlx_policy_eval_ms".into(), vec![], 110.0, 1_000),
        ]
    );
    let kinds: Vec<MetricKind> = cum.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        vec![
            MetricKind::Counter,
            MetricKind::Counter,
            MetricKind::Gauge,
            MetricKind::Histogram
        ]
    );
    assert_eq!(cum[0].unit, "1");
    assert_eq!(cum[3].unit, "ms");
    // 4 in (0, 5], 6 in (5, 10], 100 in (75, 100].
    let want_counts = vec![0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        cum[3].histogram,
        Some(HistogramData {
            count: 3,
            sum: 110.0,
            min: 4.0,
            max: 100.0,
            bounds: DEFAULT_BOUNDS_MS.to_vec(),
            counts: want_counts,
        })
    );
    assert_eq!(h.snapshot(&[]).unwrap().count, 3);
    // A cumulative snapshot resets nothing.
    assert_eq!(summary(&r.snapshot(6_000))[0].2, 5.0);
}

#[test]
fn gauges_report_last_value_and_reject_non_finite() {
    let r = MetricsRegistry::new(0);
    let g = r.gauge("sqlx_model_version", "1").unwrap();
    let bound = g.bind(&[("agent", "a")]);
    assert!(
        r.snapshot(1).is_empty(),
        "a bound but never set gauge is not reported"
    );
    g.set_to(&bound, 1.0);
    g.set_to(&bound, -2.5);
    g.set(&[("agent", "a")], f64::NAN);
    g.set(&[("agent", "a")], f64::INFINITY);
    assert_eq!(g.value(&[("agent", "a")]), Some(-2.5));
    assert_eq!(r.stats()[0].rejected, 2);
    let h = r.histogram("h_ms", "ms").unwrap();
    h.record(&[], -1.0);
    h.record(&[], f64::NAN);
    assert_eq!(r.stats()[1].rejected, 2);
    assert!(
        h.snapshot(&[]).is_none(),
        "rejected values create no series"
    );
}

#[test]
fn histogram_quantiles_via_handle() {
    let r = MetricsRegistry::new(0);
    let h = r.histogram("sqlx_driver_latency_ms", "ms").unwrap();
    let set = h.bind(&[("dialect", "sqlite"), ("op", "query")]);
    for i in 1..=1000 {
        h.record_to(&set, f64::from(i));
    }
    let s = h
        .snapshot(&[("op", "query"), ("dialect", "sqlite")])
        .unwrap();
    for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
        let got = s.quantile(q).unwrap();
        assert!((got - exact).abs() / exact < 0.01, "p{q}: {got}");
    }
}

#[test]
fn label_set_used_on_another_metric_still_records_there() {
    let r = MetricsRegistry::new(0);
    let a = r.counter("a_total", "1").unwrap();
    let b = r.counter("b_total", "1").unwrap();
    let set = a.bind(&[("x", "1")]);
    b.add_to(&set, 4);
    assert_eq!(b.value(&[("x", "1")]), Some(4));
    assert_eq!(a.value(&[("x", "1")]), Some(0));
    // Nor does a set from another registry write into its own registry.
    let r2 = MetricsRegistry::new(0);
    let a2 = r2.counter("a_total", "1").unwrap();
    a2.add_to(&set, 2);
    assert_eq!(a2.value(&[("x", "1")]), Some(2));
    assert_eq!(a.value(&[("x", "1")]), Some(0));
}

#[test]
fn registration_rules() {
    let r = MetricsRegistry::new(0);
    let c1 = r.counter("sqlx_driver_errors_total", "1").unwrap();
    let c2 = r.counter("sqlx_driver_errors_total", "1").unwrap();
    c1.add(&[], 1);
    c2.add(&[], 1);
    assert_eq!(
        c1.value(&[]),
        Some(2),
        "same name, kind and unit: same metric"
    );
    assert_eq!(
        r.gauge("sqlx_driver_errors_total", "1").err(),
        Some(MetricsError::Conflict {
            name: "sqlx_driver_errors_total".into(),
            existing: "Counter [1]".into(),
            requested: "Gauge [1]".into(),
        })
    );
    assert!(matches!(
        r.counter("sqlx_driver_errors_total", "ms"),
        Err(MetricsError::Conflict { .. })
    ));
    for bad in ["", "1abc", "a b", "é", &"a".repeat(256)] {
        assert!(
            matches!(r.counter(bad, "1"), Err(MetricsError::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert!(r.counter("http.server/duration-x_1", "").is_ok());
    assert!(matches!(
        r.counter("u", "µs"),
        Err(MetricsError::InvalidUnit { .. })
    ));
    assert!(matches!(
        r.counter("u", &"s".repeat(64)),
        Err(MetricsError::InvalidUnit { .. })
    ));
    let o = MetricOptions {
        cardinality_limit: Some(0),
        ..Default::default()
    };
    assert_eq!(
        r.counter_with("z", "1", &o).err(),
        Some(MetricsError::InvalidCardinalityLimit)
    );
    let o = MetricOptions {
        histogram: HistogramOptions {
            sub_bucket_bits: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        r.histogram_with("hh", "ms", &o),
        Err(MetricsError::InvalidHistogram { .. })
    ));
    assert!(MetricsRegistry::with_config(RegistryConfig {
        start_ns: 0,
        cardinality_limit: 0
    })
    .is_err());
}

#[test]
fn registry_is_send_sync_and_clones_share_state() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MetricsRegistry>();
    assert_send_sync::<ats_core::metrics::CounterHandle>();
    assert_send_sync::<ats_core::metrics::LabelSet>();
    let r = Arc::new(MetricsRegistry::new(0));
    let r2 = (*r).clone();
    r2.counter("x_total", "1").unwrap().add(&[], 1);
    assert_eq!(r.snapshot(1).len(), 1);
}
