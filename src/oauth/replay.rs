//! Single use of client assertions (RFC 7523 §3, item 7: "the authorization
//! server MAY ensure that JWTs are not replayed by maintaining the set of
//! used jti values for the length of time for which the JWT would be
//! considered valid"). appauth always does: a `jti` is remembered per client
//! until the assertion's `exp` (plus leeway), and a second use is refused.
//!
//! A ledger also has to survive losing its memory. Persisting every `jti`
//! durably would put a disk or database write on every assertion, so each
//! ledger instead knows since when it has a complete record (its
//! *coverage*), and refuses any assertion issued before that, or within
//! that same second (`iat` has one-second resolution): such an assertion
//! may have been used while nobody was keeping count. Clients sign
//! a fresh assertion per request anyway, so after a restart or a Redis loss
//! only assertions already in flight are refused, once.
//!
//! - Without Redis ([`MemoryLedger`]), coverage starts when the process
//!   does: a restart refuses every assertion issued before it. A process
//!   that has just initialised an empty store covers everything: no
//!   client existed before it.
//! - With Redis ([`RedisLedger`]), every instance shares one ledger, and
//!   coverage is recorded in Redis with Redis's own `run_id`. A Lua script
//!   checks both and records the `jti` atomically: when the record is gone
//!   (FLUSHALL, eviction, a new Redis) or names another `run_id` (Redis
//!   restarted, perhaps from an older snapshot that lacks recent `jti`s),
//!   coverage starts again at that moment. A process that has just
//!   initialised an empty store writes a record covering everything, but
//!   only where none exists: written at its first assertion instead, after
//!   Redis lost the ledger another instance kept, it would declare the lost
//!   `jti`s never used.
//!
//! An assertion's issue time is its `iat`, or, without one, `exp` minus the
//! longest lifetime accepted (the earliest it could have been issued).
//! `iat` is the client's clock: a client whose clock runs ahead of the
//! server's by d seconds could have an assertion it used in the last d
//! seconds before a restart accepted once more, so keep clocks in sync.
//! A ledger that cannot answer refuses the assertion (fail closed).

use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;

/// Clock leeway on assertion times, and how much longer a `jti` is kept.
pub const LEEWAY_SECONDS: i64 = 30;

/// What the ledger says about one use of an assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    First,
    Replay,
    /// Issued before the ledger's record begins (Unix seconds): it may
    /// have been used already, so it is refused.
    BeforeCoverage {
        since: i64,
    },
    /// This client holds as many unexpired assertions as it may.
    ClientFull {
        max: usize,
    },
}

/// One role: remember that a client used a `jti`.
pub trait JtiLedger: Send + Sync + 'static {
    /// Records (`client_id`, `jti`), issued at `issued` and good until
    /// `expires` (Unix seconds), and says whether this is its first use.
    fn first_use<'a>(
        &'a self,
        client_id: &'a str,
        jti: &'a str,
        issued: i64,
        expires: i64,
    ) -> BoxFuture<'a, Result<Use, String>>;
}

fn digest(client_id: &str, jti: &str) -> [u8; 16] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(client_id.as_bytes());
    ctx.update(&[0]);
    ctx.update(jti.as_bytes());
    let d = ctx.finish();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.as_ref()[..16]);
    out
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

/// Unexpired assertions one client may have on record; past it that
/// client's assertions are refused (429) until some expire, and nobody
/// else is affected.
pub const MAX_PER_CLIENT: usize = 50_000;
/// Unexpired assertions on record in all (~50 bytes each, ~25 MB at the
/// bound); past it assertions are refused with 503 until some expire.
/// Secrets keep working.
pub const MAX_ENTRIES: usize = 500_000;

/// One instance's memory: digests of (client, `jti`) per client; lapsed
/// entries are pruned at most once a second.
pub struct MemoryLedger {
    since: i64,
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    by_client: HashMap<Box<str>, HashMap<[u8; 16], i64>>,
    total: usize,
    pruned_at: i64,
}

impl MemoryLedger {
    /// Coverage starts at `since` (Unix seconds): assertions issued then
    /// or earlier are refused.
    pub fn new(since: i64) -> Self {
        Self {
            since,
            inner: Mutex::new(MemoryInner::default()),
        }
    }

