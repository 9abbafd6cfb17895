//! `ats._native`: converts Python values to `ats-core` types and back, and
//! releases the GIL around batch work. No logic lives here.

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
