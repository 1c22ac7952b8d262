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

pub use appauth_verify::claims::RuleClaim;
