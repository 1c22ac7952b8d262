//! `GET /metrics`: Prometheus text exposition (admin plane: it names
//! clients' failure counts and the server's internals).

use crate::http::SharedState;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn router() -> Router<SharedState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<SharedState>) -> Response {
    let apps = state.directory.read().apps.len();
    (
        [(header::CONTENT_TYPE, crate::telemetry::METRICS_CONTENT_TYPE)],
        state.metrics.render(apps),
    )
        .into_response()
}
