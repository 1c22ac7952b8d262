//! Secret rotation with overlap (`graceSeconds` on
//! `POST /api/v1/apps/{id}/secret`): the old secret keeps working until the
//! overlap ends, then it stops and the tokens issued before the rotation
//! are revoked — announced in Redis as an ordinary client cut-off.

use crate::helpers::*;
use crate::revocation::introspect;
use serde_json::{Value, json};
use std::time::Duration;

fn creds(v: &Value) -> (String, String, String) {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    (s("id"), s("clientId"), s("secret"))
}

async fn rotate(api: &Api<'_>, id: &str, grace: i64) -> Value {
    let resp = api
        .post(&format!("/api/v1/apps/{id}/secret"), json!({ "graceSeconds": grace }))
        .await;
    assert_eq!(resp.status(), 200, "rotate with grace {grace}");
    resp.json().await.unwrap()
}

fn unix_of(rfc3339: &Value) -> i64 {
    let s = rfc3339.as_str().expect("a timestamp");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

async fn sleep_until(unix_s: i64) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let wait = (unix_s * 1000 - now as i64).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

#[tokio::test]
async fn regenerating_with_an_overlap_keeps_the_old_secret_until_its_end_then_revokes_its_earlier_tokens() {
    let redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let api = app.api().await;
    let (id, cid, old) = creds(&api.create_app("rolling").await);
    let before_rotation = app.token_for(&cid, &old).await;

    let rotated = rotate(&api, &id, 3).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let secrets = rotated["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2, "current and previous: {rotated}");
    assert!(
        secrets[0].get("expiresAt").is_none(),
        "the current secret does not expire"
    );
    let until = unix_of(&secrets[1]["expiresAt"]);
    assert_ne!(secrets[0]["id"], secrets[1]["id"]);
    let text = rotated.to_string();
    assert!(!text.contains(&old[4..]) && secrets.iter().all(|s| !s.to_string().contains(&new[4..])));

    // During the overlap both secrets work; the old one's tokens end with it.
    let during_old = app.token_for(&cid, &old).await;
    assert!(claims_of(&during_old)["exp"].as_i64().unwrap() <= until);
    let during_new = app.token_for(&cid, &new).await;
    assert!(claims_of(&during_new)["exp"].as_i64().unwrap() > until + 60);
    assert_eq!(introspect(&app, &before_rotation).await["active"], true);
    let shown: Value = api.get(&format!("/api/v1/apps/{id}")).await.json().await.unwrap();
    assert_eq!(shown["secrets"], rotated["secrets"], "reads show the same secrets");

    sleep_until(until).await;
    assert_oauth_error(app.token_request(&cid, &old, "").await, 401, "invalid_client").await;
    assert_eq!(
        introspect(&app, &before_rotation).await["active"],
        false,
        "tokens from before the rotation are revoked when the overlap ends"
    );
    assert_eq!(introspect(&app, &during_new).await["active"], true);
    app.token_for(&cid, &new).await;

    // The overlap's end is made durable and announced as a client cut-off.
    let mut conn = redis.conn().await;
    let key = format!("appauth:revoked:client:{cid}");
    let mut announced = None;
    for _ in 0..40 {
        announced = redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<i64>>(&mut conn)
            .await
            .unwrap();
        if announced.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cutoff = announced.expect("cut-off announced in Redis");
    assert!(
        cutoff > claims_of(&before_rotation)["iat"].as_i64().unwrap()
            && cutoff <= claims_of(&during_new)["iat"].as_i64().unwrap(),
        "the cut-off ({cutoff}) covers the pre-rotation token and not the new secret's"
    );
    let shown: Value = api.get(&format!("/api/v1/apps/{id}")).await.json().await.unwrap();
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 1, "{shown}");
    let audit: Value = api
        .get("/api/v1/audit?filterBy=action==app.secret-overlap-end")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["totalRecords"], 1, "{audit}");
    assert!(audit["events"][0]["summary"].as_str().unwrap().contains("revoked"));
}

#[tokio::test]
async fn grace_seconds_outside_zero_to_seven_days_or_with_unknown_fields_are_refused_with_400() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (id, cid, old) = creds(&api.create_app("strict").await);
    let path = format!("/api/v1/apps/{id}/secret");
    for (body, needle) in [
        (json!({"graceSeconds": 604_801}), "between 0"),
        (json!({"graceSeconds": -1}), "between 0"),
        (json!({"graceSeconds": "60"}), "invalid type"),
        (json!({"graceSeconds": 1.5}), "invalid type"),
        (json!({"grace": 60}), "unknown field"),
    ] {
        assert_api_error(api.post(&path, body.clone()).await, 400, needle).await;
    }
    let duplicated = api
        .request(reqwest::Method::POST, &path)
        .header("Content-Type", "application/json")
        .body(r#"{"graceSeconds": 60, "graceSeconds": 0}"#)
        .send()
        .await
        .unwrap();
    assert_api_error(duplicated, 400, "duplicate field").await;
    let wrong_type = api
        .request(reqwest::Method::POST, &path)
        .header("Content-Type", "text/plain")
        .body("graceSeconds=60")
        .send()
        .await
        .unwrap();
    assert_api_error(wrong_type, 415, "application/json").await;
    // A body without a Content-Type is refused, never read as "no options".
    let untyped = api
        .request(reqwest::Method::POST, &path)
        .body(r#"{"graceSeconds": 60}"#)
        .send()
        .await
        .unwrap();
    assert_api_error(untyped, 415, "application/json").await;
    // Nothing above changed the secret.
    app.token_for(&cid, &old).await;
    // No body at all is the default: at once.
    let resp = api.request(reqwest::Method::POST, &path).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["secrets"].as_array().unwrap().len(), 1);
    assert_oauth_error(app.token_request(&cid, &old, "").await, 401, "invalid_client").await;
    app.token_for(&cid, body["secret"].as_str().unwrap()).await;
}

#[tokio::test]
async fn rotating_again_during_an_overlap_ends_the_earlier_one_at_once() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (id, cid, first) = creds(&api.create_app("twice").await);
    let first_token = app.token_for(&cid, &first).await;
    let second = rotate(&api, &id, 600).await["secret"].as_str().unwrap().to_owned();
    let second_token = app.token_for(&cid, &second).await;
    let rotated = rotate(&api, &id, 600).await;
    let third = rotated["secret"].as_str().unwrap();

    assert_oauth_error(app.token_request(&cid, &first, "").await, 401, "invalid_client").await;
    assert_eq!(
        introspect(&app, &first_token).await["active"],
        false,
        "the first secret's earlier tokens"
    );
    assert_eq!(
        introspect(&app, &second_token).await["active"],
        true,
        "the second overlaps the third"
    );
    app.token_for(&cid, &second).await;
    app.token_for(&cid, third).await;
    assert_eq!(
        rotated["secrets"].as_array().unwrap().len(),
        2,
        "never more than two: {rotated}"
    );
}

