//! Access rules (DESIGN §4): a role granted to a subject on a scope. Rules
//! are immutable; they reach tokens as the `access_rules` claim (DESIGN §5).

use super::scope::ScopeType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessRule {
    pub id: String,
    pub subject_type: String,
    pub subject_id: String,
    pub role_id: String,
    pub scope_type: ScopeType,
    pub scope_id: String,
    pub created_by: String,
    pub created_at: i64,
}

/// One entry of the `access_rules` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleClaim {
    pub role: String,
    pub role_id: String,
    pub scope_type: ScopeType,
    pub scope_id: String,
    pub scope_name: String,
    /// Scope ids from the tenant down to `scope_id` (DESIGN §5): the rule
    /// covers scope S exactly when `scope_id` is in S's path, so any JWT
    /// library can decide it without the scope tree. Absent in tokens from
    /// versions before it was added.
    #[serde(default)]
    pub scope_path: Vec<String>,
}
