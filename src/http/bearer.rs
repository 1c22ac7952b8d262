//! Bearer-token authentication of admin callers (RFC 6750 §2.1), with live
//! authority and abuse limits (DESIGN §4 "Admin authority", RFC 6585): used
//! by the admin API and by bearer introspection on the public plane.

use crate::directory::{Actor, AuditActor, Denied, RequestInfo, Target};
use crate::error::ApiError;
use crate::http::SharedState;
use crate::http::origin::{request_info, source_ip};
use crate::oauth::mtls::{ClientCertificate, PresentedCertificate};
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
        let cert = parts.extensions.get::<PresentedCertificate>().cloned();
        Admin::authenticate(&parts.headers, request, source, &endpoint, cert.as_deref(), state).await
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
        cert: Option<&ClientCertificate>,
        state: &SharedState,
    ) -> Result<Self, ApiError> {
        let now_ms = crate::domain::now_ms();
        // A valid token is never refused for what other requests from its
        // address did: the token is checked first (no I/O), and only a
        // request without valid credentials spends — or is refused by — the
        // address's failure budget. Its own per-caller limit follows below.
        let checked = Self::check_token(headers, state, now_ms / 1000);
        let checked = match checked {
            Ok((claims, entry, token, dpop_scheme)) => match Self::check_certificate(&claims, cert) {
                Ok(()) => Self::check_binding(headers, state, endpoint, &claims, &token, dpop_scheme, now_ms / 1000)
                    .await
                    .map(|()| (claims, entry)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let (claims, entry) = match checked {
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

    /// A certificate-bound token (RFC 8705 §3) comes over a connection with
    /// the client certificate it is bound to; whoever copied it lacks the
    /// certificate's key.
    fn check_certificate(claims: &AccessTokenClaims, cert: Option<&ClientCertificate>) -> Result<(), ApiError> {
        match claims.certificate_thumbprint() {
            Some(bound) if cert.map(|c| c.thumbprint.as_str()) != Some(bound) => Err(ApiError::Unauthorized {
                message: "invalid bearer token: it is certificate-bound (cnf.x5t#S256); present its client certificate on the TLS connection (RFC 8705 section 3)".into(),
                token_sent: true,
            }),
            _ => Ok(()),
        }
    }

    /// A DPoP-bound token (RFC 9449 §7.1) comes as `Authorization: DPoP`
    /// with a proof of its key for this request; an unbound one as Bearer.
    /// A bound token presented as Bearer is refused: whoever copied it
    /// lacks the key.
    async fn check_binding(
        headers: &axum::http::HeaderMap,
        state: &SharedState,
        endpoint: &str,
        claims: &AccessTokenClaims,
        token: &str,
        dpop_scheme: bool,
        now: i64,
    ) -> Result<(), ApiError> {
        let unauthorized = |message: String| ApiError::Unauthorized {
            message,
            token_sent: true,
        };
        let jkt = match (claims.dpop_jkt(), dpop_scheme) {
            (None, false) => return Ok(()),
            (Some(_), false) => {
                return Err(unauthorized(
                    "invalid bearer token: it is DPoP-bound (cnf.jkt); send it as Authorization: DPoP <token> with a DPoP proof of its key (RFC 9449 section 7.1)".into(),
                ));
            }
            (None, true) => {
                return Err(unauthorized(
                    "invalid token: it is not DPoP-bound; send it as Authorization: Bearer <token>".into(),
                ));
            }
            (Some(jkt), true) => jkt,
        };
        let proof = crate::oauth::dpop::proof_header(headers)
            .map_err(|e| unauthorized(format!("invalid DPoP proof: {e}")))?
            .ok_or_else(|| unauthorized("invalid DPoP proof: a DPoP-bound token needs a DPoP header".into()))?;
        let (method, path) = endpoint.split_once(' ').unwrap_or(("GET", endpoint));
        // The URL the client addressed, from configuration only: the
        // issuer's, or the admin plane's own (`server.admin_url`). Never the
        // request's `Host`: a client names whatever host it likes there, so
        // a proof made for another server could be replayed here.
        let mut urls = vec![format!("{}{path}", state.issuer_url)];
        if let Some(admin) = &state.config.server.admin_url {
            urls.push(format!("{admin}{path}"));
        }
        let mut last = None;
        for url in &urls {
            let expected = appauth_verify::dpop::Expected {
                method,
                url,
                access_token: Some(token),
                now,
            };
            match state.grants.dpop.check(proof, &expected, &claims.client_id).await {
                Ok(p) if p.jkt == jkt => return Ok(()),
                Ok(_) => {
                    return Err(unauthorized(
                        "invalid DPoP proof: it is signed by another key than the one the token is bound to".into(),
                    ));
                }
                Err(crate::error::OAuthError::InvalidDpopProof(m)) if m.contains("htu") => last = Some(m),
                Err(e) => return Err(unauthorized(format!("invalid DPoP proof: {}", e))),
            }
        }
        Err(unauthorized(format!(
            "invalid DPoP proof: {}",
            last.unwrap_or_else(|| "its htu does not name this request".into())
        )))
    }

    /// The token checks that need no I/O: header shape, signature, expiry,
    /// the admin audience, and an application that still exists and is
    /// enabled. Returns the token and whether it came as `DPoP`.
    fn check_token(
        headers: &axum::http::HeaderMap,
        state: &SharedState,
        now: i64,
    ) -> Result<
        (
            AccessTokenClaims,
            std::sync::Arc<crate::directory::HotEntry>,
            String,
            bool,
        ),
        ApiError,
    > {
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
        let (token, dpop_scheme) = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => (token.trim(), false),
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("dpop") => (token.trim(), true),
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
        Ok((claims, entry, token.to_owned(), dpop_scheme))
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
