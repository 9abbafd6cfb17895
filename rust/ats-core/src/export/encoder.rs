//! The sink's payload encoder: ATS records → OTLP request bodies, through
//! [`crate::otlp`], in the wire format the protocol asks for.

use super::config::{OtlpConfig, Protocol, Temporality};
use super::payload::{Payload, PayloadEncoder, Signal};
use crate::otlp::{Format, OtlpEncoder, ResourceConfig, Temporality as OtlpTemporality};
use crate::record::Record;

pub(crate) struct OtlpPayloads {
    encoder: OtlpEncoder,
    format: Format,
}

impl OtlpPayloads {
    pub(crate) fn new(config: &OtlpConfig) -> Self {
        let resource = ResourceConfig {
            service_name: config.encoding.service_name.clone(),
            attributes: config.encoding.resource_attributes.clone(),
        };
        let temporality = match config.encoding.temporality {
            Temporality::Cumulative => OtlpTemporality::Cumulative,
            Temporality::Delta => OtlpTemporality::Delta,
        };
        // gRPC carries protobuf; only OTLP/HTTP has a JSON form.
        let format = match config.protocol {
            Protocol::HttpJson => Format::Json,
            Protocol::HttpProtobuf | Protocol::Grpc => Format::Protobuf,
        };
        Self { encoder: OtlpEncoder::new(resource, temporality), format }
    }
}

impl PayloadEncoder for OtlpPayloads {
    fn encode(&mut self, batch: &[Record]) -> Vec<Payload> {
        let encoded = self.encoder.encode(batch, self.format);
        [
            (Signal::Traces, encoded.traces, encoded.spans),
            (Signal::Metrics, encoded.metrics, encoded.points),
            (Signal::Logs, encoded.logs, encoded.logs_count),
        ]
        .into_iter()
        .filter_map(|(signal, body, items)| body.map(|body| Payload { signal, body, items }))
        .collect()
    }
}
