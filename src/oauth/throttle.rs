//! Abuse limits (DESIGN §4 "Admin authority", RFC 6585 §4 `429 Too Many
//! Requests` with `Retry-After`).
//!
//! - [`FailureThrottle`]: failed client authentications, counted per
//!   (client ID, source address) and per source address in one-minute
//!   windows that start at the first failure. Past either limit every
//!   request from there is refused *before any secret work*, until the
//!   window ends. Keyed by address, so an attacker's failures never lock
//!   out a client calling from another address.
//! - [`RequestLimiter`]: admin API requests per authenticated caller.
//!
//! Cost for traffic without failures: one relaxed atomic load (no address
//! has failed recently → nothing to look up). With Redis configured, each
//! failure is also counted cluster-wide and the totals fed back into this
//! table (see `shared_failures`). The tables are bounded; when
//! full, expired windows are dropped first, and a new address past the
//! bound is not tracked (and a warning is logged) rather than growing memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const WINDOW_MS: i64 = 60_000;
/// Addresses tracked at once.
const MAX_ADDRESSES: usize = 100_000;
/// Client IDs tracked per address; beyond it only the address limit applies.
const MAX_CLIENTS_PER_ADDRESS: usize = 256;
/// Callers tracked by the admin request limiter.
const MAX_CALLERS: usize = 100_000;

/// Which budget a refusal comes from: the 429 names it, so an operator
/// knows which setting to look at and a caller which behaviour to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Failed authentications of one client ID from one address.
    ClientFailures,
    /// Failed authentications (any client ID, or no valid credentials at
    /// all) from one address.
    AddressFailures,
    /// Admin requests without valid credentials from one address.
    AdminAddressFailures,
    /// Admin requests of one authenticated caller.
    AdminRequests,
    /// Unexpired client assertions one client has on record (see `replay`).
    ClientAssertions,
}

impl Limit {
    pub fn describe(self) -> &'static str {
        match self {
            Limit::ClientFailures => {
                "too many failed authentications for this client ID from this address (limits.auth_failures_per_minute)"
            }
            Limit::AddressFailures => {
                "too many failed authentications from this address (limits.address_failures_per_minute)"
            }
            Limit::AdminAddressFailures => {
                "too many admin requests without valid credentials from this address (limits.address_failures_per_minute)"
            }
            Limit::AdminRequests => "too many admin requests from this caller (limits.admin_requests_per_minute)",
            Limit::ClientAssertions => {
                "this client has the most unexpired client assertions on record it may (50000); sign assertions with a shorter exp"
            }
        }
    }
}

/// The answer of a limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse; `retry_after` in whole seconds (≥ 1). `first` is true for
    /// the first refusal of a window (audited once, not once per request).
    Block {
        retry_after: u64,
        first: bool,
        limit: Limit,
    },
}

fn retry_after(start_ms: i64, now_ms: i64) -> u64 {
    let left = (start_ms + WINDOW_MS - now_ms).max(0);
    ((left + 999) / 1000).max(1) as u64
}

struct AddressWindow {
    start_ms: i64,
    failures: u32,
    by_client: HashMap<Box<str>, u32>,
    reported: bool,
}

/// Independent tables, by address hash: a failing address locks only its
/// shard, and a shard with nothing tracked costs an atomic load.
const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    /// Addresses tracked here: zero means there is nothing to check.
    tracked: AtomicUsize,
    windows: Mutex<HashMap<IpAddr, AddressWindow>>,
}

pub struct FailureThrottle {
    per_client: u32,
    per_address: u32,
    shards: Arc<[Shard; SHARDS]>,
    full_warned: AtomicBool,
    /// Cluster-wide counts (Redis), when configured.
    shared: Option<Arc<super::shared_failures::SharedFailures>>,
}

/// The shard an address key lives in. A cheap fold, not a keyed hash: the
/// shard only spreads lock contention (the table inside is a HashMap with
/// its own hasher).
fn shard_of<'a>(shards: &'a [Shard; SHARDS], key: &IpAddr) -> &'a Shard {
    let n = match key {
        IpAddr::V4(a) => u32::from(*a) as usize,
        IpAddr::V6(a) => a
            .segments()
            .iter()
            .fold(0usize, |h, s| h.wrapping_mul(31).wrapping_add(usize::from(*s))),
    };
    &shards[(n ^ (n >> 8) ^ (n >> 16)) % SHARDS]
}

/// Raises an address's window to the cluster-wide totals Redis reported
/// (never lowers it: this instance may have counted failures Redis missed).
fn raise(
    shards: &[Shard; SHARDS],
    key: IpAddr,
    client: Option<&str>,
    address_total: u32,
    client_total: u32,
    now_ms: i64,
) {
    let shard = shard_of(shards, &key);
    let mut windows = shard.windows.lock().unwrap_or_else(|p| p.into_inner());
    let Some(w) = windows.get_mut(&key) else {
        return; // swept meanwhile, or never tracked (table full)
    };
    if now_ms - w.start_ms >= WINDOW_MS {
        return;
    }
    w.failures = w.failures.max(address_total);
    if let Some(n) = client.and_then(|c| w.by_client.get_mut(c)) {
        *n = (*n).max(client_total);
    }
}

