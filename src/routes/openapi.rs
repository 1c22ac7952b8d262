//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the admin API and
//! the token endpoints, generated from the handlers' annotations (utoipa).

use super::SharedState;
use axum::Router;
use axum::routing::get;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

pub fn router() -> Router<SharedState> {
    let doc = ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into());
    Router::new().route(
        "/api/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], doc) }
        }),
    )
}

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
}

/// RFC 6749 §5.1 token response.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`
    pub token_type: String,
    pub expires_in: i64,
    pub scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "appauth", description = "OAuth 2.0 client-credentials token server: token endpoints and admin API"),
    paths(
        super::token::token, super::token::compat_token, super::revoke::revoke, super::introspect::introspect,
        super::apps::list, super::apps::create, super::apps::read, super::apps::update, super::apps::remove, super::apps::regenerate,
        super::access_rules::list, super::access_rules::create, super::access_rules::read, super::access_rules::remove, super::access_rules::roles,
        super::scopes::list, super::scopes::create, super::scopes::read, super::scopes::remove,
        super::audit::list,
    ),
    components(schemas(ApiErrorBody, OAuthErrorBody, TokenForm, TokenResponse, CompatResponse, RevokeForm)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// RFC 7009 / RFC 7662 request (form-encoded).
#[derive(Serialize, ToSchema)]
pub struct RevokeForm {
    pub token: String,
    /// `access_token`; `refresh_token` gets `unsupported_token_type` at /oauth/revoke.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}
