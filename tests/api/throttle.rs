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

async fn token_via(
    app: &TestApp,
    peer: &reqwest::Client,
    forwarded_for: &str,
    id: &str,
    secret: &str,
) -> reqwest::Response {
    peer.post(app.url("/oauth/token"))
        .header("Authorization", basic(id, secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Forwarded-For", forwarded_for)
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_load_balancer_the_address_limit_charges_the_forwarded_client_only() {
    let app = spawn_app_with(&[
        "limits.auth_failures_per_minute=5".into(),
        "limits.address_failures_per_minute=20".into(),
        "server.trusted_proxies=127.0.0.6".into(),
    ])
    .await;
    let balancer = client_from([127, 0, 0, 6]);
    let bad = wrong_secret(&app).await;
    for i in 0..20 {
        let id = format!("8a3c1d9e-0000-4000-8000-{i:012}");
        // The sprayer's own claim comes first; the balancer appends the real address.
        let resp = token_via(&app, &balancer, "10.9.9.9, 198.51.100.7", &id, &bad).await;
        assert_eq!(resp.status(), 401);
    }
    let sprayer = token_via(&app, &balancer, "198.51.100.7", &app.admin_id, &app.admin_secret).await;
    assert_oauth_error(sprayer, 429, "temporarily_unavailable").await;
    // Everyone else behind the same balancer is served.
    let other = token_via(&app, &balancer, "198.51.100.8", &app.admin_id, &app.admin_secret).await;
    assert_eq!(other.status(), 200);
    // A peer that is not a trusted proxy cannot pick its address with the header.
    let direct = client_from([127, 0, 0, 7]);
    for i in 0..20 {
        let id = format!("8a3c1d9e-0000-4000-8001-{i:012}");
        let fresh = format!("203.0.113.{i}");
        assert_eq!(token_via(&app, &direct, &fresh, &id, &bad).await.status(), 401);
    }
    let resp = token_via(&app, &direct, "203.0.113.200", &app.admin_id, &app.admin_secret).await;
    assert_oauth_error(resp, 429, "temporarily_unavailable").await;
}

#[tokio::test]
async fn bad_bearer_tokens_on_the_admin_api_count_against_the_address() {
    let app = spawn_app_with(&[
        "limits.auth_failures_per_minute=3".into(),
        "limits.address_failures_per_minute=3".into(),
    ])
    .await;
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
    assert_api_error(
        resp,
        429,
        "from this address (limits.address_failures_per_minute); retry after",
    )
    .await;
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

#[tokio::test]
async fn anonymous_and_bad_token_admin_requests_never_lock_a_valid_token_or_secret_out_of_their_address() {
    let app = spawn_app_with(&[
        "limits.auth_failures_per_minute=30".into(),
        "limits.address_failures_per_minute=150".into(),
    ])
    .await;
    let shared = client_from([127, 0, 0, 8]);
    let admin = app.admin_token().await;
    let mut refused = 0;
    for i in 0..200 {
        let req = shared.get(app.url("/api/v1/apps"));
        let req = if i % 2 == 0 {
            req
        } else {
            req.header("Authorization", "Bearer not.a.token")
        };
        match req.send().await.unwrap().status().as_u16() {
            401 => {}
            429 => refused += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(
        refused, 50,
        "the address budget (150), not a per-client one (30), applies"
    );
    let resp = shared.get(app.url("/api/v1/apps")).send().await.unwrap();
    assert_api_error(
        resp,
        429,
        "too many admin requests without valid credentials from this address (limits.address_failures_per_minute)",
    )
    .await;
    // A valid administrator token from the same address is served, by the
    // admin API and by bearer introspection.
    let resp = shared
        .get(app.url("/api/v1/apps"))
        .header("Authorization", format!("Bearer {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = shared
        .post(app.url("/oauth/introspect"))
        .header("Authorization", format!("Bearer {admin}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["active"], true);
    // The token endpoint keeps a budget of its own: a probe or scanner
    // hitting the admin API does not lock out a correct secret...
    let resp = token_from(&app, &shared, &app.admin_id, &app.admin_secret).await;
    assert_eq!(
        resp.status(),
        200,
        "the admin API's failures spent the token endpoint's budget"
    );
    // ...while failures at the token endpoint still lock it out.
    let bad = wrong_secret(&app).await;
    let mut locked = false;
    for _ in 0..31 {
        if token_from(&app, &shared, &app.admin_id, &bad).await.status() == 429 {
            locked = true;
            break;
        }
    }
    assert!(locked, "30 failures for one client from one address lock it out");
    let resp = token_from(&app, &shared, &app.admin_id, &app.admin_secret).await;
    assert_oauth_error(resp, 429, "temporarily_unavailable").await;
}

#[tokio::test]
async fn with_redis_the_failure_budget_holds_for_the_cluster_not_per_instance() {
    let mut redis = RedisServer::start();
    let settings = [
        format!("redis.url={}", redis.url()),
        "limits.auth_failures_per_minute=5".into(),
        "limits.address_failures_per_minute=20".into(),
    ];
    let a = spawn_app_with(&settings).await;
    let b = spawn_app_with(&settings).await;
    let sprayer = client_from([127, 0, 0, 11]);
    let bad = wrong_secret(&a).await;
    // 20 failures, half on each instance: each saw only 10 of its own.
    for i in 0..20 {
        let app = if i % 2 == 0 { &a } else { &b };
        let id = format!("8a3c1d9e-0000-4000-8002-{i:012}");
        assert_eq!(token_from(app, &sprayer, &id, &bad).await.status(), 401);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Each instance blocks the address within one more attempt.
    for app in [&a, &b] {
        let mut answered = 0;
        loop {
            let resp = token_from(app, &sprayer, &app.admin_id, &bad).await;
            match resp.status().as_u16() {
                401 => answered += 1,
                429 => break,
                s => panic!("unexpected {s}"),
            }
            assert!(
                answered <= 1,
                "an instance allowed more than one attempt past the cluster's budget"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    // Redis down: each instance counts on its own, and nobody is locked out for it.
    redis.kill9();
    let elsewhere = client_from([127, 0, 0, 12]);
    assert_eq!(
        token_from(&a, &elsewhere, &a.admin_id, &a.admin_secret).await.status(),
        200
    );
    for i in 0..20 {
        let id = format!("8a3c1d9e-0000-4000-8003-{i:012}");
        assert_eq!(token_from(&a, &elsewhere, &id, &bad).await.status(), 401);
    }
    let resp = token_from(&a, &elsewhere, &a.admin_id, &a.admin_secret).await;
    assert_oauth_error(resp, 429, "temporarily_unavailable").await;
}
