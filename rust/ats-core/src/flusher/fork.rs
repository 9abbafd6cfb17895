//! Fork support.
//!
//! After `fork()` only the forking thread exists in the child: the flusher
//! thread is gone, and any lock it held at that instant stays held forever
//! in the child's copy of memory. The child must therefore never join, lock
//! or drop the inherited flusher, ring or sinks — it *abandons* them (leaks
//! them on purpose; the memory is a copy-on-write image anyway) and builds
//! fresh ones. The parent is untouched.
//!
//! Detection is cheap enough for the hot path: a `pthread_atfork` child
//! handler bumps a process-wide generation counter, and owners compare the
//! generation they were built in with the current one (one relaxed load).
//! [`Pipeline::ensure_fresh_after_fork`](super::Pipeline::ensure_fresh_after_fork)
//! additionally compares process ids, for forks that bypass libc.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use super::Flusher;
use crate::ring::Ring;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    // Async-signal-safe: a single atomic add.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Registers the child-side fork handler once per process (inherited by
/// children, so it keeps counting across nested forks).
pub fn install_fork_hook() {
    INSTALL.call_once(|| {
        #[cfg(unix)]
        // SAFETY: the handler only performs an atomic add.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
}

/// How many libc forks lie between the first process that installed the
/// hook and this one.
#[inline]
pub fn fork_generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Leaks a flusher inherited across fork: its thread does not exist here and
/// its locks may be held, so it must never be joined, locked or dropped.
pub fn abandon(flusher: Flusher) {
    std::mem::forget(flusher);
}

/// Leaks an inherited ring handle (its consumer is gone in this process).
pub fn abandon_ring(ring: Arc<Ring>) {
    std::mem::forget(ring);
}
