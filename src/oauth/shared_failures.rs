//! Failed-authentication counts shared by every instance through Redis, so
//! the budgets of `limits.*_failures_per_minute` hold for the cluster, not
//! once per instance (N instances would otherwise allow N times as many
//! guesses).
//!
//! Nothing is asked of Redis on the way in: each instance still decides
//! from its own table (one atomic load when nothing failed), so a request
//! without failures costs what it did. Each failure is counted in Redis
//! too (`INCR` with a one-minute expiry, per address and per client ID and
//! address), and the cluster-wide totals Redis answers are written back
//! into the local table. An instance therefore blocks an address once the
//! cluster as a whole is past the budget — at most one more attempt per
//! instance than the budget, the one that learns the total. When Redis
//! cannot answer, counting falls back to each instance's own (fail open,
//! and logged once): a down Redis must not lock every client out.

use std::sync::atomic::{AtomicBool, Ordering};

/// `KEYS[1]` the address's counter, `KEYS[2]` (optional) the (client ID,
/// address) counter. Returns both totals (0 when there is no second key).
const COUNT: &str = r"
local a = redis.call('INCR', KEYS[1])
if a == 1 then redis.call('EXPIRE', KEYS[1], 60) end
local c = 0
if KEYS[2] then
  c = redis.call('INCR', KEYS[2])
  if c == 1 then redis.call('EXPIRE', KEYS[2], 60) end
end
return {a, c}
";

pub struct SharedFailures {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    warned: AtomicBool,
}

/// Client IDs are caller-chosen: only a digest goes into a key name.
fn digest(s: &str) -> String {
    use base64::Engine;
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d.as_ref()[..12])
}

impl SharedFailures {
    pub fn new(url: &str) -> Result<Self, String> {
        let conn = super::lazy_redis(url)?;
        Ok(Self {
            conn,
            script: redis::Script::new(COUNT),
            warned: AtomicBool::new(false),
        })
    }

    /// Counts one failure from `address` (already reduced to its key, e.g.
    /// an IPv6 /64) and, when given, for `client_id` there; returns the
    /// cluster-wide totals of the current window, or `None` when Redis
    /// cannot answer.
    pub async fn count(&self, address: std::net::IpAddr, client_id: Option<&str>) -> Option<(u32, u32)> {
        let mut inv = self.script.key(format!("appauth:failures:addr:{address}"));
        if let Some(c) = client_id {
            inv.key(format!("appauth:failures:client:{address}:{}", digest(c)));
        }
        let mut conn = self.conn.clone();
        match inv.invoke_async::<(u32, u32)>(&mut conn).await {
            Ok(totals) => {
                self.warned.store(false, Ordering::Relaxed);
                Some(totals)
            }
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "failed authentications cannot be counted in Redis; each instance counts its own until it answers");
                }
                None
            }
        }
    }
}
