//! Client authentication on the OAuth endpoints (RFC 6749 §2.3.1): HTTP
//! Basic with form-urlencoded id and secret, `client_id` and
//! `client_secret` in the body, a signed client assertion
//! (`private_key_jwt`, RFC 7523 §2.2), or `client_id` alone with the TLS
//! client certificate (RFC 8705 §2) — one method, never two.

use crate::error::OAuthError;
use crate::http::form;
use crate::oauth::grant::AuthMethod;
use crate::oauth::mtls::PresentedCertificate;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64 that tolerates missing padding, as many HTTP clients omit it.
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Parameters that carry a client's secret (the JSON token form's name
/// too): never in a URL.
const SECRET_PARAMETERS: [&str; 3] = ["client_secret", "client_assertion", "clientsecret"];

/// RFC 6749 §2.3.1: client credentials "MUST NOT be included in the request
/// URI". They are refused rather than ignored: a URL is written to proxy
/// and server logs and browser history, so the client is leaking its
/// secret and should hear about it. Other query parameters are allowed
/// (RFC 6749 §3.2 lets an endpoint URI carry a query).
pub fn no_credentials_in_url(uri: &axum::http::Uri) -> Result<(), OAuthError> {
    let Some(query) = uri.query() else {
        return Ok(());
    };
    // Generous on purpose: any spelling a framework might read as one of
    // these names (`;` separators, `name[]`, stray `?`, any case) counts.
    for pair in query.split(['&', ';', '?']) {
        let raw = pair.split('=').next().unwrap_or_default();
        let decoded = form::decode_component(raw.as_bytes()).unwrap_or_default();
        let name = decoded.trim().trim_end_matches("[]").trim().to_ascii_lowercase();
        if let Some(p) = SECRET_PARAMETERS.iter().find(|p| **p == name) {
            return Err(OAuthError::InvalidRequest(format!(
                "{p} must not be sent in the URL (RFC 6749 section 2.3.1): URLs end up in logs; send it in the body or the Authorization header, and regenerate it if it was real"
            )));
        }
    }
    Ok(())
}

pub struct Credentials {
    pub id: String,
    pub secret: String,
    pub method: AuthMethod,
}

/// How a client proved who it is.
pub enum ClientCredentials {
    Secret(Credentials),
    /// RFC 7523 §2.2; `client_id` only when the body carried one too.
    Assertion {
        client_id: Option<String>,
        assertion: String,
    },
    /// RFC 8705 §2: `client_id` and the connection's certificate.
    Certificate {
        client_id: String,
        cert: PresentedCertificate,
    },
}

impl ClientCredentials {
    /// The client ID the request claims (for the access log; unverified).
    pub fn claimed_id(&self) -> Option<String> {
        match self {
            Self::Secret(c) => Some(c.id.clone()),
            Self::Assertion { client_id, assertion } => client_id
                .clone()
                .or_else(|| crate::oauth::assertion::claimed_client(assertion)),
            Self::Certificate { client_id, .. } => Some(client_id.clone()),
        }
    }

    /// Whether a late refusal should carry `WWW-Authenticate: Basic`.
    pub fn challenge(&self) -> bool {
        matches!(self, Self::Secret(c) if c.method == AuthMethod::Basic)
    }

    /// Client authentication behind the abuse limits. `endpoint`: the path
    /// of the endpoint asked, whose URL an assertion's `aud` may name (as
    /// may the issuer and the token endpoint's URL).
    pub async fn authenticate(
        &self,
        state: &crate::http::SharedState,
        source: std::net::IpAddr,
        endpoint: &str,
    ) -> Result<crate::directory::Authenticated, OAuthError> {
        match self {
            Self::Secret(c) => state
                .grants
                .authenticate(source, &c.id, &c.secret, c.method, crate::domain::now_ms()),
            Self::Assertion { client_id, assertion } => {
                let token_url = format!("{}{}", state.issuer_url, crate::http::paths::TOKEN_PATH);
                let endpoint_url = format!("{}{endpoint}", state.issuer_url);
                let audiences = [state.issuer_url.as_str(), token_url.as_str(), endpoint_url.as_str()];
                state
                    .grants
                    .authenticate_assertion(source, client_id.as_deref(), assertion, &audiences)
                    .await
            }
            Self::Certificate { client_id, cert } => state.grants.authenticate_certificate(source, client_id, cert),
        }
    }
}

/// The client authentication parameters of an OAuth endpoint's form.
pub struct AuthParams {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub assertion_type: Option<String>,
    pub assertion: Option<String>,
}

impl From<[Option<String>; 4]> for AuthParams {
    /// The form fields `client_id`, `client_secret`, `client_assertion_type`
    /// and `client_assertion`, in that order.
    fn from([client_id, client_secret, assertion_type, assertion]: [Option<String>; 4]) -> Self {
        Self {
            client_id,
            client_secret,
            assertion_type,
            assertion,
        }
    }
}

