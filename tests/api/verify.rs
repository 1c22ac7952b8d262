//! appauth::verify: the resource-server verifier, its revocation modes, the
//! axum extractor, and key rotation under load.

use crate::helpers::*;
use appauth::token::jwt::JwtError;
use appauth::verify::{RevocationMode, ScopeTree, Verified, Verifier, VerifierConfig, VerifyError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) async fn verifier(app: &TestApp, mode: RevocationMode) -> Arc<Verifier> {
    let mut cfg = VerifierConfig::new(&app.base, "urn:appauth:api");
    cfg.revocation = mode;
    cfg.fail_closed_after = Duration::from_secs(1);
    Verifier::discover(cfg).await.unwrap()
}

/// Signs arbitrary header and payload JSON with the server's own key.
pub(crate) fn sign_raw(app: &TestApp, header: &Value, payload: &Value) -> String {
    let keys = appauth::token::KeySet::load(&app.dir.path().join("keys"), 3600).unwrap();
    let key = &keys.all()[0];
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let sig = key
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

pub(crate) fn kid(app: &TestApp) -> String {
    appauth::token::KeySet::load(&app.dir.path().join("keys"), 3600)
        .unwrap()
        .all()[0]
        .kid
        .clone()
}

fn good_payload(app: &TestApp) -> Value {
    let t = now();
    json!({"iss": app.base, "sub": app.admin_id, "client_id": app.admin_id, "aud": "urn:appauth:api",
           "iat": t, "nbf": t, "exp": t + 600, "jti": "j-forged-but-valid", "access_rules": []})
}

fn token_err(r: Result<appauth::token::AccessTokenClaims, VerifyError>) -> JwtError {
    match r {
        Err(VerifyError::Token(e)) => e,
        other => panic!("expected a token error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_verifier_accepts_appauth_tokens_and_evaluates_rules_on_the_scope_tree() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "Cluster: A", &tenant).await;
    let cid = cluster["id"].as_str().unwrap();
    let project_parent = api.create_scope("department", "Research", cid).await;
    let project = api
        .create_scope("project", "p", project_parent["id"].as_str().unwrap())
        .await;
    let other = api.create_scope("cluster", "Cluster: B", &tenant).await;
    let created = api.create_app("ci-pipeline-prod").await;
    api.grant(created["id"].as_str().unwrap(), "l1-researcher", "cluster", cid)
        .await;
    let token = app
        .token_for(
            created["clientId"].as_str().unwrap(),
            created["secret"].as_str().unwrap(),
        )
        .await;

    let v = verifier(&app, RevocationMode::None).await;
    let claims = v.verify(&token).await.unwrap();
    assert_eq!(claims.client_id, created["clientId"].as_str().unwrap());
    let tree = ScopeTree::fetch(&app.base, &api.token).await.unwrap();
    assert!(claims.grants_role("l1-researcher", cid, &tree));
    assert!(
        claims.grants_role("l1-researcher", project["id"].as_str().unwrap(), &tree),
        "descendants are covered"
    );
    assert!(!claims.grants_role("l1-researcher", other["id"].as_str().unwrap(), &tree));
    assert!(
        !claims.grants_role("l1-researcher", &tenant, &tree),
        "ancestors are not"
    );
    assert!(claims.grants_permission("workloads:write", cid, &tree));
    assert!(!claims.grants_permission("apps:write", cid, &tree));
}

#[tokio::test]
async fn every_kind_of_bad_token_is_rejected_with_its_own_error() {
    let app = spawn_app().await;
    let v = verifier(&app, RevocationMode::None).await;
    let kid = kid(&app);
    let payload = good_payload(&app);
    let hdr = |alg: &str, typ: &str| json!({"alg": alg, "typ": typ, "kid": kid});
    assert!(
        v.verify(&sign_raw(&app, &hdr("ES256", "at+jwt"), &payload))
            .await
            .is_ok(),
        "control"
    );

    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!("{}.{}.", b64(&hdr("none", "at+jwt")), b64(&payload));
    assert_eq!(token_err(v.verify(&none).await), JwtError::AlgNone);

    // HS256 "signed" with the public key's bytes as the HMAC secret.
    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    let input = format!("{}.{}", b64(&hdr("HS256", "at+jwt")), b64(&payload));
    let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwks["keys"][0].to_string().as_bytes());
    let hs = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(ring::hmac::sign(&hmac_key, input.as_bytes()))
    );
    assert!(matches!(token_err(v.verify(&hs).await), JwtError::HmacAlg(_)));

    for alg in ["RS256", "EdDSA"] {
        let t = sign_raw(&app, &hdr(alg, "at+jwt"), &payload);
        assert_eq!(
            token_err(v.verify(&t).await),
            JwtError::AlgMismatch,
            "{alg} header on an ES256 key"
        );
    }
    assert_eq!(
        token_err(v.verify(&sign_raw(&app, &hdr("ES256", "JWT"), &payload)).await),
        JwtError::WrongType
    );
    let unknown = sign_raw(
        &app,
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "no-such-kid"}),
        &payload,
    );
    assert_eq!(token_err(v.verify(&unknown).await), JwtError::UnknownKey);

    let real = app.admin_token().await;
    let parts: Vec<&str> = real.split('.').collect();
    let mut forged_claims = claims_of(&real);
    forged_claims["client_id"] = json!("someone-else");
    let tampered = format!("{}.{}.{}", parts[0], b64(&forged_claims), parts[2]);
    assert_eq!(token_err(v.verify(&tampered).await), JwtError::BadSignature);
    assert!(matches!(
        token_err(v.verify(&format!("{}.{}", parts[0], parts[1])).await),
        JwtError::Malformed(_)
    ));
    assert!(matches!(
        token_err(v.verify(&format!("{real}.extra")).await),
        JwtError::Malformed(_)
    ));
    assert!(matches!(
        token_err(v.verify(&format!("{}!.{}.{}", parts[0], parts[1], parts[2])).await),
        JwtError::Malformed(_)
    ));
    let not_json = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("not json"), parts[1], parts[2]);
    assert!(matches!(token_err(v.verify(&not_json).await), JwtError::Header(_)));

    let mut expired = payload.clone();
    expired["exp"] = json!(now() - 60);
    assert_eq!(
        token_err(v.verify(&sign_raw(&app, &hdr("ES256", "at+jwt"), &expired)).await),
        JwtError::Expired
    );
    let mut early = payload.clone();
    early["nbf"] = json!(now() + 600);
    assert_eq!(
        token_err(v.verify(&sign_raw(&app, &hdr("ES256", "at+jwt"), &early)).await),
        JwtError::NotYetValid
    );
    let mut foreign_iss = payload.clone();
    foreign_iss["iss"] = json!("https://evil.example");
    assert_eq!(
        token_err(v.verify(&sign_raw(&app, &hdr("ES256", "at+jwt"), &foreign_iss)).await),
        JwtError::WrongIssuer
    );
    let mut foreign_aud = payload.clone();
    foreign_aud["aud"] = json!("urn:other:api");
    assert_eq!(
        token_err(v.verify(&sign_raw(&app, &hdr("ES256", "at+jwt"), &foreign_aud)).await),
        JwtError::WrongAudience
    );
    let mut missing = payload.clone();
    missing.as_object_mut().unwrap().remove("jti");
    assert!(matches!(
        token_err(v.verify(&sign_raw(&app, &hdr("ES256", "at+jwt"), &missing)).await),
        JwtError::Claims(_)
    ));
    let huge = "a".repeat(100 * 1024);
    assert_eq!(token_err(v.verify(&huge).await), JwtError::TooLarge);
}

