//! What an ATS record becomes in OTLP, independent of the wire format: span
//! name and kind, status, the `exception` event, and the attribute lists of
//! resources, spans and log records. The protobuf and JSON writers both walk
//! these decisions through [`AttrSink`], so the two formats cannot disagree.

use crate::record::{AttrRef, AttrValue, Envelope, LogRecord, SpanRecord, Status};
use crate::sink::json::{air_id_bytes, plan_hash_bytes};

use super::fields::span as kind;
use super::ResourceConfig;

/// The ATS event name of a span (`driver.query`), kept when the span name is
/// the OpenTelemetry one. `sqlx.*` is the seed 000 §4 namespace for ATS's own
/// attributes; no seed names this one.
pub const EVENT_ATTR: &str = "sqlx.event";
/// Span attribute that chooses the span kind (consumed, not exported).
pub const SPAN_KIND_ATTR: &str = "span.kind";
/// Log attribute carrying the ATS event, beside the `event_name` field for
/// receivers that predate it.
pub const LOG_EVENT_ATTR: &str = "event.name";
/// Name of the span event added to failed spans that carry exception attributes.
pub const EXCEPTION_EVENT: &str = "exception";

/// `telemetry.sdk.*` resource attributes.
pub const SDK_NAME: &str = "ats";
pub const SDK_LANGUAGE: &str = "python";
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Instrumentation scope of metric points (they carry no component).
pub const METRICS_SCOPE: &str = "ats";

/// Receives attributes in order; implemented by each wire format.
pub(crate) trait AttrSink {
    fn attr(&mut self, key: &str, value: AttrRef<'_>);
}

/// A span name that may be `{db.operation.name} {target}`, written without
/// building a temporary string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanName<'a> {
    One(&'a str),
    Pair(&'a str, &'a str),
}

/// `exception.type` / `exception.message` of a failed span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exception<'a> {
    pub ty: Option<&'a AttrValue>,
    pub message: Option<&'a AttrValue>,
}

/// Everything about a span that is decided rather than copied.
#[derive(Debug)]
pub(crate) struct SpanPlan<'a> {
    pub name: SpanName<'a>,
    pub kind: u64,
    /// 0 unset, 1 ok, 2 error (`Status.StatusCode`).
    pub status_code: u64,
    pub status_message: Option<&'a str>,
    pub exception: Option<Exception<'a>>,
    /// Index of the `span.kind` attribute that chose `kind` (not exported).
    kind_attr: Option<usize>,
    has_event: bool,
    has_air_id: bool,
    has_plan_hash: bool,
    has_system: bool,
}

/// The attributes a span's mapping looks at, found in one pass.
#[derive(Default)]
struct Known<'a> {
    summary: Option<&'a str>,
    operation: Option<&'a str>,
    collection: Option<&'a str>,
    namespace: Option<&'a str>,
    kind: Option<(usize, u64)>,
    error_type: Option<&'a str>,
    error_message: Option<&'a str>,
    exception_type: Option<&'a AttrValue>,
    exception_message: Option<&'a AttrValue>,
    has_event: bool,
    has_air_id: bool,
    has_plan_hash: bool,
    has_system: bool,
}

