//! The process's active pipeline and the context it reads, for plugins'
//! per-call `driver_call`: one native call that finds the current span,
//! checks suppression, stamps the end time and records — no Python frame
//! between the library call and the ring.
//!
//! The runtime (`ats._runtime`) activates a pipeline at `init`/`reload` and
//! deactivates it at `shutdown`; the context variables stay Python objects
//! (they are what `ats.span` and the OpenTelemetry bridge set).

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyWeakrefMethods, PyWeakrefReference};

use ats_core::query::DriverOp;
use ats_core::sql::{interned, Dialect, Normalized as CoreNormalized};

use crate::guard::guarded;
use crate::ids::parse_trace_id;
use crate::pipeline::{parse_op, Outcome, ParentRef, Peer, PyPipeline, Statement};
use crate::sql::{normalize_cached, parse_dialect};
use crate::text::lossy;
use crate::traced_method::new_traced_method;

struct Active {
    pipeline: Py<PyPipeline>,
    /// The context variables of the current span and of the suppression flag.
    span_var: Py<PyAny>,
    suppressed_var: Py<PyAny>,
    /// Called when no ATS span is current and OpenTelemetry is imported.
    otel_probe: Py<PyAny>,
    sys_modules: Py<PyDict>,
    /// Whether `opentelemetry.trace` was in `sys.modules` when it had this many entries: looked
    /// up again only when the count changes (an import adds an entry).
    modules_seen: AtomicUsize,
    otel_imported: AtomicBool,
}

extern "C" {
    // The C API of `ContextVar.get()` (CPython >= 3.7; outside the limited API).
    fn PyContextVar_Get(var: *mut ffi::PyObject, default: *mut ffi::PyObject, value: *mut *mut ffi::PyObject) -> c_int;
}

/// `var.get()` without a method call; `None` when unset and without a default.
fn context_var_get<'py>(py: Python<'py>, var: &Py<PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let mut value = std::ptr::null_mut();
    // SAFETY: `var` was checked to be a ContextVar in `activate`; the GIL is held.
    unsafe {
        if PyContextVar_Get(var.as_ptr(), std::ptr::null_mut(), &mut value) < 0 {
            return Err(PyErr::take(py).unwrap_or_else(|| PyRuntimeError::new_err("ContextVar.get failed")));
        }
        Ok(if value.is_null() { py.None().into_bound(py) } else { Bound::from_owned_ptr(py, value) })
    }
}

