//! Property tests: no panics on arbitrary input, exact accounting.

use ats_core::sampling::{
    FamilyRule, ParentInfo, PolicyConfig, RateLimitConfig, SamplingInput, SamplingPolicy,
    TailConfig, TailSampler, TailSpan, TraceIdRatio,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn policy_never_panics(
        trace_id in any::<u128>(),
        parent in proptest::option::of((any::<bool>(), any::<bool>())),
        name in ".{0,64}",
        tenant in prop::collection::vec(any::<u8>(), 0..400),
        is_error in any::<bool>(),
        now_ns in any::<u64>(),
    ) {
        let p = SamplingPolicy::new(PolicyConfig {
            base_ratio: 0.3,
            rules: vec![FamilyRule::new("driver.", 0.1, 1.0), FamilyRule::new("", 0.5, 1.0)],
            rate_limit: Some(RateLimitConfig { per_second: Some(0.5), burst: 3, daily_cap: Some(5), max_tenants: 2 }),
            errors_override_parent: true,
        }).unwrap();
        let tenant = String::from_utf8_lossy(&tenant);
        let ctx = SamplingInput {
            trace_id,
            parent: parent.map(|(sampled, remote)| ParentInfo { sampled, remote }),
            event_name: &name,
            is_error,
            tenant: &tenant,
            now_ns,
        };
        let a = p.decide(&ctx);
        let _ = p.decide(&ctx);
        let _ = a.as_str();
    }

    #[test]
    fn ratio_decisions_nest(trace_id in any::<u128>(), a in 0.0f64..=1.0, b in 0.0f64..=1.0) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        if TraceIdRatio::new(lo).unwrap().keeps(trace_id) {
            prop_assert!(TraceIdRatio::new(hi).unwrap().keeps(trace_id));
        }
    }

    #[test]
    fn tail_accounts_for_every_span(
        spans in prop::collection::vec((0u128..20, any::<u64>(), 0u64..3, any::<bool>(), 0u64..300, 0usize..500, 0u64..50), 0..400),
        max_traces in 1usize..8,
        max_bytes in 1usize..2000,
        max_spans in 1usize..50,
    ) {
        let mut t = TailSampler::new(TailConfig {
            latency_threshold_ns: 200,
            base_ratio: 0.5,
            max_traces,
            max_spans,
            max_bytes,
            trace_timeout_ns: 100,
            decided_cache: 5,
        }).unwrap();
        let (mut kept, mut dropped) = (0u64, 0u64);
        let mut now = 0u64;
        for (i, (trace_id, span_id, parent, is_error, dur, size, dt)) in spans.iter().copied().enumerate() {
            now += dt;
            let d = t.offer(TailSpan { trace_id, span_id, parent_span_id: parent, is_error, duration_ns: dur, size_bytes: size, item: i }, now);
            kept += d.keep.len() as u64;
            dropped += d.dropped_spans;
            let s = t.stats();
            prop_assert!(s.held_traces <= max_traces && s.held_spans <= max_spans && s.held_bytes <= max_bytes);
            prop_assert_eq!(kept + dropped + s.held_spans as u64, i as u64 + 1);
        }
        let d = t.flush();
        kept += d.keep.len() as u64;
        dropped += d.dropped_spans;
        prop_assert_eq!(kept + dropped, spans.len() as u64);
        let s = t.stats();
        prop_assert_eq!((s.kept_spans, s.dropped_spans, s.held_spans), (kept, dropped, 0));
    }
}
