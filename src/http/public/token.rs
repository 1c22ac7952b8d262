//! `POST /oauth/token` (RFC 6749 §4.4, §2.3.1, §5) and the JSON
//! compatibility form `POST /api/v1/token` for existing API clients.

use super::client_auth::{ClientCredentials, TlsClient, credentials, no_credentials_in_url};
use super::oauth::{loggable_client, method_not_allowed, oauth_body, oauth_form, with_client};
use crate::error::{OAuthError, no_store};
use crate::http::SharedState;
use crate::http::body::has_media_type;
use crate::http::origin::Origin;
use crate::http::paths::TOKEN_PATH;
use crate::oauth::grant::{Asked, AuthMethod, FederatedVia, GrantRequest, Granted};
use crate::telemetry::access::Started;
use crate::telemetry::{LoggedFederation, PeerAddr};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use std::sync::Arc;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route(TOKEN_PATH, post(token).fallback(method_not_allowed))
        .route("/api/v1/token", post(compat_token).fallback(method_not_allowed))
}

/// RFC 8693 §2.1 grant type, and the token types of §3.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

#[derive(Clone, Copy, PartialEq, Eq)]
enum GrantType {
    ClientCredentials,
    TokenExchange,
}

fn check_grant_type(grant_type: Option<&str>) -> Result<GrantType, OAuthError> {
    match grant_type {
        Some("client_credentials") => Ok(GrantType::ClientCredentials),
        Some(TOKEN_EXCHANGE) => Ok(GrantType::TokenExchange),
        None => Err(OAuthError::InvalidRequest(format!(
            "grant_type is required; this server supports client_credentials and {TOKEN_EXCHANGE}"
        ))),
        Some(other) => Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type {other:?} is not supported; this server supports client_credentials and {TOKEN_EXCHANGE}"
        ))),
    }
}

/// The parameters of a token exchange (RFC 8693 §2.1) beyond the shared ones.
struct Exchange {
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    actor_token: Option<String>,
    actor_token_type: Option<String>,
    requested_token_type: Option<String>,
}

impl Exchange {
    /// The subject token, once the request is one this server serves: a
    /// workload's own JWT for an access token, no delegation (RFC 8693
    /// §2.2.2: `invalid_request` for what is not supported).
    fn subject_token(&self, client_authenticated: bool) -> Result<&str, OAuthError> {
        let bad = |m: String| Err(OAuthError::InvalidRequest(m));
        if self.actor_token.is_some() || self.actor_token_type.is_some() {
            return bad("actor_token is not supported: this server exchanges a workload's own identity token, without delegation (RFC 8693 section 2.2.2)".into());
        }
        if let Some(t) = self.requested_token_type.as_deref().filter(|t| *t != TYPE_ACCESS_TOKEN) {
            return bad(format!(
                "requested_token_type {t:?} is not supported; this server issues {TYPE_ACCESS_TOKEN}"
            ));
        }
        if client_authenticated {
            return bad("a token exchange is authenticated by its subject_token: send client_id, and no client secret or assertion".into());
        }
        let Some(token) = self.subject_token.as_deref().filter(|t| !t.is_empty()) else {
            return bad("subject_token is required (RFC 8693 section 2.1)".into());
        };
        match self.subject_token_type.as_deref() {
            Some(TYPE_JWT | TYPE_ID_TOKEN) => Ok(token),
            None => bad(format!("subject_token_type is required: {TYPE_JWT} or {TYPE_ID_TOKEN}")),
            Some(other) => bad(format!(
                "subject_token_type {other:?} is not supported; this server accepts {TYPE_JWT} and {TYPE_ID_TOKEN}"
            )),
        }
    }
}

/// The thumbprint of the request's DPoP proof key, once the proof passed
/// every check for this endpoint (RFC 9449 §4.3, §5).
async fn dpop_jkt(state: &SharedState, proof: Option<&str>, client_id: &str) -> Result<Option<String>, OAuthError> {
    let Some(proof) = proof else {
        return Ok(None);
    };
    let url = format!("{}{TOKEN_PATH}", state.issuer_url);
    let expected = appauth_verify::dpop::Expected {
        method: "POST",
        url: &url,
        access_token: None,
        now: crate::domain::now_ms() / 1000,
    };
    Ok(Some(state.grants.dpop.check(proof, &expected, client_id).await?.jkt))
}

