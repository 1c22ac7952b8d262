//! axum integration: the [`Verified`] extractor gives a handler the verified
//! claims; failures are RFC 6750 answers (`WWW-Authenticate: Bearer`, 401
//! `invalid_token`, 403 `insufficient_scope`). DPoP-bound tokens (RFC 9449)
//! are accepted only as `Authorization: DPoP` with a proof of their key for
//! the request, and refused as Bearer (`WWW-Authenticate: DPoP
//! error="invalid_dpop_proof"`, §7.1). Certificate-bound tokens (RFC 8705
//! §3) need the [`crate::ClientCertificate`] they name in the request's
//! extensions, put there by the resource server's TLS layer.

use super::{ScopeTree, Verifier, VerifyError};
use crate::AccessTokenClaims;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The claims of a verified bearer token.
#[derive(Debug, Clone)]
pub struct Verified(pub AccessTokenClaims);

#[derive(Debug)]
pub enum BearerError {
    /// No bearer token (RFC 6750 §3.1: no error code).
    Missing,
    Invalid(VerifyError),
    Insufficient(String),
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match &self {
            BearerError::Missing => (
                StatusCode::UNAUTHORIZED,
                format!("Bearer, DPoP algs=\"{DPOP_ALGS}\""),
                serde_json::json!({"error": "invalid_request", "error_description": "a bearer token is required"}),
            ),
            BearerError::Invalid(VerifyError::Dpop(d)) => (
                StatusCode::UNAUTHORIZED,
                format!("DPoP error=\"invalid_dpop_proof\", algs=\"{DPOP_ALGS}\""),
                serde_json::json!({"error": "invalid_dpop_proof", "error_description": d}),
            ),
            BearerError::Invalid(VerifyError::RevocationUnavailable(d)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Bearer error=\"invalid_token\"".to_string(),
                serde_json::json!({"error": "temporarily_unavailable", "error_description": d}),
            ),
            BearerError::Invalid(e) => (
                StatusCode::UNAUTHORIZED,
                "Bearer error=\"invalid_token\"".to_string(),
                serde_json::json!({"error": "invalid_token", "error_description": e.to_string()}),
            ),
            BearerError::Insufficient(d) => (
                StatusCode::FORBIDDEN,
                "Bearer error=\"insufficient_scope\"".to_string(),
                serde_json::json!({"error": "insufficient_scope", "error_description": d}),
            ),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

/// The DPoP algorithms accepted (RFC 9449 §7.1 `algs`).
const DPOP_ALGS: &str = "ES256 EdDSA RS256 PS256";

async fn verify_headers(
    verifier: &Verifier,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    certificate: Option<&crate::ClientCertificate>,
) -> Result<Verified, BearerError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(BearerError::Missing)?;
    let (token, dpop_scheme) = match value.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => (t.trim(), false),
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("dpop") => (t.trim(), true),
        _ => return Err(BearerError::Missing),
    };
    let claims = verifier.verify(token).await.map_err(BearerError::Invalid)?;
    let mut proofs = headers.get_all("dpop").iter();
    let proof = match (proofs.next(), proofs.next()) {
        (None, _) => None,
        (Some(p), None) => Some(
            p.to_str()
                .map_err(|_| BearerError::Invalid(VerifyError::Dpop("the DPoP header is not ASCII".into())))?,
        ),
        (Some(_), Some(_)) => return Err(BearerError::Invalid(VerifyError::Dpop("send one DPoP header".into()))),
    };
    // The URL the client addressed: the configured public URL, else this
    // request's Host over https or http.
    let path = uri.path();
    let urls: Vec<String> = match &verifier.config().public_url {
        Some(base) => vec![format!("{}{path}", base.trim_end_matches('/'))],
        None => headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|host| vec![format!("https://{host}{path}"), format!("http://{host}{path}")])
            .unwrap_or_default(),
    };
    verifier
        .check_sender(token, &claims, dpop_scheme, proof, method.as_str(), &urls)
        .map_err(BearerError::Invalid)?;
    verifier
        .check_certificate(&claims, certificate.map(|c| c.0.as_slice()))
        .map_err(BearerError::Invalid)?;
    Ok(Verified(claims))
}

impl<S> FromRequestParts<S> for Verified
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BearerError> {
        // Already verified by `require_bearer` on this route: reuse it.
        if let Some(v) = parts.extensions.get::<Verified>() {
            return Ok(v.clone());
        }
        verify_headers(
            &Arc::<Verifier>::from_ref(state),
            &parts.method,
            &parts.uri,
            &parts.headers,
            parts.extensions.get(),
        )
        .await
    }
}

/// Middleware for a whole router: refuses requests without a valid bearer
/// token (RFC 6750) and leaves the claims in the request extensions, where
/// the [`Verified`] extractor finds them.
///
/// ```ignore
/// let protected = Router::new().route("/x", get(handler))
///     .layer(axum::middleware::from_fn_with_state(verifier.clone(), appauth::verify::require_bearer));
/// ```
pub async fn require_bearer(
    axum::extract::State(verifier): axum::extract::State<Arc<Verifier>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match verify_headers(
        &verifier,
        req.method(),
        req.uri(),
        req.headers(),
        req.extensions().get(),
    )
    .await
    {
        Ok(v) => {
            req.extensions_mut().insert(v);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

impl Verified {
    /// 403 `insufficient_scope` unless a rule grants `role_id` on `scope_id`.
    pub fn require_role(
        &self,
        role_id: &str,
        scope_id: &str,
        tree: &ScopeTree,
    ) -> Result<&AccessTokenClaims, BearerError> {
        if self.0.grants_role(role_id, scope_id, tree) {
            Ok(&self.0)
        } else {
            Err(BearerError::Insufficient(format!(
                "role {role_id} on scope {scope_id} is required"
            )))
        }
    }

    /// 403 `insufficient_scope` unless a rule grants `permission` on `scope_id`.
    pub fn require_permission(
        &self,
        permission: &str,
        scope_id: &str,
        tree: &ScopeTree,
    ) -> Result<&AccessTokenClaims, BearerError> {
        if self.0.grants_permission(permission, scope_id, tree) {
            Ok(&self.0)
        } else {
            Err(BearerError::Insufficient(format!(
                "permission {permission} on scope {scope_id} is required"
            )))
        }
    }

    /// 403 `insufficient_scope` unless a rule grants `role_id` on the scope
    /// whose ids from the tenant down are `path`, or on an ancestor of it.
    pub fn require_role_on_path<S: AsRef<str>>(
        &self,
        role_id: &str,
        path: &[S],
    ) -> Result<&AccessTokenClaims, BearerError> {
        if self.0.grants_role_on_path(role_id, path) {
            Ok(&self.0)
        } else {
            let scope = path.last().map_or("", |s| s.as_ref());
            Err(BearerError::Insufficient(format!(
                "role {role_id} on scope {scope} is required"
            )))
        }
    }

    /// 403 `insufficient_scope` unless a rule grants `permission` on the
    /// scope whose ids from the tenant down are `path` (DESIGN §5): no scope
    /// tree needed, the rule claims carry their own paths.
    pub fn require_permission_on_path<S: AsRef<str>>(
        &self,
        permission: &str,
        path: &[S],
    ) -> Result<&AccessTokenClaims, BearerError> {
        if self.0.grants_permission_on_path(permission, path) {
            Ok(&self.0)
        } else {
            let scope = path.last().map_or("", |s| s.as_ref());
            Err(BearerError::Insufficient(format!(
                "permission {permission} on scope {scope} is required"
            )))
        }
    }
}
