//! OTLP/JSON: the protobuf messages in the JSON mapping OTLP defines, which
//! differs from plain proto3 JSON: keys are lowerCamelCase, trace and span ids
//! are lowercase hex (not base64), enums are integers, 64-bit integers are
//! decimal strings, and fields at their default value are left out.
//! Non-finite doubles use the proto3 spellings `"NaN"`, `"Infinity"`, `"-Infinity"`.

use crate::record::{AttrRef, LogRecord, MetricKind, SpanRecord};
use crate::sink::json::{
    write_f64, write_i64, write_span_id, write_str, write_trace_id, write_u64,
};

use super::group::ResourceGroup;
use super::mapping::{
    exception_attributes, log_attributes, resource_attributes, severity_text, AttrSink,
    ResourceKey, SpanName, SpanPlan, EXCEPTION_EVENT, METRICS_SCOPE, SDK_VERSION,
};
use super::points::{Point, Temporality};
use super::proto::temporality_value;
use super::{LogGroups, MetricGroup, MetricGroups, ResourceConfig, SpanGroups};

/// A JSON object being written: tracks whether a comma is due.
struct Obj<'s> {
    out: &'s mut String,
    first: bool,
}

impl<'s> Obj<'s> {
    fn open(out: &'s mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    /// Writes `"name":` and returns the buffer for the value. Names are
    /// the fixed OTLP field names, which need no escaping.
    fn key(&mut self, name: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
        self.out
    }

    fn str(&mut self, name: &str, v: &str) {
        write_str(self.key(name), v);
    }

    fn str_nz(&mut self, name: &str, v: &str) {
        if !v.is_empty() {
            self.str(name, v);
        }
    }

    /// A 64-bit integer field: a decimal string, left out when zero.
    fn u64_nz(&mut self, name: &str, v: u64) {
        if v != 0 {
            let out = self.key(name);
            out.push('"');
            write_u64(out, v);
            out.push('"');
        }
    }

    /// An enum or 32-bit integer: a JSON number, left out when zero.
    fn int_nz(&mut self, name: &str, v: u64) {
        if v != 0 {
            write_u64(self.key(name), v);
        }
    }

    fn double(&mut self, name: &str, v: f64) {
        write_double(self.key(name), v);
    }

    /// Starts an array field; `close_array` ends it.
    fn array(&mut self, name: &str) -> &mut String {
        let out = self.key(name);
        out.push('[');
        out
    }

    fn close(self) {
        self.out.push('}');
    }
}

fn write_double(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        write_f64(out, v);
    }
}

fn write_any_value(out: &mut String, v: AttrRef<'_>) {
    let mut o = Obj::open(out);
    match v {
        AttrRef::Str(s) => o.str("stringValue", s),
        AttrRef::Bool(b) => o
            .key("boolValue")
            .push_str(if b { "true" } else { "false" }),
        AttrRef::I64(i) => {
            let out = o.key("intValue");
            out.push('"');
            write_i64(out, i);
            out.push('"');
        }
        AttrRef::F64(f) => o.double("doubleValue", f),
    }
    o.close();
}

/// Writes `"name":[{"key":…,"value":…},…]` into an object, only if any
/// attribute comes (an empty repeated field is left out).
struct JsonAttrs<'o, 's> {
    obj: &'o mut Obj<'s>,
    name: &'static str,
    count: usize,
}

impl<'o, 's> JsonAttrs<'o, 's> {
    fn new(obj: &'o mut Obj<'s>, name: &'static str) -> Self {
        JsonAttrs {
            obj,
            name,
            count: 0,
        }
    }

    fn finish(self) {
        if self.count > 0 {
            self.obj.out.push(']');
        }
    }
}

impl AttrSink for JsonAttrs<'_, '_> {
    fn attr(&mut self, key: &str, value: AttrRef<'_>) {
        let out = if self.count == 0 {
            self.obj.array(self.name)
        } else {
            self.obj.out.push(',');
            &mut *self.obj.out
        };
        self.count += 1;
        let mut kv = Obj::open(out);
        kv.str("key", key);
        write_any_value(kv.key("value"), value);
        kv.close();
    }
}

fn attrs(obj: &mut Obj<'_>, name: &'static str, f: impl FnOnce(&mut JsonAttrs<'_, '_>)) {
    let mut sink = JsonAttrs::new(obj, name);
    f(&mut sink);
    sink.finish();
}

/// Writes `{"resource":{…},"<scopes>":[` and returns the open resource object.
fn open_resource<'s>(
    out: &'s mut String,
    cfg: &ResourceConfig,
    key: &ResourceKey<'_>,
    scopes: &str,
) -> Obj<'s> {
    let mut o = Obj::open(out);
    let mut r = Obj::open(o.key("resource"));
    attrs(&mut r, "attributes", |s| resource_attributes(cfg, key, s));
    r.close();
    o.array(scopes);
    o
}

