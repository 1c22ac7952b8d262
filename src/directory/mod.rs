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

mod apps;
pub mod audit;
pub mod authority;
pub mod catalog;
mod follow;
pub mod views;

pub use apps::Apps;
pub use audit::{AuditActor, AuditEvent, AuditView, Outcome, RequestInfo, Target};
pub use authority::{Actor, Denied};
pub use catalog::{AppRow, Catalog, Credential, Cutoff, HotEntry, LoginClock};
pub use views::{AppView, RuleBrief, RuleView, ScopeView, scope_view};

use crate::domain::access_rule::AccessRule;
use crate::domain::application::{AppName, Application, ClientId};
use crate::domain::role::{self, SYSTEM_ADMINISTRATOR, perm};
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

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    /// Another instance committed a directory change between this write's
    /// catch-up and its commit; nothing was written. Retried inside the
    /// directory (see `retry_stale`) before it reaches a client.
    #[error("another appauth instance changed the directory at the same moment; nothing was changed, retry the request")]
    Stale,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DirectoryError {
    fn from(e: StoreError) -> Self {
        match e {
            // Checked against a catalog another instance had just changed:
            // nothing was written, and the next attempt sees the change.
            StoreError::Stale => Self::Stale,
            // The database's own uniqueness check caught what the catalog
            // check let through (a writer that bypassed this code).
            StoreError::Duplicate { constraint } => Self::Conflict(duplicate_message(&constraint).into()),
            e => Self::Store(e),
        }
    }
}

fn duplicate_message(constraint: &str) -> &'static str {
    match constraint {
        "appauth_unique_app_name" => "an application with this name already exists; nothing was changed",
        "appauth_unique_rule" => "this application already has this role on this scope; nothing was changed",
        "appauth_unique_scope_name" => "this parent scope already has a child with this name; nothing was changed",
        "appauth_unique_tenant" => "the tenant scope already exists; there is only one",
        _ => "the store refused a duplicate record; nothing was changed",
    }
}

impl DirectoryError {
    /// The HTTP status the admin API answers this with (also audited).
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::Conflict(_) | Self::Stale => 409,
            Self::Invalid(_) => 400,
            Self::Forbidden(_) => 403,
            Self::Store(_) => 503,
        }
    }
}

impl From<Denied> for DirectoryError {
    fn from(d: Denied) -> Self {
        Self::Forbidden(d.0)
    }
}

fn not_found(what: &'static str, id: &str) -> DirectoryError {
    DirectoryError::NotFound {
        what,
        id: id.to_owned(),
    }
}

pub struct Directory {
    store: Arc<dyn Store>,
    pepper: Pepper,
    rng: SystemRandom,
    /// How long a cut-off must be kept: the longest token lifetime this
    /// store's server has ever issued (recorded in the store), plus leeway.
    cutoff_ttl: i64,
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
}

type HotIndex = HashMap<Box<str>, Arc<HotEntry>>;

