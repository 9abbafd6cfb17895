//! The process's active pipeline and the context it reads, for plugins'
//! per-call `driver_call`: one native call that finds the current span,
//! checks suppression, stamps the end time and records — no Python frame
//! between the library call and the ring.
//!
//! The runtime (`ats._runtime`) activates a pipeline at `init`/`reload` and
//! deactivates it at `shutdown`; the context variables stay Python objects
//! (they are what `ats.span` and the OpenTelemetry bridge set).

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::ids::parse_trace_id;
use crate::pipeline::{parse_op, Outcome, ParentRef, Peer, PyPipeline};
use crate::sql::parse_dialect;
use crate::text::lossy;

struct Active {
    pipeline: Py<PyPipeline>,
    /// Bound `ContextVar.get` of the current span and of the suppression flag.
    span_get: Py<PyAny>,
    suppressed_get: Py<PyAny>,
    /// Called when no ATS span is current and OpenTelemetry is imported.
    otel_probe: Py<PyAny>,
    sys_modules: Py<PyDict>,
}

static ACTIVE: RwLock<Option<Arc<Active>>> = RwLock::new(None);

fn current() -> Option<Arc<Active>> {
    ACTIVE.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Makes `pipeline` the one `driver_call` records into.
#[pyfunction]
fn activate(
    py: Python<'_>,
    pipeline: Py<PyPipeline>,
    span_var: &Bound<'_, PyAny>,
    suppressed_var: &Bound<'_, PyAny>,
    otel_probe: Py<PyAny>,
) -> PyResult<()> {
    let sys_modules = py.import("sys")?.getattr("modules")?.downcast_into::<PyDict>()?.unbind();
    let active = Active {
        pipeline,
        span_get: span_var.getattr("get")?.unbind(),
        suppressed_get: suppressed_var.getattr("get")?.unbind(),
        otel_probe,
        sys_modules,
    };
    *ACTIVE.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(active));
    Ok(())
}

/// `driver_call` records nothing until the next `activate`.
#[pyfunction]
fn deactivate() {
    let old = ACTIVE.write().unwrap_or_else(|e| e.into_inner()).take();
    drop(old);
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The current span as a parent, or a fresh root.
fn parent_of(py: Python<'_>, a: &Active) -> PyResult<ParentRef> {
    let mut span = a.span_get.call0(py)?.into_bound(py);
    if span.is_none() && a.sys_modules.bind(py).contains(intern!(py, "opentelemetry.trace"))? {
        span = a.otel_probe.call0(py)?.into_bound(py);
    }
    if span.is_none() {
        return Ok(ParentRef { trace_id: None, span_id: 0, sampled: true });
    }
    let trace_id = span.getattr(intern!(py, "trace_id"))?;
    Ok(ParentRef {
        trace_id: Some(parse_trace_id(trace_id.downcast::<PyString>()?.to_str()?)?),
        span_id: span.getattr(intern!(py, "span_id"))?.extract()?,
        sampled: span.getattr(intern!(py, "sampled"))?.is_truthy()?,
    })
}

/// Records one finished database call under the current span, ending now.
/// Returns the span id, or 0 when nothing was recorded (no active pipeline,
/// suppressed, sampled out or dropped).
#[pyfunction]
#[pyo3(signature = (op, dialect, sql, start_ns, error_type, component, db_namespace, peer_name="", peer_port=0, rows=-1, status_code=None))]
#[allow(clippy::too_many_arguments)]
fn driver_call(
    py: Python<'_>,
    op: u8,
    dialect: &str,
    sql: Option<&Bound<'_, PyString>>,
    start_ns: u64,
    error_type: Option<&str>,
    component: &str,
    db_namespace: &str,
    peer_name: &str,
    peer_port: u16,
    rows: i64,
    status_code: Option<&str>,
) -> PyResult<u64> {
    let end_ns = now_ns();
    let Some(active) = current() else { return Ok(0) };
    if active.suppressed_get.call0(py)?.bind(py).is_truthy()? {
        return Ok(0);
    }
    let op = parse_op(op)?;
    let dialect = parse_dialect(Some(dialect))?;
    let parent = parent_of(py, &active)?;
    let text = sql.map(lossy);
    let peer = Peer { name: peer_name, port: peer_port, db_namespace };
    let pipeline = active.pipeline.get();
    let outcome = Outcome { error_type, status_code, slo_class: None };
    Ok(pipeline.record_driver(op, dialect, text.as_deref(), start_ns, end_ns, outcome, parent, component, peer, rows))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(activate, m)?)?;
    m.add_function(wrap_pyfunction!(deactivate, m)?)?;
    m.add_function(wrap_pyfunction!(driver_call, m)?)?;
    Ok(())
}
