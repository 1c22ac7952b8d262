//! `GET /console`: the web console (the Applications and Audit log pages), embedded in the
//! binary. Served with a strict Content-Security-Policy: scripts and styles
//! from this origin only, nothing inline, no framing, requests only to this
//! origin. The page talks to the admin API with a token it keeps in memory.

use crate::http::SharedState;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../../../assets/console/index.html");
const APP_JS: &str = include_str!("../../../assets/console/app.js");
const APP_CSS: &str = include_str!("../../../assets/console/app.css");
const AUDIT_JS: &str = include_str!("../../../assets/console/audit.js");
const FAVICON: &[u8] = include_bytes!("../../../assets/console/favicon.ico");

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/favicon.ico", get(|| async { asset("image/x-icon", FAVICON) }))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route(
            "/console/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/console/audit.js",
            get(|| async { asset("text/javascript; charset=utf-8", AUDIT_JS) }),
        )
        .route(
            "/console/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
}

fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    // Assets are embedded in the binary: an upgrade changes them, so revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
