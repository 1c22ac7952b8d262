//! `/api/v1/authorization/access-rules` (immutable rules: create, list,
//! read, delete) and `/api/v1/authorization/roles` (the catalogue).

use super::SharedState;
use super::admin::{Admin, ApiJson, IdPath, Need, QueryPairs, allow, written};
use crate::directory::{NewRule, RuleView};
use crate::domain::role::{ROLES, Role};
use crate::domain::scope::ScopeType;
use crate::error::ApiError;
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateRule {
    subject_type: String,
    subject_id: String,
    role_id: String,
    scope_type: ScopeType,
    scope_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleList {
    total_records: usize,
    access_rules: Vec<RuleView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleList {
    total_records: usize,
    roles: &'static [Role],
}

async fn list(
    State(state): State<SharedState>,
    admin: Admin,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    admin.require(Need::Read)?;
    let q = query::parse_query::<RuleRecord<'_>>(&pairs, &[])?;
    let cat = state.directory.read();
    let records: Vec<RuleRecord<'_>> = cat.rules.values().map(|rule| RuleRecord { rule, cat: &cat }).collect();
    let (total, page) = q.run(records.iter());
    let access_rules = page.into_iter().map(|r| cat.rule_view(r.rule)).collect();
    Ok(axum::Json(RuleList {
        total_records: total,
        access_rules,
    })
    .into_response())
}

async fn create(
    State(state): State<SharedState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateRule>,
) -> Result<Response, ApiError> {
    admin.require(Need::ManageApps)?;
    for (field, value) in [("subjectId", &body.subject_id), ("scopeId", &body.scope_id)] {
        if !crate::domain::is_id(value) {
            return Err(ApiError::bad_request(format!(
                "{field} {value:?} is not an id (a UUID)"
            )));
        }
    }
    let rule = state
        .directory
        .create_rule(
            NewRule {
                subject_type: body.subject_type,
                subject_id: body.subject_id,
                role_id: body.role_id,
                scope_type: body.scope_type,
                scope_id: body.scope_id,
            },
            admin.client_id(),
        )
        .await?;
    let view = state.directory.read().rule_view(&rule);
    Ok(written(&state, StatusCode::CREATED, &view))
}

async fn read(State(state): State<SharedState>, admin: Admin, IdPath(id): IdPath) -> Result<Response, ApiError> {
    admin.require(Need::Read)?;
    let cat = state.directory.read();
    let rule = cat
        .rules
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("access rule {id:?} not found")))?;
    Ok(axum::Json(cat.rule_view(rule)).into_response())
}

async fn remove(State(state): State<SharedState>, admin: Admin, IdPath(id): IdPath) -> Result<Response, ApiError> {
    admin.require(Need::ManageApps)?;
    state.directory.delete_rule(&id).await?;
    state
        .metrics
        .admin_writes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn roles(admin: Admin) -> Result<Response, ApiError> {
    admin.require(Need::Read)?;
    Ok(axum::Json(RoleList {
        total_records: ROLES.len(),
        roles: ROLES,
    })
    .into_response())
}
