//! The in-process revocation cache used when `redis.url` is unset (one
//! instance). It is filled from the store at start, so it is complete.

use super::{CacheAnswer, CacheError, Revocation, RevocationCache};
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
                inner.clients.insert(client_id.clone(), (*before, r.lapses_at()));
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

    fn lookup<'a>(&'a self, jti: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<CacheAnswer, CacheError>> {
        let inner = self.inner();
        let answer = CacheAnswer {
            jti_revoked: inner.tokens.contains_key(jti),
            client_before: inner.clients.get(client_id).map(|(b, _)| *b),
            complete: inner.filled,
        };
        async move { Ok(answer) }.boxed()
    }

    fn needs_refill(&self) -> BoxFuture<'_, Result<bool, CacheError>> {
        let filled = self.inner().filled;
        async move { Ok(!filled) }.boxed()
    }

    fn refill<'a>(&'a self, all: &'a [Revocation], _now: i64) -> BoxFuture<'a, Result<(), CacheError>> {
        let mut inner = self.inner();
        for r in all {
            Self::insert(&mut inner, r);
        }
        inner.filled = true;
        async { Ok(()) }.boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        async { Ok(()) }.boxed()
    }
}
