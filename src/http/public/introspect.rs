//! `POST /oauth/introspect` (RFC 7662): is this token active, and what does
//! it carry? The caller authenticates as an application (Basic or body) or
//! with an admin bearer token.

use super::client_auth::{TlsClient, credentials};
use super::oauth::{method_not_allowed, oauth_form, with_client};
use crate::domain::access_rule::RuleClaim;
use crate::domain::role::perm;
use crate::error::{ApiError, OAuthError, no_store};
use crate::http::SharedState;
use crate::http::bearer::Admin;
use crate::http::origin::Origin;
use crate::token::claims::Audience;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;

pub fn router() -> Router<SharedState> {
    Router::new().route("/oauth/introspect", post(introspect).fallback(method_not_allowed))
}

/// RFC 7662 §2.2 response for an inactive (revoked, expired, malformed,
/// foreign) token: exactly `{"active": false}`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inactive {
    /// Always false.
    pub active: bool,
}

/// RFC 7662 §2.2 response for an active token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub client_id: String,
    pub sub: String,
    #[schema(value_type = Object)]
    pub aud: Audience,
    pub iss: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// `Bearer`, or `DPoP` for a token bound to a DPoP key (RFC 9449 §6.2).
    pub token_type: &'static str,
    /// The key binding of a DPoP-bound token: `{"jkt": …}` (RFC 9449 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cnf: Option<appauth_verify::Confirmation>,
    #[schema(value_type = Vec<Object>)]
    pub access_rules: Vec<RuleClaim>,
}

/// The 200 answer: the active token's claims or `{"active": false}`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum IntrospectionResponse {
    Active(Box<Introspection>),
    Inactive(Inactive),
}

fn is_bearer(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
}

#[utoipa::path(post, path = "/oauth/introspect", operation_id = "introspectToken", tag = "OAuth",
    request_body(content = crate::http::schema::RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Active token, or exactly {\"active\": false}", body = inline(IntrospectionResponse)),
        (status = 401, body = crate::http::schema::OAuthErrorBody),
        (status = 429, description = "Too many failed client authentications from this address; see Retry-After", body = crate::http::schema::OAuthErrorBody)))]
async fn introspect(
    State(state): State<SharedState>,
    origin: Origin,
    tls: TlsClient,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut caller = None;
    let result: Result<Option<Introspection>, OAuthError> = async {
        super::client_auth::no_credentials_in_url(&uri)?;
        let [token, _hint, client_id, client_secret, assertion_type, assertion] = oauth_form(
            &state,
            &headers,
            body,
            [
                "token",
                "token_type_hint",
                "client_id",
                "client_secret",
                "client_assertion_type",
                "client_assertion",
            ],
        )
        .await?;
        // Who may see what (RFC 7662 §4): a caller holding tokens:introspect
        // on the tenant (Viewer or more, or the Resource server role) sees any
        // token — by admin-audience bearer or by client credentials; any
        // other client sees only its own, and others' are `{"active": false}`.
        let own_only = if is_bearer(&headers) {
            // One authentication method per request (RFC 6749 section 2.3).
            if client_secret.is_some() || assertion_type.is_some() || assertion.is_some() {
                return Err(OAuthError::InvalidRequest(
                    "send either a bearer token or client credentials, not both (RFC 6749 section 2.3)".into(),
                ));
            }
            let admin = Admin::authenticate(
                &headers,
                origin.request_info(),
                origin.source,
                "POST /oauth/introspect",
                tls.0.as_deref(),
                &state,
            )
            .await
            .map_err(|e| match e {
                ApiError::Unauthorized { message, .. } => OAuthError::InvalidToken(message),
                ApiError::TooManyRequests { retry_after, limit } => OAuthError::TooManyRequests { retry_after, limit },
                other => OAuthError::InvalidToken(other.to_string()),
            })?;
            admin
                .require(&state, perm::TOKENS_INTROSPECT)
                .await
                .map_err(|e| OAuthError::InsufficientScope(e.to_string()))?;
            caller = Some(admin.client_id().to_owned());
            None
        } else {
            let creds = credentials(
                &headers,
                [client_id, client_secret, assertion_type, assertion].into(),
                tls.0.as_ref(),
            )?;
            caller = creds.claimed_id();
            let client = creds.authenticate(&state, origin.source, "/oauth/introspect").await?;
            let sees_all = state
                .directory
                .read()
                .app_holds_on_tenant(&client.app_id, perm::TOKENS_INTROSPECT);
            (!sees_all).then(|| client.client_id.clone())
        };
        let token = token.ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        let now = crate::domain::now_ms() / 1000;
        let Ok(claims) = state.issuer.verify_own(&token, now) else {
            return Ok(None);
        };
        if own_only.is_some_and(|me| *me != *claims.client_id) || state.is_revoked(&claims).await {
            return Ok(None);
        }
        let token_type = if claims.dpop_jkt().is_some() { "DPoP" } else { "Bearer" };
        Ok(Some(Introspection {
            active: true,
            scope: claims.scope,
            client_id: claims.client_id,
            sub: claims.sub,
            aud: claims.aud,
            iss: claims.iss,
            exp: claims.exp,
            iat: claims.iat,
            nbf: claims.nbf,
            jti: claims.jti,
            token_type,
            cnf: claims.cnf,
            access_rules: claims.access_rules,
        }))
    }
    .await;
    let resp = match result {
        Ok(Some(active)) => {
            let mut r = axum::Json(active).into_response();
            no_store(&mut r);
            r
        }
        Ok(None) => {
            let mut r = axum::Json(serde_json::json!({"active": false})).into_response();
            no_store(&mut r);
            r
        }
        Err(e) => e.into_response(),
    };
    with_client(resp, caller.as_deref())
}
