//! Per-tenant rate limits: exact, clock-driven behaviour.

use std::sync::Arc;

use ats_core::sampling::{RateDecision, RateLimitConfig, TenantRateLimiter};

const SEC: u64 = 1_000_000_000;
const DAY: u64 = 86_400 * SEC;

fn limiter(
    per_second: Option<f64>,
    burst: u32,
    daily_cap: Option<u64>,
    max_tenants: usize,
) -> TenantRateLimiter {
    TenantRateLimiter::new(RateLimitConfig {
        per_second,
        burst,
        daily_cap,
        max_tenants,
    })
    .unwrap()
}

#[test]
fn burst_then_steady_rate() {
    let l = limiter(Some(10.0), 5, None, 16);
    let t0 = 100 * SEC;
    for _ in 0..5 {
        assert_eq!(l.try_acquire("a", t0), RateDecision::Allowed);
    }
    assert_eq!(l.try_acquire("a", t0), RateDecision::RateLimited);
    // One token every 100 ms.
    assert_eq!(
        l.try_acquire("a", t0 + 99_999_999),
        RateDecision::RateLimited
    );
    assert_eq!(l.try_acquire("a", t0 + 100_000_000), RateDecision::Allowed);
    assert_eq!(
        l.try_acquire("a", t0 + 100_000_000),
        RateDecision::RateLimited
    );
    // After a long idle the bucket is full again, but not fuller.
    let t1 = t0 + 60 * SEC;
    for _ in 0..5 {
        assert_eq!(l.try_acquire("a", t1), RateDecision::Allowed);
    }
    assert_eq!(l.try_acquire("a", t1), RateDecision::RateLimited);
    // Tenants are independent.
    assert_eq!(l.try_acquire("b", t0), RateDecision::Allowed);
    let s = l.stats();
    assert_eq!(
        (s.allowed, s.rate_limited, s.daily_capped, s.tracked_tenants),
        (12, 4, 0, 2)
    );
}

#[test]
fn sustained_rate_is_exact_over_a_second() {
    let l = limiter(Some(1000.0), 1, None, 4);
    // Offer every 0.1 ms for 1 s: exactly one per ms is allowed.
    let allowed = (0..10_000u64)
        .filter(|i| l.try_acquire("t", 5 * SEC + i * 100_000).is_allowed())
        .count();
    assert_eq!(allowed, 1000);
}

#[test]
fn daily_cap_resets_at_utc_midnight_and_ignores_clock_regressions() {
    let l = limiter(None, 1, Some(3), 4);
    let day5 = 5 * DAY;
    for _ in 0..3 {
        assert_eq!(l.try_acquire("t", day5 + 10), RateDecision::Allowed);
    }
    assert_eq!(
        l.try_acquire("t", day5 + DAY - 1),
        RateDecision::DailyCapReached
    );
    // A clock stepping back into day 4 does not grant new budget.
    assert_eq!(l.try_acquire("t", day5 - 1), RateDecision::DailyCapReached);
    assert_eq!(l.try_acquire("t", day5 + DAY), RateDecision::Allowed);
    let s = l.stats();
    assert_eq!((s.allowed, s.daily_capped), (4, 2));
}

#[test]
fn rate_limited_attempts_do_not_consume_daily_budget() {
    let l = limiter(Some(1.0), 1, Some(2), 4);
    assert!(l.try_acquire("t", SEC).is_allowed());
    for _ in 0..10 {
        assert_eq!(l.try_acquire("t", SEC), RateDecision::RateLimited);
    }
    assert!(l.try_acquire("t", 2 * SEC).is_allowed());
    assert_eq!(l.try_acquire("t", 3 * SEC), RateDecision::DailyCapReached);
}

#[test]
fn tenants_beyond_the_cap_share_the_other_bucket() {
    let l = limiter(Some(1.0), 2, None, 2);
    assert!(l.try_acquire("a", SEC).is_allowed());
    assert!(l.try_acquire("b", SEC).is_allowed());
    // c, d and an over-long name share one bucket of burst 2.
    assert!(l.try_acquire("c", SEC).is_allowed());
    assert!(l.try_acquire("d", SEC).is_allowed());
    assert_eq!(
        l.try_acquire(&"x".repeat(10 << 20), SEC),
        RateDecision::RateLimited
    );
    // Tracked tenants keep their own budget.
    assert!(l.try_acquire("a", SEC).is_allowed());
    let s = l.stats();
    assert_eq!(
        (
            s.tracked_tenants,
            s.other_acquires,
            s.allowed,
            s.rate_limited
        ),
        (2, 3, 5, 1)
    );
}

#[test]
fn prune_forgets_only_fresh_equivalent_buckets() {
    let l = limiter(Some(1.0), 1, Some(100), 2);
    assert!(l.try_acquire("a", SEC).is_allowed());
    assert!(l.try_acquire("b", SEC).is_allowed());
    // Same day, used budget: nothing can be forgotten.
    assert_eq!(l.prune(10 * SEC), 0);
    // Next day, buckets refilled: both are fresh-equivalent.
    assert_eq!(l.prune(DAY + SEC), 2);
    assert_eq!(l.stats().tracked_tenants, 0);
    assert!(l.try_acquire("c", DAY + SEC).is_allowed());
    assert_eq!(l.stats().other_acquires, 0);
}

#[test]
fn invalid_configs_are_rejected() {
    for (per_second, burst, max_tenants) in [
        (Some(0.0), 1, 1),
        (Some(-1.0), 1, 1),
        (Some(f64::NAN), 1, 1),
        (Some(f64::INFINITY), 1, 1),
        (None, 0, 1),
        (None, 1, 0),
    ] {
        let c = RateLimitConfig {
            per_second,
            burst,
            daily_cap: None,
            max_tenants,
        };
        assert!(TenantRateLimiter::new(c).is_err());
    }
}

#[test]
fn concurrent_acquires_are_exact() {
    // 8 threads hammer 4 tenants at one instant with burst 1000 and a
    // daily cap: exactly the burst is allowed per tenant, no more, no less.
    let l = Arc::new(limiter(Some(1.0), 1000, Some(1_000_000), 64));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                let mut allowed = 0u64;
                for i in 0..10_000u64 {
                    let tenant = ["a", "b", "c", "d"][((i + t) % 4) as usize];
                    allowed += u64::from(l.try_acquire(tenant, SEC).is_allowed());
                }
                allowed
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 4000);
    let s = l.stats();
    assert_eq!((s.allowed, s.rate_limited), (4000, 76_000));
}
