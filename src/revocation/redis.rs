//! The Redis revocation cache, for resource servers and scale-out.
//!
//! Key layout (documented in the README for subscribers):
//! - `appauth:revoked:jti:<jti>` = client ID, expiring when the token does
//!   (plus leeway);
//! - `appauth:revoked:client:<client_id>` = `<before>` (Unix s): tokens of
//!   that client with `iat < before` are revoked; expires with the last one;
//! - `appauth:revocations:generation` = an opaque id, replaced whenever
//!   Redis's contents may have differed from the store: appauth had to
//!   repair a record (restart, an old RDB or AOF, FLUSHALL, a deleted or
//!   evicted key, a cut-off older than the store's), Redis restarted (its
//!   `run_id` changed), or appauth reached it again after a failure. Twice a
//!   second appauth compares every live revocation key with the store **by
//!   value** (a Lua script: a missing key is written, a client cut-off older
//!   than the store's is raised — cut-offs only ever move later — and an
//!   expiry shorter than the record's is extended), then writes a new
//!   generation and publishes `{"type":"resync","generation":"…"}`. A
//!   subscriber that sees the generation change (or vanish) re-reads the
//!   keys and merges them (the later cut-off wins).
//! - channel `appauth:revocations`: one JSON message per revocation, e.g.
//!   `{"type":"token","jti":"…","clientId":"…","exp":1795454895}` or
//!   `{"type":"client","clientId":"…","before":1795451296,"expires":1795454956}`.

