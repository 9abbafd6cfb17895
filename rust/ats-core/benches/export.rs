//! OTLP export: enqueue + deliver throughput to a local 200-OK HTTP/1.1
//! collector, and the exporter thread's CPU per payload.
//!
//! Payloads are 64 KiB bodies of span-like bytes (about 250 encoded spans
//! each); encoding is not measured here (see the otlp encoder's bench).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use ats_core::export::{Compression, OtlpConfig, OtlpSink, Payload, PayloadEncoder, Signal};
use ats_core::record::Record;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const BODY: usize = 64 << 10;
const SPANS_PER_PAYLOAD: usize = 250;

struct Fixed(Vec<u8>);
impl PayloadEncoder for Fixed {
    fn encode(&mut self, _: &[Record]) -> Vec<Payload> {
        vec![Payload { signal: Signal::Traces, body: self.0.clone(), items: SPANS_PER_PAYLOAD }]
    }
}

/// Answers every request with 200 and an empty body, keep-alive.
fn ok_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(c);
                loop {
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let t = line.trim_end();
                        if t.is_empty() {
                            break;
                        }
                        if let Some(v) = t.strip_prefix("content-length: ").or_else(|| t.strip_prefix("Content-Length: ")) {
                            len = v.parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    if r.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn body() -> Vec<u8> {
    // Compressible like real OTLP (repeated keys), not all-zero.
    (0..BODY).map(|i| b"driver.query db.system sqlite 0123456789abcdef"[i % 46] ^ (i / 4096) as u8).collect()
}

fn sink(port: u16, compression: Compression) -> OtlpSink {
    let mut c = OtlpConfig::default();
    c.traces_endpoint = Some(format!("http://127.0.0.1:{port}/v1/traces"));
    c.compression = compression;
    c.queue_max_bytes = 256 << 20;
    OtlpSink::open(&c, Box::new(Fixed(body()))).unwrap()
}

/// CPU seconds (user + system) used so far by the thread named `ats-otlp-export`.
fn exporter_cpu() -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == "ats-otlp-export" {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split(' ').collect();
            let (u, s): (f64, f64) = (f[11].parse().unwrap(), f[12].parse().unwrap());
            return (u + s) / tick;
        }
    }
    0.0
}

fn deliver(s: &mut OtlpSink, n: u64) {
    let target = s.stats().exported_payloads[0] + n;
    for _ in 0..n {
        s.write_batch(&[]).unwrap();
    }
    while s.stats().exported_payloads[0] < target {
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn bench(c: &mut Criterion) {
    let port = ok_server();
    let mut g = c.benchmark_group("otlp_export");
    g.throughput(Throughput::Elements(100 * SPANS_PER_PAYLOAD as u64));
    for (name, comp) in [("gzip", Compression::Gzip), ("none", Compression::None)] {
        let mut s = sink(port, comp);
        g.bench_function(format!("enqueue_deliver_100x64KiB_{name}"), |b| b.iter(|| deliver(&mut s, 100)));
        // One-off CPU figure for the report.
        let (cpu0, t0) = (exporter_cpu(), Instant::now());
        deliver(&mut s, 2000);
        let (cpu, wall) = (exporter_cpu() - cpu0, t0.elapsed().as_secs_f64());
        eprintln!(
            "otlp_export {name}: 2000 payloads ({} spans) in {wall:.2}s wall; exporter thread CPU {cpu:.2}s = {:.0} us/payload, {:.2} us/span; {:.0} spans/s",
            2000 * SPANS_PER_PAYLOAD,
            cpu * 1e6 / 2000.0,
            cpu * 1e6 / (2000 * SPANS_PER_PAYLOAD) as f64,
            (2000 * SPANS_PER_PAYLOAD) as f64 / wall
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
