//! The role catalogue (DESIGN §4), shared with resource servers through the
//! verifier crate, plus its OpenAPI shape (the crate stays free of utoipa).

pub use appauth_verify::roles::*;

/// The OpenAPI shape of [`Role`].
#[derive(utoipa::ToSchema)]
#[schema(as = Role)]
#[allow(dead_code)]
pub struct RoleSchema {
    id: String,
    name: String,
    description: String,
    permissions: Vec<String>,
}
