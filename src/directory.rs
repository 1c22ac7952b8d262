//! The directory: the in-memory view of everything in the store, the
//! hot-path index the token endpoint reads, and the one write path.
//!
//! DESIGN §1: `/oauth/token` touches no disk. Each application's credentials,
//! state and `access_rules` claim (pre-serialised) sit in an index keyed by
//! client ID, rebuilt from the store at start and replaced entry by entry on
//! every admin write. Writes are serialised by one async mutex, validated
//! against memory, made durable in the store (flushed) and only then applied
//! to memory — so a 2xx always means "on disk", and memory never shows a
//! write the store lacks. `lastLogin` is tracked in memory per application
//! and written back in batches by [`Directory::flush_logins`].

use crate::domain::access_rule::{AccessRule, RuleClaim};
use crate::domain::application::{AppName, Application, ClientId};
use crate::domain::scope::{Scope, ScopeType};
use crate::domain::secret::{ClientSecret, Pepper, SecretHash};
use crate::domain::{format_ms, new_id, now_ms, role};
use crate::store::{Store, StoreError, Write, keys};
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Name of the side record holding last-login times.
const LAST_LOGIN_SIDE: &str = "last-login";

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
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn not_found(what: &'static str, id: &str) -> DirectoryError {
    DirectoryError::NotFound {
        what,
        id: id.to_owned(),
    }
}

/// Last successful token request, in Unix ms (0 = never); `saved` is what
/// the store has, so the flusher writes only what changed.
#[derive(Debug, Default)]
pub struct LoginClock {
    seen: AtomicI64,
    saved: AtomicI64,
}

impl LoginClock {
    pub fn touch(&self, now_ms: i64) {
        self.seen.store(now_ms, Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<i64> {
        match self.seen.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }
}

/// Tokens of a client issued before `before` (Unix seconds) are revoked; the
/// record is purged after `expires`, when no such token can still be valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutoff {
    pub before: i64,
    pub expires: i64,
}

pub struct AppRow {
    pub app: Application,
    pub login: Arc<LoginClock>,
}

/// What the token endpoint needs about one application.
pub struct HotEntry {
    pub app_id: String,
    pub client_id: String,
    secret_hash: SecretHash,
    pub enabled: bool,
    rules: Vec<RuleClaim>,
    /// The full `access_rules` claim, serialised once per write.
    pub rules_json: String,
    /// Distinct role ids, space-separated: the `scope` of an unnarrowed token.
    pub all_roles: Option<String>,
    /// Earliest `iat` a new token may carry (see `Cutoff`).
    pub min_iat: i64,
    pub login: Arc<LoginClock>,
}

impl HotEntry {
    pub fn has_role(&self, role_id: &str) -> bool {
        self.rules.iter().any(|r| r.role_id == role_id)
    }

    /// The `access_rules` claim restricted to the given role ids.
    pub fn rules_json_for(&self, role_ids: &[&str]) -> String {
        let narrowed: Vec<&RuleClaim> = self
            .rules
            .iter()
            .filter(|r| role_ids.contains(&r.role_id.as_str()))
            .collect();
        serde_json::to_string(&narrowed).unwrap_or_else(|_| "[]".into())
    }
}

#[derive(Default)]
pub struct Catalog {
    pub apps: HashMap<String, AppRow>,
    names: HashMap<String, String>,
    pub rules: HashMap<String, AccessRule>,
    rules_by_app: HashMap<String, Vec<String>>,
    pub scopes: HashMap<String, Scope>,
    pub cutoffs: HashMap<String, Cutoff>,
    pub tenant_id: Option<String>,
}

impl Catalog {
    pub fn rules_of(&self, app_id: &str) -> impl Iterator<Item = &AccessRule> {
        self.rules_by_app
            .get(app_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.rules.get(id))
    }

    pub fn app_by_name(&self, name: &str) -> Option<&AppRow> {
        self.names.get(name).and_then(|id| self.apps.get(id))
    }

