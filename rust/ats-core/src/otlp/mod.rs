//! OTLP encoding of ATS records: `Export{Trace,Metrics,Logs}ServiceRequest`
//! as protobuf ([`proto`], over a hand-written wire writer, [`wire`]) or as
//! OTLP/JSON ([`json`]). Transport lives elsewhere; this module only turns a
//! batch of [`Record`]s into request bodies.
//!
//! Shape: records are grouped into one resource per (tenant, workspace,
//! region) and, inside it, one instrumentation scope per component (spans,
//! logs; the scope is named after the component, `ats` when empty) or one
//! scope `ats` holding one metric per (name, unit, kind) (metric points).
//! The mapping decisions (span names, kinds, status, `exception` events,
//! attributes) are in [`mapping`], shared by both formats.
//!
//! What is not exported, and counted in [`Encoded`]:
//! - spans with a zero trace id or span id (OTLP calls those ids invalid);
//! - reward records: seed 000 §2 / §9 send learning artifacts to their own
//!   stream (`sqlx.learn.reward`), not to OpenTelemetry;
//! - malformed histogram points and, under delta temporality, points not
//!   newer than their series' previous one.

pub mod fields;
mod group;
pub mod json;
pub mod mapping;
mod points;
pub mod proto;
pub mod wire;

use crate::record::{LogRecord, MetricKind, MetricPoint, Record, SpanRecord};

use group::{group, ResourceGroup};
use mapping::{span_is_exportable, ResourceKey, METRICS_SCOPE};
use points::{DeltaState, Point, Unexported};
pub use points::{Temporality, DEFAULT_DELTA_SERIES};

/// The resource every exported record shares, before the per-record
/// tenant / workspace / region are added (from `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`, parsed by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceConfig {
    /// `service.name`; `unknown_service` when empty.
    pub service_name: String,
    /// Extra resource attributes, in order.
    pub attributes: Vec<(String, String)>,
}

/// Request bodies for one batch (`None` when the batch had nothing of that
/// signal) and what went into them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    /// `ExportTraceServiceRequest` body.
    pub traces: Option<Vec<u8>>,
    /// `ExportMetricsServiceRequest` body.
    pub metrics: Option<Vec<u8>>,
    /// `ExportLogsServiceRequest` body.
    pub logs: Option<Vec<u8>>,
    /// Spans in `traces`.
    pub spans: usize,
    /// Data points in `metrics`.
    pub points: usize,
    /// Log records in `logs`.
    pub logs_count: usize,
    /// Spans left out for a zero trace id or span id.
    pub invalid_spans: usize,
    /// Histogram points left out for missing or inconsistent bucket data.
    pub malformed_points: usize,
    /// Delta temporality: points left out for not being newer than the
    /// previous point of their series.
    pub stale_points: usize,
    /// Reward records, which OTLP does not carry (see the module docs).
    pub rewards_skipped: usize,
}

/// Wire format of [`Encoded`] bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

pub(crate) type SpanGroups<'a> = Vec<ResourceGroup<'a, SpanRecord, &'a str>>;
pub(crate) type LogGroups<'a> = Vec<ResourceGroup<'a, LogRecord, &'a str>>;

/// All exported points of one metric (name, unit, kind) of one resource.
#[derive(Debug)]
pub(crate) struct MetricGroup<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub kind: MetricKind,
    pub points: Vec<Point<'a>>,
}

pub(crate) type MetricGroups<'a> = Vec<(ResourceKey<'a>, Vec<MetricGroup<'a>>)>;

fn scope_name(component: &str) -> &str {
    if component.is_empty() {
        METRICS_SCOPE
    } else {
        component
    }
}

/// A batch sorted by signal.
#[derive(Default)]
struct Split<'a> {
    spans: Vec<&'a SpanRecord>,
    logs: Vec<&'a LogRecord>,
    points: Vec<&'a MetricPoint>,
    invalid_spans: usize,
    rewards: usize,
}

impl<'a> Split<'a> {
    fn new(batch: &'a [Record]) -> Self {
        let mut s = Split {
            spans: Vec::with_capacity(batch.len()),
            ..Split::default()
        };
        for r in batch {
            match r {
                Record::Span(sp) if span_is_exportable(sp) => s.spans.push(sp),
                Record::Span(_) => s.invalid_spans += 1,
                Record::Log(l) => s.logs.push(l),
                Record::Metric(m) => s.points.push(m),
                Record::Reward(_) => s.rewards += 1,
            }
        }
        s
    }
}

fn group_spans<'a>(spans: &[&'a SpanRecord]) -> SpanGroups<'a> {
    group(
        spans.iter().copied(),
        |s| ResourceKey::of(&s.envelope),
        |s| scope_name(&s.component),
    )
}

fn group_logs<'a>(logs: &[&'a LogRecord]) -> LogGroups<'a> {
    group(
        logs.iter().copied(),
        |l| ResourceKey::of(&l.envelope),
        |l| scope_name(&l.component),
    )
}

/// Stateless OTLP/JSON `ExportTraceServiceRequest` for the spans in
/// `records` (other records are ignored): what `ats trace export --format
/// otlp-json` writes. Returns `None` when there is no exportable span.
pub fn traces_json(resource: &ResourceConfig, records: &[Record]) -> Option<String> {
    let split = Split::new(records);
    if split.spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(split.spans.len() * 512);
    json::traces(resource, &group_spans(&split.spans), &mut out);
    Some(out)
}

/// Stateless OTLP/JSON `ExportLogsServiceRequest` for the log records in `records`.
pub fn logs_json(resource: &ResourceConfig, records: &[Record]) -> Option<String> {
    let split = Split::new(records);
    if split.logs.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(split.logs.len() * 384);
    json::logs(resource, &group_logs(&split.logs), &mut out);
    Some(out)
}

