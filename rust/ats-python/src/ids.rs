//! Text ids from Python → integers for the envelope.
//!
//! Trace ids cross the boundary as 32-hex strings (the W3C `traceparent`
//! form): a 128-bit int is slow to convert under the stable ABI.

use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

pub fn parse_trace_id(hex: &str) -> PyResult<u128> {
    if hex.len() != 32 {
        return Err(PyValueError::new_err(format!("trace_id must be 32 hex digits, got {hex:?}")));
    }
    u128::from_str_radix(hex, 16).map_err(|_| PyValueError::new_err(format!("trace_id must be 32 hex digits, got {hex:?}")))
}

/// `air:Q-0123456789abcdef` / `ph:0123456789abcdef` → the 64-bit hash.
pub fn parse_fingerprint(text: &str, prefix: &str) -> PyResult<u64> {
    text.strip_prefix(prefix)
        .filter(|h| h.len() == 16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| PyValueError::new_err(format!("expected {prefix} followed by 16 hex digits, got {text:?}")))
}
