//! RFC 7009 revocation, RFC 7662 introspection, and the Redis cache that
//! fails safe (real redis-server on an ephemeral port).

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Introspection as an administrator (an admin-audience bearer with
/// System administrator), which may see any client's token.
pub(crate) async fn introspect(app: &TestApp, token: &str) -> Value {
    let bearer = format!("Bearer {}", app.admin_token().await);
    let resp = app
        .post_form("/oauth/introspect", &format!("token={token}"), Some(bearer))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

async fn revoke(app: &TestApp, id: &str, secret: &str, token: &str) -> reqwest::Response {
    app.post_form(
        "/oauth/revoke",
        &format!("token={token}&token_type_hint=access_token"),
        Some(basic(id, secret)),
    )
    .await
}

/// Regenerates, disables or deletes application `id`: the three writes that cut off its tokens.
async fn cut_off(api: &Api<'_>, action: &str, id: &str) -> reqwest::StatusCode {
    match action {
        "regenerate" => api.post(&format!("/api/v1/apps/{id}/secret"), json!({})).await.status(),
        "disable" => api
            .patch(&format!("/api/v1/apps/{id}"), json!({"enabled": false}))
            .await
            .status(),
        _ => api.delete(&format!("/api/v1/apps/{id}")).await.status(),
    }
}

/// An application with a secret, plus one of its tokens.
async fn client(app: &TestApp, name: &str) -> (Value, String) {
    let created = app.api().await.create_app(name).await;
    let token = app
        .token_for(
            created["clientId"].as_str().unwrap(),
            created["secret"].as_str().unwrap(),
        )
        .await;
    (created, token)
}

fn creds(v: &Value) -> (&str, &str) {
    (v["clientId"].as_str().unwrap(), v["secret"].as_str().unwrap())
}

async fn revoke_then_introspect_reports_inactive(app: &TestApp) -> String {
    let (c, token) = client(app, "revoker").await;
    let active = introspect(app, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], c["clientId"]);
    assert_eq!(active["token_type"], "Bearer");
    for claim in ["sub", "aud", "iss", "exp", "iat", "nbf", "jti", "access_rules"] {
        assert!(!active[claim].is_null(), "{claim} missing: {active}");
    }
    let (id, secret) = creds(&c);
    let resp = revoke(app, id, secret, &token).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(introspect(app, &token).await, json!({"active": false}));
    // Revoking again, or an unknown token, is still a 200.
    assert_eq!(revoke(app, id, secret, &token).await.status(), 200);
    assert_eq!(revoke(app, id, secret, "not-a-token").await.status(), 200);
    active["jti"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn revoked_token_is_inactive_without_redis() {
    let app = spawn_app().await;
    revoke_then_introspect_reports_inactive(&app).await;
}

#[tokio::test]
async fn revoked_token_is_inactive_with_redis_and_cached_there_until_it_expires() {
    let redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let jti = revoke_then_introspect_reports_inactive(&app).await;
    let mut conn = redis.conn().await;
    let key = format!("appauth:revoked:jti:{jti}");
    let expire_at: i64 = redis::cmd("EXPIRETIME").arg(&key).query_async(&mut conn).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Token lifetime (3600 s) + verifier leeway (60 s): gone once no verifier could accept the token.
    assert!(
        expire_at > now + 3600 && expire_at <= now + 3600 + 61,
        "EXPIRETIME {expire_at}, now {now}"
    );
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(ready["checks"]["redis"], "ok");
}

#[tokio::test]
async fn regenerate_disable_and_delete_revoke_earlier_tokens_only_of_that_app() {
    let redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let api = app.api().await;
    let (bystander, bystander_token) = client(&app, "bystander").await;
    for action in ["regenerate", "disable", "delete"] {
        let (c, old) = client(&app, &format!("victim-{action}")).await;
        let id = c["id"].as_str().unwrap();
        let status = cut_off(&api, action, id).await;
        assert!(status.is_success(), "{action}: {status}");
        assert_eq!(introspect(&app, &old).await, json!({"active": false}), "{action}");
        let mut conn = redis.conn().await;
        let key = format!("appauth:revoked:client:{}", c["clientId"].as_str().unwrap());
        let before: Option<i64> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
        assert!(before.is_some(), "{action}: cut-off announced in Redis");
        if action == "disable" {
            api.patch(&format!("/api/v1/apps/{id}"), json!({"enabled": true})).await;
            let fresh = app.token_for(creds(&c).0, creds(&c).1).await;
            assert_eq!(introspect(&app, &fresh).await["active"], true, "new tokens are active");
            assert_eq!(
                introspect(&app, &old).await["active"],
                false,
                "re-enabling does not revive old tokens"
            );
        }
    }
    assert_eq!(introspect(&app, &bystander_token).await["active"], true);
    let fresh = app.token_for(creds(&bystander).0, creds(&bystander).1).await;
    assert_eq!(introspect(&app, &fresh).await["active"], true);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let app = spawn_app().await;
    let (_, victim_token) = client(&app, "victim").await;
    let (attacker, _) = client(&app, "attacker").await;
    let (id, secret) = creds(&attacker);
    assert_oauth_error(
        revoke(&app, id, secret, &victim_token).await,
        400,
        "unauthorized_client",
    )
    .await;
    assert_eq!(introspect(&app, &victim_token).await["active"], true);
}

#[tokio::test]
async fn revoke_and_introspect_reject_bad_requests_precisely() {
    let app = spawn_app().await;
    let (c, token) = client(&app, "careful").await;
    let (id, secret) = creds(&c);
    let resp = app
        .post_form(
            "/oauth/revoke",
            &format!("token={token}&token_type_hint=refresh_token"),
            Some(basic(id, secret)),
        )
        .await;
    assert_oauth_error(resp, 400, "unsupported_token_type").await;
    assert_oauth_error(
        app.post_form("/oauth/revoke", "", Some(basic(id, secret))).await,
        400,
        "invalid_request",
    )
    .await;
    assert_oauth_error(
        app.post_form("/oauth/revoke", &format!("token={token}"), None).await,
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(
        app.post_form("/oauth/introspect", &format!("token={token}"), None)
            .await,
        401,
        "invalid_client",
    )
    .await;
    let resp = app.client.get(app.url("/oauth/introspect")).send().await.unwrap();
    assert_oauth_error(resp, 405, "invalid_request").await;
    // Malformed, foreign and tampered tokens are exactly {"active": false}.
    let other = spawn_app().await;
    let foreign = other.admin_token().await;
    let mut tampered: Vec<String> = token.split('.').map(str::to_owned).collect();
    tampered[1].push('A');
    for bad in ["garbage", "a.b.c", foreign.as_str(), tampered.join(".").as_str()] {
        assert_eq!(introspect(&app, bad).await, json!({"active": false}), "{bad}");
    }
    assert_eq!(
        introspect(&app, &token).await["active"],
        true,
        "the real one is still active"
    );
}

#[tokio::test]
async fn introspection_accepts_an_admin_bearer_token_and_refuses_weak_ones() {
    let app = spawn_app().await;
    let (c, token) = client(&app, "introspected").await;
    let admin = app.admin_token().await;
    let call = |bearer: String| {
        app.client
            .post(app.url("/oauth/introspect"))
            .header("Authorization", format!("Bearer {bearer}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
    };
    let ok: Value = call(admin).await.unwrap().json().await.unwrap();
    assert_eq!(ok["active"], true);
    let resp = call(token.clone()).await.unwrap();
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"appauth\", error=\"insufficient_scope\""
    );
    assert_oauth_error(resp, 403, "insufficient_scope").await;
    assert_oauth_error(call("garbage".into()).await.unwrap(), 401, "invalid_token").await;
    let _ = c;
}

#[tokio::test]
async fn redis_killed_under_load_gives_no_5xx_and_never_reports_a_revoked_token_active() {
    let mut redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let (c, revoked) = client(&app, "under-load").await;
    let (id, secret) = creds(&c);
    assert_eq!(revoke(&app, id, secret, &revoked).await.status(), 200);
    let live = app.token_for(id, secret).await;
    redis.kill9();
    for round in 0..40 {
        let t = app.token_request(id, secret, "").await;
        assert_eq!(t.status(), 200, "round {round}: the token endpoint keeps issuing");
        assert_eq!(
            introspect(&app, &revoked).await,
            json!({"active": false}),
            "round {round}"
        );
        if round <= 20 {
            assert_eq!(introspect(&app, &live).await["active"], true, "round {round}");
        }
        // Revoking while Redis is down still works: the store is the truth.
        if round == 20 {
            assert_eq!(revoke(&app, id, secret, &live).await.status(), 200);
        }
        if round > 20 {
            assert_eq!(introspect(&app, &live).await["active"], false);
            break;
        }
    }
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "tokens are still served");
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["redis"], "degraded");
    assert_eq!(ready["status"], "degraded");
    let metrics = app.get_text("/metrics").await;
    let count = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(count("appauth_redis_errors_total") > 0, "{metrics}");
}

#[tokio::test]
async fn redis_restarted_empty_is_refilled_from_the_store() {
    let redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let (c, token) = client(&app, "refill").await;
    let (id, secret) = creds(&c);
    assert_eq!(revoke(&app, id, secret, &token).await.status(), 200);
    let jti = claims_of(&token)["jti"].as_str().unwrap().to_owned();
    let key = format!("appauth:revoked:jti:{jti}");
    let redis = redis.restart_empty();
    let mut conn = redis.conn().await;
    let mut found = false;
    for _ in 0..100 {
        // Meanwhile the answer stays right (from the store).
        assert_eq!(introspect(&app, &token).await["active"], false);
        let exists: bool = redis::cmd("EXISTS").arg(&key).query_async(&mut conn).await.unwrap();
        if exists {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "the revocation reappeared in Redis without restarting appauth");
    let generation: bool = redis::cmd("EXISTS")
        .arg("appauth:revocations:generation")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(generation);
}

#[tokio::test]
async fn revocations_are_announced_on_the_pubsub_channel() {
    use futures_util::StreamExt;
    let redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let mut pubsub = redis::Client::open(redis.url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    pubsub.subscribe("appauth:revocations").await.unwrap();
    let (c, token) = client(&app, "announced").await;
    let (id, secret) = creds(&c);
    assert_eq!(revoke(&app, id, secret, &token).await.status(), 200);
    let mut messages = pubsub.on_message();
    let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .unwrap()
        .unwrap();
    let body: Value = serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(body["type"], "token");
    assert_eq!(body["jti"], claims_of(&token)["jti"]);
    assert_eq!(body["clientId"], c["clientId"]);
}

#[tokio::test]
async fn revocations_survive_an_appauth_restart() {
    let app = spawn_app().await;
    let (c, token) = client(&app, "persistent").await;
    let (id, secret) = creds(&c);
    assert_eq!(revoke(&app, id, secret, &token).await.status(), 200);
    let (c2, token2) = client(&app, "regenerated").await;
    app.api()
        .await
        .post(
            &format!("/api/v1/apps/{}/secret", c2["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    let again = spawn_in(app.stop().await, &[]).await;
    assert_eq!(introspect(&again, &token).await, json!({"active": false}));
    assert_eq!(introspect(&again, &token2).await, json!({"active": false}));
}

#[tokio::test]
async fn lapsed_revocations_are_purged_from_the_store_and_expire_in_redis() {
    use appauth::revocation::{RevocationCache, Revocations, redis::RedisCache};
    use appauth::store::{SledStore, Store};
    use std::sync::Arc;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("data")).unwrap());
    let pepper = appauth::domain::secret::Pepper::from_bytes(&[1; 32]);
    let directory = Arc::new(appauth::directory::Directory::load(store.clone(), pepper, 60).unwrap());
    let cache: Arc<dyn RevocationCache> = Arc::new(RedisCache::new(&redis.url()).unwrap());
    let revocations = Revocations::load(store.clone(), directory, cache, Arc::default()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Revoked two seconds before it expires.
    revocations
        .revoke_token("jti-near-expiry", "client-1", now + 2)
        .await
        .unwrap();
    revocations
        .revoke_token("jti-long-lived", "client-1", now + 3000)
        .await
        .unwrap();
    assert!(revocations.is_revoked("jti-near-expiry", "client-1", now - 60).await);
    let mut conn = redis.conn().await;
    let expire_at: i64 = redis::cmd("EXPIRETIME")
        .arg("appauth:revoked:jti:jti-near-expiry")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        expire_at,
        now + 2 + appauth::revocation::LEEWAY_SECONDS,
        "Redis drops it once no verifier can accept the token"
    );
    assert_eq!(revocations.purge_expired(now).await.unwrap(), 0, "nothing lapsed yet");
    assert_eq!(
        revocations
            .purge_expired(now + 2 + appauth::revocation::LEEWAY_SECONDS)
            .await
            .unwrap(),
        1
    );
    let left = store.scan_prefix(appauth::store::keys::REVOKED_JTI).unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].0.ends_with("jti-long-lived"));
}

/// Waits until the wall clock is `ms` milliseconds into a second: a cut-off
/// written across a second boundary is where a token could slip past it.
async fn align_to_ms(ms: u128) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let wait = (1000 + ms - now % 1000) % 1000;
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
}

#[tokio::test]
async fn no_token_obtained_with_old_credentials_survives_regenerate_disable_or_delete() {
    // Every token obtained is introspected by the administrator: lift its request limit.
    let app = spawn_app_with(&["limits.admin_requests_per_minute=1000000".into()]).await;
    let api = app.api().await;
    let mut checked = 0;
    for round in 0..24 {
        let action = ["regenerate", "disable", "delete"][round % 3];
        let (c, _) = client(&app, &format!("racer-{round}")).await;
        let (cid, secret) = (
            c["clientId"].as_str().unwrap().to_owned(),
            c["secret"].as_str().unwrap().to_owned(),
        );
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut loops = Vec::new();
        for _ in 0..3 {
            let (base, cid, secret, stop) = (app.base.clone(), cid.clone(), secret.clone(), stop.clone());
            loops.push(tokio::spawn(async move {
                let http = http_client();
                let mut tokens = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let resp = http
                        .post(format!("{base}/oauth/token"))
                        .header("Authorization", basic(&cid, &secret))
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body("grant_type=client_credentials")
                        .send()
                        .await
                        .unwrap();
                    if resp.status() == 200 {
                        let body: Value = resp.json().await.unwrap();
                        tokens.push(body["access_token"].as_str().unwrap().to_owned());
                    }
                }
                tokens
            }));
        }
        // Straddle a second boundary: the write starts a few ms before it.
        align_to_ms(990 + (round as u128 % 9)).await;
        let id = c["id"].as_str().unwrap();
        let status = cut_off(&api, action, id).await;
        assert!(status.is_success(), "{action}: {status}");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for l in loops {
            for token in l.await.unwrap() {
                assert_eq!(
                    introspect(&app, &token).await,
                    json!({"active": false}),
                    "round {round}: a token from the old credentials outlived {action}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 24, "the loops obtained tokens ({checked})");
}

#[tokio::test]
async fn lowering_the_token_lifetime_never_shortens_how_long_cut_offs_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir, &["issuer.token_ttl_seconds=7200".into()]).await;
    let (c, old) = client(&app, "long-lived").await;
    assert_eq!(
        claims_of(&old)["exp"].as_i64().unwrap() - claims_of(&old)["iat"].as_i64().unwrap(),
        7200
    );
    let dir = app.stop().await;
    let app = spawn_in(dir, &["issuer.token_ttl_seconds=60".into()]).await;
    let api = app.api().await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        api.post(&format!("/api/v1/apps/{id}/secret"), json!({})).await.status(),
        200
    );
    assert_eq!(introspect(&app, &old).await, json!({"active": false}));
    let dir = app.stop().await;
    // The cut-off is kept until a 7200 s token issued before it has expired.
    let store = appauth::store::SledStore::open(&dir.path().join("data")).unwrap();
    use appauth::store::Store;
    let raw = store
        .get(&appauth::store::keys::cutoff(c["clientId"].as_str().unwrap()))
        .unwrap()
        .expect("cut-off stored");
    let cutoff: Value = serde_json::from_slice(&raw).unwrap();
    let kept = cutoff["expires"].as_i64().unwrap() - cutoff["before"].as_i64().unwrap();
    assert!(kept >= 7200, "cut-off kept only {kept} s");
}

#[tokio::test]
async fn a_client_sees_only_its_own_tokens_as_active_and_a_viewer_sees_any() {
    let app = spawn_app().await;
    let (a, a_token) = client(&app, "client-a").await;
    let (b, _) = client(&app, "client-b").await;
    let as_client = |who: &Value, token: &str| {
        let (id, secret) = (
            who["clientId"].as_str().unwrap().to_owned(),
            who["secret"].as_str().unwrap().to_owned(),
        );
        let body = format!("token={token}");
        let app = &app;
        async move {
            let resp = app
                .post_form("/oauth/introspect", &body, Some(basic(&id, &secret)))
                .await;
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(as_client(&a, &a_token).await["active"], true);
    assert_eq!(
        as_client(&b, &a_token).await,
        json!({"active": false}),
        "B may not read A's token"
    );
    let api = app.api().await;
    let (_, viewer_token) = api.app_with_tenant_role("auditor", "viewer").await;
    let resp = app
        .post_form(
            "/oauth/introspect",
            &format!("token={a_token}"),
            Some(format!("Bearer {viewer_token}")),
        )
        .await;
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], a["clientId"]);
    // A resource server's own client with the Resource server role sees any token.
    let (rs, _) = api.app_with_tenant_role("orders-api", "resource-server").await;
    let seen = as_client(&rs, &a_token).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], a["clientId"]);
    let (_, weak_token) = api.app_with_tenant_role("researcher", "l1-researcher").await;
    let resp = app
        .post_form(
            "/oauth/introspect",
            &format!("token={a_token}"),
            Some(format!("Bearer {weak_token}")),
        )
        .await;
    assert_oauth_error(resp, 403, "insufficient_scope").await;
}

/// Polls until `key` exists in Redis again, checking meanwhile that appauth
/// never reports `token` active. Returns how long it took.
async fn restored_within(app: &TestApp, redis: &RedisServer, key: &str, token: &str, what: &str) -> Duration {
    let started = std::time::Instant::now();
    let mut conn = redis.conn().await;
    loop {
        assert_eq!(
            introspect(app, token).await,
            json!({"active": false}),
            "{what}: appauth reported a revoked token active"
        );
        let exists: bool = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap_or(false);
        if exists {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{what}: not restored in Redis"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn revocation_truth_survives_every_kind_of_redis_state_loss() {
    let mut redis = RedisServer::start();
    let app = spawn_app_with(&[
        format!("redis.url={}", redis.url()),
        "limits.admin_requests_per_minute=100000".into(),
    ])
    .await;
    let (c, token) = client(&app, "snapshot-victim").await;
    let (id, secret) = creds(&c);
    let key = format!("appauth:revoked:jti:{}", claims_of(&token)["jti"].as_str().unwrap());

    // 1. A snapshot taken before the revocation, restored after it.
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
    assert_eq!(revoke(&app, id, secret, &token).await.status(), 200);
    redis = redis.restart_from_disk();
    let took = restored_within(&app, &redis, &key, &token, "old RDB snapshot").await;
    assert!(took < Duration::from_secs(2), "old RDB: {took:?}");

    // 2. FLUSHALL, 3. a stray DEL, 4. eviction under maxmemory.
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    let took = restored_within(&app, &redis, &key, &token, "FLUSHALL").await;
    assert!(took < Duration::from_secs(2), "FLUSHALL: {took:?}");
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
    let took = restored_within(&app, &redis, &key, &token, "DEL").await;
    assert!(took < Duration::from_secs(2), "DEL: {took:?}");
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxmemory-policy", "allkeys-random"][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxmemory", "1"][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _ = redis::cmd("SET")
        .arg(&["filler", "x"][..])
        .query_async::<()>(&mut conn)
        .await;
    let evicted: bool = redis::cmd("EXISTS").arg(&key).query_async(&mut conn).await.unwrap();
    assert!(!evicted, "the revocation key was evicted");
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxmemory", "0"][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let took = restored_within(&app, &redis, &key, &token, "eviction").await;
    assert!(took < Duration::from_secs(2), "eviction: {took:?}");

    // A verifier following Redis that starts after a loss learns of it too.
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    let v = crate::verify::verifier(&app, appauth::verify::RevocationMode::Redis { url: redis.url() }).await;
    let started = std::time::Instant::now();
    loop {
        if v.verify(&token).await == Err(appauth::verify::VerifyError::Revoked) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the verifier never learnt of the revocation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("appauth_redis_repairs_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

/// Polls until appauth's introspection and every verifier refuse `token`
/// as revoked, then checks they keep refusing it. Returns how long it took.
async fn refused_everywhere(
    app: &TestApp,
    verifiers: &[&appauth::verify::Verifier],
    token: &str,
    what: &str,
) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let mut all = introspect(app, token).await == json!({"active": false});
        for v in verifiers {
            all &= v.verify(token).await == Err(appauth::verify::VerifyError::Revoked);
        }
        if all {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{what}: a verifier still accepts the revoked token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    // Not a passing moment: every later read holds the later cut-off too.
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for v in verifiers {
            assert_eq!(
                v.verify(token).await,
                Err(appauth::verify::VerifyError::Revoked),
                "{what}: a verifier accepted the token again"
            );
        }
    }
    took
}

async fn redis_cutoff(redis: &RedisServer, client_id: &str) -> Option<i64> {
    let mut conn = redis.conn().await;
    let v: Option<String> = redis::cmd("GET")
        .arg(format!("appauth:revoked:client:{client_id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    v.map(|v| v.parse().unwrap())
}

async fn ready(v: &appauth::verify::Verifier) {
    for _ in 0..50 {
        if v.revocation_ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the verifier never loaded the revocation set");
}

/// A new application whose secret was regenerated once (a cut-off in
/// Redis), and a token obtained with the new secret: (id, client ID, token).
async fn regenerated_with_token(app: &TestApp, api: &Api<'_>, name: &str) -> (String, String, String) {
    let created = api.create_app(name).await;
    let (app_id, client_id) = (created["id"].as_str().unwrap(), created["clientId"].as_str().unwrap());
    let regenerated: Value = api
        .post(&format!("/api/v1/apps/{app_id}/secret"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let token = app.token_for(client_id, regenerated["secret"].as_str().unwrap()).await;
    (app_id.to_owned(), client_id.to_owned(), token)
}

#[tokio::test]
async fn a_cut_off_made_while_redis_was_down_overwrites_the_older_one_its_aof_brings_back() {
    let mut redis = RedisServer::start_with(&["--save", "", "--appendonly", "yes", "--appendfsync", "always"]);
    let app = spawn_app_with(&[
        format!("redis.url={}", redis.url()),
        "limits.admin_requests_per_minute=100000".into(),
    ])
    .await;
    let api = app.api().await;
    let (app_id, client_id, token) = regenerated_with_token(&app, &api, "aof-victim").await;
    let (app_id, client_id) = (app_id.as_str(), client_id.as_str());
    let b1 = redis_cutoff(&redis, client_id)
        .await
        .expect("regenerate's cut-off in Redis");
    let v = crate::verify::verifier(&app, appauth::verify::RevocationMode::Redis { url: redis.url() }).await;
    ready(&v).await;
    assert!(v.verify(&token).await.is_ok(), "the token is good before the disable");

    redis.kill9();
    assert_eq!(cut_off(&api, "disable", app_id).await, 200);
    redis = redis.come_back();
    assert_eq!(
        redis_cutoff(&redis, client_id).await,
        Some(b1),
        "the AOF brought back the older cut-off"
    );

    let took = refused_everywhere(&app, &[&v], &token, "AOF reload").await;
    assert!(took < Duration::from_secs(2), "refused only after {took:?}");
    let repaired = redis_cutoff(&redis, client_id).await.unwrap();
    assert!(repaired > b1, "Redis still holds the older cut-off {repaired}");
    // A verifier that starts now reads the repaired value.
    let fresh = crate::verify::verifier(&app, appauth::verify::RevocationMode::Redis { url: redis.url() }).await;
    ready(&fresh).await;
    assert_eq!(fresh.verify(&token).await, Err(appauth::verify::VerifyError::Revoked));
}

#[tokio::test]
async fn an_rdb_saved_between_two_regenerates_never_makes_a_verifier_accept_a_revoked_token() {
    let redis = RedisServer::start();
    let app = spawn_app_with(&[
        format!("redis.url={}", redis.url()),
        "limits.admin_requests_per_minute=100000".into(),
    ])
    .await;
    let api = app.api().await;
    let (app_id, client_id, token) = regenerated_with_token(&app, &api, "rdb-victim").await;
    let (app_id, client_id) = (app_id.as_str(), client_id.as_str());
    let v = crate::verify::verifier(&app, appauth::verify::RevocationMode::Redis { url: redis.url() }).await;
    ready(&v).await;
    assert!(v.verify(&token).await.is_ok());
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
    let b1 = redis_cutoff(&redis, client_id).await.unwrap();

    assert_eq!(cut_off(&api, "regenerate", app_id).await, 200);
    refused_everywhere(&app, &[&v], &token, "second regenerate").await;

    // Redis comes back from the snapshot: the first cut-off and the old generation.
    let redis = redis.restart_from_disk();
    let took = refused_everywhere(&app, &[&v], &token, "old RDB").await;
    assert!(took < Duration::from_secs(2), "refused only after {took:?}");
    assert!(
        redis_cutoff(&redis, client_id).await.unwrap() > b1,
        "Redis was not repaired"
    );
    let fresh = crate::verify::verifier(&app, appauth::verify::RevocationMode::Redis { url: redis.url() }).await;
    ready(&fresh).await;
    assert_eq!(fresh.verify(&token).await, Err(appauth::verify::VerifyError::Revoked));
}
