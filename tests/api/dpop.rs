//! DPoP (RFC 9449, issue 25 §2): a proof binds the token to the client's
//! key (`cnf.jkt`, `token_type: DPoP`), so a copied token is worth nothing
//! without the key. The §4.3 refusals one by one, single use, server
//! nonces, applications that require DPoP, the admin API refusing a bound
//! token presented as Bearer, and node `oauth4webapi` as an independent client.

use crate::helpers::*;
use crate::private_key_jwt::ClientKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A proof by `key` for `method url`, with `extra` claims merged in.
fn proof(key: &ClientKey, method: &str, url: &str, extra: Value) -> String {
    let jwk = key.jwks()["keys"][0].clone();
    let mut claims = json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url, "iat": now()});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    key.sign(json!({"typ": "dpop+jwt", "jwk": jwk, "kid": null}), &claims)
}

fn thumbprint(key: &ClientKey) -> String {
    let jwk = &key.jwks()["keys"][0];
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

async fn token_with_proof(app: &TestApp, id: &str, secret: &str, proofs: &[String]) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/oauth/token"))
        .header("Authorization", basic(id, secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials");
    for p in proofs {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn refused(resp: reqwest::Response) -> String {
    let body = assert_oauth_error(resp, 400, "invalid_dpop_proof").await;
    body["error_description"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_dpop_proof_binds_the_token_to_its_key_once_and_introspection_shows_the_binding() {
    let app = spawn_app().await;
    let (id, secret) = (app.admin_id.clone(), app.admin_secret.clone());
    let key = ClientKey::new("k");
    let url = app.url("/oauth/token");
    let p = proof(&key, "POST", &url, json!({}));
    let resp = token_with_proof(&app, &id, &secret, std::slice::from_ref(&p)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(token)["cnf"], json!({"jkt": thumbprint(&key)}));
    let introspected: Value = app
        .post_form(
            "/oauth/introspect",
            &format!("token={token}"),
            Some(basic(&id, &secret)),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], thumbprint(&key).as_str());
    // The same proof again: single use.
    let why = refused(token_with_proof(&app, &id, &secret, &[p]).await).await;
    assert!(why.contains("already used"), "{why}");
    // Without a proof, an ordinary bearer token.
    let plain: Value = app.token_request(&id, &secret, "").await.json().await.unwrap();
    assert_eq!(plain["token_type"], "Bearer");
    assert!(claims_of(plain["access_token"].as_str().unwrap()).get("cnf").is_none());
    let meta: Value = app.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
}

#[tokio::test]
async fn dpop_proofs_that_fail_a_check_of_rfc_9449_section_4_3_are_refused_one_by_one() {
    let app = spawn_app().await;
    let (id, secret) = (app.admin_id.clone(), app.admin_secret.clone());
    let key = ClientKey::new("k");
    let url = app.url("/oauth/token");
    let jwk = key.jwks()["keys"][0].clone();
    let claims = || json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": "POST", "htu": url, "iat": now()});
    let unsigned = |header: Value| {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        )
    };
    let mut private = jwk.clone();
    private["d"] = json!("AAAA");
    let other = ClientKey::new("other");
    let swapped = {
        // Signed by one key, naming another in its header.
        other.sign(json!({"typ": "dpop+jwt", "jwk": jwk, "kid": null}), &claims())
    };
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "two headers",
            vec![
                proof(&key, "POST", &url, json!({})),
                proof(&key, "POST", &url, json!({})),
            ],
            "one DPoP header",
        ),
        ("not a JWS", vec!["abc".into()], "compact JWS"),
        (
            "typ JWT",
            vec![key.sign(json!({"typ": "JWT", "jwk": jwk}), &claims())],
            "typ must be dpop+jwt",
        ),
        (
            "alg none",
            vec![unsigned(json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}))],
            "alg 'none' is not accepted",
        ),
        (
            "alg HS256",
            vec![unsigned(json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}))],
            "alg 'HS256' is not accepted",
        ),
        (
            "no jwk",
            vec![key.sign(json!({"typ": "dpop+jwt"}), &claims())],
            "must carry its public key",
        ),
        (
            "a private jwk",
            vec![key.sign(json!({"typ": "dpop+jwt", "jwk": private}), &claims())],
            "private key material",
        ),
        ("another key's signature", vec![swapped], "does not verify"),
        ("htm GET", vec![proof(&key, "GET", &url, json!({}))], "htm must be POST"),
        (
            "htu elsewhere",
            vec![proof(&key, "POST", "https://elsewhere.example/oauth/token", json!({}))],
            "htu must be",
        ),
        (
            "iat old",
            vec![proof(&key, "POST", &url, json!({"iat": now() - 600}))],
            "older than 60 s",
        ),
        (
            "iat ahead",
            vec![proof(&key, "POST", &url, json!({"iat": now() + 600}))],
            "in the future",
        ),
        (
            "no jti",
            vec![key.sign(
                json!({"typ": "dpop+jwt", "jwk": jwk}),
                &json!({"htm": "POST", "htu": url, "iat": now()}),
            )],
            "jti",
        ),
    ];
    for (what, proofs, needle) in cases {
        let why = refused(token_with_proof(&app, &id, &secret, &proofs).await).await;
        assert!(why.contains(needle), "{what}: {why}");
    }
    // The query and fragment of htu are ignored (RFC 9449 section 4.3).
    let with_query = proof(&key, "POST", &format!("{url}?x=1"), json!({}));
    assert_eq!(token_with_proof(&app, &id, &secret, &[with_query]).await.status(), 200);
}

