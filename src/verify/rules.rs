//! "Does this token grant role R (or permission P) on scope S?" (DESIGN §5):
//! a rule on a scope covers that scope and its descendants.

use super::VerifyError;
use crate::domain::role;
use crate::token::AccessTokenClaims;
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
        let mut current = Some(scope);
        for _ in 0..MAX_DEPTH {
            match current {
                Some(s) if s == ancestor => return true,
                Some(s) => current = self.parent.get(s).and_then(|p| p.as_deref()),
                None => return false,
            }
        }
        false
    }
}

impl AccessTokenClaims {
    /// Does a rule grant `role_id` on `scope_id` (directly or on an ancestor)?
    pub fn grants_role(&self, role_id: &str, scope_id: &str, tree: &ScopeTree) -> bool {
        self.access_rules
            .iter()
            .any(|r| r.role_id == role_id && tree.covers(&r.scope_id, scope_id))
    }

    /// Does a rule grant a role with `permission` on `scope_id`?
    pub fn grants_permission(&self, permission: &str, scope_id: &str, tree: &ScopeTree) -> bool {
        self.access_rules.iter().any(|r| {
            role::find(&r.role_id).is_some_and(|role| role.permissions.contains(&permission))
                && tree.covers(&r.scope_id, scope_id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access_rule::RuleClaim;
    use crate::domain::scope::ScopeType;
    use crate::token::claims::Audience;

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
            }],
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
    fn a_cyclic_tree_does_not_hang() {
        let t = ScopeTree::new([("a".into(), Some("b".into())), ("b".into(), Some("a".into()))]);
        assert!(!t.covers("z", "a"));
    }
}
