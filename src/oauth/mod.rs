//! The OAuth side, independent of HTTP: the client-credentials grant and
//! client authentication (RFC 6749 §4.4, §2.3.1), and the abuse limits in
//! front of them (RFC 6585 §4).

pub mod assertion;
pub mod dpop;
pub mod grant;
pub mod mtls;
pub mod replay;
pub mod shared_failures;
pub mod throttle;

/// A Redis connection for the hot-path helpers (replay ledger, shared
/// failure counts): made lazily, so appauth starts and issues tokens with
/// Redis down, reconnecting on its own, and answering within 250 ms or not
/// at all (each caller decides what no answer means).
fn lazy_redis(url: &str) -> Result<redis::aio::ConnectionManager, String> {
    let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL: {e}"))?;
    let cfg = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_millis(250)))
        .set_response_timeout(Some(std::time::Duration::from_millis(250)));
    redis::aio::ConnectionManager::new_lazy_with_config(client, cfg).map_err(|e| format!("Redis: {e}"))
}
