//! The `driver.*` span: what a database plugin reports per call, and how it
//! becomes a full span.
//!
//! On the application thread only the facts are written (a compact record of
//! kind `driver`, see the codec); the seed 000 §4 attributes and their
//! current OpenTelemetry twins are spelled out here, on the flusher thread,
//! when the record is decoded. Sinks therefore see an ordinary
//! [`SpanRecord`], while the hot path copies a handful of strings.

use super::model::{AttrValue, SpanRecord, Status};
use super::view::EnvelopeRef;

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

/// `db.system` (seed 000 §4) / `db.system.name` (OpenTelemetry) for an ATS
/// dialect name; unknown dialects are `other_sql`.
pub fn db_system(dialect: &str) -> &'static str {
    match dialect {
        "postgresql" => "postgresql",
        "mysql" => "mysql",
        "sqlite" => "sqlite",
        _ => "other_sql",
    }
}

/// The normalised statement of a driver call, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatementRef<'a> {
    /// Literal-free text.
    pub text: &'a str,
    /// `SELECT`, `INSERT`, ...; may be empty.
    pub operation: &'a str,
    /// First table named; may be empty.
    pub table: &'a str,
    /// Low-cardinality summary (`SELECT users`); may be empty.
    pub summary: &'a str,
}

/// One driver call as written on the application thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriverSpanRef<'a> {
    /// `ts_ns` is the start; `air_id` is the statement fingerprint.
    pub envelope: EnvelopeRef<'a>,
    pub end_ns: u64,
    pub op: DriverOp,
    /// Error class (e.g. `OperationalError`); `Some` marks the call failed.
    pub error_type: Option<&'a str>,
    /// The server's error code (SQLSTATE), `db.response.status_code`.
    pub status_code: Option<&'a str>,
    /// The statement's SLO class (`L`/`B`/`A`/`S`, seed 001 §7), `sqlx.class`.
    pub slo_class: Option<&'a str>,
    /// `None` for handshake/close or when no SQL was given.
    pub statement: Option<StatementRef<'a>>,
    /// The statement's id in [`crate::sql::interned`]: encoded instead of
    /// its strings (which must then be those of the interned statement).
    pub statement_id: Option<u32>,
    /// The id in [`crate::record::origin`] of the envelope's tenant, workspace,
    /// region and dialect and of `component` and `db_namespace`: encoded
    /// instead of those strings, which the encoder then does not read (the
    /// decoder fills them in from the origin).
    pub origin_id: Option<u32>,
    /// The driver metrics of this call are left to whoever decodes the
    /// record (see [`crate::record::codec::layout::F_DRIVER_METRICS_PENDING`]).
    pub metrics_pending: bool,
    pub component: &'a str,
    pub db_namespace: &'a str,
    pub peer_name: &'a str,
    pub peer_port: u16,
    /// Rows returned or affected; negative when unknown.
    pub rows: i64,
}

/// Fills `out` (reusing its allocations) with the full span of `d`.
/// The envelope must already be in `out.envelope`; only the span part is set.
pub fn expand_into(d: &DriverSpanRef<'_>, out: &mut SpanRecord) {
    set_string(&mut out.name, d.op.event_name());
    set_string(&mut out.component, d.component);
    out.end_ns = d.end_ns;
    out.status = if d.error_type.is_some() { Status::Error } else { Status::Ok };
    let mut attrs = AttrWriter { attrs: &mut out.attributes, len: 0 };
    let e = &d.envelope;
    let system = db_system(e.dialect);
    if !e.tenant.is_empty() {
        attrs.str("sqlx.tenant", e.tenant);
    }
    if !e.workspace.is_empty() {
        attrs.str("sqlx.workspace", e.workspace);
    }
    attrs.str("db.system", system);
    attrs.str("db.system.name", system);
    if let Some(s) = &d.statement {
        attrs.str("db.statement", s.text);
        attrs.str("db.query.text", s.text);
        if !s.operation.is_empty() {
            attrs.str("db.operation", s.operation);
            attrs.str("db.operation.name", s.operation);
        }
        if !s.table.is_empty() {
            attrs.str("db.collection.name", s.table);
        }
        if !s.summary.is_empty() {
            attrs.str("db.query.summary", s.summary);
        }
    }
    if !d.db_namespace.is_empty() {
        attrs.str("db.namespace", d.db_namespace);
    }
    if !d.peer_name.is_empty() {
        attrs.str("net.peer.name", d.peer_name);
        attrs.str("server.address", d.peer_name);
    }
    if d.peer_port != 0 {
        attrs.i64("net.peer.port", i64::from(d.peer_port));
        attrs.i64("server.port", i64::from(d.peer_port));
    }
    if d.rows >= 0 {
        attrs.i64("db.response.returned_rows", d.rows);
    }
    if let Some(class) = d.error_type {
        attrs.str("error.type", class);
    }
    if let Some(code) = d.status_code {
        attrs.str("db.response.status_code", code);
    }
    if let Some(class) = d.slo_class {
        attrs.str("sqlx.class", class);
    }
    if let Some(air) = e.air_id {
        let text = crate::sink::json::air_id_bytes(air);
        if let Ok(text) = std::str::from_utf8(&text) {
            attrs.str("db.sqlx.air_id", text);
        }
    }
    attrs.finish();
}

fn set_string(dst: &mut String, value: &str) {
    dst.clear();
    dst.push_str(value);
}

/// Overwrites an attribute vector in place, reusing its strings.
struct AttrWriter<'v> {
    attrs: &'v mut Vec<(String, AttrValue)>,
    len: usize,
}

impl AttrWriter<'_> {
    fn slot(&mut self, key: &str) -> &mut AttrValue {
        if self.len == self.attrs.len() {
            self.attrs.push((String::new(), AttrValue::Bool(false)));
        }
        let (k, v) = &mut self.attrs[self.len];
        self.len += 1;
        set_string(k, key);
        v
    }
    fn str(&mut self, key: &str, value: &str) {
        match self.slot(key) {
            AttrValue::Str(s) => set_string(s, value),
            other => *other = AttrValue::Str(value.to_owned()),
        }
    }
    fn i64(&mut self, key: &str, value: i64) {
        *self.slot(key) = AttrValue::I64(value);
    }
    fn finish(self) {
        self.attrs.truncate(self.len);
    }
}
