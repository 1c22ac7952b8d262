//! Paths other parts of the server name (the token endpoint's fast path,
//! latency classes, assertion audiences), so none of them imports a handler.

/// The token endpoint (RFC 6749 §3.2).
pub const TOKEN_PATH: &str = "/oauth/token";
