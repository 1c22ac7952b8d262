//! Following other instances (DESIGN §1 "Scale-out"): applies the changes
//! of the store's change feed to this instance's catalog and hot index.
//!
//! Each change carries its key's value *now*, and changes are applied under
//! the write lock, in commit order; so however often a change is seen
//! (including this instance's own writes, which come back through the
//! feed), the catalog converges on the store. A regenerate, disable or
//! delete learned here retires the old credential at once, as a local one
//! does, so a token request that raced it is refused after signing.

use super::{Directory, HotIndex, decode, read_catalog};
use crate::directory::catalog::{AppRow, Catalog, LoginClock};
use crate::domain::access_rule::AccessRule;
use crate::domain::application::Application;
use crate::domain::scope::{Scope, ScopeType};
use crate::store::{Change, StoreError, keys};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// How many changes one read of the feed returns at most.
const BATCH: usize = 5_000;

/// Which hot entries a batch of changes made stale.
#[derive(Default)]
struct Touched {
    apps: HashSet<String>,
    all: bool,
}

impl Directory {
    /// Applies every change committed since the last catch-up; returns the
    /// changes the directory does not own (revoked tokens, key material) for
    /// their owners. Without a change feed there is nothing to follow.
    pub async fn catch_up(&self) -> Result<Vec<Change>, StoreError> {
        if self.store.feed().is_none() {
            return Ok(Vec::new());
        }
        let _w = self.writes.lock().await;
        self.catch_up_locked().await?;
        // Taken only after a successful catch-up: on an error they stay
        // queued for the next one (`seen` is already past them).
        Ok(std::mem::take(
            &mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }

    /// True once after the directory was reloaded in full: the owners of
    /// other changes must then reload too (the changes in the gap are gone).
    pub fn take_reloaded(&self) -> bool {
        self.reloaded.swap(false, Ordering::AcqRel)
    }

    /// [`Self::catch_up`] with the write lock already held; the changes for
    /// other owners wait in `pending` for the next [`Self::catch_up`].
    pub(super) async fn catch_up_locked(&self) -> Result<(), StoreError> {
        loop {
            let store = self.store.clone();
            let seen = self.seen.load(Ordering::Acquire);
            let read = tokio::task::spawn_blocking(move || match store.feed() {
                Some(feed) => feed.since(seen, BATCH),
                None => Ok(Vec::new()),
            })
            .await
            .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?;
            let changes = match read {
                Ok(c) => c,
                Err(StoreError::FeedGap(_)) => {
                    self.reload().await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(last) = changes.last().map(|c| c.seq) else {
                return Ok(());
            };
            let full = changes.len() == BATCH;
            let others = self.apply_changes(changes);
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).extend(others);
            self.seen.store(last, Ordering::Release);
            if !full {
                return Ok(());
            }
        }
    }

    /// The change log no longer reaches back far enough: read everything
    /// again (the instance was cut off from the store for a long time).
    async fn reload(&self) -> Result<(), StoreError> {
        tracing::warn!("the change log was purged past what this instance has seen; reloading the directory");
        let store = self.store.clone();
        let (head, cat) = tokio::task::spawn_blocking(move || {
            let head = store.feed().map_or(Ok(0), |f| f.head())?;
            Ok::<_, StoreError>((head, read_catalog(store.as_ref())?))
        })
        .await
        .map_err(|e| StoreError::Io(format!("store task failed: {e}")))??;
        let fresh = HotIndex::of(&cat);
        let mut current = self.write_catalog();
        // Whatever changed meanwhile may have retired credentials.
        for row in current.apps.values() {
            let kept = cat
                .apps
                .get(&row.app.id)
                .is_some_and(|new| !withdraws_credentials(&row.app, &new.app));
            if !kept {
                row.credential.retire();
            }
        }
        // Both swapped under the catalog's guard: a reader that finds a
        // client known waits for it and then reads the new catalog.
        *self.hot.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        *current = cat;
        self.seen.store(head, Ordering::Release);
        self.reloaded.store(true, Ordering::Release);
        Ok(())
    }

    fn apply_changes(&self, changes: Vec<Change>) -> Vec<Change> {
        // Revocations and keys are not the directory's: a batch of only
        // those must not take the locks the token endpoint reads under
        // (a client looping "token, revoke" would otherwise stall every
        // instance's hot path, one catch-up per NOTIFY).
        let directory_key = |k: &str| {
            [keys::APP, keys::RULE, keys::SCOPE, keys::CUTOFF]
                .iter()
                .any(|p| k.starts_with(p))
        };
        if !changes.iter().any(|c| directory_key(&c.key)) {
            return changes;
        }
        let mut others = Vec::new();
        let mut touched = Touched::default();
        let mut rules_changed = false;
        let mut cat = self.write_catalog();
        let mut hot = self.hot.write().unwrap_or_else(|p| p.into_inner());
        for change in changes {
            let key = change.key.as_str();
            let value = change.value.as_deref();
            if let Some(id) = key.strip_prefix(keys::APP) {
                apply_app(&mut cat, &mut hot, id, readable::<Application>(key, value));
                touched.apps.insert(id.to_owned());
            } else if let Some(id) = key.strip_prefix(keys::RULE) {
                rules_changed = true;
                if let Some(app) = apply_rule(&mut cat, id, readable::<AccessRule>(key, value)) {
                    touched.apps.insert(app);
                }
            } else if let Some(id) = key.strip_prefix(keys::SCOPE) {
                apply_scope(&mut cat, id, readable::<Scope>(key, value));
                touched.all = true;
            } else if let Some(client) = key.strip_prefix(keys::CUTOFF) {
                // An unreadable cut-off keeps the one in force (the safer of the two).
                match value.map(|v| decode(key, v)) {
                    Some(Ok(c)) => {
                        cat.cutoffs.insert(client.to_owned(), c);
                    }
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "unreadable cut-off in the change feed; keeping the current one")
                    }
                    None => {
                        cat.cutoffs.remove(client);
                    }
                }
                hot.remove(client);
            } else {
                others.push(change);
            }
        }
        if rules_changed {
            cat.sort_rules();
        }
        // Entries these changes made stale are dropped, and rebuilt from
        // the changed catalog on their client's next request.
        if touched.all {
            hot.clear();
        }
        for row in touched.apps.iter().filter_map(|id| cat.apps.get(id)) {
            hot.remove(row.app.client_id.as_str());
        }
        others
    }
}

/// A record from the feed, or `None` (as if deleted: fewer applications,
/// rules and scopes, never more) when it cannot be read — say, written by
/// a newer version during a rolling upgrade. One bad record must not stop
/// this instance from following every later change.
fn readable<T: serde::de::DeserializeOwned>(key: &str, value: Option<&[u8]>) -> Option<T> {
    match decode(key, value?) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "unreadable record in the change feed; treating it as deleted on this instance");
            None
        }
    }
}