    fn record(&self, client_id: &str, jti: &str, issued: i64, expires: i64, now: i64) -> Result<Use, String> {
        if issued <= self.since {
            return Ok(Use::BeforeCoverage { since: self.since });
        }
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *guard;
        if inner.total >= 4096 && inner.pruned_at < now {
            let mut total = 0;
            inner.by_client.retain(|_, seen| {
                seen.retain(|_, until| *until >= now);
                total += seen.len();
                !seen.is_empty()
            });
            inner.total = total;
            inner.pruned_at = now;
        }
        let key = digest(client_id, jti);
        let seen = inner.by_client.get(client_id);
        // Kept through its last second: a proof or assertion is still
        // accepted at exactly `until`, so it must still be on record then.
        if seen.and_then(|s| s.get(&key)).is_some_and(|until| *until >= now) {
            return Ok(Use::Replay);
        }
        if seen.is_some_and(|s| s.len() >= MAX_PER_CLIENT) {
            return Ok(Use::ClientFull { max: MAX_PER_CLIENT });
        }
        if inner.total >= MAX_ENTRIES {
            return Err(format!(
                "{MAX_ENTRIES} unexpired assertion ids on record; refusing more until some expire"
            ));
        }
        let previous = inner
            .by_client
            .entry(client_id.into())
            .or_default()
            .insert(key, expires);
        if previous.is_none() {
            inner.total += 1;
        }
        Ok(Use::First)
    }
}

impl JtiLedger for MemoryLedger {
    fn first_use<'a>(
        &'a self,
        client_id: &'a str,
        jti: &'a str,
        issued: i64,
        expires: i64,
    ) -> BoxFuture<'a, Result<Use, String>> {
        let result = self.record(client_id, jti, issued, expires, crate::domain::now_ms() / 1000);
        Box::pin(async move { result })
    }
}

/// For a PostgreSQL cluster without Redis: instances could not see each
/// other's `jti`s, so assertions are refused (503, and the log says why)
/// rather than replayable once per instance.
pub struct NoSharedLedger;

impl JtiLedger for NoSharedLedger {
    fn first_use<'a>(&'a self, _: &'a str, _: &'a str, _: i64, _: i64) -> BoxFuture<'a, Result<Use, String>> {
        Box::pin(async {
            Err("private_key_jwt in a PostgreSQL cluster needs redis.url, so that every instance refuses a replayed assertion".to_owned())
        })
    }
}

/// The coverage record: which Redis process (`run_id`) has kept the ledger
/// since when.
const COVERAGE_KEY: &str = "appauth:assertion:coverage";

/// `KEYS[1]` the `jti` key, `KEYS[2]` the coverage record; `ARGV` issued,
/// seconds to keep, now. Returns 1 first use, 0 replay, or -since when the
/// assertion was issued before the coverage began (or in its first second).
/// A Redis that may evict keys is an error: an evicted `jti` key would read
/// as never used, and nothing would notice (the coverage record may stay).
const FIRST_USE: &str = r"
local mem = redis.call('INFO', 'memory')
local policy = string.match(mem, 'maxmemory_policy:([%w-]+)')
if tonumber(string.match(mem, 'maxmemory:(%d+)') or '0') > 0 and policy ~= 'noeviction' then
  return redis.error_reply('Redis may evict keys (maxmemory set, maxmemory-policy ' .. tostring(policy) .. '): a used jti could be forgotten; set maxmemory-policy noeviction')
end
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local cov = redis.call('HMGET', KEYS[2], 'run', 'since')
local since = tonumber(cov[2])
if cov[1] ~= run or not since then
  since = tonumber(ARGV[3])
  redis.call('HSET', KEYS[2], 'run', run, 'since', since)
end
if tonumber(ARGV[1]) <= since then
  return -since
end
if redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[2]) then
  return 1
end
return 0
";

/// `KEYS[1]` the coverage record. Written only where there is none: an
/// existing record may be the only trace of `jti`s another instance saw.
const COVER_ALL: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
redis.call('HSET', KEYS[1], 'run', run, 'since', 0)
return 1
";

