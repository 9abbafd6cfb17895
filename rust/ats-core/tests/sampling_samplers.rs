//! Parent-based, family rules and the composed policy: exact decisions.

use ats_core::sampling::{
    AlwaysOff, AlwaysOn, Decision, FamilyRule, FamilyRules, ParentBased, ParentInfo, PolicyConfig,
    PolicyOutcome, RateLimitConfig, Sampler, SamplingError, SamplingInput, SamplingPolicy,
    TraceIdRatio,
};

/// Trace ids whose low 64 bits put them at a known fraction of the id space,
/// so a ratio `r` keeps `at(f)` iff `f < r` (away from the edges).
fn at(fraction: f64) -> u128 {
    let low = (fraction * 18_446_744_073_709_551_616.0) as u64;
    (0xdead_beef_u128 << 64) | u128::from(low)
}

fn input<'a>(
    trace_id: u128,
    parent: Option<ParentInfo>,
    name: &'a str,
    is_error: bool,
) -> SamplingInput<'a> {
    SamplingInput {
        trace_id,
        parent,
        event_name: name,
        is_error,
        tenant: "acme",
        now_ns: 1_000,
    }
}

const SAMPLED_LOCAL: Option<ParentInfo> = Some(ParentInfo {
    sampled: true,
    remote: false,
});
const UNSAMPLED_LOCAL: Option<ParentInfo> = Some(ParentInfo {
    sampled: false,
    remote: false,
});
const SAMPLED_REMOTE: Option<ParentInfo> = Some(ParentInfo {
    sampled: true,
    remote: true,
});
const UNSAMPLED_REMOTE: Option<ParentInfo> = Some(ParentInfo {
    sampled: false,
    remote: true,
});

#[test]
fn parent_based_defaults_follow_the_parent_and_delegate_roots() {
    let s = ParentBased::new(TraceIdRatio::new(0.5).unwrap());
    let lo = at(0.25);
    let hi = at(0.75);
    assert_eq!(
        s.should_sample(&input(lo, None, "x", false)),
        Decision::RecordAndSample
    );
    assert_eq!(
        s.should_sample(&input(hi, None, "x", false)),
        Decision::Drop
    );
    for id in [lo, hi] {
        assert_eq!(
            s.should_sample(&input(id, SAMPLED_LOCAL, "x", false)),
            Decision::RecordAndSample
        );
        assert_eq!(
            s.should_sample(&input(id, SAMPLED_REMOTE, "x", false)),
            Decision::RecordAndSample
        );
        assert_eq!(
            s.should_sample(&input(id, UNSAMPLED_LOCAL, "x", false)),
            Decision::Drop
        );
        assert_eq!(
            s.should_sample(&input(id, UNSAMPLED_REMOTE, "x", false)),
            Decision::Drop
        );
    }
}

#[test]
fn parent_based_delegates_are_configurable() {
    let s = ParentBased::new(AlwaysOff)
        .with_remote_parent_sampled(AlwaysOff)
        .with_remote_parent_not_sampled(AlwaysOn)
        .with_local_parent_sampled(AlwaysOff)
        .with_local_parent_not_sampled(AlwaysOn);
    let id = at(0.1);
    assert_eq!(
        s.should_sample(&input(id, None, "x", false)),
        Decision::Drop
    );
    assert_eq!(
        s.should_sample(&input(id, SAMPLED_REMOTE, "x", false)),
        Decision::Drop
    );
    assert_eq!(
        s.should_sample(&input(id, UNSAMPLED_REMOTE, "x", false)),
        Decision::RecordAndSample
    );
    assert_eq!(
        s.should_sample(&input(id, SAMPLED_LOCAL, "x", false)),
        Decision::Drop
    );
    assert_eq!(
        s.should_sample(&input(id, UNSAMPLED_LOCAL, "x", false)),
        Decision::RecordAndSample
    );
    assert_eq!(
        s.description(),
        "ParentBased{root:AlwaysOffSampler,remoteParentSampled:AlwaysOffSampler,remoteParentNotSampled:AlwaysOnSampler,localParentSampled:AlwaysOffSampler,localParentNotSampled:AlwaysOnSampler}"
    );
}

fn family() -> FamilyRules {
    FamilyRules::new(
        vec![
            FamilyRule::new("driver.", 0.1, 1.0),
            FamilyRule::new("driver.query", 0.5, 1.0),
            FamilyRule::new("mcp.tool", 0.0, 0.3),
        ],
        0.2,
    )
    .unwrap()
}

#[test]
fn family_rules_rates_by_prefix_and_outcome() {
    let r = family();
    let d = |f: f64, name: &str, err: bool| {
        r.should_sample(&input(at(f), None, name, err)).is_sampled()
    };
    // driver.query: ok 50 %
    assert!(d(0.45, "driver.query", false));
    assert!(!d(0.55, "driver.query", false));
    // driver.close: ok 10 % (the shorter prefix)
    assert!(d(0.05, "driver.close", false));
    assert!(!d(0.45, "driver.close", false));
    // errors 100 % everywhere under driver.
    assert!(d(0.999, "driver.close", true));
    assert!(d(0.999, "driver.query", true));
    // mcp.tool: ok never, error 30 %
    assert!(!d(0.0, "mcp.tool.call", false));
    assert!(d(0.2, "mcp.tool.call", true));
    assert!(!d(0.4, "mcp.tool.call", true));
    // unmatched: default 20 %
    assert!(d(0.1, "agent.run", false));
    assert!(!d(0.3, "agent.run", true));
}

