//! Discovery: RFC 8414 authorization server metadata and the RFC 7517 JWKS
//! of every published key. appauth is an OAuth 2.0 authorization server,
//! not an OpenID Provider (no ID tokens, no authorization endpoint). The
//! same RFC 8414 document is also served at
//! `/.well-known/openid-configuration`, because widely used clients
//! (openid-client 5) discover only there; it promises RFC 8414 members, not
//! a complete OpenID Connect Discovery document.

use crate::http::SharedState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/.well-known/jwks.json", get(jwks))
}

/// The metadata document. `response_types_supported` is omitted rather than
/// empty: there is no authorization endpoint (RFC 8414 §3.2).
/// `service_documentation` (the OpenAPI document) is named only when the
/// issuer's own listener serves it: on a private admin plane it is not
/// public, and a link that 404s helps nobody.
/// Token exchange (RFC 8693) is listed when an external issuer is trusted,
/// the mutual-TLS methods (RFC 8705 §2) and certificate-bound tokens when
/// enabled.
pub fn render(issuer: &str, scopes: &[&str], served: &Served) -> String {
    let algs: Vec<&str> = crate::oauth::assertion::ALGS.iter().map(|a| a.as_str()).collect();
    let mut methods = vec!["client_secret_basic", "client_secret_post", "private_key_jwt"];
    if served.tls_client_auth {
        methods.push("tls_client_auth");
    }
    if served.self_signed_tls_client_auth {
        methods.push("self_signed_tls_client_auth");
    }
    let exchange = served.token_exchange;
    let mut doc = serde_json::json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "grant_types_supported": if exchange {
            vec!["client_credentials", super::token::TOKEN_EXCHANGE]
        } else {
            vec!["client_credentials"]
        },
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
        // Admin bearer tokens are accepted too, but "bearer" is no
        // registered client authentication method (IANA), so it is not listed.
        "introspection_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "scopes_supported": scopes,
        "dpop_signing_alg_values_supported": algs,
    });
    if served.documented {
        doc["service_documentation"] = format!("{issuer}/api/openapi.json").into();
    }
    if served.tls_client_auth || served.self_signed_tls_client_auth {
        doc["tls_client_certificate_bound_access_tokens"] = true.into();
        // RFC 8705 §5: the same endpoints take client certificates (the
        // listener asks for one on every connection).
        doc["mtls_endpoint_aliases"] = serde_json::json!({
            "token_endpoint": format!("{issuer}/oauth/token"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        });
    }
    doc.to_string()
}

/// What the metadata announces beyond the fixed members.
#[derive(Debug, Clone, Copy, Default)]
pub struct Served {
    /// The issuer's listener serves the OpenAPI document.
    pub documented: bool,
    /// RFC 8693 token exchange (an external issuer is trusted).
    pub token_exchange: bool,
    pub tls_client_auth: bool,
    pub self_signed_tls_client_auth: bool,
}

fn json(body: String, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

async fn metadata(State(state): State<SharedState>) -> Response {
    json(state.metadata_json.clone(), "public, max-age=3600")
}

async fn jwks(State(state): State<SharedState>) -> Response {
    let now = crate::domain::now_ms() / 1000;
    // Short caching: verifiers must see a new key before it starts signing.
    json(state.issuer.keys().jwks_json(now), "public, max-age=60")
}
