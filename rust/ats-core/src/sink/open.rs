//! Sinks described by configuration, opened for the flusher.
//!
//! This is where the concrete sinks meet the flusher's [`Sink`] trait, so the
//! flusher knows no concrete sink and the sinks know no flusher.

use std::path::PathBuf;

use super::{JsonlConfig, JsonlSink, PruneCutoffs, SqliteStore};
use crate::export::{OtlpConfig, OtlpSink, PayloadEncoder};
use crate::flusher::{Sink, SinkError};
use crate::record::Record;

/// One configured sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// The embedded SQLite store at `path` (parent directories are created),
    /// pruned to `retention` when it is opened.
    Store { path: PathBuf, retention: Option<RetentionDays> },
    /// JSONL files in `dir`, rotated daily and by size.
    Jsonl {
        dir: PathBuf,
        max_file_bytes: u64,
        max_total_bytes: Option<u64>,
    },
    /// OTLP export to a collector; payloads come from the encoder factory
    /// given to [`open_sinks_with`] ([`crate::export::make_encoder`] by default).
    Otlp(OtlpConfig),
}

/// Builds the payload encoder of an OTLP sink from its configuration.
pub type EncoderFactory = dyn Fn(&OtlpConfig) -> Box<dyn PayloadEncoder> + Send + Sync;

/// Days each kind of record is kept (seed 000 §8.4 defaults: 30 / 30 / 400 / 90).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays {
    pub traces: u32,
    pub logs: u32,
    pub metrics: u32,
    pub learning: u32,
}

impl RetentionDays {
    /// Cutoffs relative to `now_ns`: records strictly older are pruned.
    pub fn cutoffs(&self, now_ns: u64) -> PruneCutoffs {
        let before = |days: u32| Some(now_ns.saturating_sub(u64::from(days) * 86_400 * 1_000_000_000));
        PruneCutoffs {
            spans_ns: before(self.traces),
            logs_ns: before(self.logs),
            metric_points_ns: before(self.metrics),
            rewards_ns: before(self.learning),
        }
    }
}

/// A sink could not be opened; names the sink and the path.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {kind} sink at {path}: {message}")]
pub struct OpenError {
    pub kind: &'static str,
    pub path: PathBuf,
    pub message: String,
}

/// Opens every sink in `specs`, in order; the first failure is returned.
pub fn open_sinks(specs: &[SinkSpec]) -> Result<Vec<Box<dyn Sink>>, OpenError> {
    open_sinks_with(specs, &crate::export::make_encoder)
}

/// [`open_sinks`] with the OTLP sinks' encoder built by `encoders`.
pub fn open_sinks_with(specs: &[SinkSpec], encoders: &EncoderFactory) -> Result<Vec<Box<dyn Sink>>, OpenError> {
    specs.iter().map(|s| open_one(s, encoders)).collect()
}

fn open_one(spec: &SinkSpec, encoders: &EncoderFactory) -> Result<Box<dyn Sink>, OpenError> {
    match spec {
        SinkSpec::Store { path, retention } => {
            let fail = |e: &dyn std::fmt::Display| OpenError { kind: "store", path: path.clone(), message: e.to_string() };
            let mut store = SqliteStore::open(path).map_err(|e| fail(&e))?;
            if let Some(days) = retention {
                // Retention applies automatically: once per opening, before any write.
                let now_ns = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                store.prune(&days.cutoffs(now_ns)).map_err(|e| fail(&e))?;
            }
            Ok(Box::new(store) as Box<dyn Sink>)
        }
        SinkSpec::Jsonl {
            dir,
            max_file_bytes,
            max_total_bytes,
        } => {
            let mut config = JsonlConfig::new(dir.clone());
            config.max_file_bytes = Some(*max_file_bytes);
            config.max_total_bytes = *max_total_bytes;
            JsonlSink::open(config)
                .map(|s| Box::new(s) as Box<dyn Sink>)
                .map_err(|e| OpenError {
                    kind: "jsonl",
                    path: dir.clone(),
                    message: e.to_string(),
                })
        }
        SinkSpec::Otlp(config) => OtlpSink::open(config, encoders(config))
            .map(|s| Box::new(s) as Box<dyn Sink>)
            .map_err(|e| OpenError {
                kind: "otlp",
                path: config.spool_dir.clone().unwrap_or_default(),
                message: e.to_string(),
            }),
    }
}

fn failed(sink: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::Failed {
        sink: sink.to_owned(),
        message: e.to_string(),
    }
}

/// Forwards the trait to a sink's inherent methods, mapping its typed error.
macro_rules! forward_sink {
    ($ty:ty) => {
        impl Sink for $ty {
            fn name(&self) -> &str {
                <$ty>::name(self)
            }
            fn write_batch(&mut self, batch: &[Record]) -> Result<(), SinkError> {
                <$ty>::write_batch(self, batch).map_err(|e| failed(<$ty>::name(self), e))
            }
            fn flush(&mut self) -> Result<(), SinkError> {
                <$ty>::flush(self).map_err(|e| failed(<$ty>::name(self), e))
            }
            fn close(&mut self) -> Result<(), SinkError> {
                <$ty>::close(self).map_err(|e| failed(<$ty>::name(self), e))
            }
        }
    };
}

forward_sink!(JsonlSink);

impl Sink for SqliteStore {
    fn name(&self) -> &str {
        SqliteStore::name(self)
    }
    fn write_batch(&mut self, batch: &[Record]) -> Result<(), SinkError> {
        SqliteStore::write_batch(self, batch).map_err(|e| failed(SqliteStore::name(self), e))
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        SqliteStore::flush(self).map_err(|e| failed(SqliteStore::name(self), e))
    }
    fn close(&mut self) -> Result<(), SinkError> {
        SqliteStore::close(self).map_err(|e| failed(SqliteStore::name(self), e))
    }
    fn record_drops(&mut self, drops: &[(&str, u64)]) -> Result<(), SinkError> {
        self.record_drop_counts(drops).map_err(|e| failed(SqliteStore::name(self), e))
    }
}
