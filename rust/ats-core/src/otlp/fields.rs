//! Field numbers and enum values of the OTLP v1 protobuf messages
//! (`opentelemetry-proto`: `common/v1/common.proto`, `resource/v1/resource.proto`,
//! `trace/v1/trace.proto`, `metrics/v1/metrics.proto`, `logs/v1/logs.proto`,
//! `collector/{trace,metrics,logs}/v1/*_service.proto`).
//!
//! One module per message so a call site reads `span::NAME`, and a typo in a
//! number shows up in exactly one place (the decode tests check them all
//! against the published generated code).

/// `Export{Trace,Metrics,Logs}ServiceRequest`: the one repeated field.
pub mod request {
    pub const RESOURCE_DATA: u32 = 1;
}

pub mod any_value {
    pub const STRING: u32 = 1;
    pub const BOOL: u32 = 2;
    pub const INT: u32 = 3;
    pub const DOUBLE: u32 = 4;
}

pub mod key_value {
    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
}

pub mod scope {
    pub const NAME: u32 = 1;
    pub const VERSION: u32 = 2;
}

pub mod resource {
    pub const ATTRIBUTES: u32 = 1;
}

/// `ResourceSpans` / `ResourceMetrics` / `ResourceLogs` share their numbers.
pub mod resource_data {
    pub const RESOURCE: u32 = 1;
    pub const SCOPE_DATA: u32 = 2;
}

/// `ScopeSpans` / `ScopeMetrics` / `ScopeLogs` share their numbers.
pub mod scope_data {
    pub const SCOPE: u32 = 1;
    pub const ITEMS: u32 = 2;
}

pub mod span {
    pub const TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const PARENT_SPAN_ID: u32 = 4;
    pub const NAME: u32 = 5;
    pub const KIND: u32 = 6;
    pub const START_TIME: u32 = 7;
    pub const END_TIME: u32 = 8;
    pub const ATTRIBUTES: u32 = 9;
    pub const EVENTS: u32 = 11;
    pub const STATUS: u32 = 15;

    pub const KIND_INTERNAL: u64 = 1;
    pub const KIND_SERVER: u64 = 2;
    pub const KIND_CLIENT: u64 = 3;
    pub const KIND_PRODUCER: u64 = 4;
    pub const KIND_CONSUMER: u64 = 5;
}

pub mod event {
    pub const TIME: u32 = 1;
    pub const NAME: u32 = 2;
    pub const ATTRIBUTES: u32 = 3;
}

pub mod status {
    pub const MESSAGE: u32 = 2;
    pub const CODE: u32 = 3;

    pub const CODE_OK: u64 = 1;
    pub const CODE_ERROR: u64 = 2;
}

pub mod metric {
    pub const NAME: u32 = 1;
    pub const UNIT: u32 = 3;
    pub const GAUGE: u32 = 5;
    pub const SUM: u32 = 7;
    pub const HISTOGRAM: u32 = 9;
}

/// `Gauge`, `Sum` and `Histogram` share their first two numbers.
pub mod data {
    pub const DATA_POINTS: u32 = 1;
    pub const AGGREGATION_TEMPORALITY: u32 = 2;
    /// `Sum` only.
    pub const IS_MONOTONIC: u32 = 3;

    pub const TEMPORALITY_DELTA: u64 = 1;
    pub const TEMPORALITY_CUMULATIVE: u64 = 2;
}

pub mod number_point {
    pub const START_TIME: u32 = 2;
    pub const TIME: u32 = 3;
    pub const AS_DOUBLE: u32 = 4;
    pub const ATTRIBUTES: u32 = 7;
}

pub mod histogram_point {
    pub const START_TIME: u32 = 2;
    pub const TIME: u32 = 3;
    pub const COUNT: u32 = 4;
    pub const SUM: u32 = 5;
    pub const BUCKET_COUNTS: u32 = 6;
    pub const EXPLICIT_BOUNDS: u32 = 7;
    pub const ATTRIBUTES: u32 = 9;
    pub const MIN: u32 = 11;
    pub const MAX: u32 = 12;
}

pub mod log {
    pub const TIME: u32 = 1;
    pub const SEVERITY_NUMBER: u32 = 2;
    pub const SEVERITY_TEXT: u32 = 3;
    pub const BODY: u32 = 5;
    pub const ATTRIBUTES: u32 = 6;
    pub const TRACE_ID: u32 = 9;
    pub const SPAN_ID: u32 = 10;
    pub const OBSERVED_TIME: u32 = 11;
    pub const EVENT_NAME: u32 = 12;
}
