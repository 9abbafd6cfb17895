//! Wall-clock time as Unix nanoseconds, the timestamp every record carries.

/// Now, in nanoseconds since the Unix epoch (0 if the clock is before it).
///
/// One `clock_gettime(CLOCK_REALTIME)` (a vDSO call, no syscall): about half
/// the instructions of `SystemTime::now().duration_since(UNIX_EPOCH)` and its
/// `u128` nanosecond arithmetic, on the per-call hot path.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if rc != 0 || ts.tv_sec < 0 {
        return 0;
    }
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_system_time() {
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        let now = now_ns();
        let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert!(before <= now && now <= after, "{before} {now} {after}");
    }
}
