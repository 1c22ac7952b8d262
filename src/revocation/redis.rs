//! The Redis revocation cache, for resource servers and scale-out.
//!
//! Key layout (documented in the README for subscribers):
//! - `appauth:revoked:jti:<jti>` = client ID, expiring when the token does
//!   (plus leeway);
//! - `appauth:revoked:client:<client_id>` = `<before>` (Unix s): tokens of
//!   that client with `iat < before` are revoked; expires with the last one;
//! - `appauth:revocations:generation` = an opaque id, replaced whenever
//!   appauth had to restore records Redis had lost (restart, an old RDB or
//!   AOF, FLUSHALL, a deleted or evicted key). Every second appauth checks
//!   that the generation exists and that every live revocation key exists,
//!   restores what is missing, then writes a new generation and publishes
//!   `{"type":"resync","generation":"…"}`. A subscriber that sees the
//!   generation change (or vanish) re-reads the keys.
//! - channel `appauth:revocations`: one JSON message per revocation, e.g.
//!   `{"type":"token","jti":"…","clientId":"…","exp":1795454895}` or
//!   `{"type":"client","clientId":"…","before":1795451296,"expires":1795454956}`.

use super::{CacheError, Revocation, RevocationCache};
use arc_swap::ArcSwapOption;
use futures_util::future::{BoxFuture, FutureExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
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
}

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

    fn add(pipe: &mut redis::Pipeline, r: &Revocation) {
        match r {
            Revocation::Token { jti, client_id, .. } => {
                pipe.cmd("SET")
                    .arg(jti_key(jti))
                    .arg(client_id)
                    .arg("EXAT")
                    .arg(r.lapses_at())
                    .ignore();
            }
            Revocation::Client { client_id, before, .. } => {
                pipe.cmd("SET")
                    .arg(client_key(client_id))
                    .arg(before)
                    .arg("EXAT")
                    .arg(r.lapses_at())
                    .ignore();
            }
        }
    }
}

impl RevocationCache for RedisCache {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn record<'a>(&'a self, r: &'a Revocation) -> BoxFuture<'a, Result<(), CacheError>> {
        async move {
            let mut c = self.conn().await?;
            let mut pipe = redis::pipe();
            Self::add(&mut pipe, r);
            pipe.cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(serde_json::to_string(r).unwrap_or_default())
                .ignore();
            pipe.query_async::<()>(&mut c).await.map_err(err)
        }
        .boxed()
    }

    fn reconcile<'a>(&'a self, all: &'a [Revocation], now: i64) -> BoxFuture<'a, Result<usize, CacheError>> {
        async move {
            let mut c = self.conn().await?;
            // Records about to lapse may expire between check and repair.
            let live: Vec<&Revocation> = all.iter().filter(|r| r.lapses_at() > now + 2).collect();
            let generation: Option<String> = redis::cmd("GET")
                .arg(GENERATION_KEY)
                .query_async(&mut c)
                .await
                .map_err(err)?;
            // The set difference: which live revocation keys are missing.
            let mut missing: Vec<&Revocation> = Vec::new();
            for chunk in live.chunks(1000) {
                let mut pipe = redis::pipe();
                for r in chunk {
                    pipe.cmd("EXISTS").arg(key_of(r));
                }
                let present: Vec<bool> = pipe.query_async(&mut c).await.map_err(err)?;
                missing.extend(chunk.iter().zip(present).filter(|(_, p)| !p).map(|(r, _)| *r));
            }
            if missing.is_empty() && generation.is_some() {
                return Ok(0);
            }
            for chunk in missing.chunks(1000) {
                let mut pipe = redis::pipe();
                for r in chunk {
                    Self::add(&mut pipe, r);
                }
                pipe.query_async::<()>(&mut c).await.map_err(err)?;
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
                .query_async::<()>(&mut c)
                .await
                .map_err(err)?;
            Ok(missing.len())
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
