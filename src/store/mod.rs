//! Persistence (DESIGN §1): the store is the source of truth.
//!
//! The trait is deliberately small — ordered keys, prefix scans, and atomic
//! batches that are durable when `apply` returns — so a second backend (SQL,
//! for scale-out) is one new file. Records are JSON under typed key prefixes
//! (see [`keys`]); the typed layer lives in [`crate::directory`].

pub mod backup;
pub mod memory;
pub mod postgres;
pub mod sled;

pub use self::memory::MemoryStore;
pub use self::postgres::PostgresStore;
pub use self::sled::SledStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("store schema version {found} is not supported (expected {expected})")]
    Schema { found: String, expected: &'static str },
    /// Another instance committed a directory change after the one this
    /// write was checked against; nothing was written.
    #[error("another instance changed the directory at the same moment")]
    Stale,
    /// The backend stopped answering while a write was under way: it may or
    /// may not have been committed.
    #[error("{0}; the change may or may not have been made")]
    Indeterminate(String),
    /// The database refused the batch because it would break a uniqueness
    /// constraint (`constraint` names it); nothing was written.
    #[error("the store refused a duplicate ({constraint})")]
    Duplicate { constraint: String },
    /// The change log no longer reaches back to what this instance has seen.
    #[error("the change log was purged past change {0}; a full reload is needed")]
    FeedGap(u64),
}

/// One change in an atomic batch.
#[derive(Debug, Clone)]
pub enum Write {
    Put(String, Vec<u8>),
    Delete(String),
}

pub trait Store: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every record whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Applies all writes or none; returns only once they are durable.
    fn apply(&self, writes: &[Write]) -> Result<(), StoreError>;
    /// Applies all writes or none, without waiting for them to be durable:
    /// for records whose loss in a crash loses nothing acknowledged (the
    /// audit entries of refused requests). The next `apply` makes them durable.
    fn append(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.apply(writes)
    }
    /// Side data that changes often and needs no transaction (the
    /// last-login times): replaced whole and atomically, durable on return.
    /// Kept out of the ordered store because rewriting thousands of keys
    /// every few seconds made sled's memory grow without bound.
    fn put_side(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError>;
    fn get_side(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records last-login times, keeping the later of the stored and the
    /// given time per application (instances never overwrite each other's
    /// newer times). This default keeps them in one side record.
    fn merge_logins(&self, changed: &[(String, i64)]) -> Result<(), StoreError> {
        let mut all: std::collections::BTreeMap<String, i64> = self.load_logins()?.into_iter().collect();
        for (id, at) in changed {
            let t = all.entry(id.clone()).or_insert(*at);
            *t = (*t).max(*at);
        }
        let mut table = String::new();
        for (id, at) in &all {
            table.push_str(id);
            table.push(' ');
            table.push_str(&at.to_string());
            table.push('\n');
        }
        self.put_side(LAST_LOGIN_SIDE, table.as_bytes())
    }
    /// Every recorded last-login time (`<app id> <unix ms>` lines in the
    /// side record by default).
    fn load_logins(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let Some(side) = self.get_side(LAST_LOGIN_SIDE)? else {
            return Ok(Vec::new());
        };
        Ok(String::from_utf8_lossy(&side)
            .lines()
            .filter_map(|line| {
                let (id, ms) = line.split_once(' ')?;
                Some((id.to_owned(), ms.parse().ok()?))
            })
            .collect())
    }
    /// A cheap check that the backend still answers (for `/readyz`).
    fn ping(&self) -> Result<(), StoreError> {
        self.get(keys::SCHEMA_VERSION).map(|_| ())
    }
    /// False after a write failed, until a write succeeds again.
    fn healthy(&self) -> bool {
        true
    }
    /// Makes everything written durable before the process exits.
    fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Gives back memory the backend holds for reads, once the directory
    /// has loaded everything it needs.
    fn release_cache(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The change feed, when other processes write to this store too
    /// (DESIGN §1 "Scale-out"); `None` when this process is the only writer.
    fn feed(&self) -> Option<&dyn ChangeFeed> {
        None
    }
    /// Every record and side record at one instant, for `appauth backup`;
    /// writes wait while it is taken. `None`: this backend is backed up
    /// with its own tools (PostgreSQL: `pg_dump`).
    fn snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        Ok(None)
    }
    /// Whether [`Self::snapshot`] takes snapshots.
    fn snapshots(&self) -> bool {
        false
    }
    /// A small durable write, to find out whether writes work again.
    fn probe_write(&self) -> Result<(), StoreError> {
        self.apply(&[Write::Put(
            keys::PROBE.into(),
            crate::domain::now_ms().to_be_bytes().to_vec(),
        )])
    }
}

/// The side record holding last-login times (`merge_logins`).
pub const LAST_LOGIN_SIDE: &str = "last-login";

/// Every side record name (what a backup copies besides the records).
pub const SIDES: &[&str] = &[LAST_LOGIN_SIDE];

/// The whole store at one instant (see [`Store::snapshot`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every record, in key order.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    pub sides: Vec<(String, Vec<u8>)>,
}

