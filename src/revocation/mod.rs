//! Revocation (DESIGN §1; RFC 7009 for single tokens).
//!
//! Two kinds of record: one token by `jti` (until its `exp`), and "every
//! token of client C issued before T" (secret regenerated, application
//! disabled or deleted; kept until no such token can still be valid).
//!
//! The store is the truth: a revocation is written and flushed before
//! anything else. appauth's own answers (introspection, admin
//! authentication, the verifier in introspection mode) come from an
//! in-process set loaded from the store at start and updated on every
//! write — never from Redis's memory, which can be restored from an old
//! snapshot, flushed, evicted or rewound. The [`RevocationCache`] (Redis, or
//! nothing but a local copy when `redis.url` is unset) is the *distribution*
//! channel for resource servers: a key per revocation with a TTL, a pub/sub
//! message per revocation, and a generation id. Twice a second
//! [`Revocations::reconcile`] compares Redis with the store by value (every
//! live key present, no cut-off older than the store's, no expiry shorter)
//! and repairs any difference, then writes a new generation so verifiers
//! that follow Redis re-read the set; it does so too whenever Redis
//! restarted or was unreachable, since then it may have been rewound.

pub mod memory;
pub mod redis;

use crate::directory::{Cutoff, Directory};
use crate::store::{Store, StoreError, Write, keys};
use crate::telemetry::Metrics;
use futures_util::future::BoxFuture;

use std::sync::Arc;
use std::time::Duration;

pub use appauth_verify::revocation::{LEEWAY_SECONDS, Revocation};

/// Upper bound on one cache operation before falling back to the store.
pub const CACHE_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
#[error("revocation cache: {0}")]
pub struct CacheError(pub String);

/// One role: tell others about revocations, and keep what they read whole.
pub trait RevocationCache: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Publishes one revocation (key with TTL + message).
    fn record<'a>(&'a self, r: &'a Revocation) -> BoxFuture<'a, Result<(), CacheError>>;
    /// Makes the cache hold at least the live revocations `all`, by value
    /// (a later cut-off than the store's is kept; it may hold lapsed ones
    /// too). Returns how many records it had to repair.
    fn reconcile<'a>(&'a self, all: &'a [Revocation], now: i64) -> BoxFuture<'a, Result<usize, CacheError>>;
    fn ping(&self) -> BoxFuture<'_, Result<(), CacheError>>;
}

async fn bounded<T>(fut: BoxFuture<'_, Result<T, CacheError>>) -> Result<T, CacheError> {
    tokio::time::timeout(CACHE_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| Err(CacheError(format!("no answer within {} ms", CACHE_TIMEOUT.as_millis()))))
}

/// Every revoked `jti` in the store, with when its record stops mattering.
fn revoked_tokens(store: &dyn Store) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    Ok(store
        .scan_prefix(keys::REVOKED_JTI)?
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice::<Revocation>(v).ok())
        .filter_map(|r| match &r {
            Revocation::Token { jti, .. } => Some((jti.clone(), r.lapses_at())),
            Revocation::Client { .. } => None,
        })
        .collect())
}

/// The revocation service: store first, then the in-process set, then the
/// distribution cache.
pub struct Revocations {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    cache: Arc<dyn RevocationCache>,
    metrics: Arc<Metrics>,
    /// jti → Unix second after which the record no longer matters.
    revoked: std::sync::RwLock<std::collections::HashMap<String, i64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheHealth {
    Ok,
    Degraded,
}

impl Revocations {
    /// Loads the revoked `jti`s from the store.
    pub fn load(
        store: Arc<dyn Store>,
        directory: Arc<Directory>,
        cache: Arc<dyn RevocationCache>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let revoked = revoked_tokens(store.as_ref())?;
        Ok(Self {
            store,
            directory,
            cache,
            metrics,
            revoked: std::sync::RwLock::new(revoked),
        })
    }

    pub fn cache_name(&self) -> &'static str {
        self.cache.name()
    }

    fn cache_failed(&self, e: &CacheError) {
        self.metrics.redis_errors.inc();
        tracing::warn!(cache = self.cache.name(), error = %e, "revocation cache failed");
    }

    /// Revokes one token (RFC 7009): durable in the store, then in memory,
    /// then announced.
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
        self.revoked
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(jti.to_owned(), r.lapses_at());
        self.metrics.revocations.inc();
        if let Err(e) = bounded(self.cache.record(&r)).await {
            // The store has it; reconciliation brings the cache back in line.
            self.cache_failed(&e);
        }
        Ok(())
    }

    /// Reads the revoked set from the store again (after the directory
    /// reloaded in full: changes in the gap were never seen one by one).
    /// Entries are only added, never dropped, until the store confirms.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let store = self.store.clone();
        let fresh = tokio::task::spawn_blocking(move || revoked_tokens(store.as_ref()))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))??;
        *self.revoked.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// Token revocations made by other instances sharing the store (from
    /// the change feed): added to the in-process set; purged ones removed.
    pub fn follow(&self, changes: &[crate::store::Change]) {
        let mut set = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        for c in changes {
            let Some(jti) = c.key.strip_prefix(keys::REVOKED_JTI) else {
                continue;
            };
            match c.value.as_deref().map(serde_json::from_slice::<Revocation>) {
                Some(Ok(r)) => {
                    set.insert(jti.to_owned(), r.lapses_at());
                }
                Some(Err(e)) => tracing::error!(jti, error = %e, "unreadable revocation record in the change feed"),
                None => {
                    set.remove(jti);
                }
            }
        }
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
    /// Answered from memory (the store's contents), never from Redis.
    pub async fn is_revoked(&self, jti: &str, client_id: &str, iat: i64) -> bool {
        if self.directory.cutoff(client_id).is_some_and(|c: Cutoff| iat < c.before) {
            return true;
        }
        let now_s = crate::domain::now_ms().div_euclid(1000);
        if self
            .directory
            .entry(client_id)
            .is_some_and(|e| e.overlap_revokes(iat, now_s))
        {
            return true;
        }
        self.revoked.read().unwrap_or_else(|p| p.into_inner()).contains_key(jti)
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

    /// Compares the cache with the store and restores whatever it lost
    /// (restart, old snapshot, FLUSHALL, a deleted or evicted key). Returns
    /// how many records were restored.
    pub async fn reconcile(&self, now: i64) -> Result<usize, CacheError> {
        let all = self.all_live(now).await.map_err(|e| CacheError(e.to_string()))?;
        let restored = tokio::time::timeout(Duration::from_secs(10), self.cache.reconcile(&all, now))
            .await
            .unwrap_or_else(|_| Err(CacheError("reconciliation timed out".into())))?;
        if restored > 0 {
            self.metrics.redis_repairs.inc_by(restored as u64);
            tracing::warn!(
                cache = self.cache.name(),
                restored,
                "revocation cache had lost or stale records; repaired them from the store and announced a new generation"
            );
        }
        Ok(restored)
    }

    pub async fn health(&self) -> CacheHealth {
        match bounded(self.cache.ping()).await {
            Ok(()) => CacheHealth::Ok,
            Err(_) => CacheHealth::Degraded,
        }
    }

    /// Deletes token revocations that have lapsed; returns how many.
    pub async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.revoked
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, lapses| *lapses > now);
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