/// The key an address is counted under: IPv6 by /64, since one host
/// commonly holds a whole /64 and could otherwise rotate through it.
fn key_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// The per-address client key: bounded, the same when counted and looked up.
fn client_key(client_id: &str) -> &str {
    match client_id.char_indices().nth(64) {
        Some((i, _)) => &client_id[..i],
        None => client_id,
    }
}

impl FailureThrottle {
    pub fn new(per_client: u32, per_address: u32) -> Self {
        Self {
            per_client,
            per_address,
            shards: Arc::new(std::array::from_fn(|_| Shard::default())),
            full_warned: AtomicBool::new(false),
            shared: None,
        }
    }

    /// Counts failures cluster-wide through Redis as well.
    pub fn with_shared(mut self, shared: Arc<super::shared_failures::SharedFailures>) -> Self {
        self.shared = Some(shared);
        self
    }

    fn shard(&self, key: &IpAddr) -> &Shard {
        shard_of(&self.shards, key)
    }

    /// Whether a request from `address` authenticating as `client_id` may
    /// proceed to the secret check.
    pub fn check(&self, address: IpAddr, client_id: &str, now_ms: i64) -> Verdict {
        self.check_for(address, Some(client_id), now_ms)
    }

    /// Whether `address` is within its failure budget (for requests that
    /// name no client, e.g. admin requests without a valid token).
    pub fn check_address(&self, address: IpAddr, now_ms: i64) -> Verdict {
        self.check_for(address, None, now_ms)
    }

    fn check_for(&self, address: IpAddr, client_id: Option<&str>, now_ms: i64) -> Verdict {
        let key = key_of(address);
        let shard = self.shard(&key);
        if shard.tracked.load(Ordering::Relaxed) == 0 {
            return Verdict::Allow;
        }
        let mut windows = shard.windows.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = windows.get_mut(&key) else {
            return Verdict::Allow;
        };
        if now_ms - w.start_ms >= WINDOW_MS {
            windows.remove(&key);
            shard.tracked.store(windows.len(), Ordering::Relaxed);
            return Verdict::Allow;
        }
        let for_client = client_id.map_or(0, |c| w.by_client.get(client_key(c)).copied().unwrap_or(0));
        let limit = if w.failures >= self.per_address {
            Limit::AddressFailures
        } else if for_client >= self.per_client {
            Limit::ClientFailures
        } else {
            return Verdict::Allow;
        };
        let first = !w.reported;
        w.reported = true;
        Verdict::Block {
            retry_after: retry_after(w.start_ms, now_ms),
            first,
            limit,
        }
    }

    /// Counts one failed authentication.
    pub fn failed(&self, address: IpAddr, client_id: &str, now_ms: i64) {
        self.failed_for(address, Some(client_id), now_ms);
    }

    /// Counts one failure against the address alone.
    pub fn failed_address(&self, address: IpAddr, now_ms: i64) {
        self.failed_for(address, None, now_ms);
    }

    fn failed_for(&self, address: IpAddr, client_id: Option<&str>, now_ms: i64) {
        let key = key_of(address);
        let shard = self.shard(&key);
        let mut windows = shard.windows.lock().unwrap_or_else(|p| p.into_inner());
        let cap = MAX_ADDRESSES / SHARDS;
        if windows.len() >= cap && !windows.contains_key(&key) {
            windows.retain(|_, w| now_ms - w.start_ms < WINDOW_MS);
            if windows.len() >= cap {
                if !self.full_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        addresses = MAX_ADDRESSES,
                        "failed-authentication table is full; new addresses are not throttled until windows expire"
                    );
                }
                return;
            }
        }
        let w = windows.entry(key).or_insert_with(|| AddressWindow {
            start_ms: now_ms,
            failures: 0,
            by_client: HashMap::new(),
            reported: false,
        });
        if now_ms - w.start_ms >= WINDOW_MS {
            *w = AddressWindow {
                start_ms: now_ms,
                failures: 0,
                by_client: HashMap::new(),
                reported: false,
            };
        }
        w.failures = w.failures.saturating_add(1);
        if let Some(client) = client_id.map(client_key) {
            if let Some(n) = w.by_client.get_mut(client) {
                *n = n.saturating_add(1);
            } else if w.by_client.len() < MAX_CLIENTS_PER_ADDRESS {
                w.by_client.insert(client.into(), 1);
            }
        }
        shard.tracked.store(windows.len(), Ordering::Relaxed);
        drop(windows);
        if let (Some(shared), Ok(rt)) = (&self.shared, tokio::runtime::Handle::try_current()) {
            // Off the request's path: the answer to this failure does not
            // wait for Redis; the next request from here sees the totals.
            let (shared, shards) = (shared.clone(), self.shards.clone());
            let client = client_id.map(|c| client_key(c).to_owned());
            rt.spawn(async move {
                if let Some((address_total, client_total)) = shared.count(key, client.as_deref()).await {
                    raise(&shards, key, client.as_deref(), address_total, client_total, now_ms);
                }
            });
        }
    }

    /// Drops expired windows (called periodically).
    pub fn sweep(&self, now_ms: i64) {
        for shard in self.shards.iter() {
            let mut windows = shard.windows.lock().unwrap_or_else(|p| p.into_inner());
            windows.retain(|_, w| now_ms - w.start_ms < WINDOW_MS);
            shard.tracked.store(windows.len(), Ordering::Relaxed);
        }
        self.full_warned.store(false, Ordering::Relaxed);
    }
}

