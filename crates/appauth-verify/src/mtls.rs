//! Certificate-bound access tokens (RFC 8705 §3): a token whose `cnf`
//! names `x5t#S256`, the SHA-256 thumbprint of a client certificate, is
//! accepted only on a connection where the client presented that
//! certificate. The resource server terminates TLS (or trusts a proxy that
//! did), so it hands the certificate over as a [`ClientCertificate`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The DER of the certificate the client presented on this connection,
/// put in the request's extensions by whatever terminated TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate(pub Vec<u8>);

/// RFC 8705 §3.1: base64url (no padding) of the SHA-256 of the DER.
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der))
}

/// Why a certificate-bound token is refused (RFC 8705 §3: `invalid_token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertificateMismatch(pub String);

/// The binding check: an unbound token passes; a bound one needs the very
/// certificate it names.
pub fn check(bound_to: Option<&str>, presented: Option<&[u8]>) -> Result<(), CertificateMismatch> {
    let Some(expected) = bound_to else {
        return Ok(());
    };
    let Some(der) = presented else {
        return Err(CertificateMismatch(
            "the token is bound to a client certificate (cnf.x5t#S256); present it on the TLS connection (RFC 8705 section 3)".into(),
        ));
    };
    // Both are public values: no constant-time comparison is needed.
    if thumbprint(der) != expected {
        return Err(CertificateMismatch(
            "the client certificate on this connection is not the one the token is bound to (RFC 8705 section 3)"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_token_needs_the_certificate_it_names() {
        let cert = b"not really DER, but any bytes have a thumbprint";
        let bound = thumbprint(cert);
        assert_eq!(bound.len(), 43);
        assert!(check(None, None).is_ok());
        assert!(check(None, Some(cert)).is_ok());
        assert!(check(Some(&bound), Some(cert)).is_ok());
        assert!(check(Some(&bound), None).is_err());
        assert!(check(Some(&bound), Some(b"another certificate")).is_err());
    }

    #[test]
    fn thumbprint_is_rfc_8705_base64url_sha256() {
        // SHA-256("abc"), base64url without padding.
        assert_eq!(thumbprint(b"abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }
}