#[test]
fn family_rules_are_consistent_within_a_trace() {
    // All spans of one trace with the same family and outcome agree, and a
    // trace kept at the ok rate is kept at the (higher) error rate.
    let r = family();
    for i in 0..10_000u64 {
        let id = u128::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | (u128::from(i) << 64);
        let a = r.should_sample(&input(id, None, "driver.query", false));
        let b = r.should_sample(&input(id, None, "driver.query", false));
        assert_eq!(a, b);
        if a.is_sampled() {
            assert!(r
                .should_sample(&input(id, None, "driver.query", true))
                .is_sampled());
        }
    }
}

#[test]
fn family_rule_rates_hold_statistically() {
    let r = family();
    let n = 100_000u64;
    let kept = (0..n)
        .filter(|i| {
            let id = u128::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            r.should_sample(&input(id, None, "driver.close", false))
                .is_sampled()
        })
        .count();
    // 10 % of a Weyl sequence over the low 64 bits: within 1 %.
    assert!((9_900..=10_100).contains(&kept), "kept {kept}");
}

fn policy(rate_limit: Option<RateLimitConfig>, errors_override_parent: bool) -> SamplingPolicy {
    SamplingPolicy::new(PolicyConfig {
        base_ratio: 0.5,
        rules: vec![FamilyRule::new("driver.", 0.1, 1.0)],
        rate_limit,
        errors_override_parent,
    })
    .unwrap()
}

#[test]
fn policy_stages_in_order() {
    let p = policy(None, true);
    let o = |f: f64, parent, name: &str, err| p.decide(&input(at(f), parent, name, err));
    // Roots: rule, else base ratio.
    assert_eq!(o(0.05, None, "driver.query", false), PolicyOutcome::Sampled);
    assert_eq!(
        o(0.2, None, "driver.query", false),
        PolicyOutcome::DroppedByRule
    );
    assert_eq!(o(0.9, None, "driver.query", true), PolicyOutcome::Sampled);
    assert_eq!(o(0.4, None, "agent.run", false), PolicyOutcome::Sampled);
    assert_eq!(
        o(0.6, None, "agent.run", false),
        PolicyOutcome::DroppedByRatio
    );
    // Parents decide for children, whatever the rule says for ok spans.
    assert_eq!(
        o(0.9, SAMPLED_REMOTE, "driver.query", false),
        PolicyOutcome::Sampled
    );
    assert_eq!(
        o(0.05, UNSAMPLED_LOCAL, "driver.query", false),
        PolicyOutcome::DroppedByParent
    );
    // Errors override an unsampled parent when their rule keeps them...
    assert_eq!(
        o(0.9, UNSAMPLED_REMOTE, "driver.query", true),
        PolicyOutcome::Sampled
    );
    // ...but not without a rule.
    assert_eq!(
        o(0.1, UNSAMPLED_REMOTE, "agent.run", true),
        PolicyOutcome::DroppedByParent
    );
    assert_eq!(
        p.should_sample(&input(at(0.6), None, "agent.run", false)),
        Decision::Drop
    );

    let strict = policy(None, false);
    assert_eq!(
        strict.decide(&input(at(0.9), UNSAMPLED_REMOTE, "driver.query", true)),
        PolicyOutcome::DroppedByParent
    );
}

#[test]
fn policy_rate_limit_only_charges_kept_spans() {
    let limit = RateLimitConfig {
        per_second: Some(1.0),
        burst: 2,
        daily_cap: None,
        max_tenants: 8,
    };
    let p = policy(Some(limit), true);
    // Dropped spans never consume budget.
    for _ in 0..100 {
        assert_eq!(
            p.decide(&input(at(0.9), None, "agent.run", false)),
            PolicyOutcome::DroppedByRatio
        );
    }
    assert_eq!(
        p.decide(&input(at(0.1), None, "agent.run", false)),
        PolicyOutcome::Sampled
    );
    assert_eq!(
        p.decide(&input(at(0.1), None, "driver.query", true)),
        PolicyOutcome::Sampled
    );
    assert_eq!(
        p.decide(&input(at(0.1), None, "driver.query", true)),
        PolicyOutcome::RateLimited
    );
    let stats = p.rate_limiter_stats().unwrap();
    assert_eq!((stats.allowed, stats.rate_limited), (2, 1));
    assert_eq!(PolicyOutcome::RateLimited.as_str(), "rate_limit");
}

#[test]
fn policy_config_errors_are_typed() {
    let bad = |c: PolicyConfig| SamplingPolicy::new(c).unwrap_err();
    assert_eq!(
        bad(PolicyConfig {
            base_ratio: f64::NAN,
            ..Default::default()
        })
        .to_string(),
        "sampling ratio must be within [0, 1], got NaN"
    );
    assert!(matches!(
        bad(PolicyConfig {
            rules: vec![FamilyRule::new("a", 2.0, 1.0)],
            ..Default::default()
        }),
        SamplingError::InvalidRule { .. }
    ));
    assert!(matches!(
        bad(PolicyConfig {
            rate_limit: Some(RateLimitConfig {
                burst: 0,
                ..Default::default()
            }),
            ..Default::default()
        }),
        SamplingError::InvalidRateLimit { .. }
    ));
}
