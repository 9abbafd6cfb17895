//! The OTLP sink under the flusher: counters in `SinkStats`, its drops
//! handed to every sink's `record_drops`, the close deadline honoured.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ats_core::export::OtlpConfig;
use ats_core::flusher::{FlushConfig, Flusher, Sink, SinkError};
use ats_core::record::codec;
use ats_core::record::*;
use ats_core::ring::Ring;
use ats_core::sink::{open_sinks_with, SinkSpec};

use crate::support::*;

struct DropLog(Arc<Mutex<Vec<(String, u64)>>>);
impl Sink for DropLog {
    fn name(&self) -> &str {
        "droplog"
    }
    fn write_batch(&mut self, _: &[Record]) -> Result<(), SinkError> {
        Ok(())
    }
    fn record_drops(&mut self, drops: &[(&str, u64)]) -> Result<(), SinkError> {
        self.0.lock().unwrap().extend(drops.iter().map(|(r, n)| (r.to_string(), *n)));
        Ok(())
    }
}

fn push(ring: &Ring, name: &str) {
    let s = SpanRef {
        envelope: EnvelopeRef::default(),
        name,
        component: "t",
        end_ns: 1,
        status: Status::Ok,
        attributes: &[],
    };
    let mut v = Vec::new();
    codec::encode_span_to_vec(&s, &mut v).unwrap();
    ring.push(&v).unwrap();
}

fn names_encoder(_: &OtlpConfig) -> Box<dyn ats_core::export::PayloadEncoder> {
    Box::new(NamesEncoder)
}

#[test]
fn otlp_sink_counters_and_drops_flow_through_the_flusher() {
    let col = collector();
    col.script.push(status(400));
    let cfg = config(Some(col.url("/v1/traces")));
    let mut sinks = open_sinks_with(&[SinkSpec::Otlp(cfg)], &names_encoder).unwrap();
    let drops = Arc::new(Mutex::new(Vec::new()));
    sinks.push(Box::new(DropLog(drops.clone())));
    let ring = Arc::new(Ring::new(1 << 20));
    let flusher = Flusher::start(ring.clone(), sinks, Vec::new(), FlushConfig { interval: Duration::from_millis(10), ..FlushConfig::default() });
    push(&ring, "rejected");
    assert!(flusher.flush(Duration::from_secs(2)));
    assert!(wait_until(Duration::from_secs(5), || col.script.seen().len() == 1));
    push(&ring, "a");
    push(&ring, "b");
    assert!(flusher.flush(Duration::from_secs(2)));
    let counter = |name: &str| {
        let st = flusher.stats();
        st.sinks[0].counters.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    };
    assert!(wait_until(Duration::from_secs(5), || counter("exported_spans") == Some(2)));
    assert_eq!(counter("dropped_rejected"), Some(1));
    assert_eq!(flusher.stats().sinks[0].name, "otlp");
    assert!(wait_until(Duration::from_secs(5), || {
        flusher.flush(Duration::from_millis(100));
        drops.lock().unwrap().iter().any(|(r, n)| r == "otlp_rejected" && *n == 1)
    }));
    assert_eq!(col.script.bodies(), ["rejected", "a,b"]);
    assert!(flusher.shutdown(Duration::from_secs(2)));
}

#[test]
fn flusher_shutdown_deadline_bounds_a_stuck_collector() {
    let col = collector();
    col.script.push(Reply::Slow(Duration::from_secs(5)));
    let mut cfg = config(Some(col.url("/v1/traces")));
    cfg.timeout = Duration::from_secs(10);
    cfg.close_timeout = Duration::from_secs(10);
    let sinks = open_sinks_with(&[SinkSpec::Otlp(cfg)], &names_encoder).unwrap();
    let ring = Arc::new(Ring::new(1 << 20));
    let flusher = Flusher::start(ring.clone(), sinks, Vec::new(), FlushConfig::default());
    push(&ring, "stuck");
    assert!(flusher.flush(Duration::from_secs(2)));
    assert!(wait_until(Duration::from_secs(5), || col.script.seen().len() == 1));
    let t0 = Instant::now();
    assert!(flusher.shutdown(Duration::from_millis(400)));
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(550), "{took:?}");
    let st = flusher.stats();
    let dropped = st.sinks[0].drops.iter().find(|(r, _)| *r == "otlp_shutdown").map(|(_, n)| *n);
    assert_eq!(dropped, Some(1));
}
