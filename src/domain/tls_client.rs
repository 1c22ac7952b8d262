//! Mutual-TLS client authentication registered on an application (RFC
//! 8705 §2): which certificate stands in for its secret.
//!
//! - `tls_client_auth` (§2.1): a certificate that chains to one of the
//!   server's client CAs (`server.client_ca_file`) and carries exactly the
//!   registered subject DN (§2.1.2, RFC 4514 string) or one registered
//!   subject alternative name (DNS name, URI — a SPIFFE ID —, IP address or
//!   e-mail address);
//! - `self_signed_tls_client_auth` (§2.2): one of up to
//!   [`MAX_SELF_SIGNED`] registered certificates, named by their SHA-256
//!   thumbprints (`x5t#S256`), whatever signed them.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Certificates one application may register for self-signed mTLS: two
/// cover a rotation, ten leave room for several hosts.
pub const MAX_SELF_SIGNED: usize = 10;

/// What a client certificate must be for an application. JSON: one member
/// naming the method's one value, e.g. `{"sanUri": "spiffe://acme/ci"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum TlsClientAuth {
    SubjectDn(String),
    SanDns(String),
    SanUri(String),
    SanIp(IpAddr),
    SanEmail(String),
    /// The thumbprints of the registered self-signed certificates.
    SelfSigned(Vec<String>),
}

/// The names a presented certificate carries (read from its DER by the
/// caller): the subject as RFC 4514 relative distinguished names, last
/// first, and its subject alternative names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateNames {
    pub subject: Vec<Vec<(String, String)>>,
    pub dns: Vec<String>,
    pub uris: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub emails: Vec<String>,
}

impl TlsClientAuth {
    /// Parses what the admin API received: one value, well-formed, each
    /// self-signed certificate as PEM (or already as its thumbprint).
    pub fn parse(value: &serde_json::Value) -> Result<Self, String> {
        let usage = "tlsClientAuth is an object with one member: subjectDn, sanDns, sanUri, sanIp or sanEmail (a string), or selfSigned (a list of PEM certificates)";
        let Some(object) = value.as_object().filter(|o| o.len() == 1) else {
            return Err(usage.into());
        };
        let Some((method, v)) = object.iter().next() else {
            return Err(usage.into());
        };
        let text = |max: usize| {
            let s = v
                .as_str()
                .ok_or_else(|| format!("tlsClientAuth.{method} must be a string"))?;
            let s = s.trim();
            if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
                return Err(format!(
                    "tlsClientAuth.{method} must be 1 to {max} characters without control characters"
                ));
            }
            Ok(s.to_owned())
        };
        match method.as_str() {
            "subjectDn" => {
                let dn = text(1024)?;
                parse_dn(&dn).map_err(|e| format!("tlsClientAuth.subjectDn is not an RFC 4514 name: {e}"))?;
                Ok(Self::SubjectDn(dn))
            }
            "sanDns" => {
                let name = text(253)?.to_ascii_lowercase();
                let ok = name.split('.').all(|l| {
                    !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
                if !ok {
                    return Err(format!("tlsClientAuth.sanDns {name:?} is not a DNS name"));
                }
                Ok(Self::SanDns(name))
            }
            "sanUri" => {
                let uri = text(2048)?;
                url::Url::parse(&uri)
                    .map_err(|e| format!("tlsClientAuth.sanUri {uri:?} is not an absolute URI: {e}"))?;
                Ok(Self::SanUri(uri))
            }
            "sanIp" => {
                let ip = text(45)?;
                ip.parse()
                    .map(Self::SanIp)
                    .map_err(|_| format!("tlsClientAuth.sanIp {ip:?} is not an IP address"))
            }
            "sanEmail" => {
                let email = text(254)?;
                if email.split('@').count() != 2 || email.starts_with('@') || email.ends_with('@') {
                    return Err(format!("tlsClientAuth.sanEmail {email:?} is not an e-mail address"));
                }
                Ok(Self::SanEmail(email))
            }
            "selfSigned" => {
                let list = v
                    .as_array()
                    .filter(|l| (1..=MAX_SELF_SIGNED).contains(&l.len()))
                    .ok_or_else(|| {
                        format!("tlsClientAuth.selfSigned is a list of 1 to {MAX_SELF_SIGNED} PEM certificates")
                    })?;
                let mut thumbprints = Vec::with_capacity(list.len());
                for (i, c) in list.iter().enumerate() {
                    let c = c
                        .as_str()
                        .ok_or_else(|| format!("tlsClientAuth.selfSigned[{i}] must be a string"))?;
                    let t = certificate_thumbprint(c).map_err(|e| format!("tlsClientAuth.selfSigned[{i}]: {e}"))?;
                    if !thumbprints.contains(&t) {
                        thumbprints.push(t);
                    }
                }
                Ok(Self::SelfSigned(thumbprints))
            }
            other => Err(format!("tlsClientAuth.{other} is not a method; {usage}")),
        }
    }

    /// Whether the method needs a certificate authority (`tls_client_auth`).
    pub fn needs_ca(&self) -> bool {
        !matches!(self, Self::SelfSigned(_))
    }

    /// The RFC 8705 `token_endpoint_auth_method` this is.
    pub fn method(&self) -> &'static str {
        if self.needs_ca() {
            "tls_client_auth"
        } else {
            "self_signed_tls_client_auth"
        }
    }

