//! The two error surfaces: [`OAuthError`] for the OAuth endpoints (RFC 6749
//! §5.2, RFC 7009 §2.2.1, RFC 8707 §2) and [`ApiError`] for the admin API.
//! Both render JSON with a message that says what to fix; 5xx bodies are
//! generic and the details go to tracing only.

use crate::directory::DirectoryError;
use crate::oauth::throttle::Limit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// `challenge`: the client tried HTTP Basic (or sent no credentials), so
    /// the 401 carries `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    #[error("invalid_client: {description}")]
    InvalidClient { description: String, challenge: bool },
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    #[error("unsupported_token_type: {0}")]
    UnsupportedTokenType(String),
    /// A bearer token used to call an endpoint is not valid (RFC 6750 §3.1).
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// The bearer token is valid but grants too little (RFC 6750 §3.1).
    #[error("insufficient_scope: {0}")]
    InsufficientScope(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive within the body read timeout (seconds).
    #[error("request body not received within {0} s")]
    RequestTimeout(u64),
    /// Past a failure budget (RFC 6585 §4); `limit` names which.
    #[error("temporarily_unavailable: retry after {retry_after} s")]
    TooManyRequests { retry_after: u64, limit: Limit },
    /// A dependency the check needs cannot answer right now (503).
    #[error("temporarily_unavailable: {0}")]
    TemporarilyUnavailable(String),
    /// RFC 9449 §5: a DPoP proof missing where required, or not acceptable.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(String),
    /// RFC 9449 §8: retry with this server nonce in the proof.
    #[error("use_dpop_nonce")]
    UseDpopNonce { nonce: String },
    #[error("server_error")]
    ServerError,
}

/// RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E in
/// `error_description`: printable ASCII without `"` and `\`. Messages quote
/// client input and use typographic characters, so every description goes
/// through here: `"` becomes `'`, `\` becomes `/`, `§` becomes "section",
/// dashes and ellipses become ASCII, and anything else outside the set `?`.
pub fn rfc6749_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push('\''),
            '\\' => out.push('/'),
            '§' => out.push_str("section "),
            '–' | '—' => out.push('-'),
            '…' => out.push_str("..."),
            '\u{20}'..='\u{7e}' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.replace("section  ", "section ")
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::MethodNotAllowed | Self::PayloadTooLarge(_) | Self::RequestTimeout(_) => {
                "invalid_request"
            }
            Self::TooManyRequests { .. } | Self::TemporarilyUnavailable(_) => "temporarily_unavailable",
            Self::InvalidClient { .. } => "invalid_client",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::UnsupportedTokenType(_) => "unsupported_token_type",
            Self::InvalidToken(_) => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce { .. } => "use_dpop_nonce",
            Self::ServerError => "server_error",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn description(&self) -> String {
        match self {
            Self::InvalidRequest(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d)
            | Self::UnsupportedTokenType(d)
            | Self::InvalidToken(d)
            | Self::InsufficientScope(d)
            | Self::InvalidDpopProof(d)
            | Self::TemporarilyUnavailable(d) => d.clone(),
            Self::UseDpopNonce { .. } => {
                "send the DPoP-Nonce of this answer in the proof's nonce claim (RFC 9449 section 8)".into()
            }
            Self::InvalidClient { description, .. } => description.clone(),
            Self::MethodNotAllowed => "this endpoint accepts POST only".into(),
            Self::PayloadTooLarge(n) => format!("request body is larger than {n} bytes"),
            Self::TooManyRequests { retry_after, limit } => {
                format!("{}; retry after {retry_after} seconds", limit.describe())
            }
            Self::RequestTimeout(s) => format!("the request body did not arrive within {s} seconds"),
            Self::ServerError => "the server could not complete the request".into(),
        }
    }

    pub fn invalid_client(description: impl Into<String>, challenge: bool) -> Self {
        Self::InvalidClient {
            description: description.into(),
            challenge,
        }
    }
}

