//! Bindings for `ats_core::sql`: normalise, fingerprint, plan hash.

use std::sync::{Arc, OnceLock};

use ats_core::record::{air_id_string, plan_hash_string};
use ats_core::sql::{self, Dialect, Normalized as CoreNormalized, StatementCache};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::guard::guarded;
use crate::text::lossy;

/// Statements larger than this are normalised but not cached: one huge
/// statement must not evict the working set.
const CACHE_MAX_STATEMENT_BYTES: usize = 16 * 1024;
const CACHE_MAX_ENTRIES: usize = 4096;
const CACHE_MAX_BYTES: usize = 8 * 1024 * 1024;

pub fn statement_cache() -> &'static StatementCache {
    static CACHE: OnceLock<StatementCache> = OnceLock::new();
    CACHE.get_or_init(|| StatementCache::new(CACHE_MAX_ENTRIES, CACHE_MAX_BYTES))
}

pub fn parse_dialect(dialect: Option<&str>) -> PyResult<Dialect> {
    // Canonical names first: plugins pass them on every statement.
    match dialect {
        None | Some("generic") => Ok(Dialect::Generic),
        Some("sqlite") => Ok(Dialect::Sqlite),
        Some("postgresql") => Ok(Dialect::Postgresql),
        Some("mysql") => Ok(Dialect::Mysql),
        Some(name) => name.parse::<Dialect>().map_err(|e| PyValueError::new_err(e.to_string())),
    }
}

pub fn normalize_cached(sql_text: &str, dialect: Dialect) -> Arc<CoreNormalized> {
    if sql_text.len() <= CACHE_MAX_STATEMENT_BYTES {
        statement_cache().get_or_normalize(sql_text, dialect)
    } else {
        Arc::new(sql::normalize(sql_text, dialect))
    }
}

/// Result of `ats.sql.normalize`: safe to put in telemetry as-is.
#[pyclass(module = "ats._native", frozen, name = "Normalized")]
pub struct PyNormalized {
    inner: Arc<CoreNormalized>,
    dialect: Dialect,
}

#[pymethods]
impl PyNormalized {
    /// The sanitised statement (`db.statement` / `db.query.text`).
    #[getter]
    fn text(&self) -> &str {
        &self.inner.text
    }
    #[getter]
    fn air_id(&self) -> String {
        air_id_string(self.inner.air_id)
    }
    #[getter]
    fn operation(&self) -> &str {
        &self.inner.operation
    }
    #[getter]
    fn tables<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.tables.iter())
    }
    #[getter]
    fn summary(&self) -> &str {
        &self.inner.summary
    }
    #[getter]
    fn dialect(&self) -> &'static str {
        self.dialect.as_str()
    }
    fn __repr__(&self) -> String {
        format!(
            "Normalized(text={:?}, air_id={:?}, operation={:?}, tables={:?}, summary={:?})",
            self.inner.text,
            air_id_string(self.inner.air_id),
            self.inner.operation,
            self.inner.tables,
            self.inner.summary
        )
    }
}

fn failed_normalization() -> Arc<CoreNormalized> {
    // Nothing of the input survives: the safe answer when the lexer itself failed.
    Arc::new(CoreNormalized { text: "?".into(), air_id: 0, operation: String::new(), tables: Vec::new(), summary: String::new() })
}

#[pyfunction]
#[pyo3(signature = (sql, dialect=None))]
fn normalize(py: Python<'_>, sql: &Bound<'_, PyString>, dialect: Option<&str>) -> PyResult<PyNormalized> {
    let dialect = parse_dialect(dialect)?;
    let text = lossy(sql);
    let inner = if text.len() > CACHE_MAX_STATEMENT_BYTES {
        // Big statements: lex without the GIL so other threads keep running.
        let owned = text.into_owned();
        py.allow_threads(|| guarded("sql.normalize", failed_normalization, || normalize_cached(&owned, dialect)))
    } else {
        guarded("sql.normalize", failed_normalization, || normalize_cached(&text, dialect))
    };
    Ok(PyNormalized { inner, dialect })
}

#[pyfunction]
fn plan_fingerprint(py: Python<'_>, plan_json: &Bound<'_, PyString>) -> PyResult<String> {
    let text = lossy(plan_json).into_owned();
    let result = py.allow_threads(|| {
        guarded("sql.plan_fingerprint", || Err("internal error".to_string()), || {
            sql::plan_fingerprint(&text).map_err(|e| e.to_string())
        })
    });
    result.map(plan_hash_string).map_err(PyValueError::new_err)
}

#[pyfunction]
fn statement_cache_stats() -> (u64, u64, u64, usize, usize) {
    let s = statement_cache().stats();
    (s.hits, s.misses, s.evictions, s.entries, s.bytes)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyNormalized>()?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(plan_fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(statement_cache_stats, m)?)?;
    m.add("FINGERPRINT_VERSION", sql::FINGERPRINT_VERSION)?;
    Ok(())
}