    /// Whether a certificate that chains to a client CA (for the
    /// `tls_client_auth` methods) names what is registered.
    pub fn names_match(&self, names: &CertificateNames) -> bool {
        match self {
            Self::SubjectDn(dn) => parse_dn(dn).is_ok_and(|want| same_dn(&want, &names.subject)),
            Self::SanDns(d) => names.dns.iter().any(|n| n.eq_ignore_ascii_case(d)),
            Self::SanUri(u) => names.uris.iter().any(|n| n == u),
            Self::SanIp(ip) => names.ips.contains(ip),
            Self::SanEmail(e) => names.emails.iter().any(|n| n == e),
            Self::SelfSigned(_) => false,
        }
    }

    /// Whether the certificate with this thumbprint is a registered
    /// self-signed one.
    pub fn registers(&self, thumbprint: &str) -> bool {
        matches!(self, Self::SelfSigned(list) if list.iter().any(|t| t == thumbprint))
    }

    /// For audit summaries and the console.
    pub fn describe(&self) -> String {
        match self {
            Self::SubjectDn(v) => format!("tls_client_auth subject {v:?}"),
            Self::SanDns(v) => format!("tls_client_auth DNS name {v:?}"),
            Self::SanUri(v) => format!("tls_client_auth URI {v:?}"),
            Self::SanIp(v) => format!("tls_client_auth IP address {v}"),
            Self::SanEmail(v) => format!("tls_client_auth e-mail {v:?}"),
            Self::SelfSigned(l) => format!("self_signed_tls_client_auth, {} certificate(s)", l.len()),
        }
    }
}

/// A PEM certificate's `x5t#S256`, or a thumbprint given as such.
fn certificate_thumbprint(text: &str) -> Result<String, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let text = text.trim();
    let is_thumbprint = text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if is_thumbprint {
        return Ok(text.to_owned());
    }
    let der = CertificateDer::from_pem_slice(text.as_bytes()).map_err(|_| {
        "expected a PEM certificate (-----BEGIN CERTIFICATE-----) or its x5t#S256 thumbprint".to_owned()
    })?;
    x509_parser::parse_x509_certificate(&der).map_err(|_| "the PEM block is not an X.509 certificate".to_owned())?;
    Ok(appauth_verify::mtls::thumbprint(&der))
}

/// The short names RFC 4514 §3 gives, by OID, plus `DC` and `UID`; other
/// attributes are written as their dotted OID on both sides.
pub fn attribute_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "SERIALNUMBER",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// An RFC 4514 distinguished name: RDNs separated by `,`, attributes of a
/// multi-valued RDN by `+`, `\` escaping a special character or two hex
/// digits. Types are upper-cased (or mapped from their OID), values kept.
pub fn parse_dn(s: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let mut rdns = vec![Vec::new()];
    let mut chars = s.chars().peekable();
    loop {
        let mut name = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            name.push(c);
        }
        let name = name.trim();
        let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid_name {
            return Err(format!("{name:?} is not an attribute type"));
        }
        let name = if name.starts_with(|c: char| c.is_ascii_digit()) {
            attribute_name(name)
        } else {
            name.to_ascii_uppercase()
        };
        // Bytes: `\C4\8D` is one UTF-8 character in two escaped bytes.
        let mut value: Vec<u8> = Vec::new();
        let mut end = None;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let Some(next) = chars.next() else {
                        return Err("a trailing backslash".into());
                    };
                    if next.is_ascii_hexdigit() {
                        let low = chars
                            .next()
                            .filter(char::is_ascii_hexdigit)
                            .ok_or("a \\ with one hex digit")?;
                        let byte = u8::from_str_radix(&format!("{next}{low}"), 16).map_err(|e| e.to_string())?;
                        value.push(byte);
                    } else {
                        value.extend_from_slice(next.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                }
                ',' | '+' => {
                    end = Some(c);
                    break;
                }
                c => value.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        let value = String::from_utf8(value).map_err(|_| format!("{name}'s value is not UTF-8"))?;
        // Only the spaces RFC 4514 lets surround a value: a name padded with
        // other (Unicode) white space is another name.
        let value = value.trim_matches(' ').to_owned();
        if value.is_empty() {
            return Err(format!("{name} has no value"));
        }
        rdns.last_mut().ok_or("empty name")?.push((name, value));
        match end {
            None => break,
            Some(',') => rdns.push(Vec::new()),
            Some(_) => {}
        }
    }
    for rdn in &mut rdns {
        rdn.sort();
    }
    Ok(rdns)
}

