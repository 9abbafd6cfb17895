//! What the exporter carries: encoded request bodies, one per signal.
//!
//! Encoding (records → OTLP protobuf or JSON) is not this module's job; the
//! sink is handed a [`PayloadEncoder`] and only moves its output.

use crate::record::Record;

/// The three OTLP signals, each with its own endpoint and service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Signal {
    Traces = 0,
    Metrics = 1,
    Logs = 2,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Signal> {
        match v {
            0 => Some(Signal::Traces),
            1 => Some(Signal::Metrics),
            2 => Some(Signal::Logs),
            _ => None,
        }
    }

    /// Standard gRPC method path of this signal's collector service.
    pub fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One export request body for one signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub signal: Signal,
    /// Uncompressed protobuf or JSON, as the configured protocol expects.
    pub body: Vec<u8>,
    /// Spans, data points or log records inside `body`: the unit every
    /// exported/dropped counter is kept in.
    pub items: usize,
}

/// Turns a batch of records into export request bodies. Runs on the flusher
/// thread inside `Sink::write_batch`, so it must not block.
pub trait PayloadEncoder: Send {
    fn encode(&mut self, batch: &[Record]) -> Vec<Payload>;
}
