//! Python `str` → Rust text without ever failing.
//!
//! A `str` may hold lone surrogates (e.g. bytes decoded with `surrogateescape`);
//! those cannot be UTF-8, so each becomes one U+FFFD: a defined result instead of
//! an exception inside the caller's database call.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

pub fn lossy<'a>(s: &'a Bound<'_, PyString>) -> Cow<'a, str> {
    match s.to_str() {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(replace_surrogates(s)),
    }
}

/// The rare path: UTF-16 keeps lone surrogates as single code units, so the
/// lossy decode replaces each with exactly one U+FFFD.
fn replace_surrogates(s: &Bound<'_, PyString>) -> String {
    let encoded = s
        .call_method1("encode", ("utf-16-le", "surrogatepass"))
        .ok()
        .and_then(|b| b.downcast_into::<PyBytes>().ok());
    match encoded {
        Some(bytes) => {
            let units: Vec<u16> = bytes.as_bytes().chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        None => s.to_string_lossy().into_owned(),
    }
}
