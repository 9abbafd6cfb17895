//! Flusher stages: redaction, tail sampling and metric collection, on real records.

use std::sync::Arc;

use ats_core::flusher::{Collector, Processor};
use ats_core::metrics::MetricsRegistry;
use ats_core::record::{AttrValue, Envelope, LogRecord, Record, Severity, SpanRecord, Status};
use ats_core::sampling::TailConfig;
use ats_core::scrub::Scrubber;
use ats_core::stage::metrics::MetricsCollector;
use ats_core::stage::redact::Redactor;
use ats_core::stage::tail::TailStage;

fn span(trace_id: u128, span_id: u64, parent: u64, dur_ns: u64, status: Status, attrs: Vec<(&str, AttrValue)>) -> Record {
    Record::Span(SpanRecord {
        envelope: Envelope { ts_ns: 1_000, trace_id, span_id, parent_span_id: parent, ..Envelope::default() },
        name: "driver.query".into(),
        component: "test".into(),
        end_ns: 1_000 + dur_ns,
        status,
        attributes: attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    })
}

#[test]
fn redactor_scrubs_span_attributes_and_log_bodies_only_where_needed() {
    let mut r = Redactor::new(Arc::new(Scrubber::new(&[]).unwrap()));
    let mut batch = vec![
        span(1, 1, 0, 5, Status::Ok, vec![
            ("msg", AttrValue::Str("mail bob@example.com".into())),
            ("rows", AttrValue::I64(3)),
            ("clean", AttrValue::Str("SELECT * FROM t WHERE id = ?".into())),
        ]),
        Record::Log(LogRecord {
            envelope: Envelope::default(),
            event: "sec.violation".into(),
            component: "t".into(),
            severity: Severity::WARN,
            body: "ssn 123-45-6789".into(),
            attributes: vec![("path".into(), AttrValue::Str("/home/alice/x.py".into()))],
        }),
    ];
    r.process(&mut batch);
    let Record::Span(s) = &batch[0] else { panic!("span expected") };
    assert_eq!(s.attributes[0].1, AttrValue::Str("mail [EMAIL]".into()));
    assert_eq!(s.attributes[1].1, AttrValue::I64(3));
    assert_eq!(s.attributes[2].1, AttrValue::Str("SELECT * FROM t WHERE id = ?".into()));
    let Record::Log(l) = &batch[1] else { panic!("log expected") };
    assert_eq!(l.body, "ssn [SSN]");
    assert_eq!(l.attributes[0].1, AttrValue::Str("~/x.py".into()));
}

#[test]
fn redactor_remembers_clean_values_never_dirty_ones() {
    let mut r = Redactor::new(Arc::new(Scrubber::new(&[]).unwrap()));
    let attrs = |i: usize| {
        vec![
            ("stmt", AttrValue::Str("SELECT * FROM t WHERE id = ?".into())),
            ("who", AttrValue::Str("mail bob@example.com".into())),
            ("n", AttrValue::Str(format!("value-{i}"))),
        ]
    };
    // Many rounds, past the memory's bound (it starts over), with distinct clean values.
    for round in 0..3 {
        let mut batch: Vec<Record> = (0..3000).map(|i| span(1, i as u64 + 1, 0, 5, Status::Ok, attrs(i))).collect();
        r.process(&mut batch);
        for (i, rec) in batch.iter().enumerate() {
            let Record::Span(s) = rec else { panic!("span expected") };
            assert_eq!(s.attributes[0].1, AttrValue::Str("SELECT * FROM t WHERE id = ?".into()), "round {round}");
            assert_eq!(s.attributes[1].1, AttrValue::Str("mail [EMAIL]".into()), "round {round}");
            assert_eq!(s.attributes[2].1, AttrValue::Str(format!("value-{i}")), "round {round}");
        }
    }
}

#[test]
fn tail_stage_holds_until_root_and_keeps_failed_traces_whole() {
    let config = TailConfig { latency_threshold_ns: 1_000_000, base_ratio: 0.0, ..TailConfig::default() };
    let mut t = TailStage::new(config).unwrap();
    // Children arrive first and are held; the root's arrival decides the trace.
    let mut batch = vec![span(7, 2, 1, 10, Status::Error, vec![]), span(8, 2, 1, 10, Status::Ok, vec![])];
    t.process(&mut batch);
    assert!(batch.is_empty());
    let mut batch = vec![span(7, 1, 0, 20, Status::Ok, vec![]), span(8, 1, 0, 20, Status::Ok, vec![])];
    t.process(&mut batch);
    let kept: Vec<(u128, u64)> = batch
        .iter()
        .map(|r| (r.envelope().trace_id, r.envelope().span_id))
        .collect();
    assert_eq!(kept, vec![(7, 2), (7, 1)]);
    let stats = t.stats();
    assert_eq!((stats.kept_traces, stats.dropped_traces, stats.held_spans), (1, 1, 0));
}

#[test]
fn tail_stage_releases_held_spans_at_finish() {
    let config = TailConfig { latency_threshold_ns: 1, base_ratio: 0.0, ..TailConfig::default() };
    let mut t = TailStage::new(config).unwrap();
    let mut batch = vec![span(9, 2, 1, 10, Status::Ok, vec![])];
    t.process(&mut batch);
    assert!(batch.is_empty());
    let mut out = Vec::new();
    t.finish(&mut out);
    assert_eq!(out.len(), 1, "slow span of an unfinished trace is kept at shutdown");
}

#[test]
fn metrics_collector_respects_interval_and_always_emits_at_finish() {
    let registry = MetricsRegistry::new(0);
    registry.counter("sqlx_driver_errors_total", "1").unwrap().add(&[("dialect", "sqlite")], 3);
    let resource = Envelope { tenant: "acme".into(), workspace: "w".into(), region: "r".into(), ..Envelope::default() };
    let mut c = MetricsCollector::new(registry, 10_000, resource);
    let mut out = Vec::new();
    c.collect(5_000, &mut out);
    assert!(out.is_empty(), "interval not reached");
    c.collect(10_000, &mut out);
    assert_eq!(out.len(), 1);
    c.collect(15_000, &mut out);
    assert_eq!(out.len(), 1, "next interval not reached");
    c.finish(16_000, &mut out);
    assert_eq!(out.len(), 2);
    let Record::Metric(m) = &out[1] else { panic!("metric expected") };
    assert_eq!((m.name.as_str(), m.value, m.envelope.tenant.as_str()), ("sqlx_driver_errors_total", 3.0, "acme"));
    assert_eq!(m.labels, vec![("dialect".to_owned(), "sqlite".to_owned())]);
}
