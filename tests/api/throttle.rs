//! Abuse limits on client authentication (DESIGN §4, RFC 6585 §4): failures
//! are counted per (client ID, source address) and per source address; the
//! loopback network gives the tests several source addresses.

use crate::helpers::*;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};

/// An HTTP client whose connections come from `source` (any 127.0.0.0/8 address).
fn client_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(Ipv4Addr::from(source)))
        .build()
        .unwrap()
}

async fn token_from(app: &TestApp, client: &reqwest::Client, id: &str, secret: &str) -> reqwest::Response {
    client
        .post(app.url("/oauth/token"))
        .header("Authorization", basic(id, secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
}

/// A well-formed secret (prefix, checksum) that is not the admin's: another application's.
async fn wrong_secret(app: &TestApp) -> String {
    let decoy = app.api().await.create_app("decoy").await;
    decoy["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn wrong_secrets_from_one_address_lock_out_that_address_only() {
    let app = spawn_app().await;
    // Not 127.0.0.1: the test's own admin calls come from there.
    let attacker = client_from([127, 0, 0, 6]);
    let elsewhere = client_from([127, 0, 0, 2]);
    let bad = wrong_secret(&app).await;
    let mut limited = 0;
    for _ in 0..100 {
        let resp = token_from(&app, &attacker, &app.admin_id, &bad).await;
        match resp.status().as_u16() {
            401 => {}
            429 => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(limited, 70, "the first 30 failures are answered, the rest refused");
    // The right secret from another address works at once.
    let resp = token_from(&app, &elsewhere, &app.admin_id, &app.admin_secret).await;
    assert_eq!(resp.status(), 200);
    // From the attacker's address it is refused before any secret check,
    // with an RFC 6749-shaped body and Retry-After.
    let resp = token_from(&app, &attacker, &app.admin_id, &app.admin_secret).await;
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body = assert_oauth_error(resp, 429, "temporarily_unavailable").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("retry after"),
        "{body}"
    );
    // Other clients on the attacker's address are not locked out by one client's failures.
    let api = app.api().await;
    let other = api.create_app("neighbour").await;
    let resp = token_from(
        &app,
        &attacker,
        other["clientId"].as_str().unwrap(),
        other["secret"].as_str().unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    // Failures are counted by revoke and introspect too: they share the budget.
    let resp = attacker
        .post(app.url("/oauth/introspect"))
        .header("Authorization", basic(&app.admin_id, &app.admin_secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("token=x")
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 429, "temporarily_unavailable").await;
}

#[tokio::test]
async fn spraying_many_client_ids_from_one_address_trips_the_address_limit() {
    let app = spawn_app_with(&[
        "limits.auth_failures_per_minute=5".into(),
        "limits.address_failures_per_minute=20".into(),
    ])
    .await;
    let sprayer = client_from([127, 0, 0, 3]);
    let bad = wrong_secret(&app).await;
    for i in 0..20 {
        let id = format!("8a3c1d9e-0000-4000-8000-{i:012}");
        assert_eq!(token_from(&app, &sprayer, &id, &bad).await.status(), 401);
    }
    let resp = token_from(&app, &sprayer, &app.admin_id, &app.admin_secret).await;
    assert_oauth_error(resp, 429, "temporarily_unavailable").await;
    let resp = token_from(&app, &client_from([127, 0, 0, 4]), &app.admin_id, &app.admin_secret).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn bad_bearer_tokens_on_the_admin_api_count_against_the_address() {
    let app = spawn_app_with(&["limits.auth_failures_per_minute=3".into()]).await;
    let prober = client_from([127, 0, 0, 5]);
    let get = |token: &'static str| {
        prober
            .get(app.url("/api/v1/apps"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(get("garbage").await.unwrap().status(), 401);
    }
    let resp = get("garbage").await.unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    assert_api_error(resp, 429, "retry after").await;
    // A real administrator elsewhere is unaffected.
    assert_eq!(app.api().await.get("/api/v1/apps").await.status(), 200);
    let audit: Value = app
        .api()
        .await
        .get("/api/v1/audit?filterBy=status==429")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        audit["totalRecords"], 1,
        "one record per window, not per refusal: {audit}"
    );
}
