//! `/api/v1/apps`: applications (DESIGN §4) — list (JSON or CSV), create,
//! read, enable/disable, delete, regenerate the secret.

use super::extract::{
    ApiJson, IdPath, OptionalJson, QueryPairs, allow, off_runtime, uncancellable, wants_csv, written,
};
use crate::directory::{AppView, KeyCredentials};
use crate::domain::application::{AppName, PolicyChange, TokenPolicy};
use crate::domain::client_keys::ClientKeys;
use crate::domain::role::perm;
use crate::domain::rotation::Grace;
use crate::domain::tls_client::TlsClientAuth;
use crate::error::ApiError;
use crate::error::no_store;
use crate::http::SharedState;
use crate::http::bearer::Admin;
use crate::listing::{AppRecord, CSV_COLUMNS, CSV_DEFAULT_COLUMNS, MAX_CSV_ROWS, csv_line, csv_value};
use crate::query;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/apps", get(list).post(create).fallback(allow("GET, POST")))
        .route(
            "/api/v1/apps/{id}",
            get(read)
                .patch(update)
                .delete(remove)
                .fallback(allow("GET, PATCH, DELETE")),
        )
        .route("/api/v1/apps/{id}/secret", post(regenerate).fallback(allow("POST")))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateApp {
    /// `^[a-z][-_a-z0-9]*[a-z0-9]$`, at most 63 characters; not `system`.
    #[schema(pattern = "^[a-z][-_a-z0-9]*[a-z0-9]$", min_length = 2, max_length = 63)]
    name: String,
    /// Public keys for `private_key_jwt` (RFC 7523): a JWK Set of 1 to 5
    /// public keys (EC P-256, OKP Ed25519, or RSA 2048+ with `alg` RS256
    /// or PS256); private members are refused.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    jwks: Option<serde_json::Value>,
    /// Audiences its tokens may name, each one of `issuer.audiences` (at
    /// most those the caller's own application is allowed); default: the
    /// issuer's default audience only.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 32)]
    allowed_audiences: Option<Vec<String>>,
    /// Lifetime of its tokens in seconds, 5 to `issuer.token_ttl_seconds`;
    /// default: `issuer.token_ttl_seconds`.
    #[serde(default)]
    #[schema(minimum = 5, maximum = 86400)]
    token_ttl_seconds: Option<i64>,
    /// Tokens only with a DPoP proof, bound to its key (RFC 9449); default false.
    #[serde(default)]
    dpop_bound_access_tokens: Option<bool>,
    /// The client certificate that authenticates it (RFC 8705 §2): one
    /// member, `subjectDn` (RFC 4514), `sanDns`, `sanUri`, `sanIp` or
    /// `sanEmail` for a certificate from a client CA
    /// (`server.client_ca_file`), or `selfSigned`, a list of 1 to 10 PEM
    /// certificates. Needs apps:keys.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    tls_client_auth: Option<serde_json::Value>,
    /// Tokens only over mutual TLS, bound to the client certificate (RFC
    /// 8705 §3); default false.
    #[serde(default)]
    certificate_bound_access_tokens: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateApp {
    enabled: Option<bool>,
    /// Replaces the `private_key_jwt` keys; `null` removes them.
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "present")]
    jwks: Option<Option<serde_json::Value>>,
    /// Replaces the audiences its tokens may name (see create); not null.
    #[serde(default, deserialize_with = "present_list")]
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 32)]
    allowed_audiences: Option<Option<Vec<String>>>,
    /// Its tokens' lifetime in seconds; `null`: `issuer.token_ttl_seconds`.
    #[schema(value_type = Option<i64>, minimum = 5, maximum = 86400)]
    #[serde(default, deserialize_with = "present_ttl")]
    token_ttl_seconds: Option<Option<i64>>,
    /// Tokens only with a DPoP proof, bound to its key (RFC 9449).
    dpop_bound_access_tokens: Option<bool>,
    /// Replaces its client certificate (see create); `null` removes it.
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "present")]
    tls_client_auth: Option<Option<serde_json::Value>>,
    /// Tokens only over mutual TLS, bound to the client certificate (RFC 8705).
    certificate_bound_access_tokens: Option<bool>,
}

