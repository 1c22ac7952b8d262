//! `/api/v1/scopes`: the tenant → cluster → department → project tree.

use super::extract::{ApiJson, IdPath, allow, uncancellable, written};
use crate::directory::{ScopeView, scope_view};
use crate::domain::role::perm;
use crate::domain::scope::{ScopeType, parse_scope_name};
use crate::error::ApiError;
use crate::http::SharedState;
use crate::http::bearer::Admin;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/scopes", get(list).post(create).fallback(allow("GET, POST")))
        .route(
            "/api/v1/scopes/{id}",
            get(read).delete(remove).fallback(allow("GET, DELETE")),
        )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateScope {
    #[serde(rename = "type")]
    #[schema(schema_with = crate::domain::scope::scope_type_schema)]
    scope_type: ScopeType,
    name: String,
    parent_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeList {
    total_records: usize,
    scopes: Vec<ScopeView>,
}

/// The whole scope tree.
#[utoipa::path(get, path = "/api/v1/scopes", operation_id = "listScopes", tag = "Scopes", security(("bearer" = [])), responses((status = 200, body = ScopeList)))]
async fn list(State(state): State<SharedState>, admin: Admin) -> Result<Response, ApiError> {
    admin.require(&state, perm::SCOPES_READ).await?;
    let cat = state.directory.read();
    let mut scopes: Vec<ScopeView> = cat.scopes.values().map(scope_view).collect();
    scopes.sort_by(|a, b| (a.scope_type, &a.name, &a.id).cmp(&(b.scope_type, &b.name, &b.id)));
    Ok(axum::Json(ScopeList {
        total_records: scopes.len(),
        scopes,
    })
    .into_response())
}

/// Add a cluster, department or project under a parent of the right type.
#[utoipa::path(post, path = "/api/v1/scopes", operation_id = "createScope", tag = "Scopes", security(("bearer" = [])), request_body = CreateScope,
    responses((status = 403, description = "Missing permission, or the target is beyond the caller's ceiling", body = crate::http::schema::ApiErrorBody), (status = 201, body = ScopeView), (status = 400, body = crate::http::schema::ApiErrorBody),
        (status = 404, body = crate::http::schema::ApiErrorBody), (status = 409, body = crate::http::schema::ApiErrorBody)))]
async fn create(
    State(state): State<SharedState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateScope>,
) -> Result<Response, ApiError> {
    let name = parse_scope_name(&body.name).map_err(ApiError::bad_request)?;
    let parent_id = match body.parent_id.as_deref() {
        None => None,
        Some(p) => Some(
            crate::domain::parse_id(p)
                .ok_or_else(|| ApiError::bad_request(format!("parentId {p:?} is not an id (a UUID)")))?,
        ),
    };
    let (actor, scope_type) = (admin.actor, body.scope_type);
    let scope = uncancellable(&state, |s| async move {
        Ok(s.directory.create_scope(scope_type, name, parent_id, &actor).await?)
    })
    .await?;
    Ok(written(&state, StatusCode::CREATED, &scope_view(&scope)))
}

/// Read a scope.
#[utoipa::path(get, path = "/api/v1/scopes/{id}", operation_id = "getScope", tag = "Scopes", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ScopeView), (status = 404, body = crate::http::schema::ApiErrorBody)))]
async fn read(State(state): State<SharedState>, admin: Admin, IdPath(id): IdPath) -> Result<Response, ApiError> {
    admin.require(&state, perm::SCOPES_READ).await?;
    let cat = state.directory.read();
    let scope = cat
        .scopes
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("scope {id:?} not found")))?;
    Ok(axum::Json(scope_view(scope)).into_response())
}

/// Delete a scope that has no children and no rules.
#[utoipa::path(delete, path = "/api/v1/scopes/{id}", operation_id = "deleteScope", tag = "Scopes", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 403, description = "Missing permission, or the target is beyond the caller's ceiling", body = crate::http::schema::ApiErrorBody), (status = 204), (status = 409, body = crate::http::schema::ApiErrorBody)))]
async fn remove(State(state): State<SharedState>, admin: Admin, IdPath(id): IdPath) -> Result<Response, ApiError> {
    let actor = admin.actor;
    uncancellable(
        &state,
        |s| async move { Ok(s.directory.delete_scope(&id, &actor).await?) },
    )
    .await?;
    state.metrics.admin_writes.inc();
    Ok(StatusCode::NO_CONTENT.into_response())
}
