//! /api/v1/apps: create, read, enable/disable, delete, regenerate.

use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn creating_an_application_returns_its_secret_once_and_the_secret_gets_a_token() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("ci-pipeline-prod").await;
    for field in [
        "id",
        "name",
        "clientId",
        "secret",
        "enabled",
        "createdBy",
        "createdByName",
        "createdAt",
        "updatedAt",
    ] {
        assert!(!created[field].is_null(), "{field} missing in {created}");
    }
    assert_eq!(created["name"], "ci-pipeline-prod");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["createdBy"], app.admin_id);
    assert_eq!(created["createdByName"], "admin", "people read the creator's name");
    assert!(created["lastLogin"].is_null());
    let token = app
        .token_for(
            created["clientId"].as_str().unwrap(),
            created["secret"].as_str().unwrap(),
        )
        .await;
    assert_eq!(claims_of(&token)["client_id"], created["clientId"]);
    assert!(claims_of(&token).get("scope").is_none(), "no rules, no scope claim");

    let read: Value = api
        .get(&format!("/api/v1/apps/{}", created["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert!(read.get("secret").is_none(), "a read never shows the secret");
    assert!(!read.to_string().contains(&created["secret"].as_str().unwrap()[4..]));
    assert!(read["lastLogin"].is_string(), "the token request set lastLogin");
}

#[tokio::test]
async fn creating_a_duplicate_name_is_409() {
    let app = spawn_app().await;
    let api = app.api().await;
    api.create_app("dup").await;
    assert_api_error(
        api.post("/api/v1/apps", json!({"name": "dup"})).await,
        409,
        "already exists",
    )
    .await;
}

#[tokio::test]
async fn invalid_names_are_rejected_with_the_rule() {
    let app = spawn_app().await;
    let api = app.api().await;
    let long = "a".repeat(64);
    for name in ["", "A1", "has space", "héllo", "1abc", long.as_str(), "ends-", "../etc"] {
        let resp = api.post("/api/v1/apps", json!({"name": name})).await;
        assert_api_error(resp, 400, "lowercase letters").await;
    }
    assert_eq!(
        api.post("/api/v1/apps", json!({"name": "a".repeat(63)})).await.status(),
        201
    );
    // Names that would pass for the server or a deleted creator in "Created by".
    for name in ["system", "deadbeef-0000-4000-8000-000000000000"] {
        let resp = api.post("/api/v1/apps", json!({"name": name})).await;
        assert_api_error(resp, 409, "reserved").await;
    }
}

#[tokio::test]
async fn malformed_bodies_get_400_saying_what_is_wrong() {
    let app = spawn_app().await;
    let api = app.api().await;
    let raw = |body: &'static str| {
        api.request(reqwest::Method::POST, "/api/v1/apps")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    assert_api_error(raw("{\"name\": ").await.unwrap(), 400, "EOF").await;
    assert_api_error(raw("{\"name\": 5}").await.unwrap(), 400, "invalid type").await;
    assert_api_error(
        raw("{\"name\": \"ok-name\", \"color\": 1}").await.unwrap(),
        400,
        "unknown field \"color\"",
    )
    .await;
    let body = assert_api_error(raw("{}").await.unwrap(), 400, "missing field \"name\"").await;
    // The API's words: no serde positions or backticks, no Rust debug output.
    assert!(!body["message"].as_str().unwrap().contains("line 1 column"), "{body}");
    assert_eq!(raw("{\"name\": \"taken-name\"}").await.unwrap().status(), 201);
    let body = assert_api_error(
        raw("{\"name\": \"taken-name\"}").await.unwrap(),
        409,
        "named \"taken-name\" already exists",
    )
    .await;
    assert!(!body["message"].as_str().unwrap().contains("AppName"), "{body}");
    assert_api_error(
        raw("{\"name\":\"a1\",\"name\":\"b1\"}").await.unwrap(),
        400,
        "duplicate field",
    )
    .await;
    let resp = api
        .request(reqwest::Method::POST, "/api/v1/apps")
        .header("Content-Type", "text/plain")
        .body("{\"name\":\"x1\"}")
        .send()
        .await
        .unwrap();
    assert_api_error(resp, 415, "application/json").await;
    let resp = api.post("/api/v1/apps", json!({"name": "x".repeat(20_000)})).await;
    assert_api_error(resp, 413, "larger than").await;
}

#[tokio::test]
async fn ids_that_do_not_exist_or_are_not_ids_are_404_and_400() {
    let app = spawn_app().await;
    let api = app.api().await;
    let missing = "0b9c6a52-5d7e-4f1a-9c3b-2a1d4e5f6a7b";
    assert_api_error(api.get(&format!("/api/v1/apps/{missing}")).await, 404, "not found").await;
    assert_api_error(api.delete(&format!("/api/v1/apps/{missing}")).await, 404, "not found").await;
    assert_api_error(api.get("/api/v1/apps/not-an-id").await, 400, "not an id").await;
    assert_api_error(api.get("/api/v1/apps/..%2F..%2Fetc%2Fpasswd").await, 400, "not an id").await;
    assert_api_error(api.post("/api/v1/apps/%00/secret", json!({})).await, 400, "not an id").await;
}

#[tokio::test]
async fn unsupported_methods_get_a_json_405_with_allow() {
    let app = spawn_app().await;
    let api = app.api().await;
    let resp = api.request(reqwest::Method::PUT, "/api/v1/apps").send().await.unwrap();
    let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_api_error(resp, 405, "allowed").await;
}

#[tokio::test]
async fn a_disabled_application_gets_the_same_401_as_an_unknown_one_until_enabled() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("to-disable").await;
    let (id, cid, secret) = (
        created["id"].as_str().unwrap(),
        created["clientId"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let before = app.token_for(cid, secret).await;
    let resp = api
        .patch(&format!("/api/v1/apps/{id}"), json!({"enabled": false}))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["enabled"], false);
    let disabled = assert_oauth_error(app.token_request(cid, secret, "").await, 401, "invalid_client").await;
    let unknown = assert_oauth_error(
        app.token_request("11111111-2222-4333-8444-555555555555", secret, "")
            .await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(disabled, unknown);
    assert_eq!(
        api.patch(&format!("/api/v1/apps/{id}"), json!({"enabled": true}))
            .await
            .status(),
        200
    );
    let after = app.token_for(cid, secret).await;
    assert!(claims_of(&after)["iat"].as_i64() >= claims_of(&before)["iat"].as_i64());
    assert_api_error(
        api.patch(&format!("/api/v1/apps/{id}"), json!({"enabled": "no"})).await,
        400,
        "invalid type",
    )
    .await;
    assert_api_error(
        api.patch(&format!("/api/v1/apps/{id}"), json!({"name": "x1"})).await,
        400,
        "unknown field",
    )
    .await;
}

#[tokio::test]
async fn regenerating_the_secret_stops_the_old_one_at_once() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("regen").await;
    let (id, cid, old) = (
        created["id"].as_str().unwrap(),
        created["clientId"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    // As the README's curl sends it: a JSON Content-Type and no body at all.
    let resp = api
        .request(reqwest::Method::POST, &format!("/api/v1/apps/{id}/secret"))
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let new = body["secret"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(body["clientId"], cid, "the client ID does not change");
    assert_oauth_error(app.token_request(cid, old, "").await, 401, "invalid_client").await;
    app.token_for(cid, new).await;
}

#[tokio::test]
async fn deleting_an_application_removes_it_its_rules_and_its_credentials() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("doomed").await;
    let id = created["id"].as_str().unwrap();
    let tenant = api.tenant_id().await;
    assert_eq!(api.grant(id, "viewer", "tenant", &tenant).await.status(), 201);
    assert_eq!(api.delete(&format!("/api/v1/apps/{id}")).await.status(), 204);
    assert_eq!(api.get(&format!("/api/v1/apps/{id}")).await.status(), 404);
    let rules: Value = api
        .get(&format!("/api/v1/authorization/access-rules?filterBy=subjectId=={id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rules["totalRecords"], 0);
    let resp = app
        .token_request(
            created["clientId"].as_str().unwrap(),
            created["secret"].as_str().unwrap(),
            "",
        )
        .await;
    assert_oauth_error(resp, 401, "invalid_client").await;
    // The name is free again.
    api.create_app("doomed").await;
}

#[tokio::test]
async fn concurrent_creation_of_one_name_yields_exactly_one_201() {
    let app = spawn_app().await;
    let api = app.api().await;
    let attempts = (0..12).map(|_| api.post("/api/v1/apps", json!({"name": "racy"})));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 11, "{statuses:?}");
}

#[tokio::test]
async fn last_login_survives_a_clean_restart() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("logs-in").await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.token_for(
        created["clientId"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    )
    .await;
    let seen: Value = api.get(&format!("/api/v1/apps/{id}")).await.json().await.unwrap();
    let last = seen["lastLogin"].as_str().unwrap().to_owned();
    drop(api);
    let again = spawn_in(app.stop().await, &[]).await;
    let api = again.api().await;
    let after: Value = api.get(&format!("/api/v1/apps/{id}")).await.json().await.unwrap();
    assert_eq!(after["lastLogin"], last);
}
