//! Typed configuration of the OTLP export sink, and its validation.
//!
//! Keys are named as in the ATS configuration (`traces_endpoint`,
//! `timeout_ms`, ...), which mirror `OTEL_EXPORTER_OTLP_*`; every validation
//! error names its key so a user can find the line to fix.

use std::path::PathBuf;
use std::time::Duration;

use super::payload::Signal;

/// Wire protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    HttpProtobuf,
    HttpJson,
    Grpc,
}

impl Protocol {
    pub const ALLOWED: &'static str = "\"http/protobuf\", \"http/json\" or \"grpc\"";

    pub fn parse(value: &str) -> Result<Protocol, ConfigError> {
        match value {
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Ok(Protocol::HttpJson),
            "grpc" => Ok(Protocol::Grpc),
            other => Err(ConfigError::invalid("protocol", format!("must be {}, got {other:?}", Self::ALLOWED))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
            Protocol::Grpc => "grpc",
        }
    }

    /// True when bodies are protobuf (HTTP/protobuf and gRPC).
    pub fn is_protobuf(self) -> bool {
        !matches!(self, Protocol::HttpJson)
    }
}

/// Request body compression (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Gzip,
    None,
}

impl Compression {
    pub fn parse(value: &str) -> Result<Compression, ConfigError> {
        match value {
            "gzip" => Ok(Compression::Gzip),
            "none" => Ok(Compression::None),
            other => Err(ConfigError::invalid("compression", format!("must be \"gzip\" or \"none\", got {other:?}"))),
        }
    }
}

/// Aggregation temporality of exported sums and histograms; read by the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Temporality {
    #[default]
    Cumulative,
    Delta,
}

impl Temporality {
    pub fn parse(value: &str) -> Result<Temporality, ConfigError> {
        match value {
            "cumulative" => Ok(Temporality::Cumulative),
            "delta" => Ok(Temporality::Delta),
            other => Err(ConfigError::invalid("temporality", format!("must be \"cumulative\" or \"delta\", got {other:?}"))),
        }
    }
}

/// PEM files for TLS (`_CERTIFICATE`, `_CLIENT_KEY`, `_CLIENT_CERTIFICATE`).
/// Without `certificate` the system's trust store verifies https endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    /// Trusted CA certificate(s) replacing the system roots.
    pub certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub client_certificate: Option<PathBuf>,
}

/// Retry of one payload after a retryable failure: exponential backoff with
/// full jitter, unless the server says `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Give up on a payload (dropped, reason `retry_exhausted`) once it has
    /// been failing this long. `None`: keep it until delivered; the spool cap
    /// is then what bounds an outage.
    pub max_elapsed: Option<Duration>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_elapsed: None,
        }
    }
}

/// Circuit breaker: after `failure_threshold` consecutive failed attempts the
/// collector is left alone for `cooldown`, then probed with one request;
/// each failed probe doubles the cool-down up to `max_cooldown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub cooldown: Duration,
    pub max_cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_secs(1),
            // OTLP exporters' usual longest retry interval.
            max_cooldown: Duration::from_secs(30),
        }
    }
}

/// Resource-level settings the encoder reads; the transport ignores them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodingOptions {
    pub service_name: String,
    pub resource_attributes: Vec<(String, String)>,
    pub temporality: Temporality,
}

/// Everything the OTLP sink needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Full URLs, used as-is for HTTP. For gRPC only scheme, host and port
    /// are used; the path is the service's standard method path.
    /// `None`: the signal is not exported.
    pub traces_endpoint: Option<String>,
    pub metrics_endpoint: Option<String>,
    pub logs_endpoint: Option<String>,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub compression: Compression,
    /// Per request: connect, send and read the response.
    pub timeout: Duration,
    pub tls: TlsFiles,
    /// Where payloads wait while the collector is slow or down. `None`: the
    /// spool is kept in memory (same cap) and lost at exit.
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: u64,
    /// In-memory queue between the flusher and the exporter thread; past it
    /// payloads go to the spool.
    pub queue_max_bytes: u64,
    pub retry: RetryConfig,
    pub breaker: BreakerConfig,
    /// Longest `close` waits for delivery when the flusher gives no earlier
    /// deadline; what is left stays in the spool for the next start.
    pub close_timeout: Duration,
    pub encoding: EncodingOptions,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            protocol: Protocol::default(),
            headers: Vec::new(),
            compression: Compression::default(),
            timeout: Duration::from_secs(10),
            tls: TlsFiles::default(),
            spool_dir: None,
            spool_max_bytes: 64 << 20,
            queue_max_bytes: 8 << 20,
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            close_timeout: Duration::from_secs(2),
            encoding: EncodingOptions::default(),
        }
    }
}

