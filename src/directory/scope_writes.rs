//! Scope writes: the tree below the tenant.

use super::*;

impl Directory {
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

    pub(super) async fn create_scope_once(
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
                // The parent exists but is of another type: a conflict with
                // the tree as it is, not a malformed request.
                if parent.scope_type != parent_type {
                    return Err(DirectoryError::Conflict(format!(
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
        self.persist_create(
            vec![Write::Put(keys::scope(&scope.id), encode(&scope)), audit],
            actor,
            "scope.create",
            &target,
        )
        .await?;
        self.write_catalog().scopes.insert(scope.id.clone(), scope.clone());
        Ok(scope)
    }

    pub async fn delete_scope(&self, id: &str, actor: &Actor) -> Result<Scope, DirectoryError> {
        self.retry_stale(|| self.delete_scope_once(id, actor)).await
    }

    pub(super) async fn delete_scope_once(&self, id: &str, actor: &Actor) -> Result<Scope, DirectoryError> {
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
}
