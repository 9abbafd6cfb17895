use std::time::{Duration, Instant};

use ats_core::export::{BreakerState, Compression, OtlpSink, Protocol};
use ats_core::flusher::Sink;

use crate::support::*;

fn names(prefix: &str, n: usize) -> Vec<ats_core::record::Record> {
    (0..n).map(|i| span(&format!("{prefix}{i}"))).collect()
}

#[test]
fn delivers_in_order_with_exact_bodies_and_headers() {
    let col = collector();
    let mut cfg = config(Some(col.url("/v1/traces?k=v")));
    cfg.headers = vec![("X-Tenant".into(), "t1".into()), ("authorization".into(), "Bearer s3cret".into())];
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("a"), span("b"), log("not-exported")]).unwrap();
    sink.write_batch(&[span("c")]).unwrap();
    sink.write_batch(&names("n", 3)).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_payloads[0] == 3));
    let seen = col.script.seen();
    assert_eq!(col.script.bodies(), ["a,b", "c", "n0,n1,n2"]);
    for s in &seen {
        assert_eq!((s.method.as_str(), s.path.as_str()), ("POST", "/v1/traces?k=v"));
        assert_eq!(s.header("content-type"), Some("application/x-protobuf"));
        assert_eq!(s.header("content-encoding"), Some("gzip"));
        assert_eq!(s.header("x-tenant"), Some("t1"));
        assert_eq!(s.header("authorization"), Some("Bearer s3cret"));
        assert_eq!(s.header("host"), Some(format!("127.0.0.1:{}", col.port).as_str()));
    }
    let st = sink.stats();
    assert_eq!((st.exported_items, st.retries, st.failures, st.dropped_rejected), ([6, 0, 0], 0, 0, 0));
    sink.close_by(Instant::now() + Duration::from_secs(1)).unwrap();
    // Logs had no endpoint: never sent, never counted as dropped.
    assert_eq!(col.script.seen().len(), 3);
}

#[test]
fn json_without_compression() {
    let col = collector();
    let mut cfg = config(None);
    cfg.logs_endpoint = Some(col.url("/v1/logs"));
    cfg.protocol = Protocol::HttpJson;
    cfg.compression = Compression::None;
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("dropped-no-endpoint"), log("l1"), log("l2")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_items[2] == 2));
    let seen = col.script.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/logs");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].header("content-encoding"), None);
    assert_eq!(seen[0].text(), "l1,l2");
}

#[test]
fn retries_503_honouring_retry_after_seconds() {
    let col = collector();
    col.script.push(retry_after(503, "1"));
    let mut sink = OtlpSink::open(&config(Some(col.url("/v1/traces"))), Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("x")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_items[0] == 1));
    let seen = col.script.seen();
    assert_eq!(col.script.bodies(), ["x", "x"]);
    let gap = seen[1].at - seen[0].at;
    // Backoff alone would retry within 20 ms.
    assert!(gap >= Duration::from_millis(990) && gap < Duration::from_millis(1500), "{gap:?}");
    let st = sink.stats();
    assert_eq!((st.retries, st.failures), (1, 1));
}

#[test]
fn retries_429_502_504_and_dropped_connections_then_delivers() {
    let col = collector();
    for r in [status(429), status(502), Reply::Hangup, status(504)] {
        col.script.push(r);
    }
    let mut sink = OtlpSink::open(&config(Some(col.url("/v1/traces"))), Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("p"), span("q")]).unwrap();
    sink.write_batch(&[span("r")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_payloads[0] == 2));
    assert_eq!(col.script.bodies(), ["p,q", "p,q", "p,q", "p,q", "p,q", "r"]);
    let st = sink.stats();
    assert_eq!((st.retries, st.failures, st.exported_items[0]), (4, 4, 3));
}

#[test]
fn other_4xx_and_5xx_are_dropped_and_counted_not_retried() {
    let col = collector();
    col.script.push(status(400));
    col.script.push(status(500));
    col.script.push(status(413));
    let mut sink = OtlpSink::open(&config(Some(col.url("/v1/traces"))), Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("a"), span("b")]).unwrap();
    sink.write_batch(&[span("c")]).unwrap();
    sink.write_batch(&[span("d")]).unwrap();
    sink.write_batch(&[span("e")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_items[0] == 1));
    assert_eq!(col.script.bodies(), ["a,b", "c", "d", "e"]);
    let st = sink.stats();
    assert_eq!((st.dropped_rejected, st.retries, st.failures), (4, 0, 0));
    assert_eq!(sink.handle().last_error().as_deref(), Some("HTTP 413"));
}

