//! HTTP routes. Each module exposes `router()`; handlers parse, call the
//! domain, and map the result — nothing else.

pub mod access_rules;
pub mod admin;
pub mod apps;
pub mod client_auth;
pub mod console;
pub mod form;
pub mod health;
pub mod introspect;
pub mod metadata;
pub mod openapi;
pub mod revoke;
pub mod scopes;
pub mod token;

use crate::config::Config;
use crate::directory::Directory;
use crate::grant::Grants;
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
}

/// Reads a request body of at most `limit` bytes; a declared or actual
/// larger body is refused without reading it all.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge(limit)),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}

/// The media type of the request without parameters, lowercased.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}