/// Turns record batches into OTLP request bodies. Stateful only for delta
/// temporality (the previous point of each metric series), so one encoder
/// per exporter; it is `Send` and meant for the flusher thread.
#[derive(Debug)]
pub struct OtlpEncoder {
    resource: ResourceConfig,
    temporality: Temporality,
    delta: DeltaState,
    /// Last body sizes (traces, metrics, logs), to size the next buffers.
    last_len: [usize; 3],
}

impl OtlpEncoder {
    pub fn new(resource: ResourceConfig, temporality: Temporality) -> Self {
        Self::with_delta_capacity(resource, temporality, DEFAULT_DELTA_SERIES)
    }

    /// `max_series` bounds the series remembered for delta temporality.
    pub fn with_delta_capacity(
        resource: ResourceConfig,
        temporality: Temporality,
        max_series: usize,
    ) -> Self {
        Self {
            resource,
            temporality,
            delta: DeltaState::new(max_series),
            last_len: [0; 3],
        }
    }

    pub fn resource(&self) -> &ResourceConfig {
        &self.resource
    }

    pub fn temporality(&self) -> Temporality {
        self.temporality
    }

    /// Metric series currently remembered for delta temporality.
    pub fn delta_series(&self) -> usize {
        self.delta.series()
    }

    /// Metric series forgotten so far because `max_series` was reached.
    pub fn delta_series_forgotten(&self) -> u64 {
        self.delta.forgotten()
    }

    /// Protobuf bodies for `batch`.
    pub fn encode_proto(&mut self, batch: &[Record]) -> Encoded {
        self.encode(batch, Format::Protobuf)
    }

    /// OTLP/JSON bodies for `batch` (UTF-8).
    pub fn encode_json(&mut self, batch: &[Record]) -> Encoded {
        self.encode(batch, Format::Json)
    }

    pub fn encode(&mut self, batch: &[Record], format: Format) -> Encoded {
        let split = Split::new(batch);
        let mut enc = Encoded {
            spans: split.spans.len(),
            logs_count: split.logs.len(),
            invalid_spans: split.invalid_spans,
            rewards_skipped: split.rewards,
            ..Encoded::default()
        };
        if !split.spans.is_empty() {
            let groups = group_spans(&split.spans);
            let cap = self.capacity(0, split.spans.len(), 400);
            enc.traces = Some(match format {
                Format::Protobuf => proto::traces(&self.resource, &groups, cap),
                Format::Json => {
                    json_body(cap * 3, |out| json::traces(&self.resource, &groups, out))
                }
            });
        }
        if !split.points.is_empty() {
            let groups = self.prepare_metrics(&split.points, &mut enc);
            if enc.points > 0 {
                let cap = self.capacity(1, enc.points, 200);
                enc.metrics = Some(match format {
                    Format::Protobuf => {
                        proto::metrics(&self.resource, &groups, self.temporality, cap)
                    }
                    Format::Json => json_body(cap * 3, |out| {
                        json::metrics(&self.resource, &groups, self.temporality, out)
                    }),
                });
            }
        }
        if !split.logs.is_empty() {
            let groups = group_logs(&split.logs);
            let cap = self.capacity(2, split.logs.len(), 300);
            enc.logs = Some(match format {
                Format::Protobuf => proto::logs(&self.resource, &groups, cap),
                Format::Json => json_body(cap * 3, |out| json::logs(&self.resource, &groups, out)),
            });
        }
        for (slot, body) in [&enc.traces, &enc.metrics, &enc.logs]
            .into_iter()
            .enumerate()
        {
            if let Some(b) = body {
                self.last_len[slot] = b.len();
            }
        }
        enc
    }

    fn capacity(&self, slot: usize, items: usize, per_item: usize) -> usize {
        // Last batch's size plus some slack, so the buffer rarely regrows.
        (self.last_len[slot] + self.last_len[slot] / 8).max(items * per_item)
    }

    /// Groups points by resource and metric and applies the temporality.
    fn prepare_metrics<'a>(
        &mut self,
        points: &[&'a MetricPoint],
        enc: &mut Encoded,
    ) -> MetricGroups<'a> {
        let grouped = group(
            points.iter().copied(),
            |p| ResourceKey::of(&p.envelope),
            |p| (p.name.as_str(), p.unit.as_str(), p.kind as u8),
        );
        let mut out: MetricGroups<'a> = Vec::with_capacity(grouped.len());
        for g in grouped {
            let mut metrics = Vec::with_capacity(g.inner.len());
            for ((name, unit, _), pts) in g.inner {
                let kind = pts[0].kind;
                let mut exported = Vec::with_capacity(pts.len());
                for p in pts {
                    let point = match self.temporality {
                        Temporality::Cumulative => points::cumulative(p),
                        Temporality::Delta => self.delta.delta(p),
                    };
                    match point {
                        Ok(pt) => exported.push(pt),
                        Err(Unexported::Malformed) => enc.malformed_points += 1,
                        Err(Unexported::Stale) => enc.stale_points += 1,
                    }
                }
                enc.points += exported.len();
                if !exported.is_empty() {
                    metrics.push(MetricGroup {
                        name,
                        unit,
                        kind,
                        points: exported,
                    });
                }
            }
            if !metrics.is_empty() {
                out.push((g.key, metrics));
            }
        }
        out
    }
}

fn json_body(capacity: usize, write: impl FnOnce(&mut String)) -> Vec<u8> {
    let mut out = String::with_capacity(capacity);
    write(&mut out);
    out.into_bytes()
}
