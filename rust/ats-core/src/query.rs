//! `driver.*` spans from raw statement text: the single native call a
//! database plugin makes per statement.
//!
//! The statement is normalised through the cache (lexed once per distinct
//! text), every seed 000 §4 attribute and its current OpenTelemetry name are
//! set, the driver metrics are updated and the span is encoded — all without
//! allocating in steady state.

use std::sync::OnceLock;

use crate::metrics::{CounterHandle, HistogramHandle, LabelSet, MetricsError, MetricsRegistry};
use crate::record::codec::{encode_span_to_vec, EncodeError};
use crate::record::{AttrRef, EnvelopeRef, SpanRef, Status};
use crate::sql::{Dialect, Normalized};

/// Driver operations of the seed 000 taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DriverOp {
    Handshake = 0,
    Query = 1,
    Prepare = 2,
    Close = 3,
}

impl DriverOp {
    pub const ALL: [DriverOp; 4] = [DriverOp::Handshake, DriverOp::Query, DriverOp::Prepare, DriverOp::Close];

    pub fn from_code(code: u8) -> Option<DriverOp> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Event name (without the status suffix).
    pub fn event_name(self) -> &'static str {
        match self {
            DriverOp::Handshake => "driver.handshake",
            DriverOp::Query => "driver.query",
            DriverOp::Prepare => "driver.prepare",
            DriverOp::Close => "driver.close",
        }
    }

    /// The `op` label of `sqlx_driver_latency_ms`.
    pub fn label(self) -> &'static str {
        &self.event_name()["driver.".len()..]
    }
}

/// One observed driver call.
#[derive(Debug, Clone, Copy)]
pub struct DriverCall<'a> {
    pub op: DriverOp,
    pub dialect: Dialect,
    /// Normalised statement; `None` for handshake/close or when no SQL was given.
    pub statement: Option<&'a Normalized>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Error class (e.g. `OperationalError`); `Some` marks the call failed.
    pub error_type: Option<&'a str>,
    /// The server's own error code (PostgreSQL / MySQL SQLSTATE) for a failed call.
    pub status_code: Option<&'a str>,
    pub trace_id: u128,
    pub span_id: u64,
    pub parent_span_id: u64,
    pub component: &'a str,
    pub peer_name: &'a str,
    pub peer_port: u16,
    pub db_namespace: &'a str,
    /// Rows returned or affected; negative when unknown.
    pub rows: i64,
    pub tenant: &'a str,
    pub workspace: &'a str,
    pub region: &'a str,
}

/// `db.system` values (seed 000 §4) / `db.system.name` (OpenTelemetry) per dialect.
fn db_system(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgresql => "postgresql",
        Dialect::Mysql => "mysql",
        Dialect::Sqlite => "sqlite",
        Dialect::Generic => "other_sql",
    }
}

const MAX_ATTRS: usize = 24;

const DIALECTS: usize = Dialect::ALL.len();
const OPS: usize = DriverOp::ALL.len();

/// Metric handles whose label sets are bound on first use (so only series
/// that saw traffic are exported); later recordings are a few atomic ops.
pub struct DriverMetrics {
    latency: HistogramHandle,
    duration: HistogramHandle,
    errors: CounterHandle,
    /// `sqlx_driver_latency_ms{dialect, op}`, indexed dialect * OPS + op.
    latency_sets: [OnceLock<LabelSet>; DIALECTS * OPS],
    /// `db.client.operation.duration{db.system.name}` per dialect.
    duration_sets: [OnceLock<LabelSet>; DIALECTS],
}

impl DriverMetrics {
    pub fn new(registry: &MetricsRegistry) -> Result<Self, MetricsError> {
        let latency = registry.histogram("sqlx_driver_latency_ms", "ms")?;
        let duration = registry.histogram("db.client.operation.duration", "s")?;
        let errors = registry.counter("sqlx_driver_errors_total", "1")?;
        Ok(Self {
            latency,
            duration,
            errors,
            latency_sets: std::array::from_fn(|_| OnceLock::new()),
            duration_sets: std::array::from_fn(|_| OnceLock::new()),
        })
    }

    fn dialect_index(d: Dialect) -> usize {
        Dialect::ALL.iter().position(|x| *x == d).unwrap_or(0)
    }

