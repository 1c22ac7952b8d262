//! `POST /oauth/revoke` (RFC 7009): a client revokes one of its own tokens.

use super::client_auth::{TlsClient, credentials};
use super::oauth::{method_not_allowed, oauth_form, with_client};
use crate::error::{OAuthError, no_store};
use crate::http::SharedState;
use crate::http::origin::Origin;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

pub fn router() -> Router<SharedState> {
    Router::new().route("/oauth/revoke", post(revoke).fallback(method_not_allowed))
}

/// RFC 7009 §2.1: 200 also for unknown, invalid or expired tokens; a token
/// of another client is refused (§2.1: "the request is refused").
#[utoipa::path(post, path = "/oauth/revoke", operation_id = "revokeToken", tag = "OAuth",
    request_body(content = crate::http::schema::RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, body = crate::http::schema::OAuthErrorBody), (status = 401, body = crate::http::schema::OAuthErrorBody),
        (status = 429, description = "Too many failed client authentications from this address; see Retry-After", body = crate::http::schema::OAuthErrorBody)))]
async fn revoke(
    State(state): State<SharedState>,
    origin: Origin,
    tls: TlsClient,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut claimed = None;
    let result = async {
        super::client_auth::no_credentials_in_url(&uri)?;
        let [token, hint, client_id, client_secret, assertion_type, assertion] = oauth_form(
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
        let creds = credentials(
            &headers,
            [client_id, client_secret, assertion_type, assertion].into(),
            tls.0.as_ref(),
        )?;
        claimed = creds.claimed_id();
        let client = creds.authenticate(&state, origin.source, "/oauth/revoke").await?;
        let token = token.ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        if hint.as_deref() == Some("refresh_token") {
            return Err(OAuthError::UnsupportedTokenType(
                "this server issues no refresh tokens; only access tokens can be revoked".into(),
            ));
        }
        let now = crate::domain::now_ms() / 1000;
        let Ok(claims) = state.issuer.verify_own(&token, now) else {
            // Unknown, malformed, foreign or expired: nothing to revoke.
            return Ok(());
        };
        if *claims.client_id != *client.client_id {
            return Err(OAuthError::UnauthorizedClient(
                "this token was not issued to the authenticated client".into(),
            ));
        }
        state
            .revocations
            .revoke_token(&claims.jti, &claims.client_id, claims.exp)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "could not store a revocation");
                OAuthError::ServerError
            })
    }
    .await;
    let resp = match result {
        Ok(()) => {
            let mut r = StatusCode::OK.into_response();
            no_store(&mut r);
            r
        }
        Err(e) => e.into_response(),
    };
    with_client(resp, claimed.as_deref())
}