/// A configuration value is unusable; `key` names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("otlp.{key}: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError { key, message: message.into() }
    }
}

impl OtlpConfig {
    pub fn endpoint(&self, signal: Signal) -> Option<&str> {
        match signal {
            Signal::Traces => self.traces_endpoint.as_deref(),
            Signal::Metrics => self.metrics_endpoint.as_deref(),
            Signal::Logs => self.logs_endpoint.as_deref(),
        }
    }

    /// Checks every value that can be checked without I/O (files are read
    /// when the sink opens).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("traces_endpoint", &self.traces_endpoint),
            ("metrics_endpoint", &self.metrics_endpoint),
            ("logs_endpoint", &self.logs_endpoint),
        ] {
            if let Some(url) = url {
                Endpoint::parse(url, self.protocol).map_err(|m| ConfigError::invalid(key, m))?;
            }
        }
        for (name, value) in &self.headers {
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ConfigError::invalid("headers", format!("{name:?} is not a valid HTTP header name")));
            }
            if hyper::header::HeaderValue::from_str(value).is_err() {
                return Err(ConfigError::invalid("headers", format!("value of {name:?} is not a valid HTTP header value")));
            }
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid("timeout_ms", "must be > 0"));
        }
        if self.spool_max_bytes == 0 {
            return Err(ConfigError::invalid("spool_max_bytes", "must be > 0"));
        }
        if self.tls.client_key.is_some() != self.tls.client_certificate.is_some() {
            return Err(ConfigError::invalid(
                "client_key",
                "client_key and client_certificate must be given together (mTLS)",
            ));
        }
        if self.breaker.failure_threshold == 0 {
            return Err(ConfigError::invalid("breaker_failure_threshold", "must be >= 1"));
        }
        Ok(())
    }
}

/// A parsed endpoint: where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query sent in the request line (HTTP) or the gRPC method path.
    pub(crate) path: String,
    /// `host[:port]` as written, for `Host` / `:authority`.
    pub(crate) authority: String,
}

impl Endpoint {
    pub(crate) fn parse(url: &str, protocol: Protocol) -> Result<Endpoint, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url:?} must start with http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| format!("{url:?} has no host"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = match protocol {
            // The gRPC path is fixed per signal; filled in by the transport.
            Protocol::Grpc => String::new(),
            _ => uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".to_owned()),
        };
        Ok(Endpoint { https, host, port, path, authority: authority.as_str().to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_key_and_allowed_values() {
        let e = Protocol::parse("http").unwrap_err();
        assert_eq!(e.key, "protocol");
        assert_eq!(e.to_string(), "otlp.protocol: must be \"http/protobuf\", \"http/json\" or \"grpc\", got \"http\"");
        assert_eq!(Compression::parse("zstd").unwrap_err().key, "compression");
        assert_eq!(Temporality::parse("Delta").unwrap_err().key, "temporality");
        assert_eq!(Temporality::parse("delta"), Ok(Temporality::Delta));
    }

    #[test]
    fn validate_rejects_bad_values_by_key() {
        let bad = |f: &dyn Fn(&mut OtlpConfig)| {
            let mut c = OtlpConfig::default();
            f(&mut c);
            c.validate().unwrap_err().key
        };
        assert_eq!(bad(&|c| c.traces_endpoint = Some("ftp://x/v1/traces".into())), "traces_endpoint");
        assert_eq!(bad(&|c| c.logs_endpoint = Some("not a url".into())), "logs_endpoint");
        assert_eq!(bad(&|c| c.headers = vec![("bad header".into(), "v".into())]), "headers");
        assert_eq!(bad(&|c| c.timeout = Duration::ZERO), "timeout_ms");
        assert_eq!(bad(&|c| c.spool_max_bytes = 0), "spool_max_bytes");
        assert_eq!(bad(&|c| c.tls.client_key = Some("k.pem".into())), "client_key");
        let mut ok = OtlpConfig::default();
        ok.traces_endpoint = Some("https://collector:4318/v1/traces?x=1".into());
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn endpoint_keeps_path_for_http_and_defaults_ports() {
        let e = Endpoint::parse("http://127.0.0.1:4318/v1/traces", Protocol::HttpProtobuf).unwrap();
        assert_eq!((e.https, e.host.as_str(), e.port, e.path.as_str()), (false, "127.0.0.1", 4318, "/v1/traces"));
        let e = Endpoint::parse("https://otel.example", Protocol::Grpc).unwrap();
        assert_eq!((e.https, e.port, e.path.as_str(), e.authority.as_str()), (true, 443, "", "otel.example"));
        let e = Endpoint::parse("http://[::1]:4317", Protocol::Grpc).unwrap();
        assert_eq!(e.host, "::1");
    }
}
