//! Text ids from Python → integers for the envelope.
//!
//! Trace ids cross the boundary as 32-hex strings (the W3C `traceparent`
//! form): a 128-bit int is slow to convert under the stable ABI, and the
//! hand-rolled parse below is a few instructions per digit on the hot path.

use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

#[inline]
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Exactly `digits` hex digits (no sign, no prefix) → value.
#[inline]
fn parse_hex(text: &str, digits: usize) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.len() != digits {
        return None;
    }
    bytes.iter().try_fold(0u128, |acc, &b| Some((acc << 4) | u128::from(hex_digit(b)?)))
}

pub fn parse_trace_id(hex: &str) -> PyResult<u128> {
    parse_hex(hex, 32).ok_or_else(|| PyValueError::new_err(format!("trace_id must be 32 hex digits, got {hex:?}")))
}

/// `air:Q-0123456789abcdef` / `ph:0123456789abcdef` → the 64-bit hash.
pub fn parse_fingerprint(text: &str, prefix: &str) -> PyResult<u64> {
    text.strip_prefix(prefix)
        .and_then(|h| parse_hex(h, 16))
        .map(|v| v as u64)
        .ok_or_else(|| PyValueError::new_err(format!("expected {prefix} followed by 16 hex digits, got {text:?}")))
}