/// Credentials from `Authorization: Basic` (each half form-urlencoded, RFC
/// 6749 §2.3.1), or `None` when the header is absent.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::InvalidRequest("send a single Authorization header".into()));
    }
    let bad = |m: &str| OAuthError::InvalidRequest(format!("malformed HTTP Basic credentials: {m}"));
    let value = value.to_str().map_err(|_| bad("header is not ASCII"))?;
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        // Named only when it looks like a scheme: a bare secret or token
        // pasted into the header must not be echoed back.
        let looks_like_scheme = scheme.len() <= 20 && scheme.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
        let named = if looks_like_scheme {
            format!(" {scheme:?}")
        } else {
            String::new()
        };
        return Err(OAuthError::invalid_client(
            format!("authentication scheme{named} is not supported; use HTTP Basic or client_secret_post"),
            true,
        ));
    }
    // Decoded on the stack: a client ID and secret fit many times over, and
    // this runs for every Basic-authenticated request.
    let encoded = encoded.trim();
    let mut on_stack = [0u8; 256];
    let on_heap;
    let decoded: &[u8] = match BASIC_B64.decode_slice(encoded, &mut on_stack) {
        Ok(n) => &on_stack[..n],
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            on_heap = BASIC_B64.decode(encoded).map_err(|_| bad("not valid base64"))?;
            &on_heap
        }
        Err(base64::DecodeSliceError::DecodeError(_)) => return Err(bad("not valid base64")),
    };
    let (id, secret) = match decoded.iter().position(|&b| b == b':') {
        Some(i) => (&decoded[..i], &decoded[i + 1..]),
        None => return Err(bad("expected client_id:client_secret")),
    };
    let decode = |part: &[u8]| {
        form::decode_component(part)
            .map(|c| c.into_owned())
            .map_err(|_| bad("client_id and client_secret must be form-urlencoded UTF-8 (RFC 6749 section 2.3.1)"))
    };
    Ok(Some((decode(id)?, decode(secret)?)))
}

/// Which one method the request used, or why it is not exactly one.
/// `cert`: the client certificate on the connection, if any.
pub fn credentials(
    headers: &HeaderMap,
    params: AuthParams,
    cert: Option<&PresentedCertificate>,
) -> Result<ClientCredentials, OAuthError> {
    let AuthParams {
        client_id,
        client_secret,
        assertion_type,
        assertion,
    } = params;
    match (assertion_type, assertion) {
        (None, None) => match (cert, client_id, client_secret) {
            (Some(cert), Some(client_id), None) if !headers.contains_key(header::AUTHORIZATION) => {
                Ok(ClientCredentials::Certificate {
                    client_id,
                    cert: cert.clone(),
                })
            }
            (_, client_id, client_secret) => {
                secret_credentials(headers, client_id, client_secret).map(ClientCredentials::Secret)
            }
        },
        (Some(t), Some(assertion)) => {
            if t != crate::oauth::assertion::ASSERTION_TYPE {
                return Err(OAuthError::InvalidRequest(format!(
                    "client_assertion_type {t:?} is not supported; use {}",
                    crate::oauth::assertion::ASSERTION_TYPE
                )));
            }
            if client_secret.is_some() || headers.contains_key(header::AUTHORIZATION) {
                return Err(OAuthError::InvalidRequest(
                    "a client assertion and a client secret were both sent; use one method (RFC 6749 section 2.3)"
                        .into(),
                ));
            }
            Ok(ClientCredentials::Assertion { client_id, assertion })
        }
        (Some(_), None) => Err(OAuthError::InvalidRequest(
            "client_assertion_type was sent without client_assertion".into(),
        )),
        (None, Some(_)) => Err(OAuthError::InvalidRequest(format!(
            "client_assertion was sent without client_assertion_type={}",
            crate::oauth::assertion::ASSERTION_TYPE
        ))),
    }
}

fn secret_credentials(
    headers: &HeaderMap,
    body_id: Option<String>,
    body_secret: Option<String>,
) -> Result<Credentials, OAuthError> {
    match basic_credentials(headers)? {
        Some((id, secret)) => {
            if body_secret.is_some() || body_id.as_ref().is_some_and(|b| *b != id) {
                return Err(OAuthError::InvalidRequest(
                    "client credentials sent both in the Authorization header and in the body; use one method (RFC 6749 section 2.3)".into(),
                ));
            }
            Ok(Credentials {
                id,
                secret,
                method: AuthMethod::Basic,
            })
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Credentials {
                id,
                secret,
                method: AuthMethod::Body,
            }),
            (Some(_), None) => Err(OAuthError::invalid_client(
                "client_secret is missing; send it with client_id or use HTTP Basic",
                true,
            )),
            _ => Err(OAuthError::invalid_client(
                "client authentication is required: HTTP Basic, client_id and client_secret in the body, a client assertion (private_key_jwt), or client_id with a TLS client certificate",
                true,
            )),
        },
    }
}

/// The client certificate of the request's connection (RFC 8705), as the
/// server put it in the extensions; never fails.
pub struct TlsClient(pub Option<PresentedCertificate>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for TlsClient {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<PresentedCertificate>().cloned()))
    }
}
