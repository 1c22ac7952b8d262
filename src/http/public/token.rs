//! `POST /oauth/token` (RFC 6749 §4.4, §2.3.1, §5) and the JSON
//! compatibility form `POST /api/v1/token` for existing API clients.

use super::client_auth::{ClientCredentials, credentials, no_credentials_in_url};
use super::oauth::{method_not_allowed, oauth_body, oauth_form, with_client};
use crate::error::{OAuthError, no_store};
use crate::http::SharedState;
use crate::http::body::has_media_type;
use crate::http::origin::Origin;
use crate::http::paths::TOKEN_PATH;
use crate::oauth::grant::{AuthMethod, GrantRequest, Granted};
use crate::telemetry::PeerAddr;
use crate::telemetry::access::Started;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route(TOKEN_PATH, post(token).fallback(method_not_allowed))
        .route("/api/v1/token", post(compat_token).fallback(method_not_allowed))
}

fn check_grant_type(grant_type: Option<&str>) -> Result<(), OAuthError> {
    match grant_type {
        Some("client_credentials") => Ok(()),
        None => Err(OAuthError::InvalidRequest(
            "grant_type is required; this server supports client_credentials".into(),
        )),
        Some(other) => Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type {other:?} is not supported; this server supports client_credentials"
        ))),
    }
}

fn granted_response(g: &Granted) -> Response {
    let mut body = format!(
        r#"{{"access_token":"{}","token_type":"Bearer","expires_in":{}"#,
        g.access_token, g.expires_in
    );
    if let Some(scope) = &g.scope {
        body.push_str(&format!(r#","scope":"{scope}""#));
    }
    body.push('}');
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response();
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
    let (parts, body) = req.into_parts();
    let resp = token(State(state.clone()), origin, parts.uri, parts.headers, body).await;
    started.finish(&*state, "POST", TOKEN_PATH, resp)
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
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut claimed: Option<String> = None;
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
        ] = oauth_form(
            &state,
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
            ],
        )
        .await?;
        check_grant_type(grant_type.as_deref())?;
        let creds = credentials(&headers, [client_id, client_secret, assertion_type, assertion].into())?;
        claimed = creds.claimed_id();
        match &creds {
            // The hot path stays synchronous: no future for a secret check.
            ClientCredentials::Secret(c) => state.grants.client_credentials(&GrantRequest {
                source: origin.source,
                client_id: &c.id,
                client_secret: &c.secret,
                method: c.method,
                scope: scope.as_deref(),
                resource: resource.as_deref(),
                audience: audience.as_deref(),
            }),
            ClientCredentials::Assertion { .. } => {
                let entry = creds.authenticate(&state, origin.source, "/oauth/token").await?;
                state.grants.grant_to(
                    &entry,
                    false,
                    scope.as_deref(),
                    resource.as_deref(),
                    audience.as_deref(),
                    crate::domain::now_ms(),
                )
            }
        }
    }
    .await;
    state.metrics.count_token(result.as_ref().map(|_| ()));
    match result {
        Ok(g) => with_client(granted_response(&g), Some(&g.client_id)),
        Err(e) => with_client(e.into_response(), claimed.as_deref()),
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
            scope: None,
            resource: None,
            audience: None,
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
