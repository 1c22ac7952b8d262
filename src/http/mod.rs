//! HTTP: the server (connections, TLS, framing limits), the middleware, and
//! two planes. [`public`] is what API clients and resource servers reach:
//! OAuth (token, revoke, introspect), discovery, JWKS and health. [`admin`]
//! is what operators reach: the admin API, console, OpenAPI document and
//! metrics. With `server.admin_listen` each plane has its own listener;
//! without it one listener serves both. Handlers parse, call the domain,
//! and map the result, nothing else.
//!
//! Dependencies point one way: `server` → `router` → `public`/`admin` →
//! `schema`, `body`, `form`, `paths`, `state`; nothing below imports what
//! is above it.

pub mod admin;
pub mod bearer;
pub mod body;
pub mod form;
pub mod middleware;
pub mod origin;
pub mod paths;
pub mod public;
pub mod router;
pub mod schema;
pub mod server;
pub mod state;
pub mod tls;

pub use state::{AppState, SharedState};
