//! What every admin API handler shares: bearer-token authentication and
//! role checks (DESIGN §4, RFC 6750), the strict JSON body extractor, path
//! ids and query strings parsed into precise 400s.

use super::{BodyError, SharedState, form, has_media_type, read_body};
use crate::domain::role::{APPLICATION_ADMINISTRATOR, SYSTEM_ADMINISTRATOR};
use crate::error::ApiError;
use crate::token::AccessTokenClaims;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// What an admin request needs to be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read applications, rules, roles, scopes.
    Read,
    /// Create/change applications and access rules.
    ManageApps,
    /// Create/delete scopes.
    ManageScopes,
}

/// An authenticated admin caller: a valid, unrevoked token from this server.
pub struct Admin {
    pub claims: AccessTokenClaims,
}

impl Admin {
    pub fn client_id(&self) -> &str {
        &self.claims.client_id
    }

    /// Roles count only on the tenant root: they then cover every scope.
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        let allowed: &[&str] = match need {
            Need::Read => &[SYSTEM_ADMINISTRATOR, APPLICATION_ADMINISTRATOR, "viewer"],
            Need::ManageApps => &[SYSTEM_ADMINISTRATOR, APPLICATION_ADMINISTRATOR],
            Need::ManageScopes => &[SYSTEM_ADMINISTRATOR],
        };
        if self.claims.has_tenant_role(allowed) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token's access rules do not grant any of [{}] on the tenant scope",
                allowed.join(", ")
            )))
        }
    }
}

impl FromRequestParts<SharedState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        Admin::from_headers(&parts.headers, state).await
    }
}

impl Admin {
    /// Authenticates `Authorization: Bearer <token>` (RFC 6750 §2.1).
    pub async fn from_headers(headers: &axum::http::HeaderMap, state: &SharedState) -> Result<Self, ApiError> {
        let unauthorized = |message: String, token_sent: bool| ApiError::Unauthorized { message, token_sent };
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let value = values.next().ok_or_else(|| {
            unauthorized(
                "missing bearer token: send Authorization: Bearer <access token from POST /oauth/token>".into(),
                false,
            )
        })?;
        if values.next().is_some() {
            return Err(unauthorized("send a single Authorization header".into(), true));
        }
        let value = value
            .to_str()
            .map_err(|_| unauthorized("Authorization header is not ASCII".into(), true))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(unauthorized(
                    "the admin API takes Authorization: Bearer <access token>; get one from POST /oauth/token".into(),
                    false,
                ));
            }
        };
        let now = crate::domain::now_ms() / 1000;
        let claims = state
            .issuer
            .verify_own(token, now)
            .map_err(|e| unauthorized(format!("invalid bearer token: {e}"), true))?;
        if state.is_revoked(&claims).await {
            return Err(unauthorized("invalid bearer token: it has been revoked".into(), true));
        }
        Ok(Admin { claims })
    }
}

/// A JSON request body: `application/json`, within the size limit, and
/// deserialised strictly (the types deny unknown fields).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<SharedState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, ApiError> {
        if !has_media_type(req.headers(), "application/json") {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            ));
        }
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body, state.config.server.max_body_bytes)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge(n) => ApiError::PayloadTooLarge(n),
                BodyError::Read(m) => ApiError::bad_request(format!("could not read the request body: {m}")),
            })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// The `{id}` path segment, checked to be an id this server hands out.
pub struct IdPath(pub String);

impl FromRequestParts<SharedState> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let axum::extract::Path(id) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid path: {e}")))?;
        if !crate::domain::is_id(&id) {
            return Err(ApiError::bad_request(format!(
                "{id:?} is not an id; ids are UUIDs like 3f2c9a4e-8d1b-4c6f-9e2a-1b7d5c0f4a68"
            )));
        }
        Ok(IdPath(id))
    }
}

/// The query string as decoded `(name, value)` pairs, in order.
pub struct QueryPairs(pub Vec<(String, String)>);

impl FromRequestParts<SharedState> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &SharedState) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or_default();
        let mut pairs = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                form::decode_component(s.as_bytes())
                    .map(|c| c.into_owned())
                    .map_err(|_| ApiError::bad_request("query string is not valid UTF-8 after percent-decoding"))
            };
            pairs.push((decode(k)?, decode(v)?));
        }
        Ok(QueryPairs(pairs))
    }
}

/// A method-router fallback answering 405 in the admin API's JSON shape
/// with the `Allow` header (axum's own 405 has an empty body).
pub fn allow(methods: &'static str) -> impl FnOnce() -> std::future::Ready<ApiError> + Clone + Send + Sync + 'static {
    move || std::future::ready(ApiError::MethodNotAllowed(methods.to_owned()))
}

/// 201/200 with a JSON body, after counting the acknowledged write.
pub fn written<T: serde::Serialize>(state: &SharedState, status: axum::http::StatusCode, body: &T) -> Response {
    state
        .metrics
        .admin_writes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (status, axum::Json(body)).into_response()
}