#[tokio::test]
async fn an_application_that_requires_dpop_gets_no_token_without_a_proof() {
    let app = spawn_app().await;
    let api = app.api().await;
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "bound-only", "dpopBoundAccessTokens": true}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["dpopBoundAccessTokens"], true);
    let (cid, secret) = (
        created["clientId"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let why = refused(app.token_request(cid, secret, "").await).await;
    assert!(why.contains("DPoP-bound tokens only"), "{why}");
    let key = ClientKey::new("k");
    let p = proof(&key, "POST", &app.url("/oauth/token"), json!({}));
    let resp = token_with_proof(&app, cid, secret, &[p]).await;
    assert_eq!(resp.status(), 200);
    // Turning it off is a policy change like any other (audited).
    let resp = api
        .patch(
            &format!("/api/v1/apps/{}", created["id"].as_str().unwrap()),
            json!({"dpopBoundAccessTokens": false}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.token_request(cid, secret, "").await.status(), 200);
}

#[tokio::test]
async fn with_server_nonces_a_proof_without_the_current_nonce_gets_use_dpop_nonce() {
    let app = spawn_app_with(&["oauth.dpop_nonce=true".into()]).await;
    let (id, secret) = (app.admin_id.clone(), app.admin_secret.clone());
    let key = ClientKey::new("k");
    let url = app.url("/oauth/token");
    let resp = token_with_proof(&app, &id, &secret, &[proof(&key, "POST", &url, json!({}))]).await;
    let nonce = resp.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_oauth_error(resp, 400, "use_dpop_nonce").await;
    let wrong = proof(&key, "POST", &url, json!({"nonce": "made-up"}));
    assert_oauth_error(
        token_with_proof(&app, &id, &secret, &[wrong]).await,
        400,
        "use_dpop_nonce",
    )
    .await;
    let resp = token_with_proof(
        &app,
        &id,
        &secret,
        &[proof(&key, "POST", &url, json!({"nonce": nonce}))],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().contains_key("dpop-nonce"),
        "the next nonce comes with the token"
    );
}

#[tokio::test]
async fn the_admin_api_takes_a_bound_token_only_with_a_proof_of_its_key_for_that_request() {
    let app = spawn_app().await;
    let (id, secret) = (app.admin_id.clone(), app.admin_secret.clone());
    let key = ClientKey::new("k");
    let resp = token_with_proof(
        &app,
        &id,
        &secret,
        &[proof(&key, "POST", &app.url("/oauth/token"), json!({}))],
    )
    .await;
    let token = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let apps = app.url("/api/v1/apps");
    let ath = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()));
    let call = |scheme: &str, proof: Option<String>| {
        let mut req = app
            .client
            .get(&apps)
            .header("Authorization", format!("{scheme} {token}"));
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    // A copied token presented as Bearer is refused.
    let resp = call("Bearer", None).await.unwrap();
    let body = assert_api_error(resp, 401, "DPoP-bound").await;
    assert!(
        body["message"].as_str().unwrap().contains("Authorization: DPoP"),
        "{body}"
    );
    assert_api_error(call("DPoP", None).await.unwrap(), 401, "needs a DPoP header").await;
    let stranger = ClientKey::new("thief");
    for (what, p, needle) in [
        (
            "another key",
            proof(&stranger, "GET", &apps, json!({"ath": ath})),
            "another key",
        ),
        ("no ath", proof(&key, "GET", &apps, json!({})), "ath"),
        (
            "another URL",
            proof(&key, "GET", &app.url("/api/v1/audit"), json!({"ath": ath})),
            "htu",
        ),
        ("another method", proof(&key, "POST", &apps, json!({"ath": ath})), "htm"),
    ] {
        let resp = call("DPoP", Some(p)).await.unwrap();
        let body = assert_api_error(resp, 401, needle).await;
        assert!(
            body["message"].as_str().unwrap().contains("DPoP proof"),
            "{what}: {body}"
        );
    }
    // A proof made for another server, with the request's Host forged to
    // match it: the expected htu comes from configuration, never from Host.
    let elsewhere = format!("http://rs.evil.example:{}/api/v1/apps", app.port);
    let resp = app
        .client
        .get(&apps)
        .header("Host", format!("rs.evil.example:{}", app.port))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof(&key, "GET", &elsewhere, json!({"ath": ath})))
        .send()
        .await
        .unwrap();
    assert_api_error(resp, 401, "htu").await;
    let good = proof(&key, "GET", &apps, json!({"ath": ath}));
    assert_eq!(call("DPoP", Some(good.clone())).await.unwrap().status(), 200);
    assert_api_error(call("DPoP", Some(good)).await.unwrap(), 401, "already used").await;
    // An unbound token is not DPoP.
    let bearer = app.admin_token().await;
    let resp = app
        .client
        .get(&apps)
        .header("Authorization", format!("DPoP {bearer}"))
        .header("DPoP", proof(&key, "GET", &apps, json!({})))
        .send()
        .await
        .unwrap();
    assert_api_error(resp, 401, "not DPoP-bound").await;
}

