//! The directory: the in-memory view of everything in the store, the
//! hot-path index the token endpoint reads, and the one write path.
//!
//! DESIGN §1: `/oauth/token` touches no disk. Each application's credentials,
//! state and `access_rules` claim (pre-serialised) sit in an index keyed by
//! client ID, rebuilt from the store at start and replaced entry by entry on
//! every admin write.
//!
//! The one write path: lock (one async mutex) → authorise against the live
//! catalog (DESIGN §4 "Admin authority": gate, ceiling, never zero
//! administrators) → validate → persist the change *and its audit record*
//! in one flushed batch → apply to memory. So a 2xx always means "on disk",
//! memory never shows a write the store lacks, and the audit log never lacks
//! a change (or shows one that did not happen). `lastLogin` is tracked in
//! memory per application and written back in batches.

mod app_writes;
mod apps;
pub mod audit;
mod audit_log;
pub mod authority;
mod backup;
pub mod catalog;
mod codec;
mod cutoffs;
mod error;
mod federated_writes;
mod follow;
mod hot_index;
mod logins;
mod rule_writes;
mod scope_writes;
mod setup;
mod tls_client_writes;
pub mod views;
mod writer;

pub use app_writes::KeyCredentials;
pub use apps::{Apps, By};
pub use audit::{AuditActor, AuditEvent, AuditView, Outcome, RequestInfo, Target};
pub use authority::{Actor, Denied};
pub use catalog::{AppRow, Catalog, Credential, Cutoff, HotEntry, LoginClock};
use codec::{decode, encode, read_catalog};
pub use error::DirectoryError;
use error::not_found;
pub use federated_writes::FederatedChange;
pub use hot_index::Authenticated;
use hot_index::HotIndex;
pub use views::{AppView, RuleBrief, RuleView, ScopeView, scope_view};
use writer::{app_of, keep_an_administrator};

use crate::domain::access_rule::AccessRule;
use crate::domain::application::{AppName, Application, ClientId, PolicyChange, TokenPolicy};
use crate::domain::client_keys::ClientKeys;
use crate::domain::role::{self, SYSTEM_ADMINISTRATOR, perm};
use crate::domain::rotation::{Grace, RetiringSecret};
use crate::domain::scope::{Scope, ScopeType};
use crate::domain::secret::{ClientSecret, Pepper};
use crate::domain::{format_ms, new_id, now_ms};
use crate::store::{Store, StoreError, Write, keys};
use ring::rand::SystemRandom;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Who created the records made by `init`.
pub const SYSTEM: &str = "system";
pub const ADMIN_APP_NAME: &str = "admin";

pub struct Directory {
    store: Arc<dyn Store>,
    pepper: Pepper,
    rng: SystemRandom,
    /// How long a cut-off must be kept: the longest token lifetime this
    /// store's server has ever issued (recorded in the store), plus leeway.
    cutoff_ttl: i64,
    /// The audiences the issuer serves (`issuer.audiences`): what an
    /// application with no list of its own may get tokens for.
    audiences: Vec<String>,
    /// `issuer.token_ttl_seconds`: the lifetime of an application with no
    /// `tokenTtlSeconds` of its own.
    token_ttl: i64,
    catalog: RwLock<Catalog>,
    hot: RwLock<HotIndex>,
    writes: tokio::sync::Mutex<()>,
    /// With a change feed: the last change this catalog has applied.
    seen: std::sync::atomic::AtomicU64,
    /// Changes read from the feed that other owners (revocations, keys)
    /// have not collected yet: a catch-up before a write must not lose them.
    pending: std::sync::Mutex<Vec<crate::store::Change>>,
    /// Set by a full reload (see `follow`).
    reloaded: std::sync::atomic::AtomicBool,
    /// Audit records of tokens issued to federated identities, appended
    /// in batches (see `audit_log`).
    token_audit: std::sync::Mutex<audit_log::TokenAudit>,
}

impl Directory {
    /// Tells the directory which audiences the issuer serves.
    pub fn with_audiences(mut self, audiences: &[String]) -> Self {
        self.audiences = audiences.to_vec();
        self
    }

