//! Logging (tracing) and Prometheus metrics.
//!
//! One access line per request (method, path, status, latency, client ID when
//! known, request id) and never a secret, an `Authorization` header, a token or a body:
//! handlers only ever hand the logger a client ID, via [`LoggedClient`].

use crate::config::{LogConfig, LogFormat};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing_subscriber::EnvFilter;

/// What `init` hands back: the guard that flushes the log writer on drop,
/// and the count of lines the writer dropped.
pub struct Logging {
    pub guard: tracing_appender::non_blocking::WorkerGuard,
    pub dropped: tracing_appender::non_blocking::ErrorCounter,
}

/// Installs the process-wide subscriber (binary only; tests read the
/// binary's output). The writer is non-blocking and lossy: when stdout
/// cannot keep up, lines are dropped rather than stalling requests — and
/// counted (`appauth_log_lines_dropped_total`, plus one warning line).
pub fn init(log: &LogConfig) -> Logging {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(64 * 1024)
        .finish(std::io::stdout());
    let dropped = writer.error_counter();
    let filter = EnvFilter::new(format!("{},sled=warn,hyper=warn,rustls=warn,redis=warn", log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match log.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
    Logging { guard, dropped }
}

/// Response extension carrying the client ID a request authenticated as (or
/// claimed, when it has an ID's shape) for the access log.
#[derive(Clone)]
pub struct LoggedClient(pub String);

/// Request extension: the peer address of the connection (source address
/// for abuse limits and the audit log).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Request extension: this request's id, also in the `X-Request-Id`
/// response header, the access log line and audit records.
#[derive(Clone, Copy, Debug)]
pub struct RequestId(pub RequestIdValue);

/// A request id: a random per-process prefix and a counter, so making one
/// costs an atomic increment (the token endpoint pays it on every request).
#[derive(Clone, Copy, Debug)]
pub struct RequestIdValue {
    prefix: u32,
    n: u64,
}

const X_REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

impl RequestIdValue {
    /// `pppppppp-nnnnnnnnnnnn` in lowercase hex, without the formatting machinery.
    fn hex(&self) -> [u8; 21] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 21];
        for i in 0..8 {
            out[i] = HEX[((self.prefix >> (28 - 4 * i)) & 0xf) as usize];
        }
        for i in 0..12 {
            out[9 + i] = HEX[((self.n >> (44 - 4 * i)) & 0xf) as usize];
        }
        out
    }
}

impl std::fmt::Display for RequestIdValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.hex()).unwrap_or("-"))
    }
}

pub struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut b = [0u8; 4];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        Self {
            prefix: u32::from_be_bytes(b),
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    pub fn next(&self) -> RequestIdValue {
        RequestIdValue {
            prefix: self.prefix,
            n: self.next.fetch_add(1, Ordering::Relaxed),
        }
    }
}

pub async fn access_log(
    axum::extract::State(state): axum::extract::State<crate::routes::SharedState>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = state.request_ids.next();
    req.extensions_mut().insert(RequestId(id));
    let set_id = |resp: &mut Response| {
        if let Ok(v) = axum::http::HeaderValue::from_bytes(&id.hex()) {
            resp.headers_mut().insert(X_REQUEST_ID, v);
        }
    };
    if !tracing::enabled!(target: "appauth::access", tracing::Level::INFO) {
        let mut resp = next.run(req).await;
        set_id(&mut resp);
        return resp;
    }
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    set_id(&mut resp);
    let client = resp.extensions().get::<LoggedClient>().map_or("-", |c| c.0.as_str());
    tracing::info!(
        target: "appauth::access",
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        client_id = client,
        request_id = %id,
        "request"
    );
    resp
}

/// OAuth error codes counted separately (RFC 6749 §5.2 and extensions).
pub const TOKEN_ERROR_CODES: [&str; 12] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "unsupported_token_type",
    "invalid_token",
    "insufficient_scope",
    "temporarily_unavailable",
    "server_error",
];

#[derive(Default)]
pub struct Metrics {
    pub tokens_issued: AtomicU64,
    token_errors: [AtomicU64; TOKEN_ERROR_CODES.len()],
    pub revocations: AtomicU64,
    pub redis_errors: AtomicU64,
    pub redis_repairs: AtomicU64,
    pub admin_writes: AtomicU64,
    /// Lines the lossy log writer dropped (set by the binary).
    pub log_dropped: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter>,
}

impl Metrics {
    pub fn log_lines_dropped(&self) -> u64 {
        self.log_dropped.get().map_or(0, |c| c.dropped_lines() as u64)
    }
}

impl Metrics {
    pub fn count_token(&self, outcome: Result<(), &crate::error::OAuthError>) {
        match outcome {
            Ok(()) => {
                self.tokens_issued.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.token_error(e.code()),
        }
    }

    pub fn token_error(&self, code: &str) {
        if let Some(i) = TOKEN_ERROR_CODES.iter().position(|c| *c == code) {
            self.token_errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn render(&self, applications: usize) -> String {
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n");
        };
        counter(
            "appauth_tokens_issued_total",
            "Access tokens issued.",
            self.tokens_issued.load(Ordering::Relaxed),
        );
        counter(
            "appauth_revocations_total",
            "Tokens revoked by jti.",
            self.revocations.load(Ordering::Relaxed),
        );
        counter(
            "appauth_redis_errors_total",
            "Failed Redis operations.",
            self.redis_errors.load(Ordering::Relaxed),
        );
        counter(
            "appauth_redis_repairs_total",
            "Revocation records restored to Redis after it lost them (restart, old snapshot, FLUSHALL, eviction).",
            self.redis_repairs.load(Ordering::Relaxed),
        );
        counter(
            "appauth_log_lines_dropped_total",
            "Log lines dropped because the log writer fell behind (the access log never blocks a request).",
            self.log_lines_dropped(),
        );
        counter(
            "appauth_admin_writes_total",
            "Acknowledged admin writes.",
            self.admin_writes.load(Ordering::Relaxed),
        );
        let _ = write!(
            out,
            "# HELP appauth_token_errors_total Token endpoint errors by OAuth error code.\n# TYPE appauth_token_errors_total counter\n"
        );
        for (code, n) in TOKEN_ERROR_CODES.iter().zip(&self.token_errors) {
            let _ = writeln!(
                out,
                "appauth_token_errors_total{{error=\"{code}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = write!(
            out,
            "# HELP appauth_applications Registered applications.\n# TYPE appauth_applications gauge\nappauth_applications {applications}\n"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_hex_prefix_and_counter() {
        let v = RequestIdValue {
            prefix: 0x7b84_8083,
            n: 0x21,
        };
        assert_eq!(v.to_string(), "7b848083-000000000021");
        assert_eq!(v.to_string(), format!("{:08x}-{:012x}", v.prefix, v.n));
    }
}
