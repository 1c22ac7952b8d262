//! Discovery (RFC 8414), JWKS (RFC 7517), health and metrics.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn metadata_is_served_at_both_well_known_paths_and_lists_only_registered_methods() {
    let app = spawn_app().await;
    let get = |p: &str| app.client.get(app.url(p)).send();
    let a: Value = get("/.well-known/oauth-authorization-server")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The same document at the OpenID path, for clients that discover only
    // there (openid-client 5: see private_key_jwt's node test).
    let b: Value = get("/.well-known/openid-configuration")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a, b);
    // Only registered client authentication methods (IANA) are listed.
    assert_eq!(
        a["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
    assert_eq!(a["issuer"], app.base);
    assert_eq!(a["token_endpoint"], app.url("/oauth/token"));
    assert_eq!(a["jwks_uri"], app.url("/.well-known/jwks.json"));
    assert_eq!(a["grant_types_supported"], serde_json::json!(["client_credentials"]));
    assert!(
        a.get("response_types_supported").is_none(),
        "RFC 8414 §3.2: omit, never empty"
    );
    assert_eq!(a["revocation_endpoint"], app.url("/oauth/revoke"));
    assert_eq!(a["introspection_endpoint"], app.url("/oauth/introspect"));
    let methods = a["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&"client_secret_basic".into()) && methods.contains(&"client_secret_post".into()));
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_with_its_algorithm() {
    let app = spawn_app().await;
    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "no private part");
    let token = app.admin_token().await;
    assert_eq!(header_of(&token)["kid"], keys[0]["kid"]);
}

#[tokio::test]
async fn an_eddsa_key_dropped_into_keys_signs_as_eddsa() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    appauth::token::keys::generate(&dir.path().join("keys"), appauth::token::Alg::EdDSA, now - 10).unwrap();
    let app = spawn_in(dir, &[]).await;
    let token = app.admin_token().await;
    assert_eq!(header_of(&token)["alg"], "EdDSA");
    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_with_latency_build_and_process_metrics() {
    let app = spawn_app().await;
    let get = |p: &str| app.client.get(app.url(p)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["store"], "ok");
    app.admin_token().await;
    let _ = app.token_request(&app.admin_id, "aas_bad", "").await;
    let metrics = get("/metrics").await.unwrap();
    assert_eq!(
        metrics.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.ends_with("# EOF\n"), "OpenMetrics ends with EOF: {metrics}");
    assert!(metrics.contains("appauth_tokens_issued_total 1"), "{metrics}");
    assert!(
        metrics.contains("appauth_token_errors_total{error=\"invalid_client\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("appauth_applications 1"));
    // Latency: the two token requests in the token histogram (every
    // bucket count ≤ the next, +Inf = count), the health checks elsewhere.
    let sample = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing in {metrics}"))
            .parse()
            .unwrap()
    };
    let h = "appauth_request_duration_seconds";
    assert_eq!(sample(&format!("{h}_count{{route=\"token\"}}")), 2.0);
    assert_eq!(sample(&format!("{h}_bucket{{le=\"+Inf\",route=\"token\"}}")), 2.0);
    assert!(sample(&format!("{h}_sum{{route=\"token\"}}")) > 0.0);
    assert!(
        sample(&format!("{h}_count{{route=\"other\"}}")) >= 2.0,
        "healthz and readyz"
    );
    let buckets: Vec<f64> = metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{h}_bucket{{")) && l.contains("route=\"token\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 13);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative: {buckets:?}");
    assert!(metrics.contains(&format!("{h}_bucket{{le=\"0.0001\",route=\"token\"}}")));
    // Build and process metrics.
    assert!(metrics.contains(&format!(
        "appauth_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(sample("process_resident_memory_bytes") > 1e6);
    assert!(sample("process_open_fds") >= 3.0);
    assert!(sample("process_cpu_seconds_total") >= 0.0);
    let started = sample("process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(started <= now + 1.0 && started > now - 3600.0, "{started} vs {now}");
}

#[tokio::test]
async fn unknown_paths_get_a_json_404() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/nope/../../etc/passwd")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 404);
}
