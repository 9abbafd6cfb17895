//! One request at a time to the collector, on the exporter thread: HTTP/1.1
//! POST for `http/protobuf` and `http/json`, HTTP/2 gRPC (length-prefixed
//! message, `grpc-status` trailer) for `grpc`. hyper's connection API on a
//! current-thread tokio runtime that only runs inside [`Transport::send`].
//!
//! One connection per (scheme, host, port) is kept and reused; any error or
//! timeout discards it, so the next attempt starts from a fresh connect.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::config::{Compression, ConfigError, Endpoint, OtlpConfig, Protocol};
use super::payload::Signal;
use super::response::{grpc_retry_delay, partial_success_json, partial_success_protobuf, PartialSuccess};
use super::retry::parse_retry_after;
use super::tls::client_config;

/// Responses are read up to this size (OTLP's limit for responses).
const MAX_RESPONSE_BYTES: usize = 4 << 20;
const USER_AGENT_VALUE: &str = concat!("ats/", env!("CARGO_PKG_VERSION"));

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; `partial` if the collector refused some items.
    Delivered { partial: Option<PartialSuccess> },
    /// Try again later (`after`: the server's advice).
    Retry { after: Option<Duration>, reason: String },
    /// Refused for good: drop and count.
    Rejected { reason: String },
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

type ConnKey = (bool, String, u16);

pub struct Transport {
    rt: tokio::runtime::Runtime,
    protocol: Protocol,
    gzip: bool,
    headers: HeaderMap,
    endpoints: [Option<Endpoint>; 3],
    tls: Option<tokio_rustls::TlsConnector>,
    conns: HashMap<ConnKey, Conn>,
}

