//! Tail sampling: whole traces, bounded memory, exact counters.

use ats_core::sampling::{SamplingError, TailConfig, TailSampler, TailSpan, TraceIdRatio};

const MS: u64 = 1_000_000;

fn config() -> TailConfig {
    TailConfig {
        latency_threshold_ns: 100 * MS,
        base_ratio: 0.0,
        max_traces: 100,
        max_spans: 1000,
        max_bytes: 1 << 20,
        trace_timeout_ns: 10_000 * MS,
        decided_cache: 100,
    }
}

fn span(
    trace_id: u128,
    span_id: u64,
    parent: u64,
    is_error: bool,
    duration_ms: u64,
) -> TailSpan<String> {
    TailSpan {
        trace_id,
        span_id,
        parent_span_id: parent,
        is_error,
        duration_ns: duration_ms * MS,
        size_bytes: 100,
        item: format!("{trace_id:x}/{span_id}"),
    }
}

#[test]
fn holds_until_root_then_keeps_failed_and_slow_traces() {
    let mut t = TailSampler::new(config()).unwrap();
    // Trace 1: a failed child.
    assert!(t.offer(span(1, 11, 10, true, 1), 0).is_empty());
    assert!(t.offer(span(1, 12, 10, false, 1), 0).is_empty());
    let d = t.offer(span(1, 10, 0, false, 5), 1);
    assert_eq!(d.keep, vec!["1/11", "1/12", "1/10"]);
    assert_eq!(
        (d.kept_traces, d.dropped_traces, d.dropped_spans),
        (1, 0, 0)
    );
    // Trace 2: a slow child (strictly above the threshold).
    t.offer(span(2, 21, 20, false, 101), 2);
    assert_eq!(
        t.offer(span(2, 20, 0, false, 1), 3).keep,
        vec!["2/21", "2/20"]
    );
    // Trace 3: at the threshold, no error: dropped (base ratio 0).
    t.offer(span(3, 31, 30, false, 100), 4);
    let d = t.offer(span(3, 30, 0, false, 1), 5);
    assert!(d.keep.is_empty());
    assert_eq!(
        (d.kept_traces, d.dropped_traces, d.dropped_spans),
        (0, 1, 2)
    );
    let s = t.stats();
    assert_eq!(
        (
            s.kept_traces,
            s.dropped_traces,
            s.kept_spans,
            s.dropped_spans
        ),
        (2, 1, 5, 2)
    );
    assert_eq!((s.held_traces, s.held_spans, s.held_bytes), (0, 0, 0));
}

#[test]
fn late_spans_follow_the_decision() {
    let mut t = TailSampler::new(config()).unwrap();
    t.offer(span(1, 10, 0, true, 1), 0);
    t.offer(span(2, 20, 0, false, 1), 0);
    assert_eq!(t.offer(span(1, 11, 10, false, 1), 1).keep, vec!["1/11"]);
    let d = t.offer(span(2, 21, 20, true, 1), 1);
    assert!(d.keep.is_empty());
    assert_eq!(d.dropped_spans, 1);
    let s = t.stats();
    assert_eq!((s.late_kept, s.late_dropped), (1, 1));
}

#[test]
fn base_ratio_keeps_the_same_traces_as_a_head_sampler() {
    let mut c = config();
    c.base_ratio = 0.25;
    let mut t = TailSampler::new(c).unwrap();
    let head = TraceIdRatio::new(0.25).unwrap();
    let mut kept = 0;
    for i in 1..=2000u64 {
        let id = u128::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1 << 100;
        let d = t.offer(span(id, 1, 0, false, 1), 0);
        assert_eq!(d.kept_traces == 1, head.keeps(id));
        kept += d.kept_traces;
    }
    assert!((450..=550).contains(&kept), "{kept}");
}

#[test]
fn trace_cap_decides_the_oldest_early() {
    let mut c = config();
    c.max_traces = 3;
    let mut t = TailSampler::new(c).unwrap();
    t.offer(span(1, 11, 10, true, 1), 0); // has an error already
    t.offer(span(2, 21, 20, false, 1), 1);
    t.offer(span(3, 31, 30, false, 1), 2);
    // A fourth trace: trace 1 (oldest) is decided early and kept.
    let d = t.offer(span(4, 41, 40, false, 1), 3);
    assert_eq!(d.keep, vec!["1/11"]);
    // A fifth: trace 2 (oldest now), no evidence, dropped.
    let d = t.offer(span(5, 51, 50, false, 1), 4);
    assert_eq!(
        (d.kept_traces, d.dropped_traces, d.dropped_spans),
        (0, 1, 1)
    );
    // The early-kept trace's root still arrives and is kept (late).
    assert_eq!(t.offer(span(1, 10, 0, false, 1), 5).keep, vec!["1/10"]);
    let s = t.stats();
    assert_eq!((s.early_decisions, s.held_traces, s.late_kept), (2, 3, 1));
}

