//! OTLP protobuf: `Export{Trace,Metrics,Logs}ServiceRequest` bytes.
//!
//! Fields are written in field-number order (as protobuf's own serializers
//! do) and proto3 defaults are left out, so the bytes equal what protobuf
//! libraries produce when they re-encode the decoded message (the tests
//! check that against prost).

use crate::record::{AttrRef, LogRecord, MetricKind, SpanRecord};

use super::fields::{
    any_value, data, event, histogram_point as hp, key_value, log, metric, number_point as np,
    request, resource, resource_data, scope, scope_data, span, status,
};
use super::group::ResourceGroup;
use super::mapping::{
    exception_attributes, log_attributes, resource_attributes, severity_text, AttrSink,
    ResourceKey, SpanName, SpanPlan, EXCEPTION_EVENT, METRICS_SCOPE, SDK_VERSION,
};
use super::points::{Point, Temporality};
use super::wire::{varint_len, ProtoWriter, SizeHint};
use super::{LogGroups, MetricGroups, ResourceConfig, SpanGroups};

/// Size of an `AnyValue` body holding `v` (known up front, so attributes
/// need no back-patching).
fn any_value_len(v: &AttrRef<'_>) -> usize {
    match v {
        AttrRef::Str(s) => 1 + varint_len(s.len() as u64) + s.len(),
        AttrRef::Bool(_) => 2,
        AttrRef::I64(i) => 1 + varint_len(*i as u64),
        AttrRef::F64(_) => 9,
    }
}

fn any_value_body(w: &mut ProtoWriter, v: &AttrRef<'_>) {
    match v {
        AttrRef::Str(s) => w.bytes(any_value::STRING, s.as_bytes()),
        AttrRef::Bool(b) => w.bool(any_value::BOOL, *b),
        AttrRef::I64(i) => w.int64(any_value::INT, *i),
        AttrRef::F64(f) => w.double(any_value::DOUBLE, *f),
    }
}

/// One `KeyValue` in `field` of the enclosing message.
fn key_value(w: &mut ProtoWriter, field: u32, key: &str, v: AttrRef<'_>) {
    let av = any_value_len(&v);
    let body = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(av as u64) + av;
    w.len_header(field, body);
    w.bytes(key_value::KEY, key.as_bytes());
    w.len_header(key_value::VALUE, av);
    any_value_body(w, &v);
}

/// Writes attributes as repeated `KeyValue` in one field.
struct ProtoAttrs<'w> {
    w: &'w mut ProtoWriter,
    field: u32,
}

impl AttrSink for ProtoAttrs<'_> {
    #[inline]
    fn attr(&mut self, key: &str, value: AttrRef<'_>) {
        key_value(self.w, self.field, key, value);
    }
}

fn write_resource(w: &mut ProtoWriter, cfg: &ResourceConfig, key: &ResourceKey<'_>) {
    let m = w.begin(resource_data::RESOURCE, SizeHint::Medium);
    resource_attributes(
        cfg,
        key,
        &mut ProtoAttrs {
            w,
            field: resource::ATTRIBUTES,
        },
    );
    w.end(m);
}

fn write_scope(w: &mut ProtoWriter, name: &str) {
    let m = w.begin(scope_data::SCOPE, SizeHint::Small);
    w.bytes_nz(scope::NAME, name.as_bytes());
    w.bytes_nz(scope::VERSION, SDK_VERSION.as_bytes());
    w.end(m);
}

fn write_span(w: &mut ProtoWriter, s: &SpanRecord) {
    let plan = SpanPlan::new(s);
    let env = &s.envelope;
    let m = w.begin(scope_data::ITEMS, SizeHint::Medium);
    w.bytes(span::TRACE_ID, &env.trace_id.to_be_bytes());
    w.bytes(span::SPAN_ID, &env.span_id.to_be_bytes());
    if env.parent_span_id != 0 {
        w.bytes(span::PARENT_SPAN_ID, &env.parent_span_id.to_be_bytes());
    }
    match plan.name {
        SpanName::One(n) => w.bytes_nz(span::NAME, n.as_bytes()),
        SpanName::Pair(a, b) => w.bytes_concat(span::NAME, &[a.as_bytes(), b" ", b.as_bytes()]),
    }
    w.uint64_nz(span::KIND, plan.kind);
    w.fixed64_nz(span::START_TIME, env.ts_ns);
    w.fixed64_nz(span::END_TIME, s.end_ns);
    plan.attributes(
        s,
        &mut ProtoAttrs {
            w,
            field: span::ATTRIBUTES,
        },
    );
    if let Some(e) = &plan.exception {
        let ev = w.begin(span::EVENTS, SizeHint::Medium);
        w.fixed64_nz(event::TIME, s.end_ns);
        w.bytes(event::NAME, EXCEPTION_EVENT.as_bytes());
        exception_attributes(
            e,
            &mut ProtoAttrs {
                w,
                field: event::ATTRIBUTES,
            },
        );
        w.end(ev);
    }
    if plan.status_code != 0 {
        let st = w.begin(span::STATUS, SizeHint::Small);
        w.bytes_nz(
            status::MESSAGE,
            plan.status_message.unwrap_or_default().as_bytes(),
        );
        w.uint64(status::CODE, plan.status_code);
        w.end(st);
    }
    w.end(m);
}