impl Transport {
    /// Validates the configuration, reads the TLS files and builds the runtime.
    pub fn new(config: &OtlpConfig) -> Result<Transport, ConfigError> {
        config.validate()?;
        let mut endpoints: [Option<Endpoint>; 3] = Default::default();
        for s in Signal::ALL {
            if let Some(url) = config.endpoint(s) {
                let key = match s {
                    Signal::Traces => "traces_endpoint",
                    Signal::Metrics => "metrics_endpoint",
                    Signal::Logs => "logs_endpoint",
                };
                endpoints[s.index()] = Some(Endpoint::parse(url, config.protocol).map_err(|m| ConfigError::invalid(key, m))?);
            }
        }
        let any_https = endpoints.iter().flatten().any(|e| e.https);
        let tls = if any_https {
            Some(tokio_rustls::TlsConnector::from(client_config(&config.tls, config.protocol)?))
        } else {
            None
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            // validate() checked both; lower-case names suit HTTP/2 as well.
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()), HeaderValue::from_str(v)) {
                headers.append(k, v);
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| ConfigError::invalid("protocol", format!("cannot start the exporter runtime: {e}")))?;
        Ok(Transport {
            rt,
            protocol: config.protocol,
            gzip: config.compression == Compression::Gzip,
            headers,
            endpoints,
            tls,
            conns: HashMap::new(),
        })
    }

    pub fn has_endpoint(&self, signal: Signal) -> bool {
        self.endpoints[signal.index()].is_some()
    }

    /// Sends one payload and waits at most `timeout` for the whole exchange.
    pub fn send(&mut self, signal: Signal, body: &[u8], timeout: Duration) -> Outcome {
        let Some(ep) = self.endpoints[signal.index()].clone() else {
            return Outcome::Rejected { reason: format!("no endpoint for {}", signal.as_str()) };
        };
        let body = if self.gzip { gzip(body) } else { Bytes::copy_from_slice(body) };
        let key = (ep.https, ep.host.clone(), ep.port);
        let mut conn = self.conns.remove(&key);
        let rt = &self.rt;
        let fut = async {
            let mut c = match conn.take() {
                Some(c) if is_ready(&c) => c,
                _ => connect(&ep, self.protocol, self.tls.as_ref()).await?,
            };
            let result = match self.protocol {
                Protocol::Grpc => self.grpc_exchange(&mut c, &ep, signal, body).await,
                _ => self.http_exchange(&mut c, &ep, body).await,
            };
            Ok::<_, String>((c, result))
        };
        match rt.block_on(async { tokio::time::timeout(timeout, fut).await }) {
            Ok(Ok((c, Ok(outcome)))) => {
                self.conns.insert(key, c);
                outcome
            }
            // The connection is in an unknown state after any failure: dropped.
            Ok(Ok((_, Err(reason)))) | Ok(Err(reason)) => Outcome::Retry { after: None, reason },
            Err(_) => Outcome::Retry { after: None, reason: format!("timed out after {timeout:?}") },
        }
    }

    async fn http_exchange(&self, c: &mut Conn, ep: &Endpoint, body: Bytes) -> Result<Outcome, String> {
        let json = self.protocol == Protocol::HttpJson;
        let mut req = Request::post(ep.path.as_str())
            .header(HOST, ep.authority.as_str())
            .header(CONTENT_TYPE, if json { "application/json" } else { "application/x-protobuf" })
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        if self.gzip {
            req.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        extend_headers(req.headers_mut(), &self.headers);
        let resp = match c {
            Conn::H1(s) => s.send_request(req).await,
            Conn::H2(s) => s.send_request(req).await,
        }
        .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let retry_after = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = read_body(resp.into_body()).await?.to_bytes();
        Ok(http_outcome(status, retry_after.as_deref(), &body, json))
    }

    async fn grpc_exchange(&self, c: &mut Conn, ep: &Endpoint, signal: Signal, body: Bytes) -> Result<Outcome, String> {
        let scheme = if ep.https { "https" } else { "http" };
        let mut framed = BytesMut::with_capacity(5 + body.len());
        framed.put_u8(u8::from(self.gzip));
        framed.put_u32(u32::try_from(body.len()).map_err(|_| "message larger than 4 GiB".to_owned())?);
        framed.put_slice(&body);
        let mut req = Request::post(format!("{scheme}://{}{}", ep.authority, signal.grpc_path()))
            .version(hyper::Version::HTTP_2)
            .header(CONTENT_TYPE, "application/grpc")
            .header("te", "trailers")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(framed.freeze()))
            .map_err(|e| e.to_string())?;
        if self.gzip {
            req.headers_mut().insert("grpc-encoding", HeaderValue::from_static("gzip"));
        }
        extend_headers(req.headers_mut(), &self.headers);
        let Conn::H2(s) = c else { return Err("gRPC needs an HTTP/2 connection".into()) };
        let resp = s.send_request(req).await.map_err(|e| format!("request failed: {e}"))?;
        let (parts, body) = resp.into_parts();
        let collected = read_body(body).await?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let body = collected.to_bytes();
        // Trailers-only responses carry grpc-status in the headers.
        let field = |name: &str| trailers.get(name).or_else(|| parts.headers.get(name)).and_then(|v| v.to_str().ok());
        if parts.status != StatusCode::OK {
            return Ok(http_outcome(parts.status, None, &[], false));
        }
        let code = field("grpc-status").and_then(|s| s.parse::<u32>().ok());
        let message = field("grpc-message").unwrap_or_default().to_owned();
        let delay = field("grpc-status-details-bin").and_then(grpc_retry_delay);
        Ok(grpc_outcome(code, &message, delay, &body))
    }
}

fn extend_headers(into: &mut HeaderMap, extra: &HeaderMap) {
    for (k, v) in extra {
        into.append(k.clone(), v.clone());
    }
}

fn is_ready(c: &Conn) -> bool {
    match c {
        Conn::H1(s) => s.is_ready(),
        Conn::H2(s) => s.is_ready(),
    }
}

async fn read_body(body: hyper::body::Incoming) -> Result<http_body_util::Collected<Bytes>, String> {
    Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading response: {e}"))
}