use super::{CacheError, Revocation, RevocationCache};
use arc_swap::ArcSwapOption;
use futures_util::future::{BoxFuture, FutureExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use appauth_verify::revocation::{CHANNEL, GENERATION_KEY};

pub fn jti_key(jti: &str) -> String {
    format!("appauth:revoked:jti:{jti}")
}

pub fn client_key(client_id: &str) -> String {
    format!("appauth:revoked:client:{client_id}")
}

fn key_of(r: &Revocation) -> String {
    match r {
        Revocation::Token { jti, .. } => jti_key(jti),
        Revocation::Client { client_id, .. } => client_key(client_id),
    }
}

pub struct RedisCache {
    client: redis::Client,
    /// Connected lazily so appauth starts (and issues tokens) with Redis down.
    conn: ArcSwapOption<ConnectionManager>,
    connecting: tokio::sync::Mutex<()>,
    /// Set when Redis may hold less than the store (a failed write or
    /// check, a restart): the next good reconcile announces a new
    /// generation whatever it finds, so followers re-read.
    doubtful: AtomicBool,
    /// Redis's `run_id` at the last reconcile: a new one means Redis
    /// restarted, possibly from an old snapshot, since appauth last looked.
    run_id: std::sync::Mutex<Option<String>>,
    repair: redis::Script,
}

/// Makes each key at least what the store says, atomically per key, so two
/// instances reconciling at once (or a reconcile racing a newer `record`)
/// can never lower a cut-off. `KEYS[i]` with `ARGV` triples (value, expire
/// at, kind `c` client cut-off or `t` token). Returns how many keys it
/// changed.
const REPAIR: &str = r"
local changed = 0
for i, key in ipairs(KEYS) do
  local want = ARGV[3 * i - 2]
  local exat = tonumber(ARGV[3 * i - 1])
  local kind = ARGV[3 * i]
  local have = redis.call('GET', key)
  local stale = not have
  if have and kind == 'c' then
    local n = tonumber(have)
    stale = (n == nil) or (n < tonumber(want))
  end
  if stale then
    redis.call('SET', key, want, 'EXAT', exat)
    changed = changed + 1
  else
    local t = redis.call('EXPIRETIME', key)
    if t >= 0 and t < exat then
      redis.call('EXPIREAT', key, exat)
      changed = changed + 1
    end
  end
end
return changed
";

fn err(e: impl std::fmt::Display) -> CacheError {
    CacheError(e.to_string())
}

impl RedisCache {
    pub fn new(url: &str) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(|e| err(format!("bad redis.url: {e}")))?;
        Ok(Self {
            client,
            conn: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            doubtful: AtomicBool::new(true),
            run_id: std::sync::Mutex::new(None),
            repair: redis::Script::new(REPAIR),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, CacheError> {
        if let Some(c) = self.conn.load_full() {
            return Ok((*c).clone());
        }
        let _guard = self.connecting.lock().await;
        if let Some(c) = self.conn.load_full() {
            return Ok((*c).clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let c = self
            .client
            .get_connection_manager_with_config(config)
            .await
            .map_err(err)?;
        self.conn.store(Some(Arc::new(c.clone())));
        Ok(c)
    }

    /// The repair script's arguments for one record.
    fn arg(inv: &mut redis::ScriptInvocation<'_>, r: &Revocation) {
        match r {
            Revocation::Token { client_id, .. } => inv.key(key_of(r)).arg(client_id).arg(r.lapses_at()).arg("t"),
            Revocation::Client { before, .. } => inv.key(key_of(r)).arg(before).arg(r.lapses_at()).arg("c"),
        };
    }

    /// Redis's `run_id`: it changes whenever the server restarts.
    async fn run_id(c: &mut ConnectionManager) -> Result<String, CacheError> {
        let info: String = redis::cmd("INFO").arg("server").query_async(c).await.map_err(err)?;
        info.lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(|id| id.trim().to_owned())
            .ok_or_else(|| err("INFO server has no run_id"))
    }

    async fn reconcile_with(
        &self,
        c: &mut ConnectionManager,
        all: &[Revocation],
        now: i64,
    ) -> Result<usize, CacheError> {
        let run_id = Self::run_id(c).await?;
        let restarted = {
            let mut seen = self.run_id.lock().unwrap_or_else(|p| p.into_inner());
            let restarted = seen.as_deref().is_some_and(|s| s != run_id);
            *seen = Some(run_id);
            restarted
        };
        // Records about to lapse may expire between check and repair.
        let live: Vec<&Revocation> = all.iter().filter(|r| r.lapses_at() > now + 2).collect();
        let generation: Option<String> = redis::cmd("GET")
            .arg(GENERATION_KEY)
            .query_async(c)
            .await
            .map_err(err)?;
        let mut repaired = 0usize;
        for chunk in live.chunks(1000) {
            let mut inv = self.repair.prepare_invoke();
            for r in chunk {
                Self::arg(&mut inv, r);
            }
            let changed: usize = inv.invoke_async(c).await.map_err(err)?;
            repaired += changed;
        }
        let doubtful = self.doubtful.load(Ordering::Acquire);
        if repaired == 0 && generation.is_some() && !restarted && !doubtful {
            return Ok(0);
        }
        let fresh = crate::domain::new_id();
        redis::pipe()
            .cmd("SET")
            .arg(GENERATION_KEY)
            .arg(&fresh)
            .ignore()
            .cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(serde_json::json!({"type": "resync", "generation": fresh}).to_string())
            .ignore()
            .query_async::<()>(c)
            .await
            .map_err(err)?;
        self.doubtful.store(false, Ordering::Release);
        if restarted {
            tracing::info!(
                "Redis restarted since the last check; verified every revocation record and announced a new generation"
            );
        }
        Ok(repaired)
    }
}

impl RevocationCache for RedisCache {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn record<'a>(&'a self, r: &'a Revocation) -> BoxFuture<'a, Result<(), CacheError>> {
        async move {
            let result = async {
                let mut c = self.conn().await?;
                let mut inv = self.repair.prepare_invoke();
                Self::arg(&mut inv, r);
                inv.invoke_async::<usize>(&mut c).await.map_err(err)?;
                redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(serde_json::to_string(r).unwrap_or_default())
                    .query_async::<()>(&mut c)
                    .await
                    .map_err(err)
            }
            .await;
            if result.is_err() {
                self.doubtful.store(true, Ordering::Release);
            }
            result
        }
        .boxed()
    }

    fn reconcile<'a>(&'a self, all: &'a [Revocation], now: i64) -> BoxFuture<'a, Result<usize, CacheError>> {
        async move {
            let result = async {
                let mut c = self.conn().await?;
                self.reconcile_with(&mut c, all, now).await
            }
            .await;
            if result.is_err() {
                self.doubtful.store(true, Ordering::Release);
            }
            result
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        async move {
            let mut c = self.conn().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map(|_| ())
                .map_err(err)
        }
        .boxed()
    }
}