    fn claim(&self, r: &AccessRule) -> RuleClaim {
        RuleClaim {
            role: role::find(&r.role_id).map_or_else(|| r.role_id.clone(), |x| x.name.to_owned()),
            role_id: r.role_id.clone(),
            scope_type: r.scope_type,
            scope_id: r.scope_id.clone(),
            scope_name: self.scopes.get(&r.scope_id).map(|s| s.name.clone()).unwrap_or_default(),
        }
    }

    fn hot_entry(&self, row: &AppRow) -> HotEntry {
        let rules: Vec<RuleClaim> = self.rules_of(&row.app.id).map(|r| self.claim(r)).collect();
        let mut roles: Vec<&str> = Vec::new();
        for r in &rules {
            if !roles.contains(&r.role_id.as_str()) {
                roles.push(&r.role_id);
            }
        }
        let all_roles = (!roles.is_empty()).then(|| roles.join(" "));
        HotEntry {
            app_id: row.app.id.clone(),
            client_id: row.app.client_id.as_str().to_owned(),
            secret_hash: row.app.secret_hash,
            enabled: row.app.enabled,
            rules_json: serde_json::to_string(&rules).unwrap_or_else(|_| "[]".into()),
            rules,
            all_roles,
            min_iat: self.cutoffs.get(row.app.client_id.as_str()).map_or(0, |c| c.before),
            login: row.login.clone(),
        }
    }

    fn insert_rule(&mut self, rule: AccessRule) {
        let ids = self.rules_by_app.entry(rule.subject_id.clone()).or_default();
        ids.push(rule.id.clone());
        self.rules.insert(rule.id.clone(), rule);
    }

