//! The directory's error: what a write answers (status for the admin API and
//! the audit log), and how store errors map onto it.

use super::*;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    /// Another instance committed a directory change between this write's
    /// catch-up and its commit; nothing was written. Retried inside the
    /// directory (see `retry_stale`) before it reaches a client.
    #[error(
        "another appauth instance changed the directory at the same moment; nothing was changed, retry the request"
    )]
    Stale,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DirectoryError {
    fn from(e: StoreError) -> Self {
        match e {
            // Checked against a catalog another instance had just changed:
            // nothing was written, and the next attempt sees the change.
            StoreError::Stale => Self::Stale,
            // The database's own uniqueness check caught what the catalog
            // check let through (a writer that bypassed this code).
            StoreError::Duplicate { constraint } => Self::Conflict(duplicate_message(&constraint).into()),
            e => Self::Store(e),
        }
    }
}

pub(super) fn duplicate_message(constraint: &str) -> &'static str {
    match constraint {
        "appauth_unique_app_name" => "an application with this name already exists; nothing was changed",
        "appauth_unique_rule" => "this application already has this role on this scope; nothing was changed",
        "appauth_unique_scope_name" => "this parent scope already has a child with this name; nothing was changed",
        "appauth_unique_tenant" => "the tenant scope already exists; there is only one",
        _ => "the store refused a duplicate record; nothing was changed",
    }
}

impl DirectoryError {
    /// The HTTP status the admin API answers this with (also audited).
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::Conflict(_) | Self::Stale => 409,
            Self::Invalid(_) => 400,
            Self::Forbidden(_) => 403,
            Self::Store(_) => 503,
        }
    }
}

impl From<Denied> for DirectoryError {
    fn from(d: Denied) -> Self {
        Self::Forbidden(d.0)
    }
}

pub(super) fn not_found(what: &'static str, id: &str) -> DirectoryError {
    DirectoryError::NotFound {
        what,
        id: id.to_owned(),
    }
}
