//! Python `str` → Rust text without ever failing.
//!
//! A `str` may hold lone surrogates (e.g. bytes decoded with `surrogateescape`);
//! those cannot be UTF-8, so they become U+FFFD: a defined result instead of an
//! exception inside the caller's database call.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::PyString;

pub fn lossy<'a>(s: &'a Bound<'_, PyString>) -> Cow<'a, str> {
    match s.to_str() {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(s.to_string_lossy().into_owned()),
    }
}
