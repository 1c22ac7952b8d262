//! Liveness, readiness and metrics.

use super::SharedState;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(state): State<SharedState>) -> Response {
    let store = state.directory.store().clone();
    let store_ok = tokio::task::spawn_blocking(move || store.ping())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    let now = crate::domain::now_ms() / 1000;
    let keys_ok = state.issuer.keys().signing_key(now).is_some();
    let ready = store_ok && keys_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": {"store": word(store_ok), "signingKey": word(keys_ok)},
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<SharedState>) -> Response {
    let apps = state.directory.read().apps.len();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(apps),
    )
        .into_response()
}
