//! The public plane: what API clients and resource servers reach. OAuth
//! (token RFC 6749 §4.4, revocation RFC 7009, introspection RFC 7662),
//! discovery (RFC 8414), JWKS (RFC 7517) and health.

pub mod client_auth;
pub mod health;
pub mod introspect;
pub mod metadata;
pub mod oauth;
pub mod revoke;
pub mod token;

use crate::http::SharedState;
use axum::Router;

/// Every route of the public plane.
pub fn router() -> Router<SharedState> {
    Router::new()
        .merge(token::router())
        .merge(revoke::router())
        .merge(introspect::router())
        .merge(metadata::router())
        .merge(health::router())
}
