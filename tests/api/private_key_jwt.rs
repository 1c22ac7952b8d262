//! `private_key_jwt` client authentication (RFC 7523 §2.2): keys registered
//! on the application, assertions on the token, revocation and
//! introspection endpoints, single use, pinned algorithms; and two
//! independent clients (Python authlib, node openid-client).

use crate::helpers::*;
pub(crate) use crate::oidc_issuer::ClientKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims a well-behaved client sends to `aud`.
pub(crate) fn claims(client_id: &str, aud: &str) -> Value {
    json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now() + 60, "iat": now(),
        "jti": uuid::Uuid::new_v4().to_string()})
}

async fn assert_with(app: &TestApp, path: &str, assertion: &str, extra: &str) -> reqwest::Response {
    let body = format!("client_assertion_type={ASSERTION_TYPE}&client_assertion={assertion}{extra}");
    app.post_form(path, &body, None).await
}

/// Creates the application `keyed` with `key` registered; the 201 body.
pub(crate) async fn keyed_app(api: &Api<'_>, key: &ClientKey) -> Value {
    let resp = api
        .post("/api/v1/apps", json!({"name": "keyed", "jwks": key.jwks()}))
        .await;
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// A fresh, well-formed assertion from `key` is refused with 401 `invalid_client`.
async fn refused(app: &TestApp, key: &ClientKey, cid: &str, aud: &str) -> Value {
    assert_oauth_error(
        token_with(app, &key.sign(json!({}), &claims(cid, aud))).await,
        401,
        "invalid_client",
    )
    .await
}

pub(crate) async fn token_with(app: &TestApp, assertion: &str) -> reqwest::Response {
    assert_with(app, "/oauth/token", assertion, "&grant_type=client_credentials").await
}

#[tokio::test]
async fn a_registered_key_authenticates_once_per_assertion_on_token_revoke_and_introspect() {
    let app = spawn_app().await;
    let api = app.api().await;
    let key = ClientKey::new("ci-key-1");
    let resp = api
        .post("/api/v1/apps", json!({"name": "keyed", "jwks": key.jwks()}))
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let cid = created["clientId"].as_str().unwrap().to_owned();
    assert_eq!(created["jwks"]["keys"][0]["kid"], "ci-key-1", "the public set is shown");
    let token_url = app.url("/oauth/token");

    let assertion = key.sign(json!({}), &claims(&cid, &token_url));
    let resp = token_with(&app, &assertion).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&token)["client_id"], cid.as_str());

    // Single use: the same assertion again is a replay.
    let body = assert_oauth_error(token_with(&app, &assertion).await, 401, "invalid_client").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("already used"),
        "{body}"
    );

    // The issuer itself is an accepted audience too, and the endpoints'
    // own URLs on revoke and introspect.
    let resp = token_with(&app, &key.sign(json!({}), &claims(&cid, &app.base))).await;
    assert_eq!(resp.status(), 200);
    let introspect = key.sign(json!({}), &claims(&cid, &app.url("/oauth/introspect")));
    let resp = assert_with(&app, "/oauth/introspect", &introspect, &format!("&token={token}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["active"], true);
    let revoke = key.sign(json!({}), &claims(&cid, &app.url("/oauth/revoke")));
    let resp = assert_with(&app, "/oauth/revoke", &revoke, &format!("&token={token}")).await;
    assert_eq!(resp.status(), 200);
    let introspect = key.sign(json!({}), &claims(&cid, &token_url));
    let resp = assert_with(&app, "/oauth/introspect", &introspect, &format!("&token={token}")).await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["active"],
        false,
        "revoked by assertion-authenticated call"
    );

    // Metadata says so.
    let meta: Value = app.get_json("/.well-known/oauth-authorization-server").await;
    for ep in ["token", "revocation", "introspection"] {
        let methods = &meta[format!("{ep}_endpoint_auth_methods_supported")];
        assert!(
            methods.as_array().unwrap().contains(&json!("private_key_jwt")),
            "{meta}"
        );
        assert_eq!(
            meta[format!("{ep}_endpoint_auth_signing_alg_values_supported")],
            json!(["ES256", "EdDSA", "RS256", "PS256"])
        );
    }
}