/// Whether a change from `old` to `new`, made by another instance, withdraws
/// what a request in flight here may have authenticated with: a new secret
/// (even when an overlap keeps the old one: a request in flight would sign
/// without the overlap's cap), disabling, or a change of registered
/// `private_key_jwt` keys (a request checked against a removed key must get
/// no token, here as on the instance that removed it).
fn withdraws_credentials(old: &Application, new: &Application) -> bool {
    old.secret_hash != new.secret_hash
        || (old.enabled && !new.enabled)
        || old.jwks != new.jwks
        || old.tls_client_auth != new.tls_client_auth
}

/// An application written (or deleted) by another instance.
fn apply_app(cat: &mut Catalog, hot: &mut HotIndex, id: &str, app: Option<Application>) {
    match app {
        Some(app) => {
            let updated = cat.apps.update(id, |row| {
                // Never changed by this server's writes; a record that says
                // otherwise must not leave the new ID unknown.
                if row.app.client_id != app.client_id {
                    hot.forget_client(row.app.client_id.as_str());
                    hot.learn(app.client_id.as_str());
                }
                if withdraws_credentials(&row.app, &app) {
                    row.credential.retire();
                    row.credential = Arc::default();
                }
                row.app = app.clone();
            });
            if updated.is_none() {
                let creator = app.created_by.clone();
                hot.learn(app.client_id.as_str());
                cat.apps
                    .insert(id.to_owned(), AppRow::new(app, Arc::new(LoginClock::default())));
                cat.note_creator(&creator);
            }
        }
        None => {
            if let Some(row) = cat.apps.remove(id) {
                row.credential.retire();
                cat.forget_creator(row.app.client_id.as_str());
                for rule in cat.rules_by_app.remove(id).unwrap_or_default() {
                    cat.rules.remove(&rule);
                }
                hot.forget_client(row.app.client_id.as_str());
            }
        }
    }
}

