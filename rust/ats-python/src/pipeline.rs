//! Bindings for the record path: `Pipeline` owns the ring, the flusher
//! thread and the sinks of this process; `record_*` encode straight into the
//! ring without building Rust or Python objects per record.

use std::time::Duration;

use ats_core::flusher::{FlushConfig, Pipeline, PipelineConfig};
use ats_core::record::codec::{encode_log_to_vec, encode_span_to_vec};
use ats_core::record::{EnvelopeRef, LogRef, Severity, SpanRef, Status};
use std::sync::Arc;

use ats_core::sink::jsonl::encode_record;
use ats_core::sink::{open_sinks, HandoffSlot, Popped, RetentionDays, SinkSpec};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use crate::text::lossy;

use crate::attrs::with_attributes;
use crate::metrics::PyMetrics;
use ats_core::ids::{new_span_id, new_trace_and_span_id, new_trace_id};
use ats_core::metrics::MetricsRegistry;
use ats_core::query::{push_driver_span, DriverCall, DriverMetrics, DriverOp};
use crate::sql::{normalize_cached, parse_dialect};
use ats_core::sql::{Dialect, Normalized as CoreNormalized};
use crate::stages::StageArgs;
use ats_core::record::Envelope;
use ats_core::record::origin::intern_origin;
use crate::guard::guarded;
use crate::ids::{parse_fingerprint, parse_trace_id};
use crate::sampling::{Sampling, SamplingArgs};
use ats_core::sampling::SamplingInput;

/// Records larger than this are encoded into a fresh buffer, so one huge
/// record does not pin its size in every thread's scratch space.
const SCRATCH_KEEP_BYTES: usize = 64 * 1024;

/// Encodes into a per-thread buffer (one length computation, no allocation
/// in steady state); the ring then copies the bytes in.
fn with_scratch<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let out = f(&mut buf);
            if buf.capacity() > SCRATCH_KEEP_BYTES {
                *buf = Vec::new();
            }
            out
        }
        // Re-entered on this thread (cannot happen today): use a private buffer.
        Err(_) => f(&mut Vec::new()),
    })
}

/// Resource-level envelope fields: fixed for the life of a pipeline.
struct Resource {
    tenant: String,
    workspace: String,
    region: String,
}

#[pyclass(module = "ats._native", frozen, name = "Pipeline")]
pub struct PyPipeline {
    inner: Pipeline,
    resource: Resource,
    registry: MetricsRegistry,
    driver_metrics: Arc<DriverMetrics>,
    /// Boxed: the rate limiter's cache-padded shards need more alignment than
    /// a Python object's memory guarantees.
    sampling: Box<Sampling>,
    /// Batches for the Python `ats_process_batch` drain (kept only once it attaches).
    handoff: Arc<HandoffSlot>,
    /// Unique per pipeline in this process: what a cached origin id was made for.
    serial: u64,
}

static PIPELINE_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn status_from(code: u8) -> PyResult<Status> {
    match code {
        0 => Ok(Status::Unset),
        1 => Ok(Status::Ok),
        2 => Ok(Status::Error),
        other => Err(PyValueError::new_err(format!("status must be 0 (unset), 1 (ok) or 2 (error), got {other}"))),
    }
}

fn deadline(timeout_s: f64) -> Duration {
    Duration::try_from_secs_f64(timeout_s.max(0.0)).unwrap_or(Duration::MAX)
}

