//! Adding and removing an application's federated credentials (see
//! `domain::federated`). A federated credential is a way in that outlives
//! the rules of whoever added it, like a registered key: System
//! administrators only (`apps:keys`), within the ceiling, and never on the
//! caller's own application or one that created it.

use super::*;
use crate::domain::federated::{FederatedCredential, MAX_PER_APP, NewFederatedCredential};
use app_writes::restore_unless_indeterminate;

/// One change to an application's federated credentials.
pub enum FederatedChange {
    Add(NewFederatedCredential),
    Remove(String),
}

impl Directory {
    /// Applies `change`; `trusted`: the configured `federation.issuers`.
    /// Returns the application and, for an addition, the new credential.
    pub async fn change_federated_credentials(
        &self,
        id: &str,
        change: FederatedChange,
        trusted: &[&str],
        actor: &Actor,
    ) -> Result<(Application, Option<FederatedCredential>), DirectoryError> {
        let change = &change;
        self.retry_stale(|| self.change_federated_once(id, change, trusted, actor))
            .await
    }

    async fn change_federated_once(
        &self,
        id: &str,
        change: &FederatedChange,
        trusted: &[&str],
        actor: &Actor,
    ) -> Result<(Application, Option<FederatedCredential>), DirectoryError> {
        let _w = self.lock_for_write().await;
        let action = match change {
            FederatedChange::Add(_) => "app.federated.add",
            FederatedChange::Remove(_) => "app.federated.remove",
        };
        let target = self.app_target(id);
        let checked = self.check_app_write(actor, id, perm::APPS_KEYS).and_then(|mut app| {
            let cat = self.read();
            cat.check_not_self(actor, id, "your own application's federated credentials")?;
            cat.check_reach(actor, &app.policy, &self.audiences, self.token_ttl)?;
            drop(cat);
            let added = match change {
                FederatedChange::Add(new) => {
                    let cred = new
                        .clone()
                        .parse(trusted, new_id(), &actor.client_id, now_ms())
                        .map_err(DirectoryError::Invalid)?;
                    if app.federated_credentials.iter().any(|c| c.same_rule(&cred)) {
                        return Err(DirectoryError::Conflict(
                            "the application already has a federated credential with this issuer, subject and conditions".into(),
                        ));
                    }
                    if app.federated_credentials.len() >= MAX_PER_APP {
                        return Err(DirectoryError::Conflict(format!(
                            "the application already has {MAX_PER_APP} federated credentials, the most it may; remove one first"
                        )));
                    }
                    app.federated_credentials.push(cred.clone());
                    Some(cred)
                }
                FederatedChange::Remove(cred_id) => {
                    let before = app.federated_credentials.len();
                    app.federated_credentials.retain(|c| !c.id.eq_ignore_ascii_case(cred_id));
                    if app.federated_credentials.len() == before {
                        return Err(not_found("federated credential", cred_id));
                    }
                    None
                }
            };
            Ok((app, added))
        });
        let (mut app, added) = match checked {
            Ok(x) => x,
            Err(e) => return Err(self.reject(actor, action, &target, e).await),
        };
        let summary = match (change, &added) {
            (_, Some(c)) => format!("federated credential {} added: {}", c.id, c.describe()),
            (FederatedChange::Remove(cred_id), None) => format!("federated credential {cred_id} removed"),
            (FederatedChange::Add(_), None) => String::new(),
        };
        app.updated_at = now_ms();
        // A request already checked against a removed credential must not
        // get its token after this answer (see `Credential`).
        let credential = self.read().apps.get(id).map(|r| r.credential.clone());
        let removing = matches!(change, FederatedChange::Remove(_));
        if removing && let Some(c) = &credential {
            c.retire();
        }
        let persisted = self
            .persist(vec![
                Write::Put(keys::app(&app.id), encode(&app)),
                Self::success(actor, action, &target, 200, summary),
            ])
            .await;
        if let Err(e) = persisted {
            if removing {
                restore_unless_indeterminate(credential.as_ref(), &e);
            }
            return Err(e.into());
        }
        let mut cat = self.write_catalog();
        cat.apps.update(id, |row| {
            row.app = app.clone();
            if removing {
                row.credential = Arc::default();
            }
        });
        self.forget_hot(&cat, &[id]);
        Ok((app, added))
    }
}
