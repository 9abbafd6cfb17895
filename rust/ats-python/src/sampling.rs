//! Bindings for `ats_core::sampling`: the head-sampling policy the record
//! path applies, and the OpenTelemetry-compatible ratio sampler on its own.

use std::sync::atomic::{AtomicU64, Ordering};

use ats_core::sampling::{
    FamilyRule, ParentInfo, PolicyConfig, PolicyOutcome, RateLimitConfig, SamplingInput, SamplingPolicy, TraceIdRatio,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::ids::parse_trace_id;

/// Outcomes that drop a span, in the order of [`Sampling::dropped`].
const DROP_OUTCOMES: [PolicyOutcome; 5] = [
    PolicyOutcome::DroppedByParent,
    PolicyOutcome::DroppedByRule,
    PolicyOutcome::DroppedByRatio,
    PolicyOutcome::RateLimited,
    PolicyOutcome::DailyCapReached,
];

/// The policy plus counters of what it sampled out, by reason.
pub struct Sampling {
    policy: SamplingPolicy,
    /// OTEL_TRACES_SAMPLER's `parentbased_*` family: follow the parent's decision.
    parent_based: bool,
    dropped: [AtomicU64; DROP_OUTCOMES.len()],
}

/// Sampling settings as the `Pipeline` constructor takes them.
pub struct SamplingArgs {
    pub ratio: f64,
    pub parent_based: bool,
    pub rules: Vec<(String, f64, f64)>,
    pub rate_limit_per_second: Option<f64>,
    pub rate_limit_burst: u32,
    pub daily_cap: Option<u64>,
}

impl Sampling {
    pub fn new(args: SamplingArgs) -> PyResult<Self> {
        let rate_limit = (args.rate_limit_per_second.is_some() || args.daily_cap.is_some()).then(|| RateLimitConfig {
            per_second: args.rate_limit_per_second,
            burst: args.rate_limit_burst,
            daily_cap: args.daily_cap,
            ..RateLimitConfig::default()
        });
        let config = PolicyConfig {
            base_ratio: args.ratio,
            rules: args.rules.into_iter().map(|(prefix, ok, err)| FamilyRule::new(prefix, ok, err)).collect(),
            rate_limit,
            ..PolicyConfig::default()
        };
        let policy = SamplingPolicy::new(config).map_err(|e| PyValueError::new_err(format!("sampling: {e}")))?;
        Ok(Self { policy, parent_based: args.parent_based, dropped: Default::default() })
    }

    /// True when the span is kept; otherwise the reason is counted.
    #[inline]
    pub fn keep(&self, input: &SamplingInput<'_>) -> bool {
        let outcome = self.policy.decide(input);
        if outcome.is_sampled() {
            return true;
        }
        if let Some(i) = DROP_OUTCOMES.iter().position(|o| *o == outcome) {
            self.dropped[i].fetch_add(1, Ordering::Relaxed);
        }
        false
    }

    /// What the policy sees of the parent: nothing for a root span, or when
    /// sampling is not parent-based (then every span is decided like a root).
    #[inline]
    pub fn parent(&self, parent_span_id: u64, sampled: bool, remote: bool) -> Option<ParentInfo> {
        (self.parent_based && parent_span_id != 0).then_some(ParentInfo { sampled, remote })
    }

    pub fn dropped_into(&self, d: &Bound<'_, PyDict>) -> PyResult<()> {
        for (outcome, count) in DROP_OUTCOMES.iter().zip(&self.dropped) {
            d.set_item(outcome.as_str(), count.load(Ordering::Relaxed))?;
        }
        Ok(())
    }
}


/// OpenTelemetry's `TraceIdRatioBased`, decision for decision.
#[pyclass(module = "ats._native", frozen, name = "TraceIdRatio")]
pub struct PyTraceIdRatio {
    inner: TraceIdRatio,
}

#[pymethods]
impl PyTraceIdRatio {
    #[new]
    fn new(ratio: f64) -> PyResult<Self> {
        TraceIdRatio::new(ratio).map(|inner| Self { inner }).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// `trace_id` as 32 hex digits (W3C form).
    fn should_sample(&self, trace_id: &str) -> PyResult<bool> {
        Ok(self.inner.keeps(parse_trace_id(trace_id)?))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTraceIdRatio>()?;
    Ok(())
}