#[tokio::test]
async fn forged_stale_misaddressed_or_mixed_assertions_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let api = app.api().await;
    let key = ClientKey::new("k1");
    let created: Value = keyed_app(&api, &key).await;
    let cid = created["clientId"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let aud = app.url("/oauth/token");

    let cases: Vec<(Value, Value, &str)> = vec![
        (
            json!({"alg": "EdDSA"}),
            claims(&cid, &aud),
            "not signed by a key registered",
        ),
        (
            json!({"alg": "PS256"}),
            claims(&cid, &aud),
            "not signed by a key registered",
        ),
        (json!({"alg": "HS256"}), claims(&cid, &aud), "HS256"),
        (json!({"alg": "none"}), claims(&cid, &aud), "not accepted"),
        (
            json!({}),
            {
                let mut c = claims(&cid, "https://elsewhere.example/token");
                c["jti"] = "a".into();
                c
            },
            "aud must name this server",
        ),
        (
            json!({}),
            {
                let mut c = claims(&cid, &aud);
                c["exp"] = (now() + 3700).into();
                c
            },
            "more than 3600 seconds ahead (oauth.max_assertion_lifetime_seconds)",
        ),
        (
            json!({}),
            {
                let mut c = claims(&cid, &aud);
                c["exp"] = (now() - 120).into();
                c
            },
            "expired",
        ),
        (
            json!({}),
            {
                let mut c = claims(&cid, &aud);
                c.as_object_mut().unwrap().remove("jti");
                c
            },
            "jti is required",
        ),
        (
            json!({}),
            {
                let mut c = claims(&cid, &aud);
                c["sub"] = "someone-else".into();
                c
            },
            "sub must equal iss",
        ),
        (
            json!({"kid": "other"}),
            claims(&cid, &aud),
            "not signed by a key registered",
        ),
    ];
    for (header, c, reason) in cases {
        let body = assert_oauth_error(
            token_with(&app, &key.sign(header.clone(), &c)).await,
            401,
            "invalid_client",
        )
        .await;
        let d = body["error_description"].as_str().unwrap();
        assert!(d.contains(reason), "{header} {c}: {d}");
    }
    // Another key's signature over a valid assertion.
    let stranger = ClientKey::new("k1");
    let body = assert_oauth_error(
        token_with(&app, &stranger.sign(json!({}), &claims(&cid, &aud))).await,
        401,
        "invalid_client",
    )
    .await;
    let forged = body["error_description"].clone();
    // An unknown client, a client without keys and a bad signature read alike.
    let unknown = uuid::Uuid::new_v4().to_string();
    let a = assert_oauth_error(
        token_with(&app, &key.sign(json!({}), &claims(&unknown, &aud))).await,
        401,
        "invalid_client",
    )
    .await;
    let admin = app.admin_id.clone();
    let b = assert_oauth_error(
        token_with(&app, &key.sign(json!({}), &claims(&admin, &aud))).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(a["error_description"], b["error_description"]);
    assert_eq!(a["error_description"], forged);
    // One method per request.
    let assertion = key.sign(json!({}), &claims(&cid, &aud));
    let resp = app
        .post_form(
            "/oauth/token",
            &format!(
                "grant_type=client_credentials&client_assertion_type={ASSERTION_TYPE}&client_assertion={assertion}"
            ),
            Some(basic(&app.admin_id, &app.admin_secret)),
        )
        .await;
    assert_oauth_error(resp, 400, "invalid_request").await;
    let resp = assert_with(
        &app,
        "/oauth/token",
        &assertion,
        &format!("&grant_type=client_credentials&client_id={}", app.admin_id),
    )
    .await;
    let body = assert_oauth_error(resp, 401, "invalid_client").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client_id does not match")
    );
    let resp = app
        .post_form(
            "/oauth/token",
            &format!("grant_type=client_credentials&client_assertion_type=urn:x&client_assertion={assertion}"),
            None,
        )
        .await;
    assert_oauth_error(resp, 400, "invalid_request").await;

    // Disabled: refused like an unknown client. Keys removed: likewise.
    assert_eq!(
        api.patch(&format!("/api/v1/apps/{id}"), json!({"enabled": false}))
            .await
            .status(),
        200
    );
    refused(&app, &key, &cid, &aud).await;
    let resp = api
        .patch(&format!("/api/v1/apps/{id}"), json!({"enabled": true, "jwks": null}))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.json::<Value>().await.unwrap().get("jwks").is_none());
    refused(&app, &key, &cid, &aud).await;
    // Registered again: works, and the audit log recorded both changes.
    assert_eq!(
        api.patch(&format!("/api/v1/apps/{id}"), json!({"jwks": key.jwks()}))
            .await
            .status(),
        200
    );
    assert_eq!(
        token_with(&app, &key.sign(json!({}), &claims(&cid, &aud)))
            .await
            .status(),
        200
    );
    let audit: Value = api
        .get("/api/v1/audit?filterBy=action==app.keys")
        .await
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(text.contains("none -> k1 (ES256)"), "{text}");
}

