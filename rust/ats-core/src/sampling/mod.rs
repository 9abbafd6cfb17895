//! Sampling: which records are kept.
//!
//! Head samplers implement [`Sampler`] and decide one span at a time from a
//! [`SamplingInput`]; they are cheap (a few nanoseconds), deterministic and
//! `Send + Sync`, so one instance serves every application thread.
//!
//! - [`TraceIdRatio`]: decides from the trace id exactly like OpenTelemetry's
//!   `TraceIdRatioBased` (pinned by golden vectors generated from the real SDK),
//!   so ATS and an OTel-instrumented peer agree on the same trace.
//! - [`ParentBased`]: follows the parent's sampled flag, delegating like OTel's
//!   `ParentBased`.
//! - [`FamilyRules`]: per event-family rates, separate for `ok` and `error`
//!   outcomes, longest event-name prefix wins.
//! - [`TenantRateLimiter`]: per-tenant token buckets (per-second rate with
//!   burst) and a daily cap (the "learning budget" of seed 000 §11).
//! - [`SamplingPolicy`]: the composition used by the record path.
//!
//! [`TailSampler`] is different: it holds whole traces until their local root
//! ends and keeps the failed or slow ones, in bounded memory.
//!
//! Time is always passed in (`now_ns`), never read from a clock, so every
//! decision is reproducible in tests.

mod parent;
mod policy;
mod rate_limit;
mod ratio;
mod rules;
mod tail;

pub use parent::ParentBased;
pub use policy::{PolicyConfig, PolicyOutcome, SamplingPolicy};
pub use rate_limit::{
    RateDecision, RateLimitConfig, RateLimiterStats, TenantRateLimiter, MAX_TENANT_LEN,
    OTHER_TENANT,
};
pub use ratio::TraceIdRatio;
pub use rules::{FamilyRule, FamilyRules};
pub use tail::{TailConfig, TailDecisions, TailSampler, TailSpan, TailStats};

use thiserror::Error;

/// Outcome of a sampling decision (OpenTelemetry's `DROP` / `RECORD_AND_SAMPLE`;
/// ATS has no use for a record-only span, so there is no third state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Drop,
    RecordAndSample,
}

impl Decision {
    /// `true` for [`Decision::RecordAndSample`].
    #[inline]
    pub fn is_sampled(self) -> bool {
        matches!(self, Decision::RecordAndSample)
    }

    /// [`Decision::RecordAndSample`] when `keep`, else [`Decision::Drop`].
    #[inline]
    pub fn from_bool(keep: bool) -> Self {
        if keep {
            Decision::RecordAndSample
        } else {
            Decision::Drop
        }
    }
}

/// What is known about the parent span of the span being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentInfo {
    /// The parent's W3C `sampled` trace flag.
    pub sampled: bool,
    /// The parent came from another process (propagated context).
    pub remote: bool,
}

/// Everything a head sampler may look at. Borrowed so building one on the hot
/// path costs nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingInput<'a> {
    pub trace_id: u128,
    /// `None` for a root span.
    pub parent: Option<ParentInfo>,
    /// Dot-scoped event name without the status suffix, e.g. `driver.query`.
    pub event_name: &'a str,
    /// The span's outcome is `error`.
    pub is_error: bool,
    pub tenant: &'a str,
    /// Caller-supplied clock (Unix epoch ns); only stateful samplers (rate
    /// limits) read it. Passed in so decisions are reproducible.
    pub now_ns: u64,
}

/// A head sampler. Implementations must be cheap and must not panic on any
/// input; they are called on application threads.
pub trait Sampler: Send + Sync {
    fn should_sample(&self, ctx: &SamplingInput<'_>) -> Decision;

    /// Human-readable description, OTel style (e.g. `TraceIdRatioBased{0.5}`).
    fn description(&self) -> String;
}

impl<S: Sampler + ?Sized> Sampler for Box<S> {
    #[inline]
    fn should_sample(&self, ctx: &SamplingInput<'_>) -> Decision {
        (**self).should_sample(ctx)
    }
    fn description(&self) -> String {
        (**self).description()
    }
}

impl<S: Sampler + ?Sized> Sampler for std::sync::Arc<S> {
    #[inline]
    fn should_sample(&self, ctx: &SamplingInput<'_>) -> Decision {
        (**self).should_sample(ctx)
    }
    fn description(&self) -> String {
        (**self).description()
    }
}

/// Samples everything (OTel's `ALWAYS_ON`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOn;

impl Sampler for AlwaysOn {
    #[inline]
    fn should_sample(&self, _ctx: &SamplingInput<'_>) -> Decision {
        Decision::RecordAndSample
    }
    fn description(&self) -> String {
        "AlwaysOnSampler".to_owned()
    }
}

/// Samples nothing (OTel's `ALWAYS_OFF`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOff;

impl Sampler for AlwaysOff {
    #[inline]
    fn should_sample(&self, _ctx: &SamplingInput<'_>) -> Decision {
        Decision::Drop
    }
    fn description(&self) -> String {
        "AlwaysOffSampler".to_owned()
    }
}

/// Configuration errors. Deciding never fails; only building a sampler can.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SamplingError {
    #[error("sampling ratio must be within [0, 1], got {ratio}")]
    InvalidRatio { ratio: f64 },
    #[error("family rule for prefix {prefix:?}: {reason}")]
    InvalidRule { prefix: String, reason: String },
    #[error("duplicate family rule prefix {prefix:?}")]
    DuplicateRulePrefix { prefix: String },
    #[error("rate limit: {reason}")]
    InvalidRateLimit { reason: String },
    #[error("tail sampler: {reason}")]
    InvalidTailConfig { reason: String },
}