    fn sort_rules(&mut self) {
        let rules = &self.rules;
        for ids in self.rules_by_app.values_mut() {
            ids.sort_by_key(|id| rules.get(id).map(|r| (r.created_at, r.id.clone())));
        }
    }
}

pub struct Directory {
    store: Arc<dyn Store>,
    pepper: Pepper,
    rng: SystemRandom,
    token_ttl: i64,
    catalog: RwLock<Catalog>,
    hot: RwLock<HashMap<Box<str>, Arc<HotEntry>>>,
    writes: tokio::sync::Mutex<()>,
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

/// The revocation cut-off for "everything issued until now": the next whole
/// second, because `iat` has one-second resolution.
fn cutoff_now(ttl: i64) -> Cutoff {
    let before = (now_ms() + 999) / 1000;
    Cutoff {
        before,
        expires: before + ttl + 60,
    }
}

impl Directory {
    /// Loads every record from the store.
    pub fn load(store: Arc<dyn Store>, pepper: Pepper, token_ttl: i64) -> Result<Self, StoreError> {
        crate::store::check_schema(store.as_ref())?;
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
        if let Some(side) = store.get_side(LAST_LOGIN_SIDE)? {
            for line in String::from_utf8_lossy(&side).lines() {
                if let Some((id, ms)) = line.split_once(' ')
                    && let Ok(ms) = ms.parse()
                {
                    logins.insert(id.to_owned(), ms);
                }
            }
        }
        for (k, v) in store.scan_prefix(keys::APP)? {
            let app: Application = decode(&k, &v)?;
            let login = Arc::new(LoginClock::default());
            if let Some(&t) = logins.get(&app.id) {
                login.seen.store(t, Ordering::Relaxed);
                login.saved.store(t, Ordering::Relaxed);
            }
            cat.names.insert(app.name.as_str().to_owned(), app.id.clone());
            cat.apps.insert(app.id.clone(), AppRow { app, login });
        }
        for (k, v) in store.scan_prefix(keys::RULE)? {
            cat.insert_rule(decode(&k, &v)?);
        }
        cat.sort_rules();
        for (k, v) in store.scan_prefix(keys::CUTOFF)? {
            cat.cutoffs.insert(k[keys::CUTOFF.len()..].to_owned(), decode(&k, &v)?);
        }
        let hot = cat
            .apps
            .values()
            .map(|row| (Box::from(row.app.client_id.as_str()), Arc::new(cat.hot_entry(row))))
            .collect();
        Ok(Self {
            store,
            pepper,
            rng: SystemRandom::new(),
            token_ttl,
            catalog: RwLock::new(cat),
            hot: RwLock::new(hot),
            writes: tokio::sync::Mutex::new(()),
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

    async fn persist(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.apply(&writes))
            .await
            .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
    }

    fn refresh_hot(&self, cat: &Catalog, app_ids: &[&str]) {
        let mut hot = self.hot.write().unwrap_or_else(|p| p.into_inner());
        for id in app_ids {
            if let Some(row) = cat.apps.get(*id) {
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

    /// First start on an empty store: the tenant scope and the `admin`
    /// application with *System administrator* on it. `None` when the
    /// store was already initialised.
    pub async fn initialize(&self) -> Result<Option<(Application, ClientSecret)>, DirectoryError> {
        let _w = self.writes.lock().await;
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
        self.persist(vec![
            Write::Put(keys::scope(&tenant.id), encode(&tenant)),
            Write::Put(keys::app(&app.id), encode(&app)),
            Write::Put(keys::rule(&rule.id), encode(&rule)),
            Write::Put(keys::INITIALIZED.into(), encode(&now)),
        ])
        .await?;
        let mut cat = self.write_catalog();
        cat.tenant_id = Some(tenant.id.clone());
        cat.scopes.insert(tenant.id.clone(), tenant);
        cat.names.insert(app.name.as_str().to_owned(), app.id.clone());
        cat.apps.insert(
            app.id.clone(),
            AppRow {
                app: app.clone(),
                login: Arc::default(),
            },
        );
        cat.insert_rule(rule);
        self.refresh_hot(&cat, &[&app.id]);
        Ok(Some((app, secret)))
    }

    pub async fn create_app(&self, name: AppName, by: &str) -> Result<(Application, ClientSecret), DirectoryError> {
        let _w = self.writes.lock().await;
        if self.read().names.contains_key(name.as_str()) {
            return Err(DirectoryError::Conflict(format!(
                "an application named {name:?} already exists"
            )));
        }
        let (app, secret) = self.new_app(name, by);
        self.persist(vec![Write::Put(keys::app(&app.id), encode(&app))]).await?;
        let mut cat = self.write_catalog();
        cat.names.insert(app.name.as_str().to_owned(), app.id.clone());
        cat.apps.insert(
            app.id.clone(),
            AppRow {
                app: app.clone(),
                login: Arc::default(),
            },
        );
        self.refresh_hot(&cat, &[&app.id]);
        Ok((app, secret))
    }

    fn app(&self, id: &str) -> Result<Application, DirectoryError> {
        self.read()
            .apps
            .get(id)
            .map(|r| r.app.clone())
            .ok_or_else(|| not_found("application", id))
    }

    /// Enables or disables an application. Disabling revokes every token
    /// issued so far; re-enabling does not bring them back.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<Application, DirectoryError> {
        let _w = self.writes.lock().await;
        let mut app = self.app(id)?;
        if app.enabled == enabled {
            return Ok(app);
        }
        app.enabled = enabled;
        app.updated_at = now_ms();
        let mut writes = vec![Write::Put(keys::app(&app.id), encode(&app))];
        let cutoff = (!enabled).then(|| cutoff_now(self.token_ttl));
        if let Some(c) = cutoff {
            writes.push(Write::Put(keys::cutoff(app.client_id.as_str()), encode(&c)));
        }
        self.persist(writes).await?;
        let mut cat = self.write_catalog();
        if let Some(c) = cutoff {
            cat.cutoffs.insert(app.client_id.as_str().to_owned(), c);
        }
        if let Some(row) = cat.apps.get_mut(id) {
            row.app = app.clone();
        }
        self.refresh_hot(&cat, &[id]);
        Ok(app)
    }

    /// A new secret; the old one stops working and every earlier token is revoked.
    pub async fn regenerate_secret(&self, id: &str) -> Result<(Application, ClientSecret), DirectoryError> {
        let _w = self.writes.lock().await;
        let mut app = self.app(id)?;
        let secret = ClientSecret::generate(&self.rng);
        app.secret_hash = self.pepper.hash(&secret);
        app.updated_at = now_ms();
        let cutoff = cutoff_now(self.token_ttl);
        self.persist(vec![
            Write::Put(keys::app(&app.id), encode(&app)),
            Write::Put(keys::cutoff(app.client_id.as_str()), encode(&cutoff)),
        ])
        .await?;
        let mut cat = self.write_catalog();
        cat.cutoffs.insert(app.client_id.as_str().to_owned(), cutoff);
        if let Some(row) = cat.apps.get_mut(id) {
            row.app = app.clone();
        }
        self.refresh_hot(&cat, &[id]);
        Ok((app, secret))
    }

    /// Deletes an application, its access rules and its last-login record,
    /// and revokes every token it was issued.
    pub async fn delete_app(&self, id: &str) -> Result<Application, DirectoryError> {
        let _w = self.writes.lock().await;
        let app = self.app(id)?;
        let rule_ids: Vec<String> = self.read().rules_of(id).map(|r| r.id.clone()).collect();
        let cutoff = cutoff_now(self.token_ttl);
        let mut writes = vec![
            Write::Delete(keys::app(id)),
            Write::Delete(keys::last_login(id)),
            Write::Put(keys::cutoff(app.client_id.as_str()), encode(&cutoff)),
        ];
        writes.extend(rule_ids.iter().map(|r| Write::Delete(keys::rule(r))));
        self.persist(writes).await?;
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

    pub async fn create_rule(&self, input: NewRule, by: &str) -> Result<AccessRule, DirectoryError> {
        let _w = self.writes.lock().await;
        let rule = {
            let cat = self.read();
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
            let duplicate = cat
                .rules_of(&input.subject_id)
                .any(|r| r.role_id == input.role_id && r.scope_id == input.scope_id);
            if duplicate {
                return Err(DirectoryError::Conflict(
                    "this application already has this role on this scope".into(),
                ));
            }
            AccessRule {
                id: new_id(),
                subject_type: input.subject_type,
                subject_id: input.subject_id,
                role_id: input.role_id,
                scope_type: input.scope_type,
                scope_id: input.scope_id,
                created_by: by.to_owned(),
                created_at: now_ms(),
            }
        };
        self.persist(vec![Write::Put(keys::rule(&rule.id), encode(&rule))])
            .await?;
        let mut cat = self.write_catalog();
        cat.insert_rule(rule.clone());
        self.refresh_hot(&cat, &[&rule.subject_id]);
        Ok(rule)
    }

    pub async fn delete_rule(&self, id: &str) -> Result<AccessRule, DirectoryError> {
        let _w = self.writes.lock().await;
        let rule = self
            .read()
            .rules
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("access rule", id))?;
        self.persist(vec![Write::Delete(keys::rule(id))]).await?;
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
        by: &str,
    ) -> Result<Scope, DirectoryError> {
        let _w = self.writes.lock().await;
        let scope = {
            let cat = self.read();
            let Some(parent_type) = scope_type.parent() else {
                return Err(DirectoryError::Conflict(
                    "the tenant scope already exists; there is only one".into(),
                ));
            };
            let parent_id = parent_id.ok_or_else(|| {
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
            Scope {
                id: new_id(),
                scope_type,
                name,
                parent_id: Some(parent_id),
                created_by: by.to_owned(),
                created_at: now_ms(),
            }
        };
        self.persist(vec![Write::Put(keys::scope(&scope.id), encode(&scope))])
            .await?;
        self.write_catalog().scopes.insert(scope.id.clone(), scope.clone());
        Ok(scope)
    }

    pub async fn delete_scope(&self, id: &str) -> Result<Scope, DirectoryError> {
        let _w = self.writes.lock().await;
        let scope = {
            let cat = self.read();
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
            scope
        };
        self.persist(vec![Write::Delete(keys::scope(id))]).await?;
        self.write_catalog().scopes.remove(id);
        Ok(scope)
    }

    /// Writes changed `lastLogin` values to the store; returns how many.
    /// The whole last-login table is rewritten as one side record
    /// (`<app id> <unix ms>` lines) when anything changed: one file write
    /// per batch, however many applications logged in.
    pub async fn flush_logins(&self) -> Result<usize, StoreError> {
        let _w = self.writes.lock().await;
        let (changed, table) = {
            let cat = self.read();
            let mut changed: Vec<(Arc<LoginClock>, i64)> = Vec::new();
            let mut table = String::new();
            for row in cat.apps.values() {
                let seen = row.login.seen.load(Ordering::Relaxed);
                if seen != row.login.saved.load(Ordering::Relaxed) {
                    changed.push((row.login.clone(), seen));
                }
                if seen != 0 {
                    table.push_str(&row.app.id);
                    table.push(' ');
                    table.push_str(&seen.to_string());
                    table.push('\n');
                }
            }
            (changed, table)
        };
        if changed.is_empty() {
            return Ok(0);
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.put_side(LAST_LOGIN_SIDE, table.as_bytes()))
            .await
            .map_err(|e| StoreError::Io(format!("store task failed: {e}")))??;
        for (clock, seen) in &changed {
            clock.saved.store(*seen, Ordering::Relaxed);
        }
        Ok(changed.len())
    }

    /// Removes cut-off records that no longer revoke any unexpired token.
    pub async fn purge_cutoffs(&self, now_s: i64) -> Result<usize, StoreError> {
        let _w = self.writes.lock().await;
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

/// The API's view of an application (never its secret or hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub last_login: Option<String>,
    pub access_rules: Vec<RuleBrief>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleBrief {
    pub id: String,
    pub role_id: String,
    pub role_name: String,
    pub scope_type: ScopeType,
    pub scope_id: String,
    pub scope_name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    pub id: String,
    pub subject_type: String,
    pub subject_id: String,
    pub role_id: String,
    pub role_name: String,
    pub scope_type: ScopeType,
    pub scope_id: String,
    pub scope_name: String,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeView {
    pub id: String,
    #[serde(rename = "type")]
    pub scope_type: ScopeType,
    pub name: String,
    pub parent_id: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

impl Catalog {
    pub fn rule_view(&self, r: &AccessRule) -> RuleView {
        let c = self.claim(r);
        RuleView {
            id: r.id.clone(),
            subject_type: r.subject_type.clone(),
            subject_id: r.subject_id.clone(),
            role_id: c.role_id,
            role_name: c.role,
            scope_type: c.scope_type,
            scope_id: c.scope_id,
            scope_name: c.scope_name,
            created_by: r.created_by.clone(),
            created_at: format_ms(r.created_at),
        }
    }

    pub fn app_view(&self, app: &Application) -> AppView {
        let last_login = self.apps.get(&app.id).and_then(|r| r.login.get());
        AppView {
            id: app.id.clone(),
            name: app.name.as_str().to_owned(),
            client_id: app.client_id.as_str().to_owned(),
            enabled: app.enabled,
            created_by: app.created_by.clone(),
            created_at: format_ms(app.created_at),
            updated_at: format_ms(app.updated_at),
            last_login: last_login.map(format_ms),
            access_rules: self
                .rules_of(&app.id)
                .map(|r| {
                    let c = self.claim(r);
                    RuleBrief {
                        id: r.id.clone(),
                        role_id: c.role_id,
                        role_name: c.role,
                        scope_type: c.scope_type,
                        scope_id: c.scope_id,
                        scope_name: c.scope_name,
                    }
                })
                .collect(),
        }
    }
}

pub fn scope_view(s: &Scope) -> ScopeView {
    ScopeView {
        id: s.id.clone(),
        scope_type: s.scope_type,
        name: s.name.clone(),
        parent_id: s.parent_id.clone(),
        created_by: s.created_by.clone(),
        created_at: format_ms(s.created_at),
    }
}