#[tokio::test]
async fn private_keys_bad_sets_and_weak_callers_cannot_register_keys() {
    let app = spawn_app().await;
    let api = app.api().await;
    let key = ClientKey::new("k");
    let mut private = key.jwk();
    private["d"] = URL_SAFE_NO_PAD.encode([7u8; 32]).into();
    for (jwks, needle) in [
        (json!({"keys": [private]}), "private key material"),
        (json!({"keys": []}), "1 to 5 keys"),
        (json!([key.jwk()]), "JWK Set"),
        (json!({"keys": [key.jwk(), key.jwk()]}), "used twice"),
        (json!({"keys": [{"kty": "oct", "k": "AAAA"}]}), "private key material"),
        (
            json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}),
            "RS256 or PS256",
        ),
    ] {
        let resp = api
            .post("/api/v1/apps", json!({"name": "bad-keys", "jwks": jwks}))
            .await;
        let body = assert_api_error(resp, 400, needle).await;
        assert!(
            !body.to_string().contains(&URL_SAFE_NO_PAD.encode([7u8; 32])),
            "private value echoed: {body}"
        );
    }
    // A key outlives the rules of whoever registered it: a Viewer or an
    // Application administrator cannot register one (on create or later),
    // and nobody can on its own application (a stolen token made permanent).
    let created = api.create_app("target").await;
    let id = created["id"].as_str().unwrap();
    for role in ["viewer", "application-administrator"] {
        let (_, weak) = api.app_with_tenant_role(&format!("{role}-app"), role).await;
        let resp = app
            .client
            .patch(app.url(&format!("/api/v1/apps/{id}")))
            .bearer_auth(&weak)
            .json(&json!({"jwks": key.jwks()}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{role}");
        let resp = app
            .client
            .post(app.url("/api/v1/apps"))
            .bearer_auth(&weak)
            .json(&json!({"name": format!("{role}-made"), "jwks": key.jwks()}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{role} creating with keys");
    }
    let admin_app: Value = api
        .get(&format!("/api/v1/apps?filterBy=clientId=={}", app.admin_id))
        .await
        .json()
        .await
        .unwrap();
    let admin_app_id = admin_app["applications"][0]["id"].as_str().unwrap();
    let resp = api
        .patch(&format!("/api/v1/apps/{admin_app_id}"), json!({"jwks": key.jwks()}))
        .await;
    assert_eq!(resp.status(), 403, "own application");
    let after: Value = api.get(&format!("/api/v1/apps/{id}")).await.json().await.unwrap();
    assert!(after.get("jwks").is_none(), "nothing registered: {after}");
    let resp = api.patch(&format!("/api/v1/apps/{id}"), json!({})).await;
    assert_api_error(resp, 400, "enabled").await;
}

/// Runs `code` with node; `NODE_PATH` points at the openid-client that
/// scripts/test.sh installed into target/node-clients.
async fn node(code: &str, args: &[&str]) -> Result<String, String> {
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/target/node-clients/node_modules");
    assert!(
        std::path::Path::new(modules).join("openid-client").exists(),
        "openid-client is not installed in {modules}: run ./scripts/test.sh (it runs npm install)"
    );
    let out = tokio::process::Command::new("node")
        .env("NODE_PATH", modules)
        .arg("-e")
        .arg(code)
        .args(args)
        .output()
        .await
        .expect("node runs (scripts/test.sh installs nodejs)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn node_openid_client_gets_a_token_with_private_key_jwt() {
    let app = spawn_app().await;
    let api = app.api().await;
    // node makes its own key: the private half never leaves it.
    let keygen = r#"
const { generateKeyPairSync } = require('crypto');
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = privateKey.export({ format: 'jwk' });
jwk.kid = 'node-1'; jwk.alg = 'ES256';
console.log(JSON.stringify(jwk));
"#;
    let private: Value = serde_json::from_str(&node(keygen, &[]).await.unwrap()).unwrap();
    let mut public = private.clone();
    public.as_object_mut().unwrap().remove("d");
    let created: Value = api
        .post(
            "/api/v1/apps",
            json!({"name": "node-client", "jwks": {"keys": [public]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let cid = created["clientId"].as_str().unwrap();
    let client = r#"
const { Issuer } = require('openid-client');
const [base, clientId, jwk] = process.argv.slice(1);
(async () => {
  const issuer = await Issuer.discover(base);
  const client = new issuer.Client(
    { client_id: clientId, token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256' },
    { keys: [JSON.parse(jwk)] });
  const set = await client.grant({ grant_type: 'client_credentials' });
  console.log(set.access_token);
})().catch((e) => { console.error(e.message); process.exit(1); });
"#;
    let token = node(client, &[&app.base, cid, &private.to_string()]).await.unwrap();
    let token = token.trim();
    assert_eq!(header_of(token)["typ"], "at+jwt");
    assert_eq!(claims_of(token)["client_id"], cid);
}

#[tokio::test]
async fn python_authlib_gets_a_token_with_private_key_jwt_rs256() {
    // Debian's authlib, and the newest from PyPI (scripts/test.sh installs it).
    for python in [debian_python(), pypi_python()] {
        authlib_gets_a_token(&python).await;
    }
}

async fn authlib_gets_a_token(python: &str) {
    let app = spawn_app().await;
    let api = app.api().await;
    // authlib makes an RSA key and prints its PEM and public JWK.
    let keygen = r#"
import json
from authlib.jose import JsonWebKey
key = JsonWebKey.generate_key('RSA', 2048, is_private=True)
public = key.as_dict(is_private=False); public['alg'] = 'RS256'; public['kid'] = 'py-1'
print(json.dumps({'pem': key.as_pem(is_private=True).decode(), 'public': public}))
"#;
    let out = tokio::process::Command::new(python)
        .args(["-c", keygen])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let generated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let created: Value = api
        .post(
            "/api/v1/apps",
            json!({"name": "py-client", "jwks": {"keys": [generated["public"]]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let cid = created["clientId"].as_str().unwrap();
    // authlib's defaults: exp one hour ahead, which appauth accepts
    // (oauth.max_assertion_lifetime_seconds = 3600).
    let client = r#"
import sys, time, uuid
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
base, client_id, pem = sys.argv[1:4]
token_url = base + '/oauth/token'
session = OAuth2Session(client_id, pem, token_endpoint_auth_method='private_key_jwt')
session.register_client_auth_method(PrivateKeyJWT(token_url))
token = session.fetch_token(token_url, grant_type='client_credentials')
print(token['access_token'])
"#;
    let out = tokio::process::Command::new(python)
        .args(["-c", client, &app.base, cid, generated["pem"].as_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{python}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(claims_of(&token)["client_id"], cid);
    app.stop().await;
}

#[tokio::test]
async fn with_redis_down_an_assertion_is_refused_with_503_not_accepted_unchecked() {
    let mut redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let api = app.api().await;
    let key = ClientKey::new("k");
    let created: Value = keyed_app(&api, &key).await;
    let cid = created["clientId"].as_str().unwrap();
    let aud = app.url("/oauth/token");
    assert_eq!(
        token_with(&app, &key.sign(json!({}), &claims(cid, &aud)))
            .await
            .status(),
        200
    );
    redis.kill9();
    // Without the ledger a replay could not be told apart: fail closed.
    let body = assert_oauth_error(
        token_with(&app, &key.sign(json!({}), &claims(cid, &aud))).await,
        503,
        "temporarily_unavailable",
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains("replay"), "{body}");
    // Secrets do not depend on Redis.
    assert_eq!(
        app.token_request(&app.admin_id, &app.admin_secret, "").await.status(),
        200
    );
}

#[tokio::test]
async fn regenerating_the_secret_or_disabling_removes_registered_keys() {
    let app = spawn_app().await;
    let api = app.api().await;
    let key = ClientKey::new("k");
    let created: Value = keyed_app(&api, &key).await;
    let (id, cid) = (created["id"].as_str().unwrap(), created["clientId"].as_str().unwrap());
    let aud = app.url("/oauth/token");
    assert_eq!(
        token_with(&app, &key.sign(json!({}), &claims(cid, &aud)))
            .await
            .status(),
        200
    );
    let resp = api.post(&format!("/api/v1/apps/{id}/secret"), json!({})).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.json::<Value>().await.unwrap().get("jwks").is_none(),
        "keys went with the secret"
    );
    refused(&app, &key, cid, &aud).await;
    assert_eq!(
        api.patch(&format!("/api/v1/apps/{id}"), json!({"jwks": key.jwks()}))
            .await
            .status(),
        200
    );
    assert_eq!(
        api.patch(&format!("/api/v1/apps/{id}"), json!({"enabled": false}))
            .await
            .status(),
        200
    );
    let after: Value = api
        .patch(&format!("/api/v1/apps/{id}"), json!({"enabled": true}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        after.get("jwks").is_none(),
        "re-enabling does not bring keys back: {after}"
    );
    let audit: Value = api
        .get("/api/v1/audit?filterBy=action==app.regenerate-secret")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit.to_string().contains("private_key_jwt keys removed: k (ES256)"),
        "{audit}"
    );
}

async fn wait_for_next_second() {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(1_010 - ms))).await;
}

#[tokio::test]
async fn an_assertion_used_before_a_restart_is_refused_after_it() {
    // The same address before and after, so the assertion's aud still names the server.
    let listen = format!("server.listen=127.0.0.1:{}", free_port());
    let app = spawn_app_with(std::slice::from_ref(&listen)).await;
    let key = ClientKey::new("k");
    let created = keyed_app(&app.api().await, &key).await;
    let cid = created["clientId"].as_str().unwrap().to_owned();
    let aud = app.url("/oauth/token");
    let used = key.sign(json!({}), &claims(&cid, &aud));
    assert_eq!(token_with(&app, &used).await.status(), 200);
    assert_oauth_error(token_with(&app, &used).await, 401, "invalid_client").await;

    let again = spawn_in(app.stop().await, &[listen]).await;
    assert_eq!(again.url("/oauth/token"), aud);
    let body = assert_oauth_error(token_with(&again, &used).await, 401, "invalid_client").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("record of used assertions begins"),
        "{body}"
    );
    // A client that signs a fresh assertion is served.
    wait_for_next_second().await;
    assert_eq!(
        token_with(&again, &key.sign(json!({}), &claims(&cid, &aud)))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_assertion_is_never_accepted_twice_after_redis_loses_or_rewinds_its_data() {
    let redis = RedisServer::start();
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let key = ClientKey::new("k");
    let created = keyed_app(&app.api().await, &key).await;
    let cid = created["clientId"].as_str().unwrap().to_owned();
    let aud = app.url("/oauth/token");
    wait_for_next_second().await;

    // FLUSHALL: the used jti is gone from Redis.
    let flushed = key.sign(json!({}), &claims(&cid, &aud));
    assert_eq!(token_with(&app, &flushed).await.status(), 200);
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    let body = assert_oauth_error(token_with(&app, &flushed).await, 401, "invalid_client").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("sign a new one"),
        "{body}"
    );
    wait_for_next_second().await;

    // An older snapshot: saved before the assertion was used.
    let _: () = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
    let rewound = key.sign(json!({}), &claims(&cid, &aud));
    assert_eq!(token_with(&app, &rewound).await.status(), 200);
    let redis = redis.restart_from_disk();
    let mut refused = false;
    for _ in 0..20 {
        let resp = token_with(&app, &rewound).await;
        match resp.status().as_u16() {
            401 => {
                refused = true;
                break;
            }
            // The connection to the restarted Redis is re-established on its own.
            503 => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            s => panic!("replayed after Redis came back from an old snapshot: {s}"),
        }
    }
    assert!(refused, "never refused");
    wait_for_next_second().await;
    assert_eq!(
        token_with(&app, &key.sign(json!({}), &claims(&cid, &aud)))
            .await
            .status(),
        200
    );
    drop(redis);
}

#[tokio::test]
async fn a_redis_that_may_evict_used_jtis_makes_assertions_refused_with_503_until_it_stops() {
    let redis = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory",
        "100mb",
        "--maxmemory-policy",
        "volatile-lru",
    ]);
    let app = spawn_app_with(&[format!("redis.url={}", redis.url())]).await;
    let key = ClientKey::new("k");
    let created = keyed_app(&app.api().await, &key).await;
    let cid = created["clientId"].as_str().unwrap().to_owned();
    let aud = app.url("/oauth/token");
    assert_oauth_error(
        token_with(&app, &key.sign(json!({}), &claims(&cid, &aud))).await,
        503,
        "temporarily_unavailable",
    )
    .await;
    // Secrets are unaffected.
    assert_eq!(
        app.token_request(&app.admin_id, &app.admin_secret, "").await.status(),
        200
    );

    let mut conn = redis.conn().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        token_with(&app, &key.sign(json!({}), &claims(&cid, &aud)))
            .await
            .status(),
        200
    );
}
