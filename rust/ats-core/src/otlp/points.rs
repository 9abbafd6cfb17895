//! Metric data points as they are exported: ATS points are cumulative since
//! process start; under delta temporality each series' previous point is
//! remembered and the difference is exported instead.
//!
//! The memory is bounded: series live in two generations of at most
//! `capacity / 2` each; when the young one fills it becomes the old one and
//! the previous old generation is forgotten (counted). A forgotten series that
//! comes back is treated as new, i.e. its next delta covers the whole time
//! since its start — with the default capacity that needs more live series
//! than the metrics registry produces.

use std::borrow::Cow;
use std::collections::HashMap;

use xxhash_rust::xxh3::Xxh3Default;

use crate::record::{HistogramData, MetricKind, MetricPoint};

/// How metric sums and histograms are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Temporality {
    /// Totals since process start (ATS's native form, Prometheus' too).
    #[default]
    Cumulative,
    /// Change since the previous export of the same series.
    Delta,
}

/// Default bound on remembered series for delta temporality.
pub const DEFAULT_DELTA_SERIES: usize = 16_384;

/// One exported data point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point<'a> {
    pub rec: &'a MetricPoint,
    pub start_ns: u64,
    /// Counter / gauge value.
    pub value: f64,
    pub hist: Option<HistPoint<'a>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistPoint<'a> {
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bounds: &'a [f64],
    pub counts: Cow<'a, [u64]>,
}

/// Why a point was not exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unexported {
    /// A histogram point without histogram data, or with `counts.len() != bounds.len() + 1`.
    Malformed,
    /// Not newer than the series' previous point (delta only).
    Stale,
}

fn cumulative_hist(h: &HistogramData) -> HistPoint<'_> {
    // min / max mean nothing for an empty histogram.
    let (min, max) = if h.count > 0 {
        (Some(h.min), Some(h.max))
    } else {
        (None, None)
    };
    HistPoint {
        count: h.count,
        sum: h.sum,
        min,
        max,
        bounds: &h.bounds,
        counts: Cow::Borrowed(&h.counts),
    }
}

fn histogram_of(p: &MetricPoint) -> Result<Option<&HistogramData>, Unexported> {
    if p.kind != MetricKind::Histogram {
        return Ok(None);
    }
    match &p.histogram {
        Some(h) if h.counts.len() == h.bounds.len() + 1 => Ok(Some(h)),
        _ => Err(Unexported::Malformed),
    }
}

/// The point exactly as recorded (cumulative, or a gauge).
pub(crate) fn cumulative(p: &MetricPoint) -> Result<Point<'_>, Unexported> {
    let hist = histogram_of(p)?.map(cumulative_hist);
    Ok(Point {
        rec: p,
        start_ns: p.start_ns,
        value: p.value,
        hist,
    })
}

// Metric points are few (one per series per snapshot), so the default
// hasher's cost does not matter here.
type SeriesMap = HashMap<u128, Series>;

#[derive(Debug)]
struct Series {
    start_ns: u64,
    last_ts: u64,
    value: f64,
    count: u64,
    bounds_hash: u64,
    counts: Vec<u64>,
}

/// Per-series memory for delta temporality.
#[derive(Debug)]
pub(crate) struct DeltaState {
    young: SeriesMap,
    old: SeriesMap,
    per_generation: usize,
    forgotten: u64,
}

fn series_key(p: &MetricPoint) -> u128 {
    let mut h = Xxh3Default::new();
    // Separators that cannot occur in UTF-8 keep ("ab","c") and ("a","bc") apart.
    let mut part = |bytes: &[u8]| {
        h.update(bytes);
        h.update(&[0xff]);
    };
    part(p.name.as_bytes());
    part(&[p.kind as u8]);
    part(p.envelope.tenant.as_bytes());
    part(p.envelope.workspace.as_bytes());
    part(p.envelope.region.as_bytes());
    for (k, v) in &p.labels {
        part(k.as_bytes());
        part(v.as_bytes());
    }
    h.digest128()
}

fn bounds_hash(bounds: &[f64]) -> u64 {
    let mut h = Xxh3Default::new();
    for b in bounds {
        h.update(&b.to_bits().to_le_bytes());
    }
    h.digest()
}

impl DeltaState {
    pub fn new(capacity: usize) -> Self {
        let per_generation = (capacity / 2).max(1);
        Self {
            young: SeriesMap::default(),
            old: SeriesMap::default(),
            per_generation,
            forgotten: 0,
        }
    }

