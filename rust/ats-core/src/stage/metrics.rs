//! Periodic metric snapshots as records, so metrics reach every sink the
//! same way spans do.

use crate::flusher::Collector;
use crate::metrics::MetricsRegistry;
use crate::record::{Envelope, Record};

pub struct MetricsCollector {
    registry: MetricsRegistry,
    interval_ns: u64,
    last_ns: u64,
    /// Resource fields stamped on every point (tenant, workspace, region).
    resource: Envelope,
}

impl MetricsCollector {
    pub fn new(registry: MetricsRegistry, interval_ns: u64, resource: Envelope) -> Self {
        Self { last_ns: registry.start_ns(), registry, interval_ns: interval_ns.max(1), resource }
    }

    fn snapshot_into(&mut self, now_ns: u64, out: &mut Vec<Record>) {
        self.last_ns = now_ns;
        for mut point in self.registry.snapshot(now_ns) {
            point.envelope.tenant.clone_from(&self.resource.tenant);
            point.envelope.workspace.clone_from(&self.resource.workspace);
            point.envelope.region.clone_from(&self.resource.region);
            out.push(Record::Metric(point));
        }
    }
}

impl Collector for MetricsCollector {
    fn collect(&mut self, now_ns: u64, out: &mut Vec<Record>) {
        if now_ns.saturating_sub(self.last_ns) >= self.interval_ns {
            self.snapshot_into(now_ns, out);
        }
    }

    fn finish(&mut self, now_ns: u64, out: &mut Vec<Record>) {
        self.snapshot_into(now_ns, out);
    }
}
