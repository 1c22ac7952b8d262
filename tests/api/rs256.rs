//! RS256 per audience (`issuer.audience_algs`): tokens for an RSA-only
//! verifier are RS256, everyone else keeps ES256; checked by PyJWT and by an
//! RSA-only verifier (as AWS API Gateway's JWT authorizer is).

use crate::helpers::*;
use serde_json::Value;

const LEGACY: &str = "https://legacy.example";

fn legacy_config() -> Vec<String> {
    vec![
        format!("issuer.audiences=urn:appauth:api,{LEGACY}"),
        format!("issuer.audience_algs={LEGACY}=RS256"),
    ]
}

/// Verifies `token` with PyJWT against the server's JWKS, RS256 only;
/// returns its claims, or PyJWT's complaint. Async: PyJWT fetches the JWKS
/// from the server, which runs on this test's runtime.
async fn pyjwt(base: &str, token: &str, audience: &str) -> Result<Value, String> {
    let script = r#"
import json, sys, jwt
base, token, aud = sys.argv[1:4]
key = jwt.PyJWKClient(base + "/.well-known/jwks.json").get_signing_key_from_jwt(token)
print(json.dumps(jwt.decode(token, key.key, algorithms=["RS256"], audience=aud, issuer=base)))
"#;
    let out = tokio::process::Command::new(debian_python())
        .args(["-c", script, base, token, audience])
        .output()
        .await
        .expect("python3 runs (scripts/test.sh installs python3-jwt)");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("PyJWT printed the claims"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn tokens_for_an_rs256_audience_are_rs256_and_verify_with_pyjwt_and_an_rsa_only_verifier() {
    let app = spawn_app_with(&legacy_config()).await;
    let default = app.admin_token().await;
    assert_eq!(
        header_of(&default)["alg"],
        "ES256",
        "other audiences keep the default key"
    );
    let resp = app
        .token_request(&app.admin_id, &app.admin_secret, &format!("&resource={LEGACY}"))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let header = header_of(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");

    // Every published key names its algorithm; the RSA one is public only.
    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.iter().all(|k| k["alg"].is_string()), "{jwks}");
    let rsa = keys
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("signing key published");
    assert_eq!((rsa["kty"].as_str(), rsa["alg"].as_str()), (Some("RSA"), Some("RS256")));
    assert!(
        rsa.get("d").is_none() && rsa.get("p").is_none(),
        "no private members: {rsa}"
    );

    // PyJWT, RS256 only: accepts it for the legacy audience, refuses it
    // for another, and refuses the ES256 token outright.
    let claims = pyjwt(&app.base, &token, LEGACY).await.unwrap();
    assert_eq!(claims["client_id"], app.admin_id.as_str());
    assert_eq!(claims["aud"], LEGACY);
    assert!(
        pyjwt(&app.base, &token, "urn:appauth:api")
            .await
            .unwrap_err()
            .contains("Audience")
    );
    assert!(pyjwt(&app.base, &default, "urn:appauth:api").await.is_err());
    // A character inside the signature (the last one may carry only unused
    // padding bits, so changing it could leave the bytes as they were).
    let mut forged: Vec<char> = token.chars().collect();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    assert!(
        pyjwt(&app.base, &forged, LEGACY)
            .await
            .unwrap_err()
            .contains("Signature")
    );

    // An RSA-only verifier: modulus and exponent from the JWKS, RS256 only.
    let n = rsa["n"].as_str().unwrap();
    let e = rsa["e"].as_str().unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_components(n, e).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[LEGACY]);
    validation.set_issuer(&[&app.base]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("RS256 token verifies");
    assert_eq!(data.claims["client_id"], app.admin_id.as_str());

    // appauth's own verifier and the admin-audience checks are untouched.
    let verifier = appauth_verify::Verifier::discover(appauth_verify::VerifierConfig::new(&app.base, LEGACY))
        .await
        .unwrap();
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.client_id, app.admin_id);
    let api = app.api().await;
    assert_eq!(api.get("/api/v1/apps").await.status(), 200);
}

#[tokio::test]
async fn an_rs256_token_for_the_admin_audience_is_accepted_and_a_forged_alg_is_not() {
    // The admin audience itself can be RS256: the API verifies with the key
    // the token names, pinned to its algorithm.
    let app = spawn_app_with(&[
        format!("issuer.audiences=urn:appauth:api,{LEGACY}"),
        "issuer.audience_algs=urn:appauth:api=RS256".into(),
    ])
    .await;
    let token = app.admin_token().await;
    assert_eq!(header_of(&token)["alg"], "RS256");
    let resp = app
        .client
        .get(app.url("/api/v1/apps"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The same RS256 signature presented as PS256 is refused.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut header = header_of(&token);
    header["alg"] = "PS256".into();
    use base64::Engine;
    parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
    let resp = app
        .client
        .get(app.url("/api/v1/apps"))
        .bearer_auth(parts.join("."))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[test]
fn audience_algs_naming_an_unknown_audience_or_another_algorithm_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let load = |set: &[&str]| {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        appauth::Config::load(None, Vec::new(), &set)
    };
    let err = load(&["issuer.audience_algs=https://nowhere=RS256"]).unwrap_err();
    assert_eq!(err.key, "issuer.audience_algs");
    assert!(err.message.contains("not one of issuer.audiences"), "{}", err.message);
    let err = load(&["issuer.audience_algs=urn:appauth:api=ES384"]).unwrap_err();
    assert!(err.message.contains("only \"RS256\""), "{}", err.message);
    let err = load(&["issuer.audience_algs=urn:appauth:api"]).unwrap_err();
    assert!(err.message.contains("audience=ALG"), "{}", err.message);
    let toml = dir.path().join("c.toml");
    std::fs::write(
        &toml,
        format!("[issuer]\naudiences = [\"urn:appauth:api\", \"{LEGACY}\"]\naudience_algs = {{ \"{LEGACY}\" = \"RS256\" }}\n"),
    )
    .unwrap();
    let c = appauth::Config::load(Some(&toml), Vec::new(), &[]).unwrap();
    assert_eq!(c.issuer.audience_algs.get(LEGACY), Some(&appauth::token::Alg::RS256));
}
