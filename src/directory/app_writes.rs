//! Application writes: create (secret shown once), enable/disable,
//! regenerate (the old secret and its tokens revoked) and delete.

use super::*;

/// An application's credentials besides its secret.
#[derive(Debug, Clone, Default)]
pub struct KeyCredentials {
    /// Public keys for `private_key_jwt` (RFC 7523).
    pub jwks: Option<ClientKeys>,
    /// Its client certificate (RFC 8705).
    pub tls_client_auth: Option<crate::domain::tls_client::TlsClientAuth>,
}

impl Directory {
    pub(super) fn new_app(&self, name: AppName, by: &str) -> (Application, ClientSecret) {
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
            jwks: None,
            secret_created_at: Some(now),
            previous_secret: None,
            policy: TokenPolicy::default(),
            federated_credentials: Vec::new(),
            tls_client_auth: None,
        };
        (app, secret)
    }

    /// A new application; `keys`: the credentials besides its secret
    /// (`private_key_jwt` keys, a client certificate), which need
    /// `apps:keys`.
    pub async fn create_app(
        &self,
        name: AppName,
        keys: KeyCredentials,
        policy: TokenPolicy,
        actor: &Actor,
    ) -> Result<(Application, ClientSecret), DirectoryError> {
        // "Created by" shows creators' names, `system` for the server itself
        // and a client ID for deleted creators: a new name must not pass
        // for either. (Stored names are not re-checked: they still load.)
        if name.as_str() == SYSTEM || uuid::Uuid::parse_str(name.as_str()).is_ok() {
            return Err(DirectoryError::Conflict(format!(
                "the name \"{name}\" is reserved: \"system\" and client-ID-shaped names would read as the server or a deleted creator"
            )));
        }
        self.retry_stale(|| self.create_app_once(name.clone(), keys.clone(), policy.clone(), actor))
            .await
    }

    pub(super) async fn create_app_once(
        &self,
        name: AppName,
        keys: KeyCredentials,
        policy: TokenPolicy,
        actor: &Actor,
    ) -> Result<(Application, ClientSecret), DirectoryError> {
        let _w = self.lock_for_write().await;
        let target = Target::new("application", "-", name.as_str());
        let checked = {
            let cat = self.read();
            cat.authorize(actor, perm::APPS_WRITE)
                .and_then(|held| {
                    if keys.jwks.is_some() || keys.tls_client_auth.is_some() {
                        cat.authorize(actor, perm::APPS_KEYS)
                    } else {
                        Ok(held)
                    }
                })
                .map_err(DirectoryError::from)
                .and_then(|_| cat.check_token_policy(actor, &policy, &self.audiences, self.token_ttl))
                .and_then(|_| {
                    if cat.apps.by_name(name.as_str()).is_some() {
                        Err(DirectoryError::Conflict(format!(
                            "an application named \"{name}\" already exists"
                        )))
                    } else {
                        Ok(())
                    }
                })
        };
        if let Err(e) = checked {
            return Err(self.reject(actor, "app.create", &target, e).await);
        }
        let (mut app, secret) = self.new_app(name, &actor.client_id);
        let mut keys_note = keys
            .jwks
            .as_ref()
            .map(|k| format!("; private_key_jwt keys: {}", k.describe()))
            .unwrap_or_default();
        if let Some(t) = &keys.tls_client_auth {
            keys_note.push_str(&format!("; mutual TLS: {}", t.describe()));
        }
        app.jwks = keys.jwks.map(Box::new);
        app.tls_client_auth = keys.tls_client_auth.map(Box::new);
        app.policy = policy;
        let audit = Self::success(
            actor,
            "app.create",
            &Target::new("application", &app.id, app.name.as_str()),
            201,
            format!(
                "created application {:?} (client ID {}); {}{keys_note}",
                app.name.as_str(),
                app.client_id.as_str(),
                app.policy.describe()
            ),
        );
        self.persist_create(
            vec![Write::Put(keys::app(&app.id), encode(&app)), audit],
            actor,
            "app.create",
            &target,
        )
        .await?;
        let mut cat = self.write_catalog();
        self.add_app(&mut cat, app.clone());
        cat.note_creator(&app.created_by);
        Ok((app, secret))
    }

    /// The checks every write on an existing application shares: the gate,
    /// the target exists, and the target is within the caller's ceiling.
    pub(super) fn check_app_write(
        &self,
        actor: &Actor,
        id: &str,
        permission: &str,
    ) -> Result<Application, DirectoryError> {
        let cat = self.read();
        let held = cat.authorize(actor, permission)?;
        let app = app_of(&cat, id)?;
        cat.check_target(actor, &held, id)?;
        Ok(app)
    }

    pub(super) fn app_target(&self, id: &str) -> Target {
        let cat = self.read();
        let name = cat.apps.get(id).map_or("", |r| r.app.name.as_str());
        Target::new("application", id, name)
    }

    /// Enables or disables an application. Disabling revokes every token
    /// issued so far; re-enabling does not bring them back.
    pub async fn set_enabled(&self, id: &str, enabled: bool, actor: &Actor) -> Result<Application, DirectoryError> {
        self.retry_stale(|| self.set_enabled_once(id, enabled, actor)).await
    }

    pub(super) async fn set_enabled_once(
        &self,
        id: &str,
        enabled: bool,
        actor: &Actor,
    ) -> Result<Application, DirectoryError> {
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
        // Disabling withdraws every credential, registered keys included.
        let keys_note = match (enabled, app.jwks.take()) {
            (false, Some(k)) => format!("; private_key_jwt keys removed: {}", k.describe()),
            (true, keys) => {
                app.jwks = keys;
                String::new()
            }
            (false, None) => String::new(),
        };
        let credential = self.read().apps.get(id).map(|r| r.credential.clone());
        let cutoff = if enabled {
            None
        } else {
            // Retire before reading the clock for the cut-off (see `Credential`).
            if let Some(c) = &credential {
                c.retire();
            }
            Some(self.next_cutoff(&app).await)
        };
        // Disabling ends a rotation's overlap too: re-enabling must not
        // bring the previous secret back (the cut-off covers its tokens).
        let overlap_note = match app.previous_secret.take() {
            Some(p) if !enabled => format!("; the overlapping previous secret ({}) stopped", p.hash.id()),
            kept => {
                app.previous_secret = kept;
                String::new()
            }
        };
        let summary = match cutoff {
            Some(c) => format!(
                "enabled: true -> false; tokens issued before {} revoked{overlap_note}{keys_note}",
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
            restore_unless_indeterminate(credential.as_ref(), &e);
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
        self.forget_hot(&cat, &[id]);
        Ok(app)
    }

    /// Registers (or, with `None`, removes) the public keys the application
    /// authenticates with by `private_key_jwt` (RFC 7523). Tokens already
    /// issued stay valid: to cut them off after a key compromise, disable
    /// the application or regenerate its secret as well.
    pub async fn set_client_keys(
        &self,
        id: &str,
        jwks: Option<ClientKeys>,
        actor: &Actor,
    ) -> Result<Application, DirectoryError> {
        self.retry_stale(|| self.set_client_keys_once(id, jwks.clone(), actor))
            .await
    }

    pub(super) async fn set_client_keys_once(
        &self,
        id: &str,
        jwks: Option<ClientKeys>,
        actor: &Actor,
    ) -> Result<Application, DirectoryError> {
        let change = |app: &mut Application| {
            let describe = |k: Option<&ClientKeys>| k.map_or("none".to_owned(), ClientKeys::describe);
            let summary = format!(
                "private_key_jwt keys: {} -> {}",
                describe(app.jwks.as_deref()),
                describe(jwks.as_ref())
            );
            app.jwks = jwks.clone().map(Box::new);
            summary
        };
        self.replace_key_credential(
            id,
            actor,
            "app.keys",
            "your own application's private_key_jwt keys",
            change,
        )
        .await
    }

    /// Replaces a credential of an application other than its secret (keys,
    /// a client certificate): `change` makes the change and says what it
    /// was, for the audit log. A key is a credential that outlives the
    /// rules of whoever added it: System administrators only (apps:keys),
    /// never on the caller's own application or one that created it, so a
    /// stolen token cannot make itself permanent. Requests already checked
    /// against the replaced credential get no token after this answer (see
    /// `Credential`).
    pub(super) async fn replace_key_credential(
        &self,
        id: &str,
        actor: &Actor,
        action: &str,
        own: &str,
        change: impl FnOnce(&mut Application) -> String,
    ) -> Result<Application, DirectoryError> {
        let _w = self.lock_for_write().await;
        let target = self.app_target(id);
        let checked = self.check_app_write(actor, id, perm::APPS_KEYS).and_then(|app| {
            let cat = self.read();
            cat.check_not_self(actor, id, own)?;
            cat.check_reach(actor, &app.policy, &self.audiences, self.token_ttl)?;
            Ok(app)
        });
        let mut app = match checked {
            Ok(app) => app,
            Err(e) => return Err(self.reject(actor, action, &target, e).await),
        };
        let summary = change(&mut app);
        app.updated_at = now_ms();
        let credential = self.read().apps.get(id).map(|r| r.credential.clone());
        if let Some(c) = &credential {
            c.retire();
        }
        let persisted = self
            .persist(vec![
                Write::Put(keys::app(&app.id), encode(&app)),
                Self::success(actor, action, &target, 200, summary),
            ])
            .await;
        if let Err(e) = persisted {
            restore_unless_indeterminate(credential.as_ref(), &e);
            return Err(e.into());
        }
        let mut cat = self.write_catalog();
        cat.apps.update(id, |row| {
            row.app = app.clone();
            row.credential = Arc::default();
        });
        self.forget_hot(&cat, &[id]);
        Ok(app)
    }

    /// Changes which audiences an application may get tokens for and how
    /// long they live. Needs `apps:write` within the caller's ceiling,
    /// never on the caller's own application (a token could otherwise
    /// widen or lengthen itself), and only audiences the caller's own
    /// application is allowed. Tokens already issued keep their audience
    /// and lifetime (regenerate the secret to end them at once).
    pub async fn set_token_policy(
        &self,
        id: &str,
        change: PolicyChange,
        actor: &Actor,
    ) -> Result<Application, DirectoryError> {
        self.retry_stale(|| self.set_token_policy_once(id, change.clone(), actor))
            .await
    }

    pub(super) async fn set_token_policy_once(
        &self,
        id: &str,
        change: PolicyChange,
        actor: &Actor,
    ) -> Result<Application, DirectoryError> {
        let _w = self.lock_for_write().await;
        let action = "app.policy";
        let target = self.app_target(id);
        let checked = self.check_app_write(actor, id, perm::APPS_WRITE).and_then(|app| {
            let cat = self.read();
            cat.check_not_self(actor, id, "your own application's audiences or token lifetime")?;
            let mut policy = app.policy.clone();
            change.apply_to(&mut policy);
            cat.check_token_policy(actor, &policy, &self.audiences, self.token_ttl)?;
            Ok((app, policy))
        });
        let (mut app, policy) = match checked {
            Ok(ok) => ok,
            Err(e) => return Err(self.reject(actor, action, &target, e).await),
        };
        let summary = format!("token policy: {} -> {}", app.policy.describe(), policy.describe());
        app.policy = policy;
        app.updated_at = now_ms();
        self.persist(vec![
            Write::Put(keys::app(&app.id), encode(&app)),
            Self::success(actor, action, &target, 200, summary),
        ])
        .await?;
        let mut cat = self.write_catalog();
        cat.apps.update(id, |row| row.app = app.clone());
        self.forget_hot(&cat, &[id]);
        Ok(app)
    }

    /// A new secret. With `grace` zero the old one stops working and every
    /// earlier token is revoked at once (the product reference's
    /// behaviour); otherwise the old one keeps working for `grace` (see
    /// [`RetiringSecret`]).
    pub async fn regenerate_secret(
        &self,
        id: &str,
        grace: Grace,
        actor: &Actor,
    ) -> Result<(Application, ClientSecret), DirectoryError> {
        self.retry_stale(|| self.regenerate_secret_once(id, grace, actor)).await
    }

    pub(super) async fn regenerate_secret_once(
        &self,
        id: &str,
        grace: Grace,
        actor: &Actor,
    ) -> Result<(Application, ClientSecret), DirectoryError> {
        let _w = self.lock_for_write().await;
        let target = self.app_target(id);
        // A stolen token must not mint a secret quietly: an overlap keeps
        // the owner's deployment working, so nobody would notice. It adds a
        // credential without revoking the deployed one, as registering a key
        // does: the same permission (System administrator only), and never
        // on one's own application. Rotating at once stays `apps:write`
        // (it is loud: the owner's deployment breaks).
        let checked = self.check_app_write(actor, id, perm::APPS_WRITE).and_then(|app| {
            self.read()
                .check_reach(actor, &app.policy, &self.audiences, self.token_ttl)?;
            if grace.seconds() > 0 {
                let cat = self.read();
                cat.authorize(actor, perm::APPS_KEYS)?;
                cat.check_not_self(
                    actor,
                    id,
                    "your own application's secret with an overlap (rotating it at once is allowed)",
                )?;
                if !app.enabled {
                    return Err(DirectoryError::Conflict(
                        "the application is disabled, and its old secret must not come back when it is enabled: rotate at once (graceSeconds 0), or enable it first".into(),
                    ));
                }
            }
            Ok(app)
        });
        let mut app = match checked {
            Ok(app) => app,
            Err(e) => return Err(self.reject(actor, "app.regenerate-secret", &target, e).await),
        };
        let secret = ClientSecret::generate(&self.rng);
        let old = (app.secret_hash, app.secret_created_at());
        let now = now_ms();
        app.secret_hash = self.pepper.hash(&secret);
        app.secret_created_at = Some(now);
        app.updated_at = now;
        let new_id = app.secret_hash.id();
        let (credential, cutoff, summary) = if grace.seconds() == 0 {
            // Regenerating at once is the answer to a leak: every credential
            // goes, registered keys too (they are registered again deliberately).
            let keys_note = match app.jwks.take() {
                Some(k) => format!("; private_key_jwt keys removed: {}", k.describe()),
                None => String::new(),
            };
            let credential = self.read().apps.get(id).map(|r| r.credential.clone());
            if let Some(c) = &credential {
                c.retire();
            }
            let cutoff = self.next_cutoff(&app).await;
            let overlap_note = app
                .previous_secret
                .take()
                .map(|p| format!("; the overlapping previous secret ({}) stopped too", p.hash.id()))
                .unwrap_or_default();
            let summary = format!(
                "client secret replaced (new secret {new_id}); the old one ({}) stopped working and tokens issued before {} were revoked{overlap_note}{keys_note}",
                old.0.id(),
                format_ms(cutoff.before * 1000)
            );
            (credential, Some(cutoff), summary)
        } else {
            // A planned rotation: nothing stops now except an earlier
            // overlap's secret, whose pre-rotation tokens are revoked now
            // (its overlap tokens expire by its own end, as promised).
            // Requests in flight on the old entry would sign without the
            // cap, with an `iat` at or after the cut-off read below, and
            // escape it: retire first, so they get 401 and a retry gets a
            // capped token (see `Credential`).
            let credential = self.read().apps.get(id).map(|r| r.credential.clone());
            if let Some(c) = &credential {
                c.retire();
            }
            // The earlier overlap's cut-off is a floor for this one.
            let pending = self.next_cutoff(&app).await;
            let (ended, ended_note) = match app.previous_secret.take() {
                Some(p) => (
                    Some(self.overlap_cutoff(p.before)),
                    format!(
                        "; the earlier overlap ended early: secret {} stopped working and tokens issued before {} were revoked",
                        p.hash.id(),
                        format_ms(p.before * 1000)
                    ),
                ),
                None => (None, String::new()),
            };
            let until = pending.before + grace.seconds();
            app.previous_secret = Some(Box::new(RetiringSecret {
                hash: old.0,
                created_at: old.1,
                before: pending.before,
                until,
            }));
            let summary = format!(
                "client secret replaced (new secret {new_id}) with an overlap of {} s: the old one ({}) works until {}, when tokens issued before {} are revoked{ended_note}",
                grace.seconds(),
                old.0.id(),
                format_ms(until * 1000),
                format_ms(pending.before * 1000)
            );
            (credential, ended, summary)
        };
        let audit = Self::success(actor, "app.regenerate-secret", &target, 200, summary);
        let mut writes = vec![Write::Put(keys::app(&app.id), encode(&app)), audit];
        if let Some(c) = &cutoff {
            writes.push(Write::Put(keys::cutoff(app.client_id.as_str()), encode(c)));
        }
        if let Err(e) = self.persist(writes).await {
            restore_unless_indeterminate(credential.as_ref(), &e);
            return Err(e.into());
        }
        let mut cat = self.write_catalog();
        if let Some(c) = cutoff {
            cat.cutoffs.insert(app.client_id.as_str().to_owned(), c);
        }
        cat.apps.update(id, |row| {
            row.app = app.clone();
            if credential.is_some() {
                row.credential = Arc::default();
            }
        });
        self.forget_hot(&cat, &[id]);
        Ok((app, secret))
    }

    /// Ends the rotations whose overlap is over at `now_ms`: the previous
    /// secret is dropped and its pre-rotation tokens revoked (a client
    /// cut-off, which every verifier follows). The token endpoint already
    /// refuses the secret from `until` on; this makes it durable and tells
    /// the verifiers. Returns the client IDs whose cut-off changed.
    pub async fn end_overlaps(&self, now_ms: i64) -> Result<Vec<String>, DirectoryError> {
        let now_s = now_ms.div_euclid(1000);
        let due: Vec<String> = self
            .read()
            .apps
            .overlapping()
            .filter(|r| r.app.previous_secret.as_ref().is_some_and(|p| p.until <= now_s))
            .map(|r| r.app.id.clone())
            .collect();
        // One application's failure must not hold back the others.
        let mut ended = Vec::new();
        let mut failed = None;
        for id in due {
            match self.retry_stale(|| self.end_overlap_once(&id, now_s)).await {
                Ok(Some(client_id)) => ended.push(client_id),
                Ok(None) => {}
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) if ended.is_empty() => Err(e),
            Some(e) => {
                tracing::error!(error = %e, "could not end some secret overlaps; retrying");
                Ok(ended)
            }
            None => Ok(ended),
        }
    }

    pub(super) async fn end_overlap_once(&self, id: &str, now_s: i64) -> Result<Option<String>, DirectoryError> {
        let _w = self.lock_for_write().await;
        // Another instance may have ended it already (shared store).
        let Some(mut app) = self.read().apps.get(id).map(|r| r.app.clone()) else {
            return Ok(None);
        };
        let Some(p) = app.previous_secret.take().filter(|p| p.until <= now_s) else {
            return Ok(None);
        };
        let client_id = app.client_id.as_str().to_owned();
        let cutoff = self.overlap_cutoff(p.before);
        let newer = self.cutoff(&client_id).is_none_or(|c| c.before < cutoff.before);
        let target = Target::new("application", id, app.name.as_str());
        let audit = Self::success(
            &Actor::system(),
            "app.secret-overlap-end",
            &target,
            200,
            format!(
                "the overlap of secret {} ended: it stopped working and tokens issued before {} were revoked",
                p.hash.id(),
                format_ms(p.before * 1000)
            ),
        );
        let mut writes = vec![Write::Put(keys::app(id), encode(&app)), audit];
        if newer {
            writes.push(Write::Put(keys::cutoff(&client_id), encode(&cutoff)));
        }
        self.persist(writes).await?;
        let mut cat = self.write_catalog();
        if newer {
            cat.cutoffs.insert(client_id.clone(), cutoff);
        }
        cat.apps.update(id, |row| row.app = app.clone());
        self.forget_hot(&cat, &[id]);
        Ok(Some(client_id))
    }

    /// Deletes an application, its access rules and its last-login record,
    /// and revokes every token it was issued.
    pub async fn delete_app(&self, id: &str, actor: &Actor) -> Result<Application, DirectoryError> {
        self.retry_stale(|| self.delete_app_once(id, actor)).await
    }

    pub(super) async fn delete_app_once(&self, id: &str, actor: &Actor) -> Result<Application, DirectoryError> {
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
        let cutoff = self.next_cutoff(&app).await;
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
            restore_unless_indeterminate(credential.as_ref(), &e);
            return Err(e.into());
        }
        let mut cat = self.write_catalog();
        cat.cutoffs.insert(app.client_id.as_str().to_owned(), cutoff);
        if let Some(row) = cat.apps.remove(id) {
            cat.forget_creator(row.app.client_id.as_str());
        }
        cat.rules_by_app.remove(id);
        for r in &rule_ids {
            cat.rules.remove(r);
        }
        self.forget_client(app.client_id.as_str());
        Ok(app)
    }
}

/// Undoes a retirement after a failed write, except after an unknown
/// outcome: the change may be committed, and a catch-up will tell, so the
/// old credential stays retired meanwhile.
pub(super) fn restore_unless_indeterminate(credential: Option<&Arc<Credential>>, e: &StoreError) {
    if let Some(c) = credential.filter(|_| !matches!(e, StoreError::Indeterminate(_))) {
        c.restore();
    }
}
