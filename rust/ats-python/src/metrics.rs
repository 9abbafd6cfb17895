//! Bindings for `ats_core::metrics`: a registry with counter, gauge and
//! histogram handles. Recording takes an optional label dict.

use ats_core::metrics::{CounterHandle, GaugeHandle, HistogramHandle, MetricOptions, MetricsRegistry};
use ats_core::record::{MetricKind, MetricPoint};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::text::lossy;

use ats_core::clock::now_ns;

/// Runs `f` over `labels` as `(&str, &str)` pairs; non-string keys or values are stringified.
fn with_labels<T>(labels: Option<&Bound<'_, PyDict>>, f: impl FnOnce(&[(&str, &str)]) -> T) -> PyResult<T> {
    let Some(dict) = labels else { return Ok(f(&[])) };
    let mut owned: Vec<(Bound<'_, PyString>, Bound<'_, PyString>)> = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        owned.push((k.str()?, v.str()?));
    }
    let texts: Vec<_> = owned.iter().map(|(k, v)| (lossy(k), lossy(v))).collect();
    let pairs: Vec<(&str, &str)> = texts.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    Ok(f(&pairs))
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

#[pyclass(module = "ats._native", frozen, name = "Metrics")]
pub struct PyMetrics {
    pub(crate) registry: MetricsRegistry,
}

impl PyMetrics {
    pub fn from_registry(registry: MetricsRegistry) -> Self {
        Self { registry }
    }

    pub fn fresh_registry() -> MetricsRegistry {
        MetricsRegistry::new(now_ns())
    }
}

#[pymethods]
impl PyMetrics {
    #[new]
    fn new() -> Self {
        Self { registry: Self::fresh_registry() }
    }

    fn counter(&self, name: &str, unit: &str) -> PyResult<PyCounter> {
        self.registry.counter(name, unit).map(|inner| PyCounter { inner }).map_err(value_error)
    }

    fn gauge(&self, name: &str, unit: &str) -> PyResult<PyGauge> {
        self.registry.gauge(name, unit).map(|inner| PyGauge { inner }).map_err(value_error)
    }

    /// `bounds`: the explicit bucket bounds the export counts exactly (default: OTel's
    /// millisecond bounds); a specification that names its buckets gets exactly those.
    #[pyo3(signature = (name, unit, bounds=None))]
    fn histogram(&self, name: &str, unit: &str, bounds: Option<Vec<f64>>) -> PyResult<PyHistogram> {
        let mut options = MetricOptions::default();
        if let Some(bounds) = bounds {
            options.histogram.explicit_bounds = bounds;
        }
        self.registry
            .histogram_with(name, unit, &options)
            .map(|inner| PyHistogram { inner })
            .map_err(value_error)
    }

    /// Cumulative points as plain dicts (name, unit, kind, labels, value, and for histograms
    /// count/sum/min/max/bounds/counts).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for p in self.registry.snapshot(now_ns()) {
            out.append(point_dict(py, &p)?)?;
        }
        Ok(out)
    }
}

fn point_dict<'py>(py: Python<'py>, p: &MetricPoint) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &p.name)?;
    d.set_item("unit", &p.unit)?;
    let kind = match p.kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
    };
    d.set_item("kind", kind)?;
    let labels = PyDict::new(py);
    for (k, v) in &p.labels {
        labels.set_item(k, v)?;
    }
    d.set_item("labels", labels)?;
    d.set_item("value", p.value)?;
    if let Some(h) = &p.histogram {
        d.set_item("count", h.count)?;
        d.set_item("sum", h.sum)?;
        d.set_item("min", h.min)?;
        d.set_item("max", h.max)?;
        d.set_item("bounds", h.bounds.clone())?;
        d.set_item("counts", h.counts.clone())?;
    }
    Ok(d)
}

#[pyclass(module = "ats._native", frozen, name = "Counter")]
pub struct PyCounter {
    inner: CounterHandle,
}

#[pymethods]
impl PyCounter {
    #[pyo3(signature = (value=1, labels=None))]
    fn add(&self, value: u64, labels: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        with_labels(labels, |l| self.inner.add(l, value))
    }
}

#[pyclass(module = "ats._native", frozen, name = "Gauge")]
pub struct PyGauge {
    inner: GaugeHandle,
}

#[pymethods]
impl PyGauge {
    #[pyo3(signature = (value, labels=None))]
    fn set(&self, value: f64, labels: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        with_labels(labels, |l| self.inner.set(l, value))
    }
}

#[pyclass(module = "ats._native", frozen, name = "Histogram")]
pub struct PyHistogram {
    inner: HistogramHandle,
}

#[pymethods]
impl PyHistogram {
    #[pyo3(signature = (value, labels=None))]
    fn record(&self, value: f64, labels: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        with_labels(labels, |l| self.inner.record(l, value))
    }

    /// Estimated quantile (within 1 % relative error) for one label set; None if empty.
    #[pyo3(signature = (q, labels=None))]
    fn quantile(&self, q: f64, labels: Option<&Bound<'_, PyDict>>) -> PyResult<Option<f64>> {
        with_labels(labels, |l| self.inner.snapshot(l).and_then(|s| s.quantile(q)))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMetrics>()?;
    m.add_class::<PyCounter>()?;
    m.add_class::<PyGauge>()?;
    m.add_class::<PyHistogram>()?;
    Ok(())
}