#[test]
fn partial_success_is_counted_not_retried() {
    let col = collector();
    // ExportTraceServiceResponse { partial_success { rejected_spans: 2, error_message: "bad" } }
    let body = vec![0x0a, 0x07, 0x08, 0x02, 0x12, 0x03, b'b', b'a', b'd'];
    col.script.push(Reply::Status { code: 200, headers: Vec::new(), body });
    let mut sink = OtlpSink::open(&config(Some(col.url("/v1/traces"))), Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&names("s", 3)).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_payloads[0] == 1));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(col.script.seen().len(), 1);
    let st = sink.stats();
    assert_eq!((st.exported_items[0], st.dropped_partial_success, st.retries), (1, 2, 0));
    assert_eq!(sink.handle().last_error().as_deref(), Some("partial success: 2 rejected: bad"));
}

#[test]
fn a_slow_collector_times_out_and_is_retried() {
    let col = collector();
    col.script.push(Reply::Slow(Duration::from_millis(1500)));
    let mut cfg = config(Some(col.url("/v1/traces")));
    cfg.timeout = Duration::from_millis(300);
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    let t0 = Instant::now();
    sink.write_batch(&[span("slow")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_items[0] == 1));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1400), "{took:?}");
    assert_eq!(col.script.bodies(), ["slow", "slow"]);
    let st = sink.stats();
    assert_eq!((st.failures, st.retries), (1, 1));
    assert!(sink.handle().last_error().unwrap().contains("timed out"));
}

#[test]
fn breaker_opens_on_a_dead_collector_spools_and_delivers_in_order_when_it_returns() {
    let port = dead_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(Some(format!("http://127.0.0.1:{port}/v1/traces")));
    cfg.breaker.failure_threshold = 2;
    cfg.breaker.cooldown = Duration::from_millis(100);
    cfg.breaker.max_cooldown = Duration::from_millis(200);
    cfg.spool_dir = Some(dir.path().to_owned());
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("b0")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().breaker_state == BreakerState::Open));
    // Connection refused twice (threshold), then probes every cool-down only.
    let failures_when_opened = sink.stats().failures;
    assert_eq!(failures_when_opened, 2);
    // While open, payloads go to the spool directory.
    for i in 1..5 {
        sink.write_batch(&[span(&format!("b{i}"))]).unwrap();
    }
    let st = sink.stats();
    assert!(st.spooled_payloads >= 4, "{st:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "otlp")).count() as u64, st.spooled_payloads);
    std::thread::sleep(Duration::from_millis(500));
    // ~500 ms at 100-200 ms cool-downs: a handful of probes, not hundreds of attempts.
    let probes = sink.stats().failures - failures_when_opened;
    assert!((1..=5).contains(&probes), "{probes}");
    assert!(sink.stats().breaker_opened >= 2);

    let col = serve_on(port);
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_payloads[0] == 5));
    assert_eq!(col.script.bodies(), ["b0", "b1", "b2", "b3", "b4"]);
    let st = sink.stats();
    assert_eq!((st.breaker_state, st.spooled_payloads, st.spooled_bytes), (BreakerState::Closed, 0, 0));
    // Back to the memory queue once the spool is empty.
    sink.write_batch(&[span("b5")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_payloads[0] == 6));
    assert_eq!(sink.stats().spooled_payloads, 0);
}