/// One committed change, as another instance learns of it: the key and
/// its value *now* (`None`: deleted), so applying a batch in order always
/// converges on the store's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// Keys whose changes other instances do not need (the audit log is read
/// from the store; the probe is local bookkeeping).
pub fn is_followed(key: &str) -> bool {
    !key.starts_with(keys::AUDIT) && key != keys::PROBE
}

/// Keys whose writes do not conflict with directory writes of other
/// instances (a revoked token is a fact on its own).
pub fn is_independent(key: &str) -> bool {
    key.starts_with(keys::REVOKED_JTI) || !is_followed(key)
}

/// How instances sharing one store learn of each other's writes: every
/// followed key written gets the next number of one gap-free sequence.
pub trait ChangeFeed: Send + Sync {
    /// The sequence number of the last committed change.
    fn head(&self) -> Result<u64, StoreError>;
    /// Up to `limit` changes after `seq`, in commit order, with each key's
    /// current value. `FeedGap` when the log was purged past `seq`.
    fn since(&self, seq: u64, limit: usize) -> Result<Vec<Change>, StoreError>;
    /// Applies `writes` atomically and durably, unless a change to a
    /// dependent key (see [`is_independent`]) was committed after `seen`:
    /// then nothing is written and the answer is `Stale`. Returns the
    /// sequence number of the last change written (or `seen`).
    fn apply_after(&self, seen: u64, writes: &[Write]) -> Result<u64, StoreError>;
    /// Woken whenever a change may have been committed elsewhere.
    fn signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
}

/// The key layout. Prefixes end in `/` so a scan never matches a longer one.
pub mod keys {
    pub const SCHEMA_VERSION: &str = "meta/schema_version";
    /// Rewritten by the write probe while the store is failing.
    pub const PROBE: &str = "meta/write_probe";
    pub const INITIALIZED: &str = "meta/initialized";
    pub const CURRENT_SCHEMA: &str = "1";
    pub const APP: &str = "app/";
    pub const RULE: &str = "rule/";
    pub const SCOPE: &str = "scope/";
    pub const LAST_LOGIN: &str = "login/";
    pub const REVOKED_JTI: &str = "revoked/";
    pub const CUTOFF: &str = "cutoff/";
    pub const AUDIT: &str = "audit/";
    /// The longest token lifetime this store's server has ever issued.
    pub const MAX_TOKEN_TTL: &str = "meta/max_token_ttl";

    pub fn app(id: &str) -> String {
        format!("{APP}{id}")
    }
    pub fn rule(id: &str) -> String {
        format!("{RULE}{id}")
    }
    pub fn scope(id: &str) -> String {
        format!("{SCOPE}{id}")
    }
    pub fn last_login(app_id: &str) -> String {
        format!("{LAST_LOGIN}{app_id}")
    }
    pub fn cutoff(client_id: &str) -> String {
        format!("{CUTOFF}{client_id}")
    }
    /// Time-ordered: zero-padded Unix ms, then the record id.
    pub fn audit(at_ms: i64, id: &str) -> String {
        format!("{AUDIT}{:016}-{id}", at_ms.max(0))
    }
    pub fn revoked_jti(jti: &str) -> String {
        format!("{REVOKED_JTI}{jti}")
    }
}

/// Checks (and on an empty store, writes) the schema version record.
pub fn check_schema(store: &dyn Store) -> Result<(), StoreError> {
    match store.get(keys::SCHEMA_VERSION)? {
        None => store.apply(&[Write::Put(
            keys::SCHEMA_VERSION.into(),
            keys::CURRENT_SCHEMA.as_bytes().to_vec(),
        )]),
        Some(v) if v == keys::CURRENT_SCHEMA.as_bytes() => Ok(()),
        Some(v) => Err(StoreError::Schema {
            found: String::from_utf8_lossy(&v).into_owned(),
            expected: keys::CURRENT_SCHEMA,
        }),
    }
}
