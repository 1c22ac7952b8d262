//! The admin API's views of stored records (never a secret or a hash).

use super::catalog::Catalog;
use crate::domain::access_rule::AccessRule;
use crate::domain::application::Application;
use crate::domain::format_ms;
use crate::domain::scope::{Scope, ScopeType};
use serde::Serialize;

/// The API's view of an application (never its secret or hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub enabled: bool,
    /// The creator's client ID.
    pub created_by: String,
    /// The creator's application name; the client ID when the creator is
    /// gone, `system` for what the server made itself.
    pub created_by_name: String,
    pub created_at: String,
    pub updated_at: String,
    pub last_login: Option<String>,
    pub access_rules: Vec<RuleBrief>,
    /// Public keys registered for `private_key_jwt` (RFC 7523), as a JWK Set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// The secrets that authenticate this application (never their
    /// values): the current one first, then, during a rotation's overlap,
    /// the previous one with its `expiresAt`.
    pub secrets: Vec<SecretView>,
    /// The audiences its tokens may name; `null`: every audience the
    /// issuer serves (applications created before audiences were per
    /// application, and the administrator `init` created).
    pub allowed_audiences: Option<Vec<String>>,
    /// Its tokens' lifetime in seconds; `null`: `issuer.token_ttl_seconds`.
    pub token_ttl_seconds: Option<i64>,
    /// Tokens only with a DPoP proof, bound to its key (RFC 9449).
    pub dpop_bound_access_tokens: bool,
    /// The client certificate that authenticates it (RFC 8705 §2):
    /// `{"subjectDn"|"sanDns"|"sanUri"|"sanIp"|"sanEmail": …}`, or
    /// `{"selfSigned": [x5t#S256 thumbprints]}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tls_client_auth: Option<crate::domain::tls_client::TlsClientAuth>,
    /// Tokens only over mutual TLS, bound to the client certificate (RFC 8705 §3).
    pub certificate_bound_access_tokens: bool,
    /// External identities that may get its tokens without a secret.
    pub federated_credentials: Vec<FederatedCredentialView>,
}

/// A federated credential as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredentialView {
    pub id: String,
    pub issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_pattern: Option<String>,
    pub conditions: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

impl From<&crate::domain::federated::FederatedCredential> for FederatedCredentialView {
    fn from(c: &crate::domain::federated::FederatedCredential) -> Self {
        use crate::domain::federated::Subject;
        let (subject, subject_pattern) = match &c.subject {
            Subject::Exact(s) => (Some(s.clone()), None),
            Subject::Pattern(p) => (None, Some(p.clone())),
        };
        Self {
            id: c.id.clone(),
            issuer: c.issuer.clone(),
            subject,
            subject_pattern,
            conditions: c.conditions.clone(),
            description: c.description.clone(),
            created_at: format_ms(c.created_at),
            created_by: c.created_by.clone(),
        }
    }
}

/// One of an application's secrets, described but never shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    /// A stable handle (12 hex digits) derived one-way from the stored hash.
    pub id: String,
    pub created_at: String,
    /// When it stops working; absent for the current secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleBrief {
    pub id: String,
    pub role_id: String,
    pub role_name: String,
    #[schema(schema_with = crate::domain::scope::scope_type_schema)]
    pub scope_type: ScopeType,
    pub scope_id: String,
    pub scope_name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    pub id: String,
    pub subject_type: String,
    pub subject_id: String,
    pub role_id: String,
    pub role_name: String,
    #[schema(schema_with = crate::domain::scope::scope_type_schema)]
    pub scope_type: ScopeType,
    pub scope_id: String,
    pub scope_name: String,
    pub created_by: String,
    /// As `AppView::created_by_name`.
    pub created_by_name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeView {
    pub id: String,
    #[serde(rename = "type")]
    #[schema(schema_with = crate::domain::scope::scope_type_schema)]
    pub scope_type: ScopeType,
    pub name: String,
    pub parent_id: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

impl Catalog {
    pub fn rule_view(&self, r: &AccessRule) -> RuleView {
        let c = self.claim(r);
        RuleView {
            id: r.id.clone(),
            subject_type: r.subject_type.clone(),
            subject_id: r.subject_id.clone(),
            role_id: c.role_id,
            role_name: c.role,
            scope_type: c.scope_type,
            scope_id: c.scope_id,
            scope_name: c.scope_name,
            created_by: r.created_by.clone(),
            created_by_name: self.creator_label(&r.created_by).to_owned(),
            created_at: format_ms(r.created_at),
        }
    }

    pub fn app_view(&self, app: &Application) -> AppView {
        let last_login = self.apps.get(&app.id).and_then(|r| r.login.get());
        AppView {
            id: app.id.clone(),
            name: app.name.as_str().to_owned(),
            client_id: app.client_id.as_str().to_owned(),
            enabled: app.enabled,
            created_by: app.created_by.clone(),
            created_by_name: self.creator_label(&app.created_by).to_owned(),
            created_at: format_ms(app.created_at),
            updated_at: format_ms(app.updated_at),
            last_login: last_login.map(format_ms),
            jwks: app.jwks.as_deref().cloned().map(Into::into),
            allowed_audiences: app.policy.allowed_audiences.clone(),
            token_ttl_seconds: app.policy.token_ttl_seconds,
            dpop_bound_access_tokens: app.policy.dpop_bound_access_tokens,
            tls_client_auth: app.tls_client_auth.as_deref().cloned(),
            certificate_bound_access_tokens: app.policy.certificate_bound_access_tokens,
            federated_credentials: app.federated_credentials.iter().map(Into::into).collect(),
            secrets: std::iter::once(SecretView {
                id: app.secret_hash.id(),
                created_at: format_ms(app.secret_created_at()),
                expires_at: None,
            })
            .chain(app.previous_secret.as_ref().map(|p| SecretView {
                id: p.hash.id(),
                created_at: format_ms(p.created_at),
                expires_at: Some(format_ms(p.until * 1000)),
            }))
            .collect(),
            access_rules: self
                .rules_of(&app.id)
                .map(|r| {
                    let c = self.claim(r);
                    RuleBrief {
                        id: r.id.clone(),
                        role_id: c.role_id,
                        role_name: c.role,
                        scope_type: c.scope_type,
                        scope_id: c.scope_id,
                        scope_name: c.scope_name,
                    }
                })
                .collect(),
        }
    }
}

pub fn scope_view(s: &Scope) -> ScopeView {
    ScopeView {
        id: s.id.clone(),
        scope_type: s.scope_type,
        name: s.name.clone(),
        parent_id: s.parent_id.clone(),
        created_by: s.created_by.clone(),
        created_at: format_ms(s.created_at),
    }
}
