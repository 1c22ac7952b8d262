//! Admin authority over the catalog (DESIGN §4 "Admin authority"): who is
//! asking ([`Actor`]), what it holds *now*, and the checks every admin
//! request and write makes. The rules themselves are pure functions in
//! [`crate::domain::authority`]; this file feeds them the live catalog.

use super::DirectoryError;
use super::audit::{AuditActor, RequestInfo};
use super::catalog::Catalog;
use crate::domain::authority::{self, Held};
use crate::domain::role::{self, SYSTEM_ADMINISTRATOR};
use crate::domain::scope::ScopeType;

/// Who asks for an admin operation, and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub client_id: String,
    /// The caller's application (`None` for the server itself: `init`, recovery).
    pub app_id: Option<String>,
    pub name: String,
    /// `(role id, scope id)` of each rule in the caller's token.
    pub token_rules: Vec<(String, String)>,
    /// The token's `iat`: a token issued before its client's cut-off
    /// (regenerate, disable) carries no authority, even mid-request.
    pub token_iat: i64,
    pub request: RequestInfo,
}

impl Actor {
    /// The server acting on its own behalf (first start, `admin recover`):
    /// it is not bound by a ceiling.
    pub fn system() -> Self {
        Self {
            client_id: super::SYSTEM.into(),
            app_id: None,
            name: super::SYSTEM.into(),
            token_rules: Vec::new(),
            token_iat: 0,
            request: RequestInfo {
                source_address: "local".into(),
                request_id: "-".into(),
            },
        }
    }

    pub fn is_system(&self) -> bool {
        self.app_id.is_none()
    }

    pub fn audit_actor(&self) -> AuditActor {
        AuditActor {
            client_id: self.client_id.clone(),
            name: self.name.clone(),
        }
    }
}

