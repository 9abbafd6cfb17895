//! The registry, metric handles and the series table.
//!
//! Each metric owns a table from label-set hash to series. Lookups by label
//! slice take the table's read lock only for the hash probe and the atomic
//! update; creating a series takes the write lock once per label set. A
//! [`LabelSet`] holds its series directly, so recording through it touches
//! no lock at all.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::record::model::MetricKind;

use super::histogram::{AtomicHistogram, HistogramOptions, HistogramSnapshot, Layout};
use super::labels::{self, OwnedLabels, MAX_LABELS};
use super::MetricsError;

static NEXT_METRIC_ID: AtomicU64 = AtomicU64::new(1);

/// Default cap on label sets per metric.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 2000;
/// Label of the overflow series (OpenTelemetry's convention).
pub const OVERFLOW_LABEL: (&str, &str) = ("otel.metric.overflow", "true");

/// Registry-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryConfig {
    /// Start of cumulative intervals (Unix epoch ns), normally "now" at
    /// creation; passed in so snapshots are reproducible.
    pub start_ns: u64,
    /// Default cap on label sets per metric.
    pub cardinality_limit: usize,
}

/// Per-metric settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricOptions {
    /// Overrides the registry default.
    pub cardinality_limit: Option<usize>,
    /// Used by histograms only.
    pub histogram: HistogramOptions,
}

/// Health counters of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricStats {
    pub name: String,
    pub kind: MetricKind,
    /// Label sets tracked (the overflow series not included).
    pub series: usize,
    /// Measurements routed to the overflow series.
    pub overflowed: u64,
    /// Values refused (NaN, infinite, negative histogram values).
    pub rejected: u64,
}

pub(crate) enum Cell {
    Counter(AtomicU64),
    Gauge {
        bits: AtomicU64,
        ever_set: AtomicBool,
        updated: AtomicBool,
    },
    Histogram(AtomicHistogram),
}

/// What earlier delta snapshots took out of the live cell; only snapshots
/// touch it.
#[derive(Default)]
pub(crate) struct Taken {
    pub(crate) counter: u64,
    pub(crate) histogram: Option<HistogramSnapshot>,
}

pub(crate) struct Series {
    pub(crate) labels: OwnedLabels,
    pub(crate) is_overflow: bool,
    pub(crate) cell: Cell,
    pub(crate) taken: Mutex<Taken>,
}

/// The table is keyed by label-set hashes that are already well mixed;
/// hashing them again would only cost time.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; fold anything else.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[derive(Default)]
pub(crate) struct Table {
    index: HashMap<u64, Vec<u32>, BuildHasherDefault<IdentityHasher>>,
    pub(crate) series: Vec<Arc<Series>>,
    pub(crate) overflow: Option<Arc<Series>>,
}

impl Table {
    #[inline]
    fn find(&self, hash: u64, l: &[(&str, &str)]) -> Option<&Arc<Series>> {
        self.index
            .get(&hash)?
            .iter()
            .map(|&i| &self.series[i as usize])
            .find(|s| labels::equals(&s.labels, l))
    }
}

pub(crate) struct Metric {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) unit: String,
    pub(crate) kind: MetricKind,
    limit: usize,
    layout: Option<Arc<Layout>>,
    pub(crate) table: RwLock<Table>,
    overflowed: AtomicU64,
    rejected: AtomicU64,
}

impl Metric {
    fn new_cell(&self) -> Cell {
        match (&self.kind, &self.layout) {
            (MetricKind::Counter, _) => Cell::Counter(AtomicU64::new(0)),
            (MetricKind::Gauge, _) => Cell::Gauge {
                bits: AtomicU64::new(0),
                ever_set: AtomicBool::new(false),
                updated: AtomicBool::new(false),
            },
            (MetricKind::Histogram, Some(layout)) => {
                Cell::Histogram(AtomicHistogram::new(Arc::clone(layout)))
            }
            // Histogram metrics always get a layout at registration.
            (MetricKind::Histogram, None) => Cell::Counter(AtomicU64::new(0)),
        }
    }

    fn new_series(&self, labels: OwnedLabels, is_overflow: bool) -> Arc<Series> {
        Arc::new(Series {
            labels,
            is_overflow,
            cell: self.new_cell(),
            taken: Mutex::new(Taken::default()),
        })
    }

    /// Runs `f` on the series for `l`, creating it (or using the overflow
    /// series) as needed.
    #[inline]
    fn with_series<R>(&self, l: &[(&str, &str)], f: impl FnOnce(&Series) -> R) -> R {
        if l.len() > MAX_LABELS {
            return self.with_overflow(f);
        }
        if labels::has_duplicate_keys(l) {
            return self.with_unique(&labels::canonical(l), f);
        }
        self.with_unique(l, f)
    }

