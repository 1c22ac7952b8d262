//! What every OAuth endpoint shares: the request checks of a form-encoded
//! body (RFC 6749 §3.2, §4.4.2: media type, size, UTF-8, no repeated
//! parameter), the 405, and the client ID handed to the access log.

use super::client_auth::no_credentials_in_url;
use crate::error::OAuthError;
use crate::http::SharedState;
use crate::http::body::{BodyError, has_media_type, read_body};
use crate::http::form;
use crate::telemetry::LoggedClient;
use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::response::Response;

/// The body of an OAuth endpoint request, within `server.max_body_bytes`.
pub async fn oauth_body(
    state: &SharedState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, crate::error::OAuthError> {
    let server = &state.config.server;
    read_body(headers, body, server.max_body_bytes, server.body_read_timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(n) => OAuthError::PayloadTooLarge(n),
            BodyError::Read(m) => OAuthError::InvalidRequest(format!("could not read the request body: {m}")),
            BodyError::TimedOut(s) => OAuthError::RequestTimeout(s),
        })
}

/// The checks every form-encoded OAuth endpoint shares (RFC 6749 §3.2,
/// §4.4.2): form Content-Type, size, UTF-8, no repeated parameter. Returns
/// the named parameters, in order.
pub async fn oauth_form<const N: usize>(
    state: &SharedState,
    headers: &HeaderMap,
    body: Body,
    names: [&str; N],
) -> Result<[Option<String>; N], crate::error::OAuthError> {
    if !has_media_type(headers, "application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded (RFC 6749 section 4.4.2)".into(),
        ));
    }
    let bytes = oauth_body(state, headers, body).await?;
    form::parse(&bytes, names).map_err(|e| OAuthError::InvalidRequest(e.describe()))
}

/// 405 — unless the URL carries a client secret (a `GET` with the
/// credentials in the query is the usual way to leak one): then the 400
/// that says so.
pub async fn method_not_allowed(uri: axum::http::Uri) -> OAuthError {
    no_credentials_in_url(&uri)
        .err()
        .unwrap_or(OAuthError::MethodNotAllowed)
}

pub fn with_client(mut resp: Response, client_id: Option<&str>) -> Response {
    if let Some(id) = loggable_client(client_id) {
        resp.extensions_mut().insert(LoggedClient(id.to_owned()));
    }
    resp
}

/// The client ID, when it may go to the access log: only something shaped
/// like a client ID is logged, as a secret pasted into the wrong field must
/// not reach the log.
pub fn loggable_client(client_id: Option<&str>) -> Option<&str> {
    client_id.filter(|id| crate::domain::is_id(id))
}
