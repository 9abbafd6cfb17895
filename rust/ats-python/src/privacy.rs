//! Bindings for `ats_core::scrub`.

use std::borrow::Cow;

use ats_core::scrub::{default_scrubber, ExtraPattern, Scrubber};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::guard::guarded;
use crate::text::lossy;

/// Texts above this size are scrubbed with the GIL released.
const RELEASE_GIL_ABOVE_BYTES: usize = 64 * 1024;
/// What a failed scrub returns: nothing of the input may pass through.
const SCRUB_FAILED: &str = "[REDACTED]";

fn scrub_text<'py>(py: Python<'py>, text: &Bound<'py, PyString>, scrubber: &Scrubber) -> Bound<'py, PyString> {
    let input = lossy(text);
    let input_is_exact = matches!(input, Cow::Borrowed(_));
    if input.len() > RELEASE_GIL_ABOVE_BYTES {
        let owned = input.into_owned();
        let out = py.allow_threads(|| guarded("privacy.scrub", || SCRUB_FAILED.to_string(), || scrubber.scrub(&owned).into_owned()));
        return PyString::new(py, &out);
    }
    // `None` marks a caught failure, so it can never be mistaken for "unchanged".
    match guarded("privacy.scrub", || None, || Some(scrubber.scrub(&input))) {
        // Nothing to redact: hand back the caller's own object, no copy.
        Some(Cow::Borrowed(_)) if input_is_exact => text.clone(),
        Some(out) => PyString::new(py, &out),
        None => PyString::new(py, SCRUB_FAILED),
    }
}

#[pyfunction]
fn scrub<'py>(py: Python<'py>, text: &Bound<'py, PyString>) -> Bound<'py, PyString> {
    scrub_text(py, text, default_scrubber())
}

/// A scrubber with extra patterns from configuration: `(name, regex, marker)`.
#[pyclass(module = "ats._native", frozen, name = "Scrubber")]
pub struct PyScrubber {
    inner: Scrubber,
}

#[pymethods]
impl PyScrubber {
    #[new]
    #[pyo3(signature = (extra_patterns=Vec::new()))]
    fn new(extra_patterns: Vec<(String, String, String)>) -> PyResult<Self> {
        let extra: Vec<ExtraPattern> = extra_patterns
            .into_iter()
            .map(|(name, regex, marker)| ExtraPattern { name, regex, marker })
            .collect();
        Scrubber::new(&extra).map(|inner| Self { inner }).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn scrub<'py>(&self, py: Python<'py>, text: &Bound<'py, PyString>) -> Bound<'py, PyString> {
        scrub_text(py, text, &self.inner)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScrubber>()?;
    m.add_function(wrap_pyfunction!(scrub, m)?)?;
    Ok(())
}
