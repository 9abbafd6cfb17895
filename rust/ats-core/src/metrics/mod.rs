//! Metric aggregation: counters, gauges and log-linear histograms keyed by
//! label sets, with a cardinality cap, exported as [`MetricPoint`]s.
//!
//! - [`MetricsRegistry`] (cheap to clone, `Send + Sync`) creates metrics by
//!   name and unit and returns handles; registering the same name, kind and
//!   unit again returns the same metric.
//! - Handles record with a label slice (`&[("dialect", "sqlite")]`; a hash
//!   lookup under a shared read lock) or with a pre-resolved [`LabelSet`]
//!   from `bind` (no lookup, no lock: one atomic operation for counters and
//!   gauges, a few for histograms). Nothing allocates after a label set's
//!   first use.
//! - Each metric tracks at most `cardinality_limit` label sets (default
//!   2,000). Measurements for further sets go to a single overflow series
//!   labelled `otel.metric.overflow="true"` (OpenTelemetry's convention) and
//!   are counted ([`MetricStats::overflowed`]).
//! - [`MetricsRegistry::snapshot`] reports cumulative values since the
//!   registry's start; [`MetricsRegistry::snapshot_delta`] reports what
//!   changed since the previous delta snapshot and resets. Both can be used
//!   on one registry: the cumulative view adds what earlier deltas took.
//!
//! Metric names and units come from callers (seed 000 §5 lists ATS's set);
//! nothing here hard-codes them.
//!
//! [`MetricPoint`]: crate::record::model::MetricPoint

mod histogram;
mod labels;
mod registry;
mod snapshot;

pub use histogram::{
    AtomicHistogram, HistogramOptions, HistogramSnapshot, Layout, DEFAULT_BOUNDS_MS,
};
pub use labels::{MAX_LABELS, MAX_LABEL_LEN};
pub use registry::{
    CounterHandle, GaugeHandle, HistogramHandle, LabelSet, MetricOptions, MetricStats,
    MetricsRegistry, RegistryConfig, DEFAULT_CARDINALITY_LIMIT, OVERFLOW_LABEL,
};

use thiserror::Error;

/// Errors from registering metrics. Recording never fails: invalid values
/// are counted ([`MetricStats::rejected`]) and dropped.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum MetricsError {
    #[error("invalid metric name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid unit {unit:?} for metric {name:?}: {reason}")]
    InvalidUnit {
        name: String,
        unit: String,
        reason: &'static str,
    },
    #[error("metric {name:?} already registered as {existing}, requested {requested}")]
    Conflict {
        name: String,
        existing: String,
        requested: String,
    },
    #[error("invalid histogram options: {reason}")]
    InvalidHistogram { reason: String },
    #[error("cardinality limit must be at least 1")]
    InvalidCardinalityLimit,
}
