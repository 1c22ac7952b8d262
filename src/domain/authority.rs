//! Admin authority (DESIGN §4 "Admin authority"): what a caller may do with
//! the admin API, as pure functions over its rules and the scope tree.
//!
//! - A caller's permissions *on a scope* are the union of the permissions of
//!   every role it holds on that scope or on one of its ancestors (a rule on
//!   a scope covers the scope's descendants, DESIGN §5).
//! - The API itself is gated on permissions held on the tenant root:
//!   applications, rules and scopes are tenant-wide objects.
//! - **Ceiling**: a caller may grant or remove a role on scope S only when
//!   every permission of that role is among its own permissions on S, and
//!   may act on an application (regenerate, enable/disable, delete, change its
//!   rules) only when each of that application's rules is within its ceiling.
//!   So no sequence of admin calls can leave any application — the caller's
//!   own included — with more than the caller holds.
//!
//! The caller's rules here are its *effective* rules: the token's claims
//! intersected with the rules in the store right now (see
//! `Catalog::effective_rules`), so a removed rule stops counting at once.

use super::role::{self, Role};

/// One rule the caller holds: a role on a scope, with the scope's path from
/// the tenant root down to (and including) the scope.
#[derive(Debug, Clone)]
pub struct Held {
    pub role: &'static Role,
    pub scope_path: Vec<String>,
}

impl Held {
    fn covers(&self, target_path: &[String]) -> bool {
        self.scope_path
            .last()
            .is_some_and(|scope| target_path.iter().any(|p| p == scope))
    }
}

/// True when some rule held on `target_path`'s scope (or above) grants `permission`.
pub fn holds(held: &[Held], permission: &str, target_path: &[String]) -> bool {
    held.iter()
        .any(|h| h.covers(target_path) && h.role.permissions.contains(&permission))
}

/// The first permission of `role` the caller lacks on the scope at
/// `target_path`, or `None` when the role is within its ceiling there.
pub fn missing_for_role(held: &[Held], role: &Role, target_path: &[String]) -> Option<&'static str> {
    role.permissions.iter().copied().find(|p| !holds(held, p, target_path))
}

/// Why a caller may not act on an application holding `target_rules`:
/// the first rule beyond its ceiling and the permission it lacks for it.
pub fn beyond_ceiling<'a>(held: &[Held], target_rules: &'a [Held]) -> Option<(&'a Held, &'static str)> {
    target_rules
        .iter()
        .find_map(|t| missing_for_role(held, t.role, &t.scope_path).map(|p| (t, p)))
}

/// The role catalogue entry for an id, if it exists.
pub fn role(id: &str) -> Option<&'static Role> {
    role::find(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(role_id: &str, path: &[&str]) -> Held {
        Held {
            role: role(role_id).unwrap(),
            scope_path: path.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_role_on_an_ancestor_covers_descendants_but_not_the_other_way() {
        let h = [held("l1-researcher", &["t", "c1"])];
        assert!(holds(&h, "workloads:write", &path(&["t", "c1", "d1"])));
        assert!(!holds(&h, "workloads:write", &path(&["t"])));
        assert!(!holds(&h, "workloads:write", &path(&["t", "c2"])));
    }

    #[test]
    fn the_ceiling_refuses_roles_with_any_permission_the_caller_lacks() {
        let app_admin = [held("application-administrator", &["t"])];
        let sys = role("system-administrator").unwrap();
        assert_eq!(missing_for_role(&app_admin, sys, &path(&["t"])), Some("scopes:write"));
        let same = role("application-administrator").unwrap();
        assert_eq!(missing_for_role(&app_admin, same, &path(&["t", "c1"])), None);
        // Permissions combine across roles and ancestor scopes.
        let mixed = [
            held("application-administrator", &["t"]),
            held("l1-researcher", &["t", "c1"]),
        ];
        let l1 = role("l1-researcher").unwrap();
        assert_eq!(missing_for_role(&mixed, l1, &path(&["t", "c1", "d"])), None);
        assert_eq!(missing_for_role(&mixed, l1, &path(&["t"])), Some("workloads:read"));
    }

    #[test]
    fn an_application_is_beyond_the_ceiling_when_any_of_its_rules_is() {
        let caller = [held("application-administrator", &["t"])];
        let weak = [held("application-administrator", &["t", "c1"])];
        assert!(beyond_ceiling(&caller, &weak).is_none());
        let strong = [
            held("application-administrator", &["t"]),
            held("system-administrator", &["t"]),
        ];
        let (rule, missing) = beyond_ceiling(&caller, &strong).unwrap();
        assert_eq!(rule.role.id, "system-administrator");
        assert_eq!(missing, "scopes:write");
    }
}
