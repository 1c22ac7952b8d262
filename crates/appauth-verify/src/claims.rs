//! The access token's claims (DESIGN §5, RFC 9068 §2.2), as appauth issues
//! them and resource servers read them.

use serde::{Deserialize, Serialize};
use std::fmt;

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
    /// Sender constraint (RFC 7800 §3.1): a DPoP-bound token (RFC 9449 §6)
    /// names the thumbprint of the key whose proofs must come with it; a
    /// certificate-bound one (RFC 8705 §3) its client certificate's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 9449 §6.1: the JWK SHA-256 thumbprint of the DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// RFC 8705 §3.1: the SHA-256 thumbprint of the client certificate a
    /// certificate-bound token must be presented with.
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

impl AccessTokenClaims {
    /// The thumbprint a DPoP-bound token is bound to.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.cnf.as_ref().and_then(|c| c.jkt.as_deref())
    }

    /// The certificate thumbprint a certificate-bound token is bound to.
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.cnf.as_ref().and_then(|c| c.x5t_s256.as_deref())
    }
}

impl AccessTokenClaims {
    /// True when a rule grants `role_id` on the tenant root, the only scope
    /// from which administrative roles apply to the whole admin API.
    pub fn has_tenant_role(&self, role_ids: &[&str]) -> bool {
        self.access_rules
            .iter()
            .any(|r| r.scope_type == ScopeType::Tenant && role_ids.contains(&r.role_id.as_str()))
    }
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

/// The level of a scope in the tree: one `tenant` root → `cluster` →
/// `department` → `project`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