async fn revoke_own(app: &TestApp, created: &Value, token: &str) {
    let resp = app
        .post_form(
            "/oauth/revoke",
            &format!("token={token}"),
            Some(basic(
                created["clientId"].as_str().unwrap(),
                created["secret"].as_str().unwrap(),
            )),
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn revocation_is_honoured_in_introspection_and_redis_modes_but_not_offline() {
    let redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let created = app.api().await.create_app("verified-app").await;
    let (cid, secret) = (
        created["clientId"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let offline = verifier(&app, RevocationMode::None).await;
    let by_redis = verifier(&app, RevocationMode::Redis { url: redis.url() }).await;
    let by_introspection = verifier(
        &app,
        RevocationMode::Introspection {
            client_id: cid.to_owned(),
            client_secret: secret.to_owned(),
            cache_for: Duration::from_millis(200),
        },
    )
    .await;
    for _ in 0..50 {
        if by_redis.revocation_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = app.token_for(cid, secret).await;
    for v in [&offline, &by_redis, &by_introspection] {
        v.verify(&token).await.unwrap();
    }
    revoke_own(&app, &created, &token).await;
    let started = std::time::Instant::now();
    loop {
        match by_redis.verify(&token).await {
            Err(VerifyError::Revoked) => break,
            Ok(_) => assert!(
                started.elapsed() < Duration::from_secs(1),
                "Redis mode honours a revocation within 1 s"
            ),
            Err(e) => panic!("unexpected {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(250)).await; // past the introspection cache
    assert_eq!(by_introspection.verify(&token).await.unwrap_err(), VerifyError::Revoked);
    assert!(
        offline.verify(&token).await.is_ok(),
        "offline mode cannot see revocations (documented)"
    );

    // Regenerating the secret revokes everything issued before, in Redis mode too.
    let fresh = app.token_for(cid, secret).await;
    by_redis.verify(&fresh).await.unwrap();
    app.api()
        .await
        .post(
            &format!("/api/v1/apps/{}/secret", created["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(by_redis.verify(&fresh).await.unwrap_err(), VerifyError::Revoked);
}

#[tokio::test]
async fn the_redis_mode_fails_closed_when_redis_is_gone_too_long() {
    let mut redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let v = verifier(&app, RevocationMode::Redis { url: redis.url() }).await;
    for _ in 0..50 {
        if v.revocation_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = app.admin_token().await;
    v.verify(&token).await.unwrap();
    redis.kill9();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(matches!(
        v.verify(&token).await,
        Err(VerifyError::RevocationUnavailable(_))
    ));
}

#[tokio::test]
async fn the_axum_extractor_answers_with_rfc_6750_errors() {
    use axum::extract::State;
    use axum::routing::get;
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "A", &tenant).await;
    let cid = cluster["id"].as_str().unwrap().to_owned();
    let tree = Arc::new(ScopeTree::fetch(&app.base, &api.token).await.unwrap());
    let v = verifier(&app, RevocationMode::None).await;
    let v2 = v.clone();

    #[derive(Clone)]
    struct S {
        v: Arc<Verifier>,
        tree: Arc<ScopeTree>,
        scope: String,
    }
    impl axum::extract::FromRef<S> for Arc<Verifier> {
        fn from_ref(s: &S) -> Self {
            s.v.clone()
        }
    }
    async fn handler(State(s): State<S>, who: Verified) -> Result<String, appauth::verify::BearerError> {
        let claims = who.require_role("l1-researcher", &s.scope, &s.tree)?;
        Ok(claims.client_id.clone())
    }
    let router = axum::Router::new().route("/work", get(handler)).with_state(S {
        v,
        tree,
        scope: cid.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let url = format!("http://{addr}/work");

    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer, DPoP algs=\"ES256 EdDSA RS256 PS256\""
    );
    let resp = app.client.get(&url).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
    let admin = app.admin_token().await;
    let resp = app.client.get(&url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(resp.status(), 403, "system admin on tenant but not L1 researcher");
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\""
    );
    let created = api.create_app("researcher").await;
    api.grant(created["id"].as_str().unwrap(), "l1-researcher", "tenant", &tenant)
        .await;
    let token = app
        .token_for(
            created["clientId"].as_str().unwrap(),
            created["secret"].as_str().unwrap(),
        )
        .await;
    let resp = app.client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200, "a tenant rule covers the cluster");
    assert_eq!(resp.text().await.unwrap(), created["clientId"].as_str().unwrap());

    // The same as a layer over a whole router.
    async fn who(Verified(claims): Verified) -> String {
        claims.client_id
    }
    let layered = axum::Router::new()
        .route("/who", get(who))
        .layer(axum::middleware::from_fn_with_state(
            v2.clone(),
            appauth::verify::require_bearer,
        ))
        .with_state(v2);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, layered).await.unwrap() });
    let who_url = format!("http://{addr}/who");
    let resp = app.client.get(&who_url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer, DPoP algs=\"ES256 EdDSA RS256 PS256\""
    );
    let resp = app.client.get(&who_url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), created["clientId"].as_str().unwrap());

    // A DPoP-bound token (RFC 9449): worth nothing as Bearer, accepted with
    // a proof of its key for this request, once.
    use base64::Engine;
    let key = crate::private_key_jwt::ClientKey::new("rs");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let proof = |k: &crate::private_key_jwt::ClientKey, method: &str, url: &str, extra: serde_json::Value| {
        let mut claims =
            serde_json::json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url, "iat": now});
        for (name, v) in extra.as_object().unwrap() {
            claims[name] = v.clone();
        }
        k.sign(
            serde_json::json!({"typ": "dpop+jwt", "jwk": k.jwks()["keys"][0], "kid": null}),
            &claims,
        )
    };
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .header(
            "Authorization",
            basic(
                created["clientId"].as_str().unwrap(),
                created["secret"].as_str().unwrap(),
            ),
        )
        .header(
            "DPoP",
            proof(&key, "POST", &app.url("/oauth/token"), serde_json::json!({})),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let bound = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ath = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(ring::digest::digest(&ring::digest::SHA256, bound.as_bytes()));
    let resp = app.client.get(&who_url).bearer_auth(&bound).send().await.unwrap();
    assert_eq!(resp.status(), 401, "a copied DPoP-bound token is refused as Bearer");
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP error=\"invalid_dpop_proof\"")
    );
    let call = |p: String| {
        app.client
            .get(&who_url)
            .header("Authorization", format!("DPoP {bound}"))
            .header("DPoP", p)
            .send()
    };
    let thief = crate::private_key_jwt::ClientKey::new("thief");
    for (what, p) in [
        (
            "another key",
            proof(&thief, "GET", &who_url, serde_json::json!({"ath": ath})),
        ),
        ("no ath", proof(&key, "GET", &who_url, serde_json::json!({}))),
        ("another URL", proof(&key, "GET", &url, serde_json::json!({"ath": ath}))),
    ] {
        assert_eq!(call(p).await.unwrap().status(), 401, "{what}");
    }
    let good = proof(&key, "GET", &who_url, serde_json::json!({"ath": ath}));
    let resp = call(good.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), created["clientId"].as_str().unwrap());
    assert_eq!(call(good).await.unwrap().status(), 401, "a proof is good once");
}

#[tokio::test]
async fn keys_rotate_under_load_with_zero_failed_verifications() {
    let app = spawn_app_with(&[
        "issuer.token_ttl_seconds=5".into(),
        "keys.publish_ahead_seconds=2".into(),
    ])
    .await;
    let v = verifier(&app, RevocationMode::None).await;
    let old_kid = kid(&app);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let (client, url, auth) = (
            http_client(),
            app.url("/oauth/token"),
            basic(&app.admin_id, &app.admin_secret),
        );
        let (v, stop) = (v.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failures, mut kids) = (0u32, Vec::new(), std::collections::BTreeSet::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = client
                    .post(&url)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await
                    .unwrap();
                let body: Value = resp.json().await.unwrap();
                let token = body["access_token"].as_str().unwrap().to_owned();
                kids.insert(header_of(&token)["kid"].as_str().unwrap().to_owned());
                match v.verify(&token).await {
                    Ok(_) => ok += 1,
                    Err(e) => failures.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, failures, kids)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_appauth"))
        .args(["keys", "generate", "--alg", "EdDSA", "--set"])
        .arg(format!("keys.dir={}", app.dir.path().join("keys").display()))
        .args(["--set", "keys.publish_ahead_seconds=2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_kid = String::from_utf8_lossy(&out.stdout)
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let jwks_kids = || async {
        let jwks: Value = app.get_json("/.well-known/jwks.json").await;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let mut phases = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let kids = jwks_kids().await;
        let phase = match (kids.contains(&old_kid), kids.contains(&new_kid)) {
            (true, false) => "old only",
            (true, true) => "both",
            (false, true) => "new only",
            (false, false) => "none",
        };
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
        if phase == "new only" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "old key never left the JWKS: {phases:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failures, kids) = worker.await.unwrap();
    assert!(
        failures.is_empty(),
        "failed verifications across the rotation: {failures:?}"
    );
    assert!(ok > 50, "only {ok} verifications");
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "tokens were signed by both keys: {kids:?}"
    );
    // Published next to the old key (ahead of signing), then the old one left
    // once every token it signed had expired; never an empty set.
    // (The first poll may already see the new key if a rescan ran in between.)
    let from_both: Vec<&str> = phases.iter().copied().skip_while(|p| *p == "old only").collect();
    assert_eq!(from_both, ["both", "new only"], "{phases:?}");
}

/// `(r, n − s)`: the other valid ECDSA encoding of the same signature.
fn flip_s(token: &str) -> String {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6,
        0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        sig[32 + i] = d.rem_euclid(256) as u8;
    }
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

async fn admin_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/v1/apps"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_token_whose_ecdsa_signature_was_flipped_to_high_s_is_refused_everywhere() {
    let app = spawn_app().await;
    let v = verifier(&app, RevocationMode::None).await;
    for _ in 0..8 {
        let token = app.admin_token().await;
        let s = &URL_SAFE_NO_PAD.decode(token.rsplit_once('.').unwrap().1).unwrap()[32..];
        assert!(appauth::verify::jws::is_low_s(s), "appauth signs low-S only");
        let malleated = flip_s(&token);
        assert_ne!(malleated, token);
        assert_eq!(admin_status(&app, &malleated).await, 401);
        assert_eq!(
            crate::revocation::introspect(&app, &malleated).await,
            json!({"active": false})
        );
        assert_eq!(token_err(v.verify(&malleated).await), JwtError::BadSignature);
        assert!(v.verify(&token).await.is_ok());
    }
}

#[tokio::test]
async fn a_genuinely_signed_token_claiming_an_endless_lifetime_is_refused_everywhere() {
    let app = spawn_app().await;
    let v = verifier(&app, RevocationMode::None).await;
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid(&app)});
    let t = now();
    let endless = |patch: Value| {
        let mut claims = json!({"iss": app.base, "sub": app.admin_id, "client_id": app.admin_id,
            "aud": "urn:appauth:api", "iat": t, "nbf": t, "exp": t + 600, "jti": "j-endless", "access_rules": []});
        for (k, v) in patch.as_object().unwrap() {
            claims[k] = v.clone();
        }
        sign_raw(&app, &header, &claims)
    };
    let control = endless(json!({}));
    assert!(v.verify(&control).await.is_ok(), "control");
    for patch in [
        json!({"exp": i64::MAX}),
        json!({"nbf": i64::MIN}),
        json!({"iat": i64::MIN}),
        json!({"exp": t + 3600 + 120}),
    ] {
        let token = endless(patch.clone());
        assert_eq!(admin_status(&app, &token).await, 401, "{patch}");
        assert_eq!(
            crate::revocation::introspect(&app, &token).await,
            json!({"active": false}),
            "{patch}"
        );
        let mut strict = VerifierConfig::new(&app.base, "urn:appauth:api");
        strict.max_token_lifetime = Duration::from_secs(3600);
        let strict = Verifier::discover(strict).await.unwrap();
        assert_eq!(
            token_err(strict.verify(&token).await),
            JwtError::LifetimeTooLong,
            "{patch}"
        );
        if patch.get("exp") != Some(&json!(t + 3600 + 120)) {
            // Over the verifier's default bound (a day) too.
            assert_eq!(token_err(v.verify(&token).await), JwtError::LifetimeTooLong, "{patch}");
        }
    }
}

#[tokio::test]
async fn an_introspecting_verifier_whose_credentials_are_refused_fails_closed_at_once() {
    let app = spawn_app().await;
    let api = app.api().await;
    let ours = api.create_app("resource-server").await;
    let other = api.create_app("someone-else").await;
    let mut cfg = VerifierConfig::new(&app.base, "urn:appauth:api");
    cfg.revocation = RevocationMode::Introspection {
        client_id: ours["clientId"].as_str().unwrap().to_owned(),
        // A well-formed secret, but not this client's: 401 invalid_client.
        client_secret: other["secret"].as_str().unwrap().to_owned(),
        cache_for: Duration::from_secs(1),
    };
    // Long enough that the old "passing fault" grace would still accept.
    cfg.fail_closed_after = Duration::from_secs(60);
    let v = Verifier::discover(cfg).await.unwrap();
    let token = app.admin_token().await;
    match v.verify(&token).await {
        Err(VerifyError::RevocationUnavailable(m)) => assert!(m.contains("credentials (401)"), "{m}"),
        other => panic!("accepted or wrong error with refused credentials: {other:?}"),
    }
}
