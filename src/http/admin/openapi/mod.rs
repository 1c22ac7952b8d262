//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the admin API and
//! the token endpoints, generated from the handlers' annotations (utoipa).

mod constraints;
mod links;

use crate::http::SharedState;
use crate::http::admin;
use crate::http::public;
use crate::http::schema::{ApiErrorBody, CompatResponse, OAuthErrorBody, RevokeForm, TokenForm, TokenResponse};
use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub fn router(config: &crate::config::Config) -> Router<SharedState> {
    let doc = document(config).to_string();
    Router::new().route(
        "/api/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], doc) }
        }),
    )
}

/// The served document: the handlers' annotations, then the constraints
/// the server's parsers enforce (see `constraints`).
pub fn document(config: &crate::config::Config) -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    constraints::apply(&mut doc, config);
    links::apply(&mut doc);
    doc
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

/// The answers every operation of a kind can give, added where an
/// operation does not document them itself, so the document lists every
/// status the server can return: the admin API's authentication (401),
/// permission (403), rate limit (429), body limits (400, 413, 415) and, on
/// writes, store outage (503; reads come from memory); the OAuth endpoints'
/// form and client errors.
struct StandardResponses;

fn error_response(description: &str, schema: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::Content::new(Some(utoipa::openapi::Ref::from_schema_name(schema))),
        )
        .build()
        .into()
}

impl Modify for StandardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let oauth = path.starts_with("/oauth/") || path == "/api/v1/token";
            // (operation, takes a JSON body, writes to the store)
            let ops = [
                (&mut item.get, false, false),
                (&mut item.post, true, true),
                (&mut item.patch, true, true),
                (&mut item.delete, false, true),
            ];
            for (op, has_body, writes) in ops {
                let Some(op) = op.as_mut() else { continue };
                let mut add = |status: &str, description: &str| {
                    let schema = if oauth { "OAuthErrorBody" } else { "ApiErrorBody" };
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description, schema));
                };
                if oauth {
                    add(
                        "400",
                        "Malformed, duplicated or unknown parameters (invalid_request and the RFC 6749 section 5.2 codes)",
                    );
                    add("401", "Client authentication failed (invalid_client)");
                    add("405", "Only POST is allowed");
                    add("413", "Body larger than server.max_body_bytes");
                    add(
                        "429",
                        "Too many failed client authentications from this address; see Retry-After",
                    );
                    add(
                        "503",
                        "temporarily_unavailable: a check the request needs cannot answer now (e.g. client assertion replay ledger)",
                    );
                } else {
                    add(
                        "401",
                        "Missing, malformed, expired, revoked or foreign-audience bearer token",
                    );
                    add(
                        "403",
                        "Missing permission, or the target is beyond the caller's ceiling",
                    );
                    add("429", "Too many admin requests from this caller; see Retry-After");
                    if writes {
                        add("503", "The store cannot take writes right now; nothing was changed");
                    }
                    if has_body {
                        add("400", "Invalid JSON, unknown field, or a value outside its constraints");
                        add("413", "Body larger than server.max_body_bytes");
                        add("415", "Content-Type must be application/json");
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "appauth", description = "OAuth 2.0 client-credentials token server: token endpoints and admin API"),
    paths(
        public::token::token, public::token::compat_token, public::revoke::revoke, public::introspect::introspect,
        admin::apps::list, admin::apps::create, admin::apps::read, admin::apps::update, admin::apps::remove, admin::apps::regenerate,
        admin::federated::list, admin::federated::add, admin::federated::remove,
        admin::access_rules::list, admin::access_rules::create, admin::access_rules::read, admin::access_rules::remove, admin::access_rules::roles,
        admin::scopes::list, admin::scopes::create, admin::scopes::read, admin::scopes::remove,
        admin::audit::list, admin::backup::backup,
    ),
    components(schemas(ApiErrorBody, OAuthErrorBody, TokenForm, TokenResponse, CompatResponse, RevokeForm)),
    modifiers(&BearerAuth, &StandardResponses),
)]
pub struct ApiDoc;
