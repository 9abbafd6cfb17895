//! The boundary guard: a Rust panic never reaches Python as a crash.
//!
//! Every entry point runs its body through [`guarded`]. A panic is caught,
//! counted (readable as `ats._native.native_panics()`), reported once on
//! stderr, and the entry point returns its documented safe fallback instead.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

static PANICS: AtomicU64 = AtomicU64::new(0);

pub fn guarded<T>(entry_point: &'static str, fallback: impl FnOnce() -> T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            if PANICS.fetch_add(1, Ordering::Relaxed) == 0 {
                // Only the first one: a hot path that panics repeatedly must not flood stderr.
                eprintln!("ats: internal error in {entry_point}; telemetry continues with a safe fallback");
            }
            fallback()
        }
    }
}

pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}
