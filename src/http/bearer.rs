//! Bearer-token authentication of admin callers (RFC 6750 §2.1), with live
//! authority and abuse limits (DESIGN §4 "Admin authority", RFC 6585): used
//! by the admin API and by bearer introspection on the public plane.

use crate::directory::{Actor, AuditActor, Denied, RequestInfo, Target};
use crate::error::ApiError;
use crate::http::SharedState;
use crate::http::origin::{request_info, source_ip};
use crate::oauth::throttle::Verdict;
use crate::token::AccessTokenClaims;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use std::net::IpAddr;

/// An authenticated admin caller: a valid, unrevoked token from this server
/// for the admin audience, whose application still exists and is enabled.
/// What it may do is decided against its *current* rules (DESIGN §4
/// "Admin authority"): see [`Admin::require`] and the directory's writes.
pub struct Admin {
    pub claims: AccessTokenClaims,
    pub actor: Actor,
    /// `METHOD /path`, for the audit record of a refusal.
    endpoint: String,
}

impl Admin {
    pub fn client_id(&self) -> &str {
        &self.claims.client_id
    }

    /// The gate of a read endpoint: `permission` on the tenant scope, held
    /// by the caller's current rules. A refusal is audited.
    pub async fn require(&self, state: &SharedState, permission: &str) -> Result<(), ApiError> {
        let denied = state.directory.read().authorize(&self.actor, permission).err();
        match denied {
            None => Ok(()),
            Some(Denied(message)) => {
                state
                    .directory
                    .audit_refusal(
                        self.actor.audit_actor(),
                        &self.actor.request,
                        "request",
                        &Target::endpoint(&self.endpoint),
                        403,
                        message.clone(),
                    )
                    .await;
                Err(ApiError::Forbidden(message))
            }
        }
    }
}

impl FromRequestParts<SharedState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let endpoint = format!("{} {}", parts.method, parts.uri.path());
        let request = request_info(&parts.extensions);
        let source = source_ip(&parts.extensions);
        Admin::authenticate(&parts.headers, request, source, &endpoint, state).await
    }
}

impl Admin {
    /// Authenticates `Authorization: Bearer <token>` (RFC 6750 §2.1) for the
    /// admin API. Failures are audited and count against the source
    /// address's failure budget, like failed client authentications.
    pub async fn authenticate(
        headers: &axum::http::HeaderMap,
        request: RequestInfo,
        source: IpAddr,
        endpoint: &str,
        state: &SharedState,
    ) -> Result<Self, ApiError> {
        let now_ms = crate::domain::now_ms();
        // A valid token is never refused for what other requests from its
        // address did: the token is checked first (no I/O), and only a
        // request without valid credentials spends — or is refused by — the
        // address's failure budget. Its own per-caller limit follows below.
        let (claims, entry) = match Self::check_token(headers, state, now_ms / 1000) {
            Ok(ok) => ok,
            Err(ApiError::Unauthorized { message, token_sent }) => {
                return Err(
                    failed_authentication(state, &request, source, endpoint, now_ms, message, token_sent).await,
                );
            }
            Err(e) => return Err(e),
        };
        if state.is_revoked(&claims).await {
            // Counted like any failed authentication: a revoked token is
            // otherwise a free way to make the server write audit records.
            let message = "invalid bearer token: it has been revoked".to_owned();
            return Err(failed_authentication(state, &request, source, endpoint, now_ms, message, true).await);
        }
        let name = state
            .directory
            .read()
            .apps
            .get(&entry.app_id)
            .map_or_else(String::new, |r| r.app.name.as_str().to_owned());
        let actor = Actor {
            client_id: claims.client_id.clone(),
            app_id: Some(entry.app_id.clone()),
            name,
            token_rules: claims
                .access_rules
                .iter()
                .map(|r| (r.role_id.clone(), r.scope_id.clone()))
                .collect(),
            token_iat: claims.iat,
            request,
        };
        if let Verdict::Block {
            retry_after,
            first,
            limit,
        } = state.admin_limiter.hit(&actor.client_id, now_ms)
        {
            if first {
                state
                    .directory
                    .audit_refusal(
                        actor.audit_actor(),
                        &actor.request,
                        "request",
                        &Target::endpoint(endpoint),
                        429,
                        format!("admin request limit reached; refused for {retry_after} s"),
                    )
                    .await;
            }
            return Err(ApiError::TooManyRequests { retry_after, limit });
        }
        Ok(Admin {
            claims,
            actor,
            endpoint: endpoint.to_owned(),
        })
    }

    /// The token checks that need no I/O: header shape, signature, expiry,
    /// the admin audience, and an application that still exists and is enabled.
    fn check_token(
        headers: &axum::http::HeaderMap,
        state: &SharedState,
        now: i64,
    ) -> Result<(AccessTokenClaims, std::sync::Arc<crate::directory::HotEntry>), ApiError> {
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
        let claims = state
            .issuer
            .verify_own(token, now)
            .map_err(|e| unauthorized(format!("invalid bearer token: {e}"), true))?;
        let admin_audience = state.config.issuer.admin_audience();
        if !claims.aud.contains(admin_audience) {
            return Err(unauthorized(
                format!(
                    "invalid bearer token: its audience is not {admin_audience:?}, the only audience the admin API accepts; request a token with audience={admin_audience}"
                ),
                true,
            ));
        }
        let entry = state
            .directory
            .entry(&claims.client_id)
            .filter(|e| e.enabled)
            .ok_or_else(|| {
                unauthorized(
                    "invalid bearer token: the application it was issued to no longer exists or is disabled".into(),
                    true,
                )
            })?;
        Ok((claims, entry))
    }
}

/// A request without valid credentials: refused with 429 once its address
/// is past `limits.address_failures_per_minute` (audited once a window),
/// else counted against that budget, audited and refused with 401.
async fn failed_authentication(
    state: &SharedState,
    request: &RequestInfo,
    source: IpAddr,
    endpoint: &str,
    now_ms: i64,
    message: String,
    token_sent: bool,
) -> ApiError {
    if let Verdict::Block { retry_after, first, .. } = state.admin_failures.check_address(source, now_ms) {
        let limit = crate::oauth::throttle::Limit::AdminAddressFailures;
        if first {
            audit_unauthenticated(state, request, endpoint, 429, limit.describe()).await;
        }
        return ApiError::TooManyRequests { retry_after, limit };
    }
    state.admin_failures.failed_address(source, now_ms);
    audit_unauthenticated(state, request, endpoint, 401, &message).await;
    ApiError::Unauthorized { message, token_sent }
}

async fn audit_unauthenticated(state: &SharedState, request: &RequestInfo, endpoint: &str, status: u16, message: &str) {
    state
        .directory
        .audit_refusal(
            AuditActor {
                client_id: "-".into(),
                name: "-".into(),
            },
            request,
            "request",
            &Target::endpoint(endpoint),
            status,
            message.to_owned(),
        )
        .await;
}
