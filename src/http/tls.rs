//! The listeners' TLS (rustls): certificate and key, ALPN, and — when
//! mutual TLS is on (RFC 8705) — asking clients for a certificate without
//! requiring one. The handshake proves the client holds the certificate's
//! key; which certificates authenticate which application is decided per
//! request (`oauth::mtls`), so self-signed ones get through the handshake.

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor for a certificate chain and key; `keys` names the two
/// settings they came from, for the error message.
pub fn tls_acceptor(
    cert: &Path,
    key: &Path,
    keys: (&str, &str),
    server: &crate::config::ServerConfig,
) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("{} {}: {e}", keys.0, cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} {}: no certificate found", keys.0, cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{} {}: {e}", keys.1, key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if server.mtls_enabled() {
        let hints = match (&server.client_ca_file, server.self_signed_client_certs) {
            // Self-signed certificates have no issuer to hint at.
            (Some(path), false) => crate::oauth::mtls::ca_verifier(path)?.root_hint_subjects().to_vec(),
            _ => Vec::new(),
        };
        builder.with_client_cert_verifier(Arc::new(AnyClientCertificate { provider, hints }))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("{}/{} do not match or are unusable: {e}", keys.0, keys.1))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Asks for a client certificate, accepts a connection without one, and
/// checks only that the client signed the handshake with the key of the
/// certificate it sent (TLS 1.2 and 1.3 CertificateVerify).
#[derive(Debug)]
struct AnyClientCertificate {
    provider: Arc<CryptoProvider>,
    hints: Vec<DistinguishedName>,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
