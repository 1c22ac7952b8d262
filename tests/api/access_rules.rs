//! /api/v1/authorization/access-rules and /roles.

use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_new_rule_reaches_the_next_token_and_a_deleted_one_leaves_it() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("ci-pipeline-prod").await;
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "Cluster: A", &tenant).await;
    let cid = cluster["id"].as_str().unwrap();
    let resp = api
        .grant(created["id"].as_str().unwrap(), "l1-researcher", "cluster", cid)
        .await;
    assert_eq!(resp.status(), 201);
    let rule: Value = resp.json().await.unwrap();
    assert_eq!(rule["roleName"], "L1 researcher");
    assert_eq!(rule["scopeName"], "Cluster: A");
    assert_eq!(rule["createdBy"], app.admin_id);
    assert_eq!(rule["createdByName"], "admin");
    let (client, secret) = (
        created["clientId"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let claims = claims_of(&app.token_for(client, secret).await);
    assert_eq!(claims["scope"], "l1-researcher");
    assert_eq!(
        claims["access_rules"],
        json!([{"role": "L1 researcher", "role_id": "l1-researcher", "scope_type": "cluster", "scope_id": cid, "scope_name": "Cluster: A", "scope_path": [tenant, cid]}])
    );
    let rule_id = rule["id"].as_str().unwrap();
    let read: Value = api
        .get(&format!("/api/v1/authorization/access-rules/{rule_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, rule);
    assert_eq!(
        api.delete(&format!("/api/v1/authorization/access-rules/{rule_id}"))
            .await
            .status(),
        204
    );
    let claims = claims_of(&app.token_for(client, secret).await);
    assert_eq!(claims["access_rules"], json!([]));
    assert_eq!(
        api.get(&format!("/api/v1/authorization/access-rules/{rule_id}"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_rule_naming_a_missing_app_role_or_scope_is_404_saying_which() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("rules-404").await;
    let id = created["id"].as_str().unwrap();
    let tenant = api.tenant_id().await;
    let ghost = "0b9c6a52-5d7e-4f1a-9c3b-2a1d4e5f6a7b";
    assert_api_error(api.grant(ghost, "viewer", "tenant", &tenant).await, 404, "application").await;
    assert_api_error(api.grant(id, "wizard", "tenant", &tenant).await, 404, "role").await;
    assert_api_error(api.grant(id, "viewer", "tenant", ghost).await, 404, "scope").await;
}

#[tokio::test]
async fn duplicate_rules_are_409_and_mismatched_or_malformed_ones_400() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("rules-bad").await;
    let id = created["id"].as_str().unwrap();
    let tenant = api.tenant_id().await;
    assert_eq!(api.grant(id, "viewer", "tenant", &tenant).await.status(), 201);
    assert_api_error(api.grant(id, "viewer", "tenant", &tenant).await, 409, "already has").await;
    assert_api_error(
        api.grant(id, "editor", "cluster", &tenant).await,
        409,
        "is a tenant, not a cluster",
    )
    .await;
    assert_api_error(api.grant(id, "editor", "galaxy", &tenant).await, 400, "unknown variant").await;
    assert_api_error(
        api.grant("not-an-id", "editor", "tenant", &tenant).await,
        400,
        "not an id",
    )
    .await;
    let resp = api
        .post(
            "/api/v1/authorization/access-rules",
            json!({"subjectType": "user", "subjectId": id, "roleId": "editor", "scopeType": "tenant", "scopeId": tenant}),
        )
        .await;
    assert_api_error(resp, 400, "subjectType").await;
}

#[tokio::test]
async fn rules_are_immutable() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("immutable").await;
    let tenant = api.tenant_id().await;
    let rule: Value = api
        .grant(created["id"].as_str().unwrap(), "viewer", "tenant", &tenant)
        .await
        .json()
        .await
        .unwrap();
    let resp = api
        .patch(
            &format!("/api/v1/authorization/access-rules/{}", rule["id"].as_str().unwrap()),
            json!({"roleId": "editor"}),
        )
        .await;
    assert_api_error(resp, 405, "allowed").await;
}

#[tokio::test]
async fn the_role_catalogue_lists_roles_with_permissions() {
    let app = spawn_app().await;
    let api = app.api().await;
    let roles: Value = api.get("/api/v1/authorization/roles").await.json().await.unwrap();
    let names: Vec<&str> = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for expected in [
        "System administrator",
        "Application administrator",
        "Editor",
        "Viewer",
        "Research manager",
        "L1 researcher",
        "L2 researcher",
        "ML engineer",
    ] {
        assert!(names.contains(&expected), "{expected} missing");
    }
    assert_eq!(roles["totalRecords"], names.len());
    assert!(
        roles["roles"][0]["permissions"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
}
