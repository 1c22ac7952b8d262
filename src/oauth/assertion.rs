//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, RFC 7521
//! §4.2, the profile of OIDC Core §9): the client signs a short-lived JWT
//! with a key it registered, and sends it as `client_assertion` with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
//!
//! What is checked, in order: size; compact JWS shape; header `alg` one of
//! ES256, EdDSA, RS256, PS256 (never `none` or HMAC) and equal to the
//! registered key's own algorithm (RFC 8725 §3.1); `iss` = `sub` = the client
//! ID (and = `client_id` when that is sent too); the client exists, is
//! enabled and registered keys; the signature; `aud` names this issuer or
//! the endpoint's URL; `exp` present and at most
//! `oauth.max_assertion_lifetime_seconds` ahead (3600 by default: what
//! authlib and most libraries sign); `nbf` and `iat` not in the future;
//! `jti` present and used once (see `replay`).
//! Every failure is `invalid_client`; the description says which check
//! failed, except that everything about the client and its keys (exists,
//! enabled, kid, algorithm, signature) reads as one refusal.

use crate::directory::{Directory, HotEntry};
use crate::error::OAuthError;
use appauth_verify::jws::{Alg, MAX_TOKEN_BYTES};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use std::sync::Arc;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signing algorithms client assertions may use (RFC 8414 metadata
/// `token_endpoint_auth_signing_alg_values_supported`).
pub const ALGS: [Alg; 4] = [Alg::ES256, Alg::EdDSA, Alg::RS256, Alg::PS256];

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Aud>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// A checked assertion: the client it authenticates and its single-use id.
pub struct Asserted {
    pub entry: Arc<HotEntry>,
    pub jti: String,
    /// `exp` plus leeway: how long the `jti` must be remembered.
    pub exp: i64,
    /// `iat`, or the earliest it could have been issued (see `replay`).
    pub issued: i64,
}

fn fail(reason: impl std::fmt::Display) -> OAuthError {
    OAuthError::invalid_client(format!("client assertion refused: {reason}"), false)
}

/// The client ID an assertion claims to be from, read before any check so
/// abuse limits can apply per client (nothing is trusted from it yet).
pub fn claimed_client(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.iss
}

/// Checks everything but single use (the caller asks the ledger).
/// `audiences`: the issuer and the endpoint's URL(s) an `aud` may name;
/// `max_lifetime`: the longest `exp − now` accepted.
pub fn check(
    directory: &Directory,
    assertion: &str,
    client_id: Option<&str>,
    audiences: &[&str],
    max_lifetime: i64,
    now: i64,
) -> Result<Asserted, OAuthError> {
    if assertion.len() > MAX_TOKEN_BYTES {
        return Err(fail(format!("larger than {MAX_TOKEN_BYTES} bytes")));
    }
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(fail("not a compact JWS (three base64url parts)"));
    };
    let b64 = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| fail(format!("{what} is not base64url")))
    };
    let header: Header =
        serde_json::from_slice(&b64(h, "header")?).map_err(|e| fail(format!("header is not a JOSE header: {e}")))?;
    if header.crit.is_some() {
        return Err(fail("header names critical extensions this server does not understand"));
    }
    let alg = Alg::parse(&header.alg).ok_or_else(|| {
        fail(format!(
            "alg {:?} is not accepted; use ES256, EdDSA, RS256 or PS256",
            header.alg
        ))
    })?;
    let claims: Claims =
        serde_json::from_slice(&b64(p, "payload")?).map_err(|e| fail(format!("claims are not valid: {e}")))?;
    let iss = claims
        .iss
        .as_deref()
        .ok_or_else(|| fail("iss is required (the client ID)"))?;
    if claims.sub.as_deref() != Some(iss) {
        return Err(fail("sub must equal iss, the client ID (RFC 7523 section 3)"));
    }
    if client_id.is_some_and(|c| c != iss) {
        return Err(fail(
            "client_id does not match the assertion's iss (RFC 7521 section 4.2)",
        ));
    }
    // Everything about the client and its keys answers alike: unknown,
    // disabled, no keys, another kid, another algorithm, a bad signature.
    // Otherwise an unsigned probe would learn which clients exist and what
    // keys they hold.
    let no_key = || fail("it is not signed by a key registered for this client");
    let entry = directory.entry(iss).filter(|e| e.enabled).ok_or_else(no_key)?;
    let keys = entry.client_keys.clone().ok_or_else(no_key)?;
    let candidates: Vec<_> = keys
        .iter()
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .collect();
    // Pinned: only a key registered for the header's algorithm may verify.
    let sig = b64(s, "signature")?;
    let signed = &assertion.as_bytes()[..h.len() + 1 + p.len()];
    if !candidates
        .iter()
        .any(|k| k.key.alg == alg && k.key.verify(signed, &sig))
    {
        return Err(no_key());
    }
    let aud_ok = match &claims.aud {
        Some(Aud::One(a)) => audiences.contains(&a.as_str()),
        Some(Aud::Many(v)) => v.iter().any(|a| audiences.contains(&a.as_str())),
        None => false,
    };
    if !aud_ok {
        return Err(fail(format!("aud must name this server: {}", audiences.join(" or "))));
    }
    let leeway = super::replay::LEEWAY_SECONDS;
    let exp = claims.exp.ok_or_else(|| fail("exp is required"))?;
    if exp.saturating_add(leeway) <= now {
        return Err(fail("it has expired"));
    }
    if exp > now.saturating_add(max_lifetime + leeway) {
        return Err(fail(format!(
            "exp is more than {max_lifetime} seconds ahead (oauth.max_assertion_lifetime_seconds)"
        )));
    }
    if claims.nbf.is_some_and(|nbf| nbf.saturating_sub(leeway) > now) {
        return Err(fail("it is not valid yet (nbf)"));
    }
    if claims.iat.is_some_and(|iat| iat.saturating_sub(leeway) > now) {
        return Err(fail("iat is in the future"));
    }
    let jti = claims
        .jti
        .ok_or_else(|| fail("jti is required (RFC 7523 section 3: single use)"))?;
    if jti.is_empty() || jti.len() > 256 {
        return Err(fail("jti must be 1 to 256 characters"));
    }
    Ok(Asserted {
        entry,
        jti,
        exp: exp + leeway,
        // The earliest it could have been accepted: `exp` may be up to the
        // lifetime plus the leeway ahead.
        issued: claims.iat.unwrap_or(exp - max_lifetime - leeway),
    })
}