    pub fn series(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Series forgotten because the bound was reached.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    fn take(&mut self, key: u128) -> Option<Series> {
        self.young.remove(&key).or_else(|| self.old.remove(&key))
    }

    fn put(&mut self, key: u128, s: Series) {
        if self.young.len() >= self.per_generation {
            self.forgotten += self.old.len() as u64;
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, s);
    }

    /// The delta form of `p`; gauges pass through unchanged.
    pub fn delta<'a>(&mut self, p: &'a MetricPoint) -> Result<Point<'a>, Unexported> {
        if p.kind == MetricKind::Gauge {
            return cumulative(p);
        }
        let hist = histogram_of(p)?;
        let key = series_key(p);
        let ts = p.envelope.ts_ns;
        let bh = hist.map_or(0, |h| bounds_hash(&h.bounds));
        let prev = self.take(key);
        let continues = prev.as_ref().is_some_and(|s| s.start_ns == p.start_ns);
        if let (true, Some(s)) = (continues, &prev) {
            if ts <= s.last_ts {
                let s = prev.expect("checked above");
                self.put(key, s);
                return Err(Unexported::Stale);
            }
        }
        // A counter that went down, or a histogram that lost observations or
        // changed buckets, was reset without a new start time: its cumulative
        // value is all there is since the reset.
        let reset = match (&prev, hist) {
            (Some(s), None) => p.value < s.value,
            (Some(s), Some(h)) => {
                h.count < s.count
                    || s.bounds_hash != bh
                    || s.counts.len() != h.counts.len()
                    || s.counts.iter().zip(&h.counts).any(|(a, b)| b < a)
            }
            (None, _) => false,
        };
        let mut series = prev.unwrap_or(Series {
            start_ns: p.start_ns,
            last_ts: 0,
            value: 0.0,
            count: 0,
            bounds_hash: bh,
            counts: Vec::new(),
        });
        let point = if continues && !reset {
            let start = series.last_ts;
            let hist = hist.map(|h| HistPoint {
                count: h.count - series.count,
                sum: h.sum - series.value,
                // Cumulative extremes say nothing about one interval.
                min: None,
                max: None,
                bounds: &h.bounds,
                counts: Cow::Owned(
                    h.counts
                        .iter()
                        .zip(&series.counts)
                        .map(|(c, prev)| c - prev)
                        .collect(),
                ),
            });
            let value = if hist.is_some() {
                p.value
            } else {
                p.value - series.value
            };
            Point {
                rec: p,
                start_ns: start,
                value,
                hist,
            }
        } else {
            Point {
                rec: p,
                start_ns: p.start_ns,
                value: p.value,
                hist: hist.map(cumulative_hist),
            }
        };
        series.start_ns = p.start_ns;
        series.last_ts = ts;
        series.bounds_hash = bh;
        match hist {
            Some(h) => {
                series.value = h.sum;
                series.count = h.count;
                series.counts.clear();
                series.counts.extend_from_slice(&h.counts);
            }
            None => series.value = p.value,
        }
        self.put(key, series);
        Ok(point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Envelope;

    fn counter(ts: u64, start: u64, value: f64, label: &str) -> MetricPoint {
        MetricPoint {
            envelope: Envelope {
                ts_ns: ts,
                tenant: "t".into(),
                ..Envelope::default()
            },
            name: "sqlx_driver_errors_total".into(),
            unit: "1".into(),
            kind: MetricKind::Counter,
            start_ns: start,
            labels: vec![("class".into(), label.into())],
            value,
            histogram: None,
        }
    }

    fn hist(ts: u64, counts: Vec<u64>, sum: f64) -> MetricPoint {
        let count = counts.iter().sum();
        MetricPoint {
            kind: MetricKind::Histogram,
            name: "sqlx_driver_latency_ms".into(),
            histogram: Some(HistogramData {
                count,
                sum,
                min: 1.0,
                max: 9.0,
                bounds: vec![5.0],
                counts,
            }),
            value: sum,
            ..counter(ts, 100, 0.0, "x")
        }
    }

    fn start_value(p: Result<Point<'_>, Unexported>) -> (u64, f64) {
        let p = p.expect("exported");
        (p.start_ns, p.value)
    }

    #[test]
    fn counter_deltas_per_series() {
        let mut d = DeltaState::new(16);
        let pts = [
            counter(200, 100, 5.0, "a"),
            counter(200, 100, 1.0, "b"),
            counter(300, 100, 7.0, "a"),
            counter(300, 100, 1.0, "b"),
            counter(400, 100, 10.0, "a"),
        ];
        let got: Vec<(u64, f64)> = pts.iter().map(|p| start_value(d.delta(p))).collect();
        assert_eq!(
            got,
            vec![(100, 5.0), (100, 1.0), (200, 2.0), (200, 0.0), (300, 3.0)]
        );
        assert_eq!(d.series(), 2);
    }

    #[test]
    fn restart_reset_and_stale() {
        let mut d = DeltaState::new(16);
        assert_eq!(
            start_value(d.delta(&counter(200, 100, 5.0, "a"))),
            (100, 5.0)
        );
        // Same or older timestamp: not exported, state unchanged.
        assert_eq!(
            d.delta(&counter(200, 100, 6.0, "a")),
            Err(Unexported::Stale)
        );
        assert_eq!(
            d.delta(&counter(150, 100, 6.0, "a")),
            Err(Unexported::Stale)
        );
        // Counter went down without a new start: reset.
        assert_eq!(
            start_value(d.delta(&counter(300, 100, 2.0, "a"))),
            (100, 2.0)
        );
        assert_eq!(
            start_value(d.delta(&counter(400, 100, 4.0, "a"))),
            (300, 2.0)
        );
        // New start time (process restart): a new epoch, even at an older ts.
        assert_eq!(
            start_value(d.delta(&counter(350, 340, 1.0, "a"))),
            (340, 1.0)
        );
    }

    #[test]
    fn histogram_deltas() {
        let mut d = DeltaState::new(16);
        let (p1, p2, p3) = (
            hist(200, vec![1, 2], 20.0),
            hist(300, vec![4, 2], 26.0),
            hist(400, vec![1, 9], 50.0),
        );
        let first = d.delta(&p1).expect("first");
        let h = first.hist.expect("hist");
        assert_eq!(
            (h.count, h.sum, h.min, h.max, h.counts.as_ref()),
            (3, 20.0, Some(1.0), Some(9.0), &[1u64, 2][..])
        );
        let second = d.delta(&p2).expect("second");
        assert_eq!(second.start_ns, 200);
        let h = second.hist.expect("hist");
        assert_eq!(
            (h.count, h.sum, h.min, h.max, h.counts.as_ref()),
            (3, 6.0, None, None, &[3u64, 0][..])
        );
        // A bucket went down: reset to the cumulative point.
        let third = d.delta(&p3).expect("third");
        assert_eq!((third.start_ns, third.hist.expect("hist").count), (100, 10));
    }

    #[test]
    fn malformed_histograms_are_not_exported() {
        let mut p = hist(200, vec![1, 2], 20.0);
        p.histogram.as_mut().expect("hist").counts.pop();
        assert_eq!(cumulative(&p), Err(Unexported::Malformed));
        assert_eq!(DeltaState::new(4).delta(&p), Err(Unexported::Malformed));
        p.histogram = None;
        assert_eq!(cumulative(&p), Err(Unexported::Malformed));
    }

    #[test]
    fn gauges_pass_through() {
        let mut d = DeltaState::new(4);
        let mut g = counter(200, 100, 3.0, "a");
        g.kind = MetricKind::Gauge;
        assert_eq!(start_value(d.delta(&g)), (100, 3.0));
        assert_eq!(start_value(d.delta(&g)), (100, 3.0));
        assert_eq!(d.series(), 0);
    }

    #[test]
    fn memory_is_bounded_and_forgetting_counted() {
        let mut d = DeltaState::new(4); // two generations of two
        for i in 0..10 {
            d.delta(&counter(200, 100, 1.0, &i.to_string()))
                .expect("point");
            assert!(d.series() <= 4, "series={}", d.series());
        }
        assert_eq!(d.series() as u64 + d.forgotten(), 10);
        // A series touched in every round survives generation changes.
        let mut d = DeltaState::new(4);
        for round in 1..=5u64 {
            d.delta(&counter(100 + round * 100, 100, round as f64, "keep"))
                .expect("keep");
            d.delta(&counter(200, 100, 1.0, &format!("other{round}")))
                .expect("other");
        }
        assert_eq!(
            start_value(d.delta(&counter(1000, 100, 6.0, "keep"))),
            (600, 1.0)
        );
    }
}