    #[inline]
    fn with_unique<R>(&self, l: &[(&str, &str)], f: impl FnOnce(&Series) -> R) -> R {
        let hash = labels::hash_labels(l);
        {
            let t = self.table.read();
            if let Some(s) = t.find(hash, l) {
                return f(s);
            }
            if t.series.len() >= self.limit {
                if let Some(o) = &t.overflow {
                    self.overflowed.fetch_add(1, Ordering::Relaxed);
                    return f(o);
                }
            }
        }
        let s = self.resolve_slow(hash, l);
        if s.is_overflow {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
        }
        f(&s)
    }

    #[cold]
    fn resolve_slow(&self, hash: u64, l: &[(&str, &str)]) -> Arc<Series> {
        let mut t = self.table.write();
        if let Some(s) = t.find(hash, l) {
            return Arc::clone(s);
        }
        if t.series.len() >= self.limit {
            return self.overflow_series(&mut t);
        }
        let s = self.new_series(labels::to_owned_canonical(l), false);
        let i = t.series.len() as u32;
        t.series.push(Arc::clone(&s));
        t.index.entry(hash).or_default().push(i);
        s
    }

    fn overflow_series(&self, t: &mut Table) -> Arc<Series> {
        let s = t.overflow.get_or_insert_with(|| {
            let labels =
                vec![(OVERFLOW_LABEL.0.into(), OVERFLOW_LABEL.1.into())].into_boxed_slice();
            self.new_series(labels, true)
        });
        Arc::clone(s)
    }

    fn with_overflow<R>(&self, f: impl FnOnce(&Series) -> R) -> R {
        self.overflowed.fetch_add(1, Ordering::Relaxed);
        let existing = self.table.read().overflow.clone();
        let s = existing.unwrap_or_else(|| self.overflow_series(&mut self.table.write()));
        f(&s)
    }

    /// Series for a bound set: itself when it belongs here, else a lookup by
    /// its labels (a set bound on another metric still records correctly).
    #[inline]
    fn with_set<R>(&self, set: &LabelSet, f: impl FnOnce(&Series) -> R) -> R {
        if set.metric_id == self.id {
            if set.series.is_overflow {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
            }
            return f(&set.series);
        }
        if set.series.is_overflow {
            return self.with_overflow(f);
        }
        self.with_unique(&labels::borrow(&set.series.labels), f)
    }

    fn bind(self: &Arc<Self>, l: &[(&str, &str)]) -> LabelSet {
        let series = if l.len() > MAX_LABELS {
            self.overflow_series(&mut self.table.write())
        } else if labels::has_duplicate_keys(l) {
            let c = labels::canonical(l);
            self.resolve_slow(labels::hash_labels(&c), &c)
        } else {
            self.resolve_slow(labels::hash_labels(l), l)
        };
        LabelSet {
            metric_id: self.id,
            series,
        }
    }

    /// Existing series for `l`, without creating one.
    fn lookup(&self, l: &[(&str, &str)]) -> Option<Arc<Series>> {
        let c;
        let l = if labels::has_duplicate_keys(l) {
            c = labels::canonical(l);
            &c[..]
        } else {
            l
        };
        self.table.read().find(labels::hash_labels(l), l).cloned()
    }

