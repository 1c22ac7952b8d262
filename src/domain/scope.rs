//! The scope tree (DESIGN §4): one `tenant` root → `cluster` → `department`
//! → `project`. A rule on a scope covers that scope's descendants.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScopeType {
    Tenant,
    Cluster,
    Department,
    Project,
}

impl ScopeType {
    pub const ALL: [ScopeType; 4] = [Self::Tenant, Self::Cluster, Self::Department, Self::Project];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Cluster => "cluster",
            Self::Department => "department",
            Self::Project => "project",
        }
    }

    /// The type a parent of this type must have (`None` for the root).
    pub fn parent(self) -> Option<Self> {
        match self {
            Self::Tenant => None,
            Self::Cluster => Some(Self::Tenant),
            Self::Department => Some(Self::Cluster),
            Self::Project => Some(Self::Department),
        }
    }
}

impl fmt::Display for ScopeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored scope. `name` is free text and hostile wherever it is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    pub id: String,
    #[serde(rename = "type")]
    pub scope_type: ScopeType,
    pub name: String,
    pub parent_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

/// Scope names: 1–100 characters, no control characters. Anything else is
/// allowed (they are labels) and is escaped by whoever renders it.
pub fn parse_scope_name(s: &str) -> Result<String, String> {
    let n = s.chars().count();
    if n == 0 || n > 100 {
        return Err("scope name must be 1–100 characters".into());
    }
    if s.chars().any(char::is_control) {
        return Err("scope name must not contain control characters".into());
    }
    Ok(s.to_owned())
}
