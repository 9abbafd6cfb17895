//! The composed head-sampling policy of the record path.
//!
//! Order: **parent-based → family rule / base ratio → tenant rate limit**.
//!
//! 1. *Parent-based.* A span with a parent follows the parent's sampled flag
//!    (OTel's `ParentBased` defaults): the trace's decision was already taken
//!    upstream, possibly in another process, and deviating from it leaves
//!    holes in traces. Exception, on by default
//!    ([`PolicyConfig::errors_override_parent`]): an error span under an
//!    unsampled parent is still kept when its family rule's error rate keeps
//!    it, because the architecture promises "errors always" and an orphan
//!    error span is worth more than a complete absence.
//! 2. *Family rule, else base ratio.* A root span is decided by the rule with
//!    the longest matching event-name prefix, at the rate for its outcome;
//!    unmatched names use the base ratio. All are trace-id ratios, so every
//!    root of one trace agrees and the decisions nest with an OTel peer's.
//! 3. *Tenant rate limit.* Last, because it is the only stateful stage: only
//!    spans that would be kept consume a tenant's budget (a dropped span never
//!    burns it), and as the cost guard it must bound everything the earlier
//!    stages let through, errors included.
//!
//! [`SamplingPolicy::decide`] returns which stage dropped a span, for the
//! `ats_dropped_total{reason}` accounting.

use std::sync::Arc;

use super::parent::ParentBased;
use super::rate_limit::{RateDecision, RateLimitConfig, RateLimiterStats, TenantRateLimiter};
use super::rules::{FamilyRule, FamilyRules};
use super::{Decision, Sampler, SamplingError, SamplingInput};

/// Configuration of a [`SamplingPolicy`].
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Ratio for root spans no family rule matches.
    pub base_ratio: f64,
    pub rules: Vec<FamilyRule>,
    /// `None`: no per-tenant limits.
    pub rate_limit: Option<RateLimitConfig>,
    /// Keep error spans under unsampled parents when their rule's error rate
    /// keeps them (see module docs).
    pub errors_override_parent: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            base_ratio: 1.0,
            rules: Vec::new(),
            rate_limit: None,
            errors_override_parent: true,
        }
    }
}

/// Why a span was kept or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyOutcome {
    Sampled,
    /// The parent was not sampled.
    DroppedByParent,
    /// A family rule's rate dropped it.
    DroppedByRule,
    /// No rule matched and the base ratio dropped it.
    DroppedByRatio,
    RateLimited,
    DailyCapReached,
}

impl PolicyOutcome {
    pub fn is_sampled(self) -> bool {
        matches!(self, PolicyOutcome::Sampled)
    }

    /// Stable label value for drop counters.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyOutcome::Sampled => "sampled",
            PolicyOutcome::DroppedByParent => "parent",
            PolicyOutcome::DroppedByRule => "rule",
            PolicyOutcome::DroppedByRatio => "ratio",
            PolicyOutcome::RateLimited => "rate_limit",
            PolicyOutcome::DailyCapReached => "daily_cap",
        }
    }
}

/// Parent-based → family rule / base ratio → tenant rate limit.
pub struct SamplingPolicy {
    rules: Arc<FamilyRules>,
    parent: ParentBased,
    limiter: Option<TenantRateLimiter>,
    errors_override_parent: bool,
}

impl std::fmt::Debug for SamplingPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description())
    }
}

impl SamplingPolicy {
    pub fn new(config: PolicyConfig) -> Result<Self, SamplingError> {
        let rules = Arc::new(FamilyRules::new(config.rules, config.base_ratio)?);
        let limiter = config.rate_limit.map(TenantRateLimiter::new).transpose()?;
        Ok(Self {
            parent: ParentBased::new(Arc::clone(&rules)),
            rules,
            limiter,
            errors_override_parent: config.errors_override_parent,
        })
    }

    /// The decision and the stage responsible for it.
    pub fn decide(&self, ctx: &SamplingInput<'_>) -> PolicyOutcome {
        let head = match ctx.parent {
            Some(_) => {
                let keep = self.parent.should_sample(ctx).is_sampled()
                    || (self.errors_override_parent
                        && ctx.is_error
                        && self.rules.decide(ctx.trace_id, ctx.event_name, true) == Some(true));
                if keep {
                    PolicyOutcome::Sampled
                } else {
                    PolicyOutcome::DroppedByParent
                }
            }
            None => match self
                .rules
                .decide(ctx.trace_id, ctx.event_name, ctx.is_error)
            {
                Some(true) => PolicyOutcome::Sampled,
                Some(false) => PolicyOutcome::DroppedByRule,
                None if self.rules.should_sample(ctx).is_sampled() => PolicyOutcome::Sampled,
                None => PolicyOutcome::DroppedByRatio,
            },
        };
        if !head.is_sampled() {
            return head;
        }
        match self
            .limiter
            .as_ref()
            .map(|l| l.try_acquire(ctx.tenant, ctx.now_ns))
        {
            None | Some(RateDecision::Allowed) => PolicyOutcome::Sampled,
            Some(RateDecision::RateLimited) => PolicyOutcome::RateLimited,
            Some(RateDecision::DailyCapReached) => PolicyOutcome::DailyCapReached,
        }
    }

    pub fn rules(&self) -> &FamilyRules {
        &self.rules
    }

    /// Rate-limiter counters, when limits are configured.
    pub fn rate_limiter_stats(&self) -> Option<RateLimiterStats> {
        self.limiter.as_ref().map(TenantRateLimiter::stats)
    }

    /// See [`TenantRateLimiter::prune`].
    pub fn prune(&self, now_ns: u64) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.prune(now_ns))
    }
}

impl Sampler for SamplingPolicy {
    #[inline]
    fn should_sample(&self, ctx: &SamplingInput<'_>) -> Decision {
        Decision::from_bool(self.decide(ctx).is_sampled())
    }

    fn description(&self) -> String {
        format!(
            "SamplingPolicy{{parent:{},errorsOverrideParent:{},limit:{}}}",
            self.parent.description(),
            self.errors_override_parent,
            self.limiter
                .as_ref()
                .map_or_else(|| "none".to_owned(), |l| l.description())
        )
    }
}