fn close_resource(o: Obj<'_>) {
    o.out.push(']');
    o.close();
}

/// Writes `{"scope":{…},"<items>":[`; the caller writes items and closes.
fn open_scope<'s>(out: &'s mut String, name: &str, items: &str) -> Obj<'s> {
    let mut o = Obj::open(out);
    let mut s = Obj::open(o.key("scope"));
    s.str_nz("name", name);
    s.str_nz("version", SDK_VERSION);
    s.close();
    o.array(items);
    o
}

/// Runs `item` for each element, separating them with commas.
fn each<T>(out: &mut String, items: &[T], mut item: impl FnMut(&mut String, &T)) {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        item(out, x);
    }
}

/// Field names of the three nesting levels of one signal's request.
struct Frame {
    top: &'static str,
    scopes: &'static str,
    items: &'static str,
}

const TRACES: Frame = Frame {
    top: "resourceSpans",
    scopes: "scopeSpans",
    items: "spans",
};
const LOGS: Frame = Frame {
    top: "resourceLogs",
    scopes: "scopeLogs",
    items: "logRecords",
};
const METRICS: Frame = Frame {
    top: "resourceMetrics",
    scopes: "scopeMetrics",
    items: "metrics",
};

/// One resource: its key and its inner groups (scope key, items).
type Section<'a, 'g, K, T> = (ResourceKey<'a>, Vec<(K, &'g [T])>);

/// The common `{"resourceX":[ {resource, scopeX:[ {scope, items:[…]} ]} ]}` frame.
fn document<K, T>(
    out: &mut String,
    frame: &Frame,
    cfg: &ResourceConfig,
    groups: &[Section<'_, '_, K, T>],
    scope_name: impl Fn(&K) -> &str,
    mut item: impl FnMut(&mut String, &T),
) {
    let mut doc = Obj::open(out);
    let arr = doc.array(frame.top);
    each(arr, groups, |out, (key, inner)| {
        let r = open_resource(out, cfg, key, frame.scopes);
        each(r.out, inner, |out, (k, xs)| {
            let s = open_scope(out, scope_name(k), frame.items);
            each(s.out, xs, &mut item);
            close_resource(s);
        });
        close_resource(r);
    });
    arr.push(']');
    doc.close();
}

fn write_span(out: &mut String, s: &SpanRecord) {
    let plan = SpanPlan::new(s);
    let env = &s.envelope;
    let mut o = Obj::open(out);
    write_trace_id(o.key("traceId"), env.trace_id);
    write_span_id(o.key("spanId"), env.span_id);
    if env.parent_span_id != 0 {
        write_span_id(o.key("parentSpanId"), env.parent_span_id);
    }
    match plan.name {
        SpanName::One(n) => o.str_nz("name", n),
        SpanName::Pair(a, b) => {
            let out = o.key("name");
            out.push('"');
            crate::sink::json::write_str_body(out, a);
            out.push(' ');
            crate::sink::json::write_str_body(out, b);
            out.push('"');
        }
    }
    o.int_nz("kind", plan.kind);
    o.u64_nz("startTimeUnixNano", env.ts_ns);
    o.u64_nz("endTimeUnixNano", s.end_ns);
    attrs(&mut o, "attributes", |sink| plan.attributes(s, sink));
    if let Some(e) = &plan.exception {
        let out = o.array("events");
        let mut ev = Obj::open(out);
        ev.u64_nz("timeUnixNano", s.end_ns);
        ev.str("name", EXCEPTION_EVENT);
        attrs(&mut ev, "attributes", |sink| exception_attributes(e, sink));
        ev.close();
        o.out.push(']');
    }
    if plan.status_code != 0 {
        let mut st = Obj::open(o.key("status"));
        st.str_nz("message", plan.status_message.unwrap_or_default());
        st.int_nz("code", plan.status_code);
        st.close();
    }
    o.close();
}

fn write_log(out: &mut String, l: &LogRecord) {
    let env = &l.envelope;
    let mut o = Obj::open(out);
    o.u64_nz("timeUnixNano", env.ts_ns);
    o.u64_nz("observedTimeUnixNano", env.ts_ns);
    o.int_nz("severityNumber", u64::from(l.severity.0));
    o.str_nz("severityText", severity_text(l.severity.0));
    if !l.body.is_empty() {
        write_any_value(o.key("body"), AttrRef::Str(&l.body));
    }
    attrs(&mut o, "attributes", |sink| log_attributes(l, sink));
    if env.trace_id != 0 {
        write_trace_id(o.key("traceId"), env.trace_id);
    }
    if env.span_id != 0 {
        write_span_id(o.key("spanId"), env.span_id);
    }
    o.str_nz("eventName", &l.event);
    o.close();
}

