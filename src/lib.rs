//! appauth: an OAuth 2.0 client-credentials authorization server.
//!
//! Applications exchange a client ID and secret for a signed JWT access
//! token (RFC 6749 §4.4, RFC 9068); resource servers verify it offline with
//! the published JWKS. See DESIGN.md for the architecture and contract.

#![forbid(unsafe_code)]

pub mod admin_cli;
pub mod app;
#[cfg(feature = "loadgen")]
pub mod bench;
pub mod cli;
pub mod config;
pub mod connection;
pub mod directory;
pub mod domain;
pub mod error;
pub mod federation;
pub mod http;
pub mod list_pool;
pub mod listing;
pub mod oauth;
pub mod query;
pub mod revocation;
pub mod store;
pub mod telemetry;
pub mod token;
pub use appauth_verify as verify;

pub use app::App;
pub use config::Config;
