//! `appauth init` (the tenant, the admin application, its System
//! administrator rule, once per store) and `appauth admin recover`.

use super::*;

impl Directory {
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
        self.add_app(&mut cat, app.clone());
        cat.insert_rule(rule);
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
        self.add_app(&mut cat, app.clone());
        cat.insert_rule(rule);
        Ok((app, secret))
    }
}