/// A refusal: the message names the missing permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl Catalog {
    /// Scope ids from the tenant root down to `scope_id` (empty when unknown).
    pub fn scope_path(&self, scope_id: &str) -> Vec<String> {
        let mut path = Vec::new();
        let mut cur = self.scopes.get(scope_id);
        // The tree is four levels deep; the bound guards against a corrupt cycle.
        while let Some(s) = cur.filter(|_| path.len() < 8) {
            path.push(s.id.clone());
            cur = s.parent_id.as_deref().and_then(|p| self.scopes.get(p));
        }
        path.reverse();
        path
    }

    fn scope_label(&self, path: &[String]) -> String {
        path.last().and_then(|id| self.scopes.get(id)).map_or_else(
            || "an unknown scope".into(),
            |s| format!("{} {:?}", s.scope_type, s.name),
        )
    }

    /// Every rule an application holds, as authority entries.
    pub fn held_by(&self, app_id: &str) -> Vec<Held> {
        self.rules_of(app_id)
            .filter_map(|r| {
                role::find(&r.role_id).map(|role| Held {
                    role,
                    scope_path: self.scope_path(&r.scope_id),
                })
            })
            .collect()
    }

    /// The caller's authority now: the rules its token carries that the
    /// store still grants its application. A deleted rule or application
    /// stops counting on the next request, whatever the token says.
    pub fn effective_rules(&self, actor: &Actor) -> Vec<Held> {
        let Some(app_id) = &actor.app_id else {
            return Vec::new();
        };
        if !self.apps.get(app_id).is_some_and(|row| row.app.enabled) {
            return Vec::new();
        }
        // Checked again here, under the write lock, because a request may
        // have authenticated before a regenerate answered and write after.
        if self
            .cutoffs
            .get(&actor.client_id)
            .is_some_and(|c| actor.token_iat < c.before)
        {
            return Vec::new();
        }
        self.rules_of(app_id)
            .filter(|r| {
                actor
                    .token_rules
                    .iter()
                    .any(|(role, scope)| *role == r.role_id && *scope == r.scope_id)
            })
            .filter_map(|r| {
                role::find(&r.role_id).map(|role| Held {
                    role,
                    scope_path: self.scope_path(&r.scope_id),
                })
            })
            .collect()
    }

    fn tenant_path(&self) -> Vec<String> {
        self.tenant_id.iter().cloned().collect()
    }

    /// The gate of every admin endpoint: `permission` held on the tenant
    /// scope. Returns the caller's effective rules for further checks.
    pub fn authorize(&self, actor: &Actor, permission: &str) -> Result<Vec<Held>, Denied> {
        if actor.is_system() {
            return Ok(Vec::new());
        }
        let held = self.effective_rules(actor);
        if authority::holds(&held, permission, &self.tenant_path()) {
            Ok(held)
        } else {
            Err(Denied(format!(
                "missing permission {permission} on the tenant scope: your application's current access rules do not grant it"
            )))
        }
    }

    /// Whether an application's current rules grant `permission` on the
    /// tenant (for callers that authenticate with their secret, not a token).
    pub fn app_holds_on_tenant(&self, app_id: &str, permission: &str) -> bool {
        self.apps.get(app_id).is_some_and(|r| r.app.enabled)
            && authority::holds(&self.held_by(app_id), permission, &self.tenant_path())
    }

    /// The ceiling over a target application: each of its rules must be
    /// within the caller's own permissions on that rule's scope.
    pub fn check_target(&self, actor: &Actor, held: &[Held], app_id: &str) -> Result<(), Denied> {
        if actor.is_system() {
            return Ok(());
        }
        let target = self.held_by(app_id);
        if let Some(unknown) = self.rules_of(app_id).find(|r| role::find(&r.role_id).is_none()) {
            // A role not in the catalogue (an older store): its permissions
            // are unknown, so it is beyond every ceiling.
            return Err(Denied(format!(
                "application holds role {:?}, which is not in the role catalogue; only the server itself may act on it",
                unknown.role_id
            )));
        }
        match authority::beyond_ceiling(held, &target) {
            None => Ok(()),
            Some((rule, missing)) => {
                let name = self.apps.get(app_id).map_or("", |r| r.app.name.as_str());
                Err(Denied(format!(
                    "missing permission {missing}: application {name:?} holds {} on {}, which is beyond your own authority; you may act only on applications whose roles are all within yours",
                    rule.role.name,
                    self.scope_label(&rule.scope_path)
                )))
            }
        }
    }

    /// The ceiling over one role on one scope, for creating or deleting a rule.
    pub fn check_role_on_scope(
        &self,
        actor: &Actor,
        held: &[Held],
        role_id: &str,
        scope_id: &str,
    ) -> Result<(), Denied> {
        if actor.is_system() {
            return Ok(());
        }
        let Some(role) = role::find(role_id) else {
            return Ok(());
        };
        let path = self.scope_path(scope_id);
        match authority::missing_for_role(held, role, &path) {
            None => Ok(()),
            Some(missing) => Err(Denied(format!(
                "missing permission {missing}: {} on {} needs it, and your access rules do not grant it on that scope or above",
                role.name,
                self.scope_label(&path)
            ))),
        }
    }

    /// An application may be given only what its grantor's own application
    /// has: audiences it is allowed, and tokens that live no longer than its
    /// own (`default_ttl`: `issuer.token_ttl_seconds`). Nobody hands out
    /// reach or persistence they lack.
    pub fn check_token_policy(
        &self,
        actor: &Actor,
        wanted: &crate::domain::application::TokenPolicy,
        served: &[String],
        default_ttl: i64,
    ) -> Result<(), DirectoryError> {
        let Some(own) = actor.app_id.as_deref().and_then(|id| self.apps.get(id)) else {
            return Ok(()); // the server itself (init, recovery)
        };
        if !own.app.policy.covers(wanted, served) {
            return Err(DirectoryError::Forbidden(format!(
                "you may only allow audiences your own application is allowed ({}); ask an administrator who holds them",
                own.app
                    .policy
                    .allowed_audiences
                    .as_ref()
                    .map_or_else(|| served.join(", "), |l| l.join(", "))
            )));
        }
        let own_ttl = own.app.policy.token_ttl_seconds.unwrap_or(default_ttl);
        if wanted.token_ttl_seconds.unwrap_or(default_ttl) > own_ttl {
            return Err(DirectoryError::Forbidden(format!(
                "tokenTtlSeconds may be at most {own_ttl}, your own application's token lifetime; ask an administrator whose tokens live longer"
            )));
        }
        Ok(())
    }

    /// A write that gives the caller a way to obtain an application's
    /// tokens (a new secret, a key, a federated credential, a certificate)
    /// gives it that application's reach: allowed only within the caller's
    /// own audiences and token lifetime, as creating such an application is.
    pub fn check_reach(
        &self,
        actor: &Actor,
        target: &crate::domain::application::TokenPolicy,
        served: &[String],
        default_ttl: i64,
    ) -> Result<(), DirectoryError> {
        self.check_token_policy(actor, target, served, default_ttl)
            .map_err(|e| match e {
                DirectoryError::Forbidden(m) => DirectoryError::Forbidden(format!(
                    "this application's tokens reach beyond your own application's (a new credential for it would hand you that reach): {m}"
                )),
                other => other,
            })
    }

    /// A caller may not change its own application, nor one that created
    /// it, directly or through applications it created: otherwise a stolen
    /// token could create a helper application and have it change the
    /// caller's own keys or secret. `what`: "you may not change {what}".
    pub fn check_not_self(&self, actor: &Actor, app_id: &str, what: &str) -> Result<(), Denied> {
        let Some(mut current) = actor.app_id.as_deref() else {
            return Ok(()); // the server itself
        };
        // Bounded: creation chains are short, and a corrupt cycle must end.
        for depth in 0..64 {
            if current == app_id {
                return Err(Denied(if depth == 0 {
                    format!("you may not change {what}; ask another administrator")
                } else {
                    format!(
                        "you may not change {}: the application {:?} created yours (directly or through applications it created), so changing it would be changing your own; ask another administrator",
                        what.replace("your own application's", "this application's"),
                        self.apps.get(app_id).map_or("", |r| r.app.name.as_str())
                    )
                }));
            }
            let Some(creator) = self
                .apps
                .get(current)
                .and_then(|row| self.creator_name(&row.app.created_by))
                .and_then(|name| self.apps.by_name(name))
                .map(|row| &row.app.id)
            else {
                return Ok(());
            };
            current = creator;
        }
        Ok(())
    }

    /// Ids of the enabled applications holding *System administrator* on the tenant.
    pub fn system_administrators(&self) -> Vec<&str> {
        self.apps
            .values()
            .filter(|row| row.app.enabled)
            .filter(|row| {
                self.rules_of(&row.app.id)
                    .any(|r| r.role_id == SYSTEM_ADMINISTRATOR && r.scope_type == ScopeType::Tenant)
            })
            .map(|row| row.app.id.as_str())
            .collect()
    }
}