struct CallerWindow {
    start_ms: i64,
    requests: u32,
    reported: bool,
}

/// Admin API requests per caller per minute.
pub struct RequestLimiter {
    limit: u32,
    windows: Mutex<HashMap<String, CallerWindow>>,
}

impl RequestLimiter {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request by `caller` and says whether it may proceed.
    pub fn hit(&self, caller: &str, now_ms: i64) -> Verdict {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_CALLERS && !windows.contains_key(caller) {
            windows.retain(|_, w| now_ms - w.start_ms < WINDOW_MS);
            if windows.len() >= MAX_CALLERS {
                return Verdict::Allow;
            }
        }
        let w = windows.entry(caller.to_owned()).or_insert(CallerWindow {
            start_ms: now_ms,
            requests: 0,
            reported: false,
        });
        if now_ms - w.start_ms >= WINDOW_MS {
            *w = CallerWindow {
                start_ms: now_ms,
                requests: 0,
                reported: false,
            };
        }
        if w.requests >= self.limit {
            let first = !w.reported;
            w.reported = true;
            return Verdict::Block {
                retry_after: retry_after(w.start_ms, now_ms),
                first,
                limit: Limit::AdminRequests,
            };
        }
        w.requests += 1;
        Verdict::Allow
    }

    pub fn sweep(&self, now_ms: i64) {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, w| now_ms - w.start_ms < WINDOW_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn failures_past_the_limit_block_that_client_on_that_address_only() {
        let t = FailureThrottle::new(3, 10);
        for _ in 0..3 {
            assert_eq!(t.check(A, "c1", 0), Verdict::Allow);
            t.failed(A, "c1", 0);
        }
        assert_eq!(
            t.check(A, "c1", 1_000),
            Verdict::Block {
                retry_after: 59,
                first: true,
                limit: Limit::ClientFailures,
            }
        );
        assert!(matches!(t.check(A, "c1", 2_000), Verdict::Block { first: false, .. }));
        assert_eq!(t.check(A, "c2", 1_000), Verdict::Allow, "another client on A");
        assert_eq!(t.check(B, "c1", 1_000), Verdict::Allow, "the same client on B");
        assert_eq!(t.check(A, "c1", 60_000), Verdict::Allow, "after the window");
    }

    #[test]
    fn spraying_many_client_ids_trips_the_address_limit() {
        let t = FailureThrottle::new(3, 10);
        for i in 0..10 {
            t.failed(A, &format!("c{i}"), 0);
        }
        assert!(matches!(
            t.check(A, "fresh", 0),
            Verdict::Block {
                limit: Limit::AddressFailures,
                ..
            }
        ));
        assert_eq!(t.check(B, "fresh", 0), Verdict::Allow);
    }

    #[test]
    fn failures_without_a_client_count_only_against_the_address() {
        let t = FailureThrottle::new(3, 10);
        for _ in 0..9 {
            t.failed_address(A, 0);
        }
        assert_eq!(t.check_address(A, 0), Verdict::Allow, "9 of 10");
        assert_eq!(t.check(A, "c1", 0), Verdict::Allow, "no client's own budget was spent");
        t.failed_address(A, 0);
        assert!(matches!(
            t.check_address(A, 0),
            Verdict::Block {
                limit: Limit::AddressFailures,
                ..
            }
        ));
    }

    #[test]
    fn ipv6_addresses_are_counted_by_their_64_bit_prefix() {
        let t = FailureThrottle::new(2, 10);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        t.failed(a, "c", 0);
        t.failed(b, "c", 0);
        assert!(matches!(t.check(a, "c", 0), Verdict::Block { .. }), "same /64");
        assert_eq!(t.check(elsewhere, "c", 0), Verdict::Allow);
        let long = "x".repeat(500);
        t.failed(elsewhere, &long, 0);
        t.failed(elsewhere, &long, 0);
        assert!(
            matches!(t.check(elsewhere, &long, 0), Verdict::Block { .. }),
            "long ids count too"
        );
    }

    #[test]
    fn the_request_limiter_counts_per_caller_and_resets() {
        let l = RequestLimiter::new(2);
        assert_eq!(l.hit("a", 0), Verdict::Allow);
        assert_eq!(l.hit("a", 0), Verdict::Allow);
        assert!(matches!(l.hit("a", 0), Verdict::Block { first: true, .. }));
        assert_eq!(l.hit("b", 0), Verdict::Allow);
        assert_eq!(l.hit("a", 60_000), Verdict::Allow);
    }
}
