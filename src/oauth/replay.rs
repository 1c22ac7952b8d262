//! Single use of client assertions (RFC 7523 §3, item 7: "the authorization
//! server MAY ensure that JWTs are not replayed by maintaining the set of
//! used jti values for the length of time for which the JWT would be
//! considered valid"). appauth always does: a `jti` is remembered per client
//! until the assertion's `exp` (plus leeway), and a second use is refused.
//!
//! With Redis configured the ledger is Redis (`SET NX` with an expiry), so
//! every instance refuses an assertion another one accepted; without it an
//! in-process map serves one instance. A ledger that cannot answer refuses
//! the assertion (fail closed): accepting it might accept a replay.

use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;

/// Clock leeway on assertion times, and how much longer a `jti` is kept.
pub const LEEWAY_SECONDS: i64 = 30;

/// One role: remember that a client used a `jti`.
pub trait JtiLedger: Send + Sync + 'static {
    /// `Ok(true)` the first time (`client_id`, `jti`) is seen before
    /// `expires` (Unix seconds), `Ok(false)` for a replay.
    fn first_use<'a>(&'a self, client_id: &'a str, jti: &'a str, expires: i64) -> BoxFuture<'a, Result<bool, String>>;
}

/// Redis keys hold a digest of the `jti`: clients choose it, so it is never
/// used raw in a key name.
fn ledger_key(client_id: &str, jti: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, jti.as_bytes());
    format!(
        "appauth:assertion:jti:{client_id}:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// One instance's memory: lapsed entries are pruned at most once a second,
/// and past `MAX_ENTRIES` live ones assertions are refused (503) rather
/// than letting one client grow the map without bound.
#[derive(Default)]
pub struct MemoryLedger {
    seen: Mutex<(HashMap<String, i64>, i64)>,
}

const MAX_ENTRIES: usize = 200_000;

impl JtiLedger for MemoryLedger {
    fn first_use<'a>(&'a self, client_id: &'a str, jti: &'a str, expires: i64) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let now = crate::domain::now_ms() / 1000;
            let mut guard = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let (seen, pruned_at) = &mut *guard;
            if seen.len() >= 4096 && *pruned_at < now {
                seen.retain(|_, until| *until > now);
                *pruned_at = now;
            }
            if seen.len() >= MAX_ENTRIES {
                return Err(format!("{MAX_ENTRIES} live assertion ids remembered; refusing more"));
            }
            let key = ledger_key(client_id, jti);
            match seen.get(&key) {
                Some(until) if *until > now => Ok(false),
                _ => {
                    seen.insert(key, expires);
                    Ok(true)
                }
            }
        })
    }
}

/// For a PostgreSQL cluster without Redis: instances could not see each
/// other's `jti`s, so assertions are refused (503, and the log says why)
/// rather than replayable once per instance.
pub struct NoSharedLedger;

impl JtiLedger for NoSharedLedger {
    fn first_use<'a>(&'a self, _: &'a str, _: &'a str, _: i64) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async {
            Err("private_key_jwt in a PostgreSQL cluster needs redis.url, so that every instance refuses a replayed assertion".to_owned())
        })
    }
}

/// Shared by every instance that uses the same Redis.
pub struct RedisLedger {
    conn: redis::aio::ConnectionManager,
}

impl RedisLedger {
    /// Connects lazily: the manager reconnects on its own, and a ledger that
    /// cannot reach Redis refuses assertions rather than blocking start-up.
    pub fn new(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL: {e}"))?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_millis(250)))
            .set_response_timeout(Some(std::time::Duration::from_millis(250)));
        let conn =
            redis::aio::ConnectionManager::new_lazy_with_config(client, cfg).map_err(|e| format!("Redis: {e}"))?;
        Ok(Self { conn })
    }
}

impl JtiLedger for RedisLedger {
    fn first_use<'a>(&'a self, client_id: &'a str, jti: &'a str, expires: i64) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let set: Option<String> = redis::cmd("SET")
                .arg(ledger_key(client_id, jti))
                .arg(1)
                .arg("NX")
                // Relative, with a margin: Redis's clock may run ahead of
                // ours (and EXAT would need Redis 6.2).
                .arg("EX")
                .arg((expires - crate::domain::now_ms() / 1000).max(0) + 60)
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("Redis: {e}"))?;
            Ok(set.is_some())
        })
    }
}
