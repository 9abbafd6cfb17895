//! OTLP/gRPC against an in-test HTTP/2 server (the `h2` crate).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ats_core::export::{BreakerState, Compression, OtlpSink, Protocol};
use bytes::Bytes;
use http::{HeaderMap, Response};

use crate::support::*;

#[derive(Debug, Clone)]
struct GrpcSeen {
    path: String,
    headers: HeaderMap,
    /// The raw DATA bytes (5-byte prefix + message).
    framed: Vec<u8>,
}

/// (grpc-status, grpc-message, grpc-status-details-bin, response message)
type GrpcReply = (u32, &'static str, Option<String>, Vec<u8>);

struct GrpcServer {
    port: u16,
    seen: Arc<Mutex<Vec<GrpcSeen>>>,
}

fn grpc_server(script: Vec<GrpcReply>) -> GrpcServer {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    std_listener.set_nonblocking(true).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
    let (seen2, script2) = (seen.clone(), script.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                let (seen, script) = (seen2.clone(), script2.clone());
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(sock).await else { return };
                    // The connection is only driven while accept() is polled:
                    // each stream is answered in its own task.
                    while let Some(Ok((req, respond))) = conn.accept().await {
                        tokio::spawn(answer(req, respond, seen.clone(), script.clone()));
                    }
                });
            }
        });
    });
    GrpcServer { port, seen }
}

async fn answer(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    seen: Arc<Mutex<Vec<GrpcSeen>>>,
    script: Arc<Mutex<std::collections::VecDeque<GrpcReply>>>,
) {
    let (parts, mut body) = req.into_parts();
    let mut framed = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        framed.extend_from_slice(&chunk);
    }
    seen.lock().unwrap().push(GrpcSeen { path: parts.uri.path().to_owned(), headers: parts.headers, framed });
    let (code, msg, details, reply) = script.lock().unwrap().pop_front().unwrap_or((0, "", None, Vec::new()));
    let resp = Response::builder().status(200).header("content-type", "application/grpc").body(()).unwrap();
    let Ok(mut stream) = respond.send_response(resp, false) else { return };
    let mut out = vec![0u8];
    out.extend_from_slice(&(reply.len() as u32).to_be_bytes());
    out.extend_from_slice(&reply);
    let _ = stream.send_data(Bytes::from(out), false);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", code.to_string().parse().unwrap());
    if !msg.is_empty() {
        trailers.insert("grpc-message", msg.parse().unwrap());
    }
    if let Some(d) = details {
        trailers.insert("grpc-status-details-bin", d.parse().unwrap());
    }
    let _ = stream.send_trailers(trailers);
}

fn grpc_config(port: u16) -> ats_core::export::OtlpConfig {
    let mut cfg = config(Some(format!("http://127.0.0.1:{port}")));
    cfg.logs_endpoint = Some(format!("http://127.0.0.1:{port}"));
    cfg.protocol = Protocol::Grpc;
    cfg.headers = vec![("x-api-key".into(), "k1".into())];
    cfg
}

fn unframe(framed: &[u8]) -> (u8, Vec<u8>) {
    let len = u32::from_be_bytes(framed[1..5].try_into().unwrap()) as usize;
    assert_eq!(framed.len(), 5 + len, "exactly one length-prefixed message");
    let msg = &framed[5..];
    if framed[0] == 1 {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(msg), &mut out).unwrap();
        (1, out)
    } else {
        (0, msg.to_vec())
    }
}

