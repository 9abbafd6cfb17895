//! `ats._native`: converts Python values to `ats-core` types and back, and
//! releases the GIL around batch work. No logic lives here.

mod active;
mod attrs;
mod guard;
mod ids;
mod metrics;
mod otlp;
mod pipeline;
mod privacy;
mod sampling;
mod sql;
mod stages;
mod store;
mod text;
mod traced_method;

use pyo3::prelude::*;

// The extension's own Rust allocations only (Python's stay with pymalloc): the flusher allocates
// per decoded record, and glibc malloc was a fifth of its instructions per span.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Number of Rust panics caught at the boundary since the process started.
#[pyfunction]
fn native_panics() -> u64 {
    guard::panics()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(native_panics, m)?)?;
    sql::register(m)?;
    privacy::register(m)?;
    pipeline::register(m)?;
    active::register(m)?;
    sampling::register(m)?;
    metrics::register(m)?;
    store::register(m)?;
    Ok(())
}