fn present_ttl<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

fn present_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Option::<Vec<String>>::deserialize(d).map(Some)
}

/// Checks audiences against `issuer.audiences`: 1 to 32, no repeats.
fn audiences(state: &SharedState, list: Vec<String>) -> Result<Vec<String>, ApiError> {
    let served = &state.config.issuer.audiences;
    if list.is_empty() || list.len() > 32 {
        return Err(ApiError::bad_request(
            "allowedAudiences must list 1 to 32 audiences; to stop an application getting tokens, disable it",
        ));
    }
    for (i, a) in list.iter().enumerate() {
        if !served.contains(a) {
            return Err(ApiError::bad_request(format!(
                "allowedAudiences: {a:?} is not an audience this issuer serves (issuer.audiences: {})",
                served.join(", ")
            )));
        }
        if list[..i].contains(a) {
            return Err(ApiError::bad_request(format!(
                "allowedAudiences: {a:?} is listed twice"
            )));
        }
    }
    Ok(list)
}

/// Checks a token lifetime against `issuer.token_ttl_seconds`.
fn token_ttl(state: &SharedState, ttl: i64) -> Result<i64, ApiError> {
    let max = state.config.issuer.token_ttl_seconds;
    if !(5..=max).contains(&ttl) {
        return Err(ApiError::bad_request(format!(
            "tokenTtlSeconds must be 5 to {max} (issuer.token_ttl_seconds)"
        )));
    }
    Ok(ttl)
}

/// Tells a member sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Option::<serde_json::Value>::deserialize(d).map(Some)
}

/// A client certificate registration the server can check: its method is
/// enabled here (`server.client_ca_file`, `server.self_signed_client_certs`).
fn tls_client_auth(state: &SharedState, v: Option<&serde_json::Value>) -> Result<Option<TlsClientAuth>, ApiError> {
    let Some(auth) = v
        .filter(|v| !v.is_null())
        .map(TlsClientAuth::parse)
        .transpose()
        .map_err(ApiError::bad_request)?
    else {
        return Ok(None);
    };
    let enabled = if auth.needs_ca() {
        state.grants.mtls.pki()
    } else {
        state.grants.mtls.self_signed()
    };
    if !enabled {
        let setting = if auth.needs_ca() {
            "server.client_ca_file"
        } else {
            "server.self_signed_client_certs"
        };
        return Err(ApiError::bad_request(format!(
            "tlsClientAuth: {} is not enabled on this server ({setting})",
            auth.method()
        )));
    }
    Ok(Some(auth))
}

fn client_keys(v: Option<&serde_json::Value>) -> Result<Option<ClientKeys>, ApiError> {
    v.filter(|v| !v.is_null())
        .map(ClientKeys::parse)
        .transpose()
        .map_err(ApiError::bad_request)
}

/// Options for regenerating a secret; the body may be left out.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Regenerate {
    /// How long the old secret keeps working: 0 (the default) stops it at
    /// once and revokes every earlier token; up to 604800 (7 days) keeps it
    /// working until then, its new tokens expiring by then, and revokes the
    /// tokens issued before the rotation when the overlap ends. Rotating
    /// again during an overlap ends the earlier overlap at once.
    #[schema(minimum = 0, maximum = 604800)]
    #[serde(default)]
    grace_seconds: i64,
}

/// An application together with its secret: the one answer that shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WithSecret {
    #[serde(flatten)]
    app: AppView,
    secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppList {
    total_records: usize,
    applications: Vec<AppView>,
}

/// List applications (JSON), or export them as CSV with `Accept: text/csv` or `format=csv`.
#[utoipa::path(get, path = "/api/v1/apps", operation_id = "listApps", tag = "Applications", security(("bearer" = [])),
    params(
        ("filterBy" = Option<Vec<String>>, Query, description = "field<op>value; ops == != <= >= =@ !@ =^ =$ (repeatable)"),
        ("search" = Option<String>, Query, description = "case-insensitive substring of name, client ID or creator"),
        ("sortBy" = Option<String>, Query), ("sortOrder" = Option<String>, Query, description = "asc or desc"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "1..=500 (CSV: 1..=20000)"),
        ("format" = Option<String>, Query, description = "csv for a CSV export"),
        ("columns" = Option<String>, Query, description = "CSV columns, comma-separated; asks for CSV, as format=csv does"),
    ),
    responses(
        (status = 200, description = "A page of applications, or the CSV export",
            content((AppList = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::http::schema::ApiErrorBody), (status = 401, body = crate::http::schema::ApiErrorBody),
        (status = 403, body = crate::http::schema::ApiErrorBody),
    ))]