fn sections<'a, 'g, T, K: Copy>(
    groups: &'g [ResourceGroup<'a, T, K>],
) -> Vec<Section<'a, 'g, K, &'a T>> {
    groups
        .iter()
        .map(|g| {
            (
                g.key,
                g.inner.iter().map(|(k, v)| (*k, v.as_slice())).collect(),
            )
        })
        .collect()
}

/// `ExportTraceServiceRequest` as OTLP/JSON.
pub(crate) fn traces(cfg: &ResourceConfig, groups: &SpanGroups<'_>, out: &mut String) {
    document(
        out,
        &TRACES,
        cfg,
        &sections(groups),
        |k| k,
        |out, s| write_span(out, s),
    );
}

/// `ExportLogsServiceRequest` as OTLP/JSON.
pub(crate) fn logs(cfg: &ResourceConfig, groups: &LogGroups<'_>, out: &mut String) {
    document(
        out,
        &LOGS,
        cfg,
        &sections(groups),
        |k| k,
        |out, l| write_log(out, l),
    );
}

fn write_labels(o: &mut Obj<'_>, name: &'static str, labels: &[(String, String)]) {
    attrs(o, name, |sink| {
        for (k, v) in labels {
            sink.attr(k, AttrRef::Str(v));
        }
    });
}

fn write_number_point(out: &mut String, p: &Point<'_>) {
    let mut o = Obj::open(out);
    write_labels(&mut o, "attributes", &p.rec.labels);
    o.u64_nz("startTimeUnixNano", p.start_ns);
    o.u64_nz("timeUnixNano", p.rec.envelope.ts_ns);
    o.double("asDouble", p.value);
    o.close();
}

fn write_histogram_point(out: &mut String, p: &Point<'_>) {
    let mut o = Obj::open(out);
    write_labels(&mut o, "attributes", &p.rec.labels);
    o.u64_nz("startTimeUnixNano", p.start_ns);
    o.u64_nz("timeUnixNano", p.rec.envelope.ts_ns);
    if let Some(h) = &p.hist {
        // Histogram counts go out as JSON numbers, not the canonical decimal
        // strings: OTLP/JSON receivers must accept both, and some collectors
        // (rotel 0.0.1-alpha10) silently drop a histogram whose counts are
        // strings. Counts stay far below 2^53, so no precision is lost.
        o.int_nz("count", h.count);
        o.double("sum", h.sum);
        if !h.counts.is_empty() {
            let arr = o.array("bucketCounts");
            each(arr, &h.counts, |out, c| write_u64(out, *c));
            arr.push(']');
        }
        if !h.bounds.is_empty() {
            let arr = o.array("explicitBounds");
            each(arr, h.bounds, |out, b| write_double(out, *b));
            arr.push(']');
        }
        if let Some(min) = h.min {
            o.double("min", min);
        }
        if let Some(max) = h.max {
            o.double("max", max);
        }
    }
    o.close();
}

/// `ExportMetricsServiceRequest` as OTLP/JSON.
pub(crate) fn metrics(
    cfg: &ResourceConfig,
    groups: &MetricGroups<'_>,
    temporality: Temporality,
    out: &mut String,
) {
    let t = temporality_value(temporality);
    // Metrics have one scope per resource; reuse the frame with that shape.
    let g: Vec<_> = groups
        .iter()
        .map(|(k, ms)| (*k, vec![((), ms.as_slice())]))
        .collect();
    document(
        out,
        &METRICS,
        cfg,
        &g,
        |_| METRICS_SCOPE,
        |out, mg: &MetricGroup<'_>| {
            let mut m = Obj::open(out);
            m.str_nz("name", mg.name);
            m.str_nz("unit", mg.unit);
            let (field, point): (&str, fn(&mut String, &Point<'_>)) = match mg.kind {
                MetricKind::Gauge => ("gauge", write_number_point),
                MetricKind::Counter => ("sum", write_number_point),
                MetricKind::Histogram => ("histogram", write_histogram_point),
            };
            let mut d = Obj::open(m.key(field));
            let arr = d.array("dataPoints");
            each(arr, &mg.points, point);
            arr.push(']');
            if mg.kind != MetricKind::Gauge {
                d.int_nz("aggregationTemporality", t);
            }
            if mg.kind == MetricKind::Counter {
                d.key("isMonotonic").push_str("true");
            }
            d.close();
            m.close();
        },
    );
}
