//! Wire types both planes' handlers name in their OpenAPI annotations and
//! the OpenAPI registry lists: kept here so that the registry (which
//! imports every handler) and the handlers never import each other.

use serde::Serialize;
use utoipa::ToSchema;

/// Admin API error body.
#[derive(Serialize, ToSchema)]
pub struct ApiErrorBody {
    pub code: u16,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

/// RFC 6749 §5.2 error body.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    pub error: String,
    pub error_description: String,
}

/// RFC 6749 §4.4.2 token request (form-encoded).
#[derive(Serialize, ToSchema)]
pub struct TokenForm {
    /// `client_credentials`
    pub grant_type: String,
    /// With `client_secret`, when not using HTTP Basic.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated role ids to narrow the token to.
    pub scope: Option<String>,
    /// RFC 8707 resource indicator (an allowed audience).
    pub resource: Option<String>,
    /// An allowed audience.
    pub audience: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (private_key_jwt, RFC 7523).
    pub client_assertion_type: Option<String>,
    /// A JWT signed with a key registered on the application (RFC 7523 section 2.2),
    /// or a token from a trusted external issuer (a federated credential).
    pub client_assertion: Option<String>,
    /// Token exchange (RFC 8693): the workload's own token from a trusted issuer.
    pub subject_token: Option<String>,
    /// `urn:ietf:params:oauth:token-type:jwt` or `…:id_token`.
    pub subject_token_type: Option<String>,
}

/// RFC 6749 §5.1 token response.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`
    pub token_type: String,
    pub expires_in: i64,
    pub scope: Option<String>,
    /// Token exchange only: `urn:ietf:params:oauth:token-type:access_token`.
    pub issued_token_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// RFC 7009 / RFC 7662 request (form-encoded).
#[derive(Serialize, ToSchema)]
pub struct RevokeForm {
    pub token: String,
    /// `access_token`; `refresh_token` gets `unsupported_token_type` at /oauth/revoke.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (private_key_jwt, RFC 7523).
    pub client_assertion_type: Option<String>,
    /// A JWT signed with a key registered on the application (RFC 7523 section 2.2).
    pub client_assertion: Option<String>,
}
