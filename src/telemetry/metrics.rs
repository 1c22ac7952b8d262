//! Prometheus metrics (text exposition format 0.0.4), rendered by hand: a
//! handful of atomics needs no metrics framework on the token path.
//! Counters, a request-latency histogram per route class, build info and
//! the standard `process_*` metrics (read from /proc when rendering).

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

/// Upper bounds of the latency buckets, in microseconds (100 µs … 1 s):
/// a token takes ~0.1–2 ms under load, an admin list up to ~20 ms.
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// What a request was, for the latency histogram's `route` label: a
/// closed set, so no path a client sends can add a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    Token,
    OAuth,
    Admin,
    Other,
}

impl RouteClass {
    const ALL: [RouteClass; 4] = [
        RouteClass::Token,
        RouteClass::OAuth,
        RouteClass::Admin,
        RouteClass::Other,
    ];

    pub fn of(path: &str) -> Self {
        if path == "/oauth/token" {
            Self::Token
        } else if path.starts_with("/oauth/") {
            Self::OAuth
        } else if path.starts_with("/api/") {
            Self::Admin
        } else {
            Self::Other
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::OAuth => "oauth",
            Self::Admin => "admin",
            Self::Other => "other",
        }
    }
}

/// One histogram: per-bucket counts (not cumulative: one add per request),
/// the last one for beyond every bound; made cumulative when rendered, and
/// `+Inf` and `_count` are their total, so a scrape is always consistent.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, micros: u64) {
        let i = LATENCY_BUCKETS_US
            .iter()
            .position(|b| micros <= *b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Metrics {
    latency: [Histogram; 4],
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
    /// Records one request's latency (the access-log middleware calls it
    /// for every request, logged or not).
    pub fn observe(&self, route: RouteClass, micros: u64) {
        self.latency[route as usize].observe(micros);
    }

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
        self.render_latency(&mut out);
        let _ = write!(
            out,
            "# HELP appauth_build_info The running appauth (always 1).\n# TYPE appauth_build_info gauge\nappauth_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        );
        render_process(&mut out);
        out
    }

    fn render_latency(&self, out: &mut String) {
        let name = "appauth_request_duration_seconds";
        let _ = write!(
            out,
            "# HELP {name} Time from request to response head, by route class (token: /oauth/token; oauth: revoke, introspect; admin: /api/).\n# TYPE {name} histogram\n"
        );
        for route in RouteClass::ALL {
            let h = &self.latency[route as usize];
            let label = route.label();
            let mut cumulative = 0;
            for (bound, n) in LATENCY_BUCKETS_US.iter().zip(&h.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{label}\",le=\"{}\"}} {cumulative}",
                    *bound as f64 / 1e6
                );
            }
            let count = cumulative + h.buckets[LATENCY_BUCKETS_US.len()].load(Ordering::Relaxed);
            let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = write!(
                out,
                "{name}_bucket{{route=\"{label}\",le=\"+Inf\"}} {count}\n{name}_sum{{route=\"{label}\"}} {sum}\n{name}_count{{route=\"{label}\"}} {count}\n"
            );
        }
    }
}

/// The standard process metrics, from /proc (Linux); left out elsewhere.
fn render_process(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    // Clock ticks are 100 per second on every Linux architecture appauth builds for.
    const TICKS: f64 = 100.0;
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        let _ = write!(
            out,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}\n",
            (utime + stime) as f64 / TICKS
        );
    }
    // VmRSS is in kB whatever the page size (16K and 64K pages exist).
    let rss_kb = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    if let Some(kb) = rss_kb {
        let _ = write!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n",
            kb * 1024
        );
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    if let (Some(start_ticks), Some(boot)) = (field(22), boot) {
        let _ = write!(
            out,
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}\n",
            boot as f64 + start_ticks as f64 / TICKS
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let _ = write!(
            out,
            "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {}\n",
            fds.count().saturating_sub(1) // the handle reading the directory
        );
    }
}