    fn reject(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> MetricStats {
        MetricStats {
            name: self.name.clone(),
            kind: self.kind,
            series: self.table.read().series.len(),
            overflowed: self.overflowed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

/// A label set resolved once by `bind`, for the hot path. Cheap to clone;
/// keeps its series alive.
#[derive(Clone)]
pub struct LabelSet {
    metric_id: u64,
    series: Arc<Series>,
}

impl LabelSet {
    /// The canonical labels (sorted by key).
    pub fn labels(&self) -> Vec<(&str, &str)> {
        labels::borrow(&self.series.labels)
    }

    /// Bound to the overflow series (the metric was at its cap).
    pub fn is_overflow(&self) -> bool {
        self.series.is_overflow
    }
}

impl std::fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelSet")
            .field("labels", &self.labels())
            .finish()
    }
}

/// Monotonic `u64` counter.
#[derive(Clone)]
pub struct CounterHandle {
    m: Arc<Metric>,
}

impl CounterHandle {
    #[inline]
    pub fn add(&self, labels: &[(&str, &str)], v: u64) {
        self.m.with_series(labels, |s| counter_add(s, v));
    }

    #[inline]
    pub fn add_to(&self, set: &LabelSet, v: u64) {
        self.m.with_set(set, |s| counter_add(s, v));
    }

    pub fn bind(&self, labels: &[(&str, &str)]) -> LabelSet {
        self.m.bind(labels)
    }

    /// Cumulative value of an existing series.
    pub fn value(&self, labels: &[(&str, &str)]) -> Option<u64> {
        let s = self.m.lookup(labels)?;
        let taken = s.taken.lock().counter;
        match &s.cell {
            Cell::Counter(c) => Some(taken + c.load(Ordering::Relaxed)),
            _ => None,
        }
    }
}

#[inline]
fn counter_add(s: &Series, v: u64) {
    if let Cell::Counter(c) = &s.cell {
        c.fetch_add(v, Ordering::Relaxed);
    }
}

/// Last-value `f64` gauge.
#[derive(Clone)]
pub struct GaugeHandle {
    m: Arc<Metric>,
}

impl GaugeHandle {
    /// Non-finite values are rejected and counted.
    #[inline]
    pub fn set(&self, labels: &[(&str, &str)], v: f64) {
        if !v.is_finite() {
            return self.m.reject();
        }
        self.m.with_series(labels, |s| gauge_set(s, v));
    }

    #[inline]
    pub fn set_to(&self, set: &LabelSet, v: f64) {
        if !v.is_finite() {
            return self.m.reject();
        }
        self.m.with_set(set, |s| gauge_set(s, v));
    }

    pub fn bind(&self, labels: &[(&str, &str)]) -> LabelSet {
        self.m.bind(labels)
    }

    pub fn value(&self, labels: &[(&str, &str)]) -> Option<f64> {
        let s = self.m.lookup(labels)?;
        match &s.cell {
            Cell::Gauge { bits, ever_set, .. } if ever_set.load(Ordering::Acquire) => {
                Some(f64::from_bits(bits.load(Ordering::Relaxed)))
            }
            _ => None,
        }
    }
}

#[inline]
fn gauge_set(s: &Series, v: f64) {
    if let Cell::Gauge {
        bits,
        ever_set,
        updated,
    } = &s.cell
    {
        bits.store(v.to_bits(), Ordering::Relaxed);
        // Release after the value: a reader that sees the flag sees a value.
        updated.store(true, Ordering::Release);
        ever_set.store(true, Ordering::Release);
    }
}

/// Log-linear histogram of non-negative `f64` values.
#[derive(Clone)]
pub struct HistogramHandle {
    m: Arc<Metric>,
}

impl HistogramHandle {
    /// NaN, infinite and negative values are rejected and counted.
    #[inline]
    pub fn record(&self, labels: &[(&str, &str)], v: f64) {
        if !(v >= 0.0 && v.is_finite()) {
            return self.m.reject();
        }
        self.m.with_series(labels, |s| hist_record(s, v));
    }

    #[inline]
    pub fn record_to(&self, set: &LabelSet, v: f64) {
        if !(v >= 0.0 && v.is_finite()) {
            return self.m.reject();
        }
        self.m.with_set(set, |s| hist_record(s, v));
    }

    pub fn bind(&self, labels: &[(&str, &str)]) -> LabelSet {
        self.m.bind(labels)
    }

    /// Cumulative contents of an existing series (for quantiles).
    pub fn snapshot(&self, labels: &[(&str, &str)]) -> Option<HistogramSnapshot> {
        let s = self.m.lookup(labels)?;
        let taken = s.taken.lock();
        match &s.cell {
            Cell::Histogram(h) => {
                let mut snap = h.snapshot();
                if let Some(base) = &taken.histogram {
                    snap.merge(base);
                }
                Some(snap)
            }
            _ => None,
        }
    }
}

#[inline]
fn hist_record(s: &Series, v: f64) {
    if let Cell::Histogram(h) = &s.cell {
        h.record(v);
    }
}

pub(crate) struct RegistryInner {
    pub(crate) start_ns: u64,
    default_limit: usize,
    pub(crate) metrics: RwLock<Vec<Arc<Metric>>>,
    /// End of the previous delta interval; also serialises delta snapshots.
    pub(crate) last_delta_ns: Mutex<u64>,
}

/// Thread-safe metric registry; clones share the same metrics.
#[derive(Clone)]
pub struct MetricsRegistry {
    pub(crate) inner: Arc<RegistryInner>,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry")
            .field("start_ns", &self.inner.start_ns)
            .field("metrics", &self.inner.metrics.read().len())
            .finish()
    }
}

impl MetricsRegistry {
    /// Registry with the default cardinality limit.
    pub fn new(start_ns: u64) -> Self {
        Self::build(start_ns, DEFAULT_CARDINALITY_LIMIT)
    }

