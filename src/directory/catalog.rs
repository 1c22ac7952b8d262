//! The read model: every application, rule, scope and cut-off in memory,
//! and the per-application entry the token endpoint reads (DESIGN §1: the
//! hot path touches no disk). Fields change only through the directory's
//! one write path.

use crate::domain::access_rule::{AccessRule, RuleClaim};
use crate::domain::application::Application;
use crate::domain::role;
use crate::domain::rotation::RetiringSecret;
use crate::domain::scope::Scope;
use crate::domain::secret::SecretHash;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Last successful token request, in Unix ms (0 = never); `saved` is what
/// the store has, so the flusher writes only what changed.
#[derive(Debug, Default)]
pub struct LoginClock {
    pub(super) seen: AtomicI64,
    pub(super) saved: AtomicI64,
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

/// The state of an application's current credentials, shared by every hot
/// entry built for them until a regenerate, disable or delete retires them.
///
/// Why: the token endpoint may hold an entry while the directory writes a
/// cut-off. The writer sets `retired` *before* it reads the clock for the
/// cut-off; the token endpoint reads `retired` *after* it read the clock for
/// `iat` and signed. So a token either has `iat` below the cut-off or is
/// never handed out — there is no window in which one escapes (issue 11.5).
#[derive(Debug, Default)]
pub struct Credential {
    retired: AtomicBool,
}

impl Credential {
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    pub(super) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Undoes [`Self::retire`] when the write it guarded failed.
    pub(super) fn restore(&self) {
        self.retired.store(false, Ordering::SeqCst);
    }
}

pub struct AppRow {
    pub app: Application,
    pub login: Arc<LoginClock>,
    pub(super) credential: Arc<Credential>,
}

impl AppRow {
    pub(super) fn new(app: Application, login: Arc<LoginClock>) -> Self {
        Self {
            app,
            login,
            credential: Arc::default(),
        }
    }
}

/// What the token endpoint needs about one application.
pub struct HotEntry {
    pub app_id: String,
    /// Shared with every grant (no copy per token).
    pub client_id: Arc<str>,
    pub(super) secret_hash: SecretHash,
    /// The replaced secret during a rotation's overlap: it authenticates
    /// until the overlap's end, for tokens expiring by then.
    pub(super) previous_secret: Option<Box<RetiringSecret>>,
    pub enabled: bool,
    rules: Vec<RuleClaim>,
    /// The full `access_rules` claim, serialised once per entry (boxed:
    /// exactly its length, where a `String` kept serde's 128-byte buffer).
    pub rules_json: Box<str>,
    /// Distinct role ids, space-separated: the `scope` of an unnarrowed token.
    /// Shared with every grant that uses it whole (no copy per token).
    pub all_roles: Option<Arc<str>>,
    /// Earliest `iat` a new token may carry (see `Cutoff`).
    pub min_iat: i64,
    pub login: Arc<LoginClock>,
    pub credential: Arc<Credential>,
    /// Registered public keys for `private_key_jwt` (RFC 7523), parsed.
    pub client_keys: Option<Arc<[appauth_verify::jwk::ParsedJwk]>>,
    /// Audiences and lifetime its tokens may have.
    pub policy: crate::domain::application::TokenPolicy,
    /// External identities that may stand in for its secret.
    pub federated: Arc<[crate::domain::federated::FederatedCredential]>,
    /// The client certificate that may stand in for its secret (RFC 8705).
    pub tls_client_auth: Option<Box<crate::domain::tls_client::TlsClientAuth>>,
}

impl HotEntry {
    /// Whether a rotation's overlap that is over at `now_s` revokes a token
    /// issued at `iat`: true from the overlap's end, even before
    /// [`super::Directory::end_overlaps`] has written its cut-off.
    pub fn overlap_revokes(&self, iat: i64, now_s: i64) -> bool {
        self.previous_secret
            .as_ref()
            .is_some_and(|p| p.until <= now_s && iat < p.before)
    }

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
    /// The names of the clients that created something (`createdBy` holds
    /// client IDs), for "Created by": only creators, a handful, where a map
    /// of all 100,000 clients would cost megabytes. Kept under the write
    /// path, so readers (a list query resolving every row) take no lock.
    /// `None` remembers a client ID that is no application (`seed`, a
    /// deleted creator): client IDs are never reused, and a follower must
    /// not scan 100,000 rows again for each record such a creator made.
    creators: HashMap<String, Option<Box<str>>>,
    pub apps: super::apps::Apps,
    pub rules: HashMap<String, AccessRule>,
    pub(super) rules_by_app: HashMap<String, Vec<String>>,
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

