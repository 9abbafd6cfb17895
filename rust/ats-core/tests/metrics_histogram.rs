//! Histogram accuracy and explicit-bucket conversion.

use std::sync::Arc;

use ats_core::metrics::{
    AtomicHistogram, HistogramOptions, HistogramSnapshot, Layout, DEFAULT_BOUNDS_MS,
};
use ats_core::record::model::HistogramData;
use proptest::prelude::*;

fn hist() -> AtomicHistogram {
    AtomicHistogram::new(Layout::new(&HistogramOptions::default()).unwrap())
}

/// Nearest-rank quantile of sorted data: rank max(1, ceil(q n)).
fn exact(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

fn check_quantiles(values: &[f64]) -> Result<(), TestCaseError> {
    let h = hist();
    for &v in values {
        prop_assert!(h.record(v));
    }
    let snap = h.snapshot();
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    prop_assert_eq!(snap.count, values.len() as u64);
    for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
        let want = exact(&sorted, q);
        let got = snap.quantile(q).unwrap();
        let rel = (got - want).abs() / want;
        prop_assert!(rel < 0.01, "q={} got {} want {} rel {}", q, got, want, rel);
    }
    Ok(())
}

/// Box-Muller standard normal from two uniforms in (0, 1].
fn normal(u1: f64, u2: f64) -> f64 {
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn quantiles_within_1pct_lognormal(
        mu in -2.0f64..8.0,
        sigma in 0.1f64..2.0,
        pairs in prop::collection::vec((1e-12f64..1.0, 0.0f64..1.0), 50..3000),
    ) {
        // Latency-like data; clamp into the default layout's range.
        let values: Vec<f64> = pairs
            .iter()
            .map(|&(u1, u2)| (mu + sigma * normal(u1, u2)).exp().clamp(0.002, 5e8))
            .collect();
        check_quantiles(&values)?;
    }

    #[test]
    fn quantiles_within_1pct_uniform(
        lo in 0.001f64..1000.0,
        span in 0.0f64..1e6,
        us in prop::collection::vec(0.0f64..1.0, 1..3000),
    ) {
        let values: Vec<f64> = us.iter().map(|u| lo + u * span).collect();
        check_quantiles(&values)?;
    }

    #[test]
    fn explicit_buckets_match_direct_counting(values in prop::collection::vec(0.0f64..20_000.0, 0..500)) {
        let h = hist();
        for &v in &values {
            h.record(v);
        }
        let data = h.snapshot().to_explicit_buckets(&DEFAULT_BOUNDS_MS);
        let mut want = vec![0u64; DEFAULT_BOUNDS_MS.len() + 1];
        for &v in &values {
            want[DEFAULT_BOUNDS_MS.iter().filter(|&&b| b < v).count()] += 1;
        }
        prop_assert_eq!(data.counts, want);
        prop_assert_eq!(data.count, values.len() as u64);
    }

    #[test]
    fn tracked_custom_bounds_are_exact(
        raw_bounds in prop::collection::vec(-10.0f64..5e9, 0..40),
        grid_bounds in prop::collection::vec(0u32..64, 0..5),
        values in prop::collection::vec(prop_oneof![0.0f64..2e9, 0.0f64..1.0, Just(0.0), Just(5.0), Just(750.0)], 0..400),
    ) {
        // Random bounds, some exactly on bucket edges, some negative or 0.
        let mut bounds: Vec<f64> = raw_bounds;
        bounds.extend(grid_bounds.iter().map(|&k| 5.0 + f64::from(k) * 0.0625));
        bounds.push(0.0);
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let layout = Layout::new(&HistogramOptions { explicit_bounds: bounds.clone(), ..Default::default() }).unwrap();
        let h = AtomicHistogram::new(layout);
        for &v in &values {
            h.record(v);
        }
        let mut want = vec![0u64; bounds.len() + 1];
        for &v in &values {
            want[bounds.iter().filter(|&&b| b < v).count()] += 1;
        }
        prop_assert_eq!(h.snapshot().to_explicit_buckets(&bounds).counts, want);
    }
}