#[test]
fn byte_and_span_caps_bound_memory() {
    let mut c = config();
    c.max_bytes = 350;
    let mut t = TailSampler::new(c).unwrap();
    for i in 0..3 {
        t.offer(span(7, 70 + i, 1, false, 1), 0);
    }
    assert_eq!(t.stats().held_bytes, 300);
    t.offer(span(8, 80, 1, false, 1), 0);
    let s = t.stats();
    assert_eq!(
        (s.held_bytes, s.held_spans, s.held_traces, s.early_decisions),
        (100, 1, 1, 1)
    );
    assert_eq!(s.dropped_spans, 3);

    let mut c = config();
    c.max_spans = 2;
    let mut t = TailSampler::new(c).unwrap();
    t.offer(span(1, 1, 9, false, 1), 0);
    t.offer(span(2, 2, 9, false, 1), 0);
    t.offer(span(2, 3, 9, false, 1), 0);
    let s = t.stats();
    assert_eq!((s.held_spans, s.held_traces, s.early_decisions), (2, 1, 1));

    // A single span bigger than the byte cap is decided at once.
    let mut c = config();
    c.max_bytes = 10;
    let mut t = TailSampler::new(c).unwrap();
    let d = t.offer(span(9, 90, 1, true, 1), 0);
    assert_eq!(d.keep, vec!["9/90"]);
    assert_eq!(t.stats().held_bytes, 0);
}

#[test]
fn timeouts_decide_traces_whose_root_never_ends() {
    let mut t = TailSampler::new(config()).unwrap();
    t.offer(span(1, 11, 10, true, 1), 0);
    t.offer(span(2, 21, 20, false, 1), 5_000 * MS);
    assert!(t.tick(9_999 * MS).is_empty());
    let d = t.tick(10_000 * MS);
    assert_eq!(d.keep, vec!["1/11"]);
    assert_eq!(t.stats().held_traces, 1);
    // Offers also expire: trace 2 times out when a span arrives at 15 s.
    let d = t.offer(span(3, 30, 0, false, 1), 15_000 * MS);
    assert_eq!(
        (d.kept_traces, d.dropped_traces, d.dropped_spans),
        (0, 2, 2)
    );
    assert_eq!(t.stats().timed_out, 2);
    // A clock going backwards does not panic and decides nothing.
    t.offer(span(4, 41, 40, false, 1), 20_000 * MS);
    assert!(t.tick(0).is_empty());
}

#[test]
fn flush_decides_everything() {
    let mut t = TailSampler::new(config()).unwrap();
    t.offer(span(1, 11, 10, true, 1), 0);
    t.offer(span(2, 21, 20, false, 1), 0);
    let d = t.flush();
    assert_eq!(d.keep, vec!["1/11"]);
    assert_eq!((d.kept_traces, d.dropped_traces), (1, 1));
    assert_eq!(t.stats().held_traces, 0);
}

#[test]
fn trace_id_zero_spans_are_decided_alone() {
    let mut t = TailSampler::new(config()).unwrap();
    assert_eq!(t.offer(span(0, 1, 5, true, 1), 0).keep, vec!["0/1"]);
    assert_eq!(t.offer(span(0, 2, 5, false, 1), 0).dropped_spans, 1);
    assert_eq!(t.stats().held_traces, 0);
}

#[test]
fn decided_cache_is_bounded() {
    let mut c = config();
    c.decided_cache = 2;
    let mut t = TailSampler::new(c).unwrap();
    for id in 1..=3u128 {
        t.offer(span(id, 1, 0, true, 1), 0);
    }
    // Trace 1 was forgotten: its late span is held as a new trace.
    assert!(t.offer(span(1, 2, 1, false, 1), 0).is_empty());
    assert_eq!(t.stats().held_traces, 1);
    // Trace 3 is remembered.
    assert_eq!(t.offer(span(3, 2, 1, false, 1), 0).keep, vec!["3/2"]);
}

#[test]
fn invalid_configs_are_rejected() {
    let bad = |f: fn(&mut TailConfig)| {
        let mut c = config();
        f(&mut c);
        TailSampler::<()>::new(c).unwrap_err()
    };
    assert!(matches!(
        bad(|c| c.max_traces = 0),
        SamplingError::InvalidTailConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.max_spans = 0),
        SamplingError::InvalidTailConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.max_bytes = 0),
        SamplingError::InvalidTailConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.trace_timeout_ns = 0),
        SamplingError::InvalidTailConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.base_ratio = -1.0),
        SamplingError::InvalidRatio { .. }
    ));
}

#[test]
fn many_traces_stay_bounded() {
    let mut c = config();
    c.max_traces = 50;
    c.max_bytes = 3_000;
    c.base_ratio = 0.5;
    let mut t = TailSampler::new(c).unwrap();
    let (mut offered, mut kept, mut dropped) = (0u64, 0u64, 0u64);
    for i in 0..20_000u64 {
        let trace = u128::from(i % 997) + 1;
        let parent = if i % 13 == 0 { 0 } else { 1 };
        let d = t.offer(span(trace, i, parent, i % 101 == 0, i % 150), i * MS);
        offered += 1;
        kept += d.keep.len() as u64;
        dropped += d.dropped_spans;
        let s = t.stats();
        assert!(s.held_traces <= 50 && s.held_bytes <= 3_000);
    }
    let d = t.flush();
    kept += d.keep.len() as u64;
    dropped += d.dropped_spans;
    assert_eq!(kept + dropped, offered, "every span is accounted for");
    let s = t.stats();
    assert_eq!((s.kept_spans, s.dropped_spans), (kept, dropped));
}
