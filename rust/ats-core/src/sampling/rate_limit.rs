//! Per-tenant rate limits: a per-second rate with burst, and a daily cap
//! (seed 000 §11 "learning budget": cap daily volume per tenant).
//!
//! The per-second limit is a token bucket expressed as GCRA (generic cell
//! rate algorithm): one integer per tenant, the theoretical arrival time
//! `tat`, advanced by the emission interval `T = 1 s / rate` on each allowed
//! acquisition; an acquisition at `now` is allowed while `tat - now <= T *
//! (burst - 1)`. That is exactly a bucket of `burst` tokens refilled at
//! `rate`/s, but integer-only, so decisions are exact and reproducible.
//!
//! The daily cap counts allowed acquisitions per UTC day (`now_ns / 86_400 s`).
//! A clock that steps back into an earlier day keeps counting against the
//! later day, so a clock regression never grants extra budget.
//!
//! Memory is bounded: at most `max_tenants` tenants get their own bucket;
//! acquisitions by further tenants (and by tenant names longer than
//! [`MAX_TENANT_LEN`], which would otherwise let one caller pin megabytes per
//! key) share a single [`OTHER_TENANT`] bucket, counted in
//! [`RateLimiterStats::other_acquires`]. Sharing one tenant's budget among all
//! overflow tenants is deliberately conservative: overflow can never multiply
//! the total volume. [`TenantRateLimiter::prune`] frees buckets that are back
//! at their initial state, which is lossless.
//!
//! Concurrency: tenants are spread over 16 mutex-protected shards; a call
//! holds one shard lock for a hash lookup and a few integer operations, and
//! the statistics live inside the shards so the hot path touches no shared
//! atomic besides the shard lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use xxhash_rust::xxh3::{xxh3_64, Xxh3DefaultBuilder};

use super::{Decision, Sampler, SamplingError, SamplingInput};

/// Name of the shared bucket used once `max_tenants` are tracked.
pub const OTHER_TENANT: &str = "__other__";
/// Tenant names longer than this (bytes) use the [`OTHER_TENANT`] bucket.
pub const MAX_TENANT_LEN: usize = 256;

const SHARDS: usize = 16;
const NS_PER_SEC: f64 = 1e9;
const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// Rate-limit configuration, the same for every tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    /// Sustained acquisitions per second per tenant; `None` = no rate limit.
    pub per_second: Option<f64>,
    /// Acquisitions allowed at once after idling (bucket size), `>= 1`.
    pub burst: u32,
    /// Allowed acquisitions per tenant per UTC day; `None` = no cap.
    pub daily_cap: Option<u64>,
    /// Tenants tracked individually, `>= 1`.
    pub max_tenants: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: Some(1000.0),
            burst: 2000,
            daily_cap: None,
            max_tenants: 1024,
        }
    }
}

/// Result of one acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateDecision {
    Allowed,
    /// Per-second rate (with burst) exceeded.
    RateLimited,
    /// The tenant's daily cap is used up.
    DailyCapReached,
}

impl RateDecision {
    #[inline]
    pub fn is_allowed(self) -> bool {
        matches!(self, RateDecision::Allowed)
    }
}

/// Counters since creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimiterStats {
    /// Tenants with their own bucket right now.
    pub tracked_tenants: usize,
    pub allowed: u64,
    pub rate_limited: u64,
    pub daily_capped: u64,
    /// Acquisitions (of any outcome) that went to the shared bucket.
    pub other_acquires: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// GCRA theoretical arrival time (ns); `<= now` means a full bucket.
    tat_ns: u64,
    /// UTC day index of `day_count`.
    day: u64,
    day_count: u64,
}

impl Bucket {
    const FRESH: Bucket = Bucket {
        tat_ns: 0,
        day: 0,
        day_count: 0,
    };
}

#[derive(Default)]
struct Counters {
    allowed: u64,
    rate_limited: u64,
    daily_capped: u64,
}

#[derive(Default)]
struct Shard {
    buckets: HashMap<Box<str>, Bucket, Xxh3DefaultBuilder>,
    counters: Counters,
}

#[derive(Default)]
struct OtherShard {
    bucket: Option<Bucket>,
    counters: Counters,
    acquires: u64,
}

/// Thread-safe per-tenant rate limiter. See the module docs.
pub struct TenantRateLimiter {
    /// GCRA emission interval; 0 disables the per-second limit.
    interval_ns: u64,
    /// GCRA tolerance `interval * (burst - 1)`.
    tolerance_ns: u64,
    daily_cap: u64,
    max_tenants: usize,
    config: RateLimitConfig,
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    other: CachePadded<Mutex<OtherShard>>,
    tracked: AtomicUsize,
}

