//! Client authentication on the OAuth endpoints (RFC 6749 §2.3.1): HTTP
//! Basic with form-urlencoded id and secret, or `client_id` and
//! `client_secret` in the body — one method, never both.

use super::form;
use crate::error::OAuthError;
use crate::oauth::grant::AuthMethod;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64 that tolerates missing padding, as many HTTP clients omit it.
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub struct Credentials {
    pub id: String,
    pub secret: String,
    pub method: AuthMethod,
}

impl Credentials {
    /// Client authentication for the endpoints other than the grant itself
    /// (revoke, introspect), behind the same abuse limits.
    pub fn authenticate(
        &self,
        state: &super::SharedState,
        source: std::net::IpAddr,
    ) -> Result<std::sync::Arc<crate::directory::HotEntry>, OAuthError> {
        state
            .grants
            .authenticate(source, &self.id, &self.secret, self.method, crate::domain::now_ms())
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
    let decoded = BASIC_B64.decode(encoded.trim()).map_err(|_| bad("not valid base64"))?;
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

pub fn credentials(
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
                "client authentication is required: HTTP Basic or client_id and client_secret in the body",
                true,
            )),
        },
    }
}