#[test]
fn explicit_buckets_exact_on_known_inputs() {
    let h = hist();
    // Boundaries are upper-inclusive: 5 goes to (0, 5], 5.0001 to (5, 10].
    for v in [
        0.0, 0.0, 1.0, 5.0, 5.0001, 10.0, 749.9, 750.0, 750.5, 2500.0, 9999.0, 10000.0, 10000.5,
        1e7,
    ] {
        assert!(h.record(v));
    }
    let snap = h.snapshot();
    let data = snap.to_explicit_buckets(&DEFAULT_BOUNDS_MS);
    assert_eq!(
        data,
        HistogramData {
            count: 14,
            sum: 0.0
                + 1.0
                + 5.0
                + 5.0001
                + 10.0
                + 749.9
                + 750.0
                + 750.5
                + 2500.0
                + 9999.0
                + 10000.0
                + 10000.5
                + 1e7,
            min: 0.0,
            max: 1e7,
            bounds: DEFAULT_BOUNDS_MS.to_vec(),
            //       0  5  10 25 50 75 100 250 500 750 1000 2500 5000 7500 10000 inf
            counts: vec![2, 2, 2, 0, 0, 0, 0, 0, 0, 2, 1, 1, 0, 0, 2, 2],
        }
    );
    // Bounds on the log-linear grid convert exactly without being tracked.
    let grid = [1.0, 5.0, 10.0, 100.0, 1000.0, 4096.0];
    let data = snap.to_explicit_buckets(&grid);
    assert_eq!(data.bounds, grid.to_vec());
    assert_eq!(data.counts, vec![3, 1, 2, 0, 3, 1, 4]);
    // Unsorted / NaN / duplicate bounds are sanitised.
    let data = snap.to_explicit_buckets(&[10.0, f64::NAN, 1.0, 10.0]);
    assert_eq!(data.bounds, vec![1.0, 10.0]);
    assert_eq!(data.counts, vec![3, 3, 8]);
    // No bounds: one bucket with everything.
    assert_eq!(snap.to_explicit_buckets(&[]).counts, vec![14]);
}

#[test]
fn count_sum_min_max_and_edge_quantiles() {
    let h = hist();
    assert_eq!(h.snapshot().quantile(0.5), None);
    let empty = h.snapshot().to_explicit_buckets(&DEFAULT_BOUNDS_MS);
    assert_eq!(
        (empty.count, empty.sum, empty.min, empty.max),
        (0, 0.0, 0.0, 0.0)
    );
    for v in [3.0, 1.0, 2.0] {
        h.record(v);
    }
    let s = h.snapshot();
    assert_eq!((s.count, s.sum, s.min, s.max), (3, 6.0, 1.0, 3.0));
    assert_eq!(s.quantile(0.0), Some(1.0));
    assert_eq!(s.quantile(1.0), Some(3.0));
    assert_eq!(s.quantile(f64::NAN), None);
    assert_eq!(s.quantile(1.5), None);
    let q = s.quantile(0.5).unwrap();
    assert!((q - 2.0).abs() / 2.0 < 0.01, "{q}");
}

#[test]
fn out_of_range_values_are_clamped_to_min_max() {
    let h = hist();
    for v in [0.0, 1e-5, 1e12, 2e12, 3e12] {
        h.record(v);
    }
    let s = h.snapshot();
    // Rank 2 (1e-5) is in the underflow bucket [0, 2^-10]: its midpoint.
    assert_eq!(s.layout().bucket_bounds(0), (0.0, 2f64.powi(-10)));
    assert_eq!(s.quantile(0.4), Some(2f64.powi(-11)));
    assert_eq!(s.quantile(0.6), Some(3e12)); // overflow bucket reports the max
}

#[test]
fn take_resets_and_merge_adds() {
    let h = hist();
    h.record(1.0);
    h.record(100.0);
    let first = h.take();
    assert_eq!(first.count, 2);
    assert_eq!(h.snapshot().count, 0);
    assert_eq!(h.snapshot().min, f64::INFINITY);
    h.record(7.0);
    let mut total = first.clone();
    assert!(total.merge(&h.snapshot()));
    assert_eq!(
        (total.count, total.sum, total.min, total.max),
        (3, 108.0, 1.0, 100.0)
    );
    let other = HistogramSnapshot::empty(
        Layout::new(&HistogramOptions {
            sub_bucket_bits: 4,
            ..Default::default()
        })
        .unwrap(),
    );
    assert!(!total.merge(&other));
}

#[test]
fn concurrent_records_are_exact() {
    let h = Arc::new(hist());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let h = Arc::clone(&h);
            std::thread::spawn(move || {
                for i in 0..50_000u64 {
                    h.record(((i % 1000) + t) as f64);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = h.snapshot();
    assert_eq!(s.count, 400_000);
    // Integers below 2^53 sum exactly in f64.
    let want: u64 = (0..8u64)
        .map(|t| (0..50_000u64).map(|i| (i % 1000) + t).sum::<u64>())
        .sum();
    assert_eq!(s.sum, want as f64);
    assert_eq!((s.min, s.max), (0.0, 1006.0));
    assert_eq!(
        s.to_explicit_buckets(&DEFAULT_BOUNDS_MS)
            .counts
            .iter()
            .sum::<u64>(),
        400_000
    );
}
