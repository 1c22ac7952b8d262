//! The scope tree (DESIGN §4): one `tenant` root → `cluster` → `department`
//! → `project`. A rule on a scope covers that scope's descendants.

pub use appauth_verify::claims::ScopeType;
use serde::{Deserialize, Serialize};

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

/// The OpenAPI shape of [`ScopeType`] (the verifier crate stays free of
/// utoipa): a string enum of the four levels.
pub fn scope_type_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ScopeType::ALL.map(ScopeType::as_str)))
        .build()
}
