//! Per-application token policy (issue 24 item 4): which audiences an
//! application may get tokens for (`allowedAudiences`) and how long they
//! live (`tokenTtlSeconds`), and who may change either.

use crate::helpers::*;
use serde_json::{Value, json};

const REPORTS: &str = "https://reports.example";
const BILLING: &str = "https://billing.example";

async fn two_audience_app() -> TestApp {
    spawn_app_with(&[format!("issuer.audiences=urn:appauth:api,{REPORTS},{BILLING}")]).await
}

async fn token_for_audience(app: &TestApp, v: &Value, audience: Option<&str>) -> reqwest::Response {
    let extra = audience.map_or_else(String::new, |a| {
        format!(
            "&audience={}",
            percent_encoding::utf8_percent_encode(a, percent_encoding::NON_ALPHANUMERIC)
        )
    });
    app.token_request(v["clientId"].as_str().unwrap(), v["secret"].as_str().unwrap(), &extra)
        .await
}

#[tokio::test]
async fn a_new_application_gets_only_the_default_audience_and_asking_for_another_is_invalid_target() {
    let app = two_audience_app().await;
    let api = app.api().await;
    let created = api.create_app("default-only").await;
    assert_eq!(created["allowedAudiences"], json!(["urn:appauth:api"]));
    assert_eq!(created["tokenTtlSeconds"], Value::Null);
    let resp = token_for_audience(&app, &created, None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["aud"],
        "urn:appauth:api"
    );
    let body = assert_oauth_error(
        token_for_audience(&app, &created, Some(REPORTS)).await,
        400,
        "invalid_target",
    )
    .await;
    assert!(
        body["error_description"].as_str().unwrap().contains("allowedAudiences"),
        "{body}"
    );
    // The same through resource (RFC 8707).
    let resp = app
        .token_request(
            created["clientId"].as_str().unwrap(),
            created["secret"].as_str().unwrap(),
            "&resource=https%3A%2F%2Freports.example",
        )
        .await;
    assert_oauth_error(resp, 400, "invalid_target").await;
    // The administrator init created keeps every audience (null = all), as
    // applications stored before this version do.
    let admin: Value = api
        .get(&format!("/api/v1/apps?filterBy=clientId=={}", app.admin_id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(admin["applications"][0]["allowedAudiences"], Value::Null);
    for aud in ["urn:appauth:api", REPORTS, BILLING] {
        let resp = app
            .token_request(
                &app.admin_id,
                &app.admin_secret,
                &format!("&audience={}", aud.replace(':', "%3A").replace('/', "%2F")),
            )
            .await;
        assert_eq!(resp.status(), 200, "{aud}");
    }
}

#[tokio::test]
async fn allowed_audiences_choose_the_default_and_are_validated_audited_and_exported() {
    let app = two_audience_app().await;
    let api = app.api().await;
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "reports-only", "allowedAudiences": [REPORTS], "tokenTtlSeconds": 120}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let resp = token_for_audience(&app, &created, None).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], REPORTS, "no audience asked: the first one it is allowed");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
    assert_oauth_error(
        token_for_audience(&app, &created, Some("urn:appauth:api")).await,
        400,
        "invalid_target",
    )
    .await;

    for (bad, needle) in [
        (
            json!({"allowedAudiences": ["https://evil.example"]}),
            "not an audience this issuer serves",
        ),
        (json!({"allowedAudiences": [REPORTS, REPORTS]}), "listed twice"),
        (json!({"allowedAudiences": []}), "1 to 32"),
        (json!({"allowedAudiences": "urn:appauth:api"}), "invalid"),
        (json!({"tokenTtlSeconds": 3601}), "5 to 3600"),
        (json!({"tokenTtlSeconds": 4}), "5 to 3600"),
    ] {
        let resp = api
            .patch(
                &format!("/api/v1/apps/{}", created["id"].as_str().unwrap()),
                bad.clone(),
            )
            .await;
        assert_api_error(resp, 400, needle).await;
    }
    let id = created["id"].as_str().unwrap();
    let resp = api
        .patch(
            &format!("/api/v1/apps/{id}"),
            json!({"allowedAudiences": [REPORTS, BILLING], "tokenTtlSeconds": null}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["allowedAudiences"], json!([REPORTS, BILLING]));
    assert_eq!(view["tokenTtlSeconds"], Value::Null);
    let body: Value = token_for_audience(&app, &created, Some(BILLING))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["expires_in"], 3600, "back to the issuer's lifetime");

    let audit: Value = api
        .get("/api/v1/audit?filterBy=action==app.policy")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["totalRecords"], 1, "{audit}");
    let summary = audit["events"][0]["summary"].as_str().unwrap();
    assert!(summary.contains(BILLING) && summary.contains("120 s"), "{summary}");
    let csv = app
        .api()
        .await
        .get("/api/v1/apps?format=csv&columns=name,allowedAudiences,tokenTtlSeconds&search=reports-only")
        .await
        .text()
        .await
        .unwrap();
    let rows = parse_csv(&csv);
    assert_eq!(rows[0], ["Application", "Allowed audiences", "Token lifetime (s)"]);
    assert_eq!(
        rows[1],
        ["reports-only", &format!("{REPORTS} {BILLING}"), "(issuer default)"]
    );
}