#[tokio::test]
async fn node_oauth4webapi_gets_a_dpop_bound_token_with_a_nonce_and_calls_the_admin_api() {
    let app = spawn_app_with(&["oauth.dpop_nonce=true".into()]).await;
    let module = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/node-clients/node_modules/oauth4webapi/build/index.js"
    );
    assert!(
        std::path::Path::new(module).exists(),
        "oauth4webapi is not installed: run ./scripts/test.sh (it runs npm install)"
    );
    let script = format!(
        r#"
import * as oauth from '{module}';
const [issuer, id, secret] = process.argv.slice(1);
const opts = {{ [oauth.allowInsecureRequests]: true }};
const as = await oauth.processDiscoveryResponse(new URL(issuer), await oauth.discoveryRequest(new URL(issuer), {{ ...opts, algorithm: 'oauth2' }}));
const client = {{ client_id: id }};
const auth = oauth.ClientSecretBasic(secret);
const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
const grant = () => oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams(), {{ ...opts, DPoP }});
let result;
try {{
  result = await oauth.processClientCredentialsResponse(as, client, await grant());
}} catch (e) {{
  if (!oauth.isDPoPNonceError(e)) throw e;
  result = await oauth.processClientCredentialsResponse(as, client, await grant());
}}
const resp = await oauth.protectedResourceRequest(result.access_token, 'GET', new URL(issuer + '/api/v1/apps'), new Headers(), null, {{ ...opts, DPoP }});
console.log(JSON.stringify({{ token_type: result.token_type, access_token: result.access_token, status: resp.status }}));
"#
    );
    let out = tokio::process::Command::new("node")
        .arg("--input-type=module")
        .arg("-e")
        .arg(&script)
        .args([&app.base, &app.admin_id, &app.admin_secret])
        .output()
        .await
        .expect("node runs (scripts/test.sh installs nodejs)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["token_type"], "dpop");
    assert_eq!(
        result["status"], 200,
        "the admin API accepted the DPoP-bound token with its proof"
    );
    assert!(claims_of(result["access_token"].as_str().unwrap())["cnf"]["jkt"].is_string());
}

#[tokio::test]
async fn on_a_private_admin_plane_a_proof_names_the_configured_admin_url() {
    let port = free_port();
    let admin_url = format!("http://127.0.0.1:{port}");
    let app = spawn_app_with(&[
        format!("server.admin_listen=127.0.0.1:{port}"),
        format!("server.admin_url={admin_url}"),
    ])
    .await;
    let key = ClientKey::new("k");
    let resp = token_with_proof(
        &app,
        &app.admin_id.clone(),
        &app.admin_secret.clone(),
        &[proof(&key, "POST", &app.url("/oauth/token"), json!({}))],
    )
    .await;
    let token = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ath = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()));
    let apps = format!("{admin_url}/api/v1/apps");
    let call = |htu: String| {
        app.client
            .get(&apps)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof(&key, "GET", &htu, json!({"ath": ath})))
            .send()
    };
    assert_eq!(call(apps.clone()).await.unwrap().status(), 200, "the admin URL");
    assert_eq!(
        call(app.url("/api/v1/apps")).await.unwrap().status(),
        200,
        "the issuer URL"
    );
    let resp = call("http://localhost:1/api/v1/apps".into()).await.unwrap();
    assert_api_error(resp, 401, "htu").await;
}
