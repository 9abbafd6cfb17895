//! `TraceIdRatio` must decide exactly like OpenTelemetry Python's
//! `TraceIdRatioBased`. The vectors were produced by the real SDK with
//! `golden/gen_otel_ratio_vectors.py` (see that script to regenerate).

use ats_core::sampling::{Decision, Sampler, SamplingInput, TraceIdRatio};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    opentelemetry_sdk_version: String,
    count: usize,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    trace_id: String,
    rate: f64,
    rate_bits: String,
    bound: String,
    sampled: bool,
}

#[test]
fn every_otel_golden_vector_matches() {
    let text = include_str!("golden/otel_ratio_vectors.json");
    let golden: Golden = serde_json::from_str(text).expect("golden file parses");
    assert_eq!(golden.vectors.len(), golden.count);
    assert!(
        golden.count >= 2000,
        "expected ~2000 vectors, got {}",
        golden.count
    );
    assert!(!golden.opentelemetry_sdk_version.is_empty());

    let (mut sampled, mut dropped) = (0, 0);
    for (i, v) in golden.vectors.iter().enumerate() {
        let rate = f64::from_bits(u64::from_str_radix(&v.rate_bits, 16).expect("rate_bits hex"));
        // The readable float must be the same number (guards the generator).
        assert!(
            rate == v.rate || (rate - v.rate).abs() <= f64::EPSILON * rate,
            "vector {i}: rate"
        );
        let trace_id = u128::from_str_radix(&v.trace_id, 16).expect("trace_id hex");
        let bound: u128 = v.bound.parse().expect("bound decimal");

        let s = TraceIdRatio::new(rate).expect("valid rate");
        assert_eq!(s.bound(), bound, "vector {i}: bound for rate {rate:e}");
        let ctx = SamplingInput {
            trace_id,
            parent: None,
            event_name: "ats.golden",
            is_error: false,
            tenant: "t",
            now_ns: 0,
        };
        let want = if v.sampled {
            Decision::RecordAndSample
        } else {
            Decision::Drop
        };
        assert_eq!(
            s.should_sample(&ctx),
            want,
            "vector {i}: trace {} rate {rate:e}",
            v.trace_id
        );
        if v.sampled {
            sampled += 1;
        } else {
            dropped += 1;
        }
    }
    // Both outcomes are well represented.
    assert!(
        sampled > 500 && dropped > 500,
        "sampled {sampled}, dropped {dropped}"
    );
}

#[test]
fn description_matches_otel() {
    assert_eq!(
        TraceIdRatio::new(0.25).unwrap().description(),
        "TraceIdRatioBased{0.25}"
    );
}
