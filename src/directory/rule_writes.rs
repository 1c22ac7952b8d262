//! Access-rule writes, under the admin trust model's ceilings (DESIGN §4
//! "Admin authority").

use super::*;

impl Directory {
    pub async fn create_rule(&self, input: NewRule, actor: &Actor) -> Result<AccessRule, DirectoryError> {
        self.retry_stale(|| self.create_rule_once(input.clone(), actor)).await
    }

    pub(super) async fn create_rule_once(&self, input: NewRule, actor: &Actor) -> Result<AccessRule, DirectoryError> {
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
                // The scope exists but is of another type: a conflict with the
                // tree as it is, not a malformed request.
                if scope.scope_type != input.scope_type {
                    return Err(DirectoryError::Conflict(format!(
                        "scope {:?} is a {}, not a {}",
                        input.scope_id, scope.scope_type, input.scope_type
                    )));
                }
                cat.check_not_self(actor, &input.subject_id, "your own application's access rules")?;
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
        self.persist_create(
            vec![Write::Put(keys::rule(&rule.id), encode(&rule)), audit],
            actor,
            "rule.create",
            &target,
        )
        .await?;
        let mut cat = self.write_catalog();
        cat.insert_rule(rule.clone());
        cat.note_creator(&rule.created_by);
        self.forget_hot(&cat, &[&rule.subject_id]);
        Ok(rule)
    }

    pub async fn delete_rule(&self, id: &str, actor: &Actor) -> Result<AccessRule, DirectoryError> {
        self.retry_stale(|| self.delete_rule_once(id, actor)).await
    }

    pub(super) async fn delete_rule_once(&self, id: &str, actor: &Actor) -> Result<AccessRule, DirectoryError> {
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
                cat.check_not_self(actor, &rule.subject_id, "your own application's access rules")?;
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
        self.forget_hot(&cat, &[&rule.subject_id]);
        Ok(rule)
    }
}
