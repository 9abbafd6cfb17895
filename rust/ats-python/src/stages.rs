//! Builds the flusher stages a `Pipeline` was configured with. Validation
//! happens here, once, so a bad pattern or ratio fails at start-up.

use std::sync::Arc;

use ats_core::query::DriverMetrics;
use ats_core::flusher::{Stages, StagesFactory};
use ats_core::metrics::MetricsRegistry;
use ats_core::record::Envelope;
use ats_core::sampling::TailConfig;
use ats_core::scrub::{ExtraPattern, Scrubber};
use ats_core::stage::metrics::MetricsCollector;
use ats_core::stage::redact::Redactor;
use ats_core::stage::tail::TailStage;
use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

pub struct StageArgs {
    pub redact: bool,
    pub scrub_patterns: Vec<(String, String, String)>,
    pub tail_latency_ms: Option<f64>,
    pub tail_base_ratio: f64,
    pub metrics: MetricsRegistry,
    pub metrics_interval_ms: u64,
    pub resource: Envelope,
    /// Recorded on the flusher for driver records that leave them pending.
    pub driver_metrics: Arc<DriverMetrics>,
}

impl StageArgs {
    pub fn factory(self) -> PyResult<StagesFactory> {
        let scrubber = if self.redact {
            let extra: Vec<ExtraPattern> = self
                .scrub_patterns
                .into_iter()
                .map(|(name, regex, marker)| ExtraPattern { name, regex, marker })
                .collect();
            Some(Arc::new(Scrubber::new(&extra).map_err(|e| PyValueError::new_err(format!("scrub_patterns: {e}")))?))
        } else {
            None
        };
        let tail = match self.tail_latency_ms {
            Some(ms) if !(ms.is_finite() && ms >= 0.0) => {
                return Err(PyValueError::new_err(format!("tail_latency_ms must be a finite number >= 0, got {ms}")));
            }
            Some(ms) => {
                let config = TailConfig {
                    latency_threshold_ns: (ms * 1e6) as u64,
                    base_ratio: self.tail_base_ratio,
                    ..TailConfig::default()
                };
                // Validate now; each incarnation builds its own sampler from the config.
                TailStage::new(config.clone()).map_err(|e| PyValueError::new_err(format!("tail sampling: {e}")))?;
                Some(config)
            }
            None => None,
        };
        let metrics = self.metrics;
        let interval_ns = self.metrics_interval_ms.max(1).saturating_mul(1_000_000);
        let resource = self.resource;
        let driver_metrics = self.driver_metrics;
        Ok(Box::new(move || {
            let mut stages = Stages { driver_metrics: Some(Arc::clone(&driver_metrics)), ..Stages::default() };
            // Tail sampling first: scrubbing what will be dropped is wasted work.
            if let Some(config) = &tail {
                if let Ok(stage) = TailStage::new(config.clone()) {
                    stages.processors.push(Box::new(stage));
                }
            }
            if let Some(scrubber) = &scrubber {
                stages.processors.push(Box::new(Redactor::new(Arc::clone(scrubber))));
            }
            stages.collectors.push(Box::new(MetricsCollector::new(metrics.clone(), interval_ns, resource.clone())));
            stages
        }))
    }
}
