//! `/api/v1/authorization/access-rules` (immutable rules: create, list,
//! read, delete) and `/api/v1/authorization/roles` (the catalogue).

use super::extract::{ApiJson, IdPath, QueryPairs, allow, off_runtime, uncancellable, written};
use crate::directory::{NewRule, RuleView};
use crate::domain::role::perm;
use crate::domain::role::{ROLES, Role, RoleSchema};
use crate::domain::scope::ScopeType;
use crate::error::ApiError;
use crate::http::SharedState;
use crate::http::bearer::Admin;
use crate::listing::RuleRecord;
use crate::query;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<SharedState> {
    Router::new()
        .route(
            "/api/v1/authorization/access-rules",
            get(list).post(create).fallback(allow("GET, POST")),
        )
        .route(
            "/api/v1/authorization/access-rules/{id}",
            get(read).delete(remove).fallback(allow("GET, DELETE")),
        )
        .route("/api/v1/authorization/roles", get(roles).fallback(allow("GET")))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRule {
    /// Always `app`.
    subject_type: String,
    subject_id: String,
    role_id: String,
    #[schema(schema_with = crate::domain::scope::scope_type_schema)]
    scope_type: ScopeType,
    scope_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleList {
    total_records: usize,
    access_rules: Vec<RuleView>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleList {
    total_records: usize,
    #[schema(value_type = Vec<RoleSchema>)]
    roles: &'static [Role],
}

/// List access rules (same query parameters as applications).
#[utoipa::path(get, path = "/api/v1/authorization/access-rules", operation_id = "listAccessRules", tag = "Access rules", security(("bearer" = [])),
    params(("filterBy" = Option<Vec<String>>, Query), ("search" = Option<String>, Query), ("sortBy" = Option<String>, Query),
        ("sortOrder" = Option<String>, Query), ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = RuleList), (status = 400, body = crate::http::schema::ApiErrorBody)))]
async fn list(
    State(state): State<SharedState>,
    admin: Admin,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    admin.require(&state, perm::RULES_READ).await?;
    let q = query::parse_query::<RuleRecord<'_>>(&pairs, &[])?;
    let directory = state.directory.clone();
    let list = off_runtime(&state, move || {
        let cat = directory.read();
        let records: Vec<RuleRecord<'_>> = cat.rules.values().map(|rule| RuleRecord { rule, cat: &cat }).collect();
        let (total, page) = q.run(records.iter());
        RuleList {
            total_records: total,
            access_rules: page.into_iter().map(|r| cat.rule_view(r.rule)).collect(),
        }
    })
    .await?;
    Ok(axum::Json(list).into_response())
}

/// Grant a role on a scope to an application.
#[utoipa::path(post, path = "/api/v1/authorization/access-rules", operation_id = "createAccessRule", tag = "Access rules", security(("bearer" = [])),
    request_body = CreateRule, responses((status = 403, description = "Missing permission, or the target is beyond the caller's ceiling", body = crate::http::schema::ApiErrorBody), (status = 201, body = RuleView), (status = 400, body = crate::http::schema::ApiErrorBody),
        (status = 404, body = crate::http::schema::ApiErrorBody), (status = 409, body = crate::http::schema::ApiErrorBody)))]
async fn create(
    State(state): State<SharedState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateRule>,
) -> Result<Response, ApiError> {
    let id = |field: &str, value: &str| {
        crate::domain::parse_id(value)
            .ok_or_else(|| ApiError::bad_request(format!("{field} {value:?} is not an id (a UUID)")))
    };
    let input = NewRule {
        subject_type: body.subject_type,
        subject_id: id("subjectId", &body.subject_id)?,
        role_id: body.role_id,
        scope_type: body.scope_type,
        scope_id: id("scopeId", &body.scope_id)?,
    };
    let actor = admin.actor;
    let rule = uncancellable(
        &state,
        |s| async move { Ok(s.directory.create_rule(input, &actor).await?) },
    )
    .await?;
    let view = state.directory.read().rule_view(&rule);
    Ok(written(&state, StatusCode::CREATED, &view))
}

/// Read an access rule.
#[utoipa::path(get, path = "/api/v1/authorization/access-rules/{id}", operation_id = "getAccessRule", tag = "Access rules", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = RuleView), (status = 404, body = crate::http::schema::ApiErrorBody)))]
async fn read(State(state): State<SharedState>, admin: Admin, IdPath(id): IdPath) -> Result<Response, ApiError> {
    admin.require(&state, perm::RULES_READ).await?;
    let cat = state.directory.read();
    let rule = cat
        .rules
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("access rule {id:?} not found")))?;
    Ok(axum::Json(cat.rule_view(rule)).into_response())
}

/// Delete an access rule.
#[utoipa::path(delete, path = "/api/v1/authorization/access-rules/{id}", operation_id = "deleteAccessRule", tag = "Access rules", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 403, description = "Missing permission, or the target is beyond the caller's ceiling", body = crate::http::schema::ApiErrorBody), (status = 204), (status = 404, body = crate::http::schema::ApiErrorBody)))]
async fn remove(State(state): State<SharedState>, admin: Admin, IdPath(id): IdPath) -> Result<Response, ApiError> {
    let actor = admin.actor;
    uncancellable(
        &state,
        |s| async move { Ok(s.directory.delete_rule(&id, &actor).await?) },
    )
    .await?;
    state.metrics.admin_writes.inc();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The role catalogue.
#[utoipa::path(get, path = "/api/v1/authorization/roles", operation_id = "listRoles", tag = "Access rules", security(("bearer" = [])),
    responses((status = 200, body = RoleList)))]
async fn roles(State(state): State<SharedState>, admin: Admin) -> Result<Response, ApiError> {
    admin.require(&state, perm::ROLES_READ).await?;
    Ok(axum::Json(RoleList {
        total_records: ROLES.len(),
        roles: ROLES,
    })
    .into_response())
}
