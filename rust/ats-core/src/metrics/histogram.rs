//! Log-linear (HDR-like) histograms with O(1), allocation-free recording.
//!
//! Layout: every power-of-two range `(2^e, 2^(e+1)]` for `e` in
//! `[lowest_exponent, highest_exponent)` is split into `2^sub_bucket_bits`
//! equal sub-buckets, plus one underflow bucket `[0, 2^lowest]` and one
//! overflow bucket `(2^highest, inf)`. The bucket of a value is read straight
//! off its IEEE-754 bits (exponent and top mantissa bits), so recording is a
//! shift, a subtraction and an atomic increment.
//!
//! Buckets are upper-inclusive, `(lower, upper]`, like OTLP explicit buckets:
//! using the bits of the previous float (`bits - 1`) moves a value that sits
//! exactly on a boundary into the bucket below. Hence converting to explicit
//! bounds that lie on the log-linear grid is exact (see
//! [`HistogramSnapshot::to_explicit_buckets`]).
//!
//! Accuracy: with the default 6 sub-bucket bits a bucket is at most 1/64 of
//! its lower edge wide; reporting the midpoint (clamped to the observed
//! min/max) puts every in-range quantile within 1/128 (0.78 %) of the exact
//! order statistic. Values in the underflow bucket are known to within
//! `2^lowest_exponent` absolute; overflow reports the maximum.
//!
//! Only finite values `>= 0` are recorded (latencies, sizes); anything else
//! is rejected and counted by the caller. Non-negative floats order like
//! their bit patterns, so min/max are plain atomic `fetch_min`/`fetch_max`.
//!
//! Besides the log-linear buckets a histogram also counts into one set of
//! explicit bounds fixed at creation (default: OTel's millisecond bounds), so
//! the export those bounds feed is exact even where they do not lie on the
//! grid (750, 2500, 7500 ...). The explicit bucket is looked up from the
//! log-linear bucket through a per-layout table; only the few log-linear
//! buckets that an explicit bound splits fall back to a binary search.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::record::model::HistogramData;

use super::MetricsError;

/// OpenTelemetry's default explicit bucket boundaries (milliseconds).
pub const DEFAULT_BOUNDS_MS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// Shape of a histogram. The defaults cover `2^-10 ≈ 0.001` to `2^30 ≈ 1.07e9`
/// (in ms: 1 µs to 12 days) with 64 sub-buckets per power of two: 2,562
/// buckets, 20 KiB per series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramOptions {
    pub lowest_exponent: i32,
    pub highest_exponent: i32,
    /// `1..=10`; 6 gives < 1 % quantile error.
    pub sub_bucket_bits: u32,
    /// Explicit bounds counted exactly for export; sorted, finite, unique.
    pub explicit_bounds: Vec<f64>,
}

impl Default for HistogramOptions {
    fn default() -> Self {
        Self {
            lowest_exponent: -10,
            highest_exponent: 30,
            sub_bucket_bits: 6,
            explicit_bounds: DEFAULT_BOUNDS_MS.to_vec(),
        }
    }
}

/// Validated, shared layout of a histogram.
#[derive(Debug, PartialEq)]
pub struct Layout {
    lowest_exponent: i32,
    highest_exponent: i32,
    sub_bits: u32,
    /// `(lowest_exponent + 1023) << sub_bits`: biased index of the first regular bucket.
    index_offset: u64,
    /// Buckets including underflow and overflow.
    len: usize,
    explicit_bounds: Box<[f64]>,
    /// Explicit bucket of every value in log-linear bucket `i`, or
    /// [`STRADDLES`] when an explicit bound lies inside it. Turns the
    /// explicit-bucket search into a table lookup for all but a handful of
    /// buckets.
    explicit_of: Box<[u16]>,
}

/// Marks a log-linear bucket that an explicit bound splits.
const STRADDLES: u16 = u16::MAX;

