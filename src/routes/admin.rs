//! What every admin API handler shares: bearer-token authentication with
//! live authority and abuse limits (DESIGN §4 "Admin authority", RFC 6750,
//! RFC 6585), the strict JSON body extractor, path ids and query strings
//! parsed into precise 400s.

use super::{BodyError, SharedState, form, has_media_type, read_body};
use crate::directory::{Actor, AuditActor, Denied, RequestInfo, Target};
use crate::error::ApiError;
use crate::oauth::throttle::Verdict;
use crate::telemetry::{PeerAddr, RequestId};
use crate::token::AccessTokenClaims;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
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

/// Where a request came from and its id, from the connection and the
/// access-log middleware.
pub fn request_info(extensions: &axum::http::Extensions) -> RequestInfo {
    RequestInfo {
        source_address: extensions
            .get::<PeerAddr>()
            .map_or_else(|| "unknown".into(), |p| p.0.ip().to_string()),
        request_id: extensions
            .get::<RequestId>()
            .map_or_else(|| "-".into(), |r| r.0.to_string()),
    }
}

/// The caller's source address and request id, for handlers that
/// authenticate by hand (the OAuth endpoints). Kept unformatted: the token
/// endpoint needs only the address, and formats nothing.
pub struct Origin {
    pub source: IpAddr,
    peer: Option<PeerAddr>,
    id: Option<RequestId>,
}

impl Origin {
    /// Where a request came from, for a caller outside the router (no peer:
    /// an in-process request, as the extractor sees one).
    pub fn of(peer: Option<PeerAddr>, id: RequestId) -> Self {
        Origin {
            source: peer.map_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), |p| p.0.ip()),
            peer,
            id: Some(id),
        }
    }

    pub fn request_info(&self) -> RequestInfo {
        RequestInfo {
            source_address: self.peer.map_or_else(|| "unknown".into(), |p| p.0.ip().to_string()),
            request_id: self.id.map_or_else(|| "-".into(), |r| r.0.to_string()),
        }
    }
}

impl FromRequestParts<SharedState> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &SharedState) -> Result<Self, Self::Rejection> {
        Ok(Origin {
            source: source_ip(&parts.extensions),
            peer: parts.extensions.get::<PeerAddr>().copied(),
            id: parts.extensions.get::<RequestId>().copied(),
        })
    }
}

/// The source address used for abuse limits (unspecified when unknown, e.g. in-process).
pub fn source_ip(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<PeerAddr>()
        .map_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), |p| p.0.ip())
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

/// A JSON request body: `application/json`, within the size limit, and
/// deserialised strictly (the types deny unknown fields).
pub struct ApiJson<T>(pub T);

/// The request body within the server's size and time limits.
async fn admin_body(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    state: &SharedState,
) -> Result<axum::body::Bytes, ApiError> {
    let server = &state.config.server;
    read_body(headers, body, server.max_body_bytes, server.body_read_timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(n) => ApiError::PayloadTooLarge(n),
            BodyError::Read(m) => ApiError::bad_request(format!("could not read the request body: {m}")),
            BodyError::TimedOut(s) => ApiError::RequestTimeout(s),
        })
}

impl<T: DeserializeOwned> FromRequest<SharedState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, ApiError> {
        if !has_media_type(req.headers(), "application/json") {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            ));
        }
        let (parts, body) = req.into_parts();
        let bytes = admin_body(&parts.headers, body, state).await?;
        parse_object(&bytes).map(ApiJson)
    }
}

/// Parses an admin body, which is always a JSON object: serde would also
/// build a struct from an array of its fields in order (`[null, null]`).
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::bad_request(
            "invalid JSON body: expected an object (`{...}`), got an array",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {}", json_message(&e))))
}

/// A JSON error in the API's words: serde's backticks become quotes, and
/// its "at line 1 column 75" (meaningless for a one-line body) goes.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => &text[..i],
        _ => &text,
    };
    text.replace('`', "\"")
}

/// A JSON body that may be left out: an empty body is `None` whatever the
/// headers say (headers cannot tell: an HTTP/2 body needs no
/// `Content-Length`); a non-empty one must be `application/json` (415
/// otherwise, so a body is never silently ignored) and is parsed exactly
/// as [`ApiJson`] does.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<SharedState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, ApiError> {
        let typed = req.headers().contains_key(header::CONTENT_TYPE);
        if typed && !has_media_type(req.headers(), "application/json") {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            ));
        }
        let (parts, body) = req.into_parts();
        let bytes = admin_body(&parts.headers, body, state).await?;
        // An empty body is no body, with or without a Content-Type (curl
        // -H 'Content-Type: application/json' -X POST sends exactly that).
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !typed {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Type must be application/json when a body is sent".into(),
            ));
        }
        parse_object(&bytes).map(|t| Self(Some(t)))
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
        crate::domain::parse_id(&id).map(IdPath).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{id:?} is not an id; ids are UUIDs like 3f2c9a4e-8d1b-4c6f-9e2a-1b7d5c0f4a68"
            ))
        })
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

/// Runs an admin write to its end even if the client goes away: a write
/// cancelled between its store commit and its in-memory swap would leave
/// the two disagreeing (a cut-off on disk but not in memory, or a retired
/// credential never replaced). The spawned task is not cancelled when the
/// request future is dropped.
pub async fn uncancellable<T, F>(state: &SharedState, write: impl FnOnce(SharedState) -> F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
{
    tokio::spawn(write(state.clone())).await.map_err(|e| {
        tracing::error!(error = %e, "admin write task failed");
        ApiError::Internal
    })?
}

/// Whether a list request asks for CSV (`format=csv` or `Accept: text/csv`).
/// Whether a list request asks for CSV: `format=csv`, `Accept: text/csv`,
/// or `columns=` (which only the CSV has).
pub fn wants_csv(headers: &axum::http::HeaderMap, pairs: &[(String, String)]) -> bool {
    let by_param = pairs
        .iter()
        .any(|(k, v)| (k == "format" && v == "csv") || k == "columns");
    let by_accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|m| m.trim().starts_with("text/csv")));
    by_param || by_accept
}

/// A method-router fallback answering 405 in the admin API's JSON shape
/// with the `Allow` header (axum's own 405 has an empty body).
pub fn allow(methods: &'static str) -> impl FnOnce() -> std::future::Ready<ApiError> + Clone + Send + Sync + 'static {
    move || std::future::ready(ApiError::MethodNotAllowed(methods.to_owned()))
}

/// 201/200 with a JSON body, after counting the acknowledged write.
pub fn written<T: serde::Serialize>(state: &SharedState, status: axum::http::StatusCode, body: &T) -> Response {
    state.metrics.admin_writes.inc();
    (status, axum::Json(body)).into_response()
}
