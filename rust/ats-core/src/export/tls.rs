//! rustls client configuration from the OTLP TLS settings (ring provider).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::config::{ConfigError, Protocol, TlsFiles};

/// Builds the client config: trust `certificate` if given, else the system
/// store; present the client certificate for mTLS; offer the ALPN protocol
/// the wire protocol needs (`h2` for gRPC).
pub(crate) fn client_config(files: &TlsFiles, protocol: Protocol) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut roots = RootCertStore::empty();
    match &files.certificate {
        Some(path) => {
            let certs = read_certs(path, "certificate")?;
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| ConfigError::invalid("certificate", format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            // Unreadable entries in the system store are skipped: one bad
            // system certificate must not disable export.
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::invalid("certificate", e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&files.client_certificate, &files.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client_certificate")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| ConfigError::invalid("client_key", format!("{}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConfigError::invalid("client_key", e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = match protocol {
        Protocol::Grpc => vec![b"h2".to_vec()],
        _ => vec![b"http/1.1".to_vec()],
    };
    Ok(Arc::new(config))
}

fn read_certs(path: &Path, key: &'static str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ConfigError::invalid(key, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(key, format!("{}: no PEM certificate found", path.display())));
    }
    Ok(certs)
}
