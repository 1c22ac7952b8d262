//! `POST /oauth/token` (RFC 6749 §4.4, §2.3.1, §5) and the JSON
//! compatibility form `POST /api/v1/token` for existing API clients.

use super::{BodyError, SharedState, form, media_type, read_body};
use crate::error::{OAuthError, no_store};
use crate::grant::{AuthMethod, GrantRequest, Granted};
use crate::telemetry::LoggedClient;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/oauth/token", post(token).fallback(method_not_allowed))
        .route("/api/v1/token", post(compat_token).fallback(method_not_allowed))
}

async fn method_not_allowed() -> OAuthError {
    OAuthError::MethodNotAllowed
}

/// Standard base64 that tolerates missing padding, as many HTTP clients omit it.
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

async fn body_of(state: &SharedState, headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, OAuthError> {
    read_body(headers, body, state.config.server.max_body_bytes)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(n) => OAuthError::PayloadTooLarge(n),
            BodyError::Read(m) => OAuthError::InvalidRequest(format!("could not read the request body: {m}")),
        })
}

fn with_client(mut resp: Response, client_id: Option<&str>) -> Response {
    // Only something shaped like a client ID is logged: a secret pasted
    // into the wrong field must not reach the log.
    if let Some(id) = client_id.filter(|id| crate::domain::is_id(id)) {
        resp.extensions_mut().insert(LoggedClient(id.to_owned()));
    }
    resp
}

struct Credentials {
    id: String,
    secret: String,
    method: AuthMethod,
}

/// Credentials from `Authorization: Basic` (each half form-urlencoded, RFC
/// 6749 §2.3.1), or `None` when the header is absent.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::InvalidRequest("send a single Authorization header".into()));
    }
    let bad = |m: &str| OAuthError::InvalidRequest(format!("malformed HTTP Basic credentials: {m}"));
    let value = value.to_str().map_err(|_| bad("header is not ASCII"))?;
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            format!("authentication scheme {scheme:?} is not supported; use HTTP Basic or client_secret_post"),
            true,
        ));
    }
    let decoded = BASIC_B64.decode(encoded.trim()).map_err(|_| bad("not valid base64"))?;
    let (id, secret) = match decoded.iter().position(|&b| b == b':') {
        Some(i) => (&decoded[..i], &decoded[i + 1..]),
        None => return Err(bad("expected client_id:client_secret")),
    };
    let decode = |part: &[u8]| {
        form::decode_component(part)
            .map(|c| c.into_owned())
            .map_err(|_| bad("client_id and client_secret must be form-urlencoded UTF-8 (RFC 6749 §2.3.1)"))
    };
    Ok(Some((decode(id)?, decode(secret)?)))
}

fn credentials(
    headers: &HeaderMap,
    body_id: Option<String>,
    body_secret: Option<String>,
) -> Result<Credentials, OAuthError> {
    match basic_credentials(headers)? {
        Some((id, secret)) => {
            if body_secret.is_some() || body_id.as_ref().is_some_and(|b| *b != id) {
                return Err(OAuthError::InvalidRequest(
                    "client credentials sent both in the Authorization header and in the body; use one method (RFC 6749 §2.3)".into(),
                ));
            }
            Ok(Credentials {
                id,
                secret,
                method: AuthMethod::Basic,
            })
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Credentials {
                id,
                secret,
                method: AuthMethod::Body,
            }),
            (Some(_), None) => Err(OAuthError::invalid_client(
                "client_secret is missing; send it with client_id or use HTTP Basic",
                true,
            )),
            _ => Err(OAuthError::invalid_client(
                "client authentication is required: HTTP Basic or client_id and client_secret in the body",
                true,
            )),
        },
    }
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

/// RFC 6749 §4.4 client-credentials grant.
#[utoipa::path(post, path = "/oauth/token", tag = "OAuth",
    request_body(content = crate::routes::openapi::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = crate::routes::openapi::TokenResponse),
        (status = 400, body = crate::routes::openapi::OAuthErrorBody), (status = 401, body = crate::routes::openapi::OAuthErrorBody)))]
async fn token(State(state): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    let mut claimed: Option<String> = None;
    let result = async {
        if media_type(&headers).as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(OAuthError::InvalidRequest(
                "Content-Type must be application/x-www-form-urlencoded (RFC 6749 §4.4.2)".into(),
            ));
        }
        let bytes = body_of(&state, &headers, body).await?;
        let [grant_type, client_id, client_secret, scope, resource, audience] = form::parse(
            &bytes,
            [
                "grant_type",
                "client_id",
                "client_secret",
                "scope",
                "resource",
                "audience",
            ],
        )
        .map_err(|e| OAuthError::InvalidRequest(e.describe()))?;
        check_grant_type(grant_type.as_deref())?;
        let creds = credentials(&headers, client_id, client_secret)?;
        claimed = Some(creds.id.clone());
        state.grants.client_credentials(&GrantRequest {
            client_id: &creds.id,
            client_secret: &creds.secret,
            method: creds.method,
            scope: scope.as_deref(),
            resource: resource.as_deref(),
            audience: audience.as_deref(),
        })
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
#[utoipa::path(post, path = "/api/v1/token", tag = "OAuth", request_body = CompatRequest,
    responses((status = 200, body = crate::routes::openapi::CompatResponse),
        (status = 400, body = crate::routes::openapi::OAuthErrorBody), (status = 401, body = crate::routes::openapi::OAuthErrorBody)))]
async fn compat_token(State(state): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    let mut claimed: Option<String> = None;
    let result = async {
        if media_type(&headers).as_deref() != Some("application/json") {
            return Err(OAuthError::InvalidRequest(
                "Content-Type must be application/json".into(),
            ));
        }
        let bytes = body_of(&state, &headers, body).await?;
        let req: CompatRequest = serde_json::from_slice(&bytes).map_err(|e| {
            OAuthError::InvalidRequest(format!(
                "body must be {{\"grantType\":\"client_credentials\",\"clientId\":…,\"clientSecret\":…}}: {e}"
            ))
        })?;
        check_grant_type(Some(&req.grant_type))?;
        claimed = Some(req.client_id.clone());
        state.grants.client_credentials(&GrantRequest {
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
