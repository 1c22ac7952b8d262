//! Mutual-TLS client authentication and certificate-bound tokens (RFC
//! 8705): the certificate a client presented — on a TLS connection this
//! server terminated, or in a header set by a trusted proxy — and whether
//! it authenticates an application (§2.1 `tls_client_auth` against the
//! client CAs in `server.client_ca_file`, §2.2
//! `self_signed_tls_client_auth` against registered thumbprints).

use crate::directory::HotEntry;
use crate::domain::tls_client::{CertificateNames, attribute_name};
use rustls::pki_types::{CertificateDer, UnixTime};
use std::sync::Arc;

/// The certificate chain a client presented on its connection, with the
/// leaf's `x5t#S256` (computed once per connection).
#[derive(Debug)]
pub struct ClientCertificate {
    pub chain: Vec<CertificateDer<'static>>,
    pub thumbprint: String,
}

/// Shared by every request of a connection.
pub type PresentedCertificate = Arc<ClientCertificate>;

impl ClientCertificate {
    /// `None` for an empty chain.
    pub fn new(chain: Vec<CertificateDer<'static>>) -> Option<Self> {
        let thumbprint = appauth_verify::mtls::thumbprint(chain.first()?);
        Some(Self { chain, thumbprint })
    }

    /// From the header a trusted TLS-terminating proxy sets: RFC 9440's
    /// `Client-Cert` (`:base64 DER:`), HAProxy's `%[ssl_c_der,base64]`
    /// (plain base64 DER), or nginx's `$ssl_client_escaped_cert` (PEM,
    /// URL-encoded). Anything else is no certificate.
    pub fn from_header(value: &[u8]) -> Option<Self> {
        use base64::Engine;
        use rustls::pki_types::pem::PemObject;
        let text = std::str::from_utf8(value).ok()?.trim();
        let der = if text.contains("BEGIN") || text.contains("%2D") || text.contains("%2d") {
            let pem = percent_encoding::percent_decode_str(text).decode_utf8().ok()?;
            CertificateDer::from_pem_slice(pem.as_bytes()).ok()?
        } else {
            let b64 = text.strip_prefix(':').and_then(|t| t.strip_suffix(':')).unwrap_or(text);
            CertificateDer::from(base64::engine::general_purpose::STANDARD.decode(b64).ok()?)
        };
        x509_parser::parse_x509_certificate(&der).ok()?;
        Self::new(vec![der])
    }

    /// The names of the leaf certificate (RFC 4514 order: last RDN first).
    fn names(&self) -> Option<CertificateNames> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(self.chain.first()?).ok()?;
        let mut names = CertificateNames::default();
        for rdn in cert.subject().iter().collect::<Vec<_>>().into_iter().rev() {
            let mut attributes = Vec::new();
            for a in rdn.iter() {
                // ASCII spaces only: other white space makes another name.
                let value = a.as_str().ok()?.trim_matches(' ').to_owned();
                attributes.push((attribute_name(&a.attr_type().to_id_string()), value));
            }
            names.subject.push(attributes);
        }
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => names.dns.push((*d).to_owned()),
                    GeneralName::URI(u) => names.uris.push((*u).to_owned()),
                    GeneralName::RFC822Name(e) => names.emails.push((*e).to_owned()),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => names.ips.push(std::net::IpAddr::from(<[u8; 4]>::try_from(*ip).ok()?)),
                        16 => names.ips.push(std::net::IpAddr::from(<[u8; 16]>::try_from(*ip).ok()?)),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        Some(names)
    }
}

/// What this server does with client certificates (`server.client_ca_file`,
/// `server.self_signed_client_certs`, `server.client_cert_header`).
pub struct Mtls {
    /// Chains `tls_client_auth` certificates to the client CAs.
    ca: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    self_signed: bool,
}

impl Mtls {
    pub fn new(config: &crate::config::ServerConfig) -> Result<Self, String> {
        let ca = match &config.client_ca_file {
            Some(path) => Some(ca_verifier(path)?),
            None => None,
        };
        Ok(Self {
            ca,
            self_signed: config.self_signed_client_certs,
        })
    }

    /// Whether `tls_client_auth` is served.
    pub fn pki(&self) -> bool {
        self.ca.is_some()
    }

    /// Whether `self_signed_tls_client_auth` is served.
    pub fn self_signed(&self) -> bool {
        self.self_signed
    }

    /// The RFC 8705 §2 check: the certificate is what `entry` registered.
    /// The reason, when not, is for the client (it names no secret).
    pub fn authenticate(&self, entry: &HotEntry, cert: &ClientCertificate) -> Result<(), String> {
        let Some(auth) = &entry.tls_client_auth else {
            return Err("this client has no client certificate registered".into());
        };
        if !auth.needs_ca() {
            if !self.self_signed {
                return Err(
                    "self_signed_tls_client_auth is not enabled on this server (server.self_signed_client_certs)"
                        .into(),
                );
            }
            return if auth.registers(&cert.thumbprint) {
                Ok(())
            } else {
                Err("the client certificate is not one registered for this client".into())
            };
        }
        let Some(ca) = &self.ca else {
            return Err("tls_client_auth is not enabled on this server (server.client_ca_file)".into());
        };
        let (leaf, intermediates) = cert.chain.split_first().ok_or("no client certificate")?;
        ca.verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(|e| format!("the client certificate does not chain to a trusted client CA: {e}"))?;
        let names = cert.names().ok_or("the client certificate's names cannot be read")?;
        if auth.names_match(&names) {
            Ok(())
        } else {
            Err(format!(
                "the client certificate does not carry the registered {}",
                auth.describe()
            ))
        }
    }
}

/// A webpki verifier for `server.client_ca_file` (which also checks the
/// leaf's validity period and, where it has one, its client-auth EKU).
pub fn ca_verifier(path: &std::path::Path) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("server.client_ca_file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "server.client_ca_file {}: no certificate found",
            path.display()
        ));
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("server.client_ca_file {}: {e}", path.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("server.client_ca_file {}: {e}", path.display()))
}
