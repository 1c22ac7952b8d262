//! Which routes a listener serves, and the middleware order.

use crate::http::{SharedState, admin, middleware, public};
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// What a listener serves. Without `server.admin_listen` one listener
/// serves [`Plane::Both`]; with it, the public listener serves
/// [`Plane::Public`] and the admin listener [`Plane::Admin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plane {
    Both,
    /// OAuth, discovery, JWKS, health; 404 for everything else.
    Public,
    /// The admin API, console, OpenAPI document, metrics and health, plus
    /// the token endpoint, from which the console and the admin CLI get
    /// their own tokens.
    Admin,
}

impl Plane {
    /// Every plane answers `POST /oauth/token`.
    pub fn serves_token(self) -> bool {
        true
    }

    pub fn name(self) -> &'static str {
        match self {
            Plane::Both => "public+admin",
            Plane::Public => "public",
            Plane::Admin => "admin",
        }
    }
}

pub fn router(state: SharedState, plane: Plane) -> Router {
    let routes = match plane {
        Plane::Both => public::router().merge(admin::router(&state.config)),
        Plane::Public => public::router(),
        Plane::Admin => admin::router(&state.config)
            .merge(public::token::router())
            .merge(public::health::router()),
    };
    routes
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::access_log,
        ))
        .with_state(state)
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    let body =
        serde_json::json!({"code": 404, "message": format!("no route for {method} {}", uri.path()), "details": null});
    (StatusCode::NOT_FOUND, axum::Json(body))
}