#[pymethods]
impl PyPipeline {
    #[new]
    #[pyo3(signature = (
        *, store_path=None, jsonl_dir=None, jsonl_max_file_bytes=128 << 20, jsonl_max_total_bytes=None,
        ring_bytes=16 << 20, flush_interval_ms=200, batch_max_records=4096,
        tenant=String::new(), workspace=String::new(), region=String::new(),
        sample_ratio=1.0, parent_based=true, sampling_rules=Vec::new(), rate_limit_per_second=None, rate_limit_burst=1000, daily_cap=None,
        redact=true, scrub_patterns=Vec::new(), tail_latency_ms=None, tail_base_ratio=0.1,
        metrics=None, metrics_interval_ms=10_000, retention_days=None, otlp=None, handoff_max_records=65_536,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        store_path: Option<String>,
        jsonl_dir: Option<String>,
        jsonl_max_file_bytes: u64,
        jsonl_max_total_bytes: Option<u64>,
        ring_bytes: usize,
        flush_interval_ms: u64,
        batch_max_records: usize,
        tenant: String,
        workspace: String,
        region: String,
        sample_ratio: f64,
        parent_based: bool,
        sampling_rules: Vec<(String, f64, f64)>,
        rate_limit_per_second: Option<f64>,
        rate_limit_burst: u32,
        daily_cap: Option<u64>,
        redact: bool,
        scrub_patterns: Vec<(String, String, String)>,
        tail_latency_ms: Option<f64>,
        tail_base_ratio: f64,
        metrics: Option<PyRef<'_, PyMetrics>>,
        metrics_interval_ms: u64,
        retention_days: Option<(u32, u32, u32, u32)>,
        otlp: Option<&Bound<'_, PyDict>>,
        handoff_max_records: usize,
    ) -> PyResult<Self> {
        let sampling = Sampling::new(SamplingArgs {
            ratio: sample_ratio,
            parent_based,
            rules: sampling_rules,
            rate_limit_per_second,
            rate_limit_burst,
            daily_cap,
        })?;
        let mut specs = Vec::new();
        if let Some(path) = store_path {
            specs.push(SinkSpec::Store {
                path: path.into(),
                retention: retention_days.map(|(traces, logs, metrics, learning)| RetentionDays { traces, logs, metrics, learning }),
            });
        }
        if let Some(dir) = jsonl_dir {
            specs.push(SinkSpec::Jsonl { dir: dir.into(), max_file_bytes: jsonl_max_file_bytes, max_total_bytes: jsonl_max_total_bytes });
        }
        if let Some(d) = otlp {
            specs.push(SinkSpec::Otlp(crate::otlp::parse_otlp(d)?));
        }
        // Open once now so a bad path is an error at start-up, not a silent drop later.
        let first = open_sinks(&specs).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let first = std::sync::Mutex::new(Some(first));
        let handoff = HandoffSlot::new(handoff_max_records.max(1));
        let slot = handoff.clone();
        let factory = Box::new(move || {
            let mut sinks = first.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_else(|| {
                // A forked child opens its own handles; failing that it records nothing
                // rather than failing the child.
                open_sinks(&specs).unwrap_or_else(|e| {
                    eprintln!("ats: cannot open sinks in forked child: {e}");
                    Vec::new()
                })
            });
            sinks.push(Box::new(slot.sink()) as Box<dyn ats_core::flusher::Sink>);
            sinks
        });
        // Built-in instruments (driver metrics) live in the same registry as the user's.
        let registry = metrics.map(|m| m.registry.clone()).unwrap_or_else(PyMetrics::fresh_registry);
        let driver_metrics = Arc::new(DriverMetrics::new(&registry).map_err(|e| PyValueError::new_err(e.to_string()))?);
        let stages = StageArgs {
            redact,
            scrub_patterns,
            tail_latency_ms,
            tail_base_ratio,
            metrics: registry.clone(),
            metrics_interval_ms,
            resource: Envelope { tenant: tenant.clone(), workspace: workspace.clone(), region: region.clone(), ..Envelope::default() },
            driver_metrics: Arc::clone(&driver_metrics),
        };
        let stages_factory = stages.factory()?;
        let config = PipelineConfig {
            ring_capacity_bytes: ring_bytes,
            flush: FlushConfig {
                interval: Duration::from_millis(flush_interval_ms.max(1)),
                batch_max_records: batch_max_records.max(1),
                ..FlushConfig::default()
            },
            ..PipelineConfig::default()
        };
        Ok(Self { inner: Pipeline::with_stages(config, factory, stages_factory), resource: Resource { tenant, workspace, region }, registry, driver_metrics, sampling: Box::new(sampling), handoff, serial: PIPELINE_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed) })
    }

    /// Records one finished span, unless sampling drops it. Returns False when
    /// it was sampled out or dropped (both counted in `stats()`).
    #[pyo3(signature = (name, component, trace_id, span_id, parent_span_id, start_ns, end_ns, status, attributes=None, dialect="", air_id=None, plan_hash=None, parent_sampled=true, parent_remote=false))]
    #[allow(clippy::too_many_arguments)]
    fn record_span(
        &self,
        name: &str,
        component: &str,
        trace_id: &str,
        span_id: u64,
        parent_span_id: u64,
        start_ns: u64,
        end_ns: u64,
        status: u8,
        attributes: Option<&Bound<'_, PyDict>>,
        dialect: &str,
        air_id: Option<&str>,
        plan_hash: Option<&str>,
        parent_sampled: bool,
        parent_remote: bool,
    ) -> PyResult<bool> {
        let status = status_from(status)?;
        let trace_id = parse_trace_id(trace_id)?;
        let input = SamplingInput {
            trace_id,
            parent: self.sampling.parent(parent_span_id, parent_sampled, parent_remote),
            event_name: name,
            is_error: status == Status::Error,
            tenant: &self.resource.tenant,
            now_ns: end_ns,
        };
        if !self.sampling.keep(&input) {
            return Ok(false);
        }
        let envelope = EnvelopeRef {
            ts_ns: start_ns,
            tenant: &self.resource.tenant,
            workspace: &self.resource.workspace,
            region: &self.resource.region,
            dialect,
            trace_id,
            span_id,
            parent_span_id,
            air_id: air_id.map(|s| parse_fingerprint(s, "air:Q-")).transpose()?,
            plan_hash: plan_hash.map(|s| parse_fingerprint(s, "ph:")).transpose()?,
        };
        with_attributes(attributes, |attrs| {
            let span = SpanRef { envelope, name, component, end_ns, status, attributes: attrs };
            guarded("Pipeline.record_span", || false, || {
                with_scratch(|buf| encode_span_to_vec(&span, buf).is_ok() && self.inner.push(buf).is_ok())
            })
        })
    }

    /// Records one structured log record (seed 000 §6). Returns False when dropped.
    #[pyo3(signature = (event, component, severity, body, ts_ns, trace_id=None, span_id=0, attributes=None, dialect="", air_id=None, plan_hash=None))]
    #[allow(clippy::too_many_arguments)]
    fn emit_log(
        &self,
        event: &str,
        component: &str,
        severity: u8,
        body: &str,
        ts_ns: u64,
        trace_id: Option<&str>,
        span_id: u64,
        attributes: Option<&Bound<'_, PyDict>>,
        dialect: &str,
        air_id: Option<&str>,
        plan_hash: Option<&str>,
    ) -> PyResult<bool> {
        if !(1..=24).contains(&severity) {
            return Err(PyValueError::new_err(format!("severity must be an OpenTelemetry severity number 1..24, got {severity}")));
        }
        let envelope = EnvelopeRef {
            ts_ns,
            tenant: &self.resource.tenant,
            workspace: &self.resource.workspace,
            region: &self.resource.region,
            dialect,
            trace_id: trace_id.map(parse_trace_id).transpose()?.unwrap_or(0),
            span_id,
            parent_span_id: 0,
            air_id: air_id.map(|s| parse_fingerprint(s, "air:Q-")).transpose()?,
            plan_hash: plan_hash.map(|s| parse_fingerprint(s, "ph:")).transpose()?,
        };
        with_attributes(attributes, |attrs| {
            let log = LogRef { envelope, event, component, severity: Severity(severity), body, attributes: attrs };
            guarded("Pipeline.emit_log", || false, || {
                with_scratch(|buf| encode_log_to_vec(&log, buf).is_ok() && self.inner.push(buf).is_ok())
            })
        })
    }

    /// One database driver call (seed 000 `driver.*`): normalises `sql` (cached), records the
    /// span with every db attribute, updates the driver metrics. Returns the span id, or 0 when
    /// the span was sampled out or dropped (metrics are updated either way).
    #[pyo3(signature = (op, dialect, sql, start_ns, end_ns, error_type=None, trace_id=None, parent_span_id=0, parent_sampled=true, component="", peer_name="", peer_port=0, db_namespace="", rows=-1, status_code=None, slo_class=None))]
    #[allow(clippy::too_many_arguments)]
    fn record_query(
        &self,
        op: u8,
        dialect: &str,
        sql: Option<&Bound<'_, PyString>>,
        start_ns: u64,
        end_ns: u64,
        error_type: Option<&str>,
        trace_id: Option<&str>,
        parent_span_id: u64,
        parent_sampled: bool,
        component: &str,
        peer_name: &str,
        peer_port: u16,
        db_namespace: &str,
        rows: i64,
        status_code: Option<&str>,
        slo_class: Option<&str>,
    ) -> PyResult<u64> {
        let op = parse_op(op)?;
        let dialect = parse_dialect(Some(dialect))?;
        let trace_id = match trace_id {
            Some(hex) => Some(parse_trace_id(hex)?),
            None => None,
        };
        let parent = ParentRef { trace_id, span_id: parent_span_id, sampled: parent_sampled };
        let peer = Peer { name: peer_name, port: peer_port, db_namespace };
        let outcome = Outcome { error_type, status_code, slo_class };
        let statement = guarded("Pipeline.record_query", || None, || sql.map(|s| normalize_cached(&lossy(s), dialect)));
        let statement = statement.as_deref().map(|s| Statement { normalized: s, id: None });
        Ok(self.record_driver(op, dialect, statement, None, start_ns, end_ns, outcome, parent, component, peer, rows))
    }

    /// The metric registry this pipeline exports (built-in driver metrics included).
    #[getter]
    fn metrics(&self) -> PyMetrics {
        PyMetrics::from_registry(self.registry.clone())
    }

    /// A fresh random span id / trace id (32 hex), fork-safe.
    #[staticmethod]
    fn new_span_id() -> u64 {
        new_span_id()
    }

    #[staticmethod]
    fn new_trace_id() -> String {
        format!("{:032x}", new_trace_id())
    }

    /// Waits (GIL released) until everything recorded so far reached the sinks, at most `timeout` s.
    fn flush(&self, py: Python<'_>, timeout: f64) -> bool {
        let d = deadline(timeout);
        py.allow_threads(|| guarded("Pipeline.flush", || false, || self.inner.flush(d)))
    }

    /// Drains, flushes and closes the sinks, at most `timeout` s. Later records are dropped as `closed`.
    fn shutdown(&self, py: Python<'_>, timeout: f64) -> bool {
        let d = deadline(timeout);
        py.allow_threads(|| guarded("Pipeline.shutdown", || false, || self.inner.shutdown(d)))
    }

    /// From now on the flusher keeps batches for `drain` (bounded; a full queue drops
    /// whole batches, counted as `handoff_full`).
    fn attach_drain(&self) {
        self.inner.ensure_fresh_after_fork();
        self.handoff.queue().attach();
    }

    /// The next batch for Python sinks, as seed 000 envelope mappings (the JSONL line
    /// shape), waiting at most `timeout` s with the GIL released. None: nothing within
    /// the timeout, or the pipeline is shut down and everything was taken.
    fn drain(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<PyObject>> {
        let d = deadline(timeout);
        let text = py.allow_threads(|| {
            guarded("Pipeline.drain", || None, || {
                // A forked child must not touch the parent's queue (its lock may be held).
                self.inner.ensure_fresh_after_fork();
                match self.handoff.queue().pop(d) {
                    Popped::Batch(batch) => {
                        let mut out = String::with_capacity(batch.len() * 256);
                        out.push('[');
                        for (i, rec) in batch.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            encode_record(&mut out, rec);
                        }
                        out.push(']');
                        Some(out)
                    }
                    Popped::Empty | Popped::Closed => None,
                }
            })
        });
        match text {
            Some(t) => Ok(Some(py.import("json")?.getattr("loads")?.call1((t,))?.unbind())),
            None => Ok(None),
        }
    }

    /// Counters of this process's ring and flusher, for `ats trace stats` and `ats_dropped_total`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("pushed", s.ring.pushed)?;
        d.set_item("drained", s.ring.drained)?;
        let dropped = PyDict::new(py);
        dropped.set_item("ring_full", s.ring.dropped_full)?;
        dropped.set_item("too_large", s.ring.dropped_too_large)?;
        dropped.set_item("closed", s.ring.dropped_closed)?;
        dropped.set_item("sink_error", s.flusher.dropped_sink_error())?;
        dropped.set_item("decode_error", s.flusher.decode_errors)?;
        for sink in &s.flusher.sinks {
            for &(reason, n) in &sink.drops {
                dropped.set_item(reason, n)?;
            }
        }
        // The queue's own count is current; the sink's total above lags by a cycle.
        let handoff = self.handoff.queue().stats();
        dropped.set_item(ats_core::sink::HANDOFF_FULL, handoff.dropped_full)?;
        d.set_item("handoff_accepted", handoff.accepted)?;
        d.set_item("handoff_queued", handoff.queued)?;
        d.set_item("dropped", dropped)?;
        let sampled_out = PyDict::new(py);
        self.sampling.dropped_into(&sampled_out)?;
        d.set_item("sampled_out", sampled_out)?;
        d.set_item("ring_high_water_bytes", s.ring.high_water_bytes)?;
        d.set_item("batches", s.flusher.batches)?;
        d.set_item("panics", s.flusher.panics())?;
        let sinks = PyDict::new(py);
        for sink in &s.flusher.sinks {
            let one = PyDict::new(py);
            one.set_item("records_written", sink.records_written)?;
            one.set_item("batches", sink.batches)?;
            one.set_item("errors", sink.errors)?;
            one.set_item("last_error", sink.last_error.clone())?;
            for &(name, value) in &sink.counters {
                one.set_item(name, value)?;
            }
            sinks.set_item(&sink.name, one)?;
        }
        d.set_item("sinks", sinks)?;
        Ok(d)
    }
}