fn non_empty_str(v: &AttrValue) -> Option<&str> {
    match v {
        AttrValue::Str(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn parse_kind(v: &AttrValue) -> Option<u64> {
    let AttrValue::Str(s) = v else { return None };
    [
        ("internal", kind::KIND_INTERNAL),
        ("server", kind::KIND_SERVER),
        ("client", kind::KIND_CLIENT),
        ("producer", kind::KIND_PRODUCER),
        ("consumer", kind::KIND_CONSUMER),
    ]
    .into_iter()
    .find(|(name, _)| s.eq_ignore_ascii_case(name))
    .map(|(_, k)| k)
}

impl<'a> Known<'a> {
    fn scan(attrs: &'a [(String, AttrValue)]) -> Self {
        let mut k = Known::default();
        for (i, (key, v)) in attrs.iter().enumerate() {
            match key.as_str() {
                "db.query.summary" => k.summary = non_empty_str(v),
                "db.operation.name" => k.operation = non_empty_str(v),
                "db.collection.name" => k.collection = non_empty_str(v),
                "db.namespace" => k.namespace = non_empty_str(v),
                SPAN_KIND_ATTR => k.kind = parse_kind(v).map(|kind| (i, kind)),
                "error.type" => k.error_type = non_empty_str(v),
                "error.message" => k.error_message = non_empty_str(v),
                "exception.type" => k.exception_type = Some(v),
                "exception.message" => k.exception_message = Some(v),
                EVENT_ATTR => k.has_event = true,
                "db.sqlx.air_id" => k.has_air_id = true,
                "db.sqlx.plan_hash" => k.has_plan_hash = true,
                "db.system.name" => k.has_system = true,
                _ => {}
            }
        }
        k
    }
}

/// A span is valid OTLP only with a non-zero trace id and span id.
pub(crate) fn span_is_exportable(span: &SpanRecord) -> bool {
    span.envelope.trace_id != 0 && span.envelope.span_id != 0
}

impl<'a> SpanPlan<'a> {
    pub fn new(span: &'a SpanRecord) -> Self {
        let k = Known::scan(&span.attributes);
        let name = if span.name == "driver.query" {
            // OTel database span name: summary, else `{operation} {target}`,
            // else `{target}`; the ATS event name when none is known.
            let target = k.collection.or(k.namespace);
            match (k.summary, k.operation, target) {
                (Some(s), _, _) => SpanName::One(s),
                (None, Some(op), Some(t)) => SpanName::Pair(op, t),
                (None, Some(op), None) => SpanName::One(op),
                (None, None, Some(t)) => SpanName::One(t),
                (None, None, None) => SpanName::One(&span.name),
            }
        } else {
            SpanName::One(&span.name)
        };
        let default_kind = if span.name.starts_with("driver.") {
            kind::KIND_CLIENT
        } else {
            kind::KIND_INTERNAL
        };
        let (status_code, status_message, exception) = match span.status {
            Status::Unset => (0, None, None),
            Status::Ok => (1, None, None),
            Status::Error => {
                let message = k
                    .error_message
                    .or(k.exception_message.and_then(non_empty_str))
                    .or(k.error_type);
                let exception = (k.exception_type.is_some() || k.exception_message.is_some())
                    .then_some(Exception {
                        ty: k.exception_type,
                        message: k.exception_message,
                    });
                (2, message, exception)
            }
        };
        SpanPlan {
            name,
            kind: k.kind.map_or(default_kind, |(_, kind)| kind),
            status_code,
            status_message,
            exception,
            kind_attr: k.kind.map(|(i, _)| i),
            has_event: k.has_event,
            has_air_id: k.has_air_id,
            has_plan_hash: k.has_plan_hash,
            has_system: k.has_system,
        }
    }

    /// The record's attributes (less a consumed `span.kind`), then the
    /// envelope-derived ones the record does not already carry.
    pub fn attributes(&self, span: &SpanRecord, sink: &mut impl AttrSink) {
        for (i, (key, v)) in span.attributes.iter().enumerate() {
            if Some(i) != self.kind_attr {
                sink.attr(key, AttrRef::from(v));
            }
        }
        if !self.has_event {
            sink.attr(EVENT_ATTR, AttrRef::Str(&span.name));
        }
        envelope_attributes(&span.envelope, !self.has_air_id, !self.has_plan_hash, sink);
        if !self.has_system {
            if let Some(system) = db_system_name(&span.envelope.dialect) {
                sink.attr("db.system.name", AttrRef::Str(system));
            }
        }
    }
}

/// Attributes of the `exception` span event.
pub(crate) fn exception_attributes(e: &Exception<'_>, sink: &mut impl AttrSink) {
    if let Some(v) = e.ty {
        sink.attr("exception.type", AttrRef::from(v));
    }
    if let Some(v) = e.message {
        sink.attr("exception.message", AttrRef::from(v));
    }
}

fn envelope_attributes(env: &Envelope, air_id: bool, plan_hash: bool, sink: &mut impl AttrSink) {
    if let (true, Some(h)) = (air_id, env.air_id) {
        let text = air_id_bytes(h);
        sink.attr("db.sqlx.air_id", AttrRef::Str(ascii(&text)));
    }
    if let (true, Some(h)) = (plan_hash, env.plan_hash) {
        let text = plan_hash_bytes(h);
        sink.attr("db.sqlx.plan_hash", AttrRef::Str(ascii(&text)));
    }
}

fn ascii(bytes: &[u8]) -> &str {
    // The id renderers only produce ASCII hex and a fixed prefix.
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// `db.system.name` for an envelope dialect; `generic` is OTel's `other_sql`.
fn db_system_name(dialect: &str) -> Option<&str> {
    match dialect {
        "" => None,
        "generic" => Some("other_sql"),
        d => Some(d),
    }
}

/// Log attributes: the record's own, `event.name`, then `db.sqlx.air_id` /
/// `db.sqlx.plan_hash` from the envelope when absent (seed 000 §6 logs carry them).
pub(crate) fn log_attributes(log: &LogRecord, sink: &mut impl AttrSink) {
    let (mut has_event, mut has_air, mut has_plan) = (false, false, false);
    for (key, v) in &log.attributes {
        match key.as_str() {
            LOG_EVENT_ATTR => has_event = true,
            "db.sqlx.air_id" => has_air = true,
            "db.sqlx.plan_hash" => has_plan = true,
            _ => {}
        }
        sink.attr(key, AttrRef::from(v));
    }
    if !has_event && !log.event.is_empty() {
        sink.attr(LOG_EVENT_ATTR, AttrRef::Str(&log.event));
    }
    envelope_attributes(&log.envelope, !has_air, !has_plan, sink);
}

/// `SeverityNumber` short names of the OTel log data model (`INFO`, `WARN3`).
pub(crate) fn severity_text(n: u8) -> &'static str {
    const NAMES: [&str; 24] = [
        "TRACE", "TRACE2", "TRACE3", "TRACE4", "DEBUG", "DEBUG2", "DEBUG3", "DEBUG4", "INFO",
        "INFO2", "INFO3", "INFO4", "WARN", "WARN2", "WARN3", "WARN4", "ERROR", "ERROR2", "ERROR3",
        "ERROR4", "FATAL", "FATAL2", "FATAL3", "FATAL4",
    ];
    match n {
        1..=24 => NAMES[usize::from(n) - 1],
        _ => "",
    }
}

/// The (tenant, workspace, region) a record group shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ResourceKey<'a> {
    pub tenant: &'a str,
    pub workspace: &'a str,
    pub region: &'a str,
}

impl<'a> ResourceKey<'a> {
    pub fn of(env: &'a Envelope) -> Self {
        Self {
            tenant: &env.tenant,
            workspace: &env.workspace,
            region: &env.region,
        }
    }
}

const TENANT_ATTR: &str = "sqlx.tenant";
const WORKSPACE_ATTR: &str = "sqlx.workspace";
const REGION_ATTR: &str = "cloud.region";
const RESERVED: [&str; 4] = [
    "service.name",
    "telemetry.sdk.name",
    "telemetry.sdk.language",
    "telemetry.sdk.version",
];

/// Resource attributes: `service.name`, `telemetry.sdk.*`, the configured
/// attributes, then tenant / workspace / region from the envelope. A
/// configured key that one of ours also sets is dropped (ours win); an
/// envelope field that is empty leaves a configured value of the same key.
pub(crate) fn resource_attributes(
    cfg: &ResourceConfig,
    key: &ResourceKey<'_>,
    sink: &mut impl AttrSink,
) {
    let service = if cfg.service_name.is_empty() {
        "unknown_service"
    } else {
        &cfg.service_name
    };
    sink.attr("service.name", AttrRef::Str(service));
    sink.attr("telemetry.sdk.name", AttrRef::Str(SDK_NAME));
    sink.attr("telemetry.sdk.language", AttrRef::Str(SDK_LANGUAGE));
    sink.attr("telemetry.sdk.version", AttrRef::Str(SDK_VERSION));
    let envelope = [
        (TENANT_ATTR, key.tenant),
        (WORKSPACE_ATTR, key.workspace),
        (REGION_ATTR, key.region),
    ];
    for (k, v) in &cfg.attributes {
        let overridden = RESERVED.contains(&k.as_str())
            || envelope
                .iter()
                .any(|(ek, ev)| *ek == k.as_str() && !ev.is_empty());
        if !overridden {
            sink.attr(k, AttrRef::Str(v));
        }
    }
    for (k, v) in envelope {
        if !v.is_empty() {
            sink.attr(k, AttrRef::Str(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Envelope;

    #[derive(Default)]
    struct Collect(Vec<(String, String)>);
    impl AttrSink for Collect {
        fn attr(&mut self, key: &str, value: AttrRef<'_>) {
            let v = match value {
                AttrRef::Str(s) => s.to_string(),
                AttrRef::I64(i) => format!("i{i}"),
                AttrRef::F64(f) => format!("f{f}"),
                AttrRef::Bool(b) => format!("b{b}"),
            };
            self.0.push((key.to_string(), v));
        }
    }

    fn span(name: &str, attrs: &[(&str, AttrValue)], status: Status) -> SpanRecord {
        SpanRecord {
            envelope: Envelope {
                trace_id: 1,
                span_id: 2,
                ..Envelope::default()
            },
            name: name.into(),
            component: "c".into(),
            end_ns: 10,
            status,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn s(v: &str) -> AttrValue {
        AttrValue::Str(v.into())
    }

    #[test]
    fn driver_query_names_follow_otel_priority() {
        let cases: [(&[(&str, AttrValue)], SpanName<'_>); 6] = [
            (
                &[
                    ("db.query.summary", s("SELECT users")),
                    ("db.operation.name", s("SELECT")),
                ],
                SpanName::One("SELECT users"),
            ),
            (
                &[
                    ("db.operation.name", s("SELECT")),
                    ("db.collection.name", s("users")),
                ],
                SpanName::Pair("SELECT", "users"),
            ),
            (
                &[
                    ("db.operation.name", s("SELECT")),
                    ("db.namespace", s("main")),
                ],
                SpanName::Pair("SELECT", "main"),
            ),
            (
                &[("db.operation.name", s("SELECT"))],
                SpanName::One("SELECT"),
            ),
            (
                &[("db.collection.name", s("users"))],
                SpanName::One("users"),
            ),
            (
                &[("db.query.summary", s(""))],
                SpanName::One("driver.query"),
            ),
        ];
        for (attrs, want) in cases {
            let sp = span("driver.query", attrs, Status::Ok);
            assert_eq!(SpanPlan::new(&sp).name, want, "{attrs:?}");
        }
        let other = span(
            "driver.prepare",
            &[("db.query.summary", s("SELECT users"))],
            Status::Ok,
        );
        assert_eq!(SpanPlan::new(&other).name, SpanName::One("driver.prepare"));
    }

    #[test]
    fn kind_from_attribute_or_family() {
        assert_eq!(
            SpanPlan::new(&span("driver.query", &[], Status::Ok)).kind,
            kind::KIND_CLIENT
        );
        assert_eq!(
            SpanPlan::new(&span("kernel.exec", &[], Status::Ok)).kind,
            kind::KIND_INTERNAL
        );
        let sp = span(
            "kernel.exec",
            &[("a", s("1")), (SPAN_KIND_ATTR, s("Server"))],
            Status::Ok,
        );
        let plan = SpanPlan::new(&sp);
        assert_eq!(plan.kind, kind::KIND_SERVER);
        let mut c = Collect::default();
        plan.attributes(&sp, &mut c);
        assert_eq!(
            c.0,
            vec![
                ("a".into(), "1".into()),
                (EVENT_ATTR.into(), "kernel.exec".into())
            ]
        );
        // An unknown value is kept as an attribute and does not choose the kind.
        let sp = span(
            "driver.query",
            &[(SPAN_KIND_ATTR, s("sideways"))],
            Status::Ok,
        );
        let plan = SpanPlan::new(&sp);
        assert_eq!(plan.kind, kind::KIND_CLIENT);
        let mut c = Collect::default();
        plan.attributes(&sp, &mut c);
        assert_eq!(c.0[0], (SPAN_KIND_ATTR.into(), "sideways".into()));
    }

    #[test]
    fn status_message_priority_and_exception_event() {
        let sp = span("x", &[("error.type", s("ValueError"))], Status::Error);
        let plan = SpanPlan::new(&sp);
        assert_eq!(
            (plan.status_code, plan.status_message),
            (2, Some("ValueError"))
        );
        assert!(plan.exception.is_none());
        let sp = span(
            "x",
            &[
                ("error.type", s("ValueError")),
                ("exception.type", s("builtins.ValueError")),
                ("exception.message", s("bad")),
            ],
            Status::Error,
        );
        let plan = SpanPlan::new(&sp);
        assert_eq!(plan.status_message, Some("bad"));
        let e = plan.exception.expect("exception event");
        assert_eq!(
            (e.ty, e.message),
            (Some(&s("builtins.ValueError")), Some(&s("bad")))
        );
        let sp = span(
            "x",
            &[("error.message", s("m")), ("exception.message", s("bad"))],
            Status::Error,
        );
        assert_eq!(SpanPlan::new(&sp).status_message, Some("m"));
        // Exception attributes on a span that did not fail make no event.
        let sp = span("x", &[("exception.type", s("E"))], Status::Ok);
        let plan = SpanPlan::new(&sp);
        assert_eq!(
            (
                plan.status_code,
                plan.exception.is_none(),
                plan.status_message
            ),
            (1, true, None)
        );
    }

    #[test]
    fn envelope_attributes_added_only_when_absent() {
        let mut sp = span(
            "driver.query",
            &[("db.sqlx.air_id", s("air:Q-given"))],
            Status::Ok,
        );
        sp.envelope.air_id = Some(0xab);
        sp.envelope.plan_hash = Some(0xcd);
        sp.envelope.dialect = "generic".into();
        let mut c = Collect::default();
        SpanPlan::new(&sp).attributes(&sp, &mut c);
        assert_eq!(
            c.0,
            vec![
                ("db.sqlx.air_id".into(), "air:Q-given".into()),
                (EVENT_ATTR.into(), "driver.query".into()),
                ("db.sqlx.plan_hash".into(), "ph:00000000000000cd".into()),
                ("db.system.name".into(), "other_sql".into()),
            ]
        );
    }

    #[test]
    fn resource_attributes_order_and_overrides() {
        let cfg = ResourceConfig {
            service_name: "svc".into(),
            attributes: vec![
                ("deployment.environment".into(), "prod".into()),
                ("service.name".into(), "ignored".into()),
                ("cloud.region".into(), "configured".into()),
                ("sqlx.tenant".into(), "configured".into()),
            ],
        };
        let key = ResourceKey {
            tenant: "acme",
            workspace: "",
            region: "",
        };
        let mut c = Collect::default();
        resource_attributes(&cfg, &key, &mut c);
        let got: Vec<(&str, &str)> = c.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("service.name", "svc"),
                ("telemetry.sdk.name", "ats"),
                ("telemetry.sdk.language", "python"),
                ("telemetry.sdk.version", SDK_VERSION),
                ("deployment.environment", "prod"),
                ("cloud.region", "configured"),
                ("sqlx.tenant", "acme"),
            ]
        );
    }

    #[test]
    fn severity_names() {
        assert_eq!(severity_text(9), "INFO");
        assert_eq!(severity_text(15), "WARN3");
        assert_eq!(severity_text(24), "FATAL4");
        assert_eq!(severity_text(0), "");
        assert_eq!(severity_text(25), "");
    }
}