/// A request whose resources hold one scope per component (traces, logs).
fn scoped_request<T>(
    cfg: &ResourceConfig,
    groups: &[ResourceGroup<'_, T, &str>],
    capacity: usize,
    item: impl Fn(&mut ProtoWriter, &T),
) -> Vec<u8> {
    let mut w = ProtoWriter::with_capacity(capacity);
    for g in groups {
        let r = w.begin(request::RESOURCE_DATA, SizeHint::Large);
        write_resource(&mut w, cfg, &g.key);
        for (scope_name, items) in &g.inner {
            let s = w.begin(resource_data::SCOPE_DATA, SizeHint::Large);
            write_scope(&mut w, scope_name);
            for x in items {
                item(&mut w, x);
            }
            w.end(s);
        }
        w.end(r);
    }
    w.into_bytes()
}

/// `ExportTraceServiceRequest` for grouped, exportable spans.
pub(crate) fn traces(cfg: &ResourceConfig, groups: &SpanGroups<'_>, capacity: usize) -> Vec<u8> {
    scoped_request(cfg, groups, capacity, write_span)
}

fn write_log(w: &mut ProtoWriter, l: &LogRecord) {
    let env = &l.envelope;
    let m = w.begin(scope_data::ITEMS, SizeHint::Medium);
    w.fixed64_nz(log::TIME, env.ts_ns);
    w.uint64_nz(log::SEVERITY_NUMBER, u64::from(l.severity.0));
    w.bytes_nz(log::SEVERITY_TEXT, severity_text(l.severity.0).as_bytes());
    if !l.body.is_empty() {
        let b = w.begin(log::BODY, SizeHint::Medium);
        w.bytes(any_value::STRING, l.body.as_bytes());
        w.end(b);
    }
    log_attributes(
        l,
        &mut ProtoAttrs {
            w,
            field: log::ATTRIBUTES,
        },
    );
    if env.trace_id != 0 {
        w.bytes(log::TRACE_ID, &env.trace_id.to_be_bytes());
    }
    if env.span_id != 0 {
        w.bytes(log::SPAN_ID, &env.span_id.to_be_bytes());
    }
    w.fixed64_nz(log::OBSERVED_TIME, env.ts_ns);
    w.bytes_nz(log::EVENT_NAME, l.event.as_bytes());
    w.end(m);
}

/// `ExportLogsServiceRequest` for grouped log records.
pub(crate) fn logs(cfg: &ResourceConfig, groups: &LogGroups<'_>, capacity: usize) -> Vec<u8> {
    scoped_request(cfg, groups, capacity, write_log)
}

fn write_labels(w: &mut ProtoWriter, field: u32, labels: &[(String, String)]) {
    for (k, v) in labels {
        key_value(w, field, k, AttrRef::Str(v));
    }
}

fn write_number_point(w: &mut ProtoWriter, p: &Point<'_>) {
    let m = w.begin(data::DATA_POINTS, SizeHint::Small);
    w.fixed64_nz(np::START_TIME, p.start_ns);
    w.fixed64_nz(np::TIME, p.rec.envelope.ts_ns);
    w.double(np::AS_DOUBLE, p.value);
    write_labels(w, np::ATTRIBUTES, &p.rec.labels);
    w.end(m);
}

fn write_histogram_point(w: &mut ProtoWriter, p: &Point<'_>) {
    let Some(h) = &p.hist else { return };
    let m = w.begin(data::DATA_POINTS, SizeHint::Medium);
    w.fixed64_nz(hp::START_TIME, p.start_ns);
    w.fixed64_nz(hp::TIME, p.rec.envelope.ts_ns);
    w.fixed64_nz(hp::COUNT, h.count);
    w.double(hp::SUM, h.sum);
    w.packed_fixed64(hp::BUCKET_COUNTS, h.counts.iter().copied());
    w.packed_double(hp::EXPLICIT_BOUNDS, h.bounds);
    write_labels(w, hp::ATTRIBUTES, &p.rec.labels);
    if let Some(min) = h.min {
        w.double(hp::MIN, min);
    }
    if let Some(max) = h.max {
        w.double(hp::MAX, max);
    }
    w.end(m);
}

pub(crate) fn temporality_value(t: Temporality) -> u64 {
    match t {
        Temporality::Cumulative => data::TEMPORALITY_CUMULATIVE,
        Temporality::Delta => data::TEMPORALITY_DELTA,
    }
}

/// `ExportMetricsServiceRequest` for prepared (temporality-applied) points.
pub(crate) fn metrics(
    cfg: &ResourceConfig,
    groups: &MetricGroups<'_>,
    temporality: Temporality,
    capacity: usize,
) -> Vec<u8> {
    let mut w = ProtoWriter::with_capacity(capacity);
    let t = temporality_value(temporality);
    for (key, metrics) in groups {
        let rm = w.begin(request::RESOURCE_DATA, SizeHint::Large);
        write_resource(&mut w, cfg, key);
        let sm = w.begin(resource_data::SCOPE_DATA, SizeHint::Large);
        write_scope(&mut w, METRICS_SCOPE);
        for mg in metrics {
            let m = w.begin(scope_data::ITEMS, SizeHint::Large);
            w.bytes_nz(metric::NAME, mg.name.as_bytes());
            w.bytes_nz(metric::UNIT, mg.unit.as_bytes());
            match mg.kind {
                MetricKind::Gauge => {
                    let g = w.begin(metric::GAUGE, SizeHint::Large);
                    mg.points.iter().for_each(|p| write_number_point(&mut w, p));
                    w.end(g);
                }
                MetricKind::Counter => {
                    let s = w.begin(metric::SUM, SizeHint::Large);
                    mg.points.iter().for_each(|p| write_number_point(&mut w, p));
                    w.uint64(data::AGGREGATION_TEMPORALITY, t);
                    w.bool(data::IS_MONOTONIC, true);
                    w.end(s);
                }
                MetricKind::Histogram => {
                    let h = w.begin(metric::HISTOGRAM, SizeHint::Large);
                    mg.points
                        .iter()
                        .for_each(|p| write_histogram_point(&mut w, p));
                    w.uint64(data::AGGREGATION_TEMPORALITY, t);
                    w.end(h);
                }
            }
            w.end(m);
        }
        w.end(sm);
        w.end(rm);
    }
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_exact_bytes() {
        let mut w = ProtoWriter::new();
        key_value(&mut w, span::ATTRIBUTES, "k", AttrRef::I64(1));
        key_value(&mut w, span::ATTRIBUTES, "b", AttrRef::Bool(true));
        key_value(&mut w, span::ATTRIBUTES, "s", AttrRef::Str("xy"));
        assert_eq!(
            w.as_bytes(),
            &[
                0x4a, 7, 0x0a, 1, b'k', 0x12, 2, 0x18, 1, // {key:"k", value:{int_value:1}}
                0x4a, 7, 0x0a, 1, b'b', 0x12, 2, 0x10,
                1, // {key:"b", value:{bool_value:true}}
                0x4a, 9, 0x0a, 1, b's', 0x12, 4, 0x0a, 2, b'x',
                b'y', // {key:"s", value:{string_value:"xy"}}
            ]
        );
    }

    /// A string value of 200 bytes needs two-byte lengths at both levels.
    #[test]
    fn long_values_get_multi_byte_lengths() {
        let long = "x".repeat(200);
        let mut w = ProtoWriter::new();
        key_value(&mut w, 9, "k", AttrRef::Str(&long));
        // AnyValue body 1 + 2 + 200 = 203; KeyValue body 3 + 1 + 2 + 203 = 209.
        assert_eq!(
            &w.as_bytes()[..9],
            &[0x4a, 0xd1, 0x01, 0x0a, 1, b'k', 0x12, 0xcb, 0x01]
        );
        assert_eq!(w.len(), 3 + 209);
    }
}