    pub fn with_config(config: RegistryConfig) -> Result<Self, MetricsError> {
        if config.cardinality_limit == 0 {
            return Err(MetricsError::InvalidCardinalityLimit);
        }
        Ok(Self::build(config.start_ns, config.cardinality_limit))
    }

    fn build(start_ns: u64, default_limit: usize) -> Self {
        Self {
            inner: Arc::new(RegistryInner {
                start_ns,
                default_limit,
                metrics: RwLock::new(Vec::new()),
                last_delta_ns: Mutex::new(start_ns),
            }),
        }
    }

    pub fn start_ns(&self) -> u64 {
        self.inner.start_ns
    }

    pub fn counter(&self, name: &str, unit: &str) -> Result<CounterHandle, MetricsError> {
        self.counter_with(name, unit, &MetricOptions::default())
    }
    pub fn counter_with(
        &self,
        name: &str,
        unit: &str,
        o: &MetricOptions,
    ) -> Result<CounterHandle, MetricsError> {
        Ok(CounterHandle {
            m: self.register(name, unit, MetricKind::Counter, o)?,
        })
    }
    pub fn gauge(&self, name: &str, unit: &str) -> Result<GaugeHandle, MetricsError> {
        self.gauge_with(name, unit, &MetricOptions::default())
    }
    pub fn gauge_with(
        &self,
        name: &str,
        unit: &str,
        o: &MetricOptions,
    ) -> Result<GaugeHandle, MetricsError> {
        Ok(GaugeHandle {
            m: self.register(name, unit, MetricKind::Gauge, o)?,
        })
    }
    pub fn histogram(&self, name: &str, unit: &str) -> Result<HistogramHandle, MetricsError> {
        self.histogram_with(name, unit, &MetricOptions::default())
    }
    pub fn histogram_with(
        &self,
        name: &str,
        unit: &str,
        o: &MetricOptions,
    ) -> Result<HistogramHandle, MetricsError> {
        Ok(HistogramHandle {
            m: self.register(name, unit, MetricKind::Histogram, o)?,
        })
    }

    /// Health counters for every metric, in registration order.
    pub fn stats(&self) -> Vec<MetricStats> {
        self.inner
            .metrics
            .read()
            .iter()
            .map(|m| m.stats())
            .collect()
    }

    fn register(
        &self,
        name: &str,
        unit: &str,
        kind: MetricKind,
        o: &MetricOptions,
    ) -> Result<Arc<Metric>, MetricsError> {
        validate_name(name)?;
        validate_unit(name, unit)?;
        let limit = o.cardinality_limit.unwrap_or(self.inner.default_limit);
        if limit == 0 {
            return Err(MetricsError::InvalidCardinalityLimit);
        }
        let layout = match kind {
            MetricKind::Histogram => Some(Layout::new(&o.histogram)?),
            _ => None,
        };
        let mut metrics = self.inner.metrics.write();
        if let Some(m) = metrics.iter().find(|m| m.name == name) {
            if m.kind == kind && m.unit == unit {
                return Ok(Arc::clone(m));
            }
            return Err(MetricsError::Conflict {
                name: name.to_owned(),
                existing: format!("{:?} [{}]", m.kind, m.unit),
                requested: format!("{kind:?} [{unit}]"),
            });
        }
        let m = Arc::new(Metric {
            // Process-wide unique, so a LabelSet from another registry is
            // never mistaken for one of ours.
            id: NEXT_METRIC_ID.fetch_add(1, Ordering::Relaxed),
            name: name.to_owned(),
            unit: unit.to_owned(),
            kind,
            limit,
            layout,
            table: RwLock::new(Table::default()),
            overflowed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        });
        metrics.push(Arc::clone(&m));
        Ok(m)
    }
}

/// OpenTelemetry instrument-name syntax: an ASCII letter, then letters,
/// digits, `_ . - /`; at most 255 characters.
fn validate_name(name: &str) -> Result<(), MetricsError> {
    let err = |reason| {
        Err(MetricsError::InvalidName {
            name: name.chars().take(64).collect(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 255 {
        return err("length must be 1..=255");
    }
    if !name.as_bytes()[0].is_ascii_alphabetic() {
        return err("must start with an ASCII letter");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
    {
        return err("allowed characters are ASCII letters, digits, _ . - /");
    }
    Ok(())
}

/// OpenTelemetry unit syntax: printable ASCII, at most 63 characters.
fn validate_unit(name: &str, unit: &str) -> Result<(), MetricsError> {
    if unit.len() > 63 || !unit.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(MetricsError::InvalidUnit {
            name: name.to_owned(),
            unit: unit.chars().take(64).collect(),
            reason: "must be printable ASCII of at most 63 characters",
        });
    }
    Ok(())
}
