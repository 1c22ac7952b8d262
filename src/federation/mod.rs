//! Workload identity federation: tokens from trusted external issuers
//! (GitHub Actions and GitLab CI OIDC tokens, Kubernetes projected
//! service-account tokens, SPIFFE JWT-SVIDs) stand in for an application's
//! secret, through a client assertion (RFC 7521 §4.2, RFC 7523 §2.2: the
//! Azure model) or a token exchange (RFC 8693: the Google STS model).
//!
//! This module verifies the external token: its issuer is configured
//! (`federation.issuers`), its signature is by one of that issuer's keys
//! with the key's own algorithm (the header's `jku`, `x5u`, `jwk` and `x5c`
//! are never used), its `aud` is the configured audience, and its times are
//! within bounds. Which application it may act as is the federated
//! credentials' business (`domain::federated`).

mod fetch;
pub mod keys;

use crate::config::FederationIssuer;
use appauth_verify::jws::{Alg, MAX_TOKEN_BYTES};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keys::{IssuerKeys, KeysError};
use serde_json::Value;
use std::collections::HashMap;

/// Clock leeway on external tokens' times.
pub const LEEWAY_SECONDS: i64 = 30;

/// A verified external token.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    pub iss: String,
    pub sub: String,
    /// Every claim, for the credentials' conditions.
    pub claims: Value,
}

/// Why an external token was not accepted.
#[derive(Debug)]
pub enum FederationError {
    /// The token is not acceptable; the text says why (safe to show).
    Refused(String),
    /// The issuer's keys cannot be had: retry later.
    Unavailable(String),
}

/// The trusted issuers, each with its key cache.
pub struct Federation {
    issuers: HashMap<String, IssuerKeys>,
    /// `aud` external tokens must carry when their issuer sets none.
    default_audience: String,
}

impl Federation {
    /// `default_audience`: this server's issuer URL.
    pub fn new(issuers: &[FederationIssuer], default_audience: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for i in issuers {
            map.insert(i.issuer.clone(), IssuerKeys::new(i.clone())?);
        }
        Ok(Self {
            issuers: map,
            default_audience: default_audience.to_owned(),
        })
    }

    /// The configured issuers, sorted.
    pub fn trusted(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.issuers.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    pub fn is_trusted(&self, iss: &str) -> bool {
        self.issuers.contains_key(iss)
    }

    /// The unverified `iss` of a JWT, to decide whose token it claims to be.
    pub fn peek_issuer(token: &str) -> Option<String> {
        let payload = token.split('.').nth(1)?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        claims.get("iss")?.as_str().map(str::to_owned)
    }

    /// Verifies an external token at `now` (Unix seconds).
    pub async fn verify(&self, token: &str, now: i64) -> Result<ExternalIdentity, FederationError> {
        let refuse = |m: String| FederationError::Refused(m);
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refuse(format!("the token is larger than {MAX_TOKEN_BYTES} bytes")));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(refuse("the token is not a compact JWS (three base64url parts)".into()));
        };
        let json = |part: &str, what: &str| -> Result<Value, FederationError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| refuse(format!("the token's {what} is not base64url")))?;
            serde_json::from_slice::<Value>(&bytes)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| refuse(format!("the token's {what} is not a JSON object")))
        };
        let header = json(h, "header")?;
        let claims = json(p, "payload")?;
        if header.get("crit").is_some() {
            return Err(refuse(
                "the token names critical header extensions this server does not understand".into(),
            ));
        }
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = Alg::parse(alg_name).ok_or_else(|| {
            refuse(format!(
                "the token's alg {alg_name:?} is not accepted; external tokens must be signed with RS256, PS256, ES256 or EdDSA"
            ))
        })?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse("the token has no iss".into()))?;
        let issuer = self.issuers.get(iss).ok_or_else(|| {
            refuse(format!(
                "issuer {iss:?} is not trusted (an operator lists trusted issuers in federation.issuers)"
            ))
        })?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= 256 => Some(k.as_str()),
            Some(_) => return Err(refuse("the token's kid must be a string of 1 to 256 characters".into())),
        };
        let keys = issuer.keys_for(kid).await.map_err(|e| match e {
            KeysError::UnknownKey => refuse(format!(
                "the token's kid {:?} is not among {iss}'s keys, even after fetching them again",
                kid.unwrap_or_default()
            )),
            KeysError::Unavailable(m) => FederationError::Unavailable(m),
        })?;
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| refuse("the token's signature is not base64url".into()))?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        // The key decides the algorithm: a key pinned to RS256 never
        // verifies a token that claims PS256 or HS256, whatever the header.
        let verified = keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .any(|k| k.key.alg == alg && k.key.verify(signed, &sig));
        if !verified {
            return Err(refuse(format!(
                "the token is not signed by a key of {iss} for {alg_name}"
            )));
        }
        let config = issuer.config();
        let audience = config.audience.as_deref().unwrap_or(&self.default_audience);
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(v)) => v.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(refuse(format!("the token's aud must name {audience:?}")));
        }
        let time = |name: &str| -> Result<Option<i64>, FederationError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| refuse(format!("the token's {name} must be a NumericDate (whole seconds)"))),
            }
        };
        let exp = time("exp")?.ok_or_else(|| refuse("the token has no exp".into()))?;
        let iat = time("iat")?.ok_or_else(|| refuse("the token has no iat, so its lifetime is unknown".into()))?;
        if exp.saturating_add(LEEWAY_SECONDS) <= now {
            return Err(refuse("the token has expired".into()));
        }
        if iat.saturating_sub(LEEWAY_SECONDS) > now {
            return Err(refuse("the token's iat is in the future".into()));
        }
        if time("nbf")?.is_some_and(|nbf| nbf.saturating_sub(LEEWAY_SECONDS) > now) {
            return Err(refuse("the token is not valid yet (nbf)".into()));
        }
        if exp.saturating_sub(iat) > config.max_token_lifetime_seconds {
            return Err(refuse(format!(
                "the token lives {} s, longer than the {} s accepted from {iss} (max_token_lifetime_seconds)",
                exp.saturating_sub(iat),
                config.max_token_lifetime_seconds
            )));
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 1024)
            .ok_or_else(|| refuse("the token has no sub (1 to 1024 characters)".into()))?;
        Ok(ExternalIdentity {
            iss: iss.to_owned(),
            sub: sub.to_owned(),
            claims: claims.clone(),
        })
    }
}
