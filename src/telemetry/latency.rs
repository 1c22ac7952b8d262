//! The request-latency histogram, one series per route class.
//!
//! `prometheus-client`'s own `Histogram` takes a mutex on every
//! `observe`, and every token request observes once: on two cores that is
//! a lock shared by every worker on the hottest path. So the counts live in
//! atomics here (one add per bucket hit, one for the sum) and the crate only
//! encodes them, through its `Collector` interface, when `/metrics` is read.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in microseconds (100 µs … 1 s):
/// a token takes ~0.1–2 ms under load, an admin list up to ~20 ms.
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// What a request was, for the histogram's `route` label: a closed set, so
/// no path a client sends can add a series.
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
        if path == crate::http::paths::TOKEN_PATH {
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
/// the last one for beyond every bound. The encoder makes them cumulative,
/// and `_count` is their total, so a scrape is always self-consistent.
#[derive(Debug, Default)]
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

/// `appauth_request_duration_seconds{route}`.
#[derive(Debug, Default)]
pub struct Latency {
    routes: [Histogram; RouteClass::ALL.len()],
}

impl Latency {
    pub fn observe(&self, route: RouteClass, micros: u64) {
        self.routes[route as usize].observe(micros);
    }
}

impl Collector for Latency {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "appauth_request_duration",
            "Time from request to response head, by route class (token: /oauth/token; oauth: revoke, introspect; admin: /api/).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for route in RouteClass::ALL {
            let h = &self.routes[route as usize];
            let bounds = LATENCY_BUCKETS_US.iter().map(|b| *b as f64 / 1e6).chain([f64::MAX]);
            let buckets: Vec<(f64, u64)> = bounds
                .zip(&h.buckets)
                .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
                .collect();
            let count = buckets.iter().map(|(_, n)| n).sum();
            let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            family
                .encode_family(&[("route", route.label())])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}