#[test]
fn spool_overflow_drops_oldest_and_a_restart_delivers_the_spool_first() {
    let port = dead_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(Some(format!("http://127.0.0.1:{port}/v1/traces")));
    cfg.breaker.failure_threshold = 1;
    cfg.breaker.cooldown = Duration::from_secs(30);
    cfg.spool_dir = Some(dir.path().to_owned());
    // Three 2-byte payloads (32-byte header each) fit; a fourth does not.
    cfg.spool_max_bytes = 3 * 34;
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("s1")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().breaker_state == BreakerState::Open));
    for i in 2..=7 {
        sink.write_batch(&[span(&format!("s{i}"))]).unwrap();
    }
    let st = sink.stats();
    assert_eq!((st.dropped_spool_overflow, st.spooled_payloads, st.spooled_bytes, st.failures), (4, 3, 102, 1));
    assert_eq!(
        Sink::drop_totals(&sink),
        vec![("otlp_spool_overflow", 4), ("otlp_rejected", 0), ("otlp_partial_success", 0), ("otlp_retry_exhausted", 0), ("otlp_spool_error", 0), ("otlp_shutdown", 0)]
    );
    // Breaker open at shutdown: no waiting for the cool-down.
    let t0 = Instant::now();
    sink.close_by(Instant::now() + Duration::from_secs(3)).unwrap();
    assert!(t0.elapsed() < Duration::from_millis(200), "{:?}", t0.elapsed());
    drop(sink);

    let col = serve_on(port);
    // Room for s8 beside the three left over (at the old cap, s8 would
    // evict the oldest not in flight).
    cfg.spool_max_bytes = 1 << 20;
    let mut again = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    assert_eq!(again.stats().spooled_payloads, 3);
    again.write_batch(&[span("s8")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || again.stats().exported_payloads[0] == 4), "{:?} {:?} {:?}", again.stats(), again.handle().last_error(), col.script.bodies());
    assert_eq!(col.script.bodies(), ["s5", "s6", "s7", "s8"]);
}

#[test]
fn shutdown_never_waits_past_its_deadline_and_keeps_the_payload() {
    let col = collector();
    col.script.push(Reply::Slow(Duration::from_secs(3)));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(Some(col.url("/v1/traces")));
    cfg.timeout = Duration::from_secs(10);
    cfg.spool_dir = Some(dir.path().to_owned());
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("kept")]).unwrap();
    sink.write_batch(&[span("queued")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || col.script.seen().len() == 1));
    let t0 = Instant::now();
    sink.close_by(Instant::now() + Duration::from_millis(300)).unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(290) && took < Duration::from_millis(400), "{took:?}");
    assert_eq!(sink.stats().spooled_payloads, 2);
    // Writes after close fail (the flusher counts them).
    assert!(sink.write_batch(&[span("late")]).is_err());
    drop(sink);

    // The next start delivers both, in order (the one in flight may arrive twice).
    let col2 = collector();
    cfg.traces_endpoint = Some(col2.url("/v1/traces"));
    let again = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    assert!(wait_until(Duration::from_secs(5), || again.stats().exported_payloads[0] == 2));
    assert_eq!(col2.script.bodies(), ["kept", "queued"]);
}

#[test]
fn shutdown_uses_the_whole_deadline_it_is_given_not_close_timeout() {
    // A backlog that takes longer to deliver than `close_timeout`: the
    // caller's (the program's) shutdown deadline governs.
    let col = collector();
    for _ in 0..4 {
        col.script.push(Reply::Slow(Duration::from_millis(150)));
    }
    let mut cfg = config(Some(col.url("/v1/traces")));
    cfg.close_timeout = Duration::from_millis(200);
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    for i in 0..4 {
        sink.write_batch(&[span(&format!("b{i}"))]).unwrap();
    }
    let t0 = Instant::now();
    Sink::close_by(&mut sink, Instant::now() + Duration::from_secs(5)).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(400), "{:?}", t0.elapsed());
    assert_eq!(col.script.bodies(), ["b0", "b1", "b2", "b3"]);
    let st = sink.stats();
    assert_eq!((st.exported_payloads[0], st.dropped_shutdown), (4, 0));
}

#[test]
fn without_a_spool_dir_what_is_left_at_close_is_counted() {
    let port = dead_port();
    let mut cfg = config(Some(format!("http://127.0.0.1:{port}/v1/traces")));
    cfg.breaker.failure_threshold = 1;
    cfg.breaker.cooldown = Duration::from_secs(30);
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&names("m", 3)).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().breaker_state == BreakerState::Open));
    sink.write_batch(&names("k", 2)).unwrap();
    sink.close_by(Instant::now() + Duration::from_secs(1)).unwrap();
    assert_eq!(sink.stats().dropped_shutdown, 5);
}

#[test]
fn retry_max_elapsed_gives_up_and_counts() {
    let port = dead_port();
    let mut cfg = config(Some(format!("http://127.0.0.1:{port}/v1/traces")));
    cfg.retry.max_elapsed = Some(Duration::from_millis(100));
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&names("g", 2)).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().dropped_retry_exhausted == 2));
    assert!(sink.stats().failures >= 2);
}
