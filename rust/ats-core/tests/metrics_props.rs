//! Property tests: arbitrary labels and values never panic and totals are
//! exact, overflow included.

use ats_core::metrics::{MetricsRegistry, RegistryConfig};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_labels_sum_exactly(
        ops in prop::collection::vec((prop::collection::vec((".{0,6}", ".{0,6}"), 0..4), 0u64..1000), 0..200),
        limit in 1usize..20,
    ) {
        let r = MetricsRegistry::with_config(RegistryConfig { start_ns: 0, cardinality_limit: limit }).unwrap();
        let c = r.counter("c_total", "1").unwrap();
        let h = r.histogram("h_ms", "ms").unwrap();
        let mut total = 0u64;
        for (labels, v) in &ops {
            let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            c.add(&l, *v);
            h.record(&l, *v as f64);
            total += v;
        }
        let points = r.snapshot(1);
        let counter_sum: f64 = points.iter().filter(|p| p.name == "c_total").map(|p| p.value).sum();
        prop_assert_eq!(counter_sum, total as f64);
        let hist_count: u64 = points.iter().filter_map(|p| p.histogram.as_ref()).map(|d| d.count).sum();
        prop_assert_eq!(hist_count, ops.len() as u64);
        let stats = r.stats();
        prop_assert!(stats[0].series <= limit);
        let overflow_points = points.iter().filter(|p| p.labels.iter().any(|(k, _)| k == "otel.metric.overflow")).count();
        prop_assert_eq!(overflow_points > 0, stats[0].overflowed > 0);
        // A delta right after reports the same totals, then nothing.
        let delta_sum: f64 = r.snapshot_delta(2).iter().filter(|p| p.name == "c_total").map(|p| p.value).sum();
        prop_assert_eq!(delta_sum, total as f64);
        prop_assert!(r.snapshot_delta(3).is_empty());
    }

    #[test]
    fn arbitrary_values_never_panic(values in prop::collection::vec(any::<f64>(), 0..200)) {
        let r = MetricsRegistry::new(0);
        let h = r.histogram("h_ms", "ms").unwrap();
        let g = r.gauge("g", "1").unwrap();
        for &v in &values {
            h.record(&[], v);
            g.set(&[], v);
        }
        let valid = values.iter().filter(|v| **v >= 0.0 && v.is_finite()).count() as u64;
        let snap = h.snapshot(&[]);
        prop_assert_eq!(snap.map_or(0, |s| s.count), valid);
        for q in [0.0, 0.5, 0.99, 1.0] {
            let _ = h.snapshot(&[]).and_then(|s| s.quantile(q));
        }
        let _ = r.snapshot(1);
    }
}
