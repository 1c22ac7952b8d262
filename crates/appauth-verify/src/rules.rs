//! "Does this token grant role R (or permission P) on scope S?" (DESIGN §5):
//! a rule on a scope covers that scope and its descendants.
//!
//! The decision needs S's path (scope ids from the tenant down to S), never
//! the whole tree: a rule covers S exactly when its `scope_id` is in that
//! path. The `*_on_path` methods take the path (a resource server usually
//! stores it with the resource); S's path is also known from the token
//! itself when S is a rule's scope or one of its ancestors (each rule
//! carries `scope_path`); [`ScopeTree`] derives it from the admin API for
//! servers that keep only ids.

use super::VerifyError;
use crate::AccessTokenClaims;
use crate::roles as role;
use std::collections::HashMap;

/// The scope tree as child → parent links.
#[derive(Debug, Clone, Default)]
pub struct ScopeTree {
    parent: HashMap<String, Option<String>>,
}

/// Deeper than any real tree (tenant → cluster → department → project);
/// stops a malformed cyclic tree from looping.
const MAX_DEPTH: usize = 16;

impl ScopeTree {
    pub fn new(links: impl IntoIterator<Item = (String, Option<String>)>) -> Self {
        Self {
            parent: links.into_iter().collect(),
        }
    }

    /// Loads the tree from appauth's admin API (`GET /api/v1/scopes`) with a
    /// token that may read it.
    pub async fn fetch(issuer: &str, bearer: &str) -> Result<Self, VerifyError> {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/scopes", issuer.trim_end_matches('/')))
            .bearer_auth(bearer)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| VerifyError::Discovery(e.to_string()))?;
        let body: serde_json::Value = resp.json().await.map_err(|e| VerifyError::Discovery(e.to_string()))?;
        let links = body["scopes"].as_array().into_iter().flatten().filter_map(|s| {
            let id = s["id"].as_str()?.to_owned();
            Some((id, s["parentId"].as_str().map(str::to_owned)))
        });
        Ok(Self::new(links))
    }

    /// True when `scope` is `ancestor` or lies below it.
    pub fn covers(&self, ancestor: &str, scope: &str) -> bool {
        self.path(scope).iter().any(|s| s == ancestor)
    }

    /// `scope`'s ids from the root down to it (just `[scope]` when unknown).
    pub fn path(&self, scope: &str) -> Vec<String> {
        let mut path = vec![scope.to_owned()];
        let mut current = self.parent.get(scope).and_then(|p| p.as_deref());
        while let Some(s) = current.filter(|_| path.len() < MAX_DEPTH) {
            path.push(s.to_owned());
            current = self.parent.get(s).and_then(|p| p.as_deref());
        }
        path.reverse();
        path
    }
}

fn has_permission(role_id: &str, permission: &str) -> bool {
    role::find(role_id).is_some_and(|role| role.permissions.contains(&permission))
}

impl AccessTokenClaims {
    /// Does a rule grant `role_id` on the scope whose path (ids from the
    /// tenant down to it) is `path`? No tree needed.
    pub fn grants_role_on_path<S: AsRef<str>>(&self, role_id: &str, path: &[S]) -> bool {
        self.access_rules
            .iter()
            .any(|r| r.role_id == role_id && path.iter().any(|p| p.as_ref() == r.scope_id))
    }

    /// Does a rule grant a role with `permission` on the scope at `path`?
    pub fn grants_permission_on_path<S: AsRef<str>>(&self, permission: &str, path: &[S]) -> bool {
        self.access_rules
            .iter()
            .any(|r| has_permission(&r.role_id, permission) && path.iter().any(|p| p.as_ref() == r.scope_id))
    }

    /// `scope_id`'s path as this token knows it: when a rule is on that
    /// scope or below it, its `scope_path` holds the path down to it.
    pub fn known_path(&self, scope_id: &str) -> Option<&[String]> {
        self.access_rules.iter().find_map(|r| {
            let at = r.scope_path.iter().position(|s| s == scope_id)?;
            Some(&r.scope_path[..=at])
        })
    }

    /// Does a rule grant `role_id` on `scope_id` (directly or on an ancestor)?
    pub fn grants_role(&self, role_id: &str, scope_id: &str, tree: &ScopeTree) -> bool {
        self.grants_role_on_path(role_id, &tree.path(scope_id))
    }

    /// Does a rule grant a role with `permission` on `scope_id`?
    pub fn grants_permission(&self, permission: &str, scope_id: &str, tree: &ScopeTree) -> bool {
        self.grants_permission_on_path(permission, &tree.path(scope_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{Audience, RuleClaim, ScopeType};

    fn tree() -> ScopeTree {
        ScopeTree::new([
            ("t".into(), None),
            ("c1".into(), Some("t".into())),
            ("c2".into(), Some("t".into())),
            ("d1".into(), Some("c1".into())),
            ("p1".into(), Some("d1".into())),
        ])
    }

    fn claims(role: &str, scope: &str) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "i".into(),
            sub: "s".into(),
            client_id: "s".into(),
            aud: Audience::One("a".into()),
            iat: 0,
            nbf: 0,
            exp: 1,
            jti: "j".into(),
            scope: None,
            access_rules: vec![RuleClaim {
                role: role.into(),
                role_id: role.into(),
                scope_type: ScopeType::Cluster,
                scope_id: scope.into(),
                scope_name: "C1".into(),
                scope_path: tree().path(scope),
            }],
            cnf: None,
        }
    }

    #[test]
    fn a_rule_covers_its_scope_and_descendants_only() {
        let c = claims("l1-researcher", "c1");
        let t = tree();
        assert!(c.grants_role("l1-researcher", "c1", &t));
        assert!(c.grants_role("l1-researcher", "p1", &t));
        assert!(!c.grants_role("l1-researcher", "c2", &t));
        assert!(!c.grants_role("l1-researcher", "t", &t), "not upwards");
        assert!(!c.grants_role("editor", "p1", &t));
        assert!(c.grants_permission("workloads:write", "d1", &t));
        assert!(!c.grants_permission("scopes:write", "d1", &t));
        assert!(!c.grants_role("l1-researcher", "unknown", &t));
    }

    #[test]
    fn the_decision_needs_only_the_scope_path() {
        let c = claims("l1-researcher", "c1");
        assert_eq!(c.access_rules[0].scope_path, ["t", "c1"]);
        assert!(c.grants_role_on_path("l1-researcher", &["t", "c1", "d1", "p1"]));
        assert!(c.grants_role_on_path("l1-researcher", &["t", "c1"]));
        assert!(!c.grants_role_on_path("l1-researcher", &["t", "c2"]));
        assert!(!c.grants_role_on_path("l1-researcher", &["t"]), "not upwards");
        assert!(c.grants_permission_on_path("workloads:write", &["t", "c1", "d1"]));
        assert!(!c.grants_permission_on_path("scopes:write", &["t", "c1", "d1"]));
        // The token knows the path of its rules' scopes and their ancestors.
        assert_eq!(c.known_path("c1"), Some(&["t".to_string(), "c1".to_string()][..]));
        assert_eq!(c.known_path("t"), Some(&["t".to_string()][..]));
        assert_eq!(c.known_path("d1"), None);
    }

    #[test]
    fn a_cyclic_tree_does_not_hang() {
        let t = ScopeTree::new([("a".into(), Some("b".into())), ("b".into(), Some("a".into()))]);
        assert!(!t.covers("z", "a"));
    }
}
