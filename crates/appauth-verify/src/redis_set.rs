//! Revocation mode "Redis subscription": a local revocation set loaded from
//! appauth's Redis keys and kept current through its pub/sub channel, so a
//! revocation is honoured as soon as its message arrives.
//!
//! Redis can lose state (restart, old snapshot, FLUSHALL, eviction);
//! appauth restores it from its store within a couple of seconds and then
//! writes a new generation id. This set re-reads the keys whenever the
//! generation changes, and counts as unconfirmed while it is missing.
//! Entries are only ever merged in (until they lapse), so a revocation this
//! process saw is never forgotten because Redis forgot it, and a client
//! cut-off only ever moves later: a Redis restored from an old snapshot or
//! AOF may hand back an older cut-off, and the later one this set already
//! holds is kept.

use super::VerifyError;
use crate::AccessTokenClaims;
use crate::revocation::{CHANNEL, GENERATION_KEY, Revocation};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const JTI_PREFIX: &str = "appauth:revoked:jti:";
const CLIENT_PREFIX: &str = "appauth:revoked:client:";

#[derive(Default)]
struct Inner {
    /// jti → lapses at (Unix s)
    jtis: HashMap<String, i64>,
    /// client → (before, lapses at)
    clients: HashMap<String, (i64, i64)>,
    /// Last time the set was known to be complete and current.
    last_ok: Option<Instant>,
    loaded: bool,
    /// The Redis generation the set was last read under.
    generation: Option<String>,
}

impl Inner {
    /// Keeps the longer life: a record never lapses earlier than it did.
    fn merge_jti(&mut self, jti: &str, lapses: i64) {
        let e = self.jtis.entry(jti.to_owned()).or_insert(lapses);
        *e = (*e).max(lapses);
    }

    /// Keeps the later cut-off and the later lapse: never lowers what is held.
    fn merge_client(&mut self, client_id: &str, before: i64, lapses: i64) {
        let e = self.clients.entry(client_id.to_owned()).or_insert((before, lapses));
        *e = (e.0.max(before), e.1.max(lapses));
    }
}

#[derive(Default)]
pub struct RevocationSet {
    inner: Mutex<Inner>,
}

impl RevocationSet {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn follow(url: &str) -> Result<(Arc<Self>, tokio::task::JoinHandle<()>), String> {
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL: {e}"))?;
        let set = Arc::new(RevocationSet::default());
        let task = tokio::spawn({
            let set = set.clone();
            async move {
                loop {
                    if let Err(e) = set.run(&client).await {
                        tracing::warn!(error = %e, "revocation subscription lost; reconnecting");
                    }
                    set.inner().loaded = false;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        Ok((set, task))
    }

    fn apply(&self, r: &Revocation) {
        let mut inner = self.inner();
        match r {
            Revocation::Token { jti, .. } => inner.merge_jti(jti, r.lapses_at()),
            Revocation::Client { client_id, before, .. } => inner.merge_client(client_id, *before, r.lapses_at()),
        }
    }

    async fn run(&self, client: &redis::Client) -> redis::RedisResult<()> {
        // Subscribe before loading, so nothing revoked meanwhile is missed.
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let mut messages = pubsub.into_on_message();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { return Ok(()) };
                    if let Ok(r) = serde_json::from_slice::<Revocation>(msg.get_payload_bytes()) {
                        self.apply(&r);
                    }
                }
                _ = tick.tick() => {
                    let mut get = redis::cmd("GET");
                    get.arg(GENERATION_KEY);
                    let check = tokio::time::timeout(Duration::from_millis(500), get.query_async::<Option<String>>(&mut conn));
                    let generation = match check.await {
                        Ok(r) => r?,
                        Err(_) => continue,
                    };
                    let Some(generation) = generation else {
                        // Redis lost its contents; appauth restores them shortly.
                        self.inner().loaded = false;
                        continue;
                    };
                    let stale = {
                        let inner = self.inner();
                        !inner.loaded || inner.generation.as_deref() != Some(generation.as_str())
                    };
                    if stale {
                        self.load(&mut conn).await?;
                        self.inner().generation = Some(generation);
                    }
                    let now = crate::now_seconds();
                    let mut inner = self.inner();
                    inner.jtis.retain(|_, lapses| *lapses > now);
                    inner.clients.retain(|_, (_, lapses)| *lapses > now);
                    inner.loaded = true;
                    inner.last_ok = Some(Instant::now());
                }
            }
        }
    }

    /// Merges every revocation key in Redis into the set.
    async fn load(&self, conn: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<()> {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("appauth:revoked:*")
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("GET").arg(k).cmd("EXPIRETIME").arg(k);
                }
                let values: Vec<(Option<String>, i64)> = pipe.query_async(conn).await?;
                let mut inner = self.inner();
                for (k, (value, lapses)) in keys.iter().zip(values) {
                    if let Some(jti) = k.strip_prefix(JTI_PREFIX) {
                        inner.merge_jti(jti, lapses);
                    } else if let (Some(client), Some(before)) =
                        (k.strip_prefix(CLIENT_PREFIX), value.and_then(|v| v.parse().ok()))
                    {
                        inner.merge_client(client, before, lapses);
                    }
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    pub fn check(&self, claims: &AccessTokenClaims, bound: Duration) -> Result<(), VerifyError> {
        let inner = self.inner();
        match inner.last_ok {
            Some(t) if t.elapsed() <= bound => {}
            Some(t) => {
                return Err(VerifyError::RevocationUnavailable(format!(
                    "revocation set not confirmed for {} ms",
                    t.elapsed().as_millis()
                )));
            }
            None => {
                return Err(VerifyError::RevocationUnavailable(
                    "revocation set not loaded yet".into(),
                ));
            }
        }
        let client_cut = inner
            .clients
            .get(&claims.client_id)
            .is_some_and(|(before, _)| claims.iat < *before);
        if client_cut || inner.jtis.contains_key(&claims.jti) {
            return Err(VerifyError::Revoked);
        }
        Ok(())
    }

    pub fn is_ready(&self) -> bool {
        // Loaded and confirmed at least once.
        self.inner().last_ok.is_some()
    }
}
