//! HTTPS with a custom CA and mTLS, certificates made in the test (rcgen).

use std::sync::Arc;
use std::time::Duration;

use ats_core::export::OtlpSink;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::*;

struct Pki {
    dir: tempfile::TempDir,
    ca_der: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
}

fn ca() -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (p.self_signed(&key).unwrap(), key)
}

fn leaf(ca: &(rcgen::Certificate, KeyPair), names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.extended_key_usages = vec![usage];
    let cert = p.signed_by(&key, &ca.0, &ca.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A CA, a server certificate for 127.0.0.1, a good client certificate and
/// one from another CA, written as PEM files.
fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let root = ca();
    let other = ca();
    let (server_pem, server_key) = leaf(&root, &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (client_pem, client_key) = leaf(&root, &["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let (rogue_pem, rogue_key) = leaf(&other, &["rogue"], ExtendedKeyUsagePurpose::ClientAuth);
    for (name, data) in [
        ("ca.pem", root.0.pem()),
        ("client.pem", client_pem),
        ("client.key", client_key),
        ("rogue.pem", rogue_pem),
        ("rogue.key", rogue_key),
    ] {
        std::fs::write(dir.path().join(name), data).unwrap();
    }
    Pki {
        ca_der: root.0.der().clone(),
        server: (
            CertificateDer::from_pem_slice(server_pem.as_bytes()).unwrap(),
            PrivateKeyDer::from_pem_slice(server_key.as_bytes()).unwrap(),
        ),
        dir,
    }
}

/// An HTTPS collector that requires a client certificate signed by the CA.
fn mtls_collector(pki: &Pki) -> Collector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
        .unwrap();
    serve(Some(Arc::new(cfg)))
}

fn https_config(pki: &Pki, col: &Collector, client: Option<&str>) -> ats_core::export::OtlpConfig {
    let mut cfg = config(Some(format!("https://127.0.0.1:{}/v1/traces", col.port)));
    cfg.tls.certificate = Some(pki.dir.path().join("ca.pem"));
    if let Some(name) = client {
        cfg.tls.client_certificate = Some(pki.dir.path().join(format!("{name}.pem")));
        cfg.tls.client_key = Some(pki.dir.path().join(format!("{name}.key")));
    }
    cfg
}

#[test]
fn mtls_with_the_right_client_certificate_delivers() {
    let pki = pki();
    let col = mtls_collector(&pki);
    let mut sink = OtlpSink::open(&https_config(&pki, &col, Some("client")), Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("secure")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().exported_items[0] == 1));
    assert_eq!(col.script.bodies(), ["secure"]);
    assert_eq!(col.script.seen()[0].path, "/v1/traces");
}

#[test]
fn missing_or_foreign_client_certificate_fails_and_is_counted() {
    let pki = pki();
    let col = mtls_collector(&pki);
    for client in [None, Some("rogue")] {
        let mut sink = OtlpSink::open(&https_config(&pki, &col, client), Box::new(NamesEncoder)).unwrap();
        sink.write_batch(&[span("nope")]).unwrap();
        assert!(wait_until(Duration::from_secs(5), || sink.stats().failures >= 2), "{client:?}");
        assert_eq!(sink.stats().exported_items[0], 0);
    }
    assert!(col.script.seen().is_empty());
}

#[test]
fn server_not_signed_by_the_configured_ca_is_refused() {
    let pki = pki();
    let col = mtls_collector(&pki);
    let other = pki_other_ca(&pki);
    let mut cfg = https_config(&pki, &col, Some("client"));
    cfg.tls.certificate = Some(other);
    let mut sink = OtlpSink::open(&cfg, Box::new(NamesEncoder)).unwrap();
    sink.write_batch(&[span("x")]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || sink.stats().failures >= 1));
    let err = sink.handle().last_error().unwrap();
    assert!(err.contains("TLS handshake"), "{err}");
    assert!(col.script.seen().is_empty());
}

fn pki_other_ca(pki: &Pki) -> std::path::PathBuf {
    let path = pki.dir.path().join("other-ca.pem");
    std::fs::write(&path, ca().0.pem()).unwrap();
    path
}

#[test]
fn unreadable_tls_files_are_config_errors_naming_the_key() {
    let pki = pki();
    let col = mtls_collector(&pki);
    let mut cfg = https_config(&pki, &col, Some("client"));
    cfg.tls.certificate = Some(pki.dir.path().join("missing.pem"));
    let err = OtlpSink::open(&cfg, Box::new(NamesEncoder)).err().unwrap().to_string();
    assert!(err.starts_with("otlp.certificate: "), "{err}");
    let mut cfg = https_config(&pki, &col, Some("client"));
    cfg.tls.client_key = Some(pki.dir.path().join("ca.pem"));
    let err = OtlpSink::open(&cfg, Box::new(NamesEncoder)).err().unwrap().to_string();
    assert!(err.starts_with("otlp.client_key: "), "{err}");
}
