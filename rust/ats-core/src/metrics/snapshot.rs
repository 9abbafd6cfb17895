//! Export: cumulative and delta snapshots as [`MetricPoint`]s.
//!
//! Live cells hold what was recorded since the last delta snapshot; each
//! series' `taken` record holds what earlier delta snapshots removed. So:
//!
//! - cumulative = taken + live (nothing reset), `start_ns` = registry start;
//! - delta = live, swapped to zero, then added to taken; `start_ns` = the
//!   previous delta snapshot's `now_ns` (the registry start for the first).
//!
//! Every measurement lands in exactly one delta, and cumulative totals are
//! unaffected by deltas being taken in between.
//!
//! Which series appear:
//! - cumulative: every counter and histogram series, every gauge ever set;
//! - delta: counters whose value grew, histograms with new measurements and
//!   gauges set since the previous delta.
//!
//! Under concurrent recording, a histogram value's count, sum and min/max are
//! separate atomics and can fall into adjacent deltas (a delta may show a sum
//! whose count arrives in the next); summed over deltas everything is exact.
//!
//! Order is deterministic: metrics in registration order, series in creation
//! order, the overflow series last. Labels are sorted by key. The envelope
//! carries only `ts_ns = now_ns`; the caller fills in tenant and the rest.
//! Histograms export the explicit bounds they were created with (exact).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::record::model::{Envelope, MetricKind, MetricPoint};

use super::registry::{Cell, Metric, MetricsRegistry, Series};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cumulative,
    Delta,
}

impl MetricsRegistry {
    /// Cumulative temporality since the registry's start.
    pub fn snapshot(&self, now_ns: u64) -> Vec<MetricPoint> {
        self.collect(Mode::Cumulative, now_ns, self.inner.start_ns)
    }

    /// Delta temporality: what changed since the previous delta snapshot,
    /// which is then reset. Concurrent delta snapshots are serialised.
    pub fn snapshot_delta(&self, now_ns: u64) -> Vec<MetricPoint> {
        let mut last = self.inner.last_delta_ns.lock();
        let points = self.collect(Mode::Delta, now_ns, *last);
        *last = now_ns;
        points
    }

    fn collect(&self, mode: Mode, now_ns: u64, start_ns: u64) -> Vec<MetricPoint> {
        let metrics: Vec<Arc<Metric>> = self.inner.metrics.read().clone();
        let mut out = Vec::new();
        for m in &metrics {
            // Copy the series list so recording is never blocked by export.
            let series: Vec<Arc<Series>> = {
                let t = m.table.read();
                t.series.iter().chain(t.overflow.iter()).cloned().collect()
            };
            for s in &series {
                if let Some(p) = point(m, s, mode, now_ns, start_ns) {
                    out.push(p);
                }
            }
        }
        out
    }
}

fn point(m: &Metric, s: &Series, mode: Mode, now_ns: u64, start_ns: u64) -> Option<MetricPoint> {
    let mut taken = s.taken.lock();
    let (value, histogram) = match &s.cell {
        Cell::Counter(c) => {
            let v = match mode {
                Mode::Cumulative => taken.counter + c.load(Ordering::Relaxed),
                Mode::Delta => {
                    let d = c.swap(0, Ordering::Relaxed);
                    taken.counter += d;
                    if d == 0 {
                        return None;
                    }
                    d
                }
            };
            (v as f64, None)
        }
        Cell::Gauge {
            bits,
            ever_set,
            updated,
        } => {
            let include = match mode {
                Mode::Cumulative => ever_set.load(Ordering::Acquire),
                Mode::Delta => updated.swap(false, Ordering::Acquire),
            };
            if !include {
                return None;
            }
            (f64::from_bits(bits.load(Ordering::Relaxed)), None)
        }
        Cell::Histogram(h) => {
            let data = match mode {
                Mode::Cumulative => h.export_with(taken.histogram.as_ref()),
                Mode::Delta => {
                    let delta = h.take();
                    match &mut taken.histogram {
                        Some(base) => {
                            base.merge(&delta);
                        }
                        None => taken.histogram = Some(delta.clone()),
                    }
                    if delta.is_empty() {
                        return None;
                    }
                    delta.to_explicit_buckets(delta.layout().explicit_bounds())
                }
            };
            (data.sum, Some(data))
        }
    };
    Some(MetricPoint {
        envelope: Envelope {
            ts_ns: now_ns,
            ..Envelope::default()
        },
        name: m.name.clone(),
        unit: m.unit.clone(),
        kind: match &s.cell {
            Cell::Counter(_) => MetricKind::Counter,
            Cell::Gauge { .. } => MetricKind::Gauge,
            Cell::Histogram(_) => MetricKind::Histogram,
        },
        start_ns,
        labels: s
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value,
        histogram,
    })
}
