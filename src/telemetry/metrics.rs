//! Prometheus counters (text exposition format 0.0.4), rendered by hand:
//! a handful of atomics needs no metrics framework on the token path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Access lines dropped before reaching the writer (see `access`).
    pub access_lines_dropped: AtomicU64,
}

impl Metrics {
    pub fn log_lines_dropped(&self) -> u64 {
        self.log_dropped.get().map_or(0, |c| c.dropped_lines() as u64)
            + self.access_lines_dropped.load(Ordering::Relaxed)
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
