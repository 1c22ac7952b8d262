//! The access token's claims (DESIGN §5, RFC 9068 §2.2).

use crate::domain::access_rule::RuleClaim;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub aud: Audience,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default)]
    pub access_rules: Vec<RuleClaim>,
}

impl AccessTokenClaims {
    /// True when a rule grants `role_id` on the tenant root, the only scope
    /// from which administrative roles apply to the whole admin API.
    pub fn has_tenant_role(&self, role_ids: &[&str]) -> bool {
        self.access_rules
            .iter()
            .any(|r| r.scope_type == crate::domain::scope::ScopeType::Tenant && role_ids.contains(&r.role_id.as_str()))
    }
}
