//! Deterministic trace-id ratio sampling, bit-for-bit compatible with
//! OpenTelemetry's `TraceIdRatioBased`.
//!
//! The SDK (Python 1.x, and the spec's recommendation for the other SDKs)
//! computes `bound = round(rate * 2**64)` once and samples a trace iff the low
//! 64 bits of its id are `< bound`. Two details matter for exact agreement and
//! are reproduced here:
//!
//! - `rate * 2**64` is a float product (exact: a power-of-two scale), and
//!   Python's `round` on a float rounds half to even. Only rates below 2^-11
//!   have a fractional part to round.
//! - `bound` reaches `2**64` for rate 1.0, one more than a `u64` holds, so it
//!   is kept as `u128`.
//!
//! Golden vectors from the real SDK (`tests/golden/otel_ratio_vectors.json`)
//! pin this in `tests/sampling_otel_golden.rs`.
//!
//! Because the test is a threshold on one hash of the trace id, decisions
//! nest: a trace kept at rate `r` is kept at every rate `>= r`. The family
//! rules and the policy rely on that for traces to stay whole.

use super::{Decision, Sampler, SamplingError, SamplingInput};

/// 2^64 as an `f64` (exact).
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// Samples a fixed fraction of traces, decided from the trace id alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceIdRatio {
    ratio: f64,
    bound: u128,
}

impl TraceIdRatio {
    /// `ratio` must be within `[0, 1]`; NaN and anything outside is an error
    /// (OTel raises `ValueError` for the same inputs).
    pub fn new(ratio: f64) -> Result<Self, SamplingError> {
        // `contains` is false for NaN, which is what we want.
        if !(0.0..=1.0).contains(&ratio) {
            return Err(SamplingError::InvalidRatio { ratio });
        }
        Ok(Self {
            ratio,
            bound: bound_for_ratio(ratio),
        })
    }

    /// The configured ratio.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// OTel's `bound`: traces whose low 64 id bits are below it are sampled.
    pub fn bound(&self) -> u128 {
        self.bound
    }

    /// The decision as a bool; the hot path of every ratio-based sampler.
    #[inline]
    pub fn keeps(&self, trace_id: u128) -> bool {
        u128::from(trace_id as u64) < self.bound
    }
}

/// `round(ratio * 2**64)` with Python's round-half-to-even. `ratio` is in
/// `[0, 1]`, so the product is in `[0, 2^64]` and converts to `u128` exactly.
pub(crate) fn bound_for_ratio(ratio: f64) -> u128 {
    let scaled = (ratio * TWO_POW_64).round_ties_even();
    // Saturating float->int cast; in range by construction anyway.
    scaled as u128
}

impl Sampler for TraceIdRatio {
    #[inline]
    fn should_sample(&self, ctx: &SamplingInput<'_>) -> Decision {
        Decision::from_bool(self.keeps(ctx.trace_id))
    }

    fn description(&self) -> String {
        format!("TraceIdRatioBased{{{}}}", self.ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_range_and_nan() {
        for bad in [
            -0.1,
            1.000_000_1,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(TraceIdRatio::new(bad).is_err(), "{bad}");
        }
        assert!(TraceIdRatio::new(-0.0).is_ok());
    }

    #[test]
    fn bounds_match_python_rounding() {
        assert_eq!(TraceIdRatio::new(0.0).unwrap().bound(), 0);
        assert_eq!(TraceIdRatio::new(1.0).unwrap().bound(), 1u128 << 64);
        assert_eq!(TraceIdRatio::new(0.5).unwrap().bound(), 1u128 << 63);
        // 0.5, 1.5 and 2.5 units of 2^-64: ties go to even.
        let unit = 2f64.powi(-64);
        assert_eq!(TraceIdRatio::new(0.5 * unit).unwrap().bound(), 0);
        assert_eq!(TraceIdRatio::new(1.5 * unit).unwrap().bound(), 2);
        assert_eq!(TraceIdRatio::new(2.5 * unit).unwrap().bound(), 2);
    }

    #[test]
    fn only_low_64_bits_matter() {
        let s = TraceIdRatio::new(0.5).unwrap();
        let low = (1u128 << 63) - 1;
        assert!(s.keeps(low));
        assert!(s.keeps(low | (u128::MAX << 64)));
        assert!(!s.keeps(1u128 << 63));
        assert!(TraceIdRatio::new(1.0).unwrap().keeps(u128::MAX));
        assert!(!TraceIdRatio::new(0.0).unwrap().keeps(0));
    }
}