impl Active {
    fn otel_imported(&self, py: Python<'_>) -> PyResult<bool> {
        let modules = self.sys_modules.bind(py);
        let count = modules.len();
        if count != self.modules_seen.load(Ordering::Relaxed) {
            self.otel_imported.store(modules.contains(intern!(py, "opentelemetry.trace"))?, Ordering::Relaxed);
            self.modules_seen.store(count, Ordering::Relaxed);
        }
        Ok(self.otel_imported.load(Ordering::Relaxed))
    }
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
    let context_var = py.import("contextvars")?.getattr("ContextVar")?;
    for var in [span_var, suppressed_var] {
        if !var.get_type().is(&context_var) {
            return Err(PyTypeError::new_err("activate: span_var and suppressed_var must be contextvars.ContextVar"));
        }
    }
    let active = Active {
        pipeline,
        span_var: span_var.clone().unbind(),
        suppressed_var: suppressed_var.clone().unbind(),
        otel_probe,
        sys_modules,
        modules_seen: AtomicUsize::new(usize::MAX),
        otel_imported: AtomicBool::new(false),
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

use ats_core::clock::now_ns;

/// The current span as a parent, or a fresh root.
fn parent_of(py: Python<'_>, a: &Active) -> PyResult<ParentRef> {
    let mut span = context_var_get(py, &a.span_var)?;
    if span.is_none() && a.otel_imported(py)? {
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
    // i64, not u64: CPython 3.11 converts a multi-digit int to u64 through its slow byte-array
    // path, to i64 (a C long here) digit by digit; a time in ns fits either way until 2262.
    start_ns: i64,
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
    let op = parse_op(op)?;
    let dialect = parse_dialect(Some(dialect))?;
    let peer = Peer { name: peer_name, port: peer_port, db_namespace };
    let outcome = Outcome { error_type, status_code, slo_class: None };
    let start_ns = u64::try_from(start_ns).unwrap_or(0);
    let Some(parent) = context(py, &active)? else { return Ok(0) };
    let statement = guarded("driver_call", || None, || sql.map(|s| normalize_cached(&lossy(s), dialect)));
    let statement = statement.as_deref().map(|s| Statement { normalized: s, id: None });
    let call = Call { op, dialect, statement, origin_id: None, start_ns, end_ns, outcome, component, peer, rows };
    Ok(record_call(&active, parent, call))
}

/// One finished database call, as `driver_call` and `CallTracer` receive it.
struct Call<'a> {
    op: DriverOp,
    dialect: Dialect,
    statement: Option<Statement<'a>>,
    origin_id: Option<u32>,
    start_ns: u64,
    end_ns: u64,
    outcome: Outcome<'a>,
    component: &'a str,
    peer: Peer<'a>,
    rows: i64,
}

/// Set once ATS's suppression flag has been used in this process (its side
/// workers and batch drain set it): until then reading it per call is skipped.
static SUPPRESSION_USED: AtomicBool = AtomicBool::new(false);

/// Called before the suppression context variable is first set.
#[pyfunction]
fn suppression_used() {
    SUPPRESSION_USED.store(true, Ordering::SeqCst);
}

/// The parent of a call recorded now, or `None` when recording is suppressed here.
fn context(py: Python<'_>, active: &Active) -> PyResult<Option<ParentRef>> {
    if SUPPRESSION_USED.load(Ordering::Relaxed) && context_var_get(py, &active.suppressed_var)?.is_truthy()? {
        return Ok(None);
    }
    parent_of(py, active).map(Some)
}

/// Records `call` under `parent`; the span id, or 0 when nothing was recorded.
fn record_call(active: &Active, parent: ParentRef, call: Call<'_>) -> u64 {
    active.pipeline.get().record_driver(
        call.op, call.dialect, call.statement, call.origin_id, call.start_ns, call.end_ns, call.outcome, parent, call.component,
        call.peer, call.rows,
    )
}

/// What a tracer remembers, direct-mapped on object addresses: statements by the identity of
/// their `str` (programs pass the same constant objects on every call, so a text is neither
/// read, hashed nor looked up again; an entry holds its string, so the address cannot be
/// reused meanwhile) and connections' origin ids.
const MEMO_SLOTS: usize = 64;

struct Memo {
    statements: [Option<StatementMemo>; MEMO_SLOTS],
    connections: [Option<ConnectionMemo>; MEMO_SLOTS],
    /// The last connection class found without weak references (its connections' records
    /// carry their namespace inline rather than fail to be remembered on every call).
    unreferenceable: usize,
}

struct ConnectionMemo {
    connection: Py<PyWeakrefReference>,
    /// The pipeline the id was made for.
    serial: u64,
    origin_id: u32,
}

fn memo_slot(object: *mut ffi::PyObject) -> usize {
    // Objects are 16-byte aligned: the low bits carry nothing.
    (object as usize >> 4) % MEMO_SLOTS
}

struct StatementMemo {
    sql: Py<PyString>,
    normalized: Arc<CoreNormalized>,
    id: Option<u32>,
}

/// A library function made into a traced database call: its `method()` runs `func(target, sql[,
/// params])` and records it (start and end stamped here, failure as its exception class, the
/// database namespace read from `target._ats_db`, or `target.connection._ats_db` for a cursor),
/// then returns the result or re-raises the very exception. In a class body the method is the
/// whole override: no Python frame, time read, try block or argument list in Python.
#[pyclass(module = "ats._native", frozen, name = "CallTracer")]
pub struct CallTracer {
    func: Py<PyAny>,
    op: DriverOp,
    dialect: Dialect,
    component: String,
    via_connection: bool,
    /// Called with the exception when recording fails (never with the library's own).
    on_error: Py<PyAny>,
    enabled: AtomicBool,
    memo: Mutex<Box<Memo>>,
}

#[pymethods]
impl CallTracer {
    #[new]
    #[pyo3(signature = (func, op, dialect, component, via_connection, on_error))]
    fn new(
        func: Py<PyAny>,
        op: u8,
        dialect: &str,
        component: String,
        via_connection: bool,
        on_error: Py<PyAny>,
    ) -> PyResult<Self> {
        Ok(CallTracer {
            func,
            op: parse_op(op)?,
            dialect: parse_dialect(Some(dialect))?,
            component,
            via_connection,
            on_error,
            enabled: AtomicBool::new(true),
            memo: Mutex::new(Box::new(Memo {
                statements: std::array::from_fn(|_| None),
                connections: std::array::from_fn(|_| None),
                unreferenceable: 0,
            })),
        })
    }

    /// Off: calls are passed through unrecorded (the plugin was uninstrumented, but objects
    /// made while it was instrumented keep their methods).
    #[getter]
    fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// The tracer as a method for a class body: `cursor.execute(...)` calls it with no Python
    /// frame in between (see `traced_method`); callable as `method(target, sql[, params])` too.
    fn method(slf: Bound<'_, Self>) -> PyResult<PyObject> {
        new_traced_method(slf.py(), slf)
    }
}

impl CallTracer {
    pub(crate) fn func(&self) -> &Py<PyAny> {
        &self.func
    }

    /// [`Self::run`] for a C caller: the result as a new reference, or NULL with the error set.
    pub(crate) fn run_raw<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        sql: &Bound<'py, PyAny>,
        invoke: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    ) -> *mut pyo3::ffi::PyObject {
        match self.run(py, target, sql, invoke) {
            Ok(value) => value.into_ptr(),
            Err(err) => {
                err.restore(py);
                std::ptr::null_mut()
            }
        }
    }

    fn run<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        sql: &Bound<'py, PyAny>,
        invoke: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !self.enabled.load(Ordering::Relaxed) {
            return invoke();
        }
        let start_ns = now_ns();
        let result = invoke();
        let recorded = guarded("CallTracer.record", || Ok(()), || self.record(py, target, sql, start_ns, &result));
        if let Err(err) = recorded {
            // Telemetry never hurts the call: the failure is only reported to the plugin.
            let _ = self.on_error.call1(py, (err.into_value(py),));
        }
        result
    }

