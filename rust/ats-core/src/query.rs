//! `driver.*` spans from raw statement text: the single native call a
//! database plugin makes per statement.
//!
//! The statement is normalised through the cache (lexed once per distinct
//! text), the driver metrics are updated and the call is encoded as a
//! compact driver record — all without allocating in steady state. The seed
//! 000 §4 attributes and their OpenTelemetry names are spelled out when the
//! flusher decodes it ([`crate::record::driver`]).

use std::sync::OnceLock;

use crate::metrics::{CounterHandle, HistogramHandle, LabelSet, MetricsError, MetricsRegistry};
use crate::record::codec::{encode_driver_sized, encoded_len_driver};
use crate::flusher::Pipeline;
use crate::ring::DropReason;
use crate::record::{AttrValue, DriverSpanRef, EnvelopeRef, SpanRecord, StatementRef, Status};
use crate::sql::{Dialect, Normalized};

pub use crate::record::DriverOp;

/// One observed driver call.
#[derive(Debug, Clone, Copy)]
pub struct DriverCall<'a> {
    pub op: DriverOp,
    pub dialect: Dialect,
    /// Normalised statement; `None` for handshake/close or when no SQL was given.
    pub statement: Option<&'a Normalized>,
    /// Its id in [`crate::sql::interned`], when it has one: the record then
    /// carries the id instead of the text.
    pub statement_id: Option<u32>,
    /// The id in [`crate::record::origin`] of (tenant, workspace, region,
    /// dialect, component, db_namespace), when the caller has one; those
    /// fields are then not encoded.
    pub origin_id: Option<u32>,
    /// The driver metrics are left to the flusher (which records them when it
    /// decodes the record) instead of [`DriverMetrics::observe`] here.
    pub metrics_pending: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Error class (e.g. `OperationalError`); `Some` marks the call failed.
    pub error_type: Option<&'a str>,
    /// The server's own error code (PostgreSQL / MySQL SQLSTATE) for a failed call.
    pub status_code: Option<&'a str>,
    /// SLO class chosen by the host's rules (`sqlx.class`); `None`: unclassified.
    pub slo_class: Option<&'a str>,
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

fn db_system(d: Dialect) -> &'static str {
    crate::record::driver::db_system(d.as_str())
}

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
        self.observe_parts(call.dialect, call.op, call.end_ns.saturating_sub(call.start_ns), call.error_type);
    }

    /// [`Self::observe`] for a call the flusher decoded from a driver record
    /// (one with [`DriverSpanRef::metrics_pending`]); other spans are ignored.
    pub fn observe_decoded(&self, span: &SpanRecord) {
        let Some(op) = DriverOp::ALL.into_iter().find(|op| op.event_name() == span.name) else { return };
        let Ok(dialect) = span.envelope.dialect.parse::<Dialect>() else { return };
        let error_type = match span.status {
            Status::Error => span.attributes.iter().find(|(k, _)| k == "error.type").and_then(|(_, v)| match v {
                AttrValue::Str(s) => Some(s.as_str()),
                _ => None,
            }),
            _ => None,
        };
        self.observe_parts(dialect, op, span.end_ns.saturating_sub(span.envelope.ts_ns), error_type);
    }

    fn observe_parts(&self, dialect: Dialect, op: DriverOp, elapsed_ns: u64, error_type: Option<&str>) {
        let elapsed_ns = elapsed_ns as f64;
        let di = Self::dialect_index(dialect);
        if let Some(cell) = self.latency_sets.get(di * OPS + op as usize) {
            let set = cell.get_or_init(|| self.latency.bind(&[("dialect", dialect.as_str()), ("op", op.label())]));
            self.latency.record_to(set, elapsed_ns / 1e6);
        }
        if let Some(cell) = self.duration_sets.get(di) {
            let set = cell.get_or_init(|| self.duration.bind(&[("db.system.name", db_system(dialect))]));
            self.duration.record_to(set, elapsed_ns / 1e9);
        }
        if let Some(class) = error_type {
            self.errors.add(&[("dialect", dialect.as_str()), ("class", class)], 1);
        }
    }
}

/// Pushes the span of `call` as a compact driver record (the decoder expands
/// it into the full span), encoded straight into a ring slot of its exact
/// length: no scratch buffer, no second copy.
pub fn push_driver_span(pipeline: &Pipeline, call: &DriverCall<'_>) -> Result<(), DropReason> {
    let span = driver_span(call);
    // The slot is exactly this long, so the encoder cannot fail (a record over the ring's
    // limit is refused by the ring before anything is written).
    let len = encoded_len_driver(&span);
    pipeline.push_with(len, |slot| {
        let _ = encode_driver_sized(&span, len, slot);
    })
}

fn driver_span<'a>(call: &DriverCall<'a>) -> DriverSpanRef<'a> {
    DriverSpanRef {
        envelope: EnvelopeRef {
            ts_ns: call.start_ns,
            tenant: call.tenant,
            workspace: call.workspace,
            region: call.region,
            dialect: call.dialect.as_str(),
            trace_id: call.trace_id,
            span_id: call.span_id,
            parent_span_id: call.parent_span_id,
            air_id: call.statement.map(|s| s.air_id),
            plan_hash: None,
        },
        end_ns: call.end_ns,
        op: call.op,
        error_type: call.error_type,
        status_code: call.status_code,
        slo_class: call.slo_class,
        statement_id: call.statement_id,
        origin_id: call.origin_id,
        metrics_pending: call.metrics_pending,
        statement: call.statement.map(|s| StatementRef {
            text: &s.text,
            operation: &s.operation,
            table: s.tables.first().map_or("", |t| t.as_str()),
            summary: &s.summary,
        }),
        component: call.component,
        db_namespace: call.db_namespace,
        peer_name: call.peer_name,
        peer_port: call.peer_port,
        rows: call.rows,
    }
}
