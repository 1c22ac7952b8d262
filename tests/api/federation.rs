//! Secretless identity (issue 25 §1): a real HTTPS OIDC issuer, started
//! here with its own test CA (trusted through `ca_file`), serves discovery
//! and a JWKS; it mints tokens shaped like GitHub Actions OIDC tokens (RS256)
//! and Kubernetes projected service-account tokens (ES256). Applications
//! trust them through federated credentials, by client assertion and by
//! RFC 8693 token exchange; every refusal is asserted with its reason.

use crate::helpers::*;
use crate::oidc_issuer::*;
use crate::private_key_jwt::ClientKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::time::Duration;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// A form post to the token endpoint, no client authentication.
async fn token_post(app: &TestApp, body: &str) -> reqwest::Response {
    app.post_form("/oauth/token", body, None).await
}

async fn by_assertion(app: &TestApp, client_id: &str, external: &str) -> reqwest::Response {
    token_post(
        app,
        &format!("grant_type=client_credentials&client_id={client_id}&client_assertion_type={ASSERTION_TYPE}&client_assertion={external}"),
    )
    .await
}

async fn by_exchange(app: &TestApp, client_id: &str, external: &str) -> reqwest::Response {
    token_post(
        app,
        &format!("grant_type={EXCHANGE}&client_id={client_id}&subject_token_type={TYPE_JWT}&subject_token={external}"),
    )
    .await
}

/// An application with an *L1 researcher* rule on the tenant, and a federated credential.
async fn federated_app(api: &Api<'_>, name: &str, credential: Value) -> (Value, Value) {
    let (created, _) = api.app_with_tenant_role(name, "l1-researcher").await;
    let resp = api
        .post(
            &format!("/api/v1/apps/{}/federated-credentials", created["id"].as_str().unwrap()),
            credential,
        )
        .await;
    assert_eq!(resp.status(), 201);
    (created, resp.json().await.unwrap())
}

/// An RS256 key, a GitHub-like issuer publishing it, and appauth trusting
/// that issuer (`extra`: more keys of its `federation.issuers` entry).
async fn github_issuer_and_app(extra: &str) -> (RsaSigner, Issuer, TestApp) {
    let signer = RsaSigner::new("gh-1");
    let issuer = Issuer::start(json!({"keys": [signer.jwk()]})).await;
    let app = spawn_app_with(&[issuer.setting(extra)]).await;
    (signer, issuer, app)
}