#[test]
fn grpc_paths_framing_headers_and_status() {
    let srv = grpc_server(vec![(0, "", None, Vec::new())]);
    let mut sink = OtlpSink::open(&grpc_config(srv.port), Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("g1"), span("g2"), log("l1")]).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || sink.stats().exported_payloads.iter().sum::<u64>() == 2),
        "{:?} {:?}",
        sink.stats(),
        sink.handle().last_error()
    );
    let seen = srv.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    assert_eq!(seen[1].path, "/opentelemetry.proto.collector.logs.v1.LogsService/Export");
    for s in &seen {
        assert_eq!(s.headers["content-type"], "application/grpc");
        assert_eq!(s.headers["te"], "trailers");
        assert_eq!(s.headers["grpc-encoding"], "gzip");
        assert_eq!(s.headers["x-api-key"], "k1");
    }
    assert_eq!(unframe(&seen[0].framed), (1, b"g1,g2".to_vec()));
    assert_eq!(unframe(&seen[1].framed), (1, b"l1".to_vec()));
    let st = sink.stats();
    assert_eq!((st.exported_items, st.failures), ([2, 0, 1], 0), "{:?}", sink.handle().last_error());
}

#[test]
fn grpc_uncompressed_frame_and_partial_success() {
    // ExportTraceServiceResponse { partial_success { rejected_spans: 1, error_message: "x" } }
    let ps = vec![0x0a, 0x05, 0x08, 0x01, 0x12, 0x01, b'x'];
    let srv = grpc_server(vec![(0, "", None, ps)]);
    let mut cfg = grpc_config(srv.port);
    cfg.compression = Compression::None;
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("a"), span("b")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_payloads[0] == 1));
    let seen = srv.seen.lock().unwrap().clone();
    assert!(seen[0].headers.get("grpc-encoding").is_none());
    assert_eq!(unframe(&seen[0].framed), (0, b"a,b".to_vec()));
    let st = sink.stats();
    assert_eq!((st.exported_items[0], st.dropped_partial_success), (1, 1));
}

#[test]
fn grpc_retryable_and_permanent_codes() {
    // RetryInfo { retry_delay { seconds: 0, nanos: 400_000_000 } } inside google.rpc.Status.details.
    let retry_info_b64 = {
        let dur = [0x10u8, 0x80, 0x88, 0xde, 0xbe, 0x01]; // nanos = 400_000_000
        let mut retry = vec![0x0a, dur.len() as u8];
        retry.extend_from_slice(&dur);
        let url = b"type.googleapis.com/google.rpc.RetryInfo";
        let mut any = vec![0x0a, url.len() as u8];
        any.extend_from_slice(url);
        any.push(0x12);
        any.push(retry.len() as u8);
        any.extend_from_slice(&retry);
        let mut status = vec![0x08, 0x08, 0x1a, any.len() as u8];
        status.extend_from_slice(&any);
        b64(&status)
    };
    let srv = grpc_server(vec![
        (14, "unavailable", None, Vec::new()),
        (8, "slow down", Some(retry_info_b64), Vec::new()),
        (0, "", None, Vec::new()),
        (8, "no retry info", None, Vec::new()),
        (3, "bad", None, Vec::new()),
    ]);
    let mut sink = OtlpSink::open(&grpc_config(srv.port), Box::new(NamesEncoder)).unwrap();
    let t0 = Instant::now();
    sink.write_batch(&[span("r")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_items[0] == 1));
    // RESOURCE_EXHAUSTED with RetryInfo: waited the server's 400 ms.
    assert!(t0.elapsed() >= Duration::from_millis(400), "{:?}", t0.elapsed());
    sink.write_batch(&[span("s")]).unwrap();
    sink.write_batch(&[span("t")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().dropped_rejected == 2));
    let paths: Vec<Vec<u8>> = srv.seen.lock().unwrap().iter().map(|s| unframe(&s.framed).1).collect();
    assert_eq!(paths, [b"r".to_vec(), b"r".to_vec(), b"r".to_vec(), b"s".to_vec(), b"t".to_vec()]);
    let st = sink.stats();
    assert_eq!((st.retries, st.failures, st.breaker_state), (2, 2, BreakerState::Closed));
    assert_eq!(sink.handle().last_error().as_deref(), Some("gRPC status 3: bad"));
}

fn b64(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &x)| acc | u32::from(x) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}
