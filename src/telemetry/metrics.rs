//! Prometheus metrics, encoded by `prometheus-client` (the Prometheus
//! project's Rust client) in the OpenMetrics text format, which Prometheus
//! negotiates by the response's `Content-Type`.
//!
//! Nothing on the request path takes a lock: counters are the crate's
//! `Counter` (one atomic add), the per-code token-error counters are taken
//! out of their family once at start-up, and the latency histogram keeps
//! its own atomics (see [`super::latency`]). The registry is per `App`,
//! not global, so two instances in one test process never share counts.

use super::latency::{Latency, RouteClass};
use super::process::ProcessCollector;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The media type of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

type Labels = [(&'static str, &'static str); 1];

pub struct Metrics {
    registry: Registry,
    pub tokens_issued: Counter,
    /// One handle per [`TOKEN_ERROR_CODES`] entry, shared with the family.
    token_errors: Vec<Counter>,
    pub revocations: Counter,
    pub redis_errors: Counter,
    pub redis_repairs: Counter,
    pub admin_writes: Counter,
    applications: Gauge,
    latency: Arc<Latency>,
    drops: Arc<LogDrops>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        // `register` ends each help text with a full stop of its own.
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let tokens_issued = counter(&mut registry, "appauth_tokens_issued", "Access tokens issued");
        let errors = Family::<Labels, Counter>::default();
        registry.register(
            "appauth_token_errors",
            "Token endpoint errors by OAuth error code",
            errors.clone(),
        );
        // Created up front: every code is exposed from the start (at 0), and
        // the request path keeps a handle instead of a family lookup.
        let token_errors = TOKEN_ERROR_CODES
            .iter()
            .map(|code| errors.get_or_create(&[("error", *code)]).clone())
            .collect();
        let revocations = counter(&mut registry, "appauth_revocations", "Tokens revoked by jti");
        let redis_errors = counter(&mut registry, "appauth_redis_errors", "Failed Redis operations");
        let redis_repairs = counter(
            &mut registry,
            "appauth_redis_repairs",
            "Revocation records restored to Redis after it lost them (restart, old snapshot, FLUSHALL, eviction)",
        );
        let admin_writes = counter(&mut registry, "appauth_admin_writes", "Acknowledged admin writes");
        let applications = Gauge::default();
        registry.register("appauth_applications", "Registered applications", applications.clone());
        let build = Family::<Labels, Gauge>::default();
        build.get_or_create(&[("version", env!("CARGO_PKG_VERSION"))]).set(1);
        registry.register("appauth_build_info", "The running appauth (always 1)", build);
        let latency = Arc::new(Latency::default());
        registry.register_collector(Box::new(latency.clone()));
        let drops = Arc::new(LogDrops::default());
        registry.register_collector(Box::new(drops.clone()));
        registry.register_collector(Box::new(ProcessCollector));
        Metrics {
            registry,
            tokens_issued,
            token_errors,
            revocations,
            redis_errors,
            redis_repairs,
            admin_writes,
            applications,
            latency,
            drops,
        }
    }
}

impl Metrics {
    /// Records one request's latency (the access-log middleware calls it
    /// for every request, logged or not).
    pub fn observe(&self, route: RouteClass, micros: u64) {
        self.latency.observe(route, micros);
    }

    pub fn count_token(&self, outcome: Result<(), &crate::error::OAuthError>) {
        match outcome {
            Ok(()) => {
                self.tokens_issued.inc();
            }
            Err(e) => self.token_error(e.code()),
        }
    }

    pub fn token_error(&self, code: &str) {
        if let Some(i) = TOKEN_ERROR_CODES.iter().position(|c| *c == code) {
            self.token_errors[i].inc();
        }
    }

    /// Connects the binary's log writer, whose dropped lines are counted.
    pub fn count_log_drops(&self, counter: tracing_appender::non_blocking::ErrorCounter) {
        let _ = self.drops.writer.set(counter);
    }

    /// An access line dropped before reaching the writer (see `access`).
    pub fn access_line_dropped(&self) {
        self.access_lines_dropped(1);
    }

    /// Access lines dropped: by the access log, before its writer, or by
    /// its writer (whose own counter is not connected here).
    pub fn access_lines_dropped(&self, n: u64) {
        self.drops.access.fetch_add(n, Ordering::Relaxed);
    }

    pub fn log_lines_dropped(&self) -> u64 {
        self.drops.total()
    }

    /// The exposition, with `applications` as the current count.
    pub fn render(&self, applications: usize) -> String {
        self.applications.set(i64::try_from(applications).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail, nor can any collector here.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        out
    }
}

/// Log lines dropped: by the lossy log writer (set by the binary) and by the
/// access log before reaching it. Read at scrape time, so a collector.
#[derive(Debug, Default)]
struct LogDrops {
    writer: OnceLock<tracing_appender::non_blocking::ErrorCounter>,
    access: AtomicU64,
}

impl LogDrops {
    fn total(&self) -> u64 {
        self.writer.get().map_or(0, |c| c.dropped_lines() as u64) + self.access.load(Ordering::Relaxed)
    }
}

impl Collector for LogDrops {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(self.total());
        let metric = encoder.encode_descriptor(
            "appauth_log_lines_dropped",
            "Log lines dropped because the log writer fell behind (the access log never blocks a request).",
            None,
            MetricType::Counter,
        )?;
        counter.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_ends_with_eof_and_counts_what_was_recorded() {
        let m = Metrics::default();
        m.tokens_issued.inc();
        m.token_error("invalid_client");
        m.token_error("not_a_code");
        m.observe(RouteClass::Token, 150);
        m.access_line_dropped();
        let text = m.render(3);
        assert!(text.ends_with("# EOF\n"), "{text}");
        for line in [
            "appauth_tokens_issued_total 1",
            "appauth_token_errors_total{error=\"invalid_client\"} 1",
            "appauth_token_errors_total{error=\"server_error\"} 0",
            "appauth_applications 3",
            "appauth_log_lines_dropped_total 1",
            "appauth_request_duration_seconds_bucket{le=\"0.0001\",route=\"token\"} 0",
            "appauth_request_duration_seconds_bucket{le=\"0.00025\",route=\"token\"} 1",
            "appauth_request_duration_seconds_bucket{le=\"+Inf\",route=\"token\"} 1",
            "appauth_request_duration_seconds_count{route=\"token\"} 1",
            "# TYPE appauth_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