#[tokio::test]
async fn disabling_during_an_overlap_ends_it_and_enabling_again_does_not_bring_the_old_secret_back() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (id, cid, old) = creds(&api.create_app("paused").await);
    let new = rotate(&api, &id, 600).await["secret"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/apps/{id}");
    assert_eq!(api.patch(&path, json!({"enabled": false})).await.status(), 200);
    let enabled: Value = api.patch(&path, json!({"enabled": true})).await.json().await.unwrap();
    assert_eq!(enabled["secrets"].as_array().unwrap().len(), 1, "{enabled}");
    assert_oauth_error(app.token_request(&cid, &old, "").await, 401, "invalid_client").await;
    app.token_for(&cid, &new).await;
}

#[tokio::test]
async fn an_overlap_survives_a_restart() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (id, cid, old) = creds(&api.create_app("durable-rotation").await);
    let new = rotate(&api, &id, 600).await["secret"].as_str().unwrap().to_owned();
    drop(api);
    let app = spawn_in(app.stop().await, &[]).await;
    let old_token = app.token_for(&cid, &old).await;
    assert!(claims_of(&old_token)["exp"].as_i64().unwrap() <= claims_of(&old_token)["iat"].as_i64().unwrap() + 600);
    app.token_for(&cid, &new).await;
}

#[tokio::test]
async fn only_a_system_administrator_may_rotate_with_an_overlap_and_never_its_own_secret() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (target_id, target_cid, target_secret) = creds(&api.create_app("target").await);
    let path = |id: &str| format!("/api/v1/apps/{id}/secret");
    // An Application administrator may rotate at once (loud) but not mint a
    // quiet second secret for another application.
    let (_, app_admin) = api.app_with_tenant_role("app-admin", "application-administrator").await;
    let as_app_admin = Api {
        app: &app,
        token: app_admin,
    };
    assert_api_error(
        as_app_admin.post(&path(&target_id), json!({"graceSeconds": 60})).await,
        403,
        "apps:keys",
    )
    .await;
    app.token_for(&target_cid, &target_secret).await;
    // A Viewer may not rotate at all.
    let (_, viewer) = api.app_with_tenant_role("watcher", "viewer").await;
    let as_viewer = Api {
        app: &app,
        token: viewer,
    };
    assert_eq!(
        as_viewer
            .post(&path(&target_id), json!({"graceSeconds": 60}))
            .await
            .status(),
        403
    );
    app.token_for(&target_cid, &target_secret).await;
    // A System administrator's token may not do it to its own application.
    let (created, token) = api.app_with_tenant_role("self-rotator", "system-administrator").await;
    let (own_id, own_cid, own_secret) = creds(&created);
    let own = Api { app: &app, token };
    assert_api_error(
        own.post(&path(&own_id), json!({"graceSeconds": 60})).await,
        403,
        "your own application's secret",
    )
    .await;
    app.token_for(&own_cid, &own_secret).await;
    // Rotating at once is loud (the owner's deployment breaks), so it stays allowed.
    assert_eq!(own.post(&path(&own_id), json!({"graceSeconds": 0})).await.status(), 200);
    assert_oauth_error(
        app.token_request(&own_cid, &own_secret, "").await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(as_app_admin.post(&path(&target_id), json!({})).await.status(), 200);
}

#[tokio::test]
async fn a_disabled_application_is_rotated_at_once_or_not_at_all() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (id, cid, old) = creds(&api.create_app("dormant").await);
    let path = format!("/api/v1/apps/{id}");
    assert_eq!(api.patch(&path, json!({"enabled": false})).await.status(), 200);
    assert_api_error(
        api.post(&format!("{path}/secret"), json!({"graceSeconds": 60})).await,
        409,
        "disabled",
    )
    .await;
    assert_eq!(api.patch(&path, json!({"enabled": true})).await.status(), 200);
    app.token_for(&cid, &old).await;
}