    /// The name of the application whose client ID is `client_id`, for
    /// "Created by"; `None` for `system` and for deleted creators.
    pub fn creator_name(&self, client_id: &str) -> Option<&str> {
        self.creators.get(client_id)?.as_deref()
    }

    /// Records `client_id` as a creator (one scan of the applications the
    /// first time a client creates anything; client IDs are never reused).
    pub(super) fn note_creator(&mut self, client_id: &str) {
        if client_id == super::SYSTEM || self.creators.contains_key(client_id) {
            return;
        }
        let name = self
            .apps
            .values()
            .find(|r| r.app.client_id.as_str() == client_id)
            .map(|row| Box::from(row.app.name.as_str()));
        self.creators.insert(client_id.to_owned(), name);
    }

    /// A creator's application is gone: its records show its client ID.
    pub(super) fn forget_creator(&mut self, client_id: &str) {
        if let Some(name) = self.creators.get_mut(client_id) {
            *name = None;
        }
    }

    /// Every creator at once, after loading (one scan, whatever their number).
    pub(super) fn find_creators(&mut self) {
        let wanted: std::collections::HashSet<&str> = self
            .apps
            .values()
            .map(|r| r.app.created_by.as_str())
            .chain(self.rules.values().map(|r| r.created_by.as_str()))
            .collect();
        let mut found: HashMap<String, Option<Box<str>>> = wanted.iter().map(|c| (c.to_string(), None)).collect();
        for r in self.apps.values() {
            if let Some(name) = found.get_mut(r.app.client_id.as_str()) {
                *name = Some(Box::from(r.app.name.as_str()));
            }
        }
        self.creators = found;
    }

    /// "Created by" as people read it: the creator's name, else what is stored.
    pub fn creator_label<'a>(&'a self, created_by: &'a str) -> &'a str {
        self.creator_name(created_by).unwrap_or(created_by)
    }

    pub fn app_by_name(&self, name: &str) -> Option<&AppRow> {
        self.apps.by_name(name)
    }

    pub(super) fn claim(&self, r: &AccessRule) -> RuleClaim {
        RuleClaim {
            role: role::find(&r.role_id).map_or_else(|| r.role_id.clone(), |x| x.name.to_owned()),
            role_id: r.role_id.clone(),
            scope_type: r.scope_type,
            scope_id: r.scope_id.clone(),
            scope_name: self.scopes.get(&r.scope_id).map(|s| s.name.clone()).unwrap_or_default(),
            scope_path: self.scope_path(&r.scope_id),
        }
    }

    pub(super) fn hot_entry(&self, row: &AppRow) -> HotEntry {
        let rules: Vec<RuleClaim> = self.rules_of(&row.app.id).map(|r| self.claim(r)).collect();
        let mut roles: Vec<&str> = Vec::new();
        for r in &rules {
            if !roles.contains(&r.role_id.as_str()) {
                roles.push(&r.role_id);
            }
        }
        let all_roles = (!roles.is_empty()).then(|| Arc::from(roles.join(" ")));
        HotEntry {
            app_id: row.app.id.clone(),
            client_id: Arc::from(row.app.client_id.as_str()),
            secret_hash: row.app.secret_hash,
            previous_secret: row.app.previous_secret.clone(),
            enabled: row.app.enabled,
            rules_json: serde_json::to_string(&rules)
                .unwrap_or_else(|_| "[]".into())
                .into_boxed_str(),
            rules,
            all_roles,
            // A rotation's pending cut-off counts already: tokens issued
            // from now on must not fall under it when the overlap ends.
            min_iat: self
                .cutoffs
                .get(row.app.client_id.as_str())
                .map(|c| c.before)
                .into_iter()
                .chain(row.app.previous_secret.as_ref().map(|p| p.before))
                .max()
                .unwrap_or(0),
            login: row.login.clone(),
            credential: row.credential.clone(),
            client_keys: row.app.jwks.as_ref().map(|k| k.verification_keys().into()),
            policy: row.app.policy.clone(),
            federated: row.app.federated_credentials.clone().into(),
            tls_client_auth: row.app.tls_client_auth.clone(),
        }
    }

    pub(super) fn insert_rule(&mut self, rule: AccessRule) {
        let ids = self.rules_by_app.entry(rule.subject_id.clone()).or_default();
        ids.push(rule.id.clone());
        self.rules.insert(rule.id.clone(), rule);
    }

    pub(super) fn sort_rules(&mut self) {
        let rules = &self.rules;
        for ids in self.rules_by_app.values_mut() {
            ids.sort_by_key(|id| rules.get(id).map(|r| (r.created_at, r.id.clone())));
        }
    }
}