    /// A key derived from the store's pepper for `label` (e.g. DPoP nonces):
    /// shared by every instance, never stored.
    pub fn derive_key(&self, label: &[u8]) -> [u8; 32] {
        self.pepper.derive(label)
    }

    /// The longest token lifetime this store's server has ever issued.
    pub fn longest_ttl(&self) -> i64 {
        self.cutoff_ttl - crate::revocation::LEEWAY_SECONDS
    }

    /// Loads every record from the store, and records `token_ttl` as the
    /// longest lifetime ever issued when it is longer than the one stored.
    pub fn load(store: Arc<dyn Store>, pepper: Pepper, token_ttl: i64) -> Result<Self, StoreError> {
        crate::store::check_schema(store.as_ref())?;
        let stored_ttl: Option<i64> = store
            .get(keys::MAX_TOKEN_TTL)?
            .map(|v| decode(keys::MAX_TOKEN_TTL, &v))
            .transpose()?;
        if stored_ttl.is_none_or(|t| t < token_ttl) {
            // Durable before any token with this lifetime can be issued.
            store.apply(&[Write::Put(keys::MAX_TOKEN_TTL.into(), encode(&token_ttl))])?;
        }
        let cutoff_ttl = stored_ttl.unwrap_or(token_ttl).max(token_ttl) + crate::revocation::LEEWAY_SECONDS;
        // Changes committed while the records are read are applied again
        // by the first catch-up (applying a change twice is harmless).
        let seen = match store.feed() {
            Some(feed) => feed.head()?,
            None => 0,
        };
        let cat = read_catalog(store.as_ref())?;
        let hot = HotIndex::of(&cat);
        Ok(Self {
            store,
            pepper,
            rng: SystemRandom::new(),
            cutoff_ttl,
            audiences: Vec::new(),
            token_ttl,
            catalog: RwLock::new(cat),
            hot: RwLock::new(hot),
            writes: tokio::sync::Mutex::new(()),
            seen: std::sync::atomic::AtomicU64::new(seen),
            pending: std::sync::Mutex::default(),
            reloaded: std::sync::atomic::AtomicBool::new(false),
            token_audit: Default::default(),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Read access to the catalog; never hold it across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write_catalog(&self) -> RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_initialized(&self) -> Result<bool, StoreError> {
        Ok(self.store.get(keys::INITIALIZED)?.is_some())
    }
}

/// Input for a new access rule, before checking that its parts exist.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub subject_type: String,
    pub subject_id: String,
    pub role_id: String,
    pub scope_type: ScopeType,
    pub scope_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn directory(store: Arc<MemoryStore>, ttl: i64) -> Directory {
        Directory::load(store, Pepper::from_bytes(&[7u8; 32]), ttl).unwrap()
    }

    #[tokio::test]
    async fn audit_records_older_than_the_retention_are_purged_and_newer_ones_kept() {
        let store = Arc::new(MemoryStore::default());
        let dir = directory(store.clone(), 3600);
        dir.initialize(|_, _| Ok(()), || {}).await.unwrap();
        dir.create_app(
            AppName::parse("kept").unwrap(),
            Default::default(),
            Default::default(),
            &Actor::system(),
        )
        .await
        .unwrap();
        assert_eq!(dir.audit_events().unwrap().len(), 2);
        let first = dir.audit_events().unwrap()[0].at;
        assert_eq!(
            dir.purge_audit(first).await.unwrap(),
            0,
            "nothing older than the oldest"
        );
        assert_eq!(dir.purge_audit(now_ms() + 1).await.unwrap(), 2);
        assert!(dir.audit_events().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_longest_token_lifetime_ever_configured_is_remembered() {
        let store = Arc::new(MemoryStore::default());
        assert_eq!(
            directory(store.clone(), 7200).cutoff_ttl,
            7200 + crate::revocation::LEEWAY_SECONDS
        );
        assert_eq!(
            directory(store.clone(), 60).cutoff_ttl,
            7200 + crate::revocation::LEEWAY_SECONDS
        );
        assert_eq!(
            directory(store, 9000).cutoff_ttl,
            9000 + crate::revocation::LEEWAY_SECONDS
        );
    }
}
