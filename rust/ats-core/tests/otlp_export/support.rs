//! Test parts: a scripted HTTP/1.1 collector on 127.0.0.1 (std threads,
//! optionally behind rustls), and a trivial encoder whose bodies are easy to
//! assert.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ats_core::export::{OtlpConfig, Payload, PayloadEncoder, Signal};
use ats_core::record::{Envelope, LogRecord, Record, Severity, SpanRecord, Status};

/// Encodes a batch into at most one payload per signal: the span names (or
/// log events) joined by `,`, so bodies are exact and readable.
pub struct NamesEncoder;

impl PayloadEncoder for NamesEncoder {
    fn encode(&mut self, batch: &[Record]) -> Vec<Payload> {
        let mut spans = Vec::new();
        let mut logs = Vec::new();
        for r in batch {
            match r {
                Record::Span(s) => spans.push(s.name.as_str()),
                Record::Log(l) => logs.push(l.event.as_str()),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if !spans.is_empty() {
            out.push(Payload { signal: Signal::Traces, body: spans.join(",").into_bytes(), items: spans.len() });
        }
        if !logs.is_empty() {
            out.push(Payload { signal: Signal::Logs, body: logs.join(",").into_bytes(), items: logs.len() });
        }
        out
    }
}

pub fn span(name: &str) -> Record {
    Record::Span(SpanRecord {
        envelope: Envelope::default(),
        name: name.into(),
        component: "test".into(),
        end_ns: 1,
        status: Status::Ok,
        attributes: Vec::new(),
    })
}

pub fn log(event: &str) -> Record {
    Record::Log(LogRecord {
        envelope: Envelope::default(),
        event: event.into(),
        component: "test".into(),
        severity: Severity::INFO,
        body: String::new(),
        attributes: Vec::new(),
    })
}

/// One request as the collector saw it (body gunzipped when sent gzipped).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// What the collector does with the next request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status { code: u16, headers: Vec<(&'static str, String)>, body: Vec<u8> },
    /// Read the request, then wait this long before answering 200.
    Slow(Duration),
    /// Read the request, then close the connection without an answer.
    Hangup,
}

pub fn status(code: u16) -> Reply {
    Reply::Status { code, headers: Vec::new(), body: Vec::new() }
}

pub fn retry_after(code: u16, value: &str) -> Reply {
    Reply::Status { code, headers: vec![("Retry-After", value.to_owned())], body: Vec::new() }
}

#[derive(Clone, Default)]
pub struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    pub fn push(&self, r: Reply) {
        self.replies.lock().unwrap().push_back(r);
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    pub fn bodies(&self) -> Vec<String> {
        self.seen().iter().map(Seen::text).collect()
    }
    fn next(&self) -> Reply {
        self.replies.lock().unwrap().pop_front().unwrap_or_else(|| status(200))
    }
}

pub struct Collector {
    pub port: u16,
    pub script: Script,
}

impl Collector {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Plain-HTTP collector.
pub fn collector() -> Collector {
    serve(None)
}

/// HTTP(S) collector; with `tls`, every connection is wrapped in rustls first.
pub fn serve(tls: Option<Arc<rustls::ServerConfig>>) -> Collector {
    serve_at(0, tls)
}

/// Plain-HTTP collector on a given port (a collector that comes back).
pub fn serve_on(port: u16) -> Collector {
    serve_at(port, None)
}

fn serve_at(port: u16, tls: Option<Arc<rustls::ServerConfig>>) -> Collector {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = Script::default();
    let s = script.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let s = s.clone();
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                Some(cfg) => {
                    let Ok(sc) = rustls::ServerConnection::new(cfg) else { return };
                    let mut stream = rustls::StreamOwned::new(sc, conn);
                    // A failed handshake (e.g. no client certificate) ends here.
                    if stream.conn.complete_io(&mut stream.sock).is_err() {
                        return;
                    }
                    handle(stream, &s);
                }
                None => handle(conn, &s),
            });
        }
    });
    Collector { port, script }
}

fn handle<S: Read + Write>(stream: S, script: &Script) {
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let gz = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-encoding") && v == "gzip");
        if gz {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
            body = out;
        }
        script.seen.lock().unwrap().push(Seen { method, path, headers, body, at: Instant::now() });
        let reply = script.next();
        let (code, extra, rbody) = match reply {
            Reply::Status { code, headers, body } => (code, headers, body),
            Reply::Slow(d) => {
                std::thread::sleep(d);
                (200, Vec::new(), Vec::new())
            }
            Reply::Hangup => return,
        };
        let mut resp = format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\nContent-Type: application/x-protobuf\r\n", rbody.len());
        for (k, v) in extra {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        let w = r.get_mut();
        if w.write_all(resp.as_bytes()).and_then(|_| w.write_all(&rbody)).and_then(|_| w.flush()).is_err() {
            return;
        }
    }
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

/// Config for a test: short timeouts and backoffs so tests stay fast.
pub fn config(traces: Option<String>) -> OtlpConfig {
    let mut c = OtlpConfig::default();
    c.traces_endpoint = traces;
    c.timeout = Duration::from_secs(2);
    c.retry.initial_backoff = Duration::from_millis(5);
    c.retry.max_backoff = Duration::from_millis(20);
    c.breaker.failure_threshold = 1000;
    c.breaker.cooldown = Duration::from_millis(100);
    c.breaker.max_cooldown = Duration::from_millis(400);
    c.close_timeout = Duration::from_secs(5);
    c
}

/// Polls `cond` every 5 ms for up to `within`.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