/// Largest bucket count accepted (bounds memory per series to 512 KiB).
const MAX_BUCKETS: usize = 1 << 16;

impl Layout {
    pub fn new(o: &HistogramOptions) -> Result<Arc<Self>, MetricsError> {
        let invalid = |reason: String| Err(MetricsError::InvalidHistogram { reason });
        if !(1..=10).contains(&o.sub_bucket_bits) {
            return invalid(format!(
                "sub_bucket_bits must be within 1..=10, got {}",
                o.sub_bucket_bits
            ));
        }
        if !(-1022..=1023).contains(&o.lowest_exponent)
            || !(-1022..=1023).contains(&o.highest_exponent)
            || o.lowest_exponent >= o.highest_exponent
        {
            return invalid(format!(
                "need -1022 <= lowest_exponent < highest_exponent <= 1023, got {}..{}",
                o.lowest_exponent, o.highest_exponent
            ));
        }
        let regular = ((o.highest_exponent - o.lowest_exponent) as usize) << o.sub_bucket_bits;
        if regular + 2 > MAX_BUCKETS {
            return invalid(format!(
                "{} buckets exceed the limit of {MAX_BUCKETS}",
                regular + 2
            ));
        }
        if o.explicit_bounds.iter().any(|b| !b.is_finite())
            || o.explicit_bounds.windows(2).any(|w| w[0] >= w[1])
        {
            return invalid("explicit_bounds must be finite and strictly increasing".into());
        }
        let mut layout = Self {
            lowest_exponent: o.lowest_exponent,
            highest_exponent: o.highest_exponent,
            sub_bits: o.sub_bucket_bits,
            index_offset: ((o.lowest_exponent + 1023) as u64) << o.sub_bucket_bits,
            len: regular + 2,
            explicit_bounds: o.explicit_bounds.clone().into_boxed_slice(),
            explicit_of: Box::new([]),
        };
        layout.explicit_of = layout.explicit_table();
        Ok(Arc::new(layout))
    }

    /// Number of buckets, underflow and overflow included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn explicit_bounds(&self) -> &[f64] {
        &self.explicit_bounds
    }

    /// Bucket of a finite `v >= 0` (callers check). O(1).
    #[inline]
    pub fn index(&self, v: f64) -> usize {
        let lowest = f64::from_bits(((self.lowest_exponent + 1023) as u64) << 52);
        if v <= lowest {
            return 0;
        }
        // `bits - 1`: the previous float, so exact boundaries fall below.
        let key = (v.to_bits() - 1) >> (52 - self.sub_bits);
        let i = key.saturating_sub(self.index_offset) as usize + 1;
        i.min(self.len - 1)
    }

    /// `(lower, upper]` of bucket `i`; underflow is `[0, 2^lowest]`,
    /// overflow `(2^highest, inf)`.
    pub fn bucket_bounds(&self, i: usize) -> (f64, f64) {
        let pow = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
        if i == 0 {
            return (0.0, pow(self.lowest_exponent));
        }
        if i >= self.len - 1 {
            return (pow(self.highest_exponent), f64::INFINITY);
        }
        let k = i - 1;
        let e = self.lowest_exponent + (k >> self.sub_bits) as i32;
        let sub = (k & ((1 << self.sub_bits) - 1)) as f64;
        let width = pow(e) / f64::from(1u32 << self.sub_bits);
        (pow(e) + sub * width, pow(e) + (sub + 1.0) * width)
    }

    /// Explicit bucket of `v`, whose log-linear bucket is `i`. Bucket `j`
    /// covers `(bounds[j-1], bounds[j]]`: the number of bounds below `v`.
    #[inline]
    fn explicit_index(&self, i: usize, v: f64) -> usize {
        match self.explicit_of.get(i) {
            Some(&j) if j != STRADDLES => usize::from(j),
            _ => self.explicit_bounds.partition_point(|&b| b < v),
        }
    }

    fn explicit_table(&self) -> Box<[u16]> {
        // With more than u16::MAX - 1 bounds, skip the table (search always).
        if self.explicit_bounds.len() >= usize::from(STRADDLES) {
            return Box::new([]);
        }
        (0..self.len)
            .map(|i| {
                let (lo, hi) = self.bucket_bounds(i);
                // Values in the bucket are > lo (>= 0 for underflow) and <= hi.
                let first = self.explicit_bounds.partition_point(|&b| b <= lo);
                let last = self.explicit_bounds.partition_point(|&b| b < hi);
                let zero_edge = i == 0 && self.explicit_bounds.contains(&0.0);
                if first == last && !zero_edge {
                    first as u16
                } else {
                    STRADDLES
                }
            })
            .collect()
    }
}