/// A rule written or deleted elsewhere; returns the application it belongs to.
fn apply_rule(cat: &mut Catalog, id: &str, rule: Option<AccessRule>) -> Option<String> {
    match rule {
        Some(rule) => {
            let app = rule.subject_id.clone();
            cat.note_creator(&rule.created_by);
            if cat.rules.contains_key(id) {
                cat.rules.insert(id.to_owned(), rule);
            } else {
                cat.insert_rule(rule);
            }
            Some(app)
        }
        None => {
            let rule = cat.rules.remove(id)?;
            if let Some(ids) = cat.rules_by_app.get_mut(&rule.subject_id) {
                ids.retain(|r| r != id);
            }
            Some(rule.subject_id)
        }
    }
}

fn apply_scope(cat: &mut Catalog, id: &str, scope: Option<Scope>) {
    match scope {
        Some(scope) => {
            if scope.scope_type == ScopeType::Tenant {
                cat.tenant_id = Some(scope.id.clone());
            }
            cat.scopes.insert(id.to_owned(), scope);
        }
        None => {
            cat.scopes.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::application::{AppName, ClientId};
    use crate::domain::client_keys::ClientKeys;

    fn app(jwks: Option<ClientKeys>) -> Application {
        Application {
            id: "a1".into(),
            name: AppName::parse("keyed").unwrap(),
            client_id: ClientId::generate(),
            secret_hash: crate::domain::secret::SecretHash([1; 32]),
            enabled: true,
            created_by: "t".into(),
            created_at: 0,
            updated_at: 0,
            jwks: jwks.map(Box::new),
            secret_created_at: None,
            previous_secret: None,
            policy: Default::default(),
            federated_credentials: Vec::new(),
            tls_client_auth: None,
        }
    }

    fn keys(x: u8) -> ClientKeys {
        let p = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[x; 32]).unwrap();
        use base64::Engine;
        use ring::signature::KeyPair;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p.public_key().as_ref());
        ClientKeys::parse(&serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k"}]})).unwrap()
    }

    #[test]
    fn clients_created_or_deleted_on_another_instance_are_known_or_forgotten_here() {
        let mut cat = Catalog::default();
        let mut hot = HotIndex::default();
        let created = app(None);
        let client = created.client_id.as_str().to_owned();
        apply_app(&mut cat, &mut hot, "a1", Some(created.clone()));
        assert!(hot.may_know(&client));
        // Updated: still known, once.
        apply_app(&mut cat, &mut hot, "a1", Some(created));
        apply_app(&mut cat, &mut hot, "a1", None);
        assert!(!hot.may_know(&client));
    }

    #[test]
    fn keys_changed_on_another_instance_retire_the_credential_a_request_here_may_hold() {
        for new_keys in [None, Some(keys(2))] {
            let mut cat = Catalog::default();
            let mut hot = HotIndex::default();
            let before = app(Some(keys(1)));
            cat.apps
                .insert("a1".into(), AppRow::new(before.clone(), Arc::default()));
            let held = cat.apps.get("a1").unwrap().credential.clone();
            apply_app(&mut cat, &mut hot, "a1", Some(app(new_keys.clone())));
            assert!(
                held.is_retired(),
                "keys {new_keys:?}: an in-flight request could still get a token"
            );
        }
        // A change that withdraws nothing (here: none) keeps it.
        let mut cat = Catalog::default();
        let mut hot = HotIndex::default();
        cat.apps
            .insert("a1".into(), AppRow::new(app(Some(keys(1))), Arc::default()));
        let held = cat.apps.get("a1").unwrap().credential.clone();
        let mut renamed = app(Some(keys(1)));
        renamed.updated_at = 5;
        apply_app(&mut cat, &mut hot, "a1", Some(renamed));
        assert!(!held.is_retired());
    }
}