    fn record<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        sql: &Bound<'py, PyAny>,
        start_ns: u64,
        result: &PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let end_ns = now_ns();
        let Some(active) = current() else { return Ok(()) };
        let error_name = match result {
            Err(err) => Some(err.get_type(py).name()?),
            Ok(_) => None,
        };
        let error_type = error_name.as_ref().map(|n| n.to_str()).transpose()?;
        let owner = if self.via_connection { target.getattr(intern!(py, "connection"))? } else { target.clone() };
        let Some(parent) = context(py, &active)? else { return Ok(()) };
        let pipeline = active.pipeline.get();
        let record = |statement: Option<Statement<'_>>, origin: &Origin<'_>| {
            let (origin_id, db_namespace) = match origin {
                Origin::Interned(id) => (Some(*id), ""),
                Origin::Inline(namespace) => (None, *namespace),
            };
            let call = Call {
                op: self.op,
                dialect: self.dialect,
                statement,
                origin_id,
                start_ns,
                end_ns,
                outcome: Outcome { error_type, status_code: None, slo_class: None },
                component: &self.component,
                peer: Peer { name: "", port: 0, db_namespace },
                rows: -1,
            };
            record_call(&active, parent, call);
        };
        // Only re-entry (a query run from inside the OpenTelemetry probe) finds the memo busy.
        let Ok(mut memo) = self.memo.try_lock() else {
            let namespace = namespace_of(&owner)?;
            let normalized = sql.downcast::<PyString>().ok().map(|s| normalize_cached(&lossy(s), self.dialect));
            let statement = normalized.as_deref().map(|n| Statement { normalized: n, id: None });
            record(statement, &Origin::Inline(namespace.to_str()?));
            return Ok(());
        };
        let memo = &mut **memo;
        let namespace;
        let origin = match self.origin_of(py, memo, &owner, pipeline)? {
            Some(id) => Origin::Interned(id),
            None => {
                namespace = namespace_of(&owner)?;
                Origin::Inline(namespace.to_str()?)
            }
        };
        let Ok(sql) = sql.downcast::<PyString>() else {
            record(None, &origin);
            return Ok(());
        };
        let slot = &mut memo.statements[memo_slot(sql.as_ptr())];
        if !slot.as_ref().is_some_and(|m| m.sql.as_ptr() == sql.as_ptr()) {
            let normalized = normalize_cached(&lossy(sql), self.dialect);
            let id = interned::intern(&normalized);
            let old = slot.replace(StatementMemo { sql: sql.clone().unbind(), normalized, id });
            if let Some(old) = old {
                old.sql.drop_ref(py);
            }
        }
        if let Some(m) = slot.as_ref() {
            record(Some(Statement { normalized: &m.normalized, id: m.id }), &origin);
        }
        Ok(())
    }

    /// The origin id of calls on `connection` through `pipeline`, remembered per connection
    /// (by a weak reference, so a new connection at a dead one's address is not mistaken for
    /// it); `None` when the origin table is full.
    fn origin_of(
        &self,
        py: Python<'_>,
        memo: &mut Memo,
        connection: &Bound<'_, PyAny>,
        pipeline: &PyPipeline,
    ) -> PyResult<Option<u32>> {
        let class = connection.get_type().as_ptr() as usize;
        if class == memo.unreferenceable {
            return Ok(None);
        }
        let slot = &mut memo.connections[memo_slot(connection.as_ptr())];
        if let Some(m) = slot.as_ref() {
            if m.serial == pipeline.serial() && m.connection.bind(py).upgrade().is_some_and(|c| c.is(connection)) {
                return Ok(Some(m.origin_id));
            }
        }
        let Ok(weak) = PyWeakrefReference::new(connection) else {
            memo.unreferenceable = class;
            return Ok(None);
        };
        let namespace = namespace_of(connection)?;
        let Some(origin_id) = pipeline.origin_id(self.dialect, &self.component, namespace.to_str()?) else {
            return Ok(None);
        };
        let old = slot.replace(ConnectionMemo { connection: weak.unbind(), serial: pipeline.serial(), origin_id });
        if let Some(old) = old {
            old.connection.drop_ref(py);
        }
        Ok(Some(origin_id))
    }
}

/// The database namespace the plugin stored on a connection.
fn namespace_of<'py>(connection: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    Ok(connection.getattr(intern!(connection.py(), "_ats_db"))?.downcast_into::<PyString>()?)
}

/// What a record names its origin by.
enum Origin<'a> {
    Interned(u32),
    /// The namespace, inline (with the resource, dialect and component).
    Inline(&'a str),
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(activate, m)?)?;
    m.add_function(wrap_pyfunction!(deactivate, m)?)?;
    m.add_function(wrap_pyfunction!(driver_call, m)?)?;
    m.add_function(wrap_pyfunction!(suppression_used, m)?)?;
    m.add_class::<CallTracer>()?;
    Ok(())
}