/// A histogram that many threads record into at once.
pub struct AtomicHistogram {
    layout: Arc<Layout>,
    buckets: Box<[AtomicU64]>,
    explicit: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
    min_bits: AtomicU64,
    max_bits: AtomicU64,
}

const EMPTY_MIN: u64 = 0x7ff0_0000_0000_0000; // +inf
const EMPTY_MAX: u64 = 0; // +0.0

impl AtomicHistogram {
    /// Allocates all buckets up front, so recording never allocates.
    pub fn new(layout: Arc<Layout>) -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>();
        Self {
            buckets: zeros(layout.len),
            explicit: zeros(layout.explicit_bounds.len() + 1),
            layout,
            sum_bits: AtomicU64::new(0),
            min_bits: AtomicU64::new(EMPTY_MIN),
            max_bits: AtomicU64::new(EMPTY_MAX),
        }
    }

    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// Records `v`; returns `false` (and records nothing) unless `v` is
    /// finite and `>= 0`.
    #[inline]
    pub fn record(&self, v: f64) -> bool {
        if !(v >= 0.0 && v.is_finite()) {
            return false;
        }
        let v = v + 0.0; // -0.0 -> +0.0, so its bits order correctly
        let i = self.layout.index(v);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.explicit[self.layout.explicit_index(i, v)].fetch_add(1, Ordering::Relaxed);
        let bits = v.to_bits();
        // x86 has no atomic min/max (they are CAS loops): skip them in the
        // common case where the extreme does not move.
        if bits < self.min_bits.load(Ordering::Relaxed) {
            self.min_bits.fetch_min(bits, Ordering::Relaxed);
        }
        if bits > self.max_bits.load(Ordering::Relaxed) {
            self.max_bits.fetch_max(bits, Ordering::Relaxed);
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some((f64::from_bits(s) + v).to_bits())
            });
        true
    }

    /// Current contents (not reset).
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.read(
            |a| a.load(Ordering::Relaxed),
            |a, _| a.load(Ordering::Relaxed),
        )
    }

    /// Current contents, resetting to empty (delta temporality). Every
    /// recorded value lands in exactly one `take`.
    pub fn take(&self) -> HistogramSnapshot {
        // Loading first skips the read-modify-write on the (many) empty
        // buckets; an increment racing with a zero load stays for next time.
        let take = |a: &AtomicU64| match a.load(Ordering::Relaxed) {
            0 => 0,
            _ => a.swap(0, Ordering::Relaxed),
        };
        self.read(take, |a, empty| a.swap(empty, Ordering::Relaxed))
    }

    /// Explicit-bucket export of the current contents plus `base` (what
    /// earlier [`take`](Self::take)s removed), reading only the explicit
    /// counters: the cumulative export path, cheap for many series.
    pub fn export_with(&self, base: Option<&HistogramSnapshot>) -> HistogramData {
        let mut counts: Vec<u64> = self
            .explicit
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        let mut sum = f64::from_bits(self.sum_bits.load(Ordering::Relaxed));
        let mut min = f64::from_bits(self.min_bits.load(Ordering::Relaxed));
        let mut max = f64::from_bits(self.max_bits.load(Ordering::Relaxed));
        if let Some(b) = base.filter(|b| b.layout == self.layout) {
            for (c, t) in counts.iter_mut().zip(&b.explicit) {
                *c += t;
            }
            sum += b.sum;
            min = min.min(b.min);
            max = max.max(b.max);
        }
        let count: u64 = counts.iter().sum();
        let empty = count == 0;
        HistogramData {
            count,
            sum,
            min: if empty { 0.0 } else { min },
            max: if empty { 0.0 } else { max },
            bounds: self.layout.explicit_bounds.to_vec(),
            counts,
        }
    }

    fn read(
        &self,
        counts: impl Fn(&AtomicU64) -> u64,
        extreme: impl Fn(&AtomicU64, u64) -> u64,
    ) -> HistogramSnapshot {
        let buckets: Vec<u64> = self.buckets.iter().map(&counts).collect();
        let explicit: Vec<u64> = self.explicit.iter().map(&counts).collect();
        let sum = f64::from_bits(extreme(&self.sum_bits, 0));
        let min = f64::from_bits(extreme(&self.min_bits, EMPTY_MIN));
        let max = f64::from_bits(extreme(&self.max_bits, EMPTY_MAX));
        let count = buckets.iter().sum();
        HistogramSnapshot {
            layout: Arc::clone(&self.layout),
            buckets,
            explicit,
            count,
            sum,
            min,
            max,
        }
    }
}

