//! Flusher-thread stages that sit between the ring and the sinks.
//!
//! They run off the application thread, so per-record work here costs the
//! program nothing: [`redact::Redactor`] scrubs free text, [`tail::TailStage`]
//! holds traces for tail sampling, [`metrics::MetricsCollector`] turns the
//! metric registry into metric-point records.

pub mod metrics;
pub mod redact;
pub mod tail;