/// Reads every record into a fresh catalog and hot index.
fn read_catalog(store: &dyn Store) -> Result<(Catalog, HotIndex), StoreError> {
    let mut cat = Catalog::default();
    for (k, v) in store.scan_prefix(keys::SCOPE)? {
        let s: Scope = decode(&k, &v)?;
        if s.scope_type == ScopeType::Tenant {
            cat.tenant_id = Some(s.id.clone());
        }
        cat.scopes.insert(s.id.clone(), s);
    }
    let mut logins: HashMap<String, i64> = HashMap::new();
    // Per-key records from earlier versions, then the side file.
    for (k, v) in store.scan_prefix(keys::LAST_LOGIN)? {
        logins.insert(k[keys::LAST_LOGIN.len()..].to_owned(), decode(&k, &v)?);
    }
    for (id, at) in store.load_logins()? {
        let t = logins.entry(id).or_insert(at);
        *t = (*t).max(at);
    }
    for (k, v) in store.scan_prefix(keys::APP)? {
        let app: Application = decode(&k, &v)?;
        let login = Arc::new(LoginClock::default());
        if let Some(&t) = logins.get(&app.id) {
            login.seen.store(t, Ordering::Relaxed);
            login.saved.store(t, Ordering::Relaxed);
        }
        cat.names.insert(app.name.as_str().to_owned(), app.id.clone());
        cat.apps.insert(app.id.clone(), AppRow::new(app, login));
    }
    for (k, v) in store.scan_prefix(keys::RULE)? {
        cat.insert_rule(decode(&k, &v)?);
    }
    cat.sort_rules();
    for (k, v) in store.scan_prefix(keys::CUTOFF)? {
        cat.cutoffs.insert(k[keys::CUTOFF.len()..].to_owned(), decode(&k, &v)?);
    }
    let hot: HotIndex = cat
        .apps
        .values()
        .map(|row| (Box::from(row.app.client_id.as_str()), Arc::new(cat.hot_entry(row))))
        .collect();
    Ok((cat, hot))
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising plain records to JSON cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Refuses a change that would leave no enabled application holding
/// *System administrator* on the tenant (nobody could administer appauth).
fn keep_an_administrator(cat: &Catalog, losing: &str, what: &str) -> Result<(), DirectoryError> {
    if cat.system_administrators() == [losing] {
        let name = cat.apps.get(losing).map_or("", |r| r.app.name.as_str());
        return Err(DirectoryError::Conflict(format!(
            "cannot {what}: application {name:?} is the last enabled application holding System administrator on the tenant, and appauth would be left with no administrator; grant that role to another application first"
        )));
    }
    Ok(())
}

/// The application behind a target id, or 404.
fn app_of(cat: &Catalog, id: &str) -> Result<Application, DirectoryError> {
    cat.apps
        .get(id)
        .map(|r| r.app.clone())
        .ok_or_else(|| not_found("application", id))
}

impl Directory {
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
        let (cat, hot) = read_catalog(store.as_ref())?;
        Ok(Self {
            store,
            pepper,
            rng: SystemRandom::new(),
            cutoff_ttl,
            catalog: RwLock::new(cat),
            hot: RwLock::new(hot),
            writes: tokio::sync::Mutex::new(()),
            seen: std::sync::atomic::AtomicU64::new(seen),
            pending: std::sync::Mutex::default(),
            reloaded: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Read access to the catalog; never hold it across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_catalog(&self) -> RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_initialized(&self) -> Result<bool, StoreError> {
        Ok(self.store.get(keys::INITIALIZED)?.is_some())
    }

    /// The token endpoint's client check (RFC 6749 §2.3.1). Unknown clients
    /// cost one HMAC against a dummy tag, like a known client with a wrong
    /// secret; disabled clients are checked only after the secret, so all
    /// three failures take the same path and time.
    pub fn authenticate(&self, client_id: &str, secret: &str) -> Option<Arc<HotEntry>> {
        let entry = self
            .hot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            .cloned();
        let ok = self.pepper.verify(secret, entry.as_ref().map(|e| &e.secret_hash));
        entry.filter(|e| ok && e.enabled)
    }

    /// The hot entry for a client, if it exists (enabled or not).
    pub fn entry(&self, client_id: &str) -> Option<Arc<HotEntry>> {
        self.hot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            .cloned()
    }

    /// Tokens of `client_id` with `iat` before the returned instant are revoked.
    pub fn cutoff(&self, client_id: &str) -> Option<Cutoff> {
        self.read().cutoffs.get(client_id).copied()
    }

    /// Makes a directory write durable. With a change feed, only if no
    /// other instance changed the directory since this catalog was caught
    /// up (`Stale` otherwise), so checks made on it hold cluster-wide.
    async fn persist(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let store = self.store.clone();
        let seen = self.seen.load(Ordering::Acquire);
        tokio::task::spawn_blocking(move || match store.feed() {
            Some(feed) => feed.apply_after(seen, &writes).map(|_| ()),
            None => store.apply(&writes),
        })
        .await
        .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
    }

    /// Runs a checked write again when another instance's change landed
    /// between its catch-up and its commit (`Stale`: nothing was written).
    /// Each attempt catches up and checks again from scratch, so a retry can
    /// only end in the answer the write would have had a moment later —
    /// including a 409 "name taken" when the other change took the name.
    /// Through a load balancer, concurrent admin writes are normal; without
    /// this every one of them risked a 409 the client had to retry.
    async fn retry_stale<T, F, Fut>(&self, mut attempt: F) -> Result<T, DirectoryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DirectoryError>>,
    {
        const ATTEMPTS: u32 = 8;
        for n in 1..ATTEMPTS {
            match attempt().await {
                Err(DirectoryError::Stale) => {
                    // Jittered, so two instances that collided do not collide again.
                    let mut b = [0u8; 1];
                    let _ = ring::rand::SecureRandom::fill(&self.rng, &mut b);
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(n) * (1 + u64::from(b[0] % 8))))
                        .await;
                }
                other => return other,
            }
        }
        attempt().await
    }

    /// The write lock, with the catalog caught up with other instances'
    /// changes (a no-op without a change feed). A failed catch-up is not
    /// an error here: the write's own persist then fails the same way.
    async fn lock_for_write(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let guard = self.writes.lock().await;
        if self.store.feed().is_some()
            && let Err(e) = self.catch_up_locked().await
        {
            tracing::warn!(error = %e, "could not catch up with other instances before a write");
        }
        guard
    }

    fn refresh_hot(&self, cat: &Catalog, app_ids: &[&str]) {
        let mut hot = self.hot.write().unwrap_or_else(|p| p.into_inner());
        for id in app_ids {
            if let Some(row) = cat.apps.get(id) {
                hot.insert(Box::from(row.app.client_id.as_str()), Arc::new(cat.hot_entry(row)));
            }
        }
    }

    fn new_app(&self, name: AppName, by: &str) -> (Application, ClientSecret) {
        let secret = ClientSecret::generate(&self.rng);
        let now = now_ms();
        let app = Application {
            id: new_id(),
            name,
            client_id: ClientId::generate(),
            secret_hash: self.pepper.hash(&secret),
            enabled: true,
            created_by: by.to_owned(),
            created_at: now,
            updated_at: now,
        };
        (app, secret)
    }

    /// The audit record of a successful write, to go in the write's batch.
    fn success(actor: &Actor, action: &str, target: &Target, status: u16, summary: String) -> Write {
        AuditEvent::new(
            actor.audit_actor(),
            &actor.request,
            action,
            target,
            Outcome::Success,
            status,
            summary,
        )
        .write()
    }

    /// Records a refused or failed write (nothing else changes) and hands
    /// the error back. Appended without a flush, like other refusals: no
    /// change depends on it, and a flood of refused writes must not become
    /// a flood of fsyncs under the write lock. A store failure is not
    /// audited: the store is what failed.
    async fn reject(&self, actor: &Actor, action: &str, target: &Target, e: DirectoryError) -> DirectoryError {
        // Nothing happened: the store failed, or the attempt will be retried.
        if matches!(e, DirectoryError::Store(_) | DirectoryError::Stale) {
            return e;
        }
        let outcome = if matches!(e, DirectoryError::Forbidden(_)) {
            Outcome::Refused
        } else {
            Outcome::Failed
        };
        let ev = AuditEvent::new(
            actor.audit_actor(),
            &actor.request,
            action,
            target,
            outcome,
            e.status(),
            e.to_string(),
        );
        let store = self.store.clone();
        let appended = tokio::task::spawn_blocking(move || store.append(&[ev.write()])).await;
        if !matches!(appended, Ok(Ok(()))) {
            tracing::error!(action, "could not record a refused admin write in the audit log");
        }
        e
    }

    /// Records a refused admin request that reached no write (401, 403 on a
    /// read, 429). Appended without a flush: nothing acknowledged depends on it.
    pub async fn audit_refusal(
        &self,
        actor: AuditActor,
        request: &RequestInfo,
        action: &str,
        target: &Target,
        status: u16,
        summary: String,
    ) {
        let ev = AuditEvent::new(actor, request, action, target, Outcome::Refused, status, summary);
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || store.append(&[ev.write()])).await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::error!(action, "could not record a refused admin request in the audit log");
        }
    }

    /// Every audit record, oldest first (off the async runtime: it reads the store).
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>, StoreError> {
        self.store
            .scan_prefix(keys::AUDIT)?
            .iter()
            .map(|(k, v)| decode(k, v))
            .collect()
    }

    /// Deletes audit records older than `before_ms`; returns how many.
    pub async fn purge_audit(&self, before_ms: i64) -> Result<usize, StoreError> {
        let store = self.store.clone();
        let limit = keys::audit(before_ms, "");
        tokio::task::spawn_blocking(move || {
            let stale: Vec<Write> = store
                .scan_prefix(keys::AUDIT)?
                .into_iter()
                .map(|(k, _)| k)
                .take_while(|k| *k < limit)
                .map(Write::Delete)
                .collect();
            if !stale.is_empty() {
                store.apply(&stale)?;
            }
            Ok(stale.len())
        })
        .await
        .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
    }

    /// The cut-off for "every token issued until now", read *after* the
    /// credential was retired (see [`Credential`]). `iat` has one-second
    /// resolution, so the cut-off is the next whole second; and it must be
    /// later than the client's previous cut-off (tokens issued after that one
    /// carry `iat` ≥ it), so a second cut-off within the same second waits
    /// for the clock — at most a second, and only for the one client.
    async fn next_cutoff(&self, client_id: &str) -> Cutoff {
        let previous = self.cutoff(client_id).map(|c| c.before);
        loop {
            let now = now_ms();
            let before = now.div_euclid(1000) + 1;
            if previous.is_none_or(|p| before > p) {
                return Cutoff {
                    before,
                    expires: before + self.cutoff_ttl,
                };
            }
            let wait = 1000 - now.rem_euclid(1000) + 1;
            tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
        }
    }

    /// First start on an empty store: the tenant scope and the `admin`
    /// application with *System administrator* on it. `None` when the
    /// store was already initialised.
    ///
    /// `hand_over` receives the credentials *before* they are committed
    /// (e.g. writes `initial-admin.json`): a crash between the two leaves
    /// either an empty store, which the next start initialises again, or
    /// credentials already saved — never an administrator nobody can use.
    /// `withdraw` undoes the hand-over when these credentials were not
    /// committed (a failed write, or another instance sharing the store
    /// initialised it first).
    pub async fn initialize(
        &self,
        hand_over: impl FnOnce(&Application, &ClientSecret) -> Result<(), String>,
        withdraw: impl FnOnce(),
    ) -> Result<Option<(Application, ClientSecret)>, DirectoryError> {
        let _w = self.lock_for_write().await;
        if self.is_initialized()? {
            return Ok(None);
        }
        let now = now_ms();
        let tenant = Scope {
            id: new_id(),
            scope_type: ScopeType::Tenant,
            name: "Tenant".into(),
            parent_id: None,
            created_by: SYSTEM.into(),
            created_at: now,
        };
        let name = AppName::parse(ADMIN_APP_NAME).map_err(DirectoryError::Invalid)?;
        let (app, secret) = self.new_app(name, SYSTEM);
        let rule = AccessRule {
            id: new_id(),
            subject_type: "app".into(),
            subject_id: app.id.clone(),
            role_id: role::SYSTEM_ADMINISTRATOR.into(),
            scope_type: ScopeType::Tenant,
            scope_id: tenant.id.clone(),
            created_by: SYSTEM.into(),
            created_at: now,
        };
        let audit = Self::success(
            &Actor::system(),
            "store.initialize",
            &Target::new("application", &app.id, app.name.as_str()),
            201,
            "initialised the store: tenant scope, and application \"admin\" with System administrator on it".into(),
        );
        hand_over(&app, &secret).map_err(|e| DirectoryError::Store(StoreError::Io(e)))?;
        let writes = vec![
            Write::Put(keys::scope(&tenant.id), encode(&tenant)),
            Write::Put(keys::app(&app.id), encode(&app)),
            Write::Put(keys::rule(&rule.id), encode(&rule)),
            Write::Put(keys::INITIALIZED.into(), encode(&now)),
            audit,
        ];
        // Instances starting together on an empty shared store: the first
        // commit wins; the others learn its records and hand nothing out.
        let mut persisted = self.persist(writes.clone()).await;
        for _ in 0..5 {
            if !matches!(persisted, Err(StoreError::Stale)) {
                break;
            }
            self.catch_up_locked().await?;
            if self.is_initialized()? {
                withdraw();
                return Ok(None);
            }
            persisted = self.persist(writes.clone()).await;
        }
        if let Err(e) = persisted {
            // Unconfirmed: the admin may exist, so its credentials stay.
            if !matches!(e, StoreError::Indeterminate(_)) {
                withdraw();
            }
            return Err(e.into());
        }
        let mut cat = self.write_catalog();
        cat.tenant_id = Some(tenant.id.clone());
        cat.scopes.insert(tenant.id.clone(), tenant);
        cat.names.insert(app.name.as_str().to_owned(), app.id.clone());
        cat.apps
            .insert(app.id.clone(), AppRow::new(app.clone(), Arc::default()));
        cat.insert_rule(rule);
        self.refresh_hot(&cat, &[&app.id]);
        Ok(Some((app, secret)))
    }

    /// `appauth admin recover`: a new application holding *System
    /// administrator* on the tenant, for when every administrator's
    /// credentials are lost. Run offline, by the operator, as the server.
    pub async fn recover(&self) -> Result<(Application, ClientSecret), DirectoryError> {
        let _w = self.lock_for_write().await;
        let tenant = self.read().tenant_id.clone().ok_or_else(|| {
            DirectoryError::Conflict("the store is not initialised; run `appauth init` instead".into())
        })?;
        let mut suffix = [0u8; 3];
        ring::rand::SecureRandom::fill(&self.rng, &mut suffix)
            .map_err(|_| DirectoryError::Store(StoreError::Io("no randomness".into())))?;
        let name = format!("recovery-admin-{:02x}{:02x}{:02x}", suffix[0], suffix[1], suffix[2]);
        let name = AppName::parse(&name).map_err(DirectoryError::Invalid)?;
        let (app, secret) = self.new_app(name, SYSTEM);
        let rule = AccessRule {
            id: new_id(),
            subject_type: "app".into(),
            subject_id: app.id.clone(),
            role_id: SYSTEM_ADMINISTRATOR.into(),
            scope_type: ScopeType::Tenant,
            scope_id: tenant,
            created_by: SYSTEM.into(),
            created_at: now_ms(),
        };
        let audit = Self::success(
            &Actor::system(),
            "store.recover",
            &Target::new("application", &app.id, app.name.as_str()),
            201,
            format!(
                "appauth admin recover: created application {:?} with System administrator on the tenant",
                app.name.as_str()
            ),
        );
        self.persist(vec![
            Write::Put(keys::app(&app.id), encode(&app)),
            Write::Put(keys::rule(&rule.id), encode(&rule)),
            audit,
        ])
        .await?;
        let mut cat = self.write_catalog();
        cat.names.insert(app.name.as_str().to_owned(), app.id.clone());
        cat.apps
            .insert(app.id.clone(), AppRow::new(app.clone(), Arc::default()));
        cat.insert_rule(rule);
        self.refresh_hot(&cat, &[&app.id]);
        Ok((app, secret))
    }

    pub async fn create_app(
        &self,
        name: AppName,
        actor: &Actor,
    ) -> Result<(Application, ClientSecret), DirectoryError> {
        self.retry_stale(|| self.create_app_once(name.clone(), actor)).await
    }

    async fn create_app_once(
        &self,
        name: AppName,
        actor: &Actor,
    ) -> Result<(Application, ClientSecret), DirectoryError> {
        let _w = self.lock_for_write().await;
        let target = Target::new("application", "-", name.as_str());
        let checked = {
            let cat = self.read();
            cat.authorize(actor, perm::APPS_WRITE)
                .map_err(DirectoryError::from)
                .and_then(|_| {
                    if cat.names.contains_key(name.as_str()) {
                        Err(DirectoryError::Conflict(format!(
                            "an application named {name:?} already exists"
                        )))
                    } else {
                        Ok(())
                    }
                })
        };
        if let Err(e) = checked {
            return Err(self.reject(actor, "app.create", &target, e).await);
        }
        let (app, secret) = self.new_app(name, &actor.client_id);
        let audit = Self::success(
            actor,
            "app.create",
            &Target::new("application", &app.id, app.name.as_str()),
            201,
            format!(
                "created application {:?} (client ID {})",
                app.name.as_str(),
                app.client_id.as_str()
            ),
        );
        self.persist(vec![Write::Put(keys::app(&app.id), encode(&app)), audit])
            .await?;
        let mut cat = self.write_catalog();
        cat.names.insert(app.name.as_str().to_owned(), app.id.clone());
        cat.apps
            .insert(app.id.clone(), AppRow::new(app.clone(), Arc::default()));
        self.refresh_hot(&cat, &[&app.id]);
        Ok((app, secret))
    }

    /// The checks every write on an existing application shares: the gate,
    /// the target exists, and the target is within the caller's ceiling.
    fn check_app_write(&self, actor: &Actor, id: &str, permission: &str) -> Result<Application, DirectoryError> {
        let cat = self.read();
        let held = cat.authorize(actor, permission)?;
        let app = app_of(&cat, id)?;
        cat.check_target(actor, &held, id)?;
        Ok(app)
    }

    fn app_target(&self, id: &str) -> Target {
        let cat = self.read();
        let name = cat.apps.get(id).map_or("", |r| r.app.name.as_str());
        Target::new("application", id, name)
    }

    /// Enables or disables an application. Disabling revokes every token
    /// issued so far; re-enabling does not bring them back.
    pub async fn set_enabled(&self, id: &str, enabled: bool, actor: &Actor) -> Result<Application, DirectoryError> {
        self.retry_stale(|| self.set_enabled_once(id, enabled, actor)).await
    }

    async fn set_enabled_once(&self, id: &str, enabled: bool, actor: &Actor) -> Result<Application, DirectoryError> {
        let _w = self.lock_for_write().await;
        let action = if enabled { "app.enable" } else { "app.disable" };
        let target = self.app_target(id);
        let checked = self.check_app_write(actor, id, perm::APPS_WRITE).and_then(|app| {
            if !enabled && app.enabled {
                keep_an_administrator(&self.read(), id, "disable it")?;
            }
            Ok(app)
        });
        let mut app = match checked {
            Ok(app) => app,
            Err(e) => return Err(self.reject(actor, action, &target, e).await),
        };
        if app.enabled == enabled {
            let note = format!("enabled: already {enabled}; nothing changed");
            self.persist(vec![Self::success(actor, action, &target, 200, note)])
                .await?;
            return Ok(app);
        }
        app.enabled = enabled;
        app.updated_at = now_ms();
        let credential = self.read().apps.get(id).map(|r| r.credential.clone());
        let cutoff = if enabled {
            None
        } else {
            // Retire before reading the clock for the cut-off (see `Credential`).
            if let Some(c) = &credential {
                c.retire();
            }
            Some(self.next_cutoff(app.client_id.as_str()).await)
        };
        let summary = match cutoff {
            Some(c) => format!(
                "enabled: true -> false; tokens issued before {} revoked",
                format_ms(c.before * 1000)
            ),
            None => "enabled: false -> true".into(),
        };
        let mut writes = vec![
            Write::Put(keys::app(&app.id), encode(&app)),
            Self::success(actor, action, &target, 200, summary),
        ];
        if let Some(c) = cutoff {
            writes.push(Write::Put(keys::cutoff(app.client_id.as_str()), encode(&c)));
        }
        if let Err(e) = self.persist(writes).await {
            if let Some(c) = &credential {
                c.restore();
            }
            return Err(e.into());
        }
        let mut cat = self.write_catalog();
        if let Some(c) = cutoff {
            cat.cutoffs.insert(app.client_id.as_str().to_owned(), c);
        }
        cat.apps.update(id, |row| {
            row.app = app.clone();
            if enabled {
                row.credential = Arc::default();
            }
        });
        self.refresh_hot(&cat, &[id]);
        Ok(app)
    }

    /// A new secret; the old one stops working and every earlier token is revoked.
    pub async fn regenerate_secret(
        &self,
        id: &str,
        actor: &Actor,
    ) -> Result<(Application, ClientSecret), DirectoryError> {
        self.retry_stale(|| self.regenerate_secret_once(id, actor)).await
    }

    async fn regenerate_secret_once(
        &self,
        id: &str,
        actor: &Actor,
    ) -> Result<(Application, ClientSecret), DirectoryError> {
        let _w = self.lock_for_write().await;
        let target = self.app_target(id);
        let mut app = match self.check_app_write(actor, id, perm::APPS_WRITE) {
            Ok(app) => app,
            Err(e) => return Err(self.reject(actor, "app.regenerate-secret", &target, e).await),
        };
        let secret = ClientSecret::generate(&self.rng);
        app.secret_hash = self.pepper.hash(&secret);
        app.updated_at = now_ms();
        let credential = self.read().apps.get(id).map(|r| r.credential.clone());
        if let Some(c) = &credential {
            c.retire();
        }
        let cutoff = self.next_cutoff(app.client_id.as_str()).await;
        let audit = Self::success(
            actor,
            "app.regenerate-secret",
            &target,
            200,
            format!(
                "client secret replaced; the old one stopped working and tokens issued before {} were revoked",
                format_ms(cutoff.before * 1000)
            ),
        );
        let persisted = self
            .persist(vec![
                Write::Put(keys::app(&app.id), encode(&app)),
                Write::Put(keys::cutoff(app.client_id.as_str()), encode(&cutoff)),
                audit,
            ])
            .await;
        if let Err(e) = persisted {
            if let Some(c) = &credential {
                c.restore();
            }
            return Err(e.into());
        }
        let mut cat = self.write_catalog();
        cat.cutoffs.insert(app.client_id.as_str().to_owned(), cutoff);
        cat.apps.update(id, |row| {
            row.app = app.clone();
            row.credential = Arc::default();
        });
        self.refresh_hot(&cat, &[id]);
        Ok((app, secret))
    }

    /// Deletes an application, its access rules and its last-login record,
    /// and revokes every token it was issued.
    pub async fn delete_app(&self, id: &str, actor: &Actor) -> Result<Application, DirectoryError> {
        self.retry_stale(|| self.delete_app_once(id, actor)).await
    }

    async fn delete_app_once(&self, id: &str, actor: &Actor) -> Result<Application, DirectoryError> {
        let _w = self.lock_for_write().await;
        let target = self.app_target(id);
        let checked = self
            .check_app_write(actor, id, perm::APPS_WRITE)
            .and_then(|app| keep_an_administrator(&self.read(), id, "delete it").map(|()| app));
        let app = match checked {
            Ok(app) => app,
            Err(e) => return Err(self.reject(actor, "app.delete", &target, e).await),
        };
        let (rule_ids, credential) = {
            let cat = self.read();
            let ids: Vec<String> = cat.rules_of(id).map(|r| r.id.clone()).collect();
            (ids, cat.apps.get(id).map(|r| r.credential.clone()))
        };
        if let Some(c) = &credential {
            c.retire();
        }
        let cutoff = self.next_cutoff(app.client_id.as_str()).await;
        let mut writes = vec![
            Write::Delete(keys::app(id)),
            Write::Delete(keys::last_login(id)),
            Write::Put(keys::cutoff(app.client_id.as_str()), encode(&cutoff)),
            Self::success(
                actor,
                "app.delete",
                &target,
                204,
                format!(
                    "deleted application {:?} (client ID {}) with {} access rule(s); its tokens were revoked",
                    app.name.as_str(),
                    app.client_id.as_str(),
                    rule_ids.len()
                ),
            ),
        ];
        writes.extend(rule_ids.iter().map(|r| Write::Delete(keys::rule(r))));
        if let Err(e) = self.persist(writes).await {
            if let Some(c) = &credential {
                c.restore();
            }
            return Err(e.into());
        }
        let mut cat = self.write_catalog();
        cat.cutoffs.insert(app.client_id.as_str().to_owned(), cutoff);
        cat.apps.remove(id);
        cat.names.remove(app.name.as_str());
        cat.rules_by_app.remove(id);
        for r in &rule_ids {
            cat.rules.remove(r);
        }
        self.hot
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(app.client_id.as_str());
        Ok(app)
    }

    pub async fn create_rule(&self, input: NewRule, actor: &Actor) -> Result<AccessRule, DirectoryError> {
        self.retry_stale(|| self.create_rule_once(input.clone(), actor)).await
    }

    async fn create_rule_once(&self, input: NewRule, actor: &Actor) -> Result<AccessRule, DirectoryError> {
        let _w = self.lock_for_write().await;
        let target = self.app_target(&input.subject_id);
        let checked = {
            let cat = self.read();
            (|| {
                let held = cat.authorize(actor, perm::RULES_WRITE)?;
                if input.subject_type != "app" {
                    return Err(DirectoryError::Invalid(format!(
                        "subjectType {:?} is not supported; the only subject type is \"app\"",
                        input.subject_type
                    )));
                }
                if !cat.apps.contains_key(&input.subject_id) {
                    return Err(not_found("application", &input.subject_id));
                }
                if role::find(&input.role_id).is_none() {
                    return Err(not_found("role", &input.role_id));
                }
                let scope = cat
                    .scopes
                    .get(&input.scope_id)
                    .ok_or_else(|| not_found("scope", &input.scope_id))?;
                if scope.scope_type != input.scope_type {
                    return Err(DirectoryError::Invalid(format!(
                        "scope {:?} is a {}, not a {}",
                        input.scope_id, scope.scope_type, input.scope_type
                    )));
                }
                cat.check_not_self(actor, &input.subject_id)?;
                cat.check_target(actor, &held, &input.subject_id)?;
                cat.check_role_on_scope(actor, &held, &input.role_id, &input.scope_id)?;
                let duplicate = cat
                    .rules_of(&input.subject_id)
                    .any(|r| r.role_id == input.role_id && r.scope_id == input.scope_id);
                if duplicate {
                    return Err(DirectoryError::Conflict(
                        "this application already has this role on this scope".into(),
                    ));
                }
                Ok(format!(
                    "granted {} on {} {:?}",
                    role::find(&input.role_id).map_or("", |r| r.name),
                    scope.scope_type,
                    scope.name
                ))
            })()
        };
        let summary = match checked {
            Ok(s) => s,
            Err(e) => return Err(self.reject(actor, "rule.create", &target, e).await),
        };
        let rule = AccessRule {
            id: new_id(),
            subject_type: input.subject_type,
            subject_id: input.subject_id,
            role_id: input.role_id,
            scope_type: input.scope_type,
            scope_id: input.scope_id,
            created_by: actor.client_id.clone(),
            created_at: now_ms(),
        };
        let audit = Self::success(
            actor,
            "rule.create",
            &target,
            201,
            format!("{summary} (rule {})", rule.id),
        );
        self.persist(vec![Write::Put(keys::rule(&rule.id), encode(&rule)), audit])
            .await?;
        let mut cat = self.write_catalog();
        cat.insert_rule(rule.clone());
        self.refresh_hot(&cat, &[&rule.subject_id]);
        Ok(rule)
    }

    pub async fn delete_rule(&self, id: &str, actor: &Actor) -> Result<AccessRule, DirectoryError> {
        self.retry_stale(|| self.delete_rule_once(id, actor)).await
    }

    async fn delete_rule_once(&self, id: &str, actor: &Actor) -> Result<AccessRule, DirectoryError> {
        let _w = self.lock_for_write().await;
        let existing = self.read().rules.get(id).cloned();
        let target = match &existing {
            Some(r) => self.app_target(&r.subject_id),
            None => Target::new("access-rule", id, ""),
        };
        let checked = {
            let cat = self.read();
            (|| {
                let held = cat.authorize(actor, perm::RULES_WRITE)?;
                let rule = existing.clone().ok_or_else(|| not_found("access rule", id))?;
                cat.check_target(actor, &held, &rule.subject_id)?;
                // Before the self check, so the last administrator removing
                // its own rule hears why it may never be removed.
                if rule.role_id == SYSTEM_ADMINISTRATOR && rule.scope_type == ScopeType::Tenant {
                    keep_an_administrator(&cat, &rule.subject_id, "remove this rule")?;
                }
                cat.check_not_self(actor, &rule.subject_id)?;
                let c = cat.claim(&rule);
                Ok((
                    rule,
                    format!("removed {} on {} {:?}", c.role, c.scope_type, c.scope_name),
                ))
            })()
        };
        let (rule, summary) = match checked {
            Ok(x) => x,
            Err(e) => return Err(self.reject(actor, "rule.delete", &target, e).await),
        };
        let audit = Self::success(actor, "rule.delete", &target, 204, format!("{summary} (rule {id})"));
        self.persist(vec![Write::Delete(keys::rule(id)), audit]).await?;
        let mut cat = self.write_catalog();
        cat.rules.remove(id);
        if let Some(ids) = cat.rules_by_app.get_mut(&rule.subject_id) {
            ids.retain(|r| r != id);
        }
        self.refresh_hot(&cat, &[&rule.subject_id]);
        Ok(rule)
    }

    pub async fn create_scope(
        &self,
        scope_type: ScopeType,
        name: String,
        parent_id: Option<String>,
        actor: &Actor,
    ) -> Result<Scope, DirectoryError> {
        self.retry_stale(|| self.create_scope_once(scope_type, name.clone(), parent_id.clone(), actor))
            .await
    }

    async fn create_scope_once(
        &self,
        scope_type: ScopeType,
        name: String,
        parent_id: Option<String>,
        actor: &Actor,
    ) -> Result<Scope, DirectoryError> {
        let _w = self.lock_for_write().await;
        let target = Target::new("scope", "-", &name);
        let checked = {
            let cat = self.read();
            (|| {
                cat.authorize(actor, perm::SCOPES_WRITE)?;
                let Some(parent_type) = scope_type.parent() else {
                    return Err(DirectoryError::Conflict(
                        "the tenant scope already exists; there is only one".into(),
                    ));
                };
                let parent_id = parent_id.clone().ok_or_else(|| {
                    DirectoryError::Invalid(format!("a {scope_type} needs a parentId of a {parent_type}"))
                })?;
                let parent = cat
                    .scopes
                    .get(&parent_id)
                    .ok_or_else(|| not_found("parent scope", &parent_id))?;
                if parent.scope_type != parent_type {
                    return Err(DirectoryError::Invalid(format!(
                        "a {scope_type}'s parent must be a {parent_type}, and {parent_id:?} is a {}",
                        parent.scope_type
                    )));
                }
                let sibling = cat
                    .scopes
                    .values()
                    .any(|s| s.parent_id.as_deref() == Some(parent_id.as_str()) && s.name == name);
                if sibling {
                    return Err(DirectoryError::Conflict(format!(
                        "{parent_id:?} already has a child named {name:?}"
                    )));
                }
                Ok(parent_id)
            })()
        };
        let parent_id = match checked {
            Ok(p) => p,
            Err(e) => return Err(self.reject(actor, "scope.create", &target, e).await),
        };
        let scope = Scope {
            id: new_id(),
            scope_type,
            name,
            parent_id: Some(parent_id),
            created_by: actor.client_id.clone(),
            created_at: now_ms(),
        };
        let audit = Self::success(
            actor,
            "scope.create",
            &Target::new("scope", &scope.id, &scope.name),
            201,
            format!("created {} {:?}", scope.scope_type, scope.name),
        );
        self.persist(vec![Write::Put(keys::scope(&scope.id), encode(&scope)), audit])
            .await?;
        self.write_catalog().scopes.insert(scope.id.clone(), scope.clone());
        Ok(scope)
    }

    pub async fn delete_scope(&self, id: &str, actor: &Actor) -> Result<Scope, DirectoryError> {
        self.retry_stale(|| self.delete_scope_once(id, actor)).await
    }

    async fn delete_scope_once(&self, id: &str, actor: &Actor) -> Result<Scope, DirectoryError> {
        let _w = self.lock_for_write().await;
        let target = {
            let cat = self.read();
            Target::new("scope", id, cat.scopes.get(id).map_or("", |s| s.name.as_str()))
        };
        let checked = {
            let cat = self.read();
            (|| {
                cat.authorize(actor, perm::SCOPES_WRITE)?;
                let scope = cat.scopes.get(id).cloned().ok_or_else(|| not_found("scope", id))?;
                if scope.scope_type == ScopeType::Tenant {
                    return Err(DirectoryError::Conflict("the tenant scope cannot be deleted".into()));
                }
                if let Some(child) = cat.scopes.values().find(|s| s.parent_id.as_deref() == Some(id)) {
                    return Err(DirectoryError::Conflict(format!(
                        "scope {id:?} still has children (e.g. {:?}); delete them first",
                        child.id
                    )));
                }
                if let Some(rule) = cat.rules.values().find(|r| r.scope_id == id) {
                    return Err(DirectoryError::Conflict(format!(
                        "scope {id:?} is used by access rule {:?}; delete the rule first",
                        rule.id
                    )));
                }
                Ok(scope)
            })()
        };
        let scope = match checked {
            Ok(s) => s,
            Err(e) => return Err(self.reject(actor, "scope.delete", &target, e).await),
        };
        let audit = Self::success(
            actor,
            "scope.delete",
            &target,
            204,
            format!("deleted {} {:?}", scope.scope_type, scope.name),
        );
        self.persist(vec![Write::Delete(keys::scope(id)), audit]).await?;
        self.write_catalog().scopes.remove(id);
        Ok(scope)
    }

    /// Writes changed `lastLogin` values to the store; returns how many.
    /// The whole last-login table is rewritten as one side record
    /// (`<app id> <unix ms>` lines) when anything changed: one file write
    /// per batch, however many applications logged in.
    pub async fn flush_logins(&self) -> Result<usize, StoreError> {
        let _w = self.lock_for_write().await;
        let changed: Vec<(String, Arc<LoginClock>, i64)> = self
            .read()
            .apps
            .values()
            .filter_map(|row| {
                let seen = row.login.seen.load(Ordering::Relaxed);
                (seen != row.login.saved.load(Ordering::Relaxed)).then(|| (row.app.id.clone(), row.login.clone(), seen))
            })
            .collect();
        if changed.is_empty() && self.store.feed().is_none() {
            return Ok(0);
        }
        let times: Vec<(String, i64)> = changed.iter().map(|(id, _, t)| (id.clone(), *t)).collect();
        let store = self.store.clone();
        let shared = tokio::task::spawn_blocking(move || -> Result<Vec<(String, i64)>, StoreError> {
            if !times.is_empty() {
                store.merge_logins(&times)?;
            }
            // Other instances' logins, so every instance shows the latest.
            match store.feed() {
                Some(_) => store.load_logins(),
                None => Ok(Vec::new()),
            }
        })
        .await
        .map_err(|e| StoreError::Io(format!("store task failed: {e}")))??;
        for (_, clock, seen) in &changed {
            clock.saved.store(*seen, Ordering::Relaxed);
        }
        if !shared.is_empty() {
            let cat = self.read();
            for (id, at) in shared {
                if let Some(row) = cat.apps.get(&id) {
                    row.login.seen.fetch_max(at, Ordering::Relaxed);
                    row.login.saved.fetch_max(at, Ordering::Relaxed);
                }
            }
        }
        Ok(changed.len())
    }

    /// Removes cut-off records that no longer revoke any unexpired token.
    pub async fn purge_cutoffs(&self, now_s: i64) -> Result<usize, StoreError> {
        let _w = self.lock_for_write().await;
        let stale: Vec<(String, Cutoff)> = self
            .read()
            .cutoffs
            .iter()
            .filter(|(_, c)| c.expires <= now_s)
            .map(|(k, c)| (k.clone(), *c))
            .collect();
        if stale.is_empty() {
            return Ok(0);
        }
        self.persist(stale.iter().map(|(k, _)| Write::Delete(keys::cutoff(k))).collect())
            .await?;
        let mut cat = self.write_catalog();
        for (k, _) in &stale {
            cat.cutoffs.remove(k);
        }
        Ok(stale.len())
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
        dir.create_app(AppName::parse("kept").unwrap(), &Actor::system())
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
