//! `GET /api/v1/audit`: the audit log (DESIGN §4 "Admin authority"), with
//! the same list queries and CSV export as applications. There is no write
//! endpoint: records are made only by the directory's write path and by
//! refusals, and leave only by retention (`audit.retention_days`).

use super::extract::{QueryPairs, allow, off_runtime, wants_csv};
use crate::directory::AuditView;
use crate::domain::role::perm;
use crate::error::ApiError;
use crate::http::SharedState;
use crate::http::bearer::Admin;
use crate::listing::{AUDIT_AT_COLUMN, AUDIT_CSV_COLUMNS, AuditRecord, MAX_CSV_ROWS, audit_csv_value, csv_line};
use crate::query::{self, ListQuery, Order};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

pub fn router() -> Router<SharedState> {
    Router::new().route("/api/v1/audit", get(list).fallback(allow("GET")))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditList {
    total_records: usize,
    events: Vec<AuditView>,
}

fn newest_first(mut q: ListQuery) -> ListQuery {
    if q.sort.is_none() {
        q.sort = Some((AUDIT_AT_COLUMN, Order::Desc));
    }
    q
}

/// The audit log, newest first (JSON), or as CSV with `Accept: text/csv` or `format=csv`.
#[utoipa::path(get, path = "/api/v1/audit", operation_id = "listAuditRecords", tag = "Audit", security(("bearer" = [])),
    params(
        ("filterBy" = Option<Vec<String>>, Query, description = "field<op>value; ops == != <= >= =@ !@ =^ =$ (repeatable)"),
        ("search" = Option<String>, Query, description = "case-insensitive substring of actor, action, target, source, request id or summary"),
        ("sortBy" = Option<String>, Query, description = "default: at, newest first"), ("sortOrder" = Option<String>, Query),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "1..=500 (CSV: 1..=20000)"),
        ("format" = Option<String>, Query, description = "csv for a CSV export"),
    ),
    responses(
        (status = 200, description = "A page of audit records, or the CSV export",
            content((AuditList = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::http::schema::ApiErrorBody), (status = 401, body = crate::http::schema::ApiErrorBody),
        (status = 403, body = crate::http::schema::ApiErrorBody),
    ))]
async fn list(
    State(state): State<SharedState>,
    admin: Admin,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    admin.require(&state, perm::AUDIT_READ).await?;
    let csv = wants_csv(&headers, &pairs);
    let q = if csv {
        query::parse_query_limited::<AuditRecord<'_>>(&pairs, &["format"], MAX_CSV_ROWS, MAX_CSV_ROWS)?
    } else {
        query::parse_query::<AuditRecord<'_>>(&pairs, &["format"])?
    };
    let q = newest_first(q);
    let directory = state.directory.clone();
    // Reading and querying the log is store work: off the connection runtimes.
    let result = off_runtime(&state, move || {
        let events = directory.audit_events()?;
        let records: Vec<AuditRecord<'_>> = events.iter().map(AuditRecord).collect();
        let (total, page) = q.run(records.iter());
        if csv {
            let mut out = String::from("\u{feff}");
            csv_line(&mut out, AUDIT_CSV_COLUMNS.iter().map(|(_, h)| h.to_string()));
            for r in &page {
                csv_line(&mut out, AUDIT_CSV_COLUMNS.iter().map(|(f, _)| audit_csv_value(r.0, f)));
            }
            Ok::<_, crate::store::StoreError>(Err((total, page.len(), q.offset, out)))
        } else {
            Ok(Ok(AuditList {
                total_records: total,
                events: page.iter().map(|r| r.0.view()).collect(),
            }))
        }
    })
    .await?
    .map_err(|e| {
        tracing::error!(error = %e, "could not read the audit log");
        ApiError::Internal
    })?;
    match result {
        Ok(list) => Ok(axum::Json(list).into_response()),
        Err((total, exported, offset, body)) => {
            let mut resp = body.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"audit-log.csv\""),
            );
            h.insert("x-total-records", HeaderValue::from(total));
            h.insert("x-exported-records", HeaderValue::from(exported));
            let truncated = exported < total.saturating_sub(offset);
            h.insert(
                "x-truncated",
                HeaderValue::from_static(if truncated { "true" } else { "false" }),
            );
            Ok(resp)
        }
    }
}
