//! Counters of the export sink, written by the exporter and flusher threads
//! and read from anywhere (relaxed atomics: each is an independent tally).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use super::breaker::BreakerState;
use super::payload::Signal;

/// Drop reasons of this sink, as they appear in `ats_dropped_total{reason}`.
pub const DROP_SPOOL_OVERFLOW: &str = "otlp_spool_overflow";
pub const DROP_REJECTED: &str = "otlp_rejected";
pub const DROP_PARTIAL_SUCCESS: &str = "otlp_partial_success";
pub const DROP_RETRY_EXHAUSTED: &str = "otlp_retry_exhausted";
pub const DROP_SPOOL_ERROR: &str = "otlp_spool_error";
pub const DROP_SHUTDOWN: &str = "otlp_shutdown";

#[derive(Debug, Default)]
pub struct ExportCounters {
    pub(crate) exported_items: [AtomicU64; 3],
    pub(crate) exported_payloads: [AtomicU64; 3],
    pub(crate) retries: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) dropped_spool_overflow: AtomicU64,
    pub(crate) dropped_rejected: AtomicU64,
    pub(crate) dropped_partial_success: AtomicU64,
    pub(crate) dropped_retry_exhausted: AtomicU64,
    pub(crate) dropped_spool_error: AtomicU64,
    pub(crate) dropped_shutdown: AtomicU64,
    pub(crate) spool_corrupt_files: AtomicU64,
    pub(crate) spooled_bytes: AtomicU64,
    pub(crate) spooled_payloads: AtomicU64,
    pub(crate) queued_bytes: AtomicU64,
    pub(crate) breaker_state: AtomicU8,
    pub(crate) breaker_opened: AtomicU64,
}

/// A snapshot of [`ExportCounters`]. Items are spans, data points or log
/// records; drops are in items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Indexed by `Signal as usize` (traces, metrics, logs).
    pub exported_items: [u64; 3],
    pub exported_payloads: [u64; 3],
    /// Attempts after the first for the same payload.
    pub retries: u64,
    /// Failed attempts: connection errors, timeouts, retryable statuses.
    pub failures: u64,
    pub dropped_spool_overflow: u64,
    /// Refused with a non-retryable status (e.g. 400).
    pub dropped_rejected: u64,
    /// `rejected_*` reported in a partial success.
    pub dropped_partial_success: u64,
    pub dropped_retry_exhausted: u64,
    /// The spool could not be written (disk full, permissions).
    pub dropped_spool_error: u64,
    /// Left undelivered at close with no spool directory to keep them.
    pub dropped_shutdown: u64,
    /// Spool files that failed their checks (removed, never sent).
    pub spool_corrupt_files: u64,
    pub spooled_bytes: u64,
    pub spooled_payloads: u64,
    pub queued_bytes: u64,
    pub breaker_state: BreakerState,
    pub breaker_opened: u64,
}

impl ExportCounters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub(crate) fn exported(&self, signal: Signal, items: u64) {
        self.exported_items[signal.index()].fetch_add(items, Relaxed);
        self.exported_payloads[signal.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn set_breaker(&self, s: BreakerState, opened: u64) {
        self.breaker_state.store(s as u8, Relaxed);
        self.breaker_opened.store(opened, Relaxed);
    }

    pub(crate) fn breaker_is_open(&self) -> bool {
        self.breaker_state.load(Relaxed) == BreakerState::Open as u8
    }

    pub fn snapshot(&self) -> ExportStats {
        let l = |a: &AtomicU64| a.load(Relaxed);
        ExportStats {
            exported_items: [0, 1, 2].map(|i| l(&self.exported_items[i])),
            exported_payloads: [0, 1, 2].map(|i| l(&self.exported_payloads[i])),
            retries: l(&self.retries),
            failures: l(&self.failures),
            dropped_spool_overflow: l(&self.dropped_spool_overflow),
            dropped_rejected: l(&self.dropped_rejected),
            dropped_partial_success: l(&self.dropped_partial_success),
            dropped_retry_exhausted: l(&self.dropped_retry_exhausted),
            dropped_spool_error: l(&self.dropped_spool_error),
            dropped_shutdown: l(&self.dropped_shutdown),
            spool_corrupt_files: l(&self.spool_corrupt_files),
            spooled_bytes: l(&self.spooled_bytes),
            spooled_payloads: l(&self.spooled_payloads),
            queued_bytes: l(&self.queued_bytes),
            breaker_state: match self.breaker_state.load(Relaxed) {
                1 => BreakerState::Open,
                2 => BreakerState::HalfOpen,
                _ => BreakerState::Closed,
            },
            breaker_opened: l(&self.breaker_opened),
        }
    }
}

impl ExportStats {
    /// Cumulative drops by reason (items), for `ats_dropped_total{reason}`.
    pub fn drops(&self) -> [(&'static str, u64); 6] {
        [
            (DROP_SPOOL_OVERFLOW, self.dropped_spool_overflow),
            (DROP_REJECTED, self.dropped_rejected),
            (DROP_PARTIAL_SUCCESS, self.dropped_partial_success),
            (DROP_RETRY_EXHAUSTED, self.dropped_retry_exhausted),
            (DROP_SPOOL_ERROR, self.dropped_spool_error),
            (DROP_SHUTDOWN, self.dropped_shutdown),
        ]
    }

    /// Every counter as `(name, value)`, the shape `SinkStats::counters` keeps.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("exported_spans", self.exported_items[0]),
            ("exported_data_points", self.exported_items[1]),
            ("exported_log_records", self.exported_items[2]),
            ("exported_requests", self.exported_payloads.iter().sum()),
            ("retries", self.retries),
            ("failures", self.failures),
            ("spool_corrupt_files", self.spool_corrupt_files),
            ("spooled_bytes", self.spooled_bytes),
            ("spooled_requests", self.spooled_payloads),
            ("queued_bytes", self.queued_bytes),
            ("breaker_state", self.breaker_state as u64),
            ("breaker_opened", self.breaker_opened),
            ("dropped_spool_overflow", self.dropped_spool_overflow),
            ("dropped_rejected", self.dropped_rejected),
            ("dropped_partial_success", self.dropped_partial_success),
            ("dropped_retry_exhausted", self.dropped_retry_exhausted),
            ("dropped_spool_error", self.dropped_spool_error),
            ("dropped_shutdown", self.dropped_shutdown),
        ]
    }
}
