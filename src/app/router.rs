//! The HTTP surface: every route, its fallback and the middleware order.

use super::*;

pub fn router(state: SharedState) -> Router {
    let admin = Router::new()
        .merge(routes::apps::router())
        .merge(routes::access_rules::router())
        .merge(routes::scopes::router())
        .merge(routes::audit::router());
    Router::new()
        .merge(admin)
        .merge(routes::token::router())
        .merge(routes::revoke::router())
        .merge(routes::introspect::router())
        .merge(routes::metadata::router())
        .merge(routes::openapi::router(&state.config.issuer))
        .merge(routes::console::router())
        .merge(routes::health::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::access_log,
        ))
        .with_state(state)
}

pub(super) async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    let body =
        serde_json::json!({"code": 404, "message": format!("no route for {method} {}", uri.path()), "details": null});
    (StatusCode::NOT_FOUND, axum::Json(body))
}
