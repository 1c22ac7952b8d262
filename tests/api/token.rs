//! POST /oauth/token (RFC 6749 §4.4) and POST /api/v1/token.

use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn token_request_with_basic_credentials_returns_a_bearer_jwt() {
    let app = spawn_app().await;
    let resp = app.token_request(&app.admin_id, &app.admin_secret, "").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "system-administrator");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(header_of(token)["typ"], "at+jwt");
    assert_eq!(header_of(token)["alg"], "ES256");
}

#[tokio::test]
async fn token_request_with_credentials_in_the_body_succeeds() {
    let app = spawn_app().await;
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        app.admin_id, app.admin_secret
    );
    let resp = app.post_form("/oauth/token", &body, None).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn token_claims_are_exactly_the_documented_set() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let claims = claims_of(&token);
    let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "access_rules",
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "nbf",
            "scope",
            "sub"
        ]
    );
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["sub"], app.admin_id);
    assert_eq!(claims["client_id"], app.admin_id);
    assert_eq!(claims["aud"], "urn:appauth:api");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    assert_eq!(claims["nbf"], claims["iat"]);
    // ≥ 128 random bits: 22 base64url characters.
    assert!(claims["jti"].as_str().unwrap().len() >= 22);
    let rules = claims["access_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    let rule = rules[0].as_object().unwrap();
    let mut rule_keys: Vec<&str> = rule.keys().map(String::as_str).collect();
    rule_keys.sort();
    assert_eq!(
        rule_keys,
        ["role", "role_id", "scope_id", "scope_name", "scope_path", "scope_type"]
    );
    assert_eq!(rule["role"], "System administrator");
    assert_eq!(rule["scope_type"], "tenant");
    let second = claims_of(&app.admin_token().await);
    assert_ne!(second["jti"], claims["jti"], "every token has its own jti");
}

#[tokio::test]
async fn token_verifies_against_the_published_jwks_with_an_independent_library() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let jwks: jsonwebtoken::jwk::JwkSet = app.get_json("/.well-known/jwks.json").await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[&app.base]);
    validation.set_audience(&["urn:appauth:api"]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("token verifies");
    assert_eq!(data.claims["client_id"], app.admin_id);

    let mut tampered: Vec<String> = token.split('.').map(str::to_owned).collect();
    tampered[1] = tampered[1].replacen('e', "f", 1);
    assert!(jsonwebtoken::decode::<Value>(&tampered.join("."), &key, &validation).is_err());
}

#[tokio::test]
async fn token_request_with_allowed_scope_narrows_and_unknown_scope_is_invalid_scope() {
    let app = spawn_app().await;
    let resp = app
        .token_request(&app.admin_id, &app.admin_secret, "&scope=system-administrator")
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .token_request(&app.admin_id, &app.admin_secret, "&scope=viewer")
        .await;
    assert_oauth_error(resp, 400, "invalid_scope").await;
    let resp = app
        .token_request(&app.admin_id, &app.admin_secret, "&scope=no-such-role")
        .await;
    assert_oauth_error(resp, 400, "invalid_scope").await;
}

#[tokio::test]
async fn token_request_for_a_configured_audience_or_resource_gets_that_aud() {
    let extra = ["issuer.audiences=urn:appauth:api,https://api.example.com".to_string()];
    let app = spawn_app_with(&extra).await;
    let resp = app
        .token_request(
            &app.admin_id,
            &app.admin_secret,
            "&resource=https%3A%2F%2Fapi.example.com",
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["aud"],
        "https://api.example.com"
    );
    let resp = app
        .token_request(&app.admin_id, &app.admin_secret, "&audience=urn:appauth:api")
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["aud"],
        "urn:appauth:api"
    );
}

#[tokio::test]
async fn token_request_for_a_resource_not_served_is_invalid_target() {
    let app = spawn_app().await;
    let resp = app
        .token_request(&app.admin_id, &app.admin_secret, "&resource=https%3A%2F%2Fevil.example")
        .await;
    assert_oauth_error(resp, 400, "invalid_target").await;
    // RFC 8707 §2: resource must be an absolute URI.
    let resp = app
        .token_request(&app.admin_id, &app.admin_secret, "&resource=urn")
        .await;
    assert_oauth_error(resp, 400, "invalid_target").await;
    let resp = app
        .token_request(&app.admin_id, &app.admin_secret, "&audience=other")
        .await;
    assert_oauth_error(resp, 400, "invalid_target").await;
}

