//! /api/v1/scopes: the tenant → cluster → department → project tree.

use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn the_scope_tree_is_built_top_down_with_typed_parents() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "Cluster: A", &tenant).await;
    let dept = api
        .create_scope("department", "Research", cluster["id"].as_str().unwrap())
        .await;
    let project = api
        .create_scope("project", "llm-eval", dept["id"].as_str().unwrap())
        .await;
    assert_eq!(project["parentId"], dept["id"]);
    assert_eq!(project["type"], "project");
    let all: Value = api.get("/api/v1/scopes").await.json().await.unwrap();
    assert_eq!(all["totalRecords"], 4);
    let resp = api
        .post(
            "/api/v1/scopes",
            json!({"type": "project", "name": "p", "parentId": tenant}),
        )
        .await;
    assert_api_error(resp, 409, "parent must be a department").await;
    let resp = api
        .post("/api/v1/scopes", json!({"type": "tenant", "name": "second"}))
        .await;
    assert_api_error(resp, 409, "only one").await;
    let ghost = "0b9c6a52-5d7e-4f1a-9c3b-2a1d4e5f6a7b";
    let resp = api
        .post(
            "/api/v1/scopes",
            json!({"type": "cluster", "name": "c", "parentId": ghost}),
        )
        .await;
    assert_api_error(resp, 404, "parent scope").await;
    let resp = api
        .post(
            "/api/v1/scopes",
            json!({"type": "cluster", "name": "Cluster: A", "parentId": tenant}),
        )
        .await;
    assert_api_error(resp, 409, "already has a child").await;
    let resp = api
        .post(
            "/api/v1/scopes",
            json!({"type": "cluster", "name": "", "parentId": tenant}),
        )
        .await;
    assert_api_error(resp, 400, "1–100").await;
}

#[tokio::test]
async fn a_scope_in_use_or_with_children_cannot_be_deleted() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "busy", &tenant).await;
    let cid = cluster["id"].as_str().unwrap();
    let dept = api.create_scope("department", "child", cid).await;
    assert_api_error(api.delete(&format!("/api/v1/scopes/{cid}")).await, 409, "children").await;
    let did = dept["id"].as_str().unwrap();
    let created = api.create_app("user-of-scope").await;
    let rule: Value = api
        .grant(created["id"].as_str().unwrap(), "editor", "department", did)
        .await
        .json()
        .await
        .unwrap();
    assert_api_error(api.delete(&format!("/api/v1/scopes/{did}")).await, 409, "access rule").await;
    assert_eq!(
        api.delete(&format!(
            "/api/v1/authorization/access-rules/{}",
            rule["id"].as_str().unwrap()
        ))
        .await
        .status(),
        204
    );
    assert_eq!(api.delete(&format!("/api/v1/scopes/{did}")).await.status(), 204);
    assert_eq!(api.delete(&format!("/api/v1/scopes/{cid}")).await.status(), 204);
    assert_api_error(api.delete(&format!("/api/v1/scopes/{tenant}")).await, 409, "tenant").await;
}

#[tokio::test]
async fn hostile_scope_names_are_stored_and_returned_verbatim_as_data() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let name = "<img src=x onerror=alert(1)> \"'; DROP TABLE";
    let scope = api.create_scope("cluster", name, &tenant).await;
    let read: Value = api
        .get(&format!("/api/v1/scopes/{}", scope["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["name"], name);
}