impl std::fmt::Debug for TenantRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRateLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TenantRateLimiter {
    pub fn new(config: RateLimitConfig) -> Result<Self, SamplingError> {
        let invalid = |reason: String| Err(SamplingError::InvalidRateLimit { reason });
        if config.burst == 0 {
            return invalid("burst must be at least 1".into());
        }
        if config.max_tenants == 0 {
            return invalid("max_tenants must be at least 1".into());
        }
        let interval_ns = match config.per_second {
            None => 0,
            Some(rate) if rate.is_finite() && rate > 0.0 => {
                // At least 1 ns so that a huge rate still limits bursts.
                (NS_PER_SEC / rate).round().max(1.0) as u64
            }
            Some(rate) => return invalid(format!("per_second must be finite and > 0, got {rate}")),
        };
        let tolerance_ns = interval_ns.saturating_mul(u64::from(config.burst) - 1);
        let shards = (0..SHARDS)
            .map(|_| CachePadded::new(Mutex::new(Shard::default())))
            .collect();
        Ok(Self {
            interval_ns,
            tolerance_ns,
            daily_cap: config.daily_cap.unwrap_or(u64::MAX),
            max_tenants: config.max_tenants,
            config,
            shards,
            other: CachePadded::new(Mutex::new(OtherShard::default())),
            tracked: AtomicUsize::new(0),
        })
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Takes one unit of `tenant`'s budget at time `now_ns` if available.
    pub fn try_acquire(&self, tenant: &str, now_ns: u64) -> RateDecision {
        if tenant.len() <= MAX_TENANT_LEN {
            let mut shard = self.shards[shard_index(tenant)].lock();
            let shard = &mut *shard;
            if let Some(bucket) = shard.buckets.get_mut(tenant) {
                return self.decide(bucket, &mut shard.counters, now_ns);
            }
            // Reserve a slot first; give it back if we are over the cap.
            if self.tracked.fetch_add(1, Ordering::Relaxed) < self.max_tenants {
                let bucket = shard.buckets.entry(tenant.into()).or_insert(Bucket::FRESH);
                return self.decide(bucket, &mut shard.counters, now_ns);
            }
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
        let mut other = self.other.lock();
        let other = &mut *other;
        other.acquires += 1;
        let bucket = other.bucket.get_or_insert(Bucket::FRESH);
        self.decide(bucket, &mut other.counters, now_ns)
    }

    #[inline]
    fn decide(&self, b: &mut Bucket, c: &mut Counters, now_ns: u64) -> RateDecision {
        let day = now_ns / NS_PER_DAY;
        if day > b.day {
            b.day = day;
            b.day_count = 0;
        }
        if b.day_count >= self.daily_cap {
            c.daily_capped += 1;
            return RateDecision::DailyCapReached;
        }
        if self.interval_ns != 0 {
            let tat = b.tat_ns.max(now_ns);
            if tat - now_ns > self.tolerance_ns {
                c.rate_limited += 1;
                return RateDecision::RateLimited;
            }
            b.tat_ns = tat.saturating_add(self.interval_ns);
        }
        b.day_count += 1;
        c.allowed += 1;
        RateDecision::Allowed
    }

    /// Forgets tenants whose bucket is indistinguishable from a fresh one at
    /// `now_ns` (full token bucket and nothing counted today), which frees
    /// their slot without changing any future decision. Returns how many.
    pub fn prune(&self, now_ns: u64) -> usize {
        let today = now_ns / NS_PER_DAY;
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let before = shard.buckets.len();
            shard
                .buckets
                .retain(|_, b| !(b.tat_ns <= now_ns && (b.day < today || b.day_count == 0)));
            removed += before - shard.buckets.len();
        }
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    pub fn stats(&self) -> RateLimiterStats {
        let mut s = RateLimiterStats::default();
        let mut add = |c: &Counters| {
            s.allowed += c.allowed;
            s.rate_limited += c.rate_limited;
            s.daily_capped += c.daily_capped;
        };
        let mut tracked = 0;
        for shard in self.shards.iter() {
            let shard = shard.lock();
            tracked += shard.buckets.len();
            add(&shard.counters);
        }
        let other = self.other.lock();
        add(&other.counters);
        s.other_acquires = other.acquires;
        s.tracked_tenants = tracked;
        s
    }
}

#[inline]
fn shard_index(tenant: &str) -> usize {
    (xxh3_64(tenant.as_bytes()) % SHARDS as u64) as usize
}

impl Sampler for TenantRateLimiter {
    /// Consumes budget: only call it for spans that would otherwise be kept.
    #[inline]
    fn should_sample(&self, ctx: &SamplingInput<'_>) -> Decision {
        Decision::from_bool(self.try_acquire(ctx.tenant, ctx.now_ns).is_allowed())
    }

    fn description(&self) -> String {
        format!(
            "TenantRateLimiter{{per_second:{:?},burst:{},daily_cap:{:?},max_tenants:{}}}",
            self.config.per_second,
            self.config.burst,
            self.config.daily_cap,
            self.config.max_tenants
        )
    }
}