#[tokio::test]
async fn token_endpoint_rejects_other_methods_with_405() {
    let app = spawn_app().await;
    for method in [reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE] {
        let resp = app
            .client
            .request(method, app.url("/oauth/token"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["allow"], "POST");
        assert_oauth_error(resp, 405, "invalid_request").await;
    }
}

#[tokio::test]
async fn token_request_without_form_content_type_is_rejected() {
    let app = spawn_app().await;
    let auth = basic(&app.admin_id, &app.admin_secret);
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .header("Authorization", &auth)
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let body = assert_oauth_error(resp, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("Content-Type"));
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .header("Authorization", &auth)
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
}

#[tokio::test]
async fn token_request_with_form_content_type_and_charset_is_accepted() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .header("Authorization", basic(&app.admin_id, &app.admin_secret))
        .header("Content-Type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn token_request_with_a_body_over_the_limit_gets_413() {
    let app = spawn_app().await;
    let body = format!("grant_type=client_credentials&pad={}", "x".repeat(20_000));
    let resp = app
        .post_form("/oauth/token", &body, Some(basic(&app.admin_id, &app.admin_secret)))
        .await;
    assert_oauth_error(resp, 413, "invalid_request").await;
}

#[tokio::test]
async fn token_request_with_missing_unknown_or_repeated_grant_type_is_rejected() {
    let app = spawn_app().await;
    let auth = || Some(basic(&app.admin_id, &app.admin_secret));
    let resp = app.post_form("/oauth/token", "scope=x", auth()).await;
    assert_oauth_error(resp, 400, "invalid_request").await;
    let resp = app.post_form("/oauth/token", "grant_type=password", auth()).await;
    assert_oauth_error(resp, 400, "unsupported_grant_type").await;
    let resp = app
        .post_form(
            "/oauth/token",
            "grant_type=client_credentials&grant_type=client_credentials",
            auth(),
        )
        .await;
    let body = assert_oauth_error(resp, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("grant_type"));
}

#[tokio::test]
async fn token_request_with_repeated_client_id_is_rejected() {
    let app = spawn_app().await;
    let body = format!(
        "grant_type=client_credentials&client_id={0}&client_id={0}&client_secret={1}",
        app.admin_id, app.admin_secret
    );
    let resp = app.post_form("/oauth/token", &body, None).await;
    let body = assert_oauth_error(resp, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("client_id"));
}

#[tokio::test]
async fn token_request_with_basic_and_body_credentials_together_is_rejected() {
    let app = spawn_app().await;
    let body = format!("grant_type=client_credentials&client_secret={}", app.admin_secret);
    let resp = app
        .post_form("/oauth/token", &body, Some(basic(&app.admin_id, &app.admin_secret)))
        .await;
    assert_oauth_error(resp, 400, "invalid_request").await;
}

#[tokio::test]
async fn token_request_with_malformed_basic_headers_is_rejected() {
    let app = spawn_app().await;
    use base64::Engine;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    for header in [
        "Basic !!!not-base64!!!".to_string(),
        format!("Basic {}", b64(b"no-colon-here")),
        format!("Basic {}", b64(format!("{}:%FF%FE", app.admin_id).as_bytes())),
    ] {
        let resp = app
            .post_form("/oauth/token", "grant_type=client_credentials", Some(header.clone()))
            .await;
        let body = assert_oauth_error(resp, 400, "invalid_request").await;
        assert!(
            body["error_description"].as_str().unwrap().contains("Basic"),
            "{header}: {body}"
        );
    }
}

#[tokio::test]
async fn token_request_with_fully_percent_encoded_credentials_succeeds() {
    let app = spawn_app().await;
    // `helpers::basic` percent-encodes every non-alphanumeric character
    // (`-` and `_` included), as a client may legitimately do.
    let auth = basic(&app.admin_id, &app.admin_secret);
    assert!(auth.len() > basic_plain(&app.admin_id, &app.admin_secret).len());
    let resp = app
        .post_form("/oauth/token", "grant_type=client_credentials", Some(auth))
        .await;
    assert_eq!(resp.status(), 200);
    // Every character escaped: longer than the 256 bytes decoded on the stack.
    let escape_all = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let long = basic_plain(&escape_all(&app.admin_id), &escape_all(&app.admin_secret));
    assert!(long.len() > 4 * 256 / 3 + "Basic ".len(), "{}", long.len());
    let resp = app
        .post_form("/oauth/token", "grant_type=client_credentials", Some(long))
        .await;
    assert_eq!(resp.status(), 200);
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        app.admin_id.replace('-', "%2D"),
        app.admin_secret.replace('_', "%5F")
    );
    assert_eq!(app.post_form("/oauth/token", &body, None).await.status(), 200);
}

