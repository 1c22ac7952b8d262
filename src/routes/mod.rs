//! HTTP routes. Each module exposes `router()`; handlers parse, call the
//! domain, and map the result — nothing else.

pub mod access_rules;
pub mod admin;
pub mod apps;
pub mod audit;
pub mod client_auth;
pub mod console;
pub mod form;
pub mod health;
pub mod introspect;
pub mod metadata;
pub mod openapi;
mod openapi_constraints;
mod openapi_links;
pub mod revoke;
pub mod scopes;
pub mod token;

use crate::config::Config;
use crate::directory::Directory;
use crate::oauth::grant::Grants;
use crate::telemetry::Metrics;
use crate::token::TokenIssuer;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use std::sync::Arc;

/// Everything a handler may need; cloned per request as one `Arc`.
pub struct AppState {
    pub config: Config,
    pub issuer_url: String,
    pub directory: Arc<Directory>,
    pub issuer: Arc<TokenIssuer>,
    pub grants: Grants,
    pub metrics: Arc<Metrics>,
    /// RFC 8414 document, rendered once.
    pub metadata_json: String,
    pub revocations: crate::revocation::Revocations,
    pub request_ids: crate::telemetry::RequestIds,
    pub access_log: crate::telemetry::AccessLog,
    /// The key-encryption key, when keys are shared through the store.
    pub vault: Option<Arc<crate::token::vault::Kek>>,
    /// Admin API requests per caller (DESIGN §4 "Admin authority").
    pub admin_limiter: crate::oauth::throttle::RequestLimiter,
    /// Admin requests without valid credentials, per address: a budget of
    /// its own, so that a misconfigured probe or scanner hitting the admin
    /// API cannot lock the token endpoint out for everyone at its address.
    pub admin_failures: crate::oauth::throttle::FailureThrottle,
    /// Runs list, search and CSV work at low priority (see `list_pool`).
    pub list_pool: crate::list_pool::ListPool,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// True when a token this server issued (already verified) is revoked.
    pub async fn is_revoked(&self, claims: &crate::token::AccessTokenClaims) -> bool {
        self.revocations
            .is_revoked(&claims.jti, &claims.client_id, claims.iat)
            .await
    }
}

pub enum BodyError {
    TooLarge(usize),
    Read(String),
    /// Not all of it arrived within `server.body_read_timeout_seconds`.
    TimedOut(u64),
}

/// Reads a request body of at most `limit` bytes; a declared or actual
/// larger body is refused without reading it all.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let collected = tokio::time::timeout(timeout, http_body_util::Limited::new(body, limit).collect())
        .await
        .map_err(|_| BodyError::TimedOut(timeout.as_secs()))?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge(limit)),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}

/// Whether the request's media type (parameters such as `charset` aside)
/// is `expected`, compared case-insensitively without allocating.
pub fn has_media_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(expected)
        })
}

/// The body of an OAuth endpoint request, within `server.max_body_bytes`.
pub async fn oauth_body(
    state: &SharedState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, crate::error::OAuthError> {
    use crate::error::OAuthError;
    let server = &state.config.server;
    read_body(headers, body, server.max_body_bytes, server.body_read_timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(n) => OAuthError::PayloadTooLarge(n),
            BodyError::Read(m) => OAuthError::InvalidRequest(format!("could not read the request body: {m}")),
            BodyError::TimedOut(s) => OAuthError::RequestTimeout(s),
        })
}

/// The checks every form-encoded OAuth endpoint shares (RFC 6749 §3.2,
/// §4.4.2): form Content-Type, size, UTF-8, no repeated parameter. Returns
/// the named parameters, in order.
pub async fn oauth_form<const N: usize>(
    state: &SharedState,
    headers: &HeaderMap,
    body: Body,
    names: [&str; N],
) -> Result<[Option<String>; N], crate::error::OAuthError> {
    use crate::error::OAuthError;
    if !has_media_type(headers, "application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded (RFC 6749 section 4.4.2)".into(),
        ));
    }
    let bytes = oauth_body(state, headers, body).await?;
    form::parse(&bytes, names).map_err(|e| OAuthError::InvalidRequest(e.describe()))
}
