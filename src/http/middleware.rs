//! The middleware every routed request passes: its request id (request
//! extension and `X-Request-Id`), its latency and its access line. The
//! token endpoint's direct path ends requests the same way, through
//! [`Started`].

use crate::http::SharedState;
use crate::telemetry::access::Started;
use crate::telemetry::latency::RouteClass;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// The middleware: gives every request its id (request extension and
/// `X-Request-Id`) and writes its access line (not for a health probe that
/// succeeded).
pub async fn access_log(
    axum::extract::State(state): axum::extract::State<SharedState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Started::now(&*state);
    req.extensions_mut().insert(started.id);
    if !state.access_log.enabled() {
        let route = RouteClass::of(req.uri().path());
        let resp = next.run(req).await;
        return started.finish_quiet(&*state, route, resp);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    if is_probe(&path) && resp.status().is_success() {
        // A load balancer checks twice a second per instance: 170,000
        // identical lines a day that say nothing. A failing probe is logged.
        return started.finish_quiet(&*state, RouteClass::of(&path), resp);
    }
    started.finish(&*state, method.as_str(), &path, resp)
}

/// Health probes, whose successful answers get no access line.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}