    pub fn observe(&self, call: &DriverCall<'_>) {
        let elapsed_ns = call.end_ns.saturating_sub(call.start_ns) as f64;
        let di = Self::dialect_index(call.dialect);
        if let Some(cell) = self.latency_sets.get(di * OPS + call.op as usize) {
            let set = cell.get_or_init(|| self.latency.bind(&[("dialect", call.dialect.as_str()), ("op", call.op.label())]));
            self.latency.record_to(set, elapsed_ns / 1e6);
        }
        if let Some(cell) = self.duration_sets.get(di) {
            let set = cell.get_or_init(|| self.duration.bind(&[("db.system.name", db_system(call.dialect))]));
            self.duration.record_to(set, elapsed_ns / 1e9);
        }
        if let Some(class) = call.error_type {
            self.errors.add(&[("dialect", call.dialect.as_str()), ("class", class)], 1);
        }
    }
}

/// Fixed-capacity attribute list on the stack.
struct AttrBuf<'a> {
    items: [(&'a str, AttrRef<'a>); MAX_ATTRS],
    len: usize,
}

impl<'a> AttrBuf<'a> {
    fn new() -> Self {
        Self { items: [("", AttrRef::Bool(false)); MAX_ATTRS], len: 0 }
    }
    fn push(&mut self, key: &'a str, value: AttrRef<'a>) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (key, value);
            self.len += 1;
        }
    }
    fn as_slice(&self) -> &[(&'a str, AttrRef<'a>)] {
        &self.items[..self.len]
    }
}

/// Encodes the span of `call` (appending to `out`).
pub fn encode_driver_span(call: &DriverCall<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    let system = db_system(call.dialect);
    let air_id = call.statement.map(|s| s.air_id);
    let air_id_text = air_id.map(crate::sink::json::air_id_bytes);
    let mut buf = AttrBuf::new();
    let mut put = |key: &'static str, value| buf.push(key, value);
    if !call.tenant.is_empty() {
        put("sqlx.tenant", AttrRef::Str(call.tenant));
    }
    if !call.workspace.is_empty() {
        put("sqlx.workspace", AttrRef::Str(call.workspace));
    }
    put("db.system", AttrRef::Str(system));
    put("db.system.name", AttrRef::Str(system));
    if let Some(s) = call.statement {
        put("db.statement", AttrRef::Str(&s.text));
        put("db.query.text", AttrRef::Str(&s.text));
        if !s.operation.is_empty() {
            put("db.operation", AttrRef::Str(&s.operation));
            put("db.operation.name", AttrRef::Str(&s.operation));
        }
        if let Some(first) = s.tables.first() {
            put("db.collection.name", AttrRef::Str(first));
        }
        if !s.summary.is_empty() {
            put("db.query.summary", AttrRef::Str(&s.summary));
        }
    }
    if !call.db_namespace.is_empty() {
        put("db.namespace", AttrRef::Str(call.db_namespace));
    }
    if !call.peer_name.is_empty() {
        put("net.peer.name", AttrRef::Str(call.peer_name));
        put("server.address", AttrRef::Str(call.peer_name));
    }
    if call.peer_port != 0 {
        put("net.peer.port", AttrRef::I64(i64::from(call.peer_port)));
        put("server.port", AttrRef::I64(i64::from(call.peer_port)));
    }
    if call.rows >= 0 {
        put("db.response.returned_rows", AttrRef::I64(call.rows));
    }
    if let Some(class) = call.error_type {
        put("error.type", AttrRef::Str(class));
    }
    if let Some(code) = call.status_code {
        put("db.response.status_code", AttrRef::Str(code));
    }
    if let Some(text) = air_id_text.as_ref().and_then(|b| std::str::from_utf8(b).ok()) {
        put("db.sqlx.air_id", AttrRef::Str(text));
    }
    let span = SpanRef {
        envelope: EnvelopeRef {
            ts_ns: call.start_ns,
            tenant: call.tenant,
            workspace: call.workspace,
            region: call.region,
            dialect: call.dialect.as_str(),
            trace_id: call.trace_id,
            span_id: call.span_id,
            parent_span_id: call.parent_span_id,
            air_id,
            plan_hash: None,
        },
        name: call.op.event_name(),
        component: call.component,
        end_ns: call.end_ns,
        status: if call.error_type.is_some() { Status::Error } else { Status::Ok },
        attributes: buf.as_slice(),
    };
    encode_span_to_vec(&span, out)
}
