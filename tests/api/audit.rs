//! The audit log (DESIGN §4): every admin write and every refused admin
//! request is recorded, with the request id the response carried, and
//! never a secret or a token.

use crate::helpers::*;
use serde_json::{Value, json};

async fn events(api: &Api<'_>, query: &str) -> Value {
    let resp = api.get(&format!("/api/v1/audit{query}")).await;
    assert_eq!(resp.status(), 200, "audit list");
    resp.json().await.unwrap()
}

fn find<'a>(list: &'a Value, request_id: &str) -> &'a Value {
    list["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["requestId"] == request_id)
        .unwrap_or_else(|| panic!("no audit record for request {request_id}: {list}"))
}

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_admin_write_is_recorded_with_actor_target_outcome_and_request_id() {
    let app = spawn_app().await;
    let api = app.api().await;
    let resp = api.post("/api/v1/apps", json!({"name": "ci-pipeline-prod"})).await;
    let create_id = request_id(&resp);
    let created: Value = resp.json().await.unwrap();
    let app_id = created["id"].as_str().unwrap();
    let resp = api.post(&format!("/api/v1/apps/{app_id}/secret"), json!({})).await;
    let regen_id = request_id(&resp);
    let regenerated: Value = resp.json().await.unwrap();
    let resp = api
        .patch(&format!("/api/v1/apps/{app_id}"), json!({"enabled": false}))
        .await;
    let disable_id = request_id(&resp);
    let resp = api.delete(&format!("/api/v1/apps/{app_id}")).await;
    let delete_id = request_id(&resp);

    let list = events(&api, "?limit=500").await;
    let create = find(&list, &create_id);
    assert_eq!(create["action"], "app.create");
    assert_eq!(create["outcome"], "success");
    assert_eq!(create["status"], 201);
    assert_eq!(create["actor"], json!({"clientId": app.admin_id, "name": "admin"}));
    assert_eq!(create["targetType"], "application");
    assert_eq!(create["targetId"], app_id);
    assert_eq!(create["targetName"], "ci-pipeline-prod");
    assert_eq!(create["sourceAddress"], "127.0.0.1");
    assert!(create["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(find(&list, &regen_id)["action"], "app.regenerate-secret");
    let disable = find(&list, &disable_id);
    assert_eq!(disable["action"], "app.disable");
    assert!(
        disable["summary"].as_str().unwrap().contains("true -> false"),
        "{disable}"
    );
    assert_eq!(find(&list, &delete_id)["action"], "app.delete");
    // Newest first by default.
    // Compared as instants: "…01.75Z" is later than "…01.741Z" but sorts before it as text.
    let ats: Vec<time::OffsetDateTime> = list["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            time::OffsetDateTime::parse(
                e["at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        })
        .collect();
    let mut sorted = ats.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ats, sorted);
    // No secret anywhere, in JSON or CSV.
    let csv = api
        .request(reqwest::Method::GET, "/api/v1/audit?format=csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [
        created["secret"].as_str().unwrap(),
        regenerated["secret"].as_str().unwrap(),
    ] {
        assert!(!list.to_string().contains(secret) && !csv.contains(secret));
    }
    assert!(!list.to_string().contains("aas_") && !csv.contains("aas_"));
    assert!(!csv.contains(&api.token), "no bearer token in the log");
}

#[tokio::test]
async fn refused_requests_are_recorded_too() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let (me, token) = api.app_with_tenant_role("ci-admin", "application-administrator").await;
    let aa = Api { app: &app, token };
    let resp = aa
        .grant(me["id"].as_str().unwrap(), "system-administrator", "tenant", &tenant)
        .await;
    let escalation = request_id(&resp);
    assert_eq!(resp.status(), 403);
    let resp = app
        .client
        .get(app.url("/api/v1/apps"))
        .header("Authorization", "Bearer not-a-token")
        .send()
        .await
        .unwrap();
    let unauthenticated = request_id(&resp);
    assert_eq!(resp.status(), 401);
    let resp = api
        .delete(&format!("/api/v1/apps/{}", "00000000-0000-4000-8000-000000000000"))
        .await;
    let missing = request_id(&resp);
    assert_eq!(resp.status(), 404);

    let list = events(&api, "?limit=500").await;
    let e = find(&list, &escalation);
    assert_eq!(e["action"], "rule.create");
    assert_eq!(e["outcome"], "refused");
    assert_eq!(e["status"], 403);
    assert_eq!(e["actor"]["name"], "ci-admin");
    assert!(e["summary"].as_str().unwrap().contains("own application"), "{e}");
    let e = find(&list, &unauthenticated);
    assert_eq!(
        (e["outcome"].as_str(), e["status"].as_u64()),
        (Some("refused"), Some(401))
    );
    assert_eq!(e["actor"]["clientId"], "-");
    assert_eq!(e["targetId"], "GET /api/v1/apps");
    let e = find(&list, &missing);
    assert_eq!(
        (e["outcome"].as_str(), e["status"].as_u64()),
        (Some("failed"), Some(404))
    );
}

#[tokio::test]
async fn the_audit_log_is_queried_like_applications_and_cannot_be_written() {
    let app = spawn_app().await;
    let api = app.api().await;
    for name in ["alpha", "beta", "gamma"] {
        api.create_app(name).await;
    }
    let list = events(
        &api,
        "?filterBy=action==app.create&sortBy=targetName&sortOrder=asc&limit=2",
    )
    .await;
    assert_eq!(list["totalRecords"], 3);
    let names: Vec<&str> = list["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["targetName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    let list = events(&api, "?search=GAMMA").await;
    assert_eq!(list["totalRecords"], 1);
    let list = events(&api, "?filterBy=action==app.create&offset=2").await;
    assert_eq!(list["events"].as_array().unwrap().len(), 1);
    let resp = api.get("/api/v1/audit?filterBy=nope==1").await;
    let body = assert_api_error(resp, 400, "unknown field").await;
    assert!(body["details"]["valid"].as_array().unwrap().contains(&json!("action")));
    let csv = api
        .request(reqwest::Method::GET, "/api/v1/audit?filterBy=action==app.create")
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["x-total-records"], "3");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("\u{feff}Time,Actor,Actor client ID,Action,"), "{text}");
    assert_eq!(text.lines().count(), 4);
    for method in [reqwest::Method::POST, reqwest::Method::DELETE, reqwest::Method::PUT] {
        let resp = api.request(method, "/api/v1/audit").send().await.unwrap();
        assert_api_error(resp, 405, "allowed: GET").await;
    }
}

#[tokio::test]
async fn reading_the_audit_log_needs_audit_read() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (_, token) = api.app_with_tenant_role("researcher", "l1-researcher").await;
    let weak = Api { app: &app, token };
    assert_api_error(weak.get("/api/v1/audit").await, 403, "missing permission audit:read").await;
}
