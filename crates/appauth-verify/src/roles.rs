//! The role catalogue (DESIGN §4): fixed, read-only roles with permissions.
//!
//! Role ids are stable slugs; they double as OAuth `scope` values (RFC 6749
//! §3.3) so a client can ask for a token narrowed to some of its roles. The
//! table lives in the verifier crate because a resource server decides
//! permissions from it; the issuer re-exports it.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub permissions: &'static [&'static str],
}

/// The permissions the admin API checks (DESIGN §4 "Admin authority").
pub mod perm {
    pub const APPS_READ: &str = "apps:read";
    pub const APPS_WRITE: &str = "apps:write";
    pub const RULES_READ: &str = "access-rules:read";
    pub const RULES_WRITE: &str = "access-rules:write";
    pub const ROLES_READ: &str = "roles:read";
    pub const SCOPES_READ: &str = "scopes:read";
    pub const SCOPES_WRITE: &str = "scopes:write";
    pub const AUDIT_READ: &str = "audit:read";
    /// Introspect any client's token (RFC 7662 §4); without it a client
    /// sees only its own tokens as active.
    pub const TOKENS_INTROSPECT: &str = "tokens:introspect";
    /// Register `private_key_jwt` keys on an application: a credential that
    /// survives whoever granted it, so System administrators only.
    pub const APPS_KEYS: &str = "apps:keys";
    /// Take a backup of the whole store (every application's secret hash,
    /// the audit log): System administrators only.
    pub const STORE_BACKUP: &str = "store:backup";
}

pub const SYSTEM_ADMINISTRATOR: &str = "system-administrator";
pub const APPLICATION_ADMINISTRATOR: &str = "application-administrator";

const ADMIN_ALL: &[&str] = &[
    "apps:read",
    "apps:write",
    "access-rules:read",
    "access-rules:write",
    "roles:read",
    "scopes:read",
    "scopes:write",
    "audit:read",
    "tokens:introspect",
    "workloads:read",
    "workloads:write",
    "clusters:read",
    "clusters:write",
    "projects:read",
    "projects:write",
    "apps:keys",
    "store:backup",
];

pub const ROLES: &[Role] = &[
    Role {
        id: SYSTEM_ADMINISTRATOR,
        name: "System administrator",
        description: "Full control of the tenant, including applications, access rules and scopes",
        permissions: ADMIN_ALL,
    },
    Role {
        id: APPLICATION_ADMINISTRATOR,
        name: "Application administrator",
        description: "Manages applications and their access rules",
        permissions: &[
            "apps:read",
            "apps:write",
            "access-rules:read",
            "access-rules:write",
            "roles:read",
            "scopes:read",
            "audit:read",
            "tokens:introspect",
        ],
    },
    Role {
        id: "editor",
        name: "Editor",
        description: "Manages projects and workloads in its scope",
        permissions: &[
            "projects:read",
            "projects:write",
            "workloads:read",
            "workloads:write",
            "clusters:read",
            "scopes:read",
        ],
    },
    Role {
        id: "viewer",
        name: "Viewer",
        description: "Reads everything in its scope",
        permissions: &[
            "apps:read",
            "access-rules:read",
            "roles:read",
            "scopes:read",
            "audit:read",
            "tokens:introspect",
            "projects:read",
            "workloads:read",
            "clusters:read",
        ],
    },
    Role {
        id: "resource-server",
        name: "Resource server",
        description: "Introspects any application's tokens (RFC 7662), and nothing else",
        permissions: &["tokens:introspect"],
    },
    Role {
        id: "research-manager",
        name: "Research manager",
        description: "Manages researchers' projects and workloads",
        permissions: &[
            "projects:read",
            "projects:write",
            "workloads:read",
            "workloads:write",
            "scopes:read",
        ],
    },
    Role {
        id: "l1-researcher",
        name: "L1 researcher",
        description: "Submits and manages workloads, creates assets",
        permissions: &["workloads:read", "workloads:write", "projects:read"],
    },
    Role {
        id: "l2-researcher",
        name: "L2 researcher",
        description: "Submits and manages own workloads",
        permissions: &["workloads:read", "workloads:write"],
    },
    Role {
        id: "ml-engineer",
        name: "ML engineer",
        description: "Deploys and manages inference workloads",
        permissions: &["workloads:read", "workloads:write", "projects:read"],
    },
];

pub fn find(id: &str) -> Option<&'static Role> {
    ROLES.iter().find(|r| r.id == id)
}
