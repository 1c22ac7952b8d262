//! The in-process stand-in for Redis when `redis.url` is unset (one
//! instance, nobody to tell): it keeps a copy of what would be published,
//! so the same reconciliation runs (and is tested) without Redis.

use super::{CacheError, Revocation, RevocationCache};
use futures_util::future::{BoxFuture, FutureExt};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// jti → lapses at (Unix s)
    tokens: HashMap<String, i64>,
    /// client → (before, lapses at)
    clients: HashMap<String, (i64, i64)>,
    filled: bool,
}

impl MemoryCache {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(inner: &mut Inner, r: &Revocation) {
        match r {
            Revocation::Token { jti, .. } => {
                inner.tokens.insert(jti.clone(), r.lapses_at());
            }
            Revocation::Client { client_id, before, .. } => {
                // Cut-offs only move later, as in Redis (see redis.rs).
                let e = inner
                    .clients
                    .entry(client_id.clone())
                    .or_insert((*before, r.lapses_at()));
                *e = (e.0.max(*before), e.1.max(r.lapses_at()));
            }
        }
    }
}

impl RevocationCache for MemoryCache {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn record<'a>(&'a self, r: &'a Revocation) -> BoxFuture<'a, Result<(), CacheError>> {
        let now = crate::domain::now_ms() / 1000;
        let mut inner = self.inner();
        // Dropping lapsed entries on write keeps memory bounded by the
        // revocations of the last token lifetime.
        inner.tokens.retain(|_, lapses| *lapses > now);
        inner.clients.retain(|_, (_, lapses)| *lapses > now);
        Self::insert(&mut inner, r);
        async { Ok(()) }.boxed()
    }

    fn reconcile<'a>(&'a self, all: &'a [Revocation], now: i64) -> BoxFuture<'a, Result<usize, CacheError>> {
        let mut inner = self.inner();
        let missing: Vec<&Revocation> = all
            .iter()
            .filter(|r| r.lapses_at() > now)
            .filter(|r| match r {
                Revocation::Token { jti, .. } => !inner.tokens.contains_key(jti),
                Revocation::Client { client_id, before, .. } => inner
                    .clients
                    .get(client_id)
                    .is_none_or(|(have, lapses)| have < before || *lapses < r.lapses_at()),
            })
            .collect();
        for r in &missing {
            Self::insert(&mut inner, r);
        }
        let restored = if inner.filled { missing.len() } else { 0 };
        inner.filled = true;
        async move { Ok(restored) }.boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        async { Ok(()) }.boxed()
    }
}
