//! Revocation (DESIGN §1; RFC 7009 for single tokens).
//!
//! Two kinds of record: one token by `jti` (until its `exp`), and "every
//! token of client C issued before T" (secret regenerated, application
//! disabled or deleted; kept until no such token can still be valid).
//!
//! The store is the truth: a revocation is written and flushed to sled
//! before anything else. The [`RevocationCache`] (Redis, or in-process when
//! `redis.url` is unset) serves lookups and tells resource servers: keys
//! with a TTL equal to the token's remaining life, and a pub/sub message per
//! revocation. Fail safe: when the cache errors, times out, or was restarted
//! empty and not yet refilled, the answer comes from the store — never
//! "active" by default — and the token endpoint is unaffected (it does not
//! consult revocations at all).

pub mod memory;
pub mod redis;

use crate::directory::{Cutoff, Directory};
use crate::store::{Store, StoreError, Write, keys};
use crate::telemetry::Metrics;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Verifiers may accept a token this long after `exp` (clock leeway), so
/// revocation records outlive the token by as much.
pub const LEEWAY_SECONDS: i64 = 60;

/// Upper bound on one cache operation before falling back to the store.
pub const CACHE_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Revocation {
    /// One token. `exp` in Unix seconds.
    Token {
        jti: String,
        #[serde(rename = "clientId")]
        client_id: String,
        exp: i64,
    },
    /// Tokens of `client_id` with `iat < before`; the record lapses at `expires`.
    Client {
        #[serde(rename = "clientId")]
        client_id: String,
        before: i64,
        expires: i64,
    },
}

impl Revocation {
    /// Unix seconds after which the record no longer matters.
    pub fn lapses_at(&self) -> i64 {
        match self {
            Revocation::Token { exp, .. } => exp + LEEWAY_SECONDS,
            Revocation::Client { expires, .. } => *expires,
        }
    }
}

/// What the cache knows about one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheAnswer {
    pub jti_revoked: bool,
    pub client_before: Option<i64>,
    /// False when the cache lost its contents (e.g. Redis restarted empty)
    /// and has not been refilled yet: its "not revoked" means nothing.
    pub complete: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("revocation cache: {0}")]
pub struct CacheError(pub String);

/// One role: remember revocations for fast lookups and tell others.
pub trait RevocationCache: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn record<'a>(&'a self, r: &'a Revocation) -> BoxFuture<'a, Result<(), CacheError>>;
    fn lookup<'a>(&'a self, jti: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<CacheAnswer, CacheError>>;
    /// True when the cache has lost its contents and needs [`Self::refill`].
    fn needs_refill(&self) -> BoxFuture<'_, Result<bool, CacheError>>;
    /// Loads every live revocation and marks the cache complete.
    fn refill<'a>(&'a self, all: &'a [Revocation], now: i64) -> BoxFuture<'a, Result<(), CacheError>>;
    fn ping(&self) -> BoxFuture<'_, Result<(), CacheError>>;
}

async fn bounded<T>(fut: BoxFuture<'_, Result<T, CacheError>>) -> Result<T, CacheError> {
    tokio::time::timeout(CACHE_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| Err(CacheError(format!("no answer within {} ms", CACHE_TIMEOUT.as_millis()))))
}

