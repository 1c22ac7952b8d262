//! `/api/v1/apps/{id}/federated-credentials`: the external identities
//! (GitHub Actions, GitLab CI, Kubernetes service accounts, SPIFFE) that may
//! get an application's tokens without its secret (see `domain::federated`).
//! The same permission as registered keys (`apps:keys`), never on one's own
//! application or one that created it.

use super::extract::{ApiJson, IdPair, IdPath, allow, uncancellable, written};
use crate::directory::FederatedChange;
use crate::directory::views::FederatedCredentialView;
use crate::domain::federated::NewFederatedCredential;
use crate::domain::role::perm;
use crate::error::ApiError;
use crate::http::SharedState;
use crate::http::bearer::Admin;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Serialize;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route(
            "/api/v1/apps/{id}/federated-credentials",
            get(list).post(add).fallback(allow("GET, POST")),
        )
        .route(
            "/api/v1/apps/{id}/federated-credentials/{credential}",
            delete(remove).fallback(allow("DELETE")),
        )
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedList {
    /// The issuers an operator configured (`federation.issuers`): the only
    /// ones a credential may name.
    trusted_issuers: Vec<String>,
    federated_credentials: Vec<FederatedCredentialView>,
}

/// List an application's federated credentials, and the trusted issuers.
#[utoipa::path(get, path = "/api/v1/apps/{id}/federated-credentials", operation_id = "listFederatedCredentials", tag = "Applications",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = FederatedList), (status = 404, body = crate::http::schema::ApiErrorBody)))]
pub async fn list(State(state): State<SharedState>, admin: Admin, IdPath(id): IdPath) -> Result<Response, ApiError> {
    admin.require(&state, perm::APPS_READ).await?;
    let cat = state.directory.read();
    let row = cat
        .apps
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("application {id} not found")))?;
    let body = FederatedList {
        trusted_issuers: state
            .grants
            .federation
            .trusted()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        federated_credentials: row.app.federated_credentials.iter().map(Into::into).collect(),
    };
    Ok(axum::Json(body).into_response())
}

/// Add a federated credential: tokens from `issuer` whose `sub` is `subject`
/// (or matches `subjectPattern`) and whose claims meet every condition get
/// this application's tokens, without its secret.
#[utoipa::path(post, path = "/api/v1/apps/{id}/federated-credentials", operation_id = "addFederatedCredential", tag = "Applications",
    security(("bearer" = [])), params(("id" = String, Path)), request_body = NewFederatedCredential,
    responses((status = 201, body = FederatedCredentialView),
        (status = 403, description = "Missing apps:keys, the target is beyond the caller's ceiling, or it is the caller's own application", body = crate::http::schema::ApiErrorBody),
        (status = 404, body = crate::http::schema::ApiErrorBody), (status = 409, body = crate::http::schema::ApiErrorBody)))]
pub async fn add(
    State(state): State<SharedState>,
    admin: Admin,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<NewFederatedCredential>,
) -> Result<Response, ApiError> {
    let actor = admin.actor;
    let added = uncancellable(&state, |s| async move {
        let trusted = s.grants.federation.trusted();
        let (_, added) = s
            .directory
            .change_federated_credentials(&id, FederatedChange::Add(body), &trusted, &actor)
            .await?;
        added.ok_or(ApiError::Internal)
    })
    .await?;
    Ok(written(
        &state,
        StatusCode::CREATED,
        &FederatedCredentialView::from(&added),
    ))
}

/// Remove a federated credential: tokens it accepted stay valid until they
/// expire (regenerate the secret or disable the application to end them).
#[utoipa::path(delete, path = "/api/v1/apps/{id}/federated-credentials/{credential}", operation_id = "removeFederatedCredential", tag = "Applications",
    security(("bearer" = [])), params(("id" = String, Path), ("credential" = String, Path)),
    responses((status = 204), (status = 403, body = crate::http::schema::ApiErrorBody), (status = 404, body = crate::http::schema::ApiErrorBody)))]
pub async fn remove(
    State(state): State<SharedState>,
    admin: Admin,
    IdPair(id, credential): IdPair,
) -> Result<Response, ApiError> {
    let actor = admin.actor;
    uncancellable(&state, |s| async move {
        let trusted = s.grants.federation.trusted();
        s.directory
            .change_federated_credentials(&id, FederatedChange::Remove(credential), &trusted, &actor)
            .await?;
        Ok(())
    })
    .await?;
    state.metrics.admin_writes.inc();
    Ok(StatusCode::NO_CONTENT.into_response())
}
