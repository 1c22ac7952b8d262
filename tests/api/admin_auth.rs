//! Admin API authentication and authorisation (DESIGN §4, RFC 6750).

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn admin_request_without_a_token_gets_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/api/v1/apps")).send().await.unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"appauth\"");
    assert_api_error(resp, 401, "missing bearer token").await;
}

#[tokio::test]
async fn admin_request_with_basic_credentials_instead_of_a_token_gets_401() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/api/v1/apps"))
        .header("Authorization", basic(&app.admin_id, &app.admin_secret))
        .send()
        .await
        .unwrap();
    assert_api_error(resp, 401, "Bearer").await;
}

#[tokio::test]
async fn admin_request_with_a_garbage_or_tampered_token_gets_401_invalid_token() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    for bad in ["garbage".to_string(), parts.join(".")] {
        let resp = app
            .client
            .get(app.url("/api/v1/apps"))
            .header("Authorization", format!("Bearer {bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer realm=\"appauth\", error=\"invalid_token\""
        );
        assert_api_error(resp, 401, "invalid bearer token").await;
    }
}

#[tokio::test]
async fn admin_request_with_a_token_from_a_different_key_gets_401() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let foreign = other.admin_token().await;
    let resp = app
        .client
        .get(app.url("/api/v1/apps"))
        .header("Authorization", format!("Bearer {foreign}"))
        .send()
        .await
        .unwrap();
    assert_api_error(resp, 401, "invalid bearer token").await;
}

#[tokio::test]
async fn admin_request_with_a_token_without_an_admin_role_gets_403() {
    let app = spawn_app().await;
    let (_, token) = app.api().await.app_with_tenant_role("plain-app", "l1-researcher").await;
    let weak = Api { app: &app, token };
    let resp = weak.get("/api/v1/apps").await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"appauth\", error=\"insufficient_scope\""
    );
    assert_api_error(resp, 403, "missing permission apps:read").await;
    assert_api_error(
        weak.post("/api/v1/apps", json!({"name": "x1"})).await,
        403,
        "missing permission apps:write",
    )
    .await;
}

#[tokio::test]
async fn an_application_administrator_manages_apps_but_not_scopes() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (_, token) = api.app_with_tenant_role("app-admin", "application-administrator").await;
    let aa = Api { app: &app, token };
    assert_eq!(
        aa.post("/api/v1/apps", json!({"name": "made-by-aa"})).await.status(),
        201
    );
    let tenant = api.tenant_id().await;
    let resp = aa
        .post(
            "/api/v1/scopes",
            json!({"type": "cluster", "name": "c", "parentId": tenant}),
        )
        .await;
    assert_api_error(resp, 403, "missing permission scopes:write").await;
}

#[tokio::test]
async fn admin_request_with_an_expired_token_gets_401() {
    // A token signed with the server's own key two hours ago: only its
    // expiry is wrong. The key must have been active back then.
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    appauth::token::keys::generate(&dir.path().join("keys"), appauth::token::Alg::ES256, now - 10_000).unwrap();
    let app = spawn_in(dir, &[]).await;
    let keys = appauth::token::KeySet::load(&app.dir.path().join("keys"), 3600).unwrap();
    let issuer = appauth::token::TokenIssuer::new(keys, &app.base, &["urn:appauth:api".to_string()], 3600);
    let rules = serde_json::to_string(&claims_of(&app.admin_token().await)["access_rules"]).unwrap();
    let old = issuer
        .issue(
            &appauth::token::IssueRequest {
                client_id: &app.admin_id,
                audience: 0,
                scope: None,
                access_rules_json: &rules,
                min_iat: 0,
                not_after: None,
                ttl: None,
                federated: None,
                dpop_jkt: None,
                x5t: None,
            },
            now - 7200,
        )
        .unwrap();
    let resp = app
        .client
        .get(app.url("/api/v1/apps"))
        .header("Authorization", format!("Bearer {}", old.access_token))
        .send()
        .await
        .unwrap();
    assert_api_error(resp, 401, "expired").await;
}

#[tokio::test]
async fn a_token_issued_before_its_secret_was_regenerated_is_refused() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (created, token) = api.app_with_tenant_role("rotating-admin", "system-administrator").await;
    let old = Api { app: &app, token };
    assert_eq!(old.get("/api/v1/apps").await.status(), 200);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        api.post(&format!("/api/v1/apps/{id}/secret"), json!({})).await.status(),
        200
    );
    assert_api_error(old.get("/api/v1/apps").await, 401, "revoked").await;
}