/// The RFC 6749 §5.1 answer, built at its exact length in one buffer (one
/// allocation, which the body then owns) with its headers reserved at
/// once: this runs for every token.
fn granted_response(g: &Granted, exchanged: bool) -> Response {
    let token_type = if g.dpop { "DPoP" } else { "Bearer" };
    let mut expires = itoa::Buffer::new();
    let expires = expires.format(g.expires_in);
    let issued_type = if exchanged { TYPE_ACCESS_TOKEN } else { "" };
    let scope = g.scope.as_deref().unwrap_or_default();
    let parts: [&str; 12] = [
        r#"{"access_token":""#,
        &g.access_token,
        r#"","token_type":""#,
        token_type,
        r#"","expires_in":"#,
        expires,
        if exchanged { r#","issued_token_type":""# } else { "" },
        issued_type,
        if exchanged { "\"" } else { "" },
        if g.scope.is_some() { r#","scope":""# } else { "" },
        scope,
        if g.scope.is_some() { "\"}" } else { "}" },
    ];
    let mut body = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| body.push_str(p));
    let mut resp = Response::new(Body::from(body));
    // content-type, cache-control, pragma, x-request-id, and maybe dpop-nonce.
    resp.headers_mut().reserve(5);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(&mut resp);
    resp
}

/// `POST /oauth/token` served without the router: the server hands it
/// every request for exactly that method and path (see `app::server`), and
/// it does what the router's middleware would have done (request id,
/// latency, access line) through the same [`Started`].
pub async fn direct(state: SharedState, peer: Option<PeerAddr>, req: axum::http::Request<Body>) -> Response {
    let started = Started::now(&*state);
    let origin = Origin::of(peer, started.id);
    let (mut parts, body) = req.into_parts();
    let tls = TlsClient(parts.extensions.remove());
    let (resp, client) = answer(&state, origin, tls, parts.uri, parts.headers, body).await;
    started.finish_for(&*state, "POST", TOKEN_PATH, resp, loggable_client(client.as_deref()))
}

/// RFC 6749 §4.4 client-credentials grant.
#[utoipa::path(post, path = "/oauth/token", operation_id = "requestToken", tag = "OAuth",
    request_body(content = crate::http::schema::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = crate::http::schema::TokenResponse),
        (status = 400, body = crate::http::schema::OAuthErrorBody), (status = 401, body = crate::http::schema::OAuthErrorBody),
        (status = 429, description = "Too many failed client authentications from this address; see Retry-After", body = crate::http::schema::OAuthErrorBody)))]
async fn token(
    State(state): State<SharedState>,
    origin: Origin,
    tls: TlsClient,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (resp, client) = answer(&state, origin, tls, uri, headers, body).await;
    with_client(resp, client.as_deref())
}

