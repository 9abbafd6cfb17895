//! The `otlp` dict of `Pipeline(...)` → `OtlpConfig`. Keys are fixed (the
//! Python configuration layer builds the dict); an unknown key or a bad
//! value is a `ValueError` naming the key and what is allowed.

use std::path::PathBuf;
use std::time::Duration;

use ats_core::export::{Compression, ConfigError, OtlpConfig, Protocol, Temporality};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

const KEYS: &[&str] = &[
    "traces_endpoint",
    "metrics_endpoint",
    "logs_endpoint",
    "protocol",
    "headers",
    "compression",
    "timeout_ms",
    "certificate",
    "client_key",
    "client_certificate",
    "service_name",
    "resource_attributes",
    "temporality",
    "spool_dir",
    "spool_max_bytes",
];

fn bad(key: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let shown = got.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
    PyValueError::new_err(format!("otlp.{key}: must be {expected}, got {shown}"))
}

fn config_err(e: ConfigError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn opt_str(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if v.is_none() {
        return Ok(None);
    }
    v.extract::<String>().map(Some).map_err(|_| bad(key, "a str or None", v))
}

fn string(key: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    v.extract::<String>().map_err(|_| bad(key, "a str", v))
}

fn pairs(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    v.extract::<Vec<(String, String)>>().map_err(|_| bad(key, "a list of (str, str)", v))
}

fn positive(key: &str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
    match v.extract::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(key, "an int > 0", v)),
    }
}

/// Builds and validates the sink configuration from the `otlp` kwarg.
pub fn parse_otlp(d: &Bound<'_, PyDict>) -> PyResult<OtlpConfig> {
    let mut c = OtlpConfig::default();
    for (k, v) in d.iter() {
        let key: String = k.extract().map_err(|_| PyValueError::new_err("otlp: keys must be str"))?;
        match key.as_str() {
            "traces_endpoint" => c.traces_endpoint = opt_str(&key, &v)?,
            "metrics_endpoint" => c.metrics_endpoint = opt_str(&key, &v)?,
            "logs_endpoint" => c.logs_endpoint = opt_str(&key, &v)?,
            "protocol" => c.protocol = Protocol::parse(&string(&key, &v)?).map_err(config_err)?,
            "headers" => c.headers = pairs(&key, &v)?,
            "compression" => c.compression = Compression::parse(&string(&key, &v)?).map_err(config_err)?,
            "timeout_ms" => c.timeout = Duration::from_millis(positive(&key, &v)?),
            "certificate" => c.tls.certificate = opt_str(&key, &v)?.map(PathBuf::from),
            "client_key" => c.tls.client_key = opt_str(&key, &v)?.map(PathBuf::from),
            "client_certificate" => c.tls.client_certificate = opt_str(&key, &v)?.map(PathBuf::from),
            "service_name" => c.encoding.service_name = string(&key, &v)?,
            "resource_attributes" => c.encoding.resource_attributes = pairs(&key, &v)?,
            "temporality" => c.encoding.temporality = Temporality::parse(&string(&key, &v)?).map_err(config_err)?,
            "spool_dir" => c.spool_dir = opt_str(&key, &v)?.map(PathBuf::from),
            "spool_max_bytes" => c.spool_max_bytes = positive(&key, &v)?,
            other => {
                return Err(PyValueError::new_err(format!(
                    "otlp: unknown key {other:?}; allowed: {}",
                    KEYS.join(", ")
                )))
            }
        }
    }
    c.validate().map_err(config_err)?;
    Ok(c)
}