async fn list(
    State(state): State<SharedState>,
    admin: Admin,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    admin.require(&state, perm::APPS_READ).await?;
    if wants_csv(&headers, &pairs) {
        return export_csv(&state, &pairs).await;
    }
    let q = query::parse_query::<AppRecord<'_>>(&pairs, &["format"])?;
    let directory = state.directory.clone();
    // Filtering and sorting up to 100,000 rows is CPU work: off the
    // connection runtimes, which also serve the token endpoint.
    let list = off_runtime(&state, move || {
        let cat = directory.read();
        let (total, ids) = crate::listing::run_app_query(&cat, &q);
        let applications = ids
            .iter()
            .filter_map(|id| cat.apps.get(id))
            .map(|r| cat.app_view(&r.app))
            .collect();
        AppList {
            total_records: total,
            applications,
        }
    })
    .await?;
    Ok(axum::Json(list).into_response())
}

/// Streams the CSV in chunks, taking the catalog lock once per chunk, so a
/// 20,000-row export neither builds the whole file nor blocks writers.
async fn export_csv(state: &SharedState, pairs: &[(String, String)]) -> Result<Response, ApiError> {
    let q = query::parse_query_limited::<AppRecord<'_>>(pairs, &["format", "columns"], MAX_CSV_ROWS, MAX_CSV_ROWS)?;
    let columns: Vec<(&'static str, &'static str)> = match pairs.iter().find(|(k, _)| k == "columns") {
        None => CSV_COLUMNS[..CSV_DEFAULT_COLUMNS].to_vec(),
        Some((_, list)) => list
            .split(',')
            .map(|name| {
                CSV_COLUMNS
                    .iter()
                    .copied()
                    .find(|(f, _)| *f == name.trim())
                    .ok_or_else(|| {
                        let valid: Vec<&str> = CSV_COLUMNS.iter().map(|(f, _)| *f).collect();
                        ApiError::BadRequest(
                            format!("unknown column {name:?}; valid: {}", valid.join(", ")),
                            Some(serde_json::json!({"valid": valid})),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let directory = state.directory.clone();
    let offset = q.offset;
    let (total, ids) = off_runtime(state, move || crate::listing::run_app_query(&directory.read(), &q)).await?;
    let exported = ids.len();
    let mut head = String::from("\u{feff}");
    csv_line(&mut head, columns.iter().map(|(_, h)| h.to_string()));
    let directory = state.directory.clone();
    let chunks: Vec<Vec<String>> = ids.chunks(1000).map(<[String]>::to_vec).collect();
    let pool_state = state.clone();
    let columns = std::sync::Arc::new(columns);
    let body = futures_util::stream::iter(std::iter::once(Ok::<_, std::convert::Infallible>(head))).chain(
        futures_util::stream::iter(chunks).then(move |chunk| {
            let (directory, columns, state) = (directory.clone(), columns.clone(), pool_state.clone());
            async move {
                // Formatting runs on the list pool too, a chunk at a time.
                let out = state
                    .list_pool
                    .run(move || {
                        let cat = directory.read();
                        let mut out = String::with_capacity(chunk.len() * 160);
                        for id in &chunk {
                            // An application deleted since the query ran is skipped.
                            if let Some(row) = cat.apps.get(id) {
                                let rec = AppRecord::new(row, &cat);
                                csv_line(&mut out, columns.iter().map(|(f, _)| csv_value(&rec, f)));
                            }
                        }
                        out
                    })
                    .await;
                Ok(out.unwrap_or_default())
            }
        }),
    );
    let mut resp = Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"applications.csv\""),
    );
    h.insert("x-total-records", HeaderValue::from(total));
    h.insert("x-exported-records", HeaderValue::from(exported));
    h.insert(
        "x-truncated",
        HeaderValue::from_static(if exported < total.saturating_sub(offset) {
            "true"
        } else {
            "false"
        }),
    );
    Ok(resp)
}

use futures_util::StreamExt as _;

/// Create an application; the response is the only one that shows its secret.
#[utoipa::path(post, path = "/api/v1/apps", operation_id = "createApp", tag = "Applications", security(("bearer" = [])), request_body = CreateApp,
    responses((status = 403, description = "Missing permission, or the target is beyond the caller's ceiling", body = crate::http::schema::ApiErrorBody), (status = 201, body = WithSecret), (status = 400, body = crate::http::schema::ApiErrorBody),
        (status = 409, body = crate::http::schema::ApiErrorBody)))]
async fn create(
    State(state): State<SharedState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateApp>,
) -> Result<Response, ApiError> {
    let name = AppName::parse(&body.name).map_err(ApiError::bad_request)?;
    let keys = KeyCredentials {
        jwks: client_keys(body.jwks.as_ref())?,
        tls_client_auth: tls_client_auth(&state, body.tls_client_auth.as_ref())?,
    };
    let default_audience = state.config.issuer.audiences.iter().take(1).cloned().collect();
    let policy = TokenPolicy {
        allowed_audiences: Some(audiences(&state, body.allowed_audiences.unwrap_or(default_audience))?),
        token_ttl_seconds: body.token_ttl_seconds.map(|t| token_ttl(&state, t)).transpose()?,
        dpop_bound_access_tokens: body.dpop_bound_access_tokens.unwrap_or(false),
        certificate_bound_access_tokens: body.certificate_bound_access_tokens.unwrap_or(false),
    };
    let actor = admin.actor;
    let (app, secret) = uncancellable(&state, |s| async move {
        Ok(s.directory.create_app(name, keys, policy, &actor).await?)
    })
    .await?;
    let view = state.directory.read().app_view(&app);
    Ok(with_secret(
        &state,
        StatusCode::CREATED,
        &WithSecret {
            app: view,
            secret: secret.expose().to_owned(),
        },
    ))
}

/// A write's answer that carries a secret: never stored by any cache.
fn with_secret<T: Serialize>(state: &SharedState, status: StatusCode, body: &T) -> Response {
    let mut resp = written(state, status, body);
    no_store(&mut resp);
    resp
}

fn view_of(state: &SharedState, id: &str) -> Result<AppView, ApiError> {
    let cat = state.directory.read();
    cat.apps
        .get(id)
        .map(|r| cat.app_view(&r.app))
        .ok_or_else(|| ApiError::NotFound(format!("application {id:?} not found")))
}

/// Read an application (never its secret).
#[utoipa::path(get, path = "/api/v1/apps/{id}", operation_id = "getApp", tag = "Applications", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AppView), (status = 404, body = crate::http::schema::ApiErrorBody)))]
async fn read(State(state): State<SharedState>, admin: Admin, IdPath(id): IdPath) -> Result<Response, ApiError> {
    admin.require(&state, perm::APPS_READ).await?;
    Ok(axum::Json(view_of(&state, &id)?).into_response())
}

/// Enable or disable an application (disabling revokes its tokens), and/or
/// replace its `private_key_jwt` keys.
#[utoipa::path(patch, path = "/api/v1/apps/{id}", operation_id = "updateApp", tag = "Applications", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = UpdateApp, responses((status = 403, description = "Missing permission, or the target is beyond the caller's ceiling", body = crate::http::schema::ApiErrorBody), (status = 200, body = AppView), (status = 404, body = crate::http::schema::ApiErrorBody)))]
async fn update(
    State(state): State<SharedState>,
    admin: Admin,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<UpdateApp>,
) -> Result<Response, ApiError> {
    let jwks = match &body.jwks {
        Some(v) => Some(client_keys(v.as_ref())?),
        None => None,
    };
    let policy = PolicyChange {
        allowed_audiences: match body.allowed_audiences {
            Some(Some(a)) => Some(audiences(&state, a)?),
            Some(None) => {
                return Err(ApiError::bad_request(
                    "allowedAudiences cannot be null: send the list of audiences (an application is never given every audience through the API)",
                ));
            }
            None => None,
        },
        token_ttl_seconds: match body.token_ttl_seconds {
            Some(Some(t)) => Some(Some(token_ttl(&state, t)?)),
            other => other,
        },
        dpop_bound_access_tokens: body.dpop_bound_access_tokens,
        certificate_bound_access_tokens: body.certificate_bound_access_tokens,
    };
    let mtls = match &body.tls_client_auth {
        Some(v) => Some(tls_client_auth(&state, v.as_ref())?),
        None => None,
    };
    if body.enabled.is_none() && jwks.is_none() && mtls.is_none() && policy.is_empty() {
        return Err(ApiError::bad_request(
            "send at least one of \"enabled\" (true or false), \"jwks\", \"tlsClientAuth\", \"allowedAudiences\", \"tokenTtlSeconds\", \"dpopBoundAccessTokens\" and \"certificateBoundAccessTokens\"",
        ));
    }
    let (actor, enabled) = (admin.actor, body.enabled);
    let app = uncancellable(&state, |s| async move {
        let mut app = None;
        if !policy.is_empty() {
            app = Some(s.directory.set_token_policy(&id, policy, &actor).await?);
        }
        if let Some(keys) = jwks {
            app = Some(s.directory.set_client_keys(&id, keys, &actor).await?);
        }
        if let Some(auth) = mtls {
            app = Some(s.directory.set_tls_client_auth(&id, auth, &actor).await?);
        }
        if let Some(enabled) = enabled {
            let changed = s.directory.set_enabled(&id, enabled, &actor).await?;
            if !enabled {
                s.revocations.announce_client(changed.client_id.as_str()).await;
            }
            app = Some(changed);
        }
        app.ok_or(ApiError::Internal)
    })
    .await?;
    let view = state.directory.read().app_view(&app);
    Ok(written(&state, StatusCode::OK, &view))
}

/// Delete an application, its access rules, and revoke its tokens.
#[utoipa::path(delete, path = "/api/v1/apps/{id}", operation_id = "deleteApp", tag = "Applications", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 403, description = "Missing permission, or the target is beyond the caller's ceiling", body = crate::http::schema::ApiErrorBody), (status = 204), (status = 404, body = crate::http::schema::ApiErrorBody)))]
async fn remove(State(state): State<SharedState>, admin: Admin, IdPath(id): IdPath) -> Result<Response, ApiError> {
    let actor = admin.actor;
    uncancellable(&state, |s| async move {
        let app = s.directory.delete_app(&id, &actor).await?;
        s.revocations.announce_client(app.client_id.as_str()).await;
        Ok(())
    })
    .await?;
    state.metrics.admin_writes.inc();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Regenerate the secret: by default the old one stops working and earlier
/// tokens are revoked; `graceSeconds` lets the old one overlap the new one.
#[utoipa::path(post, path = "/api/v1/apps/{id}/secret", operation_id = "regenerateSecret", tag = "Applications", security(("bearer" = [])), params(("id" = String, Path)),
    request_body(content = Option<Regenerate>, description = "Optional; an empty body is `graceSeconds: 0`"),
    responses((status = 403, description = "Missing permission, or the target is beyond the caller's ceiling", body = crate::http::schema::ApiErrorBody), (status = 200, body = WithSecret), (status = 404, body = crate::http::schema::ApiErrorBody)))]
async fn regenerate(
    State(state): State<SharedState>,
    admin: Admin,
    IdPath(id): IdPath,
    OptionalJson(body): OptionalJson<Option<Regenerate>>,
) -> Result<Response, ApiError> {
    // No body, or JSON `null`: the defaults.
    let grace = Grace::parse(body.flatten().map_or(0, |b| b.grace_seconds)).map_err(ApiError::bad_request)?;
    let actor = admin.actor;
    let (app, secret) = uncancellable(&state, |s| async move {
        let done = s.directory.regenerate_secret(&id, grace, &actor).await?;
        s.revocations.announce_client(done.0.client_id.as_str()).await;
        Ok(done)
    })
    .await?;
    let view = state.directory.read().app_view(&app);
    Ok(with_secret(
        &state,
        StatusCode::OK,
        &WithSecret {
            app: view,
            secret: secret.expose().to_owned(),
        },
    ))
}