/// The error description of a refusal with this status and code.
async fn refused(resp: reqwest::Response, status: u16, code: &str) -> String {
    let body = assert_oauth_error(resp, status, code).await;
    body["error_description"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_github_actions_job_gets_a_token_with_no_secret_by_assertion_and_by_token_exchange() {
    let (signer, issuer, app) = github_issuer_and_app("").await;
    let api = app.api().await;
    let (created, credential) = federated_app(
        &api,
        "ci-pipeline-prod",
        json!({"issuer": issuer.url, "subjectPattern": "repo:acme/*:environment:prod",
            "conditions": {"ref": "refs/heads/main", "job_workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/*"},
            "description": "deploys from main"}),
    )
    .await;
    let cid = created["clientId"].as_str().unwrap();
    assert_eq!(credential["subjectPattern"], "repo:acme/*:environment:prod");
    let view: Value = api
        .get(&format!("/api/v1/apps/{}", created["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["federatedCredentials"][0]["id"], credential["id"]);

    let job = signer.sign(
        json!({}),
        &github_claims(&issuer.url, "acme/api", "refs/heads/main", "prod"),
    );
    // The Azure model: the platform's token as the client assertion.
    let resp = by_assertion(&app, cid, &job).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], cid);
    assert_eq!(claims["access_rules"][0]["role"], "L1 researcher");
    assert_eq!(
        claims["fed"],
        json!({"iss": issuer.url, "sub": "repo:acme/api:environment:prod"}),
        "the token says how it was obtained"
    );
    // The Google STS model: RFC 8693 token exchange.
    let resp = by_exchange(&app, cid, &job).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "Bearer");
    let exchanged = body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(exchanged)["fed"]["sub"], "repo:acme/api:environment:prod");
    // It is an ordinary token: introspection says so.
    let introspected: Value = app
        .post_form(
            "/oauth/introspect",
            &format!("token={exchanged}"),
            Some(basic(&app.admin_id, &app.admin_secret)),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);

    // Another branch, repository, environment or workflow: refused.
    for (repo, git_ref, env) in [
        ("acme/api", "refs/heads/feature", "prod"),
        ("acme/api", "refs/heads/main", "staging"),
        ("evil/api", "refs/heads/main", "prod"),
    ] {
        let other = signer.sign(json!({}), &github_claims(&issuer.url, repo, git_ref, env));
        let why = refused(by_assertion(&app, cid, &other).await, 401, "invalid_client").await;
        assert!(why.contains("no federated credential"), "{why}");
        let why = refused(by_exchange(&app, cid, &other).await, 400, "invalid_request").await;
        assert!(why.contains("no federated credential"), "{why}");
    }
    let mut claims = github_claims(&issuer.url, "acme/api", "refs/heads/main", "prod");
    claims["job_workflow_ref"] = "evil/x/.github/workflows/steal.yml@refs/heads/main".into();
    let why = refused(
        by_exchange(&app, cid, &signer.sign(json!({}), &claims)).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(why.contains("no federated credential"), "{why}");
    // The job's token does not open an application that did not trust it.
    let (bystander, _) = api.app_with_tenant_role("bystander", "viewer").await;
    let why = refused(
        by_exchange(&app, bystander["clientId"].as_str().unwrap(), &job).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(why.contains("no federated credential"), "{why}");

    // The audit log names who obtained the tokens, never the token (the
    // records are appended in batches, every 250 ms).
    let mut audit = Value::Null;
    for _ in 0..40 {
        audit = api
            .get("/api/v1/audit?filterBy=action==token.federated")
            .await
            .json()
            .await
            .unwrap();
        if audit["totalRecords"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(audit["totalRecords"], 2, "{audit}");
    let summary = audit["events"][0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("repo:acme/api:environment:prod") && summary.contains(&issuer.url),
        "{summary}"
    );
    assert!(
        !audit.to_string().contains(&job[job.len() - 40..]),
        "the external token reached the audit log"
    );
}

#[tokio::test]
async fn a_kubernetes_service_account_gets_a_token_by_token_exchange_in_its_namespace_only() {
    let signer = ClientKey::new("k8s-1");
    let issuer = Issuer::start(signer.jwks()).await;
    let app = spawn_app_with(&[issuer.setting(", max_token_lifetime_seconds = 3600")]).await;
    let api = app.api().await;
    let (created, _) = federated_app(
        &api,
        "deployer",
        json!({"issuer": issuer.url, "subject": "system:serviceaccount:ci:deployer",
            "conditions": {"kubernetes.io.namespace": "ci", "kubernetes.io.serviceaccount.name": "deployer"}}),
    )
    .await;
    let cid = created["clientId"].as_str().unwrap();
    let pod = signer.sign(json!({"typ": "JWT"}), &kubernetes_claims(&issuer.url, "ci", "deployer"));
    let resp = by_exchange(&app, cid, &pod).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["fed"]["sub"],
        "system:serviceaccount:ci:deployer"
    );
    // The same token is good for several exchanges within its lifetime (a
    // pod reuses its projected token until the kubelet refreshes it).
    assert_eq!(by_exchange(&app, cid, &pod).await.status(), 200);
    let other_ns = signer.sign(json!({}), &kubernetes_claims(&issuer.url, "default", "deployer"));
    let why = refused(by_exchange(&app, cid, &other_ns).await, 400, "invalid_request").await;
    assert!(why.contains("system:serviceaccount:default:deployer"), "{why}");
}

#[tokio::test]
async fn external_tokens_that_are_forged_misaddressed_stale_or_too_long_lived_are_refused_with_the_reason() {
    let (signer, issuer, app) = github_issuer_and_app(", max_token_lifetime_seconds = 600").await;
    let api = app.api().await;
    let (created, _) = federated_app(
        &api,
        "ci",
        json!({"issuer": issuer.url, "subject": "repo:acme/api:environment:prod"}),
    )
    .await;
    let cid = created["clientId"].as_str().unwrap();
    let good = || github_claims(&issuer.url, "acme/api", "refs/heads/main", "prod");
    let attacker = RsaSigner::new("gh-1");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good();
        f(&mut c);
        c
    };
    let hs256 = {
        // HS256 keyed with the issuer's public key: the classic confusion.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, signer.jwk()["n"].as_str().unwrap().as_bytes());
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": "gh-1"}).to_string()),
            URL_SAFE_NO_PAD.encode(good().to_string())
        );
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, input.as_bytes()))
        )
    };
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
        URL_SAFE_NO_PAD.encode(good().to_string())
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong aud",
            signer.sign(json!({}), &with(&|c| c["aud"] = "https://elsewhere".into())),
            "aud must name",
        ),
        (
            "expired",
            signer.sign(
                json!({}),
                &with(&|c| {
                    c["exp"] = (now() - 120).into();
                    c["iat"] = (now() - 400).into();
                }),
            ),
            "expired",
        ),
        (
            "too long-lived",
            signer.sign(json!({}), &with(&|c| c["exp"] = (now() + 3600).into())),
            "max_token_lifetime_seconds",
        ),
        (
            "no iat",
            signer.sign(
                json!({}),
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("iat");
                }),
            ),
            "no iat",
        ),
        (
            "issued in the future",
            signer.sign(json!({}), &with(&|c| c["iat"] = (now() + 120).into())),
            "future",
        ),
        ("unknown kid", signer.sign(json!({"kid": "gh-9"}), &good()), "not among"),
        (
            "another key, same kid",
            attacker.sign(json!({}), &good()),
            "not signed by a key",
        ),
        (
            "a jku pointing elsewhere",
            attacker.sign(json!({"jku": "https://evil.example/jwks"}), &good()),
            "not signed by a key",
        ),
        (
            "an embedded jwk",
            attacker.sign(json!({"jwk": attacker.jwk()}), &good()),
            "not signed by a key",
        ),
        ("alg none", none, "alg 'none' is not accepted"),
        ("HS256 with the public key", hs256, "alg 'HS256' is not accepted"),
        (
            "PS256 header on an RS256 key",
            signer.sign(json!({"alg": "PS256"}), &good()),
            "not signed by a key",
        ),
        (
            "issuer not configured",
            attacker.sign(
                json!({}),
                &with(&|c| c["iss"] = "https://token.actions.githubusercontent.com".into()),
            ),
            "not trusted",
        ),
        ("not a JWT", "abc.def".to_owned(), "compact JWS"),
    ];
    for (what, token, needle) in cases {
        let why = refused(by_exchange(&app, cid, &token).await, 400, "invalid_request").await;
        assert!(why.contains(needle), "{what}: {why}");
    }
    // An untrusted issuer's token as an assertion is an unknown private_key_jwt client.
    let why = refused(
        by_assertion(
            &app,
            cid,
            &attacker.sign(json!({}), &with(&|c| c["iss"] = "https://unknown.example".into())),
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    assert!(why.contains("client assertion refused"), "{why}");
    // RFC 8693 §2.2.2 refusals of what is not supported.
    let token = signer.sign(json!({}), &good());
    for (body, needle) in [
        (
            format!(
                "grant_type={EXCHANGE}&client_id={cid}&subject_token={token}&subject_token_type={TYPE_JWT}&actor_token={token}&actor_token_type={TYPE_JWT}"
            ),
            "actor_token is not supported",
        ),
        (
            format!(
                "grant_type={EXCHANGE}&client_id={cid}&subject_token={token}&subject_token_type=urn:ietf:params:oauth:token-type:saml2"
            ),
            "subject_token_type",
        ),
        (
            format!("grant_type={EXCHANGE}&client_id={cid}&subject_token={token}"),
            "subject_token_type is required",
        ),
        (
            format!("grant_type={EXCHANGE}&client_id={cid}&subject_token_type={TYPE_JWT}"),
            "subject_token is required",
        ),
        (
            format!("grant_type={EXCHANGE}&subject_token={token}&subject_token_type={TYPE_JWT}"),
            "client_id is required",
        ),
        (
            format!(
                "grant_type={EXCHANGE}&client_id={cid}&subject_token={token}&subject_token_type={TYPE_JWT}&requested_token_type=urn:ietf:params:oauth:token-type:refresh_token"
            ),
            "requested_token_type",
        ),
        (
            format!(
                "grant_type={EXCHANGE}&client_id={cid}&client_secret=x&subject_token={token}&subject_token_type={TYPE_JWT}"
            ),
            "no client secret",
        ),
        (
            format!(
                "grant_type=client_credentials&client_id={cid}&subject_token={token}&subject_token_type={TYPE_JWT}"
            ),
            "belong to grant_type",
        ),
    ] {
        let why = refused(token_post(&app, &body).await, 400, "invalid_request").await;
        assert!(why.contains(needle), "{needle}: {why}");
    }
    let why = refused(
        token_post(&app, &format!("grant_type={EXCHANGE}&client_id={cid}&subject_token={token}&subject_token_type={TYPE_JWT}&audience=urn:nowhere")).await,
        400,
        "invalid_target",
    )
    .await;
    assert!(why.contains("urn:nowhere"), "{why}");
    // The good token, after all that.
    assert_eq!(by_exchange(&app, cid, &token).await.status(), 200);
}

#[tokio::test]
async fn a_key_rotated_at_the_issuer_is_picked_up_and_unknown_kids_cannot_make_it_hammer_the_issuer() {
    let old = RsaSigner::new("gh-1");
    let issuer = Issuer::start(json!({"keys": [old.jwk()]})).await;
    // The forged tokens below are failures the abuse limits would count.
    let app = spawn_app_with(&[
        issuer.setting(""),
        "limits.auth_failures_per_minute=1000".into(),
        "limits.address_failures_per_minute=1000".into(),
    ])
    .await;
    let api = app.api().await;
    let (created, _) = federated_app(
        &api,
        "ci",
        json!({"issuer": issuer.url, "subjectPattern": "repo:acme/*:environment:prod"}),
    )
    .await;
    let cid = created["clientId"].as_str().unwrap();
    let claims = || github_claims(&issuer.url, "acme/api", "refs/heads/main", "prod");
    assert_eq!(
        by_exchange(&app, cid, &old.sign(json!({}), &claims())).await.status(),
        200
    );
    assert_eq!(issuer.fetches(), 1);
    // A burst of tokens naming kids the issuer never had: one fetch at most.
    for i in 0..20 {
        let forged = old.sign(json!({"kid": format!("forged-{i}")}), &claims());
        assert_eq!(by_exchange(&app, cid, &forged).await.status(), 400);
    }
    assert!(
        issuer.fetches() <= 2,
        "{} fetches for 20 unknown kids",
        issuer.fetches()
    );
    // The issuer rotates: a token with the new kid is accepted once the
    // refresh interval allows a fetch.
    let new = RsaSigner::new("gh-2");
    issuer.set(|s| s.jwks = json!({"keys": [old.jwk(), new.jwk()]}));
    let rotated = new.sign(json!({}), &claims());
    let mut accepted = false;
    for _ in 0..70 {
        if by_exchange(&app, cid, &rotated).await.status() == 200 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "the new key was never picked up");
}

#[tokio::test]
async fn when_the_issuers_keys_cannot_be_had_its_tokens_are_refused_closed_with_503() {
    let signer = RsaSigner::new("gh-1");
    let claims = |url: &str| github_claims(url, "acme/api", "refs/heads/main", "prod");
    // Down, slow, too large, or redirecting off-host from the start.
    for (what, mode, needle) in [
        ("down", Mode::Down, "503"),
        ("slow", Mode::Slow(Duration::from_secs(7)), "no answer within 5 s"),
        ("too large", Mode::Huge, "larger than"),
        (
            "redirecting off-host",
            Mode::RedirectTo("https://localhost:1/jwks".into()),
            "redirect",
        ),
    ] {
        let issuer = Issuer::start(json!({"keys": [signer.jwk()]})).await;
        issuer.set(|s| s.mode = mode);
        let app = spawn_app_with(&[issuer.setting("")]).await;
        let api = app.api().await;
        let (created, _) = federated_app(
            &api,
            "ci",
            json!({"issuer": issuer.url, "subjectPattern": "repo:acme/*:environment:prod"}),
        )
        .await;
        let token = signer.sign(json!({}), &claims(&issuer.url));
        let why = refused(
            by_exchange(&app, created["clientId"].as_str().unwrap(), &token).await,
            503,
            "temporarily_unavailable",
        )
        .await;
        assert!(why.contains(needle), "{what}: {why}");
    }
    // Cached keys outlive an outage for `stale_seconds`, then fail closed.
    let issuer = Issuer::start(json!({"keys": [signer.jwk()]})).await;
    issuer.set(|s| s.max_age = 1);
    let app = spawn_app_with(&[issuer.setting(", min_cache_seconds = 1, stale_seconds = 2")]).await;
    let api = app.api().await;
    let (created, _) = federated_app(
        &api,
        "ci",
        json!({"issuer": issuer.url, "subjectPattern": "repo:acme/*:environment:prod"}),
    )
    .await;
    let cid = created["clientId"].as_str().unwrap();
    assert_eq!(
        by_exchange(&app, cid, &signer.sign(json!({}), &claims(&issuer.url)))
            .await
            .status(),
        200
    );
    issuer.set(|s| s.mode = Mode::Down);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        by_exchange(&app, cid, &signer.sign(json!({}), &claims(&issuer.url)))
            .await
            .status(),
        200,
        "stale keys serve while the issuer is down"
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let why = refused(
        by_exchange(&app, cid, &signer.sign(json!({}), &claims(&issuer.url))).await,
        503,
        "temporarily_unavailable",
    )
    .await;
    assert!(why.contains("stale"), "{why}");
}

#[tokio::test]
async fn federated_credentials_are_managed_by_system_administrators_only_and_never_on_their_own_application() {
    let (signer, issuer, app) = github_issuer_and_app("").await;
    let api = app.api().await;
    let (target, _) = api.app_with_tenant_role("target", "viewer").await;
    let path = format!("/api/v1/apps/{}/federated-credentials", target["id"].as_str().unwrap());
    let credential = json!({"issuer": issuer.url, "subject": "repo:acme/api:environment:prod"});
    // An Application administrator lacks apps:keys.
    let (_, token) = api.app_with_tenant_role("app-admin", "application-administrator").await;
    let weaker = Api { app: &app, token };
    assert_api_error(weaker.post(&path, credential.clone()).await, 403, "apps:keys").await;
    // A System administrator, on its own application.
    let (me, token) = api.app_with_tenant_role("sys-admin", "system-administrator").await;
    let mine = Api { app: &app, token };
    let own = format!("/api/v1/apps/{}/federated-credentials", me["id"].as_str().unwrap());
    assert_api_error(mine.post(&own, credential.clone()).await, 403, "own application").await;
    // Shape errors, each precise.
    for (body, needle) in [
        (
            json!({"issuer": "https://token.actions.githubusercontent.com", "subject": "x"}),
            "not trusted",
        ),
        (
            json!({"issuer": issuer.url}),
            "exactly one of subject and subjectPattern",
        ),
        (json!({"issuer": issuer.url, "subjectPattern": "*"}), "besides *"),
        (
            json!({"issuer": issuer.url, "subject": "x", "conditions": {"sub": "y"}}),
            "not allowed",
        ),
        (
            json!({"issuer": issuer.url, "subject": "x", "extra": 1}),
            "unknown field",
        ),
    ] {
        assert_api_error(api.post(&path, body).await, 400, needle).await;
    }
    let created: Value = {
        let resp = mine.post(&path, credential.clone()).await;
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    };
    assert_api_error(api.post(&path, credential.clone()).await, 409, "already has").await;
    for i in 1..20 {
        let resp = api
            .post(
                &path,
                json!({"issuer": issuer.url, "subject": format!("repo:acme/api{i}:environment:prod")}),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    assert_api_error(
        api.post(
            &path,
            json!({"issuer": issuer.url, "subject": "repo:acme/one-more:environment:prod"}),
        )
        .await,
        409,
        "20 federated credentials",
    )
    .await;
    let listed: Value = api.get(&path).await.json().await.unwrap();
    assert_eq!(listed["federatedCredentials"].as_array().unwrap().len(), 20);
    assert_eq!(listed["trustedIssuers"], json!([issuer.url]));
    // Removing it ends what it allowed.
    let cid = target["clientId"].as_str().unwrap();
    let job = signer.sign(
        json!({}),
        &github_claims(&issuer.url, "acme/api", "refs/heads/main", "prod"),
    );
    assert_eq!(by_exchange(&app, cid, &job).await.status(), 200);
    let one = format!("{path}/{}", created["id"].as_str().unwrap());
    assert_eq!(api.delete(&one).await.status(), 204);
    assert_eq!(api.delete(&one).await.status(), 404);
    assert_eq!(by_exchange(&app, cid, &job).await.status(), 400);
    let audit: Value = api
        .get("/api/v1/audit?filterBy=action=^app.federated")
        .await
        .json()
        .await
        .unwrap();
    assert!(audit["totalRecords"].as_u64().unwrap() >= 22, "{audit}");
}
