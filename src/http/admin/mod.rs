//! The admin plane: what operators reach. The admin API (DESIGN §4), the
//! web console, the OpenAPI document and Prometheus metrics. Every admin
//! API request authenticates with a bearer token (`http::bearer`).

pub mod access_rules;
pub mod apps;
pub mod audit;
pub mod backup;
pub mod console;
pub mod extract;
pub mod federated;
pub mod metrics;
pub mod openapi;
pub mod scopes;

use crate::http::SharedState;
use axum::Router;

/// Every route of the admin plane.
pub fn router(config: &crate::config::Config) -> Router<SharedState> {
    Router::new()
        .merge(apps::router())
        .merge(federated::router())
        .merge(access_rules::router())
        .merge(scopes::router())
        .merge(audit::router())
        .merge(backup::router())
        .merge(openapi::router(config))
        .merge(console::router())
        .merge(metrics::router())
}