/// Headers every OAuth response carries (RFC 6749 §5.1): never cached.
pub fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code(), "error_description": rfc6749_text(&self.description())});
        let mut resp = (self.status(), axum::Json(body)).into_response();
        no_store(&mut resp);
        match &self {
            Self::InvalidClient { challenge: true, .. } => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    // The error code as an auth-param too: clients that surface
                    // the challenge (node openid-client) still see it.
                    HeaderValue::from_static("Basic realm=\"appauth\", charset=\"UTF-8\", error=\"invalid_client\""),
                );
            }
            Self::TooManyRequests { retry_after, .. } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::MethodNotAllowed => {
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            Self::InvalidToken(_) => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"appauth\", error=\"invalid_token\""),
                );
            }
            Self::InsufficientScope(_) => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"appauth\", error=\"insufficient_scope\""),
                );
            }
            Self::UseDpopNonce { nonce } => {
                if let Ok(v) = HeaderValue::from_str(nonce) {
                    resp.headers_mut().insert("dpop-nonce", v);
                }
            }
            _ => {}
        }
        resp
    }
}

/// Admin API errors: `{"code": <status>, "message": …, "details": …}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String, Option<serde_json::Value>),
    /// No or unusable bearer token; `invalid_token` when one was sent (RFC 6750 §3).
    #[error("{message}")]
    Unauthorized { message: String, token_sent: bool },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("method not allowed")]
    MethodNotAllowed(String),
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("the request body did not arrive within {0} seconds")]
    RequestTimeout(u64),
    /// Past a request or failure budget (RFC 6585 §4); `limit` names which.
    #[error("{}; retry after {retry_after} seconds", limit.describe())]
    TooManyRequests { retry_after: u64, limit: Limit },
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into(), None)
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(..) => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::MethodNotAllowed(allow) => format!("method not allowed here; allowed: {allow}"),
            Self::PayloadTooLarge(n) => format!("request body is larger than {n} bytes"),
            Self::Internal => "internal error; the server log has the details".into(),
            other => other.to_string(),
        };
        let details = match &self {
            Self::BadRequest(_, d) => d.clone(),
            _ => None,
        };
        let body = json!({"code": status.as_u16(), "message": message, "details": details});
        let mut resp = (status, axum::Json(body)).into_response();
        match &self {
            Self::Unauthorized { token_sent, .. } => {
                let v = if *token_sent {
                    "Bearer realm=\"appauth\", error=\"invalid_token\""
                } else {
                    "Bearer realm=\"appauth\""
                };
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
            }
            Self::Forbidden(_) => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"appauth\", error=\"insufficient_scope\""),
                );
            }
            Self::MethodNotAllowed(allow) => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    resp.headers_mut().insert(header::ALLOW, v);
                }
            }
            Self::TooManyRequests { retry_after, .. } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        resp
    }
}

impl From<crate::query::QueryError> for ApiError {
    fn from(e: crate::query::QueryError) -> Self {
        let details = (!e.valid.is_empty()).then(|| json!({"valid": e.valid}));
        ApiError::BadRequest(e.message, details)
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            DirectoryError::Conflict(m) => ApiError::Conflict(m),
            DirectoryError::Stale => ApiError::Conflict(e.to_string()),
            DirectoryError::Invalid(m) => ApiError::bad_request(m),
            DirectoryError::Forbidden(m) => ApiError::Forbidden(m),
            DirectoryError::Store(crate::store::StoreError::Indeterminate(s)) => {
                tracing::error!(error = %s, "store write unconfirmed");
                ApiError::Unavailable(
                    "the database stopped answering while this change was being written: it may or may not have been made; read the resource back before retrying".into(),
                )
            }
            DirectoryError::Store(s) => {
                tracing::error!(error = %s, "store write failed");
                ApiError::Unavailable(
                    "the store could not make this change durable (database unreachable, disk full or I/O error), so nothing was changed; tokens are still issued, and writes resume by themselves when the store recovers".into(),
                )
            }
        }
    }
}