/// Parent of a driver span: the current span's identity, if any.
pub(crate) struct ParentRef {
    /// `None`: no current span, the call starts a new trace.
    pub trace_id: Option<u128>,
    pub span_id: u64,
    pub sampled: bool,
}

/// The normalised statement of a driver call, with its interned id when it has one.
#[derive(Clone, Copy)]
pub(crate) struct Statement<'a> {
    pub normalized: &'a CoreNormalized,
    pub id: Option<u32>,
}

/// How a driver call ended: `error_type` set marks a failure.
pub(crate) struct Outcome<'a> {
    pub error_type: Option<&'a str>,
    /// SQLSTATE or the server's own error code.
    pub status_code: Option<&'a str>,
    /// The statement's SLO class (`sqlx.class`), chosen by the host's rules.
    pub slo_class: Option<&'a str>,
}

/// Where a driver call went.
pub(crate) struct Peer<'a> {
    pub name: &'a str,
    pub port: u16,
    pub db_namespace: &'a str,
}

pub(crate) fn parse_op(op: u8) -> PyResult<DriverOp> {
    DriverOp::from_code(op).ok_or_else(|| {
        PyValueError::new_err(format!("op must be 0 (handshake), 1 (query), 2 (prepare) or 3 (close), got {op}"))
    })
}