/// Plain, mergeable copy of a histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    layout: Arc<Layout>,
    buckets: Vec<u64>,
    explicit: Vec<u64>,
    /// Sum of the log-linear bucket counts.
    pub count: u64,
    pub sum: f64,
    /// `+inf` when empty.
    pub min: f64,
    /// `0` when empty.
    pub max: f64,
}

impl HistogramSnapshot {
    pub fn empty(layout: Arc<Layout>) -> Self {
        Self {
            buckets: vec![0; layout.len],
            explicit: vec![0; layout.explicit_bounds.len() + 1],
            layout,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: 0.0,
        }
    }

    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// Nothing at all was recorded into this snapshot. Under concurrent
    /// recording a value's count, sum and extremes can land in adjacent
    /// deltas, so a delta with count 0 may still carry a sum: not empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
            && self.sum.to_bits() == 0
            && self.min.to_bits() == EMPTY_MIN
            && self.max.to_bits() == EMPTY_MAX
            && self.explicit.iter().all(|&c| c == 0)
    }

    /// Log-linear bucket counts (index as in [`Layout::bucket_bounds`]).
    pub fn bucket_counts(&self) -> &[u64] {
        &self.buckets
    }

    /// Adds `other` (same layout) into `self`; a different layout is ignored
    /// and reported as `false`.
    pub fn merge(&mut self, other: &HistogramSnapshot) -> bool {
        if self.layout != other.layout {
            return false;
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        for (a, b) in self.explicit.iter_mut().zip(&other.explicit) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        true
    }

    /// Estimated `q`-quantile, `q` in `[0, 1]`, of the nearest-rank kind:
    /// the value of rank `max(1, ceil(q * count))`. Rank 1 and rank `count`
    /// return the exact min and max. `None` when empty or `q` is invalid.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == 1 {
            return Some(self.min);
        }
        if rank == self.count {
            return Some(self.max);
        }
        let mut seen = 0u64;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = self.layout.bucket_bounds(i);
                let mid = if hi.is_finite() {
                    lo + (hi - lo) / 2.0
                } else {
                    self.max
                };
                return Some(mid.clamp(self.min, self.max));
            }
        }
        Some(self.max) // counts raced with `count`; the top is the best answer
    }

    /// Explicit-bucket view for export: `counts[j]` covers
    /// `(bounds[j-1], bounds[j]]`. `bounds` is sanitised first (non-finite
    /// values dropped, sorted, deduplicated) and returned that way.
    ///
    /// Exact when `bounds` are the explicit bounds the histogram was created
    /// with, or when every bound lies on the log-linear grid (e.g. 0, 5, 10,
    /// 25, 50, 100, 250, 500, 1000 with the default layout). Otherwise a
    /// log-linear bucket straddling a bound is counted wholly in the explicit
    /// bucket holding its upper edge (error at most one sub-bucket's values).
    pub fn to_explicit_buckets(&self, bounds: &[f64]) -> HistogramData {
        let mut clean: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        clean.sort_by(f64::total_cmp);
        clean.dedup_by(|a, b| a == b);
        let counts = if clean == *self.layout.explicit_bounds {
            self.explicit.clone()
        } else {
            let mut counts = vec![0u64; clean.len() + 1];
            for (i, &c) in self.buckets.iter().enumerate().filter(|(_, &c)| c > 0) {
                let (_, upper) = self.layout.bucket_bounds(i);
                counts[clean.partition_point(|&b| b < upper)] += c;
            }
            counts
        };
        // Count from the buckets actually exported, so that every point is
        // self-consistent (OTLP requires count == sum of bucket counts) even
        // when a concurrent snapshot caught a value in one array only.
        let count = counts.iter().sum();
        let empty = self.count == 0;
        HistogramData {
            count,
            sum: self.sum,
            min: if empty { 0.0 } else { self.min },
            max: if empty { 0.0 } else { self.max },
            bounds: clean,
            counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Arc<Layout> {
        Layout::new(&HistogramOptions::default()).unwrap()
    }

    #[test]
    fn index_is_upper_inclusive_and_matches_bounds() {
        let l = layout();
        assert_eq!(l.len(), 2562);
        for v in [
            0.0,
            1e-9,
            0.0009765625,
            0.001,
            1.0,
            1.5,
            5.0,
            5.0000001,
            750.0,
            1e8,
            1073741824.0,
            2e9,
            1e300,
        ] {
            let i = l.index(v);
            let (lo, hi) = l.bucket_bounds(i);
            assert!(v <= hi && (v > lo || i == 0), "v={v} i={i} ({lo}, {hi}]");
        }
        // Exact boundaries belong to the lower bucket.
        let i5 = l.index(5.0);
        assert_eq!(l.bucket_bounds(i5).1, 5.0);
        assert_eq!(l.index(5.0 + 1e-12), i5 + 1);
        assert_eq!(l.index(2f64.powi(30)), l.len() - 2);
        assert_eq!(l.index(2f64.powi(30) * 1.0000001), l.len() - 1);
    }

    #[test]
    fn rejects_bad_values_and_options() {
        let h = AtomicHistogram::new(layout());
        for v in [f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY, -1e-300] {
            assert!(!h.record(v));
        }
        assert!(h.record(-0.0));
        assert_eq!(h.snapshot().min.to_bits(), 0);
        let bad = |o: HistogramOptions| Layout::new(&o).is_err();
        assert!(bad(HistogramOptions {
            sub_bucket_bits: 0,
            ..Default::default()
        }));
        assert!(bad(HistogramOptions {
            sub_bucket_bits: 11,
            ..Default::default()
        }));
        assert!(bad(HistogramOptions {
            lowest_exponent: 5,
            highest_exponent: 5,
            ..Default::default()
        }));
        assert!(bad(HistogramOptions {
            lowest_exponent: -1023,
            ..Default::default()
        }));
        assert!(bad(HistogramOptions {
            lowest_exponent: -1000,
            highest_exponent: 1000,
            ..Default::default()
        }));
        assert!(bad(HistogramOptions {
            explicit_bounds: vec![1.0, 1.0],
            ..Default::default()
        }));
        assert!(bad(HistogramOptions {
            explicit_bounds: vec![f64::NAN],
            ..Default::default()
        }));
    }
}
