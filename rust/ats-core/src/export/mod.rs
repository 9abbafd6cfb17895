//! OTLP export: the transport and the sink that sends encoded payloads to an
//! OpenTelemetry Collector (HTTP/protobuf, HTTP/JSON or gRPC), surviving
//! collector outages with a circuit breaker and a bounded on-disk spool.
//!
//! ```text
//! flusher thread                       ats-otlp-exporter thread
//! OtlpSink::write_batch                exporter::run
//!   PayloadEncoder::encode  ─► Backlog ─►  Breaker ─► Transport::send ─► collector
//!                              (spool, oldest │ retry: backoff + jitter,
//!                               first; queue) │ Retry-After
//! ```
//!
//! - [`payload`]: [`Payload`] and the [`PayloadEncoder`] the sink is built
//!   with (encoding records is not this module's job).
//! - [`config`]: [`OtlpConfig`] and its typed validation.
//! - [`backlog`], [`spool`]: the ordered backlog and its on-disk half.
//! - [`exporter`], [`breaker`], [`retry`]: delivery policy.
//! - [`transport`], [`tls`], [`response`]: the wire.
//! - [`sink`]: [`OtlpSink`], the flusher's `Sink`.
//! - [`stats`]: counters shown in `Pipeline.stats()`.

pub mod backlog;
pub mod breaker;
pub mod config;
mod encoder;
mod exporter;
pub mod payload;
pub mod response;
pub mod retry;
pub mod sink;
pub mod spool;
pub mod stats;
mod tls;
pub mod transport;

pub use breaker::BreakerState;
pub use config::{
    BreakerConfig, Compression, ConfigError, EncodingOptions, OtlpConfig, Protocol, RetryConfig, Temporality, TlsFiles,
};
pub use payload::{Payload, PayloadEncoder, Signal};
pub use sink::{OtlpHandle, OtlpOpenError, OtlpSink};
pub use stats::ExportStats;

/// Builds the payload encoder for `config`: OTLP protobuf (HTTP and gRPC) or
/// OTLP/JSON, with the configured resource and metric temporality.
pub fn make_encoder(config: &OtlpConfig) -> Box<dyn PayloadEncoder> {
    Box::new(encoder::OtlpPayloads::new(config))
}