impl PyPipeline {
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// The id of this pipeline's resource with `dialect`, `component` and `db_namespace`, for
    /// [`Self::record_driver`] (callers cache it with [`Self::serial`]).
    pub(crate) fn origin_id(&self, dialect: Dialect, component: &str, db_namespace: &str) -> Option<u32> {
        let r = &self.resource;
        intern_origin(&r.tenant, &r.workspace, &r.region, dialect.as_str(), component, db_namespace)
    }

    /// The one native step per database call (the statement already normalised):
    /// observe the driver metrics, sample, encode the compact driver record, push.
    /// Returns the new span id, or 0 when sampled out or dropped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_driver(
        &self,
        op: DriverOp,
        dialect: Dialect,
        statement: Option<Statement<'_>>,
        origin_id: Option<u32>,
        start_ns: u64,
        end_ns: u64,
        outcome: Outcome<'_>,
        parent: ParentRef,
        component: &str,
        peer: Peer<'_>,
        rows: i64,
    ) -> u64 {
        guarded("Pipeline.record_query", || 0, || {
            // A root span's id is drawn with its trace id (it is discarded if sampled out).
            let (trace_id, root_span_id) = match parent.trace_id {
                Some(trace_id) => (trace_id, 0),
                None => new_trace_and_span_id(),
            };
            let mut call = DriverCall {
                op,
                dialect,
                statement: statement.map(|s| s.normalized),
                statement_id: statement.and_then(|s| s.id),
                origin_id,
                metrics_pending: false,
                start_ns,
                end_ns,
                error_type: outcome.error_type,
                status_code: outcome.status_code,
                slo_class: outcome.slo_class,
                trace_id,
                span_id: 0,
                parent_span_id: parent.span_id,
                component,
                peer_name: peer.name,
                peer_port: peer.port,
                db_namespace: peer.db_namespace,
                rows,
                tenant: &self.resource.tenant,
                workspace: &self.resource.workspace,
                region: &self.resource.region,
            };
            let input = SamplingInput {
                trace_id,
                parent: self.sampling.parent(parent.span_id, parent.sampled, false),
                event_name: op.event_name(),
                is_error: outcome.error_type.is_some(),
                tenant: &self.resource.tenant,
                now_ns: end_ns,
            };
            if !self.sampling.keep(&input) {
                self.driver_metrics.observe(&call);
                return 0;
            }
            call.span_id = if root_span_id != 0 { root_span_id } else { new_span_id() };
            // A pushed record's metrics are recorded by the flusher when it decodes it: off the
            // app thread, and still exactly once per call.
            call.metrics_pending = true;
            if push_driver_span(&self.inner, &call).is_ok() {
                return call.span_id;
            }
            self.driver_metrics.observe(&call);
            0
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPipeline>()?;
    Ok(())
}
