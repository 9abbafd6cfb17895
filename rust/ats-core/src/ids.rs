//! Random W3C trace and span ids, generated without a lock or a syscall.
//!
//! Each thread runs a splitmix64 sequence seeded from the OS-keyed hasher.
//! A forked child would replay its parent's sequence, so the state is
//! reseeded whenever the fork generation changes.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::flusher::fork::{fork_generation, install_fork_hook};

thread_local! {
    /// (state, fork generation the state was seeded in); state 0 = unseeded.
    static STATE: Cell<(u64, u64)> = const { Cell::new((0, u64::MAX)) };
}

fn fresh_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0));
    h.finish() | 1
}

/// Runs `f` with this thread's generator: one thread-local access for all the
/// numbers `f` draws (in a shared library each access is a call).
fn with_rng<T>(f: impl FnOnce(&mut dyn FnMut() -> u64) -> T) -> T {
    STATE.with(|cell| {
        let (mut state, generation) = cell.get();
        let now_generation = fork_generation();
        if state == 0 || generation != now_generation {
            install_fork_hook();
            state = fresh_seed();
        }
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let out = f(&mut next);
        cell.set((state, now_generation));
        out
    })
}

fn span_id_from(next: &mut dyn FnMut() -> u64) -> u64 {
    loop {
        let id = next();
        if id != 0 {
            return id;
        }
    }
}

fn trace_id_from(next: &mut dyn FnMut() -> u64) -> u128 {
    loop {
        let id = (u128::from(next()) << 64) | u128::from(next());
        if id != 0 {
            return id;
        }
    }
}

/// A non-zero random span id.
pub fn new_span_id() -> u64 {
    with_rng(span_id_from)
}

/// A non-zero random trace id. The low 64 bits are uniformly random, which is
/// what trace-id ratio sampling reads.
pub fn new_trace_id() -> u128 {
    with_rng(trace_id_from)
}

/// A new trace id and the id of its root span, drawn together.
pub fn new_trace_and_span_id() -> (u128, u64) {
    with_rng(|next| (trace_id_from(next), span_id_from(next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_nonzero_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(new_span_id()));
        }
        assert_ne!(new_trace_id(), new_trace_id());
    }

    #[test]
    fn threads_get_different_sequences() {
        let a: Vec<u64> = std::thread::spawn(|| (0..4).map(|_| new_span_id()).collect()).join().unwrap();
        let b: Vec<u64> = std::thread::spawn(|| (0..4).map(|_| new_span_id()).collect()).join().unwrap();
        assert_ne!(a, b);
    }
}
