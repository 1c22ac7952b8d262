//! Persistence (DESIGN §1): the store is the source of truth.
//!
//! The trait is deliberately small — ordered keys, prefix scans, and atomic
//! batches that are durable when `apply` returns — so a second backend (SQL,
//! for scale-out) is one new file. Records are JSON under typed key prefixes
//! (see [`keys`]); the typed layer lives in [`crate::directory`].

pub mod memory;
pub mod sled;

pub use self::memory::MemoryStore;
pub use self::sled::SledStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("store schema version {found} is not supported (expected {expected})")]
    Schema { found: String, expected: &'static str },
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
    /// A cheap check that the backend still answers (for `/readyz`).
    fn ping(&self) -> Result<(), StoreError> {
        self.get(keys::SCHEMA_VERSION).map(|_| ())
    }
    /// False after a write failed, until a write succeeds again.
    fn healthy(&self) -> bool {
        true
    }
    /// A small durable write, to find out whether writes work again.
    fn probe_write(&self) -> Result<(), StoreError> {
        self.apply(&[Write::Put(
            keys::PROBE.into(),
            crate::domain::now_ms().to_be_bytes().to_vec(),
        )])
    }
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