#[tokio::test]
async fn nobody_widens_audiences_beyond_their_own_or_changes_their_own_policy() {
    let app = two_audience_app().await;
    let api = app.api().await;
    // An application administrator whose own application may only reach the default audience.
    let (admin_app, token) = api.app_with_tenant_role("app-admin", "application-administrator").await;
    let weak = Api { app: &app, token };
    let target = weak.create_app("managed").await;
    let target_id = target["id"].as_str().unwrap();

    // Cannot hand out an audience it does not hold itself.
    let resp = weak
        .post("/api/v1/apps", json!({"name": "wider", "allowedAudiences": [BILLING]}))
        .await;
    assert_api_error(resp, 403, "only allow audiences your own application is allowed").await;
    let resp = weak
        .patch(
            &format!("/api/v1/apps/{target_id}"),
            json!({"allowedAudiences": ["urn:appauth:api", BILLING]}),
        )
        .await;
    assert_api_error(resp, 403, "only allow audiences your own application is allowed").await;
    // Cannot change its own application's audiences or lifetime.
    let own = admin_app["id"].as_str().unwrap();
    for change in [
        json!({"allowedAudiences": ["urn:appauth:api"]}),
        json!({"tokenTtlSeconds": 60}),
    ] {
        let resp = weak.patch(&format!("/api/v1/apps/{own}"), change).await;
        assert_api_error(resp, 403, "your own application").await;
    }
    // What it does hold, it may give (and lifetimes it may set).
    let resp = weak
        .patch(
            &format!("/api/v1/apps/{target_id}"),
            json!({"allowedAudiences": ["urn:appauth:api"], "tokenTtlSeconds": 60}),
        )
        .await;
    assert_eq!(resp.status(), 200);

    // A viewer may change nothing.
    let (_, viewer_token) = api.app_with_tenant_role("watcher", "viewer").await;
    let viewer = Api {
        app: &app,
        token: viewer_token,
    };
    let resp = viewer
        .patch(&format!("/api/v1/apps/{target_id}"), json!({"tokenTtlSeconds": 30}))
        .await;
    assert_api_error(resp, 403, "missing permission").await;
    // The System administrator (every audience) may grant any served audience.
    let resp = api
        .patch(
            &format!("/api/v1/apps/{target_id}"),
            json!({"allowedAudiences": [BILLING]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Refusals are audited too.
    let audit: Value = api
        .get("/api/v1/audit?filterBy=action==app.policy&filterBy=outcome==refused")
        .await
        .json()
        .await
        .unwrap();
    assert!(audit["totalRecords"].as_u64().unwrap() >= 3, "{audit}");
}

#[tokio::test]
async fn nobody_takes_over_an_application_that_reaches_further_than_their_own() {
    let app = two_audience_app().await;
    let api = app.api().await;
    // A System administrator whose own tokens reach only the default
    // audience, for 300 s; an application that reaches billing for an hour.
    let (restricted, token) = api
        .app_with_tenant_role("restricted-admin", "system-administrator")
        .await;
    let resp = api
        .patch(
            &format!("/api/v1/apps/{}", restricted["id"].as_str().unwrap()),
            json!({"tokenTtlSeconds": 300}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let weak = Api { app: &app, token };
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "billing", "allowedAudiences": [BILLING]}),
        )
        .await;
    let billing: Value = resp.json().await.unwrap();
    let path = format!("/api/v1/apps/{}", billing["id"].as_str().unwrap());
    // Each way of getting a credential for it is refused, so its reach
    // never becomes the caller's.
    let resp = weak.post(&format!("{path}/secret"), json!({})).await;
    assert_api_error(resp, 403, "reach beyond your own").await;
    let resp = weak.post(&format!("{path}/secret"), json!({"graceSeconds": 600})).await;
    assert_api_error(resp, 403, "reach beyond your own").await;
    let key = crate::private_key_jwt::ClientKey::new("k");
    let resp = weak.patch(&path, json!({"jwks": key.jwks()})).await;
    assert_api_error(resp, 403, "reach beyond your own").await;
    // The same for a lifetime longer than the caller's own.
    let long = api.create_app("long-lived").await;
    let resp = weak
        .post(
            &format!("/api/v1/apps/{}/secret", long["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_api_error(resp, 403, "tokenTtlSeconds may be at most 300").await;
    // Within its reach it may: an application no wider nor longer-lived.
    let short = weak
        .post("/api/v1/apps", json!({"name": "short", "tokenTtlSeconds": 300}))
        .await;
    let short: Value = short.json().await.unwrap();
    let resp = weak
        .post(
            &format!("/api/v1/apps/{}/secret", short["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
}
