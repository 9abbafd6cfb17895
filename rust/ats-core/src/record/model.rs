//! The owned record model: what the codec decodes into and what sinks consume.
//!
//! Producers never build these on the hot path; they encode borrowed data
//! straight into the ring (see the codec). Sinks receive decoded batches of
//! [`Record`]s on the flusher thread.

/// 128-bit W3C trace id; all-zero means "no trace".
pub type TraceId = u128;
/// 64-bit W3C span id; zero means "none" (e.g. no parent).
pub type SpanId = u64;

/// Correlation fields every ATS artifact carries (seed 000 §2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    /// Unix epoch nanoseconds at which the record was produced (span: start).
    pub ts_ns: u64,
    pub tenant: String,
    pub workspace: String,
    pub region: String,
    /// SQL dialect (`postgresql`, `mysql`, `sqlite`, `generic`) or empty.
    pub dialect: String,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: SpanId,
    /// xxh3-64 statement fingerprint; rendered `air:Q-{:016x}`.
    pub air_id: Option<u64>,
    /// xxh3-64 plan fingerprint; rendered `ph:{:016x}`.
    pub plan_hash: Option<u64>,
}

/// A typed attribute value. Arrays are not needed by any event family yet.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    I64(i64),
    F64(f64),
    Bool(bool),
}

pub type Attributes = Vec<(String, AttrValue)>;

/// Span status: the `.ok` / `.error` suffix of the event taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Status {
    #[default]
    Unset = 0,
    Ok = 1,
    Error = 2,
}

/// OpenTelemetry severity numbers (1..=24); the named levels are the usual ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Severity(pub u8);

impl Severity {
    pub const TRACE: Self = Self(1);
    pub const DEBUG: Self = Self(5);
    pub const INFO: Self = Self(9);
    pub const WARN: Self = Self(13);
    pub const ERROR: Self = Self(17);
    pub const FATAL: Self = Self(21);
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub envelope: Envelope,
    /// Dot-scoped event name without the status suffix, e.g. `driver.query`.
    pub name: String,
    /// Emitting component / instrumentation, e.g. `ats-sqlite3`.
    pub component: String,
    pub end_ns: u64,
    pub status: Status,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub envelope: Envelope,
    /// The `evt` field of seed 000 §6, e.g. `policy.deny`.
    pub event: String,
    pub component: String,
    pub severity: Severity,
    /// Already-scrubbed free text; may be empty.
    pub body: String,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MetricKind {
    /// Monotonic sum.
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// Explicit-bucket histogram data: `counts.len() == bounds.len() + 1`,
/// bucket i covers `(bounds[i-1], bounds[i]]` as in OTLP.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramData {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub envelope: Envelope,
    /// e.g. `sqlx_driver_latency_ms`.
    pub name: String,
    pub unit: String,
    pub kind: MetricKind,
    /// Start of the aggregation interval (cumulative: process start).
    pub start_ns: u64,
    pub labels: Vec<(String, String)>,
    /// Counter / gauge value; for histograms the sum (kept for convenience).
    pub value: f64,
    pub histogram: Option<HistogramData>,
}

/// SLO class of seed 001 (L/B/A/S).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SloClass {
    L = 0,
    B = 1,
    A = 2,
    S = 3,
}

/// Learning artifact of seed 000 §7.1; the compact binary answer to §15 q1.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardRecord {
    pub envelope: Envelope,
    pub class: SloClass,
    pub latency_ms: f64,
    pub cpu_ms: f64,
    pub io_bytes: u64,
    pub rows: u64,
    pub success: bool,
    pub reward: f64,
    /// `context.engine`; dialect and region live in the envelope.
    pub engine: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Span(SpanRecord),
    Log(LogRecord),
    Metric(MetricPoint),
    Reward(RewardRecord),
}

impl Record {
    pub fn envelope(&self) -> &Envelope {
        match self {
            Record::Span(r) => &r.envelope,
            Record::Log(r) => &r.envelope,
            Record::Metric(r) => &r.envelope,
            Record::Reward(r) => &r.envelope,
        }
    }
}

/// Render helpers shared by every sink so ids look the same everywhere.
pub fn trace_id_hex(id: TraceId) -> String {
    format!("{id:032x}")
}
pub fn span_id_hex(id: SpanId) -> String {
    format!("{id:016x}")
}
pub fn air_id_string(h: u64) -> String {
    format!("air:Q-{h:016x}")
}
pub fn plan_hash_string(h: u64) -> String {
    format!("ph:{h:016x}")
}