/// The token endpoint's answer, and the client ID it names (the one
/// authenticated, or on a refusal the one claimed) for the access line.
async fn answer(
    state: &SharedState,
    origin: Origin,
    TlsClient(cert): TlsClient,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> (Response, Option<Arc<str>>) {
    let mut claimed: Option<String> = None;
    let mut exchanged = false;
    let x5t = cert.as_ref().map(|c| c.thumbprint.as_str());
    let result = async {
        no_credentials_in_url(&uri)?;
        let [
            grant_type,
            client_id,
            client_secret,
            scope,
            resource,
            audience,
            assertion_type,
            assertion,
            subject_token,
            subject_token_type,
            actor_token,
            actor_token_type,
            requested_token_type,
        ] = oauth_form(
            state,
            &headers,
            body,
            [
                "grant_type",
                "client_id",
                "client_secret",
                "scope",
                "resource",
                "audience",
                "client_assertion_type",
                "client_assertion",
                "subject_token",
                "subject_token_type",
                "actor_token",
                "actor_token_type",
                "requested_token_type",
            ],
        )
        .await?;
        let grant = check_grant_type(grant_type.as_deref())?;
        let dpop = crate::oauth::dpop::proof_header(&headers)?;
        // What the request asks for; the DPoP key it proved is added once checked.
        let asked = Asked {
            scope: scope.as_deref(),
            resource: resource.as_deref(),
            audience: audience.as_deref(),
            dpop_jkt: None,
            x5t,
        };
        if grant == GrantType::TokenExchange {
            exchanged = true;
            let exchange = Exchange {
                subject_token,
                subject_token_type,
                actor_token,
                actor_token_type,
                requested_token_type,
            };
            let authenticated =
                client_secret.is_some() || assertion.is_some() || headers.contains_key(header::AUTHORIZATION);
            let token = exchange.subject_token(authenticated)?;
            let client_id = client_id.ok_or_else(|| {
                OAuthError::InvalidRequest(
                    "client_id is required: it names the application whose token the subject_token is exchanged for"
                        .into(),
                )
            })?;
            claimed = Some(client_id.clone());
            let entry = state
                .grants
                .authenticate_federated(origin.source, &client_id, token, FederatedVia::TokenExchange)
                .await?;
            let jkt = dpop_jkt(state, dpop, &entry.client_id).await?;
            return state.grants.grant_to(
                &entry,
                false,
                &Asked {
                    dpop_jkt: jkt.as_deref(),
                    ..asked
                },
                crate::domain::now_ms(),
            );
        }
        if subject_token.is_some() || subject_token_type.is_some() || actor_token.is_some() {
            return Err(OAuthError::InvalidRequest(format!(
                "subject_token and actor_token belong to grant_type {TOKEN_EXCHANGE}"
            )));
        }
        let creds = credentials(
            &headers,
            [client_id, client_secret, assertion_type, assertion].into(),
            cert.as_ref(),
        )?;
        let granted = async {
            match &creds {
                // The hot path stays synchronous: no future for a secret check.
                ClientCredentials::Secret(c) if dpop.is_none() => state.grants.client_credentials(&GrantRequest {
                    source: origin.source,
                    client_id: &c.id,
                    client_secret: &c.secret,
                    method: c.method,
                    asked,
                }),
                // The proof is checked (and its jti recorded) only once the
                // client has authenticated: nobody else can fill the ledger.
                _ => {
                    let entry = creds.authenticate(state, origin.source, "/oauth/token").await?;
                    let jkt = dpop_jkt(state, dpop, &entry.client_id).await?;
                    state.grants.grant_to(
                        &entry,
                        creds.challenge(),
                        &Asked {
                            dpop_jkt: jkt.as_deref(),
                            ..asked
                        },
                        crate::domain::now_ms(),
                    )
                }
            }
        }
        .await;
        // Only a refusal names the claimed client: a grant names its own.
        if granted.is_err() {
            claimed = creds.claimed_id();
        }
        granted
    }
    .await;
    state.metrics.count_token(result.as_ref().map(|_| ()));
    match result {
        Ok(g) => {
            let mut resp = granted_response(&g, exchanged);
            if g.dpop
                && let Some(nonces) = &state.grants.dpop.nonces
                && let Ok(v) = HeaderValue::from_str(&nonces.current(crate::domain::now_ms() / 1000))
            {
                // The nonce for the client's next proof (RFC 9449 section 8).
                resp.headers_mut().insert("dpop-nonce", v);
            }
            if let Some(p) = &g.federated {
                let via = if exchanged {
                    "token exchange"
                } else {
                    "federated client assertion"
                };
                state
                    .directory
                    .audit_federated_token(&g.client_id, &origin.request_info(), p, via);
                resp.extensions_mut().insert(LoggedFederation {
                    iss: p.iss.clone(),
                    sub: p.sub.clone(),
                });
            }
            (resp, Some(g.client_id))
        }
        Err(e) => (e.into_response(), claimed.map(Arc::from)),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompatRequest {
    grant_type: String,
    client_id: String,
    client_secret: String,
}

/// The JSON form of the token request for existing API clients.
#[utoipa::path(post, path = "/api/v1/token", operation_id = "requestTokenJson", tag = "OAuth", request_body = CompatRequest,
    responses((status = 200, body = crate::http::schema::CompatResponse),
        (status = 400, body = crate::http::schema::OAuthErrorBody), (status = 401, body = crate::http::schema::OAuthErrorBody),
        (status = 429, description = "Too many failed client authentications from this address; see Retry-After", body = crate::http::schema::OAuthErrorBody)))]
async fn compat_token(
    State(state): State<SharedState>,
    origin: Origin,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut claimed: Option<String> = None;
    let result = async {
        no_credentials_in_url(&uri)?;
        if !has_media_type(&headers, "application/json") {
            return Err(OAuthError::InvalidRequest(
                "Content-Type must be application/json".into(),
            ));
        }
        let bytes = oauth_body(&state, &headers, body).await?;
        let req: CompatRequest = serde_json::from_slice(&bytes).map_err(|e| {
            OAuthError::InvalidRequest(format!(
                "body must be {{\"grantType\":\"client_credentials\",\"clientId\":…,\"clientSecret\":…}}: {e}"
            ))
        })?;
        check_grant_type(Some(&req.grant_type))?;
        claimed = Some(req.client_id.clone());
        state.grants.client_credentials(&GrantRequest {
            source: origin.source,
            client_id: &req.client_id,
            client_secret: &req.client_secret,
            method: AuthMethod::Body,
            asked: Asked::default(),
        })
    }
    .await;
    state.metrics.count_token(result.as_ref().map(|_| ()));
    match result {
        Ok(g) => {
            let body =
                serde_json::json!({"accessToken": g.access_token, "tokenType": "Bearer", "expiresIn": g.expires_in});
            let mut resp = axum::Json(body).into_response();
            no_store(&mut resp);
            with_client(resp, Some(&g.client_id))
        }
        Err(e) => with_client(e.into_response(), claimed.as_deref()),
    }
}
