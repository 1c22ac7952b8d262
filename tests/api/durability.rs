//! An acknowledged admin write survives `kill -9` of the server right after
//! its 2xx (the store is flushed before answering).

use crate::helpers::{Api, TestApp, basic, http_client, token_at};
use serde_json::{Value, json};
struct Server {
    child: crate::helpers::Served,
    base: String,
}

fn start(dir: &std::path::Path) -> Server {
    let (child, base) = crate::helpers::serve_binary(dir);
    Server { child, base }
}

impl Server {
    fn kill9(mut self) {
        self.child.0.kill().unwrap(); // SIGKILL
        self.child.0.wait().unwrap();
    }
}

/// A `TestApp` handle and admin token for a server started as a process.
async fn shell(dir: &tempfile::TempDir, base: &str) -> (TestApp, String) {
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
    let (id, secret) = (creds["clientId"].as_str().unwrap(), creds["secret"].as_str().unwrap());
    let token = token_at(base, id, secret).await;
    (TestApp::external(base, id, secret), token)
}

#[tokio::test]
async fn acknowledged_admin_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();

    let s = start(dir.path());
    let (app, token) = shell(&dir, &s.base).await;
    let created = Api { app: &app, token }.create_app("survivor").await;
    s.kill9();
    let id = created["id"].as_str().unwrap();

    let s = start(dir.path());
    let (app, token) = shell(&dir, &s.base).await;
    let api = Api { app: &app, token };
    assert_eq!(
        api.get(&format!("/api/v1/apps/{id}")).await.status(),
        200,
        "create survived"
    );
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "kept", &tenant).await;
    let resp = api
        .grant(id, "viewer", "cluster", cluster["id"].as_str().unwrap())
        .await;
    assert_eq!(resp.status(), 201);
    let rule: Value = resp.json().await.unwrap();
    s.kill9();

    let s = start(dir.path());
    let (app, token) = shell(&dir, &s.base).await;
    let api = Api { app: &app, token };
    let rule_id = rule["id"].as_str().unwrap();
    let got = api.get(&format!("/api/v1/authorization/access-rules/{rule_id}")).await;
    assert_eq!(got.status(), 200, "rule survived");
    let resp = api.post(&format!("/api/v1/apps/{id}/secret"), json!({})).await;
    assert_eq!(resp.status(), 200);
    let regenerated: Value = resp.json().await.unwrap();
    s.kill9();

    let s = start(dir.path());
    let cid = created["clientId"].as_str().unwrap();
    let refused = http_client()
        .post(format!("{}/oauth/token", s.base))
        .header("Authorization", basic(cid, created["secret"].as_str().unwrap()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "the old secret stays dead after a crash");
    token_at(&s.base, cid, regenerated["secret"].as_str().unwrap()).await;
    let (app, token) = shell(&dir, &s.base).await;
    let api = Api { app: &app, token };
    assert_eq!(
        api.patch(&format!("/api/v1/apps/{id}"), json!({"enabled": false}))
            .await
            .status(),
        200
    );
    s.kill9();

    let s = start(dir.path());
    let (app, token) = shell(&dir, &s.base).await;
    let api = Api { app: &app, token };
    let read: Value = api.get(&format!("/api/v1/apps/{id}")).await.json().await.unwrap();
    assert_eq!(read["enabled"], false, "disable survived");
    assert_eq!(api.delete(&format!("/api/v1/apps/{id}")).await.status(), 204);
    s.kill9();

    let s = start(dir.path());
    let (app, token) = shell(&dir, &s.base).await;
    let api = Api { app: &app, token };
    assert_eq!(
        api.get(&format!("/api/v1/apps/{id}")).await.status(),
        404,
        "delete survived"
    );
    // Each acknowledged write kept its audit record through every kill -9
    // (they are one atomic batch with the change).
    let log: Value = api
        .get(&format!(
            "/api/v1/audit?filterBy=targetId=={id}&filterBy=outcome==success&sortBy=at&sortOrder=asc"
        ))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "app.create",
            "rule.create",
            "app.regenerate-secret",
            "app.disable",
            "app.delete"
        ],
        "{log}"
    );
    s.kill9();
}
