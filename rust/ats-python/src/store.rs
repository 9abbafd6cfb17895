//! Bindings for `ats_core::sink::store_query`: read a store through the
//! writer's SQLite (see that module for why Python's `sqlite3` must not).

use std::path::PathBuf;

use ats_core::sink::store_query::{query, StoreValue};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::guard::guarded;

fn to_value(v: &Bound<'_, PyAny>) -> PyResult<StoreValue> {
    if v.is_none() {
        Ok(StoreValue::Null)
    } else if v.is_instance_of::<pyo3::types::PyBool>() || v.is_instance_of::<pyo3::types::PyInt>() {
        Ok(StoreValue::Integer(v.extract()?))
    } else if v.is_instance_of::<pyo3::types::PyFloat>() {
        Ok(StoreValue::Real(v.extract()?))
    } else if v.is_instance_of::<pyo3::types::PyString>() {
        Ok(StoreValue::Text(v.extract()?))
    } else if let Ok(b) = v.downcast::<PyBytes>() {
        Ok(StoreValue::Blob(b.as_bytes().to_vec()))
    } else {
        Err(PyTypeError::new_err(format!("store_query: unsupported parameter type {}", v.get_type().name()?)))
    }
}

fn to_py(py: Python<'_>, v: StoreValue) -> PyResult<Bound<'_, PyAny>> {
    Ok(match v {
        StoreValue::Null => py.None().into_bound(py),
        StoreValue::Integer(i) => i.into_pyobject(py)?.into_any(),
        StoreValue::Real(f) => f.into_pyobject(py)?.into_any(),
        StoreValue::Text(s) => s.into_pyobject(py)?.into_any(),
        StoreValue::Blob(b) => PyBytes::new(py, &b).into_any(),
    })
}

/// Every row of one read-only statement on the store at `path`, as tuples.
#[pyfunction]
#[pyo3(signature = (path, sql, params = Vec::new()))]
fn store_query<'py>(
    py: Python<'py>,
    path: PathBuf,
    sql: &str,
    params: Vec<Bound<'py, PyAny>>,
) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    let params = params.iter().map(to_value).collect::<PyResult<Vec<_>>>()?;
    let rows = guarded(
        "store_query",
        || Err("internal error".to_owned()),
        || py.allow_threads(|| query(&path, sql, params).map_err(|e| e.to_string())),
    )
    .map_err(PyRuntimeError::new_err)?;
    rows.into_iter()
        .map(|row| PyTuple::new(py, row.into_iter().map(|v| to_py(py, v)).collect::<PyResult<Vec<_>>>()?))
        .collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(store_query, m)?)?;
    Ok(())
}
