//! Liveness and readiness (`/healthz`, `/readyz`): served on both planes,
//! so a load balancer and an operator's probe each check their own.

use crate::http::SharedState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
}

async fn readyz(State(state): State<SharedState>) -> Response {
    let store = state.directory.store().clone();
    let store_ok = tokio::task::spawn_blocking(move || store.ping())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    let now = crate::domain::now_ms() / 1000;
    let keys_ok = state.issuer.keys().signing_key(now).is_some();
    // A down Redis degrades revocation lookups (they fall back to the
    // store) but tokens are still issued, so it does not make us unready.
    let cache = match state.revocations.health().await {
        crate::revocation::CacheHealth::Ok => "ok",
        crate::revocation::CacheHealth::Degraded => "degraded",
    };
    let writable = state.directory.store().healthy();
    let ready = store_ok && keys_ok && writable;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    let store_word = if !store_ok {
        "failing"
    } else if writable {
        "ok"
    } else {
        "writes failing"
    };
    let mut checks = json!({"store": store_word, "signingKey": word(keys_ok)});
    checks[state.revocations.cache_name()] = cache.into();
    let status_word = match (ready, cache) {
        (false, _) => "not ready",
        (true, "ok") => "ready",
        (true, _) => "degraded",
    };
    let body = json!({"status": status_word, "checks": checks});
    (status, axum::Json(body)).into_response()
}