async fn connect(ep: &Endpoint, protocol: Protocol, tls: Option<&tokio_rustls::TlsConnector>) -> Result<Conn, String> {
    let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
        .await
        .map_err(|e| format!("connect {}:{}: {e}", ep.host, ep.port))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if ep.https {
        let tls = tls.ok_or("https endpoint without TLS configuration")?;
        let name = ServerName::try_from(ep.host.clone()).map_err(|e| format!("server name {:?}: {e}", ep.host))?;
        Box::new(tls.connect(name, tcp).await.map_err(|e| format!("TLS handshake with {}: {e}", ep.host))?)
    } else {
        Box::new(tcp)
    };
    let io = TokioIo::new(io);
    if protocol == Protocol::Grpc {
        let (send, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(Conn::H2(send))
    } else {
        let (send, conn) = http1::handshake(io).await.map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(Conn::H1(send))
    }
}

fn gzip(body: &[u8]) -> Bytes {
    // Level 1: the exporter's CPU matters more than a few % of bytes.
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}

/// OTLP/HTTP: 2xx delivered (partial success read from the body); 429,
/// 502, 503, 504 retried (with `Retry-After`); everything else refused.
pub(crate) fn http_outcome(status: StatusCode, retry_after: Option<&str>, body: &[u8], json: bool) -> Outcome {
    if status.is_success() {
        let partial = if json { partial_success_json(body) } else { partial_success_protobuf(body) };
        return Outcome::Delivered { partial: partial.filter(|p| p.rejected > 0 || !p.error_message.is_empty()) };
    }
    let reason = format!("HTTP {}", status.as_u16());
    match status.as_u16() {
        429 | 502 | 503 | 504 => Outcome::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())),
            reason,
        },
        _ => Outcome::Rejected { reason },
    }
}

/// OTLP/gRPC: OK delivered; CANCELLED, DEADLINE_EXCEEDED, ABORTED,
/// OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS retried; RESOURCE_EXHAUSTED retried
/// only when the server sent RetryInfo; everything else refused.
pub(crate) fn grpc_outcome(code: Option<u32>, message: &str, delay: Option<Duration>, body: &[u8]) -> Outcome {
    let Some(code) = code else {
        return Outcome::Rejected { reason: "gRPC response without grpc-status".into() };
    };
    let reason = if message.is_empty() { format!("gRPC status {code}") } else { format!("gRPC status {code}: {message}") };
    match code {
        0 => {
            // One length-prefixed, uncompressed response message.
            let msg = body.get(5..).unwrap_or_default();
            let partial = partial_success_protobuf(msg).filter(|p| p.rejected > 0 || !p.error_message.is_empty());
            Outcome::Delivered { partial }
        }
        1 | 4 | 10 | 11 | 14 | 15 => Outcome::Retry { after: delay, reason },
        8 if delay.is_some() => Outcome::Retry { after: delay, reason },
        _ => Outcome::Rejected { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_mapping() {
        let r = |code: u16| http_outcome(StatusCode::from_u16(code).unwrap(), Some("2"), b"", false);
        for code in [429, 502, 503, 504] {
            assert_eq!(r(code), Outcome::Retry { after: Some(Duration::from_secs(2)), reason: format!("HTTP {code}") });
        }
        for code in [400, 401, 403, 404, 413, 500, 501] {
            assert!(matches!(r(code), Outcome::Rejected { .. }), "{code}");
        }
        assert_eq!(r(200), Outcome::Delivered { partial: None });
        assert_eq!(r(202), Outcome::Delivered { partial: None });
    }

    #[test]
    fn grpc_code_mapping() {
        let d = Some(Duration::from_secs(1));
        for code in [1, 4, 10, 11, 14, 15] {
            assert!(matches!(grpc_outcome(Some(code), "", None, b""), Outcome::Retry { after: None, .. }), "{code}");
        }
        assert!(matches!(grpc_outcome(Some(8), "", None, b""), Outcome::Rejected { .. }));
        assert_eq!(grpc_outcome(Some(8), "slow down", d, b""), Outcome::Retry { after: d, reason: "gRPC status 8: slow down".into() });
        for code in [2, 3, 5, 6, 7, 9, 12, 13, 16] {
            assert!(matches!(grpc_outcome(Some(code), "", None, b""), Outcome::Rejected { .. }), "{code}");
        }
        assert!(matches!(grpc_outcome(None, "", None, b""), Outcome::Rejected { .. }));
        assert_eq!(grpc_outcome(Some(0), "", None, b""), Outcome::Delivered { partial: None });
    }
}