/// Shared by every instance that uses the same Redis.
pub struct RedisLedger {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
}

impl RedisLedger {
    /// Connects lazily: the manager reconnects on its own, and a ledger that
    /// cannot reach Redis refuses assertions rather than blocking start-up.
    pub fn new(url: &str) -> Result<Self, String> {
        let conn = super::lazy_redis(url)?;
        Ok(Self {
            conn,
            script: redis::Script::new(FIRST_USE),
        })
    }

    /// The eviction policy of a Redis that may evict keys (`maxmemory` set
    /// and a `maxmemory-policy` other than `noeviction`); `None` when it
    /// never evicts.
    pub async fn evicting_policy(&self) -> Result<Option<String>, String> {
        let mut conn = self.conn.clone();
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("Redis: {e}"))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
                .map(|v| v.trim().to_owned())
        };
        let limited = field("maxmemory").is_some_and(|v| v != "0");
        Ok(field("maxmemory_policy").filter(|p| limited && p != "noeviction"))
    }

    /// Called once, at start-up, by the process that initialised an empty
    /// store (no client existed before it, so nothing can have been used):
    /// coverage from the beginning of time, unless a record already exists.
    /// If Redis cannot be reached now, coverage starts at the first
    /// assertion instead, and assertions issued in that second are refused.
    pub async fn cover_everything_before(&self) -> Result<bool, String> {
        let mut conn = self.conn.clone();
        let written: i64 = redis::Script::new(COVER_ALL)
            .key(COVERAGE_KEY)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| format!("Redis: {e}"))?;
        Ok(written == 1)
    }
}

impl JtiLedger for RedisLedger {
    fn first_use<'a>(
        &'a self,
        client_id: &'a str,
        jti: &'a str,
        issued: i64,
        expires: i64,
    ) -> BoxFuture<'a, Result<Use, String>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let now = crate::domain::now_ms() / 1000;
            // Relative, with a margin: Redis's clock may run ahead of ours.
            let keep = (expires - now).max(0) + 60;
            let answer: i64 = self
                .script
                .key(ledger_key(client_id, jti))
                .key(COVERAGE_KEY)
                .arg(issued)
                .arg(keep)
                .arg(now)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| format!("Redis: {e}"))?;
            Ok(match answer {
                1 => Use::First,
                0 => Use::Replay,
                n => Use::BeforeCoverage { since: -n },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_ledger_refuses_replays_and_what_was_issued_before_it_started() {
        let l = MemoryLedger::new(1_000);
        assert_eq!(l.record("c", "j", 1_001, 2_000, 1_001), Ok(Use::First));
        assert_eq!(l.record("c", "j", 1_001, 2_000, 1_002), Ok(Use::Replay));
        // Still on record in its last second, when it would still be accepted.
        assert_eq!(l.record("c", "j", 1_001, 2_000, 2_000), Ok(Use::Replay));
        assert_eq!(
            l.record("other", "j", 1_001, 2_000, 1_002),
            Ok(Use::First),
            "per client"
        );
        for before in [999, 1_000] {
            assert_eq!(
                l.record("c", "k", before, 2_000, 1_002),
                Ok(Use::BeforeCoverage { since: 1_000 }),
                "issued at {before}: it may have been used before the ledger began"
            );
        }
    }

    #[test]
    fn one_client_filling_its_share_of_the_ledger_affects_no_other_client() {
        let l = MemoryLedger::new(0);
        for i in 0..MAX_PER_CLIENT {
            assert_eq!(l.record("greedy", &i.to_string(), 1, 3_600, 1), Ok(Use::First));
        }
        assert_eq!(
            l.record("greedy", "one-more", 1, 3_600, 1),
            Ok(Use::ClientFull { max: MAX_PER_CLIENT })
        );
        assert_eq!(l.record("modest", "j", 1, 3_600, 1), Ok(Use::First));
        // Once they expire, the client is served again.
        assert_eq!(l.record("greedy", "later", 3_601, 7_200, 3_601), Ok(Use::First));
    }
}