fn basic_plain(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[tokio::test]
async fn unknown_client_and_wrong_secret_get_identical_401_answers() {
    let app = spawn_app().await;
    let other_secret = {
        // A well-formed secret that belongs to no client.
        let fresh = spawn_app().await;
        fresh.admin_secret.clone()
    };
    let unknown = app
        .token_request("8a3c1d9e-0000-4000-8000-000000000000", &app.admin_secret, "")
        .await;
    assert_eq!(
        unknown.headers()["www-authenticate"],
        "Basic realm=\"appauth\", charset=\"UTF-8\", error=\"invalid_client\""
    );
    let unknown = assert_oauth_error(unknown, 401, "invalid_client").await;
    let wrong = app.token_request(&app.admin_id, &other_secret, "").await;
    assert!(wrong.headers().contains_key("www-authenticate"));
    let wrong = assert_oauth_error(wrong, 401, "invalid_client").await;
    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn wrong_secret_in_the_body_gets_401_without_a_basic_challenge() {
    let app = spawn_app().await;
    let fresh = spawn_app().await;
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        app.admin_id, fresh.admin_secret
    );
    let resp = app.post_form("/oauth/token", &body, None).await;
    assert!(!resp.headers().contains_key("www-authenticate"));
    assert_oauth_error(resp, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_mistyped_secret_is_rejected_by_its_checksum() {
    let app = spawn_app().await;
    let mut typo: Vec<char> = app.admin_secret.chars().collect();
    typo[8] = if typo[8] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    let resp = app.token_request(&app.admin_id, &typo, "").await;
    let body = assert_oauth_error(resp, 401, "invalid_client").await;
    assert!(body["error_description"].as_str().unwrap().contains("checksum"));
}

#[tokio::test]
async fn token_request_without_any_credentials_is_invalid_client() {
    let app = spawn_app().await;
    let resp = app
        .post_form("/oauth/token", "grant_type=client_credentials", None)
        .await;
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_oauth_error(resp, 401, "invalid_client").await;
}

#[tokio::test]
async fn token_request_with_non_utf8_bytes_is_rejected() {
    let app = spawn_app().await;
    let mut body = b"grant_type=client_credentials&scope=".to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0x41]);
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", basic(&app.admin_id, &app.admin_secret))
        .body(body)
        .send()
        .await
        .unwrap();
    let body = assert_oauth_error(resp, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("UTF-8"));
}

#[tokio::test]
async fn compatibility_endpoint_issues_tokens_with_camel_case_fields() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/api/v1/token"))
        .json(&json!({"grantType": "client_credentials", "clientId": app.admin_id, "clientSecret": app.admin_secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 3600);
    assert_eq!(
        claims_of(body["accessToken"].as_str().unwrap())["client_id"],
        app.admin_id
    );
}

#[tokio::test]
async fn compatibility_endpoint_rejects_unknown_fields_and_bad_secrets() {
    let app = spawn_app().await;
    let post = |body: Value| app.client.post(app.url("/api/v1/token")).json(&body).send();
    let resp = post(json!({"grantType": "client_credentials", "clientId": app.admin_id, "clientSecret": app.admin_secret, "extra": 1}))
        .await
        .unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
    let resp = post(json!({"grantType": "client_credentials", "clientId": app.admin_id, "clientSecret": "aas_nope"}))
        .await
        .unwrap();
    assert_oauth_error(resp, 401, "invalid_client").await;
    let resp = post(json!({"grantType": "password", "clientId": app.admin_id, "clientSecret": app.admin_secret}))
        .await
        .unwrap();
    assert_oauth_error(resp, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn data_survives_a_restart_on_the_same_directory() {
    let app = spawn_app().await;
    let (id, secret) = (app.admin_id.clone(), app.admin_secret.clone());
    let kid_before = header_of(&app.admin_token().await)["kid"].clone();
    let dir = app.stop().await;
    let initial = std::fs::read(dir.path().join("data/initial-admin.json")).unwrap();
    let again = spawn_in(dir, &[]).await;
    assert_eq!(again.admin_id, id, "initial-admin.json is not rewritten on restart");
    assert_eq!(
        std::fs::read(again.data_dir().join("initial-admin.json")).unwrap(),
        initial
    );
    let token = again.token_for(&id, &secret).await;
    assert_eq!(header_of(&token)["kid"], kid_before, "the same key signs after restart");
}

/// RFC 6749 §5.2: `error_description` is %x20-21 / %x23-5B / %x5D-7E.
fn rfc6749_allowed(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{21}' | '\u{23}'..='\u{5b}' | '\u{5d}'..='\u{7e}')
}

#[tokio::test]
async fn every_error_description_uses_only_the_characters_rfc_6749_allows() {
    let app = spawn_app().await;
    let basic_admin = basic(&app.admin_id, &app.admin_secret);
    let cases: Vec<(&str, &str, String, Option<String>)> = vec![
        (
            "/oauth/token",
            "text/plain",
            "grant_type=client_credentials".into(),
            Some(basic_admin.clone()),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            "grant_type=%22pass%5Cword%22".into(),
            Some(basic_admin.clone()),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            "grant_type=%C2%A7%E2%80%94%F0%9F%94%91".into(),
            Some(basic_admin.clone()),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials&scope=%22admin%22%20%C3%A9".into(),
            Some(basic_admin.clone()),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials&resource=%E2%98%83".into(),
            Some(basic_admin.clone()),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials&audience=%22x%5C%22".into(),
            Some(basic_admin.clone()),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials&grant_type=x".into(),
            Some(basic_admin.clone()),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials".into(),
            Some("Digest \"é\"".into()),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials".into(),
            Some("Basic %%%".into()),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials&client_id=%22&client_secret=%5C".into(),
            None,
        ),
        (
            "/oauth/revoke",
            "application/x-www-form-urlencoded",
            "token_type_hint=refresh_token&token=x".into(),
            Some(basic_admin.clone()),
        ),
        (
            "/oauth/introspect",
            "application/json",
            "{}".into(),
            Some(basic_admin.clone()),
        ),
        (
            "/api/v1/token",
            "application/json",
            "{\"grantType\":\"§\"}".into(),
            None,
        ),
    ];
    let mut seen = 0;
    for (path, content_type, body, auth) in cases {
        let mut req = app
            .client
            .post(app.url(path))
            .header("Content-Type", content_type)
            .body(body.clone());
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let json: serde_json::Value = resp.json().await.unwrap();
        let d = json["error_description"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} {body}: {status} without error_description: {json}"));
        assert!(!d.is_empty());
        assert!(
            d.chars().all(rfc6749_allowed),
            "{path} {body}: error_description has characters RFC 6749 section 5.2 forbids: {d:?}"
        );
        seen += 1;
    }
    assert_eq!(seen, 13);
}

#[tokio::test]
async fn client_secrets_in_the_url_are_refused_on_every_oauth_endpoint_and_other_query_parameters_are_not() {
    let app = spawn_app().await;
    let (id, secret) = (app.admin_id.clone(), app.admin_secret.clone());
    let token = app.admin_token().await;
    let leaks = [
        (
            "/oauth/token?client_secret=".to_owned() + &secret,
            format!("grant_type=client_credentials&client_id={id}"),
        ),
        (
            "/oauth/token?client%5Fassertion=eyJ".to_owned(),
            "grant_type=client_credentials".to_owned(),
        ),
        (
            "/oauth/revoke?a=1;Client_Secret[]=x".to_owned(),
            format!("token={token}"),
        ),
        (
            "/oauth/token??client_secret+=x".to_owned(),
            "grant_type=client_credentials".to_owned(),
        ),
        (
            "/oauth/introspect?a=1&client_secret=x".to_owned(),
            format!("token={token}"),
        ),
    ];
    for (path, body) in &leaks {
        let resp = app.post_form(path, body, Some(basic(&id, &secret))).await;
        let err = assert_oauth_error(resp, 400, "invalid_request").await;
        let text = err["error_description"].as_str().unwrap();
        assert!(text.contains("must not be sent in the URL"), "{path}: {text}");
        assert!(!text.contains(&secret[4..]), "the answer repeats the secret");
    }
    let compat = app
        .client
        .post(app.url("/api/v1/token?client_secret=x"))
        .json(&json!({"grantType": "client_credentials", "clientId": id, "clientSecret": secret}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(compat, 400, "invalid_request").await;
    // The usual leak, a GET with everything in the URL, hears about it too.
    let get = app
        .client
        .get(app.url(&format!(
            "/oauth/token?grant_type=client_credentials&client_id={id}&client_secret=x"
        )))
        .send()
        .await
        .unwrap();
    assert_oauth_error(get, 400, "invalid_request").await;
    let plain_get = app.client.get(app.url("/oauth/token")).send().await.unwrap();
    assert_eq!(plain_get.status(), 405);
    // RFC 6749 §3.2: the endpoint URI may carry a query of its own.
    let ok = app
        .post_form(
            "/oauth/token?tenant=a&client_secretive=1",
            "grant_type=client_credentials",
            Some(basic(&id, &secret)),
        )
        .await;
    assert_eq!(ok.status(), 200);
    // The refused token request was not counted as a failed authentication.
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("appauth_token_errors_total{error=\"invalid_client\"} 0"),
        "{metrics}"
    );
}