/// `distinguishedNameMatch` (RFC 4517 §4.2.15) as far as names in client
/// certificates need it: the same RDNs in the same order, attribute values
/// compared without regard to ASCII case (`caseIgnoreMatch`).
fn same_dn(want: &[Vec<(String, String)>], have: &[Vec<(String, String)>]) -> bool {
    want.len() == have.len()
        && want.iter().zip(have).all(|(w, h)| {
            let mut h = h.clone();
            h.sort();
            w.len() == h.len()
                && w.iter()
                    .zip(&h)
                    .all(|((wt, wv), (ht, hv))| wt == ht && wv.eq_ignore_ascii_case(hv))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rdn(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(t, v)| ((*t).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn distinguished_names_follow_rfc_4514() {
        let dn = parse_dn("CN=ci runner, O=Acme\\, Inc.,2.5.4.6=DE").unwrap();
        assert_eq!(
            dn,
            vec![
                rdn(&[("CN", "ci runner")]),
                rdn(&[("O", "Acme, Inc.")]),
                rdn(&[("C", "DE")])
            ]
        );
        let multi = parse_dn("cn=a+ou=b,o=c").unwrap();
        assert_eq!(multi[0], rdn(&[("CN", "a"), ("OU", "b")]));
        assert_eq!(parse_dn("CN=\\41\\42").unwrap()[0], rdn(&[("CN", "AB")]));
        assert_eq!(parse_dn("CN=Lu\\C4\\8Di\\C4\\87").unwrap()[0], rdn(&[("CN", "Lučić")]));
        assert_eq!(parse_dn("CN=a\u{A0}").unwrap()[0], rdn(&[("CN", "a\u{A0}")]));
        for bad in ["", "CN", "CN=", "=x", "CN=a,", "CN=a\\", "C N=a", "CN=\\4"] {
            assert!(parse_dn(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_subject_matches_only_the_same_names_in_the_same_order() {
        let auth = TlsClientAuth::parse(&json!({"subjectDn": "CN=ci,O=Acme"})).unwrap();
        let names = |subject| CertificateNames {
            subject,
            ..Default::default()
        };
        assert!(auth.names_match(&names(vec![rdn(&[("CN", "CI")]), rdn(&[("O", "acme")])])));
        assert!(!auth.names_match(&names(vec![rdn(&[("O", "Acme")]), rdn(&[("CN", "ci")])])));
        assert!(!auth.names_match(&names(vec![rdn(&[("CN", "ci")])])));
        assert!(!auth.names_match(&names(vec![
            rdn(&[("CN", "ci")]),
            rdn(&[("O", "Acme")]),
            rdn(&[("C", "DE")])
        ])));
        assert!(!auth.names_match(&names(vec![rdn(&[("CN", "ci2")]), rdn(&[("O", "Acme")])])));
    }

    #[test]
    fn alternative_names_match_exactly_their_kind() {
        let names = CertificateNames {
            dns: vec!["ci.acme.example".into()],
            uris: vec!["spiffe://acme/ns/ci/sa/runner".into()],
            ips: vec!["10.0.0.7".parse().unwrap()],
            emails: vec!["ci@acme.example".into()],
            ..Default::default()
        };
        let m = |v| TlsClientAuth::parse(&v).unwrap().names_match(&names);
        assert!(m(json!({"sanDns": "CI.acme.example"})));
        assert!(m(json!({"sanUri": "spiffe://acme/ns/ci/sa/runner"})));
        assert!(!m(json!({"sanUri": "spiffe://acme/ns/ci/sa/runner2"})));
        assert!(m(json!({"sanIp": "10.0.0.7"})));
        assert!(!m(json!({"sanIp": "10.0.0.8"})));
        assert!(m(json!({"sanEmail": "ci@acme.example"})));
        // A DNS name is not a URI, and so on: each kind only matches its own.
        assert!(!m(json!({"sanDns": "spiffe"})));
    }

    #[test]
    fn registrations_are_refused_unless_exactly_one_well_formed_method() {
        for bad in [
            json!({}),
            json!({"sanDns": "a", "sanUri": "b"}),
            json!({"sanDns": "not a name"}),
            json!({"sanUri": "relative/path"}),
            json!({"sanIp": "10.0.0"}),
            json!({"sanEmail": "nobody"}),
            json!({"subjectDn": "CN"}),
            json!({"selfSigned": []}),
            json!({"selfSigned": ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"]}),
            json!({"selfSigned": vec!["x".repeat(43); MAX_SELF_SIGNED + 1]}),
            json!({"password": "x"}),
            json!("sanDns"),
        ] {
            assert!(TlsClientAuth::parse(&bad).is_err(), "{bad}");
        }
        let t = "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0";
        let auth = TlsClientAuth::parse(&json!({"selfSigned": [t, t]})).unwrap();
        assert_eq!(auth, TlsClientAuth::SelfSigned(vec![t.to_owned()]));
        assert!(auth.registers(t) && !auth.registers("x"));
        assert_eq!(serde_json::to_value(&auth).unwrap(), json!({"selfSigned": [t]}));
    }
}
