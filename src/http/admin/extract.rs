//! What admin API handlers share besides authentication: the strict JSON
//! body extractor, path ids and query strings parsed into precise 400s,
//! writes that finish even if the client goes away, CSV negotiation.

use crate::error::ApiError;
use crate::http::SharedState;
use crate::http::body::{BodyError, has_media_type, read_body};
use crate::http::form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

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

/// Two ids from the path (`/…/{id}/…/{sub_id}`), each parsed like [`IdPath`].
pub struct IdPair(pub String, pub String);

impl FromRequestParts<SharedState> for IdPair {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let axum::extract::Path((a, b)) = axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid path: {e}")))?;
        let parse = |id: &str| {
            crate::domain::parse_id(id).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{id:?} is not an id; ids are UUIDs like 3f2c9a4e-8d1b-4c6f-9e2a-1b7d5c0f4a68"
                ))
            })
        };
        Ok(IdPair(parse(&a)?, parse(&b)?))
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

/// Runs list-query work on the low-priority list pool, off the connection
/// runtimes the token endpoint shares.
pub async fn off_runtime<T: Send + 'static>(
    state: &SharedState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    state.list_pool.run(work).await.ok_or_else(|| {
        tracing::error!("list query task failed");
        ApiError::Internal
    })
}
