//! `GET /api/v1/backup`: a consistent snapshot of a sled store for
//! `appauth backup` (format and restore: `store::backup`). System
//! administrators only (`store:backup`): the file holds every secret hash
//! and the audit log. Audited as `store.backup`.

use super::extract::{allow, off_runtime};
use crate::domain::role::perm;
use crate::error::ApiError;
use crate::http::SharedState;
use crate::http::bearer::Admin;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn router() -> Router<SharedState> {
    Router::new().route("/api/v1/backup", get(backup).fallback(allow("GET")))
}

/// A backup of the whole store, as `appauth backup` writes it to a file.
#[utoipa::path(get, path = "/api/v1/backup", operation_id = "backupStore", tag = "Store", security(("bearer" = [])),
    responses(
        (status = 200, description = "The backup file (see the README, \"Backups\")", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, body = crate::http::schema::ApiErrorBody),
        (status = 403, description = "Missing store:backup (System administrators only)", body = crate::http::schema::ApiErrorBody),
        (status = 409, description = "The store is PostgreSQL: back it up with pg_dump", body = crate::http::schema::ApiErrorBody),
    ))]
pub async fn backup(State(state): State<SharedState>, admin: Admin) -> Result<Response, ApiError> {
    admin.require(&state, perm::STORE_BACKUP).await?;
    let directory = state.directory.clone();
    let actor = admin.actor;
    let file = off_runtime(&state, move || directory.backup(&actor))
        .await?
        .map_err(|e| ApiError::from(crate::directory::DirectoryError::Store(e)))?;
    let Some(file) = file else {
        return Err(ApiError::Conflict(
            "this server's store is PostgreSQL: back it up with pg_dump (README, \"Backups\")".into(),
        ));
    };
    let name = format!(
        "attachment; filename=\"appauth-{}.backup\"",
        crate::domain::now_ms() / 1000
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        file,
    )
        .into_response())
}