/// The revocation service: store first, then cache; lookups fail safe.
pub struct Revocations {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    cache: Arc<dyn RevocationCache>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheHealth {
    Ok,
    Degraded,
}

impl Revocations {
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<Directory>,
        cache: Arc<dyn RevocationCache>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            directory,
            cache,
            metrics,
        }
    }

    pub fn cache_name(&self) -> &'static str {
        self.cache.name()
    }

    fn cache_failed(&self, e: &CacheError) {
        self.metrics.redis_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(cache = self.cache.name(), error = %e, "revocation cache failed");
    }

    /// Revokes one token (RFC 7009): durable in the store, then announced.
    pub async fn revoke_token(&self, jti: &str, client_id: &str, exp: i64) -> Result<(), StoreError> {
        let r = Revocation::Token {
            jti: jti.to_owned(),
            client_id: client_id.to_owned(),
            exp,
        };
        let bytes = serde_json::to_vec(&r).unwrap_or_default();
        let store = self.store.clone();
        let key = keys::revoked_jti(jti);
        tokio::task::spawn_blocking(move || store.apply(&[Write::Put(key, bytes)]))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))??;
        self.metrics.revocations.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = bounded(self.cache.record(&r)).await {
            // The store has it; the refill loop will bring the cache back in line.
            self.cache_failed(&e);
        }
        Ok(())
    }

    /// Announces a client cut-off the directory has just made durable.
    pub async fn announce_client(&self, client_id: &str) {
        let Some(c) = self.directory.cutoff(client_id) else {
            return;
        };
        let r = Revocation::Client {
            client_id: client_id.to_owned(),
            before: c.before,
            expires: c.expires,
        };
        if let Err(e) = bounded(self.cache.record(&r)).await {
            self.cache_failed(&e);
        }
    }

    /// Whether a token (already verified: signature, iss, exp) is revoked.
    pub async fn is_revoked(&self, jti: &str, client_id: &str, iat: i64) -> bool {
        // Client cut-offs are mirrored in memory from the store by the
        // directory (the single writer), so they are exact without a cache.
        if self.directory.cutoff(client_id).is_some_and(|c: Cutoff| iat < c.before) {
            return true;
        }
        match bounded(self.cache.lookup(jti, client_id)).await {
            Ok(a) if a.complete => a.jti_revoked || a.client_before.is_some_and(|b| iat < b),
            Ok(_) => {
                self.metrics.redis_fallbacks.fetch_add(1, Ordering::Relaxed);
                self.store_says_revoked(jti).await
            }
            Err(e) => {
                self.cache_failed(&e);
                self.metrics.redis_fallbacks.fetch_add(1, Ordering::Relaxed);
                self.store_says_revoked(jti).await
            }
        }
    }

    async fn store_says_revoked(&self, jti: &str) -> bool {
        let store = self.store.clone();
        let key = keys::revoked_jti(jti);
        match tokio::task::spawn_blocking(move || store.get(&key)).await {
            Ok(Ok(found)) => found.is_some(),
            // Neither cache nor store can answer: fail closed.
            other => {
                tracing::error!(?other, "revocation store lookup failed; treating the token as revoked");
                true
            }
        }
    }

    /// Every revocation record still in force, from the store.
    pub async fn all_live(&self, now: i64) -> Result<Vec<Revocation>, StoreError> {
        let store = self.store.clone();
        let tokens = tokio::task::spawn_blocking(move || store.scan_prefix(keys::REVOKED_JTI))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))??;
        let mut out: Vec<Revocation> = tokens
            .iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Revocation>(v).ok())
            .collect();
        out.extend(
            self.directory
                .read()
                .cutoffs
                .iter()
                .map(|(client_id, c)| Revocation::Client {
                    client_id: client_id.clone(),
                    before: c.before,
                    expires: c.expires,
                }),
        );
        out.retain(|r| r.lapses_at() > now);
        Ok(out)
    }

    /// Refills the cache from the store if it lost its contents. Returns
    /// whether it refilled.
    pub async fn reconcile(&self, now: i64) -> Result<bool, CacheError> {
        if !bounded(self.cache.needs_refill()).await? {
            return Ok(false);
        }
        let all = self.all_live(now).await.map_err(|e| CacheError(e.to_string()))?;
        tokio::time::timeout(Duration::from_secs(10), self.cache.refill(&all, now))
            .await
            .unwrap_or_else(|_| Err(CacheError("refill timed out".into())))?;
        tracing::info!(
            cache = self.cache.name(),
            records = all.len(),
            "revocation cache refilled from the store"
        );
        Ok(true)
    }

    pub async fn health(&self) -> CacheHealth {
        match bounded(self.cache.ping()).await {
            Ok(()) => CacheHealth::Ok,
            Err(_) => CacheHealth::Degraded,
        }
    }

    /// Deletes token revocations that have lapsed; returns how many.
    pub async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let stale: Vec<Write> = store
                .scan_prefix(keys::REVOKED_JTI)?
                .into_iter()
                .filter(|(_, v)| serde_json::from_slice::<Revocation>(v).map_or(true, |r| r.lapses_at() <= now))
                .map(|(k, _)| Write::Delete(k))
                .collect();
            if !stale.is_empty() {
                store.apply(&stale)?;
            }
            Ok(stale.len())
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?
    }
}
