//! Borrowed views of records, so producers can encode straight from the data
//! they already hold (Python strings, cached statement text) without building
//! an owned [`Record`](super::Record) first.

use super::model::{
    AttrValue, Envelope, LogRecord, RewardRecord, Severity, SloClass, SpanId, SpanRecord, Status,
    TraceId,
};

/// Borrowed attribute value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrRef<'a> {
    Str(&'a str),
    I64(i64),
    F64(f64),
    Bool(bool),
}

impl<'a> From<&'a AttrValue> for AttrRef<'a> {
    fn from(v: &'a AttrValue) -> Self {
        match v {
            AttrValue::Str(s) => AttrRef::Str(s),
            AttrValue::I64(i) => AttrRef::I64(*i),
            AttrValue::F64(f) => AttrRef::F64(*f),
            AttrValue::Bool(b) => AttrRef::Bool(*b),
        }
    }
}

impl AttrRef<'_> {
    pub fn to_owned_value(&self) -> AttrValue {
        match *self {
            AttrRef::Str(s) => AttrValue::Str(s.to_owned()),
            AttrRef::I64(i) => AttrValue::I64(i),
            AttrRef::F64(f) => AttrValue::F64(f),
            AttrRef::Bool(b) => AttrValue::Bool(b),
        }
    }
}

/// Borrowed [`Envelope`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EnvelopeRef<'a> {
    pub ts_ns: u64,
    pub tenant: &'a str,
    pub workspace: &'a str,
    pub region: &'a str,
    pub dialect: &'a str,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: SpanId,
    pub air_id: Option<u64>,
    pub plan_hash: Option<u64>,
}

impl<'a> From<&'a Envelope> for EnvelopeRef<'a> {
    fn from(e: &'a Envelope) -> Self {
        EnvelopeRef {
            ts_ns: e.ts_ns,
            tenant: &e.tenant,
            workspace: &e.workspace,
            region: &e.region,
            dialect: &e.dialect,
            trace_id: e.trace_id,
            span_id: e.span_id,
            parent_span_id: e.parent_span_id,
            air_id: e.air_id,
            plan_hash: e.plan_hash,
        }
    }
}

impl EnvelopeRef<'_> {
    pub fn to_owned_envelope(&self) -> Envelope {
        Envelope {
            ts_ns: self.ts_ns,
            tenant: self.tenant.to_owned(),
            workspace: self.workspace.to_owned(),
            region: self.region.to_owned(),
            dialect: self.dialect.to_owned(),
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            air_id: self.air_id,
            plan_hash: self.plan_hash,
        }
    }
}

/// Borrowed [`SpanRecord`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanRef<'a> {
    pub envelope: EnvelopeRef<'a>,
    pub name: &'a str,
    pub component: &'a str,
    pub end_ns: u64,
    pub status: Status,
    pub attributes: &'a [(&'a str, AttrRef<'a>)],
}

impl SpanRef<'_> {
    pub fn to_owned_record(&self) -> SpanRecord {
        SpanRecord {
            envelope: self.envelope.to_owned_envelope(),
            name: self.name.to_owned(),
            component: self.component.to_owned(),
            end_ns: self.end_ns,
            status: self.status,
            attributes: owned_attrs(self.attributes),
        }
    }
}

/// Borrowed [`LogRecord`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRef<'a> {
    pub envelope: EnvelopeRef<'a>,
    pub event: &'a str,
    pub component: &'a str,
    pub severity: Severity,
    pub body: &'a str,
    pub attributes: &'a [(&'a str, AttrRef<'a>)],
}

impl LogRef<'_> {
    pub fn to_owned_record(&self) -> LogRecord {
        LogRecord {
            envelope: self.envelope.to_owned_envelope(),
            event: self.event.to_owned(),
            component: self.component.to_owned(),
            severity: self.severity,
            body: self.body.to_owned(),
            attributes: owned_attrs(self.attributes),
        }
    }
}

/// Borrowed [`RewardRecord`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardRef<'a> {
    pub envelope: EnvelopeRef<'a>,
    pub class: SloClass,
    pub latency_ms: f64,
    pub cpu_ms: f64,
    pub io_bytes: u64,
    pub rows: u64,
    pub success: bool,
    pub reward: f64,
    pub engine: &'a str,
}

impl<'a> From<&'a RewardRecord> for RewardRef<'a> {
    fn from(r: &'a RewardRecord) -> Self {
        RewardRef {
            envelope: (&r.envelope).into(),
            class: r.class,
            latency_ms: r.latency_ms,
            cpu_ms: r.cpu_ms,
            io_bytes: r.io_bytes,
            rows: r.rows,
            success: r.success,
            reward: r.reward,
            engine: &r.engine,
        }
    }
}

impl RewardRef<'_> {
    pub fn to_owned_record(&self) -> RewardRecord {
        RewardRecord {
            envelope: self.envelope.to_owned_envelope(),
            class: self.class,
            latency_ms: self.latency_ms,
            cpu_ms: self.cpu_ms,
            io_bytes: self.io_bytes,
            rows: self.rows,
            success: self.success,
            reward: self.reward,
            engine: self.engine.to_owned(),
        }
    }
}

fn owned_attrs(attrs: &[(&str, AttrRef<'_>)]) -> Vec<(String, AttrValue)> {
    attrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_owned_value()))
        .collect()
}

/// A borrowed record of any kind. Metric points are produced on the flusher
/// side from owned aggregates, so they are borrowed whole.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecordRef<'a> {
    Span(SpanRef<'a>),
    Log(LogRef<'a>),
    Metric(&'a super::model::MetricPoint),
    Reward(RewardRef<'a>),
}
